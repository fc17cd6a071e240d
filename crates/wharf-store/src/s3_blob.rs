//! `S3BlobStore`: blobs in any S3-compatible object store (AWS S3, Garage, MinIO, …), so
//! that several stateless Wharf replicas can share them.
//!
//! # Key layout (all under the optional `prefix`)
//!
//! - `uploads/<id>/at-<offset>`: an upload's state after a writer finished at `offset`
//!   (20 digits, so keys sort by offset): the S3 multipart upload id, the ETag and length
//!   of every full part, the tail object holding the bytes after them, and the SHA-256
//!   state of all bytes so far.
//! - `uploads/<id>/tail-<offset>-<nonce>`: the bytes after the last full part (shorter
//!   than one part), written once and never overwritten.
//! - `data/<id>`: the key the upload's S3 multipart upload completes at.
//! - `blobs/sha256/<2 hex>/<hex>`: a small JSON pointer `{key, size}` to the data object.
//!   Its presence *is* the blob: it is written, in one atomic PUT, only after the data
//!   object is complete and its SHA-256 was checked.
//!
//! # Why a pointer and not a copy at commit
//!
//! An S3 multipart upload is bound to the key given when it is created, and an upload's
//! digest is only known after its last byte, so bytes can never complete directly at
//! `blobs/<digest>`. The alternatives are a server-side copy at commit (CopyObject, which
//! AWS limits to 5 GiB, or UploadPartCopy past that) or an indirection. Measured on Garage
//! 2.5 (loopback, 1 GiB, `tests/s3_bench.rs`): completing in place plus the pointer PUT
//! takes 0.13–0.23 s; a CopyObject of the completed object adds 0.07–0.16 s, cheap
//! because Garage copies block references, not bytes. Stores that copy bytes (AWS, MinIO)
//! take time proportional to the blob instead. The pointer costs nothing extra for `stat`
//! (one small GET, ~0.5–1 ms, where a copy design would HEAD) and one small GET before
//! each `read`, whatever the size, on every S3 implementation.
//!
//! # Parts, tails and resuming on another replica
//!
//! Registry chunks come in any size (1 byte in the OCI conformance tests, one 1 GiB PATCH
//! from docker), S3 parts must be ≥ 5 MiB except the last. A writer fills a part buffer
//! and uploads each full part as soon as it is full; at `finish` the remainder goes to a
//! fresh tail object and then the state object `at-<offset>` is written. A writer opened
//! at `offset` (on any replica) reads `at-<offset>` and the tail into its buffer and goes
//! on from there, numbering new parts after the recorded ones. Whatever a crashed or
//! abandoned writer left past `offset` is ignored: its parts are not in the state (S3
//! drops parts not listed at completion, and the next writer overwrites their numbers),
//! its tails and states sit at other keys. States below `offset` are deleted when a
//! writer opens at `offset`, since the caller only passes acknowledged offsets.
//!
//! The multipart upload is created with the upload (`create_upload`), not lazily, so its
//! id is always in a state object and `abort_upload` can always abort it: a writer
//! dropped mid-request (client gone) never leaves an unrecorded multipart upload behind.
//!
//! # Why the store hashes again
//!
//! The caller verifies the digest from the hash state in its metadata store, but two
//! writers on different replicas could race on one upload (a client retrying on another
//! replica) and leave a state object that is not the acknowledged one. So every state
//! carries the SHA-256 of its own bytes, and `commit_upload` completes the state whose
//! hash *is* the digest, or fails: bytes can never become visible under a digest they do
//! not have. The cost is a second SHA-256 pass over uploaded bytes.
//!
//! # Memory
//!
//! One writer holds at most two part buffers (one filling, one being uploaded) plus the
//! chunk handed to `write`: 2 × `part_size` (16 MiB with the default 8 MiB parts).
//! Downloads stream the HTTP response body and hold only what is in flight.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    BackoffConfig, Certificate, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode,
    PutPayload, RetryConfig,
};
use serde::{Deserialize, Serialize};
use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest as _, Sha256};
use tokio::task::JoinHandle;

