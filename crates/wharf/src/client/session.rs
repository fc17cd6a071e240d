//! A session with a server: the login `wharf login` stored, exchanged at the token service
//! for an access token carrying the scopes a command needs. Every client command that
//! talks to a server opens one here.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::docker_config::{
    config_dir, load_settings, stored_identity_token, stored_password, stored_username,
};
use super::http::percent_encode;
use super::report::{INVALID_RESPONSE, NOT_LOGGED_IN, connection_failed, fail, read_answer, server_error};

pub(crate) struct Session {
    http: reqwest::Client,
    base: String,
    /// host[:port] as the user named it (and as `wharf login` stored it).
    registry: String,
    /// The user name of the stored login, if the config records one.
    username: Option<String>,
    auth: Auth,
}

/// How a session's requests prove who sends them.
enum Auth {
    /// An access token from the server's token service.
    Bearer(String),
    /// A server that asks for basic authentication (user, password).
    Basic(String, String),
    /// A server that asks for nothing (a registry or notary server without auth).
    Anonymous,
}

impl Auth {
    fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::Bearer(token) => req.bearer_auth(token),
            Auth::Basic(user, password) => req.basic_auth(user, Some(password)),
            Auth::Anonymous => req,
        }
    }
}

/// The refresh token `wharf login` stored for `registry`.
fn identity_token(dir: &Path, registry: &str) -> anyhow::Result<String> {
    stored_identity_token(dir, registry)?.ok_or_else(|| {
        fail(
            NOT_LOGGED_IN,
            format!("not logged in to {registry}: run `wharf login {registry} -u USER` first"),
        )
    })
}

/// `application/x-www-form-urlencoded` (reqwest is built without its form feature).
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The registry a command talks to: the one named (`--registry`, `WHARF_REGISTRY`), or
/// the one `wharf login` used last.
pub(crate) fn selected_registry(registry: Option<String>) -> anyhow::Result<String> {
    registry.or_else(|| load_settings(&config_dir()).registry).ok_or_else(|| {
        fail(
            NOT_LOGGED_IN,
            "no registry selected: pass --registry HOST[:PORT] (or WHARF_REGISTRY), or run `wharf login HOST[:PORT] -u USER` first",
        )
    })
}

/// An owner session on the admin API: the stored login exchanged for a
/// `registry:admin:*` token.
pub(crate) async fn admin_session(
    registry: Option<String>,
    ca_file: Option<PathBuf>,
) -> anyhow::Result<Session> {
    open(registry, ca_file, &["registry:admin:*"]).await
}

/// A session whose token carries what the token service grants of `scopes` (it drops
/// what the login may not have, so a missing right shows at the request that needs it).
/// No scopes: a token that only proves who the caller is (their own account).
pub(crate) async fn open(
    registry: Option<String>,
    ca_file: Option<PathBuf>,
    scopes: &[&str],
) -> anyhow::Result<Session> {
    let dir = config_dir();
    let saved = load_settings(&dir);
    let registry = selected_registry(registry)?;
    // Before any request: without a stored login there is nothing to ask the server.
    let refresh = identity_token(&dir, &registry)?;
    let username = stored_username(&dir, &registry)?;
    let ca: Option<PathBuf> = ca_file.or(saved.ca_file);
    let http = super::http::client(ca.as_deref())?;
    let base = format!("https://{registry}");
    let (realm, service) = super::login::token_service(&http, &base).await?;
    let scope = scopes.join(" ");
    let resp = refresh_request(&http, &realm, &refresh, &service, &scope)
        .send()
        .await
        .map_err(|e| connection_failed(&format!("the token service {realm}"), &e, ""))?;
    let (status, body) = read_answer(resp).await;
    if !status.is_success() {
        let (code, message) = server_error(&body)
            .unwrap_or_else(|| (INVALID_RESPONSE.to_owned(), format!("it answered {status}")));
        return Err(fail(
            &code,
            format!(
                "the token service refused the stored login for {registry}: {message}; run `{}` again",
                login_command(&registry, username.as_deref())
            ),
        ));
    }
    let token = body["access_token"]
        .as_str()
        .or(body["token"].as_str())
        .ok_or_else(|| fail(INVALID_RESPONSE, "the token service returned no token"))?
        .to_owned();
    Ok(Session {
        http,
        base,
        registry,
        username,
        auth: Auth::Bearer(token),
    })
}

