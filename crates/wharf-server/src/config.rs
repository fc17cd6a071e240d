//! Server configuration: one typed struct, read from TOML, every key overridable by
//! `WHARF_<SECTION>_<KEY>` environment variables, validated before anything starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::auth::secrets::KeyEncryptionKey;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the single HTTPS listener.
    pub listen: String,
    /// Where SQLite metadata, blobs, TLS material and generated secrets live.
    pub data_dir: PathBuf,
    /// Host names (optionally `:port`) clients use to reach this server; they go into the
    /// generated certificate and identify this registry in trust GUNs.
    pub public_hosts: Vec<String>,
    pub tls: TlsConfig,
    pub content_trust: ContentTrustConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub security: SecurityConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub gc: GcConfig,
    pub retention: RetentionConfig,
}

/// Retention runs (`wharf retention run`, `POST /api/v1/retention/run`); the policy itself
/// is stored in the database (`wharf retention set`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Apply the retention policy on this schedule (on whichever replica gets the
    /// retention lease), checked once a minute; 0 = only on demand. At least 60 when set.
    pub interval_seconds: u64,
    /// Tests only: a policy "day" lasts one second, so `untagged_after_days = 3` removes
    /// what has been untagged for three seconds. A warning says so at every start.
    pub allow_short_periods: bool,
}

/// Garbage collection of blobs nothing references (`wharf gc run`, `POST /api/v1/gc`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcConfig {
    /// Only what has been unreferenced for this long is collected, so pushes and uploads
    /// in flight never lose a blob. At least 600 unless `allow_short_grace`.
    pub grace_seconds: u64,
    /// Run garbage collection on this schedule (on whichever replica gets the GC lease),
    /// checked once a minute; 0 = only on demand. At least 60 when set.
    pub interval_seconds: u64,
    /// Tests and labs only: accept grace periods under 600 seconds (down to 1), here and
    /// in `wharf gc run --grace`. A warning says so at every start: a short grace lets a
    /// sweep race a push that is slower than it.
    pub allow_short_grace: bool,
    /// The share of a run's wall-clock time spent working, 1-100: after each batch the run
    /// pauses in proportion, leaving the machine and the database to pushes (an online
    /// collection has time; measured in README → Performance → Garbage collection).
    pub busy_percent: u8,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self {
            grace_seconds: 3600,
            interval_seconds: 0,
            allow_short_grace: false,
            busy_percent: 50,
        }
    }
}

/// Where metadata lives: the embedded SQLite file in `data_dir` by default, or a
/// PostgreSQL database shared by every replica.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/db?sslmode=…`; empty = SQLite in `data_dir`.
    pub url: String,
}

/// The URL may carry a password: never printed.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redacted_url(&self.url))
            .finish()
    }
}

/// A URL with any `user:password@` part replaced, for messages and logs.
pub fn redacted_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://…@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Where blob bytes live.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `fs` (`<data_dir>/storage`) or `s3`.
    pub backend: String,
    pub s3: S3Config,
}

/// An S3-compatible bucket. Empty credentials, region and endpoint are taken from the
/// usual `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` and
/// `AWS_ENDPOINT_URL` variables.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// e.g. `https://s3.example.net:3900`; empty = AWS itself for `region`.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Path-style URLs (`endpoint/bucket/key`), as most self-hosted stores want.
    pub path_style: bool,
    /// Keys are written under this prefix (several registries can share a bucket).
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Answer blob downloads with a redirect to a short-lived pre-signed URL, so bytes
    /// flow from the store to the client without passing through Wharf. Clients must be
    /// able to reach `endpoint`.
    pub redirect_downloads: bool,
}