use crate::blob::{BlobStore, ByteRange, ByteStream, UploadWriter};
use crate::fs_blob::is_upload_id;
use crate::{Digest, StoreError, StoreResult};

/// Default size of a multipart part: 8 MiB keeps a writer at ≤ 16 MiB and allows blobs
/// up to 78 GiB (S3's 10,000-part limit).
pub const DEFAULT_PART_SIZE: usize = 8 << 20;
/// S3's minimum size of every part but the last.
pub const MIN_PART_SIZE: usize = 5 << 20;

/// Where and how to reach the bucket.
#[derive(Clone)]
pub struct S3Config {
    /// `https://host[:port]`; `None` for AWS's regional endpoint.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// Path-style URLs (`endpoint/bucket/key`), as Garage and MinIO usually need.
    pub path_style: bool,
    /// Static credentials; `None` reads the usual `AWS_*` variables (and instance or
    /// container credentials) through the object_store credential chain.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Keys are placed under `<prefix>/`; empty for the bucket root.
    pub prefix: String,
    /// Permit plain HTTP (loopback tests, a store on the same host).
    pub allow_http: bool,
    /// PEM bundle of extra CA certificates to trust besides the system's (a private CA
    /// in front of MinIO or Garage). `new` takes it from `AWS_CA_BUNDLE`, as AWS's SDKs
    /// do; object_store itself ignores that variable.
    pub ca_bundle: Option<PathBuf>,
    pub part_size: usize,
}

impl S3Config {
    pub fn new(endpoint: Option<String>, region: &str, bucket: &str) -> Self {
        Self {
            endpoint,
            region: region.to_owned(),
            bucket: bucket.to_owned(),
            path_style: true,
            access_key_id: None,
            secret_access_key: None,
            prefix: String::new(),
            allow_http: false,
            ca_bundle: std::env::var_os("AWS_CA_BUNDLE").map(PathBuf::from),
            part_size: DEFAULT_PART_SIZE,
        }
    }
}

/// Never prints the secret key.
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("prefix", &self.prefix)
            .field("allow_http", &self.allow_http)
            .field("ca_bundle", &self.ca_bundle)
            .field("part_size", &self.part_size)
            .finish()
    }
}

pub struct S3BlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    s3: AmazonS3,
    /// `prefix/` or empty.
    prefix: String,
    part_size: usize,
}

/// An upload's durable state at one offset (`uploads/<id>/at-<offset>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UploadState {
    offset: u64,
    multipart_id: String,
    /// ETag and length of each full part, in part order.
    parts: Vec<(String, u64)>,
    /// Name of the tail object within `uploads/<id>/`, if there are bytes after the parts.
    tail: Option<String>,
    tail_len: u64,
    /// Hex of the serialized SHA-256 state over bytes `0..offset`.
    sha256: String,
}

/// `blobs/sha256/<2 hex>/<hex>`: where a committed blob's bytes are.
#[derive(Debug, Serialize, Deserialize)]
struct Pointer {
    /// Data object key, relative to the prefix.
    key: String,
    size: u64,
}

fn backend(what: impl std::fmt::Display, e: object_store::Error) -> StoreError {
    StoreError::Backend(format!("{what}: {e}"))
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

fn random_nonce() -> String {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom writes at most `buf.len()` bytes into the buffer it is given.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        // Uniqueness, not secrecy, is needed: fall back to time and pid.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        buf = (t ^ (u64::from(std::process::id()) << 32)).to_le_bytes();
    }
    hex::encode(buf)
}

fn save_hash(h: &Sha256) -> String {
    hex::encode(h.serialize().as_slice())
}