/// A session with any registry or trust server at `base` (`https://…`), as docker reaches
/// one: what its `/v2/` ping asks for decides. Nothing: no credentials. A Bearer
/// challenge: a token for `scopes` from its token service — with the identity token or the
/// user and password docker's config stores for `registry` (`auths`), else anonymous. A
/// Basic challenge: the stored user and password. For reading another registry (`wharf
/// trust copy`), which need not be a Wharf and need not have a `wharf login`.
pub(crate) async fn open_foreign(
    base: &str,
    registry: &str,
    ca_file: Option<&Path>,
    scopes: &[&str],
) -> anyhow::Result<Session> {
    let http = super::http::client(ca_file)?;
    let ping = http
        .get(format!("{base}/v2/"))
        .send()
        .await
        .map_err(|e| connection_failed(base, &e, "use --source-ca if it uses a private CA"))?;
    let challenge = ping
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let dir = config_dir();
    let identity = stored_identity_token(&dir, registry)?;
    let password = stored_password(&dir, registry)?;
    let username = stored_username(&dir, registry)?;
    let session = |auth| Session {
        http: http.clone(),
        base: base.to_owned(),
        registry: registry.to_owned(),
        username: username.clone(),
        auth,
    };
    if ping.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Ok(session(Auth::Anonymous));
    }
    let challenge = challenge.unwrap_or_default();
    if challenge.to_ascii_lowercase().starts_with("basic") {
        let Some((user, pass)) = password else {
            return Err(fail(
                NOT_LOGGED_IN,
                format!(
                    "{base} asks for a password and the Docker config stores none for {registry}: run `docker login {registry}` first"
                ),
            ));
        };
        return Ok(session(Auth::Basic(user, pass)));
    }
    let (realm, service) = super::login::parse_challenge(&challenge).ok_or_else(|| {
        fail(
            INVALID_RESPONSE,
            format!("{base}/v2/ answered 401 without a Bearer or Basic challenge"),
        )
    })?;
    let scope = scopes.join(" ");
    let resp = match (&identity, &password) {
        (Some(refresh), _) => {
            refresh_request(&http, &realm, refresh, &service, &scope)
                .send()
                .await
        }
        (None, credentials) => {
            let mut query = vec![("service", service.as_str())];
            query.extend(scopes.iter().map(|s| ("scope", *s)));
            let mut req = http.get(&realm).query(&query);
            if let Some((user, pass)) = credentials {
                req = req.basic_auth(user, Some(pass));
            }
            req.send().await
        }
    }
    .map_err(|e| connection_failed(&format!("the token service {realm}"), &e, ""))?;
    let (status, body) = read_answer(resp).await;
    if !status.is_success() {
        let (code, message) = server_error(&body)
            .unwrap_or_else(|| (INVALID_RESPONSE.to_owned(), format!("it answered {status}")));
        let who = if identity.is_some() || password.is_some() {
            format!("the login the Docker config stores for {registry}")
        } else {
            "an anonymous request (the Docker config stores no login for it)".to_owned()
        };
        return Err(fail(
            &code,
            format!("the token service of {registry} refused {who}: {message}"),
        ));
    }
    let token = body["access_token"]
        .as_str()
        .or(body["token"].as_str())
        .ok_or_else(|| fail(INVALID_RESPONSE, "the token service returned no token"))?
        .to_owned();
    Ok(session(Auth::Bearer(token)))
}

/// The command that logs `username` (or a placeholder) in to `registry` again.
pub(crate) fn login_command(registry: &str, username: Option<&str>) -> String {
    format!("wharf login {registry} -u {}", username.unwrap_or("USER"))
}

impl Session {
    pub(crate) fn registry(&self) -> &str {
        &self.registry
    }

    /// The user name of the stored login this session runs as, if known.
    pub(crate) fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// A request with the session's token, for bodies other than JSON (blobs, manifests).
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.auth
            .apply(self.http.request(method, format!("{}{path}", self.base)))
    }

    /// The actions the token service granted on `repository` (`pull`, `push`, `*`…), as the
    /// token's `access` claim lists them. Read without checking the signature: this only
    /// lets a command tell "refused" before it starts; the registry checks every request.
    pub(crate) fn granted(&self, repository: &str) -> Vec<String> {
        use base64::Engine as _;
        // Only a Wharf session's bearer token lists grants; other servers' sessions say none.
        let Auth::Bearer(token) = &self.auth else {
            return Vec::new();
        };
        let claims = token
            .split('.')
            .nth(1)
            .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .unwrap_or_default();
        claims["access"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["type"] == "repository" && e["name"] == repository)
            .flat_map(|e| e["actions"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect()
    }

    /// What a transport failure of a [`Session::request`] says.
    pub(crate) fn unreachable(&self, e: &reqwest::Error) -> anyhow::Error {
        connection_failed(&self.base, e, "")
    }

    /// Send a request with the session's token; only a transport failure is an error
    /// here, the answer is the caller's to read.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
            .await
            .map_err(|e| connection_failed(&self.base, &e, ""))
    }

    /// A call of the admin API (owner only): its JSON answer, or its error as a one-line
    /// message that says a refusal needs the Owner role.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let resp = self.send(method, path, body).await?;
        let (status, v) = read_answer(resp).await;
        if status.is_success() {
            return Ok(v);
        }
        let Some((code, message)) = server_error(&v) else {
            return Err(fail(
                INVALID_RESPONSE,
                format!("the server answered {status} without an error message"),
            ));
        };
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(fail(
                &code,
                format!(
                    "not authorised: {message}; this needs the Owner role: log in as an owner with `wharf login`"
                ),
            ));
        }
        Err(fail(&code, format!("the server answered {status}: {message}")))
    }
}

/// The OAuth2 refresh-token exchange (the identity token `wharf login` stored) for `scope`
/// (space-separated; empty = no scope).
fn refresh_request(
    http: &reqwest::Client,
    realm: &str,
    refresh: &str,
    service: &str,
    scope: &str,
) -> reqwest::RequestBuilder {
    let mut pairs = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("service", service),
        ("client_id", "wharf"),
    ];
    if !scope.is_empty() {
        pairs.push(("scope", scope));
    }
    http.post(realm)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&pairs))
}
