//! The route walk: every route the router declares, and every `/v2/` endpoint, tried by
//! an anonymous caller and by a caller lacking the right, against the real router over a
//! real store. Each must be refused with its gate's exact answer. Adding a route without
//! a protected declaration, or an endpoint without its need, fails here.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use tower::ServiceExt;

use super::gate::RouteAccess;
use super::v2::{Endpoint, UploadOp, parse, resolve};
use crate::app::{AppParts, AppState, build};
use crate::auth::secrets::KeyEncryptionKey;
use crate::clock::now;
use crate::server_names::ServerNames;
use crate::services::access::{AccessService, Actor};
use crate::services::identity::IdentityService;
use crate::services::portal_sessions::SignedIn;
use crate::services::trust::TrustService;

const METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];
const GUN: &str = "localhost:5000/team/app";
/// A token no key signed.
const FORGED: &str = "eyJhbGciOiJFUzI1NiJ9.e30.AAAA";
/// Every action a token may ask for on a repository: the caller gets what it may.
const ALL: &str = "pull,push,delete,*";
const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

struct World {
    _dir: tempfile::TempDir,
    state: AppState,
    router: Router,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(
        wharf_store::SqliteMetadataStore::open(&dir.path().join("m.db"))
            .await
            .unwrap(),
    );
    let blob_store = Arc::new(wharf_store::FsBlobStore::open(dir.path().join("blobs")).unwrap());
    let kek = Arc::new(KeyEncryptionKey::from_base64(&format!("{}=", "A".repeat(43))).unwrap());
    let names = Arc::new(ServerNames::new(&[], "127.0.0.1:5000".parse().unwrap()));
    let revocations = Arc::new(crate::auth::revocations::Revocations::new(meta.clone()));
    let identity = IdentityService::open(
        meta.clone(),
        kek.clone(),
        "wharf",
        300,
        30,
        names.clone(),
        revocations.clone(),
    )
    .await
    .unwrap();
    identity
        .bootstrap_owner(Some("owner-password-1".into()), dir.path())
        .await
        .unwrap();
    let trust = Arc::new(
        TrustService::open(meta.clone(), kek, names.clone(), true, false)
            .await
            .unwrap(),
    );
    let signature_policy = crate::services::signature_policy::SignaturePolicyService::open(
        meta.clone(),
        blob_store.clone(),
        trust.clone(),
    )
    .await
    .unwrap();
    let quotas = Arc::new(
        crate::services::quotas::QuotaService::open(meta.clone())
            .await
            .unwrap(),
    );
    let access = AccessService::new(meta.clone(), "wharf", revocations);
    let owner = Actor {
        name: "admin".into(),
        from: None,
    };
    for (user, role, scope) in [
        ("reader", "Reader", "repository:team/app"),
        ("signer", "AcrPush", "repository:team/app"),
        ("signer", "AcrImageSigner", "repository:team/app"),
        ("pusher", "AcrPush", "repository:team/app"),
        ("other", "Owner", "repository:other/app"),
    ] {
        if access
            .list(crate::services::access::KIND_USER)
            .await
            .unwrap()
            .iter()
            .all(|u| u.name != user)
        {
            access
                .create_user(&owner, user, Some(format!("{user}-password-1")))
                .await
                .unwrap();
        }
        access.assign(&owner, role, user, Some(scope)).await.unwrap();
    }
    access
        .create_user(&owner, "nobody", Some("nobody-password-1".into()))
        .await
        .unwrap();
    let anonymous = crate::services::anonymous_pull::AnonymousPull::open(meta.clone())
        .await
        .unwrap();
    let (state, router) = build(AppParts {
        blob_store,
        meta,
        names,
        identity,
        trust,
        signature_policy,
        quotas,
        access,
        anonymous,
        manifest_max_bytes: 1 << 20,
        upload_idle_timeout_seconds: 3600,
        metrics_require_token: true,
        replica_id: "route-walk".into(),
        redirect_downloads: false,
        gc: crate::config::GcConfig::default(),
        retention: crate::config::RetentionConfig::default(),
    });
    World {
        _dir: dir,
        state,
        router,
    }
}

impl World {
    async fn token(&self, user: &str, scopes: &[String]) -> String {
        let principal = self
            .state
            .identity
            .login_password(user, &format!("{user}-password-1"), None)
            .await
            .unwrap();
        let requested = crate::auth::access::parse_scopes(scopes.iter().map(String::as_str));
        self.state
            .identity
            .issue(&principal, &requested)
            .await
            .unwrap()
            .token
    }

