//! Tampering with a closed log, one way per test, each on a fresh log: verification must
//! name the first broken record and why.

#![allow(
    clippy::expect_used,
    reason = "test code: a failed expectation is the test failing"
)]

mod common;

use arbiter_audit::{AuditConfig, AuditLog, Durability, Why, verify};
use common::{closed_log, decision, key, other_key, sql};
use sha2::{Digest as _, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrently_appended_chain_verifies() {
    let (_dir, path) = closed_log(500).await;
    for keys in [None, Some(&[key().public()][..])] {
        let v = verify(&path, keys).expect("verify");
        assert!(v.is_intact(), "{v}");
        assert_eq!((v.records, v.head_seq, v.signed_seq), (500, 500, 500));
        assert!(v.checkpoints >= 1);
        assert!(v.to_string().starts_with("OK: 500 records, "), "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_body_byte_is_caught_at_its_seq() {
    let (_dir, path) = closed_log(500).await;
    let changed = sql(&path)
        .execute(
            "UPDATE records SET body = replace(body, '\"read\"', '\"reae\"') WHERE seq = 42",
            [],
        )
        .expect("update");
    assert_eq!(changed, 1);
    let v = verify(&path, None).expect("verify");
    let broken = v.broken.clone().expect("broken");
    assert_eq!((broken.seq, broken.why.clone()), (42, Why::HashMismatch));
    assert_eq!(v.records, 41);
    assert_eq!(
        v.to_string(),
        "BROKEN at record 42: hash does not match its contents (edited?)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_principal_is_caught_at_its_seq() {
    let (_dir, path) = closed_log(500).await;
    sql(&path)
        .execute(
            "UPDATE records SET principal = 'mallory' WHERE seq = 137",
            [],
        )
        .expect("update");
    let broken = verify(&path, None).expect("verify").broken.expect("broken");
    assert_eq!((broken.seq, broken.why), (137, Why::HashMismatch));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nulled_outcome_is_caught_at_its_seq() {
    let (_dir, path) = closed_log(100).await;
    sql(&path)
        .execute("UPDATE records SET outcome = NULL WHERE seq = 3", [])
        .expect("update");
    let broken = verify(&path, None).expect("verify").broken.expect("broken");
    assert_eq!((broken.seq, broken.why), (3, Why::HashMismatch));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_record_is_caught_where_it_was() {
    let (_dir, path) = closed_log(500).await;
    sql(&path)
        .execute("DELETE FROM records WHERE seq = 250", [])
        .expect("delete");
    let broken = verify(&path, None).expect("verify").broken.expect("broken");
    assert_eq!((broken.seq, broken.why), (250, Why::Missing { next: 251 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_bodies_are_caught_at_the_earlier_record() {
    let (_dir, path) = closed_log(500).await;
    sql(&path)
        .execute_batch(
            "UPDATE records SET body = (SELECT body FROM records WHERE seq = 20) || ' ' WHERE seq = 10;
             UPDATE records SET body = (SELECT rtrim(body) FROM records WHERE seq = 10) WHERE seq = 20;",
        )
        .expect("swap");
    let broken = verify(&path, None).expect("verify").broken.expect("broken");
    assert_eq!((broken.seq, broken.why), (10, Why::HashMismatch));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_seqs_are_caught_at_the_earlier_record() {
    let (_dir, path) = closed_log(500).await;
    sql(&path)
        .execute_batch(
            "UPDATE records SET seq = -1 WHERE seq = 10;
             UPDATE records SET seq = 10 WHERE seq = 20;
             UPDATE records SET seq = 20 WHERE seq = -1;",
        )
        .expect("swap");
    let broken = verify(&path, None).expect("verify").broken.expect("broken");
    assert_eq!((broken.seq, broken.why), (10, Why::HashMismatch));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_tail_is_caught_by_the_closing_checkpoint() {
    let (_dir, path) = closed_log(500).await;
    let last: u64 = sql(&path)
        .query_row("SELECT max(number) FROM checkpoints", [], |r| r.get(0))
        .expect("checkpoints");
    sql(&path)
        .execute("DELETE FROM records WHERE seq > 490", [])
        .expect("truncate");
    let v = verify(&path, None).expect("verify");
    let broken = v.broken.clone().expect("broken");
    assert_eq!(broken.seq, 491);
    assert_eq!(broken.checkpoint, Some(last));
    assert!(
        matches!(
            broken.why,
            Why::Truncated {
                head: 490,
                checkpoint_seq: 500,
                ..
            }
        ),
        "{broken:?}"
    );
    assert!(v.to_string().contains("log ends at seq 490"), "{v}");
    assert!(v.to_string().ends_with("covers seq 500: truncated"), "{v}");
}

/// The record hash exactly as the crate docs define it, written independently here.
fn documented_hash(prev: &[u8], seq: u64, row: &rusqlite::Row<'_>) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"arbiter-audit-v1");
    h.update(prev);
    h.update(seq.to_be_bytes());
    let field = |h: &mut Sha256, b: &[u8]| {
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    };
    field(
        &mut h,
        row.get::<_, String>("kind").expect("kind").as_bytes(),
    );
    h.update(row.get::<_, i64>("at_micros").expect("at").to_be_bytes());
    for column in ["principal", "outcome", "policy_set", "decision_id"] {
        match row.get::<_, Option<String>>(column).expect("column") {
            None => h.update([0]),
            Some(s) => {
                h.update([1]);
                field(&mut h, s.as_bytes());
            }
        }
    }
    field(
        &mut h,
        row.get::<_, String>("body").expect("body").as_bytes(),
    );
    h.finalize().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_chain_is_caught_by_a_signed_checkpoint() {
    let (_dir, path) = closed_log(500).await;
    let conn = sql(&path);
    conn.execute(
        "UPDATE records SET outcome = 'forged-allow' WHERE seq = 200",
        [],
    )
    .expect("edit");
    // Recompute every hash from 200 on, as someone who knows the format but not the key would.
    let mut prev: Vec<u8> = conn
        .query_row("SELECT hash FROM records WHERE seq = 199", [], |r| r.get(0))
        .expect("prev");
    for seq in 200..=500u64 {
        let hash = conn
            .query_row("SELECT * FROM records WHERE seq = ?1", [seq], |r| {
                Ok(documented_hash(&prev, seq, r))
            })
            .expect("row");
        conn.execute(
            "UPDATE records SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            (&prev, &hash, seq),
        )
        .expect("rewrite");
        prev = hash;
    }
    let broken = verify(&path, None).expect("verify").broken.expect("broken");
    // Every record now checks out on its own (so the documented format is the real one);
    // only the checkpoint still remembers the old head.
    assert_eq!(broken.why, Why::CheckpointMismatch, "{broken}");
    assert!(broken.seq >= 200 && broken.checkpoint.is_some(), "{broken}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_checkpoint_signature_is_caught() {
    let (_dir, path) = closed_log(100).await;
    let conn = sql(&path);
    let (number, mut signature): (u64, Vec<u8>) = conn
        .query_row(
            "SELECT number, signature FROM checkpoints ORDER BY number DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("checkpoint");
    signature[10] ^= 1;
    conn.execute(
        "UPDATE checkpoints SET signature = ?1 WHERE number = ?2",
        (&signature, number),
    )
    .expect("update");
    let broken = verify(&path, None).expect("verify").broken.expect("broken");
    assert_eq!(broken.checkpoint, Some(number));
    assert_eq!(broken.seq, 100);
    assert!(matches!(broken.why, Why::BadSignature { .. }), "{broken}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_checkpoint_head_is_caught() {
    let (_dir, path) = closed_log(100).await;
    sql(&path)
        .execute(
            "UPDATE checkpoints SET seq = 90 WHERE number = (SELECT max(number) FROM checkpoints)",
            [],
        )
        .expect("update");
    let broken = verify(&path, None).expect("verify").broken.expect("broken");
    assert!(matches!(broken.why, Why::BadSignature { .. }), "{broken}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_checkpoint_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = AuditConfig::new(dir.path().join("audit.db"), key());
    // A checkpoint after every batch, and one-record batches: one checkpoint per record.
    cfg.checkpoint_every = std::time::Duration::ZERO;
    let path = cfg.path.clone();
    let log = AuditLog::open(cfg, None).expect("open");
    for i in 0..10 {
        log.append(decision(i), Durability::Durable)
            .await
            .expect("append");
    }
    log.close().await.expect("close");
    assert_eq!(verify(&path, None).expect("verify").checkpoints, 10);
    sql(&path)
        .execute("DELETE FROM checkpoints WHERE number = 5", [])
        .expect("delete");
    let broken = verify(&path, None).expect("verify").broken.expect("broken");
    assert_eq!(broken.checkpoint, Some(6));
    assert_eq!(broken.why, Why::CheckpointMissing { expected: 5 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_with_another_key_fails() {
    let (_dir, path) = closed_log(50).await;
    let other = other_key().public();
    let broken = verify(&path, Some(&[other]))
        .expect("verify")
        .broken
        .expect("broken");
    assert_eq!(
        broken.why,
        Why::UntrustedKey {
            key_id: key().public().id()
        }
    );
    // Claiming the other key's id does not help: the signature is still the real key's.
    sql(&path)
        .execute("UPDATE checkpoints SET key_id = ?1", [other.id()])
        .expect("update");
    let broken = verify(&path, Some(&[other]))
        .expect("verify")
        .broken
        .expect("broken");
    assert_eq!(broken.why, Why::BadSignature { key_id: other.id() });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_stored_key_is_not_trusted_by_the_external_key() {
    let (_dir, path) = closed_log(50).await;
    // Someone who can write the file swaps the recorded key for their own and re-signs;
    // only the externally kept key notices. Here they only swap the key: even the
    // self-check then fails, because the old signatures name a key no longer recorded.
    sql(&path)
        .execute(
            "UPDATE keys SET public_key = ?1",
            [other_key().public().to_pem()],
        )
        .expect("update");
    assert!(verify(&path, None).expect("verify").broken.is_some());
    assert!(
        verify(&path, Some(&[key().public()]))
            .expect("verify")
            .is_intact()
    );
}
