//! PostgreSQL: garbage collection of blob links and blobs, next to replicas that push.
//! Each batch is one transaction at READ COMMITTED in two statements: the first finds
//! candidates and locks them `FOR UPDATE SKIP LOCKED` (rows a push or link holds are
//! skipped: they are in use), the second changes them only if they are still garbage as
//! of its own, later snapshot — which sees every transaction that held one of those rows
//! before we locked it. Transactions that want a row after we locked it wait for our
//! commit and then find it gone or tombstoned. The collector never waits for a pusher,
//! so the two cannot deadlock. The GC lease row is read `FOR SHARE` in every batch: a
//! collector taking the lease over waits for the batch, and a collector that lost it
//! changes nothing.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

use super::{PostgresMetadataStore, digest_col};
use crate::metadata::{
    BlobBatch, GC_LEASE, GarbageBlob, GarbageLink, GarbageStore, GcLease, LinkBatch, LinkCursor,
};
use crate::{Digest, StoreError, StoreResult};

/// "No manifest of the link's repository references it", for a link aliased `rb`.
const UNREFERENCED: &str = "NOT EXISTS (SELECT 1 FROM manifest_references mr
                        WHERE mr.repository_id = rb.repository_id AND mr.child_digest = rb.digest)";

fn link_row(r: &PgRow) -> StoreResult<(LinkCursor, GarbageLink)> {
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

fn blob_row(r: &PgRow) -> StoreResult<GarbageBlob> {
    Ok(GarbageBlob {
        digest: digest_col(r, "digest")?,
        size: r.try_get::<i64, _>("size")?.max(0) as u64,
    })
}

fn after_link(after: Option<&LinkCursor>) -> (i64, &str) {
    after.map_or((i64::MIN, ""), |c| (c.repository_id, c.digest.as_str()))
}

fn next_if_full<T: Clone>(rows: &[T], limit: u32) -> Option<T> {
    if rows.len() >= limit as usize {
        rows.last().cloned()
    } else {
        None
    }
}

/// Inside a batch's transaction: refuse unless `holder` holds the GC lease at `now`, and
/// keep the lease row share-locked until the batch commits (see the module comment).
async fn check_lease(tx: &mut Transaction<'static, Postgres>, holder: &str, now: i64) -> StoreResult<()> {
    let held: Option<bool> = sqlx::query_scalar(
        "SELECT TRUE FROM leases WHERE name = $1 AND holder = $2 AND expires_at > $3 FOR SHARE",
    )
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
impl GarbageStore for PostgresMetadataStore {
    async fn take_lease(&self, name: &str, holder: &str, until: i64, now: i64) -> StoreResult<bool> {
        // The upsert locks the lease row, so two takers queue and the second sees the
        // first's lease; it also waits for a batch of the holder's in flight.
        let taken: Option<bool> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $4
             RETURNING TRUE",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(taken.is_some())
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
        let mut tx = self.pool.begin().await?;
        check_lease(&mut tx, holder, now).await?;
        let (repo, digest) = after_link(after);
        let locked = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT rb.repository_id, rb.digest FROM repository_blobs rb
              WHERE (rb.repository_id, rb.digest) > ($1, $2) AND rb.linked_at < $3 AND {UNREFERENCED}
              ORDER BY rb.repository_id, rb.digest LIMIT $4
              FOR UPDATE SKIP LOCKED"
        )))
        .bind(repo)
        .bind(digest)
        .bind(cutoff)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut ids = Vec::with_capacity(locked.len());
        let mut digests = Vec::with_capacity(locked.len());
        for r in &locked {
            ids.push(r.try_get::<i64, _>("repository_id")?);
            digests.push(r.try_get::<String, _>("digest")?);
        }
        let next = match (ids.last(), digests.last()) {
            (Some(id), Some(d)) if locked.len() >= limit as usize => Some(LinkCursor {
                repository_id: *id,
                digest: d.clone(),
            }),
            _ => None,
        };
        // A new statement, so a new snapshot: references committed by a push that held
        // one of these links before we locked it are seen here.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH gone AS (
               DELETE FROM repository_blobs rb
                USING unnest($1::BIGINT[], $2::TEXT[]) AS k(repository_id, digest)
                WHERE rb.repository_id = k.repository_id AND rb.digest = k.digest
                  AND rb.linked_at < $3 AND {UNREFERENCED}
               RETURNING rb.repository_id, rb.digest, rb.linked_at)
             SELECT gone.repository_id, r.name, gone.digest, gone.linked_at
               FROM gone JOIN repositories r ON r.id = gone.repository_id
              ORDER BY gone.repository_id, gone.digest"
        )))
        .bind(&ids)
        .bind(&digests)
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?;
        let links = rows
            .iter()
            .map(|r| link_row(r).map(|(_, link)| link))
            .collect::<StoreResult<Vec<_>>>()?;
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
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT rb.repository_id, r.name, rb.digest, rb.linked_at
               FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
              WHERE (rb.repository_id, rb.digest) > ($1, $2) AND rb.linked_at < $3 AND {UNREFERENCED}
              ORDER BY rb.repository_id, rb.digest LIMIT $4"
        )))
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
        let mut tx = self.pool.begin().await?;
        check_lease(&mut tx, holder, now).await?;
        // FOR UPDATE (not NO KEY UPDATE): it also holds off the foreign-key check of a
        // link being inserted, which takes KEY SHARE on the blob row.
        let locked: Vec<String> = sqlx::query_scalar(
            "SELECT digest FROM blobs b
              WHERE digest > $1 AND tombstoned_at IS NULL AND last_linked_at < $2
                AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
              ORDER BY digest LIMIT $3
              FOR UPDATE SKIP LOCKED",
        )
        .bind(after.map_or("", Digest::as_str))
        .bind(cutoff)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let next = if locked.len() >= limit as usize {
            locked
                .last()
                .map(|d| Digest::parse(d).map_err(|e| StoreError::Corrupt(format!("blob {d:?}: {e}"))))
                .transpose()?
        } else {
            None
        };
        // Checked again with a fresh snapshot. `last_linked_at` is what carries a link or
        // reservation that committed while we looked: every one touches the blob row.
        let rows = sqlx::query(
            "UPDATE blobs b SET tombstoned_at = $2
              WHERE digest = ANY($1) AND tombstoned_at IS NULL AND last_linked_at < $3
                AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
              RETURNING digest, size",
        )
        .bind(&locked)
        .bind(now)
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?;
        let mut blobs = rows.iter().map(blob_row).collect::<StoreResult<Vec<_>>>()?;
        blobs.sort_by(|a, b| a.digest.as_str().cmp(b.digest.as_str()));
        tx.commit().await?;
        Ok(BlobBatch { blobs, next })
    }

    async fn garbage_blobs(&self, cutoff: i64, after: Option<&Digest>, limit: u32) -> StoreResult<BlobBatch> {
        // As the sweep would leave it: links that are garbage themselves do not count.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT digest, size FROM blobs b
              WHERE digest > $1 AND tombstoned_at IS NULL AND last_linked_at < $2
                AND NOT EXISTS (
                  SELECT 1 FROM repository_blobs rb
                   WHERE rb.digest = b.digest AND (rb.linked_at >= $2 OR NOT {UNREFERENCED}))
              ORDER BY digest LIMIT $3"
        )))
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
        let mut tx = self.pool.begin().await?;
        check_lease(&mut tx, holder, now).await?;
        let digests: Vec<&str> = digests.iter().map(Digest::as_str).collect();
        // No link can point at a tombstone (linking refuses them), and the foreign key
        // would refuse the delete if one did.
        let gone = sqlx::query("DELETE FROM blobs WHERE digest = ANY($1) AND tombstoned_at IS NOT NULL")
            .bind(&digests)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(gone)
    }
}