fn restore_hash(saved: &str) -> StoreResult<Sha256> {
    let corrupt = || StoreError::Corrupt("upload state has a corrupt hash state".into());
    let raw = hex::decode(saved).map_err(|_| corrupt())?;
    let state = SerializedState::<Sha256>::try_from(raw.as_slice()).map_err(|_| corrupt())?;
    Sha256::deserialize(&state).map_err(|_| corrupt())
}

/// `at-<offset>` → offset; `tail-<offset>-<nonce>` → offset.
fn offset_of(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("at-").or_else(|| name.strip_prefix("tail-"))?;
    rest.split('-').next()?.parse().ok()
}

fn state_name(offset: u64) -> String {
    format!("at-{offset:020}")
}

impl Inner {
    fn key(&self, rel: &str) -> Path {
        Path::from(format!("{}{rel}", self.prefix))
    }

    fn pointer_key(&self, digest: &Digest) -> Path {
        let hex = digest.hex();
        self.key(&format!("blobs/sha256/{}/{hex}", &hex[..2]))
    }

    fn data_rel(id: &str) -> String {
        format!("data/{id}")
    }

    fn upload_dir(&self, id: &str) -> StoreResult<Path> {
        if !is_upload_id(id) {
            return Err(StoreError::InvalidKey(format!("upload id {id:?}")));
        }
        Ok(self.key(&format!("uploads/{id}")))
    }

    fn upload_key(&self, id: &str, name: &str) -> Path {
        self.key(&format!("uploads/{id}/{name}"))
    }

    async fn get_bytes(&self, key: &Path) -> Result<Bytes, object_store::Error> {
        self.s3.get(key).await?.bytes().await
    }

    async fn put_json<T: Serialize>(&self, key: &Path, value: &T) -> StoreResult<()> {
        let body = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.s3
            .put(key, PutPayload::from(body))
            .await
            .map_err(|e| backend(format_args!("writing {key}"), e))?;
        Ok(())
    }

    async fn pointer(&self, digest: &Digest) -> StoreResult<Option<Pointer>> {
        let key = self.pointer_key(digest);
        match self.get_bytes(&key).await {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("blob pointer {key}: {e}"))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(backend(format_args!("reading {key}"), e)),
        }
    }

    async fn state(&self, id: &str, offset: u64) -> StoreResult<Option<UploadState>> {
        let key = self.upload_key(id, &state_name(offset));
        match self.get_bytes(&key).await {
            Ok(b) => {
                let s: UploadState = serde_json::from_slice(&b)
                    .map_err(|e| StoreError::Corrupt(format!("upload state {key}: {e}")))?;
                let held = s.parts.iter().map(|p| p.1).sum::<u64>() + s.tail_len;
                if s.offset != offset || held != offset {
                    return Err(StoreError::Corrupt(format!(
                        "upload state {key} holds {held} bytes, not {offset}"
                    )));
                }
                Ok(Some(s))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(backend(format_args!("reading {key}"), e)),
        }
    }

    /// Every object under `uploads/<id>/`, as (name within the directory, key).
    async fn upload_objects(&self, id: &str) -> StoreResult<Vec<(String, Path)>> {
        let dir = self.upload_dir(id)?;
        let listed: Vec<_> = self
            .s3
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| backend(format_args!("listing {dir}"), e))?;
        Ok(listed
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.to_owned();
                Some((name, m.location))
            })
            .collect())
    }

    async fn tail_bytes(&self, id: &str, state: &UploadState) -> StoreResult<Option<Bytes>> {
        let Some(tail) = &state.tail else {
            return Ok(None);
        };
        let key = self.upload_key(id, tail);
        let bytes = self
            .get_bytes(&key)
            .await
            .map_err(|e| backend(format_args!("reading {key}"), e))?;
        if bytes.len() as u64 != state.tail_len {
            return Err(StoreError::Corrupt(format!(
                "tail {key} holds {} bytes, state says {}",
                bytes.len(),
                state.tail_len
            )));
        }
        Ok(Some(bytes))
    }

    async fn delete_quietly(&self, key: &Path) {
        if let Err(e) = self.s3.delete(key).await
            && !is_not_found(&e)
        {
            tracing::warn!(%key, error = %e, "could not delete S3 object; it stays until the upload is swept");
        }
    }
}

