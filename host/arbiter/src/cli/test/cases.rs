//! Readable test cases for `arbiter test` (`*.toml`): named cases whose requests are
//! deep-merged over shared defaults, so that a case states only what matters.
//!
//! ```toml
//! [principals.bot]                 # optional fixtures: whole principals and resources
//! id = "spiffe://acme.org/agent/bot"
//! kind = "agent"
//! attributes = { team = "payments" }
//!
//! [defaults]
//! principal = "bot"                # optional: a fixture for every case
//!
//! [defaults.request]
//! action = { name = "db:Query", privilege = "read" }
//!
//! [[case]]
//! name = "prod writes at night are denied"
//! resource = "ledger"              # optional: a fixture for this case
//! request = { action = { privilege = "write" }, context = { hour = 2 } }
//! unset = ["context.mfa"]          # optional: dotted paths removed after the merge
//! approved = false                 # optional (default: defaults.approved, else false)
//! expect = "deny"
//! reasons = ["prod-write-outside-hours"]   # optional: the exact set of reason codes
//! ```
//!
//! Tables merge key by key, recursively; an array or a scalar in the case replaces the
//! default. A selected fixture ([`fixtures`](super::fixtures)) replaces that part of
//! the defaults whole before the case's `request` merges on top. The file's structure
//! is checked as a whole (a TOML error or an unknown key fails the file, with its
//! line); the merged request is checked per case ([`request`](super::request)), so one
//! bad case fails alone.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::ops::Range;

use arbiter_core::{Decision, Outcome, Request, line_of};
use arbiter_runtime::PolicySet;
use serde::Deserialize;
use toml::Spanned;

use super::coverage::Coverage;
use super::fixtures::{Fixtures, Part};
use super::request::{one_line, to_request};
use super::{Tally, print_decision};

/// Printed under any error about the file's structure.
const FILE_HINT: &str = "a case file has an optional [defaults] table (request, approved, \
principal, resource), optional fixtures ([principals.NAME], [resources.NAME]: whole principals \
and resources) and [[case]] tables with name, expect (allow, deny or require-approval) and \
optionally request, principal, resource, approved, reasons and unset; see \
docs/plugin-authors.md § 8, \"Test cases\"";

/// Printed under an invalid merged request.
const REQUEST_HINT: &str = "the request is [defaults.request], with the selected principal \
and resource fixtures in place, deep-merged with the case's request, minus its `unset` paths; \
it needs principal {id, kind} and action {name, privilege}, and may have delegation, resource, \
intent and context (see docs/api.md)";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    defaults: Option<Spanned<RawDefaults>>,
    #[serde(default)]
    principals: BTreeMap<String, Spanned<toml::Table>>,
    #[serde(default)]
    resources: BTreeMap<String, Spanned<toml::Table>>,
    #[serde(default, rename = "case")]
    cases: Vec<Spanned<RawCase>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    #[serde(default)]
    request: toml::Table,
    #[serde(default)]
    approved: bool,
    principal: Option<String>,
    resource: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    #[serde(default)]
    request: toml::Table,
    principal: Option<String>,
    resource: Option<String>,
    #[serde(default)]
    unset: Vec<String>,
    approved: Option<bool>,
    expect: String,
    reasons: Option<Vec<String>>,
}

/// Where each table of the file starts, read without checking keys: to name the case
/// an error of the strict parse falls in.
#[derive(Debug, Deserialize)]
struct Outline {
    defaults: Option<Spanned<toml::Table>>,
    #[serde(default)]
    principals: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    resources: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default, rename = "case")]
    cases: Vec<Spanned<toml::Table>>,
}

/// One case, read from the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Case {
    /// 1-based position in the file.
    pub index: usize,
    /// Its `name`.
    pub name: String,
    /// The line of its `[[case]]` header.
    pub line: usize,
    /// What to run and expect, or why the case cannot run.
    pub body: Result<Body, String>,
}

/// What a valid case runs and expects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Body {
    /// The merged request.
    pub request: Request,
    /// The merged request as one line of JSON, its parts in request order: shown under
    /// a mismatch, since no one wrote it out whole.
    pub shown: String,
    /// Whether the host verified an approval.
    pub approved: bool,
    /// The expected decision.
    pub expect: Outcome,
    /// The exact set of reason codes expected, when given.
    pub reasons: Option<BTreeSet<String>>,
}

