//! What `arbiter bench` runs: the set, held in memory so that each mode loads it with
//! every plugin's `instances` rewritten, and the requests of the input files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use arbiter_core::{Instances, Limits, Manifest, Request};
use arbiter_runtime::SetSource;
use serde::Serialize;

use crate::cli::test::{Vector, cases, is_case_file};

/// The manifest's file name in a set directory.
const MANIFEST_FILE: &str = "policy-set.toml";

/// A set's manifest and files, read once.
#[derive(Debug)]
pub(crate) struct SetFiles {
    /// Names the set in errors: `builtin:NAME`, the plugin file or the directory.
    pub origin: String,
    /// The validated manifest.
    pub manifest: Manifest,
    /// The manifest as written.
    text: String,
    /// Plugin and data files by the relative path the manifest gives.
    files: BTreeMap<String, Vec<u8>>,
}

/// One plugin's component file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Component {
    /// The plugin's name in the manifest.
    pub plugin: String,
    /// The component's path, relative to the manifest.
    pub path: String,
    /// Its size.
    pub bytes: usize,
}

impl SetFiles {
    /// Reads the manifest and, for a set on disk, every plugin and data file it names.
    pub(crate) fn read(source: SetSource) -> anyhow::Result<Self> {
        let (origin, text, dir, files) = match source {
            SetSource::Path(path) => {
                let manifest = if path.is_dir() {
                    path.join(MANIFEST_FILE)
                } else {
                    path
                };
                let text = std::fs::read_to_string(&manifest)
                    .with_context(|| format!("cannot read `{}`", manifest.display()))?;
                let dir = manifest
                    .parent()
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
                (dir.display().to_string(), text, Some(dir), BTreeMap::new())
            }
            SetSource::Files {
                origin,
                manifest,
                files,
            } => (origin, manifest, None, files),
        };
        let manifest = Manifest::parse(
            &text,
            &format!("{origin}/{MANIFEST_FILE}"),
            Limits::default(),
        )?;
        let mut set = Self {
            origin,
            manifest,
            text,
            files,
        };
        if let Some(dir) = dir {
            let wanted = set.manifest.plugins.iter().map(|p| &p.path);
            for rel in wanted.chain(&set.manifest.data) {
                let path = dir.join(rel);
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("cannot read `{}`", path.display()))?;
                set.files.insert(rel.clone(), bytes);
            }
        }
        Ok(set)
    }

    /// Each plugin's component, in manifest order.
    pub(crate) fn components(&self) -> Vec<Component> {
        self.manifest
            .plugins
            .iter()
            .map(|p| Component {
                plugin: p.name.clone(),
                path: p.path.clone(),
                bytes: self.files.get(&p.path).map_or(0, Vec::len),
            })
            .collect()
    }

    /// The set with every plugin's `instances` set to `instances`.
    pub(crate) fn source(&self, instances: Instances) -> anyhow::Result<SetSource> {
        Ok(SetSource::Files {
            origin: self.origin.clone(),
            manifest: with_instances(&self.text, instances)?,
            files: self.files.clone(),
        })
    }
}

/// `manifest` with `instances` written into every `[[plugins]]` table, replacing what
/// it said. Rewriting the text keeps the runtime's loading path the one the server
/// uses; the set's digest changes with it, which a benchmark does not report.
pub(crate) fn with_instances(manifest: &str, instances: Instances) -> anyhow::Result<String> {
    let mut table: toml::Table = toml::from_str(manifest).context("manifest is not TOML")?;
    let value = toml::Value::try_from(instances).context("instances")?;
    if let Some(toml::Value::Array(plugins)) = table.get_mut("plugins") {
        for plugin in plugins.iter_mut().filter_map(toml::Value::as_table_mut) {
            plugin.insert("instances".into(), value.clone());
        }
    }
    toml::to_string(&table).context("cannot write the manifest back")
}

/// The requests of one input file, with whether each carries a verified approval.
#[derive(Debug)]
pub(crate) struct Input {
    /// The file as given.
    pub file: String,
    /// Its requests, in file order.
    pub requests: Vec<(Request, bool)>,
}

/// Reads a test-case file (`*.toml`) or a JSON-lines vectors file (anything else).
pub(crate) fn read(path: &Path) -> anyhow::Result<Input> {
    let file = path.display().to_string();
    let is_cases = is_case_file(path);
    let what = if is_cases { "test cases" } else { "vectors" };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {what} `{file}`"))?;
    let requests = if is_cases {
        case_requests(&text, &file)?
    } else {
        vector_requests(&text, &file)?
    };
    if requests.is_empty() {
        anyhow::bail!("`{file}` holds no requests to benchmark with");
    }
    Ok(Input { file, requests })
}

/// The requests of a vectors file; a line that is not a vector fails the whole file,
/// with its line: a benchmark over part of the input would measure something else.
pub(crate) fn vector_requests(text: &str, file: &str) -> anyhow::Result<Vec<(Request, bool)>> {
    let mut requests = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Vector = serde_json::from_str(line).map_err(|e| {
            anyhow::anyhow!(
                "{file}:{}: not a test vector: {e}\n  hint: each line is {{\"id\", \"request\", \"approved\", \"expected\"}}",
                i + 1
            )
        })?;
        requests.push((v.request, v.approved));
    }
    Ok(requests)
}

/// The requests of a test-case file; a case that cannot run fails the whole file.
pub(crate) fn case_requests(text: &str, file: &str) -> anyhow::Result<Vec<(Request, bool)>> {
    let parsed = cases::parse(text, file).map_err(anyhow::Error::msg)?;
    parsed
        .into_iter()
        .map(|case| match case.body {
            Ok(body) => Ok((body.request, body.approved)),
            Err(why) => Err(anyhow::anyhow!(
                "{file}:{}: case {} `{}`: {why}\n  hint: `arbiter test {file}` shows every case that cannot run",
                case.line,
                case.index,
                case.name
            )),
        })
        .collect()
}
