//! What a replay reads: a labelled JSON-lines file (the vectors format) or the decision
//! records of an audit log, both as [`Case`]s.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use arbiter_audit::{Filter, Kind, StoredRecord};
use arbiter_core::{Outcome, Request};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

// One line of a labelled file: the vectors format, as `arbiter test` reads it.
use crate::cli::test::Vector as Labelled;

/// Decision records read per query. Pages keep memory flat however long the log is;
/// ten thousand records (a few megabytes) make the per-query cost negligible.
const AUDIT_PAGE: usize = 10_000;

/// The file in a data directory that holds the audit log.
pub(super) const AUDIT_FILE: &str = "audit.db";

/// Which vector or audit record a case came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CaseRef {
    /// A line of a labelled file.
    Vector {
        /// The vector's `id` (null when it has none).
        id: serde_json::Value,
        /// Its line, from 1.
        line: usize,
    },
    /// A decision record of an audit log.
    Record {
        /// The record's sequence number.
        seq: u64,
        /// The decision's id, when recorded.
        decision_id: Option<String>,
    },
}

/// One request to replay, with the decision it is measured against.
#[derive(Debug, Clone)]
pub struct Case {
    /// Where it came from.
    pub at: CaseRef,
    /// The request.
    pub request: Request,
    /// Whether it carried a verified approval.
    pub approved: bool,
    /// The expected decision (labels) or the recorded one (audit log).
    pub label: Outcome,
    /// When the audit record was written (unix microseconds); `None` for a labelled
    /// line.
    pub recorded_micros: Option<i64>,
}

/// The cases of a labelled JSON-lines file; `name` is the file's name in errors. A
/// line that is not a labelled vector is an error naming the file and line.
pub(super) fn labelled(text: &str, name: &str) -> anyhow::Result<Vec<Case>> {
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Labelled = serde_json::from_str(line).map_err(|e| {
            anyhow::anyhow!(
                "{name}:{line_no}: not a labelled vector: {e}\n  hint: each line is {{\"id\", \"request\", \"approved\", \"expected\"}}"
            )
        })?;
        let label = Outcome::parse(&v.expected).ok_or_else(|| {
            anyhow::anyhow!(
                "{name}:{line_no}: `expected` is `{}`; use allow, deny or require-approval",
                v.expected
            )
        })?;
        cases.push(Case {
            at: CaseRef::Vector {
                id: v.id,
                line: line_no,
            },
            request: v.request,
            approved: v.approved,
            label,
            recorded_micros: None,
        });
    }
    Ok(cases)
}

/// Decision records left out of a replay, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Records whose request had fields removed before logging: replaying what is left
    /// would measure another request.
    pub redacted: u64,
    /// Records without a readable request or outcome.
    pub unreadable: u64,
    /// The first unreadable record and what was wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_unreadable: Option<Unreadable>,
}

/// An audit record that could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// Its sequence number.
    pub seq: u64,
    /// What was wrong.
    pub why: String,
}

/// The decision records of an audit log, read a page at a time.
#[derive(Debug)]
pub(super) struct AuditSource {
    path: PathBuf,
    filter: Filter,
    done: bool,
    /// Records left out so far.
    pub skipped: Skipped,
}

impl AuditSource {
    /// The decisions in `data_dir/audit.db` (or the file `data_dir` itself), of the set
    /// named `set` if given, at or after `since` and before `until` (unix micros).
    pub(super) fn open(
        data_dir: &Path,
        set: Option<String>,
        since: Option<i64>,
        until: Option<i64>,
    ) -> anyhow::Result<Self> {
        let path = if data_dir.is_file() {
            data_dir.to_path_buf()
        } else {
            data_dir.join(AUDIT_FILE)
        };
        if !path.is_file() {
            anyhow::bail!(
                "no audit log at `{}`; point --audit at the data directory of `arbiter serve`",
                path.display()
            );
        }
        Ok(Self {
            path,
            filter: Filter {
                kind: Some(Kind::Decision),
                policy_set: set,
                since_micros: since,
                until_micros: until,
                limit: AUDIT_PAGE,
                ..Filter::default()
            },
            done: false,
            skipped: Skipped::default(),
        })
    }

    /// The audit database file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The next page of replayable cases, or `None` after the last record.
    pub(super) async fn next_page(&mut self) -> anyhow::Result<Option<Vec<Case>>> {
        if self.done {
            return Ok(None);
        }
        let (path, filter) = (self.path.clone(), self.filter.clone());
        let page = tokio::task::spawn_blocking(move || arbiter_audit::query(&path, &filter))
            .await
            .context("the audit query stopped")?
            .with_context(|| format!("cannot read the audit log `{}`", self.path.display()))?;
        self.done = page.len() < AUDIT_PAGE;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        self.filter.after_seq = Some(last.seq);
        let mut cases = Vec::with_capacity(page.len());
        for stored in page {
            let seq = stored.seq;
            match audit_case(stored) {
                Ok(case) => cases.push(case),
                Err(Skip::Redacted) => self.skipped.redacted += 1,
                Err(Skip::Unreadable(why)) => {
                    self.skipped.unreadable += 1;
                    self.skipped
                        .first_unreadable
                        .get_or_insert(Unreadable { seq, why });
                }
            }
        }
        Ok(Some(cases))
    }
}

/// Why a decision record is not replayed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Skip {
    /// Fields of its request were removed before it was logged.
    Redacted,
    /// It has no readable request or outcome; the text says what is wrong.
    Unreadable(String),
}

/// What replay needs of a decision record's body. The request stays raw until the
/// record is known not to be redacted: a redacted request may well not decode, and it
/// is skipped for being redacted either way.
#[derive(Deserialize)]
struct DecisionBody<'a> {
    #[serde(borrow)]
    request: Option<&'a RawValue>,
    #[serde(default)]
    redacted: Vec<IgnoredAny>,
    #[serde(default)]
    approved: bool,
}

/// A decision record as a case.
pub(super) fn audit_case(stored: StoredRecord) -> Result<Case, Skip> {
    let record = stored.record;
    let outcome = record.outcome.as_deref().unwrap_or_default();
    let label = Outcome::parse(outcome)
        .ok_or_else(|| Skip::Unreadable(format!("recorded outcome is `{outcome}`")))?;
    let unreadable = |e: &dyn std::fmt::Display| {
        Skip::Unreadable(format!("no replayable request in the body: {e}"))
    };
    let body: DecisionBody = serde_json::from_str(record.body.get()).map_err(|e| unreadable(&e))?;
    if !body.redacted.is_empty() {
        return Err(Skip::Redacted);
    }
    let request = body
        .request
        .ok_or_else(|| unreadable(&"missing field `request`"))?;
    let request: Request = serde_json::from_str(request.get()).map_err(|e| unreadable(&e))?;
    Ok(Case {
        at: CaseRef::Record {
            seq: stored.seq,
            decision_id: record.decision_id,
        },
        request,
        approved: body.approved,
        label,
        recorded_micros: Some(record.at_micros),
    })
}
