//! Image signatures other than Docker Content Trust, verified the way their own tools
//! verify them, with no I/O: the caller (the server's signature policy) fetches the
//! signature manifests and blobs and hands over bytes.
//!
//! - [`cosign`]: sigstore "simple signing" signatures as cosign and skopeo
//!   (`--sign-by-sigstore-private-key`) store them, checked against public keys.
//! - [`notation`]: Notary Project signature envelopes, checked against a trust store
//!   of X.509 roots and trusted identities.

pub mod cosign;
pub mod notation;
