//! `arbiter bench` through the real binary: the shape of what it prints and its
//! errors. Timings are never compared (benchmarks are not timed assertions); only that
//! each is measured, positive and ordered as percentiles are.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::vectors_path;

const BIN: &str = env!("CARGO_BIN_EXE_arbiter");

/// Requests taken from the public vectors: enough to measure, few enough to stay fast.
const PREFIX: usize = 50;

fn bench(args: &[&str], path: &Path) -> Output {
    Command::new(BIN)
        .arg("bench")
        .args(args)
        .arg(path)
        .output()
        .expect("runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The first [`PREFIX`] lines of the public vectors, written to `dir`.
fn vectors_prefix(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(vectors_path()).expect("vectors");
    let lines: Vec<&str> = text.lines().take(PREFIX).collect();
    let path = dir.join("prefix.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    path
}

/// The Rust reference example's case file.
fn example_cases() -> PathBuf {
    arbiter_plugin_build::repo_root().join("plugins/rust/reference/tests/reference.cases.toml")
}

/// Runs `arbiter bench ARGS --json PATH`, which must succeed, and parses its output.
fn bench_json(args: &[&str], path: &Path) -> Value {
    let out = bench(&[args, &["--json"]].concat(), path);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

fn number(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is a number in {v}"))
}

/// Every timing of a summary is positive and the percentiles are in order.
fn assert_summary(v: &Value, decisions: u64) {
    assert_eq!(v["decisions"].as_u64(), Some(decisions), "{v}");
    let [mean, p50, p90, p99, max] =
        ["mean_us", "p50_us", "p90_us", "p99_us", "max_us"].map(|k| number(v, k));
    assert!(mean > 0.0 && p50 > 0.0, "{v}");
    assert!(p50 <= p90 && p90 <= p99 && p99 <= max && mean <= max, "{v}");
}

#[test]
fn bench_on_the_reference_set_prints_both_modes_with_positive_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = vectors_prefix(dir.path());
    let out = bench(&["--iterations", "1"], &file);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.starts_with("set      reference 1.0.0 (builtin:reference)\n"),
        "{text}"
    );
    assert!(text.contains("\nplugin   reference: "), "{text}");
    assert!(
        text.contains(&format!("{}: {PREFIX} requests", file.display())),
        "{text}"
    );
    let heading = text
        .lines()
        .find(|l| l.starts_with("mode "))
        .expect("the decision table");
    assert!(
        heading.contains("p99 us") && heading.contains("decisions/s"),
        "{text}"
    );
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with("fresh ") || l.starts_with("pooled "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(rows[0][0], "fresh", "{text}");
    assert_eq!(rows[1][0], "pooled", "{text}");
    for row in &rows {
        assert_eq!(row.len(), 9, "{row:?}");
        assert_eq!(row[2], PREFIX.to_string(), "{row:?}");
        for cell in &row[1..] {
            let n: f64 = cell.parse().expect("a number");
            assert!(n > 0.0, "{row:?}");
        }
    }
    // Then the plugin's own share, per mode.
    let plugin_rows = text.lines().filter(|l| l.starts_with("reference ")).count();
    assert_eq!(plugin_rows, 2, "{text}");
}

#[test]
fn bench_json_has_the_set_its_components_and_every_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = vectors_prefix(dir.path());
    let v = bench_json(&["--iterations", "2", "--warmup", "0"], &file);
    assert_eq!(v["set"]["name"], "reference", "{v}");
    assert_eq!(v["set"]["origin"], "builtin:reference", "{v}");
    let components = v["components"].as_array().expect("components");
    assert_eq!(components.len(), 1, "{v}");
    assert!(
        components[0]["bytes"].as_u64().is_some_and(|b| b > 0),
        "{v}"
    );
    assert_eq!(v["inputs"][0]["requests"].as_u64(), Some(PREFIX as u64));
    assert_eq!(v["requests"].as_u64(), Some(PREFIX as u64));
    assert_eq!(v["iterations"].as_u64(), Some(2));
    assert_eq!(v["warmup"].as_u64(), Some(0));
    let modes = v["modes"].as_array().expect("modes");
    let names: Vec<&str> = modes.iter().filter_map(|m| m["mode"].as_str()).collect();
    assert_eq!(names, ["fresh", "pooled"]);
    let decisions = 2 * PREFIX as u64;
    for m in modes {
        assert!(number(m, "load_ms") > 0.0, "{m}");
        assert!(number(m, "decisions_per_second") > 0.0, "{m}");
        assert_summary(m, decisions);
        let plugins = m["plugins"].as_array().expect("plugins");
        assert_eq!(plugins.len(), 1, "{m}");
        assert_eq!(plugins[0]["name"], "reference");
        assert_eq!(plugins[0]["failures"].as_u64(), Some(0));
        assert_summary(&plugins[0], decisions);
    }
    // One mode alone.
    let v = bench_json(&["--iterations", "1", "--mode", "pooled"], &file);
    let names: Vec<&str> = v["modes"]
        .as_array()
        .expect("modes")
        .iter()
        .filter_map(|m| m["mode"].as_str())
        .collect();
    assert_eq!(names, ["pooled"]);
}

#[test]
fn bench_a_single_plugin_on_its_case_file() {
    let plugin = arbiter_plugin_build::plugin("reference");
    let plugin_arg = plugin.display().to_string();
    let cases = example_cases();
    let out = bench(&["--plugin", &plugin_arg, "--iterations", "1"], &cases);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains(&format!("({plugin_arg})")), "{text}");
    assert!(
        text.contains(&format!("input    {}: ", cases.display())),
        "{text}"
    );
    let v = bench_json(&["--plugin", &plugin_arg, "--iterations", "1"], &cases);
    let requests = v["requests"].as_u64().expect("requests");
    assert!(requests >= 8, "{v}");
    for m in v["modes"].as_array().expect("modes") {
        assert_summary(m, requests);
    }
}

#[test]
fn bench_on_a_project_directory_uses_its_set_and_its_tests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path();
    std::fs::copy(
        arbiter_plugin_build::plugin("reference"),
        project.join("policy.wasm"),
    )
    .expect("copy the plugin");
    std::fs::write(
        project.join("policy-set.toml"),
        "format = 1\nname = \"mine\"\nversion = \"0.1.0\"\n\n[[plugins]]\nname = \"policy\"\npath = \"policy.wasm\"\n",
    )
    .expect("manifest");
    let tests = project.join("tests");
    std::fs::create_dir(&tests).expect("tests dir");
    std::fs::copy(example_cases(), tests.join("policy.cases.toml")).expect("copy the cases");
    let vectors = vectors_prefix(&tests);
    std::fs::write(tests.join("notes.md"), "not an input").expect("notes");

    let v = bench_json(&["--iterations", "1", "--mode", "fresh"], project);
    assert_eq!(v["set"]["name"], "mine", "{v}");
    let files: Vec<&str> = v["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .filter_map(|i| i["file"].as_str())
        .collect();
    let cases = tests.join("policy.cases.toml").display().to_string();
    assert_eq!(files, [cases.as_str(), &vectors.display().to_string()]);
    assert_eq!(v["modes"][0]["plugins"][0]["name"], "policy");

    // Another set, on the project's tests.
    let v = bench_json(
        &[
            "--iterations",
            "1",
            "--mode",
            "fresh",
            "--policy-set",
            "builtin:reference",
        ],
        project,
    );
    assert_eq!(v["set"]["name"], "reference", "{v}");
    assert_eq!(v["inputs"].as_array().map(Vec::len), Some(2), "{v}");

    // A project whose component is not built yet says how to build it.
    std::fs::remove_file(project.join("policy.wasm")).expect("remove the plugin");
    let out = bench(&[], project);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("policy.wasm` does not exist"), "{err}");
    assert!(err.contains("arbiter build"), "{err}");
}

#[test]
fn a_bad_vectors_line_is_an_error_naming_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read_to_string(vectors_path()).expect("vectors");
    let first: Vec<&str> = good.lines().take(2).collect();
    let file = dir.path().join("bad.jsonl");
    std::fs::write(
        &file,
        format!("{}\n\n{{\"request\": \"no\"}}\n", first.join("\n")),
    )
    .expect("write");
    let out = bench(&["--iterations", "1"], &file);
    assert_ne!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:4: not a test vector", file.display())),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("absent.jsonl");
    let out = bench(&[], &file);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot read vectors `{}`", file.display())),
        "{err}"
    );
    let out = bench(&[], &dir.path().join("absent.cases.toml"));
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("cannot read test cases"),
        "{}",
        stderr(&out)
    );
}
