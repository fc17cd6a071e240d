//! `docker trust` delegation life cycle with the stock docker 28 CLI against a real Wharf:
//! `trust key generate`, `trust signer add`, `trust sign` as the delegated
//! signer, `trust inspect`, `trust revoke`, `trust signer remove` — each checked by what the
//! docker CLI then sees (inspect output, trusted pulls) and by the trust data Wharf serves.
//! Expected client behaviour: `shared/specs/notary-server.md` §4.5 and
//! `shared/fixtures/notary/cli-output/seqD.out`.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::{
    DockerClient, Server, create_user, logged_in as login, pushed_digest, signed_tags, text, wharf_cli,
};

const DCT: &[(&str, &str)] = &[
    ("DOCKER_CONTENT_TRUST", "1"),
    ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123"),
    // docker 28 uses this one for targets, snapshot and every other non-root key
    // (delegation keys such as `alice`, also when generating or loading them).
    ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123"),
];

/// Run docker with content trust, assert success, return stdout+stderr.
fn dct_ok(client: &DockerClient, args: &[&str]) -> String {
    let out = client.cmd(args, DCT);
    let t = text(&out);
    assert!(out.status.success(), "docker {args:?} failed:\n{t}");
    t
}

/// `wharf ARGS` with `client`'s Docker config (its stored login), `stdin` piped in.
fn wharf(client: &DockerClient, args: &[&str], stdin: &str) -> Output {
    let out = wharf_cli(client.config.path(), args, stdin);
    assert!(out.status.success(), "wharf {args:?} failed: {}", text(&out));
    out
}

