//! `GET /console/events`: server-sent events from the same change stream as the gRPC
//! `WatchApprovals`. Each change of an approval is one `approval` event carrying its
//! id, its state and, while it is pending, its card as HTML (rendered and escaped
//! here; the page's script swaps it in). The session is proved again before every
//! event: a sign-out, an expiry or a revoked token ends the stream with `signed-out`.

use std::sync::Arc;
use std::time::Duration;

use arbiter_service::app::App;
use arbiter_service::auth::Peer;
use arbiter_store::{Approval, ApprovalState};
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use tokio::sync::broadcast::error::RecvError;

use crate::session::Sessions;
use crate::web::Chunk;
use crate::{Answer, Console, pages};

/// A comment line this often keeps proxies and the browser from closing an idle
/// stream.
const KEEPALIVE: Duration = Duration::from_secs(20);

struct Watch {
    app: Arc<App>,
    sessions: Arc<Sessions>,
    session: String,
    peer: Peer,
    events: tokio::sync::broadcast::Receiver<arbiter_service::events::ApprovalChange>,
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl Watch {
    fn still_signed_in(&self) -> bool {
        self.sessions
            .get(&self.session)
            .is_some_and(|s| s.proof.prove(&self.app, &self.peer).is_ok())
    }
}

/// The event stream of session `session`.
pub(crate) fn stream(console: &Console, session: String, peer: Peer) -> Answer {
    let watch = Watch {
        app: console.app.clone(),
        sessions: console.sessions.clone(),
        session,
        peer,
        events: console.app.approvals().subscribe(),
        stopping: console.app.stopping(),
    };
    // The browser reconnects after 3 s if the stream drops. Then every pending
    // approval, listed after subscribing: one held between the page's load and this
    // stream's start (or while a dropped stream reconnected) is not missed.
    let app = console.app.clone();
    let first = futures::stream::once(async move {
        let mut text = "retry: 3000\n\n".to_string();
        let pending = crate::routes::list(&app, vec![ApprovalState::Pending]).await;
        for a in pending.unwrap_or_default().iter().rev() {
            text.push_str(&event(a));
        }
        frame(text)
    });
    let live = futures::stream::unfold(Some(watch), |state| async move {
        let mut w = state?;
        let got = tokio::select! {
            _ = w.stopping.wait_for(|s| *s) => return None,
            got = w.events.recv() => Some(got),
            () = tokio::time::sleep(KEEPALIVE) => None,
        };
        if !w.still_signed_in() {
            return Some((frame("event: signed-out\ndata: {}\n\n".into()), None));
        }
        let text = match got {
            None => ": keepalive\n\n".to_string(),
            Some(Ok(change)) => event(&change.approval),
            // Behind the stream: the page reloads to list again.
            Some(Err(RecvError::Lagged(_))) => "event: reload\ndata: {}\n\n".into(),
            Some(Err(RecvError::Closed)) => return None,
        };
        Some((frame(text), Some(w)))
    });
    let body = StreamBody::new(futures::StreamExt::chain(first, live)).boxed_unsync();
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// One `approval` event: the id, the state and, while pending, the card.
fn event(a: &Approval) -> String {
    let html = if a.state == ApprovalState::Pending {
        pages::card(a).into_string()
    } else {
        String::new()
    };
    let data = serde_json::json!({
        "id": a.new.id,
        "state": a.state.as_str(),
        "html": html,
    });
    format!("event: approval\ndata: {data}\n\n")
}

fn frame(text: String) -> Chunk {
    Ok(Frame::data(Bytes::from(text)))
}
