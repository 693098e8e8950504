//! The confusion matrix and the rates derived from it.

use arbiter_core::Outcome;

/// The three outcomes in the order of the confusion matrix's rows and columns.
pub(super) const OUTCOMES: [Outcome; 3] = [Outcome::Allow, Outcome::Deny, Outcome::RequireApproval];

/// The row or column of `outcome`.
fn index(outcome: Outcome) -> usize {
    match outcome {
        Outcome::Allow => 0,
        Outcome::Deny => 1,
        Outcome::RequireApproval => 2,
    }
}

/// Counts of (label, replayed decision) pairs: `counts[label][replayed]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Matrix {
    counts: [[u64; 3]; 3],
}

impl Matrix {
    /// Counts one action labelled `label` and decided `replayed`.
    pub fn add(&mut self, label: Outcome, replayed: Outcome) {
        self.counts[index(label)][index(replayed)] += 1;
    }

    /// Actions labelled `label` and decided `replayed`.
    pub fn get(&self, label: Outcome, replayed: Outcome) -> u64 {
        self.counts[index(label)][index(replayed)]
    }

    /// Every action counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Actions labelled `label`.
    pub fn labelled(&self, label: Outcome) -> u64 {
        self.counts[index(label)].iter().sum()
    }

    /// Actions decided `replayed`.
    pub fn decided(&self, replayed: Outcome) -> u64 {
        self.counts.iter().map(|row| row[index(replayed)]).sum()
    }

    /// Labelled allow, stopped by the replayed set (deny or require-approval).
    pub fn false_positives(&self) -> u64 {
        self.labelled(Outcome::Allow) - self.get(Outcome::Allow, Outcome::Allow)
    }

    /// Labelled deny or require-approval, allowed by the replayed set.
    pub fn false_negatives(&self) -> u64 {
        self.get(Outcome::Deny, Outcome::Allow) + self.get(Outcome::RequireApproval, Outcome::Allow)
    }

    /// Actions the labels say the control must stop (deny or require-approval).
    pub fn labelled_positive(&self) -> u64 {
        self.total() - self.labelled(Outcome::Allow)
    }

    /// False positives over labelled allow; `None` when nothing is labelled allow.
    pub fn false_positive_rate(&self) -> Option<f64> {
        ratio(self.false_positives(), self.labelled(Outcome::Allow))
    }

    /// False negatives over labelled deny or require-approval; `None` when there are none.
    pub fn false_negative_rate(&self) -> Option<f64> {
        ratio(self.false_negatives(), self.labelled_positive())
    }

    /// Require-approval decisions per 1,000 actions; `None` when there are no actions.
    pub fn approval_burden(&self) -> Option<f64> {
        ratio(self.decided(Outcome::RequireApproval), self.total()).map(|r| r * 1000.0)
    }
}

// Counts stay far below 2^53, where the conversion to f64 is exact.
fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}