/// The secret key is never printed.
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("path_style", &self.path_style)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("redirect_downloads", &self.redirect_downloads)
            .finish()
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: "fs".into(),
            s3: S3Config::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; empty = generate a local CA and certificate in `<data_dir>/tls`.
    pub cert: String,
    /// PEM private key for `cert`.
    pub key: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContentTrustConfig {
    /// Content-trust policy on first start (later changes are made through the admin API).
    pub enabled_at_bootstrap: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The `service` of the token challenge and the audience of issued tokens.
    pub service: String,
    /// Lifetime of access tokens; short so that role changes apply quickly.
    pub token_ttl_seconds: u64,
    /// How far the clocks of the issuing and the verifying server may disagree: a token is
    /// accepted this long before its `nbf` and after its `exp`. 0 suits one process (tests
    /// that wait for a token to expire set it so); replicas need their clock drift.
    pub clock_skew_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub manifest_max_bytes: u64,
    /// An upload session idle this long is forgotten and its bytes deleted.
    pub upload_idle_timeout_seconds: u64,
    /// Open connections at once; more are closed as they arrive. `wharf serve` lowers it
    /// to what the process's descriptor limit allows.
    pub max_connections: usize,
    /// Open connections at once from one source address (a NAT or a CI host shares one).
    pub max_connections_per_address: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Base64 of 32 bytes that encrypt server-held keys at rest; empty = generated into
    /// `<data_dir>/key-encryption-key` (mode 0600) on first start. Prefer the environment
    /// variable `WHARF_SECURITY_KEY_ENCRYPTION_KEY` over the file for this one.
    pub key_encryption_key: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Answer `/metrics` only with an owner's bearer token (`registry:admin:*`). Off by
    /// default: its labels carry no repository or user names, and scrapers often hold
    /// no credentials.
    pub require_token: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `wharf_server=debug`.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5000".into(),
            data_dir: PathBuf::from("./wharf-data"),
            public_hosts: Vec::new(),
            tls: TlsConfig::default(),
            content_trust: ContentTrustConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            security: SecurityConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            database: DatabaseConfig::default(),
            storage: StorageConfig::default(),
            gc: GcConfig::default(),
            retention: RetentionConfig::default(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            service: "wharf".into(),
            token_ttl_seconds: 300,
            clock_skew_seconds: 30,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            manifest_max_bytes: 4 * 1024 * 1024,
            upload_idle_timeout_seconds: 3600,
            max_connections: 4096,
            max_connections_per_address: 256,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then the file (if any), then `WHARF_*` variables from `env`.
    pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Some((path, text))
            }
            None => None,
        };
        Self::load_text(file.as_ref().map(|(path, text)| (*path, text.as_str())), env)
    }

    /// [`Config::load`] with the file's text already read (`path` names it in errors).
    /// Public for the fuzz targets, which feed the loader without touching the disk.
    #[doc(hidden)]
    pub fn load_text(
        file: Option<(&Path, &str)>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut merged = toml::Value::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(format!("defaults: {e}")))?;
        let origin = file
            .map(|(path, _)| path.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("<defaults>"));
        if let Some((path, text)) = file {
            let from_file: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            merge(&mut merged, toml::Value::Table(from_file));
        }
        apply_env(&mut merged, "WHARF", &env)?;
        let mut config: Config = merged
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: origin,
                message: e.to_string(),
            })?;
        config.storage.s3.fill_from_aws_env(&env);
        config.validate()?;
        Ok(config)
    }

    /// Whether the listen setting has the form of an address or `host:port` (no lookup).
    fn check_listen(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<SocketAddr>().is_ok() {
            return Ok(());
        }
        self.host_and_port().map(|_| ())
    }

    /// A listen setting that is not an address, split into host name and port.
    fn host_and_port(&self) -> Result<(&str, u16), ConfigError> {
        let bad = || {
            ConfigError::Invalid(format!(
                "listen {:?} must be host:port, like 127.0.0.1:5000 or localhost:5000",
                self.listen
            ))
        };
        let (host, port) = self.listen.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b));
        if !host_ok {
            return Err(bad());
        }
        Ok((host, port))
    }

    /// The address to bind: the listen setting itself when it is an address, else its
    /// host name resolved, taking the first address the resolver gives. `localhost` is
    /// always 127.0.0.1: resolvers often answer `::1` first, and a server bound only
    /// there is unreachable for clients that try 127.0.0.1, the address Wharf's
    /// certificate, trust names and docs use for the loopback.
    pub fn resolve_listen(&self) -> Result<SocketAddr, ConfigError> {
        use std::net::{Ipv4Addr, ToSocketAddrs};
        if let Ok(addr) = self.listen.parse::<SocketAddr>() {
            return Ok(addr);
        }
        let (host, port) = self.host_and_port()?;
        if host.eq_ignore_ascii_case("localhost") {
            return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        }
        // The resolver's own error is dropped: it varies by machine and says no more than
        // that the name did not resolve.
        (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "listen {:?}: cannot resolve host {host:?} to an address",
                    self.listen
                ))
            })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.check_listen()?;
        if !self.security.key_encryption_key.is_empty()
            && KeyEncryptionKey::from_base64(&self.security.key_encryption_key).is_err()
        {
            // Never the value itself: it is a secret, and messages end up in logs.
            return Err(ConfigError::Invalid(
                "security.key_encryption_key (WHARF_SECURITY_KEY_ENCRYPTION_KEY) must be base64 of exactly 32 bytes, e.g. from `openssl rand -base64 32`".into(),
            ));
        }
        if self.tls.cert.is_empty() != self.tls.key.is_empty() {
            return Err(ConfigError::Invalid(
                "tls.cert and tls.key must be set together".into(),
            ));
        }
        for host in &self.public_hosts {
            let ok = !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "public_hosts entry {host:?} must be a host name or address, optionally with :port"
                )));
            }
        }
        if !(5..=3600).contains(&self.auth.token_ttl_seconds) {
            return Err(ConfigError::Invalid(
                "auth.token_ttl_seconds must be between 5 and 3600".into(),
            ));
        }
        if self.auth.clock_skew_seconds > 300 {
            return Err(ConfigError::Invalid(
                "auth.clock_skew_seconds must be between 0 and 300".into(),
            ));
        }
        if self.auth.service.is_empty() || self.auth.service.contains('"') {
            return Err(ConfigError::Invalid(
                "auth.service must be a non-empty name without quotes".into(),
            ));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.limits.manifest_max_bytes) {
            return Err(ConfigError::Invalid(
                "limits.manifest_max_bytes must be between 1 KiB and 64 MiB".into(),
            ));
        }
        if self.limits.max_connections == 0 || self.limits.max_connections_per_address == 0 {
            return Err(ConfigError::Invalid(
                "limits.max_connections and limits.max_connections_per_address must be at least 1".into(),
            ));
        }
        if !self.database.url.is_empty()
            && !["postgres://", "postgresql://"]
                .iter()
                .any(|scheme| self.database.url.starts_with(scheme))
        {
            return Err(ConfigError::Invalid(format!(
                "database.url {:?} must be a postgres:// URL (or empty for the embedded SQLite database)",
                redacted_url(&self.database.url)
            )));
        }
        match self.storage.backend.as_str() {
            "fs" => {}
            "s3" => {
                let s3 = &self.storage.s3;
                if s3.bucket.is_empty() {
                    return Err(ConfigError::Invalid(
                        "storage.s3.bucket must be set when storage.backend is s3".into(),
                    ));
                }
                if s3.region.is_empty() {
                    return Err(ConfigError::Invalid(
                        "storage.s3.region (or AWS_REGION) must be set when storage.backend is s3".into(),
                    ));
                }
                if s3.access_key_id.is_empty() || s3.secret_access_key.is_empty() {
                    return Err(ConfigError::Invalid(
                        "storage.s3 needs credentials: access_key_id and secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
                    ));
                }
                let scheme_ok = ["https://", "http://"].iter().any(|p| s3.endpoint.starts_with(p));
                if !s3.endpoint.is_empty() && !scheme_ok {
                    return Err(ConfigError::Invalid(format!(
                        "storage.s3.endpoint {:?} must be an http:// or https:// URL",
                        s3.endpoint
                    )));
                }
            }
            other => {
                return Err(ConfigError::Invalid(format!(
                    "storage.backend {other:?} must be \"fs\" or \"s3\""
                )));
            }
        }
        if self.limits.upload_idle_timeout_seconds < 60 {
            return Err(ConfigError::Invalid(
                "limits.upload_idle_timeout_seconds must be at least 60".into(),
            ));
        }
        let min_grace = if self.gc.allow_short_grace { 1 } else { 600 };
        if self.gc.grace_seconds < min_grace {
            return Err(ConfigError::Invalid(if self.gc.allow_short_grace {
                "gc.grace_seconds must be at least 1".into()
            } else {
                "gc.grace_seconds must be at least 600 (gc.allow_short_grace = true lowers it, for tests only)".into()
            }));
        }
        if (1..60).contains(&self.retention.interval_seconds) {
            return Err(ConfigError::Invalid(
                "retention.interval_seconds must be 0 (no schedule) or at least 60".into(),
            ));
        }
        if (1..60).contains(&self.gc.interval_seconds) {
            return Err(ConfigError::Invalid(
                "gc.interval_seconds must be 0 (no schedule) or at least 60".into(),
            ));
        }
        if !(1..=100).contains(&self.gc.busy_percent) {
            return Err(ConfigError::Invalid(
                "gc.busy_percent must be between 1 and 100".into(),
            ));
        }
        Ok(())
    }
}

