//! Rows to the model and back: the helpers of the PostgreSQL backend's queries.

use super::cached;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::StoreError;
use crate::columns::{json, to_json};
use crate::model::{Approval, ApprovalState, Credential, NewApproval, Vote};

pub(super) const APPROVAL_COLUMNS: &str = "id, request_digest, request, principal, delegation, task_id, set_name, set_version, set_digest, decision_id, reasons, approvers_required, created_micros, expires_micros, state, consumed_micros, consumed_by, updated_micros, held_by";

pub(super) const CREDENTIAL_COLUMNS: &str = "id, task_id, principal, action, resource, decision_id, kid, issued_at, expires_at, revoked_micros, revoke_reason, holder";

/// What a query selects for an approval: its columns, then its votes (oldest first) as
/// one JSON array of `[approver, approve, comment, at_micros]`, so an approval is read
/// in one round trip.
pub(super) const APPROVAL_SELECT: &str = "id, request_digest, request, principal, delegation, task_id, set_name, set_version, set_digest, decision_id, reasons, approvers_required, created_micros, expires_micros, state, consumed_micros, consumed_by, updated_micros, held_by, (SELECT COALESCE(json_agg(json_build_array(v.approver, v.approve, v.comment, v.at_micros) ORDER BY v.seq), '[]')::TEXT FROM votes v WHERE v.approval_id = approvals.id)";

/// The votes column of [`APPROVAL_SELECT`].
fn votes(row: &Row, id: &str) -> Result<Vec<Vote>, StoreError> {
    let listed: Vec<(String, bool, String, i64)> = json(row.get(19), "approval votes", id)?;
    Ok(listed
        .into_iter()
        .map(|(approver, approve, comment, at_micros)| Vote {
            approver,
            approve,
            comment,
            at_micros,
        })
        .collect())
}

/// The approval of `row` (selected with [`APPROVAL_SELECT`]), `expired` derived from
/// `now`.
pub(super) fn finish(row: &Row, now: i64) -> Result<Approval, StoreError> {
    let id: String = row.get(0);
    let stored: &str = row.get(14);
    let mut state = ApprovalState::parse(stored).ok_or_else(|| StoreError::Corrupt {
        what: "approval state",
        id: id.clone(),
    })?;
    let expires: i64 = row.get(13);
    if matches!(state, ApprovalState::Pending | ApprovalState::Approved) && now >= expires {
        state = ApprovalState::Expired;
    }
    let required: i64 = row.get(11);
    Ok(Approval {
        votes: votes(row, &id)?,
        new: NewApproval {
            request: json(row.get(2), "approval request", &id)?,
            delegation: json(row.get(4), "approval delegation", &id)?,
            reasons: json(row.get(10), "approval reasons", &id)?,
            set: arbiter_core::SetIdentity {
                name: row.get(6),
                version: row.get(7),
                digest: row.get(8),
            },
            request_digest: row.get(1),
            principal: row.get(3),
            task_id: row.get(5),
            decision_id: row.get(9),
            approvers_required: u32::try_from(required).unwrap_or(u32::MAX),
            created_micros: row.get(12),
            expires_micros: expires,
            held_by: row.get(18),
            id,
        },
        state,
        consumed_micros: row.get(15),
        consumed_by: row.get(16),
        updated_micros: row.get(17),
    })
}

/// Approval `id`; with `lock`, its row is locked until the transaction ends (votes
/// on two replicas at once are then counted one after the other). The lock is taken
/// by a statement of its own: a statement that waited for the lock still reads the
/// votes table as it was when it started, so the votes are read after it, afresh.
pub(super) async fn get_approval<C: GenericClient>(
    c: &C,
    id: &str,
    now: i64,
    lock: bool,
) -> Result<Option<Approval>, StoreError> {
    if lock {
        let locked = cached::query_opt(
            c,
            "SELECT 1 FROM approvals WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?;
        if locked.is_none() {
            return Ok(None);
        }
    }
    let sql = format!("SELECT {APPROVAL_SELECT} FROM approvals WHERE id = $1");
    match cached::query_opt(c, &sql, &[&id]).await? {
        Some(row) => Ok(Some(finish(&row, now)?)),
        None => Ok(None),
    }
}

/// Every approval of `rows`.
pub(super) fn finish_all(rows: &[Row], now: i64) -> Result<Vec<Approval>, StoreError> {
    rows.iter().map(|row| finish(row, now)).collect()
}

pub(super) async fn insert_approval<C: GenericClient>(
    c: &C,
    a: &NewApproval,
) -> Result<(), StoreError> {
    let n = cached::execute(c,
            &format!(
                "INSERT INTO approvals ({APPROVAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending', NULL, NULL, $13, $15) ON CONFLICT (id) DO NOTHING"
            ),
            &[
                &a.id,
                &a.request_digest,
                &to_json(&a.request),
                &a.principal,
                &to_json(&a.delegation),
                &a.task_id,
                &a.set.name,
                &a.set.version,
                &a.set.digest,
                &a.decision_id,
                &to_json(&a.reasons),
                &i64::from(a.approvers_required),
                &a.created_micros,
                &a.expires_micros,
                &a.held_by,
            ],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::Duplicate(a.id.clone()));
    }
    Ok(())
}

pub(super) async fn set_state<C: GenericClient>(
    c: &C,
    id: &str,
    state: ApprovalState,
    now: i64,
) -> Result<(), StoreError> {
    cached::execute(
        c,
        "UPDATE approvals SET state = $2, updated_micros = $3 WHERE id = $1",
        &[&id, &state.as_str(), &now],
    )
    .await?;
    Ok(())
}

pub(super) fn credential(r: &Row) -> Credential {
    Credential {
        id: r.get(0),
        task_id: r.get(1),
        principal: r.get(2),
        action: r.get(3),
        resource: r.get(4),
        decision_id: r.get(5),
        kid: r.get(6),
        issued_at: r.get(7),
        expires_at: r.get(8),
        revoked_micros: r.get(9),
        revoke_reason: r.get(10),
        holder: r.get(11),
    }
}

/// A credential's values in [`CREDENTIAL_COLUMNS`] order, as statement parameters.
pub(super) fn credential_params(k: &Credential) -> [&(dyn ToSql + Sync); 12] {
    [
        &k.id,
        &k.task_id,
        &k.principal,
        &k.action,
        &k.resource,
        &k.decision_id,
        &k.kid,
        &k.issued_at,
        &k.expires_at,
        &k.revoked_micros,
        &k.revoke_reason,
        &k.holder,
    ]
}

/// Records an issued credential.
pub(super) async fn insert_credential<C: GenericClient>(
    c: &C,
    k: &Credential,
) -> Result<(), StoreError> {
    cached::execute(
        c,
        &format!(
            "INSERT INTO credentials ({CREDENTIAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ),
        &credential_params(k),
    )
    .await?;
    Ok(())
}
