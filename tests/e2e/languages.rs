//! Cross-language conformance: the reference policy written in Rust, Python,
//! JavaScript and C returns the expected decision on every public vector, and all four
//! agree with each other on every vector: decision, reason codes and obligations.
//! The plugins are built from source here by `scripts/build-plugins`, which installs
//! each language's pinned toolchain into `.toolchains/` the first time.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::OnceLock;

use arbiter_core::Limits;
use arbiter_runtime::{PolicySet, Runtime, RuntimeConfig, SetSource};

use crate::support::*;

const LANGUAGES: [&str; 4] = ["rust", "python", "js", "c"];

fn build_all() -> &'static std::path::Path {
    static BUILT: OnceLock<std::path::PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = arbiter_plugin_build::repo_root();
        let out = Command::new(root.join("scripts/build-plugins"))
            .args(LANGUAGES)
            .output()
            .expect("scripts/build-plugins runs");
        assert!(
            out.status.success(),
            "scripts/build-plugins failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        root.join("target/plugins")
    })
}

/// One language's answer to one vector: decision, reason codes, obligations.
type Answer = (String, Vec<String>, String);

async fn answers(rt: &Runtime, language: &str) -> Vec<Answer> {
    let wasm = std::fs::read(build_all().join(format!("reference-{language}.wasm")))
        .expect("plugin built");
    // Interpreted runtimes get a generous deadline: this test is about agreement, and
    // the CI machine runs other tests beside it.
    let manifest = format!(
        "format = 1\nname = \"reference-{language}\"\nversion = \"1\"\n[[plugins]]\nname = \"reference\"\npath = \"p.wasm\"\nlimits = {{ deadline_ms = 2000 }}\n"
    );
    let set = PolicySet::load(
        rt,
        SetSource::Files {
            origin: language.into(),
            manifest,
            files: BTreeMap::from([("p.wasm".to_string(), wasm)]),
        },
        Limits::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{language}: {e}"));
    let mut out = Vec::new();
    for v in vectors() {
        let d = set.decide(&v.request, v.approved).await;
        assert_eq!(
            d.outcome, v.expected,
            "{language}, vector on line {}: {:?}",
            v.line, d.reasons
        );
        out.push((
            d.outcome.as_str().to_string(),
            d.reasons.iter().map(|r| r.code.clone()).collect(),
            format!("{:?}", d.obligations),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_language_passes_every_vector_and_all_agree() {
    let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let rust = answers(&rt, "rust").await;
    for language in &LANGUAGES[1..] {
        let other = answers(&rt, language).await;
        assert_eq!(other.len(), rust.len());
        for (i, (a, b)) in rust.iter().zip(&other).enumerate() {
            assert_eq!(
                a,
                b,
                "vector on line {}: rust and {language} disagree",
                i + 1
            );
        }
    }
}

/// The reference policy's named cases (`tests/vectors/reference.cases.toml`, every rule
/// with its reason code) pass for every language's plugin on its own, through the real
/// binary: decisions and reason codes.
#[test]
fn every_language_passes_the_reference_cases() {
    let root = arbiter_plugin_build::repo_root();
    let cases = root.join("tests/vectors/reference.cases.toml");
    let written = std::fs::read_to_string(&cases)
        .expect("the case file reads")
        .lines()
        .filter(|l| l.trim() == "[[case]]")
        .count();
    assert!(written >= 30, "{written} cases");
    for language in LANGUAGES {
        let out = Command::new(env!("CARGO_BIN_EXE_arbiter"))
            .args(["test", "--plugin"])
            .arg(build_all().join(format!("reference-{language}.wasm")))
            .arg(&cases)
            .output()
            .expect("arbiter test runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{language}: {text}");
        assert_eq!(
            text.lines().last(),
            Some(format!("{written} passed, 0 failed").as_str()),
            "{language}: {text}"
        );
    }
}

/// Builds the isolation probe of one language (plugins/fixtures/isolation and its twins
/// beside each language's reference plugin) and returns the component.
fn isolation_probe(language: &str) -> Vec<u8> {
    let root = arbiter_plugin_build::repo_root();
    if language == "rust" {
        let dir = arbiter_plugin_build::build(&["isolation"]).expect("the rust probe builds");
        return std::fs::read(dir.join("isolation.wasm")).expect("probe built");
    }
    let source = match language {
        "python" => "plugins/python/isolation/isolation_probe.py",
        "js" => "plugins/js/isolation/probe.js",
        "c" => "plugins/c/isolation/probe.c",
        other => panic!("no probe for {other}"),
    };
    let out = root.join(format!("target/plugins/isolation-{language}.wasm"));
    let built = Command::new(root.join(format!("plugins/{language}/build.sh")))
        .arg(&out)
        .arg(root.join(source))
        .output()
        .expect("the build script runs");
    assert!(
        built.status.success(),
        "{language} probe build failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    std::fs::read(&out).expect("probe built")
}

/// Loads a probe with `mark = "configured"` in the given instance mode.
async fn probe_set(rt: &Runtime, language: &str, wasm: Vec<u8>, instances: &str) -> PolicySet {
    let manifest = format!(
        "format = 1\nname = \"isolation-{language}\"\nversion = \"1\"\n[[plugins]]\nname = \"probe\"\npath = \"p.wasm\"\ninstances = \"{instances}\"\nlimits = {{ deadline_ms = 2000 }}\nsettings = {{ mark = \"configured\" }}\n"
    );
    PolicySet::load(
        rt,
        SetSource::Files {
            origin: format!("{language}-{instances}"),
            manifest,
            files: BTreeMap::from([("p.wasm".to_string(), wasm)]),
        },
        Limits::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{language}: {e}"))
}

/// What the probe said about the state it found.
async fn probe(set: &PolicySet, principal: &str) -> String {
    let mut request = vectors().remove(0).request;
    request.principal.id = principal.to_string();
    let d = set.decide(&request, false).await;
    let reason = d
        .reasons
        .iter()
        .find(|r| r.code == "probe")
        .unwrap_or_else(|| panic!("no probe reason: {:?}", d.reasons));
    reason.caller_message.clone()
}

/// Fresh instances start from the configured snapshot, in every language: a plugin
/// that writes globals on each evaluation finds, on the next one, what `configure` set
/// and nothing of the previous request. The pooled control shows the probe does see
/// state that survives, so the fresh assertions could fail.
#[tokio::test(flavor = "multi_thread")]
async fn fresh_instances_start_configured_in_every_language() {
    let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
    for language in LANGUAGES {
        let wasm = isolation_probe(language);
        let fresh = probe_set(&rt, language, wasm.clone(), "fresh").await;
        // componentize-qjs nests components, which Wizer 48 cannot instrument: the
        // JavaScript probe runs `configure` in every fresh instance instead, and must be
        // just as isolated.
        assert_eq!(
            fresh.plugin_status()[0].preinitialised,
            language != "js",
            "{language}: which languages start from their configured snapshot"
        );
        for who in ["alice", "bob", "carol"] {
            assert_eq!(
                probe(&fresh, who).await,
                format!("mark=configured count=1 seen={who},"),
                "{language}: a fresh instance saw another request's state"
            );
        }
        let pooled = probe_set(&rt, language, wasm, "pooled").await;
        assert_eq!(
            probe(&pooled, "alice").await,
            "mark=configured count=1 seen=alice,"
        );
        assert_eq!(
            probe(&pooled, "bob").await,
            "mark=configured count=2 seen=alice,bob,",
            "{language}: the pooled control should keep its state"
        );
    }
}
