//! The checks of verification as a state machine fed one record and one checkpoint at
//! a time, so that a chain read from anywhere (the local SQLite file, or the copy a
//! replica shipped to the shared database, page by page) is checked by the same code.

use std::collections::VecDeque;

use arbiter_keys::PublicKey;

use crate::chain::{self, Fields, GENESIS, Hash};
use crate::checkpoint::SignedCheckpoint;
use crate::record::StoredRecord;
use crate::report::{Broken, Verification, Why};

/// Verifies one chain fed in order: checkpoints in number order, records in seq order.
///
/// Before feeding a record, feed checkpoints while [`ChainVerifier::wants_checkpoints`]
/// says so (or until none are left): a checkpoint is checked against the record it
/// covers when that record arrives, and one left over at the end covers records that
/// are not there (truncation).
///
/// ```
/// # use arbiter_audit::ChainVerifier;
/// let verifier = ChainVerifier::new(Vec::new());
/// assert!(verifier.finish().is_intact()); // an empty chain
/// ```
#[derive(Debug)]
pub struct ChainVerifier {
    trusted: Vec<(String, PublicKey)>,
    v: Verification,
    /// Checkpoints fed and not yet reached, each with the seq at which it is checked
    /// (or its problem reported).
    pending: VecDeque<(u64, Result<Checked, Broken>)>,
    /// The number and seq of the last checkpoint fed that checked out on its own.
    number: u64,
    seq: u64,
}

/// A checkpoint whose signature, number and order checked out.
#[derive(Debug)]
struct Checked {
    number: u64,
    seq: u64,
    hash: Hash,
    at_micros: i64,
}

impl ChainVerifier {
    /// A verifier trusting checkpoints signed by `trusted`.
    pub fn new(trusted: Vec<PublicKey>) -> Self {
        Self::with_ids(trusted.into_iter().map(|k| (k.id(), k)).collect())
    }

    /// A verifier trusting `trusted`, each with its key id.
    pub(crate) fn with_ids(trusted: Vec<(String, PublicKey)>) -> Self {
        Self {
            trusted,
            v: Verification {
                records: 0,
                checkpoints: 0,
                head_seq: 0,
                head_hash: GENESIS,
                signed_seq: 0,
                broken: None,
            },
            pending: VecDeque::new(),
            number: 0,
            seq: 0,
        }
    }

    /// Whether a problem was found (feeding more changes nothing).
    pub fn is_broken(&self) -> bool {
        self.v.broken.is_some()
    }

    /// Whether the next checkpoint (if any is left) must be fed before the next record.
    pub fn wants_checkpoints(&self) -> bool {
        !self.is_broken()
            && self
                .pending
                .back()
                .is_none_or(|(position, _)| *position <= self.v.head_seq + 1)
    }

    /// Feeds the next checkpoint in number order.
    pub fn checkpoint(&mut self, c: &SignedCheckpoint) {
        self.checkpoint_columns(
            c.number,
            c.seq,
            c.hash,
            c.at_micros,
            &c.key_id,
            &c.signature,
        );
    }

    /// Feeds the next record in seq order; `false` once the chain is broken.
    pub fn record(&mut self, r: &StoredRecord) -> bool {
        let seq = i64::try_from(r.seq).unwrap_or(i64::MAX);
        let fields = Fields {
            kind: r.record.kind.as_str().as_bytes(),
            at_micros: r.record.at_micros,
            principal: r.record.principal.as_deref().map(str::as_bytes),
            outcome: r.record.outcome.as_deref().map(str::as_bytes),
            policy_set: r.record.policy_set.as_deref().map(str::as_bytes),
            decision_id: r.record.decision_id.as_deref().map(str::as_bytes),
            body: r.record.body.get().as_bytes(),
        };
        self.record_fields(seq, &fields, &r.prev_hash, &r.hash)
    }

    /// The result: how far the chain checked out and where it broke, if it did.
    pub fn finish(mut self) -> Verification {
        if self.v.broken.is_none() {
            self.v.broken = match self.pending.pop_front() {
                None => None,
                Some((_, Err(broken))) => Some(broken),
                Some((_, Ok(c))) => Some(Broken {
                    seq: self.v.head_seq + 1,
                    checkpoint: Some(c.number),
                    why: Why::Truncated {
                        head: self.v.head_seq,
                        checkpoint_seq: c.seq,
                        at_micros: c.at_micros,
                    },
                }),
            };
        }
        self.v
    }

