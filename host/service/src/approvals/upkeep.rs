//! The approval desk's upkeep: recording lapsed approvals as expired, and purging
//! what closed long ago.

use std::time::Duration;

use super::{EXPIRY_ACTOR, SWEEP_BATCH, blocking};
use crate::ServiceError;
use crate::events::ApprovalStep;
use crate::micros;

/// How long a sweeper holds its claim on a lapsed approval: far longer than a sweep
/// takes, short enough that another replica records the expiry soon after the
/// claimant died.
pub(super) const CLAIM_HOLD: Duration = Duration::from_secs(30);

/// Deletes approvals closed, and credentials expired, more than `keep` ago, after
/// recording how many as an admin act `state-purged` (their own records stay in the
/// audit log). Returns (approvals, credentials) deleted.
pub async fn purge_old(
    app: &crate::app::App,
    keep: Duration,
) -> Result<(usize, usize), ServiceError> {
    let keep_micros = micros(keep);
    let approvals_before = app.clock.now_micros().saturating_sub(keep_micros);
    let credentials_before = approvals_before / 1_000_000;
    let store = app.store.clone();
    let (approvals, credentials) =
        blocking(move || Ok(store.purgeable(approvals_before, credentials_before)?)).await?;
    if approvals == 0 && credentials == 0 {
        return Ok((0, 0));
    }
    app.record(crate::events::AuditEvent::Admin {
        actor: EXPIRY_ACTOR,
        act: crate::events::AdminAct::StatePurged {
            approvals,
            approvals_closed_before_micros: approvals_before,
            credentials,
            credentials_expired_before: credentials_before,
        },
    })
    .await?;
    let store = app.store.clone();
    blocking(move || {
        store.purge_closed_approvals(approvals_before)?;
        store.purge_expired_credentials(credentials_before)?;
        Ok(())
    })
    .await?;
    tracing::info!(
        approvals,
        credentials,
        "purged old approvals and credentials from the state database"
    );
    Ok((approvals, credentials))
}

/// Records every lapsed approval as `expired`: the audit record first, then the
/// stored state and the watch event. Stops at the first record that cannot be written
/// (the next sweep tries again). With replicas sharing a database each replica
/// sweeps, and the store gives each lapsed approval to one of them at a time
/// ([`CLAIM_HOLD`], on the database's clock), so its expiry is recorded in one
/// replica's chain, unless a sweep outlasts its claims.
pub async fn sweep_expired(app: &crate::app::App) -> Result<usize, ServiceError> {
    let (store, now) = (app.store.clone(), app.clock.now_micros());
    let (me, hold) = (app.replica_id().to_string(), micros(CLAIM_HOLD));
    let lapsed = blocking(move || {
        // Claims on the clock the replicas share (the database's, as for leases).
        let claim_now = store.lease_clock_micros()?;
        Ok(store.claim_lapsed_approvals(&me, now, SWEEP_BATCH, claim_now, hold)?)
    })
    .await?;
    let n = lapsed.len();
    for a in lapsed {
        app.record(crate::events::AuditEvent::Approval {
            actor: EXPIRY_ACTOR,
            approval: &a,
            step: crate::events::ApprovalStep::Expired,
            vote: None,
        })
        .await?;
        let store = app.store.clone();
        let (id, now) = (a.new.id.clone(), app.clock.now_micros());
        if blocking(move || Ok(store.mark_expired(&id, now)?)).await? {
            app.approvals.publish(ApprovalStep::Expired, &a);
        }
    }
    Ok(n)
}
