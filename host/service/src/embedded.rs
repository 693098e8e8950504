//! Policy sets compiled into the binary: the reference policy as one plugin
//! (`reference`, the default), as five (`reference-split`) and weakened
//! (`reference-weakened`), the AuthZEN interop and certification scenarios
//! (`authzen-todo`, `authzen-gateway`, `authzen-certification`) with their data files,
//! and the MCP gateway's example (`mcp-example`).

use std::collections::BTreeMap;

use arbiter_runtime::SetSource;

/// A set whose manifest and plugins are part of the binary.
#[derive(Debug)]
pub struct EmbeddedSet {
    /// Name, as in `builtin:NAME`.
    pub name: &'static str,
    /// `policy-set.toml`.
    pub manifest: &'static str,
    /// Plugin files by name.
    pub files: &'static [(&'static str, &'static [u8])],
}

include!(concat!(env!("OUT_DIR"), "/embedded_sets.rs"));

/// The set `arbiter serve` and `arbiter test` use when given none.
pub const DEFAULT_SET: &str = "reference";

/// The prefix that names an embedded set on the command line and in config.
pub const PREFIX: &str = "builtin:";

/// The source of the embedded set `name`, if there is one.
pub fn source(name: &str) -> Option<SetSource> {
    let set = SETS.iter().find(|s| s.name == name)?;
    Some(SetSource::Files {
        origin: format!("{PREFIX}{name}"),
        manifest: set.manifest.to_string(),
        files: set
            .files
            .iter()
            .map(|(n, b)| ((*n).to_string(), b.to_vec()))
            .collect::<BTreeMap<_, _>>(),
    })
}

/// Names of the embedded sets.
pub fn names() -> impl Iterator<Item = &'static str> {
    SETS.iter().map(|s| s.name)
}

/// Resolves a set reference from the command line or config: `builtin:NAME`, a bundle
/// file (digests checked; signatures are the server's business, see `loader`), or a
/// path to a set directory or manifest.
pub fn resolve(reference: &str) -> Result<SetSource, String> {
    let path = std::path::Path::new(reference);
    if !reference.starts_with(PREFIX) && arbiter_bundle::is_bundle(path) {
        let bundle = arbiter_bundle::open_file(path, arbiter_bundle::Trust::Any)
            .map_err(|e| e.to_string())?;
        let (manifest, files) = bundle.into_set_files();
        return Ok(SetSource::Files {
            origin: reference.to_string(),
            manifest,
            files,
        });
    }
    match reference.strip_prefix(PREFIX) {
        Some(name) => source(name).ok_or_else(|| {
            format!(
                "no built-in policy set `{name}`; built-in sets: {}",
                names().collect::<Vec<_>>().join(", ")
            )
        }),
        None => Ok(SetSource::Path(reference.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every embedded plugin is the lean build (`arbiter_plugin_build::build_lean`): it
    /// imports nothing but `arbiter:policy`, and the reference plugin is one core module.
    /// A `wasm32-wasip2` build imports WASI through three core modules, which every
    /// fresh instance pays for.
    #[test]
    fn embedded_plugins_import_nothing_but_the_policy_interfaces() {
        let mut checked = 0;
        for set in SETS {
            for (file, bytes) in set.files.iter().filter(|(f, _)| f.ends_with(".wasm")) {
                let arbiter_plugin_build::Outline {
                    core_modules,
                    imports,
                } = arbiter_plugin_build::outline(bytes).expect("the component parses");
                // A plugin that imports no host function needs no adapter module.
                if *file == "reference.wasm" {
                    assert_eq!(core_modules, 1, "{}/{file}: core modules", set.name);
                }
                assert!(
                    imports.iter().all(|i| i.starts_with("arbiter:policy/")),
                    "{}/{file} imports {imports:?}",
                    set.name
                );
                checked += 1;
            }
        }
        assert!(checked >= 10, "only {checked} embedded plugins found");
    }
}
