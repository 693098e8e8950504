//! In-process decision latency on the reference workload
//! (`tests/vectors/reference-public.jsonl`, 2,000 requests), side by side:
//!
//! - `native`: the fifteen reference rules as plain Rust over [`Request`] (the floor);
//! - `single-plugin`: the `reference` plugin, one component holding every rule, built
//!   as the embedded sets are (no WASI: `arbiter_plugin_build::build_lean`);
//! - `single-plugin, wasm32-wasip2 build`: the same crate built for `wasm32-wasip2`,
//!   as a plugin author's `cargo build` gives it (its component imports WASI);
//! - `multi-plugin`: the same policy as five plugins (risk-guard, prod-guard,
//!   delegation-guard, team-access, identity-gate), built as the embedded sets are;
//! - `trivial plugin (instance floor)`: a plugin that allows without looking at the
//!   request (the `misbehave` fixture's `allow` behaviour): what a fresh sandbox costs
//!   before any rule runs. It is a different component from `reference`, so it only
//!   approximates "instantiate only".
//!
//! Every variant first runs one warm-up pass that also checks each decision against
//! the vector's `expected` outcome, then times every decision on its own over
//! `BENCH_PASSES` passes (default 5), on one thread (tokio `current_thread`). Timings
//! exclude dropping the result. `decisions/s` is `1 / mean`: the single-thread rate if
//! nothing but decisions ran.
//!
//! Run: `cargo bench -p arbiter-runtime --bench decide` (`BENCH_PASSES=1` for a smoke run).

#![allow(
    clippy::expect_used,
    reason = "a benchmark harness: a failed setup ends the run"
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use arbiter_core::{Limits, Outcome};
use arbiter_runtime::{PolicySet, Runtime, RuntimeConfig, SetSource};

/// Timed passes over the vectors when `BENCH_PASSES` is not set.
const DEFAULT_PASSES: u32 = 5;

#[path = "decide/harness.rs"]
mod harness;
#[path = "decide/native.rs"]
mod native;

use harness::{Case, Latency, SPLIT, timer_overhead_ns};

/// The allocator the server runs with (`host/arbiter/src/main.rs`), so that the bench
/// measures what a deployment runs: a fresh sandbox allocates and frees many small
/// objects (measured: single-plugin p50 10.7-10.85 us with glibc, 10.4-10.5 with
/// mimalloc, alternated in one session).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The single-plugin set's time split, from the timings `decide` reports itself.
#[derive(Debug)]
struct Profile {
    plugin: Latency,
    host: Latency,
    outside: Latency,
}

fn fail(message: &str) -> ! {
    eprintln!("decide bench: {message}");
    std::process::exit(1);
}

fn passes() -> u32 {
    match std::env::var("BENCH_PASSES") {
        Err(std::env::VarError::NotPresent) => DEFAULT_PASSES,
        Err(e) => fail(&format!("BENCH_PASSES: {e}")),
        Ok(s) => match s.trim().parse::<u32>() {
            Ok(n) if n >= 1 => n,
            _ => fail(&format!(
                "BENCH_PASSES must be a whole number >= 1, not `{s}`"
            )),
        },
    }
}

fn cases() -> Vec<Case> {
    harness::cases().unwrap_or_else(|e| fail(&e))
}

/// Aborts unless the native rules give the expected outcome on every vector; warns
/// (rule ids are for debugging only) when the matching rules differ from `rules`.
fn check_native(cases: &[Case]) {
    let mut wrong = Vec::new();
    let mut rule_diffs = 0;
    for c in cases {
        let got = native::decide(&c.request, c.approved);
        if got.outcome != c.expected {
            wrong.push(format!(
                "#{}: expected {}, got {} {:?}",
                c.id, c.expected, got.outcome, got.rules
            ));
        }
        if native::all_matching(&c.request, c.approved) != c.rules {
            rule_diffs += 1;
        }
    }
    if !wrong.is_empty() {
        let shown = wrong
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ");
        fail(&format!(
            "the native rules disagree with {} of {} vectors; refusing to time a wrong policy:\n  {shown}",
            wrong.len(),
            cases.len()
        ));
    }
    if rule_diffs > 0 {
        eprintln!(
            "decide bench: warning: native matching rules differ from the vectors' `rules` on {rule_diffs} vectors (outcomes all match)"
        );
    }
}

