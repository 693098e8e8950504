//! The policy-set manifest (`policy-set.toml`), in two stages: a raw serde layer that
//! mirrors the file exactly, then a validated [`Manifest`] in which invalid states
//! cannot be expressed.

use std::collections::BTreeSet;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::limits::LimitError;
use crate::{Attributes, Combining, Limits, LimitsOverride, Value};

/// The manifest format this host reads.
pub(crate) const MANIFEST_FORMAT: u32 = 1;
/// Plugins per set. The reference policy needs five; a set of more than 64 sandboxes per
/// request is a design problem, and each costs an instantiation per decision.
pub(crate) const MAX_PLUGINS: usize = 64;

/// Whether a set decides or only watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Its decisions are returned to callers.
    #[default]
    Enforce,
    /// Evaluated beside the enforced set and compared, never returned.
    Shadow,
}

/// When a decision's audit record must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditMode {
    /// A decision is returned only after its record is committed (the default).
    #[default]
    Durable,
    /// A decision is returned once its record is queued (still never dropped: a full
    /// queue slows callers down). For low-risk sets where latency matters more than
    /// the last few records before a crash.
    Async,
}

/// How evaluations get their sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Instances {
    /// A fresh instance per evaluation: nothing survives between requests.
    #[default]
    Fresh,
    /// Warm instances are reused across evaluations (opt-in, for stateless plugins on
    /// heavy runtimes). An instance that fails is discarded; every instance is
    /// recycled after `recycle_after` evaluations.
    Pooled,
}

/// Evaluations after which a pooled instance is replaced by a fresh one. It bounds
/// what a reused instance can accumulate (componentize-js memory grew on every call)
/// while keeping instantiation under 0.1% of evaluations.
pub(crate) const DEFAULT_RECYCLE_AFTER: u32 = 1000;

/// What a plugin failure counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Fail closed: the failure is a deny with reason `plugin-failure`.
    #[default]
    Deny,
    /// Advisory plugin: the failure is an abstain (still recorded).
    Abstain,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    format: Spanned<u32>,
    name: Spanned<String>,
    version: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    combining: Combining,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    audit: AuditMode,
    limits: Option<Spanned<LimitsOverride>>,
    #[serde(default)]
    data: Vec<Spanned<String>>,
    #[serde(default)]
    plugins: Vec<RawPlugin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: Spanned<String>,
    path: Spanned<String>,
    sha256: Option<Spanned<String>>,
    #[serde(default)]
    on_error: OnError,
    #[serde(default)]
    instances: Instances,
    recycle_after: Option<Spanned<u32>>,
    limits: Option<Spanned<LimitsOverride>>,
    settings: Option<Spanned<toml::Table>>,
    #[serde(default)]
    rules: Vec<Spanned<String>>,
}

/// One plugin of a validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSpec {
    /// Unique within the set.
    pub name: String,
    /// Relative to the manifest's directory; never absolute, never `..`.
    pub path: String,
    /// The pinned digest, when the manifest pins one.
    pub sha256: Option<[u8; 32]>,
    /// What a failure counts as.
    pub on_error: OnError,
    /// Fresh instance per evaluation, or pooled warm instances.
    pub instances: Instances,
    /// Evaluations per pooled instance before it is replaced.
    pub recycle_after: u32,
    /// Host defaults, then set limits, then plugin limits.
    pub limits: Limits,
    /// The `settings` table, flattened to typed attributes for `configure`.
    pub settings: Attributes,
    /// The reason codes the plugin declares it can emit (`rules`), in manifest order;
    /// empty when it declares none. Only `arbiter test --coverage` reads them: the host
    /// does not refuse an undeclared code at run time.
    pub rules: Vec<String>,
}

/// A validated policy-set manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The set's name.
    pub name: String,
    /// The set's version.
    pub version: String,
    /// Free text.
    pub description: String,
    /// How verdicts combine.
    pub combining: Combining,
    /// Enforce or shadow.
    pub mode: Mode,
    /// When decisions' audit records must be durable.
    pub audit: AuditMode,
    /// Data files readable by plugins, relative to the manifest.
    pub data: Vec<String>,
    /// Plugins in evaluation order.
    pub plugins: Vec<PluginSpec>,
}

