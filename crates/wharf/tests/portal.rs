//! The web portal in a real browser (headless chromium through chromedriver) against a
//! real Wharf, with real `docker` pushes: sign in, enable content trust, grant
//! AcrImageSigner, see a tag signed by `docker push` with content trust, disable content
//! trust through its confirmation, and the refusals (bad input, CSRF-less posts, a user
//! without owner rights). Screenshots of each page go to `<target>/portal-screenshots/`.

mod common;

use common::browser::{Browser, require_browser};
use common::{DockerClient, Server, pushed_digest};

const DCT: &[(&str, &str)] = &[
    ("DOCKER_CONTENT_TRUST", "1"),
    ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123"),
    ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123"),
];

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

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

    // Access control: a user, and AcrImageSigner for them on one repository.
    click_through(&b, "nav a[href='/portal/access']");
    b.find("#user-name").send_keys("alice");
    b.find("#user-password").send_keys("alice-password-1");
    click_through(&b, "#user-submit");
    assert_eq!(notice(&b), "User alice created.");
    b.find("#users tr[data-principal='alice']");

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
    post("/api/v1/service-principals", serde_json::json!({"name": "robot"}));

    let b = Browser::start();
    sign_in(&b, &server, "bob", "bob-password-1");
    // Only the Repositories section, and only readable repositories.
    let nav: Vec<String> = b
        .find_all("nav[aria-label=Main] a")
        .iter()
        .map(|a| a.text())
        .collect();
    assert_eq!(nav, vec!["Repositories".to_string()]);
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

    // Service principals are for registry clients, not the portal.
    click_through(&b, "form.signout button");
    b.find("#signin-name").send_keys("robot");
    b.find("#signin-password").send_keys("not-the-secret");
    click_through(&b, "form.card button[type=submit]");
    assert_eq!(notice(&b), "invalid username or password");
}
