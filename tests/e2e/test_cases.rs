//! `arbiter test` on readable test-case files (`*.toml`), fixtures, project
//! directories and `--coverage`, through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_arbiter");

/// The reference policy's canonical case file.
fn example() -> PathBuf {
    arbiter_plugin_build::repo_root().join("tests/vectors/reference.cases.toml")
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

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `arbiter test ARGS`.
fn arbiter_test(args: &[&str], path: &Path) -> Output {
    Command::new(BIN)
        .arg("test")
        .args(args)
        .arg(path)
        .output()
        .expect("runs")
}

/// Fixtures and defaults of a temporary case file: the payments bot reads, by default,
/// its team's staging ledger in business hours.
const FIXTURES: &str = r#"[principals.bot]
id = "spiffe://acme.org/agent/bot"
kind = "agent"
attributes = { team = "payments" }

[principals.alice]
id = "alice@acme.org"
kind = "human"
attributes = { team = "payments" }

[resources.ledger]
id = "db-ledger"
kind = "database"
attributes = { env = "staging", owner_team = "payments" }

[resources.tickets]
id = "db-tickets"
kind = "database"
attributes = { env = "prod", owner_team = "support" }

[defaults]
principal = "bot"
resource = "ledger"

[defaults.request]
action = { name = "db:Query", privilege = "read" }
context = { hour = 10, source_ip = "10.0.0.1", risk = 10, mfa = false }
"#;

#[test]
fn fixtures_are_selected_and_the_case_request_merges_on_top() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("fixtures.cases.toml");
    let cases = r#"
[[case]]
name = "the defaults' fixtures"
expect = "allow"
reasons = ["read-own-team", "read-staging"]

[[case]]
name = "another resource"
resource = "tickets"
expect = "deny"
reasons = ["no-permit"]

[[case]]
name = "a human's admin action needs MFA"
principal = "alice"
request = { action = { name = "db:Alter", privilege = "admin" } }
expect = "deny"
reasons = ["no-permit"]

[[case]]
name = "one field of the fixture changed"
principal = "alice"
request = { action = { name = "db:Alter", privilege = "admin" }, context = { mfa = true }, resource = { attributes = { env = "prod" } } }
expect = "require-approval"
reasons = ["prod-admin-needs-approval"]
"#;
    std::fs::write(&file, format!("{FIXTURES}{cases}")).expect("write");
    let out = run_plugin(&file, &["-v"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("ok   one field of the fixture changed"),
        "{text}"
    );
    assert_eq!(text.lines().last(), Some("4 passed, 0 failed"), "{text}");
}

#[test]
fn an_unknown_fixture_fails_its_case_naming_the_known_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("unknown.cases.toml");
    let cases = r#"
[[case]]
name = "a misspelt principal"
principal = "alise"
expect = "allow"

[[case]]
name = "still runs"
principal = "alice"
expect = "allow"
"#;
    std::fs::write(&file, format!("{FIXTURES}{cases}")).expect("write");
    let out = run_plugin(&file, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "FAIL a misspelt principal: `principal = \"alise\"` names no fixture `[principals.alise]`; the file's principals are `alice`, `bot`"
        ),
        "{text}"
    );
    assert_eq!(text.lines().last(), Some("1 passed, 1 failed"), "{text}");
}

/// A project as `arbiter new` lays it out: `policy-set.toml` at the root naming
/// `build/mine.wasm` (the Rust reference plugin, unless `built` is false), and tests.
fn project(dir: &Path, built: bool) -> PathBuf {
    let project = dir.join("mine");
    std::fs::create_dir_all(project.join("tests")).expect("mkdir");
    std::fs::write(
        project.join("policy-set.toml"),
        "format = 1\nname = \"mine\"\nversion = \"0.1.0\"\n\n[[plugins]]\nname = \"mine\"\npath = \"build/mine.wasm\"\n",
    )
    .expect("manifest");
    if built {
        std::fs::create_dir_all(project.join("build")).expect("mkdir");
        std::fs::copy(
            arbiter_plugin_build::plugin("reference"),
            project.join("build/mine.wasm"),
        )
        .expect("copy the plugin");
    }
    project
}

