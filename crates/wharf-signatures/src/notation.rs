//! Notary Project (Notation) signature verification (in progress).