    /// A live portal session of `user`: (cookie header value, CSRF token).
    async fn session(&self, user: &str) -> (String, String) {
        let p = self
            .state
            .identity
            .login_password(user, &format!("{user}-password-1"), None)
            .await
            .unwrap();
        let (cookie, session) = self
            .state
            .portal_sessions
            .start(
                SignedIn {
                    id: p.id,
                    name: p.name,
                    created_at: p.created_at,
                },
                now(),
            )
            .await
            .unwrap();
        (format!("__Host-wharf_session={cookie}"), session.csrf)
    }

    async fn send(&self, method: &Method, path: &str, headers: &[(header::HeaderName, String)]) -> Answer {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, "localhost:5000");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = self
            .router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let get = |h: header::HeaderName| {
            resp.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let challenge = get(header::WWW_AUTHENTICATE);
        let location = get(header::LOCATION);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        Answer {
            status,
            challenge,
            location,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    challenge: String,
    location: String,
    body: String,
}

/// A concrete path for a declared route pattern.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{*rest}", "team/app/trust")
        .replace("{*name}", "team/app")
        .replace("{name}", "reader")
        .replace("{action}", "enable")
        .replace("{op}", "assign")
}

/// The routes anyone may call, on purpose. A new public route must be added here.
const PUBLIC: [&str; 9] = [
    "/token",
    "/healthz",
    "/readyz",
    "/api/v1/openapi.json",
    "/",
    "/portal",
    "/portal/",
    "/portal/static/wharf.css",
    "/portal/sign-in",
];

fn bearer(token: &str) -> Vec<(header::HeaderName, String)> {
    vec![(header::AUTHORIZATION, format!("Bearer {token}"))]
}

#[tokio::test]
async fn every_declared_route_refuses_callers_who_must_not_pass() {
    let w = world().await;
    let table = super::declare(w.state.clone()).table;
    let public: Vec<&str> = table
        .iter()
        .filter(|(_, a)| *a == RouteAccess::Public)
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(public, PUBLIC, "public routes changed: review and update PUBLIC");

    // Every answer, public or refused, tells browsers to stay on HTTPS.
    for path in ["/portal/sign-in", "/api/v1/users", "/v2/"] {
        let r = w
            .router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            r.headers().get(header::STRICT_TRANSPORT_SECURITY).unwrap(),
            "max-age=31536000",
            "{path}"
        );
    }

    let reader_admin = w.token("reader", &["registry:admin:*".into()]).await;
    let (reader_cookie, _) = w.session("reader").await;
    for (pattern, access) in &table {
        let path = concrete(pattern);
        let mut refused_by_gate = 0;
        for method in &METHODS {
            let anonymous = w.send(method, &path, &[]).await;
            let lacking = match access {
                RouteAccess::Public | RouteAccess::RegistryApi => continue,
                RouteAccess::Owner | RouteAccess::Metrics => {
                    w.send(method, &path, &bearer(&reader_admin)).await
                }
                // Only a valid token of a principal passes: a forged one must not.
                RouteAccess::Token => w.send(method, &path, &bearer(FORGED)).await,
                RouteAccess::PortalUser => {
                    let forged = vec![(header::COOKIE, "__Host-wharf_session=forged".to_owned())];
                    w.send(method, &path, &forged).await
                }
                RouteAccess::PortalOwner => {
                    let cookie = vec![
                        (header::COOKIE, reader_cookie.clone()),
                        (
                            header::CONTENT_TYPE,
                            "application/x-www-form-urlencoded".to_owned(),
                        ),
                    ];
                    w.send(method, &path, &cookie).await
                }
            };
            if anonymous.status == StatusCode::METHOD_NOT_ALLOWED {
                assert_eq!(lacking.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                continue;
            }
            refused_by_gate += 1;
            match access {
                RouteAccess::Token => {
                    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{method} {path}");
                    assert!(anonymous.challenge.starts_with("Bearer realm="), "{anonymous:?}");
                    assert_eq!(lacking.status, StatusCode::UNAUTHORIZED, "{method} {path}");
                    assert!(
                        lacking.body.contains("authentication required: "),
                        "{method} {path}: {lacking:?}"
                    );
                }
                RouteAccess::Owner | RouteAccess::Metrics => {
                    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{method} {path}");
                    assert!(
                        anonymous.challenge.contains("scope=\"registry:admin:*\"")
                            && !anonymous.challenge.contains("insufficient_scope"),
                        "{method} {path}: {anonymous:?}"
                    );
                    assert_eq!(lacking.status, StatusCode::UNAUTHORIZED, "{method} {path}");
                    assert!(
                        lacking.challenge.contains("error=\"insufficient_scope\""),
                        "{method} {path}: {lacking:?}"
                    );
                }
                RouteAccess::PortalUser | RouteAccess::PortalOwner => {
                    assert_eq!(anonymous.status, StatusCode::SEE_OTHER, "{method} {path}");
                    assert_eq!(anonymous.location, "/portal/sign-in", "{method} {path}");
                    if *access == RouteAccess::PortalOwner {
                        assert_eq!(lacking.status, StatusCode::FORBIDDEN, "{method} {path}");
                        // HEAD answers carry no body to read the reason from.
                        assert!(
                            *method == Method::HEAD
                                || lacking
                                    .body
                                    .contains("Only owners of this registry can see or change this page."),
                            "{method} {path}: {}",
                            lacking.body
                        );
                    } else {
                        assert_eq!(lacking.status, StatusCode::SEE_OTHER, "{method} {path}");
                        assert_eq!(lacking.location, "/portal/sign-in", "{method} {path}");
                    }
                }
                RouteAccess::Public | RouteAccess::RegistryApi => unreachable!(),
            }
        }
        if !matches!(access, RouteAccess::Public | RouteAccess::RegistryApi) {
            assert!(refused_by_gate > 0, "{pattern}: no method reached the gate");
        }
    }

    // A signed-in user's post without the session's CSRF token is refused before any
    // handler runs (the sign-out route is for every user).
    let (cookie, csrf) = w.session("nobody").await;
    let with_cookie = vec![
        (header::COOKIE, cookie.clone()),
        (
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".to_owned(),
        ),
    ];
    let refused = w.send(&Method::POST, "/portal/sign-out", &with_cookie).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("missing or wrong CSRF token"),
        "{}",
        refused.body
    );
    assert!(!csrf.is_empty());
}