impl S3Config {
    /// The AWS SDKs' usual variables fill what the file and `WHARF_STORAGE_S3_*` left empty.
    fn fill_from_aws_env(&mut self, env: &impl Fn(&str) -> Option<String>) {
        let fill = |field: &mut String, vars: &[&str]| {
            if field.is_empty()
                && let Some(v) = vars.iter().find_map(|v| env(v).filter(|v| !v.is_empty()))
            {
                *field = v;
            }
        };
        fill(&mut self.access_key_id, &["AWS_ACCESS_KEY_ID"]);
        fill(&mut self.secret_access_key, &["AWS_SECRET_ACCESS_KEY"]);
        fill(&mut self.region, &["AWS_REGION", "AWS_DEFAULT_REGION"]);
        fill(&mut self.endpoint, &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]);
    }
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    // Unknown keys stay, so deserialisation names them in its error.
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Walk the defaults: each leaf `a.b` can be replaced by `WHARF_A_B`, parsed as the leaf's type.
fn apply_env(
    value: &mut toml::Value,
    prefix: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let toml::Value::Table(table) = value else {
        return Ok(());
    };
    for (key, leaf) in table.iter_mut() {
        let var = format!("{prefix}_{}", key.to_ascii_uppercase());
        if leaf.is_table() {
            apply_env(leaf, &var, env)?;
            continue;
        }
        let Some(raw) = env(&var) else { continue };
        let bad = |message: &str| ConfigError::Env {
            var: var.clone(),
            message: message.to_owned(),
        };
        *leaf = match leaf {
            toml::Value::Boolean(_) => match raw.as_str() {
                "true" | "1" | "yes" => toml::Value::Boolean(true),
                "false" | "0" | "no" => toml::Value::Boolean(false),
                _ => return Err(bad("expected true or false")),
            },
            toml::Value::Integer(_) => {
                toml::Value::Integer(raw.parse().map_err(|_| bad("expected an integer"))?)
            }
            toml::Value::Array(_) => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.into()))
                    .collect(),
            ),
            _ => toml::Value::String(raw),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn environment_overrides_file_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wharf.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:6000\"\n[content_trust]\nenabled_at_bootstrap = true\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("WHARF_LISTEN", "0.0.0.0:7000"),
                ("WHARF_PUBLIC_HOSTS", "reg.example.com, other:5000"),
                ("WHARF_TLS_CERT", "/c"),
                ("WHARF_TLS_KEY", "/k"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:7000");
        assert_eq!(c.public_hosts, vec!["reg.example.com", "other:5000"]);
        assert!(c.content_trust.enabled_at_bootstrap);
        assert_eq!(c.tls.cert, "/c");
        assert_eq!(c.data_dir, PathBuf::from("./wharf-data"));
    }

    #[test]
    fn bad_input_gets_a_message_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wharf.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let err = Config::load(Some(&file), env(&[])).unwrap_err().to_string();
        assert!(err.contains("unknown field `lisen`"), "{err}");
        let err = Config::load(None, env(&[("WHARF_LISTEN", "nope")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid configuration: listen \"nope\" must be host:port, like 127.0.0.1:5000 or localhost:5000"
        );
        let err = Config::load(
            None,
            env(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "maybe")]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP: expected true or false"
        );
        let err = Config::load(None, env(&[("WHARF_TLS_CERT", "/only-cert")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: tls.cert and tls.key must be set together"
        );
    }

    /// Token lifetime and clock skew: the bounds are accepted, one past either is refused
    /// with a message naming the key, and the environment variable reaches the key.
    #[test]
    fn token_ttl_and_clock_skew_bounds() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!((c.auth.token_ttl_seconds, c.auth.clock_skew_seconds), (300, 30));
        let c = Config::load(
            None,
            env(&[
                ("WHARF_AUTH_TOKEN_TTL_SECONDS", "5"),
                ("WHARF_AUTH_CLOCK_SKEW_SECONDS", "0"),
            ]),
        )
        .unwrap();
        assert_eq!((c.auth.token_ttl_seconds, c.auth.clock_skew_seconds), (5, 0));
        let c = Config::load(
            None,
            env(&[
                ("WHARF_AUTH_TOKEN_TTL_SECONDS", "3600"),
                ("WHARF_AUTH_CLOCK_SKEW_SECONDS", "300"),
            ]),
        )
        .unwrap();
        assert_eq!((c.auth.token_ttl_seconds, c.auth.clock_skew_seconds), (3600, 300));

        let ttl = "invalid configuration: auth.token_ttl_seconds must be between 5 and 3600";
        let skew = "invalid configuration: auth.clock_skew_seconds must be between 0 and 300";
        for (var, value, message) in [
            ("WHARF_AUTH_TOKEN_TTL_SECONDS", "4", ttl),
            ("WHARF_AUTH_TOKEN_TTL_SECONDS", "3601", ttl),
            ("WHARF_AUTH_CLOCK_SKEW_SECONDS", "301", skew),
        ] {
            let err = Config::load(None, env(&[(var, value)])).unwrap_err();
            assert_eq!(err.to_string(), message, "{var}={value}");
        }
        // A negative value is not a u64: the file's parse error names the key.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wharf.toml");
        std::fs::write(&file, "[auth]\nclock_skew_seconds = -1\n").unwrap();
        let err = Config::load(Some(&file), env(&[])).unwrap_err().to_string();
        assert!(err.contains("clock_skew_seconds"), "{err}");
    }

    /// `[gc]`: defaults, the environment reaching every key, the minimum grace (lowered
    /// only by the test switch) and the schedule's bounds, each refusal naming its key.
    #[test]
    fn gc_keys_are_checked() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(
            (
                c.gc.grace_seconds,
                c.gc.interval_seconds,
                c.gc.allow_short_grace,
                c.gc.busy_percent
            ),
            (3600, 0, false, 50)
        );
        let c = Config::load(
            None,
            env(&[
                ("WHARF_GC_GRACE_SECONDS", "600"),
                ("WHARF_GC_INTERVAL_SECONDS", "86400"),
            ]),
        )
        .unwrap();
        assert_eq!((c.gc.grace_seconds, c.gc.interval_seconds), (600, 86400));
        let c = Config::load(
            None,
            env(&[
                ("WHARF_GC_GRACE_SECONDS", "2"),
                ("WHARF_GC_ALLOW_SHORT_GRACE", "true"),
            ]),
        )
        .unwrap();
        assert_eq!((c.gc.grace_seconds, c.gc.allow_short_grace), (2, true));
        let err = |pairs: &[(&str, &str)]| Config::load(None, env(pairs)).unwrap_err().to_string();
        assert_eq!(
            err(&[("WHARF_GC_GRACE_SECONDS", "599")]),
            "invalid configuration: gc.grace_seconds must be at least 600 (gc.allow_short_grace = true lowers it, for tests only)"
        );
        assert_eq!(
            err(&[
                ("WHARF_GC_GRACE_SECONDS", "0"),
                ("WHARF_GC_ALLOW_SHORT_GRACE", "true")
            ]),
            "invalid configuration: gc.grace_seconds must be at least 1"
        );
        assert_eq!(
            err(&[("WHARF_GC_INTERVAL_SECONDS", "59")]),
            "invalid configuration: gc.interval_seconds must be 0 (no schedule) or at least 60"
        );
        for bad in ["0", "101"] {
            assert_eq!(
                err(&[("WHARF_GC_BUSY_PERCENT", bad)]),
                "invalid configuration: gc.busy_percent must be between 1 and 100"
            );
        }
        let c = Config::load(None, env(&[("WHARF_GC_BUSY_PERCENT", "100")])).unwrap();
        assert_eq!(c.gc.busy_percent, 100);
        assert_eq!(
            err(&[("WHARF_GC_ALLOW_SHORT_GRACE", "sure")]),
            "environment variable WHARF_GC_ALLOW_SHORT_GRACE: expected true or false"
        );
    }

    /// `[retention]`: off by default, the environment reaching every key, the schedule's minimum.
    #[test]
    fn retention_keys_are_checked() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(
            (c.retention.interval_seconds, c.retention.allow_short_periods),
            (0, false)
        );
        let c = Config::load(
            None,
            env(&[
                ("WHARF_RETENTION_INTERVAL_SECONDS", "3600"),
                ("WHARF_RETENTION_ALLOW_SHORT_PERIODS", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (c.retention.interval_seconds, c.retention.allow_short_periods),
            (3600, true)
        );
        assert_eq!(
            Config::load(None, env(&[("WHARF_RETENTION_INTERVAL_SECONDS", "30")]))
                .unwrap_err()
                .to_string(),
            "invalid configuration: retention.interval_seconds must be 0 (no schedule) or at least 60"
        );
    }

    #[test]
    fn listen_takes_host_names_and_localhost_is_the_ipv4_loopback() {
        let load = |listen: &str| Config::load(None, env(&[("WHARF_LISTEN", listen)]));
        let c = load("localhost:5000").unwrap();
        assert_eq!(c.resolve_listen().unwrap(), "127.0.0.1:5000".parse().unwrap());
        assert_eq!(
            load("[::1]:5000").unwrap().resolve_listen().unwrap(),
            "[::1]:5000".parse().unwrap()
        );
        for bad in [
            "localhost",
            "localhost:",
            "localhost:99999",
            ":5000",
            "a b:5000",
            "::1:5000",
        ] {
            let err = load(bad).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "invalid configuration: listen {bad:?} must be host:port, like 127.0.0.1:5000 or localhost:5000"
                )
            );
        }
    }

    #[test]
    fn a_malformed_key_encryption_key_is_named_but_never_shown() {
        for bad in ["not base64!", "c2hvcnQ=", "AAAA"] {
            let err = Config::load(None, env(&[("WHARF_SECURITY_KEY_ENCRYPTION_KEY", bad)]))
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                "invalid configuration: security.key_encryption_key (WHARF_SECURITY_KEY_ENCRYPTION_KEY) must be base64 of exactly 32 bytes, e.g. from `openssl rand -base64 32`"
            );
        }
        let good = "A".repeat(43) + "=";
        Config::load(None, env(&[("WHARF_SECURITY_KEY_ENCRYPTION_KEY", &good)])).unwrap();
    }

    #[test]
    fn database_and_storage_keys_are_checked_and_secrets_never_shown() {
        let err = |pairs: &[(&str, &str)]| Config::load(None, env(pairs)).unwrap_err().to_string();
        assert_eq!(
            err(&[("WHARF_DATABASE_URL", "mysql://root:hunter2@db/wharf")]),
            "invalid configuration: database.url \"mysql://…@db/wharf\" must be a postgres:// URL (or empty for the embedded SQLite database)"
        );
        assert_eq!(
            err(&[("WHARF_STORAGE_BACKEND", "nfs")]),
            "invalid configuration: storage.backend \"nfs\" must be \"fs\" or \"s3\""
        );
        assert_eq!(
            err(&[("WHARF_STORAGE_BACKEND", "s3"), ("AWS_REGION", "garage")]),
            "invalid configuration: storage.s3.bucket must be set when storage.backend is s3"
        );
        assert_eq!(
            err(&[
                ("WHARF_STORAGE_BACKEND", "s3"),
                ("WHARF_STORAGE_S3_BUCKET", "b"),
                ("AWS_REGION", "garage")
            ]),
            "invalid configuration: storage.s3 needs credentials: access_key_id and secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        );

        let config = Config::load(
            None,
            env(&[
                (
                    "WHARF_DATABASE_URL",
                    "postgres://wharf:hunter2@db.example:5432/wharf",
                ),
                ("WHARF_STORAGE_BACKEND", "s3"),
                ("WHARF_STORAGE_S3_BUCKET", "blobs"),
                ("WHARF_STORAGE_S3_PATH_STYLE", "true"),
                ("AWS_REGION", "garage"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:3900"),
                ("AWS_ACCESS_KEY_ID", "GK123"),
                ("AWS_SECRET_ACCESS_KEY", "s3cr3t-key"),
            ]),
        )
        .unwrap();
        let s3 = &config.storage.s3;
        assert_eq!(
            (
                s3.endpoint.as_str(),
                s3.region.as_str(),
                s3.bucket.as_str(),
                s3.path_style
            ),
            ("http://127.0.0.1:3900", "garage", "blobs", true)
        );
        assert_eq!(
            (s3.access_key_id.as_str(), s3.secret_access_key.as_str()),
            ("GK123", "s3cr3t-key")
        );
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("s3cr3t-key"),
            "{printed}"
        );
        assert!(printed.contains("postgres://…@db.example:5432/wharf"));

        // The file (or WHARF_*) wins over the AWS variables.
        let config = Config::load(
            None,
            env(&[
                ("WHARF_STORAGE_BACKEND", "s3"),
                ("WHARF_STORAGE_S3_BUCKET", "blobs"),
                ("WHARF_STORAGE_S3_REGION", "eu-1"),
                ("WHARF_STORAGE_S3_ACCESS_KEY_ID", "mine"),
                ("WHARF_STORAGE_S3_SECRET_ACCESS_KEY", "x"),
                ("AWS_REGION", "garage"),
                ("AWS_ACCESS_KEY_ID", "GK123"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (
                config.storage.s3.region.as_str(),
                config.storage.s3.access_key_id.as_str()
            ),
            ("eu-1", "mine")
        );
    }
}