impl Case {
    /// How the case is named in output: its name, or its index when the name is empty.
    pub(super) fn label(&self) -> String {
        if self.name.trim().is_empty() {
            format!("case {}", self.index)
        } else {
            self.name.clone()
        }
    }
}

/// Reads a case file. `Err` is the whole message for an unreadable file: the file and
/// line, the case when the error is inside one, and a hint.
pub(crate) fn parse(text: &str, file: &str) -> Result<Vec<Case>, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(0, |s| line_of(text, s.start));
        let within = e
            .span()
            .and_then(|s| enclosing_case(text, &s))
            .map(|(index, name)| format!("case {index} `{name}`: "))
            .unwrap_or_default();
        format!(
            "{file}:{line}: {within}{}\n  hint: {FILE_HINT}",
            e.message().trim_end()
        )
    })?;
    if raw.cases.is_empty() {
        return Err(format!(
            "{file}: no test cases\n  hint: add one [[case]] table per case; {FILE_HINT}"
        ));
    }
    let fixtures = Fixtures::new(raw.principals, raw.resources).map_err(|(at, why)| {
        let line = line_of(text, at);
        format!("{file}:{line}: {why}\n  hint: a fixture is a whole principal (id, kind, attributes) or resource (id, kind, attributes), as in a request")
    })?;
    let defaults = match raw.defaults {
        None => RawDefaults::default(),
        Some(d) => {
            let line = line_of(text, d.span().start);
            let d = d.into_inner();
            for (part, selected) in [("principal", &d.principal), ("resource", &d.resource)] {
                if let Some(name) = selected
                    && d.request.contains_key(part)
                {
                    return Err(format!(
                        "{file}:{line}: [defaults] selects the {part} fixture `{name}` and also sets `request.{part}`, which the fixture replaces\n  hint: keep one of them"
                    ));
                }
            }
            d
        }
    };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut cases = Vec::with_capacity(raw.cases.len());
    for (i, spanned) in raw.cases.into_iter().enumerate() {
        let index = i + 1;
        let line = line_of(text, spanned.span().start);
        let raw_case = spanned.into_inner();
        let name = raw_case.name.clone();
        let body = if name.trim().is_empty() {
            Err("`name` is empty; give every case a name".to_string())
        } else if let Some(first) = seen.get(&name) {
            Err(format!(
                "case {first} has the same name; names identify cases in the output"
            ))
        } else {
            seen.insert(name.clone(), index);
            body(&defaults, &fixtures, raw_case)
        };
        cases.push(Case {
            index,
            name,
            line,
            body,
        });
    }
    Ok(cases)
}

/// Builds what one case runs and expects.
fn body(defaults: &RawDefaults, fixtures: &Fixtures, case: RawCase) -> Result<Body, String> {
    let expect = Outcome::parse(&case.expect).ok_or_else(|| {
        format!(
            "`expect` is `{}`; use allow, deny or require-approval",
            case.expect
        )
    })?;
    let mut request = defaults.request.clone();
    for (part, own, default) in [
        (Part::Principal, &case.principal, &defaults.principal),
        (Part::Resource, &case.resource, &defaults.resource),
    ] {
        match (own, default) {
            (Some(name), _) => fixtures.select(part, name, "", &mut request)?,
            (None, Some(name)) => fixtures.select(part, name, "[defaults] ", &mut request)?,
            (None, None) => {}
        }
    }
    merge(&mut request, case.request);
    for path in &case.unset {
        unset(&mut request, path)?;
    }
    let shown = one_line(&request);
    let request = to_request(request).map_err(|e| format!("invalid request: {e}"))?;
    let reasons = case
        .reasons
        .map(|codes| codes.into_iter().collect::<BTreeSet<_>>());
    Ok(Body {
        request,
        shown,
        approved: case.approved.unwrap_or(defaults.approved),
        expect,
        reasons,
    })
}

