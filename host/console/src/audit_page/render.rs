//! The audit page's markup: the chain's status, the search form and the results.

use arbiter_audit::{Kind, StoredRecord, Verification};
use maud::{Markup, html};
use serde_json::Value as Json;

use super::{BadField, Found, OUTCOMES, Search};
use crate::pages::{Signed, layout};
use crate::view;

/// Characters of a record's summary at most: the table is for scanning; the CLI and the
/// API give whole bodies.
const SUMMARY_CHARS: usize = 120;
/// Hex digits of a digest shown in a summary (enough to tell versions apart).
const DIGEST_CHARS: usize = 12;

/// The page without a log to search.
pub(super) fn off(signed: &Signed<'_>) -> Markup {
    layout(
        "Audit log",
        Some(signed),
        html! {
            p.error role="status" { "The audit log is off on this server: there is nothing to search or verify." }
            p.hint { "It is off when the server runs with `--no-audit` or `[audit] enabled = false` (docs/operators.md, Audit log)." }
        },
    )
}

/// The page: the chain's status (when it could be verified), the form, and the
/// results or why the search was refused. `replica` names this replica when replicas
/// share a database: the page then searches this replica's chain only, and says so.
pub(super) fn page(
    signed: &Signed<'_>,
    search: &Search,
    verified: Option<&Verification>,
    found: Result<&Found, &BadField>,
    replica: Option<&str>,
) -> Markup {
    layout(
        "Audit log",
        Some(signed),
        html! {
            @match found {
                Err(bad) => { p #search-error.error role="alert" { (bad) } }
                Ok(_) => (chain(verified)),
            }
            @if let Some(id) = replica {
                p #replica-chain.hint {
                    "This page searches the chain of replica " code { (id) } " only (its local log). "
                    "Every replica's chain, merged by time: " code { "arbiter audit query --state-url URL" }
                    " or the Audit API on any replica."
                }
            }
            (form(search, found.err().map(|b| b.field)))
            @if let Ok(found) = found { (results(search, found)) }
        },
    )
}

fn chain(verified: Option<&Verification>) -> Markup {
    let Some(v) = verified else {
        return html! {
            section.card.chain {
                h2 { "Chain" }
                p.error { "The chain could not be verified: the audit log cannot be read now." }
            }
        };
    };
    html! {
        section.card.chain {
            h2 { "Chain" }
            @match &v.broken {
                None => p.intact role="status" { "Intact: every record's hash and link checks out." },
                Some(b) => p.error.broken role="alert" { "Broken at record " (b.seq) ": " (b.why) },
            }
            dl {
                dt { "Records" } dd { (v.records) }
                dt { "Checkpoints" } dd { (v.checkpoints) }
                dt { "Head seq" } dd { (v.head_seq) }
            }
            details {
                summary { "Verification report" }
                pre { (v.to_string()) }
            }
        }
    }
}

/// The search form; `bad` names the field a refused search got wrong, marked invalid
/// and described by the error above the form.
fn form(s: &Search, bad: Option<&str>) -> Markup {
    let kinds = std::iter::once("any").chain(Kind::ALL.iter().map(|k| k.as_str()));
    let outcomes = std::iter::once("any").chain(OUTCOMES);
    let invalid = |field: &str| (bad == Some(field)).then_some("true");
    let described = |field: &str| (bad == Some(field)).then_some("search-error");
    html! {
        form.card.search method="get" action="/console/audit" {
            h2 { "Search" }
            div.fields {
                div {
                    label for="since" { "Since (UTC)" }
                    input #since name="since" type="datetime-local" value=(s.since) aria-invalid=[invalid("since")] aria-describedby=[described("since")];
                }
                div {
                    label for="until" { "Until (UTC)" }
                    input #until name="until" type="datetime-local" value=(s.until) aria-invalid=[invalid("until")] aria-describedby=[described("until")];
                }
                div {
                    label for="principal" { "Principal" }
                    input #principal name="principal" type="text" value=(s.principal) maxlength="512" autocomplete="off" aria-invalid=[invalid("principal")] aria-describedby=[described("principal")];
                }
                div {
                    label for="outcome" { "Decision" }
                    select #outcome name="outcome" aria-invalid=[invalid("outcome")] aria-describedby=[described("outcome")] {
                        @for o in outcomes { option value=(o) selected[s.outcome == o] { (o) } }
                    }
                }
                div {
                    label for="set" { "Policy set" }
                    input #set name="set" type="text" value=(s.set) maxlength="512" autocomplete="off" aria-invalid=[invalid("set")] aria-describedby=[described("set")];
                }
                div {
                    label for="kind" { "Kind" }
                    select #kind name="kind" aria-invalid=[invalid("kind")] aria-describedby=[described("kind")] {
                        @for k in kinds { option value=(k) selected[s.kind == k] { (k) } }
                    }
                }
            }
            div.buttons { button type="submit" { "Search" } a href="/console/audit" { "Clear" } }
        }
    }
}