impl S3BlobStore {
    /// Build the client and check that the bucket is reachable and writable, so a wrong
    /// endpoint, bucket or key fails at start-up and not on the first push.
    pub async fn connect(config: S3Config) -> StoreResult<Self> {
        let place = format!(
            "S3 bucket {:?} at {}",
            config.bucket,
            config
                .endpoint
                .as_deref()
                .unwrap_or("the AWS endpoint of its region")
        );
        if config.part_size < MIN_PART_SIZE {
            return Err(StoreError::Backend(format!(
                "{place}: part size {} is below S3's minimum of {MIN_PART_SIZE} bytes",
                config.part_size
            )));
        }
        let mut client = ClientOptions::new()
            .with_allow_http(config.allow_http)
            .with_connect_timeout(Duration::from_secs(5))
            // A download streams as slowly as the registry client reads it; no fixed
            // deadline fits a 1 GiB layer over a slow link.
            .with_timeout_disabled();
        if let Some(path) = &config.ca_bundle {
            let pem = std::fs::read(path).map_err(|e| {
                StoreError::Backend(format!("{place}: reading CA bundle {}: {e}", path.display()))
            })?;
            let certs = Certificate::from_pem_bundle(&pem)
                .map_err(|e| StoreError::Backend(format!("{place}: CA bundle {}: {e}", path.display())))?;
            for cert in certs {
                client = client.with_root_certificate(cert);
            }
        }
        let mut builder = match (&config.access_key_id, &config.secret_access_key) {
            (Some(id), Some(secret)) => AmazonS3Builder::new()
                .with_access_key_id(id)
                .with_secret_access_key(secret),
            (None, None) => AmazonS3Builder::from_env(),
            _ => {
                return Err(StoreError::Backend(format!(
                    "{place}: set both the access key id and the secret access key, or neither"
                )));
            }
        };
        builder = builder
            .with_region(&config.region)
            .with_bucket_name(&config.bucket)
            .with_virtual_hosted_style_request(!config.path_style)
            // Carries allow_http too; a later `with_allow_http` on the builder would be
            // replaced by these options wholesale.
            .with_client_options(client)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 4,
                retry_timeout: Duration::from_secs(30),
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        // Over TLS the body is already integrity-protected, so parts are sent with
        // `UNSIGNED-PAYLOAD` instead of one more SHA-256 pass over every byte (~0.6 s of
        // CPU per GiB here). Plain HTTP keeps the signed payload hash.
        let tls = config
            .endpoint
            .as_deref()
            .is_none_or(|e| e.starts_with("https://"));
        builder = builder.with_unsigned_payload(tls);
        let s3 = builder
            .build()
            .map_err(|e| StoreError::Backend(format!("{place}: {e}")))?;
        let prefix = config.prefix.trim_matches('/');
        let inner = Inner {
            s3,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            part_size: config.part_size,
        };
        let probe = inner.key("wharf-probe");
        let unusable = |what: &str, e: object_store::Error| {
            let text = e.to_string();
            // object_store's text is complete but long (request timing, the XML body);
            // lead with what an operator fixes and the store's own error code.
            let code = text
                .split("<Code>")
                .nth(1)
                .and_then(|rest| rest.split("</Code>").next())
                .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric()));
            let hint = match code {
                Some("NoSuchBucket") => Some("the bucket does not exist"),
                Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch") => {
                    Some("the credentials were refused")
                }
                _ if text.contains("403 Forbidden") => Some("the credentials were refused"),
                _ if text.contains("Connection refused") => Some("the endpoint refused the connection"),
                _ if text.contains("error sending request") => Some("the endpoint did not answer"),
                _ => None,
            };
            StoreError::Backend(match (hint, code) {
                (Some(hint), Some(code)) => {
                    format!("{place} is not usable: {hint} ({what}: the store answered {code})")
                }
                (Some(hint), None) => format!("{place} is not usable: {hint} ({what})"),
                (None, _) => format!("{place} is not usable: {what} failed: {text}"),
            })
        };
        inner
            .s3
            .put(&probe, PutPayload::from_static(b"wharf start-up check\n"))
            .await
            .map_err(|e| unusable("writing a probe object", e))?;
        inner
            .s3
            .delete(&probe)
            .await
            .map_err(|e| unusable("deleting the probe object", e))?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Complete upload `id` from `state` at `data/<id>`, returning its size.
    async fn complete_data(&self, id: &str, state: &UploadState) -> StoreResult<u64> {
        let inner = &self.inner;
        let data = inner.key(&Inner::data_rel(id));
        let tail = inner.tail_bytes(id, state).await?;
        if state.parts.is_empty() {
            // Shorter than one part: a plain PUT. (A multipart upload whose only part is
            // empty, for the empty blob, is not accepted by every S3 implementation.)
            inner
                .s3
                .put(&data, PutPayload::from(tail.unwrap_or_default()))
                .await
                .map_err(|e| backend(format_args!("writing {data}"), e))?;
            if let Err(e) = inner.s3.abort_multipart(&data, &state.multipart_id).await {
                tracing::warn!(key = %data, error = %e, "could not abort an unused multipart upload");
            }
            return Ok(state.offset);
        }
        let mut parts: Vec<PartId> = state
            .parts
            .iter()
            .map(|(etag, _)| PartId {
                content_id: etag.clone(),
            })
            .collect();
        let completed = async {
            if let Some(tail) = tail {
                let part = inner
                    .s3
                    .put_part(&data, &state.multipart_id, parts.len(), PutPayload::from(tail))
                    .await
                    .map_err(|e| backend(format_args!("uploading the last part of {data}"), e))?;
                parts.push(part);
            }
            inner
                .s3
                .complete_multipart(&data, &state.multipart_id, parts)
                .await
                .map_err(|e| backend(format_args!("completing {data}"), e))
        }
        .await;
        if let Err(e) = completed {
            // A retried commit whose first attempt completed the object but died before
            // the pointer: the multipart upload is gone and the object is there, whole.
            return match inner.s3.head(&data).await {
                Ok(meta) if meta.size == state.offset => Ok(state.offset),
                _ => Err(e),
            };
        }
        Ok(state.offset)
    }

    /// The object key a committed blob's bytes are stored at (relative to the bucket),
    /// for tests and tools that look at the bucket directly.
    pub async fn data_key(&self, digest: &Digest) -> StoreResult<Option<String>> {
        Ok(self
            .inner
            .pointer(digest)
            .await?
            .map(|p| self.inner.key(&p.key).to_string()))
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn stat(&self, digest: &Digest) -> StoreResult<Option<u64>> {
        Ok(self.inner.pointer(digest).await?.map(|p| p.size))
    }

    async fn read(&self, digest: &Digest, range: Option<ByteRange>) -> StoreResult<ByteStream> {
        let pointer = self.inner.pointer(digest).await?.ok_or(StoreError::NotFound)?;
        let key = self.inner.key(&pointer.key);
        let options = GetOptions {
            range: range.map(|r| GetRange::Bounded(r.start..r.end + 1)),
            ..Default::default()
        };
        let got = match self.inner.s3.get_opts(&key, options).await {
            Ok(g) => g,
            // The pointer outlived its data (a delete racing this read).
            Err(e) if is_not_found(&e) => return Err(StoreError::NotFound),
            Err(e) => return Err(backend(format_args!("reading {key}"), e)),
        };
        Ok(got.into_stream().map_err(std::io::Error::other).boxed())
    }

    async fn delete(&self, digest: &Digest) -> StoreResult<()> {
        let Some(pointer) = self.inner.pointer(digest).await? else {
            return Ok(());
        };
        // Data first, pointer last: the pointer is the only record of where the data is,
        // so a failure or crash in between leaves the pointer and garbage collection's
        // retry (the blob's row stays a tombstone until this returns) deletes both. The
        // other order would leak the data object for good. The moment in between, with a
        // pointer to nothing, is harmless: nothing links to a blob being deleted.
        let data = self.inner.key(&pointer.key);
        match self.inner.s3.delete(&data).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(backend(format_args!("deleting {data}"), e)),
        }
        let key = self.inner.pointer_key(digest);
        match self.inner.s3.delete(&key).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(backend(format_args!("deleting {key}"), e)),
        }
        Ok(())
    }

    async fn create_upload(&self, id: &str) -> StoreResult<()> {
        self.inner.upload_dir(id)?;
        let data = self.inner.key(&Inner::data_rel(id));
        let multipart_id = self
            .inner
            .s3
            .create_multipart(&data)
            .await
            .map_err(|e| backend(format_args!("starting a multipart upload at {data}"), e))?;
        let state = UploadState {
            offset: 0,
            multipart_id,
            parts: Vec::new(),
            tail: None,
            tail_len: 0,
            sha256: save_hash(&Sha256::new()),
        };
        self.inner
            .put_json(&self.inner.upload_key(id, &state_name(0)), &state)
            .await
    }

    async fn upload_writer(&self, id: &str, offset: u64) -> StoreResult<Box<dyn UploadWriter>> {
        let inner = &self.inner;
        let Some(state) = inner.state(id, offset).await? else {
            return Err(if inner.upload_objects(id).await?.is_empty() {
                StoreError::NotFound
            } else {
                StoreError::Corrupt(format!("upload {id} has no state at offset {offset}"))
            });
        };
        let mut buf = BytesMut::with_capacity(inner.part_size);
        if let Some(tail) = inner.tail_bytes(id, &state).await? {
            buf.extend_from_slice(&tail);
        }
        let hasher = restore_hash(&state.sha256)?;
        // `offset` is acknowledged, so states and tails below it are history; drop them
        // in the background (failures only leave garbage for abort/commit to remove).
        let cleanup = self.inner.clone();
        let id_owned = id.to_owned();
        tokio::spawn(async move {
            if let Ok(objects) = cleanup.upload_objects(&id_owned).await {
                for (name, key) in objects {
                    if offset_of(&name).is_some_and(|o| o < offset) {
                        cleanup.delete_quietly(&key).await;
                    }
                }
            }
        });
        Ok(Box::new(S3UploadWriter {
            inner: self.inner.clone(),
            id: id.to_owned(),
            data: inner.key(&Inner::data_rel(id)),
            offset,
            state,
            buf,
            hasher,
            in_flight: None,
            spare: Vec::new(),
        }))
    }

    async fn commit_upload(&self, id: &str, digest: &Digest) -> StoreResult<()> {
        let inner = &self.inner;
        let mut offsets: Vec<u64> = inner
            .upload_objects(id)
            .await?
            .iter()
            .filter(|(name, _)| name.starts_with("at-"))
            .filter_map(|(name, _)| offset_of(name))
            .collect();
        if offsets.is_empty() {
            return Err(StoreError::NotFound);
        }
        // The newest state is nearly always the one; older ones only matter after a race.
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        let mut chosen = None;
        for offset in offsets {
            let Some(state) = inner.state(id, offset).await? else {
                continue;
            };
            if &Digest::from_sha256(restore_hash(&state.sha256)?.finalize().as_slice()) == digest {
                chosen = Some(state);
                break;
            }
        }
        let Some(state) = chosen else {
            return Err(StoreError::Corrupt(format!(
                "no stored state of upload {id} has digest {digest}"
            )));
        };
        if inner.pointer(digest).await?.is_some() {
            // Same digest, same bytes: the stored copy stays, ours goes.
            return self.abort_upload(id).await;
        }
        let size = self.complete_data(id, &state).await?;
        // The one atomic step that makes the blob visible. Create-only (If-None-Match),
        // so when two uploads of one digest commit at once the loser learns it and
        // removes its copy; a store that ignores the condition lets the last pointer win,
        // which is correct too (same bytes) but leaves the other copy unreferenced
        // (Garage 2.5 ignores the condition: checked by hand, a second create succeeds).
        let key = inner.pointer_key(digest);
        let pointer = serde_json::to_vec(&Pointer {
            key: Inner::data_rel(id),
            size,
        })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        match inner
            .s3
            .put_opts(&key, PutPayload::from(pointer), PutMode::Create.into())
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                inner.delete_quietly(&inner.key(&Inner::data_rel(id))).await;
            }
            Err(e) => return Err(backend(format_args!("writing {key}"), e)),
        }
        for (_, key) in inner.upload_objects(id).await.unwrap_or_default() {
            inner.delete_quietly(&key).await;
        }
        Ok(())
    }

    async fn abort_upload(&self, id: &str) -> StoreResult<()> {
        let inner = &self.inner;
        let objects = inner.upload_objects(id).await?;
        // Every state names the same multipart upload; any one will do.
        if let Some(offset) = objects
            .iter()
            .find_map(|(n, _)| n.strip_prefix("at-").and(offset_of(n)))
            && let Some(state) = inner.state(id, offset).await?
        {
            let data = inner.key(&Inner::data_rel(id));
            // Already completed (committed) or aborted: nothing to abort. The data
            // object of a committed upload is never touched here.
            if let Err(e) = inner.s3.abort_multipart(&data, &state.multipart_id).await
                && !is_not_found(&e)
            {
                return Err(backend(
                    format_args!("aborting the multipart upload at {data}"),
                    e,
                ));
            }
        }
        for (_, key) in objects {
            match inner.s3.delete(&key).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(backend(format_args!("deleting {key}"), e)),
            }
        }
        Ok(())
    }

    async fn idle_uploads(&self, before: i64) -> StoreResult<Vec<String>> {
        let dir = self.inner.key("uploads");
        let listed: Vec<_> = self
            .inner
            .s3
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| backend(format_args!("listing {dir}"), e))?;
        // An upload is idle when its newest object is older than `before`.
        let mut newest: std::collections::BTreeMap<String, i64> = Default::default();
        for meta in listed {
            let Some(id) = meta
                .location
                .prefix_match(&dir)
                .and_then(|mut parts| parts.next())
                .map(|p| p.as_ref().to_owned())
            else {
                continue;
            };
            if !is_upload_id(&id) {
                continue;
            }
            let t = meta.last_modified.timestamp();
            let e = newest.entry(id).or_insert(t);
            *e = (*e).max(t);
        }
        Ok(newest
            .into_iter()
            .filter(|(_, t)| *t < before)
            .map(|(id, _)| id)
            .collect())
    }

    async fn download_url(&self, digest: &Digest, expires: Duration) -> StoreResult<Option<String>> {
        let pointer = self.inner.pointer(digest).await?.ok_or(StoreError::NotFound)?;
        let key = self.inner.key(&pointer.key);
        let url = self
            .inner
            .s3
            .signed_url(object_store::signer::Method::GET, &key, expires)
            .await
            .map_err(|e| backend(format_args!("signing a URL for {key}"), e))?;
        Ok(Some(url.to_string()))
    }
}

