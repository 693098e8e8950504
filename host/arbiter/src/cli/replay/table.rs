//! The text form of a replay: one column per set (and a delta column for two), the
//! confusion matrices side by side, then the changed decisions with examples.

use std::io::{self, Write};

use super::input::{CaseRef, Skipped};
use super::matrix::OUTCOMES;
use super::report::{Changes, Delta, Report};
use super::{InputSummary, Output, Reports};

/// Prints `o` as tables.
pub(super) fn print(out: &mut impl Write, o: &Output) -> io::Result<()> {
    heading(out, &o.input)?;
    match &o.reports {
        Reports::One { report } => {
            columns(out, &metrics(&[report], None), "", Align::Left)?;
            writeln!(out)?;
            matrices(out, &[("", report)])?;
            let title = "changed decisions (label -> replayed)";
            changes(out, title, &report.changed, true)?;
        }
        Reports::Two {
            baseline,
            candidate,
            delta,
            differences,
        } => {
            columns(
                out,
                &metrics(&[baseline, candidate], Some(delta)),
                "",
                Align::Left,
            )?;
            writeln!(out)?;
            matrices(out, &[("baseline", baseline), ("candidate", candidate)])?;
            // The label comparisons as counts only: their examples are in the JSON,
            // and the examples that matter here are where the two sets part.
            let labels = "decisions that differ from the labels";
            changes(out, &format!("baseline {labels}"), &baseline.changed, false)?;
            changes(
                out,
                &format!("candidate {labels}"),
                &candidate.changed,
                false,
            )?;
            changes(
                out,
                "decisions that differ between baseline and candidate",
                differences,
                true,
            )?;
        }
    }
    Ok(())
}

fn heading(out: &mut impl Write, input: &InputSummary) -> io::Result<()> {
    let what = if input.kind == "audit" {
        "recorded decisions from"
    } else {
        "labelled actions from"
    };
    writeln!(out, "replay of {} {what} {}", input.actions, input.path)?;
    if let Some(Skipped {
        redacted,
        unreadable,
        first_unreadable,
    }) = &input.skipped
    {
        writeln!(
            out,
            "skipped {} records: {redacted} redacted, {unreadable} unreadable",
            redacted + unreadable
        )?;
        if let Some(first) = first_unreadable {
            writeln!(out, "  first unreadable: seq {}: {}", first.seq, first.why)?;
        }
    }
    writeln!(out, "labels: {}", input.labels)?;
    writeln!(
        out,
        "positive = deny or require-approval; false positive = labelled allow, replayed not allow;\nfalse negative = labelled not allow, replayed allow\n"
    )
}

/// The metric rows: a name, one cell per report, then the delta if there is one.
fn metrics(reports: &[&Report], delta: Option<&Delta>) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    if delta.is_some() {
        rows.push(
            ["", "baseline", "candidate", "delta"]
                .map(String::from)
                .to_vec(),
        );
    }
    let mut row = |name: &str, cell: &dyn Fn(&Report) -> String, d: Option<String>| {
        let mut r = vec![name.to_owned()];
        r.extend(reports.iter().map(|rep| cell(rep)));
        r.extend(d);
        rows.push(r);
    };
    let d = |f: &dyn Fn(&Delta) -> String| delta.map(f);
    row(
        "policy set",
        &|r| r.policy_set.source.clone(),
        d(&|_| String::new()),
    );
    row(
        "set version",
        &|r| {
            format!(
                "{} {} ({})",
                r.policy_set.name,
                r.policy_set.version,
                short(&r.policy_set.digest)
            )
        },
        d(&|_| String::new()),
    );
    row("actions", &|r| r.actions.to_string(), d(&|_| String::new()));
    row(
        "false positives",
        &|r| {
            format!(
                "{} of {} ({})",
                r.false_positives,
                r.labelled_allow,
                percent(r.false_positive_rate)
            )
        },
        d(&|d| {
            format!(
                "{:+} ({})",
                d.false_positives,
                points(d.false_positive_rate)
            )
        }),
    );
    row(
        "false negatives",
        &|r| {
            format!(
                "{} of {} ({})",
                r.false_negatives,
                r.labelled_not_allow,
                percent(r.false_negative_rate)
            )
        },
        d(&|d| {
            format!(
                "{:+} ({})",
                d.false_negatives,
                points(d.false_negative_rate)
            )
        }),
    );
    row(
        "approval burden / 1,000",
        &|r| number(r.approval_burden_per_1000),
        d(&|d| signed_number(d.approval_burden_per_1000)),
    );
    let none = || String::new();
    row(
        "approvals opened / 1,000",
        &|r| {
            r.human_approvals.as_ref().map_or_else(
                || "-".into(),
                |h| {
                    format!(
                        "{} ({} in all)",
                        number(h.approvals_per_1000),
                        h.approvals_opened
                    )
                },
            )
        },
        d(&|_| none()),
    );
    row(
        "approver votes / 1,000",
        &|r| {
            r.human_approvals.as_ref().map_or_else(
                || "-".into(),
                |h| format!("{} ({} in all)", number(h.votes_per_1000), h.votes_needed),
            )
        },
        d(&|_| none()),
    );
    row("latency p50", &|r| micros(r.latency_us.p50), d(&|_| none()));
    row("latency p90", &|r| micros(r.latency_us.p90), d(&|_| none()));
    row(
        "latency p99",
        &|r| micros(r.latency_us.p99),
        d(&|d| {
            d.latency_p99_us
                .map_or_else(|| "-".into(), |us| format!("{us:+} µs"))
        }),
    );
    row("latency max", &|r| micros(r.latency_us.max), d(&|_| none()));
    row(
        "plugin failures",
        &|r| {
            if r.plugin_failures.total == 0 {
                "none".into()
            } else {
                let kinds: Vec<String> = r
                    .plugin_failures
                    .by_kind
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect();
                format!("{} ({})", r.plugin_failures.total, kinds.join(", "))
            }
        },
        d(&|_| String::new()),
    );
    row(
        "changed vs labels",
        &|r| r.changed.total.to_string(),
        d(&|_| String::new()),
    );
    rows
}

