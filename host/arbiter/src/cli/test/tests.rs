//! Unit tests of the case-file format (the deep merge, `unset`, fixtures, parsing,
//! errors and the mismatch line) and of the coverage report.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use arbiter_core::{
    Decision, Effect, FailureKind, Obligations, Outcome, PluginOutcome, PluginReport,
    PrincipalKind, Privilege, Reason, SetIdentity, Value, Verdict,
};

use super::cases::{self, Body, Case};
use super::coverage::Coverage;

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
        "tests/vectors/reference.cases.toml",
        "tests/vectors/mcp-example.cases.toml",
    ] {
        let text = std::fs::read_to_string(root.join(path)).expect(path);
        let cases = cases::parse(&text, path).unwrap_or_else(|e| panic!("{e}"));
        assert!(cases.len() >= 8, "{path}");
        for c in &cases {
            assert!(c.body.is_ok(), "{path}: {c:?}");
        }
    }
}

#[test]
fn each_language_s_reference_cases_are_the_canonical_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let canonical = std::fs::read_to_string(root.join("tests/vectors/reference.cases.toml"))
        .expect("the canonical file");
    for path in [
        "plugins/rust/reference/tests/reference.cases.toml",
        "plugins/python/reference/reference.cases.toml",
        "plugins/js/reference/reference.cases.toml",
        "plugins/c/reference/reference.cases.toml",
    ] {
        let text = std::fs::read_to_string(root.join(path)).expect(path);
        assert!(
            text == canonical,
            "{path} is not a link to the canonical file"
        );
    }
}

/// Fixtures for the tests below: two principals, two resources.
const FIXTURES: &str = r#"
[principals.bot]
id = "spiffe://acme.org/agent/bot"
kind = "agent"
attributes = { team = "payments" }

[principals.alice]
id = "alice@acme.org"
kind = "human"
attributes = { team = "payments", level = 3 }

[resources.ledger]
id = "db-ledger"
kind = "database"
attributes = { env = "staging", owner_team = "payments" }

[resources.vault]
id = "vault:k"
kind = "secret"
attributes = { env = "prod" }
"#;

fn parse_with_fixtures(rest: &str) -> Result<Vec<Case>, String> {
    cases::parse(
        &format!(
            "{FIXTURES}\n[defaults.request]\naction = {{ name = \"db:Query\", privilege = \"read\" }}\n{rest}"
        ),
        "f.cases.toml",
    )
}

#[test]
fn a_fixture_is_the_case_principal_or_resource_and_the_request_merges_on_top() {
    let cases = parse_with_fixtures(
        r#"
[[case]]
name = "fixtures as they are"
principal = "alice"
resource = "ledger"
expect = "allow"

[[case]]
name = "one field changed"
principal = "alice"
resource = "ledger"
request = { principal = { attributes = { team = "support" } }, resource = { attributes = { env = "prod" } } }
expect = "deny"
"#,
    )
    .expect("parses");
    let plain = &body(&cases[0]).request;
    assert_eq!(plain.principal.id, "alice@acme.org");
    assert_eq!(plain.principal.kind, PrincipalKind::Human);
    assert_eq!(plain.principal.attributes["level"], Value::Int(3));
    assert_eq!(plain.resource.id, "db-ledger");
    assert_eq!(plain.action.name, "db:Query", "from the defaults");

    let changed = &body(&cases[1]).request;
    assert_eq!(changed.principal.id, "alice@acme.org");
    assert_eq!(
        changed.principal.attributes["team"],
        Value::Str("support".into())
    );
    assert_eq!(
        changed.principal.attributes["level"],
        Value::Int(3),
        "the rest of the fixture stays"
    );
    assert_eq!(
        changed.resource.attributes["env"],
        Value::Str("prod".into())
    );
    assert_eq!(
        changed.resource.attributes["owner_team"],
        Value::Str("payments".into())
    );
}

