//! Queries: every filter, alone and combined, against records with known contents.

#![allow(
    clippy::expect_used,
    reason = "test code: a failed expectation is the test failing"
)]

mod common;

use arbiter_audit::{AuditLog, Durability, Filter, Kind, Record, StoredRecord, query};
use common::{BASE_MICROS, config, decision};

const N: u64 = 60;

/// A closed log of records `decision(0..N)`, appended in order so record `i` has seq `i + 1`.
async fn log_in_order() -> (tempfile::TempDir, AuditLog) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(config(dir.path()), None).expect("open");
    for i in 0..N {
        let seq = log
            .append(decision(i), Durability::Durable)
            .await
            .expect("append");
        assert_eq!(seq, Some(i + 1));
    }
    (dir, log)
}

fn seqs(found: &[StoredRecord]) -> Vec<u64> {
    found.iter().map(|r| r.seq).collect()
}

/// The seqs of the records `keep` selects, computed from the inputs rather than the log.
fn expected(keep: impl Fn(&Record) -> bool) -> Vec<u64> {
    (0..N)
        .filter(|&i| keep(&decision(i)))
        .map(|i| i + 1)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_filter_selects_its_records() {
    let (_dir, log) = log_in_order().await;
    let path = log.path().to_path_buf();
    let run = |filter: Filter| seqs(&query(&path, &filter).expect("query"));
    let principal = |r: &Record| r.principal.as_deref() == Some("user-3");
    let cases: Vec<(Filter, Vec<u64>)> = vec![
        (Filter::default(), expected(|_| true)),
        (
            Filter {
                principal: Some("user-3".into()),
                ..Filter::default()
            },
            expected(principal),
        ),
        (
            Filter {
                outcome: Some("deny".into()),
                ..Filter::default()
            },
            expected(|r| r.outcome.as_deref() == Some("deny")),
        ),
        (
            Filter {
                policy_set: Some("infra".into()),
                ..Filter::default()
            },
            expected(|r| r.policy_set.as_deref() == Some("infra")),
        ),
        (
            Filter {
                kind: Some(Kind::Admin),
                ..Filter::default()
            },
            expected(|r| r.kind == Kind::Admin),
        ),
        (
            Filter {
                decision_id: Some("d-17".into()),
                ..Filter::default()
            },
            vec![18],
        ),
        (
            Filter {
                since_micros: Some(BASE_MICROS + 10_000),
                until_micros: Some(BASE_MICROS + 20_000),
                ..Filter::default()
            },
            (11..=20).collect(),
        ),
        (
            Filter {
                after_seq: Some(55),
                ..Filter::default()
            },
            (56..=60).collect(),
        ),
        (
            Filter {
                after_seq: Some(u64::MAX),
                ..Filter::default()
            },
            vec![],
        ),
        (
            Filter {
                limit: 3,
                ..Filter::default()
            },
            vec![1, 2, 3],
        ),
        (
            Filter {
                limit: 0,
                ..Filter::default()
            },
            vec![],
        ),
        (
            Filter {
                limit: 3,
                newest_first: true,
                ..Filter::default()
            },
            vec![60, 59, 58],
        ),
        (
            Filter {
                principal: Some("user-3".into()),
                outcome: Some("allow".into()),
                after_seq: Some(10),
                ..Filter::default()
            },
            expected(|r| principal(r) && r.outcome.as_deref() == Some("allow"))
                .into_iter()
                .filter(|&s| s > 10)
                .collect(),
        ),
    ];
    for (filter, want) in cases {
        assert!(
            !want.is_empty() || filter.limit == 0 || filter.after_seq.is_some(),
            "{filter:?}"
        );
        assert_eq!(run(filter.clone()), want, "{filter:?}");
    }
    log.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_read_back_as_written_and_linked() {
    let (_dir, log) = log_in_order().await;
    // Through the handle, while the writer is still running.
    let found = log.query(&Filter::default()).expect("query");
    assert_eq!(found.len(), N as usize);
    for (i, stored) in found.iter().enumerate() {
        assert_eq!(stored.record, decision(i as u64));
    }
    assert_eq!(found[0].prev_hash, [0; 32]);
    for pair in found.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    log.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_with_after_seq_sees_each_record_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(config(dir.path()), None).expect("open");
    let mut last = 0;
    let mut seen = Vec::new();
    for round in 0..5u64 {
        for i in 0..7 {
            log.append(decision(round * 7 + i), Durability::Durable)
                .await
                .expect("append");
        }
        // Page through what is new, four at a time, as `tail -f` would.
        loop {
            let filter = Filter {
                after_seq: Some(last),
                limit: 4,
                ..Filter::default()
            };
            let page = log.query(&filter).expect("query");
            let Some(newest) = page.last() else { break };
            last = newest.seq;
            seen.extend(seqs(&page));
        }
    }
    assert_eq!(seen, (1..=35).collect::<Vec<_>>());
    log.close().await.expect("close");
}
