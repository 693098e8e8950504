//! The embedded SQLite backend.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::model::{
    Approval, ApprovalFilter, ApprovalState, Credential, NewApproval, SigningKeyInfo, TokenEntry,
    Vote, VoteOutcome,
};
use crate::{StateStore, StoreError, schema};

mod lease;

/// One process needs no shared approval events: the defaults keep none.
impl crate::ApprovalEvents for SqliteStore {}
/// One process's audit is its own log file: the defaults keep no chains.
impl crate::AuditChains for SqliteStore {}
mod policy_sets;
mod rows;

use crate::columns::{decided, json, to_json};
use rows::*;

/// How long a writer waits for another process (e.g. `arbiter token create` while the
/// server runs) to finish its transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Approvals listed when the filter names no limit.
const DEFAULT_LIST_LIMIT: usize = 100;
/// Approvals listed at most, whatever the filter asks.
const MAX_LIST_LIMIT: usize = 10_000;

/// State in one SQLite file. Writes are serialised through one connection; every
/// write is one transaction, committed with a full sync before the call returns.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

/// Approvals closed before `?1` (unix microseconds): what purging deletes.
const CLOSED_BEFORE: &str = "state IN ('rejected', 'consumed', 'expired') AND updated_micros < ?1";
/// Credentials expired before `?1` (unix seconds): what purging deletes.
const EXPIRED_BEFORE: &str = "expires_at < ?1";

