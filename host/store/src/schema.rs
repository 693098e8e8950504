//! Schema migrations, numbered by SQLite's `user_version`. Append, never edit: a
//! database is brought forward one step at a time, each in its own transaction.

use rusqlite::Connection;

use crate::StoreError;

/// Every migration, in order; `MIGRATIONS[i]` brings version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: approvals, votes, credentials, tokens, signing keys.
    "CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        request_digest TEXT NOT NULL,
        request TEXT NOT NULL,
        principal TEXT NOT NULL,
        delegation TEXT NOT NULL,
        task_id TEXT NOT NULL,
        set_name TEXT NOT NULL,
        set_version TEXT NOT NULL,
        set_digest TEXT NOT NULL,
        decision_id TEXT NOT NULL,
        reasons TEXT NOT NULL,
        approvers_required INTEGER NOT NULL,
        created_micros INTEGER NOT NULL,
        expires_micros INTEGER NOT NULL,
        state TEXT NOT NULL,
        consumed_micros INTEGER,
        consumed_by TEXT,
        updated_micros INTEGER NOT NULL
    );
    CREATE INDEX approvals_pending ON approvals (request_digest, set_name, state);
    CREATE INDEX approvals_created ON approvals (created_micros);
    CREATE TABLE votes (
        approval_id TEXT NOT NULL REFERENCES approvals (id),
        approver TEXT NOT NULL,
        approve INTEGER NOT NULL,
        comment TEXT NOT NULL,
        at_micros INTEGER NOT NULL,
        PRIMARY KEY (approval_id, approver)
    );
    CREATE TABLE credentials (
        id TEXT PRIMARY KEY,
        task_id TEXT NOT NULL,
        principal TEXT NOT NULL,
        action TEXT NOT NULL,
        resource TEXT NOT NULL,
        decision_id TEXT NOT NULL,
        kid TEXT NOT NULL,
        issued_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_micros INTEGER,
        revoke_reason TEXT
    );
    CREATE INDEX credentials_task ON credentials (task_id);
    CREATE TABLE tokens (
        sha256 TEXT PRIMARY KEY,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        roles TEXT NOT NULL,
        created_micros INTEGER NOT NULL
    );
    CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY,
        created_micros INTEGER NOT NULL,
        retired_micros INTEGER
    );",
    // 2: the stored tokens whose addition the audit log has recorded. A running server
    // compares `tokens` with this table to audit what `arbiter token` changed (also
    // while it was down), and only a token recorded here authenticates. And an index
    // for the server's sweep of approvals that lapsed (recorded, then stored expired).
    "CREATE TABLE audited_tokens (
        sha256 TEXT PRIMARY KEY,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        roles TEXT NOT NULL,
        created_micros INTEGER NOT NULL
    );
    CREATE INDEX approvals_open ON approvals (state, expires_micros);",
    // 3: approvals and credentials bound to the enforcement identity (or group) that
    // held or obtained them: only it may redeem, revoke or complete them. Rows from
    // before have '' (any enforcer, as they were).
    "ALTER TABLE approvals ADD COLUMN held_by TEXT NOT NULL DEFAULT '';
    ALTER TABLE credentials ADD COLUMN holder TEXT NOT NULL DEFAULT '';
    DROP INDEX approvals_pending;
    CREATE INDEX approvals_pending ON approvals (request_digest, set_name, held_by, state);",
    // 4: signing keys' secrets sealed with the deployment's key secret, for replicas
    // that share their state (and so their keys) instead of key files.
    "CREATE TABLE sealed_signing_keys (
        kid TEXT PRIMARY KEY,
        sealed BLOB NOT NULL
    );",
    // 5: the policy sets replicas share: each version's bundle, each name's state, one
    // revision that grows with every change, and what each replica serves.
    "CREATE TABLE set_bundles (
        digest TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        bytes BLOB,
        reference TEXT,
        origin TEXT NOT NULL,
        signer TEXT,
        added_micros INTEGER NOT NULL
    );
    CREATE TABLE set_state (
        name TEXT PRIMARY KEY,
        enforced_digest TEXT NOT NULL,
        shadow_digest TEXT,
        config_digest TEXT,
        versions TEXT NOT NULL,
        revision INTEGER NOT NULL,
        changed_by TEXT NOT NULL,
        changed_micros INTEGER NOT NULL
    );
    CREATE TABLE set_revision (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        revision INTEGER NOT NULL
    );
    INSERT INTO set_revision (id, revision) VALUES (1, 0);
    CREATE TABLE replica_sets (
        replica_id TEXT NOT NULL,
        name TEXT NOT NULL,
        enforced_digest TEXT NOT NULL,
        enforced_version TEXT NOT NULL,
        shadow_digest TEXT,
        error TEXT,
        updated_micros INTEGER NOT NULL,
        PRIMARY KEY (replica_id, name)
    );",
    // 6: replica leases: which process holds each replica id, until when (the server
    // claims one only on a shared PostgreSQL database; kept here for one contract).
    "CREATE TABLE replica_leases (
        id TEXT PRIMARY KEY,
        nonce TEXT NOT NULL,
        version TEXT NOT NULL,
        started_micros INTEGER NOT NULL,
        renewed_micros INTEGER NOT NULL,
        expires_micros INTEGER NOT NULL
    );",
    // 7: who is recording a lapsed approval's expiry, until when: one sweeper at a
    // time per approval, whichever replicas sweep.
    "ALTER TABLE approvals ADD COLUMN expiry_claim TEXT;
     ALTER TABLE approvals ADD COLUMN expiry_claim_until INTEGER;",
];

/// The newest schema this build knows.
pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`VERSION`], refusing one from the future.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > VERSION {
        return Err(StoreError::Schema {
            found,
            supported: VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