fn results(search: &Search, found: &Found) -> Markup {
    html! {
        section.results aria-label="Records" {
            @if found.records.is_empty() {
                p.hint { "No record matches." }
            } @else {
                p.hint { (found.records.len()) " records, newest first." }
                div.scroll {
                    table.audit {
                        thead { tr {
                            th scope="col" { "Seq" } th scope="col" { "Time" } th scope="col" { "Kind" }
                            th scope="col" { "Principal" } th scope="col" { "Outcome" } th scope="col" { "Set" }
                            th scope="col" { "Decision" } th scope="col" { "Summary" }
                        } }
                        tbody {
                            @for r in &found.records { (row(r)) }
                        }
                    }
                }
            }
            nav.paging aria-label="Pages" {
                @if search.before.is_some() { a href={ "/console/audit?" (search.query(None)) } { "Newest" } }
                @if let (true, Some(oldest)) = (found.older, found.records.last()) {
                    a rel="next" href={ "/console/audit?" (search.query(Some(oldest.seq))) } { "Older" }
                }
            }
        }
    }
}

fn row(r: &StoredRecord) -> Markup {
    let rec = &r.record;
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    html! {
        tr {
            td { (r.seq) }
            td.time { (view::iso(rec.at_micros)) }
            td { (rec.kind.as_str()) }
            td.id { (or_dash(&rec.principal)) }
            td { span.state { (or_dash(&rec.outcome)) } }
            td { (or_dash(&rec.policy_set)) }
            td.id {
                @match &rec.decision_id {
                    Some(id) => code { (id) },
                    None => "—",
                }
            }
            td.summary { (summary(r)) }
        }
    }
}

/// A line about the record: what was asked, for decisions; the act, for admin acts.
pub(super) fn summary(r: &StoredRecord) -> String {
    let body = r.record.body_value();
    let asked = || {
        let req = body.get("request").unwrap_or(&Json::Null);
        format!(
            "{} on {}",
            view::text(req, &["action", "name"]),
            view::text(req, &["resource", "id"])
        )
    };
    let line = match r.record.kind {
        Kind::Decision | Kind::Probe => asked(),
        Kind::Shadow => format!(
            "{}; enforced: {}",
            asked(),
            view::text(&body, &["enforced", "outcome"])
        ),
        Kind::Admin => admin(&body, r.record.outcome.as_deref().unwrap_or_default()),
        Kind::Approval | Kind::Credential => body.to_string(),
    };
    short(&line, SUMMARY_CHARS)
}

fn admin(body: &Json, act: &str) -> String {
    let mut line = act.to_string();
    if let Some(set) = body.get("set").and_then(Json::as_str) {
        line.push_str(&format!(" {set}"));
    }
    if let Some(v) = body.pointer("/detail/version").and_then(Json::as_str) {
        // A version, or a digest an act named it by: its first digits tell it apart.
        let digest = v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit());
        line.push_str(&format!(
            " {}",
            short(v, if digest { DIGEST_CHARS } else { 40 })
        ));
    }
    if let Some(why) = body.get("refused").and_then(Json::as_str) {
        line.push_str(&format!(": {why}"));
    }
    if line == act {
        return format!("{act} {body}");
    }
    line
}

/// `s` cut to `max` characters, marked when cut.
pub(crate) fn short(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or(s)),
        None => s.to_string(),
    }
}
