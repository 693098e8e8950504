//! Rust: cargo builds the project's crate for `wasm32-wasip2`, which links a
//! component directly; or, with `wasi = false` in `arbiter.toml`, for
//! `wasm32-unknown-unknown`, whose core module is then wrapped as a component that
//! imports no WASI. The project's `rust-toolchain.toml` pins the compiler; the
//! compiled dependencies go to `rust-target/` in the toolchain cache (or
//! `CARGO_TARGET_DIR`), shared by a user's projects, so a second project builds in
//! seconds.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::build_error;
use crate::project::Project;
use crate::toolchain::{RUST_LEAN_TARGET, RUST_TARGET, run, version};
use crate::{KitError, Lang, Toolchains};

/// Variables cargo sets for the processes it runs (an `arbiter build` inside a build
/// script or a test), and flags meant for the host: none may steer the guest build,
/// which follows the project's own pins.
const HOST_ONLY: [&str; 9] = [
    "RUSTUP_TOOLCHAIN",
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_MANIFEST_DIR",
    "CARGO",
];

/// Checks that cargo runs.
pub(super) fn ready() -> Result<(), KitError> {
    if version(Path::new("cargo"), &["--version"]).is_none() {
        return Err(KitError::Toolchain {
            lang: "rust",
            message: "`cargo` is not installed; install Rust with rustup (https://rustup.rs)"
                .into(),
        });
    }
    Ok(())
}

pub(super) fn build(
    project: &Project,
    toolchains: &Toolchains,
    out: &Path,
) -> Result<(), KitError> {
    let target = if project.wasi {
        RUST_TARGET
    } else {
        RUST_LEAN_TARGET
    };
    add_target(&project.dir, target)?;
    let manifest = project.dir.join("Cargo.toml");
    let crate_name = crate_name(&manifest)?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| toolchains.root().join("rust-target"), PathBuf::from);
    // Projects share the target directory: hold it from the build to the copy, so a
    // project of the same crate name cannot replace the component in between.
    let _lock = toolchains.lock("rust-target.lock")?;
    let mut cargo = Command::new("cargo");
    scrub(&mut cargo);
    cargo
        .current_dir(&project.dir)
        .args(["build", "--release", "--target", target, "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir);
    if !project.wasi {
        // The 64 KiB stack of the project's `.cargo/config.toml`, for this target too
        // (projects written before `wasi = false` existed name only wasm32-wasip2).
        cargo.env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
            "-C link-arg=-zstack-size=65536",
        );
    }
    run(&mut cargo, "cargo build").map_err(|e| build_error(Lang::Rust, e))?;
    let built = target_dir
        .join(target)
        .join("release")
        .join(format!("{}.wasm", crate_name.replace('-', "_")));
    if project.wasi {
        std::fs::copy(&built, out).map_err(KitError::io("copy", &built))?;
        return Ok(());
    }
    let module = std::fs::read(&built).map_err(KitError::io("read", &built))?;
    // What `wasm-tools component new` does: the WIT that wit-bindgen embedded in the
    // module says what the component imports and exports.
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| {
            build_error(
                Lang::Rust,
                format!("wrapping {} as a component: {e:#}", built.display()),
            )
        })?;
    std::fs::write(out, component).map_err(KitError::io("write", out))?;
    Ok(())
}

/// Installs the guest target for the project's pinned toolchain when rustup lacks it
/// (automatic installs may be off).
fn add_target(dir: &Path, target: &str) -> Result<(), KitError> {
    let mut list = Command::new("rustup");
    scrub(&mut list);
    let Ok(listed) = list
        .current_dir(dir)
        .args(["target", "list", "--installed"])
        .output()
    else {
        // No rustup: cargo says what is missing, if anything.
        return Ok(());
    };
    if String::from_utf8_lossy(&listed.stdout)
        .lines()
        .any(|l| l.trim() == target)
    {
        return Ok(());
    }
    eprintln!("installing the {target} target (rustup target add)");
    let mut add = Command::new("rustup");
    scrub(&mut add);
    add.current_dir(dir).args(["target", "add", target]);
    run(&mut add, "rustup target add").map_err(|message| KitError::Toolchain {
        lang: "rust",
        message,
    })
}

fn scrub(cmd: &mut Command) {
    for key in HOST_ONLY {
        cmd.env_remove(key);
    }
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_BIN_")
            || k == "CARGO_CRATE_NAME"
            || k == "CARGO_PRIMARY_PACKAGE"
        {
            cmd.env_remove(&key);
        }
    }
}

/// `[package] name` of the project's Cargo.toml.
fn crate_name(manifest: &Path) -> Result<String, KitError> {
    let text = std::fs::read_to_string(manifest).map_err(KitError::io("read", manifest))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| KitError::Project {
        file: manifest.to_path_buf(),
        line: e
            .span()
            .map_or(0, |s| arbiter_core::line_of(&text, s.start)),
        message: e.message().trim_end().to_string(),
        hint: "fix Cargo.toml".into(),
    })?;
    table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .ok_or_else(|| KitError::Project {
            file: manifest.to_path_buf(),
            line: 0,
            message: "no `[package] name`".into(),
            hint: "a Rust project is one crate with `crate-type = [\"cdylib\"]`".into(),
        })
}
