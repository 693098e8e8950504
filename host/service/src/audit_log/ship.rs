//! Shipping this replica's audit log to the shared state database, when the state is
//! shared (PostgreSQL): the chain `<replica id>` there follows the local log.
//!
//! The local log stays the durable write path: a durable decision is acknowledged
//! once its record is fsynced to `<data_dir>/audit.db`, with no database round trip on
//! the way, and the shipper copies committed records (and the signed checkpoints they
//! complete) to the database behind it. A replica killed mid-load loses nothing it
//! acknowledged: the record is in its local log, shipped when it starts again on the
//! same data directory. So that data directory must outlive the process (a persistent
//! volume); a replica whose log no longer continues its chain in the database ships
//! nothing and says so (see [`arbiter_store::StoreError::AuditFork`]).

use std::sync::Arc;
use std::time::Duration;

use arbiter_store::{AuditShipper, Shipped, StateStore, StoreError};
use tokio::task::JoinHandle;

use crate::app::App;

/// How often a caught-up shipper looks for new records: the shipping lag when the
/// replica is quiet; each look is one read of the local log and no database call.
pub const SHIP_EVERY: Duration = Duration::from_millis(100);

/// How long the shipper waits after a failed pass (the database unreachable, a
/// forked chain) before trying again.
const RETRY: Duration = Duration::from_secs(2);

/// How long a stopping server keeps shipping what is left before giving up (the rest
/// is shipped when the replica starts again).
const FINAL_SHIP: Duration = Duration::from_secs(5);

/// Starts shipping when the state database keeps audit chains and the audit log is
/// on; `None` otherwise.
pub fn spawn(app: Arc<App>) -> Option<JoinHandle<()>> {
    let log = app.audit()?;
    if !app.store.keeps_audit_chains() {
        return None;
    }
    let mut shipper = Some(AuditShipper::new(app.replica_id(), log.path()));
    tracing::info!(
        chain = app.replica_id(),
        "shipping the audit log to the state database"
    );
    Some(tokio::spawn(async move {
        let mut failures = 0u64;
        loop {
            let Some(s) = shipper.take() else { return };
            let (s, result) = pass(&app, s).await;
            shipper = Some(s);
            match result {
                Ok(shipped) if shipped.more => continue,
                Ok(_) => {
                    if failures > 0 {
                        tracing::info!(chain = app.replica_id(), "audit shipping resumed");
                    }
                    failures = 0;
                    tokio::time::sleep(SHIP_EVERY).await;
                }
                Err(e) => {
                    // Said once, then every minute or so while it lasts.
                    if failures.is_multiple_of(30) {
                        let fork = matches!(e, StoreError::AuditFork { .. });
                        let error = format!("{:#}", anyhow::Error::new(e));
                        if fork {
                            tracing::error!(
                                chain = app.replica_id(),
                                error,
                                "audit shipping refused: this replica's log is not the chain the database holds under its id"
                            );
                        } else {
                            tracing::warn!(
                                chain = app.replica_id(),
                                error,
                                "cannot ship the audit log; trying again"
                            );
                        }
                    }
                    failures += 1;
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }))
}

/// Ships what the closed log still holds, for up to [`FINAL_SHIP`], so a replica that
/// stops for good leaves its whole chain in the database.
pub async fn finish(app: &Arc<App>) {
    let Some(log) = app.audit() else { return };
    if !app.store.keeps_audit_chains() {
        return;
    }
    let mut shipper = AuditShipper::new(app.replica_id(), log.path());
    let done = async {
        loop {
            let (s, result) = pass(app, shipper).await;
            shipper = s;
            match result {
                Ok(shipped) if shipped.more => {}
                Ok(_) => return,
                Err(e) => {
                    let error = format!("{:#}", anyhow::Error::new(e));
                    tracing::warn!(
                        chain = app.replica_id(),
                        error,
                        "cannot ship the rest of the audit log; it ships when this replica starts again"
                    );
                    return;
                }
            }
        }
    };
    if tokio::time::timeout(FINAL_SHIP, done).await.is_err() {
        tracing::warn!(
            chain = app.replica_id(),
            "the rest of the audit log ships when this replica starts again"
        );
    }
}

/// One shipping pass on a blocking thread, with its metrics.
async fn pass(
    app: &Arc<App>,
    mut shipper: AuditShipper,
) -> (AuditShipper, Result<Shipped, StoreError>) {
    let store: Arc<dyn StateStore> = app.store.clone();
    let now = app.clock.now_micros();
    let joined = tokio::task::spawn_blocking(move || {
        let result = shipper.ship(&*store, now);
        (shipper, result)
    })
    .await;
    let (shipper, result) = match joined {
        Ok(done) => done,
        Err(e) => {
            // The pass panicked; the shipper is gone with it, so start over from the
            // database's head.
            tracing::error!(error = %e, "the audit shipping pass stopped unexpectedly");
            let path = app
                .audit()
                .map(|l| l.path().to_path_buf())
                .unwrap_or_default();
            let fresh = AuditShipper::new(app.replica_id(), path);
            return (
                fresh,
                Err(StoreError::Unreachable("the shipping pass stopped".into())),
            );
        }
    };
    let metrics = app.metrics.audit_shipping();
    match &result {
        Ok(shipped) => {
            let waited = shipped.oldest_micros.map_or(0, |at| (now - at).max(0));
            let waited = Duration::from_micros(u64::try_from(waited).unwrap_or(0));
            metrics.shipped(shipped.records, waited);
        }
        Err(_) => metrics.failed(),
    }
    (shipper, result)
}
