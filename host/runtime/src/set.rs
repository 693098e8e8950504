//! A loaded policy set: manifest, plugins ready to instantiate, data files, identity.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arbiter_core::{
    Decision, Limits, Manifest, ManifestError, PluginReport, Request, SetIdentity, combine,
};
use sha2::{Digest, Sha256};

use crate::cache;
use crate::plugin::{LoadedPlugin, PluginStatus, PrepareError, Shared};
use crate::sandbox::SetData;
use crate::{Runtime, convert};

/// The manifest's file name inside a set directory or bundle.
pub(crate) const MANIFEST_FILE: &str = "policy-set.toml";
/// Total bytes of a set's data files. Data is copied into a plugin's memory on every
/// read, so it must stay small next to the plugin's memory limit.
pub(crate) const MAX_DATA_BYTES: usize = 16 << 20;
/// Bytes of one plugin file. The largest example runtime (Python) is about 20 MB.
pub(crate) const MAX_PLUGIN_BYTES: usize = 64 << 20;

/// Where a set is loaded from.
#[derive(Debug, Clone)]
pub enum SetSource {
    /// A directory holding `policy-set.toml`, or the path of a manifest file; plugin
    /// and data paths are relative to the manifest's directory.
    Path(PathBuf),
    /// Files in memory (the embedded default set, an unpacked bundle): the manifest
    /// text and every other file by its relative path.
    Files {
        /// Names the source in errors, e.g. `embedded:reference`.
        origin: String,
        /// The manifest text.
        manifest: String,
        /// Plugin and data files by relative path.
        files: BTreeMap<String, Vec<u8>>,
    },
}

/// Why a set was refused. The active set, if any, is untouched.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A file could not be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is larger than allowed.
    #[error("`{path}` is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A plugin's file does not match the digest its manifest pins.
    #[error(
        "plugin `{plugin}`: `{path}` has sha256 {actual}, but the manifest pins {expected}; rebuild the plugin or update `sha256`"
    )]
    Digest {
        /// Plugin name.
        plugin: String,
        /// Its file.
        path: String,
        /// Pinned digest.
        expected: String,
        /// Actual digest.
        actual: String,
    },
    /// A plugin file is a core module, not a component.
    #[error(
        "plugin `{plugin}`: `{path}` is a core WebAssembly module, not a component; build for `wasm32-wasip2` or wrap it with `wasm-tools component new`"
    )]
    CoreModule {
        /// Plugin name.
        plugin: String,
        /// Its file.
        path: String,
    },
    /// A plugin file is not WebAssembly at all.
    #[error("plugin `{plugin}`: `{path}` is not a WebAssembly component (wrong header)")]
    NotWasm {
        /// Plugin name.
        plugin: String,
        /// Its file.
        path: String,
    },
    /// The component does not compile.
    #[error("plugin `{plugin}`: `{path}` does not compile: {message}")]
    Compile {
        /// Plugin name.
        plugin: String,
        /// Its file.
        path: String,
        /// wasmtime's message.
        message: String,
    },
    /// The component does not fit the `arbiter:policy` world (wrong exports, imports the
    /// host does not provide).
    #[error("plugin `{plugin}` does not fit the `arbiter:policy/policy@0.1.0` world: {message}")]
    Contract {
        /// Plugin name.
        plugin: String,
        /// What does not fit.
        message: String,
    },
    /// The plugin trapped in `describe` or `configure` at load.
    #[error("plugin `{plugin}` failed while loading: {message}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// The trap.
        message: String,
    },
    /// The plugin refused its settings.
    #[error("plugin `{plugin}` refused its settings: {message}")]
    Configure {
        /// Plugin name.
        plugin: String,
        /// The plugin's own message.
        message: String,
    },
}

