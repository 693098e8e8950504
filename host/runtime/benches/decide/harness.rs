//! What the in-process benches share: the reference vectors and per-decision latencies.
//! Used by `decide` here and, by path, by `benches/peers` (a workspace of its own), so
//! that both read the workload and time decisions the same way.

use std::hint::black_box;
use std::time::{Duration, Instant};

use arbiter_core::{Outcome, Request};
use hdrhistogram::Histogram;
use serde::Deserialize;

/// The five plugins of the split reference set, in manifest order.
pub(crate) const SPLIT: [&str; 5] = [
    "risk-guard",
    "prod-guard",
    "delegation-guard",
    "team-access",
    "identity-gate",
];

/// The vectors file must hold exactly this many requests.
const VECTORS: usize = 2000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    id: u64,
    request: Request,
    approved: bool,
    expected: String,
    #[serde(default)]
    rules: Vec<String>,
}

/// One vector with its expected outcome parsed.
#[derive(Debug)]
pub(crate) struct Case {
    #[allow(dead_code, reason = "shown by one bench, not the other")]
    pub(crate) id: u64,
    /// The vector's line in the file, shown when an engine disagrees with it.
    #[allow(dead_code, reason = "shown by one bench, not the other")]
    pub(crate) line: String,
    pub(crate) request: Request,
    pub(crate) approved: bool,
    pub(crate) expected: Outcome,
    /// Every matching rule, in document order (for debugging: not normative).
    pub(crate) rules: Vec<String>,
}

/// Reads and parses `tests/vectors/reference-public.jsonl`; the error names the line.
pub(crate) fn cases() -> Result<Vec<Case>, String> {
    let path = arbiter_plugin_build::repo_root().join("tests/vectors/reference-public.jsonl");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut cases = Vec::with_capacity(VECTORS);
    for (n, line) in text.lines().enumerate() {
        let v: Vector = serde_json::from_str(line)
            .map_err(|e| format!("{}:{}: bad vector: {e}", path.display(), n + 1))?;
        let Some(expected) = Outcome::parse(&v.expected) else {
            return Err(format!(
                "vector #{}: unknown outcome `{}`",
                v.id, v.expected
            ));
        };
        cases.push(Case {
            id: v.id,
            line: line.to_owned(),
            request: v.request,
            approved: v.approved,
            expected,
            rules: v.rules,
        });
    }
    if cases.len() != VECTORS {
        return Err(format!(
            "{} holds {} vectors, expected {VECTORS}",
            path.display(),
            cases.len()
        ));
    }
    Ok(cases)
}

/// Latencies of one series, in nanoseconds, with the exact sum for the mean.
#[derive(Debug)]
pub(crate) struct Latency {
    hist: Histogram<u64>,
    sum_ns: u128,
}

impl Latency {
    #[allow(
        clippy::expect_used,
        reason = "constant bounds that hdrhistogram accepts; a bench harness"
    )]
    pub(crate) fn new() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .expect("1 ns to 60 s at 3 significant digits is a valid histogram"),
            sum_ns: 0,
        }
    }

    pub(crate) fn record(&mut self, d: Duration) {
        let ns = d.as_nanos();
        self.sum_ns += ns;
        self.hist
            .saturating_record(u64::try_from(ns).unwrap_or(u64::MAX).max(1));
    }

    pub(crate) fn count(&self) -> u64 {
        self.hist.len()
    }

    pub(crate) fn mean_us(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            n => self.sum_ns as f64 / n as f64 / 1000.0,
        }
    }

    pub(crate) fn quantile_us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Median cost of one `Instant::now()` + `elapsed()` pair around nothing.
pub(crate) fn timer_overhead_ns() -> u64 {
    let mut lat = Latency::new();
    for _ in 0..10_000 {
        let t = Instant::now();
        lat.record(black_box(t).elapsed());
    }
    lat.hist.value_at_quantile(0.5)
}

/// Times `decide` on every case, `passes` times over, one call at a time; dropping
/// what it returns is outside the timer.
pub(crate) fn time_each<T>(
    cases: &[Case],
    passes: u32,
    mut decide: impl FnMut(&Case) -> T,
) -> Latency {
    let mut lat = Latency::new();
    for _ in 0..passes {
        for c in cases {
            let t = Instant::now();
            let d = black_box(decide(black_box(c)));
            lat.record(t.elapsed());
            drop(d);
        }
    }
    lat
}

/// The latency table's rows (after its header).
pub(crate) fn print_rows<'a>(rows: impl IntoIterator<Item = (&'a str, &'a Latency)>) {
    for (name, lat) in rows {
        let mean = lat.mean_us();
        let rate = if mean > 0.0 { 1e6 / mean } else { 0.0 };
        println!(
            "| {name} | {} | {:.2} | {:.2} | {mean:.2} | {rate:.0} |",
            lat.count(),
            lat.quantile_us(0.5),
            lat.quantile_us(0.99),
        );
    }
}
