//! The replay's arithmetic, input parsing and time parsing.

use std::time::Duration;

use arbiter_audit::{Kind, Record, StoredRecord};
use arbiter_core::{
    Decision, FailureKind, Obligations, Outcome, PluginOutcome, PluginReport, Reason, SetIdentity,
};

use super::input::{self, Case, CaseRef};
use super::matrix::Matrix;
use super::over_time::{MAX_BUCKETS, OverTime, Timeline};
use super::report::{Changes, Delta, Tally};
use super::time::parse_time;

use Outcome::{Allow, Deny, RequireApproval as Hold};

/// A matrix from `counts[label][replayed]` in the order allow, deny, require-approval.
fn matrix(counts: [[u64; 3]; 3]) -> Matrix {
    let mut m = Matrix::default();
    for (label, row) in [Allow, Deny, Hold].into_iter().zip(counts) {
        for (replayed, n) in [Allow, Deny, Hold].into_iter().zip(row) {
            for _ in 0..n {
                m.add(label, replayed);
            }
        }
    }
    m
}

#[test]
fn false_positives_are_labelled_allow_stopped_and_false_negatives_are_stopped_allowed() {
    let m = matrix([[70, 20, 10], [5, 40, 3], [2, 1, 49]]);
    assert_eq!(m.total(), 200);
    assert_eq!(m.false_positives(), 30, "20 denied + 10 held of allow");
    assert_eq!(
        m.false_negatives(),
        7,
        "5 deny + 2 require-approval allowed"
    );
    assert_eq!(m.labelled(Allow), 100);
    assert_eq!(m.labelled_positive(), 100);
    assert_eq!(m.false_positive_rate(), Some(0.3));
    assert_eq!(m.false_negative_rate(), Some(0.07));
    // 10 + 3 + 49 = 62 holds in 200 actions.
    assert_eq!(m.decided(Hold), 62);
    assert_eq!(m.approval_burden(), Some(310.0));
}

#[test]
fn a_swap_between_deny_and_require_approval_is_neither_false_positive_nor_negative() {
    let m = matrix([[0, 0, 0], [0, 0, 4], [0, 6, 0]]);
    assert_eq!(m.false_positives(), 0);
    assert_eq!(m.false_negatives(), 0);
    assert_eq!(m.false_positive_rate(), None, "nothing labelled allow");
    assert_eq!(m.false_negative_rate(), Some(0.0));
}

#[test]
fn an_empty_replay_has_no_rates() {
    let m = Matrix::default();
    assert_eq!(m.false_positive_rate(), None);
    assert_eq!(m.false_negative_rate(), None);
    assert_eq!(m.approval_burden(), None);
}

fn case(id: u64, label: Outcome) -> Case {
    let request = serde_json::from_str(&format!(
        r#"{{"principal":{{"id":"p{id}","kind":"agent"}},"action":{{"name":"a{id}","privilege":"read"}}}}"#
    ))
    .expect("request");
    Case {
        at: CaseRef::Vector {
            id: id.into(),
            line: usize::try_from(id).expect("small") + 1,
        },
        request,
        approved: false,
        label,
        recorded_micros: None,
    }
}

fn decision(outcome: Outcome, micros: u64, failures: &[FailureKind]) -> Decision {
    Decision {
        id: "d".into(),
        outcome,
        reasons: vec![Reason::new("why", "caller", "admin")],
        obligations: Obligations::default(),
        set: identity(),
        plugins: failures
            .iter()
            .map(|&kind| PluginReport {
                name: "p".into(),
                outcome: PluginOutcome::failed(kind, "detail"),
                elapsed: Duration::ZERO,
            })
            .collect(),
        elapsed: Duration::from_micros(micros),
    }
}

fn identity() -> SetIdentity {
    SetIdentity {
        name: "s".into(),
        version: "1".into(),
        digest: "ab".repeat(32),
    }
}

