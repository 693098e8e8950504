//! Arbiter's durable state: human approvals and their votes, issued credentials and
//! their revocations, caller tokens (by hash) and credential signing-key metadata.
//!
//! Everything goes through the [`StateStore`] trait, so that a PostgreSQL backend can
//! serve several stateless replicas later; [`SqliteStore`] is the embedded default: one
//! file in the data directory, WAL mode, `synchronous = FULL` (an acknowledged write
//! survives `kill -9` and power loss), schema migrations numbered by `user_version`.
//!
//! The store enforces what must be atomic (a vote counts once per approver; an approval
//! is consumed once; a revocation is never undone). Who may vote, and whether a request
//! matches an approval, are the server's rules, not the store's.
//!
//! ```
//! use arbiter_store::{SqliteStore, StateStore};
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
//! assert!(store.approval("nope", 0).unwrap().is_none());
//! ```

mod audit;
mod columns;
#[cfg(test)]
mod contract;
mod events;
mod lease;
mod model;
mod policy_sets;
mod postgres;
mod schema;
mod sqlite;

pub use audit::{
    AuditChains, AuditShipper, ChainHead, ChainRecord, SHIP_BATCH, Shipped, verify_chains,
};
pub use events::{ApprovalEvent, ApprovalEvents};
pub use lease::{ReplicaLease, ReplicaLeases};
pub use model::{
    Approval, ApprovalFilter, ApprovalState, Credential, NewApproval, SigningKeyInfo, TokenEntry,
    Vote, VoteOutcome,
};
pub use policy_sets::{BundleSource, ReplicaSet, SetStore, StoredBundle, StoredSetState};
pub use postgres::{PgStore, redact_url};
pub use sqlite::{SqliteStore, now_micros};