/// `docker trust inspect REPO` as JSON (one repository).
fn inspect(client: &DockerClient, repo: &str) -> serde_json::Value {
    let out = client.cmd(&["trust", "inspect", repo], DCT);
    assert!(out.status.success(), "trust inspect:\n{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("inspect output is not JSON ({e}):\n{}", text(&out)));
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    v[0].clone()
}

fn signer_names(doc: &serde_json::Value) -> Vec<String> {
    doc["Signers"]
        .as_array()
        .expect("Signers")
        .iter()
        .map(|s| s["Name"].as_str().unwrap().to_owned())
        .collect()
}

fn only_file(dir: &PathBuf) -> PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn delegated_signer_signs_inspects_revokes_and_is_removed() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = login(&server, "admin", &server.admin_password);
    let alice_password = "alice-password-1";
    create_user(
        owner.config.path(),
        "alice",
        alice_password,
        &[("AcrPush", "registry"), ("AcrImageSigner", "repository:team/*")],
    );
    let repo = format!("{}/team/deleg", server.host);
    let (v1, v2, v3) = (format!("{repo}:v1"), format!("{repo}:v2"), format!("{repo}:v3"));

    // The owner initialises the repository with a signed push (root + targets keys).
    owner.import_image(&v1);
    let pushed = dct_ok(&owner, &["push", &v1]);
    assert!(pushed.contains(&format!("Successfully signed {v1}")), "{pushed}");
    let v1_digest = pushed_digest(&pushed);

    // Alice generates her key in her own docker config; she hands over only alice.pub.
    // (Not via `docker trust key load`: docker 28 decrypts an encrypted key file, then hands
    // the raw DER to the PEM importer, which finds no block, stores nothing and still prints
    // "Successfully imported key" — so a key made by `trust key generate` cannot be moved
    // with it.)
    let alice = login(&server, "alice", alice_password);
    let keys = server.scratch("keys");
    let out = dct_ok(
        &alice,
        &[
            "trust",
            "key",
            "generate",
            "alice",
            "--dir",
            keys.to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("Successfully generated and loaded private key"),
        "{out}"
    );
    let public = keys.join("alice.pub");
    let pem = std::fs::read_to_string(&public).expect("alice.pub");
    assert!(
        pem.contains("-----BEGIN PUBLIC KEY-----") && pem.contains("role: alice"),
        "{pem}"
    );
    let private = only_file(&alice.config.path().join("trust/private"));
    let alice_key_id = private.file_stem().unwrap().to_str().unwrap().to_owned();
    assert!(
        !owner
            .config
            .path()
            .join("trust/private")
            .join(private.file_name().unwrap())
            .exists(),
        "the owner must not hold alice's key"
    );

    // The owner (holder of the repository key) adds alice as a signer.
    let out = dct_ok(
        &owner,
        &[
            "trust",
            "signer",
            "add",
            "--key",
            public.to_str().unwrap(),
            "alice",
            &repo,
        ],
    );
    assert!(
        out.contains(&format!("Successfully added signer: alice to {repo}")),
        "{out}"
    );

    // Alice signs a new tag: docker pushes the image and signs it into her delegations.
    owner.import_image(&v2);
    let signed = dct_ok(&alice, &["trust", "sign", &v2]);
    assert!(signed.contains(&format!("Successfully signed {v2}")), "{signed}");
    let v2_digest = pushed_digest(&signed);

    let reader = login(&server, "admin", &server.admin_password);
    let doc = inspect(&reader, &repo);
    let tags = signed_tags(&doc);
    assert_eq!(
        tags,
        vec![
            (
                "v1".to_owned(),
                v1_digest.trim_start_matches("sha256:").to_owned(),
                vec!["Repo Admin".to_owned()]
            ),
            (
                "v2".to_owned(),
                v2_digest.trim_start_matches("sha256:").to_owned(),
                vec!["alice".to_owned()]
            ),
        ],
        "{doc:#}"
    );
    let alice_signer = doc["Signers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Name"] == "alice")
        .unwrap_or_else(|| panic!("no signer alice: {doc:#}"));
    assert_eq!(
        alice_signer["Keys"],
        serde_json::json!([{ "ID": alice_key_id }]),
        "{doc:#}"
    );
    let pretty = dct_ok(&reader, &["trust", "inspect", "--pretty", &repo]);
    assert!(
        pretty
            .lines()
            .any(|l| l.starts_with("v2") && l.trim_end().ends_with("alice")),
        "{pretty}"
    );

    // A client with no trust cache pulls alice's tag by the digest she signed.
    let fresh = login(&server, "admin", &server.admin_password);
    fresh.ok(&["rmi", &v2]);
    let pulled = dct_ok(&fresh, &["pull", &v2]);
    assert!(pulled.contains(&v2_digest), "{pulled}");

    // Alice revokes her signature: the tag is no longer signed anywhere.
    let out = dct_ok(&alice, &["trust", "revoke", &v2]);
    assert!(
        out.contains(&format!("Successfully deleted signature for {v2}")),
        "{out}"
    );
    let doc = inspect(&reader, &repo);
    let tags: Vec<String> = signed_tags(&doc).into_iter().map(|t| t.0).collect();
    assert_eq!(tags, ["v1"], "{doc:#}");
    let fresh = login(&server, "admin", &server.admin_password);
    let out = fresh.cmd(&["pull", &v2], DCT);
    assert!(!out.status.success(), "revoked tag pulled:\n{}", text(&out));
    assert!(
        text(&out).contains("No valid trust data for v2"),
        "{}",
        text(&out)
    );
    dct_ok(&fresh, &["pull", &v1]);

    // The owner removes the signer. docker 28.2.2 only removes after a confirmed prompt:
    // `maybePromptForSignerRemoval` returns "no" both for `--force` and when the signer is not
    // the last one, so `--force` silently does nothing (seen against the reference server
    // too, spec §4.5). Alice's key signed the (now empty) releases role last, so docker asks.
    let mut child = Command::new("docker")
        .args(["trust", "signer", "remove", "alice", &repo])
        .env("DOCKER_CONFIG", owner.config.path())
        .envs(DCT.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker trust signer remove");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"y\n")
        .expect("answer the prompt");
    let out = child.wait_with_output().expect("wait");
    let said = text(&out);
    assert!(out.status.success(), "signer remove:\n{said}");
    assert!(
        said.contains("signed the last released version")
            && said.contains(&format!("Successfully removed alice from {repo}")),
        "{said}"
    );
    let doc = inspect(&reader, &repo);
    assert!(!signer_names(&doc).contains(&"alice".to_owned()), "{doc:#}");
    let gun_token = server.token(&[&format!("repository:{repo}:pull")]);
    let targets = server
        .http()
        .get(server.url(&format!("/v2/{repo}/_trust/tuf/targets.json")))
        .bearer_auth(&gun_token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!targets.contains("targets/alice"), "{targets}");
    assert!(!targets.contains(&alice_key_id), "{targets}");

    // Alice's key no longer signs anything in this repository.
    owner.import_image(&v3);
    let out = alice.cmd(&["trust", "sign", &v3], DCT);
    assert!(
        !out.status.success(),
        "removed signer could sign:\n{}",
        text(&out)
    );
    assert!(
        text(&out).contains("no valid signing keys for delegation roles"),
        "{}",
        text(&out)
    );
    let doc = inspect(&reader, &repo);
    let tags: Vec<String> = signed_tags(&doc).into_iter().map(|t| t.0).collect();
    assert_eq!(tags, ["v1"], "{doc:#}");
}

/// After an owner resets a repository's trust data (or disables content trust), a
/// publisher whose docker cached the old trust data (it pulled with content trust) is
/// told exactly what happened and what to delete; after deleting it, the signed push
/// starts the repository afresh.
#[test]
fn signing_again_after_a_reset_says_what_to_delete_and_then_works() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = login(&server, "admin", &server.admin_password);
    let repo = format!("{}/team/app", server.host);
    let cached = owner.config.path().join("trust/tuf").join(&repo);
    for (round, wipe) in [
        ["content-trust", "reset", "team/app", "--yes"],
        ["content-trust", "disable", "--yes", ""],
    ]
    .iter()
    .enumerate()
    {
        let tag = format!("{repo}:r{round}");
        owner.import_image(&tag);
        dct_ok(&owner, &["push", &tag]);
        dct_ok(&owner, &["pull", &tag]);
        let args: Vec<&str> = wipe.iter().copied().filter(|a| !a.is_empty()).collect();
        wharf(&owner, &args, "");
        if args[1] == "disable" {
            wharf(&owner, &["content-trust", "enable"], "");
        }
        let out = owner.cmd(&["push", &tag], DCT);
        assert!(
            !out.status.success(),
            "signing with stale trust data must fail: {}",
            text(&out)
        );
        let said = text(&out);
        assert!(
            said.contains("the trust data of team/app was deleted by an owner at")
                && said.contains(&format!(
                    "this client still holds the old trust data: delete ~/.docker/trust/tuf/{repo}"
                )),
            "{said}"
        );
        assert!(cached.is_dir(), "{}", cached.display());
        std::fs::remove_dir_all(&cached).expect("delete cached trust data");
        let pushed = dct_ok(&owner, &["push", &tag]);
        assert!(pushed.contains("Successfully signed"), "{pushed}");
        let tags: Vec<String> = signed_tags(&inspect(&owner, &repo))
            .into_iter()
            .map(|(t, _, _)| t)
            .collect();
        assert_eq!(tags, [format!("r{round}")]);
    }
}