/// How a variant's plugins are built.
#[derive(Clone, Copy)]
enum Build {
    /// As the embedded sets are: no WASI (`arbiter_plugin_build::build_lean`).
    Lean,
    /// For `wasm32-wasip2`, as a plugin author's `cargo build` gives it.
    Wasip2,
}

/// A set of built plugins: `(plugin name, crate name, extra manifest lines)`, as the
/// runtime's tests build them.
async fn set_of(
    rt: &Runtime,
    header: &str,
    plugins: &[(&str, &str, &str)],
    build: Build,
) -> Result<PolicySet, arbiter_runtime::LoadError> {
    let mut manifest = format!("format = 1\nname = \"bench\"\nversion = \"1\"\n{header}\n");
    let mut files = BTreeMap::new();
    for (name, krate, extra) in plugins {
        let file = format!("{krate}.wasm");
        let path = match build {
            Build::Lean => {
                arbiter_plugin_build::lean_dir().join(format!("{}.wasm", krate.replace('-', "_")))
            }
            Build::Wasip2 => arbiter_plugin_build::plugin(krate),
        };
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| fail(&format!("cannot read plugin {}: {e}", path.display())));
        files.insert(file.clone(), bytes);
        manifest.push_str(&format!(
            "\n[[plugins]]\nname = \"{name}\"\npath = \"{file}\"\n{extra}\n"
        ));
    }
    PolicySet::load(
        rt,
        SetSource::Files {
            origin: "bench".into(),
            manifest,
            files,
        },
        Limits::default(),
    )
    .await
}

async fn load(rt: &Runtime, what: &str, plugins: &[(&str, &str, &str)], build: Build) -> PolicySet {
    let t = Instant::now();
    let set = set_of(rt, "", plugins, build)
        .await
        .unwrap_or_else(|e| fail(&format!("the {what} set does not load: {e}")));
    eprintln!(
        "decide bench: loaded {what} ({} plugin(s), compiled without cache) in {:.0} ms",
        plugins.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    set
}

fn time_native(cases: &[Case], passes: u32) -> Latency {
    for c in cases {
        black_box(native::decide(black_box(&c.request), black_box(c.approved)));
    }
    harness::time_each(cases, passes, |c| native::decide(&c.request, c.approved))
}

/// Warms up with one checked pass (`expect_all` overrides the vectors' outcomes), then
/// times `passes` passes; fills `profile` from the timings inside each decision.
async fn time_set(
    what: &str,
    set: &PolicySet,
    cases: &[Case],
    passes: u32,
    expect_all: Option<Outcome>,
    mut profile: Option<&mut Profile>,
) -> Latency {
    let mut wrong = Vec::new();
    for c in cases {
        let d = set.decide(&c.request, c.approved).await;
        let expected = expect_all.unwrap_or(c.expected);
        if d.outcome != expected {
            wrong.push(format!(
                "#{}: expected {expected}, got {} {:?}",
                c.id,
                d.outcome,
                d.reasons.iter().map(|r| &r.code).collect::<Vec<_>>()
            ));
        }
    }
    if !wrong.is_empty() {
        let shown = wrong
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ");
        fail(&format!(
            "the {what} set decides {} of {} vectors wrongly; refusing to time it:\n  {shown}",
            wrong.len(),
            cases.len()
        ));
    }
    let mut lat = Latency::new();
    for _ in 0..passes {
        for c in cases {
            let t = Instant::now();
            let d = set.decide(&c.request, c.approved).await;
            let outer = t.elapsed();
            lat.record(outer);
            if let Some(p) = profile.as_deref_mut() {
                let plugins: Duration = d.plugins.iter().map(|r| r.elapsed).sum();
                p.plugin.record(plugins);
                p.host.record(d.elapsed.saturating_sub(plugins));
                p.outside.record(outer.saturating_sub(d.elapsed));
            }
            drop(black_box(d));
        }
    }
    lat
}

fn print_table(rows: &[(&str, &Latency)]) {
    println!(
        "| variant | decisions | p50 (us) | p99 (us) | mean (us) | decisions/s (single thread) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    harness::print_rows(rows.iter().copied());
}

fn print_profile(whole: &Latency, p: &Profile, floor: &Latency) {
    let total = whole.mean_us();
    let share = |l: &Latency| {
        if total > 0.0 {
            100.0 * l.mean_us() / total
        } else {
            0.0
        }
    };
    println!("| phase | p50 (us) | p99 (us) | mean (us) | share of mean |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let rows: [(&str, &Latency); 5] = [
        ("whole call (`Instant` around `decide().await`)", whole),
        (
            "plugin: fresh instance, configure, evaluate, verdict check, teardown (`PluginReport.elapsed`)",
            &p.plugin,
        ),
        (
            "host inside `decide`: request conversion, combine, decision id/assembly (`Decision.elapsed` - plugin)",
            &p.host,
        ),
        (
            "outside `decide`: future setup and return (whole - `Decision.elapsed`)",
            &p.outside,
        ),
        (
            "for comparison: whole call with a trivial allow-all plugin",
            floor,
        ),
    ];
    for (name, l) in rows {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.1}% |",
            l.quantile_us(0.5),
            l.quantile_us(0.99),
            l.mean_us(),
            share(l)
        );
    }
    println!(
        "\nsingle-plugin minus trivial plugin, difference of means: {:+.2} us (rule evaluation and the richer verdict, plus run-to-run noise; the two components also differ in size).",
        total - floor.mean_us()
    );
}

