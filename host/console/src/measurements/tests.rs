//! Report ids, reading report files, and the report page from a saved document.

use super::*;

#[test]
fn report_ids_are_file_stems_in_the_directory_only() {
    for ok in ["replay-20250601T120000Z-a1b2c3", "weekly.v2", "a_b-C"] {
        assert!(is_report_id(ok), "{ok}");
    }
    for bad in [
        "",
        "..",
        "../etc",
        "..%2Fetc",
        "a/b",
        "a\\b",
        ".hidden",
        "a..b",
        "a b",
        "é",
        &"x".repeat(MAX_ID_LEN + 1),
    ] {
        assert!(!is_report_id(bad), "{bad}");
    }
}

const SAVED: &str = r#"{
  "generated_micros": 1748779200000000,
  "inputs": {"audit": "/data"},
  "input": {"kind": "audit", "path": "/data/audit.db", "labels": "recorded", "actions": 3,
            "skipped": {"redacted": 1, "unreadable": 0}},
  "definitions": {},
  "baseline": {"policy_set": {"source": "builtin:reference", "name": "reference", "version": "1.0.0", "digest": "abcdef0123456789"},
               "actions": 3, "confusion_matrix": {"allow": {"allow": 2, "deny": 0, "require-approval": 0},
               "deny": {"allow": 0, "deny": 1, "require-approval": 0}},
               "false_positives": 0, "false_negatives": 0, "false_positive_rate": 0.0,
               "false_negative_rate": 0.0, "approval_burden_per_1000": 0.0,
               "human_approvals": {"approvals_per_1000": 0.0, "votes_per_1000": 0.0},
               "latency_us": {"p50": 100, "p90": 120, "p99": 130, "max": 140},
               "plugin_failures": {"total": 0, "by_kind": {}},
               "over_time": {"axis": "time", "width": 60000000, "buckets": [
                 {"start": 1748779200000000, "end": 1748779260000000, "decided": {"allow": 2, "deny": 1}}]}},
  "candidate": {"policy_set": {"name": "reference-weakened", "version": "1.0.0"},
               "actions": 3, "confusion_matrix": {"deny": {"allow": 1}, "allow": {"allow": 2}},
               "false_negatives": 1, "false_negative_rate": 1.0,
               "latency_us": {"p50": 90, "p90": 100, "p99": 110, "max": 150}},
  "differences": {"total": 1, "by_change": {"deny->allow": 1},
                  "examples": [{"seq": 3, "decision_id": "d3", "principal": "<bot>", "action": "delete",
                                "from": "deny", "to": "allow", "from_reasons": ["F1"], "reasons": []}]}
}"#;

fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("writes");
    p
}

#[test]
fn a_saved_report_reads_and_others_say_why_not() {
    let dir = tempfile_dir();
    let doc = read(&file(&dir, "good.json", SAVED)).expect("reads");
    assert_eq!(doc.sets().len(), 2);
    assert_eq!(doc.sets()[1].set_name(), "reference-weakened@1.0.0");
    assert_eq!(doc.sets()[1].matrix()[1], [1, 0, 0]);
    assert!(matches!(
        read(&dir.join("none.json")),
        Err(Problem::Missing)
    ));
    let bad = read(&file(&dir, "bad.json", "{not json")).expect_err("malformed");
    assert!(matches!(bad, Problem::Malformed(_)));
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(matches!(
        read(&file(&dir, "other.json", r#"{"a": 1}"#)),
        Err(Problem::NotAReport)
    ));
    let big = " ".repeat(usize::try_from(MAX_REPORT_BYTES).expect("fits") + 1);
    assert!(matches!(
        read(&file(&dir, "big.json", &big)),
        Err(Problem::TooLarge)
    ));
    let listed = list(&dir).expect("lists");
    assert_eq!(listed.len(), 4, "the missing one is not listed");
    assert_eq!(listed[0].stem, "good", "readable reports with a time first");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> PathBuf {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("random");
    let dir = std::env::temp_dir().join(format!("arbiter-console-{}", hex::encode(random)));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

#[test]
fn the_report_page_has_the_four_charts_the_numbers_and_the_changes() {
    let doc: Doc = serde_json::from_str(SAVED).expect("parses");
    let caller = arbiter_service::auth::Caller {
        id: "admin".into(),
        kind: arbiter_core::PrincipalKind::Human,
        roles: vec![arbiter_service::auth::Role::Admin],
        authenticated: true,
        sets: arbiter_service::auth::SetAccess::Any,
    };
    let signed = Signed {
        caller: &caller,
        csrf: "c",
    };
    let html = page::report("r1", &doc, &signed).into_string();
    for title in [
        "Confusion matrix, baseline: reference@1.0.0</title>",
        "Confusion matrix, candidate: reference-weakened@1.0.0</title>",
        "Decisions by outcome over time, baseline: reference@1.0.0</title>",
        "Approval burden</title>",
        "Decision latency percentiles</title>",
    ] {
        assert!(html.contains(title), "{title}");
    }
    assert!(
        html.contains("recorded time (UTC): 1 min a bucket"),
        "{html}"
    );
    assert!(html.contains("06-01 12:00"), "a bucket's time label");
    assert!(html.contains("<td>+1</td>"), "the false negatives' delta");
    assert!(html.contains("+100 pts"), "the false-negative rate's delta");
    assert!(html.contains("deny → allow"), "{html}");
    assert!(html.contains("record 3 (d3)"), "{html}");
    assert!(html.contains("&lt;bot&gt;"), "escaped");
    assert!(!html.contains("style="), "no inline style");
}
