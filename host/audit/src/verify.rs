//! Offline verification: recompute every hash from the stored columns, follow the links,
//! and check every checkpoint's signature and the head it names.

use std::path::Path;

use arbiter_keys::PublicKey;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row, Rows};

use crate::chain::{self, Fields, GENESIS, Hash};
use crate::error::AuditError;
use crate::query::COLUMNS;
use crate::report::{Broken, Verification, Why};
use crate::schema;

/// Verifies the log at `path`, opened read-only (a running server may keep writing).
///
/// Checkpoints are checked against `keys` when given. With `None`, the public keys the
/// log recorded about itself are used: that catches accidents and careless edits, but
/// someone who can rewrite the file can also replace those keys and re-sign. Verifying
/// with a public key kept elsewhere is what defeats that.
///
/// Tampering is not an error: it is reported in [`Verification::broken`], at the first
/// record (by seq) where the log stops checking out.
pub fn verify(path: &Path, keys: Option<&[PublicKey]>) -> Result<Verification, AuditError> {
    let mut conn = schema::open_for_reading(path)?;
    // One read transaction, so records and checkpoints come from the same snapshot: a
    // checkpoint committed during the walk would otherwise look like a truncation.
    let tx = conn.transaction().map_err(AuditError::db(path))?;
    let trusted = match keys {
        Some(keys) => keys.iter().map(|k| (k.id(), *k)).collect(),
        None => stored_keys(&tx).map_err(AuditError::db(path))?,
    };
    walk(&tx, &trusted).map_err(AuditError::db(path))
}

/// The keys the log recorded; ids are recomputed, not taken from the table.
fn stored_keys(conn: &Connection) -> rusqlite::Result<Vec<(String, PublicKey)>> {
    let mut stmt = conn.prepare("SELECT public_key FROM keys")?;
    let pems = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut keys = Vec::new();
    for pem in pems {
        // A key that does not parse trusts nothing; its checkpoints show as untrusted.
        if let Ok(key) = PublicKey::from_pem(&pem?) {
            keys.push((key.id(), key));
        }
    }
    Ok(keys)
}

/// Walks records and checkpoints together in seq order, so the first problem reported
/// is the first in the chain.
fn walk(conn: &Connection, trusted: &[(String, PublicKey)]) -> rusqlite::Result<Verification> {
    let mut v = Verification {
        records: 0,
        checkpoints: 0,
        head_seq: 0,
        head_hash: GENESIS,
        signed_seq: 0,
        broken: None,
    };
    let mut records = conn.prepare(&format!("SELECT {COLUMNS} FROM records ORDER BY seq"))?;
    let mut records = records.query([])?;
    let mut checkpoints = conn.prepare(
        "SELECT number, seq, hash, at_micros, key_id, signature FROM checkpoints ORDER BY number",
    )?;
    let mut checkpoints = Checkpoints {
        rows: checkpoints.query([])?,
        trusted,
        number: 0,
        seq: 0,
    };
    let mut pending = checkpoints.next()?;
    while let Some(row) = records.next()? {
        let (seq, hash) = match check_record(row, v.head_seq + 1, &v.head_hash)? {
            Ok(found) => found,
            Err(broken) => return Ok(stop(v, broken)),
        };
        v.records += 1;
        v.head_seq = seq;
        v.head_hash = hash;
        while let Some((position, checkpoint)) = pending.take_if(|(p, _)| *p <= seq) {
            let checkpoint = match checkpoint {
                Ok(c) if c.seq == seq && c.hash == hash => c,
                Ok(c) => {
                    let why = Why::CheckpointMismatch;
                    return Ok(stop(
                        v,
                        Broken {
                            seq: position,
                            checkpoint: Some(c.number),
                            why,
                        },
                    ));
                }
                Err(broken) => return Ok(stop(v, broken)),
            };
            v.checkpoints += 1;
            v.signed_seq = checkpoint.seq;
            pending = checkpoints.next()?;
        }
    }
    let broken = match pending {
        None => return Ok(v),
        Some((_, Err(broken))) => broken,
        Some((_, Ok(c))) => Broken {
            seq: v.head_seq + 1,
            checkpoint: Some(c.number),
            why: Why::Truncated {
                head: v.head_seq,
                checkpoint_seq: c.seq,
                at_micros: c.at_micros,
            },
        },
    };
    Ok(stop(v, broken))
}

fn stop(mut v: Verification, broken: Broken) -> Verification {
    v.broken = Some(broken);
    v
}

