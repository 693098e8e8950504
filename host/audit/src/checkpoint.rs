//! Signed checkpoints read back from a log, with the public key that signed each: what
//! a replica ships to the shared database beside its records, so that the copy there
//! can be verified on its own.

use std::path::Path;

use crate::chain::Hash;
use crate::error::AuditError;
use crate::schema;

/// One signed chain head, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// 1, 2, 3, ... with no gaps.
    pub number: u64,
    /// The seq of the head it covers.
    pub seq: u64,
    /// The hash of that record.
    pub hash: Hash,
    /// When it was signed (unix microseconds).
    pub at_micros: i64,
    /// The signing key's id.
    pub key_id: String,
    /// The Ed25519 signature over the checkpoint message.
    pub signature: Vec<u8>,
    /// The public half of the signing key (PEM) as the log recorded it, if it did.
    pub public_key: Option<String>,
}

/// Up to `limit` checkpoints of the log at `path` numbered after `after_number`, in
/// number order. Opens the file read-only, so it works beside a running server.
pub fn checkpoints(
    path: &Path,
    after_number: u64,
    limit: usize,
) -> Result<Vec<SignedCheckpoint>, AuditError> {
    let conn = schema::open_for_reading(path)?;
    let mut stmt = conn
        .prepare(
            "SELECT c.number, c.seq, c.hash, c.at_micros, c.key_id, c.signature, k.public_key
             FROM checkpoints c LEFT JOIN keys k ON k.key_id = c.key_id
             WHERE c.number > ?1 ORDER BY c.number LIMIT ?2",
        )
        .map_err(AuditError::db(path))?;
    let after = i64::try_from(after_number).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt.query((after, limit)).map_err(AuditError::db(path))?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(AuditError::db(path))? {
        let seq: u64 = row.get(1).map_err(AuditError::db(path))?;
        let corrupt = |column| AuditError::Corrupt {
            path: path.to_path_buf(),
            seq,
            column,
        };
        let hash: Vec<u8> = row.get(2).map_err(|_| corrupt("checkpoint hash"))?;
        found.push(SignedCheckpoint {
            number: row.get(0).map_err(AuditError::db(path))?,
            seq,
            hash: Hash::try_from(hash.as_slice()).map_err(|_| corrupt("checkpoint hash"))?,
            at_micros: row.get(3).map_err(|_| corrupt("checkpoint at_micros"))?,
            key_id: row.get(4).map_err(|_| corrupt("checkpoint key_id"))?,
            signature: row.get(5).map_err(|_| corrupt("checkpoint signature"))?,
            public_key: row.get(6).map_err(|_| corrupt("key public_key"))?,
        });
    }
    Ok(found)
}
