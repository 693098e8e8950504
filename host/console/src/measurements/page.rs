//! The measurements pages' markup: the list of saved reports, one report (summary
//! table, charts, changed decisions), and the page for a report that cannot be shown.

use maud::{Markup, html};

use super::report::{Doc, SetReport};
use super::{Entry, REPORTS_DIR};
use crate::charts::{self, Group, OUTCOMES, Stack, num};
use crate::pages::{Signed, layout};
use crate::view;

/// How to make a report, shown where there is none.
const HOW: &str = "arbiter replay --audit <data_dir> --baseline builtin:reference --candidate <set> --save <data_dir>/reports";

/// The server has no data directory to read reports from.
pub(crate) fn no_directory(signed: &Signed<'_>) -> Markup {
    layout(
        "Measurements",
        Some(signed),
        html! {
            p.hint { "This server has no reports directory: its audit log is off, so there is no data directory to read `" (REPORTS_DIR) "` from." }
        },
    )
}

/// Saved reports, newest first.
pub(crate) fn list(entries: &[Entry], signed: &Signed<'_>) -> Markup {
    layout(
        "Measurements",
        Some(signed),
        html! {
            p.hint { "Replay reports saved in the data directory's `" (REPORTS_DIR) "` folder. Make one with " code { (HOW) } "." }
            @if entries.is_empty() {
                p #no-reports { "No reports yet." }
            } @else {
                div.scroll {
                    table #reports {
                        thead { tr {
                            th scope="col" { "Report" } th scope="col" { "Made" } th scope="col" { "Input" }
                            th scope="col" { "Baseline → candidate" } th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for e in entries { (row(e)) }
                        }
                    }
                }
            }
        },
    )
}

fn row(e: &Entry) -> Markup {
    let link = html! { a href={ "/console/measurements/" (e.stem) } { (e.stem) } };
    match &e.doc {
        Ok(doc) => {
            let sets: Vec<String> = doc.sets().iter().map(|s| s.set_name()).collect();
            html! {
                tr {
                    td { (link) }
                    td { (doc.generated_micros.map_or("—".into(), view::iso)) }
                    td { (doc.input.kind) " " code { (doc.input.path) } }
                    td { (sets.join(" → ")) }
                    td { (num(doc.input.actions as f64)) }
                }
            }
        }
        Err(problem) => html! {
            tr { td { (link) } td.error colspan="4" { "cannot be shown: " (problem) } }
        },
    }
}

/// A report that cannot be shown, named.
pub(crate) fn problem(stem: &str, why: &str, signed: &Signed<'_>) -> Markup {
    layout(
        "Report cannot be shown",
        Some(signed),
        html! {
            p.error role="alert" { "The report " code { (stem) ".json" } " cannot be shown: " (why) }
            p { a href="/console/measurements" { "All reports" } }
        },
    )
}

/// One report: what was replayed, the numbers side by side, the charts and the
/// decisions that changed.
pub(crate) fn report(stem: &str, doc: &Doc, signed: &Signed<'_>) -> Markup {
    let sets = doc.sets();
    let names: Vec<&str> = if sets.len() == 2 {
        vec!["baseline", "candidate"]
    } else {
        vec!["replayed"]
    };
    layout(
        &format!("Replay report {stem}"),
        Some(signed),
        html! {
            section.card {
                h2 { "What was replayed" }
                dl {
                    dt { "Made" } dd { (doc.generated_micros.map_or("—".into(), view::iso)) }
                    dt { "Input" } dd { (doc.input.kind) " " code { (doc.input.path) } }
                    dt { "Actions" } dd #actions { (num(doc.input.actions as f64)) }
                    @if let Some(s) = &doc.input.skipped {
                        dt { "Left out" } dd { (s.redacted) " redacted, " (s.unreadable) " unreadable" }
                    }
                    dt { "Labels" } dd { (doc.input.labels) }
                    @for (name, set) in names.iter().zip(&sets) {
                        dt { (name) } dd { (set.set_name()) " " span.hint { "(" (set.policy_set.source) ", " code { (short(&set.policy_set.digest)) } ")" } }
                    }
                }
            }
            section.card {
                h2 { "Summary" }
                (summary(&names, &sets))
            }
            section.card {
                h2 { "Confusion matrices" }
                div.charts.pair {
                    @for (i, (name, set)) in names.iter().zip(&sets).enumerate() {
                        (charts::confusion(&format!("confusion-{i}"), &format!("Confusion matrix, {name}: {}", set.set_name()), &set.matrix()))
                    }
                }
            }
            section.card {
                h2 { "Decisions by outcome over time" }
                div.charts { (over_time(&names, &sets)) }
            }
            section.card.charts {
                h2 { "Approval burden" }
                (burden(&names, &sets))
            }
            section.card.charts {
                h2 { "Decision latency" }
                (latency(&names, &sets))
            }
            (changes(doc, sets.len() == 2))
        },
    )
}