/// Checks one record row against the chain so far; returns its seq and hash.
fn check_record(
    row: &Row<'_>,
    expected: u64,
    prev: &Hash,
) -> rusqlite::Result<Result<(u64, Hash), Broken>> {
    let broken = |why| {
        Ok(Err(Broken {
            seq: expected,
            checkpoint: None,
            why,
        }))
    };
    let seq: i64 = row.get(0)?;
    match u64::try_from(seq) {
        Ok(seq) if seq == expected => {}
        Ok(next) if next > expected => return broken(Why::Missing { next }),
        _ => return broken(Why::Unexpected { found: seq }),
    }
    macro_rules! column {
        ($i:expr, $name:literal, $read:expr) => {
            match $read(row.get_ref($i)?) {
                Some(value) => value,
                None => return broken(Why::Malformed { column: $name }),
            }
        };
    }
    let fields = Fields {
        kind: column!(1, "kind", text),
        at_micros: column!(2, "at_micros", integer),
        principal: column!(3, "principal", optional_text),
        outcome: column!(4, "outcome", optional_text),
        policy_set: column!(5, "policy_set", optional_text),
        decision_id: column!(6, "decision_id", optional_text),
        body: column!(7, "body", text),
    };
    let stored_prev = column!(8, "prev_hash", hash);
    let stored_hash = column!(9, "hash", hash);
    if chain::record_hash(&stored_prev, expected, &fields) != stored_hash {
        return broken(Why::HashMismatch);
    }
    if stored_prev != *prev {
        return broken(Why::PrevMismatch);
    }
    Ok(Ok((expected, stored_hash)))
}

fn text(v: ValueRef<'_>) -> Option<&[u8]> {
    match v {
        ValueRef::Text(b) => Some(b),
        _ => None,
    }
}

fn optional_text(v: ValueRef<'_>) -> Option<Option<&[u8]>> {
    match v {
        ValueRef::Null => Some(None),
        ValueRef::Text(b) => Some(Some(b)),
        _ => None,
    }
}

fn integer(v: ValueRef<'_>) -> Option<i64> {
    match v {
        ValueRef::Integer(i) => Some(i),
        _ => None,
    }
}

fn hash(v: ValueRef<'_>) -> Option<Hash> {
    match v {
        ValueRef::Blob(b) => Hash::try_from(b).ok(),
        _ => None,
    }
}

/// A checkpoint whose signature, number and order checked out.
struct Checkpoint {
    number: u64,
    seq: u64,
    hash: Hash,
    at_micros: i64,
}

/// Checkpoints in number order, each checked on its own and against the one before.
struct Checkpoints<'a> {
    rows: Rows<'a>,
    trusted: &'a [(String, PublicKey)],
    number: u64,
    seq: u64,
}

impl Checkpoints<'_> {
    /// The next checkpoint with the seq at which its problem (if any) is reported.
    fn next(&mut self) -> rusqlite::Result<Option<(u64, Result<Checkpoint, Broken>)>> {
        let Some(row) = self.rows.next()? else {
            return Ok(None);
        };
        let number: i64 = row.get(0)?;
        let number = u64::try_from(number).unwrap_or(0);
        // Where a checkpoint whose seq cannot be read is reported: right after the last
        // good one, since everything it might cover is in doubt.
        let mut position = self.seq + 1;
        let broken = |position, why| {
            Ok(Some((
                position,
                Err(Broken {
                    seq: position,
                    checkpoint: Some(number),
                    why,
                }),
            )))
        };
        let Some(seq) = integer(row.get_ref(1)?).and_then(|s| u64::try_from(s).ok()) else {
            return broken(position, Why::Malformed { column: "seq" });
        };
        position = seq;
        let (Some(head), Some(at_micros)) = (hash(row.get_ref(2)?), integer(row.get_ref(3)?))
        else {
            return broken(position, Why::Malformed { column: "hash" });
        };
        let (Some(key_id), Some(signature)) = (text(row.get_ref(4)?), blob(row.get_ref(5)?)) else {
            return broken(
                position,
                Why::Malformed {
                    column: "signature",
                },
            );
        };
        let key_id = String::from_utf8_lossy(key_id).into_owned();
        let Some((_, key)) = self.trusted.iter().find(|(id, _)| *id == key_id) else {
            return broken(position, Why::UntrustedKey { key_id });
        };
        let message = chain::checkpoint_message(number, seq, &head, at_micros);
        if key.verify(&message, signature).is_err() {
            return broken(position, Why::BadSignature { key_id });
        }
        if number != self.number + 1 {
            return broken(
                position,
                Why::CheckpointMissing {
                    expected: self.number + 1,
                },
            );
        }
        if seq <= self.seq {
            return broken(
                position,
                Why::CheckpointNotAfter {
                    previous_seq: self.seq,
                },
            );
        }
        self.number = number;
        self.seq = seq;
        Ok(Some((
            seq,
            Ok(Checkpoint {
                number,
                seq,
                hash: head,
                at_micros,
            }),
        )))
    }
}

fn blob(v: ValueRef<'_>) -> Option<&[u8]> {
    match v {
        ValueRef::Blob(b) => Some(b),
        _ => None,
    }
}
