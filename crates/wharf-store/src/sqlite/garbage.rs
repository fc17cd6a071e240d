//! SQLite: garbage collection of blob links and blobs. Each batch first looks for
//! candidates outside any write transaction (a WAL read: pushes go on meanwhile), then
//! removes them in one short write transaction (`BEGIN IMMEDIATE`, one writer at a time)
//! whose every statement repeats the whole garbage condition for its one row — so a
//! manifest PUT, upload or mount that committed between the search and the write keeps
//! what it references. Searching under the write lock held pushes back for the scan of
//! every live row between two pieces of garbage (measured: p99 of a manifest PUT 8.8x idle).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{SqliteMetadataStore, WriteTx, digest_col};
use crate::metadata::{
    BlobBatch, GC_LEASE, GarbageBlob, GarbageLink, GarbageStore, GcLease, LinkBatch, LinkCursor,
};
use crate::{Digest, StoreError, StoreResult};

/// Links older than `$3` that no manifest of their repository references, after the
/// cursor `($1, $2)`, in primary-key order, at most `$4`.
const GARBAGE_LINKS: &str = "SELECT rb.repository_id, r.name, rb.digest, rb.linked_at
      FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
     WHERE (rb.repository_id, rb.digest) > ($1, $2) AND rb.linked_at < $3
       AND NOT EXISTS (SELECT 1 FROM manifest_references mr
                        WHERE mr.repository_id = rb.repository_id AND mr.child_digest = rb.digest)
     ORDER BY rb.repository_id, rb.digest LIMIT $4";

fn link_row(r: &SqliteRow) -> StoreResult<(LinkCursor, GarbageLink)> {
    let cursor = LinkCursor {
        repository_id: r.try_get("repository_id")?,
        digest: r.try_get("digest")?,
    };
    let link = GarbageLink {
        repository: r.try_get("name")?,
        digest: digest_col(r, "digest")?,
        linked_at: r.try_get("linked_at")?,
    };
    Ok((cursor, link))
}

fn blob_row(r: &SqliteRow) -> StoreResult<GarbageBlob> {
    Ok(GarbageBlob {
        digest: digest_col(r, "digest")?,
        size: r.try_get::<i64, _>("size")?.max(0) as u64,
    })
}

fn after_link(after: Option<&LinkCursor>) -> (i64, &str) {
    after.map_or((i64::MIN, ""), |c| (c.repository_id, c.digest.as_str()))
}

/// The next cursor: the last row looked at when the batch was full (there may be more).
fn next_if_full<T: Clone>(rows: &[T], limit: u32) -> Option<T> {
    if rows.len() >= limit as usize {
        rows.last().cloned()
    } else {
        None
    }
}

/// Inside a write transaction: refuse unless `holder` holds the GC lease at `now`.
async fn check_lease(tx: &mut WriteTx, holder: &str, now: i64) -> StoreResult<()> {
    let held: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM leases WHERE name = $1 AND holder = $2 AND expires_at > $3")
            .bind(GC_LEASE)
            .bind(holder)
            .bind(now)
            .fetch_optional(&mut **tx)
            .await?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::Conflict(
            "this garbage collection no longer holds the GC lease".into(),
        )),
    }
}