/// The admin account can push images but never sign: a real signed push gets the image
/// in and fails at the signing step with docker's "not authorized", writing no trust data.
#[test]
fn the_admin_account_is_refused_as_a_signer_by_a_real_signed_push() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = login(&server, "admin", &server.admin_password);
    let enabled = text(&wharf(&owner, &["admin-account", "enable"], ""));
    let password = enabled
        .lines()
        .find_map(|l| l.strip_prefix("Password (shown once): "))
        .expect("admin account password")
        .to_owned();
    let account = DockerClient::new();
    let out = account.cmd(&["login", &server.host, "-u", "wharf", "-p", &password], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let image = format!("{}/team/app:v1", server.host);
    account.import_image(&image);
    let out = account.cmd(&["push", &image], DCT);
    assert!(
        !out.status.success(),
        "the admin account must not sign: {}",
        text(&out)
    );
    let said = text(&out);
    assert!(
        said.contains("v1: digest: sha256:"),
        "the image itself is pushed: {said}"
    );
    assert!(
        said.contains("you are not authorized to perform this operation: server returned 401"),
        "{said}"
    );
    assert_eq!(server.trust_root("team/app"), None, "no trust data was written");
}

/// Disabling content trust with several signed repositories: all their trust data goes,
/// and every image stays pullable by tag and by digest by a daemon that no longer has it.
#[test]
fn disabling_content_trust_wipes_every_repository_and_keeps_every_image() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = login(&server, "admin", &server.admin_password);
    let repos = ["a/one", "b/two", "c/three"];
    let mut pushed = Vec::new();
    for repo in repos {
        let image = format!("{}/{repo}:v1", server.host);
        owner.import_image(&image);
        let out = dct_ok(&owner, &["push", &image]);
        pushed.push((image, pushed_digest(&out)));
    }
    let out = text(&wharf(&owner, &["content-trust", "disable", "--yes"], ""));
    assert!(out.contains("trust data of 3 repositories deleted"), "{out}");
    for repo in repos {
        assert_eq!(server.trust_root(repo), None, "{repo} still has trust data");
    }
    for (image, digest) in &pushed {
        owner.ok(&["rmi", image]);
        owner.ok(&["pull", image]);
        owner.ok(&["rmi", image]);
        let by_digest = format!("{}@{digest}", image.rsplit_once(':').expect("tag").0);
        owner.ok(&["pull", &by_digest]);
    }
}

