//! `arbiter new`: writes a project, and `arbiter.toml`, the file that says how to
//! build it.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::templates::{self, File};
use crate::toolchain::{RUST_CHANNEL, WIT_BINDGEN_CRATE};
use crate::{KitError, Lang};

/// The project file.
pub(crate) const PROJECT_FILE: &str = "arbiter.toml";

/// A project written by [`create`].
#[derive(Debug)]
pub struct Created {
    /// Its directory.
    pub dir: PathBuf,
    /// The project's (and its plugin's and set's) name.
    pub name: String,
    /// The files written, relative to `dir`, in writing order.
    pub files: Vec<String>,
}

/// Writes a new `lang` project into `dir`, which must not exist or be empty (nothing
/// is ever overwritten). `name` defaults to the directory's name.
pub fn create(dir: &Path, lang: Lang, name: Option<&str>) -> Result<Created, KitError> {
    let name = match name {
        Some(n) => n.to_string(),
        None => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    check_name(&name)?;
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(KitError::Refused {
                message: format!(
                    "`{}` exists and is not empty; `arbiter new` never writes over files",
                    dir.display()
                ),
                hint: "name a new directory (it is created), or an empty one".into(),
            });
        }
    } else if dir.exists() {
        return Err(KitError::Refused {
            message: format!("`{}` exists and is not a directory", dir.display()),
            hint: "name a new directory (it is created)".into(),
        });
    }
    let fill = |text: &str| {
        text.replace("{{name}}", &name)
            .replace("{{rust_channel}}", RUST_CHANNEL)
            .replace("{{wit_bindgen}}", WIT_BINDGEN_CRATE)
            .replace("{{language}}", lang.display_name())
            .replace("{{source}}", templates::source(lang))
            .replace("{{toolchain}}", toolchain_words(lang))
    };
    let project = format!(
        "# How `arbiter build` builds this project (written by `arbiter new`).\n\
         # The language: rust, python, js or c.\n\
         lang = \"{lang}\"\n\
         # The plugin of policy-set.toml this project builds: the component is written to\n\
         # that plugin's `path`.\n\
         plugin = \"{name}\"\n\
         # The policy's entry file.{}\n\
         source = \"{}\"\n",
        match lang {
            Lang::Rust =>
                " Rust builds the crate of Cargo.toml; this names its root.\n\
                 # Add `wasi = false` to build without WASI (no stdout, no clock): each\n\
                 # evaluation's fresh instance is then cheaper (docs/plugin-authors.md).",
            Lang::Python => " Its folder and sdk/ are on the module path.",
            Lang::Js => " Its folder is bundled with sdk/ (import `../sdk/index.js`).",
            Lang::C => " Every .c file of its folder is compiled, with sdk/.",
        },
        templates::source(lang)
    );
    let mut files: Vec<(String, String)> = vec![(PROJECT_FILE.to_string(), project)];
    let all: Vec<&File> = templates::COMMON
        .iter()
        .chain(templates::WIT.iter())
        .chain(templates::files(lang).iter())
        .collect();
    for (path, text) in all {
        let text = if *path == "sdk/src/lib.rs" {
            let (from, to) = templates::RUST_SDK_WIT_PATH;
            text.replace(from, to)
        } else if (path.starts_with("sdk/") && *path != "sdk/Cargo.toml")
            || path.starts_with("wit/")
        {
            // The repository's own files, embedded verbatim: no placeholders in them.
            text.to_string()
        } else {
            fill(text)
        };
        files.push((path.to_string(), text));
    }
    std::fs::create_dir_all(dir).map_err(KitError::io("create", dir))?;
    for (path, text) in &files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(KitError::io("create", parent))?;
        }
        std::fs::write(&full, text).map_err(KitError::io("write", &full))?;
    }
    Ok(Created {
        dir: dir.to_path_buf(),
        name,
        files: files.into_iter().map(|(p, _)| p).collect(),
    })
}

/// A project name names the set, the plugin, the component file and (Rust) the crate:
/// lowercase letters, digits and `-`, starting with a letter.
fn check_name(name: &str) -> Result<(), KitError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(KitError::Refused {
            message: format!(
                "`{name}` cannot name a project: use 1-64 lowercase letters, digits and `-`, starting with a letter"
            ),
            hint: "pick another directory name, or give one with --name".into(),
        })
    }
}

