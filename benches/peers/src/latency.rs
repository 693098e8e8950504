//! Per-decision latencies and the table they are printed as.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;

/// Latencies of one variant, in nanoseconds, with the exact sum for the mean.
#[derive(Debug)]
pub(crate) struct Latency {
    hist: Histogram<u64>,
    sum_ns: u128,
}

impl Latency {
    pub(crate) fn new() -> anyhow::Result<Self> {
        Ok(Self {
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .context("a histogram of 1 ns to 60 s at 3 significant digits")?,
            sum_ns: 0,
        })
    }

    pub(crate) fn record(&mut self, d: Duration) {
        let ns = d.as_nanos();
        self.sum_ns += ns;
        self.hist
            .saturating_record(u64::try_from(ns).unwrap_or(u64::MAX).max(1));
    }

    fn count(&self) -> u64 {
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
pub(crate) fn timer_overhead_ns() -> anyhow::Result<u64> {
    let mut lat = Latency::new()?;
    for _ in 0..10_000 {
        let t = Instant::now();
        lat.record(black_box(t).elapsed());
    }
    Ok(lat.hist.value_at_quantile(0.5))
}

/// The latency table, then how arbiter single-plugin compares with each peer.
pub(crate) fn print(rows: &[(&str, Latency)], reference: &str, peers: &[&str]) {
    println!("| variant | decisions | p50 (us) | p99 (us) | mean (us) | decisions/s |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
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
    let find = |name: &str| rows.iter().find(|(n, _)| *n == name).map(|(_, l)| l);
    let Some(ours) = find(reference) else {
        return;
    };
    println!(
        "\n{reference} / peer (latency ratio: below 1 means Arbiter decides faster; decisions/s ratio is the inverse of the mean ratio):\n"
    );
    println!("| peer | p50 ratio | p99 ratio | mean ratio |");
    println!("| --- | ---: | ---: | ---: |");
    for peer in peers {
        let Some(theirs) = find(peer) else {
            continue;
        };
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        println!(
            "| {peer} | {:.2}x | {:.2}x | {:.2}x |",
            ratio(ours.quantile_us(0.5), theirs.quantile_us(0.5)),
            ratio(ours.quantile_us(0.99), theirs.quantile_us(0.99)),
            ratio(ours.mean_us(), theirs.mean_us()),
        );
    }
}
