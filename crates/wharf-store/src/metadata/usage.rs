//! Storage usage, answered from the metadata database (object storage is never listed):
//! what each repository links and what deleting it would free, and the registry's total
//! with shared blobs counted once.

use async_trait::async_trait;

use crate::{Digest, StoreResult};

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

/// The repositories a quota measures together: the registry, one repository, or every
/// repository whose name starts with `prefix` (which ends with `/`, as `team/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageScope<'a> {
    Registry,
    Repository(&'a str),
    Prefix(&'a str),
}

/// What a scope holds, as a quota counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScopeUsage {
    /// The distinct blobs linked to any repository of the scope (a blob several of them
    /// link counted once) plus their manifests' bytes. For the registry this is
    /// `RegistryUsage::stored_bytes`; for one repository its `linked_bytes`.
    pub linked_bytes: u64,
    /// Whether the blob asked about is already linked somewhere in the scope (linking it
    /// once more then costs the scope nothing).
    pub holds_blob: bool,
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
    /// What `scope` holds, and whether it already links `blob` (false when `None`).
    /// Reads only the scope's repositories' rows, except for `Registry`, which reads
    /// every link.
    async fn scope_usage(&self, scope: UsageScope<'_>, blob: Option<&Digest>) -> StoreResult<ScopeUsage>;
}

/// The scope query both databases run, and its parameters in order (the blob's digest
/// last; an empty string, which no digest is, when none is asked about). A prefix is a
/// name range, `[prefix, prefix with its final `/` raised to `0`)`, so the unique name
/// index finds it and no `LIKE` pattern can be smuggled in through `_` or `%`; names are
/// ASCII, compared byte-wise on both databases.
pub(crate) fn scope_usage_query(
    scope: UsageScope<'_>,
    blob: Option<&Digest>,
    length: &str,
) -> (String, Vec<String>) {
    let (selection, mut params) = match scope {
        UsageScope::Registry => ("SELECT id FROM repositories".to_owned(), Vec::new()),
        UsageScope::Repository(name) => (
            "SELECT id FROM repositories WHERE name = $1".to_owned(),
            vec![name.to_owned()],
        ),
        UsageScope::Prefix(prefix) => {
            let upper = match prefix.strip_suffix('/') {
                Some(stem) => format!("{stem}0"),
                // Not a prefix the quota grammar makes; still a correct (empty-safe) range.
                None => format!("{prefix}\u{10FFFF}"),
            };
            (
                "SELECT id FROM repositories WHERE name >= $1 AND name < $2".to_owned(),
                vec![prefix.to_owned(), upper],
            )
        }
    };
    let blob_param = format!("${}", params.len() + 1);
    params.push(blob.map(|d| d.as_str().to_owned()).unwrap_or_default());
    let sql = format!(
        "WITH scope AS ({selection}),
         scope_blobs AS (
           SELECT DISTINCT rb.digest FROM repository_blobs rb JOIN scope ON rb.repository_id = scope.id)
         SELECT CAST(COALESCE((SELECT SUM(b.size) FROM scope_blobs s
                                 JOIN blobs b ON b.digest = s.digest
                                WHERE b.tombstoned_at IS NULL), 0) AS BIGINT) AS blob_bytes,
                CAST(COALESCE((SELECT SUM({length}(m.content)) FROM manifests m
                                 JOIN scope ON m.repository_id = scope.id), 0) AS BIGINT) AS manifest_bytes,
                CAST((SELECT COUNT(*) FROM scope_blobs WHERE digest = {blob_param}) AS BIGINT) AS holds"
    );
    (sql, params)
}

/// The row of `scope_usage_query`, on either database.
pub(crate) fn scope_usage_from_row<R>(row: &R) -> StoreResult<ScopeUsage>
where
    R: sqlx::Row,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    let n = |column: &str| -> StoreResult<u64> { Ok(unsigned(row.try_get::<i64, _>(column)?)) };
    Ok(ScopeUsage {
        linked_bytes: n("blob_bytes")? + n("manifest_bytes")?,
        holds_blob: n("holds")? > 0,
    })
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
