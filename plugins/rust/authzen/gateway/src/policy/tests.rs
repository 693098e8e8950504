use arbiter_policy::{Effect, Verdict};
use authzen_scenarios::cases::{self, decision_file};
use authzen_scenarios::users::Users;
use serde_json::json;

use super::*;

/// The set's own data file.
const USERS_JSON: &str = include_str!("../../../../../sets/authzen-gateway/users.json");
/// The scenario's route cases: every user on every route.
const DECISIONS: &str =
    include_str!("../../../../../../tests/vectors/authzen/interop-gateway-decisions.json");

const MORTY: &str = "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs";
const JERRY: &str = "CiRmZDQ2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs";

fn ask(subject: &str, method: &str, route: &str) -> Verdict {
    let users = Users::parse(USERS_JSON.as_bytes()).expect("the set's users.json parses");
    let request = cases::request(&json!({
        "subject": {"type": "identity", "id": subject},
        "action": {"name": method},
        "resource": {"type": "route", "id": route},
    }))
    .expect("maps");
    decide(&users, &request)
}

fn codes(v: &Verdict) -> Vec<&str> {
    v.reasons.iter().map(|r| r.code.as_str()).collect()
}

#[test]
fn every_route_case_of_the_scenario_is_decided_as_expected() {
    let users = Users::parse(USERS_JSON.as_bytes()).expect("the set's users.json parses");
    let file = decision_file(DECISIONS).expect("the decision file reads");
    assert_eq!(file.cases.len(), 5 * 5, "five users on five routes");
    let mut failed = Vec::new();
    for case in &file.cases {
        let verdict = decide(&users, case.request.as_ref().expect("every case maps"));
        if case.expected != Some(verdict.effect == Effect::Allow) {
            failed.push(format!(
                "{}: expected {:?}, got {verdict:?}",
                case.name, case.expected
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn concrete_paths_match_their_route_template() {
    assert_eq!(
        ask(MORTY, "PUT", "/todos/7240d0db-8ff0").effect,
        Effect::Allow
    );
    assert_eq!(
        codes(&ask(JERRY, "DELETE", "/todos/7240d0db")),
        ["role-lacks-route"]
    );
    assert_eq!(codes(&ask(MORTY, "PUT", "/todos/")), ["unknown-route"]);
    assert_eq!(
        codes(&ask(MORTY, "GET", "/todos/1/extra")),
        ["unknown-route"]
    );
}

#[test]
fn unserved_methods_routes_and_subjects_are_denied_with_a_reason() {
    assert_eq!(
        codes(&ask(MORTY, "PATCH", "/todos/{todoId}")),
        ["method-not-served"]
    );
    assert_eq!(codes(&ask(MORTY, "GET", "/admin")), ["unknown-route"]);
    assert_eq!(
        codes(&ask("CiRub2JvZHk", "GET", "/todos")),
        ["unknown-subject"]
    );
}

#[test]
fn the_gateway_ships_the_todo_sets_users() {
    let todo = include_str!("../../../../../sets/authzen-todo/users.json");
    assert_eq!(todo, USERS_JSON);
}
