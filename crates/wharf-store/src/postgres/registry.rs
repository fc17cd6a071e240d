//! PostgreSQL: repositories, blob links, manifests, tags and referrers: what the registry API serves.

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::locks::{lock_in_way, repository_id, trust_unchanged};
use super::{PostgresMetadataStore, digest_col, insert_audit, opt_digest_col, to_i64};
use crate::metadata::{
    AuditRecord, BlobLinkOutcome, BlobReservation, DeleteOutcome, LockScope, ManifestPutOutcome,
    ManifestRecord, NewManifest, ReferrerRecord, RepositoryStore, TagDetail, TrustCheck, UntaggedManifest,
};
use crate::{Digest, StoreError, StoreResult};

#[async_trait]
impl RepositoryStore for PostgresMetadataStore {
    async fn list_repositories(
        &self,
        contains: &str,
        last: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<String>> {
        // Keyset pagination on the unique index of `name` (byte order): a page costs its
        // own rows, however deep. A repository is listed while it holds at least one
        // manifest. `strpos` rather than LIKE: the filter is a plain substring, `%` and `_`
        // in it mean themselves; the empty filter short-circuits.
        Ok(sqlx::query_scalar(
            "SELECT name FROM repositories r WHERE name > $1 AND ($2 = '' OR strpos(name, $2) > 0)
               AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
             ORDER BY name LIMIT $3",
        )
        .bind(last.unwrap_or(""))
        .bind(contains)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn tag_details(&self, repository: &str) -> StoreResult<Vec<TagDetail>> {
        // Size: the manifest itself, the blobs it references, and for an index the
        // child manifests and their blobs. SUM of BIGINT is NUMERIC here: cast back.
        let rows = sqlx::query(
            "WITH repo AS (SELECT id FROM repositories WHERE name = $1),
             refs AS (
               SELECT mr.manifest_digest AS top, mr.child_digest AS child
                 FROM manifest_references mr JOIN repo ON mr.repository_id = repo.id
               UNION ALL
               SELECT r1.manifest_digest, r2.child_digest
                 FROM manifest_references r1
                 JOIN repo ON r1.repository_id = repo.id
                 JOIN manifest_references r2
                   ON r2.repository_id = r1.repository_id AND r2.manifest_digest = r1.child_digest
             )
             SELECT t.name AS tag, t.manifest_digest AS digest, m.media_type AS media_type,
                    t.updated_at AS pushed_at,
                    (octet_length(m.content)
                      + COALESCE((SELECT SUM(COALESCE(b.size, octet_length(cm.content)))
                                    FROM refs
                                    LEFT JOIN blobs b ON b.digest = refs.child
                                    LEFT JOIN manifests cm
                                      ON cm.repository_id = t.repository_id AND cm.digest = refs.child
                                   WHERE refs.top = t.manifest_digest), 0))::BIGINT AS size
               FROM tags t
               JOIN repo ON t.repository_id = repo.id
               JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
              ORDER BY t.name",
        )
        .bind(repository)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TagDetail {
                    tag: r.try_get("tag")?,
                    digest: r.try_get("digest")?,
                    media_type: r.try_get("media_type")?,
                    pushed_at: r.try_get("pushed_at")?,
                    size: r.try_get::<i64, _>("size")?.max(0) as u64,
                })
            })
            .collect()
    }

