//! `builtin:mcp-example`, the MCP gateway's example set, through the real binary: its
//! test cases (`tests/vectors/mcp-example.cases.toml`, one or more per rule) with
//! `arbiter test`, and held writes through the server's whole approval pipeline.

use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_arbiter");

const SET: &str = "builtin:mcp-example";

fn cases() -> PathBuf {
    arbiter_plugin_build::repo_root().join("tests/vectors/mcp-example.cases.toml")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_mcp_example_cases_pass_against_the_builtin_set() {
    let file = cases();
    let written = std::fs::read_to_string(&file)
        .expect("the case file reads")
        .lines()
        .filter(|l| l.trim() == "[[case]]")
        .count();
    assert!(written >= 20, "{written} cases");
    let out = Command::new(BIN)
        .args(["test", "-v", "--policy-set", SET])
        .arg(&file)
        .output()
        .expect("runs");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let ok = text.lines().filter(|l| l.starts_with("ok   ")).count();
    assert_eq!(ok, written, "{text}");
    assert_eq!(
        text.lines().last(),
        Some(format!("{written} passed, 0 failed").as_str()),
        "{text}"
    );
}

/// Vectors for the pipeline: tool, privilege, path, approved, expected decision.
const PIPELINE: [(&str, &str, &str, bool, &str); 5] = [
    ("edit_file", "write", "/ws/src/main.rs", true, "allow"),
    (
        "edit_file",
        "write",
        "/ws/src/main.rs",
        false,
        "require-approval",
    ),
    ("write_file", "write", "/ws/scratch/out.txt", false, "allow"),
    ("write_file", "write", "/home/alice/.bashrc", true, "deny"),
    ("read_text_file", "read", "/ws/.env", true, "deny"),
];

/// One JSON-lines vector: a `tools/call` by an agent for alice, in workspace `/ws` with
/// scratch folder `/ws/scratch`.
fn vector(
    id: usize,
    (tool, privilege, path, approved, expected): (&str, &str, &str, bool, &str),
) -> String {
    serde_json::json!({
        "id": id,
        "request": {
            "principal": { "id": "claude-code", "kind": "agent" },
            "delegation": [{ "id": "alice@example.com", "kind": "human" }],
            "action": {
                "name": tool,
                "privilege": privilege,
                "attributes": { "mcp_method": "tools/call", "tool": tool },
            },
            "resource": { "id": path, "kind": "file" },
            "context": {
                "workspace": "/ws",
                "scratch": "/ws/scratch",
                "agent": "claude-code",
                "mcp_server": "filesystem",
            },
        },
        "approved": approved,
        "expected": expected,
    })
    .to_string()
}

/// A write the set holds becomes an allow once the approvers the set asks for approve
/// it and the request is re-submitted; an approval never opens a denied path.
#[test]
fn the_mcp_example_set_holds_writes_until_approved_through_the_pipeline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mcp-example.jsonl");
    let lines: Vec<String> = PIPELINE
        .into_iter()
        .enumerate()
        .map(|(i, v)| vector(i + 1, v))
        .collect();
    std::fs::write(&file, lines.join("\n") + "\n").expect("write");
    let out = Command::new(BIN)
        .args(["test", "-v", "--pipeline", "--policy-set", SET])
        .arg(&file)
        .output()
        .expect("runs");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let summary = format!("{} passed, 0 failed", PIPELINE.len());
    assert_eq!(text.lines().last(), Some(summary.as_str()), "{text}");
}
