//! Per-decision times summarised: mean, percentiles by nearest rank, maximum.

use std::time::Duration;

use serde::Serialize;

/// What the timings of one measured series come to, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Summary {
    /// Timings summarised.
    pub decisions: usize,
    /// Arithmetic mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Slowest.
    pub max_us: f64,
}

impl Summary {
    /// Summarises `samples`, sorting them in place; all zeros when there are none.
    pub(crate) fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        let decisions = samples.len();
        Self {
            decisions,
            mean_us: if decisions == 0 {
                0.0
            } else {
                nanos_to_micros(total.as_nanos() as f64 / decisions as f64)
            },
            p50_us: micros(percentile(samples, 50)),
            p90_us: micros(percentile(samples, 90)),
            p99_us: micros(percentile(samples, 99)),
            max_us: micros(samples.last().copied().unwrap_or_default()),
        }
    }

    /// Decisions per second on one thread, one after another: the inverse of the mean,
    /// to the decision.
    pub(crate) fn per_second(&self) -> f64 {
        if self.mean_us > 0.0 {
            (1e6 / self.mean_us).round()
        } else {
            0.0
        }
    }
}

/// The `pct`th percentile of `sorted` by nearest rank: the smallest sample with at
/// least `pct`% of the samples at or below it. Always a measured value, never an
/// interpolation between two; zero for no samples.
pub(crate) fn percentile(sorted: &[Duration], pct: u32) -> Duration {
    let n = sorted.len();
    let rank = (n * pct.min(100) as usize).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or_default()
}

/// A duration in microseconds, to the nanosecond.
pub(crate) fn micros(d: Duration) -> f64 {
    nanos_to_micros(d.as_nanos() as f64)
}

/// Nanoseconds as microseconds with three decimals, so that the JSON shows what was
/// measured and no binary-fraction noise (`10.996`, not `10.995999999999999`).
fn nanos_to_micros(nanos: f64) -> f64 {
    nanos.round() / 1e3
}
