//! Embeds the reference policy sets, built from `plugins/`, so that `arbiter serve`
//! with no arguments serves the reference policy.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The embedded sets: name, and the plugin crates whose components it holds.
const SETS: &[(&str, &[&str])] = &[
    ("reference", &["reference"]),
    ("reference-weakened", &["reference"]),
    (
        "reference-split",
        &[
            "risk-guard",
            "prod-guard",
            "delegation-guard",
            "team-access",
            "identity-gate",
        ],
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let root = arbiter_plugin_build::repo_root();
    embedded_sets(&root, &out)
}

fn embedded_sets(root: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    for watched in [
        "wit",
        "plugins/sdk",
        "plugins/rust",
        "plugins/sets",
        "plugins/Cargo.toml",
        "plugins/Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let crates: Vec<&str> = SETS.iter().flat_map(|(_, c)| c.iter().copied()).collect();
    let wasm_dir = arbiter_plugin_build::build(&crates)?;
    let mut code = String::from(
        "/// Policy sets compiled into the binary.\npub const SETS: &[EmbeddedSet] = &[\n",
    );
    for (name, plugins) in SETS {
        let manifest = root.join("plugins/sets").join(name).join("policy-set.toml");
        writeln!(
            code,
            "    EmbeddedSet {{\n        name: {name:?},\n        manifest: include_str!({:?}),\n        files: &[",
            manifest.display().to_string()
        )?;
        for krate in *plugins {
            let file = format!("{}.wasm", krate.replace('-', "_"));
            let path = wasm_dir.join(&file);
            writeln!(
                code,
                "            ({file:?}, include_bytes!({:?})),",
                path.display().to_string()
            )?;
        }
        code.push_str("        ],\n    },\n");
    }
    code.push_str("];\n");
    std::fs::write(out.join("embedded_sets.rs"), code)?;
    Ok(())
}
