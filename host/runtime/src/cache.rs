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
        let key = hex::encode(digest);
        match self.cached(&key) {
            Some(component) => Ok((component, CacheOutcome::Hit)),
            None => self.compile(bytes, &key),
        }
    }

    /// The compiled component stored under `key`, if the cache has a usable one.
    pub(crate) fn cached(&self, key: &str) -> Option<Component> {
        let dir = self.inner.cache_dir.as_ref()?;
        let path = self.entry(dir, key);
        if !path.exists() {
            return None;
        }
        match trusted_entry(dir, &path).and_then(|()| load_precompiled(&self.inner.engine, &path)) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unusable cache entry");
                None
            }
        }
    }

    /// Compiles `bytes` and stores the result under `key` (when a cache is configured).
    pub(crate) fn compile(
        &self,
        bytes: &[u8],
        key: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let component = Component::new(&self.inner.engine, bytes)?;
        let Some(dir) = &self.inner.cache_dir else {
            return Ok((component, CacheOutcome::Disabled));
        };
        let path = self.entry(dir, key);
        if let Err(e) = store(&component, dir, &path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the component cache");
        }
        Ok((component, CacheOutcome::Miss))
    }

    /// The entry's path: the key, then the engine's compatibility hash.
    fn entry(&self, dir: &Path, key: &str) -> PathBuf {
        dir.join(format!("{key}-{}.cwasm", self.compatibility()))
    }
}

/// Loading a cache entry runs its bytes as native code, so an entry is used only when
/// it and its directory belong to this process's user and no one else may write them:
/// anyone else who could would run code inside the server.
fn trusted_entry(dir: &Path, path: &Path) -> wasmtime::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let me = effective_uid();
        for (what, p) in [("directory", dir), ("entry", path)] {
            let m = std::fs::symlink_metadata(p)?;
            if m.file_type().is_symlink() {
                wasmtime::bail!("the cache {what} `{}` is a symbolic link", p.display());
            }
            if m.uid() != me {
                wasmtime::bail!(
                    "the cache {what} `{}` belongs to user {}, not to this server's user {me}",
                    p.display(),
                    m.uid()
                );
            }
            if m.mode() & 0o022 != 0 {
                wasmtime::bail!(
                    "the cache {what} `{}` may be written by other users (mode {:o})",
                    p.display(),
                    m.mode() & 0o777
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (dir, path);
    Ok(())
}

#[cfg(unix)]
#[expect(unsafe_code, reason = "a plain libc call with no arguments")]
fn effective_uid() -> u32 {
    // SAFETY: `geteuid` takes nothing, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
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
    // configuration and version recorded in the bytes. `trusted_entry` has checked
    // that no other user can write the entry or its directory.
    unsafe { Component::deserialize(engine, &bytes) }
}

fn store(component: &Component, dir: &Path, path: &PathBuf) -> std::io::Result<()> {
    create_private_dir(dir)?;
    let bytes = component.serialize().map_err(std::io::Error::other)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    // Owner-only whatever the umask: `trusted_entry` refuses anything looser.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    std::io::Write::write_all(&mut open.open(&tmp)?, &bytes)?;
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
