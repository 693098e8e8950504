//! Unit tests of the case-file format: the deep merge, `unset`, parsing, errors and
//! the mismatch line.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use arbiter_core::{
    Decision, Obligations, Outcome, PrincipalKind, Privilege, Reason, SetIdentity, Value,
};

use super::cases::{self, Body, Case};

const DEFAULTS: &str = r#"
[defaults.request]
principal = { id = "spiffe://acme.org/agent/bot", kind = "agent", attributes = { team = "payments" } }
action = { name = "db:Query", privilege = "read" }
resource = { id = "r1", kind = "database", attributes = { env = "staging", owner_team = "payments" } }
context = { hour = 10, source_ip = "10.0.0.1", risk = 10, mfa = false }
"#;

fn table(text: &str) -> toml::Table {
    toml::from_str(text).expect("valid TOML")
}

fn parse(cases: &str) -> Result<Vec<Case>, String> {
    cases::parse(&format!("{DEFAULTS}{cases}"), "t.cases.toml")
}

fn body(case: &Case) -> &Body {
    case.body.as_ref().expect("a valid case")
}

fn decision(outcome: Outcome, codes: &[&str]) -> Decision {
    Decision {
        id: "d".into(),
        outcome,
        reasons: codes
            .iter()
            .map(|c| Reason::new(*c, "caller", "admin"))
            .collect(),
        obligations: Obligations::default(),
        set: SetIdentity {
            name: "s".into(),
            version: "1".into(),
            digest: String::new(),
        },
        plugins: Vec::new(),
        elapsed: Duration::ZERO,
    }
}

#[test]
fn tables_merge_recursively_and_everything_else_replaces() {
    let mut base = table(
        r#"
        a = { b = { c = 1, d = 2 }, list = [1, 2], s = "x" }
        keep = true
        t = { x = 1 }
        "#,
    );
    cases::merge(
        &mut base,
        table(
            r#"
            a = { b = { d = 3, e = 4 }, list = [9], s = "y" }
            t = "scalar over a table"
            new = { z = 1 }
            "#,
        ),
    );
    let want = table(
        r#"
        a = { b = { c = 1, d = 3, e = 4 }, list = [9], s = "y" }
        keep = true
        t = "scalar over a table"
        new = { z = 1 }
        "#,
    );
    assert_eq!(base, want);
}

#[test]
fn a_table_replaces_a_scalar() {
    let mut base = table("a = 1");
    cases::merge(&mut base, table("a = { b = 2 }"));
    assert_eq!(base, table("a = { b = 2 }"));
}

#[test]
fn unset_removes_a_dotted_path_and_refuses_a_missing_one() {
    let mut t = table("context = { hour = 10, risk = 1 }\nx = 1");
    cases::unset(&mut t, "context.hour").expect("present");
    cases::unset(&mut t, "x").expect("present");
    assert_eq!(t, table("context = { risk = 1 }"));
    for bad in ["context.hour", "context.risk.deeper", "nope", ""] {
        let e = cases::unset(&mut t, bad).expect_err(bad);
        assert!(e.contains(&format!("`{bad}`")), "{e}");
    }
}

#[test]
fn a_case_states_only_what_matters() {
    let cases = parse(
        r#"
[[case]]
name = "plain"
expect = "allow"

[[case]]
name = "prod write at night"
request = { action = { privilege = "write" }, resource = { attributes = { env = "prod" } }, context = { hour = 2 } }
unset = ["context.mfa"]
approved = true
expect = "deny"
reasons = ["prod-write-outside-hours", "b", "prod-write-outside-hours"]
"#,
    )
    .expect("parses");
    assert_eq!(cases.len(), 2);
    let (plain, night) = (&cases[0], &cases[1]);
    assert_eq!((plain.index, plain.name.as_str()), (1, "plain"));
    assert_eq!(plain.line, 8, "the line of the [[case]] header");
    let p = body(plain);
    assert_eq!(p.expect, Outcome::Allow);
    assert!(!p.approved);
    assert_eq!(p.reasons, None);
    assert_eq!(p.request.action.privilege, Privilege::Read);
    assert_eq!(p.request.principal.kind, PrincipalKind::Agent);

    let n = body(night);
    assert_eq!((night.index, night.line), (2, 12));
    assert_eq!(n.expect, Outcome::Deny);
    assert!(n.approved);
    assert_eq!(
        n.reasons,
        Some(BTreeSet::from([
            "b".into(),
            "prod-write-outside-hours".into()
        ]))
    );
    let r = &n.request;
    assert_eq!(r.action.privilege, Privilege::Write);
    assert_eq!(r.action.name, "db:Query", "kept from the defaults");
    assert_eq!(r.resource.id, "r1");
    assert_eq!(r.resource.attributes["env"], Value::Str("prod".into()));
    assert_eq!(
        r.resource.attributes["owner_team"],
        Value::Str("payments".into())
    );
    assert_eq!(r.context["hour"], Value::Int(2));
    assert_eq!(r.context["risk"], Value::Int(10));
    assert!(!r.context.contains_key("mfa"), "unset");
}

#[test]
fn defaults_approved_applies_unless_a_case_says_otherwise() {
    let text = format!(
        "[defaults]\napproved = true\n{DEFAULTS}\n[[case]]\nname = \"a\"\nexpect = \"allow\"\n\n[[case]]\nname = \"b\"\napproved = false\nexpect = \"allow\"\n"
    );
    let cases = cases::parse(&text, "f.toml").expect("parses");
    assert!(body(&cases[0]).approved);
    assert!(!body(&cases[1]).approved);
}

