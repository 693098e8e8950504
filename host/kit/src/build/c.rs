//! C: wit-bindgen generates the bindings from the project's `wit/`; zig's clang
//! compiles every `.c` file of the entry's folder with the SDK for wasm32-wasi as a
//! reactor, against wasi-libc but calling nothing that does I/O, so the module imports
//! no WASI; wasm-tools makes it a component. The flags are plugins/c/build.sh's.

use std::process::Command;

use super::{build_error, files_with};
use crate::project::Project;
use crate::toolchain::{CTools, run};
use crate::{KitError, Lang};

pub(super) fn build(
    project: &Project,
    tools: &CTools,
    out: &std::path::Path,
) -> Result<(), KitError> {
    let work = tempfile::tempdir().map_err(KitError::io("create", std::env::temp_dir()))?;
    let gen_dir = work.path().join("gen");
    let mut bindgen = Command::new(&tools.wit_bindgen);
    bindgen
        .args(["c", "--world", "policy", "--out-dir"])
        .arg(&gen_dir)
        .arg(project.dir.join("wit"));
    run(&mut bindgen, "wit-bindgen c").map_err(|e| build_error(Lang::C, e))?;

    let folder = project.source.parent().unwrap_or(&project.dir);
    let sources = files_with(folder, "c")?;
    let sdk = project.dir.join("sdk");
    let core = work.path().join("core.wasm");
    let mut cc = Command::new(&tools.python);
    cc.env("ZIG_GLOBAL_CACHE_DIR", &tools.zig_cache)
        .args([
            "-m",
            "ziglang",
            "cc",
            "-target",
            "wasm32-wasi",
            "-mexec-model=reactor",
        ])
        .args(["-Os", "-std=gnu11", "-Wall", "-Wextra"])
        .arg(format!("-I{}", gen_dir.display()))
        .arg(format!("-I{}", sdk.display()))
        // 128 KiB of initial memory (zig's default is 16 MiB per instance) and a 32 KiB
        // stack; malloc grows the memory when it needs to.
        .args([
            "-Wl,--strip-all",
            "-Wl,--initial-memory=131072",
            "-Wl,-z,stack-size=32768",
        ])
        .arg("-o")
        .arg(&core)
        .args(&sources)
        .arg(sdk.join("arbiter_policy.c"))
        .arg(gen_dir.join("policy.c"))
        .arg(gen_dir.join("policy_component_type.o"));
    run(&mut cc, "zig cc").map_err(|e| build_error(Lang::C, e))?;

    let mut new = Command::new(&tools.wasm_tools);
    new.args(["component", "new"]).arg(&core).arg("-o").arg(out);
    run(&mut new, "wasm-tools component new").map_err(|e| {
        build_error(
            Lang::C,
            format!(
                "{e}\n  hint: a module that imports WASI (`wasi_snapshot_preview1`) called a libc function that does I/O (printf, fopen, time, getenv...); log with ap_log instead"
            ),
        )
    })?;
    let mut validate = Command::new(&tools.wasm_tools);
    validate.arg("validate").arg(out);
    run(&mut validate, "wasm-tools validate").map_err(|e| build_error(Lang::C, e))
}
