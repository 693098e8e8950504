//! `arbiter build`: builds a project's component with its language's toolchain,
//! checks it against the host's WIT, and only then puts it where the project's
//! `policy-set.toml` expects it (a component that does not fit never lands there).

mod c;
mod js;
mod python;
mod rust;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arbiter_core::{Limits, Manifest};

use crate::project::Project;
use crate::{KitError, Lang, Toolchains, check};

/// A built and checked component.
#[derive(Debug)]
pub struct Built {
    /// Where it was written (the plugin's `path` in `policy-set.toml`).
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The language.
    pub lang: Lang,
    /// Time spent finding (or installing) the toolchain.
    pub toolchain: Duration,
    /// Time spent compiling and checking.
    pub compile: Duration,
}

/// Builds the project in `dir` with the toolchains in `toolchains`.
pub fn build(dir: &Path, toolchains: &Toolchains) -> Result<Built, KitError> {
    let project = Project::read(dir)?;
    let out = output_path(&project)?;
    let t0 = Instant::now();
    let tools = Tools::ready(project.lang, toolchains)?;
    let toolchain = t0.elapsed();
    let t1 = Instant::now();
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(KitError::io("create", parent))?;
    }
    let scratch = tempfile::Builder::new()
        .prefix(".arbiter-build-")
        .tempdir_in(out.parent().unwrap_or(dir))
        .map_err(KitError::io("create a scratch directory in", dir))?;
    let candidate = scratch.path().join("component.wasm");
    match &tools {
        Tools::Rust => rust::build(&project, toolchains, &candidate)?,
        Tools::Python(cpy) => python::build(&project, cpy, &candidate)?,
        Tools::Js(tc) => js::build(&project, tc, &candidate)?,
        Tools::C(c) => c::build(&project, c, &candidate)?,
    }
    let bytes = std::fs::read(&candidate).map_err(KitError::io("read", &candidate))?;
    check::component(&bytes).map_err(|mismatches| KitError::Interface {
        path: out.clone(),
        host: check::host_package().to_string(),
        mismatches,
    })?;
    std::fs::rename(&candidate, &out).map_err(KitError::io("write", &out))?;
    Ok(Built {
        path: out,
        size: bytes.len() as u64,
        lang: project.lang,
        toolchain,
        compile: t1.elapsed(),
    })
}

/// A language's ready toolchain.
enum Tools {
    Rust,
    Python(PathBuf),
    Js(PathBuf),
    C(crate::toolchain::CTools),
}

impl Tools {
    fn ready(lang: Lang, toolchains: &Toolchains) -> Result<Tools, KitError> {
        Ok(match lang {
            Lang::Rust => {
                rust::ready()?;
                Tools::Rust
            }
            Lang::Python => Tools::Python(toolchains.python()?),
            Lang::Js => Tools::Js(toolchains.js(
                crate::templates::JS_PACKAGE_JSON,
                crate::templates::JS_PACKAGE_LOCK,
            )?),
            Lang::C => Tools::C(toolchains.c()?),
        })
    }
}

/// Where the component goes: the `path` of the project's plugin in `policy-set.toml`.
fn output_path(project: &Project) -> Result<PathBuf, KitError> {
    let file = project.dir.join("policy-set.toml");
    let text = std::fs::read_to_string(&file).map_err(KitError::io("read", &file))?;
    let manifest =
        Manifest::parse(&text, &file.display().to_string(), Limits::default()).map_err(|e| {
            KitError::Refused {
                message: e.to_string(),
                hint:
                    "fix the manifest; `arbiter build` writes the component to its plugin's `path`"
                        .into(),
            }
        })?;
    let spec = manifest
        .plugins
        .iter()
        .find(|p| p.name == project.plugin)
        .ok_or_else(|| KitError::Project {
            file: project.dir.join(crate::project::PROJECT_FILE),
            line: 0,
            message: format!(
                "`plugin` is `{}`, but policy-set.toml has no plugin of that name (it has: {})",
                project.plugin,
                manifest
                    .plugins
                    .iter()
                    .map(|p| format!("`{}`", p.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            hint: "name the plugin of policy-set.toml this project builds".into(),
        })?;
    Ok(project.dir.join(&spec.path))
}

/// The files directly in `dir` with extension `ext`, sorted.
pub(crate) fn files_with(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, KitError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(KitError::io("read", dir))? {
        let path = entry.map_err(KitError::io("read", dir))?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn build_error(lang: Lang, message: impl Into<String>) -> KitError {
    KitError::Build {
        lang: lang.display_name(),
        message: message.into(),
    }
}
