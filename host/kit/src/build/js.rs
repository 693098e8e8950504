//! JavaScript: componentize-qjs embeds QuickJS and the policy. The entry's folder and
//! `sdk/` are staged side by side as `policy/` and `sdk/`, so a policy imports the SDK
//! as `../sdk/index.js` (as in Arbiter's repository).

use std::path::Path;
use std::process::Command;

use super::build_error;
use crate::project::Project;
use crate::toolchain::run;
use crate::{KitError, Lang};

pub(super) fn build(project: &Project, toolchain: &Path, out: &Path) -> Result<(), KitError> {
    let stage = tempfile::tempdir().map_err(KitError::io("create", std::env::temp_dir()))?;
    let folder = project.source.parent().unwrap_or(&project.dir);
    if folder == project.dir {
        return Err(build_error(
            Lang::Js,
            "the entry must sit in a folder of its own (e.g. `src/policy.js`), which is bundled with sdk/",
        ));
    }
    copy_tree(folder, &stage.path().join("policy"))?;
    copy_tree(&project.dir.join("sdk"), &stage.path().join("sdk"))?;
    let entry = format!(
        "policy/{}",
        project
            .source
            .file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default()
    );
    // --sync: the default async ABI needs component-model async, which the host does
    // not enable.
    let mut cmd = Command::new(toolchain.join("node_modules/.bin/componentize-qjs"));
    cmd.current_dir(stage.path())
        .arg("--sync")
        .arg("--wit")
        .arg(project.dir.join("wit"))
        .args(["--world", "policy", "--js", &entry, "--module-root"])
        .arg(stage.path())
        .arg("-o")
        .arg(out);
    run(&mut cmd, "componentize-qjs").map_err(|e| build_error(Lang::Js, e))?;
    if !out.is_file() {
        return Err(build_error(Lang::Js, "componentize-qjs wrote no component"));
    }
    Ok(())
}

/// Copies a folder's files and subfolders (not symbolic links, not `node_modules`).
fn copy_tree(from: &Path, to: &Path) -> Result<(), KitError> {
    std::fs::create_dir_all(to).map_err(KitError::io("create", to))?;
    for entry in std::fs::read_dir(from).map_err(KitError::io("read", from))? {
        let entry = entry.map_err(KitError::io("read", from))?;
        let kind = entry
            .file_type()
            .map_err(KitError::io("read", entry.path()))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() && entry.file_name() != "node_modules" {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).map_err(KitError::io("copy", entry.path()))?;
        }
    }
    Ok(())
}
