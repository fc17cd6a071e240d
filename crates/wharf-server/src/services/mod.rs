//! Services hold the rules; they call stores and never know HTTP.

pub mod access;
pub mod anonymous_pull;
pub mod blobs;
pub mod error;
pub mod gc;
mod hash_state;
pub mod identity;
pub mod locks;
pub mod manifest_doc;
pub mod manifests;
pub mod portal_sessions;
pub mod quotas;
pub mod readiness;
pub mod replica_sync;
pub mod retention;
pub mod signature_policy;
pub mod trust;
pub mod uploads;
pub mod usage;

pub use error::{RegistryError, RegistryResult};
