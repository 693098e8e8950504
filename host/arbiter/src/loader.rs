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
}

impl Loader {
    /// A loader; `trusted` empty means bundles need no signature.
    pub fn new(runtime: Runtime, limits: Limits, trusted: Vec<PublicKey>) -> Self {
        Self {
            runtime,
            limits,
            trusted,
        }
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
        Ok(Version::new(set, origin, signer))
    }
}

/// Reads the trusted public keys.
pub fn trusted_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    paths
        .iter()
        .map(|p: &PathBuf| PublicKey::load(Path::new(p)).map_err(anyhow::Error::from))
        .collect()
}
