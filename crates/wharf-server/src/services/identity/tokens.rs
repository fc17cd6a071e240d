//! Access tokens: issuing one signed with the current key for what the policy grants,
//! and verifying one (from the verified-token memory when already seen).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use wharf_store::Principal;

use super::signing_keys::TOKEN_ISSUER;
use super::{IdentityError, IdentityService};
use crate::auth::secrets::random_bytes;
use crate::auth::token::{Claims, TokenError};
use crate::auth::{AccessEntry, Caller};
use crate::clock::now;
use crate::services::anonymous_pull::ANONYMOUS;

pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
    pub issued_at: i64,
}

impl IdentityService {
    /// Sign a token carrying what the policy grants `principal` of `requested`. Names are
    /// read by the server's own names only: the Host header of the token request plays
    /// no part, so the trust routes read every granted name the same way.
    pub async fn issue(
        &self,
        principal: &Principal,
        requested: &[AccessEntry],
    ) -> Result<IssuedToken, IdentityError> {
        let grants = self.grants_of(principal).await?;
        let access = self.policy.grant(&grants, requested, &self.names);
        self.sign_token(&principal.name, access)
    }

    /// A token for a caller without credentials: pull on what anonymous pull opens
    /// (`anonymous` are those grants), repository entries only — never the catalog or
    /// administration. The gate checks anonymous pull again on every request.
    pub fn issue_anonymous(
        &self,
        anonymous: &crate::auth::Grants,
        requested: &[AccessEntry],
    ) -> Result<IssuedToken, IdentityError> {
        let repositories: Vec<AccessEntry> = requested
            .iter()
            .filter(|e| e.kind == "repository")
            .cloned()
            .collect();
        let access = self.policy.grant(anonymous, &repositories, &self.names);
        self.sign_token(ANONYMOUS, access)
    }

    fn sign_token(&self, sub: &str, access: Vec<AccessEntry>) -> Result<IssuedToken, IdentityError> {
        let t = now();
        let jti = B64URL.encode(random_bytes::<12>()?);
        let claims = Claims {
            iss: TOKEN_ISSUER.to_owned(),
            sub: sub.to_owned(),
            aud: self.service.clone(),
            exp: t + self.ttl,
            nbf: t,
            iat: t,
            iat_ms: Some(crate::clock::now_ms()),
            jti,
            access,
        };
        Ok(IssuedToken {
            token: self.signing_keys().keys.sign(&claims)?,
            expires_in: self.ttl,
            issued_at: t,
        })
    }

    pub fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        let keys = self.signing_keys();
        let t = now();
        let (caller, issued_at) = match keys.verified.get(token, t) {
            Some(hit) => hit,
            None => {
                let claims = keys.keys.verify(token, &self.service, t, self.clock_skew)?;
                let caller = Caller {
                    principal: claims.sub,
                    access: claims.access,
                };
                // Remembered until the moment `verify` itself would call it expired, or
                // until the key set changes.
                // Tokens without milliseconds count from the end of their second, so a
                // revocation in that second covers them.
                let issued_ms = claims.iat_ms.unwrap_or(claims.iat * 1000 + 999);
                keys.verified
                    .put(token, &caller, claims.exp + self.clock_skew, issued_ms);
                (caller, issued_ms)
            }
        };
        // Checked on both paths: a remembered token of a deleted principal is refused too.
        if self.revocations.is_revoked(&caller.principal, issued_at) {
            return Err(TokenError::Revoked);
        }
        Ok(caller)
    }
}
