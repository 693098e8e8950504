//! `arbiter replay`: measures a policy set before it is enforced. Evaluates the set
//! in-process over a labelled file (the vectors format) or over the requests recorded
//! in an audit log, and reports the confusion matrix against the labels (or the
//! recorded decisions), false-positive and false-negative rates, approval burden,
//! changed decisions, latency and plugin failures. Given `--baseline` and
//! `--candidate`, it reports both and what differs between them.
//!
//! Cases are evaluated one at a time, both sets in turn, so latency is measured
//! without the two sets competing for the CPU.

mod burden;
mod input;
mod matrix;
mod over_time;
mod report;
mod save;
mod table;
#[cfg(test)]
mod tests;
pub(crate) mod time;

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use arbiter_core::Limits;
use arbiter_runtime::{PolicySet, Runtime, RuntimeConfig};
use serde::Serialize;

use self::input::{AuditSource, Case, Skipped};
use self::report::{Changes, Delta, Report, Tally, reason_codes};
use crate::embedded;

/// Flags of `arbiter replay`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["labels", "audit"])))]
pub struct ReplayArgs {
    /// Policy set to measure: `builtin:NAME` or a set directory
    /// [default: builtin:reference].
    #[arg(long, value_name = "SET", conflicts_with_all = ["baseline", "candidate"])]
    pub policy_set: Option<String>,
    /// The set in force today, compared with `--candidate`.
    #[arg(long, value_name = "SET", requires = "candidate")]
    pub baseline: Option<String>,
    /// The set proposed to replace `--baseline`.
    #[arg(long, value_name = "SET", requires = "baseline")]
    pub candidate: Option<String>,
    /// Labelled JSON-lines file: `{"id", "request", "approved", "expected"}` per line.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Data directory of `arbiter serve` (or its `audit.db`): replay the recorded
    /// decisions, measured against what was enforced.
    #[arg(long, value_name = "DATA_DIR")]
    pub audit: Option<PathBuf>,
    /// Only decisions recorded for the policy set of this name.
    #[arg(long = "set", value_name = "NAME", requires = "audit")]
    pub audit_set: Option<String>,
    /// Only decisions recorded at or after this time (RFC 3339 or unix seconds).
    #[arg(long, value_name = "TIME", requires = "audit", value_parser = time::parse_time)]
    pub since: Option<i64>,
    /// Only decisions recorded before this time (RFC 3339 or unix seconds).
    #[arg(long, value_name = "TIME", requires = "audit", value_parser = time::parse_time)]
    pub until: Option<i64>,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Examples of changed decisions to show, per comparison.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub examples: usize,
    /// Also save the JSON document, with its time and these flags, as a new file in
    /// this directory (the console reads `<data_dir>/reports` of the server).
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
}

/// Everything a replay reports; `--json` prints it as is.
#[derive(Debug, Serialize)]
pub struct Output {
    /// What was replayed.
    pub input: InputSummary,
    /// What the numbers mean.
    pub definitions: Definitions,
    /// One set's report, or two and their difference.
    #[serde(flatten)]
    pub reports: Reports,
}

/// What was replayed.
#[derive(Debug, Serialize)]
pub struct InputSummary {
    /// `labels` or `audit`.
    pub kind: &'static str,
    /// The labelled file or the audit database.
    pub path: String,
    /// What the labels are.
    pub labels: &'static str,
    /// Actions replayed.
    pub actions: u64,
    /// Audit records left out (audit input only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Skipped>,
}

/// One report, or a baseline and a candidate.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Reports {
    /// `--policy-set`.
    One {
        /// The set's numbers.
        report: Report,
    },
    /// `--baseline` and `--candidate`.
    Two {
        /// The baseline's numbers.
        baseline: Report,
        /// The candidate's numbers.
        candidate: Report,
        /// Candidate minus baseline.
        delta: Delta,
        /// Decisions that differ between baseline (`from`) and candidate (`to`).
        differences: Changes,
    },
}

/// The definitions behind the numbers, printed with them so a reader of the JSON
/// alone knows what they mean.
#[derive(Debug, Serialize)]
pub struct Definitions {
    positive: &'static str,
    false_positive: &'static str,
    false_negative: &'static str,
    false_positive_rate: &'static str,
    false_negative_rate: &'static str,
    approval_burden_per_1000: &'static str,
    human_approvals: &'static str,
    confusion_matrix: &'static str,
    latency_us: &'static str,
}

const DEFINITIONS: Definitions = Definitions {
    positive: "the control stops the action: deny or require-approval",
    false_positive: "labelled allow, replayed deny or require-approval",
    false_negative: "labelled deny or require-approval, replayed allow",
    false_positive_rate: "false positives / actions labelled allow",
    false_negative_rate: "false negatives / actions labelled deny or require-approval",
    approval_burden_per_1000: "require-approval decisions per 1,000 replayed actions",
    human_approvals: "each action also put through the server's decision pipeline: approvals opened (identical held requests join one pending approval) and approver votes they need, per 1,000 replayed actions",
    confusion_matrix: "confusion_matrix[label][replayed decision]",
    latency_us: "percentiles of the decision time (all plugins and combining), microseconds",
};