/// A loaded, verified policy set, ready to decide. Immutable: a new version is a new
/// `PolicySet`, swapped in whole.
pub struct PolicySet {
    manifest: Manifest,
    identity: SetIdentity,
    plugins: Vec<Shared>,
    data: SetData,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl PolicySet {
    /// Reads, verifies, compiles and configures a set. Compilation runs on a blocking
    /// thread, off the request path.
    pub async fn load(
        runtime: &Runtime,
        source: SetSource,
        defaults: Limits,
    ) -> Result<Self, LoadError> {
        let files = Files::open(source)?;
        let manifest = Manifest::parse(&files.manifest, &files.manifest_name, defaults)?;
        let mut hasher = Sha256::new();
        hasher.update(files.manifest.as_bytes());

        let mut data = BTreeMap::new();
        let mut data_bytes = 0;
        for name in &manifest.data {
            let bytes = files.read(name, MAX_DATA_BYTES)?;
            data_bytes += bytes.len();
            if data_bytes > MAX_DATA_BYTES {
                return Err(LoadError::TooLarge {
                    path: files.display(name),
                    size: data_bytes,
                    limit: MAX_DATA_BYTES,
                });
            }
            hasher.update(name.as_bytes());
            hasher.update(Sha256::digest(&bytes));
            data.insert(name.clone(), Arc::<[u8]>::from(bytes));
        }
        let data: SetData = Arc::new(data);

        let mut plugins = Vec::with_capacity(manifest.plugins.len());
        for spec in &manifest.plugins {
            let path = files.display(&spec.path);
            let bytes = files.read(&spec.path, MAX_PLUGIN_BYTES)?;
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            if let Some(expected) = spec.sha256
                && expected != digest
            {
                return Err(LoadError::Digest {
                    plugin: spec.name.clone(),
                    path,
                    expected: hex::encode(expected),
                    actual: hex::encode(digest),
                });
            }
            match cache::kind(&bytes) {
                cache::Kind::Component => {}
                cache::Kind::CoreModule => {
                    return Err(LoadError::CoreModule {
                        plugin: spec.name.clone(),
                        path,
                    });
                }
                cache::Kind::NotWasm => {
                    return Err(LoadError::NotWasm {
                        plugin: spec.name.clone(),
                        path,
                    });
                }
            }
            hasher.update(spec.name.as_bytes());
            hasher.update(digest);
            let plugin = LoadedPlugin::prepare(runtime, spec.clone(), digest, bytes, &data)
                .await
                .map_err(|e| match e {
                    PrepareError::Compile(e) => LoadError::Compile {
                        plugin: spec.name.clone(),
                        path: path.clone(),
                        message: format!("{e:#}"),
                    },
                    PrepareError::Link(e) => LoadError::Contract {
                        plugin: spec.name.clone(),
                        message: format!("{e:#}"),
                    },
                    PrepareError::Trap(e) => LoadError::Trap {
                        plugin: spec.name.clone(),
                        message: format!("{e:#}"),
                    },
                    PrepareError::Configure(message) => LoadError::Configure {
                        plugin: spec.name.clone(),
                        message,
                    },
                })?;
            plugins.push(Arc::new(plugin));
        }
        let identity = SetIdentity {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            digest: hex::encode(hasher.finalize()),
        };
        tracing::info!(set = %identity.name, version = %identity.version, digest = %identity.digest, plugins = plugins.len(), "policy set loaded");
        Ok(Self {
            manifest,
            identity,
            plugins,
            data,
        })
    }

    /// Decides one request: every plugin in a fresh sandbox, in manifest order, then
    /// the set's combining algorithm. `approval_verified` is true only when the host
    /// has verified a human approval bound to exactly this request.
    pub async fn decide(&self, request: &Request, approval_verified: bool) -> Decision {
        self.decide_as(request, approval_verified, "").await
    }

    /// [`PolicySet::decide`] for `caller` (the identity that sent the request): a
    /// plugin is quarantined only when its failures in a row came from more than one
    /// caller, so one caller's crafted inputs cannot quarantine it for everyone.
    pub async fn decide_as(
        &self,
        request: &Request,
        approval_verified: bool,
        caller: &str,
    ) -> Decision {
        let started = Instant::now();
        let wit_request = convert::request(request, approval_verified);
        let mut reports = Vec::with_capacity(self.plugins.len());
        for plugin in &self.plugins {
            let t = Instant::now();
            let outcome = plugin.evaluate(&wit_request, &self.data, caller).await;
            reports.push(PluginReport {
                name: plugin.spec.name.clone(),
                outcome,
                elapsed: t.elapsed(),
            });
        }
        let combined = combine(
            self.manifest.combining,
            self.plugins
                .iter()
                .zip(&reports)
                .map(|(p, r)| (p.spec.on_error, &r.outcome)),
        );
        Decision {
            id: uuid::Uuid::now_v7().to_string(),
            outcome: combined.outcome,
            reasons: combined.reasons,
            obligations: combined.obligations,
            set: self.identity.clone(),
            plugins: reports,
            elapsed: started.elapsed(),
        }
    }

    /// Name, version and digest.
    pub fn identity(&self) -> &SetIdentity {
        &self.identity
    }

    /// The validated manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Releases the named plugin from quarantine. `None` when the set has no such
    /// plugin; otherwise whether it was quarantined.
    pub fn release(&self, plugin: &str) -> Option<bool> {
        self.plugins
            .iter()
            .find(|p| p.spec.name == plugin)
            .map(|p| p.release())
    }

    /// Each plugin's description, digest and counters.
    pub fn plugin_status(&self) -> Vec<PluginStatus> {
        self.plugins.iter().map(|p| p.status()).collect()
    }
}

/// The files of a set, on disk or in memory.
struct Files {
    manifest_name: String,
    manifest: String,
    base: Base,
}

enum Base {
    Dir(PathBuf),
    Memory {
        origin: String,
        files: BTreeMap<String, Vec<u8>>,
    },
}

impl Files {
    fn open(source: SetSource) -> Result<Self, LoadError> {
        match source {
            SetSource::Path(path) => {
                let manifest_path = if path.is_dir() {
                    path.join(MANIFEST_FILE)
                } else {
                    path
                };
                let manifest =
                    std::fs::read_to_string(&manifest_path).map_err(|source| LoadError::Read {
                        path: manifest_path.display().to_string(),
                        source,
                    })?;
                let dir = manifest_path
                    .parent()
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
                Ok(Self {
                    manifest_name: manifest_path.display().to_string(),
                    manifest,
                    base: Base::Dir(dir),
                })
            }
            SetSource::Files {
                origin,
                manifest,
                files,
            } => Ok(Self {
                manifest_name: format!("{origin}/{MANIFEST_FILE}"),
                manifest,
                base: Base::Memory { origin, files },
            }),
        }
    }