#[test]
fn a_syntax_error_names_the_file_and_line() {
    let e = parse("[[case]]\nname = \"x\nexpect = \"allow\"\n").expect_err("bad TOML");
    assert!(e.starts_with("t.cases.toml:8: "), "{e}");
    assert!(e.contains("\n  hint: "), "{e}");
}

#[test]
fn an_unknown_key_names_the_line_and_the_case() {
    let e = parse(
        "[[case]]\nname = \"first\"\nexpect = \"allow\"\n\n[[case]]\nname = \"second\"\nexpected = \"deny\"\n",
    )
    .expect_err("unknown key");
    assert!(
        e.starts_with("t.cases.toml:13: case 2 `second`: unknown field `expected`"),
        "{e}"
    );
    let e = cases::parse("[default]\nx = 1\n", "f.toml").expect_err("unknown table");
    assert!(e.starts_with("f.toml:1: unknown field `default`"), "{e}");
    let e = parse("[[case]]\nname = \"x\"\nexpect = \"allow\"\nrequest = 3\n").expect_err("type");
    assert!(e.starts_with("t.cases.toml:10: case 1 `x`: "), "{e}");
}

#[test]
fn a_file_without_cases_is_refused() {
    let e = cases::parse(DEFAULTS, "f.toml").expect_err("no cases");
    assert!(e.starts_with("f.toml: no test cases"), "{e}");
}

#[test]
fn a_bad_case_fails_alone() {
    let cases = parse(
        r#"
[[case]]
name = "bad expect"
expect = "alow"

[[case]]
name = "bad privilege"
request = { action = { privilege = "writ" } }
expect = "deny"

[[case]]
name = "unknown request key"
request = { contxt = { hour = 1 } }
expect = "deny"

[[case]]
name = "bad attribute"
request = { resource = { attributes = { tags = [1, 2] } } }
expect = "deny"

[[case]]
name = "bad unset"
unset = ["context.hourr"]
expect = "deny"

[[case]]
name = "good"
expect = "allow"

[[case]]
name = "good"
expect = "allow"

[[case]]
name = ""
expect = "allow"
"#,
    )
    .expect("the file itself is well formed");
    let errors: Vec<&str> = cases
        .iter()
        .map(|c| c.body.as_ref().err().map_or("", String::as_str))
        .collect();
    assert!(errors[0].contains("`expect` is `alow`"), "{}", errors[0]);
    assert!(
        errors[1].starts_with("invalid request: `action`: unknown variant `writ`"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].starts_with("invalid request: unknown field `contxt`"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3].starts_with("invalid request: `resource.attributes.tags`: `[1, 2]` is not"),
        "{}",
        errors[3]
    );
    assert!(errors[4].contains("`context.hourr`"), "{}", errors[4]);
    assert_eq!(errors[5], "");
    assert!(
        errors[6].starts_with("case 6 has the same name"),
        "{}",
        errors[6]
    );
    assert!(errors[7].contains("`name` is empty"), "{}", errors[7]);
    assert_eq!(cases[7].label(), "case 8");
}

#[test]
fn a_missing_principal_is_named() {
    let cases =
        cases::parse("[[case]]\nname = \"x\"\nexpect = \"allow\"\n", "f.toml").expect("parses");
    let e = cases[0].body.as_ref().expect_err("no principal");
    assert!(e.contains("missing field `principal`"), "{e}");
}

#[test]
fn mismatch_compares_the_decision_and_the_reason_set() {
    let cases = parse(
        r#"
[[case]]
name = "decision only"
expect = "deny"

[[case]]
name = "with reasons"
expect = "allow"
reasons = ["b", "a"]
"#,
    )
    .expect("parses");
    let (only, with) = (&cases[0], &cases[1]);
    let check = |c: &Case, d: &Decision| cases::mismatch(c, body(c), d);

    assert_eq!(check(only, &decision(Outcome::Deny, &["x"])), None);
    assert_eq!(
        check(only, &decision(Outcome::Allow, &["x"])).as_deref(),
        Some("FAIL decision only: expected deny, got allow")
    );
    // Order and duplicates do not matter; the set must be exact.
    assert_eq!(
        check(with, &decision(Outcome::Allow, &["a", "b", "a"])),
        None
    );
    assert_eq!(
        check(with, &decision(Outcome::Allow, &["a"])).as_deref(),
        Some("FAIL with reasons: expected allow [a, b], got allow [a]")
    );
    assert_eq!(
        check(with, &decision(Outcome::Allow, &["a", "b", "c"])).as_deref(),
        Some("FAIL with reasons: expected allow [a, b], got allow [a, b, c]")
    );
    assert_eq!(
        check(with, &decision(Outcome::Deny, &["a", "b"])).as_deref(),
        Some("FAIL with reasons: expected allow [a, b], got deny [a, b]")
    );
}

#[test]
fn the_format_is_chosen_by_extension() {
    assert!(super::is_case_file(Path::new("a/reference.cases.toml")));
    assert!(super::is_case_file(Path::new("X.TOML")));
    for other in ["v.jsonl", "v.json", "toml", "v.toml.jsonl", "v"] {
        assert!(!super::is_case_file(Path::new(other)), "{other}");
    }
}

#[test]
fn every_example_case_file_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for path in [
        "plugins/rust/reference/tests/reference.cases.toml",
        "plugins/python/reference/reference.cases.toml",
        "plugins/js/reference/reference.cases.toml",
        "plugins/c/reference/reference.cases.toml",
    ] {
        let text = std::fs::read_to_string(root.join(path)).expect(path);
        let cases = cases::parse(&text, path).unwrap_or_else(|e| panic!("{e}"));
        assert!(cases.len() >= 8, "{path}");
        for c in &cases {
            assert!(c.body.is_ok(), "{path}: {c:?}");
        }
    }
}
