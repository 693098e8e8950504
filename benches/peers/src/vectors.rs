//! The reference workload: `tests/vectors/reference-public.jsonl`, parsed once.

use anyhow::{Context as _, bail};
use arbiter_core::{Outcome, Request};
use serde::Deserialize;

/// The vectors file must hold exactly this many requests.
const VECTORS: usize = 2000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    id: u64,
    request: Request,
    approved: bool,
    expected: String,
    #[serde(default)]
    rules: Vec<String>,
}

/// One vector with its expected outcome parsed.
#[derive(Debug)]
pub(crate) struct Case {
    pub(crate) id: u64,
    /// The vector's line in the file, shown when an engine disagrees with it.
    pub(crate) line: String,
    pub(crate) request: Request,
    pub(crate) approved: bool,
    pub(crate) expected: Outcome,
    /// Every matching rule, in document order (for debugging: not normative).
    pub(crate) rules: Vec<String>,
}

/// Reads and parses every vector.
pub(crate) fn load() -> anyhow::Result<Vec<Case>> {
    let path = arbiter_plugin_build::repo_root().join("tests/vectors/reference-public.jsonl");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut cases = Vec::with_capacity(VECTORS);
    for (n, line) in text.lines().enumerate() {
        let v: Vector = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: bad vector", path.display(), n + 1))?;
        let Some(expected) = Outcome::parse(&v.expected) else {
            bail!("vector #{}: unknown outcome `{}`", v.id, v.expected);
        };
        cases.push(Case {
            id: v.id,
            line: line.to_owned(),
            request: v.request,
            approved: v.approved,
            expected,
            rules: v.rules,
        });
    }
    if cases.len() != VECTORS {
        bail!(
            "{} holds {} vectors, expected {VECTORS}",
            path.display(),
            cases.len()
        );
    }
    Ok(cases)
}
