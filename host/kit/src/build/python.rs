//! Python: componentize-py bundles the policy module, its folder, `sdk/` and CPython
//! into a component for the world `policy` of the project's `wit/`.

use std::path::Path;
use std::process::Command;

use super::build_error;
use crate::project::Project;
use crate::toolchain::run;
use crate::{KitError, Lang};

/// Module names the generated bindings use: a policy module of that name would shadow them.
const RESERVED: [&str; 3] = ["policy", "wit_world", "arbiter_policy"];

pub(super) fn build(project: &Project, cpy: &Path, out: &Path) -> Result<(), KitError> {
    let module = project
        .source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if project.source.extension().is_none_or(|e| e != "py") || RESERVED.contains(&module.as_str()) {
        return Err(build_error(
            Lang::Python,
            format!(
                "the entry `{}` must be a `.py` module not named {}",
                project.source.display(),
                RESERVED.join(", ")
            ),
        ));
    }
    let folder = project.source.parent().unwrap_or(&project.dir);
    let mut cmd = Command::new(cpy);
    cmd.current_dir(&project.dir)
        // A venv the author has active must not leak into the component.
        .env_remove("VIRTUAL_ENV")
        .args(["-q", "-d"])
        .arg(project.dir.join("wit"))
        .args(["-w", "policy", "componentize", "-p"])
        .arg(folder)
        .arg("-p")
        .arg(project.dir.join("sdk"))
        .arg("-o")
        .arg(out)
        .arg(&module);
    run(&mut cmd, "componentize-py").map_err(|e| build_error(Lang::Python, e))
}
