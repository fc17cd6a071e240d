//! Wharf's server: one HTTPS listener for the registry API, the token service and
//! metrics (trust, admin API and portal join it). See ARCHITECTURE.md for the map.

pub mod app;
pub mod auth;
pub mod backends;
pub mod clock;
pub mod config;
pub mod connection_limits;
pub mod listener;
pub mod names;
pub mod observe;
pub mod read_ahead;
pub mod replica_id;
pub mod routes;
pub mod server_names;
pub mod services;
pub mod tls;
pub mod views;
pub mod wire;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use wharf_store::StoreError;

use crate::auth::secrets::{KeyEncryptionKey, SecretError};
use crate::config::Config;
use crate::server_names::ServerNames;
use crate::services::identity::{IdentityError, IdentityService};
use crate::services::signature_policy::SignaturePolicyService;
use crate::services::trust::TrustService;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot create data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("cannot open storage: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    ReplicaId(#[from] replica_id::ReplicaIdError),
    #[error(transparent)]
    Backend(#[from] backends::BackendError),
    #[error("cannot free this replica's earlier upload leases: {0}")]
    Uploads(#[from] services::RegistryError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
}

/// What an operator needs to know once the server is up.
pub struct Started {
    pub url: String,
    pub generated_ca: Option<PathBuf>,
    /// The bootstrap owner's password, when Wharf generated it (shown once).
    pub generated_admin_password: Option<String>,
    pub admin_password_file: PathBuf,
}

/// Prepare everything, bind, report through `on_started`, then serve until `shutdown`.
pub async fn run(
    config: Config,
    admin_password: Option<String>,
    on_started: impl FnOnce(&Started),
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    // Everything that can be checked without changing anything comes first, so a wrong
    // setting or file fails the start with the data directory untouched.
    let addr = config.resolve_listen()?;
    let operator_tls = tls::load_configured(&config)?;
    let data = config.data_dir.clone();
    let kek_file = data.join("key-encryption-key");
    let existing_kek = KeyEncryptionKey::load(&config.security.key_encryption_key, &kek_file)?;
    // Bound next: the listen address is one of the names trust GUNs start with, and
    // those names must be fixed before any service reads a name.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Bind(addr.to_string(), e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| StartError::Bind(addr.to_string(), e))?;
    let names = Arc::new(ServerNames::new(&config.public_hosts, bound));
    if config.public_hosts.is_empty() && !bound.ip().is_loopback() {
        tracing::warn!(
            names = ?names.hosts(),
            "public_hosts is empty: signed images pushed through any other host name are refused; set public_hosts to the names clients use"
        );
    }
    if config.gc.allow_short_grace {
        tracing::warn!(
            grace_seconds = config.gc.grace_seconds,
            "gc.allow_short_grace is on: garbage collection accepts grace periods under 10 minutes, which can delete a blob a slow push is about to reference; for tests and labs only"
        );
    }
    if config.retention.allow_short_periods {
        tracing::warn!(
            "retention.allow_short_periods is on: a retention policy day lasts one second, so untagged manifests go within seconds; for tests only"
        );
    }
    // Password and token hashes and sealed keys live here: owner only, whatever the umask.
    auth::secrets::private_dir(&data).map_err(|e| StartError::DataDir(data.display().to_string(), e))?;
    let tls = match operator_tls {
        Some(tls) => tls,
        None => tls::generated(&config)?,
    };
    let kek = Arc::new(match existing_kek {
        Some(kek) => kek,
        None => KeyEncryptionKey::create(&kek_file)?,
    });
    let meta = backends::open_metadata(&config, &data).await?;
    let blob_store = backends::open_blobs(&config, &data).await?;
    let revocations = Arc::new(auth::revocations::Revocations::new(meta.clone()));
    let identity = IdentityService::open(
        meta.clone(),
        kek.clone(),
        &config.auth.service,
        config.auth.token_ttl_seconds,
        config.auth.clock_skew_seconds,
        names.clone(),
        revocations.clone(),
    )
    .await?;
    let trust = Arc::new(
        TrustService::open(
            meta.clone(),
            kek.clone(),
            names.clone(),
            config.content_trust.enabled_at_bootstrap,
            !config.database.url.is_empty(),
        )
        .await?,
    );
    let signature_policy =
        SignaturePolicyService::open(meta.clone(), blob_store.clone(), trust.clone()).await?;
    let quotas = Arc::new(services::quotas::QuotaService::open(meta.clone()).await?);
    let generated_admin_password = identity.bootstrap_owner(admin_password, &data).await?;
    let access =
        services::access::AccessService::new(meta.clone(), &config.auth.service, revocations.clone());
    let anonymous = services::anonymous_pull::AnonymousPull::open(meta.clone()).await?;
    let (state, router) = app::build(app::AppParts {
        blob_store,
        meta,
        names,
        identity,
        trust,
        signature_policy,
        quotas,
        access,
        anonymous,
        manifest_max_bytes: config.limits.manifest_max_bytes,
        upload_idle_timeout_seconds: config.limits.upload_idle_timeout_seconds,
        metrics_require_token: config.metrics.require_token,
        replica_id: replica_id::load_or_create(&data)?,
        redirect_downloads: config.storage.backend == "s3" && config.storage.s3.redirect_downloads,
        gc: config.gc.clone(),
        retention: config.retention.clone(),
    });
    state.uploads.release_leases_of_earlier_runs().await?;
    let sync = {
        let state = state.clone();
        tokio::spawn(async move { services::replica_sync::run(&state).await })
    };
    on_started(&Started {
        url: format!("https://{bound}"),
        generated_ca: tls.generated_ca.clone(),
        generated_admin_password,
        admin_password_file: data.join("initial-admin-password"),
    });
    tracing::info!(%bound, "wharf listening");
    let limits = connection_limits::ConnectionLimits::new(
        config.limits.max_connections,
        config.limits.max_connections_per_address,
    );
    listener::serve(listener, tls.config, router, limits, shutdown).await;
    sync.abort();
    Ok(())
}