/// The confusion matrices of `reports`, side by side.
fn matrices(out: &mut impl Write, reports: &[(&str, &Report)]) -> io::Result<()> {
    writeln!(
        out,
        "confusion matrix (rows: label, columns: replayed decision)"
    )?;
    let mut rows = Vec::new();
    if reports.len() > 1 {
        let mut r = vec![String::new()];
        for (name, _) in reports {
            r.push((*name).to_owned());
            r.extend([String::new(), String::new()]);
        }
        rows.push(r);
    }
    let mut header = vec!["label".to_owned()];
    for _ in reports {
        header.extend(OUTCOMES.map(|o| o.as_str().to_owned()));
    }
    rows.push(header);
    for label in OUTCOMES {
        let mut r = vec![label.as_str().to_owned()];
        for (_, report) in reports {
            r.extend(OUTCOMES.map(|d| report.matrix.get(label, d).to_string()));
        }
        rows.push(r);
    }
    let mut total = vec!["total".to_owned()];
    for (_, report) in reports {
        total.extend(OUTCOMES.map(|d| report.matrix.decided(d).to_string()));
    }
    rows.push(total);
    columns(out, &rows, "  ", Align::Right)
}

/// A comparison's counts by `from -> to` and its examples.
fn changes(out: &mut impl Write, title: &str, c: &Changes, examples: bool) -> io::Result<()> {
    writeln!(out, "\n{title}: {}", c.total)?;
    let counts: Vec<Vec<String>> = c
        .by_change
        .iter()
        .map(|(change, n)| vec![change.replace("->", " -> "), n.to_string()])
        .collect();
    columns(out, &counts, "  ", Align::Right)?;
    if !examples || c.examples.is_empty() {
        return Ok(());
    }
    writeln!(out, "  first {}:", c.examples.len())?;
    for e in &c.examples {
        writeln!(
            out,
            "    {}  {}  {}  {} -> {}",
            case_ref(&e.at),
            e.principal,
            e.action,
            e.from,
            e.to
        )?;
        match &e.from_reasons {
            Some(from) => writeln!(
                out,
                "      reasons: baseline [{}], candidate [{}]",
                from.join(", "),
                e.reasons.join(", ")
            )?,
            None => writeln!(out, "      reasons: [{}]", e.reasons.join(", "))?,
        }
    }
    Ok(())
}

fn case_ref(at: &CaseRef) -> String {
    match at {
        CaseRef::Vector { id, line } => {
            let id = id.as_str().map_or_else(|| id.to_string(), str::to_owned);
            format!("id {id} (line {line})")
        }
        CaseRef::Record { seq, decision_id } => match decision_id {
            Some(d) => format!("seq {seq} (decision {d})"),
            None => format!("seq {seq}"),
        },
    }
}

/// How the cells after the first line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// Prints `rows` in columns: the first left-aligned, the rest aligned by `align`.
fn columns(
    out: &mut impl Write,
    rows: &[Vec<String>],
    indent: &str,
    align: Align,
) -> io::Result<()> {
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |c: usize| {
        rows.iter()
            .filter_map(|r| r.get(c))
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..count).map(width).collect();
    for r in rows {
        let mut line = indent.to_owned();
        for (c, cell) in r.iter().enumerate() {
            let pad = widths[c].saturating_sub(cell.chars().count());
            if c > 0 {
                line.push_str("   ");
            }
            if c == 0 || align == Align::Left {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".into(), |r| format!("{:.2}%", r * 100.0))
}

fn points(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".into(), |r| format!("{:+.2} pts", r * 100.0))
}

fn number(n: Option<f64>) -> String {
    n.map_or_else(|| "-".into(), |n| format!("{n:.1}"))
}

fn signed_number(n: Option<f64>) -> String {
    n.map_or_else(|| "-".into(), |n| format!("{n:+.1}"))
}

fn micros(us: Option<u64>) -> String {
    match us {
        None => "-".into(),
        Some(us) if us < 1000 => format!("{us} µs"),
        Some(us) => format!("{:.1} ms", us as f64 / 1000.0),
    }
}
