//! The web portal in a real browser (headless chromium through chromedriver) against a
//! real Wharf, with real `docker` pushes: sign in, enable content trust, grant
//! AcrImageSigner, see a tag signed by `docker push` with content trust, disable content
//! trust through its confirmation, and the refusals (bad input, CSRF-less posts, a user
//! without owner rights). Screenshots of each page go to `<target>/portal-screenshots/`.

mod common;

use common::browser::{Browser, require_browser};
use common::portal_client::{PortalClient, csrf_of};
use common::{DockerClient, Server, pushed_digest, text};

const DCT: &[(&str, &str)] = &[
    ("DOCKER_CONTENT_TRUST", "1"),
    ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123"),
    ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123"),
];

fn sign_in(b: &Browser, server: &Server, user: &str, password: &str) {
    b.goto(&server.url("/"));
    assert!(
        b.current_url().ends_with("/portal/sign-in"),
        "/ should lead to the sign-in page, got {}",
        b.current_url()
    );
    b.find("#signin-name").send_keys(user);
    b.find("#signin-password").send_keys(password);
    click_through(b, "form.card button[type=submit]");
    b.find("form.signout");
    assert!(
        b.current_url().ends_with("/portal/repositories"),
        "{}",
        b.current_url()
    );
}

/// Click `css` (a submit button or link) and wait until the next page has replaced this
/// one, so what is read next comes from the response and not the page before it.
fn click_through(b: &Browser, css: &str) {
    b.execute("document.documentElement.dataset.previousPage = '1';", &[]);
    b.find(css).click();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let replaced = b.execute(
            "return document.readyState === 'complete' && !document.documentElement.dataset.previousPage;",
            &[],
        );
        if replaced.as_bool() == Some(true) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "clicking {css} did not load a new page (still at {})",
            b.current_url()
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

fn notice(b: &Browser) -> String {
    b.find(".notice").text()
}

/// Whether `user` exists, asked through the admin API (not the portal under test).
fn user_exists(server: &Server, user: &str) -> bool {
    let token = server.token(&["registry:admin:*"]);
    let body: serde_json::Value = server
        .http()
        .get(server.url("/api/v1/users"))
        .bearer_auth(token)
        .send()
        .expect("list users")
        .json()
        .expect("json");
    body["users"]
        .as_array()
        .expect("users")
        .iter()
        .any(|u| u["name"] == user)
}

#[test]
fn owner_manages_trust_and_access_and_sees_signed_tags() {
    require_browser();
    let server = Server::start();
    let b = Browser::start();

    // Sign in (the bootstrap owner).
    b.goto(&server.url("/portal/sign-in"));
    b.screenshot("01-sign-in.png");
    b.find("#signin-name").send_keys("admin");
    b.find("#signin-password").send_keys("wrong-password");
    click_through(&b, "form.card button[type=submit]");
    assert_eq!(notice(&b), "invalid username or password");
    sign_in(&b, &server, "admin", &server.admin_password);
    b.screenshot("02-repositories-empty.png");

    // Policies → Content trust → Enabled → Save.
    click_through(&b, "nav a[href='/portal/policies/content-trust']");
    assert_eq!(b.find("#trust-state").text(), "Disabled");
    b.find("#trust-enabled").click();
    click_through(&b, "#trust-save");
    assert_eq!(
        notice(&b),
        "Content trust enabled. Publishers can now push signed tags."
    );
    assert_eq!(b.find("#trust-state").text(), "Enabled");
    b.screenshot("03-policies-content-trust-enabled.png");

    // Policies → Anonymous pull: a bad scope is refused with the API's message and
    // changes nothing; a good one is listed, and removed again.
    b.find("#anonymous-scope").send_keys("repository:Public");
    click_through(&b, "#anonymous-add");
    assert_eq!(
        notice(&b),
        "scope \"repository:Public\" must be registry, repository:<name> or repository:<prefix>/*"
    );
    assert!(b.find("#anonymous-pull").text().contains("Anonymous pull is off"));
    b.find("#anonymous-scope").send_keys("repository:public/*");
    click_through(&b, "#anonymous-add");
    assert_eq!(notice(&b), "repository:public/* is open to anonymous pull.");
    assert!(
        b.find("#anonymous-pull table")
            .text()
            .contains("repository:public/*")
    );
    b.screenshot("03b-policies-anonymous-pull.png");
    click_through(&b, "#anonymous-pull table button");
    assert_eq!(
        notice(&b),
        "repository:public/* is no longer open to anonymous pull."
    );
    assert!(b.find("#anonymous-pull").text().contains("Anonymous pull is off"));

    // Access control: a user, and AcrImageSigner for them on one repository.
    click_through(&b, "nav a[href='/portal/access']");
    b.find("#user-name").send_keys("alice");
    b.find("#user-password").send_keys("alice-password-1");
    click_through(&b, "#user-submit");
    assert_eq!(notice(&b), "User alice created.");
    b.find("#users tr[data-principal='alice']");

    // The least privileged role is preselected, never Owner.
    assert_eq!(b.find("#assign-role").prop("value"), serde_json::json!("AcrPull"));
    b.find("#assign-role option[value='AcrImageSigner']").click();
    b.find("#assign-assignee").send_keys("alice");
    b.find("#assign-scope").clear();
    b.find("#assign-scope").send_keys("repository:portal/app");
    click_through(&b, "#assign-submit");
    assert_eq!(
        notice(&b),
        "alice now has AcrImageSigner on repository:portal/app. It applies from their next sign-in or token."
    );
    b.find("tr[data-assignment='alice|AcrImageSigner|repository:portal/app']");
    // And pull rights so alice can see the repository.
    b.find("#assign-role option[value='AcrPull']").click();
    b.find("#assign-assignee").send_keys("alice");
    b.find("#assign-scope").clear();
    b.find("#assign-scope").send_keys("repository:portal/app");
    click_through(&b, "#assign-submit");
    b.find("tr[data-assignment='alice|AcrPull|repository:portal/app']");
    b.screenshot("04-access-control.png");

    // Bad input: unknown role (the select only offers real ones, so add a fake option
    // the way a hand-made post would send it), unknown assignee, empty names.
    b.execute(
        "const o = document.createElement('option'); o.value = 'NoSuchRole'; o.textContent = 'NoSuchRole'; \
         document.getElementById('assign-role').appendChild(o); o.selected = true;",
        &[],
    );
    b.find("#assign-assignee").send_keys("alice");
    click_through(&b, "#assign-submit");
    assert_eq!(
        notice(&b),
        "unknown role \"NoSuchRole\"; built-in roles are Owner, Contributor, Reader, AcrPull, AcrPush, AcrDelete, AcrImageSigner"
    );
    assert_eq!(
        b.find("#assign-assignee").prop("value"),
        "alice",
        "typed input kept"
    );
    b.find("#assign-assignee").clear();
    b.find("#assign-assignee").send_keys("nobody");
    click_through(&b, "#assign-submit");
    assert_eq!(
        notice(&b),
        "unknown assignee \"nobody\": no user or service principal has that name"
    );
    click_through(&b, "#user-submit");
    assert_eq!(notice(&b), "User name is required.");
    click_through(&b, "#sp-submit");
    assert_eq!(notice(&b), "Service principal name is required.");
    b.screenshot("05-access-control-error.png");
    assert_eq!(
        b.find_all("#role-assignments tbody tr").len(),
        3,
        "refused posts changed the assignments (owner's own + alice's two)"
    );

    // A service principal: its secret is shown once.
    b.find("#sp-name").send_keys("ci-bot");
    click_through(&b, "#sp-submit");
    assert_eq!(notice(&b), "Service principal ci-bot created.");
    let secret = b.find("#secret-value").text();
    assert!(secret.len() >= 40, "secret {secret:?}");
    b.goto(&server.url("/portal/access"));
    assert!(!b.page_source().contains(&secret), "secret shown twice");

    // An owner gives alice a new password: shown once, her old one stops working.
    click_through(&b, "#users tr[data-principal='alice'] button:not(.danger)");
    assert_eq!(
        notice(&b),
        "New password for alice; the old one, their sign-ins and refresh tokens no longer work."
    );
    let alice_new = b.find("#secret-value").text();
    assert_eq!(server.token_as("alice", "alice-password-1", &[]), Err(401));
    assert!(server.token_as("alice", &alice_new, &[]).is_ok());

    // Remove an assignment; the admin account's password and a token's are shown once.
    click_through(
        &b,
        "tr[data-assignment='alice|AcrPull|repository:portal/app'] button",
    );
    assert_eq!(notice(&b), "Removed AcrPull from alice.");
    assert!(
        b.find_all("tr[data-assignment='alice|AcrPull|repository:portal/app']")
            .is_empty(),
        "assignment still listed"
    );
    click_through(&b, "#admin-account button");
    assert_eq!(notice(&b), "Admin account enabled.");
    assert_eq!(b.find("#admin-account-state").text(), "enabled");
    assert_eq!(b.find("#secret-login").text(), "wharf");
    click_through(&b, "#admin-account button");
    assert_eq!(b.find("#admin-account-state").text(), "disabled");
    b.find("#token-name").send_keys("ci-app");
    b.find("#token-repositories")
        .send_keys("portal/app:content/read,content/write,trust/write");
    click_through(&b, "#token-submit");
    assert_eq!(notice(&b), "Token ci-app created.");
    assert!(b.find("#secret-value").text().len() >= 40);
    assert_eq!(
        b.find("tr[data-token='ci-app'] code").text(),
        "portal/app:content/read,content/write,trust/write"
    );
    b.find("#token-name").send_keys("bad-token");
    b.find("#token-repositories").send_keys("portal/app:content/fly");
    click_through(&b, "#token-submit");
    assert!(
        notice(&b).starts_with("malformed repository permission \"portal/app:content/fly\""),
        "{}",
        notice(&b)
    );
    assert!(b.find_all("tr[data-token='bad-token']").is_empty());
    click_through(&b, "tr[data-token='ci-app'] button");
    assert_eq!(notice(&b), "Token ci-app deleted.");

    // A signed tag (pushed with content trust) and an unsigned one.
    let owner = DockerClient::new();
    let out = owner.wharf_login(&server, "admin", &server.admin_password);
    assert!(out.status.success(), "{}", text(&out));
    let signed_ref = format!("{}/portal/app:signed", server.host);
    let plain_ref = format!("{}/portal/app:plain", server.host);
    owner.import_image(&signed_ref);
    owner.import_image(&plain_ref);
    let out = owner.cmd(&["push", &signed_ref], DCT);
    assert!(out.status.success(), "signed push: {}", text(&out));
    let pushed = text(&out);
    assert!(pushed.contains("Successfully signed"), "{pushed}");
    let signed_digest = pushed_digest(&pushed);
    let plain_digest = pushed_digest(&owner.ok(&["push", &plain_ref]));

    click_through(&b, "nav a[href='/portal/repositories']");
    b.find("#repo-search").send_keys("portal");
    click_through(&b, "form[role=search] button");
    click_through(&b, "tr[data-repository='portal/app'] a");
    let signed_row = b.find("tr[data-tag='signed']");
    assert_eq!(signed_row.find("code.digest").text(), signed_digest);
    assert_eq!(signed_row.find(".signed-yes").text(), "Signed");
    assert_eq!(signed_row.find(".signers").text(), "Repo Admin");
    let plain_row = b.find("tr[data-tag='plain']");
    assert_eq!(plain_row.find("code.digest").text(), plain_digest);
    assert_eq!(plain_row.find(".signed-no").text(), "Not signed");
    assert_eq!(
        b.find("#pull-command").text(),
        format!("docker pull {}/portal/app:<tag>", server.host)
    );
    assert_eq!(b.find("#root-key code").text().len(), 64);
    assert_eq!(b.find("#repository-key code").text().len(), 64);
    b.screenshot("06-repository-signed-tag.png");

    // A delegated signer: a key for "alice" made with `docker trust key generate`, added
    // with `docker trust signer add`, then `docker trust sign` of the unsigned tag.
    let repo = format!("{}/portal/app", server.host);
    let keys = server.scratch("keys");
    for args in [
        vec![
            "trust",
            "key",
            "generate",
            "alice",
            "--dir",
            keys.to_str().unwrap(),
        ],
        vec![
            "trust",
            "signer",
            "add",
            "--key",
            keys.join("alice.pub").to_str().unwrap(),
            "alice",
            &repo,
        ],
        vec!["trust", "sign", &plain_ref],
    ] {
        let out = owner.cmd(&args, DCT);
        assert!(out.status.success(), "docker {args:?}: {}", text(&out));
    }
    let inspect = owner.cmd(&["trust", "inspect", &repo], DCT);
    let doc: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("inspect json");
    let alice_key = doc[0]["Signers"]
        .as_array()
        .expect("Signers")
        .iter()
        .find(|s| s["Name"] == "alice")
        .and_then(|s| s["Keys"][0]["ID"].as_str())
        .expect("alice's key in docker trust inspect")
        .to_owned();
    b.refresh();
    let plain_row = b.find("tr[data-tag='plain']");
    assert_eq!(plain_row.find(".signed-yes").text(), "Signed");
    assert!(
        plain_row.find(".signers").text().contains("alice"),
        "{}",
        plain_row.text()
    );
    let alice_row = b.find("#main tr[data-signer='alice']");
    assert_eq!(
        alice_row.find("code").attr("title").as_deref(),
        Some(alice_key.as_str()),
        "the key id docker shows for alice"
    );
    b.screenshot("06b-repository-delegated-signer.png");

    // Phone width: the page itself does not scroll sideways (tables scroll in place).
    b.set_window_size(390, 844);
    let overflow = b.execute(
        "return document.documentElement.scrollWidth - window.innerWidth;",
        &[],
    );
    assert!(
        overflow.as_i64().unwrap_or(999) <= 0,
        "page wider than a phone by {overflow}"
    );
    b.screenshot("07-repository-phone.png");
    b.set_window_size(1280, 900);

    // Per-repository trust reset (the lost-root-key path): confirmed, and only that one.
    let lost_ref = format!("{}/portal/lost:v1", server.host);
    owner.import_image(&lost_ref);
    let out = owner.cmd(&["push", &lost_ref], DCT);
    assert!(out.status.success(), "signed push: {}", text(&out));
    b.goto(&server.url("/portal/repositories/portal/lost"));
    assert_eq!(b.find("tr[data-tag='v1'] .signed-yes").text(), "Signed");
    click_through(&b, "a[href='/portal/trust-reset?repository=portal%2Flost']");
    let warning = b.find(".warning").text();
    assert!(
        warning.contains("deletes every signature, signer and registry-held key of portal/lost, permanently"),
        "{warning}"
    );
    b.screenshot("08-reset-confirmation.png");
    click_through(&b, "#reset-trust");
    assert_eq!(
        notice(&b),
        "Tick the box to confirm that this repository's trust data will be deleted."
    );
    b.find("#confirm-reset").click();
    click_through(&b, "#reset-trust");
    assert_eq!(
        notice(&b),
        "Trust data of portal/lost deleted; its images were kept."
    );
    b.find("#no-trust-data");
    b.find("tr[data-tag='v1'] .signed-no");
    b.goto(&server.url("/portal/repositories/portal/app"));
    assert_eq!(
        b.find("tr[data-tag='signed'] .signed-yes").text(),
        "Signed",
        "reset of one repository touched another"
    );

    // Disable: Save asks first and says plainly what will be lost.
    click_through(&b, "nav a[href='/portal/policies/content-trust']");
    b.find("#trust-disabled").click();
    click_through(&b, "#trust-save");
    let warning = b.find(".warning").text();
    assert!(
        warning.contains("permanently deletes ALL trust data of EVERY repository")
            && warning.contains("Images and tags are kept"),
        "{warning}"
    );
    b.screenshot("09-disable-confirmation.png");
    // Not ticking the box changes nothing.
    click_through(&b, "#confirm-disable");
    assert_eq!(
        notice(&b),
        "Tick the box to confirm that all trust data will be deleted, or Cancel."
    );
    b.goto(&server.url("/portal/repositories/portal/app"));
    assert_eq!(
        b.find("tr[data-tag='signed'] .signed-yes").text(),
        "Signed",
        "trust data gone without confirmation"
    );
    click_through(&b, "nav a[href='/portal/policies/content-trust']");
    b.find("#trust-disabled").click();
    click_through(&b, "#trust-save");
    b.find("#confirm-delete").click();
    click_through(&b, "#confirm-disable");
    assert_eq!(
        notice(&b),
        "Content trust disabled. Trust data of 1 repository was deleted; all images were kept."
    );
    assert_eq!(b.find("#trust-state").text(), "Disabled");
    b.screenshot("10-content-trust-disabled.png");
    b.goto(&server.url("/portal/repositories/portal/app"));
    b.find("#no-trust-data");
    assert_eq!(
        b.find("tr[data-tag='signed'] code.digest").text(),
        signed_digest,
        "image gone with its trust data"
    );
    owner.ok(&["pull", &signed_ref]);

    // Audit shows what happened, newest first.
    click_through(&b, "nav a[href='/portal/audit']");
    let audit = b.find("main table").text();
    for action in [
        "content-trust.disable",
        "content-trust.enable",
        "trust.reset",
        "role-assignment.create",
        "user.create",
    ] {
        assert!(audit.contains(action), "audit lacks {action}:\n{audit}");
    }
    b.screenshot("11-audit.png");

    // Every page fits a phone: nothing scrolls the page sideways at 390 px.
    b.set_window_size(390, 844);
    for page in [
        "/portal/repositories",
        "/portal/repositories/portal/app",
        "/portal/policies/content-trust",
        "/portal/trust-reset?repository=portal/app",
        "/portal/access",
        "/portal/audit",
    ] {
        b.goto(&server.url(page));
        let overflow = b.execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            &[],
        );
        assert!(
            overflow.as_i64().unwrap_or(999) <= 0,
            "{page} is wider than a phone by {overflow}"
        );
    }
    b.set_window_size(1280, 900);

    // A post without the session's CSRF token is refused and changes nothing.
    click_through(&b, "nav a[href='/portal/access']");
    b.execute(
        "document.querySelectorAll('form[action=\"/portal/access/create-user\"] input[name=csrf]').forEach(e => e.remove());",
        &[],
    );
    b.find("#user-name").send_keys("mallory");
    click_through(&b, "#user-submit");
    assert_eq!(
        notice(&b),
        "This form did not come from your Wharf session (missing or wrong CSRF token). Reload the page and try again."
    );
    assert!(!user_exists(&server, "mallory"), "CSRF-less post created a user");

    // Sign out: the session cookie stops working.
    click_through(&b, "form.signout button");
    b.find("#signin-name");
    b.goto(&server.url("/portal/access"));
    assert!(
        b.current_url().ends_with("/portal/sign-in"),
        "{}",
        b.current_url()
    );
}

