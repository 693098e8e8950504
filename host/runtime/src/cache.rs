//! Compiled components, cached on disk by component digest and engine compatibility.
//! Compiling a Python or JavaScript component takes seconds; loading it precompiled
//! takes about a millisecond.

use std::path::{Path, PathBuf};

use wasmtime::component::Component;

use crate::Runtime;

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheOutcome {
    /// Loaded precompiled from the cache.
    Hit,
    /// Compiled, then written to the cache.
    Miss,
    /// Compiled; no cache configured.
    Disabled,
}

/// What kind of file a plugin is, from its header.
pub(crate) enum Kind {
    Component,
    CoreModule,
    NotWasm,
}

/// Tells a component from a core module or something else by the 8-byte header, so
/// that the error for a wrong file says what the file is.
pub(crate) fn kind(bytes: &[u8]) -> Kind {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => Kind::Component,
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Kind::CoreModule,
        _ => Kind::NotWasm,
    }
}

impl Runtime {
    /// Compiles `bytes`, or loads the compiled form from the cache.
    pub(crate) fn component(
        &self,
        bytes: &[u8],
        digest: &[u8; 32],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let engine = &self.inner.engine;
        let Some(dir) = &self.inner.cache_dir else {
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Disabled));
        };
        let path = dir.join(format!(
            "{}-{}.cwasm",
            hex::encode(digest),
            self.compatibility()
        ));
        if path.exists() {
            match load_precompiled(engine, &path) {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring unusable cache entry")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = store(&component, dir, &path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the component cache");
        }
        Ok((component, CacheOutcome::Miss))
    }
}

#[expect(unsafe_code, reason = "wasmtime's only way to load precompiled code")]
fn load_precompiled(engine: &wasmtime::Engine, path: &Path) -> wasmtime::Result<Component> {
    // Read into memory rather than `deserialize_file`, which maps the file: a mapped
    // file truncated or rewritten in place by anyone would crash the server (SIGBUS).
    let bytes = std::fs::read(path)?;
    // SAFETY: `deserialize` trusts the bytes to be wasmtime's own output. Only this
    // process writes the cache directory (created owner-only, entries written to a
    // temporary name and renamed into place), the name pins the source digest and the
    // engine's compatibility hash, and wasmtime itself re-checks the engine
    // configuration and version recorded in the bytes. Anyone who can write the data
    // directory can already replace the policy sets themselves.
    unsafe { Component::deserialize(engine, &bytes) }
}

fn store(component: &Component, dir: &Path, path: &PathBuf) -> std::io::Result<()> {
    create_private_dir(dir)?;
    let bytes = component.serialize().map_err(std::io::Error::other)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Creates `dir` (and parents) readable by the owner only.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}
