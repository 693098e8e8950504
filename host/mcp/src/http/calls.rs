//! An agent session's calls over HTTP: deciding one (with its cancellation), and
//! ending sessions (by `DELETE` or when idle), which drops their calls in flight.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;

use super::{Live, State};
use crate::gate::Verdict;
use crate::jsonrpc::{self, Kind};

/// Ends sessions idle longer than `idle`.
pub(super) async fn sweep(state: Arc<State>, idle: Duration) {
    let mut tick = tokio::time::interval(
        idle.min(Duration::from_secs(30))
            .max(Duration::from_secs(1)),
    );
    loop {
        tick.tick().await;
        let stale: Vec<(String, Arc<Live>)> = {
            let mut sessions = state.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let ids: Vec<String> = sessions
                .iter()
                .filter(|(_, l)| l.seen.lock().unwrap_or_else(|e| e.into_inner()).elapsed() > idle)
                .map(|(k, _)| k.clone())
                .collect();
            ids.into_iter()
                .filter_map(|k| sessions.remove(&k).map(|l| (k, l)))
                .collect()
        };
        for (_, live) in stale {
            end(&state, &live).await;
        }
    }
}

pub(super) async fn end(state: &State, live: &Live) {
    for (_, call) in live.held.lock().unwrap_or_else(|e| e.into_inner()).drain() {
        call.notify_one();
    }
    let upstream_id = live
        .upstream_id
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    state.up.delete(upstream_id.as_deref()).await;
    state.gw.end_session(&live.session).await;
}

/// The gateway's verdict on `msg`: what to forward (and the credential), or the answer.
pub(super) async fn decide(
    state: &State,
    live: &Live,
    msg: Json,
    headers: &http::HeaderMap,
    progress: &(dyn Fn(Json) + Send + Sync),
    gone: impl std::future::Future<Output = ()>,
) -> Result<(Json, Option<String>), Json> {
    let held = || live.held.lock().unwrap_or_else(|e| e.into_inner());
    // A cancellation of a call still being decided here drops it: it never reaches
    // the server, so the cancellation itself need not either.
    if jsonrpc::kind(&msg)
        == (Kind::Notification {
            method: "notifications/cancelled",
        })
        && let Some(req) = msg.pointer("/params/requestId")
        && let Some(call) = held().remove(&req.to_string())
    {
        call.notify_one();
        return Err(Json::Null);
    }
    let key = matches!(jsonrpc::kind(&msg), Kind::Request { .. })
        .then(|| jsonrpc::id_of(&msg).to_string());
    let cancelled = Arc::new(tokio::sync::Notify::new());
    if let Some(k) = &key {
        held().insert(k.clone(), cancelled.clone());
    }
    let own = state.up.for_session(&live.upstream_id, headers);
    let verdict = tokio::select! {
        v = state.gw.gate(&live.session, msg, &own, progress) => v,
        () = cancelled.notified() => return Err(Json::Null),
        () = gone => {
            if let Some(k) = &key {
                held().remove(k);
            }
            return Err(Json::Null);
        }
    };
    if let Some(k) = &key
        && held().remove(k).is_none()
    {
        // Cancelled between the decision and here.
        return Err(Json::Null);
    }
    match verdict {
        Verdict::Answer(a) => Err(a),
        // A dropped notification: nothing to forward, nothing to answer.
        Verdict::Drop => Err(Json::Null),
        Verdict::Forward {
            message,
            credential,
        } => Ok((message, credential)),
    }
}
