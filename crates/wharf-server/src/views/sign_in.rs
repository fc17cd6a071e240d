//! The sign-in page.

use super::html::{Notice, Section, esc, page};

/// `signin_csrf` is the double-submit value also set as a short-lived cookie: a sign-in
/// post must carry both, so another site cannot sign a browser in as someone else.
pub fn sign_in(name: &str, signin_csrf: &str, notice: &Option<Notice>) -> String {
    let body = format!(
        r#"<form method="post" action="/portal/sign-in" class="card">
<input type="hidden" name="csrf" value="{csrf}">
<p class="field"><label for="signin-name">User name</label><input id="signin-name" name="name" type="text" autocomplete="username" value="{name}" aria-required="true"></p>
<p class="field"><label for="signin-password">Password</label><input id="signin-password" name="password" type="password" autocomplete="current-password" aria-required="true"></p>
<p><button type="submit">Sign in</button></p>
</form>"#,
        csrf = esc(signin_csrf),
        name = esc(name),
    );
    page("Sign in", Section::SignIn, None, notice, &body)
}
