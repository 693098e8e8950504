//! The approver console: `/console` on the HTTP listener, server-rendered pages where
//! the humans who stay in charge sign in with an Arbiter token, watch held actions
//! arrive live and approve or reject them. A thin adapter onto `arbiter-service`, like
//! the other doors: the same roles as the gRPC API (`approver` and `admin` read,
//! `approver` votes), the same vote call ([`App::vote`]: separation of duties, the
//! audit record with the session's identity), the same change stream as
//! `WatchApprovals`.
//!
//! | path | does |
//! | --- | --- |
//! | `GET/POST /console/sign-in` | the token form; a session cookie on success |
//! | `POST /console/sign-out` | ends the session |
//! | `GET /console/approvals` | pending approvals, live |
//! | `GET /console/approvals/{id}` | one approval, with the vote forms |
//! | `POST /console/approvals/{id}/vote` | approve or reject, with a comment |
//! | `GET /console/history` | decided approvals |
//! | `GET /console/events` | server-sent events: each change of an approval |
//! | `GET /console/audit` | admins: the audit log searched, and its chain verified |
//! | `GET /console/sets`, `/console/sets/{name}` | admins: policy sets, shadow divergence |
//! | `POST /console/sets/{name}/{act}` | admins: promote or roll back, confirmed |
//! | `GET /console/measurements`, `/console/measurements/{report}` | admins: replay reports as charts |
//! | `GET /console/console.js`, `console.css` | the page's script and style |
//!
//! Every form carries the session's CSRF token; every answer carries a strict
//! Content-Security-Policy (no inline script or style), `nosniff`, `no-referrer` and
//! `frame-ancestors 'none'`.

mod audit_page;
mod charts;
mod events;
mod measurements;
mod pages;
mod routes;
mod session;
mod sets_page;
mod view;
mod web;

use std::convert::Infallible;
use std::sync::Arc;

use arbiter_service::app::App;
use arbiter_service::auth::{Caller, Peer, Presented, Role};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;

/// The body of a console answer (pages are whole; the event stream is not).
pub type Body = UnsyncBoxBody<Bytes, Infallible>;
/// A console answer.
pub type Answer = Response<Body>;

/// Who may sign in and read approvals: as the gRPC Approvals API's readers.
const READERS: &[Role] = &[Role::Approver, Role::Admin];

/// Who may read the audit log and change policy sets: as the gRPC `Audit` and
/// `PolicyAdmin` services.
const ADMINS: &[Role] = &[Role::Admin];

/// The refusal of an admin page to a caller without the admin role, or `None` when
/// the caller is an admin.
fn admin_only(signed: &pages::Signed<'_>) -> Option<Answer> {
    if signed.caller.has_any(ADMINS) {
        return None;
    }
    let e = arbiter_service::ServiceError::MissingRole {
        caller: Some(signed.caller.id.clone()),
        needed: ADMINS.to_vec(),
    };
    Some(refusal(
        StatusCode::FORBIDDEN,
        "Refused",
        &e.to_string(),
        Some(signed),
    ))
}

/// The console of one server.
#[derive(Debug)]
pub struct Console {
    app: Arc<App>,
    tls: bool,
    sessions: Arc<session::Sessions>,
    attempts: session::Attempts,
    /// Where `arbiter replay --save` reports are read from.
    reports: Option<std::path::PathBuf>,
}

impl Console {
    /// The console over the server's state; `tls` says whether the listener serves
    /// TLS (cookies are then `Secure`).
    pub fn new(app: Arc<App>, tls: bool) -> Self {
        Self {
            tls,
            sessions: Arc::default(),
            attempts: session::Attempts::default(),
            reports: measurements::default_dir(&app),
            app,
        }
    }

    /// Reads replay reports from `dir` instead of `<data_dir>/reports`.
    pub fn with_reports(mut self, dir: std::path::PathBuf) -> Self {
        self.reports = Some(dir);
        self
    }

    /// Whether `path` is the console's.
    pub fn serves(path: &str) -> bool {
        path == "/console" || path.starts_with("/console/")
    }

    /// Answers one request to a console path from `peer`.
    pub async fn answer(&self, req: Request<Incoming>, peer: &Peer) -> Answer {
        let mut answer = routes::route(self, req, peer).await;
        web::secure(&mut answer);
        answer
    }

    /// The signed-in caller of a request and its session: the session cookie names a
    /// live session whose token (or the connection's certificate) still proves a
    /// reader (a revoked token or a role taken away ends the session here).
    fn signed_in(
        &self,
        req: &Request<Incoming>,
        peer: &Peer,
    ) -> Option<(String, session::Session, Caller)> {
        let id = web::cookie_of(req.headers(), web::SESSION_COOKIE)?.to_string();
        let session = self.sessions.get(&id)?;
        match session.proof.prove(&self.app, peer) {
            Ok(caller) => Some((id, session, caller)),
            Err(_) => {
                self.sessions.close(&id);
                None
            }
        }
    }
}

/// The caller `token` proves, when it may read approvals.
fn reader(app: &App, token: &str, peer: &Peer) -> Result<Caller, arbiter_service::ServiceError> {
    app.auth()
        .authorize(Presented::Bearer(token), peer, READERS)
}

/// A refusal page.
fn refusal(
    status: StatusCode,
    title: &str,
    text: &str,
    signed: Option<&pages::Signed<'_>>,
) -> Answer {
    web::html(status, pages::message(title, text, signed))
}