/// Which `Endpoint` variant a sample reached; the match has no wildcard, so a new
/// endpoint does not compile until it has a sample here.
fn variant(e: &Endpoint<'_>) -> usize {
    match e {
        Endpoint::Ping => 0,
        Endpoint::Catalog => 1,
        Endpoint::Tags(_) => 2,
        Endpoint::Referrers(..) => 3,
        Endpoint::ManifestRead { .. } => 4,
        Endpoint::ManifestPut { .. } => 5,
        Endpoint::ManifestDelete { .. } => 6,
        Endpoint::BlobRead { .. } => 7,
        Endpoint::BlobDelete { .. } => 8,
        Endpoint::UploadStart(_) => 9,
        Endpoint::Upload {
            op: UploadOp::Status, ..
        } => 10,
        Endpoint::Upload {
            op: UploadOp::Patch, ..
        } => 11,
        Endpoint::Upload {
            op: UploadOp::Finish, ..
        } => 12,
        Endpoint::Upload {
            op: UploadOp::Cancel, ..
        } => 13,
        Endpoint::Trust { .. } => 14,
        Endpoint::TrustChangefeed => 15,
    }
}
const VARIANTS: usize = 16;

/// The right a `/v2/` sample needs, written down here independently of `Endpoint::need`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Right {
    AnyToken,
    Catalog,
    Pull,
    Push,
    Delete,
    TrustRead,
    TrustWrite,
    TrustOwner,
}

