//! PostgreSQL schema migrations, numbered in the `arbiter_schema` table and run at
//! start under an advisory lock, so replicas starting together migrate once. Append,
//! never edit.

use deadpool_postgres::Object;

use crate::StoreError;

/// The advisory lock every replica takes to migrate (any constant the deployment's
/// other users of the database do not take).
const MIGRATION_LOCK: i64 = 0x4152_4249_5445_5201;

/// Every migration, in order; `MIGRATIONS[i]` brings version `i` to `i + 1`. The
/// tables are the SQLite backend's at its newest version, in PostgreSQL's types.
const MIGRATIONS: &[&str] = &[
    // 1: approvals, votes, credentials, tokens, audited tokens, signing keys.
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
        approvers_required BIGINT NOT NULL,
        created_micros BIGINT NOT NULL,
        expires_micros BIGINT NOT NULL,
        state TEXT NOT NULL,
        consumed_micros BIGINT,
        consumed_by TEXT,
        updated_micros BIGINT NOT NULL,
        held_by TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX approvals_pending ON approvals (request_digest, set_name, held_by, state);
    CREATE INDEX approvals_created ON approvals (created_micros);
    CREATE INDEX approvals_open ON approvals (state, expires_micros);
    CREATE TABLE votes (
        seq BIGSERIAL,
        approval_id TEXT NOT NULL REFERENCES approvals (id),
        approver TEXT NOT NULL,
        approve BOOLEAN NOT NULL,
        comment TEXT NOT NULL,
        at_micros BIGINT NOT NULL,
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
        issued_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        revoked_micros BIGINT,
        revoke_reason TEXT,
        holder TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX credentials_task ON credentials (task_id);
    CREATE TABLE tokens (
        sha256 TEXT PRIMARY KEY,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        roles TEXT NOT NULL,
        created_micros BIGINT NOT NULL
    );
    CREATE TABLE audited_tokens (
        sha256 TEXT PRIMARY KEY,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        roles TEXT NOT NULL,
        created_micros BIGINT NOT NULL
    );
    CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY,
        created_micros BIGINT NOT NULL,
        retired_micros BIGINT
    );",
    // 2: signing keys' secrets sealed with the deployment's key secret: replicas share
    // their keys through the database.
    "CREATE TABLE sealed_signing_keys (
        kid TEXT PRIMARY KEY,
        sealed BYTEA NOT NULL
    );",
    // 3: the policy sets replicas share: each version's bundle, each name's state, one
    // revision that grows with every change (the row replicas poll), and what each
    // replica serves.
    "CREATE TABLE set_bundles (
        digest TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        bytes BYTEA,
        reference TEXT,
        origin TEXT NOT NULL,
        signer TEXT,
        added_micros BIGINT NOT NULL
    );
    CREATE TABLE set_state (
        name TEXT PRIMARY KEY,
        enforced_digest TEXT NOT NULL,
        shadow_digest TEXT,
        config_digest TEXT,
        versions TEXT NOT NULL,
        revision BIGINT NOT NULL,
        changed_by TEXT NOT NULL,
        changed_micros BIGINT NOT NULL
    );
    CREATE TABLE set_revision (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        revision BIGINT NOT NULL
    );
    INSERT INTO set_revision (id, revision) VALUES (1, 0);
    CREATE TABLE replica_sets (
        replica_id TEXT NOT NULL,
        name TEXT NOT NULL,
        enforced_digest TEXT NOT NULL,
        enforced_version TEXT NOT NULL,
        shadow_digest TEXT,
        error TEXT,
        updated_micros BIGINT NOT NULL,
        PRIMARY KEY (replica_id, name)
    );",
    // 4: replica leases: which process holds each replica id, until when; a replica
    // refuses to start while another live one holds its id.
    "CREATE TABLE replica_leases (
        id TEXT PRIMARY KEY,
        nonce TEXT NOT NULL,
        version TEXT NOT NULL,
        started_micros BIGINT NOT NULL,
        renewed_micros BIGINT NOT NULL,
        expires_micros BIGINT NOT NULL
    );",
    // 5: approval events replicas follow: each step one replica takes, numbered in
    // commit order.
    "CREATE TABLE approval_events (
        seq BIGSERIAL PRIMARY KEY,
        replica TEXT NOT NULL,
        step TEXT NOT NULL,
        approval_id TEXT NOT NULL,
        at_micros BIGINT NOT NULL
    );
    CREATE INDEX approval_events_at ON approval_events (at_micros);",
    // 6: the replicas' audit chains: each replica ships its local log's records and
    // signed checkpoints here under its id, and moves its chain's head row.
    "CREATE TABLE audit_chains (
        chain_id TEXT PRIMARY KEY,
        seq BIGINT NOT NULL,
        hash BYTEA NOT NULL,
        checkpoint_number BIGINT NOT NULL,
        shipped_micros BIGINT NOT NULL
    );
    CREATE TABLE audit_records (
        chain_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        kind TEXT NOT NULL,
        at_micros BIGINT NOT NULL,
        principal TEXT,
        outcome TEXT,
        policy_set TEXT,
        decision_id TEXT,
        body TEXT NOT NULL,
        prev_hash BYTEA NOT NULL,
        hash BYTEA NOT NULL,
        shipped_micros BIGINT NOT NULL,
        PRIMARY KEY (chain_id, seq)
    );
    CREATE INDEX audit_records_at ON audit_records (at_micros);
    CREATE INDEX audit_records_decision ON audit_records (decision_id);
    CREATE TABLE audit_checkpoints (
        chain_id TEXT NOT NULL,
        number BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        hash BYTEA NOT NULL,
        at_micros BIGINT NOT NULL,
        key_id TEXT NOT NULL,
        signature BYTEA NOT NULL,
        public_key TEXT,
        PRIMARY KEY (chain_id, number)
    );",
    // 7: who is recording a lapsed approval's expiry, until when: one sweeper at a
    // time per approval, whichever replicas sweep.
    "ALTER TABLE approvals ADD COLUMN expiry_claim TEXT, ADD COLUMN expiry_claim_until BIGINT;",
];

/// The newest schema this build knows.
pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`VERSION`] under the migration lock, refusing one from the
/// future.
pub(crate) async fn migrate(mut client: Object) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS arbiter_schema (version BIGINT NOT NULL)")
        .await?;
    let found: i64 = tx
        .query_opt("SELECT version FROM arbiter_schema", &[])
        .await?
        .map_or(0, |r| r.get(0));
    if found > VERSION {
        return Err(StoreError::Schema {
            found,
            supported: VERSION,
        });
    }
    for sql in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
        tx.batch_execute(sql).await?;
    }
    tx.execute("DELETE FROM arbiter_schema", &[]).await?;
    tx.execute(
        "INSERT INTO arbiter_schema (version) VALUES ($1)",
        &[&VERSION],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