#[test]
fn a_project_directory_runs_all_its_tests_and_shows_a_failing_case_s_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = project(dir.path(), true);
    let tests = project.join("tests");
    std::fs::write(
        tests.join("a-reads.cases.toml"),
        format!("{FIXTURES}\n[[case]]\nname = \"reads are allowed\"\nexpect = \"allow\"\n"),
    )
    .expect("write");
    std::fs::write(
        tests.join("b-prod.cases.toml"),
        format!(
            "{FIXTURES}{}",
            r#"
[[case]]
name = "prod writes at night are wrongly expected to be allowed"
request = { action = { name = "db:Update", privilege = "write" }, resource = { attributes = { env = "prod" } }, context = { hour = 2 } }
approved = true
expect = "allow"

[[case]]
name = "another team's prod data"
resource = "tickets"
expect = "deny"
"#
        ),
    )
    .expect("write");
    let vectors = std::fs::read_to_string(crate::support::vectors_path()).expect("vectors");
    let three: Vec<&str> = vectors.lines().take(3).collect();
    std::fs::write(tests.join("c-public.jsonl"), three.join("\n") + "\n").expect("write");
    std::fs::write(tests.join("notes.md"), "not a test file").expect("write");

    let out = arbiter_test(&[], &project);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    let t = |name: &str| tests.join(name).display().to_string();
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("== ")).collect();
    assert_eq!(
        headers,
        [
            format!("== {} (1 passed, 0 failed)", t("a-reads.cases.toml")),
            format!("== {} (1 passed, 1 failed)", t("b-prod.cases.toml")),
            format!("== {} (3 passed, 0 failed)", t("c-public.jsonl")),
        ],
        "{text}"
    );
    assert!(
        text.contains(
            "FAIL prod writes at night are wrongly expected to be allowed: expected allow, got deny"
        ),
        "{text}"
    );
    let request = r#"     request (approved): {"principal":{"attributes":{"team":"payments"},"id":"spiffe://acme.org/agent/bot","kind":"agent"},"action":{"name":"db:Update","privilege":"write"},"resource":{"attributes":{"env":"prod","owner_team":"payments"},"id":"db-ledger","kind":"database"},"context":{"hour":2,"mfa":false,"risk":10,"source_ip":"10.0.0.1"}}"#;
    assert!(text.contains(request), "{text}");
    assert!(
        text.contains("plugin mine: deny [prod-write-outside-hours]"),
        "{text}"
    );
    assert_eq!(text.lines().last(), Some("5 passed, 1 failed"), "{text}");

    // Another set (or a plugin) on the project's tests.
    let out = arbiter_test(&["--policy-set", "builtin:reference"], &project);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("plugin reference: deny [prod-write-outside-hours]"));
}

#[test]
fn a_project_without_its_build_or_tests_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = project(dir.path(), false);
    std::fs::write(
        project.join("tests/a.cases.toml"),
        format!("{FIXTURES}\n[[case]]\nname = \"x\"\nexpect = \"allow\"\n"),
    )
    .expect("write");
    let out = arbiter_test(&[], &project);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let wasm = project.join("build/mine.wasm");
    assert!(
        err.contains(&format!(
            "plugin `mine`: `{}` does not exist\nhint: run `arbiter build {}` first",
            wasm.display(),
            project.display()
        )),
        "{err}"
    );

    // The same set given with --policy-set: the same file named, a softer hint.
    let set = project.display().to_string();
    let out = arbiter_test(&["--policy-set", &set], &project.join("tests/a.cases.toml"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("`{}` does not exist", wasm.display()))
            && err.contains("run `arbiter build"),
        "{err}"
    );

    std::fs::remove_file(project.join("tests/a.cases.toml")).expect("rm");
    let out = arbiter_test(&[], &project);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("has no test files (`*.cases.toml` or `*.jsonl`)") && err.contains("hint: "),
        "{err}"
    );

    let out = arbiter_test(&[], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("is a directory without a `policy-set.toml`") && err.contains("hint: "),
        "{err}"
    );
}

#[test]
fn coverage_names_the_rules_never_exercised_and_the_codes_not_declared() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = crate::support::one_plugin_set(
        dir.path(),
        "partial",
        "reference",
        r#"rules = ["read-own-team", "read-staging", "no-permit", "prod-write-outside-hours", "risk-too-high"]"#,
    );
    // Exercises read-own-team, read-staging and no-permit, and emits write-own-team,
    // which the manifest does not declare.
    let file = dir.path().join("some.cases.toml");
    let cases = r#"
