//! Rows to the model and back: the helpers of the SQLite backend's queries.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension as _, Row, params};

use crate::StoreError;
use crate::columns::{json, to_json};
use crate::model::{Approval, ApprovalState, Credential, NewApproval, Vote};

/// Creates the file owner-only before SQLite opens it (SQLite would use 0644).
pub(super) fn create_private(path: &Path) -> Result<(), StoreError> {
    if path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map(drop)
        .map_err(|source| StoreError::Create {
            path: path.display().to_string(),
            source,
        })
}

pub(super) const APPROVAL_COLUMNS: &str = "id, request_digest, request, principal, delegation, task_id, set_name, set_version, set_digest, decision_id, reasons, approvers_required, created_micros, expires_micros, state, consumed_micros, consumed_by, updated_micros, held_by";

/// Raw columns of an approval row, parsed outside rusqlite's row closure.
pub(super) struct ApprovalRow {
    pub(super) cols: (String, String, String, String, String, String),
    pub(super) set: (String, String, String),
    pub(super) decision_id: String,
    pub(super) reasons: String,
    pub(super) approvers_required: u32,
    pub(super) created: i64,
    pub(super) expires: i64,
    pub(super) state: String,
    pub(super) consumed: Option<i64>,
    pub(super) consumed_by: Option<String>,
    pub(super) updated: i64,
    pub(super) held_by: String,
}

pub(super) fn approval_row(r: &Row<'_>) -> rusqlite::Result<ApprovalRow> {
    Ok(ApprovalRow {
        cols: (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ),
        set: (r.get(6)?, r.get(7)?, r.get(8)?),
        decision_id: r.get(9)?,
        reasons: r.get(10)?,
        approvers_required: r.get(11)?,
        created: r.get(12)?,
        expires: r.get(13)?,
        state: r.get(14)?,
        consumed: r.get(15)?,
        consumed_by: r.get(16)?,
        updated: r.get(17)?,
        held_by: r.get(18)?,
    })
}

pub(super) fn load_votes(conn: &Connection, id: &str) -> Result<Vec<Vote>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT approver, approve, comment, at_micros FROM votes WHERE approval_id = ?1 ORDER BY at_micros, rowid",
    )?;
    let votes = stmt
        .query_map([id], |r| {
            Ok(Vote {
                approver: r.get(0)?,
                approve: r.get(1)?,
                comment: r.get(2)?,
                at_micros: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(votes)
}

pub(super) fn finish(
    conn: &Connection,
    row: ApprovalRow,
    now: i64,
) -> Result<Approval, StoreError> {
    let (id, request_digest, request, principal, delegation, task_id) = row.cols;
    let mut state = ApprovalState::parse(&row.state).ok_or_else(|| StoreError::Corrupt {
        what: "approval state",
        id: id.clone(),
    })?;
    if matches!(state, ApprovalState::Pending | ApprovalState::Approved) && now >= row.expires {
        state = ApprovalState::Expired;
    }
    Ok(Approval {
        votes: load_votes(conn, &id)?,
        new: NewApproval {
            request: json(&request, "approval request", &id)?,
            delegation: json(&delegation, "approval delegation", &id)?,
            reasons: json(&row.reasons, "approval reasons", &id)?,
            set: arbiter_core::SetIdentity {
                name: row.set.0,
                version: row.set.1,
                digest: row.set.2,
            },
            id,
            request_digest,
            principal,
            task_id,
            decision_id: row.decision_id,
            approvers_required: row.approvers_required,
            created_micros: row.created,
            expires_micros: row.expires,
            held_by: row.held_by,
        },
        state,
        consumed_micros: row.consumed,
        consumed_by: row.consumed_by,
        updated_micros: row.updated,
    })
}

pub(super) fn get_approval(
    conn: &Connection,
    id: &str,
    now: i64,
) -> Result<Option<Approval>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"
        ))?
        .query_row([id], approval_row)
        .optional()?;
    row.map(|row| finish(conn, row, now)).transpose()
}

pub(super) fn set_state(
    conn: &Connection,
    id: &str,
    state: ApprovalState,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE approvals SET state = ?2, updated_micros = ?3 WHERE id = ?1",
        params![id, state.as_str(), now],
    )?;
    Ok(())
}

pub(super) fn insert_approval(conn: &Connection, a: &NewApproval) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached(&format!(
            "INSERT OR IGNORE INTO approvals ({APPROVAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'pending', NULL, NULL, ?13, ?15)"
        ))?
        .execute(params![
            a.id,
            a.request_digest,
            to_json(&a.request),
            a.principal,
            to_json(&a.delegation),
            a.task_id,
            a.set.name,
            a.set.version,
            a.set.digest,
            a.decision_id,
            to_json(&a.reasons),
            a.approvers_required,
            a.created_micros,
            a.expires_micros,
            a.held_by,
        ])?;
    if n == 0 {
        return Err(StoreError::Duplicate(a.id.clone()));
    }
    Ok(())
}

pub(super) fn credential_row(r: &Row<'_>) -> rusqlite::Result<Credential> {
    Ok(Credential {
        id: r.get(0)?,
        task_id: r.get(1)?,
        principal: r.get(2)?,
        action: r.get(3)?,
        resource: r.get(4)?,
        decision_id: r.get(5)?,
        kid: r.get(6)?,
        issued_at: r.get(7)?,
        expires_at: r.get(8)?,
        revoked_micros: r.get(9)?,
        revoke_reason: r.get(10)?,
        holder: r.get(11)?,
    })
}

/// Records an issued credential.
pub(super) fn insert_credential(conn: &Connection, c: &Credential) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO credentials (id, task_id, principal, action, resource, decision_id, kid, issued_at, expires_at, revoked_micros, revoke_reason, holder)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        c.id,
        c.task_id,
        c.principal,
        c.action,
        c.resource,
        c.decision_id,
        c.kid,
        c.issued_at,
        c.expires_at,
        c.revoked_micros,
        c.revoke_reason,
        c.holder,
    ])?;
    Ok(())
}

/// Claims lapsed approvals no one else holds (see
/// `StateStore::claim_lapsed_approvals`), in one immediate transaction.
pub(super) fn claim_lapsed(
    conn: &mut Connection,
    claimant: &str,
    now: i64,
    limit: usize,
    (claim_now, hold): (i64, i64),
) -> Result<Vec<Approval>, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let rows = tx
        .prepare_cached(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals
             WHERE state IN ('pending', 'approved') AND expires_micros <= ?1
               AND (expiry_claim IS NULL OR expiry_claim = ?3 OR expiry_claim_until <= ?4)
             ORDER BY expires_micros LIMIT ?2"
        ))?
        .query_map(
            params![
                now,
                i64::try_from(limit).unwrap_or(i64::MAX),
                claimant,
                claim_now
            ],
            approval_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let claimed = rows
        .into_iter()
        .map(|row| finish(&tx, row, now))
        .collect::<Result<Vec<_>, _>>()?;
    for a in &claimed {
        tx.execute(
            "UPDATE approvals SET expiry_claim = ?2, expiry_claim_until = ?3 WHERE id = ?1",
            params![a.new.id, claimant, claim_now.saturating_add(hold)],
        )?;
    }
    tx.commit()?;
    Ok(claimed)
}
