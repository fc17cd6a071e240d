//! SQLite: repositories, blob links, manifests, tags and referrers: what the registry API serves.

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::Row;

use super::locks::{lock_in_way, repository_id, trust_unchanged};
use super::{CACHE_MAX_MANIFEST, SqliteMetadataStore, digest_col, insert_audit, opt_digest_col, to_i64};
use crate::metadata::{
    AuditRecord, BlobLinkOutcome, BlobReservation, DeleteOutcome, LockScope, ManifestPutOutcome,
    ManifestRecord, NewManifest, ReferrerRecord, RepositoryStore, TagDetail, TrustCheck, UntaggedManifest,
};
use crate::{Digest, StoreResult};

#[async_trait]
impl RepositoryStore for SqliteMetadataStore {
    async fn list_repositories(
        &self,
        contains: &str,
        last: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<String>> {
        // A repository is listed while it holds at least one manifest. `instr` rather than
        // LIKE: the filter is a plain substring, `%` and `_` in it mean themselves.
        Ok(sqlx::query_scalar(
            "SELECT name FROM repositories r WHERE name > $1 AND instr(name, $2) > 0
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
        // child manifests and their blobs.
        let rows = sqlx::query(
            "WITH repo AS (SELECT id FROM repositories WHERE name = $1),
             refs AS (
               SELECT mr.manifest_digest AS top, mr.child_digest AS child FROM manifest_references mr, repo
                WHERE mr.repository_id = repo.id
               UNION ALL
               SELECT r1.manifest_digest, r2.child_digest FROM manifest_references r1
                 JOIN manifest_references r2
                   ON r2.repository_id = r1.repository_id AND r2.manifest_digest = r1.child_digest, repo
                WHERE r1.repository_id = repo.id
             )
             SELECT t.name AS tag, t.manifest_digest AS digest, m.media_type AS media_type,
                    t.updated_at AS pushed_at,
                    length(m.content)
                      + COALESCE((SELECT SUM(COALESCE(b.size, length(cm.content)))
                                    FROM refs
                                    LEFT JOIN blobs b ON b.digest = refs.child
                                    LEFT JOIN manifests cm ON cm.repository_id = t.repository_id AND cm.digest = refs.child
                                   WHERE refs.top = t.manifest_digest), 0) AS size
               FROM tags t, repo
               JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
              WHERE t.repository_id = repo.id
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
            sqlx::query_scalar::<_, i64>("SELECT 1 FROM repositories WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    async fn list_tags(&self, repository: &str, last: Option<&str>, limit: u32) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id
             WHERE r.name = $1 AND t.name > $2 ORDER BY t.name LIMIT $3",
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
        // One conditional UPDATE, run under SQLite's one write lock like a collection's
        // sweep: it either renews the link before the sweep looks at it or finds it gone.
        // Neither the link nor its time is in the read cache (tags and manifests only), so
        // nothing is invalidated.
        let done = sqlx::query(
            "UPDATE repository_blobs SET linked_at = MAX(linked_at, $3)
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
        // One statement, so SQLite runs it under its one write lock: it either finds a
        // tombstone (changes nothing) or leaves a live, touched row.
        let done = sqlx::query(
            "INSERT INTO blobs (digest, size, created_at, last_linked_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT(digest) DO UPDATE SET last_linked_at = MAX(blobs.last_linked_at, excluded.last_linked_at)
             WHERE blobs.tombstoned_at IS NULL",
        )
        .bind(digest.as_str())
        .bind(to_i64(size))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(if done.rows_affected() > 0 {
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
            let linked: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM repository_blobs
                  WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND digest = $2",
            )
            .bind(from)
            .bind(digest.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if linked.is_none() {
                return Ok(BlobLinkOutcome::Missing);
            }
        }
        // Touch the blob first: a live row touched now is what garbage collection (which
        // also writes under this one lock) will not tombstone while we link it.
        let size: Option<i64> = sqlx::query_scalar(
            "UPDATE blobs SET last_linked_at = MAX(last_linked_at, $2)
             WHERE digest = $1 AND tombstoned_at IS NULL RETURNING size",
        )
        .bind(digest.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(size) = size else {
            let tombstone: Option<i64> = sqlx::query_scalar("SELECT 1 FROM blobs WHERE digest = $1")
                .bind(digest.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            return Ok(if tombstone.is_some() {
                BlobLinkOutcome::Deleting
            } else {
                BlobLinkOutcome::Missing
            });
        };
        let repo = Self::ensure_repository(&mut tx, repository, now).await?;
        // Linking again renews the link: a client that re-uploads a blob and then pushes a
        // manifest must not lose the link to a collection in between.
        sqlx::query(
            "INSERT INTO repository_blobs (repository_id, digest, linked_at) VALUES ($1, $2, $3)
             ON CONFLICT(repository_id, digest) DO UPDATE SET linked_at = MAX(linked_at, excluded.linked_at)",
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
        let linked: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM repository_blobs WHERE repository_id = $1 AND digest = $2")
                .bind(repo)
                .bind(digest.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if linked.is_none() {
            return Ok(DeleteOutcome::Absent);
        }
        if let Some(lock) = lock_in_way(&mut tx, repo, LockScope::Blob).await? {
            return Ok(DeleteOutcome::Locked(lock));
        }
        sqlx::query("DELETE FROM repository_blobs WHERE repository_id = $1 AND digest = $2")
            .bind(repo)
            .bind(digest.as_str())
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted)
    }

    async fn put_manifest(&self, repository: &str, m: &NewManifest) -> StoreResult<ManifestPutOutcome> {
        let rec = &m.record;
        let mut tx = self.write().await?;
        let repo = Self::ensure_repository(&mut tx, repository, rec.created_at).await?;
        if let Some(lock) = lock_in_way(&mut tx, repo, LockScope::Write(m.tag.as_deref())).await? {
            return Ok(ManifestPutOutcome::Locked(lock));
        }
        // One writer at a time (`BEGIN IMMEDIATE`): a garbage collection's link sweep runs
        // wholly before or after this check-and-insert, never in between.
        for blob in &m.blobs {
            let linked: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM repository_blobs WHERE repository_id = $1 AND digest = $2")
                    .bind(repo)
                    .bind(blob.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            if linked.is_none() {
                return Ok(ManifestPutOutcome::MissingBlob(blob.clone()));
            }
        }
        for child in &m.manifests {
            let present: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2")
                    .bind(repo)
                    .bind(child.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            if present.is_none() {
                return Ok(ManifestPutOutcome::MissingManifest(child.clone()));
            }
        }
        // Same digest means same bytes: a re-push keeps the original row.
        sqlx::query(
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
        .await?;
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
            sqlx::query(
                "UPDATE manifests SET untagged_at = $4
                  WHERE repository_id = $1 AND digest <> $3
                    AND digest = (SELECT manifest_digest FROM tags WHERE repository_id = $1 AND name = $2)",
            )
            .bind(repo)
            .bind(tag)
            .bind(rec.digest.as_str())
            .bind(rec.created_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO tags (repository_id, name, manifest_digest, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT(repository_id, name) DO UPDATE SET manifest_digest = excluded.manifest_digest,
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
        if let Some(tag) = &m.tag {
            self.cache.invalidate(|c| {
                c.tags.remove(&(repository.to_owned(), tag.clone()));
            });
        }
        Ok(ManifestPutOutcome::Stored)
    }

    async fn get_manifest(&self, repository: &str, digest: &Digest) -> StoreResult<Option<ManifestRecord>> {
        if let Some(hit) = self.cache.manifest(repository, digest) {
            return Ok(Some(hit));
        }
        let since = self.cache.start_read();
        let row = sqlx::query(
            "SELECT m.* FROM manifests m JOIN repositories r ON r.id = m.repository_id
             WHERE r.name = $1 AND m.digest = $2",
        )
        .bind(repository)
        .bind(digest.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ManifestRecord {
                digest: digest_col(&r, "digest")?,
                media_type: r.try_get("media_type")?,
                content: Bytes::from(r.try_get::<Vec<u8>, _>("content")?),
                subject: opt_digest_col(&r, "subject")?,
                artifact_type: r.try_get("artifact_type")?,
                annotations: r.try_get("annotations")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
        .inspect(|found: &Option<ManifestRecord>| {
            if let Some(rec) = found.as_ref().filter(|r| r.content.len() <= CACHE_MAX_MANIFEST) {
                self.cache.fill(since, |c| {
                    c.manifests
                        .insert((repository.to_owned(), digest.clone()), rec.clone());
                });
            }
        })
    }

    async fn resolve_tag(&self, repository: &str, tag: &str) -> StoreResult<Option<Digest>> {
        if let Some(hit) = self.cache.tag(repository, tag) {
            return Ok(Some(hit));
        }
        let since = self.cache.start_read();
        let row = sqlx::query(
            "SELECT t.manifest_digest FROM tags t JOIN repositories r ON r.id = t.repository_id
             WHERE r.name = $1 AND t.name = $2",
        )
        .bind(repository)
        .bind(tag)
        .fetch_optional(&self.pool)
        .await?;
        let found = row.map(|r| digest_col(&r, "manifest_digest")).transpose()?;
        if let Some(d) = &found {
            self.cache.fill(since, |c| {
                c.tags.insert((repository.to_owned(), tag.to_owned()), d.clone());
            });
        }
        Ok(found)
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
        let present: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2")
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
        sqlx::query("DELETE FROM manifests WHERE repository_id = $1 AND digest = $2")
            .bind(repo)
            .bind(digest.as_str())
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        // Its tags went with it (cascade); which ones is unknown here, so forget them all.
        self.cache.invalidate(|c| {
            c.manifests.remove(&(repository.to_owned(), digest.clone()));
            c.tags.clear();
        });
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
        let present: Option<String> =
            sqlx::query_scalar("SELECT manifest_digest FROM tags WHERE repository_id = $1 AND name = $2")
                .bind(repo)
                .bind(tag)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(digest) = present else {
            return Ok(DeleteOutcome::Absent);
        };
        if let Some(lock) = lock_in_way(&mut tx, repo, LockScope::DeleteTag(tag)).await? {
            return Ok(DeleteOutcome::Locked(lock));
        }
        if !trust_unchanged(&mut tx, repository, trust).await? {
            return Ok(DeleteOutcome::TrustChanged);
        }
        sqlx::query("DELETE FROM tags WHERE repository_id = $1 AND name = $2")
            .bind(repo)
            .bind(tag)
            .execute(&mut *tx)
            .await?;
        // Retention's clock: the manifest lost a tag now (as a push moving the tag does).
        sqlx::query("UPDATE manifests SET untagged_at = $3 WHERE repository_id = $1 AND digest = $2")
            .bind(repo)
            .bind(&digest)
            .bind(audit.at)
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        self.cache.invalidate(|c| {
            c.tags.remove(&(repository.to_owned(), tag.to_owned()));
        });
        Ok(DeleteOutcome::Deleted)
    }

    async fn delete_repository(
        &self,
        repository: &str,
        trust: TrustCheck<'_>,
        audit: &AuditRecord,
    ) -> StoreResult<DeleteOutcome> {
        let mut tx = self.write().await?;
        let Some(repo) = repository_id(&mut tx, repository).await? else {
            return Ok(DeleteOutcome::Absent);
        };
        if let Some(lock) = lock_in_way(&mut tx, repo, LockScope::Repository).await? {
            return Ok(DeleteOutcome::Locked(lock));
        }
        if !trust_unchanged(&mut tx, repository, trust).await? {
            return Ok(DeleteOutcome::TrustChanged);
        }
        // Manifests, tags and blob links go with the row (ON DELETE CASCADE).
        sqlx::query("DELETE FROM repositories WHERE id = $1")
            .bind(repo)
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        self.cache.invalidate(|c| {
            c.manifests.retain(|(r, _), _| r != repository);
            c.tags.retain(|(r, _), _| r != repository);
        });
        Ok(DeleteOutcome::Deleted)
    }

    async fn referrers(
        &self,
        repository: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> StoreResult<Vec<ReferrerRecord>> {
        let rows = sqlx::query(
            "SELECT m.digest, m.media_type, length(m.content) AS size, m.artifact_type, m.annotations
             FROM manifests m JOIN repositories r ON r.id = m.repository_id
             WHERE r.name = $1 AND m.subject = $2 AND ($3 IS NULL OR m.artifact_type = $3)
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
        // One writer at a time: a push tagging the manifest or listing it in an index
        // commits wholly before or after this check-and-delete.
        let mut tx = self.write().await?;
        // Locks hold against retention too, checked in this transaction.
        let Some(repo) = repository_id(&mut tx, repository).await? else {
            return Ok(false);
        };
        if lock_in_way(&mut tx, repo, LockScope::DeleteManifest(digest))
            .await?
            .is_some()
        {
            return Ok(false);
        }
        let done = sqlx::query(
            "DELETE FROM manifests AS m WHERE m.digest = $2
               AND m.repository_id = (SELECT id FROM repositories WHERE name = $1)
               AND COALESCE(m.untagged_at, m.created_at) < $3
               AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id
                                  AND t.manifest_digest = m.digest)
               AND NOT EXISTS (SELECT 1 FROM manifest_references mr WHERE mr.repository_id = m.repository_id
                                  AND mr.child_digest = m.digest)",
        )
        .bind(repository)
        .bind(digest.as_str())
        .bind(untagged_before)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        self.cache.invalidate(|c| {
            c.manifests.remove(&(repository.to_owned(), digest.clone()));
        });
        Ok(done.rows_affected() > 0)
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

impl SqliteMetadataStore {
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
               AND ($3 IS NULL OR (manifest_digest = $3 AND updated_at = $4))
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
        self.cache.invalidate(|c| {
            c.tags.remove(&(repository.to_owned(), tag.to_owned()));
        });
        Ok(gone.is_some())
    }
}
