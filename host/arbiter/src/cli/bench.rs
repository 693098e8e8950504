//! `arbiter bench`: what a decision costs with a policy set or a single plugin, on the
//! requests of a test file, vectors or a project's tests, so that an author sees the
//! cost of a change before shipping it. Measured in-process, one decision at a time,
//! with every plugin in a fresh instance per evaluation (the default) and with pooled
//! warm instances (the opt-in), side by side.
//!
//! Each mode loads its own copy of the set (its manifest rewritten to that mode), so
//! the load time is the compile and `configure` time of the whole set; the first pass
//! (`--warmup`) is not measured, so that neither mode is charged for first-touch costs.

mod input;
mod report;
mod stats;
#[cfg(test)]
mod tests;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arbiter_core::{Instances, Limits, PluginOutcome, Request};
use arbiter_runtime::{PolicySet, Runtime, RuntimeConfig, SetSource};

use self::input::{Input, SetFiles};
use self::report::{InputInfo, ModeReport, PluginTime, Report, SetInfo};
use self::stats::Summary;
use crate::cli::test::{project, single_plugin};
use crate::embedded;

/// Decisions a run measures per mode when `--iterations` is not given: about a second
/// for a Rust plugin, and ten samples above the p99, so that it is a measurement and
/// not the single slowest decision.
const TARGET_DECISIONS: usize = 1000;

/// Flags of `arbiter bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Test cases (`*.toml`), JSON-lines vectors (any other file), or a project
    /// directory holding `policy-set.toml` (the set measured) and `tests/*.cases.toml`
    /// and `tests/*.jsonl` (the requests).
    #[arg(value_name = "FILE|DIR")]
    pub input: PathBuf,
    /// Policy set: a directory (or its `policy-set.toml`), a bundle or `builtin:NAME`
    /// [default: the project directory given, else builtin:reference].
    #[arg(long, value_name = "SET", conflicts_with = "plugin")]
    pub policy_set: Option<String>,
    /// A single plugin component to measure on its own.
    #[arg(long, value_name = "WASM")]
    pub plugin: Option<PathBuf>,
    /// Instance mode to measure: every plugin forced to `fresh`, to `pooled`, or both
    /// side by side.
    #[arg(long, value_enum, default_value_t = ModeArg::Both)]
    pub mode: ModeArg,
    /// Measured passes over all the requests [default: enough for about 1000
    /// decisions].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub iterations: Option<u32>,
    /// Passes over all the requests before measuring, per mode.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub warmup: u32,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// A fresh instance per evaluation.
    Fresh,
    /// Warm instances reused across evaluations.
    Pooled,
    /// Fresh, then pooled.
    Both,
}

impl ModeArg {
    fn instances(self) -> &'static [Instances] {
        match self {
            Self::Fresh => &[Instances::Fresh],
            Self::Pooled => &[Instances::Pooled],
            Self::Both => &[Instances::Fresh, Instances::Pooled],
        }
    }
}

/// Runs the command; the result is the process exit code.
pub async fn run(args: BenchArgs) -> anyhow::Result<i32> {
    // Plugin failures are counted in the report; a warning per failed evaluation would
    // bury it.
    super::serve::init_logging(crate::config::LogFormat::Text, "error");
    let (source, files) = resolve(&args)?;
    let set = SetFiles::read(source)?;
    let inputs = files
        .iter()
        .map(|f| input::read(f))
        .collect::<anyhow::Result<Vec<Input>>>()?;
    let requests: Vec<&(Request, bool)> = inputs.iter().flat_map(|i| &i.requests).collect();
    let iterations = args
        .iterations
        .unwrap_or_else(|| default_iterations(requests.len()));

    let runtime = Runtime::new(RuntimeConfig::default())?;
    let mut modes = Vec::new();
    for &instances in args.mode.instances() {
        let started = Instant::now();
        let loaded = PolicySet::load(&runtime, set.source(instances)?, Limits::default())
            .await
            .with_context(|| format!("cannot load `{}`", set.origin))?;
        let load = started.elapsed();
        let samples = measure(&loaded, &requests, args.warmup, iterations).await;
        modes.push(samples.report(instances, load));
    }

    let report = Report {
        set: SetInfo {
            name: set.manifest.name.clone(),
            version: set.manifest.version.clone(),
            origin: set.origin.clone(),
        },
        components: set.components(),
        inputs: inputs
            .iter()
            .map(|i| InputInfo {
                file: i.file.clone(),
                requests: i.requests.len(),
            })
            .collect(),
        requests: requests.len(),
        warmup: args.warmup,
        iterations,
        modes,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        report::print(&mut out, &report)?;
    }
    Ok(0)
}