async fn run(cases: &[Case], passes: u32) {
    check_native(cases);
    let t = Instant::now();
    arbiter_plugin_build::built();
    let lean: Vec<&str> = std::iter::once("reference").chain(SPLIT).collect();
    if let Err(e) = arbiter_plugin_build::build_lean(&lean) {
        fail(&e);
    }
    eprintln!(
        "decide bench: plugins built (or found up to date) in {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let rt = Runtime::new(RuntimeConfig::default())
        .unwrap_or_else(|e| fail(&format!("the wasm runtime does not start: {e}")));
    let reference = [("reference", "reference", "")];
    let single = load(&rt, "single-plugin", &reference, Build::Lean).await;
    let single_wasip2 = load(&rt, "single-plugin (wasip2)", &reference, Build::Wasip2).await;
    let split: Vec<(&str, &str, &str)> = SPLIT.iter().map(|p| (*p, *p, "")).collect();
    let multi = load(&rt, "multi-plugin", &split, Build::Lean).await;
    let trivial = load(
        &rt,
        "trivial-plugin",
        &[(
            "trivial",
            "misbehave",
            "[plugins.settings]\nbehaviour = \"allow\"",
        )],
        Build::Wasip2,
    )
    .await;

    let native = time_native(cases, passes);
    let mut profile = Profile {
        plugin: Latency::new(),
        host: Latency::new(),
        outside: Latency::new(),
    };
    let single_lat = time_set(
        "single-plugin",
        &single,
        cases,
        passes,
        None,
        Some(&mut profile),
    )
    .await;
    let single_wasip2_lat = time_set(
        "single-plugin (wasip2)",
        &single_wasip2,
        cases,
        passes,
        None,
        None,
    )
    .await;
    let multi_lat = time_set("multi-plugin", &multi, cases, passes, None, None).await;
    let trivial_lat = time_set(
        "trivial-plugin",
        &trivial,
        cases,
        passes,
        Some(Outcome::Allow),
        None,
    )
    .await;

    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "\nReference workload: {} vectors x {passes} pass(es), one thread, {cpus} CPU(s) available; timer overhead ~{} ns per measurement (included).\n",
        cases.len(),
        timer_overhead_ns()
    );
    print_table(&[
        ("native", &native),
        ("single-plugin", &single_lat),
        ("single-plugin, `wasm32-wasip2` build", &single_wasip2_lat),
        ("multi-plugin", &multi_lat),
        ("trivial plugin (instance floor)", &trivial_lat),
    ]);
    println!("\nsingle-plugin, per phase:\n");
    print_profile(&single_lat, &profile, &trivial_lat);
}

fn main() {
    let passes = passes();
    let cases = cases();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime builds");
    tokio.block_on(run(&cases, passes));
}
