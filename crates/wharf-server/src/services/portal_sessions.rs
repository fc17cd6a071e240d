//! Web portal sign-in sessions: a random 256-bit id in a cookie, only its SHA-256 kept
//! here, with a CSRF token per session. Sessions live in this process's memory (like
//! the login throttle): one SQLite process serves every request, and a restart simply
//! signs everyone out. What a session may do is not stored here — the portal asks the
//! access policy on every page, so role changes apply at the next page load.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use crate::auth::secrets::SecretError;
use crate::auth::secrets::random_token;

/// Signed out after this long without a page load.
pub const IDLE_SECONDS: i64 = 30 * 60;
/// Signed out after this long whatever happens.
pub const ABSOLUTE_SECONDS: i64 = 12 * 60 * 60;
/// Bound on live sessions; past it the oldest are dropped (memory stays bounded even if
/// someone signs in in a loop).
const MAX_SESSIONS: usize = 10_000;

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

struct Entry {
    session: PortalSession,
    created_at: i64,
    last_seen: i64,
}

#[derive(Default)]
pub struct PortalSessions {
    live: Mutex<HashMap<[u8; 32], Entry>>,
}

fn key(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

/// Constant-time comparison of a presented token with the expected one.
pub fn tokens_match(expected: &str, presented: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), presented.as_bytes()).is_ok()
}

impl PortalSessions {
    /// Start a session; returns the cookie value (shown to the browser only).
    pub fn start(&self, principal: SignedIn, now: i64) -> Result<(String, PortalSession), SecretError> {
        let cookie = random_token()?;
        let session = PortalSession {
            principal,
            csrf: random_token()?,
        };
        if let Ok(mut live) = self.live.lock() {
            if live.len() >= MAX_SESSIONS {
                live.retain(|_, e| alive(e, now));
            }
            if live.len() >= MAX_SESSIONS
                && let Some(oldest) = live.iter().min_by_key(|(_, e)| e.created_at).map(|(k, _)| *k)
            {
                live.remove(&oldest);
            }
            live.insert(
                key(&cookie),
                Entry {
                    session: session.clone(),
                    created_at: now,
                    last_seen: now,
                },
            );
        }
        Ok((cookie, session))
    }

    /// The live session a cookie names, marking it used.
    pub fn resume(&self, cookie: &str, now: i64) -> Option<PortalSession> {
        let mut live = self.live.lock().ok()?;
        let k = key(cookie);
        let entry = live.get_mut(&k)?;
        if !alive(entry, now) {
            live.remove(&k);
            return None;
        }
        entry.last_seen = now;
        Some(entry.session.clone())
    }

    /// Sign out: the cookie stops working at once.
    pub fn end(&self, cookie: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(&key(cookie));
        }
    }
}

fn alive(e: &Entry, now: i64) -> bool {
    now - e.last_seen < IDLE_SECONDS && now - e.created_at < ABSOLUTE_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(id: i64) -> SignedIn {
        SignedIn {
            id,
            name: format!("user{id}"),
            created_at: 1,
        }
    }

    #[test]
    fn start_resume_end() {
        let s = PortalSessions::default();
        let (cookie, session) = s.start(who(7), 1000).unwrap();
        assert_eq!(s.resume(&cookie, 1001), Some(session.clone()));
        assert_eq!(s.resume("not-a-session", 1001), None);
        s.end(&cookie);
        assert_eq!(s.resume(&cookie, 1002), None);
    }

    #[test]
    fn idle_and_absolute_expiry() {
        let s = PortalSessions::default();
        let (idle, _) = s.start(who(1), 0).unwrap();
        assert!(s.resume(&idle, IDLE_SECONDS - 1).is_some());
        assert!(
            s.resume(&idle, 2 * IDLE_SECONDS).is_none(),
            "idle session survived"
        );

        let (busy, _) = s.start(who(2), 0).unwrap();
        let mut t = 0;
        while t + IDLE_SECONDS / 2 < ABSOLUTE_SECONDS {
            t += IDLE_SECONDS / 2;
            assert!(s.resume(&busy, t).is_some());
        }
        assert!(
            s.resume(&busy, ABSOLUTE_SECONDS).is_none(),
            "session outlived its absolute limit"
        );
    }

    #[test]
    fn csrf_tokens_are_random_and_compared_exactly() {
        let s = PortalSessions::default();
        let (_, a) = s.start(who(1), 0).unwrap();
        let (_, b) = s.start(who(1), 0).unwrap();
        assert_ne!(a.csrf, b.csrf);
        assert!(tokens_match(&a.csrf, &a.csrf));
        assert!(!tokens_match(&a.csrf, &b.csrf));
        assert!(!tokens_match(&a.csrf, ""));
    }
}
