//! The bytes that are hashed and signed: the one definition the writer and the verifier
//! share, so they cannot drift apart.

use sha2::{Digest as _, Sha256};

/// A SHA-256 hash linking records.
pub type Hash = [u8; 32];

/// The previous hash of record 1.
pub(crate) const GENESIS: Hash = [0; 32];

/// Separates record hashes from any other SHA-256 use of the same bytes; the version
/// lets a future format change be told apart from tampering.
const RECORD_DOMAIN: &[u8] = b"arbiter-audit-v1";

/// Separates checkpoint signatures from everything else the same key signs
/// (credentials, bundles).
const CHECKPOINT_DOMAIN: &[u8] = b"arbiter-audit-checkpoint-v1";

/// The hashed columns of one record, as raw bytes: the writer borrows them from the
/// record it is about to insert, the verifier from the row it read, so a column whose
/// text is not even valid UTF-8 is still hashed exactly as stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a> {
    pub kind: &'a [u8],
    pub at_micros: i64,
    pub principal: Option<&'a [u8]>,
    pub outcome: Option<&'a [u8]>,
    pub policy_set: Option<&'a [u8]>,
    pub decision_id: Option<&'a [u8]>,
    pub body: &'a [u8],
}

/// `SHA-256(domain || prev || seq || fields)`, every variable-length field prefixed by
/// its length and every optional one by a presence byte, so no two different records
/// share an encoding (`NULL` and `''` differ, bytes cannot slide between fields).
pub(crate) fn record_hash(prev: &Hash, seq: u64, fields: &Fields<'_>) -> Hash {
    let mut h = Sha256::new();
    h.update(RECORD_DOMAIN);
    h.update(prev);
    h.update(seq.to_be_bytes());
    bytes(&mut h, fields.kind);
    h.update(fields.at_micros.to_be_bytes());
    optional(&mut h, fields.principal);
    optional(&mut h, fields.outcome);
    optional(&mut h, fields.policy_set);
    optional(&mut h, fields.decision_id);
    bytes(&mut h, fields.body);
    h.finalize().into()
}

fn bytes(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_be_bytes());
    h.update(b);
}

fn optional(h: &mut Sha256, b: Option<&[u8]>) {
    match b {
        None => h.update([0]),
        Some(b) => {
            h.update([1]);
            bytes(h, b);
        }
    }
}

/// What a checkpoint signs: its own number (so deleting or reordering checkpoints is
/// seen), the chain head it covers and when it was made.
pub(crate) fn checkpoint_message(number: u64, seq: u64, hash: &Hash, at_micros: i64) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 8 + 8 + 32 + 8);
    m.extend_from_slice(CHECKPOINT_DOMAIN);
    m.extend_from_slice(&number.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m.extend_from_slice(&at_micros.to_be_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(principal: Option<&'a [u8]>, body: &'a [u8]) -> Fields<'a> {
        Fields {
            kind: b"decision",
            at_micros: 1,
            principal,
            outcome: None,
            policy_set: None,
            decision_id: None,
            body,
        }
    }

    #[test]
    fn null_and_empty_hash_differently() {
        let a = record_hash(&GENESIS, 1, &fields(None, b"{}"));
        let b = record_hash(&GENESIS, 1, &fields(Some(b""), b"{}"));
        assert_ne!(a, b);
    }

    #[test]
    fn seq_and_prev_are_bound() {
        let f = fields(Some(b"alice"), b"{}");
        let a = record_hash(&GENESIS, 1, &f);
        assert_ne!(a, record_hash(&GENESIS, 2, &f));
        assert_ne!(a, record_hash(&[1; 32], 1, &f));
    }

    #[test]
    fn bytes_cannot_move_between_fields() {
        let a = record_hash(&GENESIS, 1, &fields(Some(b"ab"), b"c"));
        let b = record_hash(&GENESIS, 1, &fields(Some(b"a"), b"bc"));
        assert_ne!(a, b);
    }
}