type PartResult = StoreResult<(PartId, u64, Bytes)>;

/// Buffers a part, uploads it while the next one fills, and records the result in a new
/// state object at `finish`.
struct S3UploadWriter {
    inner: Arc<Inner>,
    id: String,
    data: Path,
    /// Bytes written so far, buffered ones included.
    offset: u64,
    /// The state this writer started from (its `offset` stays the starting offset),
    /// with the parts uploaded since appended.
    state: UploadState,
    /// The part being filled; always shorter than `part_size` between calls.
    buf: BytesMut,
    hasher: Sha256,
    /// The full part being uploaded, with its part index.
    in_flight: Option<JoinHandle<PartResult>>,
    /// Emptied chunk buffers for `spare_buffer`.
    spare: Vec<BytesMut>,
}

impl Drop for S3UploadWriter {
    fn drop(&mut self) {
        // A writer dropped without `finish` (client gone): its part must not land after a
        // later writer uploaded the same part number.
        if let Some(h) = self.in_flight.take() {
            h.abort();
        }
    }
}

impl S3UploadWriter {
    async fn settle_in_flight(&mut self) -> StoreResult<Option<Bytes>> {
        let Some(handle) = self.in_flight.take() else {
            return Ok(None);
        };
        let (part, len, buf) = handle
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
        self.state.parts.push((part.content_id, len));
        Ok(Some(buf))
    }

