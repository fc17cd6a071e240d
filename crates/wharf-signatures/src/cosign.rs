//! cosign / sigstore simple-signing verification (in progress).
