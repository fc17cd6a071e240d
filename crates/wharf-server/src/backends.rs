//! Opens the stores the configuration names: metadata in the embedded SQLite file or in
//! PostgreSQL, blob bytes on the local disk or in an S3 bucket. Everything above sees only
//! the store traits.

use std::path::Path;
use std::sync::Arc;

use wharf_store::{
    BlobStore, FsBlobStore, MetadataStore, PostgresMetadataStore, S3BlobStore, S3Config, SqliteMetadataStore,
    StoreError,
};

use crate::auth::secrets::private_file;
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot protect {0}: {1}")]
    File(String, std::io::Error),
    /// The store's own message names the database (never its password).
    #[error(transparent)]
    Metadata(StoreError),
    /// The store's own message names the endpoint and bucket (never the secret key).
    #[error(transparent)]
    Blobs(StoreError),
}

/// The metadata store: PostgreSQL when `database.url` is set (migrated under its advisory
/// lock, so replicas starting together do not race), else `<data_dir>/metadata.db`.
pub async fn open_metadata(config: &Config, data: &Path) -> Result<Arc<dyn MetadataStore>, BackendError> {
    if !config.database.url.is_empty() {
        return Ok(Arc::new(open_postgres(config).await?));
    }
    Ok(Arc::new(open_sqlite(data).await?))
}

/// The PostgreSQL database `database.url` names, migrated to this Wharf's schema.
pub async fn open_postgres(config: &Config) -> Result<PostgresMetadataStore, BackendError> {
    PostgresMetadataStore::connect(&config.database.url)
        .await
        .map_err(BackendError::Metadata)
}

/// The embedded database, `<data>/metadata.db`, created if missing and migrated.
pub async fn open_sqlite(data: &Path) -> Result<SqliteMetadataStore, BackendError> {
    let db = sqlite_path(data);
    private_file(&db).map_err(|e| BackendError::File(db.display().to_string(), e))?;
    SqliteMetadataStore::open(&db)
        .await
        .map_err(BackendError::Metadata)
}

/// The embedded database of an existing deployment, read-only and not migrated (what
/// `wharf migrate` copies from: it never changes the old data directory).
pub async fn open_sqlite_read_only(data: &Path) -> Result<SqliteMetadataStore, BackendError> {
    SqliteMetadataStore::open_read_only(&sqlite_path(data))
        .await
        .map_err(BackendError::Metadata)
}

/// Where the embedded database lives in a data directory.
pub fn sqlite_path(data: &Path) -> std::path::PathBuf {
    data.join("metadata.db")
}

/// The blob store `storage.backend` names.
pub async fn open_blobs(config: &Config, data: &Path) -> Result<Arc<dyn BlobStore>, BackendError> {
    match config.storage.backend.as_str() {
        "s3" => open_s3(config).await,
        _ => Ok(Arc::new(
            FsBlobStore::open(data.join("storage")).map_err(BackendError::Blobs)?,
        )),
    }
}

/// The S3 bucket; `connect` checks that it answers and may be written, so a wrong
/// endpoint, bucket or key fails the start with a message naming endpoint and bucket.
async fn open_s3(config: &Config) -> Result<Arc<dyn BlobStore>, BackendError> {
    let s3 = &config.storage.s3;
    let endpoint = (!s3.endpoint.is_empty()).then(|| s3.endpoint.clone());
    let mut settings = S3Config::new(endpoint, &s3.region, &s3.bucket);
    settings.path_style = s3.path_style;
    settings.prefix = s3.prefix.clone();
    settings.access_key_id = Some(s3.access_key_id.clone());
    settings.secret_access_key = Some(s3.secret_access_key.clone());
    // Plain HTTP only when the operator wrote an http:// endpoint (a store on loopback or
    // a private network); credentials are signed, never sent, either way.
    settings.allow_http = s3.endpoint.starts_with("http://");
    let store = S3BlobStore::connect(settings)
        .await
        .map_err(BackendError::Blobs)?;
    Ok(Arc::new(store))
}