/// How a summary row's numbers read.
#[derive(Clone, Copy)]
enum Unit {
    Count,
    Rate,
    Decimal,
}

fn summary(names: &[&str], sets: &[&SetReport]) -> Markup {
    let count = |f: fn(&SetReport) -> u64| sets.iter().map(|s| Some(f(s) as f64)).collect();
    let opt = |f: fn(&SetReport) -> Option<f64>| sets.iter().map(|s| f(s)).collect();
    let micros =
        |f: fn(&SetReport) -> Option<u64>| sets.iter().map(|s| f(s).map(|v| v as f64)).collect();
    let rows: Vec<(&str, Unit, Vec<Option<f64>>)> = vec![
        ("Actions", Unit::Count, count(|s| s.actions)),
        ("False positives", Unit::Count, count(|s| s.false_positives)),
        (
            "False-positive rate",
            Unit::Rate,
            opt(|s| s.false_positive_rate),
        ),
        ("False negatives", Unit::Count, count(|s| s.false_negatives)),
        (
            "False-negative rate",
            Unit::Rate,
            opt(|s| s.false_negative_rate),
        ),
        (
            "Require-approval per 1,000",
            Unit::Decimal,
            opt(|s| s.approval_burden_per_1000),
        ),
        (
            "Approvals opened per 1,000",
            Unit::Decimal,
            opt(|s| {
                s.human_approvals
                    .as_ref()
                    .and_then(|h| h.approvals_per_1000)
            }),
        ),
        (
            "Votes needed per 1,000",
            Unit::Decimal,
            opt(|s| s.human_approvals.as_ref().and_then(|h| h.votes_per_1000)),
        ),
        (
            "Latency p50 (µs)",
            Unit::Count,
            micros(|s| s.latency_us.p50),
        ),
        (
            "Latency p90 (µs)",
            Unit::Count,
            micros(|s| s.latency_us.p90),
        ),
        (
            "Latency p99 (µs)",
            Unit::Count,
            micros(|s| s.latency_us.p99),
        ),
        (
            "Latency max (µs)",
            Unit::Count,
            micros(|s| s.latency_us.max),
        ),
        (
            "Plugin failures",
            Unit::Count,
            count(|s| s.plugin_failures.total),
        ),
    ];
    let two = sets.len() == 2;
    html! {
        div.scroll {
            table #summary {
                thead { tr {
                    th scope="col" { "Measure" }
                    @for n in names { th scope="col" { (n) } }
                    @if two { th scope="col" { "Δ candidate − baseline" } }
                } }
                tbody {
                    @for (label, unit, values) in &rows {
                        tr {
                            th scope="row" { (label) }
                            @for v in values { td { (value(*v, *unit)) } }
                            @if two { td { (delta(values[0], values[1], *unit)) } }
                        }
                    }
                }
            }
        }
    }
}

fn value(v: Option<f64>, unit: Unit) -> String {
    match (v, unit) {
        (None, _) => "—".into(),
        (Some(v), Unit::Rate) => format!("{}%", num(v * 100.0)),
        (Some(v), _) => num(v),
    }
}

fn delta(b: Option<f64>, c: Option<f64>, unit: Unit) -> String {
    let (Some(b), Some(c)) = (b, c) else {
        return "—".into();
    };
    let d = match unit {
        Unit::Rate => (c - b) * 100.0,
        Unit::Count | Unit::Decimal => c - b,
    };
    let sign = if d > 0.0 { "+" } else { "" };
    let points = if matches!(unit, Unit::Rate) {
        " pts"
    } else {
        ""
    };
    format!("{sign}{}{points}", num(d))
}

