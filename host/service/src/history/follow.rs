//! The follower every replica runs when the sets are shared: when the store announces
//! a stored change (PostgreSQL's `NOTIFY`, on the connection that listens for approval
//! events too), and in any case every [`FOLLOW_EVERY`], it reads the one revision row
//! of the state database and, when it moved, applies the stored state (see
//! [`super::shared`]). A change reaches every replica within milliseconds plus the time
//! to compile its plugins; the poll catches a notification lost with its connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::app::App;

/// How often a replica asks whether the shared sets changed without being told: well
/// inside the two seconds a change may take to reach every replica, at one cheap read
/// each time.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// Brings back the sets' state at start: from the shared database when the sets are
/// shared, else from the data directory's file.
pub async fn restore(app: &App) -> Result<(), super::shared::ShareError> {
    match &app.history.shared {
        Some(shared) => shared.start(app, &app.history.config).await,
        None => {
            app.history.restore(&app.loader, &app.sets).await;
            app.history.save(&app.sets);
            Ok(())
        }
    }
}

/// Starts following the shared sets (nothing to follow when they are not shared);
/// it ends when the server stops.
pub fn spawn(app: Arc<App>) -> Option<JoinHandle<()>> {
    let shared = app.history.shared.clone()?;
    Some(tokio::spawn(async move {
        let mut stopping = app.stopping();
        let mut tick = tokio::time::interval(FOLLOW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        let mut announced = app.store.set_change_signal();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = changed(&mut announced) => if !changed { announced = None },
                _ = stopping.changed() => return,
            }
            let _one_change_at_a_time = app.set_changes.lock().await;
            match shared.catch_up(&app).await {
                Ok(_) if failing => {
                    failing = false;
                    tracing::info!("following the shared policy sets again");
                }
                Ok(_) => {}
                // Said once per outage; the replica serves what it has meanwhile.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "cannot read the shared policy sets; serving the versions loaded until the database answers");
                }
                Err(_) => {}
            }
        }
    }))
}

/// Waits for the next announcement; `false` when the signal is gone (then only the
/// poll is left). Without a signal it never resolves.
async fn changed(signal: &mut Option<tokio::sync::watch::Receiver<u64>>) -> bool {
    match signal {
        Some(s) => s.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}
