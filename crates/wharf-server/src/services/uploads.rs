//! Blob uploads: sessions, chunked appends, completion with digest verification,
//! cross-repository mounts. A blob becomes visible only after its digest was verified,
//! its bytes are durable, and the repository link is committed.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use wharf_store::{BlobLinkOutcome, BlobReservation, BlobStore, Digest, MetadataStore, UploadSession};

use super::error::{RegistryError, RegistryResult};
use super::hash_state::ResumableSha256;
use super::locks::{Attempt, refusal, write_lock};
use super::quotas::{Addition, QuotaService};
use crate::auth::secrets::random_bytes;
use crate::clock::now;

/// How long finishing an upload waits for a garbage collection deleting the same digest
/// (normally one batch's object deletions) before asking the client to retry.
const RESERVE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Body frames are gathered into buffers of this size before hashing and writing: small
/// frames cost 2–3× in throughput (measured).
const COALESCE: usize = 1 << 20;

pub struct UploadService {
    blobs: Arc<dyn BlobStore>,
    meta: Arc<dyn MetadataStore>,
    idle_timeout: i64,
    /// This replica's id: the prefix of every lease it takes (`<replica>/<request>`).
    replica: String,
    /// Storage quotas, checked before an upload's bytes are committed and before a mount.
    quotas: Option<Arc<QuotaService>>,
}

/// A request's writer lease on an upload session (stored in the metadata database, so
/// it holds across replicas: two requests writing one session's scratch space at once
/// could leave bytes there other than the ones hashed). Renewed while the request
/// writes; given back when the request ends, however it ends (an abandoned one expires).
struct WriterLease {
    meta: Arc<dyn MetadataStore>,
    id: String,
    writer: String,
    renewed_at: i64,
    /// Given back by `release`; otherwise `Drop` gives it back in the background.
    released: bool,
}

/// A lease lasts this long unless renewed (a session whose replica died without coming
/// back is free again after it)…
const LEASE_SECONDS: i64 = 15;
/// …which a writer does before writing once this much of it has passed.
const LEASE_RENEW_SECONDS: i64 = 5;

impl WriterLease {
    /// Renew before writing if due; an error when another request took the session over
    /// (only possible after this one stalled past the lease).
    async fn keep(&mut self) -> RegistryResult<()> {
        let t = now();
        if t - self.renewed_at < LEASE_RENEW_SECONDS {
            return Ok(());
        }
        if !self
            .meta
            .claim_upload(&self.id, &self.writer, t + LEASE_SECONDS, t)
            .await?
        {
            return Err(RegistryError::UploadInvalid(
                "another request took over this upload while this one stalled".into(),
            ));
        }
        self.renewed_at = t;
        Ok(())
    }

    /// Give the lease back before the response goes out: a client's next request on
    /// the session (docker sends the closing PUT right after its PATCH) must find it free.
    async fn release(mut self) {
        self.released = true;
        give_back(self.meta.as_ref(), &self.id, &self.writer).await;
    }
}

/// Release a lease; a failure only costs the lease's remaining seconds, so it is logged.
async fn give_back(meta: &dyn MetadataStore, id: &str, writer: &str) {
    if let Err(e) = meta.release_upload(id, writer).await {
        tracing::warn!(upload = %id, error = %e, "upload lease not released; it expires");
    }
}

impl Drop for WriterLease {
    /// A request abandoned mid-way (the client went away) drops its future here.
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (meta, id, writer) = (
            self.meta.clone(),
            std::mem::take(&mut self.id),
            std::mem::take(&mut self.writer),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { give_back(meta.as_ref(), &id, &writer).await });
        }
    }
}

/// What an append does with the bytes it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Hash them and write them to the upload's scratch file.
    Bytes,
    /// Only hash them: the blob they must add up to is already stored.
    HashOnly,
}

/// The client's body broke off (or the connection failed) mid-upload.
fn body_failed(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::UploadInvalid(format!("upload body failed: {e}"))
}

/// A chunk sent with `Content-Range` must hold exactly the bytes the range announced.
fn check_range_length(range: Option<ChunkRange>, written: u64) -> RegistryResult<()> {
    match range {
        Some(r) if written != r.end - r.start + 1 => Err(RegistryError::SizeInvalid(format!(
            "Content-Range announced {} bytes but the body held {written}",
            r.end - r.start + 1
        ))),
        _ => Ok(()),
    }
}

