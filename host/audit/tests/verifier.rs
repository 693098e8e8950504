//! The chain verifier fed from anywhere (here, the log's own records and checkpoints
//! read back page by page, as the shared database serves them) agrees with verifying
//! the file, and catches what the file's verification catches.

#![allow(
    clippy::expect_used,
    reason = "test code: a failed expectation is the test failing"
)]

mod common;

use std::time::Duration;

use arbiter_audit::{
    AuditLog, ChainVerifier, Filter, SignedCheckpoint, StoredRecord, Verification, Why,
    checkpoints, query, verify,
};
use common::{config, fill, key, other_key};

/// A closed log of `n` records with a checkpoint every few milliseconds, so it has many.
async fn log_with_checkpoints(n: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.checkpoint_every = Duration::from_millis(2);
    let path = cfg.path.clone();
    let log = AuditLog::open(cfg, None).expect("open");
    for chunk in 0..10 {
        fill(&log, n / 10, 4).await;
        tokio::time::sleep(Duration::from_millis(3 + chunk % 2)).await;
    }
    log.close().await.expect("close");
    (dir, path)
}

/// Feeds `records` and `checkpoints` in pages of 7, the way a caller reading pages does.
fn feed(
    trusted: Vec<arbiter_keys::PublicKey>,
    records: &[StoredRecord],
    checkpoints: &[SignedCheckpoint],
) -> Verification {
    let mut verifier = ChainVerifier::new(trusted);
    let mut next_checkpoint = checkpoints.iter();
    for page in records.chunks(7) {
        for r in page {
            while verifier.wants_checkpoints() {
                match next_checkpoint.next() {
                    Some(c) => verifier.checkpoint(c),
                    None => break,
                }
            }
            if !verifier.record(r) {
                return verifier.finish();
            }
        }
    }
    if let Some(c) = next_checkpoint.next() {
        verifier.checkpoint(c);
    }
    verifier.finish()
}

fn all(path: &std::path::Path) -> (Vec<StoredRecord>, Vec<SignedCheckpoint>) {
    let records = query(
        path,
        &Filter {
            limit: usize::MAX,
            ..Filter::default()
        },
    )
    .expect("records");
    (
        records,
        checkpoints(path, 0, usize::MAX).expect("checkpoints"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fed_chain_verifies_like_the_file() {
    let (_dir, path) = log_with_checkpoints(400).await;
    let (records, cps) = all(&path);
    assert!(cps.len() > 2, "{} checkpoints", cps.len());
    let public = key().public();
    assert!(
        cps.iter()
            .all(|c| c.public_key.as_deref() == Some(&*public.to_pem()))
    );
    let fed = feed(vec![public], &records, &cps);
    assert!(fed.is_intact(), "{fed}");
    assert_eq!(fed, verify(&path, Some(&[public])).expect("verify"));
    // From a later page: only what comes after.
    let later = checkpoints(&path, 2, 1).expect("page");
    assert_eq!(later, cps[2..3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fed_chain_catches_truncation_edits_and_foreign_keys() {
    let (_dir, path) = log_with_checkpoints(400).await;
    let (records, cps) = all(&path);
    let public = key().public();

    // Records cut off the end, the checkpoints kept.
    let v = feed(vec![public], &records[..300], &cps);
    let broken = v.broken.expect("truncated");
    assert!(
        matches!(broken.why, Why::Truncated { head: 300, .. }),
        "{broken}"
    );

    // One record edited.
    let mut edited = records.clone();
    edited[41].record.outcome = Some("allow-all".into());
    let broken = feed(vec![public], &edited, &cps).broken.expect("edited");
    assert_eq!((broken.seq, broken.why), (42, Why::HashMismatch));

    // One record missing.
    let mut gap = records.clone();
    gap.remove(99);
    let broken = feed(vec![public], &gap, &cps).broken.expect("gap");
    assert_eq!((broken.seq, broken.why), (100, Why::Missing { next: 101 }));

    // Signed by a key that is not trusted.
    let broken = feed(vec![other_key().public()], &records, &cps)
        .broken
        .expect("untrusted");
    assert!(matches!(broken.why, Why::UntrustedKey { .. }), "{broken}");

    // A checkpoint left out.
    let mut fewer = cps.clone();
    fewer.remove(1);
    let broken = feed(vec![public], &records, &fewer)
        .broken
        .expect("missing");
    assert_eq!(broken.why, Why::CheckpointMissing { expected: 2 });
}
