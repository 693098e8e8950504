//! What can go wrong writing, building or checking a project.

use std::path::PathBuf;

/// An author's mistake or an environment problem, worded for the author.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// A file or directory could not be read or written.
    #[error("cannot {action} `{}`", path.display())]
    Io {
        /// What was being done (`read`, `write`, `create`...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A project file is wrong: the file, the line (0 when unknown), what, and a hint.
    #[error("{}:{line}: {message}\n  hint: {hint}", file.display())]
    Project {
        /// The file.
        file: PathBuf,
        /// Its line, 1-based; 0 when the mistake has no line.
        line: usize,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// The command was asked for something it will not do (for example, to write a
    /// project over existing files).
    #[error("{message}\n  hint: {hint}")]
    Refused {
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// A toolchain could not be found or installed.
    #[error("cannot set up the {lang} toolchain: {message}")]
    Toolchain {
        /// The language.
        lang: &'static str,
        /// What failed, with the tool's own words.
        message: String,
    },
    /// The language's compiler refused the project (its output was shown as it ran).
    #[error("the {lang} build failed: {message}")]
    Build {
        /// The language.
        lang: &'static str,
        /// What failed.
        message: String,
    },
    /// The built component does not fit the host's WIT: one line per mismatch.
    #[error("`{}` does not fit this host's WIT (world `policy`, {host}):\n  - {}", path.display(), mismatches.join("\n  - "))]
    Interface {
        /// The component.
        path: PathBuf,
        /// The host's package, e.g. `arbiter:policy@0.1.0`.
        host: String,
        /// What does not fit.
        mismatches: Vec<String>,
    },
}

impl KitError {
    /// An I/O error on `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> KitError {
        let path = path.into();
        move |source| KitError::Io {
            action,
            path,
            source,
        }
    }
}