#[test]
fn a_user_sees_only_what_their_roles_allow() {
    require_browser();
    let server = Server::start();
    let owner = DockerClient::new();
    let out = owner.wharf_login(&server, "admin", &server.admin_password);
    assert!(out.status.success(), "{}", text(&out));
    for repo in ["team/visible", "other/hidden"] {
        let r = format!("{}/{repo}:v1", server.host);
        owner.import_image(&r);
        owner.ok(&["push", &r]);
    }
    let admin = server.token(&["registry:admin:*"]);
    let http = server.http();
    let post = |path: &str, body: serde_json::Value| {
        let r = http
            .post(server.url(path))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .expect("admin api");
        assert!(
            r.status().is_success(),
            "{path}: {}",
            r.text().unwrap_or_default()
        );
    };
    post(
        "/api/v1/users",
        serde_json::json!({"name": "bob", "password": "bob-password-1"}),
    );
    post(
        "/api/v1/role-assignments",
        serde_json::json!({"role": "AcrPull", "assignee": "bob", "scope": "repository:team/*"}),
    );
    let robot: serde_json::Value = http
        .post(server.url("/api/v1/service-principals"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "robot"}))
        .send()
        .expect("create sp")
        .json()
        .expect("json");
    let robot_secret = robot["secret"].as_str().expect("secret").to_owned();

    let b = Browser::start();
    // The sign-in page fits a phone too.
    b.set_window_size(390, 844);
    b.goto(&server.url("/portal/sign-in"));
    let overflow = b.execute(
        "return document.documentElement.scrollWidth - window.innerWidth;",
        &[],
    );
    assert!(
        overflow.as_i64().unwrap_or(999) <= 0,
        "sign-in wider than a phone by {overflow}"
    );
    b.set_window_size(1280, 900);
    sign_in(&b, &server, "bob", "bob-password-1");
    // Only the Repositories section, and only readable repositories.
    let nav: Vec<String> = b
        .find_all("nav[aria-label=Main] a")
        .iter()
        .map(|a| a.text())
        .collect();
    assert_eq!(nav, vec!["Repositories".to_string(), "Account".to_string()]);
    let listed: Vec<String> = b
        .find_all("tr[data-repository]")
        .iter()
        .map(|r| r.attr("data-repository").unwrap_or_default())
        .collect();
    assert_eq!(listed, vec!["team/visible".to_string()]);
    b.screenshot("12-reader-repositories.png");
    // Unreadable and absent repositories look the same.
    b.goto(&server.url("/portal/repositories/other/hidden"));
    assert_eq!(
        notice(&b),
        "There is no repository named \"other/hidden\" that you can read."
    );
    // Administration pages are refused.
    for path in [
        "/portal/access",
        "/portal/policies/content-trust",
        "/portal/policies/signature",
        "/portal/audit",
    ] {
        b.goto(&server.url(path));
        assert_eq!(
            notice(&b),
            "Only owners of this registry can see or change this page.",
            "{path}"
        );
    }
    b.screenshot("13-reader-refused.png");

    // Account: bob changes his own password; a wrong current one or a mistyped
    // confirmation changes nothing.
    click_through(&b, "nav a[href='/portal/account']");
    let change = |current: &str, new: &str, confirm: &str| {
        b.find("#password-current").send_keys(current);
        b.find("#password-new").send_keys(new);
        b.find("#password-confirm").send_keys(confirm);
        click_through(&b, "#password-submit");
        notice(&b)
    };
    assert_eq!(
        change("not-bobs", "bob-password-2", "bob-password-2"),
        "invalid username or password"
    );
    assert_eq!(
        change("bob-password-1", "bob-password-2", "bob-password-3"),
        "The new password and its confirmation differ."
    );
    assert!(server.token_as("bob", "bob-password-1", &[]).is_ok());
    assert_eq!(
        change("bob-password-1", "bob-password-2", "bob-password-2"),
        "Password changed. Registry clients (docker, wharf) must log in again with it."
    );
    b.screenshot("13b-account-password-changed.png");
    assert_eq!(server.token_as("bob", "bob-password-1", &[]), Err(401));
    assert!(server.token_as("bob", "bob-password-2", &[]).is_ok());

    // Deleting the user ends their portal session at the next page load.
    let r = http
        .delete(server.url("/api/v1/users/bob"))
        .bearer_auth(&admin)
        .send()
        .expect("delete bob");
    assert_eq!(r.status(), 204);
    b.goto(&server.url("/portal/repositories"));
    assert!(
        b.current_url().ends_with("/portal/sign-in"),
        "deleted user still signed in: {}",
        b.current_url()
    );

    // Service principals are for registry clients, not the portal.
    b.find("#signin-name").send_keys("robot");
    b.find("#signin-password").send_keys(&robot_secret);
    click_through(&b, "form.card button[type=submit]");
    assert_eq!(
        notice(&b),
        "Only users can sign in to the portal; service principals, repository tokens and the admin account are for registry clients."
    );
    assert!(
        b.current_url().ends_with("/portal/sign-in"),
        "{}",
        b.current_url()
    );
}

