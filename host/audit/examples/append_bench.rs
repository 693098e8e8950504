//! Appends records from concurrent tasks and reports throughput and batch sizes.
//!
//! ```text
//! cargo run --release -p arbiter-audit --example append_bench -- \
//!     [records] [appenders] [durable|async] [rate] [dir]
//! ```
//!
//! Defaults: 200000 records, 16 appenders, durable, as fast as possible (`rate` 0; else
//! records per second in total, to measure the CPU cost at a given load with `time`),
//! a fresh directory under the current one (not `/tmp`, which may be memory-backed and
//! make fsync free).

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arbiter_audit::{AuditConfig, AuditLog, Durability, Kind, Observer, Record, now_micros};
use arbiter_keys::SecretKey;
use serde_json::json;

/// Batch statistics from the writer.
#[derive(Debug, Default)]
struct Batches {
    count: AtomicU64,
    records: AtomicU64,
    largest: AtomicU64,
    micros: AtomicU64,
    slowest_micros: AtomicU64,
}

impl Observer for Batches {
    fn committed(&self, records: usize, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records as u64, Ordering::Relaxed);
        self.largest.fetch_max(records as u64, Ordering::Relaxed);
        self.micros.fetch_add(micros, Ordering::Relaxed);
        self.slowest_micros.fetch_max(micros, Ordering::Relaxed);
    }
}

/// A decision record about the size the server writes (~600 bytes of body).
fn record(i: u64) -> Record {
    Record {
        kind: Kind::Decision,
        at_micros: now_micros(),
        principal: Some(format!(
            "spiffe://example.org/ns/prod/sa/service-{}",
            i % 97
        )),
        outcome: Some(if i.is_multiple_of(7) { "deny" } else { "allow" }.to_owned()),
        policy_set: Some("payments".to_owned()),
        decision_id: Some(format!("01890f3e-7c1a-7000-8000-{i:012x}")),
        body: json!({
            "request": {
                "action": "payments.transfer",
                "resource": format!("account/{}", i % 10_000),
                "context": { "amount": i % 5000, "currency": "EUR", "ip": "10.1.2.3" },
            },
            "verdicts": [
                { "plugin": "limits", "verdict": "allow", "micros": 41 },
                { "plugin": "sanctions", "verdict": "allow", "micros": 87 },
                { "plugin": "velocity", "verdict": if i.is_multiple_of(7) { "deny" } else { "allow" }, "micros": 63,
                  "reason": "at most 10 transfers a minute" },
            ],
            "combining": "deny-overrides",
            "bundle": "sha256:9f2c1e0b7d4a5f6e8c3b2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f",
        }),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let records: u64 = args.first().map_or(Ok(200_000), |s| s.parse())?;
    let appenders: u64 = args.get(1).map_or(Ok(16), |s| s.parse())?;
    let rate: f64 = args.get(3).map_or(Ok(0.0), |s| s.parse())?;
    let durability = match args.get(2).map(String::as_str) {
        None | Some("durable") => Durability::Durable,
        Some("async") => Durability::Async,
        // The same load without the log: what the benchmark itself costs.
        Some("none") => {
            let started = Instant::now();
            for i in 0..records {
                if rate > 0.0 {
                    let due = Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until((started + due).into()).await;
                }
                drop(record(i));
            }
            return Ok(());
        }
        Some(other) => return Err(format!("unknown durability `{other}`").into()),
    };
    let dir = match args.get(4) {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir_in(".")?,
    };
    let batches = Arc::new(Batches::default());
    let config = AuditConfig::new(dir.path().join("audit.db"), SecretKey::generate()?);
    let log = AuditLog::open(config, Some(batches.clone()))?;

    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..appenders {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i < records {
                if rate > 0.0 {
                    let due = Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until((started + due).into()).await;
                }
                log.append(record(i), durability).await?;
                i += appenders;
            }
            Ok::<_, arbiter_audit::AuditError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    log.close().await?;
    let elapsed = started.elapsed();

    let count = batches.count.load(Ordering::Relaxed).max(1);
    let written = batches.records.load(Ordering::Relaxed);
    println!(
        "{written} records, {appenders} appenders, {durability:?}: {:.0} records/s ({:.2} s)",
        written as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "batches: {count}, mean {:.1} records, largest {}; commit latency mean {} us, slowest {} us",
        written as f64 / count as f64,
        batches.largest.load(Ordering::Relaxed),
        batches.micros.load(Ordering::Relaxed) / count,
        batches.slowest_micros.load(Ordering::Relaxed),
    );
    let verify_started = Instant::now();
    let v = arbiter_audit::verify(&dir.path().join("audit.db"), None)?;
    println!(
        "verify: {v} ({:.2} s)",
        verify_started.elapsed().as_secs_f64()
    );
    let size = std::fs::metadata(dir.path().join("audit.db"))?.len();
    println!(
        "file: {:.1} MB, {} bytes/record",
        size as f64 / 1e6,
        size / written.max(1)
    );
    Ok(())
}