#[test]
fn changes_count_every_difference_and_keep_the_first_examples() {
    let mut c = Changes::new(2);
    c.compare(&case(0, Deny), Deny, None, &decision(Allow, 1, &[]));
    c.compare(&case(1, Deny), Deny, None, &decision(Deny, 1, &[]));
    c.compare(&case(2, Hold), Hold, None, &decision(Allow, 1, &[]));
    c.compare(&case(3, Deny), Deny, None, &decision(Allow, 1, &[]));
    assert_eq!(c.total, 3);
    assert_eq!(c.by_change["deny->allow"], 2);
    assert_eq!(c.by_change["require-approval->allow"], 1);
    let ids: Vec<_> = c.examples.iter().map(|e| e.at.clone()).collect();
    assert_eq!(ids, [case(0, Deny).at, case(2, Hold).at]);
    assert_eq!(c.examples[0].principal, "p0");
    assert_eq!(c.examples[0].action, "a0");
    assert_eq!(c.examples[0].reasons, ["why"]);
}

#[test]
fn a_tally_reports_latency_percentiles_failures_and_deltas() {
    let mut baseline = Tally::new(5);
    let mut candidate = Tally::new(5);
    for i in 0..100 {
        let c = case(i, if i < 50 { Allow } else { Deny });
        baseline.add(&c, &decision(c.label, (i + 1) * 10, &[]));
        // The candidate allows everything and its plugin times out every tenth time.
        let failed: &[FailureKind] = if i % 10 == 0 {
            &[FailureKind::Timeout]
        } else {
            &[]
        };
        candidate.add(&c, &decision(Allow, (i + 1) * 20, failed));
    }
    let b = baseline.report("builtin:b", &identity());
    let c = candidate.report("builtin:c", &identity());
    assert_eq!((b.false_positives, b.false_negatives), (0, 0));
    assert_eq!((c.false_positives, c.false_negatives), (0, 50));
    assert_eq!(b.confusion_matrix["deny"]["deny"], 50);
    assert_eq!(c.confusion_matrix["deny"]["allow"], 50);
    assert_eq!(b.latency_us.p50, Some(500));
    assert_eq!(b.latency_us.p99, Some(990));
    assert_eq!(b.latency_us.max, Some(1000));
    assert_eq!(c.plugin_failures.total, 10);
    assert_eq!(c.plugin_failures.by_kind["timeout"], 10);
    assert_eq!(c.changed.total, 50);
    let d = Delta::between(&b, &c);
    assert_eq!(d.false_negatives, 50);
    assert_eq!(d.false_positives, 0);
    assert_eq!(d.false_negative_rate, Some(1.0));
    assert_eq!(d.latency_p99_us, Some(990));
}

#[test]
fn a_bad_labelled_line_names_the_file_and_line() {
    let good = r#"{"id":1,"request":{"principal":{"id":"p","kind":"agent"},"action":{"name":"a","privilege":"read"}},"expected":"deny"}"#;
    let cases = input::labelled(&format!("{good}\n\n{good}\n"), "v.jsonl").expect("parses");
    assert_eq!(cases.len(), 2);
    assert!(matches!(cases[1].at, CaseRef::Vector { line: 3, .. }));

    let e = input::labelled(&format!("{good}\n{{oops\n"), "v.jsonl").expect_err("bad json");
    let e = e.to_string();
    assert!(e.starts_with("v.jsonl:2: not a labelled vector"), "{e}");
    assert!(e.contains("hint:"), "{e}");

    let bad = good.replace("\"deny\"", "\"maybe\"");
    let e = input::labelled(&bad, "v.jsonl").expect_err("bad label");
    assert_eq!(
        e.to_string(),
        "v.jsonl:1: `expected` is `maybe`; use allow, deny or require-approval"
    );
}

fn stored(seq: u64, outcome: &str, body: serde_json::Value) -> StoredRecord {
    StoredRecord {
        seq,
        record: Record {
            outcome: Some(outcome.into()),
            decision_id: Some(format!("d{seq}")),
            body: serde_json::value::to_raw_value(&body).expect("json"),
            ..Record::new(Kind::Decision, 0)
        },
        prev_hash: [0; 32],
        hash: [0; 32],
    }
}

