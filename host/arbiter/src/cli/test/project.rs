//! `arbiter test DIR` on a plugin project (what `arbiter new` writes): a directory
//! whose `policy-set.toml` is the set under test and whose `tests/` holds its case
//! files and vectors.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use arbiter_core::{Limits, Manifest};

/// The manifest at the root of a project, as for any set directory.
const MANIFEST: &str = "policy-set.toml";
/// Where a project keeps its tests.
const TESTS: &str = "tests";

/// A project's directory and its test files.
#[derive(Debug)]
pub(crate) struct Project {
    /// The directory given.
    pub dir: PathBuf,
    /// Every `tests/*.cases.toml` and `tests/*.jsonl`, sorted by name.
    pub files: Vec<PathBuf>,
}

/// The project at `path` when it is a directory (`None` for a file); an error for a
/// directory without a manifest or without tests.
pub(crate) fn open(path: &Path) -> anyhow::Result<Option<Project>> {
    if !path.is_dir() {
        return Ok(None);
    }
    let dir = path.display();
    if !path.join(MANIFEST).is_file() {
        anyhow::bail!(
            "`{dir}` is a directory without a `{MANIFEST}`\nhint: give a test file (`*.cases.toml` or JSON-lines vectors), or a project directory such as `arbiter new` writes"
        );
    }
    let tests = path.join(TESTS);
    let mut files = Vec::new();
    if tests.is_dir() {
        for entry in std::fs::read_dir(&tests)
            .with_context(|| format!("cannot list `{}`", tests.display()))?
        {
            let file = entry
                .with_context(|| format!("cannot list `{}`", tests.display()))?
                .path();
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            let test = name.ends_with(".cases.toml") || name.ends_with(".jsonl");
            if test && file.is_file() {
                files.push(file);
            }
        }
    }
    if files.is_empty() {
        anyhow::bail!(
            "`{}` has no test files (`*.cases.toml` or `*.jsonl`)\nhint: write named test cases in `{}`; see docs/plugin-authors.md § 8, \"Test cases\"",
            tests.display(),
            tests.join("NAME.cases.toml").display()
        );
    }
    files.sort();
    Ok(Some(Project {
        dir: path.to_path_buf(),
        files,
    }))
}

/// Refuses a set directory (or manifest) whose manifest names a plugin file that does
/// not exist, naming the file, with the command that builds it: a project's
/// components are build output, absent until its first build. A manifest that does
/// not parse is left for the set's load to report.
pub(crate) fn check_built(set: &Path, project: bool) -> anyhow::Result<()> {
    let (dir, manifest) = if set.is_dir() {
        (set.to_path_buf(), set.join(MANIFEST))
    } else {
        let dir = set
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        (dir.to_path_buf(), set.to_path_buf())
    };
    let Ok(text) = std::fs::read_to_string(&manifest) else {
        return Ok(());
    };
    let Ok(parsed) = Manifest::parse(&text, &manifest.display().to_string(), Limits::default())
    else {
        return Ok(());
    };
    let Some(missing) = parsed.plugins.iter().find(|p| !dir.join(&p.path).exists()) else {
        return Ok(());
    };
    let build = format!("arbiter build {}", dir.display());
    let hint = if project {
        format!("run `{build}` first")
    } else {
        format!(
            "build the plugin first (for a project made with `arbiter new`: run `{build}` first)"
        )
    };
    anyhow::bail!(
        "plugin `{}`: `{}` does not exist\nhint: {hint}",
        missing.name,
        dir.join(&missing.path).display()
    )
}