    fn display(&self, rel: &str) -> String {
        match &self.base {
            Base::Dir(dir) => dir.join(rel).display().to_string(),
            Base::Memory { origin, .. } => format!("{origin}/{rel}"),
        }
    }

    fn read(&self, rel: &str, limit: usize) -> Result<Vec<u8>, LoadError> {
        let path = self.display(rel);
        let bytes = match &self.base {
            Base::Dir(dir) => {
                let full = dir.join(rel);
                let size = std::fs::metadata(&full)
                    .map_err(|source| LoadError::Read {
                        path: path.clone(),
                        source,
                    })?
                    .len();
                if size > limit as u64 {
                    return Err(LoadError::TooLarge {
                        path,
                        size: usize::try_from(size).unwrap_or(usize::MAX),
                        limit,
                    });
                }
                std::fs::read(&full).map_err(|source| LoadError::Read {
                    path: path.clone(),
                    source,
                })?
            }
            Base::Memory { files, .. } => {
                files.get(rel).cloned().ok_or_else(|| LoadError::Read {
                    path: path.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such file in the set",
                    ),
                })?
            }
        };
        if bytes.len() > limit {
            return Err(LoadError::TooLarge {
                path,
                size: bytes.len(),
                limit,
            });
        }
        Ok(bytes)
    }
}
