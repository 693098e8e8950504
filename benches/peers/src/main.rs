//! Arbiter beside its peers on the reference workload (issue #19, item 5): the 2,000
//! requests of `tests/vectors/reference-public.jsonl`, decided in one process, on one
//! thread, by
//!
//! - `arbiter native`: the fifteen rules as plain Rust over the request (the floor;
//!   the very file `host/runtime/benches/decide` uses);
//! - `arbiter single-plugin, fresh` and `arbiter multi-plugin, fresh`: the reference
//!   policy as one plugin and as five, through `PolicySet::decide` with a fresh
//!   sandbox per plugin call, loaded as `host/runtime/benches/decide` loads them;
//! - `cedar`: cedar-policy with `policies/reference.cedar` (and `approval.cedar` for
//!   the gates), end to end: the request becomes Cedar entities and context, then
//!   `Authorizer::is_authorized`;
//! - `regorus interpreter` and `regorus RVM`: `policies/reference.rego` in regorus's
//!   tree-walking interpreter and compiled to its bytecode VM, end to end: the request
//!   becomes the engine's input value, then the `decision` rule is evaluated.
//!
//! Every variant first decides every vector once, untimed, and the run stops at the
//! first outcome that differs from the vector's `expected` (and, for the engines that
//! name the rules that decided, at the first rule set that differs from the native
//! rules'); that pass is also the warm-up. Then each decision is timed on its own over
//! `BENCH_PASSES` passes (default 5). Timings exclude dropping the result.
//!
//! Run: `cd benches/peers && cargo run --release` (`BENCH_PASSES=1` for a smoke run).

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Context as _, bail};
use arbiter_core::Outcome;

use crate::harness::{Case, Latency};

mod arbiter;
mod cedar;
mod latency;
mod rego;

#[path = "../../../host/runtime/benches/decide/harness.rs"]
mod harness;
#[path = "../../../host/runtime/benches/decide/native.rs"]
mod native;

/// Timed passes over the vectors when `BENCH_PASSES` is not set.
const DEFAULT_PASSES: u32 = 5;

const SINGLE: &str = "arbiter single-plugin, fresh";
const PEERS: [&str; 3] = ["cedar", "regorus interpreter", "regorus RVM"];

/// What an engine answered, in the vectors' terms.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub(crate) outcome: Outcome,
    /// The ids of the rules that made the decision, for engines that name them:
    /// forbids for a deny, none for "no permit", gates for require-approval, permits
    /// for an allow (what `native::decide` returns).
    pub(crate) rules: Option<Vec<String>>,
}

/// Stops at the first vector `verdict` gets wrong, naming the vector's line.
pub(crate) fn check(what: &str, case: &Case, verdict: &Verdict) -> anyhow::Result<()> {
    if verdict.outcome != case.expected {
        bail!(
            "{what} decides {} where vector #{} expects {} (rules {:?}); refusing to time it. The vector:\n{}",
            verdict.outcome,
            case.id,
            case.expected,
            verdict.rules,
            case.line
        );
    }
    if let Some(rules) = &verdict.rules {
        let mut got: Vec<&str> = rules.iter().map(String::as_str).collect();
        got.sort_unstable();
        let mut want = native::decide(&case.request, case.approved).rules;
        want.sort_unstable();
        if got != want {
            bail!(
                "{what} decides vector #{} ({}) by rules {got:?}, the native rules by {want:?}; refusing to time it. The vector:\n{}",
                case.id,
                case.expected,
                case.line
            );
        }
    }
    Ok(())
}

/// Checks every vector once (the warm-up), then times `passes` passes.
fn checked_and_timed(
    what: &str,
    cases: &[Case],
    passes: u32,
    mut decide: impl FnMut(&Case) -> anyhow::Result<Verdict>,
) -> anyhow::Result<Latency> {
    for c in cases {
        let verdict = decide(c).with_context(|| format!("{what} fails on vector #{}", c.id))?;
        check(what, c, &verdict)?;
    }
    let mut lat = Latency::new();
    for _ in 0..passes {
        for c in cases {
            let t = Instant::now();
            let verdict = black_box(decide(black_box(c)));
            lat.record(t.elapsed());
            verdict.with_context(|| format!("{what} fails on vector #{}", c.id))?;
        }
    }
    Ok(lat)
}

fn passes() -> anyhow::Result<u32> {
    match std::env::var("BENCH_PASSES") {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_PASSES),
        Err(e) => bail!("BENCH_PASSES: {e}"),
        Ok(s) => match s.trim().parse::<u32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => bail!("BENCH_PASSES must be a whole number >= 1, not `{s}`"),
        },
    }
}

fn native_verdict(c: &Case) -> Verdict {
    let d = native::decide(&c.request, c.approved);
    Verdict {
        outcome: d.outcome,
        rules: Some(d.rules.iter().map(|r| (*r).to_owned()).collect()),
    }
}

/// The native rules, timed as `host/runtime/benches/decide` times them (no conversion
/// of the answer); warns when the matching rules differ from the vectors' `rules`.
fn native(cases: &[Case], passes: u32) -> anyhow::Result<Latency> {
    let differ = cases
        .iter()
        .filter(|c| native::all_matching(&c.request, c.approved) != c.rules)
        .count();
    if differ > 0 {
        eprintln!(
            "peers bench: warning: native matching rules differ from the vectors' `rules` on {differ} vectors"
        );
    }
    for c in cases {
        check("arbiter native", c, &native_verdict(c))?;
    }
    Ok(harness::time_each(cases, passes, |c| {
        native::decide(&c.request, c.approved)
    }))
}

async fn run(cases: &[Case], passes: u32) -> anyhow::Result<()> {
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let sets = arbiter::Sets::load().await?;
    let cedar = cedar::Cedar::load(&policies)?;
    let mut interpreter = rego::Interpreter::load(&policies)?;
    let mut vm = rego::Vm::load(&policies)?;

    let mut rows: Vec<(&str, Latency)> = Vec::new();
    rows.push(("arbiter native", native(cases, passes)?));
    rows.push((
        SINGLE,
        arbiter::timed(SINGLE, &sets.single, cases, passes).await?,
    ));
    let multi = "arbiter multi-plugin, fresh";
    rows.push((
        multi,
        arbiter::timed(multi, &sets.multi, cases, passes).await?,
    ));
    let lat = checked_and_timed(PEERS[0], cases, passes, |c| {
        cedar.decide(&c.request, c.approved)
    })?;
    rows.push((PEERS[0], lat));
    let lat = checked_and_timed(PEERS[1], cases, passes, |c| {
        interpreter.decide(&c.request, c.approved)
    })?;
    rows.push((PEERS[1], lat));
    let lat = checked_and_timed(PEERS[2], cases, passes, |c| {
        vm.decide(&c.request, c.approved)
    })?;
    rows.push((PEERS[2], lat));

    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "\nReference workload: {} vectors x {passes} pass(es), one thread, {cpus} CPU(s) available; timer overhead ~{} ns per measurement (included).\n",
        cases.len(),
        harness::timer_overhead_ns()
    );
    latency::print(&rows, SINGLE, &PEERS);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let passes = passes()?;
    let cases = harness::cases().map_err(anyhow::Error::msg)?;
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a current-thread tokio runtime")?;
    tokio.block_on(run(&cases, passes))
}