/// Two publishers with the same keys push different tags at the same moment: never a
/// lost signature behind two successes. Either both tags end up signed, or the loser is
/// told (notary's version conflict) and its retry signs.
#[test]
fn racing_signed_pushes_never_lose_a_signed_tag() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let first = login(&server, "admin", &server.admin_password);
    let repo = format!("{}/race/app", server.host);
    first.import_image(&format!("{repo}:base"));
    dct_ok(&first, &["push", &format!("{repo}:base")]);
    for round in 0..3 {
        // A second publisher holding the same keys (a copy of the first one's trust dir).
        let second = login(&server, "admin", &server.admin_password);
        let copied = Command::new("cp")
            .arg("-r")
            .arg(first.config.path().join("trust"))
            .arg(second.config.path())
            .status()
            .expect("cp");
        assert!(copied.success());
        let tags = [format!("{repo}:a{round}"), format!("{repo}:b{round}")];
        first.import_image(&tags[0]);
        second.import_image(&tags[1]);
        let (out_a, out_b) = std::thread::scope(|s| {
            let a = s.spawn(|| first.cmd(&["push", &tags[0]], DCT));
            let b = s.spawn(|| second.cmd(&["push", &tags[1]], DCT));
            (a.join().expect("a"), b.join().expect("b"))
        });
        for (client, tag, out) in [(&first, &tags[0], &out_a), (&second, &tags[1], &out_b)] {
            if !out.status.success() {
                // The loser is told, and its retry signs.
                let said = text(out);
                assert!(
                    said.contains(&format!(
                        "failed to sign {tag}: An error occurred during validation: the trust data of \
race/app has changed since this client read it ("
                    )) && said.contains("so nothing was stored; sign again"),
                    "a failed signed push must say why: {said}"
                );
                let retry = client.cmd(&["push", tag], DCT);
                assert!(retry.status.success(), "retry: {}", text(&retry));
            }
        }
        let doc = inspect(&first, &repo);
        let signed: Vec<String> = signed_tags(&doc).into_iter().map(|(t, _, _)| t).collect();
        for tag in &tags {
            let name = tag.rsplit_once(':').expect("tag").1.to_owned();
            assert!(signed.contains(&name), "{name} lost in round {round}: {signed:?}");
        }
    }
}