fn listed(page: &str) -> Vec<String> {
    page.split(r#"data-repository=""#)
        .skip(1)
        .map(|s| s.split('"').next().unwrap_or_default().to_owned())
        .collect()
}

/// Paging, search and CSRF refusals, checked on the HTTP responses themselves.
#[test]
fn repository_pages_search_and_csrf_refusals_over_plain_http() {
    let server = Server::start();
    let mut repos: Vec<String> = (0..27).map(|i| format!("page/r{i:02}")).collect();
    repos.push("other/x".into());
    let scopes: Vec<String> = repos
        .iter()
        .map(|r| format!("repository:{r}:pull,push"))
        .collect();
    let token = server.token(&scopes.iter().map(String::as_str).collect::<Vec<_>>());
    let http = server.http();
    for r in &repos {
        common::push_tiny_image(&server, &http, &token, r, "v1", r);
    }

    let mut c = PortalClient::new(&server);
    id_reuse_does_not_pass_a_session_on(&server);
    // Sign-in without the double-submit cookie is refused.
    let (status, page) = c.post(
        "/portal/sign-in",
        &[("name", "admin"), ("password", &server.admin_password)],
    );
    assert_eq!(status, 403);
    assert!(page.contains("did not come from Wharf or has expired"), "{page}");
    assert!(!c.cookies.contains_key("__Host-wharf_session"));
    let (_, page) = c.get("/portal/sign-in");
    let signin_csrf = csrf_of(&page);
    let (status, _) = c.post(
        "/portal/sign-in",
        &[
            ("csrf", &signin_csrf),
            ("name", "admin"),
            ("password", &server.admin_password),
        ],
    );
    assert_eq!(status, 303);

    // 25 per page, in name order, then the rest; `last` is the cursor.
    let (status, first) = c.get("/portal/repositories?q=page%2F");
    assert_eq!(status, 200);
    assert_eq!(listed(&first), repos[..25].to_vec());
    assert!(
        first.contains(r#"href="/portal/repositories?q=page%2F&amp;last=page%2Fr24" rel="next""#),
        "{first}"
    );
    let (_, second) = c.get("/portal/repositories?q=page%2F&last=page%2Fr24");
    assert_eq!(listed(&second), repos[25..27].to_vec());
    assert!(!second.contains(r#"rel="next""#));
    assert!(second.contains("First page"));
    // Search is a plain substring; markup in it comes back as text.
    let (_, found) = c.get("/portal/repositories?q=r2");
    assert_eq!(
        listed(&found),
        (20..27).map(|i| format!("page/r{i}")).collect::<Vec<_>>()
    );
    let (status, hostile) = c.get("/portal/repositories?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert_eq!(status, 200);
    assert!(!hostile.contains("<script>") && hostile.contains("&lt;script&gt;"));

    // Posts without the session's CSRF token, or with a wrong one, change nothing.
    let (_, access) = c.get("/portal/access");
    let csrf = csrf_of(&access);
    for form in [
        vec![("name", "mallory")],
        vec![("name", "mallory"), ("csrf", "forged")],
    ] {
        let (status, page) = c.post("/portal/access/create-user", &form);
        assert_eq!(status, 403);
        assert!(page.contains("missing or wrong CSRF token"), "{page}");
    }
    let (status, _) = c.post("/portal/policies/content-trust", &[("enabled", "true")]);
    assert_eq!(status, 403);
    let (_, policy) = c.get("/portal/policies/content-trust");
    assert!(policy.contains(r#"<strong id="trust-state">Disabled</strong>"#));
    let (_, users) = c.get("/portal/access");
    assert!(!users.contains("mallory"));
    // With the token the same post works (so the refusals above were about CSRF only).
    let (status, page) = c.post(
        "/portal/access/create-user",
        &[("name", "mallory"), ("csrf", &csrf)],
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("User mallory created."));
    // Deleting images: a tag (the manifest stays reachable by digest), then a whole
    // repository through its confirmation; both from the repository page.
    let tags_of = |repo: &str| {
        server
            .http()
            .get(server.url(&format!("/v2/{repo}/tags/list")))
            .bearer_auth(server.token(&[&format!("repository:{repo}:pull")]))
            .send()
            .expect("tags")
    };
    let (_, repo_page) = c.get("/portal/repositories/page/r00");
    assert!(repo_page.contains("Delete tag") && repo_page.contains(r#"id="delete-repository""#));
    let (status, page) = c.post(
        "/portal/delete-tag",
        &[("csrf", &csrf), ("repository", "page/r00"), ("tag", "v1")],
    );
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Tag v1 deleted; its manifest stays reachable by digest."),
        "{page}"
    );
    let listed_tags: serde_json::Value = tags_of("page/r00").json().expect("json");
    assert_eq!(listed_tags["tags"], serde_json::json!([]));
    let (status, _) = c.get("/portal/delete-repository?repository=page%2Fr01");
    assert_eq!(status, 200);
    let (status, page) = c.post(
        "/portal/delete-repository",
        &[("csrf", &csrf), ("repository", "page/r01")],
    );
    assert_eq!(status, 400);
    assert!(page.contains("Tick the box to confirm that every tag and manifest will be deleted."));
    assert_eq!(
        tags_of("page/r01").status(),
        200,
        "an unconfirmed delete changes nothing"
    );
    let (status, page) = c.post(
        "/portal/delete-repository",
        &[
            ("csrf", &csrf),
            ("repository", "page/r01"),
            ("confirm", "delete-repository"),
        ],
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Repository page/r01 deleted."), "{page}");
    let gone = tags_of("page/r01");
    assert_eq!(gone.status(), 404);
    assert!(gone.text().unwrap_or_default().contains("NAME_UNKNOWN"));
    // A reader sees no delete buttons and is refused when posting anyway.
    let admin_token = server.token(&["registry:admin:*"]);
    for (path, body) in [
        (
            "/api/v1/users",
            serde_json::json!({"name": "reader1", "password": "reader1-password"}),
        ),
        (
            "/api/v1/role-assignments",
            serde_json::json!({"role": "AcrPull", "assignee": "reader1", "scope": "repository:page/*"}),
        ),
    ] {
        let r = server
            .http()
            .post(server.url(path))
            .bearer_auth(&admin_token)
            .json(&body)
            .send()
            .expect("admin api");
        assert!(r.status().is_success(), "{path}");
    }
    let mut reader = PortalClient::new(&server);
    assert_eq!(reader.sign_in("reader1", "reader1-password"), 303);
    let (_, reader_page) = reader.get("/portal/repositories/page/r02");
    assert!(reader_page.contains("page/r02") && !reader_page.contains("Delete tag"));
    let reader_csrf = csrf_of(&reader_page);
    let (status, page) = reader.post(
        "/portal/delete-tag",
        &[("csrf", &reader_csrf), ("repository", "page/r02"), ("tag", "v1")],
    );
    assert_eq!(status, 403);
    assert!(page.contains("You may not delete images of page/r02."), "{page}");
    let kept: serde_json::Value = tags_of("page/r02").json().expect("json");
    assert_eq!(kept["tags"], serde_json::json!(["v1"]));

    // Pages forbid scripts and framing.
    let r = c
        .http
        .get(server.url("/portal/access"))
        .header("cookie", c.cookie_header())
        .send()
        .expect("get");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    // Signed out, the old cookie is worthless.
    let old_session = c.cookies["__Host-wharf_session"].clone();
    let (status, _) = c.post("/portal/sign-out", &[("csrf", &csrf)]);
    assert_eq!(status, 303);
    c.cookies.insert("__Host-wharf_session".into(), old_session);
    let (status, _) = c.get("/portal/access");
    assert_eq!(status, 303);
}

/// SQLite gives a deleted principal's id to the next one created: a session of the
/// deleted user must not become the new user's.
fn id_reuse_does_not_pass_a_session_on(server: &Server) {
    let admin = server.token(&["registry:admin:*"]);
    let http = server.http();
    let user = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let mut r = http.request(method, server.url(path)).bearer_auth(&admin);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().expect("admin api");
        assert!(r.status().is_success(), "{path}: {}", r.status());
    };
    user(
        reqwest::Method::POST,
        "/api/v1/users",
        Some(serde_json::json!({"name": "temp", "password": "temp-password-1"})),
    );
    let mut c = PortalClient::new(server);
    assert_eq!(c.sign_in("temp", "temp-password-1"), 303);
    assert_eq!(c.get("/portal/repositories").0, 200);
    user(reqwest::Method::DELETE, "/api/v1/users/temp", None);
    user(
        reqwest::Method::POST,
        "/api/v1/users",
        Some(serde_json::json!({"name": "successor", "password": "successor-password-1"})),
    );
    let (status, _) = c.get("/portal/repositories");
    assert_eq!(status, 303, "the deleted user's session still works");
}

/// Policies → Signature policy: an owner adds, edits, changes and removes rules, each
/// post stored through the service with the version the page showed (a stale page gets
/// the conflict, not a silent overwrite); bad input shows the API's message and keeps
/// what was typed; a non-owner neither sees nor posts it.
#[test]
fn owners_set_the_signature_policy_and_others_are_refused() {
    use serde_json::json;
    require_browser();
    let server = Server::start();
    let b = Browser::start();
    sign_in(&b, &server, "admin", &server.admin_password);
    click_through(&b, "nav a[href='/portal/policies/content-trust']");
    click_through(&b, "nav.subnav a[href='/portal/policies/signature']");
    assert_eq!(b.find("#policy-version").text(), "0");
    assert!(
        b.find("main")
            .text()
            .contains("No rules: every manifest is served, signed or not.")
    );
    assert_eq!(b.find("#rule-mode").prop("value"), json!("audit"));
    assert_eq!(b.find("#rule-publishers").prop("checked"), json!(true));

    // An enforce rule accepting DCT for everything under team/.
    b.find("#rule-scope").send_keys("repository:team/*");
    b.find("#rule-mode option[value='enforce']").click();
    b.find("#rule-dct").click();
    click_through(&b, "#rule-submit");
    assert_eq!(
        notice(&b),
        "Added the rule for repository:team/*: enforce (policy version 1)."
    );
    let team = json!({ "scope": "repository:team/*", "mode": "enforce", "dct": {} });
    assert_eq!(
        common::signature_policy(&server),
        json!({ "version": 1, "rules": [team] })
    );
    assert_eq!(b.find("#policy-version").text(), "1");
    let row = b.find("tr[data-scope='repository:team/*']");
    assert_eq!(row.find("td[data-label=Mode]").text(), "enforce");
    assert_eq!(
        row.find("td[data-label='Accepted signatures']").text(),
        "Docker Content Trust"
    );
    assert_eq!(row.find("td[data-label=Publishers]").text(), "may read unsigned");
    b.screenshot("20-signature-policy.png");

    // Refusals: the API's message on the page, what was typed kept, nothing stored.
    b.find("#rule-scope").send_keys("repository:Team");
    b.find("#rule-roles").send_keys("targets/releases");
    click_through(&b, "#rule-submit");
    assert_eq!(
        notice(&b),
        "rule 1: scope \"repository:Team\" must be registry, repository:<name> or repository:<prefix>/*"
    );
    assert_eq!(b.find("#rule-scope").prop("value"), json!("repository:Team"));
    assert_eq!(b.find("#rule-roles").prop("value"), json!("targets/releases"));
    b.find("#rule-scope").clear();
    b.find("#rule-scope").send_keys("registry");
    b.find("#rule-roles").clear();
    b.find("#rule-cosign").send_keys("ci");
    click_through(&b, "#rule-submit");
    assert_eq!(notice(&b), "cosign public keys: \"ci\" has no PEM block");
    // A key goes to the service as typed, and its refusal names the rule.
    b.find("#rule-cosign")
        .send_keys("\n-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n");
    click_through(&b, "#rule-submit");
    let refused = notice(&b);
    assert!(refused.starts_with("rule 1 (registry): cosign"), "{refused}");
    assert_eq!(
        b.find("#rule-cosign").prop("value"),
        json!("ci\n-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    );
    b.screenshot("21-signature-policy-refused.png");
    assert_eq!(common::signature_policy(&server)["version"], 1);

    // The row's mode change.
    b.find("tr[data-scope='repository:team/*'] select option[value='audit']")
        .click();
    click_through(&b, "tr[data-scope='repository:team/*'] button.change-mode");
    assert_eq!(
        notice(&b),
        "The rule for repository:team/* is now audit (policy version 2)."
    );
    assert_eq!(common::signature_policy(&server)["rules"][0]["mode"], "audit");

    // Edit starts from the rule's settings; saving replaces it in place.
    click_through(&b, "tr[data-scope='repository:team/*'] a.edit");
    assert_eq!(b.find("#rule-scope").prop("value"), json!("repository:team/*"));
    assert_eq!(b.find("#rule-mode").prop("value"), json!("audit"));
    assert_eq!(b.find("#rule-dct").prop("checked"), json!(true));
    b.screenshot("22-signature-policy-edit.png");
    b.find("#rule-mode option[value='enforce']").click();
    b.find("#rule-publishers").click();
    click_through(&b, "#rule-submit");
    assert_eq!(
        notice(&b),
        "Replaced the rule for repository:team/*: enforce (policy version 3)."
    );
    let strict = json!({ "scope": "repository:team/*", "mode": "enforce", "dct": {}, "publishers_read_unsigned": false });
    assert_eq!(
        common::signature_policy(&server),
        json!({ "version": 3, "rules": [strict] })
    );
    assert_eq!(
        b.find("tr[data-scope='repository:team/*'] td[data-label=Publishers]")
            .text(),
        "checked like every client"
    );

    // Another owner changes the policy while this page (version 3) is open: its Remove is
    // refused with the conflict and the page shows the policy as it is now.
    let r = server
        .http()
        .put(server.url("/api/v1/signature-policy"))
        .bearer_auth(server.token(&["registry:admin:*"]))
        .json(&json!({ "version": 3, "rules": [strict, { "scope": "registry", "mode": "off" }] }))
        .send()
        .expect("put policy");
    assert_eq!(r.status(), 200);
    click_through(&b, "tr[data-scope='repository:team/*'] button.danger");
    assert_eq!(
        notice(&b),
        "the signature policy changed since version 3 was read (it is now version 4); read it again and reapply the change"
    );
    assert_eq!(b.find("#policy-version").text(), "4");
    b.find("tr[data-scope='registry']");
    assert_eq!(common::signature_policy(&server)["rules"][0], strict);
    click_through(&b, "tr[data-scope='repository:team/*'] button.danger");
    assert_eq!(
        notice(&b),
        "Removed the rule for repository:team/* (policy version 5)."
    );
    assert_eq!(
        common::signature_policy(&server),
        json!({ "version": 5, "rules": [{ "scope": "registry", "mode": "off" }] })
    );
    // A cosign key pasted into the form (Edit on the rule the other owner added) is
    // stored as the file holds it, and changing the rule's mode keeps it as it was.
    let key = std::fs::read_to_string(common::repo_root().join("testdata/cosign/signer.pub")).unwrap();
    click_through(&b, "tr[data-scope='registry'] a.edit");
    b.find("#rule-mode option[value='audit']").click();
    b.find("#rule-cosign").send_keys(&format!("signer\n{key}"));
    click_through(&b, "#rule-submit");
    assert_eq!(
        notice(&b),
        "Replaced the rule for registry: audit (policy version 6)."
    );
    let registry = json!({ "scope": "registry", "mode": "audit",
        "cosign": { "keys": [{ "name": "signer", "public_key": key }] } });
    assert_eq!(
        common::signature_policy(&server),
        json!({ "version": 6, "rules": [registry] })
    );
    let accepted = b.find("tr[data-scope='registry'] td[data-label='Accepted signatures']");
    assert_eq!(accepted.text(), "cosign, keys:\nsigner");
    b.find("tr[data-scope='registry'] details summary").click();
    assert!(
        accepted.text().contains("-----BEGIN PUBLIC KEY-----"),
        "{}",
        accepted.text()
    );
    b.find("tr[data-scope='registry'] select option[value='enforce']")
        .click();
    click_through(&b, "tr[data-scope='registry'] button.change-mode");
    assert_eq!(
        notice(&b),
        "The rule for registry is now enforce (policy version 7)."
    );
    let mut registry = registry;
    registry["mode"] = json!("enforce");
    assert_eq!(
        common::signature_policy(&server),
        json!({ "version": 7, "rules": [registry] })
    );

    // It fits a phone.
    b.set_window_size(390, 844);
    b.goto(&server.url("/portal/policies/signature"));
    let overflow = b.execute(
        "return document.documentElement.scrollWidth - window.innerWidth;",
        &[],
    );
    assert!(
        overflow.as_i64().unwrap_or(999) <= 0,
        "signature policy page wider than a phone by {overflow}"
    );
    b.screenshot("23-signature-policy-phone.png");

    // A signed-in user who is not an owner neither sees the page nor posts to it, even
    // with their own session's CSRF token.
    let admin = server.token(&["registry:admin:*"]);
    for (path, body) in [
        (
            "/api/v1/users",
            json!({"name": "bob", "password": "bob-password-1"}),
        ),
        (
            "/api/v1/role-assignments",
            json!({"role": "AcrPush", "assignee": "bob", "scope": "repository:team/*"}),
        ),
    ] {
        let r = server
            .http()
            .post(server.url(path))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .expect("admin api");
        assert!(r.status().is_success(), "{path}");
    }
    let mut bob = PortalClient::new(&server);
    assert_eq!(bob.sign_in("bob", "bob-password-1"), 303);
    let (status, page) = bob.get("/portal/policies/signature");
    assert_eq!(status, 403);
    assert!(
        page.contains("Only owners of this registry can see or change this page.")
            && !page.contains("registry</code>")
            && !page.contains("rule-form"),
        "{page}"
    );
    let (_, own) = bob.get("/portal/repositories");
    let csrf = csrf_of(&own);
    for form in [
        vec![
            ("csrf", csrf.as_str()),
            ("op", "remove"),
            ("version", "7"),
            ("scope", "registry"),
        ],
        vec![
            ("csrf", csrf.as_str()),
            ("op", "set"),
            ("version", "7"),
            ("scope", "registry"),
            ("mode", "off"),
        ],
    ] {
        let (status, page) = bob.post("/portal/policies/signature", &form);
        assert_eq!(status, 403);
        assert!(
            page.contains("Only owners of this registry can see or change this page."),
            "{page}"
        );
    }
    assert_eq!(common::signature_policy(&server)["version"], 7);
}

/// Storage → Garbage collection: the owner previews (the page lists what would go and
/// nothing changes), then collects, and the page shows the last run; a signed-in user
/// who is not an owner neither sees the page nor starts a run.
#[test]
fn owners_collect_garbage_from_the_portal_and_others_are_refused() {
    use serde_json::json;
    require_browser();
    let server = Server::start_with(&[
        ("WHARF_GC_ALLOW_SHORT_GRACE", "true"),
        ("WHARF_GC_GRACE_SECONDS", "2"),
    ]);
    let owner = server.token(&["registry:admin:*"]);
    let gc_dry_run = || -> serde_json::Value {
        server
            .http()
            .post(server.url("/api/v1/gc"))
            .bearer_auth(&owner)
            .json(&json!({"dry_run": true}))
            .send()
            .expect("dry run")
            .json()
            .expect("report")
    };
    // Two blobs no manifest references.
    let token = server.token(&["repository:junk/app:pull,push"]);
    let http = server.http();
    let junk: Vec<String> = ["first unreferenced blob", "second"]
        .iter()
        .map(|b| common::upload_blob(&server, &http, &token, "junk/app", b.as_bytes()))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(3200));

    let b = Browser::start();
    sign_in(&b, &server, "admin", &server.admin_password);
    click_through(&b, "nav a[href='/portal/storage/gc']");
    assert_eq!(b.find("#gc-state").text(), "No collection is running.");
    assert_eq!(b.find("#gc-grace").text(), "2");
    click_through(&b, "form:has(input[value='dry-run']) button");
    assert_eq!(
        b.find("#gc-preview-summary").text(),
        "A collection now would remove 2 blob links and 2 blobs, freeing 29 B. Nothing was changed."
    );
    let listed = b.find("main").text();
    for digest in &junk {
        assert!(listed.contains(digest.as_str()), "{digest} not listed: {listed}");
    }
    b.screenshot("30-gc-dry-run.png");
    let before = gc_dry_run();
    assert_eq!(
        (before["links_removed"].as_u64(), before["blobs_removed"].as_u64()),
        (Some(2), Some(2))
    );

    click_through(&b, "form:has(input[value='run']) button");
    // A run this small finishes while the page waits for it.
    assert_eq!(
        notice(&b),
        "Garbage collection finished: 2 blob links and 2 blobs removed, 29 B freed."
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while b
        .find("main")
        .text()
        .contains("None on this replica since it started")
    {
        assert!(std::time::Instant::now() < deadline, "the run never finished");
        std::thread::sleep(std::time::Duration::from_millis(200));
        click_through(&b, "a[href='/portal/storage/gc']:not(nav a)");
    }
    let last = b.find("#gc-last-run").text();
    for fact in [
        "Started by\nadmin",
        "Blob links removed\n2",
        "Blobs removed\n2",
        "Freed\n29 B",
    ] {
        assert!(last.contains(fact), "{fact:?} not in {last:?}");
    }
    b.screenshot("31-gc-last-run.png");
    let after = gc_dry_run();
    assert_eq!(
        (after["links_removed"].as_u64(), after["blobs_removed"].as_u64()),
        (Some(0), Some(0))
    );

    // Not an owner: no page, no run.
    let r = server
        .http()
        .post(server.url("/api/v1/users"))
        .bearer_auth(&owner)
        .json(&json!({"name": "bob", "password": "bob-password-1"}))
        .send()
        .expect("create bob");
    assert!(r.status().is_success());
    let mut bob = PortalClient::new(&server);
    assert_eq!(bob.sign_in("bob", "bob-password-1"), 303);
    let (status, page) = bob.get("/portal/storage/gc");
    assert_eq!(status, 403);
    assert!(
        page.contains("Only owners of this registry can see or change this page.")
            && !page.contains("gc-state"),
        "{page}"
    );
    let (_, own) = bob.get("/portal/repositories");
    assert!(
        !own.contains("/portal/storage/gc"),
        "the navigation offers Storage to a non-owner"
    );
    let csrf = csrf_of(&own);
    let (status, _) = bob.post("/portal/storage/gc", &[("csrf", csrf.as_str()), ("op", "run")]);
    assert_eq!(status, 403);
    let runs: Vec<(String, String)> = common::audit_records(&server)
        .into_iter()
        .filter(|(_, action, _, _)| action == "gc.run")
        .map(|(actor, _, _, detail)| (actor, detail))
        .collect();
    assert_eq!(runs.len(), 1, "exactly the owner's run is audited: {runs:?}");
    assert_eq!(runs[0].0, "admin");
    assert!(
        runs[0]
            .1
            .contains("; links removed 2, blobs removed 2, bytes freed 29,"),
        "{runs:?}"
    );
}

/// Locks from the repository page: an owner locks a tag (a badge shows it), the portal's
/// own delete is then refused with the lock named and the tag stays; a user who may push
/// and delete cannot lock; unlocking lets the delete through.
#[test]
fn owners_lock_and_unlock_tags_from_the_repository_page() {
    let server = Server::start();
    let token = server.token(&["repository:lock/app:pull,push"]);
    common::push_tiny_image(&server, &server.http(), &token, "lock/app", "v1", "lock");
    let tags_of = || -> serde_json::Value {
        server
            .http()
            .get(server.url("/v2/lock/app/tags/list"))
            .bearer_auth(server.token(&["repository:lock/app:pull"]))
            .send()
            .expect("tags")
            .json()
            .expect("json")
    };
    let mut c = PortalClient::new(&server);
    assert_eq!(c.sign_in("admin", &server.admin_password), 303);
    let (status, page) = c.get("/portal/repositories/lock/app");
    assert_eq!(status, 200);
    assert!(page.contains(r#"<p id="repository-lock">Not locked."#), "{page}");
    let csrf = csrf_of(&page);
    let lock = [
        ("csrf", csrf.as_str()),
        ("repository", "lock/app"),
        ("tag", "v1"),
        ("action", "lock"),
    ];
    let (status, page) = c.post("/portal/lock", &lock);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("lock/app:v1 locked against deletion and writes."),
        "{page}"
    );
    assert!(page.contains("Locked: deletion, writes"), "{page}");

    let delete = [("csrf", csrf.as_str()), ("repository", "lock/app"), ("tag", "v1")];
    let (status, page) = c.post("/portal/delete-tag", &delete);
    assert_eq!(status, 403, "{page}");
    assert!(
        page.contains(
            "is locked against deletion and writes (unlock it with: wharf repository unlock lock/app:v1)"
        ),
        "{page}"
    );
    assert_eq!(tags_of()["tags"], serde_json::json!(["v1"]));

    // A user with push and delete is not an owner: refused, nothing changed.
    let admin_token = server.token(&["registry:admin:*"]);
    for (path, body) in [
        (
            "/api/v1/users",
            serde_json::json!({"name": "deleter", "password": "deleter-password-1"}),
        ),
        (
            "/api/v1/role-assignments",
            serde_json::json!({"role": "AcrDelete", "assignee": "deleter", "scope": "repository:lock/app"}),
        ),
        (
            "/api/v1/role-assignments",
            serde_json::json!({"role": "AcrPush", "assignee": "deleter", "scope": "repository:lock/app"}),
        ),
    ] {
        let r = server
            .http()
            .post(server.url(path))
            .bearer_auth(&admin_token)
            .json(&body)
            .send()
            .expect("admin api");
        assert!(r.status().is_success(), "{path}");
    }
    let mut deleter = PortalClient::new(&server);
    assert_eq!(deleter.sign_in("deleter", "deleter-password-1"), 303);
    let (_, page) = deleter.get("/portal/repositories/lock/app");
    assert!(
        page.contains("Locked: deletion, writes") && !page.contains(r#"value="unlock""#),
        "{page}"
    );
    let deleter_csrf = csrf_of(&page);
    let (status, page) = deleter.post(
        "/portal/lock",
        &[
            ("csrf", &deleter_csrf),
            ("repository", "lock/app"),
            ("tag", "v1"),
            ("action", "unlock"),
        ],
    );
    assert_eq!(status, 403);
    assert!(
        page.contains("Only owners of this registry can see or change this page."),
        "{page}"
    );
    let (status, _) = deleter.post(
        "/portal/delete-tag",
        &[("csrf", &deleter_csrf), ("repository", "lock/app"), ("tag", "v1")],
    );
    assert_eq!(status, 403);
    assert_eq!(tags_of()["tags"], serde_json::json!(["v1"]));

    let unlock = [
        ("csrf", csrf.as_str()),
        ("repository", "lock/app"),
        ("tag", "v1"),
        ("action", "unlock"),
    ];
    let (status, page) = c.post("/portal/lock", &unlock);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("lock/app:v1 unlocked."), "{page}");
    assert!(!page.contains("Locked: "), "{page}");
    let (status, page) = c.post("/portal/delete-tag", &delete);
    assert_eq!(status, 200, "{page}");
    assert_eq!(tags_of()["tags"], serde_json::json!([]));
    let locked: Vec<_> = common::audit_records(&server)
        .into_iter()
        .filter(|r| r.1 == "repository.lock")
        .map(|r| (r.0, r.2))
        .collect();
    let by_admin = ("admin".to_owned(), "lock/app:v1".to_owned());
    assert_eq!(locked, [by_admin.clone(), by_admin]);
}
