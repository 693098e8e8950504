//! What `arbiter bench` reports: one document (`--json` prints it as is) and its text
//! form, a row per mode side by side, then a row per plugin and mode.

use std::io::{self, Write};

use arbiter_core::Instances;
use serde::Serialize;

use super::input::Component;
use super::stats::Summary;

/// Everything a run measured.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// The set measured.
    pub set: SetInfo,
    /// Each plugin's component, in manifest order.
    pub components: Vec<Component>,
    /// The input files and how many requests each gave.
    pub inputs: Vec<InputInfo>,
    /// Requests in one pass over the inputs.
    pub requests: usize,
    /// Passes run before measuring, per mode.
    pub warmup: u32,
    /// Passes measured, per mode.
    pub iterations: u32,
    /// One entry per mode, fresh first.
    pub modes: Vec<ModeReport>,
}

/// Which set was measured.
#[derive(Debug, Serialize)]
pub(crate) struct SetInfo {
    /// Its name in the manifest.
    pub name: String,
    /// Its version in the manifest.
    pub version: String,
    /// Where it came from: `builtin:NAME`, a directory, a plugin file.
    pub origin: String,
}

/// One input file.
#[derive(Debug, Serialize)]
pub(crate) struct InputInfo {
    /// The file as given.
    pub file: String,
    /// Requests it holds.
    pub requests: usize,
}

/// The set measured with every plugin in one instance mode.
#[derive(Debug, Serialize)]
pub(crate) struct ModeReport {
    /// Fresh or pooled.
    pub mode: Instances,
    /// Time to load the set: read, compile, `describe` and `configure` every plugin.
    pub load_ms: f64,
    /// Per-decision time, whole decisions.
    #[serde(flatten)]
    pub decision: Summary,
    /// One thread, one decision after another.
    pub decisions_per_second: f64,
    /// Per-plugin time (instantiation included), in manifest order.
    pub plugins: Vec<PluginTime>,
}

/// One plugin's share of the decisions of one mode.
#[derive(Debug, Serialize)]
pub(crate) struct PluginTime {
    /// Its name in the manifest.
    pub name: String,
    /// Per-evaluation time.
    #[serde(flatten)]
    pub time: Summary,
    /// Evaluations that failed (trap, timeout, limit, bad output, quarantine).
    pub failures: u64,
}

/// Column headings of the decision table, after the mode.
const DECISION_COLUMNS: [&str; 8] = [
    "load ms",
    "decisions",
    "mean us",
    "p50 us",
    "p90 us",
    "p99 us",
    "max us",
    "decisions/s",
];

/// Column headings of the plugin table, after the plugin and the mode.
const PLUGIN_COLUMNS: [&str; 6] = [
    "mean us", "p50 us", "p90 us", "p99 us", "max us", "failures",
];

/// Prints `r` as text.
pub(crate) fn print(out: &mut impl Write, r: &Report) -> io::Result<()> {
    writeln!(
        out,
        "set      {} {} ({})",
        r.set.name, r.set.version, r.set.origin
    )?;
    for c in &r.components {
        writeln!(out, "plugin   {}: {} ({})", c.plugin, size(c.bytes), c.path)?;
    }
    for i in &r.inputs {
        writeln!(out, "input    {}: {} requests", i.file, i.requests)?;
    }
    writeln!(
        out,
        "passes   {} warm-up, {} measured: {} decisions per mode, one at a time on one thread",
        r.warmup,
        r.iterations,
        r.requests * r.iterations as usize
    )?;
    writeln!(out)?;

    let mut rows = vec![heading(&["mode"], &DECISION_COLUMNS)];
    for m in &r.modes {
        let mut row = vec![mode_name(m.mode).to_string(), format!("{:.1}", m.load_ms)];
        row.extend(times(&m.decision));
        row.push(format!("{:.0}", m.decisions_per_second));
        rows.push(row);
    }
    table(out, &rows, 1)?;
    writeln!(out)?;

    let mut rows = vec![heading(&["plugin", "mode"], &PLUGIN_COLUMNS)];
    let plugins = r.modes.first().map_or(0, |m| m.plugins.len());
    for i in 0..plugins {
        for m in &r.modes {
            let Some(p) = m.plugins.get(i) else {
                continue;
            };
            let mut row = vec![p.name.clone(), mode_name(m.mode).to_string()];
            row.extend(times(&p.time).into_iter().skip(1));
            row.push(p.failures.to_string());
            rows.push(row);
        }
    }
    table(out, &rows, 2)?;

    let failures: u64 = r
        .modes
        .iter()
        .flat_map(|m| &m.plugins)
        .map(|p| p.failures)
        .sum();
    if failures > 0 {
        writeln!(
            out,
            "\nwarning: {failures} plugin evaluations failed, so these times are not those of \
             the plugins deciding; `arbiter test` shows why"
        )?;
    }
    Ok(())
}

/// `fresh` or `pooled`, as in the manifest.
pub(crate) fn mode_name(mode: Instances) -> &'static str {
    match mode {
        Instances::Fresh => "fresh",
        Instances::Pooled => "pooled",
    }
}

/// Decisions, then mean, p50, p90, p99 and max with one decimal.
fn times(s: &Summary) -> Vec<String> {
    let mut row = vec![s.decisions.to_string()];
    row.extend(
        [s.mean_us, s.p50_us, s.p90_us, s.p99_us, s.max_us]
            .iter()
            .map(|us| format!("{us:.1}")),
    );
    row
}

fn heading(left: &[&str], right: &[&str]) -> Vec<String> {
    left.iter().chain(right).map(|s| (*s).to_string()).collect()
}

/// Prints `rows` in columns: the first `left` left-aligned, numbers right-aligned.
fn table(out: &mut impl Write, rows: &[Vec<String>], left: usize) -> io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, w))| {
                if c < left {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}

/// A byte count for people: `812.4 KiB`.
pub(crate) fn size(bytes: usize) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{:.1} MiB", b / (KIB * KIB))
    }
}