    /// Upload the full `buf` as the next part, after the previous part is done.
    async fn ship_part(&mut self) -> StoreResult<()> {
        let previous = self.settle_in_flight().await?;
        let part_size = self.inner.part_size;
        // Reuse the previous part's buffer once the HTTP client has let go of it.
        let next = previous
            .and_then(|b| b.try_into_mut().ok())
            .map(|mut b| {
                b.clear();
                b
            })
            .filter(|b| b.capacity() >= part_size)
            .unwrap_or_else(|| BytesMut::with_capacity(part_size));
        let full = std::mem::replace(&mut self.buf, next).freeze();
        let len = full.len() as u64;
        let idx = self.state.parts.len();
        let inner = self.inner.clone();
        let data = self.data.clone();
        let multipart_id = self.state.multipart_id.clone();
        self.in_flight = Some(tokio::spawn(async move {
            let part = inner
                .s3
                .put_part(&data, &multipart_id, idx, PutPayload::from(full.clone()))
                .await
                .map_err(|e| backend(format_args!("uploading part {} of {data}", idx + 1), e))?;
            Ok((part, len, full))
        }));
        Ok(())
    }
}

#[async_trait]
impl UploadWriter for S3UploadWriter {
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()> {
        self.hasher.update(&chunk);
        self.offset += chunk.len() as u64;
        let part_size = self.inner.part_size;
        let mut rest = &chunk[..];
        loop {
            // `>=`: a tail left by a replica configured with larger parts can already
            // exceed this one's part size; it then goes out as one larger part.
            if self.buf.len() >= part_size {
                self.ship_part().await?;
            }
            if rest.is_empty() {
                break;
            }
            let take = rest.len().min(part_size - self.buf.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        if self.spare.len() < 2
            && let Ok(mut b) = chunk.try_into_mut()
        {
            b.clear();
            self.spare.push(b);
        }
        Ok(())
    }

    fn spare_buffer(&mut self) -> Option<BytesMut> {
        self.spare.pop()
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<()> {
        if self.offset == self.state.offset {
            // Nothing written: the state this writer started from still holds.
            return Ok(());
        }
        self.settle_in_flight().await?;
        let inner = self.inner.clone();
        let (tail, tail_len) = if self.buf.is_empty() {
            (None, 0)
        } else {
            let name = format!("tail-{:020}-{}", self.offset, random_nonce());
            let key = inner.upload_key(&self.id, &name);
            let bytes = std::mem::take(&mut self.buf).freeze();
            let len = bytes.len() as u64;
            inner
                .s3
                .put(&key, PutPayload::from(bytes))
                .await
                .map_err(|e| backend(format_args!("writing {key}"), e))?;
            (Some(name), len)
        };
        let state = UploadState {
            offset: self.offset,
            multipart_id: self.state.multipart_id.clone(),
            parts: std::mem::take(&mut self.state.parts),
            tail,
            tail_len,
            sha256: save_hash(&self.hasher),
        };
        inner
            .put_json(&inner.upload_key(&self.id, &state_name(self.offset)), &state)
            .await
    }
}