/// Opens the state: the PostgreSQL database at `url` when given (its password read
/// from `password_file` when given), else the SQLite file `sqlite`.
pub fn open(
    url: Option<&str>,
    password_file: Option<&std::path::Path>,
    sqlite: &std::path::Path,
) -> Result<std::sync::Arc<dyn StateStore>, StoreError> {
    match url {
        Some(url) => {
            let password = password_file.map(postgres::read_password).transpose()?;
            Ok(std::sync::Arc::new(PgStore::open_with(url, password)?))
        }
        None => Ok(std::sync::Arc::new(SqliteStore::open(sqlite)?)),
    }
}

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused the operation (disk full, locked for too long, corrupt).
    #[error("state database error")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON column does not parse: the file was edited by hand or is corrupt.
    #[error("state database holds an unreadable {what} for `{id}`")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The database was written by a newer Arbiter.
    #[error(
        "state database schema version {found} is newer than this server understands ({supported}); run a newer arbiter or restore a backup"
    )]
    Schema {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The database file could not be created with owner-only permissions.
    #[error("cannot create the state database `{path}`")]
    Create {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A row with this key already exists.
    #[error("`{0}` already exists")]
    Duplicate(String),
    /// PostgreSQL refused the operation (or the connection broke during it).
    #[error("state database error")]
    Postgres(#[from] tokio_postgres::Error),
    /// The PostgreSQL database cannot be reached.
    #[error("the state database cannot be reached: {0}")]
    Unreachable(String),
    /// The TLS parameters of the PostgreSQL URL do not fit together.
    #[error("state database TLS: {0}")]
    Tls(String),
    /// A TLS file the PostgreSQL URL names cannot be used (its message says why).
    #[error("{0}")]
    TlsFile(arbiter_tls::TlsError),
    /// A replica's audit chain differs from what the database holds under its id: the
    /// replica lost its data directory, or two processes share a replica id.
    #[error(
        "audit chain `{chain_id}` in the state database differs from this replica's log at record {seq}; give each replica its own id and keep its data directory"
    )]
    AuditFork {
        /// The chain (replica id).
        chain_id: String,
        /// The first record that differs.
        seq: u64,
    },
    /// The replica's own audit log could not be read for shipping.
    #[error("cannot read the local audit log to ship it")]
    LocalAudit(#[source] arbiter_audit::AuditError),
}

/// The durable state of one Arbiter deployment. Every method is synchronous and
/// durable when it returns; async callers run them on a blocking thread. The policy
/// sets replicas share are kept through its part [`SetStore`], which process holds
/// each replica id through its part [`ReplicaLeases`], and the replicas' audit chains
/// through its part [`AuditChains`].
pub trait StateStore:
    SetStore + ReplicaLeases + ApprovalEvents + AuditChains + Send + Sync + std::fmt::Debug
{
    /// Records a new pending approval.
    fn create_approval(&self, approval: &NewApproval) -> Result<(), StoreError>;
    /// The approval `id` with its votes; its state reads `expired` once past expiry.
    fn approval(&self, id: &str, now_micros: i64) -> Result<Option<Approval>, StoreError>;
    /// The open approval for the same request digest and set if there is one, else
    /// `approval` newly recorded (`true`): one transaction, so two identical held
    /// requests at the same instant share one approval.
    fn hold_approval(
        &self,
        approval: &NewApproval,
        now_micros: i64,
    ) -> Result<(Approval, bool), StoreError>;
    /// Approvals matching `filter`, newest first.
    fn list_approvals(&self, filter: &ApprovalFilter) -> Result<Vec<Approval>, StoreError>;
    /// Records one approver's vote atomically: a second vote by the same approver
    /// changes nothing; a rejection rejects; enough approvals approve.
    fn vote(&self, id: &str, vote: &Vote, now_micros: i64) -> Result<VoteOutcome, StoreError>;
    /// Takes back `approver`'s vote (it could not be audited): the approval's state is
    /// recomputed from the votes that remain. Nothing changes once it was consumed.
    fn retract_vote(&self, id: &str, approver: &str, now_micros: i64) -> Result<(), StoreError>;
    /// Claims, for `claimant`, up to `limit` approvals whose time ran out by
    /// `now_micros` while pending or approved (so `expired` is only derived from the
    /// clock, not stored yet) and that no other claimant holds at `claim_now_micros`,
    /// until `claim_now_micros + hold_micros`; returns them, oldest expiry first.
    /// Claims are timed on their own clock (the server passes the lease clock, which
    /// replicas share). Of any number of sweepers (replicas) at once, one claims each
    /// approval, so its expiry is recorded once unless the claim runs out first; a
    /// claim whose holder died lapses after `hold_micros` and is taken by the next
    /// sweep.
    fn claim_lapsed_approvals(
        &self,
        claimant: &str,
        now_micros: i64,
        limit: usize,
        claim_now_micros: i64,
        hold_micros: i64,
    ) -> Result<Vec<Approval>, StoreError>;
    /// Stores `expired` as the state of lapsed approval `id`; `false` when it is not
    /// (any longer) pending or approved and past its expiry.
    fn mark_expired(&self, id: &str, now_micros: i64) -> Result<bool, StoreError>;
    /// How many approvals and credentials the two purges below would delete. With
    /// cutoffs in the past the answer cannot change before they run: what closed or
    /// expired before then stays so.
    fn purgeable(
        &self,
        approvals_before_micros: i64,
        credentials_before_secs: i64,
    ) -> Result<(usize, usize), StoreError>;
    /// Deletes approvals closed (rejected, consumed, or stored as expired) before
    /// `before_micros`, with their votes; returns how many approvals.
    fn purge_closed_approvals(&self, before_micros: i64) -> Result<usize, StoreError>;
    /// Deletes credentials that expired before `before_secs` (unix seconds); returns
    /// how many.
    fn purge_expired_credentials(&self, before_secs: i64) -> Result<usize, StoreError>;
    /// Marks an approved, unexpired approval as used by `decision_id` and, in the same
    /// atomic step, records `credential` (the one this use issues, if any): both happen
    /// or neither. `false` when it is not (any longer) approved: single use is
    /// enforced here, and a credential signed for a use that lost the race is never
    /// recorded. One statement (one round trip) on PostgreSQL.
    fn redeem_approval(
        &self,
        id: &str,
        decision_id: &str,
        now_micros: i64,
        credential: Option<&Credential>,
    ) -> Result<bool, StoreError>;
    /// Gives back an approval that `decision_id` consumed but could not use (its
    /// credential could not be issued or recorded): it is approved again, as before.
    /// `false` when it was not consumed by that decision.
    fn release_approval(
        &self,
        id: &str,
        decision_id: &str,
        now_micros: i64,
    ) -> Result<bool, StoreError>;

    /// Records an issued credential.
    fn insert_credential(&self, credential: &Credential) -> Result<(), StoreError>;
    /// The credential `id`.
    fn credential(&self, id: &str) -> Result<Option<Credential>, StoreError>;
    /// Revokes one credential; `false` when unknown or already revoked.
    fn revoke_credential(
        &self,
        id: &str,
        now_micros: i64,
        reason: &str,
    ) -> Result<bool, StoreError>;
    /// Revokes every unrevoked credential of `task_id` issued to `holder` (`None`:
    /// to anyone); returns their ids.
    fn revoke_task(
        &self,
        task_id: &str,
        holder: Option<&str>,
        now_micros: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Every caller token entry.
    fn tokens(&self) -> Result<Vec<TokenEntry>, StoreError>;
    /// Adds a caller token entry (by hash).
    fn add_token(&self, token: &TokenEntry) -> Result<(), StoreError>;
    /// Removes the token entries of caller `id`; returns how many.
    fn remove_tokens(&self, id: &str) -> Result<usize, StoreError>;
    /// The token entries whose addition the audit log has recorded (including removed
    /// ones whose removal it has not recorded yet).
    fn audited_tokens(&self) -> Result<Vec<TokenEntry>, StoreError>;
    /// Notes that the audit log recorded `token`'s addition (`true`) or removal.
    fn set_token_audited(&self, token: &TokenEntry, audited: bool) -> Result<(), StoreError>;

    /// Credential signing keys, oldest first.
    fn signing_keys(&self) -> Result<Vec<SigningKeyInfo>, StoreError>;
    /// Makes `kid` the active signing key, retiring the others at `now_micros`.
    fn activate_signing_key(&self, kid: &str, now_micros: i64) -> Result<(), StoreError>;
    /// Keeps a signing key's sealed secret in the database (replicas sharing it then
    /// share their keys) and makes it the active key, retiring the others, at once.
    fn add_sealed_signing_key(
        &self,
        kid: &str,
        sealed: &[u8],
        now_micros: i64,
    ) -> Result<(), StoreError>;
    /// Every sealed signing key secret kept in the database, by key id.
    fn sealed_signing_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
}
