//! The sandbox contains misbehaving plugins: each failure is a classified deny, and
//! the next evaluation of the same plugin works.

#![allow(
    clippy::expect_used,
    reason = "test code: a failed expectation is the test failing"
)]

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
async fn a_100_mib_reason_is_refused_as_bad_output() {
    let rt = runtime();
    let set = set_of(
        &rt,
        "",
        &[(
            "huge",
            "misbehave",
            "limits = { memory_mib = 512, deadline_ms = 5000 }\n[plugins.settings]\nbehaviour = \"huge-reason\"\nhuge_mib = 100",
        )],
    )
    .await
    .expect("loads");
    let d = set.decide(&plain(false), false).await;
    match &d.plugins[0].outcome {
        PluginOutcome::Failed(f) => assert_eq!(f.kind, FailureKind::BadOutput, "{}", f.detail),
        other => panic!("{other:?}"),
    }
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

#[tokio::test(flavor = "multi_thread")]
async fn sleeping_in_a_host_call_is_timeout() {
    assert_contained(
        "sleep",
        "limits = { deadline_ms = 50 }",
        FailureKind::Timeout,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_is_a_trap_not_a_process_exit() {
    assert_contained("exit", "", FailureKind::Trap).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_quarantine_the_plugin_until_released() {
    let rt = runtime();
    let set = set_of(
        &rt,
        "",
        &[
            (
                "flaky",
                "misbehave",
                "limits = { quarantine_after = 3 }\n[plugins.settings]\nbehaviour = \"trap\"",
            ),
            ("steady", "misbehave", ""),
        ],
    )
    .await
    .expect("loads");
    let kind = |d: &arbiter_core::Decision, i: usize| match &d.plugins[i].outcome {
        PluginOutcome::Failed(f) => Some(f.kind),
        PluginOutcome::Verdict(_) => None,
    };
    for _ in 0..3 {
        let d = set.decide(&plain(false), false).await;
        assert_eq!(kind(&d, 0), Some(FailureKind::Trap));
        assert_eq!(kind(&d, 1), None, "the other plugin is unaffected");
    }
    // Now quarantined: it does not run, even for a request it would allow.
    let d = set.decide(&plain(true), false).await;
    assert_eq!(d.outcome, Outcome::Deny);
    assert_eq!(kind(&d, 0), Some(FailureKind::Quarantined));
    assert_eq!(kind(&d, 1), None);
    let status = set.plugin_status();
    assert!(
        status[0].quarantined && !status[1].quarantined,
        "{status:?}"
    );
    assert_eq!(status[0].failures, 4);

    assert_eq!(set.release("flaky"), Some(true));
    assert_eq!(set.release("nope"), None);
    let d = set.decide(&plain(true), false).await;
    assert_eq!(d.outcome, Outcome::Allow, "released: {d:?}");
    assert!(!set.plugin_status()[0].quarantined);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_set_does_not_affect_another_set() {
    let rt = runtime();
    let bad = misbehaving(&rt, "trap", "limits = { quarantine_after = 2 }").await;
    let good = misbehaving(&rt, "allow", "").await;
    for _ in 0..5 {
        assert_eq!(
            bad.decide(&plain(false), false).await.outcome,
            Outcome::Deny
        );
        assert_eq!(
            good.decide(&plain(false), false).await.outcome,
            Outcome::Allow
        );
    }
}

async fn load_error(krate: &str) -> String {
    let rt = runtime();
    set_of(&rt, "", &[("p", krate, "")])
        .await
        .expect_err("refused")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn importing_an_interface_the_host_lacks_is_refused_naming_it() {
    let e = load_error("extra-import").await;
    assert!(
        e.contains("does not fit") && e.contains("arbiter:policy/secrets@0.1.0"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn another_contract_version_is_refused_naming_it() {
    let e = load_error("wrong-version").await;
    assert!(e.contains("does not fit") && e.contains("0.2.0"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_component_is_refused() {
    use std::collections::BTreeMap;

    use arbiter_runtime::{PolicySet, SetSource};
    let rt = runtime();
    let bytes = std::fs::read(arbiter_plugin_build::plugin("reference")).expect("built");
    let manifest =
        "format = 1\nname = \"t\"\nversion = \"1\"\n[[plugins]]\nname = \"p\"\npath = \"p.wasm\"\n";
    let files = BTreeMap::from([("p.wasm".to_string(), bytes[..bytes.len() / 2].to_vec())]);
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
    assert!(err.to_string().contains("does not compile"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn compiled_components_are_cached_by_digest_and_engine() {
    use arbiter_runtime::{Runtime, RuntimeConfig};
    let dir = tempfile::tempdir().expect("tempdir");
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().join("cache")),
        ..RuntimeConfig::default()
    };
    let first = Runtime::new(config.clone()).expect("runtime");
    let cold = set_of(&first, "", &[("reference", "reference", "")])
        .await
        .expect("loads");
    assert!(!cold.plugin_status()[0].cache_hit);
    let entries: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
        .expect("cache dir")
        .collect();
    assert_eq!(entries.len(), 1, "one compiled component");
    // A new runtime (a restarted server) loads the compiled form instead of compiling.
    let second = Runtime::new(config).expect("runtime");
    let warm = set_of(&second, "", &[("reference", "reference", "")])
        .await
        .expect("loads");
    assert!(warm.plugin_status()[0].cache_hit);
    let r = plain(true);
    assert_eq!(
        cold.decide(&r, false).await.outcome,
        warm.decide(&r, false).await.outcome
    );
    // An entry other users may write is not loaded: it would run as native code.
    let entry = entries[0].as_ref().expect("entry").path();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let shared = Runtime::new(RuntimeConfig {
            cache_dir: Some(dir.path().join("cache")),
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        let recompiled = set_of(&shared, "", &[("reference", "reference", "")])
            .await
            .expect("loads by compiling");
        assert!(
            !recompiled.plugin_status()[0].cache_hit,
            "a world-writable entry is not trusted"
        );
        let mode = std::fs::metadata(&entry)
            .expect("rewritten")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o022,
            0,
            "and it was replaced by a private one: {mode:o}"
        );
    }
    // A corrupt entry is ignored and replaced, never trusted.
    std::fs::write(&entry, b"garbage").expect("corrupt");
    let third = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().join("cache")),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let again = set_of(&third, "", &[("reference", "reference", "")])
        .await
        .expect("loads despite a corrupt cache entry");
    assert!(!again.plugin_status()[0].cache_hit);
}

fn served(d: &arbiter_core::Decision) -> String {
    match &d.plugins[0].outcome {
        PluginOutcome::Verdict(v) => v.reasons[0].code.clone(),
        PluginOutcome::Failed(f) => format!("failed {}", f.kind),
    }
}

fn counting(fail: bool) -> arbiter_core::Request {
    request(&format!(
        r#"{{"principal":{{"id":"spiffe://t/agent/a","kind":"agent"}},"action":{{"name":"a","privilege":"read"}},"context":{{"fail":{fail}}}}}"#
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn fresh_instances_share_nothing() {
    let rt = runtime();
    let set = misbehaving(&rt, "count", "").await;
    for _ in 0..3 {
        assert_eq!(
            served(&set.decide(&counting(false), false).await),
            "served-1"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pooled_instances_are_reused_recycled_and_discarded_on_failure() {
    let rt = runtime();
    let set = misbehaving(&rt, "count", "instances = \"pooled\"\nrecycle_after = 3").await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(served(&set.decide(&counting(false), false).await));
    }
    // Reused twice, then recycled after its third evaluation.
    assert_eq!(seen, ["served-1", "served-2", "served-3", "served-1"]);
    assert_eq!(
        served(&set.decide(&counting(true), false).await),
        "failed trap"
    );
    // The failed instance was dropped: the next one is new.
    assert_eq!(
        served(&set.decide(&counting(false), false).await),
        "served-1"
    );
}
