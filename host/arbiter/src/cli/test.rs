//! `arbiter test`: a policy author's test runner. Evaluates a set (default: the
//! built-in reference set) or a single plugin in-process against a test file, or
//! against every test file of a plugin project ([`project`]), prints each mismatch,
//! optionally the coverage of each plugin's declared rules ([`coverage`]), and ends
//! with `N passed, M failed`. A `*.toml` file holds readable test cases ([`cases`]);
//! any other file is JSON-lines vectors.

pub(crate) mod cases;
mod coverage;
mod fixtures;
pub(crate) mod pipeline;
pub(crate) mod project;
mod request;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::AddAssign;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use arbiter_core::{Decision, Limits, Outcome, PluginOutcome, Request};
use arbiter_runtime::{PolicySet, Runtime, RuntimeConfig, SetSource};
use serde::Deserialize;

use self::coverage::Coverage;
use crate::embedded;

/// Flags of `arbiter test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Test cases (`*.toml`: named cases with request defaults) or JSON-lines vectors
    /// (any other file: `{"id", "request", "approved", "expected"}` per line); or a
    /// project directory holding `policy-set.toml` (the set under test) and
    /// `tests/*.cases.toml` and `tests/*.jsonl` (every one is run).
    #[arg(value_name = "FILE|DIR")]
    pub vectors: PathBuf,
    /// Policy set: a directory (or its `policy-set.toml`) or `builtin:NAME`
    /// [default: the project directory given, else builtin:reference].
    #[arg(long, conflicts_with = "plugin")]
    pub policy_set: Option<String>,
    /// A single plugin component to test on its own.
    #[arg(long)]
    pub plugin: Option<PathBuf>,
    /// Also print the vectors or cases that pass.
    #[arg(long, short)]
    pub verbose: bool,
    /// Run JSON-lines vectors through the server's whole decision pipeline (approval
    /// hold, approvers required, redemption) in a scratch data directory, instead of
    /// evaluating the set alone: a vector marked `approved` is held, approved and
    /// redeemed as an enforcement point would.
    #[arg(long, conflicts_with = "plugin")]
    pub pipeline: bool,
    /// Also report, per plugin, which of the reason codes it declares (`rules` in the
    /// manifest) the tests exercised, which they never did, and which codes it emitted
    /// undeclared. Does not change the exit code.
    #[arg(long, conflicts_with = "pipeline")]
    pub coverage: bool,
}

/// One line of a JSON-lines vector file (also what `arbiter replay --labels` reads).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Vector {
    #[serde(default)]
    pub(crate) id: serde_json::Value,
    pub(crate) request: Request,
    #[serde(default)]
    pub(crate) approved: bool,
    pub(crate) expected: String,
    /// Rule ids that matched, for debugging.
    #[serde(default)]
    pub(crate) rules: Vec<String>,
}

/// Counts of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    passed: usize,
    failed: usize,
}

impl AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

/// Whether `path` is a test-case file (`*.toml`) rather than JSON-lines vectors.
pub(crate) fn is_case_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
}

/// Runs the command; the result is the process exit code (0 when every vector or case
/// passes).
pub async fn run(args: TestArgs) -> anyhow::Result<i32> {
    let project = project::open(&args.vectors)?;
    let name = args.vectors.display().to_string();
    if args.pipeline {
        return run_pipeline(&args, &name, project.is_some()).await;
    }
    let default_set = || format!("{}{}", embedded::PREFIX, embedded::DEFAULT_SET);
    let source = match (&args.plugin, &args.policy_set, &project) {
        (Some(plugin), _, _) => single_plugin(plugin)?,
        (None, Some(set), _) => embedded::resolve(set).map_err(anyhow::Error::msg)?,
        (None, None, Some(p)) => SetSource::Path(p.dir.clone()),
        (None, None, None) => embedded::resolve(&default_set()).map_err(anyhow::Error::msg)?,
    };
    if let SetSource::Path(path) = &source {
        project::check_built(path, project.is_some() && args.policy_set.is_none())?;
    }
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let set = PolicySet::load(&runtime, source, Limits::default()).await?;
    let mut coverage = Coverage::default();
    let mut total = Tally::default();
    let mut out = std::io::stdout().lock();
    match &project {
        None => {
            total += run_file(&set, &args.vectors, args.verbose, &mut coverage, &mut out).await?
        }
        Some(p) => {
            // Each file's results under a header that counts them.
            for file in &p.files {
                let mut results = Vec::new();
                let tally = run_file(&set, file, args.verbose, &mut coverage, &mut results).await?;
                writeln!(
                    out,
                    "== {} ({} passed, {} failed)",
                    file.display(),
                    tally.passed,
                    tally.failed
                )?;
                out.write_all(&results)?;
                total += tally;
            }
        }
    }
    if args.coverage {
        let plugins = set.manifest().plugins.iter();
        write!(
            out,
            "{}",
            coverage.report(plugins.map(|p| (p.name.as_str(), p.rules.as_slice())))
        )?;
    }
    writeln!(out, "{} passed, {} failed", total.passed, total.failed)?;
    Ok(if total.failed == 0 { 0 } else { 1 })
}

/// Runs one test file (cases or vectors, by its extension) against `set`.
async fn run_file(
    set: &PolicySet,
    path: &Path,
    verbose: bool,
    coverage: &mut Coverage,
    out: &mut impl Write,
) -> anyhow::Result<Tally> {
    let name = path.display().to_string();
    let cases = is_case_file(path);
    let text = std::fs::read_to_string(path).with_context(|| {
        let what = if cases { "test cases" } else { "vectors" };
        format!("cannot read {what} `{name}`")
    })?;
    Ok(if cases {
        cases::run(set, &text, &name, verbose, coverage, out).await?
    } else {
        run_vectors(set, &text, &name, verbose, coverage, out).await?
    })
}

