//! How closely a plugin's deadline holds under load, and that no late verdict gets
//! through: the margin by which timeouts overshoot `deadline_ms` at 1, 16 and 64
//! evaluations in flight, on a tokio runtime with as many worker threads as cores (as
//! the server runs).
//!
//! - `loop`: a plugin that never returns (the `misbehave` fixture's `loop`), deadline
//!   50 ms. Every evaluation must be a `timeout`; the table gives how long it ran by
//!   the host's clock (from `configure` to the interrupt, as the failure detail says)
//!   minus the deadline, and how long the caller waited for the answer in all (with
//!   the wait for an evaluation slot and instantiation).
//! - `slow-allow`: busy for 60 ms, then allow, against the same 50 ms deadline. Every
//!   evaluation must be a `timeout`; an accepted allow is counted (it must be zero).
//!
//! Run: `cargo bench -p arbiter-runtime --bench deadline` (`BENCH_EVALUATIONS=64` for
//! a smoke run; the default is 320 per level).

#![allow(
    clippy::expect_used,
    reason = "a benchmark harness: a failed setup ends the run"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arbiter_core::{FailureKind, Limits, PluginOutcome, Request};
use arbiter_runtime::{PolicySet, Runtime, RuntimeConfig, SetSource};
use hdrhistogram::Histogram;

const DEADLINE_MS: u64 = 50;
const LEVELS: [usize; 3] = [1, 16, 64];

fn evaluations() -> usize {
    std::env::var("BENCH_EVALUATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(320)
}

async fn misbehave(rt: &Runtime, settings: &str) -> Arc<PolicySet> {
    let bytes = std::fs::read(arbiter_plugin_build::plugin("misbehave"))
        .unwrap_or_else(|e| panic!("the misbehave fixture is built: {e}"));
    let mut files = BTreeMap::new();
    files.insert("misbehave.wasm".to_string(), bytes);
    let manifest = format!(
        "format = 1\nname = \"bench\"\nversion = \"1\"\n[[plugins]]\nname = \"misbehave\"\npath = \"misbehave.wasm\"\nlimits = {{ deadline_ms = {DEADLINE_MS}, quarantine_after = 1000000 }}\n[plugins.settings]\n{settings}\n"
    );
    let set = PolicySet::load(
        rt,
        SetSource::Files {
            origin: "bench".into(),
            manifest,
            files,
        },
        Limits::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("the misbehave set loads: {e}"));
    Arc::new(set)
}

/// What one level measured.
struct Level {
    /// Execution past the deadline (us).
    overshoot: Histogram<u64>,
    /// The whole evaluation as the caller saw it (us).
    answered: Histogram<u64>,
    timeouts: usize,
    allows: usize,
}

/// `ran N us` from a timeout's detail.
fn ran_micros(detail: &str) -> Option<u64> {
    let rest = &detail[detail.find("; ran ")? + 6..];
    rest.split(' ').next()?.parse().ok()
}

/// Runs `n` evaluations, `in_flight` at a time.
async fn run(set: Arc<PolicySet>, n: usize, in_flight: usize) -> Level {
    let request: Request = serde_json::from_str(
        r#"{"principal":{"id":"spiffe://t/agent/a","kind":"agent"},"action":{"name":"db:Query","privilege":"read"}}"#,
    )
    .unwrap_or_else(|e| panic!("request: {e}"));
    let request = Arc::new(request);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (set, next, request) = (set.clone(), next.clone(), request.clone());
        tasks.spawn(async move {
            let mut out = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let d = set.decide(&request, false).await;
                let p = &d.plugins[0];
                out.push((p.elapsed, p.outcome.clone()));
            }
            out
        });
    }
    let histogram = || Histogram::<u64>::new(3).unwrap_or_else(|e| panic!("histogram: {e}"));
    let mut level = Level {
        overshoot: histogram(),
        answered: histogram(),
        timeouts: 0,
        allows: 0,
    };
    let deadline = u64::try_from(Duration::from_millis(DEADLINE_MS).as_micros()).unwrap_or(0);
    while let Some(done) = tasks.join_next().await {
        for (elapsed, outcome) in done.unwrap_or_else(|e| panic!("task: {e}")) {
            match outcome {
                PluginOutcome::Failed(f) if f.kind == FailureKind::Timeout => {
                    level.timeouts += 1;
                    let ran = ran_micros(&f.detail)
                        .unwrap_or_else(|| panic!("no `ran N us` in `{}`", f.detail));
                    let _ = level.overshoot.record(ran.saturating_sub(deadline));
                    let _ = level
                        .answered
                        .record(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
                }
                PluginOutcome::Verdict(_) => level.allows += 1,
                PluginOutcome::Failed(_) => {}
            }
        }
    }
    level
}

fn main() {
    let n = evaluations();
    let cores = std::thread::available_parallelism().map_or(2, |c| c.get());
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"));
    let rt = Runtime::new(RuntimeConfig::default()).unwrap_or_else(|e| panic!("runtime: {e}"));
    tokio.block_on(async {
        let looping = misbehave(&rt, "behaviour = \"loop\"").await;
        let slow = misbehave(&rt, "behaviour = \"slow\"\nslow_ms = 60").await;
        println!(
            "deadline {DEADLINE_MS} ms, {n} evaluations per row, {cores} worker threads; overshoot = how long the plugin ran by the host's clock - deadline; answered = the whole evaluation as the caller saw it"
        );
        println!();
        println!(
            "| plugin | in flight | timeouts | allows accepted | overshoot p50 (us) | p99 (us) | max (us) | answered p50 (ms) | p99 (ms) | wall (s) |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (name, set) in [("loop", &looping), ("slow-allow", &slow)] {
            for in_flight in LEVELS {
                let started = Instant::now();
                let l = run(set.clone(), n, in_flight).await;
                println!(
                    "| {name} | {in_flight} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
                    l.timeouts,
                    l.allows,
                    l.overshoot.value_at_quantile(0.5),
                    l.overshoot.value_at_quantile(0.99),
                    l.overshoot.max(),
                    l.answered.value_at_quantile(0.5) as f64 / 1000.0,
                    l.answered.value_at_quantile(0.99) as f64 / 1000.0,
                    started.elapsed().as_secs_f64()
                );
            }
        }
    });
}
