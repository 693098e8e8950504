//! Signed-in browsers: a random session id in a cookie maps to what signed in (a
//! token, or the client certificate of a mutual-TLS connection), kept in memory only
//! and proved again on every request so a revoked token or a role taken away ends the
//! session at once, and to the session's CSRF token. And the sign-in rate limit per
//! peer address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arbiter_service::ServiceError;
use arbiter_service::app::App;
use arbiter_service::auth::{Caller, Peer, Presented};

use crate::{READERS, web};

/// What signed a session in, proved again on every request.
#[derive(Clone)]
pub(crate) enum Proof {
    /// An Arbiter token.
    Token(String),
    /// The client certificate of the connection, which proved the caller with this
    /// id: every later request must come over a connection whose certificate proves
    /// the same caller.
    Certificate(String),
}

impl Proof {
    /// The caller this proof shows on a request from `peer`, when it may read
    /// approvals.
    pub(crate) fn prove(&self, app: &App, peer: &Peer) -> Result<Caller, ServiceError> {
        match self {
            Self::Token(token) => crate::reader(app, token, peer),
            Self::Certificate(id) => {
                let caller = by_certificate(app, peer)?;
                if &caller.id != id {
                    return Err(ServiceError::Unauthenticated(
                        "this connection's client certificate is not the one that signed in",
                    ));
                }
                Ok(caller)
            }
        }
    }
}

/// The caller the client certificate of `peer`'s connection proves, when it may read
/// approvals. A connection without a certificate proves no one here (an anonymous
/// caller, even one given roles on loopback, never signs in).
pub(crate) fn by_certificate(app: &App, peer: &Peer) -> Result<Caller, ServiceError> {
    if peer.certificate.is_none() {
        return Err(ServiceError::Unauthenticated(
            "this connection presented no client certificate",
        ));
    }
    app.auth().authorize(Presented::Nothing, peer, READERS)
}

/// How long a session lasts from sign-in: a working day, after which the approver
/// signs in again.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// Sessions held at once; past it the oldest is dropped, so a flood of sign-ins
/// cannot grow memory without bound.
const MAX_SESSIONS: usize = 10_000;
/// Sign-in attempts per peer address in one [`ATTEMPT_WINDOW`]: plenty for a person
/// who mistypes, far too few to guess a 256-bit token (nor to burn CPU on hashing).
pub(crate) const MAX_ATTEMPTS: u32 = 10;
/// The window sign-in attempts are counted over.
pub(crate) const ATTEMPT_WINDOW: Duration = Duration::from_secs(60);
/// Peer addresses whose attempts are remembered; past it, windows that have ended
/// are forgotten first.
const MAX_PEERS: usize = 10_000;

/// One signed-in browser.
#[derive(Clone)]
pub(crate) struct Session {
    /// What signed in, proved again on every request.
    pub(crate) proof: Proof,
    /// The session's CSRF token, in a hidden field of every form.
    pub(crate) csrf: String,
    expires: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach a log line.
        f.debug_struct("Session")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// The sessions of one server.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session for `proof`: its id (the cookie's value) and its CSRF token.
    pub(crate) fn open(&self, proof: Proof) -> Option<(String, Session)> {
        let (id, csrf) = (web::secret()?, web::secret()?);
        let session = Session {
            proof,
            csrf,
            expires: Instant::now() + SESSION_TTL,
        };
        let mut open = self.open.lock().ok()?;
        let now = Instant::now();
        open.retain(|_, s| s.expires > now);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            open.remove(&oldest);
        }
        open.insert(id.clone(), session.clone());
        Some((id, session))
    }

    /// The live session with cookie value `id`.
    pub(crate) fn get(&self, id: &str) -> Option<Session> {
        let mut open = self.open.lock().ok()?;
        match open.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                open.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends session `id`.
    pub(crate) fn close(&self, id: &str) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(id);
        }
    }
}

/// Sign-in attempts per peer address, in fixed windows.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    seen: Mutex<HashMap<Option<IpAddr>, (Instant, u32)>>,
}

impl Attempts {
    /// Counts an attempt from `peer`; `false` when it is over the limit.
    pub(crate) fn allow(&self, peer: Option<IpAddr>) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        let now = Instant::now();
        if seen.len() >= MAX_PEERS {
            seen.retain(|_, (start, _)| now.duration_since(*start) < ATTEMPT_WINDOW);
        }
        if seen.len() >= MAX_PEERS {
            // Still full of live windows: refuse newcomers rather than forget anyone.
            return false;
        }
        let entry = seen.entry(peer).or_insert((now, 0));
        if now.duration_since(entry.0) >= ATTEMPT_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= MAX_ATTEMPTS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_past_the_limit_are_refused_per_peer() {
        let a = Attempts::default();
        let (one, two) = (
            Some(IpAddr::from([10, 0, 0, 1])),
            Some(IpAddr::from([10, 0, 0, 2])),
        );
        for _ in 0..MAX_ATTEMPTS {
            assert!(a.allow(one));
        }
        assert!(!a.allow(one));
        assert!(a.allow(two), "another peer has its own count");
    }

    #[test]
    fn a_closed_session_is_gone() {
        let s = Sessions::default();
        let (id, session) = s.open(Proof::Token("arb_x".into())).expect("randomness");
        assert_eq!(s.get(&id).map(|s| s.csrf), Some(session.csrf));
        s.close(&id);
        assert!(s.get(&id).is_none());
        assert!(s.get("not-a-session").is_none());
    }
}