fn toolchain_words(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => {
            "the wasm32-wasip2 target of the project's pinned Rust, with rustup; compiled dependencies are shared by your Rust projects"
        }
        Lang::Python => "componentize-py, from PyPI, in a venv",
        Lang::Js => "componentize-qjs, from npm, with your Node.js 18 or later",
        Lang::C => "zig and wasm-tools from PyPI, wit-bindgen-cli from crates.io",
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    lang: Spanned<String>,
    plugin: Spanned<String>,
    source: Spanned<String>,
    #[serde(default)]
    wasi: Option<Spanned<bool>>,
}

/// A project's `arbiter.toml`, checked.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    /// The project directory.
    pub dir: PathBuf,
    pub lang: Lang,
    /// The plugin of `policy-set.toml` this project builds.
    pub plugin: String,
    /// The entry file, inside the project.
    pub source: PathBuf,
    /// Whether the plugin is built against WASI (`wasi = false`: Rust only, built for
    /// `wasm32-unknown-unknown`, a component that imports nothing but the host's
    /// interfaces and is cheaper to instantiate per evaluation).
    pub wasi: bool,
}

impl Project {
    /// Reads and checks `dir/arbiter.toml`.
    pub(crate) fn read(dir: &Path) -> Result<Project, KitError> {
        // Absolute: tools run in other directories (a scratch stage, the project).
        let dir = &dir
            .canonicalize()
            .map_err(KitError::io("open the project directory", dir))?;
        let file = dir.join(PROJECT_FILE);
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KitError::Project {
                    file,
                    line: 0,
                    message: "no such file: this is not a project written by `arbiter new`".into(),
                    hint: format!(
                        "`arbiter new --lang rust|python|js|c DIR` writes one; `{PROJECT_FILE}` names its language, plugin and entry file"
                    ),
                });
            }
            Err(e) => return Err(KitError::io("read", file)(e)),
        };
        let at = |span: std::ops::Range<usize>| arbiter_core::line_of(&text, span.start);
        let hint = "arbiter.toml has `lang` (rust, python, js or c), `plugin` (a plugin name of policy-set.toml), `source` (the entry file) and, for Rust, optionally `wasi = false`";
        let raw: RawProject = toml::from_str(&text).map_err(|e| KitError::Project {
            file: file.clone(),
            line: e.span().map_or(0, &at),
            message: e.message().trim_end().to_string(),
            hint: hint.into(),
        })?;
        let lang = Lang::parse(raw.lang.get_ref()).ok_or_else(|| KitError::Project {
            file: file.clone(),
            line: at(raw.lang.span()),
            message: format!("`lang` is `{}`", raw.lang.get_ref()),
            hint: "use rust, python, js or c".into(),
        })?;
        let rel = Path::new(raw.source.get_ref());
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(KitError::Project {
                file: file.clone(),
                line: at(raw.source.span()),
                message: format!(
                    "`source` is `{}`, outside the project",
                    raw.source.get_ref()
                ),
                hint: "name the entry file relative to the project, e.g. `src/policy.c`".into(),
            });
        }
        let wasi = match &raw.wasi {
            Some(w) if !*w.get_ref() && lang != Lang::Rust => {
                return Err(KitError::Project {
                    file: file.clone(),
                    line: at(w.span()),
                    message: format!("`wasi = false` is for Rust projects, and this one is {}", lang.display_name()),
                    hint: "remove `wasi`: Python, JavaScript and C plugins are built with their toolchain's WASI".into(),
                });
            }
            Some(w) => *w.get_ref(),
            None => true,
        };
        let source = dir.join(rel);
        if !source.is_file() {
            return Err(KitError::Project {
                file,
                line: at(raw.source.span()),
                message: format!(
                    "`source` names `{}`, which does not exist",
                    raw.source.get_ref()
                ),
                hint: "name the policy's entry file, relative to the project".into(),
            });
        }
        Ok(Project {
            dir: dir.to_path_buf(),
            lang,
            plugin: raw.plugin.into_inner(),
            source,
            wasi,
        })
    }
}

#[cfg(test)]
mod tests;
