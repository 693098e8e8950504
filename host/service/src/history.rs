//! Which set versions a server had loaded and which it enforced or shadowed, kept in
//! `<data_dir>/sets/state.json` (with each version's bundle beside it), so a restart
//! comes back as it was rather than to whatever the config named at first.
//!
//! The config still wins when it changed: if the set a config names is not the one it
//! named when the state was saved, the operator meant the new one; the kept versions
//! are then loaded for rollback but not activated.
//!
//! When replicas share a PostgreSQL state database, the history lives there instead
//! ([`shared`]), and every replica follows it ([`follow`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::loader::{Loader, Source};
use crate::sets::Sets;

pub mod follow;
pub mod shared;

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    names: BTreeMap<String, NameState>,
}

#[derive(Debug, Serialize, Deserialize)]
struct NameState {
    enforced: String,
    shadow: Option<String>,
    /// The digest the config named for this set when the state was saved.
    config: Option<String>,
    /// Newest first.
    versions: Vec<Kept>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    digest: String,
    version: String,
    restore_from: String,
}

/// The saved state of a server's sets.
#[derive(Debug, Clone)]
pub struct History {
    file: PathBuf,
    /// Set name to the digest the config named at this start.
    config: BTreeMap<String, String>,
    /// The history in the state database replicas share, instead of the file.
    pub(crate) shared: Option<Arc<shared::Shared>>,
}

impl History {
    /// The history in `<data_dir>/sets`, for a server whose config named `sets`.
    pub fn new(data_dir: &Path, configured: &Sets) -> Self {
        Self {
            file: data_dir.join("sets").join("state.json"),
            config: configured
                .all()
                .iter()
                .map(|s| (s.identity().name.clone(), s.identity().digest.clone()))
                .collect(),
            shared: None,
        }
    }

    /// Keeps the history in `store`, when given (a database replicas share), shared
    /// with the other replicas, as replica `replica`.
    pub fn sharing(
        mut self,
        store: Option<Arc<dyn arbiter_store::StateStore>>,
        replica: &str,
    ) -> Self {
        self.shared = store.map(|s| Arc::new(shared::Shared::new(s, replica.to_string())));
        self
    }

    /// The shared history, when replicas share it.
    pub fn shared(&self) -> Option<&Arc<shared::Shared>> {
        self.shared.as_ref()
    }

    /// The digests of every version of `name` the saved state holds (enforced,
    /// shadowed or kept for rollback): versions the server held before.
    pub fn held(data_dir: &Path, name: &str) -> Vec<String> {
        let file = data_dir.join("sets").join("state.json");
        let Some(state) = std::fs::read(file)
            .ok()
            .and_then(|b| serde_json::from_slice::<State>(&b).ok())
        else {
            return Vec::new();
        };
        state
            .names
            .get(name)
            .map(|n| {
                let mut d: Vec<String> = n.versions.iter().map(|k| k.digest.clone()).collect();
                d.push(n.enforced.clone());
                d.extend(n.shadow.clone());
                d
            })
            .unwrap_or_default()
    }

    /// Where kept bundles go.
    pub fn dir(&self) -> PathBuf {
        self.file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// Saves what `sets` holds now (atomically: a crash leaves the old or the new file);
    /// nothing when the history is shared (each change is published as it is made).
    pub fn save(&self, sets: &Sets) {
        if self.shared.is_some() {
            return;
        }
        let mut state = State::default();
        for (name, named) in sets.named() {
            let digest = |v: &crate::sets::Version| v.set.identity().digest.clone();
            state.names.insert(
                name.clone(),
                NameState {
                    enforced: digest(&named.enforced),
                    shadow: named.shadow.as_ref().map(|s| digest(&s.version)),
                    config: self.config.get(&name).cloned(),
                    versions: named
                        .versions
                        .iter()
                        .filter_map(|v| {
                            Some(Kept {
                                digest: digest(v),
                                version: v.set.identity().version.clone(),
                                restore_from: v.restore_from.clone()?,
                            })
                        })
                        .collect(),
                },
            );
        }
        let write = || -> std::io::Result<()> {
            arbiter_runtime::create_private_dir(&self.dir())?;
            let tmp = self.file.with_extension("json.tmp");
            let file = std::fs::File::create(&tmp)?;
            serde_json::to_writer_pretty(&file, &state)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.file)
        };
        if let Err(e) = write() {
            tracing::warn!(file = %self.file.display(), error = %e, "cannot save the policy-set state; a restart will serve what the config names");
        }
    }

    /// Loads the kept versions and, where the config did not change, re-applies which
    /// one was enforced and which shadowed. Problems are logged, never fatal: the server
    /// then serves what its config names.
    pub async fn restore(&self, loader: &Loader, sets: &Sets) {
        let state: State = match std::fs::read(&self.file) {
            Err(_) => return,
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(file = %self.file.display(), error = %e, "ignoring an unreadable policy-set state file");
                    return;
                }
            },
        };
        for (name, saved) in state.names {
            let loaded: Vec<String> = sets
                .get_named(&name)
                .map(|n| {
                    n.versions
                        .iter()
                        .map(|v| v.set.identity().digest.clone())
                        .collect()
                })
                .unwrap_or_default();
            // Oldest first, so the restored order matches the saved one.
            for kept in saved.versions.iter().rev() {
                if loaded.contains(&kept.digest) {
                    continue;
                }
                let v = match loader
                    .load_held(Source::Reference(kept.restore_from.clone()))
                    .await
                {
                    Ok(v) if v.set.identity().digest == kept.digest => v,
                    Ok(_) => {
                        tracing::warn!(set = %name, version = %kept.version, "a kept bundle no longer has the digest it was saved with; not restored");
                        continue;
                    }
                    Err(why) => {
                        tracing::warn!(set = %name, version = %kept.version, reason = %why, "a kept set version was refused on restore");
                        continue;
                    }
                };
                let is_enforced = v.set.identity().digest == saved.enforced;
                let new_name = sets.get_named(&name).is_none();
                if let Err(e) = sets.add(v, new_name && is_enforced, false) {
                    tracing::warn!(set = %name, version = %kept.version, error = %e, "cannot restore a kept set version");
                }
            }
            let config_unchanged = match (self.config.get(&name), &saved.config) {
                (Some(now), Some(then)) => now == then,
                (None, _) => true,
                (Some(_), None) => false,
            };
            if !config_unchanged {
                tracing::info!(set = %name, "the config names another version than before the restart; serving it, with the kept versions ready for rollback");
                continue;
            }
            if let Err(e) = sets.activate(&name, &saved.enforced) {
                tracing::warn!(set = %name, error = %e, "cannot re-enforce the version enforced before the restart");
            }
            if let Some(shadow) = &saved.shadow
                && let Err(e) = sets.shadow(&name, shadow)
            {
                tracing::warn!(set = %name, error = %e, "cannot restore the shadow version");
            }
            if let Some(n) = sets.get_named(&name) {
                let id = n.enforced.set.identity();
                tracing::info!(set = %name, version = %id.version, versions = n.versions.len(), shadow = n.shadow.is_some(), "restored policy-set state");
            }
        }
    }
}
