//! Storage usage, answered from the metadata database (object storage is never listed):
//! what each repository links and what deleting it would free, and the registry's total
//! with shared blobs counted once.

use async_trait::async_trait;

use crate::StoreResult;

/// What one repository holds. Blobs being deleted by garbage collection (tombstones) are
/// never counted; unlinked blobs belong to no repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RepositoryUsage {
    pub repository: String,
    /// Distinct blobs linked to the repository (layers, configs, anything uploaded) plus
    /// the bytes of its manifests.
    pub linked_bytes: u64,
    /// What deleting the repository would free once garbage collection ran: its
    /// manifests and the blobs no other repository links.
    pub exclusive_bytes: u64,
    /// The manifests' own bytes (part of both sums above: manifests live in the database
    /// per repository, never shared).
    pub manifest_bytes: u64,
    pub manifests: u64,
    pub tags: u64,
    pub blobs: u64,
}

/// The registry as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RegistryUsage {
    /// Every linked blob counted once, however many repositories link it, plus every
    /// manifest's bytes: what the registry's content occupies.
    pub stored_bytes: u64,
    /// `linked_bytes` summed over the repositories (shared blobs counted once per
    /// repository); `repositories_bytes - stored_bytes` is what sharing saves.
    pub repositories_bytes: u64,
    /// Distinct linked blobs.
    pub blobs: u64,
    pub manifest_bytes: u64,
    pub manifests: u64,
    pub tags: u64,
    pub repositories: u64,
    /// Blobs no repository links (not yet collected, not being deleted): what the next
    /// garbage collection frees once their grace has passed.
    pub unlinked_bytes: u64,
    pub unlinked_blobs: u64,
}

/// Storage usage per repository and for the registry. Every query walks indexes from the
/// repositories asked about (a page costs its own repositories' links), except
/// `registry_usage`, which reads every blob row once.
#[async_trait]
pub trait UsageStore: Send + Sync + 'static {
    /// One repository's usage; `None` when there is no such repository.
    async fn repository_usage(&self, repository: &str) -> StoreResult<Option<RepositoryUsage>>;
    /// Up to `limit` repositories after `after` in name (byte) order, each with its usage.
    async fn repository_usage_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<RepositoryUsage>>;
    async fn registry_usage(&self) -> StoreResult<RegistryUsage>;
}

/// Which repositories a usage query reports on (`$1`, and `$2` the page size).
pub(crate) enum UsageSelection {
    One,
    PageAfter,
}

/// The usage query both databases run; `length` is their function for a byte string's
/// length. It walks each selected repository's links once (the primary key starts with
/// the repository id) joined to their blobs, grouped per repository; "would free" asks
/// the `repository_blobs_digest` index whether any other repository links each blob.
/// Manifest and tag figures are subqueries correlated to the repository, reading only its
/// rows. (CTEs grouped over whole tables made SQLite scan every link for a page.) Sums
/// are cast to BIGINT because PostgreSQL's SUM of BIGINT is NUMERIC.
pub(crate) fn repository_usage_sql(selection: UsageSelection, length: &str) -> String {
    let page = match selection {
        UsageSelection::One => "SELECT id, name FROM repositories WHERE name = $1",
        UsageSelection::PageAfter => {
            "SELECT id, name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2"
        }
    };
    format!(
        "WITH page AS ({page})
         SELECT page.name AS repository,
                CAST(COUNT(b.digest) AS BIGINT) AS blobs,
                CAST(COALESCE(SUM(b.size), 0) AS BIGINT) AS blob_bytes,
                CAST(COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM repository_blobs o
                                                     WHERE o.digest = b.digest AND o.repository_id <> page.id)
                                       THEN 0 ELSE b.size END), 0) AS BIGINT) AS exclusive_blob_bytes,
                CAST((SELECT COUNT(*) FROM manifests m WHERE m.repository_id = page.id) AS BIGINT) AS manifests,
                CAST(COALESCE((SELECT SUM({length}(m.content)) FROM manifests m WHERE m.repository_id = page.id), 0)
                     AS BIGINT) AS manifest_bytes,
                CAST((SELECT COUNT(*) FROM tags t WHERE t.repository_id = page.id) AS BIGINT) AS tags
           FROM page
           LEFT JOIN repository_blobs rb ON rb.repository_id = page.id
           LEFT JOIN blobs b ON b.digest = rb.digest AND b.tombstoned_at IS NULL
          GROUP BY page.id, page.name
          ORDER BY page.name"
    )
}

