//! Loading policy sets, at startup and later (admin API, watched directory), with the
//! same checks everywhere: bundles are verified (digests always; signatures by a
//! trusted key when trusted keys are configured, by a key trusted for that set's name
//! when keys are scoped), then compiled, configured and verified off the request path;
//! a version older than the newest of its name ever loaded is refused
//! ([`crate::newest`]), and with trusted keys configured, a built-in set loads only
//! when the config lists it. Nothing that fails here touches what is serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arbiter_bundle::Trust;
use arbiter_core::Limits;
use arbiter_keys::PublicKey;
use arbiter_runtime::{PolicySet, Runtime, SetSource};

use crate::embedded;
use crate::newest::Newest;
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
    /// Key id -> the set names it may sign (absent: any name).
    scopes: std::collections::HashMap<String, Vec<String>>,
    /// With trusted keys: the built-in sets the config lists (the only ones that load).
    builtins: Vec<String>,
    /// Where loaded versions are kept as bundles, to be restored after a restart.
    keep: Option<PathBuf>,
    newest: Arc<Newest>,
}

impl Loader {
    /// A loader; `trusted` empty means bundles need no signature.
    pub fn new(runtime: Runtime, limits: Limits, trusted: Vec<PublicKey>) -> Self {
        Self {
            runtime,
            limits,
            trusted,
            scopes: std::collections::HashMap::new(),
            builtins: Vec::new(),
            keep: None,
            newest: Arc::new(Newest::in_memory()),
        }
    }

    /// Refuses versions older than the newest of their name in `newest`.
    pub fn remembering(mut self, newest: Newest) -> Self {
        self.newest = Arc::new(newest);
        self
    }

    /// Scopes trusted keys: a bundle signed by key `id` loads only when its set name
    /// matches one of the names (`*` at the end matches any rest).
    pub fn scoping(mut self, scopes: std::collections::HashMap<String, Vec<String>>) -> Self {
        self.scopes = scopes;
        self
    }

    /// With trusted keys configured, only these built-in references load (the ones the
    /// config lists): the binary ships sets no one signed for this deployment.
    pub fn allowing_builtins(mut self, references: Vec<String>) -> Self {
        self.builtins = references;
        self
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
        let v = self.load_any(source).await?;
        let id = v.set.identity();
        // Checked again, and remembered, when it is added (`App::change_sets`).
        self.newest.check(&id.name, &id.version)?;
        Ok(v)
    }

    /// Whether version `version` of `name` may be added now (not older than the
    /// newest of its name ever served).
    pub fn may_add(&self, name: &str, version: &str) -> Result<(), String> {
        self.newest.check(name, version)
    }

    /// Remembers that version `version` of `name` was added.
    pub fn added(&self, name: &str, version: &str) {
        self.newest.record(name, version);
    }

    /// Refuses `v` when it is older than the newest version of its name ever loaded;
    /// otherwise remembers it (see [`crate::newest`]).
    pub fn admit(&self, v: &Version) -> Result<(), String> {
        let id = v.set.identity();
        self.newest.admit(&id.name, &id.version)
    }

    /// Loads a version this server held before (restoring after a restart): it may
    /// be older than the newest of its name, as it was when it was held.
    pub async fn load_held(&self, source: Source) -> Result<Version, String> {
        self.load_any(source).await
    }

    async fn load_any(&self, source: Source) -> Result<Version, String> {
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
                if self.requires_signatures() && !self.builtins.contains(&r) {
                    return Err(format!(
                        "`{r}` is a built-in set, and this server only loads signed bundles: built-in sets load only when the config lists them"
                    ));
                }
                // Compiled into the binary and listed by the operator.
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
        if let Some(names) = signer.as_ref().and_then(|k| self.scopes.get(k)) {
            let name = &set.identity().name;
            if !names.iter().any(|n| name_matches(n, name)) {
                return Err(format!(
                    "policy set `{name}` is signed by key `{}`, which is trusted only for {}",
                    signer.as_deref().unwrap_or_default(),
                    names.join(", ")
                ));
            }
        }
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

/// Whether a scoped key's `pattern` covers set `name` (`pci-*` covers `pci-eu`).
fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Reads the trusted public keys.
pub fn trusted_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    paths
        .iter()
        .map(|p: &PathBuf| PublicKey::load(Path::new(p)).map_err(anyhow::Error::from))
        .collect()
}
