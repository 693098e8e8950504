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
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| std::ffi::OsString::from(v))
        }
    };
    let root = |pairs| Toolchains::locate_with(env(pairs)).map(|t| t.root().to_path_buf());
    let all = &[
        ("ARBITER_TOOLCHAINS", "/t"),
        ("XDG_CACHE_HOME", "/x"),
        ("HOME", "/h"),
    ];
    assert_eq!(root(all).expect("set"), Path::new("/t"));
    assert_eq!(
        root(&[
            ("ARBITER_TOOLCHAINS", ""),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h")
        ])
        .expect("set"),
        Path::new("/x/arbiter/toolchains")
    );
    assert_eq!(
        root(&[("HOME", "/h")]).expect("set"),
        Path::new("/h/.cache/arbiter/toolchains")
    );
    let err = root(&[]).expect_err("nowhere");
    assert!(err.to_string().contains("ARBITER_TOOLCHAINS"), "{err}");
}
