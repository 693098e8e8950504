//! `--save DIR`: the `--json` document, with when it was made and from what, written
//! to `DIR/replay-<UTC yyyymmddThhmmssZ>-<6 hex>.json` for the console's
//! measurements pages (`<data_dir>/reports` of the server).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use super::{Output, ReplayArgs};

/// The flags a report was made with, so a reader can make it again.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Inputs {
    /// `--policy-set` (one set), or `None` with a baseline and candidate.
    pub(super) policy_set: Option<String>,
    /// `--baseline`.
    pub(super) baseline: Option<String>,
    /// `--candidate`.
    pub(super) candidate: Option<String>,
    /// `--labels`.
    pub(super) labels: Option<String>,
    /// `--audit`.
    pub(super) audit: Option<String>,
    /// `--set`.
    pub(super) set: Option<String>,
    /// `--since` (unix microseconds).
    pub(super) since_micros: Option<i64>,
    /// `--until` (unix microseconds).
    pub(super) until_micros: Option<i64>,
    /// `--examples`.
    pub(super) examples: usize,
}

impl Inputs {
    /// The inputs of `args`.
    pub(super) fn of(args: &ReplayArgs) -> Self {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        Self {
            policy_set: args.policy_set.clone(),
            baseline: args.baseline.clone(),
            candidate: args.candidate.clone(),
            labels: path(&args.labels),
            audit: path(&args.audit),
            set: args.audit_set.clone(),
            since_micros: args.since,
            until_micros: args.until,
            examples: args.examples,
        }
    }
}

/// A saved report: the `--json` document and two more fields.
#[derive(Debug, Serialize)]
struct Saved<'a> {
    /// When the report was made (unix microseconds).
    generated_micros: i64,
    /// The flags it was made with.
    inputs: &'a Inputs,
    #[serde(flatten)]
    output: &'a Output,
}

/// Writes `output` into `dir` (created if missing) under a new name, whole or not at
/// all (a temporary file renamed into place); the path written.
pub(super) fn save(dir: &Path, inputs: &Inputs, output: &Output) -> anyhow::Result<PathBuf> {
    let generated_micros = arbiter_store::now_micros();
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the reports directory `{}`", dir.display()))?;
    let mut random = [0u8; 3];
    getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let path = dir.join(file_name(generated_micros, &hex::encode(random)));
    let saved = Saved {
        generated_micros,
        inputs,
        output,
    };
    let cannot = || format!("cannot write the report `{}`", path.display());
    let mut file = tempfile::NamedTempFile::new_in(dir).with_context(cannot)?;
    serde_json::to_writer_pretty(&mut file, &saved).with_context(cannot)?;
    writeln!(file).with_context(cannot)?;
    file.as_file().sync_all().with_context(cannot)?;
    file.persist_noclobber(&path)
        .map_err(|e| e.error)
        .with_context(cannot)?;
    Ok(path)
}

/// `replay-20250601T120000Z-a1b2c3.json` for `micros` and `random`.
pub(super) fn file_name(micros: i64, random: &str) -> String {
    // `2025-06-01T12:00:00.000000Z` -> `20250601T120000Z`
    let stamp: String = arbiter_core::clock::rfc3339(micros)
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("replay-{stamp}Z-{random}.json")
}
