//! `arbiter test` on readable test-case files (`*.toml`), through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_arbiter");

/// The Rust reference example's case file.
fn example() -> PathBuf {
    arbiter_plugin_build::repo_root().join("plugins/rust/reference/tests/reference.cases.toml")
}

/// The defaults of a temporary case file: a read that the reference policy allows
/// with reasons `read-own-team` and `read-staging`.
const DEFAULTS: &str = r#"[defaults.request]
principal = { id = "spiffe://acme.org/agent/bot", kind = "agent", attributes = { team = "payments" } }
action = { name = "db:Query", privilege = "read" }
resource = { id = "r1", kind = "database", attributes = { env = "staging", owner_team = "payments" } }
context = { hour = 10, source_ip = "10.0.0.1", risk = 10, mfa = false }
"#;

/// Runs `arbiter test ARGS FILE` against the Rust reference plugin on its own.
fn run_plugin(file: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["test", "--plugin"])
        .arg(arbiter_plugin_build::plugin("reference"))
        .args(extra)
        .arg(file)
        .output()
        .expect("runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(dir: &Path, name: &str, cases: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{DEFAULTS}{cases}")).expect("write");
    path
}

#[test]
fn the_rust_example_passes_against_the_plugin_and_the_sets() {
    let out = run_plugin(&example(), &["-v"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let cases = text.lines().filter(|l| l.starts_with("ok   ")).count();
    assert!(cases >= 8, "{text}");
    assert_eq!(
        text.lines().last(),
        Some(format!("{cases} passed, 0 failed").as_str()),
        "{text}"
    );
    assert!(
        text.contains("ok   an approved risky prod write is allowed"),
        "{text}"
    );
    // The same cases hold for the whole set, in one plugin or split in four.
    for set in ["builtin:reference", "builtin:reference-split"] {
        let out = Command::new(BIN)
            .args(["test", "--policy-set", set])
            .arg(example())
            .output()
            .expect("runs");
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{set}: {text}");
        assert_eq!(
            text.lines().last(),
            Some(format!("{cases} passed, 0 failed").as_str()),
            "{set}"
        );
    }
}

#[test]
fn a_wrong_decision_fails_with_the_reasons_each_plugin_gave() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "wrong.cases.toml",
        r#"
[[case]]
name = "staging reads are allowed"
expect = "allow"

[[case]]
name = "a read wrongly expected to be denied"
expect = "deny"
"#,
    );
    let out = run_plugin(&file, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let fail = "FAIL a read wrongly expected to be denied: expected deny, got allow";
    assert!(text.contains(fail), "{text}");
    assert!(
        text.contains(&format!("case 2 at {}:11", file.display())),
        "{text}"
    );
    assert!(
        text.contains("reason read-own-team: reference rule P1 matched"),
        "{text}"
    );
    assert!(
        text.contains("plugin reference: allow [read-own-team, read-staging]"),
        "{text}"
    );
    assert!(!text.contains("FAIL staging reads"), "{text}");
    assert_eq!(text.lines().last(), Some("1 passed, 1 failed"));
}

#[test]
fn a_wrong_reason_code_fails_even_when_the_decision_matches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "reasons.cases.toml",
        r#"
[[case]]
name = "reasons in any order"
expect = "allow"
reasons = ["read-staging", "read-own-team"]

[[case]]
name = "one reason too few"
expect = "allow"
reasons = ["read-own-team"]

[[case]]
name = "a prod write at night"
request = { action = { privilege = "write" }, resource = { attributes = { env = "prod" } }, context = { hour = 2 } }
expect = "deny"
reasons = ["risk-too-high"]
"#,
    );
    let out = run_plugin(&file, &["--verbose"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("ok   reasons in any order"), "{text}");
    assert!(
        text.contains(
            "FAIL one reason too few: expected allow [read-own-team], got allow [read-own-team, read-staging]"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "FAIL a prod write at night: expected deny [risk-too-high], got deny [prod-write-outside-hours]"
        ),
        "{text}"
    );
    assert!(
        text.contains("plugin reference: deny [prod-write-outside-hours]"),
        "{text}"
    );
    assert_eq!(text.lines().last(), Some("1 passed, 2 failed"));
}

#[test]
fn a_syntax_error_names_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "broken.cases.toml",
        "\n[[case]]\nname = \"unterminated\nexpect = \"allow\"\n",
    );
    let out = run_plugin(&file, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with(&format!("{}:8: ", file.display())),
        "{text}"
    );
    assert!(text.contains("\n  hint: "), "{text}");
    assert_eq!(text.lines().last(), Some("0 passed, 1 failed"));
}

#[test]
fn an_invalid_request_fails_its_case_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "invalid.cases.toml",
        r#"
[[case]]
name = "a misspelt privilege"
request = { action = { privilege = "writ" } }
expect = "deny"

[[case]]
name = "still runs"
expect = "allow"
"#,
    );
    let out = run_plugin(&file, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "FAIL a misspelt privilege: invalid request: `action`: unknown variant `writ`"
        ),
        "{text}"
    );
    assert_eq!(text.lines().last(), Some("1 passed, 1 failed"));
}
