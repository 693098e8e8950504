//! What verification found, worded for the operator who runs `arbiter audit verify`.

use std::fmt;

use crate::chain::Hash;
use crate::clock::rfc3339;

/// The result of [`verify`](crate::verify()): how far the log checked out, and the
/// first place it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Records whose hash and link checked out (all of them when intact).
    pub records: u64,
    /// Checkpoints whose signature and chain head checked out.
    pub checkpoints: u64,
    /// The last record that checked out (0 for an empty log).
    pub head_seq: u64,
    /// Its hash (all zero for an empty log).
    pub head_hash: Hash,
    /// The highest seq a verified checkpoint covers. Records after it are protected
    /// against editing but not yet against truncation.
    pub signed_seq: u64,
    /// The first place the log is broken, if any.
    pub broken: Option<Broken>,
}

impl Verification {
    /// Whether the whole log checked out.
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }

    /// Records after the last checkpoint.
    pub fn unsigned(&self) -> u64 {
        self.head_seq.saturating_sub(self.signed_seq)
    }
}

impl fmt::Display for Verification {
    /// `OK: 12,345 records, 17 checkpoints, head <hash>` or `BROKEN at record 42: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(broken) = &self.broken {
            return broken.fmt(f);
        }
        write!(
            f,
            "OK: {}, {}, head ",
            counted(self.records, "record"),
            counted(self.checkpoints, "checkpoint")
        )?;
        if self.head_seq == 0 {
            f.write_str("(empty log)")?;
        } else {
            f.write_str(&hex::encode(self.head_hash))?;
        }
        match self.unsigned() {
            0 => Ok(()),
            n => write!(f, "; {} after the last checkpoint", counted(n, "record")),
        }
    }
}

/// Where the log is broken and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The first record that is wrong or missing; for a checkpoint problem, the record
    /// the checkpoint claims to cover.
    pub seq: u64,
    /// The checkpoint involved, by number, if any.
    pub checkpoint: Option<u64>,
    /// What is wrong.
    pub why: Why,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BROKEN at record {}", self.seq)?;
        if let Some(n) = self.checkpoint {
            write!(f, " (checkpoint {n})")?;
        }
        write!(f, ": {}", self.why)
    }
}

/// What is wrong at a [`Broken`] place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// The stored hash is not the hash of the stored columns.
    HashMismatch,
    /// The stored previous hash is not the previous record's hash.
    PrevMismatch,
    /// The record is missing; `next` is the seq stored in its place.
    Missing {
        /// The seq of the record found instead.
        next: u64,
    },
    /// A record with a seq lower than expected (or not positive) stands here.
    Unexpected {
        /// The seq found.
        found: i64,
    },
    /// A column has the wrong type or size.
    Malformed {
        /// The column.
        column: &'static str,
    },
    /// The record's hash differs from the head hash its checkpoint signed.
    CheckpointMismatch,
    /// A validly signed checkpoint covers records past the end of the log.
    Truncated {
        /// The last record in the log.
        head: u64,
        /// The seq the checkpoint covers.
        checkpoint_seq: u64,
        /// When the checkpoint was signed (unix micros).
        at_micros: i64,
    },
    /// The checkpoint's signature does not verify.
    BadSignature {
        /// The key it names.
        key_id: String,
    },
    /// The checkpoint names a key that is not trusted.
    UntrustedKey {
        /// The key it names.
        key_id: String,
    },
    /// Checkpoint numbers skip one.
    CheckpointMissing {
        /// The number that is missing.
        expected: u64,
    },
    /// The checkpoint covers no record after the previous checkpoint.
    CheckpointNotAfter {
        /// The seq the previous checkpoint covers.
        previous_seq: u64,
    },
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::HashMismatch => f.write_str("hash does not match its contents (edited?)"),
            Why::PrevMismatch => f.write_str(
                "its link does not match the previous record's hash (edited, reordered or inserted?)",
            ),
            Why::Missing { next } => {
                write!(f, "record is missing; the next stored record is {next} (deleted?)")
            }
            Why::Unexpected { found } => {
                write!(f, "a record numbered {found} stands where this one belongs (inserted?)")
            }
            Why::Malformed { column } => {
                write!(f, "column `{column}` has the wrong type or size (edited?)")
            }
            Why::CheckpointMismatch => f.write_str(
                "its hash differs from the one the checkpoint signed (chain rewritten?)",
            ),
            Why::Truncated {
                head,
                checkpoint_seq,
                at_micros,
            } => write!(
                f,
                "log ends at seq {head} but a checkpoint signed at {} covers seq {checkpoint_seq}: truncated",
                rfc3339(*at_micros)
            ),
            Why::BadSignature { key_id } => {
                write!(f, "checkpoint signature does not verify with key `{key_id}` (edited?)")
            }
            Why::UntrustedKey { key_id } => {
                write!(f, "checkpoint is signed by key `{key_id}`, which is not trusted")
            }
            Why::CheckpointMissing { expected } => {
                write!(f, "checkpoint {expected} is missing (deleted?)")
            }
            Why::CheckpointNotAfter { previous_seq } => write!(
                f,
                "checkpoint covers no record after seq {previous_seq}, which the previous one covers (edited?)"
            ),
        }
    }
}

/// `12345, "record"` as `12,345 records`; `1, "record"` as `1 record`.
fn counted(n: u64, noun: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{} {noun}{s}", thousands(n))
}

/// `12345` as `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intact(records: u64, signed_seq: u64) -> Verification {
        Verification {
            records,
            checkpoints: 17,
            head_seq: records,
            head_hash: [0xab; 32],
            signed_seq,
            broken: None,
        }
    }

    #[test]
    fn intact_logs_read_ok() {
        let v = intact(12_345, 12_345);
        assert_eq!(
            v.to_string(),
            format!(
                "OK: 12,345 records, 17 checkpoints, head {}",
                "ab".repeat(32)
            )
        );
        assert!(
            intact(10, 7)
                .to_string()
                .ends_with("; 3 records after the last checkpoint")
        );
    }

    #[test]
    fn broken_logs_name_the_place_and_reason() {
        let mut v = intact(41, 0);
        v.broken = Some(Broken {
            seq: 42,
            checkpoint: None,
            why: Why::HashMismatch,
        });
        assert_eq!(
            v.to_string(),
            "BROKEN at record 42: hash does not match its contents (edited?)"
        );
        let b = Broken {
            seq: 491,
            checkpoint: Some(5),
            why: Why::Truncated {
                head: 490,
                checkpoint_seq: 500,
                at_micros: 0,
            },
        };
        assert_eq!(
            b.to_string(),
            "BROKEN at record 491 (checkpoint 5): log ends at seq 490 but a checkpoint signed at \
             1970-01-01T00:00:00.000000Z covers seq 500: truncated"
        );
    }

    #[test]
    fn counts_are_grouped_and_pluralized() {
        assert_eq!(counted(1, "record"), "1 record");
        assert_eq!(counted(0, "checkpoint"), "0 checkpoints");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
