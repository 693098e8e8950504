//! The approval operations of the PostgreSQL backend: holding (under an advisory
//! lock on the request), listing, voting and retracting (under a lock on the
//! approval's row), consuming and giving back (conditional updates).

use super::cached;
use deadpool_postgres::Object;
use tokio_postgres::types::ToSql;

use super::rows::*;
use super::{DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT};
use crate::StoreError;
use crate::columns::decided;
use crate::model::{
    Approval, ApprovalFilter, ApprovalState, Credential, NewApproval, Vote, VoteOutcome,
};

pub(super) async fn hold(
    mut c: Object,
    a: NewApproval,
    now: i64,
) -> Result<(Approval, bool), StoreError> {
    let tx = c.transaction().await?;
    // One holder at a time per request, on every replica.
    let key = format!(
        "{}\u{1f}{}\u{1f}{}",
        a.request_digest, a.set.name, a.held_by
    );
    cached::execute(
        &tx,
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&key],
    )
    .await?;
    let open = cached::query_opt(&tx,
            &format!(
                "SELECT {APPROVAL_SELECT} FROM approvals WHERE request_digest = $1 AND set_name = $2 AND held_by = $4 AND state = 'pending' AND expires_micros > $3 ORDER BY created_micros DESC LIMIT 1"
            ),
            &[&a.request_digest, &a.set.name, &now, &a.held_by],
        )
        .await?;
    if let Some(row) = open {
        let found = finish(&row, now)?;
        tx.commit().await?;
        return Ok((found, false));
    }
    insert_approval(&tx, &a).await?;
    let created =
        get_approval(&tx, &a.id, now, false)
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                what: "approval",
                id: a.id.clone(),
            })?;
    tx.commit().await?;
    Ok((created, true))
}

pub(super) async fn list(c: Object, f: ApprovalFilter) -> Result<Vec<Approval>, StoreError> {
    let limit = match f.limit {
        0 => DEFAULT_LIST_LIMIT,
        n => n.min(MAX_LIST_LIMIT),
    };
    // One clause per distinct state, in one order: the statement text (kept in each
    // connection's statement cache) is then one of 32, whatever a caller lists.
    let mut wanted = f.states.clone();
    wanted.sort_by_key(|s| *s as u8);
    wanted.dedup();
    let states: Vec<&str> = wanted
        .iter()
        .map(|s| match s {
            ApprovalState::Pending => "(state = 'pending' AND expires_micros > $3)",
            ApprovalState::Approved => "(state = 'approved' AND expires_micros > $3)",
            ApprovalState::Rejected => "state = 'rejected'",
            ApprovalState::Consumed => "state = 'consumed'",
            ApprovalState::Expired => {
                "(state = 'expired' OR (state IN ('pending', 'approved') AND expires_micros <= $3))"
            }
        })
        .collect();
    let state_filter = if states.is_empty() {
        "TRUE".to_string()
    } else {
        states.join(" OR ")
    };
    // `$3::BIGINT IS NOT NULL` (always true) names the clock's type for PostgreSQL
    // when no state condition uses it: every parameter must have one.
    let rows = cached::query(&c,
            &format!(
                "SELECT {APPROVAL_SELECT} FROM approvals
                 WHERE ($1::TEXT IS NULL OR principal = $1) AND ($2::TEXT IS NULL OR task_id = $2) AND ($3::BIGINT IS NOT NULL) AND ({state_filter})
                 ORDER BY created_micros DESC LIMIT $4"
            ),
            &[&f.principal, &f.task_id, &f.now_micros, &i64::try_from(limit).unwrap_or(i64::MAX)],
        )
        .await?;
    finish_all(&rows, f.now_micros)
}

pub(super) async fn vote(
    mut c: Object,
    id: String,
    vote: Vote,
    now: i64,
) -> Result<VoteOutcome, StoreError> {
    let tx = c.transaction().await?;
    let Some(current) = get_approval(&tx, &id, now, true).await? else {
        return Ok(VoteOutcome::NotFound);
    };
    if current.votes.iter().any(|v| v.approver == vote.approver) {
        return Ok(VoteOutcome::AlreadyVoted(current));
    }
    if current.state != ApprovalState::Pending {
        return Ok(VoteOutcome::Closed(current));
    }
    cached::execute(&tx,
        "INSERT INTO votes (approval_id, approver, approve, comment, at_micros) VALUES ($1, $2, $3, $4, $5)",
        &[&id, &vote.approver, &vote.approve, &vote.comment, &vote.at_micros],
    )
    .await?;
    let votes = current.votes.iter().map(|v| v.approve);
    let state = decided(votes.chain([vote.approve]), current.new.approvers_required);
    set_state(&tx, &id, state, now).await?;
    let updated = get_approval(&tx, &id, now, false)
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            what: "approval",
            id: id.clone(),
        })?;
    tx.commit().await?;
    Ok(VoteOutcome::Counted(updated))
}

