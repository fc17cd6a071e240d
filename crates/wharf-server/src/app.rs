//! Wiring: stores → services → shared state → router.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use wharf_store::{BlobStore, MetadataStore};

use crate::observe::Metrics;
use crate::server_names::ServerNames;
use crate::services::access::AccessService;
use crate::services::anonymous_pull::AnonymousPull;
use crate::services::blobs::BlobService;
use crate::services::gc::GarbageCollector;
use crate::services::identity::IdentityService;
use crate::services::locks::LockService;
use crate::services::manifests::ManifestService;
use crate::services::portal_sessions::PortalSessions;
use crate::services::quotas::QuotaService;
use crate::services::readiness::Readiness;
use crate::services::retention::RetentionService;
use crate::services::signature_policy::SignaturePolicyService;
use crate::services::trust::TrustService;
use crate::services::uploads::UploadService;
use crate::services::usage::UsageService;

pub struct AppInner {
    /// The one reading of request names (image repository or trust GUN).
    pub names: Arc<ServerNames>,
    pub uploads: UploadService,
    pub manifests: ManifestService,
    pub blobs: BlobService,
    /// Owners' locks on repositories and tags.
    pub locks: LockService,
    /// Online garbage collection: on demand (admin API) and on the `gc.interval_seconds` schedule.
    pub gc: GarbageCollector,
    /// Storage usage per repository and for the registry.
    pub usage: UsageService,
    /// Storage quotas (checked by `uploads` and `manifests`, edited through the admin API).
    pub quotas: Arc<QuotaService>,
    /// Retention of untagged manifests and old tags: on demand and on `retention.interval_seconds`.
    pub retention: RetentionService,
    pub identity: IdentityService,
    pub trust: Arc<TrustService>,
    /// Whether a manifest read is answered: the server-side signature policy.
    pub signature_policy: SignaturePolicyService,
    pub access: AccessService,
    pub anonymous: AnonymousPull,
    pub portal_sessions: PortalSessions,
    pub readiness: Readiness,
    pub metrics: Metrics,
    /// `/metrics` answers only an owner's token (`metrics.require_token`).
    pub metrics_require_token: bool,
}

pub type AppState = Arc<AppInner>;

pub struct AppParts {
    pub blob_store: Arc<dyn BlobStore>,
    pub meta: Arc<dyn MetadataStore>,
    pub names: Arc<ServerNames>,
    pub identity: IdentityService,
    pub trust: Arc<TrustService>,
    pub signature_policy: SignaturePolicyService,
    pub quotas: Arc<QuotaService>,
    pub access: AccessService,
    pub anonymous: AnonymousPull,
    pub manifest_max_bytes: u64,
    pub upload_idle_timeout_seconds: u64,
    pub metrics_require_token: bool,
    /// Answer blob GETs with a redirect to a pre-signed store URL.
    pub redirect_downloads: bool,
    /// This replica's id (`replica_id`), the prefix of its upload leases.
    pub replica_id: String,
    /// `[gc]`.
    pub gc: crate::config::GcConfig,
    /// `[retention]`.
    pub retention: crate::config::RetentionConfig,
}

fn retention_service(parts: &AppParts) -> RetentionService {
    let retention = RetentionService::new(parts.meta.clone(), parts.trust.clone(), &parts.replica_id)
        .with_schedule(
            (parts.retention.interval_seconds > 0)
                .then(|| Duration::from_secs(parts.retention.interval_seconds)),
        );
    if parts.retention.allow_short_periods {
        retention.with_short_days()
    } else {
        retention
    }
}

fn garbage_collector(parts: &AppParts) -> GarbageCollector {
    let gc = GarbageCollector::new(parts.meta.clone(), parts.blob_store.clone(), &parts.replica_id)
        .with_grace(Duration::from_secs(parts.gc.grace_seconds))
        .with_busy_percent(parts.gc.busy_percent)
        .with_schedule(
            (parts.gc.interval_seconds > 0).then(|| Duration::from_secs(parts.gc.interval_seconds)),
        );
    if parts.gc.allow_short_grace {
        gc.with_min_grace(Duration::from_secs(1))
    } else {
        gc
    }
}

pub fn build(parts: AppParts) -> (AppState, Router) {
    let gc = garbage_collector(&parts);
    let retention = retention_service(&parts);
    let state = Arc::new(AppInner {
        names: parts.names,
        uploads: UploadService::new(
            parts.blob_store.clone(),
            parts.meta.clone(),
            parts.upload_idle_timeout_seconds,
            &parts.replica_id,
        )
        .with_quotas(parts.quotas.clone()),
        manifests: ManifestService::new(parts.meta.clone(), parts.manifest_max_bytes, parts.trust.clone())
            .with_quotas(parts.quotas.clone()),
        locks: LockService::new(parts.meta.clone()),
        blobs: BlobService::new(
            parts.blob_store.clone(),
            parts.meta.clone(),
            parts.redirect_downloads,
            Duration::from_secs(parts.gc.grace_seconds),
        ),
        gc,
        usage: UsageService::new(parts.meta.clone()),
        quotas: parts.quotas,
        retention,
        readiness: Readiness::new(parts.meta.clone(), parts.blob_store),
        identity: parts.identity,
        trust: parts.trust,
        signature_policy: parts.signature_policy,
        access: parts.access,
        anonymous: parts.anonymous,
        portal_sessions: PortalSessions::new(parts.meta),
        metrics: Metrics::default(),
        metrics_require_token: parts.metrics_require_token,
    });
    let router = crate::routes::router(state.clone());
    (state, router)
}
