use arbiter_policy::{Effect, Request, Verdict};
use authzen_scenarios::cases::{self, decision_file};
use authzen_scenarios::users::Users;
use serde_json::json;

use super::*;

/// The set's own data file.
const USERS_JSON: &str = include_str!("../../../../../sets/authzen-todo/users.json");
/// The interop runner's decision file (openid/authzen), copied unchanged.
const DECISIONS: &str =
    include_str!("../../../../../../tests/vectors/authzen/interop-todo-decisions.json");

const RICK: &str = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs";
const MORTY: &str = "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs";
const BETH: &str = "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs";

fn users() -> Users {
    Users::parse(USERS_JSON.as_bytes()).expect("the set's users.json parses")
}

fn ask(v: serde_json::Value) -> Verdict {
    decide(&users(), &cases::request(&v).expect("maps"))
}

fn codes(v: &Verdict) -> Vec<&str> {
    v.reasons.iter().map(|r| r.code.as_str()).collect()
}

fn todo_request(subject: &str, action: &str, owner: &str) -> serde_json::Value {
    json!({
        "subject": {"type": "user", "id": subject},
        "action": {"name": action},
        "resource": {"type": "todo", "id": "7240d0db", "properties": {"ownerID": owner}}
    })
}

#[test]
fn every_case_of_the_interop_decision_file_is_decided_as_expected() {
    let users = users();
    let file = decision_file(DECISIONS).expect("the decision file reads");
    assert_eq!((file.singles, file.batches), (40, 3));
    assert_eq!(file.cases.len(), 40 + 3 * 2);
    let mut failed = Vec::new();
    for case in &file.cases {
        let request: &Request = case.request.as_ref().expect("every case maps");
        let verdict = decide(&users, request);
        let allowed = verdict.effect == Effect::Allow;
        if case.expected != Some(allowed) {
            failed.push(format!(
                "{}: expected {:?}, got {verdict:?}",
                case.name, case.expected
            ));
        }
        assert!(
            !verdict.reasons.is_empty(),
            "{}: every verdict says why",
            case.name
        );
    }
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn an_unknown_subject_is_denied_with_a_reason() {
    let v = ask(todo_request(
        "CiRub2JvZHk",
        "can_read_todos",
        "rick@the-citadel.com",
    ));
    assert_eq!(
        (v.effect, codes(&v)),
        (Effect::Deny, vec!["unknown-subject"])
    );
}

#[test]
fn a_user_may_also_be_named_by_their_id() {
    let v = ask(todo_request(
        "morty@the-citadel.com",
        "can_delete_todo",
        "morty@the-citadel.com",
    ));
    assert_eq!(
        (v.effect, codes(&v)),
        (Effect::Allow, vec!["owner-permits"])
    );
}

#[test]
fn roles_sent_by_the_caller_do_not_count() {
    let mut r = todo_request(BETH, "can_delete_todo", "rick@the-citadel.com");
    r["subject"]["properties"] = json!({"roles": ["admin"]});
    let v = ask(r);
    assert_eq!(
        (v.effect, codes(&v)),
        (Effect::Deny, vec!["role-lacks-permission"])
    );
}

#[test]
fn editors_change_only_their_own_todos_and_say_so() {
    let v = ask(todo_request(
        MORTY,
        "can_update_todo",
        "rick@the-citadel.com",
    ));
    assert_eq!(
        (v.effect, codes(&v)),
        (Effect::Deny, vec!["not-todo-owner"])
    );
    let mut no_owner = todo_request(MORTY, "can_update_todo", "");
    no_owner["resource"]["properties"] = json!({});
    assert_eq!(
        ask(no_owner).effect,
        Effect::Deny,
        "a todo without owner is nobody's"
    );
    let v = ask(todo_request(
        RICK,
        "can_update_todo",
        "morty@the-citadel.com",
    ));
    assert_eq!((v.effect, codes(&v)), (Effect::Allow, vec!["role-permits"]));
}

#[test]
fn unknown_permissions_and_wrong_resource_types_are_denied() {
    let v = ask(todo_request(
        RICK,
        "can_rule_the_multiverse",
        "rick@the-citadel.com",
    ));
    assert_eq!(codes(&v), ["unknown-action"]);
    let mut r = todo_request(RICK, "can_read_user", "rick@the-citadel.com");
    r["resource"]["type"] = json!("todo");
    assert_eq!(codes(&ask(r)), ["wrong-resource-type"]);
}

#[test]
fn roles_include_only_roles_defined_before_them() {
    // What keeps `granted`'s recursion finite.
    for (n, role) in ROLES.iter().enumerate() {
        for included in role.includes {
            assert!(
                ROLES[..n].iter().any(|r| r.name == *included),
                "`{}` includes `{included}`, which is not defined before it",
                role.name
            );
        }
    }
}

#[test]
fn the_javascript_twin_ships_the_same_users() {
    let js = include_str!("../../../../../sets/authzen-todo-js/users.json");
    assert_eq!(js, USERS_JSON);
}
