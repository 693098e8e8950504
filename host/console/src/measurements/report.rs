//! A saved `arbiter replay --save` report as the console reads it: only the fields the
//! pages show, each optional where an older or partial report may lack it. The JSON
//! document is the contract (docs/measuring.md), not the replay's Rust types.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole document.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Doc {
    pub(crate) generated_micros: Option<i64>,
    pub(crate) input: Input,
    /// `--policy-set`: one set.
    pub(crate) report: Option<SetReport>,
    /// `--baseline` and `--candidate`.
    pub(crate) baseline: Option<SetReport>,
    pub(crate) candidate: Option<SetReport>,
    pub(crate) differences: Option<Changes>,
}

impl Doc {
    /// The reports in column order: the one set, or baseline then candidate.
    pub(crate) fn sets(&self) -> Vec<&SetReport> {
        match (&self.report, &self.baseline, &self.candidate) {
            (_, Some(b), Some(c)) => vec![b, c],
            (Some(one), _, _) => vec![one],
            _ => Vec::new(),
        }
    }

    /// The decisions that differ: baseline against candidate, or the one set against
    /// its labels.
    pub(crate) fn changes(&self) -> Option<&Changes> {
        self.differences
            .as_ref()
            .or(self.report.as_ref().map(|r| &r.changed))
    }
}

/// What was replayed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Input {
    pub(crate) kind: String,
    pub(crate) path: String,
    pub(crate) labels: String,
    pub(crate) actions: u64,
    pub(crate) skipped: Option<Skipped>,
}

/// Audit records left out.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Skipped {
    pub(crate) redacted: u64,
    pub(crate) unreadable: u64,
}

/// One set's numbers.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SetReport {
    pub(crate) policy_set: SetSummary,
    pub(crate) actions: u64,
    /// `confusion_matrix[label][decision]`.
    pub(crate) confusion_matrix: BTreeMap<String, BTreeMap<String, u64>>,
    pub(crate) false_positives: u64,
    pub(crate) false_negatives: u64,
    pub(crate) false_positive_rate: Option<f64>,
    pub(crate) false_negative_rate: Option<f64>,
    pub(crate) approval_burden_per_1000: Option<f64>,
    pub(crate) human_approvals: Option<Burden>,
    pub(crate) changed: Changes,
    pub(crate) latency_us: Latency,
    pub(crate) plugin_failures: Failures,
    pub(crate) over_time: Option<OverTime>,
}

impl SetReport {
    /// The confusion matrix as counts `[label][decision]` in the charts' outcome order.
    pub(crate) fn matrix(&self) -> [[u64; 3]; 3] {
        let keys = crate::charts::OUTCOMES.map(|(k, _, _)| k);
        keys.map(|label| {
            keys.map(|decided| {
                self.confusion_matrix
                    .get(label)
                    .and_then(|row| row.get(decided))
                    .copied()
                    .unwrap_or(0)
            })
        })
    }

    /// `name@version`, or the source when the report names no set.
    pub(crate) fn set_name(&self) -> String {
        let s = &self.policy_set;
        match (s.name.is_empty(), s.version.is_empty()) {
            (false, false) => format!("{}@{}", s.name, s.version),
            (false, true) => s.name.clone(),
            _ => s.source.clone(),
        }
    }
}

/// Which set.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SetSummary {
    pub(crate) source: String,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) digest: String,
}

/// The approvals people would be asked for.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Burden {
    pub(crate) approvals_per_1000: Option<f64>,
    pub(crate) votes_per_1000: Option<f64>,
}

/// Decision-time percentiles, microseconds.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Latency {
    pub(crate) p50: Option<u64>,
    pub(crate) p90: Option<u64>,
    pub(crate) p99: Option<u64>,
    pub(crate) max: Option<u64>,
}

/// Plugin failures.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Failures {
    pub(crate) total: u64,
}

/// Decisions that differ between two sources.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Changes {
    pub(crate) total: u64,
    pub(crate) by_change: BTreeMap<String, u64>,
    pub(crate) examples: Vec<Example>,
}

/// One changed decision.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Example {
    /// Vector id (labels input).
    pub(crate) id: serde_json::Value,
    /// Vector line (labels input).
    pub(crate) line: Option<u64>,
    /// Audit record sequence number (audit input).
    pub(crate) seq: Option<u64>,
    pub(crate) decision_id: Option<String>,
    pub(crate) principal: String,
    pub(crate) action: String,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) from_reasons: Option<Vec<String>>,
    pub(crate) reasons: Vec<String>,
}

/// Decisions by outcome over time (or input position).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct OverTime {
    /// `time` (unix microseconds) or `position` (input lines from 0).
    pub(crate) axis: String,
    pub(crate) width: i64,
    pub(crate) buckets: Vec<Bucket>,
}

/// One bucket.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Bucket {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) decided: BTreeMap<String, u64>,
}
