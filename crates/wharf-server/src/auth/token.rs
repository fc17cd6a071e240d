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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// Principal name.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    /// `iat` in milliseconds, so a revocation can tell tokens of the same second apart.
    #[serde(default, rename = "wharf_iat_ms", skip_serializing_if = "Option::is_none")]
    pub iat_ms: Option<i64>,
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
    #[error("token was revoked: its principal was deleted or its secret changed")]
    Revoked,
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

    /// What the JWT header's `kid` carries: the first 12 bytes of SHA-256 over the public
    /// key, hex. Derived from the key, so it is the same after a restart.
    pub fn key_id(&self) -> &str {
        &self.kid
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

    /// Check signature, audience and validity window, widened by `leeway` seconds of clock
    /// skew at both ends (`auth.clock_skew_seconds`); returns the claims.
    pub fn verify(&self, token: &str, audience: &str, now: i64, leeway: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header = decode_header(h)?;
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
        // Saturating: the times are the token's own (signed, but never trusted to be sane).
        if now >= claims.exp.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        if now.saturating_add(leeway) < claims.nbf {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

fn decode_header(encoded: &str) -> Result<Header, TokenError> {
    B64URL
        .decode(encoded)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Malformed)
}

/// The keys access tokens are checked against: the current one, which signs, and the one
/// it replaced at the last rotation, which still verifies so that tokens issued just
/// before a rotation live out their few minutes. A token signed by any older key fails.
pub struct TokenKeySet {
    pub current: TokenSigner,
    pub previous: Option<TokenSigner>,
}

impl TokenKeySet {
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        self.current.sign(claims)
    }

    /// The header's `kid` picks the key, so a token costs one signature check whichever
    /// key signed it; an unknown `kid` is a bad signature.
    pub fn verify(&self, token: &str, audience: &str, now: i64, leeway: i64) -> Result<Claims, TokenError> {
        let header = decode_header(token.split('.').next().unwrap_or_default())?;
        let signer = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.kid == header.kid)
            .ok_or(TokenError::BadSignature)?;
        signer.verify(token, audience, now, leeway)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default `auth.clock_skew_seconds`.
    const LEEWAY: i64 = 30;

    fn claims(now: i64) -> Claims {
        Claims {
            iat_ms: None,
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
        assert_eq!(
            signer.verify(&token, "wharf", now + 10, LEEWAY).unwrap(),
            claims(now)
        );
        assert_eq!(
            signer.verify(&token, "other", now, LEEWAY),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(
            signer.verify(&token, "wharf", now + 400, LEEWAY),
            Err(TokenError::Expired)
        );
        // A token whose claims were edited no longer verifies.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut forged = claims(now);
        forged.access[0].actions.push("push".into());
        parts[1] = B64URL.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            signer.verify(&parts.join("."), "wharf", now, LEEWAY),
            Err(TokenError::BadSignature)
        );
        // Signed by another key.
        let other = TokenSigner::from_pkcs8(&TokenSigner::generate_pkcs8().unwrap(), "wharf").unwrap();
        assert_eq!(
            signer.verify(&other.sign(&claims(now)).unwrap(), "wharf", now, LEEWAY),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            signer.verify("a.b", "wharf", now, LEEWAY),
            Err(TokenError::Malformed)
        );
    }

    /// The tolerated clock skew widens the validity window at both ends, and 0 gives the
    /// exact window: expired from `exp` on, valid from `nbf` on.
    #[test]
    fn clock_skew_widens_the_validity_window() {
        let signer = new_signer();
        let now = 1_700_000_000;
        let token = signer.sign(&claims(now)).unwrap();
        let exp = now + 300;
        for (leeway, at, valid) in [
            (0, exp - 1, true),
            (0, exp, false),
            (30, exp + 29, true),
            (30, exp + 30, false),
            (0, now, true),
            (0, now - 1, false),
            (30, now - 30, true),
            (30, now - 31, false),
        ] {
            let got = signer.verify(&token, "wharf", at, leeway);
            if valid {
                assert_eq!(got, Ok(claims(now)), "leeway {leeway}, at {}", at - now);
            } else {
                let want = if at >= exp {
                    TokenError::Expired
                } else {
                    TokenError::NotYetValid
                };
                assert_eq!(got, Err(want), "leeway {leeway}, at {}", at - now);
            }
        }
    }

    /// Extreme times in a validly signed token neither panic nor wrap around.
    #[test]
    fn extreme_times_are_judged_without_overflow() {
        let signer = new_signer();
        let now = 1_700_000_000;
        let mut far = claims(now);
        far.exp = i64::MAX;
        let token = signer.sign(&far).unwrap();
        assert_eq!(signer.verify(&token, "wharf", now, LEEWAY), Ok(far));
        let mut early = claims(now);
        early.nbf = i64::MAX;
        let token = signer.sign(&early).unwrap();
        assert_eq!(
            signer.verify(&token, "wharf", i64::MAX - 1, LEEWAY),
            Err(TokenError::Expired)
        );
        assert_eq!(
            signer.verify(&token, "wharf", now, LEEWAY),
            Err(TokenError::NotYetValid)
        );
    }

    fn new_signer() -> TokenSigner {
        TokenSigner::from_pkcs8(&TokenSigner::generate_pkcs8().unwrap(), "wharf").unwrap()
    }

    /// What a rotation does to the set: the current key becomes the previous one.
    fn rotated(set: TokenKeySet) -> TokenKeySet {
        TokenKeySet {
            current: new_signer(),
            previous: Some(set.current),
        }
    }

    #[test]
    fn key_set_accepts_current_and_previous_key_only() {
        let now = 1_700_000_000;
        let set = TokenKeySet {
            current: new_signer(),
            previous: None,
        };
        let first = set.sign(&claims(now)).unwrap();
        assert_eq!(set.verify(&first, "wharf", now, LEEWAY).unwrap(), claims(now));

        let set = rotated(set);
        let second = set.sign(&claims(now)).unwrap();
        assert_eq!(set.verify(&first, "wharf", now, LEEWAY).unwrap(), claims(now));
        assert_eq!(set.verify(&second, "wharf", now, LEEWAY).unwrap(), claims(now));

        let set = rotated(set);
        assert_eq!(
            set.verify(&first, "wharf", now, LEEWAY),
            Err(TokenError::BadSignature)
        );
        assert_eq!(set.verify(&second, "wharf", now, LEEWAY).unwrap(), claims(now));

        // Claiming a known kid does not help a token signed by another key.
        let mut parts: Vec<String> = new_signer()
            .sign(&claims(now))
            .unwrap()
            .split('.')
            .map(str::to_owned)
            .collect();
        let header = Header {
            alg: "ES256".into(),
            typ: "JWT".into(),
            kid: set.current.key_id().to_owned(),
        };
        parts[0] = B64URL.encode(serde_json::to_vec(&header).unwrap());
        assert_eq!(
            set.verify(&parts.join("."), "wharf", now, LEEWAY),
            Err(TokenError::BadSignature)
        );
        assert_eq!(set.verify("", "wharf", now, LEEWAY), Err(TokenError::Malformed));
    }
}
