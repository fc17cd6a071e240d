//! Upload sessions: where a chunked upload stands, so any replica can continue it.

use async_trait::async_trait;

use crate::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSession {
    pub id: String,
    pub repository: String,
    /// Bytes acknowledged so far.
    pub offset: u64,
    /// Serialized SHA-256 state after `offset` bytes, so any replica can resume.
    pub hash_state: Vec<u8>,
    pub started_at: i64,
    pub updated_at: i64,
}

/// Upload sessions: where a chunked upload stands, so any replica can continue it.
#[async_trait]
pub trait UploadStore: Send + Sync + 'static {
    async fn create_upload(&self, session: &UploadSession) -> StoreResult<()>;
    async fn get_upload(&self, id: &str) -> StoreResult<Option<UploadSession>>;
    /// Advance a session only if nobody else moved it since `expected_offset`.
    async fn advance_upload(
        &self,
        id: &str,
        expected_offset: u64,
        new_offset: u64,
        hash_state: &[u8],
        now: i64,
    ) -> StoreResult<bool>;
    async fn delete_upload(&self, id: &str) -> StoreResult<bool>;
    /// Sessions idle since before `before`, for expiry.
    async fn stale_uploads(&self, before: i64) -> StoreResult<Vec<String>>;
    /// Take or renew the writer lease of upload `id` for `writer` until `until`: false
    /// while another writer holds an unexpired lease (or the session is gone). Two
    /// replicas writing one session's scratch space at once could store bytes other
    /// than the ones hashed; the lease makes them take turns.
    async fn claim_upload(&self, id: &str, writer: &str, until: i64, now: i64) -> StoreResult<bool>;
    /// Give the lease back, if `writer` still holds it.
    async fn release_upload(&self, id: &str, writer: &str) -> StoreResult<()>;
    /// Give back every lease whose writer starts with `writer_prefix` (a restarted
    /// replica's, none of whose requests survived); returns how many.
    async fn release_uploads_of(&self, writer_prefix: &str) -> StoreResult<u64>;
}
