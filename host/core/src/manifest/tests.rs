use std::time::Duration;

use super::*;

const GOOD: &str = r#"
format = 1
name = "reference"
version = "1.2.0"
combining = "first-applicable"

[limits]
deadline_ms = 20

[[plugins]]
name = "rules"
path = "rules.wasm"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
on_error = "abstain"
limits = { memory_mib = 8 }

[plugins.settings]
hours = { start = 8, end = 18 }
teams = ["a", "b"]
"#;

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(text, "policy-set.toml", Limits::default())
}

fn error_of(text: &str) -> String {
    parse(text).expect_err("must be refused").to_string()
}

#[test]
fn good_manifest_validates_and_layers_limits() {
    let m = parse(GOOD).expect("valid");
    assert_eq!(m.combining, Combining::FirstApplicable);
    let p = &m.plugins[0];
    assert_eq!(p.on_error, OnError::Abstain);
    assert_eq!(p.limits.deadline, Duration::from_millis(20));
    assert_eq!(p.limits.memory_bytes, 8 << 20);
    assert_eq!(p.sha256, Some([0; 32]));
    assert_eq!(p.settings["hours.start"], Value::Int(8));
    assert_eq!(
        p.settings["teams"],
        Value::Strings(vec!["a".into(), "b".into()])
    );
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = GOOD.replace("on_error = \"abstain\"", "on_eror = \"abstain\"");
    let e = error_of(&text);
    assert!(e.starts_with("policy-set.toml:14:"), "{e}");
    assert!(e.contains("on_eror"), "{e}");
}

#[test]
fn bad_values_are_refused_with_the_fix() {
    let cases = [
        (GOOD.replace("first-applicable", "most-votes"), "most-votes"),
        (GOOD.replace("format = 1", "format = 2"), "format"),
        (
            GOOD.replace("\"rules.wasm\"", "\"../x.wasm\""),
            "stay inside",
        ),
        (
            GOOD.replace("\"rules.wasm\"", "\"/etc/x.wasm\""),
            "stay inside",
        ),
        (GOOD.replace("0000000000", "zz"), "64 hex digits"),
        (
            GOOD.replace("deadline_ms = 20", "deadline_ms = 0"),
            "deadline_ms",
        ),
        (
            GOOD.replace("memory_mib = 8", "memory_mib = 100000"),
            "memory_mib",
        ),
        (
            GOOD.replace("teams = [\"a\", \"b\"]", "teams = [1]"),
            "only strings",
        ),
        (
            GOOD.replace("name = \"rules\"", "name = \"a b\""),
            "letters",
        ),
    ];
    for (text, needle) in cases {
        let e = error_of(&text);
        assert!(e.contains(needle), "expected `{needle}` in: {e}");
    }
}

#[test]
fn duplicate_plugin_names_are_refused() {
    let text = format!("{GOOD}\n[[plugins]]\nname = \"rules\"\npath = \"b.wasm\"\n");
    assert!(error_of(&text).contains("appears twice"));
}

#[test]
fn a_set_needs_a_plugin() {
    let e = error_of("format = 1\nname = \"x\"\nversion = \"1\"\n");
    assert!(e.contains("at least one plugin"), "{e}");
}

#[test]
fn pooled_instances_are_opt_in_with_a_recycle_bound() {
    let m = parse(GOOD).expect("valid");
    assert_eq!(m.plugins[0].instances, crate::Instances::Fresh);
    assert_eq!(
        m.plugins[0].recycle_after,
        crate::manifest::DEFAULT_RECYCLE_AFTER
    );
    let pooled = GOOD.replace(
        "on_error = \"abstain\"",
        "on_error = \"abstain\"\ninstances = \"pooled\"\nrecycle_after = 50",
    );
    let m = parse(&pooled).expect("valid");
    assert_eq!(m.plugins[0].instances, crate::Instances::Pooled);
    assert_eq!(m.plugins[0].recycle_after, 50);
    let zero = GOOD.replace("on_error = \"abstain\"", "recycle_after = 0");
    assert!(error_of(&zero).contains("`recycle_after` must be at least 1"));
    let bad = GOOD.replace("on_error = \"abstain\"", "instances = \"shared\"");
    assert!(error_of(&bad).contains("shared"));
}

#[test]
fn set_limits_errors_name_their_line() {
    let e = error_of(&GOOD.replace("deadline_ms = 20", "deadline_ms = 0"));
    assert!(
        e.starts_with("policy-set.toml:7:") && e.contains("[limits]"),
        "{e}"
    );
}

#[test]
fn data_names_are_normalized() {
    let text = GOOD.replace(
        "[limits]",
        "data = [\"./rules/allow.json\", \"x.txt\"]\n\n[limits]",
    );
    let m = parse(&text).expect("valid");
    assert_eq!(m.data, ["rules/allow.json", "x.txt"]);
}

#[test]
fn declared_rules_are_kebab_case_codes_listed_once() {
    let m = parse(GOOD).expect("valid");
    assert!(m.plugins[0].rules.is_empty(), "optional");
    let with = |rules: &str| GOOD.replace("on_error = \"abstain\"", &format!("rules = {rules}"));
    let m = parse(&with(r#"["risk-too-high", "f1", "no-permit"]"#)).expect("valid");
    assert_eq!(m.plugins[0].rules, ["risk-too-high", "f1", "no-permit"]);
    for bad in [
        "Risk",
        "risk_too_high",
        "-risk",
        "risk--high",
        "risk-",
        "",
        "a b",
    ] {
        let e = error_of(&with(&format!(r#"["ok", "{bad}"]"#)));
        assert!(
            e.starts_with(&format!(
                "policy-set.toml:14: plugin `rules`: `rules`: `{bad}` is not a reason code: use kebab-case"
            )),
            "{bad}: {e}"
        );
    }
    let e = error_of(&with(&format!("[\"{}\"]", "a".repeat(65))));
    assert!(e.contains("at most 64 characters"), "{e}");
    let e = error_of(&with("[\n  \"ok\",\n  \"twice\",\n  \"twice\",\n]"));
    assert_eq!(
        e,
        "policy-set.toml:17: plugin `rules`: `rules`: `twice` is listed twice"
    );
}