impl SqliteStore {
    /// The token entries of `table` (`tokens` or `audited_tokens`, same columns).
    fn token_rows(&self, table: &'static str) -> Result<Vec<TokenEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT sha256, id, kind, roles, created_micros FROM {table} ORDER BY created_micros"
        ))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        // A row that does not parse is left out (its token then proves nothing) rather
        // than failing every other token's refresh.
        Ok(rows
            .into_iter()
            .filter_map(|(sha256, id, kind, roles, created_micros)| {
                Some(TokenEntry {
                    roles: json(&roles, "token roles", &id).ok()?,
                    sha256,
                    id,
                    kind,
                    created_micros,
                })
            })
            .collect())
    }

    /// Opens (creating with mode 0600 and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        create_private(path)?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit is on disk when it returns, so an acknowledged approval or
        // revocation survives power loss, not only a killed process.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written transaction
        // (SQLite rolls back), so a poisoned lock is safe to keep using.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StateStore for SqliteStore {
    fn create_approval(&self, a: &NewApproval) -> Result<(), StoreError> {
        insert_approval(&self.conn(), a)
    }

    fn approval(&self, id: &str, now: i64) -> Result<Option<Approval>, StoreError> {
        get_approval(&self.conn(), id, now)
    }

    fn hold_approval(&self, a: &NewApproval, now: i64) -> Result<(Approval, bool), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let open = tx
            .prepare_cached(&format!(
                "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE request_digest = ?1 AND set_name = ?2 AND held_by = ?4 AND state = 'pending' AND expires_micros > ?3 ORDER BY created_micros DESC LIMIT 1"
            ))?
            .query_row(params![a.request_digest, a.set.name, now, a.held_by], approval_row)
            .optional()?;
        if let Some(row) = open {
            let found = finish(&tx, row, now)?;
            return Ok((found, false));
        }
        insert_approval(&tx, a)?;
        let created = get_approval(&tx, &a.id, now)?.ok_or_else(|| StoreError::Corrupt {
            what: "approval",
            id: a.id.clone(),
        })?;
        tx.commit()?;
        Ok((created, true))
    }

    fn list_approvals(&self, f: &ApprovalFilter) -> Result<Vec<Approval>, StoreError> {
        let conn = self.conn();
        let limit = match f.limit {
            0 => DEFAULT_LIST_LIMIT,
            n => n.min(MAX_LIST_LIMIT),
        };
        // `expired` is derived from the clock: each state becomes a condition on the
        // stored state and the expiry, so the database filters, orders and limits, and
        // only the rows returned are read into memory.
        let states: Vec<&str> = f
            .states
            .iter()
            .map(|s| match s {
                ApprovalState::Pending => "(state = 'pending' AND expires_micros > ?3)",
                ApprovalState::Approved => "(state = 'approved' AND expires_micros > ?3)",
                ApprovalState::Rejected => "state = 'rejected'",
                ApprovalState::Consumed => "state = 'consumed'",
                ApprovalState::Expired => {
                    "(state = 'expired' OR (state IN ('pending', 'approved') AND expires_micros <= ?3))"
                }
            })
            .collect();
        let state_filter = if states.is_empty() {
            "1".to_string()
        } else {
            states.join(" OR ")
        };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals
             WHERE (?1 IS NULL OR principal = ?1) AND (?2 IS NULL OR task_id = ?2) AND ({state_filter})
             ORDER BY created_micros DESC LIMIT ?4"
        ))?;
        let rows = stmt
            .query_map(
                params![f.principal, f.task_id, f.now_micros, limit as i64],
                approval_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        rows.into_iter()
            .map(|row| finish(&conn, row, f.now_micros))
            .collect()
    }

    fn claim_lapsed_approvals(
        &self,
        claimant: &str,
        now: i64,
        limit: usize,
        claim_now: i64,
        hold: i64,
    ) -> Result<Vec<Approval>, StoreError> {
        claim_lapsed(&mut self.conn(), claimant, now, limit, (claim_now, hold))
    }

    fn purgeable(&self, approvals: i64, credentials: i64) -> Result<(usize, usize), StoreError> {
        let conn = self.conn();
        let count = |sql: &str, cutoff: i64| -> Result<usize, StoreError> {
            let n: i64 = conn.query_row(sql, [cutoff], |r| r.get(0))?;
            Ok(usize::try_from(n).unwrap_or(0))
        };
        Ok((
            count(
                &format!("SELECT count(*) FROM approvals WHERE {CLOSED_BEFORE}"),
                approvals,
            )?,
            count(
                &format!("SELECT count(*) FROM credentials WHERE {EXPIRED_BEFORE}"),
                credentials,
            )?,
        ))
    }

    fn purge_closed_approvals(&self, before: i64) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            &format!(
                "DELETE FROM votes WHERE approval_id IN (SELECT id FROM approvals WHERE {CLOSED_BEFORE})"
            ),
            [before],
        )?;
        let n = tx.execute(
            &format!("DELETE FROM approvals WHERE {CLOSED_BEFORE}"),
            [before],
        )?;
        tx.commit()?;
        Ok(n)
    }

    fn purge_expired_credentials(&self, before_secs: i64) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            &format!("DELETE FROM credentials WHERE {EXPIRED_BEFORE}"),
            [before_secs],
        )?)
    }

    fn mark_expired(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE approvals SET state = 'expired', updated_micros = ?2
             WHERE id = ?1 AND state IN ('pending', 'approved') AND expires_micros <= ?2",
            params![id, now],
        )?;
        Ok(n == 1)
    }

    fn vote(&self, id: &str, vote: &Vote, now: i64) -> Result<VoteOutcome, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let Some(current) = get_approval(&tx, id, now)? else {
            return Ok(VoteOutcome::NotFound);
        };
        if current.votes.iter().any(|v| v.approver == vote.approver) {
            return Ok(VoteOutcome::AlreadyVoted(current));
        }
        if current.state != ApprovalState::Pending {
            return Ok(VoteOutcome::Closed(current));
        }
        tx.execute(
            "INSERT INTO votes (approval_id, approver, approve, comment, at_micros) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, vote.approver, vote.approve, vote.comment, vote.at_micros],
        )?;
        let votes = current.votes.iter().map(|v| v.approve);
        let state = decided(votes.chain([vote.approve]), current.new.approvers_required);
        set_state(&tx, id, state, now)?;
        let updated = get_approval(&tx, id, now)?.ok_or_else(|| StoreError::Corrupt {
            what: "approval",
            id: id.to_string(),
        })?;
        tx.commit()?;
        Ok(VoteOutcome::Counted(updated))
    }

    fn retract_vote(&self, id: &str, approver: &str, now: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let Some(current) = get_approval(&tx, id, now)? else {
            return Ok(());
        };
        if current.state == ApprovalState::Consumed {
            return Ok(());
        }
        tx.execute(
            "DELETE FROM votes WHERE approval_id = ?1 AND approver = ?2",
            params![id, approver],
        )?;
        let remaining = current
            .votes
            .iter()
            .filter(|v| v.approver != approver)
            .map(|v| v.approve);
        set_state(
            &tx,
            id,
            decided(remaining, current.new.approvers_required),
            now,
        )?;
        tx.commit()?;
        Ok(())
    }

    fn redeem_approval(
        &self,
        id: &str,
        decision_id: &str,
        now: i64,
        credential: Option<&Credential>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE approvals SET state = 'consumed', consumed_micros = ?3, consumed_by = ?2, updated_micros = ?3
             WHERE id = ?1 AND state = 'approved' AND expires_micros > ?3",
            params![id, decision_id, now],
        )?;
        if n != 1 {
            return Ok(false);
        }
        if let Some(c) = credential {
            insert_credential(&tx, c)?;
        }
        tx.commit()?;
        Ok(true)
    }

    fn release_approval(&self, id: &str, decision_id: &str, now: i64) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE approvals SET state = 'approved', consumed_micros = NULL, consumed_by = NULL, updated_micros = ?3
             WHERE id = ?1 AND state = 'consumed' AND consumed_by = ?2",
            params![id, decision_id, now],
        )?;
        Ok(n == 1)
    }

    fn insert_credential(&self, c: &Credential) -> Result<(), StoreError> {
        insert_credential(&self.conn(), c)
    }

    fn credential(&self, id: &str) -> Result<Option<Credential>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT id, task_id, principal, action, resource, decision_id, kid, issued_at, expires_at, revoked_micros, revoke_reason, holder FROM credentials WHERE id = ?1")?
            .query_row([id], credential_row)
            .optional()?)
    }

    fn revoke_credential(&self, id: &str, now: i64, reason: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE credentials SET revoked_micros = ?2, revoke_reason = ?3 WHERE id = ?1 AND revoked_micros IS NULL",
            params![id, now, reason],
        )?;
        Ok(n == 1)
    }

    fn revoke_task(
        &self,
        task_id: &str,
        holder: Option<&str>,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        // No holder: everyone's (an admin completing a task).
        let ids = tx
            .prepare("SELECT id FROM credentials WHERE task_id = ?1 AND revoked_micros IS NULL AND (?2 IS NULL OR holder = ?2) ORDER BY issued_at, id")?
            .query_map(params![task_id, holder], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        tx.execute(
            "UPDATE credentials SET revoked_micros = ?2, revoke_reason = 'task-complete' WHERE task_id = ?1 AND revoked_micros IS NULL AND (?3 IS NULL OR holder = ?3)",
            params![task_id, now, holder],
        )?;
        tx.commit()?;
        Ok(ids)
    }

    fn tokens(&self) -> Result<Vec<TokenEntry>, StoreError> {
        self.token_rows("tokens")
    }

    fn audited_tokens(&self) -> Result<Vec<TokenEntry>, StoreError> {
        self.token_rows("audited_tokens")
    }

    fn set_token_audited(&self, t: &TokenEntry, audited: bool) -> Result<(), StoreError> {
        let conn = self.conn();
        if audited {
            conn.execute(
                "INSERT OR REPLACE INTO audited_tokens (sha256, id, kind, roles, created_micros) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![t.sha256, t.id, t.kind, to_json(&t.roles), t.created_micros],
            )?;
        } else {
            conn.execute("DELETE FROM audited_tokens WHERE sha256 = ?1", [&t.sha256])?;
        }
        Ok(())
    }

    fn add_token(&self, t: &TokenEntry) -> Result<(), StoreError> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO tokens (sha256, id, kind, roles, created_micros) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![t.sha256, t.id, t.kind, to_json(&t.roles), t.created_micros],
        )?;
        if n == 0 {
            return Err(StoreError::Duplicate(t.sha256.clone()));
        }
        Ok(())
    }

    fn remove_tokens(&self, id: &str) -> Result<usize, StoreError> {
        Ok(self
            .conn()
            .execute("DELETE FROM tokens WHERE id = ?1", [id])?)
    }

    fn signing_keys(&self) -> Result<Vec<SigningKeyInfo>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT kid, created_micros, retired_micros FROM signing_keys ORDER BY created_micros, kid",
        )?;
        let keys = stmt
            .query_map([], |r| {
                Ok(SigningKeyInfo {
                    kid: r.get(0)?,
                    created_micros: r.get(1)?,
                    retired_micros: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(keys)
    }

    fn activate_signing_key(&self, kid: &str, now: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        activate(&tx, kid, now)?;
        tx.commit()?;
        Ok(())
    }

    fn add_sealed_signing_key(&self, kid: &str, sealed: &[u8], now: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO sealed_signing_keys (kid, sealed) VALUES (?1, ?2)
             ON CONFLICT (kid) DO UPDATE SET sealed = excluded.sealed",
            params![kid, sealed],
        )?;
        activate(&tx, kid, now)?;
        tx.commit()?;
        Ok(())
    }

    fn sealed_signing_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT kid, sealed FROM sealed_signing_keys ORDER BY kid")?;
        let keys = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(keys)
    }
}

/// Retires every other signing key at `now` and makes `kid` the active one.
fn activate(tx: &rusqlite::Transaction<'_>, kid: &str, now: i64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE signing_keys SET retired_micros = ?2 WHERE kid != ?1 AND retired_micros IS NULL",
        params![kid, now],
    )?;
    tx.execute(
        "INSERT INTO signing_keys (kid, created_micros, retired_micros) VALUES (?1, ?2, NULL)
         ON CONFLICT (kid) DO UPDATE SET retired_micros = NULL",
        params![kid, now],
    )?;
    Ok(())
}

/// The wall clock in unix microseconds.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
