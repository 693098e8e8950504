//! No verdict is accepted from a plugin that broke a limit: each fixture below breaks
//! one and then answers `allow`, and every answer must be a deny with the matching
//! failure kind, one at a time and under concurrent load.

#![allow(
    clippy::expect_used,
    reason = "test code: a failed expectation is the test failing"
)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arbiter_core::{FailureKind, Limits, Outcome, PluginOutcome};
use arbiter_runtime::{PolicySet, Runtime, SetSource};
use common::*;

/// Evaluations in the concurrent runs, and how many are in flight at once.
const LOAD_EVALUATIONS: usize = 320;
const IN_FLIGHT: usize = 16;

/// Asserts that every one of `n` decisions, `in_flight` at a time, is a deny whose
/// plugin failed with `kind`; returns how many there were.
async fn all_denied(set: Arc<PolicySet>, kind: FailureKind, n: usize, in_flight: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..in_flight {
        let (set, next) = (set.clone(), next.clone());
        tasks.spawn(async move {
            let mut kinds = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                let d = set.decide(&plain(false), false).await;
                let got = match &d.plugins[0].outcome {
                    PluginOutcome::Failed(f) => Some(f.kind),
                    PluginOutcome::Verdict(v) => {
                        panic!("a verdict was accepted from a plugin that broke a limit: {v:?}")
                    }
                };
                kinds.push((d.outcome, got));
            }
            kinds
        });
    }
    let mut seen = 0;
    while let Some(kinds) = tasks.join_next().await {
        for (outcome, got) in kinds.expect("task") {
            assert_eq!(outcome, Outcome::Deny);
            assert_eq!(got, Some(kind));
            seen += 1;
        }
    }
    assert_eq!(seen, n, "every evaluation answered");
}

/// The set under test, with quarantine off (a very high threshold) so that every
/// evaluation really runs the plugin, as the hostile suite that found these ran it.
async fn breaking(rt: &Runtime, behaviour: &str, limits: &str) -> Arc<PolicySet> {
    let limits = format!("limits = {{ quarantine_after = 1000000{limits} }}");
    Arc::new(misbehaving(rt, behaviour, &limits).await)
}

async fn sequential_then_loaded(set: Arc<PolicySet>, kind: FailureKind) {
    for _ in 0..5 {
        all_denied(set.clone(), kind, 1, 1).await;
    }
    all_denied(set, kind, LOAD_EVALUATIONS, IN_FLIGHT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_after_a_refused_memory_grow_is_memory_limit() {
    let rt = runtime();
    let set = breaking(&rt, "grow-then-allow", ", memory_mib = 16").await;
    sequential_then_loaded(set, FailureKind::MemoryLimit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_after_catching_a_refused_allocation_is_memory_limit() {
    let rt = runtime();
    let set = breaking(&rt, "grow-catch-allow", ", memory_mib = 16").await;
    sequential_then_loaded(set, FailureKind::MemoryLimit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_a_little_past_the_deadline_is_timeout() {
    let rt = runtime();
    // Busy for 30 ms against a 20 ms deadline, then allow.
    let settings = "limits = { quarantine_after = 1000000, deadline_ms = 20 }\n[plugins.settings]\nbehaviour = \"slow\"\nslow_ms = 30";
    let set = Arc::new(
        set_of(&rt, "", &[("misbehave", "misbehave", settings)])
            .await
            .expect("loads"),
    );
    sequential_then_loaded(set, FailureKind::Timeout).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_after_a_refused_table_grow_is_table_limit() {
    let rt = runtime();
    let mut files = BTreeMap::new();
    files.insert(
        "table-grow.wasm".to_string(),
        arbiter_plugin_build::wat_component("table-grow").expect("the fixture builds"),
    );
    let manifest = "format = 1\nname = \"test\"\nversion = \"1\"\n\n[[plugins]]\nname = \"table-grow\"\npath = \"table-grow.wasm\"\nlimits = { quarantine_after = 1000000 }\n";
    let set = PolicySet::load(
        &rt,
        SetSource::Files {
            origin: "test".into(),
            manifest: manifest.into(),
            files,
        },
        Limits::default(),
    )
    .await
    .expect("the table-grow fixture loads");
    sequential_then_loaded(Arc::new(set), FailureKind::TableLimit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quarantined_plugin_is_retried_by_itself_and_recovers() {
    let rt = runtime();
    // `count` traps when the request's context says `fail = true`, allows otherwise.
    let set = misbehaving(&rt, "count", "limits = { quarantine_after = 2 }").await;
    let failing = request(
        r#"{"principal":{"id":"spiffe://t/agent/a","kind":"agent"},
            "action":{"name":"db:Query","privilege":"read"},"context":{"fail":true}}"#,
    );
    for _ in 0..2 {
        let d = set.decide(&failing, false).await;
        assert_eq!(d.outcome, Outcome::Deny);
    }
    let status = set.plugin_status();
    let q = status[0].quarantine.clone().expect("quarantined");
    assert!(q.cause.starts_with("trap"), "{q:?}");
    assert_eq!(q.times, 1);
    // Open: a good request is refused without running.
    let d = set.decide(&plain(false), false).await;
    assert!(
        matches!(&d.plugins[0].outcome, PluginOutcome::Failed(f) if f.kind == FailureKind::Quarantined)
    );
    // After the back-off, the next request is the trial; it succeeds and closes it.
    tokio::time::sleep(arbiter_runtime::FIRST_BACKOFF + Duration::from_millis(50)).await;
    let d = set.decide(&plain(false), false).await;
    assert_eq!(d.outcome, Outcome::Allow, "{d:?}");
    assert!(set.plugin_status()[0].quarantine.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn one_callers_crafted_inputs_cannot_quarantine_a_plugin_for_everyone() {
    let rt = runtime();
    let set = misbehaving(&rt, "count", "limits = { quarantine_after = 2 }").await;
    let failing = request(
        r#"{"principal":{"id":"spiffe://t/agent/a","kind":"agent"},
            "action":{"name":"db:Query","privilege":"read"},"context":{"fail":true}}"#,
    );
    // However often one caller makes it trap, it keeps running for everyone.
    for _ in 0..10 {
        let d = set.decide_as(&failing, false, "mallory").await;
        assert!(
            matches!(&d.plugins[0].outcome, PluginOutcome::Failed(f) if f.kind == FailureKind::Trap),
            "{d:?}"
        );
    }
    assert!(set.plugin_status()[0].quarantine.is_none());
    let d = set.decide_as(&plain(false), false, "alice").await;
    assert_eq!(d.outcome, Outcome::Allow, "others are still served");
    // Failures in a row from two callers: broken for everyone, and the operator sees
    // who it failed for.
    set.decide_as(&failing, false, "mallory").await;
    set.decide_as(&failing, false, "bob").await;
    let q = set.plugin_status()[0]
        .quarantine
        .clone()
        .expect("quarantined");
    assert!(
        q.cause.contains("mallory") && q.cause.contains("bob"),
        "{q:?}"
    );
}