#[test]
fn audit_records_become_cases_unless_redacted_or_unreadable() {
    let request = serde_json::json!({
        "principal": {"id": "p", "kind": "agent"},
        "action": {"name": "a", "privilege": "read"}
    });
    let c = input::audit_case(stored(
        7,
        "require-approval",
        serde_json::json!({"request": request, "approved": true, "redacted": [], "plugins": []}),
    ))
    .expect("replayable");
    assert_eq!(c.label, Hold);
    assert!(c.approved);
    assert_eq!(c.recorded_micros, Some(0));
    assert_eq!(
        c.at,
        CaseRef::Record {
            seq: 7,
            decision_id: Some("d7".into())
        }
    );

    let redacted = stored(
        8,
        "deny",
        serde_json::json!({"request": request, "redacted": ["context.source_ip"]}),
    );
    assert_eq!(
        input::audit_case(redacted).err(),
        Some(input::Skip::Redacted)
    );

    let no_request = stored(9, "deny", serde_json::json!({"approved": false}));
    assert!(matches!(
        input::audit_case(no_request),
        Err(input::Skip::Unreadable(why)) if why.contains("no replayable request")
    ));
    let bad_outcome = stored(10, "approved", serde_json::json!({"request": request}));
    assert_eq!(
        input::audit_case(bad_outcome).err(),
        Some(input::Skip::Unreadable(
            "recorded outcome is `approved`".into()
        ))
    );
}

#[test]
fn times_are_rfc3339_or_unix_seconds() {
    let t = parse_time;
    assert_eq!(t("0"), Ok(0));
    assert_eq!(t("1748736000"), Ok(1_748_736_000_000_000));
    assert_eq!(t("2025-06-01T00:00:00Z"), Ok(1_748_736_000_000_000));
    assert_eq!(t("2025-06-01t00:00:00z"), Ok(1_748_736_000_000_000));
    assert_eq!(t("2025-06-01T02:00:00+02:00"), Ok(1_748_736_000_000_000));
    assert_eq!(t("2025-05-31T23:30:00-00:30"), Ok(1_748_736_000_000_000));
    assert_eq!(t("1970-01-01T00:00:00.5Z"), Ok(500_000));
    assert_eq!(t("1970-01-01T00:00:00.123456789Z"), Ok(123_456));
    assert_eq!(t("2024-02-29T12:00:00Z"), Ok(1_709_208_000_000_000));
    assert_eq!(t("2000-03-01T00:00:00Z"), Ok(951_868_800_000_000));
    assert_eq!(t("1969-12-31T23:59:59Z"), Ok(-1_000_000));
    for bad in [
        "",
        "yesterday",
        "2023-02-29T00:00:00Z",
        "2025-06-01",
        "2025-06-01T00:00:00",
        "2025-06-01T24:00:00Z",
        "2025-13-01T00:00:00Z",
        "2025-06-01T00:00:00.Z",
        "2025-06-01T00:00:00+2:00",
        "2025-06-01T00:00:00+é:00",
        "2025-06-01T00:00:00.é",
        "2025-06-01T00:00:00Zjunk",
        "99999999999999999999",
    ] {
        let e = t(bad).expect_err(bad);
        assert!(e.contains("is not a time; use RFC 3339"), "{e}");
    }
}

/// `(start, [allow, deny, require-approval])` of each bucket.
fn buckets(o: &OverTime) -> Vec<(i64, [u64; 3])> {
    o.buckets
        .iter()
        .map(|b| {
            let n = |k: &str| b.decided.get(k).copied().unwrap_or(0);
            (b.start, [n("allow"), n("deny"), n("require-approval")])
        })
        .collect()
}

