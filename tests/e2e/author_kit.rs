//! The policy author's loop with only the binary: `arbiter new --lang L p`, `arbiter
//! build p`, `arbiter test p`, in a temporary directory outside the repository with
//! `HOME` pointed at an empty folder (keeping `RUSTUP_HOME` and `CARGO_HOME`: toolchains
//! cannot be downloaded here). Rust uses the default per-user cache under that empty
//! `HOME`; the other languages share the repository's `.toolchains` (the same pins and
//! layout as `plugins/*/build.sh`), so a clean clone installs each toolchain once.

use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_arbiter");

/// One author at a time, compiling with one job: the other end-to-end tests run beside
/// these with 100 ms plugin deadlines, and four toolchains compiling at once on a
/// 2-core machine (a clean clone installs wit-bindgen-cli and compiles the Rust SDK's
/// dependencies) starve them into timeouts.
static ONE_AUTHOR: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A scratch place outside the repository with an empty home.
struct Author {
    _turn: std::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    /// Where toolchains go: `None` for the default (under the empty `HOME`).
    toolchains: Option<PathBuf>,
}

impl Author {
    fn new(shared_toolchains: bool) -> Author {
        // A failed test poisons the lock; the next author still takes its turn.
        let turn = ONE_AUTHOR.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("home")).expect("home");
        let toolchains =
            shared_toolchains.then(|| arbiter_plugin_build::repo_root().join(".toolchains"));
        Author {
            _turn: turn,
            dir,
            toolchains,
        }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn project(&self) -> PathBuf {
        self.dir.path().join("p")
    }

    /// Runs `arbiter ARGS` in the scratch directory as a user whose home is empty:
    /// the machine's settings (PATH, proxies, certificate bundles) stay, everything
    /// that could point at a cache or a checkout goes.
    fn arbiter(&self, args: &[&str]) -> Output {
        let real_home = PathBuf::from(std::env::var_os("HOME").expect("HOME"));
        let keep = |k: &str, default: PathBuf| std::env::var_os(k).map_or(default, PathBuf::from);
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path())
            .env("HOME", self.home())
            .env(
                "RUSTUP_HOME",
                keep("RUSTUP_HOME", real_home.join(".rustup")),
            )
            .env("CARGO_HOME", keep("CARGO_HOME", real_home.join(".cargo")))
            .env_remove("XDG_CACHE_HOME")
            .env_remove("ARBITER_TOOLCHAINS")
            .env_remove("CARGO_TARGET_DIR")
            .env("CARGO_BUILD_JOBS", "1")
            .args(args);
        if let Some(t) = &self.toolchains {
            cmd.env("ARBITER_TOOLCHAINS", t);
        }
        cmd.output().expect("arbiter runs")
    }

    /// Runs `arbiter ARGS` and expects exit code `code`; returns stdout.
    fn expect(&self, args: &[&str], code: i32) -> String {
        let out = self.arbiter(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "arbiter {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        stdout
    }

    fn edit(&self, file: &str, edit: impl FnOnce(String) -> String) {
        let path = self.project().join(file);
        let text = std::fs::read_to_string(&path).expect(file);
        let changed = edit(text.clone());
        assert_ne!(text, changed, "the edit of {file} changed nothing");
        std::fs::write(&path, changed).expect(file);
    }
}

/// The whole loop for one language: new, build, test (all pass, every rule covered);
/// a broken rule fails the case that names it; a dropped case leaves its rule
/// unexercised in `--coverage`.
fn the_loop(lang: &str, source: &str, shared_toolchains: bool) -> Author {
    let a = Author::new(shared_toolchains);
    let out = a.expect(&["new", "--lang", lang, "p"], 0);
    assert!(out.contains("wrote the"), "{out}");
    assert!(a.project().join("wit/evaluator.wit").is_file());
    a.expect(&["build", "p"], 0);
    assert!(a.project().join("build/p.wasm").is_file());

    let out = a.expect(&["test", "p"], 0);
    assert_eq!(out.lines().last(), Some("6 passed, 0 failed"), "{out}");
    let out = a.expect(&["test", "p", "--coverage"], 0);
    assert!(!out.contains("never exercised: "), "{out}");
    assert!(out.contains("prod-change-needs-approval"), "{out}");

    // Break rule 2: production is no longer recognised.
    a.edit(source, |s| {
        s.replace("\"prod\"", "\"production\"")
            .replace("'prod'", "'production'")
    });
    a.expect(&["build", "p"], 0);
    let out = a.expect(&["test", "p"], 1);
    assert!(
        out.contains("FAIL an agent's production write waits for a human"),
        "{out}"
    );
    assert!(
        out.contains("expected require-approval") && out.contains("got allow"),
        "{out}"
    );
    assert!(out.contains("db:Update"), "the request is shown: {out}");

    // Drop the only case of rule 1: coverage names it.
    a.edit("tests/policy.cases.toml", |s| {
        let start = s
            .find("[[case]]\nname = \"an agent may not change identities\"")
            .expect("case");
        let end = s[start + 8..].find("[[case]]").expect("next case") + start + 8;
        format!("{}{}", &s[..start], &s[end..])
    });
    let out = a.expect(&["test", "p", "--coverage"], 1);
    let never = out
        .lines()
        .find(|l| l.contains("never exercised"))
        .unwrap_or_else(|| panic!("no `never exercised` line:\n{out}"));
    assert!(never.contains("agent-privileged-action"), "{out}");
    a
}