/// An inclusive `Content-Range` of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    pub start: u64,
    pub end: u64,
}

fn new_upload_id() -> RegistryResult<String> {
    let r = random_bytes::<16>().map_err(|e| RegistryError::Unsupported(e.to_string()))?;
    let h = hex::encode(r);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

impl UploadService {
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        meta: Arc<dyn MetadataStore>,
        idle_timeout_seconds: u64,
        replica: &str,
    ) -> Self {
        Self {
            blobs,
            meta,
            idle_timeout: i64::try_from(idle_timeout_seconds).unwrap_or(i64::MAX),
            replica: replica.to_owned(),
            quotas: None,
        }
    }

    /// Check storage quotas on every finished upload and mount.
    pub fn with_quotas(mut self, quotas: Arc<QuotaService>) -> Self {
        self.quotas = Some(quotas);
        self
    }

    /// A new upload session; refused while the repository is locked against writes.
    pub async fn start(&self, repository: &str) -> RegistryResult<UploadSession> {
        self.refuse_locked(repository).await?;
        let id = new_upload_id()?;
        let t = now();
        let session = UploadSession {
            id: id.clone(),
            repository: repository.to_owned(),
            offset: 0,
            hash_state: ResumableSha256::new().save(),
            started_at: t,
            updated_at: t,
        };
        self.blobs.create_upload(&id).await?;
        self.meta.create_upload(&session).await?;
        Ok(session)
    }

    /// The live session `id` of `repository`; expired ones are cleaned up and unknown.
    pub async fn status(&self, repository: &str, id: &str) -> RegistryResult<UploadSession> {
        let session = self
            .meta
            .get_upload(id)
            .await?
            .ok_or(RegistryError::UploadUnknown)?;
        if session.repository != repository {
            return Err(RegistryError::UploadUnknown);
        }
        if session.updated_at + self.idle_timeout < now() {
            self.discard(id).await?;
            return Err(RegistryError::UploadUnknown);
        }
        Ok(session)
    }

    /// At start: leases this replica's previous run held are free (none of its requests
    /// survived it), so a client resuming after a crash need not wait for them.
    pub async fn release_leases_of_earlier_runs(&self) -> RegistryResult<u64> {
        Ok(self
            .meta
            .release_uploads_of(&format!("{}/", self.replica))
            .await?)
    }

    /// The writer lease of session `id`, on whichever replica the other writer runs.
    async fn claim(&self, id: &str) -> RegistryResult<WriterLease> {
        let request = random_bytes::<12>().map_err(|e| RegistryError::Unsupported(e.to_string()))?;
        let writer = format!("{}/{}", self.replica, hex::encode(request));
        let t = now();
        if !self.meta.claim_upload(id, &writer, t + LEASE_SECONDS, t).await? {
            return Err(RegistryError::UploadInvalid(
                "another request is writing to this upload".into(),
            ));
        }
        Ok(WriterLease {
            meta: self.meta.clone(),
            id: id.to_owned(),
            writer,
            renewed_at: t,
            released: false,
        })
    }

    /// Append one chunk. With `range`, it must start at the current offset and its length
    /// must match; otherwise nothing is acknowledged.
    pub async fn append<S, E>(
        &self,
        repository: &str,
        id: &str,
        range: Option<ChunkRange>,
        body: S,
    ) -> RegistryResult<UploadSession>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let session = self.status(repository, id).await?;
        let mut lease = self.claim(id).await?;
        let appended = self
            .append_claimed(session, range, body, Keep::Bytes, &mut lease)
            .await;
        lease.release().await;
        appended
    }

    async fn append_claimed<S, E>(
        &self,
        session: UploadSession,
        range: Option<ChunkRange>,
        mut body: S,
        keep: Keep,
        lease: &mut WriterLease,
    ) -> RegistryResult<UploadSession>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        if let Some(r) = range
            && (r.start != session.offset || r.end < r.start)
        {
            return Err(RegistryError::RangeInvalid {
                offset: session.offset,
            });
        }
        let mut hasher = ResumableSha256::restore(&session.hash_state)?;
        let mut written: u64 = 0;
        if keep == Keep::HashOnly {
            while let Some(frame) = body.next().await {
                let frame = frame.map_err(body_failed)?;
                hasher.update(&frame);
                written += frame.len() as u64;
            }
            check_range_length(range, written)?;
            // Nothing reached the scratch file, so the session row keeps its offset: it
            // must never claim bytes the file does not hold.
            return Ok(UploadSession {
                offset: session.offset + written,
                hash_state: hasher.save(),
                ..session
            });
        }
        let mut writer = self.blobs.upload_writer(&session.id, session.offset).await?;
        let mut pending = BytesMut::with_capacity(COALESCE);
        while let Some(frame) = body.next().await {
            let frame = frame.map_err(body_failed)?;
            // Fill each buffer exactly to its capacity, so it never grows (a realloc
            // copies and faults in new pages), then swap in one the writer is done with.
            let mut rest = &frame[..];
            while !rest.is_empty() {
                let take = rest.len().min(COALESCE - pending.len());
                pending.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if pending.len() == COALESCE {
                    let next = writer
                        .spare_buffer()
                        .filter(|b| b.capacity() >= COALESCE)
                        .unwrap_or_else(|| BytesMut::with_capacity(COALESCE));
                    let chunk = std::mem::replace(&mut pending, next).freeze();
                    hasher.update(&chunk);
                    written += chunk.len() as u64;
                    lease.keep().await?;
                    writer.write(chunk).await?;
                }
            }
        }
        if !pending.is_empty() {
            let chunk = pending.split().freeze();
            hasher.update(&chunk);
            written += chunk.len() as u64;
            lease.keep().await?;
            writer.write(chunk).await?;
        }
        writer.finish().await?;
        check_range_length(range, written)?;
        let new_offset = session.offset + written;
        let state = hasher.save();
        let t = now();
        if !self
            .meta
            .advance_upload(&session.id, session.offset, new_offset, &state, t)
            .await?
        {
            return Err(RegistryError::UploadInvalid(
                "upload changed while this chunk was written".into(),
            ));
        }
        Ok(UploadSession {
            offset: new_offset,
            hash_state: state,
            updated_at: t,
            ..session
        })
    }

    /// Finish an upload: append the last chunk (if any), verify the digest, make the blob
    /// visible. On a digest mismatch the whole upload is discarded.
    pub async fn complete<S, E>(
        &self,
        repository: &str,
        id: &str,
        expected: &Digest,
        range: Option<ChunkRange>,
        body: S,
    ) -> RegistryResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let session = self.status(repository, id).await?;
        let mut lease = self.claim(id).await?;
        let completed = self
            .complete_claimed(repository, session, expected, range, body, &mut lease)
            .await;
        lease.release().await;
        completed
    }

    async fn complete_claimed<S, E>(
        &self,
        repository: &str,
        session: UploadSession,
        expected: &Digest,
        range: Option<ChunkRange>,
        body: S,
        lease: &mut WriterLease,
    ) -> RegistryResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let id = session.id.clone();
        // Content the store already holds need not be written again, only verified: the
        // last request's bytes are hashed and dropped (a 1 GiB re-upload otherwise writes
        // 1 GiB to delete it at once). The blob is reserved before its copy is trusted:
        // from then on garbage collection leaves it alone for the grace period, so a copy
        // still there after the reservation stays while we hash.
        let keep = match self.blobs.stat(expected).await? {
            Some(size)
                if self.meta.reserve_blob(expected, size, now()).await? == BlobReservation::Reserved
                    && self.blobs.stat(expected).await?.is_some() =>
            {
                Keep::HashOnly
            }
            _ => Keep::Bytes,
        };
        let session = self.append_claimed(session, range, body, keep, lease).await?;
        let actual = ResumableSha256::restore(&session.hash_state)?.finish();
        if &actual != expected {
            self.discard(&id).await?;
            return Err(RegistryError::DigestInvalid(format!(
                "uploaded content has digest {actual}, not {expected}"
            )));
        }
        // The size is known now and nothing is committed or linked yet: a push over its
        // quota leaves no trace but the refusal.
        if let Some(quotas) = &self.quotas
            && let Err(refused) = quotas
                .admit(
                    repository,
                    Addition::Blob {
                        digest: expected,
                        size: session.offset,
                    },
                )
                .await
        {
            self.discard(&id).await?;
            return Err(refused);
        }
        // Reserve (again) before committing: bytes committed while a collection deletes
        // this digest could be deleted with it, so wait for that to end first.
        self.reserve(expected, session.offset).await?;
        lease.keep().await?;
        match keep {
            Keep::Bytes => self.blobs.commit_upload(&id, expected).await?,
            // The copy went away after all (the last chunk took longer than garbage
            // collection's grace period): refuse rather than link a blob without bytes.
            Keep::HashOnly if self.blobs.stat(expected).await?.is_none() => {
                self.discard(&id).await?;
                return Err(RegistryError::UploadInvalid(format!(
                    "the stored copy of {expected} went away during this upload; upload it again"
                )));
            }
            Keep::HashOnly => self.blobs.abort_upload(&id).await?,
        }
        match self.meta.link_blob(repository, expected, None, now()).await? {
            BlobLinkOutcome::Linked { .. } => {}
            // Only if more than the grace period passed since the reservation.
            BlobLinkOutcome::Missing | BlobLinkOutcome::Deleting => {
                self.discard(&id).await?;
                return Err(RegistryError::UploadInvalid(format!(
                    "{expected} was garbage-collected while this upload finished; upload it again"
                )));
            }
        }
        self.meta.delete_upload(&id).await?;
        Ok(session.offset)
    }

    /// Reserve blob `digest` (see `RepositoryStore::reserve_blob`), waiting out a garbage
    /// collection that is deleting it: it deletes the object, then the row, and the next
    /// reservation creates a fresh row. A tombstone left by an interrupted collection
    /// stays until the next run; the client is asked to retry (docker does).
    async fn reserve(&self, digest: &Digest, size: u64) -> RegistryResult<()> {
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(20);
        loop {
            if self.meta.reserve_blob(digest, size, now()).await? == BlobReservation::Reserved {
                return Ok(());
            }
            if started.elapsed() + pause > RESERVE_WAIT {
                return Err(RegistryError::UploadInvalid(format!(
                    "{digest} is being garbage-collected; retry the upload in a moment"
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(1));
        }
    }

    /// Monolithic upload in one POST (`?digest=` with the body).
    pub async fn upload_whole<S, E>(
        &self,
        repository: &str,
        expected: &Digest,
        body: S,
    ) -> RegistryResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let session = self.start(repository).await?;
        let result = self.complete(repository, &session.id, expected, None, body).await;
        if result.is_err() {
            self.discard(&session.id).await?;
        }
        result
    }

    pub async fn cancel(&self, repository: &str, id: &str) -> RegistryResult<()> {
        self.status(repository, id).await?;
        let lease = self.claim(id).await?;
        let discarded = self.discard(id).await;
        lease.release().await;
        discarded
    }

    /// Link a blob another repository holds; false if `from` does not hold it (or it is
    /// being garbage-collected: the client then uploads it).
    /// Refused with `QuotaExceeded` when linking it would take `repository`'s quota scope
    /// over its limit.
    pub async fn mount(&self, repository: &str, from: &str, digest: &Digest) -> RegistryResult<bool> {
        self.refuse_locked(repository).await?;
        if let Some(quotas) = self.quotas.as_ref().filter(|q| q.applies_to(repository)) {
            let Some(size) = self.meta.linked_blob(from, digest).await? else {
                return Ok(false);
            };
            quotas.admit(repository, Addition::Blob { digest, size }).await?;
        }
        Ok(matches!(
            self.meta.link_blob(repository, digest, Some(from), now()).await?,
            BlobLinkOutcome::Linked { .. }
        ))
    }

    async fn refuse_locked(&self, repository: &str) -> RegistryResult<()> {
        match write_lock(self.meta.as_ref(), repository).await? {
            Some(lock) => Err(refusal(repository, &lock, Attempt::Write)),
            None => Ok(()),
        }
    }

    async fn discard(&self, id: &str) -> RegistryResult<()> {
        self.meta.delete_upload(id).await?;
        self.blobs.abort_upload(id).await?;
        Ok(())
    }

    /// Forget sessions idle past the timeout and free their space; also free scratch
    /// space idle as long whose session row is gone (a crash between the two deletes of
    /// `discard`, or between creating the space and its session in `start`).
    /// Returns how many uploads were removed.
    pub async fn sweep_stale(&self) -> RegistryResult<usize> {
        let cutoff = now() - self.idle_timeout;
        let stale = self.meta.stale_uploads(cutoff).await?;
        for id in &stale {
            self.discard(id).await?;
        }
        let mut orphans = 0;
        for id in self.blobs.idle_uploads(cutoff).await? {
            if self.meta.get_upload(&id).await?.is_none() {
                self.blobs.abort_upload(&id).await?;
                orphans += 1;
            }
        }
        Ok(stale.len() + orphans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_store::{FsBlobStore, SqliteMetadataStore};

    async fn service(dir: &std::path::Path, idle: u64) -> (UploadService, Arc<dyn MetadataStore>) {
        let meta: Arc<dyn MetadataStore> =
            Arc::new(SqliteMetadataStore::open(&dir.join("m.db")).await.unwrap());
        let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(dir.join("s")).unwrap());
        (
            UploadService::new(blobs, meta.clone(), idle, "test-replica"),
            meta,
        )
    }

    fn body(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin + Send {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn idle_sessions_expire_and_their_bytes_are_freed() {
        let dir = tempfile::tempdir().unwrap();
        let (uploads, meta) = service(dir.path(), 0).await;
        let s = uploads.start("r").await.unwrap();
        uploads.append("r", &s.id, None, body(&[b"abc"])).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert!(matches!(
            uploads.status("r", &s.id).await,
            Err(RegistryError::UploadUnknown)
        ));
        assert!(meta.get_upload(&s.id).await.unwrap().is_none());
        assert!(!dir.path().join("s/uploads").join(&s.id).exists());
        let s2 = uploads.start("r").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert_eq!(uploads.sweep_stale().await.unwrap(), 1);
        assert!(!dir.path().join("s/uploads").join(&s2.id).exists());
    }

    /// The real filesystem store, counting the bytes handed to its upload writers.
    struct WriteCounting {
        inner: FsBlobStore,
        written: Arc<std::sync::atomic::AtomicU64>,
    }

    struct CountingWriter {
        inner: Box<dyn wharf_store::UploadWriter>,
        written: Arc<std::sync::atomic::AtomicU64>,
    }

    #[async_trait::async_trait]
    impl wharf_store::UploadWriter for CountingWriter {
        async fn write(&mut self, chunk: Bytes) -> wharf_store::StoreResult<()> {
            self.written
                .fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
            self.inner.write(chunk).await
        }
        async fn finish(self: Box<Self>) -> wharf_store::StoreResult<()> {
            self.inner.finish().await
        }
    }

    #[async_trait::async_trait]
    impl BlobStore for WriteCounting {
        async fn stat(&self, d: &Digest) -> wharf_store::StoreResult<Option<u64>> {
            self.inner.stat(d).await
        }
        async fn read(
            &self,
            d: &Digest,
            r: Option<wharf_store::ByteRange>,
        ) -> wharf_store::StoreResult<wharf_store::ByteStream> {
            self.inner.read(d, r).await
        }
        async fn delete(&self, d: &Digest) -> wharf_store::StoreResult<()> {
            self.inner.delete(d).await
        }
        async fn create_upload(&self, id: &str) -> wharf_store::StoreResult<()> {
            self.inner.create_upload(id).await
        }
        async fn upload_writer(
            &self,
            id: &str,
            offset: u64,
        ) -> wharf_store::StoreResult<Box<dyn wharf_store::UploadWriter>> {
            Ok(Box::new(CountingWriter {
                inner: self.inner.upload_writer(id, offset).await?,
                written: self.written.clone(),
            }))
        }
        async fn commit_upload(&self, id: &str, d: &Digest) -> wharf_store::StoreResult<()> {
            self.inner.commit_upload(id, d).await
        }
        async fn abort_upload(&self, id: &str) -> wharf_store::StoreResult<()> {
            self.inner.abort_upload(id).await
        }
        async fn idle_uploads(&self, before: i64) -> wharf_store::StoreResult<Vec<String>> {
            self.inner.idle_uploads(before).await
        }
    }

    #[tokio::test]
    async fn content_already_stored_is_verified_without_being_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let meta: Arc<dyn MetadataStore> =
            Arc::new(SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap());
        let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let blobs = WriteCounting {
            inner: FsBlobStore::open(dir.path().join("s")).unwrap(),
            written: written.clone(),
        };
        let uploads = UploadService::new(Arc::new(blobs), meta.clone(), 3600, "test-replica");
        let written = move || written.load(std::sync::atomic::Ordering::Relaxed);
        let digest = Digest::of(b"hello world");
        uploads
            .upload_whole("a", &digest, body(&[b"hello world"]))
            .await
            .unwrap();
        let scratch = dir.path().join("s/uploads");
        let hex = digest.hex();
        let blob = dir.path().join("s/blobs/sha256").join(&hex[..2]).join(hex);
        let stored_at = std::fs::metadata(&blob).unwrap().modified().unwrap();
        assert_eq!(written(), 11);

        // Monolithic again, into another repository.
        assert_eq!(
            uploads
                .upload_whole("b", &digest, body(&[b"hello ", b"world"]))
                .await
                .unwrap(),
            11
        );
        assert_eq!(meta.linked_blob("b", &digest).await.unwrap(), Some(11));
        assert_eq!(written(), 11, "the second copy was written");
        // Chunked: the earlier chunk was written, the last one only hashed.
        let s = uploads.start("c").await.unwrap();
        uploads
            .append("c", &s.id, None, body(&[b"hello "]))
            .await
            .unwrap();
        assert_eq!(
            uploads
                .complete("c", &s.id, &digest, None, body(&[b"world"]))
                .await
                .unwrap(),
            11
        );
        assert_eq!(meta.linked_blob("c", &digest).await.unwrap(), Some(11));
        assert_eq!(written(), 17, "only the chunk sent before the digest was known");
        // Other bytes claiming that digest are refused and leave nothing behind.
        let err = uploads
            .upload_whole("d", &digest, body(&[b"hello WORLD"]))
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::DigestInvalid(_)), "{err}");
        assert_eq!(meta.linked_blob("d", &digest).await.unwrap(), None);
        // A wrong length announced by Content-Range is refused as before.
        let s = uploads.start("e").await.unwrap();
        let err = uploads
            .complete(
                "e",
                &s.id,
                &digest,
                Some(ChunkRange { start: 0, end: 99 }),
                body(&[b"hello world"]),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::SizeInvalid(_)), "{err}");
        assert_eq!(uploads.status("e", &s.id).await.unwrap().offset, 0);
        uploads.cancel("e", &s.id).await.unwrap();

        assert_eq!(
            std::fs::read_dir(&scratch).unwrap().count(),
            0,
            "scratch files left"
        );
        assert_eq!(std::fs::read(&blob).unwrap(), b"hello world");
        assert_eq!(std::fs::metadata(&blob).unwrap().modified().unwrap(), stored_at);

        // Should the stored copy vanish while the bytes are only hashed (nothing removes
        // blob files yet), the upload is refused: no link to a blob without bytes.
        let gone = blob.clone();
        let vanishing = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(
            b"hello world",
        ))])
        .map(move |frame| {
            std::fs::remove_file(&gone).unwrap();
            frame
        });
        let err = uploads.upload_whole("f", &digest, vanishing).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("the stored copy of {digest} went away during this upload; upload it again")
        );
        assert!(matches!(err, RegistryError::UploadInvalid(_)));
        assert_eq!(meta.linked_blob("f", &digest).await.unwrap(), None);
        assert_eq!(
            std::fs::read_dir(&scratch).unwrap().count(),
            0,
            "scratch files left"
        );
    }

    #[tokio::test]
    async fn scratch_space_without_a_session_is_freed_once_idle() {
        let dir = tempfile::tempdir().unwrap();
        let (uploads, _) = service(dir.path(), 3600).await;
        let live = uploads.start("r").await.unwrap();
        let scratch = dir.path().join("s/uploads");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        let age = |name: &str| {
            let f = std::fs::File::options()
                .write(true)
                .open(scratch.join(name))
                .unwrap();
            f.set_modified(old).unwrap();
        };
        // Left by a crash: no session row, idle for two hours.
        std::fs::write(scratch.join("0badc0de-orphan"), b"x").unwrap();
        age("0badc0de-orphan");
        // No session row but written a moment ago: maybe an upload being started.
        std::fs::write(scratch.join("0badc0de-young"), b"x").unwrap();
        // Not an upload id: not ours.
        std::fs::write(scratch.join("notes.txt"), b"x").unwrap();
        age("notes.txt");
        // A session whose file is old but whose row is fresh stays.
        age(&live.id);
        assert_eq!(uploads.sweep_stale().await.unwrap(), 1);
        assert!(!scratch.join("0badc0de-orphan").exists());
        assert!(scratch.join("0badc0de-young").exists());
        assert!(scratch.join("notes.txt").exists());
        assert!(scratch.join(&live.id).exists());
        assert_eq!(uploads.status("r", &live.id).await.unwrap().offset, 0);
    }

    #[tokio::test]
    async fn frames_straddling_buffer_boundaries_arrive_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (uploads, _) = service(dir.path(), 3600).await;
        let sizes = [700 << 10, 700 << 10, COALESCE + 5, 3, 2 * COALESCE, 1];
        let mut all = Vec::new();
        let mut frames = Vec::new();
        for (i, n) in sizes.iter().enumerate() {
            let frame: Vec<u8> = (0..*n).map(|j| ((i * 31 + j) % 251) as u8).collect();
            all.extend_from_slice(&frame);
            frames.push(Ok::<_, std::io::Error>(Bytes::from(frame)));
        }
        let digest = Digest::of(&all);
        let size = uploads
            .upload_whole("r", &digest, futures_util::stream::iter(frames))
            .await
            .unwrap();
        assert_eq!(size, all.len() as u64);
        let hex = digest.hex();
        let stored = std::fs::read(dir.path().join("s/blobs/sha256").join(&hex[..2]).join(hex)).unwrap();
        assert!(stored == all, "stored bytes differ");
    }

    #[tokio::test]
    async fn a_chunk_whose_length_differs_from_its_range_is_not_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let (uploads, _) = service(dir.path(), 3600).await;
        let s = uploads.start("r").await.unwrap();
        let err = uploads
            .append(
                "r",
                &s.id,
                Some(ChunkRange { start: 0, end: 9 }),
                body(&[b"short"]),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Content-Range announced 10 bytes but the body held 5"
        );
        assert_eq!(uploads.status("r", &s.id).await.unwrap().offset, 0);
        // Resuming after the refusal writes from the acknowledged offset.
        uploads
            .append(
                "r",
                &s.id,
                Some(ChunkRange { start: 0, end: 4 }),
                body(&[b"hel", b"lo"]),
            )
            .await
            .unwrap();
        let size = uploads
            .complete("r", &s.id, &Digest::of(b"hello"), None, body(&[]))
            .await
            .unwrap();
        assert_eq!(size, 5);
    }

    /// Two replicas (two services on one database and one blob store): while a request
    /// on one writes to a session, a request on the other is refused and changes nothing;
    /// once the first ends, the second may go on from the acknowledged offset.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_writer_per_session_across_replicas() {
        let dir = tempfile::tempdir().unwrap();
        let (one, meta) = service(dir.path(), 3600).await;
        let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(dir.path().join("s")).unwrap());
        let two = Arc::new(UploadService::new(blobs, meta, 3600, "second-replica"));
        let one = Arc::new(one);
        let s = one.start("r").await.unwrap();

        // A body that delivers one frame, then waits for the test to let it finish.
        let (more, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        more.send(Ok(Bytes::from_static(b"abc"))).await.unwrap();
        let stalled = tokio::spawn({
            let (one, id) = (one.clone(), s.id.clone());
            async move {
                let body =
                    futures_util::stream::unfold(
                        rx,
                        |mut rx| async move { rx.recv().await.map(|f| (f, rx)) },
                    );
                one.append("r", &id, None, Box::pin(body)).await
            }
        });
        // The channel holds one frame: this send completes once the writer has taken the
        // first, i.e. after it claimed the session.
        more.send(Ok(Bytes::from_static(b"d"))).await.unwrap();
        let refused = two.append("r", &s.id, None, body(&[b"xyz"])).await.unwrap_err();
        assert_eq!(refused.to_string(), "another request is writing to this upload");
        drop(more);
        assert_eq!(stalled.await.unwrap().unwrap().offset, 4);
        // The lease is given back asynchronously when the request ends.
        let mut appended = None;
        for _ in 0..100 {
            if let Ok(session) = two.append("r", &s.id, None, body(&[b"ef"])).await {
                appended = Some(session.offset);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(appended, Some(6));
        let size = two
            .complete("r", &s.id, &Digest::of(b"abcdef"), None, body(&[]))
            .await
            .unwrap();
        assert_eq!(size, 6);
    }
}