#[async_trait]
impl GarbageStore for SqliteMetadataStore {
    async fn take_lease(&self, name: &str, holder: &str, until: i64, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn gc_lease(&self, now: i64) -> StoreResult<Option<GcLease>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT holder, expires_at FROM leases WHERE name = $1 AND expires_at > $2")
                .bind(GC_LEASE)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(holder, expires_at)| GcLease { holder, expires_at }))
    }

    async fn sweep_garbage_links(
        &self,
        holder: &str,
        now: i64,
        cutoff: i64,
        after: Option<&LinkCursor>,
        limit: u32,
    ) -> StoreResult<LinkBatch> {
        let (repo, digest) = after_link(after);
        let rows = sqlx::query(GARBAGE_LINKS)
            .bind(repo)
            .bind(digest)
            .bind(cutoff)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let found = rows.iter().map(link_row).collect::<StoreResult<Vec<_>>>()?;
        let next = next_if_full(&found, limit).map(|(key, _)| key);
        let mut links = Vec::with_capacity(found.len());
        let mut tx = self.write_background().await?;
        check_lease(&mut tx, holder, now).await?;
        for (key, link) in found {
            let gone = sqlx::query(
                "DELETE FROM repository_blobs
                      WHERE repository_id = $1 AND digest = $2 AND linked_at < $3
                        AND NOT EXISTS (SELECT 1 FROM manifest_references mr
                                         WHERE mr.repository_id = $1 AND mr.child_digest = $2)",
            )
            .bind(key.repository_id)
            .bind(&key.digest)
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if gone > 0 {
                links.push(link);
            }
        }
        tx.commit().await?;
        Ok(LinkBatch { links, next })
    }

    async fn garbage_links(
        &self,
        cutoff: i64,
        after: Option<&LinkCursor>,
        limit: u32,
    ) -> StoreResult<LinkBatch> {
        let (repo, digest) = after_link(after);
        let rows = sqlx::query(GARBAGE_LINKS)
            .bind(repo)
            .bind(digest)
            .bind(cutoff)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let found = rows.iter().map(link_row).collect::<StoreResult<Vec<_>>>()?;
        let next = next_if_full(&found, limit).map(|(key, _)| key);
        Ok(LinkBatch {
            links: found.into_iter().map(|(_, link)| link).collect(),
            next,
        })
    }

    async fn tombstone_garbage_blobs(
        &self,
        holder: &str,
        now: i64,
        cutoff: i64,
        after: Option<&Digest>,
        limit: u32,
    ) -> StoreResult<BlobBatch> {
        let rows = sqlx::query(
            "SELECT digest, size FROM blobs b
              WHERE digest > $1 AND tombstoned_at IS NULL AND last_linked_at < $2
                AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
              ORDER BY digest LIMIT $3",
        )
        .bind(after.map_or("", Digest::as_str))
        .bind(cutoff)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let found = rows.iter().map(blob_row).collect::<StoreResult<Vec<_>>>()?;
        let next = next_if_full(&found, limit).map(|b| b.digest);
        let mut blobs = Vec::with_capacity(found.len());
        let mut tx = self.write_background().await?;
        check_lease(&mut tx, holder, now).await?;
        for blob in found {
            let marked = sqlx::query(
                "UPDATE blobs SET tombstoned_at = $2
                      WHERE digest = $1 AND tombstoned_at IS NULL AND last_linked_at < $3
                        AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = $1)",
            )
            .bind(blob.digest.as_str())
            .bind(now)
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if marked > 0 {
                blobs.push(blob);
            }
        }
        tx.commit().await?;
        Ok(BlobBatch { blobs, next })
    }

    async fn garbage_blobs(&self, cutoff: i64, after: Option<&Digest>, limit: u32) -> StoreResult<BlobBatch> {
        // As the sweep would leave it: links that are garbage themselves do not count.
        let rows = sqlx::query(
            "SELECT digest, size FROM blobs b
              WHERE digest > $1 AND tombstoned_at IS NULL AND last_linked_at < $2
                AND NOT EXISTS (
                  SELECT 1 FROM repository_blobs rb
                   WHERE rb.digest = b.digest
                     AND (rb.linked_at >= $2 OR EXISTS (
                           SELECT 1 FROM manifest_references mr
                            WHERE mr.repository_id = rb.repository_id AND mr.child_digest = rb.digest)))
              ORDER BY digest LIMIT $3",
        )
        .bind(after.map_or("", Digest::as_str))
        .bind(cutoff)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let blobs = rows.iter().map(blob_row).collect::<StoreResult<Vec<_>>>()?;
        let next = next_if_full(&blobs, limit).map(|b| b.digest);
        Ok(BlobBatch { blobs, next })
    }

    async fn pending_tombstones(&self, after: Option<&Digest>, limit: u32) -> StoreResult<Vec<GarbageBlob>> {
        let rows = sqlx::query(
            "SELECT digest, size FROM blobs WHERE tombstoned_at IS NOT NULL AND digest > $1
              ORDER BY digest LIMIT $2",
        )
        .bind(after.map_or("", Digest::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(blob_row).collect()
    }

    async fn finish_tombstones(&self, holder: &str, now: i64, digests: &[Digest]) -> StoreResult<u64> {
        let mut tx = self.write_background().await?;
        check_lease(&mut tx, holder, now).await?;
        let mut gone = 0;
        for digest in digests {
            gone += sqlx::query("DELETE FROM blobs WHERE digest = $1 AND tombstoned_at IS NOT NULL")
                .bind(digest.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(gone)
    }
}
