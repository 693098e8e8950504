//! Decisions by outcome over time: counts of the replayed decisions in at most
//! [`MAX_BUCKETS`] buckets, by the time each audit record was recorded, or by input
//! position for a labelled file (its lines carry no time).
//!
//! Counts are kept per bucket of a width that starts fine (a second, one action) and
//! coarsens whenever there are more than [`MAX_FINE`] buckets, so memory stays flat
//! however long the log; at the end the width is the finest one that fits the observed
//! range in [`MAX_BUCKETS`]. Widths come from a ladder where each divides the next,
//! so coarsening only merges whole buckets, and bucket edges are round (whole minutes,
//! hours, days in UTC; positions 0, 50, 100, ...).

use std::collections::BTreeMap;

use arbiter_core::Outcome;
use serde::Serialize;

use super::matrix::OUTCOMES;

/// Buckets a series has at most: a day in half hours, a chart still readable on a
/// phone.
pub(super) const MAX_BUCKETS: u64 = 48;

/// Buckets kept while counting before the width coarsens: a few hundred kilobytes at
/// most, and enough resolution that the final width is always reachable.
const MAX_FINE: usize = 4096;

/// Time-axis widths in seconds, each dividing the next (after the last, doubling).
const TIME_LADDER: [u64; 15] = [
    1, 5, 15, 30, 60, 300, 900, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 604_800, 2_419_200,
];

/// What the buckets are of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Axis {
    /// The recorded time of each audit record, in seconds.
    Time,
    /// The position of each case in the input, from 0.
    Position,
}

impl Axis {
    /// The width after `width` on this axis's ladder.
    fn coarser(self, width: u64) -> u64 {
        match self {
            Self::Time => TIME_LADDER
                .iter()
                .copied()
                .find(|&w| w > width)
                .unwrap_or(width.saturating_mul(2)),
            // 1, 5, 10, 50, 100, 500, ...
            Self::Position => {
                let mut decade = 1;
                while decade <= width / 10 {
                    decade *= 10;
                }
                if width < 5 * decade {
                    5 * decade
                } else {
                    10 * decade
                }
            }
        }
    }

    /// Output units per axis unit: microseconds per second, or one.
    fn scale(self) -> i64 {
        match self {
            Self::Time => 1_000_000,
            Self::Position => 1,
        }
    }
}

/// The running counts of one set's decisions.
#[derive(Debug, Clone)]
pub(super) struct Timeline {
    axis: Option<Axis>,
    /// Bucket width in axis units (seconds or actions).
    width: u64,
    /// Bucket start (a multiple of `width`) to counts in the order of [`OUTCOMES`].
    counts: BTreeMap<i64, [u64; 3]>,
}

impl Default for Timeline {
    fn default() -> Self {
        Self {
            axis: None,
            width: 1,
            counts: BTreeMap::new(),
        }
    }
}

impl Timeline {
    /// Counts `outcome` for the case at `position` of the input, recorded at
    /// `recorded_micros` (audit input). The first case sets the axis: time when it
    /// has a recorded time, position otherwise; a later case without one on a time
    /// axis (which no input produces) is left out.
    pub(super) fn add(&mut self, position: u64, recorded_micros: Option<i64>, outcome: Outcome) {
        let axis = *self.axis.get_or_insert(if recorded_micros.is_some() {
            Axis::Time
        } else {
            Axis::Position
        });
        let at = match (axis, recorded_micros) {
            (Axis::Time, Some(micros)) => micros.div_euclid(1_000_000),
            (Axis::Time, None) => return,
            (Axis::Position, _) => i64::try_from(position).unwrap_or(i64::MAX),
        };
        let column = OUTCOMES.iter().position(|&o| o == outcome).unwrap_or(0);
        self.counts.entry(floor(at, self.width)).or_default()[column] += 1;
        while self.counts.len() > MAX_FINE {
            self.coarsen(axis.coarser(self.width));
        }
    }

    /// Merges the buckets into ones `width` wide (a multiple of the current width).
    fn coarsen(&mut self, width: u64) {
        let old = std::mem::take(&mut self.counts);
        for (start, counts) in old {
            let merged = self.counts.entry(floor(start, width)).or_default();
            for (m, c) in merged.iter_mut().zip(counts) {
                *m += c;
            }
        }
        self.width = width;
    }

    /// The series: every bucket from the first to the last observed, empty ones too.
    pub(super) fn finish(mut self) -> OverTime {
        let axis = self.axis.unwrap_or(Axis::Position);
        let span = |t: &Self| match (t.counts.keys().next(), t.counts.keys().next_back()) {
            (Some(&first), Some(&last)) => {
                let w = i64::try_from(t.width).unwrap_or(i64::MAX);
                u64::try_from((last - first) / w + 1).unwrap_or(u64::MAX)
            }
            _ => 0,
        };
        while span(&self) > MAX_BUCKETS {
            self.coarsen(axis.coarser(self.width));
        }
        let width = i64::try_from(self.width).unwrap_or(i64::MAX);
        let mut buckets = Vec::new();
        if let (Some(&first), Some(&last)) =
            (self.counts.keys().next(), self.counts.keys().next_back())
        {
            let mut start = first;
            while start <= last {
                let counts = self.counts.get(&start).copied().unwrap_or_default();
                buckets.push(Bucket {
                    start: start.saturating_mul(axis.scale()),
                    end: start.saturating_add(width).saturating_mul(axis.scale()),
                    decided: OUTCOMES
                        .iter()
                        .zip(counts)
                        .map(|(o, n)| (o.as_str(), n))
                        .collect(),
                });
                start = start.saturating_add(width);
            }
        }
        OverTime {
            axis: match axis {
                Axis::Time => "time",
                Axis::Position => "position",
            },
            width: width.saturating_mul(axis.scale()),
            buckets,
        }
    }
}

/// The multiple of `width` at or below `at`.
fn floor(at: i64, width: u64) -> i64 {
    let w = i64::try_from(width).unwrap_or(i64::MAX);
    at.div_euclid(w) * w
}

/// One set's decisions by outcome over time (or input position).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverTime {
    /// `time`: buckets of the audit records' recorded times, `start`, `end` and `width`
    /// in unix microseconds; `position`: buckets of input lines, counted from 0.
    pub axis: &'static str,
    /// Every bucket's width (microseconds or actions).
    pub width: i64,
    /// From the first decision's bucket to the last's, empty ones included.
    pub buckets: Vec<Bucket>,
}

/// The decisions of one bucket, `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Where the bucket starts.
    pub start: i64,
    /// Where the next one starts.
    pub end: i64,
    /// Replayed decisions by outcome.
    pub decided: BTreeMap<&'static str, u64>,
}
