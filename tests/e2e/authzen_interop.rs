//! The OpenID AuthZEN scenarios against their policy sets, over real HTTP/1.1 on
//! loopback: the interop runner's Todo decisions (43 of 43) against
//! `builtin:authzen-todo` and against its JavaScript twin (which must also give the same
//! reasons), every decision case of the certification scenario against
//! `builtin:authzen-certification`, and the API-gateway route cases against
//! `builtin:authzen-gateway`. The decision files and their sources are described in
//! `tests/vectors/authzen/README.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::authzen::{JSON, http};
use crate::support::*;

const EVALUATION: &str = "/access/v1/evaluation";
const EVALUATIONS: &str = "/access/v1/evaluations";

/// A server with AuthZEN over HTTP whose only set, the default, is `set`.
async fn server(set: &str) -> TestServer {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    config.policy_sets = vec![set.to_string()];
    config.http = Some(arbiter_http::settings::HttpSettings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        default_privilege: arbiter_core::Privilege::Read,
        client_auth: arbiter_tls::ClientAuth::None,
    });
    TestServer::start_config(config, data).await
}

/// A decision file of `tests/vectors/authzen/`.
fn decision_file(name: &str) -> Value {
    let path = arbiter_plugin_build::repo_root()
        .join("tests/vectors/authzen")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("a decision file is JSON")
}

/// One POST of `body` to `path`: the status and the answer (JSON when it is 200).
async fn post(addr: std::net::SocketAddr, path: &str, body: &Value) -> (u16, Value) {
    let (status, _, answer) = http(addr, "POST", path, &[JSON], &body.to_string()).await;
    let answer = serde_json::from_str(&answer).unwrap_or(Value::String(answer));
    (status, answer)
}

/// What the caller learns from one answer: the decision and the reasons, per item for
/// a batch (decision ids left out, so that two sets' answers compare).
fn seen(answer: &Value) -> Value {
    match answer.get("evaluations").and_then(Value::as_array) {
        Some(items) => items.iter().map(seen).collect(),
        None => json!({
            "decision": answer["decision"],
            "reasons": answer["context"]["reasons"],
            "error": answer["context"]["reason"],
        }),
    }
}

/// Whether `got` is a boolean and, unless the scenario leaves it open (`null`), the
/// expected one.
fn decided(got: &Value, expected: &Value) -> bool {
    got.is_boolean() && (expected.is_null() || got == expected)
}

/// The answers of the server's default set to a decision file.
struct Run {
    /// Cases (single evaluations and batches) answered as the file expects.
    passed: usize,
    /// Cases in the file.
    total: usize,
    /// What went wrong, one line per failed case.
    failures: Vec<String>,
    /// What the caller saw for each case, in file order.
    seen: Vec<Value>,
}

/// `evaluation[3]`, with the case's id when it has one: `evaluation[3] (c-2-2-4)`.
fn case_name(list: &str, n: usize, case: &Value) -> String {
    match case["id"].as_str() {
        Some(id) => format!("{list}[{n}] ({id})"),
        None => format!("{list}[{n}]"),
    }
}

/// Sends every case of `file`: single evaluations to `/access/v1/evaluation`, batches
/// to `/access/v1/evaluations`.
async fn run(addr: std::net::SocketAddr, file: &Value) -> Run {
    let mut out = Run {
        passed: 0,
        total: 0,
        failures: Vec::new(),
        seen: Vec::new(),
    };
    let list = |key: &str| file[key].as_array().cloned().unwrap_or_default();
    for (n, case) in list("evaluation").iter().enumerate() {
        let name = case_name("evaluation", n, case);
        let (status, answer) = post(addr, EVALUATION, &case["request"]).await;
        let ok = status == 200 && decided(&answer["decision"], &case["expected"]);
        out.record(name, ok, status, &case["expected"], &answer);
    }
    for (n, case) in list("evaluations").iter().enumerate() {
        let name = case_name("evaluations", n, case);
        let (status, answer) = post(addr, EVALUATIONS, &case["request"]).await;
        let expected = &case["expected"];
        let ok = status == 200
            && match (expected.as_array(), answer["evaluations"].as_array()) {
                // One decision per item, in order.
                (Some(expected), Some(items)) => {
                    items.len() == expected.len()
                        && items
                            .iter()
                            .zip(expected)
                            .all(|(item, e)| decided(&item["decision"], &e["decision"]))
                }
                // A batch without items is answered as one evaluation.
                (None, None) => decided(&answer["decision"], &expected["decision"]),
                _ => false,
            };
        out.record(name, ok, status, expected, &answer);
    }
    out
}

