//! The Rust reference plugins, as one plugin and as a five-plugin set, decide every
//! public vector as expected.

#![allow(
    clippy::expect_used,
    reason = "test code: a failed expectation is the test failing"
)]

mod common;

use arbiter_core::{Outcome, Request};
use common::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Vector {
    id: u64,
    request: Request,
    approved: bool,
    expected: String,
}

fn vectors() -> Vec<Vector> {
    let path = arbiter_plugin_build::repo_root().join("tests/vectors/reference-public.jsonl");
    std::fs::read_to_string(&path)
        .expect("vectors file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("vector parses"))
        .collect()
}

async fn check(plugins: &[(&str, &str, &str)]) {
    let rt = runtime();
    let set = set_of(&rt, "", plugins).await.expect("set loads");
    let vectors = vectors();
    assert_eq!(vectors.len(), 2000);
    let mut failed = Vec::new();
    for v in &vectors {
        let d = set.decide(&v.request, v.approved).await;
        let expected = Outcome::parse(&v.expected).expect("known outcome");
        if d.outcome != expected {
            failed.push(format!(
                "#{}: expected {expected}, got {} {:?}",
                v.id, d.outcome, d.reasons
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} mismatches:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn single_plugin_reference_passes_every_vector() {
    check(&[("reference", "reference", "")]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn split_reference_passes_every_vector() {
    check(&[
        ("risk-guard", "risk-guard", ""),
        ("prod-guard", "prod-guard", ""),
        ("delegation-guard", "delegation-guard", ""),
        ("team-access", "team-access", ""),
        ("identity-gate", "identity-gate", ""),
    ])
    .await;
}