#[test]
fn defaults_select_fixtures_a_case_selects_others_and_a_fixture_replaces_whole() {
    let text = format!(
        "{FIXTURES}\n[defaults]\nprincipal = \"bot\"\nresource = \"ledger\"\n\n[defaults.request]\naction = {{ name = \"db:Query\", privilege = \"read\" }}\n{}",
        r#"
[[case]]
name = "the defaults' fixtures"
expect = "allow"

[[case]]
name = "its own"
principal = "alice"
resource = "vault"
expect = "deny"
"#
    );
    let cases = cases::parse(&text, "f.cases.toml").expect("parses");
    let first = &body(&cases[0]).request;
    assert_eq!(first.principal.id, "spiffe://acme.org/agent/bot");
    assert_eq!(first.resource.id, "db-ledger");
    let own = &body(&cases[1]).request;
    assert_eq!(own.principal.id, "alice@acme.org");
    assert_eq!(own.resource.id, "vault:k");
    assert!(
        !own.resource.attributes.contains_key("owner_team"),
        "a fixture replaces the resource whole: {:?}",
        own.resource
    );

    // Without fixtures selected in [defaults], a fixture replaces the whole principal
    // of [defaults.request] too.
    let cases = parse(&FIXTURES.replace(
        "[principals.bot]",
        "[[case]]\nname = \"x\"\nprincipal = \"bot\"\nexpect = \"allow\"\n\n[principals.bot]",
    ))
    .expect("parses");
    let r = &body(&cases[0]).request;
    assert_eq!(r.principal.id, "spiffe://acme.org/agent/bot");
    assert_eq!(
        r.context["hour"],
        Value::Int(10),
        "the defaults' context stays"
    );
}

#[test]
fn an_unknown_fixture_fails_its_case_naming_the_known_ones() {
    let cases = parse_with_fixtures(
        r#"
[[case]]
name = "misspelt"
principal = "alise"
resource = "ledger"
expect = "allow"

[[case]]
name = "no such resource"
principal = "alice"
resource = "ledgr"
expect = "allow"

[[case]]
name = "fine"
principal = "alice"
resource = "ledger"
expect = "allow"
"#,
    )
    .expect("the file is well formed");
    assert_eq!(
        cases[0].body.as_ref().expect_err("unknown principal"),
        "`principal = \"alise\"` names no fixture `[principals.alise]`; the file's principals are `alice`, `bot`"
    );
    assert_eq!(
        cases[1].body.as_ref().expect_err("unknown resource"),
        "`resource = \"ledgr\"` names no fixture `[resources.ledgr]`; the file's resources are `ledger`, `vault`"
    );
    assert!(cases[2].body.is_ok());

    let cases = cases::parse(
        "[defaults]\nresource = \"ledger\"\n\n[[case]]\nname = \"x\"\nexpect = \"allow\"\n",
        "f.toml",
    )
    .expect("parses");
    assert_eq!(
        cases[0].body.as_ref().expect_err("no fixtures at all"),
        "[defaults] `resource = \"ledger\"` names no fixture `[resources.ledger]`; the file has no `[resources.NAME]` tables"
    );
}

#[test]
fn an_invalid_fixture_fails_the_file_with_its_line() {
    let text = format!(
        "{FIXTURES}\n[principals.carol]\nid = \"carol\"\nkind = \"robot\"\n\n[[case]]\nname = \"x\"\nexpect = \"allow\"\n"
    );
    let e = cases::parse(&text, "f.toml").expect_err("bad kind");
    assert!(
        e.starts_with("f.toml:22: fixture `principals.carol`: unknown variant `robot`"),
        "{e}"
    );
    assert!(
        e.contains("\n  hint: a fixture is a whole principal"),
        "{e}"
    );
    let text = FIXTURES.replace("env = \"prod\"", "env = { a = 1 }");
    let e = cases::parse(
        &format!("{text}[[case]]\nname = \"x\"\nexpect = \"allow\"\n"),
        "f.toml",
    )
    .expect_err("bad attribute");
    assert!(
        e.starts_with("f.toml:17: fixture `resources.vault.attributes.env`: "),
        "{e}"
    );
    // A selection is a name, not a table.
    let e = parse("[[case]]\nname = \"x\"\nprincipal = { id = \"a\", kind = \"human\" }\nexpect = \"allow\"\n")
        .expect_err("a table");
    assert!(e.starts_with("t.cases.toml:9: case 1 `x`: "), "{e}");
}

