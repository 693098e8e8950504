//! `arbiter replay`: the real binary over the public vectors and over an audit log
//! written here, its `--json` output checked against numbers computed by hand.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use arbiter_audit::{AuditConfig, AuditLog, Durability, Kind, Record};
use arbiter_keys::SecretKey;
use serde_json::{Value, json};

use crate::support::vectors_path;

const BIN: &str = env!("CARGO_BIN_EXE_arbiter");

const OUTCOMES: [&str; 3] = ["allow", "deny", "require-approval"];

fn replay(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("replay")
        .args(args)
        .output()
        .expect("runs")
}

/// Runs `arbiter replay ARGS --json` and parses its output; it must succeed.
fn replay_json(args: &[&str]) -> Value {
    let out = replay(&[args, &["--json"]].concat());
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

fn vectors_arg() -> String {
    vectors_path().display().to_string()
}

/// The public vectors as JSON values.
fn vectors() -> Vec<Value> {
    std::fs::read_to_string(vectors_path())
        .expect("vectors")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

/// What `reference-weakened` (F1 and G4 off) decides for a vector, from the rules the
/// vector says matched: forbid' = forbids minus F1, gates' = gates minus G4.
fn weakened_by_hand(v: &Value) -> &'static str {
    let rules: Vec<&str> = v["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r.as_str().expect("rule id"))
        .collect();
    let any = |group: char, off: &str| rules.iter().any(|r| r.starts_with(group) && *r != off);
    let approved = v["approved"].as_bool().expect("approved");
    if any('F', "F1") || !any('P', "") {
        "deny"
    } else if any('G', "G4") && !approved {
        "require-approval"
    } else {
        "allow"
    }
}

fn expected(v: &Value) -> &str {
    v["expected"].as_str().expect("expected")
}

/// A confusion matrix `[label][decision]` with every cell present.
fn matrix(pairs: impl IntoIterator<Item = (String, String)>) -> Value {
    let mut m: BTreeMap<&str, BTreeMap<&str, u64>> = OUTCOMES
        .iter()
        .map(|&l| (l, OUTCOMES.iter().map(|&d| (d, 0)).collect()))
        .collect();
    for (label, decided) in pairs {
        let row = m.get_mut(label.as_str()).expect("label");
        *row.get_mut(decided.as_str()).expect("decision") += 1;
    }
    serde_json::to_value(m).expect("matrix")
}

#[test]
fn the_reference_set_has_no_false_positives_or_negatives_on_the_public_vectors() {
    let out = replay_json(&["--labels", &vectors_arg()]);
    let report = &out["report"];
    assert_eq!(out["input"]["actions"], 2000);
    assert_eq!(report["policy_set"]["name"], "reference");
    assert_eq!(report["false_positives"], 0);
    assert_eq!(report["false_negatives"], 0);
    assert_eq!(report["false_positive_rate"], 0.0);
    assert_eq!(report["false_negative_rate"], 0.0);
    assert_eq!(report["changed"]["total"], 0);
    assert_eq!(report["plugin_failures"]["total"], 0);
    // Diagonal, and the diagonal is the label counts of reference-policy.md.
    let diagonal = json!({
        "allow": {"allow": 856, "deny": 0, "require-approval": 0},
        "deny": {"allow": 0, "deny": 1057, "require-approval": 0},
        "require-approval": {"allow": 0, "deny": 0, "require-approval": 87},
    });
    assert_eq!(report["confusion_matrix"], diagonal);
    assert_eq!(report["approval_burden_per_1000"], 43.5, "87 in 2,000");
    let latency = &report["latency_us"];
    assert!(latency["p50"].as_u64().expect("p50") > 0, "{latency}");
    assert!(
        latency["p50"].as_u64() <= latency["p99"].as_u64(),
        "{latency}"
    );
    assert!(
        latency["p99"].as_u64() <= latency["max"].as_u64(),
        "{latency}"
    );
}

#[test]
fn the_weakened_set_matches_the_confusion_matrix_computed_by_hand() {
    let vectors = vectors();
    let by_hand = matrix(
        vectors
            .iter()
            .map(|v| (expected(v).to_owned(), weakened_by_hand(v).to_owned())),
    );
    let out = replay_json(&[
        "--policy-set",
        "builtin:reference-weakened",
        "--labels",
        &vectors_arg(),
    ]);
    let report = &out["report"];
    assert_eq!(report["policy_set"]["name"], "reference-weakened");
    assert_eq!(report["confusion_matrix"], by_hand);
    let cell = |l: &str, d: &str| by_hand[l][d].as_u64().expect("count");
    let false_negatives = cell("deny", "allow") + cell("require-approval", "allow");
    assert!(false_negatives > 0, "the weakening must show: {by_hand}");
    assert_eq!(report["false_negatives"], false_negatives);
    assert_eq!(report["false_positives"], 0);
    assert_eq!(report["labelled_not_allow"], 1057 + 87);
}

#[test]
fn baseline_and_candidate_differ_exactly_where_the_weakened_rules_matter() {
    let vectors = vectors();
    let mut by_hand: BTreeMap<String, u64> = BTreeMap::new();
    for v in &vectors {
        let (from, to) = (expected(v), weakened_by_hand(v));
        if from != to {
            *by_hand.entry(format!("{from}->{to}")).or_default() += 1;
        }
    }
    let out = replay_json(&[
        "--baseline",
        "builtin:reference",
        "--candidate",
        "builtin:reference-weakened",
        "--labels",
        &vectors_arg(),
        "--examples",
        "3",
    ]);
    let differences = &out["differences"];
    assert_eq!(
        differences["by_change"],
        serde_json::to_value(&by_hand).expect("counts")
    );
    assert_eq!(differences["total"], by_hand.values().sum::<u64>());
    let examples = differences["examples"].as_array().expect("examples");
    assert_eq!(examples.len(), 3, "--examples 3");
    for e in examples {
        let line = e["line"].as_u64().expect("line");
        let v = &vectors[usize::try_from(line).expect("line") - 1];
        assert_eq!(e["id"], v["id"]);
        assert_eq!(e["from"], expected(v));
        assert_eq!(e["to"], weakened_by_hand(v));
        assert_eq!(e["principal"], v["request"]["principal"]["id"]);
        assert!(
            e["from_reasons"].as_array().is_some_and(|r| !r.is_empty()),
            "{e}"
        );
    }
    assert_eq!(out["baseline"]["false_negatives"], 0);
    let fn_by_hand = by_hand.get("deny->allow").copied().unwrap_or(0)
        + by_hand.get("require-approval->allow").copied().unwrap_or(0);
    assert_eq!(out["candidate"]["false_negatives"], fn_by_hand);
    assert_eq!(out["delta"]["false_negatives"], fn_by_hand);
    let held = |r: &Value| r["decided"]["require-approval"].as_f64().expect("held");
    let burden = (held(&out["candidate"]) - held(&out["baseline"])) / 2.0;
    let delta = out["delta"]["approval_burden_per_1000"]
        .as_f64()
        .expect("delta");
    assert!((delta - burden).abs() < 1e-9, "{delta} vs {burden}");
}

/// Appends a decision record for vector `v` with the recorded `outcome`.
async fn append(
    log: &AuditLog,
    at_micros: i64,
    set: &str,
    v: &Value,
    outcome: &str,
    redacted: &[&str],
) -> u64 {
    let record = Record {
        principal: v["request"]["principal"]["id"].as_str().map(str::to_owned),
        outcome: Some(outcome.to_owned()),
        policy_set: Some(set.to_owned()),
        decision_id: Some(format!("decision-{}", v["id"])),
        body: serde_json::value::to_raw_value(&json!({
            "request": v["request"],
            "approved": v["approved"],
            "redacted": redacted,
            "reasons": [],
        }))
        .expect("json"),
        ..Record::new(Kind::Decision, at_micros)
    };
    log.append(record, Durability::Durable)
        .await
        .expect("append")
        .expect("durable appends return their seq")
}

/// 2025-06-15T15:06:40Z.
const RECENT: i64 = 1_750_000_000_000_000;

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_log_replay_reports_changed_and_skipped_decisions() {
    let vectors = vectors();
    let find = |pred: &dyn Fn(&Value) -> bool| vectors.iter().find(|v| pred(v)).expect("a vector");
    let allowed = find(&|v| expected(v) == "allow" && v["approved"] == false);
    let denied = find(&|v| expected(v) == "deny" && v["approved"] == false);
    // Admin in prod: allowed only because the approval was verified (G3).
    let approved = find(&|v| {
        expected(v) == "allow"
            && v["approved"] == true
            && v["request"]["action"]["privilege"] == "admin"
            && v["request"]["resource"]["attributes"]["env"] == "prod"
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let key = SecretKey::generate().expect("key");
    let log =
        AuditLog::open(AuditConfig::new(dir.path().join("audit.db"), key), None).expect("open");
    append(&log, RECENT, "reference", allowed, "allow", &[]).await;
    // Recorded as allowed, though the reference set denies it: a changed decision.
    let wrong = append(&log, RECENT + 1, "reference", denied, "allow", &[]).await;
    append(
        &log,
        RECENT + 2,
        "reference",
        denied,
        "deny",
        &["context.source_ip"],
    )
    .await;
    append(&log, RECENT + 3, "reference", approved, "allow", &[]).await;
    // Left out by the filters: another set, an older record, another kind.
    append(&log, RECENT + 4, "other", denied, "allow", &[]).await;
    append(
        &log,
        1_600_000_000_000_000,
        "reference",
        denied,
        "allow",
        &[],
    )
    .await;
    let mut approval = Record::new(Kind::Approval, RECENT + 5);
    approval.outcome = Some("approved".into());
    log.append(approval, Durability::Durable)
        .await
        .expect("append");
    log.close().await.expect("close");

    let data_dir = dir.path().display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        replay_json(&[
            "--audit",
            &data_dir,
            "--set",
            "reference",
            "--since",
            "2025-01-01T00:00:00Z",
        ])
    })
    .await
    .expect("joins");
    assert_eq!(out["input"]["kind"], "audit");
    assert_eq!(out["input"]["actions"], 3, "{}", out["input"]);
    assert_eq!(out["input"]["skipped"]["redacted"], 1);
    assert_eq!(out["input"]["skipped"]["unreadable"], 0);
    let report = &out["report"];
    assert_eq!(report["changed"]["total"], 1);
    assert_eq!(report["changed"]["by_change"], json!({"allow->deny": 1}));
    let example = &report["changed"]["examples"][0];
    let reasons = example["reasons"].clone();
    assert!(
        reasons.as_array().is_some_and(|r| !r.is_empty()),
        "{example}"
    );
    let decision_id = format!("decision-{}", denied["id"]);
    let principal = denied["request"]["principal"]["id"].clone();
    let action = denied["request"]["action"]["name"].clone();
    assert_eq!(
        report["changed"]["examples"],
        json!([{
            "seq": wrong,
            "decision_id": decision_id,
            "principal": principal,
            "action": action,
            "from": "allow",
            "to": "deny",
            "reasons": reasons,
        }])
    );
    // Against what was enforced, the stricter replay is one false positive.
    assert_eq!(report["false_positives"], 1);
    assert_eq!(report["false_negatives"], 0);
    assert_eq!(report["labelled_allow"], 3);
}

#[test]
fn a_bad_labelled_line_is_an_error_naming_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("labels.jsonl");
    let first = std::fs::read_to_string(vectors_path())
        .expect("vectors")
        .lines()
        .next()
        .expect("line")
        .to_owned();
    std::fs::write(&file, format!("{first}\n{{\"id\": 2, \"request\": \n")).expect("write");
    let out = replay(&["--labels", &file.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:2: not a labelled vector", file.display())),
        "{err}"
    );
    assert!(err.contains("hint: each line is"), "{err}");
    assert!(out.stdout.is_empty(), "no report for bad input");
}

#[test]
fn a_missing_audit_log_and_conflicting_inputs_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = replay(&["--audit", &dir.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no audit log at"), "{err}");

    let out = replay(&["--labels", "x.jsonl", "--audit", "y"]);
    assert_eq!(out.status.code(), Some(2));
    let out = replay(&["--baseline", "builtin:reference", "--labels", "x.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "--baseline needs --candidate");
}

#[test]
fn the_pipeline_counts_one_approval_for_identical_held_requests_and_their_votes() {
    let vectors = vectors();
    let held: Vec<&Value> = vectors
        .iter()
        .filter(|v| v["expected"] == "require-approval" && v["approved"] == false)
        .take(2)
        .collect();
    let allowed = vectors
        .iter()
        .find(|v| v["expected"] == "allow" && v["approved"] == false)
        .expect("an allow vector");
    assert_ne!(
        held[0]["request"], held[1]["request"],
        "two different requests"
    );
    // The first held request three times, the second once, and an allow.
    let lines: Vec<String> = [held[0], held[0], held[0], held[1], allowed]
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut v = (*v).clone();
            v["id"] = format!("case-{i}").into();
            v.to_string()
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("held.jsonl");
    std::fs::write(&file, lines.join("\n")).expect("write");
    let out = replay_json(&["--labels", &file.display().to_string()]);
    let report = &out["report"];
    assert_eq!(report["decided"]["require-approval"], 4, "{report}");
    let human = &report["human_approvals"];
    assert_eq!(
        human["approvals_opened"], 2,
        "three identical requests share one: {human}"
    );
    assert_eq!(human["approvals_per_1000"], 400.0, "{human}");
    // Each approval needs its `approvers_required` (at least one) votes.
    let votes = human["votes_needed"].as_u64().expect("votes");
    assert!(votes >= 2, "{human}");
    assert_eq!(human["refused"], 0, "{human}");
}
