//! Notary v1 flavoured TUF (placeholder, see ARCHITECTURE.md).
