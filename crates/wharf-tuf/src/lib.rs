//! Notary v1 flavoured TUF: docker/go canonical JSON, keys and key IDs,
//! signatures, typed metadata and the server-side update validator.
//! Pure library: no I/O, no clock (callers pass "now"), no async.
//!
//! Server flow for `POST /v2/<gun>/_trust/tuf/`:
//! 1. each multipart part -> [`parse_upload_part`] (NO_FILENAME /
//!    INVALID_ROLE / the role's INVALID_UPDATE error when larger than
//!    [`limits::MAX_METADATA_BYTES`] / MALFORMED_JSON); all limits on
//!    uploaded metadata are in [`limits`];
//! 2. [`validate_update`] with the current stored file of each role, the
//!    server's keys ([`KeyLookup`], e.g. `Vec<PrivateKey>`) and "now";
//! 3. store the returned [`NewFile`]s in one transaction (unique
//!    (gun, role, version) -> [`UpdateError::Version`]);
//! 4. on error answer with the server's notary wire form of the `UpdateError`.
//!
//! Reading (portal, policy enforcement): [`verify_repository`] over the
//! stored files gives what a client believes — which roles validly sign
//! which tag for which digest, and the digest `docker pull` resolves.
//!
//! `GET timestamp.json`: [`refresh_timestamp`] returns re-signed files to
//! store first when the timestamp or a server-managed snapshot expired.
//! `GET <role>.key` (timestamp/snapshot key): [`generate_server_key`] +
//! [`PublicKey::to_key_endpoint_json`].

pub mod canonical;
pub mod error;
mod gojson;
pub mod keyfile;
pub mod keys;
pub mod limits;
pub mod metadata;
pub mod signature;
pub mod update;
pub mod verify;

pub use error::{Error, UpdateError};
pub use keys::PublicKey;
pub use metadata::{Envelope, FileMeta, Root, Signed, Snapshot, Targets, Timestamp};
pub use signature::{CertSigner, PrivateKey, Signature, Signer};
pub use update::{
    KeyLookup, NewFile, UpdateInput, Upload, generate_server_key, parse_upload_part, refresh_timestamp,
    validate_update,
};
pub use verify::{
    Files, IgnoreReason, IgnoredRole, TrustedRole, TrustedTarget, TrustedTargets, VerifyError,
    verify_repository,
};