/// `--pipeline`: one JSON-lines vectors file through the server's decision pipeline.
async fn run_pipeline(args: &TestArgs, name: &str, project: bool) -> anyhow::Result<i32> {
    if project {
        anyhow::bail!(
            "`--pipeline` runs one JSON-lines vectors file; `{name}` is a project directory\nhint: give the vectors file, e.g. `{name}/tests/NAME.jsonl`"
        );
    }
    if is_case_file(&args.vectors) {
        anyhow::bail!(
            "`--pipeline` runs JSON-lines vectors; `{name}` is a test-case file\nhint: drop --pipeline for test cases"
        );
    }
    let text = std::fs::read_to_string(&args.vectors)
        .with_context(|| format!("cannot read vectors `{name}`"))?;
    let set = args
        .policy_set
        .clone()
        .unwrap_or_else(|| format!("{}{}", embedded::PREFIX, embedded::DEFAULT_SET));
    let mut out = std::io::stdout().lock();
    let tally = pipeline::run_vectors(&set, &text, name, args.verbose, &mut out).await?;
    writeln!(out, "{} passed, {} failed", tally.passed, tally.failed)?;
    Ok(if tally.failed == 0 { 0 } else { 1 })
}

/// Runs a JSON-lines vectors file.
async fn run_vectors(
    set: &PolicySet,
    text: &str,
    name: &str,
    verbose: bool,
    coverage: &mut Coverage,
    out: &mut impl Write,
) -> std::io::Result<Tally> {
    let mut tally = Tally::default();
    for (i, line) in text.lines().enumerate() {
        let Some((v, expected)) = parse_vector(line, i, name, &mut tally, out)? else {
            continue;
        };
        let d = set.decide(&v.request, v.approved).await;
        coverage.record(&d);
        judge(&v, i, expected, &d, verbose, &mut tally, out)?;
    }
    Ok(tally)
}

/// Counts vector `v` (line `i`, 0-based) passed or failed by decision `d`, printing
/// `ok` (when verbose) or the mismatch with the decision's details.
fn judge(
    v: &Vector,
    i: usize,
    expected: Outcome,
    d: &Decision,
    verbose: bool,
    tally: &mut Tally,
    out: &mut impl Write,
) -> std::io::Result<()> {
    if d.outcome == expected {
        tally.passed += 1;
        if verbose {
            writeln!(out, "ok   {} {expected}", v.id)?;
        }
        return Ok(());
    }
    tally.failed += 1;
    writeln!(
        out,
        "FAIL {} (line {}): expected {expected}, got {}",
        v.id,
        i + 1,
        d.outcome
    )?;
    if !v.rules.is_empty() {
        writeln!(out, "     rules expected to match: {}", v.rules.join(", "))?;
    }
    print_decision(out, d)
}

/// Line `i` (0-based) of a vectors file as a vector and its expected outcome; `None`
/// for a blank line, or for one that is not a valid vector (counted failed, with the
/// file, line and a hint printed).
fn parse_vector(
    line: &str,
    i: usize,
    name: &str,
    tally: &mut Tally,
    out: &mut impl Write,
) -> std::io::Result<Option<(Vector, Outcome)>> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let v: Vector = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            tally.failed += 1;
            writeln!(
                out,
                "{name}:{}: not a test vector: {e}\n  hint: each line is {{\"id\", \"request\", \"approved\", \"expected\"}}",
                i + 1
            )?;
            return Ok(None);
        }
    };
    let Some(expected) = Outcome::parse(&v.expected) else {
        tally.failed += 1;
        writeln!(
            out,
            "{name}:{}: `expected` is `{}`; use allow, deny or require-approval",
            i + 1,
            v.expected
        )?;
        return Ok(None);
    };
    Ok(Some((v, expected)))
}

/// The details printed under a `FAIL` line: the decision's reason codes with their
/// admin messages, then every plugin's verdict and reason codes, or its failure.
fn print_decision(out: &mut impl Write, d: &Decision) -> std::io::Result<()> {
    for r in &d.reasons {
        writeln!(out, "     reason {}: {}", r.code, r.admin_message)?;
    }
    for p in &d.plugins {
        match &p.outcome {
            PluginOutcome::Verdict(verdict) => {
                let codes: Vec<&str> = verdict.reasons.iter().map(|r| r.code.as_str()).collect();
                writeln!(
                    out,
                    "     plugin {}: {} [{}]",
                    p.name,
                    verdict.effect.as_str(),
                    codes.join(", ")
                )?;
            }
            PluginOutcome::Failed(f) => writeln!(
                out,
                "     plugin {}: failed ({}): {}",
                p.name, f.kind, f.detail
            )?,
        }
    }
    Ok(())
}

/// Wraps one component as a set of one plugin named after its file.
pub(crate) fn single_plugin(path: &Path) -> anyhow::Result<SetSource> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read plugin `{}`", path.display()))?;
    let stem: String = path
        .file_stem()
        .map(|s| {
            s.to_string_lossy()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect()
        })
        .filter(|s: &String| !s.is_empty())
        .unwrap_or_else(|| "plugin".into());
    let manifest = format!(
        "format = 1\nname = \"{stem}\"\nversion = \"test\"\n\n[[plugins]]\nname = \"{stem}\"\npath = \"plugin.wasm\"\n"
    );
    Ok(SetSource::Files {
        origin: path.display().to_string(),
        manifest,
        files: BTreeMap::from([("plugin.wasm".to_string(), bytes)]),
    })
}
