//! Passwords against a real server: a user changes their own (the current one is
//! checked, throttled like a login, and every earlier login stops working); an owner
//! resets a user's (set or generated, shown once); weak passwords and callers who must
//! not are refused with the exact reason, changing nothing.

mod common;

use common::Server;

fn create_user(server: &Server, name: &str, password: &str) {
    let r = server
        .http()
        .post(server.url("/api/v1/users"))
        .bearer_auth(server.token(&["registry:admin:*"]))
        .json(&serde_json::json!({ "name": name, "password": password }))
        .send()
        .expect("create");
    assert_eq!(r.status(), 201);
}

fn change_own(server: &Server, token: &str, current: &str, new: &str) -> (u16, String) {
    let r = server
        .http()
        .post(server.url("/api/v1/account/password"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "current_password": current, "new_password": new }))
        .send()
        .expect("change");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

fn message(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{body}"));
    format!(
        "{} {}",
        v["errors"][0]["code"].as_str().unwrap_or_default(),
        v["errors"][0]["message"].as_str().unwrap_or_default()
    )
}

#[test]
fn users_change_their_own_password_and_owners_reset_others() {
    let server = Server::start();
    create_user(&server, "alice", "alice-password-1");
    let token = server.token_as("alice", "alice-password-1", &[]).expect("token");

    // Wrong current password, weak new one: refused with the reason, nothing changes.
    let (status, body) = change_own(&server, &token, "not-her-password", "alice-password-2");
    assert_eq!(
        (status, message(&body).as_str()),
        (401, "UNAUTHORIZED invalid username or password")
    );
    let (status, body) = change_own(&server, &token, "alice-password-1", "short");
    assert_eq!(
        (status, message(&body).as_str()),
        (400, "PASSWORD_INVALID password must be at least 8 characters")
    );
    assert!(server.token_as("alice", "alice-password-1", &[]).is_ok());
    // Without a login at all.
    let r = server
        .http()
        .post(server.url("/api/v1/account/password"))
        .json(&serde_json::json!({ "current_password": "x", "new_password": "y" }))
        .send()
        .expect("anonymous");
    assert_eq!(r.status(), 401);

    // The change: the old password and the token used for it stop working.
    let (status, body) = change_own(&server, &token, "alice-password-1", "alice-password-2");
    assert_eq!(status, 204, "{body}");
    assert_eq!(server.token_as("alice", "alice-password-1", &[]), Err(401));
    let fresh = server
        .token_as("alice", "alice-password-2", &[])
        .expect("new password works");
    let r = server
        .http()
        .get(server.url("/v2/"))
        .bearer_auth(&token)
        .send()
        .expect("ping");
    assert_eq!(r.status(), 401, "a token from before the change is revoked");
    let r = server
        .http()
        .get(server.url("/v2/"))
        .bearer_auth(&fresh)
        .send()
        .expect("ping");
    assert_eq!(r.status(), 200);

    // An owner resets it: generated and shown once, or chosen; weak ones refused.
    let owner = server.token(&["registry:admin:*"]);
    let reset = |body: Option<serde_json::Value>| {
        let mut req = server
            .http()
            .put(server.url("/api/v1/users/alice/password"))
            .bearer_auth(&owner);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().expect("reset");
        (r.status().as_u16(), r.text().unwrap_or_default())
    };
    let (status, body) = reset(None);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let generated = v["password"].as_str().expect("generated password").to_owned();
    assert_eq!(server.token_as("alice", "alice-password-2", &[]), Err(401));
    assert!(server.token_as("alice", &generated, &[]).is_ok());
    let (status, body) = reset(Some(serde_json::json!({ "password": "tiny" })));
    assert_eq!(
        (status, message(&body).as_str()),
        (400, "PASSWORD_INVALID password must be at least 8 characters")
    );
    assert!(server.token_as("alice", &generated, &[]).is_ok());
    let (status, body) = reset(Some(serde_json::json!({ "password": "chosen-password-3" })));
    assert_eq!(status, 200, "{body}");
    assert!(serde_json::from_str::<serde_json::Value>(&body).expect("json")["password"].is_null());
    assert!(server.token_as("alice", "chosen-password-3", &[]).is_ok());

    // Not an owner: alice cannot reset anyone's, not even her own this way.
    let hers = server
        .token_as("alice", "chosen-password-3", &["registry:admin:*"])
        .expect("token");
    let r = server
        .http()
        .put(server.url("/api/v1/users/admin/password"))
        .bearer_auth(&hers)
        .send()
        .expect("reset as alice");
    assert_eq!(r.status(), 401);
    assert!(server.token_as("admin", &server.admin_password, &[]).is_ok());
    // Unknown users are named.
    let r = server
        .http()
        .put(server.url("/api/v1/users/nobody/password"))
        .bearer_auth(&owner)
        .send()
        .expect("unknown");
    assert_eq!(r.status(), 404);

    // Both kinds of change are audited, with who did them.
    let audit: serde_json::Value = server
        .http()
        .get(server.url("/api/v1/audit"))
        .bearer_auth(&owner)
        .send()
        .expect("audit")
        .json()
        .expect("json");
    let actions: Vec<(String, String)> = audit["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter(|r| r["action"].as_str().unwrap_or_default().contains("password"))
        .map(|r| {
            (
                r["actor"].as_str().unwrap_or_default().to_owned(),
                r["action"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("admin".to_owned(), "user.reset-password".to_owned()),
            ("admin".to_owned(), "user.reset-password".to_owned()),
            ("alice".to_owned(), "user.change-password".to_owned()),
        ]
    );
}
