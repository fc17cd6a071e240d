//! Storage usage: what each repository holds and would free, and the registry's total
//! with shared blobs counted once — all from the metadata database (`UsageStore`), never
//! by listing object storage.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wharf_store::{MetadataStore, RegistryUsage, RepositoryUsage};

use crate::names::valid_repository_name;
use crate::services::{RegistryError, RegistryResult};

/// Repositories per page unless the caller asks for fewer (and at most this many).
pub const MAX_PAGE: u32 = 1000;
/// How long `/metrics` reuses the registry total: scrapes cost one query a minute at most,
/// however often they come.
const METRICS_MAX_AGE: Duration = Duration::from_secs(60);

/// One page of repositories with their usage, and where the next begins.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UsagePage {
    /// On the first page only: the registry total reads every blob row (about a second
    /// at 300,000 blobs), a page only its own repositories' rows, so paging through stays
    /// cheap.
    pub registry: Option<RegistryUsage>,
    pub repositories: Vec<RepositoryUsage>,
    /// The name to pass as `last` for the next page; `None` on the last page.
    pub next: Option<String>,
}

pub struct UsageService {
    meta: Arc<dyn MetadataStore>,
    /// The registry total `/metrics` last read, and when.
    metrics_figure: Mutex<Option<(Instant, RegistryUsage)>>,
}

impl UsageService {
    pub fn new(meta: Arc<dyn MetadataStore>) -> Self {
        Self {
            meta,
            metrics_figure: Mutex::new(None),
        }
    }

    /// One repository's usage; `NAME_UNKNOWN` when there is no such repository.
    pub async fn repository(&self, repository: &str) -> RegistryResult<RepositoryUsage> {
        if !valid_repository_name(repository) {
            return Err(RegistryError::NameInvalid(repository.to_owned()));
        }
        self.meta
            .repository_usage(repository)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(repository.to_owned()))
    }

    /// Up to `limit` repositories after `last`, in name order; the first page (no `last`)
    /// with the registry total.
    pub async fn page(&self, last: Option<&str>, limit: u32) -> RegistryResult<UsagePage> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(RegistryError::PaginationInvalid(format!(
                "n must be between 1 and {MAX_PAGE}"
            )));
        }
        let registry = match last {
            None => Some(self.meta.registry_usage().await?),
            Some(_) => None,
        };
        // One more than asked says whether another page follows without a second query.
        let mut repositories = self.meta.repository_usage_page(last, limit + 1).await?;
        let next = if repositories.len() > limit as usize {
            repositories.truncate(limit as usize);
            repositories.last().map(|u| u.repository.clone())
        } else {
            None
        };
        Ok(UsagePage {
            registry,
            repositories,
            next,
        })
    }

    /// `wharf_storage_*` gauges, Prometheus text format: the registry total only. Labels
    /// carry no repository names (see routes/metrics.rs): per-repository figures are in
    /// the admin API. The figure is at most a minute old; a failed read leaves the gauges
    /// out of this scrape rather than failing it.
    pub async fn render_metrics(&self) -> String {
        let cached = self.metrics_figure.lock().ok().and_then(|c| {
            c.as_ref()
                .filter(|(at, _)| at.elapsed() < METRICS_MAX_AGE)
                .map(|(_, u)| u.clone())
        });
        let usage = match cached {
            Some(usage) => usage,
            None => match self.meta.registry_usage().await {
                Ok(usage) => {
                    if let Ok(mut c) = self.metrics_figure.lock() {
                        *c = Some((Instant::now(), usage.clone()));
                    }
                    usage
                }
                Err(e) => {
                    tracing::warn!(error = %e, "storage usage for /metrics");
                    return String::new();
                }
            },
        };
        format!(
            "# HELP wharf_storage_bytes Bytes of registry content from the metadata database (at most a minute old): stored = linked blobs counted once plus manifests; repositories = the sum over repositories (shared blobs once per repository); unlinked = blobs no repository links, freed by garbage collection.\n\
             # TYPE wharf_storage_bytes gauge\n\
             wharf_storage_bytes{{kind=\"stored\"}} {}\n\
             wharf_storage_bytes{{kind=\"repositories\"}} {}\n\
             wharf_storage_bytes{{kind=\"unlinked\"}} {}\n\
             # HELP wharf_storage_repositories Repositories in the registry.\n\
             # TYPE wharf_storage_repositories gauge\n\
             wharf_storage_repositories {}\n",
            usage.stored_bytes, usage.repositories_bytes, usage.unlinked_bytes, usage.repositories,
        )
    }
}
