//! The numbers of a replay: a [`Tally`] takes every (case, decision) pair of one policy
//! set and becomes a [`Report`]; [`Changes`] counts decisions that differ between two
//! sources (labels and a set, or a baseline and a candidate set).

use std::collections::BTreeMap;
use std::time::Duration;

use arbiter_core::{Decision, Outcome, PluginOutcome, SetIdentity};
use hdrhistogram::Histogram;
use serde::Serialize;

use super::input::{Case, CaseRef};
use super::matrix::{Matrix, OUTCOMES};
use super::over_time::{OverTime, Timeline};

/// Decision latencies above this are recorded as this: a minute is far past any plugin
/// deadline, so nothing real is clipped, and the bound keeps the histogram small.
const LATENCY_CEILING_MICROS: u64 = 60_000_000;

/// Significant figures of the latency histogram: 0.1% resolution, enough for
/// percentiles and a few tens of kilobytes of memory however long the log.
const LATENCY_SIGFIG: u8 = 3;

/// One action whose decision differs between two sources.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    /// Which vector or audit record.
    #[serde(flatten)]
    pub at: CaseRef,
    /// `principal.id` of the request.
    pub principal: String,
    /// `action.name` of the request.
    pub action: String,
    /// The label, recorded or baseline decision.
    pub from: Outcome,
    /// The replayed or candidate decision.
    pub to: Outcome,
    /// Reason codes of the baseline decision (baseline against candidate only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_reasons: Option<Vec<String>>,
    /// Reason codes of the replayed or candidate decision.
    pub reasons: Vec<String>,
}

/// Decisions that differ between two sources: counts by `from->to` and the first few.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changes {
    /// How many differ.
    pub total: u64,
    /// How many differ, by `from->to` (e.g. `deny->allow`).
    pub by_change: BTreeMap<String, u64>,
    /// The first ones, in input order.
    pub examples: Vec<Example>,
    #[serde(skip)]
    keep: usize,
}

impl Changes {
    /// No changes yet; at most `keep` examples will be kept.
    pub fn new(keep: usize) -> Self {
        Self {
            total: 0,
            by_change: BTreeMap::new(),
            examples: Vec::new(),
            keep,
        }
    }

    /// Compares `from` with decision `to` for `case`; `from_reasons` are the reason codes
    /// behind `from` when it is a decision too.
    pub fn compare(
        &mut self,
        case: &Case,
        from: Outcome,
        from_reasons: Option<Vec<String>>,
        to: &Decision,
    ) {
        if from == to.outcome {
            return;
        }
        self.total += 1;
        *self
            .by_change
            .entry(format!("{from}->{}", to.outcome))
            .or_default() += 1;
        if self.examples.len() < self.keep {
            self.examples.push(Example {
                at: case.at.clone(),
                principal: case.request.principal.id.clone(),
                action: case.request.action.name.clone(),
                from,
                to: to.outcome,
                from_reasons,
                reasons: reason_codes(to),
            });
        }
    }
}

/// The reason codes of `d`, in order.
pub(super) fn reason_codes(d: &Decision) -> Vec<String> {
    d.reasons.iter().map(|r| r.code.clone()).collect()
}

/// Accumulates one policy set's decisions over the replayed cases.
#[derive(Debug)]
pub(super) struct Tally {
    matrix: Matrix,
    changed: Changes,
    latency: Histogram<u64>,
    failures: BTreeMap<String, u64>,
    timeline: Timeline,
}