pub(super) async fn retract(
    mut c: Object,
    id: String,
    approver: String,
    now: i64,
) -> Result<(), StoreError> {
    let tx = c.transaction().await?;
    let Some(current) = get_approval(&tx, &id, now, true).await? else {
        return Ok(());
    };
    if current.state == ApprovalState::Consumed {
        return Ok(());
    }
    cached::execute(
        &tx,
        "DELETE FROM votes WHERE approval_id = $1 AND approver = $2",
        &[&id, &approver],
    )
    .await?;
    let remaining = current
        .votes
        .iter()
        .filter(|v| v.approver != approver)
        .map(|v| v.approve);
    set_state(
        &tx,
        &id,
        decided(remaining, current.new.approvers_required),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Consumes an approved, unexpired approval for `decision_id`: one conditional
/// update, so one of any number of racing replicas wins.
pub(super) async fn redeem(
    c: Object,
    id: String,
    decision_id: String,
    now: i64,
    credential: Option<Credential>,
) -> Result<bool, StoreError> {
    const CONSUME: &str = "UPDATE approvals SET state = 'consumed', consumed_micros = $3, consumed_by = $2, updated_micros = $3
         WHERE id = $1 AND state = 'approved' AND expires_micros > $3";
    let Some(k) = credential else {
        return Ok(cached::execute(&c, CONSUME, &[&id, &decision_id, &now]).await? == 1);
    };
    // One statement: the credential row is inserted only from the approval row the
    // update consumed, so both commit or neither.
    let used = cached::query_one(
        &c,
        &format!(
            "WITH used AS ({CONSUME} RETURNING id),
             issued AS (INSERT INTO credentials ({CREDENTIAL_COLUMNS})
                 SELECT $4::TEXT, $5::TEXT, $6::TEXT, $7::TEXT, $8::TEXT, $9::TEXT, $10::TEXT, $11::BIGINT, $12::BIGINT, $13::BIGINT, $14::TEXT, $15::TEXT FROM used)
             SELECT count(*) FROM used"
        ),
        &[
            [&id as &(dyn ToSql + Sync), &decision_id, &now].as_slice(),
            &credential_params(&k),
        ]
        .concat(),
    )
    .await?;
    Ok(used.get::<_, i64>(0) == 1)
}

/// Gives back an approval `decision_id` consumed and could not use.
pub(super) async fn release(
    c: Object,
    id: String,
    decision_id: String,
    now: i64,
) -> Result<bool, StoreError> {
    let n = cached::execute(&c,
            "UPDATE approvals SET state = 'approved', consumed_micros = NULL, consumed_by = NULL, updated_micros = $3
             WHERE id = $1 AND state = 'consumed' AND consumed_by = $2",
            &[&id, &decision_id, &now],
        )
        .await?;
    Ok(n == 1)
}

/// Claims lapsed approvals no one else holds (see
/// `StateStore::claim_lapsed_approvals`): one statement; rows another sweeper is
/// claiming at this moment are skipped, not waited for.
pub(super) async fn claim_lapsed(
    c: Object,
    claimant: String,
    now: i64,
    limit: i64,
    (claim_now, hold): (i64, i64),
) -> Result<Vec<Approval>, StoreError> {
    let rows = cached::query(
        &c,
        &format!(
            "WITH claimed AS (
                 UPDATE approvals SET expiry_claim = $1, expiry_claim_until = $5::BIGINT + $4
                 WHERE id IN (SELECT id FROM approvals
                     WHERE state IN ('pending', 'approved') AND expires_micros <= $2
                       AND (expiry_claim IS NULL OR expiry_claim = $1 OR expiry_claim_until <= $5)
                     ORDER BY expires_micros LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING id)
             SELECT {APPROVAL_SELECT} FROM approvals WHERE id IN (SELECT id FROM claimed)
             ORDER BY expires_micros"
        ),
        &[&claimant, &now, &limit, &hold, &claim_now],
    )
    .await?;
    finish_all(&rows, now)
}