/// Why a manifest was refused. The message names the file, the place and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ManifestError {
    /// The manifest's path as given.
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Manifest {
    /// Parses and validates a manifest. `file` names it in errors; `defaults` are the
    /// host's limits, which the manifest can override within the host's bounds.
    pub fn parse(text: &str, file: &str, defaults: Limits) -> Result<Self, ManifestError> {
        let err = |span: Option<std::ops::Range<usize>>, message: String| ManifestError {
            file: file.to_string(),
            line: span.map_or(0, |s| line_of(text, s.start)),
            message,
        };
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            let message = e.message().to_string();
            err(e.span(), message)
        })?;
        if *raw.format.get_ref() != MANIFEST_FORMAT {
            return Err(err(
                Some(raw.format.span()),
                format!(
                    "`format` {} is not supported; this host reads format {MANIFEST_FORMAT}",
                    raw.format.get_ref()
                ),
            ));
        }
        check_name(raw.name.get_ref())
            .map_err(|m| err(Some(raw.name.span()), format!("`name`: {m}")))?;
        if raw.version.get_ref().trim().is_empty() {
            return Err(err(
                Some(raw.version.span()),
                "`version` must not be empty".into(),
            ));
        }
        let set_limits = match &raw.limits {
            None => defaults,
            Some(l) => defaults
                .apply(l.get_ref())
                .map_err(|e| err(Some(l.span()), format!("[limits]: {e}")))?,
        };
        if raw.plugins.is_empty() {
            return Err(err(
                None,
                "a policy set needs at least one plugin: add a `[[plugins]]` table with `name` and `path`".into(),
            ));
        }
        if raw.plugins.len() > MAX_PLUGINS {
            return Err(err(
                None,
                format!(
                    "{} plugins is more than the {MAX_PLUGINS} a set may hold",
                    raw.plugins.len()
                ),
            ));
        }
        let mut data = Vec::new();
        for d in &raw.data {
            check_relative(d.get_ref())
                .map_err(|m| err(Some(d.span()), format!("`data` entry: {m}")))?;
            // `./x.json` and `x.json` name one file for `data::read`.
            data.push(normalize(d.get_ref()));
        }
        let mut names = BTreeSet::new();
        let mut plugins = Vec::with_capacity(raw.plugins.len());
        for p in raw.plugins {
            let name = p.name.get_ref().clone();
            check_name(&name)
                .map_err(|m| err(Some(p.name.span()), format!("plugin `name`: {m}")))?;
            if !names.insert(name.clone()) {
                return Err(err(
                    Some(p.name.span()),
                    format!("plugin name `{name}` appears twice; names must be unique in a set"),
                ));
            }
            check_relative(p.path.get_ref())
                .map_err(|m| err(Some(p.path.span()), format!("plugin `{name}`: `path` {m}")))?;
            let sha256 = match &p.sha256 {
                None => None,
                Some(s) => Some(parse_digest(s.get_ref()).ok_or_else(|| {
                    err(
                        Some(s.span()),
                        format!(
                            "plugin `{name}`: `sha256` must be 64 hex digits (got `{}`); compute it with `sha256sum`",
                            s.get_ref()
                        ),
                    )
                })?),
            };
            let limits = match &p.limits {
                None => set_limits,
                Some(l) => set_limits.apply(l.get_ref()).map_err(|e: LimitError| {
                    err(Some(l.span()), format!("plugin `{name}` limits: {e}"))
                })?,
            };
            let mut settings = Attributes::new();
            if let Some(s) = &p.settings {
                flatten("", s.get_ref(), &mut settings)
                    .map_err(|m| err(Some(s.span()), format!("plugin `{name}` settings: {m}")))?;
            }
            let recycle_after = match &p.recycle_after {
                None => DEFAULT_RECYCLE_AFTER,
                Some(r) if *r.get_ref() == 0 => {
                    return Err(err(
                        Some(r.span()),
                        format!("plugin `{name}`: `recycle_after` must be at least 1"),
                    ));
                }
                Some(r) => *r.get_ref(),
            };
            let rules = check_rules(&p.rules)
                .map_err(|(span, m)| err(Some(span), format!("plugin `{name}`: `rules`: {m}")))?;
            plugins.push(PluginSpec {
                name,
                path: p.path.into_inner(),
                sha256,
                on_error: p.on_error,
                instances: p.instances,
                recycle_after,
                limits,
                settings,
                rules,
            });
        }
        Ok(Self {
            name: raw.name.into_inner(),
            version: raw.version.into_inner(),
            description: raw.description,
            combining: raw.combining,
            mode: raw.mode,
            audit: raw.audit,
            data,
            plugins,
        })
    }
}

/// The 1-based line of byte `offset` in `text` (0 when the offset is past the end), for
/// errors that name a file and a line.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |t| t.matches('\n').count() + 1)
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` must be 1-64 characters of letters, digits, `-`, `_` or `.`"
        ))
    }
}

/// Longest declared reason code, as for names: a code is an identifier, not a message.
const MAX_CODE_CHARS: usize = 64;

/// Whether `code` is a kebab-case reason code: lowercase words of letters and digits
/// joined by single `-`.
fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE_CHARS
        && code.split('-').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// The declared reason codes of a plugin, each kebab-case and listed once; `Err` is the
/// offending entry's span and what is wrong.
fn check_rules(rules: &[Spanned<String>]) -> Result<Vec<String>, (std::ops::Range<usize>, String)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        let code = r.get_ref();
        if !is_code(code) {
            return Err((
                r.span(),
                format!(
                    "`{code}` is not a reason code: use kebab-case (lowercase letters and digits, words joined by single `-`), at most {MAX_CODE_CHARS} characters"
                ),
            ));
        }
        if !seen.insert(code.as_str()) {
            return Err((r.span(), format!("`{code}` is listed twice")));
        }
        out.push(code.clone());
    }
    Ok(out)
}

/// Paths in a manifest stay inside the set's directory or bundle.
fn check_relative(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if path.is_empty() {
        return Err("must not be empty".into());
    }
    if p.components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "`{path}` must be relative to the manifest and stay inside its directory (no `/...`, no `..`)"
        ));
    }
    Ok(())
}

/// A relative path without `.` components, `/`-separated: the name plugins use.
fn normalize(path: &str) -> String {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Parses 64 hex digits.
pub(crate) fn parse_digest(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Attributes) -> Result<(), String> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let value = match v {
            toml::Value::String(s) => Value::Str(s.clone()),
            toml::Value::Integer(i) => Value::Int(*i),
            toml::Value::Float(f) => Value::Float(*f),
            toml::Value::Boolean(b) => Value::Bool(*b),
            toml::Value::Datetime(d) => Value::Str(d.to_string()),
            toml::Value::Array(items) => Value::Strings(
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect::<Option<_>>()
                    .ok_or_else(|| format!("`{key}`: arrays may hold only strings"))?,
            ),
            toml::Value::Table(t) => {
                flatten(&key, t, out)?;
                continue;
            }
        };
        out.insert(key, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
