//! The `arbiter` binary: `check` against a running server, `test` in-process.

use std::process::Command;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_arbiter");

#[tokio::test(flavor = "multi_thread")]
async fn check_gives_the_same_decisions_as_the_vectors() {
    let server = TestServer::start(&[]).await;
    let vectors = vectors();
    let url = server.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["check", "--server", &url])
            .arg(vectors_path())
            .output()
            .expect("runs")
    })
    .await
    .expect("joins");
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), vectors.len());
    for (v, out) in vectors.iter().zip(&lines) {
        assert_eq!(out["line"], v.line, "output in input order");
        assert_eq!(out["decision_id"].as_str().map(str::len), Some(36));
        assert!(out["reasons"].is_array());
        // The CLI cannot present a verified approval, so approved vectors are decided
        // as if unapproved; all others must match.
        if !v.approved {
            assert_eq!(
                out["decision"],
                v.expected.as_str(),
                "line {}: {out}",
                v.line
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_an_unreachable_server() {
    let out = tokio::task::spawn_blocking(|| {
        Command::new(BIN)
            .args(["check", "--server", "http://127.0.0.1:9"])
            .arg(vectors_path())
            .output()
            .expect("runs")
    })
    .await
    .expect("joins");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the Arbiter server at http://127.0.0.1:9"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_names_the_file_and_line_of_bad_input() {
    let server = TestServer::start(&[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("requests.jsonl");
    let good = std::fs::read_to_string(vectors_path())
        .expect("vectors")
        .lines()
        .next()
        .expect("line")
        .to_string();
    std::fs::write(&input, format!("{good}\n{{\"principal\": 1}}\n{good}\n")).expect("write");
    let url = server.url.clone();
    let input2 = input.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["check", "--server", &url])
            .arg(&input2)
            .output()
            .expect("runs")
    })
    .await
    .expect("joins");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:2: not a valid request", input.display())),
        "{err}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        2,
        "the good lines are still decided"
    );
}

#[test]
fn test_command_passes_every_vector_for_both_reference_sets() {
    for set in ["builtin:reference", "builtin:reference-split"] {
        let out = Command::new(BIN)
            .args(["test", "--policy-set", set])
            .arg(vectors_path())
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{set}: {stdout}");
        assert_eq!(
            stdout.lines().last(),
            Some("2000 passed, 0 failed"),
            "{set}"
        );
    }
}

#[test]
fn test_command_reports_mismatches_and_fails() {
    // One plugin of the split set alone does not implement the whole policy.
    let plugin = arbiter_plugin_build::plugin("team-access");
    let out = Command::new(BIN)
        .args(["test", "--plugin"])
        .arg(&plugin)
        .arg(vectors_path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL 4 (line 5): expected deny, got allow") || stdout.contains("FAIL "),
        "{stdout}"
    );
    let last = stdout.lines().last().expect("summary");
    assert!(
        last.ends_with(" failed") && !last.ends_with(" 0 failed"),
        "{last}"
    );
}

/// `arbiter test --pipeline`: the vectors through the server's whole pipeline. Held
/// requests marked approved are approved by as many test approvers as the set asks
/// for, then redeemed; a weakened set still fails.
#[test]
fn test_command_runs_vectors_through_the_pipeline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let two = two_approver_set(dir.path());
    let run = |set: &str| {
        let out = Command::new(BIN)
            .args(["test", "--pipeline", "--policy-set", set])
            .arg(vectors_path())
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    for set in [
        "builtin:reference",
        "builtin:reference-split",
        two.to_str().expect("utf-8"),
    ] {
        let (code, stdout) = run(set);
        assert_eq!(code, Some(0), "{set}: {stdout}");
        assert_eq!(
            stdout.lines().last(),
            Some("2000 passed, 0 failed"),
            "{set}"
        );
    }
    let (code, stdout) = run("builtin:reference-weakened");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("FAIL "), "{stdout}");

    // Test-case files are not vectors.
    let cases = dir.path().join("cases.toml");
    std::fs::write(&cases, "[[case]]\nname = \"x\"\nexpect = \"deny\"\n").expect("write");
    let out = Command::new(BIN)
        .args(["test", "--pipeline"])
        .arg(&cases)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--pipeline") && err.contains("hint:"), "{err}");
}