    async fn repository_exists(&self, name: &str) -> StoreResult<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM repositories WHERE name = $1)")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn list_tags(&self, repository: &str, last: Option<&str>, limit: u32) -> StoreResult<Vec<String>> {
        // Keyset pagination on the primary key (repository_id, name). The repository id
        // is a scalar subquery, not a join, so the planner walks the key in order and stops
        // after `limit` rows; with a join it sorted every tag after `last` (measured at
        // 100k tags: 24 ms for a first page, 0.05 ms this way).
        Ok(sqlx::query_scalar(
            "SELECT t.name FROM tags t
             WHERE t.repository_id = (SELECT id FROM repositories WHERE name = $1)
               AND t.name > $2
             ORDER BY t.name LIMIT $3",
        )
        .bind(repository)
        .bind(last.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn linked_blob(&self, repository: &str, digest: &Digest) -> StoreResult<Option<u64>> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM repository_blobs rb
               JOIN repositories r ON r.id = rb.repository_id
               JOIN blobs b ON b.digest = rb.digest
             WHERE r.name = $1 AND rb.digest = $2",
        )
        .bind(repository)
        .bind(digest.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(size.map(|s| s as u64))
    }

    async fn linked_blob_renewing(
        &self,
        repository: &str,
        digest: &Digest,
        renew_before: i64,
        now: i64,
    ) -> StoreResult<Option<u64>> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT b.size, rb.linked_at FROM repository_blobs rb
               JOIN repositories r ON r.id = rb.repository_id
               JOIN blobs b ON b.digest = rb.digest
             WHERE r.name = $1 AND rb.digest = $2",
        )
        .bind(repository)
        .bind(digest.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some((size, linked_at)) = row else {
            return Ok(None);
        };
        if linked_at >= renew_before {
            return Ok(Some(size as u64));
        }
        // The conditional UPDATE waits for a collection holding the row (`FOR UPDATE`) and
        // then judges its newest version: deleted, it changes nothing; otherwise it renews
        // the link, and a sweep that locks the row later re-checks `linked_at < cutoff`.
        let done = sqlx::query(
            "UPDATE repository_blobs SET linked_at = GREATEST(linked_at, $3)
              WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND digest = $2
                AND linked_at < $4",
        )
        .bind(repository)
        .bind(digest.as_str())
        .bind(now)
        .bind(renew_before)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(Some(size as u64));
        }
        self.linked_blob(repository, digest).await
    }

    async fn known_blob(&self, digest: &Digest) -> StoreResult<Option<u64>> {
        let size: Option<i64> = sqlx::query_scalar("SELECT size FROM blobs WHERE digest = $1")
            .bind(digest.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(size.map(|s| s as u64))
    }

    async fn reserve_blob(&self, digest: &Digest, size: u64, now: i64) -> StoreResult<BlobReservation> {
        // ON CONFLICT DO UPDATE locks the existing row (waiting for a collection that holds
        // it) and then judges its newest version: a tombstone is left alone (`Deleting`), a
        // live row is touched. A row a collection deleted meanwhile is inserted afresh.
        let reserved: Option<bool> = sqlx::query_scalar(
            "INSERT INTO blobs (digest, size, created_at, last_linked_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (digest) DO UPDATE SET last_linked_at = GREATEST(blobs.last_linked_at, excluded.last_linked_at)
             WHERE blobs.tombstoned_at IS NULL
             RETURNING TRUE",
        )
        .bind(digest.as_str())
        .bind(to_i64(size))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(if reserved.is_some() {
            BlobReservation::Reserved
        } else {
            BlobReservation::Deleting
        })
    }

    async fn link_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: Option<&str>,
        now: i64,
    ) -> StoreResult<BlobLinkOutcome> {
        let mut tx = self.write().await?;
        if let Some(from) = from {
            // Held until we commit, as a manifest PUT holds its links: a collection skips
            // the source link meanwhile, so the blob keeps a link and cannot be tombstoned.
            let linked: Option<bool> = sqlx::query_scalar(
                "SELECT TRUE FROM repository_blobs
                  WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND digest = $2
                  FOR KEY SHARE",
            )
            .bind(from)
            .bind(digest.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if linked.is_none() {
                return Ok(BlobLinkOutcome::Missing);
            }
        }
        // Touch the blob row first and keep its row lock until we commit. A collection
        // deciding to tombstone it either skips the locked row or, having locked it first,
        // makes us wait and then find the tombstone; one that committed before sees this
        // touch, because a conditional UPDATE re-reads the newest version of a row that
        // changed under it. Either way no link is added to a blob being deleted.
        let size: Option<i64> = sqlx::query_scalar(
            "UPDATE blobs SET last_linked_at = GREATEST(last_linked_at, $2)
             WHERE digest = $1 AND tombstoned_at IS NULL RETURNING size",
        )
        .bind(digest.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(size) = size else {
            let tombstone: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = $1)")
                .bind(digest.as_str())
                .fetch_one(&mut *tx)
                .await?;
            return Ok(if tombstone {
                BlobLinkOutcome::Deleting
            } else {
                BlobLinkOutcome::Missing
            });
        };
        let repo = Self::ensure_repository(&mut tx, repository, now).await?;
        // Linking again renews the link: a client that re-uploads a blob and then pushes a
        // manifest must not lose the link to a collection in between. A link a collection
        // is deleting makes us wait; then it is inserted afresh.
        sqlx::query(
            "INSERT INTO repository_blobs (repository_id, digest, linked_at) VALUES ($1, $2, $3)
             ON CONFLICT (repository_id, digest) DO UPDATE
             SET linked_at = GREATEST(repository_blobs.linked_at, excluded.linked_at)",
        )
        .bind(repo)
        .bind(digest.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(BlobLinkOutcome::Linked {
            size: u64::try_from(size).unwrap_or(0),
        })
    }

    async fn unlink_blob(
        &self,
        repository: &str,
        digest: &Digest,
        audit: &AuditRecord,
    ) -> StoreResult<DeleteOutcome> {
        let mut tx = self.write().await?;
        let Some(repo) = repository_id(&mut tx, repository).await? else {
            return Ok(DeleteOutcome::Absent);
        };
        let present: Option<bool> =
            sqlx::query_scalar("SELECT TRUE FROM repository_blobs WHERE repository_id = $1 AND digest = $2")
                .bind(repo)
                .bind(digest.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if present.is_none() {
            return Ok(DeleteOutcome::Absent);
        }
        if let Some(lock) = lock_in_way(&mut tx, repo, LockScope::Blob).await? {
            return Ok(DeleteOutcome::Locked(lock));
        }
        let done = sqlx::query("DELETE FROM repository_blobs WHERE repository_id = $1 AND digest = $2")
            .bind(repo)
            .bind(digest.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(DeleteOutcome::Absent);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted)
    }

    async fn put_manifest(&self, repository: &str, m: &NewManifest) -> StoreResult<ManifestPutOutcome> {
        let rec = &m.record;
        let mut tx = self.write().await?;
        let repo = Self::ensure_repository(&mut tx, repository, rec.created_at).await?;
        // The blob links are checked and share-locked (KEY SHARE) until we commit, in
        // digest order. Garbage collection deletes a link only after locking it FOR UPDATE
        // (skipping links it cannot lock at once) and checking again, in a later statement,
        // that no manifest references it: so a link we hold is skipped, and a link the
        // collection holds makes us wait and then come back missing (`MissingBlob`, the
        // push fails cleanly) instead of us storing a manifest whose layer is gone. KEY
        // SHARE does not block linking the same blob again (which renews the link).
        // Child manifests are checked and share-locked (KEY SHARE) until we commit: retention
        // deletes an untagged manifest only after locking it FOR UPDATE and checking, in a
        // later statement, that no index lists it, so it waits for this push and keeps the
        // child. An explicit DELETE between check and commit leaves what a serial "push,
        // then delete" would.
        if let Some(lock) = lock_in_way(&mut tx, repo, LockScope::Write(m.tag.as_deref())).await? {
            return Ok(ManifestPutOutcome::Locked(lock));
        }
        let mut wanted: Vec<&str> = m.blobs.iter().map(Digest::as_str).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let linked: Vec<String> = if wanted.is_empty() {
            Vec::new()
        } else {
            sqlx::query_scalar(
                "SELECT digest FROM repository_blobs WHERE repository_id = $1 AND digest = ANY($2)
                 ORDER BY digest FOR KEY SHARE",
            )
            .bind(repo)
            .bind(&wanted)
            .fetch_all(&mut *tx)
            .await?
        };
        // `linked` is in byte order (COLLATE "C"), Rust's order for strings.
        if let Some(missing) = m
            .blobs
            .iter()
            .find(|b| linked.binary_search_by(|l| l.as_str().cmp(b.as_str())).is_err())
        {
            return Ok(ManifestPutOutcome::MissingBlob(missing.clone()));
        }
        for child in &m.manifests {
            let present: Option<bool> = sqlx::query_scalar(
                "SELECT TRUE FROM manifests WHERE repository_id = $1 AND digest = $2 FOR KEY SHARE",
            )
            .bind(repo)
            .bind(child.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if present.is_none() {
                return Ok(ManifestPutOutcome::MissingManifest(child.clone()));
            }
        }
        // Same digest means same bytes: a re-push keeps the original row. When the row
        // already exists it is locked (KEY SHARE) so a concurrent deletion cannot pull it
        // out from under the tag and references we are about to point at it (their foreign
        // keys would fail the push); if a deletion won in between, insert again.
        let mut stored = false;
        for _ in 0..8 {
            let inserted = sqlx::query(
                "INSERT INTO manifests (repository_id, digest, media_type, content, subject, artifact_type, annotations, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(repo)
            .bind(rec.digest.as_str())
            .bind(&rec.media_type)
            .bind(rec.content.as_ref())
            .bind(rec.subject.as_ref().map(Digest::as_str))
            .bind(rec.artifact_type.as_deref())
            .bind(rec.annotations.as_deref())
            .bind(rec.created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            stored = inserted
                || sqlx::query_scalar::<_, bool>(
                    "SELECT TRUE FROM manifests WHERE repository_id = $1 AND digest = $2 FOR KEY SHARE",
                )
                .bind(repo)
                .bind(rec.digest.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if stored {
                break;
            }
        }
        if !stored {
            return Err(StoreError::Conflict(format!(
                "manifest {} keeps being deleted while pushed",
                rec.digest.as_str()
            )));
        }
        for child in m.blobs.iter().chain(&m.manifests) {
            sqlx::query(
                "INSERT INTO manifest_references (repository_id, manifest_digest, child_digest) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
            )
            .bind(repo)
            .bind(rec.digest.as_str())
            .bind(child.as_str())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(a) = &m.audit {
            insert_audit(&mut tx, a).await?;
        }
        if let Some(tag) = &m.tag {
            // The manifest the tag moves away from starts its untagged clock (retention).
            // The tag row is locked first, so two pushes of one tag see each other's move.
            let previous: Option<String> = sqlx::query_scalar(
                "SELECT manifest_digest FROM tags WHERE repository_id = $1 AND name = $2 FOR UPDATE",
            )
            .bind(repo)
            .bind(tag)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(previous) = previous.filter(|p| p != rec.digest.as_str()) {
                sqlx::query("UPDATE manifests SET untagged_at = $3 WHERE repository_id = $1 AND digest = $2")
                    .bind(repo)
                    .bind(previous)
                    .bind(rec.created_at)
                    .execute(&mut *tx)
                    .await?;
            }
            // Two pushes of one tag: the upsert's row lock orders them, the later commit wins.
            sqlx::query(
                "INSERT INTO tags (repository_id, name, manifest_digest, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (repository_id, name) DO UPDATE SET manifest_digest = excluded.manifest_digest,
                 updated_at = excluded.updated_at",
            )
            .bind(repo)
            .bind(tag)
            .bind(rec.digest.as_str())
            .bind(rec.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(ManifestPutOutcome::Stored)
    }

    async fn get_manifest(&self, repository: &str, digest: &Digest) -> StoreResult<Option<ManifestRecord>> {
        let row = sqlx::query(
            "SELECT m.* FROM manifests m JOIN repositories r ON r.id = m.repository_id
             WHERE r.name = $1 AND m.digest = $2",
        )
        .bind(repository)
        .bind(digest.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(manifest_row).transpose()
    }

    async fn manifest_by_tag(&self, repository: &str, tag: &str) -> StoreResult<Option<ManifestRecord>> {
        // One round trip: a pull by tag is the hottest read, and every query here crosses
        // the network to the database.
        let row = sqlx::query(
            "SELECT m.* FROM tags t
               JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
             WHERE t.repository_id = (SELECT id FROM repositories WHERE name = $1) AND t.name = $2",
        )
        .bind(repository)
        .bind(tag)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(manifest_row).transpose()
    }

    async fn resolve_tag(&self, repository: &str, tag: &str) -> StoreResult<Option<Digest>> {
        let row = sqlx::query(
            "SELECT t.manifest_digest FROM tags t JOIN repositories r ON r.id = t.repository_id
             WHERE r.name = $1 AND t.name = $2",
        )
        .bind(repository)
        .bind(tag)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| digest_col(&r, "manifest_digest")).transpose()
    }

    async fn delete_manifest(
        &self,
        repository: &str,
        digest: &Digest,
        trust: TrustCheck<'_>,
        audit: &AuditRecord,
    ) -> StoreResult<DeleteOutcome> {
        let mut tx = self.write().await?;
        let Some(repo) = repository_id(&mut tx, repository).await? else {
            return Ok(DeleteOutcome::Absent);
        };
        let present: Option<bool> =
            sqlx::query_scalar("SELECT TRUE FROM manifests WHERE repository_id = $1 AND digest = $2")
                .bind(repo)
                .bind(digest.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if present.is_none() {
            return Ok(DeleteOutcome::Absent);
        }
        if let Some(lock) = lock_in_way(&mut tx, repo, LockScope::DeleteManifest(digest)).await? {
            return Ok(DeleteOutcome::Locked(lock));
        }
        if !trust_unchanged(&mut tx, repository, trust).await? {
            return Ok(DeleteOutcome::TrustChanged);
        }
        // Its tags and references go with it (ON DELETE CASCADE). Dropping the transaction
        // on an early return rolls back whatever it did.
        let done = sqlx::query("DELETE FROM manifests WHERE repository_id = $1 AND digest = $2")
            .bind(repo)
            .bind(digest.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(DeleteOutcome::Absent);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted)
    }

    async fn delete_tag(
        &self,
        repository: &str,
        tag: &str,
        trust: TrustCheck<'_>,
        audit: &AuditRecord,
    ) -> StoreResult<DeleteOutcome> {
        let mut tx = self.write().await?;
        let Some(repo) = repository_id(&mut tx, repository).await? else {
            return Ok(DeleteOutcome::Absent);
        };
        let present: Option<bool> =
            sqlx::query_scalar("SELECT TRUE FROM tags WHERE repository_id = $1 AND name = $2")
                .bind(repo)
                .bind(tag)
                .fetch_optional(&mut *tx)
                .await?;
        if present.is_none() {
            return Ok(DeleteOutcome::Absent);
        }
        if let Some(lock) = lock_in_way(&mut tx, repo, LockScope::DeleteTag(tag)).await? {
            return Ok(DeleteOutcome::Locked(lock));
        }
        if !trust_unchanged(&mut tx, repository, trust).await? {
            return Ok(DeleteOutcome::TrustChanged);
        }
        let digest: Option<String> = sqlx::query_scalar(
            "DELETE FROM tags WHERE repository_id = $1 AND name = $2 RETURNING manifest_digest",
        )
        .bind(repo)
        .bind(tag)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(digest) = digest else {
            return Ok(DeleteOutcome::Absent);
        };
        // Retention's clock: the manifest lost a tag now (as a push moving the tag does).
        sqlx::query("UPDATE manifests SET untagged_at = $3 WHERE repository_id = $1 AND digest = $2")
            .bind(repo)
            .bind(&digest)
            .bind(audit.at)
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted)
    }

    async fn delete_repository(
        &self,
        repository: &str,
        trust: TrustCheck<'_>,
        audit: &AuditRecord,
    ) -> StoreResult<DeleteOutcome> {
        let mut tx = self.write().await?;
        // FOR UPDATE: writers that hold the row's KEY SHARE lock (`ensure_repository`)
        // finish first, and lock changes wait for us.
        let repo: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1 FOR UPDATE")
            .bind(repository)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(repo) = repo else {
            return Ok(DeleteOutcome::Absent);
        };
        if let Some(lock) = lock_in_way(&mut tx, repo, LockScope::Repository).await? {
            return Ok(DeleteOutcome::Locked(lock));
        }
        if !trust_unchanged(&mut tx, repository, trust).await? {
            return Ok(DeleteOutcome::TrustChanged);
        }
        // Manifests, tags, blob links and locks go with the row (ON DELETE CASCADE).
        sqlx::query("DELETE FROM repositories WHERE id = $1")
            .bind(repo)
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted)
    }

    async fn referrers(
        &self,
        repository: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> StoreResult<Vec<ReferrerRecord>> {
        let rows = sqlx::query(
            "SELECT m.digest, m.media_type, octet_length(m.content)::BIGINT AS size, m.artifact_type, m.annotations
             FROM manifests m JOIN repositories r ON r.id = m.repository_id
             WHERE r.name = $1 AND m.subject = $2 AND ($3::TEXT IS NULL OR m.artifact_type = $3)
             ORDER BY m.created_at, m.digest",
        )
        .bind(repository)
        .bind(subject.as_str())
        .bind(artifact_type)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReferrerRecord {
                    digest: digest_col(r, "digest")?,
                    media_type: r.try_get("media_type")?,
                    size: r.try_get::<i64, _>("size")? as u64,
                    artifact_type: r.try_get("artifact_type")?,
                    annotations: r.try_get("annotations")?,
                })
            })
            .collect()
    }

    async fn untagged_manifests(
        &self,
        repository: &str,
        untagged_before: i64,
        after: Option<&Digest>,
        limit: u32,
    ) -> StoreResult<Vec<UntaggedManifest>> {
        let rows = sqlx::query(
            "SELECT m.digest, m.subject, COALESCE(m.untagged_at, m.created_at) AS since
               FROM manifests m JOIN repositories r ON r.id = m.repository_id
              WHERE r.name = $1 AND m.digest > $2
                AND COALESCE(m.untagged_at, m.created_at) < $3
                AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id
                                   AND t.manifest_digest = m.digest)
              ORDER BY m.digest LIMIT $4",
        )
        .bind(repository)
        .bind(after.map_or("", Digest::as_str))
        .bind(untagged_before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UntaggedManifest {
                    digest: digest_col(r, "digest")?,
                    subject: opt_digest_col(r, "subject")?,
                    untagged_since: r.try_get("since")?,
                })
            })
            .collect()
    }

    async fn delete_untagged_manifest(
        &self,
        repository: &str,
        digest: &Digest,
        untagged_before: i64,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        // Lock the row first: a push pointing a tag at it (the foreign key's KEY SHARE) or
        // listing it in an index (`put_manifest` share-locks children) either committed
        // before, or waits for us. The next statement reads with a new snapshot, so it
        // sees whatever committed while we waited.
        let locked: Option<i64> = sqlx::query_scalar(
            "SELECT m.repository_id FROM manifests m JOIN repositories r ON r.id = m.repository_id
              WHERE r.name = $1 AND m.digest = $2 FOR UPDATE OF m",
        )
        .bind(repository)
        .bind(digest.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(repo) = locked else {
            return Ok(false);
        };
        // Locks hold against retention too, checked in this transaction.
        if lock_in_way(&mut tx, repo, LockScope::DeleteManifest(digest))
            .await?
            .is_some()
        {
            return Ok(false);
        }
        let done = sqlx::query(
            "DELETE FROM manifests m WHERE m.repository_id = $1 AND m.digest = $2
               AND COALESCE(m.untagged_at, m.created_at) < $3
               AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id
                                  AND t.manifest_digest = m.digest)
               AND NOT EXISTS (SELECT 1 FROM manifest_references mr WHERE mr.repository_id = m.repository_id
                                  AND mr.child_digest = m.digest)",
        )
        .bind(repo)
        .bind(digest.as_str())
        .bind(untagged_before)
        .execute(&mut *tx)
        .await?;
        let found = done.rows_affected() > 0;
        if found {
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(found)
    }

    async fn delete_tag_if_unchanged(
        &self,
        repository: &str,
        tag: &str,
        digest: &Digest,
        pushed_at: i64,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        self.delete_tag_where(repository, tag, Some((digest, pushed_at)), audit)
            .await
    }

    async fn manifest_parents(&self, repository: &str, child: &Digest) -> StoreResult<Vec<Digest>> {
        let rows = sqlx::query(
            "SELECT mr.manifest_digest FROM manifest_references mr
             JOIN repositories r ON r.id = mr.repository_id
             WHERE r.name = $1 AND mr.child_digest = $2
             ORDER BY mr.manifest_digest",
        )
        .bind(repository)
        .bind(child.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| digest_col(r, "manifest_digest")).collect()
    }
}

fn manifest_row(r: &PgRow) -> StoreResult<ManifestRecord> {
    Ok(ManifestRecord {
        digest: digest_col(r, "digest")?,
        media_type: r.try_get("media_type")?,
        content: Bytes::from(r.try_get::<Vec<u8>, _>("content")?),
        subject: opt_digest_col(r, "subject")?,
        artifact_type: r.try_get("artifact_type")?,
        annotations: r.try_get("annotations")?,
        created_at: r.try_get("created_at")?,
    })
}

impl PostgresMetadataStore {
    /// Delete `tag` (only while it still points at the digest and was pushed at the time
    /// given in `unchanged`) and start its manifest's untagged clock, with the audit record.
    async fn delete_tag_where(
        &self,
        repository: &str,
        tag: &str,
        unchanged: Option<(&Digest, i64)>,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        // Locks hold against retention too, checked in this transaction.
        let Some(repo) = repository_id(&mut tx, repository).await? else {
            return Ok(false);
        };
        if lock_in_way(&mut tx, repo, LockScope::DeleteTag(tag))
            .await?
            .is_some()
        {
            return Ok(false);
        }
        let gone: Option<(i64, String)> = sqlx::query_as(
            "DELETE FROM tags WHERE name = $2 AND repository_id = (SELECT id FROM repositories WHERE name = $1)
               AND ($3::TEXT IS NULL OR (manifest_digest = $3 AND updated_at = $4))
             RETURNING repository_id, manifest_digest",
        )
        .bind(repository)
        .bind(tag)
        .bind(unchanged.map(|(d, _)| d.as_str()))
        .bind(unchanged.map(|(_, at)| at))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((repo, digest)) = &gone {
            sqlx::query("UPDATE manifests SET untagged_at = $3 WHERE repository_id = $1 AND digest = $2")
                .bind(repo)
                .bind(digest)
                .bind(audit.at)
                .execute(&mut *tx)
                .await?;
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(gone.is_some())
    }
}
