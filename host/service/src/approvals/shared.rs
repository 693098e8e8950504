//! Approval events across replicas sharing a database: every step this replica takes
//! is appended to the database's event log (in the order it took them), and every
//! step another replica took is read back from it and published here, so watch
//! streams, the console and waiting requests on any replica see all of them. Only a
//! store with shared events (PostgreSQL) turns this on; see `arbiter_store::events`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::blocking;
use crate::app::App;
use crate::events::ApprovalStep;
use crate::micros;

/// How often the log is read even without a notification: a notification can be lost
/// with its connection, and the listener reconnects only after a pause.
const POLL: Duration = Duration::from_secs(1);
/// Events read at once.
const BATCH: usize = 256;
/// How long events stay in the log: long enough for a replica that lost its
/// connection to catch up, short enough to keep the table small.
const KEEP: Duration = Duration::from_secs(60 * 60);

/// Starts sharing approval events, when the store shares them: the writer of this
/// replica's steps (never stopped: steps taken while the server drains at shutdown
/// are still shared) and the follower of the others' (returned, none for a store of
/// one process).
pub fn spawn(app: Arc<App>) -> Vec<JoinHandle<()>> {
    let Some(signal) = app.store.approval_event_signal() else {
        return Vec::new();
    };
    let (outbox, steps) = mpsc::unbounded_channel();
    app.approvals.share(outbox);
    tokio::spawn(write(app.clone(), steps));
    vec![tokio::spawn(follow(app, signal))]
}

/// Appends this replica's steps, one at a time, in the order they were taken. A step
/// that cannot be appended is logged and left out: the approval's state is in the
/// database either way, only other replicas' live streams miss the step.
async fn write(app: Arc<App>, mut steps: mpsc::UnboundedReceiver<(ApprovalStep, String)>) {
    while let Some((step, id)) = steps.recv().await {
        let (store, replica, now) = (
            app.store.clone(),
            app.replica_id().to_string(),
            app.clock.now_micros(),
        );
        let (key, what) = (id.clone(), step.as_str());
        let appended =
            blocking(move || Ok(store.append_approval_event(&replica, what, &key, now)?)).await;
        if let Err(e) = appended {
            tracing::warn!(approval = %id, step = what, error = %e, "cannot share an approval step with the other replicas; their watch streams miss it");
        }
    }
}

/// Publishes here every step another replica took, from the newest event at start on.
async fn follow(app: Arc<App>, mut signal: tokio::sync::watch::Receiver<u64>) {
    let store = app.store.clone();
    let mut last = loop {
        let store = store.clone();
        match blocking(move || Ok(store.approval_event_head()?)).await {
            Ok(head) => break head,
            Err(_) => tokio::time::sleep(POLL).await,
        }
    };
    let mut stopping = app.stopping();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut purged_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stopping.wait_for(|s| *s) => return,
            changed = signal.changed() => if changed.is_err() { return },
            _ = tick.tick() => {}
        }
        if let Err(e) = catch_up(&app, &mut last).await {
            tracing::debug!(error = %e, "cannot read the shared approval events yet");
        }
        if purged_at.elapsed() >= KEEP {
            purged_at = tokio::time::Instant::now();
            let (store, before) = (app.store.clone(), app.clock.now_micros() - micros(KEEP));
            let _ = blocking(move || Ok(store.purge_approval_events(before)?)).await;
        }
    }
}

/// Publishes every event after `last` that another replica appended, moving `last`
/// past each one published (so one is never published twice after a failed read).
async fn catch_up(app: &App, last: &mut i64) -> Result<(), crate::ServiceError> {
    loop {
        let (store, after) = (app.store.clone(), *last);
        let events = blocking(move || Ok(store.approval_events_after(after, BATCH)?)).await?;
        // A short batch is the end of the log: no second read to learn that.
        let more = events.len() == BATCH;
        for e in events {
            let step = ApprovalStep::parse(&e.step);
            if let Some(step) = step.filter(|_| e.replica != app.replica_id()) {
                let (store, id, now) = (
                    app.store.clone(),
                    e.approval_id.clone(),
                    app.clock.now_micros(),
                );
                if let Some(a) = blocking(move || Ok(store.approval(&id, now)?)).await? {
                    app.approvals.publish_from(step, &a, Some(e.replica));
                }
            }
            *last = e.seq;
        }
        if !more {
            return Ok(());
        }
    }
}
