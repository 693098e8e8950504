//! The audit chains replicas ship to the shared database.
//!
//! Each replica keeps its own hash-chained audit log in its data directory (an
//! acknowledged decision is on its local disk before the answer, with no database round
//! trip on the way) and ships it, in seq order, to the state database: every record and
//! every signed checkpoint, under the replica's id as the chain id. There the chains
//! are verified one by one (`arbiter audit verify --state-url`) and queried merged by
//! time. Shipping is idempotent (a record already shipped is skipped, after checking it
//! is the same record), so a replica resumes after a crash or an outage from the
//! database's head of its chain. SQLite serves one process whose log is the file
//! itself: its defaults keep nothing.

use arbiter_audit::{Filter, Hash, SignedCheckpoint, StoredRecord};

use crate::StoreError;

mod ship;
mod verify;

pub use ship::{AuditShipper, SHIP_BATCH, Shipped};
pub use verify::verify_chains;

/// Where one chain stands in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The chain: the id of the replica that wrote it.
    pub chain_id: String,
    /// The last record shipped (0 when none).
    pub seq: u64,
    /// Its hash (all zero when none).
    pub hash: Hash,
    /// The last checkpoint shipped (0 when none).
    pub checkpoint_number: u64,
    /// When the replica last shipped (unix microseconds, its clock).
    pub shipped_micros: i64,
}

/// A record of one chain, as a merged query returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainRecord {
    /// The chain it belongs to.
    pub chain_id: String,
    /// The record with its place in that chain.
    pub record: StoredRecord,
}

/// The audit part of [`crate::StateStore`]. The defaults are a store that keeps no
/// chains (SQLite: the server's own log file is the audit).
pub trait AuditChains {
    /// Whether replicas ship their audit chains here.
    fn keeps_audit_chains(&self) -> bool {
        false
    }

    /// Stores `records` (consecutive, in seq order, the first following the chain's
    /// head or already stored) and `checkpoints` (in number order, none past the last
    /// record shipped) of chain `chain_id`, and moves its head, in one transaction.
    /// A record or checkpoint already stored is skipped when it is the same, and
    /// refused ([`StoreError::AuditFork`]) when it differs, as is a first record that
    /// does not link to the stored head.
    fn ship_audit(
        &self,
        _chain_id: &str,
        _records: &[StoredRecord],
        _checkpoints: &[SignedCheckpoint],
        _now_micros: i64,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Every chain's head, by chain id.
    fn audit_chain_heads(&self) -> Result<Vec<ChainHead>, StoreError> {
        Ok(Vec::new())
    }

    /// Chain `chain_id`'s head, if anything was shipped to it.
    fn audit_chain_head(&self, _chain_id: &str) -> Result<Option<ChainHead>, StoreError> {
        Ok(None)
    }

    /// Up to `limit` records of chain `chain_id` after seq `after` and up to
    /// `through`, in seq order.
    fn audit_chain_records(
        &self,
        _chain_id: &str,
        _after: u64,
        _through: u64,
        _limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        Ok(Vec::new())
    }

    /// Up to `limit` checkpoints of chain `chain_id` numbered after `after` and up to
    /// `through`, in number order.
    fn audit_chain_checkpoints(
        &self,
        _chain_id: &str,
        _after: u64,
        _through: u64,
        _limit: usize,
    ) -> Result<Vec<SignedCheckpoint>, StoreError> {
        Ok(Vec::new())
    }

    /// The public keys (PEM) shipped with chain `chain_id`'s checkpoints.
    fn audit_chain_keys(&self, _chain_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    /// Records of every chain (or of `chain_id` alone) matching `filter`, merged by
    /// time: ordered by `at_micros`, then chain id, then seq (all descending with
    /// [`Filter::newest_first`]). [`Filter::after_seq`] counts in each chain's own seqs.
    fn query_audit_chains(
        &self,
        _filter: &Filter,
        _chain_id: Option<&str>,
    ) -> Result<Vec<ChainRecord>, StoreError> {
        Ok(Vec::new())
    }
}
