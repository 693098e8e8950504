//! The group-commit writer: durability, back-pressure, failures, restarts, closing.

#![allow(
    clippy::expect_used,
    reason = "test code: a failed expectation is the test failing"
)]

mod common;

use std::time::{Duration, Instant};

use arbiter_audit::{AuditError, AuditLog, Durability, verify};
use common::{Counts, config, decision, fill, key, sql};
use rusqlite::{Connection, OpenFlags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopened_log_continues_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(dir.path()).path;
    for session in 0..2u64 {
        let log = AuditLog::open(config(dir.path()), None).expect("open");
        fill(&log, 100, 4).await;
        let seq = log
            .append(decision(1000), Durability::Durable)
            .await
            .expect("append");
        assert_eq!(seq, Some(101 * (session + 1)));
        log.close().await.expect("close");
    }
    let v = verify(&path, Some(&[key().public()])).expect("verify");
    assert!(v.is_intact(), "{v}");
    assert_eq!((v.records, v.signed_seq), (202, 202));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_append_is_visible_to_another_connection_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(config(dir.path()), None).expect("open");
    let reader =
        Connection::open_with_flags(log.path(), OpenFlags::SQLITE_OPEN_READ_ONLY).expect("reader");
    for i in 0..20 {
        let seq = log
            .append(decision(i), Durability::Durable)
            .await
            .expect("append")
            .expect("seq");
        let count: u64 = reader
            .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
            .expect("count");
        assert_eq!(count, seq);
    }
    log.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_pressure_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.queue_capacity = 4.try_into().expect("nonzero");
    cfg.max_batch = 2.try_into().expect("nonzero");
    let path = cfg.path.clone();
    let counts = Counts::new();
    let log = AuditLog::open(cfg, Some(counts.clone())).expect("open");
    let watcher = {
        let log = log.clone();
        tokio::spawn(async move {
            let mut deepest = 0;
            for _ in 0..200 {
                deepest = deepest.max(log.queue_depth());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            deepest
        })
    };
    let mut tasks = Vec::new();
    for t in 0..32u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                log.append(decision(t * 100 + i), Durability::Async)
                    .await
                    .expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let deepest = watcher.await.expect("watcher");
    log.close().await.expect("close");
    // The writer takes records off the queue a moment before it subtracts them.
    assert!(deepest <= 4 + 2, "queue depth reached {deepest}");
    assert_eq!(log.queue_depth(), 0);
    assert_eq!(counts.committed_records(), 3200);
    assert!(
        counts
            .committed
            .lock()
            .expect("lock")
            .iter()
            .all(|&n| n <= 2)
    );
    let v = verify(&path, None).expect("verify");
    assert!(v.is_intact(), "{v}");
    assert_eq!(v.records, 3200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_failure_is_an_error_and_the_log_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let counts = Counts::new();
    let log = AuditLog::open(config(dir.path()), Some(counts.clone())).expect("open");
    log.append(decision(0), Durability::Durable)
        .await
        .expect("first");
    // Tests may run as root, where file modes do not stop writes; a trigger does.
    let tamper = sql(log.path());
    tamper
        .execute_batch("CREATE TRIGGER full BEFORE INSERT ON records BEGIN SELECT RAISE(FAIL, 'disk full'); END;")
        .expect("trigger");
    let e = log
        .append(decision(1), Durability::Durable)
        .await
        .expect_err("must fail");
    assert!(
        matches!(e, AuditError::WriteFailed { records: 1, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().starts_with("cannot write to the audit log"),
        "{e}"
    );
    assert_eq!(
        log.append(decision(2), Durability::Async)
            .await
            .expect("queued"),
        None
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while counts.failed.lock().expect("lock").len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        counts.failed.lock().expect("lock").len(),
        2,
        "the lost async record is reported"
    );
    tamper
        .execute_batch("DROP TRIGGER full")
        .expect("drop trigger");
    // The failed batches did not advance the chain: the next record is 2.
    let seq = log
        .append(decision(3), Durability::Durable)
        .await
        .expect("recovered");
    assert_eq!(seq, Some(2));
    log.close().await.expect("close");
    let v = verify(log.path(), None).expect("verify");
    assert!(v.is_intact(), "{v}");
    assert_eq!(v.records, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_after_close_fail_and_closing_twice_is_harmless() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(config(dir.path()), None).expect("open");
    log.append(decision(0), Durability::Async)
        .await
        .expect("append");
    log.close().await.expect("close");
    for durability in [Durability::Durable, Durability::Async] {
        let e = log
            .append(decision(1), durability)
            .await
            .expect_err("closed");
        assert!(matches!(e, AuditError::Closed), "{e:?}");
    }
    log.close().await.expect("second close");
    assert_eq!(verify(log.path(), None).expect("verify").records, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_head_is_checkpointed_without_closing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.checkpoint_every = Duration::from_millis(50);
    let log = AuditLog::open(cfg, None).expect("open");
    for i in 0..3 {
        log.append(decision(i), Durability::Durable)
            .await
            .expect("append");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut v = verify(log.path(), None).expect("verify");
    while v.signed_seq < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        v = verify(log.path(), None).expect("verify");
    }
    assert_eq!(v.signed_seq, 3, "{v}");
    log.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_still_signs_the_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.checkpoint_every = Duration::from_secs(3600);
    let path = cfg.path.clone();
    let log = AuditLog::open(cfg, None).expect("open");
    fill(&log, 50, 2).await;
    drop(log);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut v = verify(&path, None).expect("verify");
    while v.signed_seq < 50 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        v = verify(&path, None).expect("verify");
    }
    assert!(v.is_intact() && v.signed_seq == 50, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_interval_gathers_records_into_one_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    // Far longer than spawning the appenders below takes.
    cfg.min_commit_interval = Duration::from_millis(300);
    let counts = Counts::new();
    let log = AuditLog::open(cfg, Some(counts.clone())).expect("open");
    log.append(decision(0), Durability::Durable)
        .await
        .expect("first");
    let mut tasks = Vec::new();
    for i in 1..=10 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            log.append(decision(i), Durability::Durable).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("append");
    }
    log.close().await.expect("close");
    assert_eq!(*counts.committed.lock().expect("lock"), vec![1, 10]);
}

/// Async records arriving a millisecond apart: without lingering the writer would sync
/// each on its own (it is idle between them); with it they share a few batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_records_are_gathered_into_few_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.async_linger = Duration::from_millis(500);
    let counts = Counts::new();
    let log = AuditLog::open(cfg, Some(counts.clone())).expect("open");
    for i in 0..40 {
        log.append(decision(i), Durability::Async)
            .await
            .expect("append");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    log.close().await.expect("close");
    let batches = counts.committed.lock().expect("lock").clone();
    assert_eq!(batches.iter().sum::<usize>(), 40);
    assert!(batches.len() <= 3, "40 async records took {batches:?}");
}

/// A durable append does not wait out the async linger, and neither does closing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_appends_and_close_cut_the_async_linger_short() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    // Far longer than the test's patience below: only a wake-up gets past it.
    cfg.async_linger = Duration::from_secs(60);
    let path = cfg.path.clone();
    let log = AuditLog::open(cfg, None).expect("open");
    let patience = Duration::from_secs(20);
    for round in 0..3 {
        log.append(decision(2 * round), Durability::Async)
            .await
            .expect("append");
        let seq = tokio::time::timeout(
            patience,
            log.append(decision(2 * round + 1), Durability::Durable),
        )
        .await
        .expect("the durable append woke the lingering writer")
        .expect("append");
        assert_eq!(seq, Some(2 * round + 2));
    }
    log.append(decision(6), Durability::Async)
        .await
        .expect("append");
    tokio::time::timeout(patience, log.close())
        .await
        .expect("close woke the lingering writer")
        .expect("close");
    let v = verify(&path, Some(&[key().public()])).expect("verify");
    assert!(v.is_intact(), "{v}");
    assert_eq!(v.records, 7);
}