/// The registry-wide query. Links are grouped by digest first (the
/// `repository_blobs_digest` index, read in order), so each linked blob is joined to its
/// row once: its size counts once for `stored` and once per link for the repositories'
/// sum. Unlinked is what remains of the live blobs after the linked ones (a link never
/// names a tombstone).
pub(crate) fn registry_usage_sql(length: &str) -> String {
    format!(
        "WITH per_blob AS (
           SELECT digest, COUNT(*) AS links FROM repository_blobs GROUP BY digest),
         linked AS (
           SELECT CAST(COUNT(*) AS BIGINT) AS blobs,
                  CAST(COALESCE(SUM(b.size), 0) AS BIGINT) AS blob_bytes,
                  CAST(COALESCE(SUM(b.size * per_blob.links), 0) AS BIGINT) AS link_bytes
             FROM per_blob JOIN blobs b ON b.digest = per_blob.digest
            WHERE b.tombstoned_at IS NULL),
         live AS (
           SELECT CAST(COUNT(*) AS BIGINT) AS live_blobs,
                  CAST(COALESCE(SUM(size), 0) AS BIGINT) AS live_bytes
             FROM blobs WHERE tombstoned_at IS NULL),
         manifest_totals AS (
           SELECT CAST(COUNT(*) AS BIGINT) AS manifests,
                  CAST(COALESCE(SUM({length}(content)), 0) AS BIGINT) AS manifest_bytes
             FROM manifests)
         SELECT linked.*, manifest_totals.*,
                live.live_blobs - linked.blobs AS unlinked_blobs,
                live.live_bytes - linked.blob_bytes AS unlinked_bytes,
                CAST((SELECT COUNT(*) FROM tags) AS BIGINT) AS tags,
                CAST((SELECT COUNT(*) FROM repositories) AS BIGINT) AS repositories
           FROM linked, live, manifest_totals"
    )
}

/// A count or sum the database returned as BIGINT; never negative.
pub(crate) fn unsigned(value: i64) -> u64 {
    value.max(0) as u64
}

/// A row of `repository_usage_sql`, on either database.
pub(crate) fn repository_usage_from_row<R>(row: &R) -> StoreResult<RepositoryUsage>
where
    R: sqlx::Row,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    let n = |column: &str| -> StoreResult<u64> { Ok(unsigned(row.try_get::<i64, _>(column)?)) };
    let manifest_bytes = n("manifest_bytes")?;
    Ok(RepositoryUsage {
        repository: row.try_get("repository")?,
        linked_bytes: n("blob_bytes")? + manifest_bytes,
        exclusive_bytes: n("exclusive_blob_bytes")? + manifest_bytes,
        manifest_bytes,
        manifests: n("manifests")?,
        tags: n("tags")?,
        blobs: n("blobs")?,
    })
}

/// The row of `registry_usage_sql`, on either database.
pub(crate) fn registry_usage_from_row<R>(row: &R) -> StoreResult<RegistryUsage>
where
    R: sqlx::Row,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    let n = |column: &str| -> StoreResult<u64> { Ok(unsigned(row.try_get::<i64, _>(column)?)) };
    let manifest_bytes = n("manifest_bytes")?;
    Ok(RegistryUsage {
        stored_bytes: n("blob_bytes")? + manifest_bytes,
        repositories_bytes: n("link_bytes")? + manifest_bytes,
        blobs: n("blobs")?,
        manifest_bytes,
        manifests: n("manifests")?,
        tags: n("tags")?,
        repositories: n("repositories")?,
        unlinked_bytes: n("unlinked_bytes")?,
        unlinked_blobs: n("unlinked_blobs")?,
    })
}
