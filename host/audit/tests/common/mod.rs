//! Fixtures shared by the integration tests: a fixed key, varied records, logs filled
//! by concurrent tasks, and raw SQL access for tampering.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbiter_audit::{AuditConfig, AuditError, AuditLog, Durability, Kind, Observer, Record};
use arbiter_keys::SecretKey;
use serde_json::json;

pub(crate) const BASE_MICROS: i64 = 1_700_000_000_000_000;

pub(crate) fn key() -> SecretKey {
    SecretKey::from_seed(&[7; 32])
}

pub(crate) fn other_key() -> SecretKey {
    SecretKey::from_seed(&[9; 32])
}

pub(crate) fn config(dir: &Path) -> AuditConfig {
    AuditConfig::new(dir.join("audit.db"), key())
}

/// Record `i`: principals, outcomes and sets cycle so filters have something to pick.
pub(crate) fn decision(i: u64) -> Record {
    let outcomes = ["allow", "deny", "require-approval"];
    Record {
        kind: if i % 10 == 9 {
            Kind::Admin
        } else {
            Kind::Decision
        },
        at_micros: BASE_MICROS + i64::try_from(i).expect("small") * 1000,
        principal: Some(format!("user-{}", i % 5)),
        outcome: Some(outcomes[(i % 3) as usize].to_owned()),
        policy_set: Some(
            if i.is_multiple_of(2) {
                "payments"
            } else {
                "infra"
            }
            .to_owned(),
        ),
        decision_id: Some(format!("d-{i}")),
        body: serde_json::value::to_raw_value(
            &json!({ "i": i, "request": { "action": "read", "resource": format!("doc/{i}") } }),
        )
        .expect("json"),
    }
}

/// Appends records `0..n` from `tasks` concurrent tasks, every other task durably.
pub(crate) async fn fill(log: &AuditLog, n: u64, tasks: u64) {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            let durability = if t.is_multiple_of(2) {
                Durability::Durable
            } else {
                Durability::Async
            };
            for i in (t..n).step_by(tasks as usize) {
                log.append(decision(i), durability).await.expect("append");
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
}

/// A closed log of `n` records written by 8 tasks.
pub(crate) async fn closed_log(n: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let path = cfg.path.clone();
    let log = AuditLog::open(cfg, None).expect("open");
    fill(&log, n, 8).await;
    log.close().await.expect("close");
    (dir, path)
}

/// A read-write connection for tampering.
pub(crate) fn sql(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("open for tampering")
}

/// Counts what the writer reports.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub committed: Mutex<Vec<usize>>,
    pub failed: Mutex<Vec<(usize, String)>>,
}

impl Counts {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub(crate) fn committed_records(&self) -> usize {
        self.committed.lock().expect("lock").iter().sum()
    }
}

impl Observer for Counts {
    fn committed(&self, records: usize, _latency: Duration) {
        self.committed.lock().expect("lock").push(records);
    }

    fn failed(&self, records: usize, error: &AuditError) {
        self.failed
            .lock()
            .expect("lock")
            .push((records, error.to_string()));
    }
}