#[test]
fn labelled_input_is_bucketed_by_position_in_round_widths() {
    let mut t = Timeline::default();
    for i in 0..2000u64 {
        t.add(i, None, if i % 4 == 0 { Deny } else { Allow });
    }
    let o = t.finish();
    assert_eq!(o.axis, "position");
    // 2,000 actions: 50 a bucket is the finest round width within 48 buckets.
    assert_eq!(o.width, 50);
    assert_eq!(o.buckets.len(), 40);
    assert_eq!(buckets(&o)[0], (0, [37, 13, 0]));
    assert_eq!((o.buckets[39].start, o.buckets[39].end), (1950, 2000));
    let total: u64 = o.buckets.iter().flat_map(|b| b.decided.values()).sum();
    assert_eq!(total, 2000);
}

#[test]
fn audit_input_is_bucketed_by_recorded_time_with_empty_buckets_kept() {
    const MINUTE: i64 = 60_000_000;
    let hour0 = 1_748_736_000_000_000; // 2025-06-01T00:00:00Z
    let mut t = Timeline::default();
    // Ten decisions in the first minute, one 30 minutes later, two after 2 hours.
    for i in 0..10 {
        t.add(
            i,
            Some(hour0 + i64::try_from(i).expect("small") * 1_000_000),
            Allow,
        );
    }
    t.add(10, Some(hour0 + 30 * MINUTE + 5), Hold);
    t.add(11, Some(hour0 + 120 * MINUTE), Deny);
    t.add(12, Some(hour0 + 120 * MINUTE + 59_000_000), Deny);
    let o = t.finish();
    assert_eq!(o.axis, "time");
    // 121 minutes do not fit 48 one-minute buckets; five-minute ones do (25).
    assert_eq!(o.width, 5 * MINUTE);
    let b = buckets(&o);
    assert_eq!(b.len(), 25);
    assert_eq!(b[0], (hour0, [10, 0, 0]));
    assert_eq!(b[1], (hour0 + 5 * MINUTE, [0, 0, 0]), "gaps are kept");
    assert_eq!(b[6], (hour0 + 30 * MINUTE, [0, 0, 1]));
    assert_eq!(b[24], (hour0 + 120 * MINUTE, [0, 2, 0]));
}

#[test]
fn a_long_log_coarsens_while_counting_and_ends_within_the_bucket_limit() {
    let mut t = Timeline::default();
    let day = 86_400_000_000i64;
    // One decision an hour for 400 days: far more seconds than are kept finely.
    for h in 0..400 * 24 {
        t.add(h, Some(i64::try_from(h).expect("small") * day / 24), Allow);
    }
    let o = t.finish();
    assert!(o.buckets.len() as u64 <= MAX_BUCKETS, "{}", o.buckets.len());
    assert_eq!(o.width % (86_400 * 1_000_000), 0, "whole days: {}", o.width);
    let total: u64 = o.buckets.iter().flat_map(|b| b.decided.values()).sum();
    assert_eq!(total, 400 * 24);
}

#[test]
fn an_empty_or_single_decision_timeline_has_zero_or_one_bucket() {
    let o = Timeline::default().finish();
    assert_eq!((o.axis, o.buckets.len()), ("position", 0));
    let mut t = Timeline::default();
    t.add(0, Some(-1), Deny);
    let o = t.finish();
    assert_eq!(o.width, 1_000_000);
    assert_eq!(buckets(&o), [(-1_000_000, [0, 1, 0])]);
}

#[test]
fn a_tally_reports_its_decisions_over_time() {
    let mut tally = Tally::new(0);
    for i in 0..3 {
        tally.add(&case(i, Allow), &decision(Deny, 1, &[]));
    }
    let r = tally.report("builtin:s", &identity());
    assert_eq!(r.over_time.axis, "position");
    assert_eq!(
        buckets(&r.over_time),
        [(0, [0, 1, 0]), (1, [0, 1, 0]), (2, [0, 1, 0])]
    );
}

#[test]
fn saved_reports_are_named_by_utc_time_and_random_hex() {
    assert_eq!(
        super::save::file_name(1_748_779_205_123_456, "a1b2c3"),
        "replay-20250601T120005Z-a1b2c3.json"
    );
}
