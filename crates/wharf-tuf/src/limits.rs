//! Limits on uploaded metadata, so that one upload costs bounded CPU and
//! memory whatever it contains. A `targets` part with 54,000 signatures all
//! claiming the targets key (10 MB) used to be verified one by one for 16 s.
//!
//! What real clients produce (captured docker 28 / notary 0.7 files in
//! `testdata/notary`): 0.4–4.1 KiB per file, 1 signature (2 while a
//! root key rotates), 4–5 keys in a root, one key per role, a handful of
//! delegations. Every limit is orders of magnitude above that; each says
//! what it bounds. Uploads over a limit are refused with the role's typed
//! validation error (see `update`); stored files are not re-checked.
//!
//! Not bounded here: the number of parts in one request (each part is one
//! role, each bounded as below). The HTTP layer should cap the request body.

/// Largest metadata file accepted, for any role, checked before the JSON
/// is parsed. 8 MiB: a targets file grows by ~150–200 bytes per tag, so
/// this still holds ~40,000 tags in one file (docker writes every tag of a
/// repository into `targets` or a single delegation), while parsing it
/// stays in the tens of milliseconds.
pub const MAX_METADATA_BYTES: usize = 8 << 20;

/// Most key IDs one role may list (a root role entry or a delegation entry).
/// Real: 1, 2 during a root rotation.
pub const MAX_ROLE_KEYS: usize = 100;

/// Most signatures one file may carry. Verification is bounded anyway
/// (each key of the role is verified at most once, others never), so this
/// bounds the rest of the per-signature work; twice [`MAX_ROLE_KEYS`] leaves
/// room for a new root signed by every key of the old and the new root.
pub const MAX_SIGNATURES: usize = 2 * MAX_ROLE_KEYS;

/// Most keys in a root's `keys` or a targets file's `delegations.keys`. Each
/// declared key is parsed and checked when uploaded (microseconds each).
pub const MAX_KEYS: usize = 1000;

/// Most delegation entries in one targets file (docker adds one per signer
/// plus `targets/releases`).
pub const MAX_DELEGATIONS: usize = 1000;