#[tokio::test]
async fn every_registry_and_trust_endpoint_refuses_callers_who_must_not_pass() {
    let w = world().await;
    use Right::*;
    let samples: Vec<(Method, String, Right)> = vec![
        (Method::GET, "/v2/".to_owned(), AnyToken),
        (Method::GET, "/v2/_catalog".into(), Catalog),
        (Method::GET, "/v2/_trust/changefeed?records=10".into(), Catalog),
        (Method::GET, "/v2/team/app/tags/list".into(), Pull),
        (Method::GET, format!("/v2/team/app/referrers/{DIGEST}"), Pull),
        (Method::GET, "/v2/team/app/manifests/v1".into(), Pull),
        (Method::HEAD, "/v2/team/app/manifests/v1".into(), Pull),
        (Method::PUT, "/v2/team/app/manifests/v1".into(), Push),
        (Method::DELETE, "/v2/team/app/manifests/v1".into(), Delete),
        (Method::GET, format!("/v2/team/app/blobs/{DIGEST}"), Pull),
        (Method::HEAD, format!("/v2/team/app/blobs/{DIGEST}"), Pull),
        (Method::DELETE, format!("/v2/team/app/blobs/{DIGEST}"), Delete),
        (Method::POST, "/v2/team/app/blobs/uploads/".into(), Push),
        (Method::GET, "/v2/team/app/blobs/uploads/u1".into(), Push),
        (Method::PATCH, "/v2/team/app/blobs/uploads/u1".into(), Push),
        (
            Method::PUT,
            format!("/v2/team/app/blobs/uploads/u1?digest={DIGEST}"),
            Push,
        ),
        (Method::DELETE, "/v2/team/app/blobs/uploads/u1".into(), Push),
        (Method::POST, format!("/v2/{GUN}/_trust/tuf/"), TrustWrite),
        (Method::DELETE, format!("/v2/{GUN}/_trust/tuf/"), TrustOwner),
        (
            Method::GET,
            format!("/v2/{GUN}/_trust/changefeed?records=10"),
            TrustRead,
        ),
        (
            Method::GET,
            format!("/v2/{GUN}/_trust/tuf/timestamp.key"),
            TrustWrite,
        ),
        (
            Method::POST,
            format!("/v2/{GUN}/_trust/tuf/snapshot.key"),
            TrustOwner,
        ),
        (Method::GET, format!("/v2/{GUN}/_trust/tuf/root.json"), TrustRead),
    ];

    let mut covered = [false; VARIANTS];
    for (method, path, right) in &samples {
        let tail = path.trim_start_matches("/v2").trim_start_matches('/');
        let tail = tail.split_once('?').map_or(tail, |(t, _)| t);
        let endpoint = resolve(&w.state, method, parse(tail))
            .unwrap_or_else(|_| panic!("{method} {path} does not resolve"));
        covered[variant(&endpoint)] = true;

        // Anonymous: the challenge names exactly the scope this endpoint needs.
        let anonymous = w.send(method, path, &[]).await;
        assert_eq!(
            anonymous.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {anonymous:?}"
        );
        let scope = match right {
            AnyToken => None,
            Catalog => Some("registry:catalog:*".to_owned()),
            Pull => Some("repository:team/app:pull".to_owned()),
            Push => Some("repository:team/app:push".to_owned()),
            Delete => Some("repository:team/app:delete".to_owned()),
            TrustRead => Some(format!("repository:{GUN}:pull")),
            TrustWrite => Some(format!("repository:{GUN}:push,pull")),
            TrustOwner => Some(format!("repository:{GUN}:*")),
        };
        match &scope {
            Some(s) => assert!(
                anonymous.challenge.contains(&format!("scope=\"{s}\"")),
                "{method} {path}: {anonymous:?}"
            ),
            None => assert!(!anonymous.challenge.contains("scope="), "{anonymous:?}"),
        }

        // A caller holding the most a principal can get without this right: everything
        // it may have on the same name.
        let (user, name) = match right {
            // No token passes the ping's gate but a valid one: a forged one is refused.
            AnyToken => ("", ""),
            Catalog => ("nobody", ""),
            Pull => ("other", "team/app"),
            Push => ("reader", "team/app"),
            Delete => ("signer", "team/app"),
            TrustRead => ("other", GUN),
            // Push on the repository without the signer right: the review's attacker.
            TrustWrite => ("pusher", GUN),
            TrustOwner => ("signer", GUN),
        };
        let scopes = if *right == Catalog {
            vec!["registry:catalog:*".to_owned()]
        } else {
            vec![format!("repository:{name}:{ALL}")]
        };
        let token = if user.is_empty() {
            FORGED.to_owned()
        } else {
            w.token(user, &scopes).await
        };
        let lacking = w.send(method, path, &bearer(&token)).await;
        assert_eq!(
            lacking.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} as {user}: {lacking:?}"
        );
        if !user.is_empty() {
            assert!(
                lacking.challenge.contains("error=\"insufficient_scope\""),
                "{method} {path} as {user}: {lacking:?}"
            );
        }
        let message = if user.is_empty() {
            "authentication required: "
        } else {
            "\"message\":\"access to the requested resource is not authorized\""
        };
        let head = *method == Method::HEAD;
        assert!(
            head || lacking.body.contains(message),
            "{method} {path}: {}",
            lacking.body
        );
        assert!(
            head || anonymous.body.contains("\"message\":\"authentication required\""),
            "{method} {path}: {}",
            anonymous.body
        );
    }
    let missing: Vec<usize> = (0..VARIANTS).filter(|i| !covered[*i]).collect();
    assert!(
        missing.is_empty(),
        "endpoint variants without a sample: {missing:?}"
    );
}
