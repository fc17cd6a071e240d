//! Web portal sign-in sessions: a random 256-bit id in a cookie, only its SHA-256 kept
//! (in the metadata database, so a session made on one replica works on every other and
//! a restart signs nobody out), with a CSRF token per session. What a session may do is
//! not stored — the portal asks the access policy on every page, so role changes apply at
//! the next page load.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use wharf_store::{MetadataStore, PortalSessionRecord, SessionLimits, StoreError};

use crate::auth::secrets::random_token;

/// Signed out after this long without a page load.
pub const IDLE_SECONDS: i64 = 30 * 60;
/// Signed out after this long whatever happens.
pub const ABSOLUTE_SECONDS: i64 = 12 * 60 * 60;

const LIMITS: SessionLimits = SessionLimits {
    idle_seconds: IDLE_SECONDS,
    absolute_seconds: ABSOLUTE_SECONDS,
    // Enough for every browser a person uses; bounded so that signing in in a loop
    // cannot grow the table without end.
    per_principal: 32,
    // A page load rewrites the row at most once a minute: the idle limit is 30 minutes,
    // so this costs at most a minute of idle time.
    touch_seconds: 60,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    /// Who signed in: id, name and creation time together, because SQLite may give a
    /// deleted principal's id to the next one created — the session must not pass to them.
    pub principal: SignedIn,
    /// Every state-changing form carries this; a post without it is refused.
    pub csrf: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PortalSessionError {
    #[error("no randomness for a session id: {0}")]
    Random(#[from] crate::auth::secrets::SecretError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct PortalSessions {
    store: Arc<dyn MetadataStore>,
}

fn key(cookie: &str) -> Vec<u8> {
    Sha256::digest(cookie.as_bytes()).to_vec()
}

/// Constant-time comparison of a presented token with the expected one.
pub fn tokens_match(expected: &str, presented: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), presented.as_bytes()).is_ok()
}

impl PortalSessions {
    pub fn new(store: Arc<dyn MetadataStore>) -> Self {
        Self { store }
    }

    /// Start a session; returns the cookie value (shown to the browser only).
    pub async fn start(
        &self,
        principal: SignedIn,
        now: i64,
    ) -> Result<(String, PortalSession), PortalSessionError> {
        let cookie = random_token()?;
        let session = PortalSession {
            principal,
            csrf: random_token()?,
        };
        let record = PortalSessionRecord {
            key_hash: key(&cookie),
            principal_id: session.principal.id,
            principal_name: session.principal.name.clone(),
            principal_created_at: session.principal.created_at,
            csrf: session.csrf.clone(),
            created_at: now,
            last_seen: now,
        };
        self.store.create_portal_session(&record, LIMITS).await?;
        Ok((cookie, session))
    }

    /// The live session a cookie names, marking it used.
    pub async fn resume(&self, cookie: &str, now: i64) -> Result<Option<PortalSession>, StoreError> {
        let record = self
            .store
            .resume_portal_session(&key(cookie), now, LIMITS)
            .await?;
        Ok(record.map(|r| PortalSession {
            principal: SignedIn {
                id: r.principal_id,
                name: r.principal_name,
                created_at: r.principal_created_at,
            },
            csrf: r.csrf,
        }))
    }

    /// Sign out: the cookie stops working at once, on every replica.
    pub async fn end(&self, cookie: &str) -> Result<(), StoreError> {
        self.store.end_portal_session(&key(cookie)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_store::{AuditRecord, IdentityStore, SqliteMetadataStore};

    async fn sessions() -> (tempfile::TempDir, PortalSessions, Vec<SignedIn>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap());
        let mut who = Vec::new();
        for name in ["ann", "bob"] {
            let audit = AuditRecord {
                at: 1,
                actor: "test".into(),
                action: "principal.create".into(),
                target: name.into(),
                detail: String::new(),
            };
            let p = store
                .create_principal(name, "user", None, None, 1, &audit)
                .await
                .unwrap();
            who.push(SignedIn {
                id: p.id,
                name: p.name,
                created_at: p.created_at,
            });
        }
        (dir, PortalSessions::new(store), who)
    }

    #[tokio::test]
    async fn start_resume_end() {
        let (_d, s, who) = sessions().await;
        let (cookie, session) = s.start(who[0].clone(), 1000).await.unwrap();
        assert_eq!(s.resume(&cookie, 1001).await.unwrap(), Some(session.clone()));
        assert_eq!(s.resume("not-a-session", 1001).await.unwrap(), None);
        s.end(&cookie).await.unwrap();
        assert_eq!(s.resume(&cookie, 1002).await.unwrap(), None);
    }

    #[tokio::test]
    async fn idle_and_absolute_expiry() {
        let (_d, s, who) = sessions().await;
        let (idle, _) = s.start(who[0].clone(), 0).await.unwrap();
        assert!(s.resume(&idle, IDLE_SECONDS - 1).await.unwrap().is_some());
        assert!(
            s.resume(&idle, 2 * IDLE_SECONDS).await.unwrap().is_none(),
            "idle session survived"
        );

        let (busy, _) = s.start(who[1].clone(), 0).await.unwrap();
        let mut t = 0;
        while t + IDLE_SECONDS / 2 < ABSOLUTE_SECONDS {
            t += IDLE_SECONDS / 2;
            assert!(s.resume(&busy, t).await.unwrap().is_some());
        }
        assert!(
            s.resume(&busy, ABSOLUTE_SECONDS).await.unwrap().is_none(),
            "session outlived its absolute limit"
        );
    }

    #[tokio::test]
    async fn a_principal_holds_a_bounded_number_of_sessions_oldest_go_first() {
        let (_d, s, who) = sessions().await;
        let mut cookies = Vec::new();
        for i in 0..=i64::from(LIMITS.per_principal) {
            cookies.push(s.start(who[0].clone(), 100 + i).await.unwrap().0);
        }
        let other = s.start(who[1].clone(), 100).await.unwrap().0;
        let now = 100 + i64::from(LIMITS.per_principal) + 1;
        assert!(
            s.resume(&cookies[0], now).await.unwrap().is_none(),
            "the oldest session outlived the limit"
        );
        for c in &cookies[1..] {
            assert!(s.resume(c, now).await.unwrap().is_some());
        }
        assert!(
            s.resume(&other, now).await.unwrap().is_some(),
            "another principal's session was dropped"
        );
    }

    #[tokio::test]
    async fn csrf_tokens_are_random_and_compared_exactly() {
        let (_d, s, who) = sessions().await;
        let (_, a) = s.start(who[0].clone(), 0).await.unwrap();
        let (_, b) = s.start(who[0].clone(), 0).await.unwrap();
        assert_ne!(a.csrf, b.csrf);
        assert!(tokens_match(&a.csrf, &a.csrf));
        assert!(!tokens_match(&a.csrf, &b.csrf));
        assert!(!tokens_match(&a.csrf, ""));
    }
}
