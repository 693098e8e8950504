//! The sandbox contains misbehaving plugins: each failure is a classified deny, and
//! the next evaluation of the same plugin works.

mod common;

use arbiter_core::{FailureKind, Outcome, PluginOutcome};
use common::*;

async fn assert_contained(behaviour: &str, extra: &str, kind: FailureKind) {
    let rt = runtime();
    let set = misbehaving(&rt, behaviour, extra).await;
    let d = set.decide(&plain(false), false).await;
    assert_eq!(d.outcome, Outcome::Deny, "{behaviour}: {d:?}");
    assert_eq!(d.reasons[0].code, "plugin-failure");
    match &d.plugins[0].outcome {
        PluginOutcome::Failed(f) => assert_eq!(f.kind, kind, "{behaviour}: {}", f.detail),
        other => panic!("{behaviour}: expected a failure, got {other:?}"),
    }
    // The same plugin, next evaluation, fresh instance: works.
    let after = set.decide(&plain(true), false).await;
    assert_eq!(
        after.outcome,
        Outcome::Allow,
        "{behaviour} after failure: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deadline_exceeded_is_timeout() {
    assert_contained(
        "loop",
        "limits = { deadline_ms = 30 }",
        FailureKind::Timeout,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_growth_past_limit_is_memory_limit() {
    assert_contained(
        "grow-memory",
        "limits = { memory_mib = 16 }",
        FailureKind::MemoryLimit,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn trap_is_reported_not_propagated() {
    assert_contained("trap", "", FailureKind::Trap).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runaway_recursion_is_stack_overflow() {
    assert_contained("stack-overflow", "", FailureKind::StackOverflow).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_reasons_are_refused_as_bad_output() {
    assert_contained("many-reasons", "", FailureKind::BadOutput).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_reason_is_refused_as_bad_output() {
    assert_contained(
        "huge-reason",
        "limits = { memory_mib = 64 }",
        FailureKind::BadOutput,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn log_flood_hits_the_host_call_limit() {
    assert_contained("log-flood", "", FailureKind::HostCallLimit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn filesystem_environment_network_and_stdin_are_denied() {
    let rt = runtime();
    let set = misbehaving(&rt, "probe-sandbox", "").await;
    let d = set.decide(&plain(false), false).await;
    let PluginOutcome::Verdict(v) = &d.plugins[0].outcome else {
        panic!("probe failed: {d:?}");
    };
    let mut codes: Vec<&str> = v.reasons.iter().map(|r| r.code.as_str()).collect();
    codes.sort_unstable();
    assert_eq!(
        codes,
        [
            "args-denied",
            "dir-denied",
            "env-denied",
            "fs-denied",
            "net-denied",
            "stdin-denied"
        ],
        "{:?}",
        v.reasons
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stdout_flood_is_capped_not_fatal() {
    let rt = runtime();
    let set = misbehaving(&rt, "print-flood", "limits = { deadline_ms = 5000 }").await;
    let d = set.decide(&plain(false), false).await;
    assert_eq!(d.outcome, Outcome::Allow, "{d:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn data_files_are_readable_and_only_those() {
    let rt = runtime();
    let set = misbehaving(&rt, "read-data", "").await;
    let d = set.decide(&plain(false), false).await;
    assert_eq!(d.outcome, Outcome::Deny);
    assert_eq!(d.reasons[0].code, "data-missing");
}

#[tokio::test(flavor = "multi_thread")]
async fn advisory_plugin_failure_abstains() {
    let rt = runtime();
    let set = set_of(
        &rt,
        "",
        &[
            (
                "broken",
                "misbehave",
                "on_error = \"abstain\"\n[plugins.settings]\nbehaviour = \"trap\"",
            ),
            ("ok", "misbehave", ""),
        ],
    )
    .await
    .expect("loads");
    let d = set.decide(&plain(false), false).await;
    assert_eq!(d.outcome, Outcome::Allow, "{d:?}");
    assert!(matches!(d.plugins[0].outcome, PluginOutcome::Failed(_)));
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_refused_by_configure_refuse_the_load() {
    let rt = runtime();
    let err = set_of(
        &rt,
        "",
        &[(
            "m",
            "misbehave",
            "[plugins.settings]\nbehaviour = \"dance\"",
        )],
    )
    .await
    .expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("refused its settings") && msg.contains("unknown behaviour `dance`"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_mismatch_refuses_the_load() {
    let rt = runtime();
    let pin = format!("sha256 = \"{}\"", "ab".repeat(32));
    let err = set_of(&rt, "", &[("m", "misbehave", &pin)])
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains("but the manifest pins abab"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn core_modules_and_garbage_are_refused_with_what_they_are() {
    use std::collections::BTreeMap;

    use arbiter_runtime::{PolicySet, SetSource};
    let rt = runtime();
    let manifest =
        "format = 1\nname = \"t\"\nversion = \"1\"\n[[plugins]]\nname = \"p\"\npath = \"p.wasm\"\n";
    for (bytes, needle) in [
        (b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module"),
        (b"hello world, not wasm".to_vec(), "wrong header"),
        (b"\0asm\x0d\0\x01\0\x01\x05".to_vec(), "does not compile"),
    ] {
        let files = BTreeMap::from([("p.wasm".to_string(), bytes)]);
        let err = PolicySet::load(
            &rt,
            SetSource::Files {
                origin: "t".into(),
                manifest: manifest.into(),
                files,
            },
            arbiter_core::Limits::default(),
        )
        .await
        .expect_err("refused");
        assert!(err.to_string().contains(needle), "{err}");
    }
}