impl Tally {
    /// An empty tally keeping up to `examples` changed decisions.
    #[expect(
        clippy::expect_used,
        reason = "constant histogram bounds that are valid cannot fail"
    )]
    pub(super) fn new(examples: usize) -> Self {
        Self {
            matrix: Matrix::default(),
            changed: Changes::new(examples),
            // Valid bounds (1 <= low, high >= 2 * low, sigfig <= 5) cannot fail.
            latency: Histogram::new_with_bounds(1, LATENCY_CEILING_MICROS, LATENCY_SIGFIG)
                .expect("constant histogram bounds are valid"),
            failures: BTreeMap::new(),
            timeline: Timeline::default(),
        }
    }

    /// Counts the set's decision `d` on `case`.
    pub(super) fn add(&mut self, case: &Case, d: &Decision) {
        self.timeline
            .add(self.matrix.total(), case.recorded_micros, d.outcome);
        self.matrix.add(case.label, d.outcome);
        self.changed.compare(case, case.label, None, d);
        self.latency.saturating_record(micros(d.elapsed).max(1));
        for p in &d.plugins {
            if let PluginOutcome::Failed(f) = &p.outcome {
                *self.failures.entry(f.kind.as_str().to_owned()).or_default() += 1;
            }
        }
    }

    /// The finished numbers, for the set `source` that is `identity`.
    pub(super) fn report(self, source: &str, identity: &SetIdentity) -> Report {
        let m = self.matrix;
        let percentile = |q: f64| (m.total() > 0).then(|| self.latency.value_at_quantile(q));
        Report {
            policy_set: SetSummary {
                source: source.to_owned(),
                name: identity.name.clone(),
                version: identity.version.clone(),
                digest: identity.digest.clone(),
            },
            actions: m.total(),
            confusion_matrix: OUTCOMES
                .iter()
                .map(|&label| {
                    let row = OUTCOMES
                        .iter()
                        .map(|&d| (d.as_str(), m.get(label, d)))
                        .collect();
                    (label.as_str(), row)
                })
                .collect(),
            decided: OUTCOMES
                .iter()
                .map(|&d| (d.as_str(), m.decided(d)))
                .collect(),
            labelled_allow: m.labelled(Outcome::Allow),
            labelled_not_allow: m.labelled_positive(),
            false_positives: m.false_positives(),
            false_negatives: m.false_negatives(),
            false_positive_rate: m.false_positive_rate(),
            false_negative_rate: m.false_negative_rate(),
            approval_burden_per_1000: m.approval_burden(),
            human_approvals: None,
            changed: self.changed,
            latency_us: Latency {
                p50: percentile(0.50),
                p90: percentile(0.90),
                p99: percentile(0.99),
                max: (m.total() > 0).then(|| self.latency.max()),
            },
            plugin_failures: Failures {
                total: self.failures.values().sum(),
                by_kind: self.failures,
            },
            over_time: self.timeline.finish(),
            matrix: m,
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One policy set's numbers over the replayed cases.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which set.
    pub policy_set: SetSummary,
    /// Actions replayed.
    pub actions: u64,
    /// `confusion_matrix[label][replayed decision]`.
    pub confusion_matrix: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// Replayed decisions by outcome.
    pub decided: BTreeMap<&'static str, u64>,
    /// Actions labelled allow (the false-positive rate's denominator).
    pub labelled_allow: u64,
    /// Actions labelled deny or require-approval (the false-negative rate's denominator).
    pub labelled_not_allow: u64,
    /// Labelled allow, replayed deny or require-approval.
    pub false_positives: u64,
    /// Labelled deny or require-approval, replayed allow.
    pub false_negatives: u64,
    /// `false_positives / labelled_allow` (null when there are none labelled allow).
    pub false_positive_rate: Option<f64>,
    /// `false_negatives / labelled_not_allow` (null when there are none).
    pub false_negative_rate: Option<f64>,
    /// Require-approval decisions per 1,000 actions (null when there are none).
    pub approval_burden_per_1000: Option<f64>,
    /// The approvals and votes people would be asked for, from the server's own
    /// pipeline (identical held requests share one approval).
    pub human_approvals: Option<super::burden::Burden>,
    /// Decisions that differ from the labels.
    pub changed: Changes,
    /// Percentiles of the decision time in microseconds (null when there are none).
    pub latency_us: Latency,
    /// Plugin failures over all decisions.
    pub plugin_failures: Failures,
    /// Replayed decisions by outcome over the recorded time (audit input) or the
    /// input position (labelled file).
    pub over_time: OverTime,
    #[serde(skip)]
    pub matrix: Matrix,
}

/// Where a replayed set came from and what it is.
#[derive(Debug, Clone, Serialize)]
pub struct SetSummary {
    /// As given on the command line.
    pub source: String,
    /// From its manifest.
    pub name: String,
    /// From its manifest.
    pub version: String,
    /// Hex SHA-256 over the manifest and every plugin.
    pub digest: String,
}

/// Decision-time percentiles, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: Option<u64>,
    /// 90th percentile.
    pub p90: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
    /// Slowest.
    pub max: Option<u64>,
}

/// Plugin failures by kind (`timeout`, `trap`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failures {
    /// All of them.
    pub total: u64,
    /// By kind.
    pub by_kind: BTreeMap<String, u64>,
}

/// Candidate minus baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Delta {
    /// More (positive) or fewer false positives.
    pub false_positives: i64,
    /// More (positive) or fewer false negatives.
    pub false_negatives: i64,
    /// Change of the false-positive rate.
    pub false_positive_rate: Option<f64>,
    /// Change of the false-negative rate.
    pub false_negative_rate: Option<f64>,
    /// Change of the approval burden per 1,000 actions.
    pub approval_burden_per_1000: Option<f64>,
    /// Change of the 99th-percentile latency in microseconds.
    pub latency_p99_us: Option<i64>,
}

impl Delta {
    /// `candidate - baseline`.
    pub fn between(baseline: &Report, candidate: &Report) -> Self {
        let count = |b: u64, c: u64| signed(c) - signed(b);
        let rate = |b: Option<f64>, c: Option<f64>| Some(c? - b?);
        Self {
            false_positives: count(baseline.false_positives, candidate.false_positives),
            false_negatives: count(baseline.false_negatives, candidate.false_negatives),
            false_positive_rate: rate(baseline.false_positive_rate, candidate.false_positive_rate),
            false_negative_rate: rate(baseline.false_negative_rate, candidate.false_negative_rate),
            approval_burden_per_1000: rate(
                baseline.approval_burden_per_1000,
                candidate.approval_burden_per_1000,
            ),
            latency_p99_us: baseline
                .latency_us
                .p99
                .zip(candidate.latency_us.p99)
                .map(|(b, c)| count(b, c)),
        }
    }
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