/// The set to measure and the input files, as `arbiter test` reads them: a project
/// directory is the set (unless `--policy-set` or `--plugin` names another) and its
/// tests are the inputs.
fn resolve(args: &BenchArgs) -> anyhow::Result<(SetSource, Vec<PathBuf>)> {
    let project = project::open(&args.input)?;
    let source = match (&args.plugin, &args.policy_set, &project) {
        (Some(plugin), _, _) => single_plugin(plugin)?,
        (None, Some(set), _) => embedded::resolve(set).map_err(anyhow::Error::msg)?,
        (None, None, Some(p)) => SetSource::Path(p.dir.clone()),
        (None, None, None) => {
            embedded::resolve(&format!("{}{}", embedded::PREFIX, embedded::DEFAULT_SET))
                .map_err(anyhow::Error::msg)?
        }
    };
    if let SetSource::Path(path) = &source {
        project::check_built(path, project.is_some() && args.policy_set.is_none())?;
    }
    let files = project.map_or_else(|| vec![args.input.clone()], |p| p.files);
    Ok((source, files))
}

/// Passes that make about [`TARGET_DECISIONS`] decisions, at least one.
pub(crate) fn default_iterations(requests: usize) -> u32 {
    let passes = TARGET_DECISIONS.div_ceil(requests.max(1)).max(1);
    u32::try_from(passes).unwrap_or(u32::MAX)
}

/// The timings of one mode: every decision, every plugin evaluation.
#[derive(Debug)]
struct Samples {
    decisions: Vec<Duration>,
    /// Per plugin, in manifest order.
    plugins: Vec<(String, Vec<Duration>, u64)>,
}

impl Samples {
    fn report(mut self, mode: Instances, load: Duration) -> ModeReport {
        let decision = Summary::of(&mut self.decisions);
        ModeReport {
            mode,
            // To the microsecond.
            load_ms: load.as_micros() as f64 / 1e3,
            decisions_per_second: decision.per_second(),
            decision,
            plugins: self
                .plugins
                .into_iter()
                .map(|(name, mut times, failures)| PluginTime {
                    name,
                    time: Summary::of(&mut times),
                    failures,
                })
                .collect(),
        }
    }
}

/// Runs `warmup` unmeasured passes, then `iterations` measured ones, one decision at a
/// time.
async fn measure(
    set: &PolicySet,
    requests: &[&(Request, bool)],
    warmup: u32,
    iterations: u32,
) -> Samples {
    for _ in 0..warmup {
        for (request, approved) in requests {
            set.decide(request, *approved).await;
        }
    }
    let total = requests.len() * iterations as usize;
    let mut samples = Samples {
        decisions: Vec::with_capacity(total),
        plugins: set
            .manifest()
            .plugins
            .iter()
            .map(|p| (p.name.clone(), Vec::with_capacity(total), 0))
            .collect(),
    };
    for _ in 0..iterations {
        for (request, approved) in requests {
            let started = Instant::now();
            let decision = set.decide(request, *approved).await;
            samples.decisions.push(started.elapsed());
            // The decision lists every plugin of the set in manifest order.
            for (report, (_, times, failures)) in decision.plugins.iter().zip(&mut samples.plugins)
            {
                times.push(report.elapsed);
                if matches!(report.outcome, PluginOutcome::Failed(_)) {
                    *failures += 1;
                }
            }
        }
    }
    samples
}
