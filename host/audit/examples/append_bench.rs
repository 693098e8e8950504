//! Appends records from concurrent tasks and reports throughput and batch sizes.
//!
//! ```text
//! cargo run --release -p arbiter-audit --example append_bench -- \
//!     [--records 200000] [--appenders 16] [--mode durable|async|none] \
//!     [--rate 0] [--commit-interval-us 0] [--dir .]
//! ```
//!
//! `--rate` paces the appenders to that many records a second in total (0: as fast as
//! they can), to measure the CPU the log costs at a given load; `--mode none` builds the
//! same records without a log, which is what the benchmark itself costs. The log goes
//! in a fresh directory under `--dir` (not `/tmp`, which may be memory-backed and make
//! fsync free).

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
        body: serde_json::value::to_raw_value(&json!({
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
        }))
        .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
    }
}

/// The command line, `--name value` pairs.
#[derive(Debug)]
struct Args {
    records: u64,
    appenders: u64,
    mode: String,
    rate: f64,
    commit_interval: Duration,
    dir: String,
}

fn args() -> Result<Args, Box<dyn Error>> {
    let mut args = Args {
        records: 200_000,
        appenders: 16,
        mode: "durable".into(),
        rate: 0.0,
        commit_interval: Duration::ZERO,
        dir: ".".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(name) = it.next() {
        let value = it.next().ok_or_else(|| format!("`{name}` needs a value"))?;
        match name.as_str() {
            "--records" => args.records = value.parse()?,
            "--appenders" => args.appenders = value.parse()?,
            "--mode" => args.mode = value,
            "--rate" => args.rate = value.parse()?,
            "--commit-interval-us" => args.commit_interval = Duration::from_micros(value.parse()?),
            "--dir" => args.dir = value,
            _ => return Err(format!("unknown option `{name}`").into()),
        }
    }
    Ok(args)
}

/// Seconds of CPU (user + system) this process has used, from `/proc` (0 elsewhere).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are the
    // 12th and 13th, in clock ticks of (almost always) 100 Hz.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// Waits until record `i` is due when pacing at `rate` records a second from `started`.
async fn pace(rate: f64, started: Instant, i: u64) {
    if rate > 0.0 {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let Args {
        records,
        appenders,
        mode,
        rate,
        commit_interval,
        dir,
    } = args()?;
    let durability = match mode.as_str() {
        "durable" => Durability::Durable,
        "async" => Durability::Async,
        "none" => {
            let (started, cpu) = (Instant::now(), cpu_seconds());
            for i in 0..records {
                pace(rate, started, i).await;
                drop(record(i));
            }
            let cpu = cpu_seconds() - cpu;
            println!(
                "no log: {:.1} us CPU per record, {:.2} s",
                cpu * 1e6 / records as f64,
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        other => return Err(format!("unknown mode `{other}`").into()),
    };
    let dir = tempfile::tempdir_in(dir)?;
    let batches = Arc::new(Batches::default());
    let mut config = AuditConfig::new(dir.path().join("audit.db"), SecretKey::generate()?);
    config.min_commit_interval = commit_interval;
    let log = AuditLog::open(config, Some(batches.clone()))?;

    let (started, cpu) = (Instant::now(), cpu_seconds());
    let mut tasks = Vec::new();
    for t in 0..appenders {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i < records {
                pace(rate, started, i).await;
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
    let cpu = cpu_seconds() - cpu;

    let count = batches.count.load(Ordering::Relaxed).max(1);
    let written = batches.records.load(Ordering::Relaxed);
    println!(
        "{written} records, {appenders} appenders, {durability:?}: {:.0} records/s ({:.2} s), {:.1} us CPU per record",
        written as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        cpu * 1e6 / written.max(1) as f64,
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
