//! Loading policy sets, at startup and later (admin API, watched directory), with the
//! same checks everywhere: bundles are verified (digests always; signatures by a
//! trusted key when trusted keys are configured), then compiled, configured and
//! verified off the request path. Nothing that fails here touches what is serving.

use std::path::{Path, PathBuf};

use arbiter_bundle::Trust;
use arbiter_core::Limits;
use arbiter_keys::PublicKey;
use arbiter_runtime::{PolicySet, Runtime, SetSource};

use crate::embedded;
use crate::sets::Version;

/// Largest bundle accepted over the admin API.
pub const MAX_UPLOAD_BYTES: usize = 64 << 20;

/// Where a set comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `builtin:NAME`, a bundle file or a set directory.
    Reference(String),
    /// A bundle's bytes (uploaded over the admin API).
    Bundle(Vec<u8>),
}

/// Loads sets with one runtime, one set of limits and one trust policy.
#[derive(Debug, Clone)]
pub struct Loader {
    runtime: Runtime,
    limits: Limits,
    trusted: Vec<PublicKey>,
    /// Where loaded versions are kept as bundles, to be restored after a restart.
    keep: Option<PathBuf>,
}

impl Loader {
    /// A loader; `trusted` empty means bundles need no signature.
    pub fn new(runtime: Runtime, limits: Limits, trusted: Vec<PublicKey>) -> Self {
        Self {
            runtime,
            limits,
            trusted,
            keep: None,
        }
    }

    /// Keeps every version loaded from a file or upload as `<dir>/<digest>.bundle`.
    pub fn keeping_in(mut self, dir: PathBuf) -> Self {
        self.keep = Some(dir);
        self
    }

    /// Whether signatures are required.
    pub fn requires_signatures(&self) -> bool {
        !self.trusted.is_empty()
    }

    fn trust(&self) -> Trust<'_> {
        if self.trusted.is_empty() {
            Trust::Any
        } else {
            Trust::Keys(&self.trusted)
        }
    }

    /// Verifies and loads a set; the error says why it was refused.
    pub async fn load(&self, source: Source) -> Result<Version, String> {
        let kept = source.clone();
        let (origin, set_source, signer) = match source {
            Source::Bundle(bytes) => {
                if bytes.len() > MAX_UPLOAD_BYTES {
                    return Err(format!(
                        "the bundle is {} bytes, more than the {MAX_UPLOAD_BYTES} accepted over the API; load it by path",
                        bytes.len()
                    ));
                }
                let b = arbiter_bundle::open(&bytes, "upload", self.trust())
                    .map_err(|e| e.to_string())?;
                let signer = b.signer.clone();
                let (manifest, files) = b.into_set_files();
                let source = SetSource::Files {
                    origin: "upload".into(),
                    manifest,
                    files,
                };
                ("upload".to_string(), source, signer)
            }
            Source::Reference(r) if r.starts_with(embedded::PREFIX) => {
                // Compiled into the binary: as trusted as the binary itself.
                (r.clone(), embedded::resolve(&r)?, None)
            }
            Source::Reference(r) => {
                let path = PathBuf::from(&r);
                if arbiter_bundle::is_bundle(&path) {
                    let b = arbiter_bundle::open_file(&path, self.trust())
                        .map_err(|e| e.to_string())?;
                    let signer = b.signer.clone();
                    let (manifest, files) = b.into_set_files();
                    let source = SetSource::Files {
                        origin: r.clone(),
                        manifest,
                        files,
                    };
                    (r, source, signer)
                } else if self.requires_signatures() {
                    return Err(format!(
                        "`{r}` is not a signed bundle, and this server only loads bundles signed by a trusted key; pack and sign it with `arbiter bundle pack` and `arbiter bundle sign`"
                    ));
                } else {
                    (r, SetSource::Path(path), None)
                }
            }
        };
        let set = PolicySet::load(&self.runtime, set_source, self.limits)
            .await
            .map_err(|e| {
                let mut msg = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    msg.push_str(": ");
                    msg.push_str(&c.to_string());
                    cause = c.source();
                }
                msg
            })?;
        let mut version = Version::new(set, origin, signer);
        version.restore_from = self.keep(&kept, &version.set.identity().digest);
        Ok(version)
    }

    /// Keeps a copy to restore from; `None` when it cannot (logged: the version still
    /// serves, it just will not come back after a restart).
    fn keep(&self, source: &Source, digest: &str) -> Option<String> {
        if let Source::Reference(r) = source
            && r.starts_with(embedded::PREFIX)
        {
            return Some(r.clone());
        }
        let dir = self.keep.as_ref()?;
        let path = dir.join(format!("{digest}.bundle"));
        if path.exists() {
            return Some(path.display().to_string());
        }
        let kept = arbiter_runtime::create_private_dir(dir)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                let tmp = dir.join(format!("{digest}.bundle.tmp"));
                match source {
                    Source::Bundle(bytes) => std::fs::write(&tmp, bytes).map_err(|e| e.to_string()),
                    Source::Reference(r) if arbiter_bundle::is_bundle(Path::new(r)) => {
                        std::fs::copy(r, &tmp).map(drop).map_err(|e| e.to_string())
                    }
                    Source::Reference(r) => arbiter_bundle::pack(Path::new(r), &tmp)
                        .map(drop)
                        .map_err(|e| e.to_string()),
                }
                .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| e.to_string()))
            });
        match kept {
            Ok(()) => Some(path.display().to_string()),
            Err(e) => {
                tracing::warn!(digest, error = %e, "cannot keep a copy of a loaded set; it will not be restored after a restart");
                None
            }
        }
    }
}

/// Reads the trusted public keys.
pub fn trusted_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    paths
        .iter()
        .map(|p: &PathBuf| PublicKey::load(Path::new(p)).map_err(anyhow::Error::from))
        .collect()
}
