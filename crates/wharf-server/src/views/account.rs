//! Account: the signed-in user changes their own password.

use super::html::{Notice, Section, Viewer, form, input, page};

pub fn account(viewer: &Viewer, notice: &Option<Notice>) -> String {
    let inner = format!(
        r#"<h2>Change your password</h2>{}{}{}<p><button type="submit" id="password-submit">Change password</button></p>"#,
        input("password-current", "Current password", "password", "", ""),
        input(
            "password-new",
            "New password",
            "password",
            "",
            "At least 8 characters"
        ),
        input("password-confirm", "New password again", "password", "", ""),
    );
    let body = format!(
        r#"<p>Signed in as <strong>{}</strong>. Changing the password ends every login of registry clients made with the old one (docker, wharf); they must log in again.</p>{}"#,
        super::html::esc(viewer.name),
        form("/portal/account", viewer.csrf, "card", &inner)
    );
    page("Account", Section::Account, Some(viewer), notice, &body)
}
