//! Embeds the reference policy sets, built from `plugins/`, so that `arbiter serve`
//! with no arguments serves the reference policy, the AuthZEN interop and
//! certification sets with the data files their manifests list, and the MCP gateway's
//! example set. Their plugins are built without WASI (`build_lean`): none calls it,
//! and a component that imports nothing is cheaper to instantiate fresh.

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
    ("authzen-todo", &["authzen-todo"]),
    ("authzen-gateway", &["authzen-gateway"]),
    ("authzen-certification", &["authzen-certification"]),
    ("mcp-example", &["mcp-example"]),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let root = arbiter_plugin_build::repo_root();
    embedded_sets(&root, &out)
}

fn embedded_sets(root: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    // `plugins/sets` covers the manifests and the data files embedded beside them.
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
    let wasm_dir = arbiter_plugin_build::build_lean(&crates)?;
    let mut code = String::from(
        "/// Policy sets compiled into the binary.\npub const SETS: &[EmbeddedSet] = &[\n",
    );
    for (name, plugins) in SETS {
        let dir = root.join("plugins/sets").join(name);
        let manifest = dir.join("policy-set.toml");
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
        let text = std::fs::read_to_string(&manifest)
            .map_err(|e| format!("{}: {e}", manifest.display()))?;
        for file in data_files(&text).map_err(|e| format!("{}: {e}", manifest.display()))? {
            let path = dir.join(&file);
            if !path.is_file() {
                return Err(
                    format!("{}: data file `{file}` is missing", manifest.display()).into(),
                );
            }
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

/// The `data` entries of a manifest, as the host names them (`./a.json` is `a.json`).
///
/// The build script has no TOML parser (its one dependency builds the plugins), so this
/// reads the form the embedded manifests use: a top-level `data = ["a.json", ...]`, on
/// one line or several, before the first table. Anything else fails the build, and the
/// host's own parser checks the manifest again when the set loads.
fn data_files(manifest: &str) -> Result<Vec<String>, String> {
    let top_level = manifest
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .take_while(|l| !l.starts_with('['));
    let mut value = None::<String>;
    for line in top_level {
        match &mut value {
            Some(v) if !v.contains(']') => v.push_str(line),
            Some(_) => break,
            None => {
                if let Some((key, rest)) = line.split_once('=')
                    && key.trim() == "data"
                {
                    value = Some(rest.trim().to_string());
                }
            }
        }
    }
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let list = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .ok_or("`data` must be a list of file names written `data = [\"a.json\", ...]`")?;
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let name = item
                .strip_prefix('"')
                .and_then(|i| i.strip_suffix('"'))
                .ok_or_else(|| format!("`data` entry {item} must be a string in double quotes"))?;
            let parts: Vec<&str> = name
                .split('/')
                .filter(|p| !p.is_empty() && *p != ".")
                .collect();
            if parts.is_empty() || parts.contains(&"..") || name.starts_with('/') {
                return Err(format!("`data` entry `{name}` must be a relative path"));
            }
            Ok(parts.join("/"))
        })
        .collect()
}
