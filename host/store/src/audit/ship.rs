//! Shipping one replica's local audit log to the database, a batch at a time, resuming
//! from the database's head of its chain.

use std::path::PathBuf;

use arbiter_audit::Filter;

use crate::{AuditChains, ChainHead, StoreError};

/// Records per shipment: one transaction and one round trip for the records, small
/// enough that a shipment stays well under a second (about 1 MB of rows).
pub const SHIP_BATCH: usize = 1000;

/// Checkpoints per shipment at most; one is signed a second while records arrive, so
/// a batch of records rarely brings more than a few.
const CHECKPOINT_BATCH: usize = 100;

/// Ships the log at `path` as chain `chain_id`. It remembers the head it last shipped,
/// so a quiet log costs one local read and no database round trip a pass; after a
/// failure it reads the head from the database again.
#[derive(Debug)]
pub struct AuditShipper {
    chain_id: String,
    path: PathBuf,
    head: Option<ChainHead>,
}

/// What one pass shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shipped {
    /// Records shipped.
    pub records: usize,
    /// Checkpoints shipped.
    pub checkpoints: usize,
    /// The last record of the chain now in the database.
    pub head_seq: u64,
    /// When the oldest record of this pass was written (unix microseconds): the
    /// shipping lag is the time since.
    pub oldest_micros: Option<i64>,
    /// Whether more may be waiting (a batch of records or checkpoints was full).
    pub more: bool,
}

impl AuditShipper {
    /// A shipper of the log at `path` as chain `chain_id` (the replica id).
    pub fn new(chain_id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            chain_id: chain_id.into(),
            path: path.into(),
            head: None,
        }
    }

    /// Ships the next batch of records and the checkpoints they complete. A local log
    /// that does not continue the chain the database holds under this id is refused
    /// ([`StoreError::AuditFork`]) and nothing is shipped.
    pub fn ship(
        &mut self,
        store: &dyn AuditChains,
        now_micros: i64,
    ) -> Result<Shipped, StoreError> {
        let result = self.ship_batch(store, now_micros);
        if result.is_err() {
            self.head = None;
        }
        result
    }

    fn ship_batch(&mut self, store: &dyn AuditChains, now: i64) -> Result<Shipped, StoreError> {
        let head = match self.head.take() {
            Some(head) => head,
            None => {
                let head = store
                    .audit_chain_head(&self.chain_id)?
                    .unwrap_or(ChainHead {
                        chain_id: self.chain_id.clone(),
                        seq: 0,
                        hash: [0; 32],
                        checkpoint_number: 0,
                        shipped_micros: 0,
                    });
                // The database's head must be in this log, as it is: else the log is
                // another one (a data directory lost, an id shared) and shipping it
                // would fork the chain.
                if head.seq > 0 {
                    let local = arbiter_audit::record_hashes(&self.path, &[head.seq])
                        .map_err(StoreError::LocalAudit)?;
                    if local.get(&head.seq) != Some(&head.hash) {
                        return Err(StoreError::AuditFork {
                            chain_id: self.chain_id.clone(),
                            seq: head.seq,
                        });
                    }
                }
                head
            }
        };
        let records = arbiter_audit::query(
            &self.path,
            &Filter {
                after_seq: Some(head.seq),
                limit: SHIP_BATCH,
                ..Filter::default()
            },
        )
        .map_err(StoreError::LocalAudit)?;
        let through = records.last().map_or(head.seq, |r| r.seq);
        let mut checkpoints =
            arbiter_audit::checkpoints(&self.path, head.checkpoint_number, CHECKPOINT_BATCH)
                .map_err(StoreError::LocalAudit)?;
        // A slow trickle of records signs about one checkpoint each: after an outage
        // they can outnumber a batch of checkpoints.
        let full = records.len() == SHIP_BATCH || checkpoints.len() == CHECKPOINT_BATCH;
        // A checkpoint goes with the records it covers, never ahead of them.
        checkpoints.retain(|c| c.seq <= through);
        if let Some(gap) = checkpoints
            .iter()
            .zip(head.checkpoint_number + 1..)
            .position(|(c, n)| c.number != n)
        {
            checkpoints.truncate(gap);
        }
        let shipped = Shipped {
            records: records.len(),
            checkpoints: checkpoints.len(),
            head_seq: through,
            oldest_micros: records.iter().map(|r| r.record.at_micros).min(),
            more: full,
        };
        if !records.is_empty() || !checkpoints.is_empty() {
            store.ship_audit(&self.chain_id, &records, &checkpoints, now)?;
        }
        self.head = Some(ChainHead {
            seq: through,
            hash: records.last().map_or(head.hash, |r| r.hash),
            checkpoint_number: checkpoints
                .last()
                .map_or(head.checkpoint_number, |c| c.number),
            shipped_micros: now,
            ..head
        });
        Ok(shipped)
    }
}