[[case]]
name = "a read"
expect = "allow"

[[case]]
name = "another team's prod data"
resource = "tickets"
expect = "deny"

[[case]]
name = "a staging write"
request = { action = { name = "db:Update", privilege = "write" } }
expect = "allow"

[[case]]
name = "a wrong expectation does not change coverage"
expect = "deny"
"#;
    std::fs::write(&file, format!("{FIXTURES}{cases}")).expect("write");
    let set_arg = set.display().to_string();
    let out = arbiter_test(&["--coverage", "--policy-set", &set_arg], &file);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "only the failed case counts: {text}"
    );
    let report: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("coverage:"))
        .collect();
    assert_eq!(
        report,
        [
            "coverage: each plugin's own reason codes over 4 decisions",
            "  reference: 3 of 5 declared rules exercised",
            "    exercised: read-own-team (2), read-staging (2), no-permit (1)",
            "    never exercised: prod-write-outside-hours, risk-too-high",
            "    emitted but not declared: write-own-team (1)",
            "3 passed, 1 failed",
        ],
        "{text}"
    );

    // A plugin on its own declares nothing: the codes it emitted, and a hint.
    let out = run_plugin(&file, &["--coverage"]);
    let text = stdout(&out);
    assert!(
        text.contains("  reference: declares no rules; emitted no-permit (1), read-own-team (2), read-staging (2), write-own-team (1)\n  hint: list the reason codes a plugin can emit in `rules"),
        "{text}"
    );
    assert_eq!(text.lines().last(), Some("3 passed, 1 failed"), "{text}");

    // Vectors too.
    let vectors = std::fs::read_to_string(crate::support::vectors_path()).expect("vectors");
    let some: Vec<&str> = vectors.lines().take(50).collect();
    let jsonl = dir.path().join("some.jsonl");
    std::fs::write(&jsonl, some.join("\n")).expect("write");
    let out = arbiter_test(&["--coverage", "--policy-set", &set_arg], &jsonl);
    let text = stdout(&out);
    assert!(
        text.contains("coverage: each plugin's own reason codes over 50 decisions\n  reference: "),
        "{text}"
    );
    assert!(text.contains("    emitted but not declared: "), "{text}");
}

#[test]
fn the_canonical_cases_exercise_every_rule_of_the_reference_sets() {
    for set in ["builtin:reference", "builtin:reference-split"] {
        let out = arbiter_test(&["--coverage", "--policy-set", set], &example());
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{set}: {text}");
        assert!(!text.contains("never exercised"), "{set}: {text}");
        assert!(!text.contains("not declared"), "{set}: {text}");
        assert!(!text.contains("declares no rules"), "{set}: {text}");
        let plugins = if set == "builtin:reference" { 1 } else { 5 };
        let covered = text
            .lines()
            .filter(|l| l.ends_with("declared rules exercised"))
            .filter(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                words.get(1) == words.get(3)
            })
            .count();
        assert_eq!(covered, plugins, "{set}: {text}");
    }
    let text = stdout(&arbiter_test(
        &["--coverage", "--policy-set", "builtin:reference"],
        &example(),
    ));
    assert!(
        text.contains("  reference: 16 of 16 declared rules exercised"),
        "{text}"
    );
}

#[test]
fn manifest_rules_are_checked_with_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, rules, line, message) in [
        (
            "bad-code",
            "rules = [\n  \"read-own-team\",\n  \"Read_Staging\",\n]",
            10,
            "plugin `reference`: `rules`: `Read_Staging` is not a reason code: use kebab-case",
        ),
        (
            "twice",
            "rules = [\"no-permit\", \"no-permit\"]",
            8,
            "plugin `reference`: `rules`: `no-permit` is listed twice",
        ),
    ] {
        let set = crate::support::one_plugin_set(dir.path(), name, "reference", rules);
        let out = arbiter_test(&["--policy-set", &set.display().to_string()], &example());
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = stderr(&out);
        let at = format!("{}:{line}: ", set.join("policy-set.toml").display());
        assert!(err.contains(&format!("{at}{message}")), "{name}: {err}");
    }
}