const LABELS_FROM_FILE: &str = "the `expected` decision of each line";
const LABELS_FROM_AUDIT: &str = "the decisions recorded in the audit log: false positives and negatives are relative to what was enforced, not to ground truth";

/// A policy set to replay, with the name it was given on the command line.
#[derive(Debug)]
struct Named {
    source: String,
    set: PolicySet,
}

impl Named {
    async fn load(runtime: &Runtime, source: String) -> anyhow::Result<Self> {
        let resolved = embedded::resolve(&source).map_err(anyhow::Error::msg)?;
        let set = PolicySet::load(runtime, resolved, Limits::default())
            .await
            .with_context(|| format!("cannot load policy set `{source}`"))?;
        Ok(Self { source, set })
    }
}

/// Runs the command; the result is the process exit code.
pub async fn run(args: ReplayArgs) -> anyhow::Result<i32> {
    let inputs = save::Inputs::of(&args);
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let (first, second) = match (args.baseline, args.candidate) {
        (Some(baseline), Some(candidate)) => (baseline, Some(candidate)),
        _ => (
            args.policy_set
                .unwrap_or_else(|| format!("{}{}", embedded::PREFIX, embedded::DEFAULT_SET)),
            None,
        ),
    };
    let first = Named::load(&runtime, first).await?;
    let second = match second {
        Some(source) => Some(Named::load(&runtime, source).await?),
        None => None,
    };

    let mut replay = Replay::new(second.is_some(), args.examples);
    replay.pipelines.0 = Some(burden::Pipeline::open(&first.source).await?);
    if let Some(second) = &second {
        replay.pipelines.1 = Some(burden::Pipeline::open(&second.source).await?);
    }
    let sets = (&first, second.as_ref());
    let input = if let Some(path) = &args.labels {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read labelled vectors `{name}`"))?;
        let cases = input::labelled(&text, &name)?;
        replay.run(sets, &cases).await;
        InputSummary {
            kind: "labels",
            path: name,
            labels: LABELS_FROM_FILE,
            actions: replay.actions,
            skipped: None,
        }
    } else if let Some(dir) = &args.audit {
        let mut audit = AuditSource::open(dir, args.audit_set, args.since, args.until)?;
        while let Some(cases) = audit.next_page().await? {
            replay.run(sets, &cases).await;
        }
        InputSummary {
            kind: "audit",
            path: audit.path().display().to_string(),
            labels: LABELS_FROM_AUDIT,
            actions: replay.actions,
            skipped: Some(audit.skipped),
        }
    } else {
        // clap requires one of the two; this is for callers that build the flags.
        anyhow::bail!("give --labels FILE or --audit DATA_DIR");
    };

    let output = Output {
        input,
        definitions: DEFINITIONS,
        reports: replay.finish(&first, second.as_ref()),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &output)?;
        writeln!(out)?;
    } else {
        table::print(&mut out, &output)?;
    }
    out.flush()?;
    if let Some(dir) = &args.save {
        let path = save::save(dir, &inputs, &output)?;
        eprintln!("saved {}", path.display());
    }
    Ok(0)
}

/// The running counts of a replay of one set, or of a baseline and a candidate.
#[derive(Debug)]
struct Replay {
    actions: u64,
    first: Tally,
    second: Option<Tally>,
    differences: Changes,
    /// The server pipeline of each set, for the approvals people would be asked for.
    pipelines: (Option<burden::Pipeline>, Option<burden::Pipeline>),
}

impl Replay {
    fn new(two_sets: bool, examples: usize) -> Self {
        Self {
            actions: 0,
            first: Tally::new(examples),
            second: two_sets.then(|| Tally::new(examples)),
            differences: Changes::new(examples),
            pipelines: (None, None),
        }
    }

    /// Decides every case with the first set and, if there is one, the second.
    async fn run(&mut self, (first, second): (&Named, Option<&Named>), cases: &[Case]) {
        for case in cases {
            self.actions += 1;
            let a = first.set.decide(&case.request, case.approved).await;
            self.first.add(case, &a);
            if let Some(p) = &mut self.pipelines.0 {
                p.add(&case.request).await;
            }
            if let (Some(second), Some(tally)) = (second, &mut self.second) {
                let b = second.set.decide(&case.request, case.approved).await;
                tally.add(case, &b);
                if let Some(p) = &mut self.pipelines.1 {
                    p.add(&case.request).await;
                }
                self.differences
                    .compare(case, a.outcome, Some(reason_codes(&a)), &b);
            }
        }
    }

    fn finish(self, first: &Named, second: Option<&Named>) -> Reports {
        let burden = |p: &Option<burden::Pipeline>| p.as_ref().map(burden::Pipeline::burden);
        let mut report = self.first.report(&first.source, first.set.identity());
        report.human_approvals = burden(&self.pipelines.0);
        match (second, self.second) {
            (Some(named), Some(tally)) => {
                let mut candidate = tally.report(&named.source, named.set.identity());
                candidate.human_approvals = burden(&self.pipelines.1);
                Reports::Two {
                    delta: Delta::between(&report, &candidate),
                    baseline: report,
                    candidate,
                    differences: self.differences,
                }
            }
            _ => Reports::One { report },
        }
    }
}