/// Deep merge: tables merge key by key, recursively; anything else in `over` (an
/// array, a scalar, or a table over a non-table) replaces what `base` has.
pub(super) fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Removes the value at a dotted path (`context.hour`); an absent path is an error, so
/// that a misspelt path does not pass silently.
pub(super) fn unset(table: &mut toml::Table, path: &str) -> Result<(), String> {
    let missing = || format!("`unset` path `{path}` is not in the merged request");
    let keys: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = keys.split_last() else {
        return Err(missing());
    };
    let mut here = table;
    for key in parents {
        here = match here.get_mut(*key) {
            Some(toml::Value::Table(t)) => t,
            _ => return Err(missing()),
        };
    }
    here.remove(*last).map(|_| ()).ok_or_else(missing)
}

/// The case (1-based index and name) whose table holds `span`, from a lenient read of
/// the file; `None` when the span is outside every case or the file cannot be read.
fn enclosing_case(text: &str, span: &Range<usize>) -> Option<(usize, String)> {
    let outline: Outline = toml::from_str(text).ok()?;
    // The tables that are not cases.
    let others: Vec<usize> = outline
        .defaults
        .iter()
        .map(|d| d.span().start)
        .chain(outline.principals.values().map(|t| t.span().start))
        .chain(outline.resources.values().map(|t| t.span().start))
        .collect();
    let (i, case) = outline
        .cases
        .iter()
        .enumerate()
        .filter(|(_, c)| c.span().start <= span.start)
        .max_by_key(|(_, c)| c.span().start)?;
    // `[defaults]` or a fixture written after this case's header and before the error.
    if others
        .iter()
        .any(|&t| t > case.span().start && t <= span.start)
    {
        return None;
    }
    let name = case
        .get_ref()
        .get("name")
        .and_then(toml::Value::as_str)
        .unwrap_or("")
        .to_string();
    Some((i + 1, name))
}

/// The `FAIL` line of a case whose decision differs from what it expects, or `None`
/// when it passes.
pub(super) fn mismatch(case: &Case, body: &Body, d: &Decision) -> Option<String> {
    let got: BTreeSet<String> = d.reasons.iter().map(|r| r.code.clone()).collect();
    let reasons_ok = body.reasons.as_ref().is_none_or(|want| *want == got);
    if d.outcome == body.expect && reasons_ok {
        return None;
    }
    let list = |codes: &BTreeSet<String>| {
        codes
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let label = case.label();
    Some(match &body.reasons {
        None => format!("FAIL {label}: expected {}, got {}", body.expect, d.outcome),
        Some(want) => format!(
            "FAIL {label}: expected {} [{}], got {} [{}]",
            body.expect,
            list(want),
            d.outcome,
            list(&got)
        ),
    })
}

/// Runs a case file against `set`, recording what each plugin said in `coverage`.
pub(super) async fn run(
    set: &PolicySet,
    text: &str,
    file: &str,
    verbose: bool,
    coverage: &mut Coverage,
    out: &mut impl Write,
) -> std::io::Result<Tally> {
    let mut tally = Tally::default();
    let cases = match parse(text, file) {
        Ok(cases) => cases,
        Err(message) => {
            tally.failed += 1;
            writeln!(out, "{message}")?;
            return Ok(tally);
        }
    };
    for case in &cases {
        let at = format!("     case {} at {file}:{}", case.index, case.line);
        let body = match &case.body {
            Ok(body) => body,
            Err(why) => {
                tally.failed += 1;
                writeln!(out, "FAIL {}: {why}\n{at}", case.label())?;
                if why.starts_with("invalid request") {
                    writeln!(out, "     hint: {REQUEST_HINT}")?;
                }
                continue;
            }
        };
        let d = set.decide(&body.request, body.approved).await;
        coverage.record(&d);
        match mismatch(case, body, &d) {
            None => {
                tally.passed += 1;
                if verbose {
                    writeln!(out, "ok   {}", case.label())?;
                }
            }
            Some(line) => {
                tally.failed += 1;
                let approved = if body.approved { " (approved)" } else { "" };
                writeln!(out, "{line}\n{at}\n     request{approved}: {}", body.shown)?;
                print_decision(out, &d)?;
            }
        }
    }
    Ok(tally)
}
