//! Offline verification: recompute every hash from the stored columns, follow the links,
//! and check every checkpoint's signature and the head it names.

use std::path::Path;

use arbiter_keys::PublicKey;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};

use crate::chain::{Fields, GENESIS, Hash};
use crate::error::AuditError;
use crate::query::COLUMNS;
use crate::report::{Broken, Verification, Why};
use crate::schema;
use crate::verifier::ChainVerifier;

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
    walk(&tx, trusted).map_err(AuditError::db(path))
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
fn walk(conn: &Connection, trusted: Vec<(String, PublicKey)>) -> rusqlite::Result<Verification> {
    let mut verifier = ChainVerifier::with_ids(trusted);
    let mut records = conn.prepare(&format!("SELECT {COLUMNS} FROM records ORDER BY seq"))?;
    let mut records = records.query([])?;
    let mut checkpoints = conn.prepare(
        "SELECT number, seq, hash, at_micros, key_id, signature FROM checkpoints ORDER BY number",
    )?;
    let mut checkpoints = checkpoints.query([])?;
    let mut more_checkpoints = true;
    while let Some(row) = records.next()? {
        while more_checkpoints && verifier.wants_checkpoints() {
            match checkpoints.next()? {
                Some(c) => feed_checkpoint(&mut verifier, c)?,
                None => more_checkpoints = false,
            }
        }
        if !feed_record(&mut verifier, row)? {
            break;
        }
    }
    // What is left over covers records that are not there; the first one says so.
    if more_checkpoints
        && !verifier.is_broken()
        && let Some(c) = checkpoints.next()?
    {
        feed_checkpoint(&mut verifier, c)?;
    }
    Ok(verifier.finish())
}

/// Feeds one record row; `false` once the chain is broken.
fn feed_record(verifier: &mut ChainVerifier, row: &Row<'_>) -> rusqlite::Result<bool> {
    let expected = verifier.expected();
    macro_rules! column {
        ($i:expr, $name:literal, $read:expr) => {
            match $read(row.get_ref($i)?) {
                Some(value) => value,
                None => {
                    verifier.fail(Broken {
                        seq: expected,
                        checkpoint: None,
                        why: Why::Malformed { column: $name },
                    });
                    return Ok(false);
                }
            }
        };
    }
    let seq: i64 = row.get(0)?;
    // A seq out of place is reported as such before any column is looked at.
    if u64::try_from(seq).ok() != Some(expected) {
        return Ok(verifier.record_fields(seq, &EMPTY, &GENESIS, &GENESIS));
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
    Ok(verifier.record_fields(seq, &fields, &stored_prev, &stored_hash))
}

/// Fields for a record whose seq is out of place (never hashed).
const EMPTY: Fields<'static> = Fields {
    kind: b"",
    at_micros: 0,
    principal: None,
    outcome: None,
    policy_set: None,
    decision_id: None,
    body: b"",
};

/// Feeds one checkpoint row.
fn feed_checkpoint(verifier: &mut ChainVerifier, row: &Row<'_>) -> rusqlite::Result<()> {
    let number: i64 = row.get(0)?;
    let number = u64::try_from(number).unwrap_or(0);
    let Some(seq) = integer(row.get_ref(1)?).and_then(|s| u64::try_from(s).ok()) else {
        verifier.malformed_checkpoint(number, "seq", None);
        return Ok(());
    };
    let (Some(head), Some(at_micros)) = (hash(row.get_ref(2)?), integer(row.get_ref(3)?)) else {
        verifier.malformed_checkpoint(number, "hash", Some(seq));
        return Ok(());
    };
    let (Some(key_id), Some(signature)) = (text(row.get_ref(4)?), blob(row.get_ref(5)?)) else {
        verifier.malformed_checkpoint(number, "signature", Some(seq));
        return Ok(());
    };
    let key_id = String::from_utf8_lossy(key_id);
    verifier.checkpoint_columns(number, seq, head, at_micros, &key_id, signature);
    Ok(())
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

fn blob(v: ValueRef<'_>) -> Option<&[u8]> {
    match v {
        ValueRef::Blob(b) => Some(b),
        _ => None,
    }
}
