//! The server's upkeep, beside its front doors: the token refresher (tokens created or
//! removed with `arbiter token` while the server runs) and the expiry sweeper
//! (approvals that ran out recorded as expired; old state purged).

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::app::App;
use crate::auth;

/// Picks up (and records) tokens created or removed with `arbiter token` while the
/// server runs, and signing keys other replicas rotated to. Each pass reads the state database, so `state` also learns whether
/// it answers (for health: approvals and credentials need it).
pub fn spawn_token_refresher(
    app: Arc<App>,
    state: tokio::sync::watch::Sender<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(auth::REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Keys another replica rotated to (only keys shared through the database).
            let creds = app.credentials().clone();
            if creds.config().key_secret.is_some()
                && let Ok(Err(e)) = tokio::task::spawn_blocking(move || creds.reload_shared()).await
            {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "cannot re-read the shared signing keys; trying again shortly"
                );
            }
            let ok = match crate::tokens::refresh(&app).await {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "cannot re-read or record the caller tokens; trying again shortly"
                    );
                    false
                }
            };
            app.metrics().set_state_up(ok);
            state.send_if_modified(|was| std::mem::replace(was, ok) != ok);
        }
    })
}

/// Records approvals whose time ran out as `expired` (audit record, watch event, stored
/// state), so that expiry is an approval step on record like the others; and, with
/// `keep` set, purges what closed or expired longer ago than that, at start and then
/// every [`crate::approvals::PURGE_EVERY`].
pub fn spawn_expiry_sweeper(app: Arc<App>, keep: Option<std::time::Duration>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::approvals::EXPIRY_SWEEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut purged: Option<tokio::time::Instant> = None;
        loop {
            tick.tick().await;
            if let Err(e) = crate::approvals::sweep_expired(&app).await {
                tracing::warn!(error = %e, "cannot record expired approvals; trying again shortly");
            }
            let Some(keep) = keep else { continue };
            if purged.is_some_and(|at| at.elapsed() < crate::approvals::PURGE_EVERY) {
                continue;
            }
            match crate::approvals::purge_old(&app, keep).await {
                Ok(_) => purged = Some(tokio::time::Instant::now()),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot purge old approvals and credentials; trying again shortly")
                }
            }
        }
    })
}

/// Resolves when the process receives SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; stop with SIGINT");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