impl Run {
    fn record(&mut self, name: String, ok: bool, status: u16, expected: &Value, answer: &Value) {
        self.total += 1;
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(format!(
                "{name}: expected {expected}, got {status} {answer}"
            ));
        }
        self.seen.push(seen(answer));
    }

    fn assert_all_passed(&self, what: &str) {
        assert!(
            self.failures.is_empty(),
            "{what}: {} of {} passed\n{}",
            self.passed,
            self.total,
            self.failures.join("\n")
        );
    }
}

/// Runs the decision file `name` against a fresh server serving only `set`.
async fn run_against(set: &str, name: &str) -> Run {
    let server = server(set).await;
    let addr = server.running.http_addr.expect("the HTTP listener is on");
    run(addr, &decision_file(name)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_todo_interop_decisions_pass_43_of_43_on_the_builtin_set() {
    let run = run_against("builtin:authzen-todo", "interop-todo-decisions.json").await;
    run.assert_all_passed("builtin:authzen-todo");
    assert_eq!((run.passed, run.total), (43, 43));
}

/// The JavaScript twin as a set directory in `dir`: its manifest and `users.json`, and
/// its component built from `policy.js` by `plugins/js/build.sh`, as `scripts/build-plugins`
/// builds the JavaScript reference plugin (the pinned QuickJS toolchain is installed
/// into `.toolchains/` the first time).
fn javascript_twin(dir: &Path) -> PathBuf {
    let root = arbiter_plugin_build::repo_root();
    let source = root.join("plugins/sets/authzen-todo-js");
    let set = dir.join("authzen-todo-js");
    std::fs::create_dir_all(&set).expect("mkdir");
    for file in ["policy-set.toml", "users.json"] {
        std::fs::copy(source.join(file), set.join(file)).expect("copy the set's files");
    }
    let out = Command::new(root.join("plugins/js/build.sh"))
        .arg(set.join("authzen_todo_js.wasm"))
        .arg(source.join("policy.js"))
        .output()
        .expect("plugins/js/build.sh runs");
    assert!(
        out.status.success(),
        "plugins/js/build.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    set
}

#[tokio::test(flavor = "multi_thread")]
async fn the_javascript_twin_passes_43_of_43_with_the_rust_sets_reasons() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = javascript_twin(dir.path());
    let js = run_against(&set.display().to_string(), "interop-todo-decisions.json").await;
    js.assert_all_passed("authzen-todo-js");
    assert_eq!((js.passed, js.total), (43, 43));
    let rust = run_against("builtin:authzen-todo", "interop-todo-decisions.json").await;
    for (n, (r, j)) in rust.seen.iter().zip(&js.seen).enumerate() {
        assert_eq!(r, j, "case {n}: the Rust and JavaScript sets disagree");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_certification_decision_case_passes_on_the_builtin_set() {
    let server = server("builtin:authzen-certification").await;
    let addr = server.running.http_addr.expect("the HTTP listener is on");
    let file = decision_file("certification-decisions.json");
    let run = run(addr, &file).await;
    run.assert_all_passed("builtin:authzen-certification");
    assert_eq!((run.passed, run.total), (19, 19));
    // c-2-6: the same fixture request gives the same decision every time.
    for case in &file["evaluation"].as_array().expect("evaluations")[..2] {
        for _ in 0..5 {
            let (status, answer) = post(addr, EVALUATION, &case["request"]).await;
            assert_eq!(
                (status, &answer["decision"]),
                (200, &case["expected"]),
                "{}",
                case["id"]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_route_cases_pass_on_the_builtin_set() {
    let run = run_against("builtin:authzen-gateway", "interop-gateway-decisions.json").await;
    run.assert_all_passed("builtin:authzen-gateway");
    assert_eq!((run.passed, run.total), (25, 25));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_subject_is_denied_with_its_reason_over_http() {
    let server = server("builtin:authzen-todo").await;
    let addr = server.running.http_addr.expect("the HTTP listener is on");
    let (status, answer) = post(
        addr,
        EVALUATION,
        &json!({
            "subject": {"type": "user", "id": "CiRub2JvZHk"},
            "action": {"name": "can_read_todos"},
            "resource": {"type": "todo", "id": "todo-1"}
        }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"], false);
    assert_eq!(answer["context"]["reasons"][0]["code"], "unknown-subject");
    assert_eq!(answer["context"]["policy_set"]["name"], "authzen-todo");
}
