//! The reference policy as Arbiter plugins: one component holding every rule, and the
//! five-plugin split, loaded exactly as `host/runtime/benches/decide` loads them (the
//! Rust plugins under `plugins/` built as the embedded sets are, without WASI, by
//! `arbiter_plugin_build::build_lean`, compiled without the on-disk cache, default
//! limits, a fresh instance per plugin call).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use anyhow::Context as _;
use arbiter_core::Limits;
use arbiter_runtime::{PolicySet, Runtime, RuntimeConfig, SetSource};

use crate::harness::{Case, Latency, SPLIT};
use crate::{Verdict, check};

/// The two sets, loaded in one runtime.
#[derive(Debug)]
pub(crate) struct Sets {
    pub(crate) single: PolicySet,
    pub(crate) multi: PolicySet,
}

impl Sets {
    /// Builds the plugins (or finds them up to date) and loads both sets.
    pub(crate) async fn load() -> anyhow::Result<Self> {
        let t = Instant::now();
        let crates: Vec<&str> = std::iter::once("reference").chain(SPLIT).collect();
        let dir = arbiter_plugin_build::build_lean(&crates)
            .map_err(anyhow::Error::msg)
            .context("building the plugins")?;
        eprintln!(
            "peers bench: plugins built (or found up to date) in {:.0} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
        let rt = Runtime::new(RuntimeConfig::default()).context("the wasm runtime")?;
        let single = load(&rt, &dir, "single-plugin", &["reference"]).await?;
        let multi = load(&rt, &dir, "multi-plugin", &SPLIT).await?;
        Ok(Self { single, multi })
    }
}

/// A set of built plugins, one per crate name, as the runtime's tests build them.
async fn load(
    rt: &Runtime,
    dir: &std::path::Path,
    what: &str,
    plugins: &[&str],
) -> anyhow::Result<PolicySet> {
    let t = Instant::now();
    let mut manifest = "format = 1\nname = \"bench\"\nversion = \"1\"\n".to_owned();
    let mut files = BTreeMap::new();
    for name in plugins {
        let file = format!("{}.wasm", name.replace('-', "_"));
        let path = dir.join(&file);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        files.insert(file.clone(), bytes);
        manifest.push_str(&format!(
            "\n[[plugins]]\nname = \"{name}\"\npath = \"{file}\"\n"
        ));
    }
    let source = SetSource::Files {
        origin: "bench".into(),
        manifest,
        files,
    };
    let set = PolicySet::load(rt, source, Limits::default())
        .await
        .with_context(|| format!("the {what} set does not load"))?;
    eprintln!(
        "peers bench: loaded {what} ({} plugin(s), compiled without cache) in {:.0} ms",
        plugins.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    Ok(set)
}

/// Checks every vector once (the warm-up), then times `passes` passes of
/// `PolicySet::decide`. Reasons carry codes, not rule ids, so only outcomes are checked.
pub(crate) async fn timed(
    what: &str,
    set: &PolicySet,
    cases: &[Case],
    passes: u32,
) -> anyhow::Result<Latency> {
    for c in cases {
        let d = set.decide(&c.request, c.approved).await;
        let verdict = Verdict {
            outcome: d.outcome,
            rules: None,
        };
        check(what, c, &verdict)?;
    }
    let mut lat = Latency::new();
    for _ in 0..passes {
        for c in cases {
            let t = Instant::now();
            let d = set.decide(&c.request, c.approved).await;
            lat.record(t.elapsed());
            drop(black_box(d));
        }
    }
    Ok(lat)
}
