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
