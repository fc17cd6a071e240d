//! Access tokens: compact ES256 JWTs as the Docker token spec describes. The registry
//! both issues and verifies them, so a small in-house JWS keeps the dependency tree to
//! the crypto provider rustls already uses.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::access::AccessEntry;

/// Clock skew tolerated between replicas when checking `nbf`/`exp`.
pub const LEEWAY_SECONDS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// Principal name.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub access: Vec<AccessEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was issued for another service")]
    WrongAudience,
    #[error("cannot create token key: {0}")]
    Key(String),
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

pub struct TokenSigner {
    key: EcdsaKeyPair,
    kid: String,
    issuer: String,
}

impl TokenSigner {
    pub fn generate_pkcs8() -> Result<Vec<u8>, TokenError> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map(|d| d.as_ref().to_vec())
            .map_err(|e| TokenError::Key(e.to_string()))
    }

    pub fn from_pkcs8(pkcs8: &[u8], issuer: &str) -> Result<Self, TokenError> {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|e| TokenError::Key(e.to_string()))?;
        let kid = hex::encode(&Sha256::digest(key.public_key().as_ref())[..12]);
        Ok(Self {
            key,
            kid,
            issuer: issuer.to_owned(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let header = Header {
            alg: "ES256".into(),
            typ: "JWT".into(),
            kid: self.kid.clone(),
        };
        let enc = |v: &[u8]| B64URL.encode(v);
        let head = serde_json::to_vec(&header).map_err(|e| TokenError::Key(e.to_string()))?;
        let body = serde_json::to_vec(claims).map_err(|e| TokenError::Key(e.to_string()))?;
        let signing_input = format!("{}.{}", enc(&head), enc(&body));
        let sig = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|e| TokenError::Key(e.to_string()))?;
        Ok(format!("{signing_input}.{}", enc(sig.as_ref())))
    }

    /// Check signature, audience and validity window; returns the claims.
    pub fn verify(&self, token: &str, audience: &str, now: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Header = B64URL
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        // Only our own algorithm and key: never let the token choose ("alg": "none").
        if header.alg != "ES256" || header.kid != self.kid {
            return Err(TokenError::BadSignature);
        }
        let sig = B64URL.decode(s).map_err(|_| TokenError::Malformed)?;
        let signing_input = &token[..h.len() + 1 + p.len()];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(signing_input.as_bytes(), &sig)
            .map_err(|_| TokenError::BadSignature)?;
        let claims: Claims = B64URL
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if claims.aud != audience || claims.iss != self.issuer {
            return Err(TokenError::WrongAudience);
        }
        if now >= claims.exp + LEEWAY_SECONDS {
            return Err(TokenError::Expired);
        }
        if now + LEEWAY_SECONDS < claims.nbf {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> Claims {
        Claims {
            iss: "wharf".into(),
            sub: "admin".into(),
            aud: "wharf".into(),
            exp: now + 300,
            nbf: now,
            iat: now,
            jti: "j1".into(),
            access: vec![AccessEntry {
                kind: "repository".into(),
                name: "a/b".into(),
                actions: vec!["pull".into()],
            }],
        }
    }

    #[test]
    fn round_trip_and_rejections() {
        let signer = TokenSigner::from_pkcs8(&TokenSigner::generate_pkcs8().unwrap(), "wharf").unwrap();
        let now = 1_700_000_000;
        let token = signer.sign(&claims(now)).unwrap();
        assert_eq!(signer.verify(&token, "wharf", now + 10).unwrap(), claims(now));
        assert_eq!(
            signer.verify(&token, "other", now),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(
            signer.verify(&token, "wharf", now + 400),
            Err(TokenError::Expired)
        );
        // A token whose claims were edited no longer verifies.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut forged = claims(now);
        forged.access[0].actions.push("push".into());
        parts[1] = B64URL.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            signer.verify(&parts.join("."), "wharf", now),
            Err(TokenError::BadSignature)
        );
        // Signed by another key.
        let other = TokenSigner::from_pkcs8(&TokenSigner::generate_pkcs8().unwrap(), "wharf").unwrap();
        assert_eq!(
            signer.verify(&other.sign(&claims(now)).unwrap(), "wharf", now),
            Err(TokenError::BadSignature)
        );
        assert_eq!(signer.verify("a.b", "wharf", now), Err(TokenError::Malformed));
    }
}
