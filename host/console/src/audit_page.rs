//! The audit page (admins): the audit log searched by time, principal, decision and
//! set, with the hash chain's verification status.

mod render;
#[cfg(test)]
mod tests;

use arbiter_audit::{AuditLog, Filter, Kind, StoredRecord, Verification};
use arbiter_service::ServiceError;
use arbiter_service::approvals::blocking;
use http::StatusCode;

use crate::pages::Signed;
use crate::{Answer, Console, web};

/// Rows a page shows at most: a screenful to read; exports are the CLI's and the API's.
const PAGE_ROWS: usize = 100;
/// How far past the time of the record an older page starts before, to take in records
/// appended a little out of time order: a record is stamped when it happens and
/// appended when the writer gets to it, so under load a later seq can carry an earlier
/// time. A second is far more than the writer's queue holds in practice.
const REORDER_SLACK_MICROS: i64 = 1_000_000;
/// Rows an older page reads at most to step past the newer records inside that slack:
/// bounded, so a crafted `before` cannot make a page read the whole log.
const MAX_SCAN: usize = 10_000;
/// The longest principal or set name a search takes (longer is no id Arbiter issues).
const MAX_TEXT: usize = 512;
/// The decision outcomes the search offers.
pub(crate) const OUTCOMES: [&str; 3] = ["allow", "deny", "require-approval"];

/// A search as the form sent it (shown again in the form) and as a filter.
#[derive(Debug, Default)]
pub(crate) struct Search {
    pub(crate) since: String,
    pub(crate) until: String,
    pub(crate) principal: String,
    pub(crate) outcome: String,
    pub(crate) set: String,
    pub(crate) kind: String,
    /// Show records older than this seq (the "older" link).
    pub(crate) before: Option<u64>,
}

/// A search field that does not read: its name and what was wrong.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadField {
    pub(crate) field: &'static str,
    pub(crate) why: &'static str,
}

