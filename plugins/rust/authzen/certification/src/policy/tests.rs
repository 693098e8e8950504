use arbiter_policy::{Effect, Verdict};
use authzen_scenarios::cases::{self, decision_file};
use serde_json::json;

use super::*;
use crate::fixture::Fixture;

/// The set's own data file.
const FIXTURE_JSON: &str = include_str!("../../../../../sets/authzen-certification/fixture.json");
/// Every decision case of the certification scenario.
const DECISIONS: &str =
    include_str!("../../../../../../tests/vectors/authzen/certification-decisions.json");

fn fixture() -> Fixture {
    Fixture::parse(FIXTURE_JSON.as_bytes()).expect("the set's fixture.json parses")
}

fn ask(v: serde_json::Value) -> Verdict {
    decide(&fixture(), &cases::request(&v).expect("maps"))
}

fn codes(v: &Verdict) -> Vec<&str> {
    v.reasons.iter().map(|r| r.code.as_str()).collect()
}

#[test]
fn every_decision_case_of_the_certification_scenario_is_decided_as_required() {
    let fixture = fixture();
    let file = decision_file(DECISIONS).expect("the decision file reads");
    assert_eq!((file.singles, file.batches), (9, 10));
    let mut failed = Vec::new();
    let mut checked = 0;
    for case in &file.cases {
        // An item the door cannot map (c-3-4-1's `{}`) is answered false in place.
        let allowed = case
            .request
            .as_ref()
            .is_ok_and(|r| decide(&fixture, r).effect == Effect::Allow);
        if let Some(expected) = case.expected {
            checked += 1;
            if expected != allowed {
                failed.push(format!("{}: expected {expected}, got {allowed}", case.name));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert_eq!(
        checked,
        9 + 6 * 2 + 2,
        "every decision the scenario validates"
    );
}

#[test]
fn the_eight_required_decisions_hold_with_or_without_context() {
    let alice = json!({"type": "user", "id": "alice"});
    let bob = json!({"type": "user", "id": "bob"});
    let admin = json!({"type": "user", "id": "bob", "properties": {"role": "admin"}});
    let record_1 = json!({"type": "record", "id": "record-1"});
    let archived =
        json!({"type": "record", "id": "record-2", "properties": {"status": "archived"}});
    let delete = |soft: bool| json!({"name": "delete", "properties": {"soft": soft}});
    let rules = [
        (&alice, json!({"name": "read"}), &record_1, true),
        (&alice, json!({"name": "write"}), &record_1, true),
        (&bob, json!({"name": "read"}), &record_1, true),
        (&bob, json!({"name": "write"}), &record_1, false),
        (&alice, json!({"name": "write"}), &archived, false),
        (&admin, json!({"name": "write"}), &archived, true),
        (&alice, delete(true), &record_1, true),
        (&alice, delete(false), &record_1, false),
    ];
    for (n, (subject, action, resource, expected)) in rules.into_iter().enumerate() {
        for context in [
            json!(null),
            json!({"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"}),
        ] {
            let v = ask(
                json!({"subject": subject, "action": action, "resource": resource, "context": context}),
            );
            assert_eq!(v.effect == Effect::Allow, expected, "rule {}: {v:?}", n + 1);
            assert!(!v.reasons.is_empty(), "rule {}: says why", n + 1);
        }
    }
}

#[test]
fn unknown_subjects_actions_and_resource_types_are_denied_with_a_reason() {
    let ask_with = |subject: serde_json::Value, action: &str, kind: &str| {
        codes(&ask(json!({"subject": subject, "action": {"name": action}, "resource": {"type": kind, "id": "record-1"}})))
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
    };
    let alice = json!({"type": "user", "id": "alice"});
    assert_eq!(
        ask_with(
            json!({"type": "user", "id": "nonexistent-user"}),
            "read",
            "record"
        ),
        ["unknown-subject"]
    );
    assert_eq!(
        ask_with(json!({"type": "agent", "id": "alice"}), "read", "record"),
        ["unknown-subject"]
    );
    assert_eq!(
        ask_with(alice.clone(), "archive", "record"),
        ["unknown-action"]
    );
    assert_eq!(
        ask_with(alice, "read", "spaceship"),
        ["unknown-resource-type"]
    );
}

#[test]
fn a_missing_soft_flag_is_a_hard_delete_and_an_unknown_status_changes_nothing() {
    let v = ask(
        json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "delete"},
        "resource": {"type": "record", "id": "record-1"}}),
    );
    assert_eq!(
        (v.effect, codes(&v)),
        (Effect::Deny, vec!["hard-delete-denied"])
    );
    let v = ask(
        json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "write"},
        "resource": {"type": "record", "id": "record-9"}}),
    );
    assert_eq!(
        (v.effect, codes(&v)),
        (Effect::Deny, vec!["record-status-unknown"])
    );
}