#[test]
fn defaults_may_not_select_a_fixture_and_also_set_that_part() {
    let e = cases::parse(
        &format!("{FIXTURES}\n[defaults]\nprincipal = \"bot\"\n{DEFAULTS}\n[[case]]\nname = \"x\"\nexpect = \"allow\"\n"),
        "f.toml",
    )
    .expect_err("both");
    assert!(
        e.starts_with("f.toml:22: [defaults] selects the principal fixture `bot` and also sets `request.principal`"),
        "{e}"
    );
}

#[test]
fn the_merged_request_is_shown_on_one_line_in_request_order() {
    let cases = parse(
        "[[case]]\nname = \"x\"\nrequest = { intent = { purpose = \"data-export\" } }\nunset = [\"context.mfa\"]\nexpect = \"allow\"\n",
    )
    .expect("parses");
    assert_eq!(
        body(&cases[0]).shown,
        r#"{"principal":{"attributes":{"team":"payments"},"id":"spiffe://acme.org/agent/bot","kind":"agent"},"action":{"name":"db:Query","privilege":"read"},"resource":{"attributes":{"env":"staging","owner_team":"payments"},"id":"r1","kind":"database"},"intent":{"purpose":"data-export"},"context":{"hour":10,"risk":10,"source_ip":"10.0.0.1"}}"#
    );
}

fn verdict(plugin: &str, effect: Effect, codes: &[&str]) -> PluginReport {
    let mut v = Verdict::effect(effect);
    v.reasons = codes
        .iter()
        .map(|c| Reason::new(*c, "caller", "admin"))
        .collect();
    PluginReport {
        name: plugin.into(),
        outcome: PluginOutcome::Verdict(v),
        elapsed: Duration::ZERO,
    }
}

fn with_plugins(plugins: Vec<PluginReport>) -> Decision {
    Decision {
        plugins,
        ..decision(Outcome::Deny, &[])
    }
}

#[test]
fn coverage_counts_each_plugin_s_own_codes_and_names_the_gaps() {
    let mut c = Coverage::default();
    // A deny from the guard hides the permit plugin's reason in the decision; the
    // permit plugin's own verdict still counts.
    c.record(&with_plugins(vec![
        verdict("guard", Effect::Deny, &["risk-too-high", "risk-too-high"]),
        verdict("permits", Effect::Allow, &["read-own-team"]),
    ]));
    c.record(&with_plugins(vec![
        verdict("guard", Effect::Abstain, &[]),
        verdict("permits", Effect::Allow, &["read-own-team", "surprise"]),
        PluginReport {
            name: "advisor".into(),
            outcome: PluginOutcome::failed(FailureKind::Timeout, "slow"),
            elapsed: Duration::ZERO,
        },
    ]));
    let guard = vec![
        "risk-too-high".to_string(),
        "prod-write-outside-hours".into(),
    ];
    let permits = vec!["read-own-team".to_string()];
    let report = c.report([
        ("guard", guard.as_slice()),
        ("permits", permits.as_slice()),
        ("advisor", &[][..]),
        ("logger", &[][..]),
    ]);
    assert_eq!(
        report,
        "coverage: each plugin's own reason codes over 2 decisions
  guard: 1 of 2 declared rules exercised
    exercised: risk-too-high (1)
    never exercised: prod-write-outside-hours
  permits: 1 of 1 declared rules exercised
    exercised: read-own-team (2)
    emitted but not declared: surprise (1)
  advisor: declares no rules; emitted no reason codes
  logger: declares no rules; emitted no reason codes
  hint: list the reason codes a plugin can emit in `rules = [\"code\", ...]` on its `[[plugins]]` entry in policy-set.toml, to see which are never exercised
"
    );
    let all = c.report([(
        "permits",
        &["read-own-team".to_string(), "surprise".into()][..],
    )]);
    assert!(!all.contains("never") && !all.contains("hint"), "{all}");
}