fn over_time(names: &[&str], sets: &[&SetReport]) -> Markup {
    let bars = |s: &SetReport| -> Vec<Stack> {
        let Some(o) = &s.over_time else {
            return Vec::new();
        };
        o.buckets
            .iter()
            .map(|b| Stack {
                label: bucket_label(&o.axis, o.width, b.start),
                counts: OUTCOMES.map(|(k, _, _)| b.decided.get(k).copied().unwrap_or(0)),
            })
            .collect()
    };
    let all: Vec<Vec<Stack>> = sets.iter().map(|s| bars(s)).collect();
    let scale = all
        .iter()
        .flatten()
        .map(|b| b.counts.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    html! {
        @if sets.iter().all(|s| s.over_time.is_none()) {
            p.hint { "This report has no series over time (it was made before `arbiter replay` recorded one)." }
        }
        @for (i, ((name, set), bars)) in names.iter().zip(sets).zip(&all).enumerate() {
            @if let Some(o) = &set.over_time {
                (charts::over_time(
                    &format!("over-time-{i}"),
                    &format!("Decisions by outcome over time, {name}: {}", set.set_name()),
                    &axis_label(&o.axis, o.width),
                    bars,
                    scale,
                ))
            }
        }
    }
}

/// A bucket's label: its start, as a time in UTC or as an input line (from 1).
fn bucket_label(axis: &str, width: i64, start: i64) -> String {
    const DAY: i64 = 86_400_000_000;
    if axis != "time" {
        return format!("line {}", num(start.saturating_add(1) as f64));
    }
    let iso = view::iso(start); // `2025-06-01 12:00:00 UTC`
    let part = if width >= DAY {
        iso.get(..10)
    } else if width >= 60_000_000 {
        iso.get(5..16)
    } else {
        iso.get(11..19)
    };
    part.map_or(iso.clone(), str::to_string)
}

/// The time axis's label: what the buckets are and how wide.
fn axis_label(axis: &str, width: i64) -> String {
    if axis != "time" {
        return format!(
            "input position: {} lines a bucket (labelled files carry no time)",
            num(width as f64)
        );
    }
    let secs = width / 1_000_000;
    let span = match secs {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    };
    format!("recorded time (UTC): {span} a bucket")
}

fn burden(names: &[&str], sets: &[&SetReport]) -> Markup {
    let mut groups = vec![Group {
        label: "require-approval decisions".into(),
        values: sets.iter().map(|s| s.approval_burden_per_1000).collect(),
    }];
    if sets.iter().any(|s| s.human_approvals.is_some()) {
        let of = |f: fn(&super::report::Burden) -> Option<f64>| {
            sets.iter()
                .map(|s| s.human_approvals.as_ref().and_then(f))
                .collect()
        };
        groups.push(Group {
            label: "approvals opened".into(),
            values: of(|h| h.approvals_per_1000),
        });
        groups.push(Group {
            label: "votes needed".into(),
            values: of(|h| h.votes_per_1000),
        });
    }
    charts::grouped(
        "burden",
        "Approval burden",
        "per 1,000 actions",
        names,
        &groups,
    )
}

fn latency(names: &[&str], sets: &[&SetReport]) -> Markup {
    let of =
        |f: fn(&SetReport) -> Option<u64>| sets.iter().map(|s| f(s).map(|v| v as f64)).collect();
    let groups = vec![
        Group {
            label: "p50".into(),
            values: of(|s| s.latency_us.p50),
        },
        Group {
            label: "p90".into(),
            values: of(|s| s.latency_us.p90),
        },
        Group {
            label: "p99".into(),
            values: of(|s| s.latency_us.p99),
        },
        Group {
            label: "max".into(),
            values: of(|s| s.latency_us.max),
        },
    ];
    charts::grouped(
        "latency",
        "Decision latency percentiles",
        "microseconds (µs)",
        names,
        &groups,
    )
}

fn changes(doc: &Doc, two: bool) -> Markup {
    let Some(c) = doc.changes() else {
        return html! {};
    };
    let (from, to) = if two {
        ("baseline", "candidate")
    } else {
        ("label", "replayed")
    };
    html! {
        section.card {
            h2 { "Changed decisions" }
            p #changed { (num(c.total as f64)) " decisions differ between " (from) " and " (to) "." }
            @if !c.by_change.is_empty() {
                div.scroll { table #by-change {
                    thead { tr { th scope="col" { (from) " → " (to) } th scope="col" { "Actions" } } }
                    tbody { @for (change, n) in &c.by_change {
                        tr { td { (change.replace("->", " → ")) } td { (num(*n as f64)) } }
                    } }
                } }
            }
            @if !c.examples.is_empty() {
                h3 { "Examples" }
                div.scroll { table #examples {
                    thead { tr {
                        th scope="col" { "Where" } th scope="col" { "Principal" } th scope="col" { "Action" }
                        th scope="col" { (from) } th scope="col" { (to) } th scope="col" { "Reasons" }
                    } }
                    tbody { @for e in &c.examples {
                        tr {
                            td { (example_place(e)) }
                            td { (e.principal) } td { (e.action) }
                            td { span class=(outcome_class(&e.from)) { (e.from) } }
                            td { span class=(outcome_class(&e.to)) { (e.to) } }
                            td {
                                @if let Some(r) = &e.from_reasons { div { "was: " (r.join(", ")) } }
                                div { (e.reasons.join(", ")) }
                            }
                        }
                    } }
                } }
            }
        }
    }
}

fn example_place(e: &super::report::Example) -> String {
    match (e.seq, e.line) {
        (Some(seq), _) => match &e.decision_id {
            Some(d) => format!("record {seq} ({d})"),
            None => format!("record {seq}"),
        },
        (None, Some(line)) => match &e.id {
            serde_json::Value::Null => format!("line {line}"),
            id => format!("line {line} (id {})", view::text(id, &[])),
        },
        _ => "—".into(),
    }
}

fn outcome_class(outcome: &str) -> &'static str {
    OUTCOMES
        .iter()
        .find(|(k, _, _)| *k == outcome)
        .map_or("", |(_, _, class)| match *class {
            "c-allow" => "t-allow",
            "c-deny" => "t-deny",
            _ => "t-approval",
        })
}

/// The first 12 hex digits of a digest.
fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}