#[test]
fn rust_from_nothing_to_a_tested_plugin() {
    let a = the_loop("rust", "src/lib.rs", false);
    // The default cache, under the (once empty) home.
    assert!(
        a.home()
            .join(".cache/arbiter/toolchains/rust-target")
            .is_dir(),
        "compiled dependencies are cached per user"
    );
    // From test to production: the project is a set directory for `arbiter bundle`.
    a.expect(&["keygen", "--output", "signing"], 0);
    a.expect(&["bundle", "pack", "p", "--output", "p.bundle"], 0);
    a.expect(&["bundle", "sign", "--key", "signing.key", "p.bundle"], 0);
    let out = a.expect(
        &["bundle", "verify", "--pubkey", "signing.pub", "p.bundle"],
        0,
    );
    assert!(out.contains('p'), "{out}");
}

/// `wasi = false`: the same starter, built for `wasm32-unknown-unknown` and wrapped, is
/// a component of one core module that imports only the host's interfaces, and it
/// decides the starter's cases as the WASI build does.
#[test]
fn rust_without_wasi_builds_a_component_that_imports_nothing_else() {
    let a = Author::new(true);
    a.expect(&["new", "--lang", "rust", "p"], 0);
    a.edit("arbiter.toml", |s| format!("{s}wasi = false\n"));
    a.expect(&["build", "p"], 0);
    let out = a.expect(&["test", "p"], 0);
    assert_eq!(out.lines().last(), Some("6 passed, 0 failed"), "{out}");
    let bytes = std::fs::read(a.project().join("build/p.wasm")).expect("built");
    let outline = arbiter_plugin_build::outline(&bytes).expect("the component parses");
    assert_eq!(outline.core_modules, 1, "one core module");
    assert!(
        outline
            .imports
            .iter()
            .all(|i| i.starts_with("arbiter:policy/")),
        "{:?}",
        outline.imports
    );
}

#[test]
fn python_from_nothing_to_a_tested_plugin() {
    the_loop("python", "src/rules.py", true);
}

#[test]
fn javascript_from_nothing_to_a_tested_plugin() {
    the_loop("js", "src/policy.js", true);
}

#[test]
fn c_from_nothing_to_a_tested_plugin() {
    the_loop("c", "src/policy.c", true);
}

#[test]
fn new_never_writes_over_files_and_checks_its_inputs() {
    let a = Author::new(true);
    std::fs::create_dir(a.project()).expect("mkdir");
    std::fs::write(a.project().join("notes.txt"), "mine").expect("write");
    let out = a.arbiter(&["new", "--lang", "c", "p"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exists and is not empty"), "{err}");
    assert_eq!(
        std::fs::read_dir(a.project()).expect("dir").count(),
        1,
        "nothing written"
    );

    let out = a.arbiter(&["new", "--lang", "cobol", "q"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`cobol`") && err.contains("rust, python, js, c"),
        "{err}"
    );

    let out = a.arbiter(&["new", "--lang", "rust", "Bad_Name"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`Bad_Name` cannot name a project"), "{err}");
    assert!(!a.dir.path().join("Bad_Name").exists());
}

#[test]
fn build_names_what_is_wrong_with_a_project() {
    let a = Author::new(true);
    // Not a project.
    std::fs::create_dir(a.project()).expect("mkdir");
    let out = a.arbiter(&["build", "p"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("arbiter.toml") && err.contains("arbiter new"),
        "{err}"
    );
    std::fs::remove_dir(a.project()).expect("rmdir");

    a.expect(&["new", "--lang", "c", "p"], 0);
    // A wrong language, with its line.
    a.edit("arbiter.toml", |s| {
        s.replace("lang = \"c\"", "lang = \"fortran\"")
    });
    let out = a.arbiter(&["build", "p"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("arbiter.toml:3: `lang` is `fortran`"), "{err}");
    a.edit("arbiter.toml", |s| {
        s.replace("lang = \"fortran\"", "lang = \"c\"")
    });

    // A good build, then a compile error: the good component stays.
    a.expect(&["build", "p"], 0);
    let good = std::fs::read(a.project().join("build/p.wasm")).expect("built");
    a.edit("src/policy.c", |s| {
        s.replace("bool change =", "bool change = nonsense +")
    });
    let out = a.arbiter(&["build", "p"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("the C build failed"), "{err}");
    assert!(
        err.contains("nonsense"),
        "the compiler's words are shown: {err}"
    );
    assert_eq!(
        std::fs::read(a.project().join("build/p.wasm")).expect("kept"),
        good
    );
    a.edit("src/policy.c", |s| {
        s.replace("bool change = nonsense +", "bool change =")
    });

    // Built against another version of the contract: each mismatch named, nothing written.
    for f in ["types", "evaluator", "log", "data"] {
        a.edit(&format!("wit/{f}.wit"), |s| {
            s.replace("arbiter:policy@0.1.0", "arbiter:policy@0.2.0")
        });
    }
    let out = a.arbiter(&["build", "p"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("does not fit this host's WIT"), "{err}");
    assert!(err.contains("arbiter:policy/evaluator@0.2.0"), "{err}");
    assert!(err.contains("runs version 0.1.0"), "{err}");
    assert_eq!(
        std::fs::read(a.project().join("build/p.wasm")).expect("kept"),
        good
    );
}
