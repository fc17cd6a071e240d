//! Content digests (`sha256:<64 lowercase hex>`), the address of every blob and manifest.

use std::fmt;

use sha2::{Digest as _, Sha256};

/// A validated `sha256` digest. Other algorithms are refused: every client we serve
/// (docker, skopeo, podman, notary) uses sha256, and accepting digests we cannot verify
/// would let unverified bytes in.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest must look like sha256:<64 lowercase hex characters>")]
    Malformed,
    #[error("unsupported digest algorithm {0:?}; only sha256 is accepted")]
    UnsupportedAlgorithm(String),
}

impl Digest {
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let (algo, hex) = s.split_once(':').ok_or(DigestError::Malformed)?;
        if algo != "sha256" {
            let known = !algo.is_empty()
                && algo
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
            return Err(if known {
                DigestError::UnsupportedAlgorithm(algo.to_owned())
            } else {
                DigestError::Malformed
            });
        }
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::Malformed);
        }
        Ok(Self(s.to_owned()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(bytes).as_slice())
    }

    pub fn from_sha256(raw: &[u8]) -> Self {
        Self(format!("sha256:{}", hex::encode(raw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part, used for content-addressed paths.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_well_formed_sha256() {
        let good = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(Digest::parse(&good).unwrap().hex(), "ab".repeat(32));
        assert_eq!(Digest::parse("sha256:AB").unwrap_err(), DigestError::Malformed);
        let upper = format!("sha256:{}", "AB".repeat(32));
        assert_eq!(Digest::parse(&upper).unwrap_err(), DigestError::Malformed);
        assert_eq!(
            Digest::parse(&format!("sha512:{}", "a".repeat(128))).unwrap_err(),
            DigestError::UnsupportedAlgorithm("sha512".into())
        );
        assert_eq!(Digest::parse("nocolon").unwrap_err(), DigestError::Malformed);
        assert_eq!(
            Digest::parse("../../etc:passwd").unwrap_err(),
            DigestError::Malformed
        );
    }

    #[test]
    fn digest_of_empty_input_is_the_well_known_value() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