    /// Stops at `broken` (a column that cannot be read, found by the caller).
    pub(crate) fn fail(&mut self, broken: Broken) {
        if self.v.broken.is_none() {
            self.v.broken = Some(broken);
        }
    }

    /// The seq the next record must have.
    pub(crate) fn expected(&self) -> u64 {
        self.v.head_seq + 1
    }

    /// Checks checkpoint `number` on its own and against the last good one before it,
    /// and queues it (or its problem, at the seq where it is reported).
    pub(crate) fn checkpoint_columns(
        &mut self,
        number: u64,
        seq: u64,
        hash: Hash,
        at_micros: i64,
        key_id: &str,
        signature: &[u8],
    ) {
        let why = match self.trusted.iter().find(|(id, _)| id == key_id) {
            None => Some(Why::UntrustedKey {
                key_id: key_id.to_owned(),
            }),
            Some((_, key)) => {
                let message = chain::checkpoint_message(number, seq, &hash, at_micros);
                if key.verify(&message, signature).is_err() {
                    Some(Why::BadSignature {
                        key_id: key_id.to_owned(),
                    })
                } else if number != self.number + 1 {
                    Some(Why::CheckpointMissing {
                        expected: self.number + 1,
                    })
                } else if seq <= self.seq {
                    Some(Why::CheckpointNotAfter {
                        previous_seq: self.seq,
                    })
                } else {
                    None
                }
            }
        };
        let entry = match why {
            None => {
                self.number = number;
                self.seq = seq;
                Ok(Checked {
                    number,
                    seq,
                    hash,
                    at_micros,
                })
            }
            Some(why) => Err(Broken {
                seq,
                checkpoint: Some(number),
                why,
            }),
        };
        self.pending.push_back((seq, entry));
    }

    /// Queues checkpoint `number` whose `column` could not be read; `seq` when that
    /// column could.
    pub(crate) fn malformed_checkpoint(
        &mut self,
        number: u64,
        column: &'static str,
        seq: Option<u64>,
    ) {
        // Where a checkpoint whose seq cannot be read is reported: right after the last
        // good one, since everything it might cover is in doubt.
        let position = seq.unwrap_or(self.seq + 1);
        self.pending.push_back((
            position,
            Err(Broken {
                seq: position,
                checkpoint: Some(number),
                why: Why::Malformed { column },
            }),
        ));
    }

    /// Checks one record's columns against the chain so far, then the checkpoints that
    /// cover it; `false` once the chain is broken.
    pub(crate) fn record_fields(
        &mut self,
        seq: i64,
        fields: &Fields<'_>,
        stored_prev: &Hash,
        stored_hash: &Hash,
    ) -> bool {
        if self.is_broken() {
            return false;
        }
        let expected = self.expected();
        let why = match u64::try_from(seq) {
            Ok(seq) if seq == expected => {
                if chain::record_hash(stored_prev, expected, fields) != *stored_hash {
                    Some(Why::HashMismatch)
                } else if *stored_prev != self.v.head_hash {
                    Some(Why::PrevMismatch)
                } else {
                    None
                }
            }
            Ok(next) if next > expected => Some(Why::Missing { next }),
            _ => Some(Why::Unexpected { found: seq }),
        };
        if let Some(why) = why {
            self.fail(Broken {
                seq: expected,
                checkpoint: None,
                why,
            });
            return false;
        }
        self.v.records += 1;
        self.v.head_seq = expected;
        self.v.head_hash = *stored_hash;
        while self.pending.front().is_some_and(|(p, _)| *p <= expected) {
            let Some((position, checkpoint)) = self.pending.pop_front() else {
                break;
            };
            match checkpoint {
                Ok(c) if c.seq == expected && c.hash == *stored_hash => {
                    self.v.checkpoints += 1;
                    self.v.signed_seq = c.seq;
                }
                Ok(c) => {
                    self.fail(Broken {
                        seq: position,
                        checkpoint: Some(c.number),
                        why: Why::CheckpointMismatch,
                    });
                    return false;
                }
                Err(broken) => {
                    self.fail(broken);
                    return false;
                }
            }
        }
        true
    }
}