impl std::fmt::Display for BadField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` {}", self.field, self.why)
    }
}

impl Search {
    /// The search in a query string (absent fields and `any` match everything).
    pub(crate) fn parse(query: &str) -> Self {
        let mut s = Self::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let v = v.trim().to_string();
            match k.as_ref() {
                "since" => s.since = v,
                "until" => s.until = v,
                "principal" => s.principal = v,
                "outcome" => s.outcome = v,
                "set" => s.set = v,
                "kind" => s.kind = v,
                // Checked in `filter`; kept as text until then.
                "before" if !v.is_empty() => s.before = v.parse().ok().or(Some(0)),
                _ => {}
            }
        }
        s
    }

    /// The audit filter of this search (newest first, a page and one more row to know
    /// whether there are older ones), or the first field that does not read.
    pub(crate) fn filter(&self) -> Result<Filter, BadField> {
        let time = |field, v: &str| match v {
            "" => Ok(None),
            v => utc_micros(v).map(Some).ok_or(BadField {
                field,
                why: "is not a date and time (YYYY-MM-DDTHH:MM)",
            }),
        };
        let text = |field, v: &str| match v {
            "" => Ok(None),
            v if v.chars().count() > MAX_TEXT => Err(BadField {
                field,
                why: "is too long (at most 512 characters)",
            }),
            v => Ok(Some(v.to_string())),
        };
        let outcome = match self.outcome.as_str() {
            "" | "any" => None,
            o if OUTCOMES.contains(&o) => Some(o.to_string()),
            _ => {
                return Err(BadField {
                    field: "outcome",
                    why: "is not any, allow, deny or require-approval",
                });
            }
        };
        let kind = match self.kind.as_str() {
            "" | "any" => None,
            k => Some(k.parse::<Kind>().map_err(|_| BadField {
                field: "kind",
                why: "is not any, decision, approval, credential, admin, shadow or probe",
            })?),
        };
        if self.before == Some(0) {
            return Err(BadField {
                field: "before",
                why: "is not a record number",
            });
        }
        Ok(Filter {
            since_micros: time("since", &self.since)?,
            until_micros: time("until", &self.until)?,
            principal: text("principal", &self.principal)?,
            outcome,
            policy_set: text("set", &self.set)?,
            decision_id: None,
            kind,
            after_seq: None,
            limit: PAGE_ROWS + 1,
            newest_first: true,
        })
    }

    /// This search as a query string, with `before` as given.
    pub(crate) fn query(&self, before: Option<u64>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("since", &self.since),
            ("until", &self.until),
            ("principal", &self.principal),
            ("outcome", &self.outcome),
            ("set", &self.set),
            ("kind", &self.kind),
        ] {
            if !v.is_empty() && v != "any" {
                q.append_pair(k, v);
            }
        }
        if let Some(b) = before {
            q.append_pair("before", &b.to_string());
        }
        q.finish()
    }
}

/// One page of results, newest first, and whether older records match.
pub(crate) struct Found {
    pub(crate) records: Vec<StoredRecord>,
    pub(crate) older: bool,
}

/// `GET /console/audit?since=&until=&principal=&outcome=&set=&kind=&before=`.
pub(crate) async fn get(console: &Console, signed: &Signed<'_>, query: Option<&str>) -> Answer {
    if let Some(refused) = crate::admin_only(signed) {
        return refused;
    }
    let search = Search::parse(query.unwrap_or_default());
    let Some(log) = console.app.audit() else {
        return web::html(StatusCode::OK, render::off(signed));
    };
    let filter = match search.filter() {
        Ok(f) => f,
        Err(bad) => {
            let page = render::page(signed, &search, None, Err(&bad), replica(console));
            return web::html(StatusCode::BAD_REQUEST, page);
        }
    };
    let (found, verified) =
        tokio::join!(search_log(log.clone(), filter, search.before), verify(log));
    match found {
        Ok(found) => web::html(
            StatusCode::OK,
            render::page(
                signed,
                &search,
                verified.ok().as_ref(),
                Ok(&found),
                replica(console),
            ),
        ),
        Err(e) => crate::routes::failed(&e, signed),
    }
}

/// This replica's id when replicas share their audit chains in the database.
fn replica(console: &Console) -> Option<&str> {
    arbiter_service::audit_log::shared_chains(&console.app).map(|_| console.app.replica_id())
}

/// The chain verified from the first record (the whole log is read, off the runtime).
pub(crate) async fn verify(log: &AuditLog) -> Result<Verification, ServiceError> {
    let path = log.path().to_path_buf();
    blocking(move || {
        arbiter_audit::verify(&path, None).map_err(|e| {
            tracing::error!(error = %e, "audit verification could not run");
            ServiceError::Unavailable("the audit log cannot be read".into())
        })
    })
    .await
}

/// Records matching `filter`, off the runtime.
pub(crate) async fn query(
    log: AuditLog,
    filter: Filter,
) -> Result<Vec<StoredRecord>, ServiceError> {
    blocking(move || log.query(&filter).map_err(unreadable)).await
}

fn unreadable(e: arbiter_audit::AuditError) -> ServiceError {
    tracing::error!(error = %e, "audit query failed");
    ServiceError::Unavailable("the audit log cannot be read".into())
}

async fn search_log(
    log: AuditLog,
    filter: Filter,
    before: Option<u64>,
) -> Result<Found, ServiceError> {
    blocking(move || {
        let mut records = match before {
            None => log.query(&filter).map_err(unreadable)?,
            Some(seq) => older_than(&log, filter, seq).map_err(unreadable)?,
        };
        let older = records.len() > PAGE_ROWS;
        records.truncate(PAGE_ROWS);
        Ok(Found { records, older })
    })
    .await
}

/// The newest records matching `filter` with a seq below `before`. The filter has no
/// upper bound on seq, so the page is bounded by time (the time of record `before`,
/// plus [`REORDER_SLACK_MICROS`]) and the newer records that window takes in are
/// stepped over, reading more rows until a whole page remains.
fn older_than(
    log: &AuditLog,
    mut filter: Filter,
    before: u64,
) -> Result<Vec<StoredRecord>, arbiter_audit::AuditError> {
    let at = log.query(&Filter {
        after_seq: Some(before.saturating_sub(1)),
        limit: 1,
        ..Filter::default()
    })?;
    let Some(at) = at.first() else {
        return Ok(Vec::new());
    };
    let window = at.record.at_micros.saturating_add(REORDER_SLACK_MICROS);
    filter.until_micros = Some(filter.until_micros.map_or(window, |u| u.min(window)));
    let wanted = filter.limit;
    loop {
        let rows = log.query(&filter)?;
        let read = rows.len();
        let kept: Vec<_> = rows.into_iter().filter(|r| r.seq < before).collect();
        let newer = read - kept.len();
        if kept.len() >= wanted || read < filter.limit || filter.limit >= MAX_SCAN {
            return Ok(kept);
        }
        // Newest first, so the records at or past `before` came first: read past them.
        filter.limit = (newer + wanted).max(filter.limit * 2).min(MAX_SCAN);
    }
}

/// `YYYY-MM-DDTHH:MM[:SS]` (what a `datetime-local` control sends) read as UTC, in
/// unix microseconds.
pub(crate) fn utc_micros(v: &str) -> Option<i64> {
    let (date, time) = v.split_once(['T', ' '])?;
    let num = |s: &str, len: usize| -> Option<i64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let mut d = date.split('-');
    let (year, month, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    let mut t = time.split(':');
    let (hour, minute) = (num(t.next()?, 2)?, num(t.next()?, 2)?);
    let second = match t.next() {
        None => 0,
        Some(s) => num(s, 2)?,
    };
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    let secs = arbiter_core::clock::unix_secs(year, month, day, hour, minute, second)?;
    Some(secs * 1_000_000)
}
