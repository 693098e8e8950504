//! The kit's pins are the repository's: `arbiter build` and `plugins/*/build.sh`
//! install the same toolchains into the same layout.

use super::*;

fn repo_file(path: &str) -> String {
    let root = arbiter_plugin_build::repo_root();
    std::fs::read_to_string(root.join(path)).expect(path)
}

#[test]
fn pins_match_the_repository_build_scripts() {
    let c = repo_file("plugins/c/build.sh");
    assert!(
        c.contains(&format!("ZIGLANG_VERSION={ZIGLANG}\n")),
        "ziglang"
    );
    assert!(
        c.contains(&format!("WASM_TOOLS_VERSION={WASM_TOOLS}\n")),
        "wasm-tools"
    );
    assert!(
        c.contains(&format!("WIT_BINDGEN_VERSION={WIT_BINDGEN_CLI}\n")),
        "wit-bindgen-cli"
    );
    let py = repo_file("plugins/python/build.sh");
    assert!(
        py.contains(&format!("COMPONENTIZE_PY_VERSION={COMPONENTIZE_PY}\n")),
        "componentize-py"
    );
    let plugins = repo_file("plugins/Cargo.toml");
    assert!(
        plugins.contains(&format!(
            "wit-bindgen = {{ version = \"={WIT_BINDGEN_CRATE}\""
        )),
        "wit-bindgen crate"
    );
    let toolchain = repo_file("rust-toolchain.toml");
    assert!(
        toolchain.contains(&format!("channel = \"{RUST_CHANNEL}\"")),
        "rust channel"
    );
    let js = repo_file("plugins/js/build.sh");
    assert!(
        js.contains(&format!("[ \"$node_major\" -ge {NODE_MAJOR_MIN} ]")),
        "node"
    );
}

#[test]
fn the_toolchain_root_follows_the_environment_order() {
    // Only `at` is tested here: `locate` reads the process environment, which tests
    // share; the e2e tests run the binary with a chosen environment.
    let t = Toolchains::at("/tmp/x");
    assert_eq!(t.root(), Path::new("/tmp/x"));
}
