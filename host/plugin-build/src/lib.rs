//! Builds the Rust guest plugins under `plugins/` into WebAssembly components.
//!
//! Used by the `arbiter` crate's build script (to embed the reference sets) and by
//! tests (for fixture plugins), so that a fresh clone needs nothing but
//! `rustup target add wasm32-wasip2` and cargo. The plugins live in their own cargo
//! workspace (`plugins/Cargo.toml`), so this runs a nested cargo with the host build's
//! environment scrubbed: flags meant for the host must not reach the wasm build.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest target.
pub const TARGET: &str = "wasm32-wasip2";

/// The target of the embedded sets' plugins: no WASI, so their components import
/// nothing but `arbiter:policy` (see [`build_lean`]).
pub const LEAN_TARGET: &str = "wasm32-unknown-unknown";

/// The repository root (this crate lives in `host/plugin-build`).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).unwrap_or(here).to_path_buf()
}

/// The plugins workspace.
pub fn plugins_dir() -> PathBuf {
    repo_root().join("plugins")
}

/// Where built components land (`plugins/.cargo/config.toml` sets the target dir).
pub fn output_dir() -> PathBuf {
    repo_root().join("target/wasm").join(TARGET).join("release")
}

/// Builds the given packages of the plugins workspace (all of them when empty) in
/// release mode and returns the directory holding the `.wasm` files. Cargo's own lock
/// serialises concurrent callers.
pub fn build(packages: &[&str]) -> Result<PathBuf, String> {
    cargo_build(TARGET, packages)?;
    Ok(output_dir())
}

/// Builds the given packages for [`LEAN_TARGET`] and wraps each core module as a
/// component (the WIT that `wit-bindgen` embedded says what it imports and exports),
/// into `target/wasm/lean/`, which it returns.
///
/// Why: a `wasm32-wasip2` build links Rust's standard library against WASI, so its
/// component imports thirteen WASI functions through three core instances (the module,
/// a shim and a fixup), all of which every fresh instance sets up again. Built with no
/// WASI, the component is one core instance importing nothing; a plugin that calls no
/// WASI (the embedded sets' plugins print nothing, read no clock) loses nothing.
/// Measured in docs/performance.md ("Fresh sandboxes").
pub fn build_lean(packages: &[&str]) -> Result<PathBuf, String> {
    cargo_build(LEAN_TARGET, packages)?;
    let built = repo_root()
        .join("target/wasm")
        .join(LEAN_TARGET)
        .join("release");
    let out = lean_dir();
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for p in packages {
        let file = format!("{}.wasm", p.replace('-', "_"));
        let module = std::fs::read(built.join(&file))
            .map_err(|e| format!("{}: {e}", built.join(&file).display()))?;
        let component = wit_component::ComponentEncoder::default()
            .module(&module)
            .and_then(|e| e.validate(true).encode())
            .map_err(|e| format!("wrapping {file} as a component: {e:#}"))?;
        let dest = out.join(&file);
        // Written only when changed, so that `include_bytes!` users rebuild only then.
        if std::fs::read(&dest).ok().as_deref() != Some(component.as_slice()) {
            std::fs::write(&dest, component).map_err(|e| format!("{}: {e}", dest.display()))?;
        }
    }
    Ok(out)
}

fn cargo_build(target: &str, packages: &[&str]) -> Result<(), String> {
    // The rustup proxy, not `$CARGO`: the guest build must use the toolchain pinned in
    // rust-toolchain.toml (which has the wasm target), even when the host is built by
    // another one (cargo-fuzz builds with nightly).
    let mut cmd = Command::new("cargo");
    cmd.current_dir(plugins_dir())
        .args(["build", "--release", "--target", target])
        .args([
            "--target-dir",
            &repo_root().join("target/wasm").display().to_string(),
        ]);
    if packages.is_empty() {
        cmd.arg("--workspace");
    }
    for p in packages {
        cmd.args(["-p", p]);
    }
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        let host_only = (k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_MAKEFLAGS")
            || matches!(
                k.as_ref(),
                "RUSTC"
                    | "RUSTUP_TOOLCHAIN"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTDOC"
                    | "RUSTFLAGS"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "OPT_LEVEL"
                    | "PROFILE"
                    | "DEBUG"
                    | "NUM_JOBS"
            );
        if host_only {
            cmd.env_remove(&key);
        }
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run cargo to build the plugins: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the plugins failed (is the target installed? run `rustup target add {target}`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Builds every plugin once per process and returns the output directory; panics with
/// cargo's message when the build fails. For tests.
pub fn built() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| match build(&[]) {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    })
}

/// The path of one built plugin, by crate name (`-` becomes `_` in file names).
pub fn plugin(name: &str) -> PathBuf {
    built().join(format!("{}.wasm", name.replace('-', "_")))
}

/// What a component is made of, for tests: its core modules (nested ones included) and
/// the names of its own (top-level) imports.
#[derive(Debug)]
pub struct Outline {
    /// Core modules, nested components' included.
    pub core_modules: usize,
    /// Names of the component's own imports (`arbiter:policy/types@0.1.0`, ...).
    pub imports: Vec<String>,
}

/// Reads a component's [`Outline`] without compiling it.
pub fn outline(component: &[u8]) -> Result<Outline, String> {
    let (mut core_modules, mut depth, mut imports) = (0, 0, Vec::new());
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload.map_err(|e| format!("the component does not parse: {e}"))? {
            // Each module or component, nested ones included, starts with its version
            // and ends with `End`.
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth -= 1,
            wasmparser::Payload::ModuleSection { .. } => core_modules += 1,
            wasmparser::Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|e| format!("an import does not parse: {e}"))?;
                    imports.push(import.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(Outline {
        core_modules,
        imports,
    })
}

/// Where [`build_lean`] puts its components.
pub fn lean_dir() -> PathBuf {
    repo_root().join("target/wasm/lean")
}

/// The hand-written fixture `plugins/fixtures/wat/<name>.wat` as a policy component:
/// the module, with the host's WIT (`wit/`, world `policy`) embedded, encoded as a
/// component exactly as `wasm-tools component embed` + `component new` would.
#[cfg(feature = "wat")]
pub fn wat_component(name: &str) -> Result<Vec<u8>, String> {
    let root = repo_root();
    let path = root
        .join("plugins/fixtures/wat")
        .join(format!("{name}.wat"));
    let mut module = wat::parse_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_dir(root.join("wit"))
        .map_err(|e| format!("the WIT in `wit/`: {e}"))?;
    let world = resolve
        .select_world(&[package], Some("policy"))
        .map_err(|e| format!("the `policy` world: {e}"))?;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .map_err(|e| format!("embedding the WIT into {name}: {e}"))?;
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| format!("encoding {name} as a component: {e}"))
}
