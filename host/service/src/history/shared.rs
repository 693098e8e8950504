//! The sets' history in the state database replicas share (PostgreSQL): one policy
//! truth. A change made on any replica is published there (the bundles it needs, once,
//! and the name's new state, over the revision the replica last saw); every replica
//! follows the stored state, loading the versions it lacks from the stored bundles
//! through its own [`crate::loader::Loader`], so each verifies signatures and scopes
//! with its own trusted keys. A version a replica refuses leaves it on what it serves,
//! and it says so: each replica reports what it serves under each name, which the
//! status shows beside the others'.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arbiter_store::{
    BundleSource, ReplicaSet, StateStore, StoreError, StoredBundle, StoredSetState,
};

use crate::app::App;
use crate::embedded;
use crate::loader::Source;
use crate::sets::{Named, Version};

/// Why a change could not be shared with the other replicas (it is then undone).
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// Another replica changed the same set first.
    #[error(
        "policy set `{name}` was changed on another replica meanwhile, so this change was not made; look at its status and try again"
    )]
    Conflict {
        /// The set name.
        name: String,
    },
    /// The state database cannot be read or written.
    #[error("the state database cannot store the policy-set change")]
    Store(#[source] StoreError),
    /// A version's bundle is not kept in the data directory, so it cannot be shared.
    #[error("the bundle of `{name}` version `{version}` cannot be read to share it: {reason}")]
    Unkept {
        /// The set name.
        name: String,
        /// The version.
        version: String,
        /// Why.
        reason: String,
    },
}

/// Who the record of a configured version enforced at start names as the actor.
pub const CONFIG_ACTOR: &str = "config";

/// This replica's view of the shared sets.
#[derive(Debug)]
pub struct Shared {
    store: Arc<dyn StateStore>,
    replica: String,
    /// The global revision last applied here.
    applied: AtomicI64,
    /// Per name, the stored state last applied or published here.
    seen: Mutex<BTreeMap<String, StoredSetState>>,
    /// Digests known to be stored.
    stored: Mutex<HashSet<String>>,
    /// Digests this replica refused to load, with why: not tried again.
    refused: Mutex<HashMap<String, String>>,
    /// Per name, why this replica does not serve the stored state.
    errors: Mutex<BTreeMap<String, String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on the store on a blocking thread.
async fn blocking<T: Send + 'static>(
    store: &Arc<dyn StateStore>,
    f: impl FnOnce(&dyn StateStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&*store))
        .await
        .map_err(|e| StoreError::Unreachable(format!("the database call was abandoned: {e}")))?
}

fn digest(v: &Version) -> &str {
    &v.set.identity().digest
}

fn short(d: &str) -> &str {
    d.get(..12).unwrap_or(d)
}

impl Shared {
    /// The shared sets in `store`, seen by replica `replica`.
    pub fn new(store: Arc<dyn StateStore>, replica: String) -> Self {
        Self {
            store,
            replica,
            applied: AtomicI64::new(-1),
            seen: Mutex::new(BTreeMap::new()),
            stored: Mutex::new(HashSet::new()),
            refused: Mutex::new(HashMap::new()),
            errors: Mutex::new(BTreeMap::new()),
        }
    }

    /// The stored state of `name` as `named` holds it now.
    fn state_of(&self, name: &str, named: &Named, config: Option<String>) -> StoredSetState {
        StoredSetState {
            name: name.to_string(),
            enforced: digest(&named.enforced).to_string(),
            shadow: named
                .shadow
                .as_ref()
                .map(|s| digest(&s.version).to_string()),
            config,
            versions: named
                .versions
                .iter()
                .map(|v| digest(v).to_string())
                .collect(),
            revision: 0,
            changed_by: self.replica.clone(),
            changed_micros: arbiter_store::now_micros(),
        }
    }

    /// Publishes what this replica holds under `name` (after a change made here), over
    /// the revision it last saw; `config` is the digest the config names, stored with
    /// a name stored for the first time.
    pub async fn publish(
        &self,
        app: &App,
        name: &str,
        config: Option<String>,
    ) -> Result<(), ShareError> {
        let Some(named) = app.sets.get_named(name) else {
            return Ok(());
        };
        let seen = lock(&self.seen).get(name).cloned();
        let config = seen.as_ref().map_or(config, |s| s.config.clone());
        let state = self.state_of(name, &named, config);
        let same = |s: &StoredSetState| {
            (&s.enforced, &s.shadow, &s.versions)
                == (&state.enforced, &state.shadow, &state.versions)
        };
        if seen.as_ref().is_some_and(same) {
            return Ok(());
        }
        let unknown: Vec<String> = {
            let stored = lock(&self.stored);
            state
                .versions
                .iter()
                .filter(|d| !stored.contains(*d))
                .cloned()
                .collect()
        };
        let found = blocking(&self.store, move |s| s.stored_set_bundles(&unknown))
            .await
            .map_err(ShareError::Store)?;
        let mut bundles = Vec::new();
        for v in &named.versions {
            if !lock(&self.stored).contains(digest(v)) && !found.iter().any(|d| d == digest(v)) {
                bundles.push(stored_bundle(v)?);
            }
        }
        let expected = seen.map_or(0, |s| s.revision);
        let publish = state.clone();
        let revision = blocking(&self.store, move |s| {
            s.publish_set(&publish, &bundles, expected)
        })
        .await
        .map_err(ShareError::Store)?
        .ok_or_else(|| ShareError::Conflict {
            name: name.to_string(),
        })?;
        lock(&self.stored).extend(state.versions.iter().cloned());
        lock(&self.errors).remove(name);
        lock(&self.seen).insert(name.to_string(), StoredSetState { revision, ..state });
        // Nothing else was stored in between: this replica is at the newest revision.
        let _ = self.applied.compare_exchange(
            revision - 1,
            revision,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.report(app).await;
        Ok(())
    }

    /// Why this replica does not serve the fleet's stored state of `name`, if it
    /// does not (it refused a stored version).
    pub fn split(&self, name: &str) -> Option<String> {
        lock(&self.errors).get(name).cloned()
    }

    /// Applies the stored state when its revision moved since this replica last
    /// looked (`true` then). The caller holds the set-change lock.
    pub async fn catch_up(&self, app: &App) -> Result<bool, StoreError> {
        let revision = blocking(&self.store, |s| s.set_revision()).await?;
        if revision == self.applied.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let (revision, states) = blocking(&self.store, |s| s.set_states()).await?;
        for state in &states {
            self.apply(app, state).await?;
        }
        self.applied.store(revision, Ordering::SeqCst);
        self.report(app).await;
        Ok(true)
    }

    /// Makes what this replica serves under `state.name` the stored state, as far as
    /// its trust allows.
    async fn apply(&self, app: &App, state: &StoredSetState) -> Result<(), StoreError> {
        let name = &state.name;
        if lock(&self.seen)
            .get(name)
            .is_some_and(|s| s.revision == state.revision)
        {
            return Ok(());
        }
        let have: HashSet<String> = app
            .sets
            .get_named(name)
            .map(|n| n.versions.iter().map(|v| digest(v).to_string()).collect())
            .unwrap_or_default();
        // Oldest first, then the enforced and shadow versions if they are not kept.
        let mut wanted: Vec<&String> = state.versions.iter().rev().collect();
        for d in [Some(&state.enforced), state.shadow.as_ref()]
            .into_iter()
            .flatten()
        {
            if !wanted.contains(&d) {
                wanted.push(d);
            }
        }
        let mut loaded = Vec::new();
        let mut error: Option<String> = None;
        for d in wanted.into_iter().filter(|d| !have.contains(*d)) {
            let known = lock(&self.refused).get(d).cloned();
            let why = match known {
                Some(why) => why,
                None => match self.load(app, d, name).await? {
                    Ok(v) => {
                        loaded.push(v);
                        continue;
                    }
                    Err(why) => {
                        tracing::error!(set = %name, digest = %d, reason = %why, "a policy-set version stored by another replica was refused; this replica keeps serving what it has");
                        lock(&self.refused).insert(d.clone(), why.clone());
                        why
                    }
                },
            };
            if *d == state.enforced || state.shadow.as_ref() == Some(d) {
                error.get_or_insert(format!("version {} refused: {why}", short(d)));
            }
        }
        // A new name arrives enforced; the other versions beside it.
        if app.sets.get_named(name).is_none()
            && let Some(i) = loaded.iter().position(|v| digest(v) == state.enforced)
        {
            let v = loaded.remove(i);
            app.loader.added(name, &v.set.identity().version);
            if let Err(e) = app.sets.add(v, true, false) {
                error.get_or_insert(e.to_string());
            }
        }
        for v in loaded {
            let version = v.set.identity().version.clone();
            match app.sets.add(v, false, false) {
                Ok(()) => app.loader.added(name, &version),
                Err(e) => {
                    error.get_or_insert(e.to_string());
                }
            }
        }
        if let Some(named) = app.sets.get_named(name) {
            let holds = |d: &str| named.versions.iter().any(|v| digest(v) == d);
            if digest(&named.enforced) != state.enforced
                && holds(&state.enforced)
                && let Err(e) = app.sets.activate(name, &state.enforced)
            {
                error.get_or_insert(e.to_string());
            }
            let shadow = named
                .shadow
                .as_ref()
                .map(|s| digest(&s.version).to_string());
            let changed = match &state.shadow {
                Some(d) if shadow.as_ref() != Some(d) && holds(d) => app.sets.shadow(name, d),
                None if shadow.is_some() => app.sets.clear_shadow(name),
                _ => Ok(()),
            };
            if let Err(e) = changed {
                error.get_or_insert(e.to_string());
            }
            if let Some(n) = app.sets.get_named(name) {
                let id = n.enforced.set.identity();
                tracing::info!(set = %name, version = %id.version, digest = %id.digest, shadow = n.shadow.is_some(), by = %state.changed_by, revision = state.revision, "following the shared policy-set state");
            }
        }
        match error {
            Some(e) => lock(&self.errors).insert(name.clone(), e),
            None => lock(&self.errors).remove(name),
        };
        lock(&self.stored).extend(state.versions.iter().cloned());
        lock(&self.seen).insert(name.clone(), state.clone());
        Ok(())
    }

    /// Loads stored version `digest` with this replica's trust: `Err` says why it was
    /// refused; the outer error is the database's.
    async fn load(
        &self,
        app: &App,
        digest: &str,
        name: &str,
    ) -> Result<Result<Version, String>, StoreError> {
        let d = digest.to_string();
        let Some(b) = blocking(&self.store, move |s| s.set_bundle(&d)).await? else {
            return Ok(Err("the state database holds no bundle for it".into()));
        };
        let source = match b.source {
            BundleSource::Bytes(bytes) => Source::Bundle(bytes),
            // Only a built-in set is stored by reference: never a path on this host.
            BundleSource::Builtin(r) if r.starts_with(crate::embedded::PREFIX) => {
                Source::Reference(r)
            }
            BundleSource::Builtin(r) => {
                return Ok(Err(format!("`{r}` is not a built-in set reference")));
            }
        };
        // Held by the fleet already: the replica that stored it checked that it is not
        // older than the newest of its name.
        let mut v = match app.loader.load_held(source).await {
            Ok(v) => v,
            Err(why) => return Ok(Err(why)),
        };
        if v.set.identity().name != name {
            return Ok(Err(format!(
                "the stored bundle is a version of `{}`, not of `{name}`",
                v.set.identity().name
            )));
        }
        if v.set.identity().digest != digest {
            return Ok(Err(format!(
                "the stored bundle has digest {}, not the one it is stored under",
                v.set.identity().digest
            )));
        }
        v.origin = b.origin;
        Ok(Ok(v))
    }

    /// Records what this replica serves now (logged, never fatal: it is for status).
    pub async fn report(&self, app: &App) {
        let now = arbiter_store::now_micros();
        let errors = lock(&self.errors).clone();
        let mut rows: Vec<ReplicaSet> = app
            .sets
            .named()
            .into_iter()
            .map(|(name, n)| ReplicaSet {
                replica_id: self.replica.clone(),
                enforced_digest: digest(&n.enforced).to_string(),
                enforced_version: n.enforced.set.identity().version.clone(),
                shadow_digest: n.shadow.as_ref().map(|s| digest(&s.version).to_string()),
                error: errors.get(&name).cloned(),
                updated_micros: now,
                name,
            })
            .collect();
        // A name this replica could not load at all.
        for (name, e) in errors {
            if !rows.iter().any(|r| r.name == name) {
                rows.push(ReplicaSet {
                    replica_id: self.replica.clone(),
                    name,
                    enforced_digest: String::new(),
                    enforced_version: String::new(),
                    shadow_digest: None,
                    error: Some(e),
                    updated_micros: now,
                });
            }
        }
        let replica = self.replica.clone();
        if let Err(e) = blocking(&self.store, move |s| s.record_replica_sets(&replica, &rows)).await
        {
            tracing::warn!(error = %e, "cannot record which policy-set versions this replica serves");
        }
    }

    /// What every replica last said it serves.
    pub async fn replicas(&self) -> Result<Vec<ReplicaSet>, StoreError> {
        blocking(&self.store, |s| s.replica_sets()).await
    }

    /// At start: the stored state wins (the running fleet's truth), except for a
    /// configured version the database never held (the operator meant the new one:
    /// it is stored and enforced). `config` is each configured name's digest.
    pub async fn start(
        &self,
        app: &App,
        config: &BTreeMap<String, String>,
    ) -> Result<(), ShareError> {
        let _one_change_at_a_time = app.set_changes.lock().await;
        let (_, states) = blocking(&self.store, |s| s.set_states())
            .await
            .map_err(ShareError::Store)?;
        let digests: Vec<String> = config.values().cloned().collect();
        let held = blocking(&self.store, move |s| s.stored_set_bundles(&digests))
            .await
            .map_err(ShareError::Store)?;
        self.catch_up(app).await.map_err(ShareError::Store)?;
        for (name, d) in config {
            let known = states.iter().any(|s| &s.name == name) && held.contains(d);
            if known {
                continue;
            }
            let enforced = app.sets.get_named(name).map(|n| digest(&n.enforced) == d);
            if enforced == Some(false)
                && let Err(e) = app.sets.activate(name, d)
            {
                tracing::warn!(set = %name, error = %e, "cannot enforce the configured version");
                continue;
            }
            match self.publish(app, name, Some(d.clone())).await {
                Ok(()) => {
                    tracing::info!(set = %name, digest = %d, "the config names a version the shared state never held: stored and enforced on every replica");
                    // A change of the fleet's policy, so an act on record like the others.
                    let act = crate::events::AdminAct::Set {
                        act: crate::events::SetAct::Activate { version: d.clone() },
                        set: name.clone(),
                        unloaded: Vec::new(),
                        refused: None,
                    };
                    let actor = CONFIG_ACTOR;
                    let event = crate::events::AuditEvent::Admin { actor, act };
                    if let Err(e) = app.record(event).await {
                        tracing::error!(set = %name, error = %e, "cannot record that the configured version was enforced on every replica");
                    }
                }
                // Another replica starting at the same time stored it first.
                Err(ShareError::Conflict { .. }) => {
                    self.catch_up(app).await.map_err(ShareError::Store)?;
                }
                Err(e) => return Err(e),
            }
        }
        self.report(app).await;
        Ok(())
    }
}

/// What the database keeps of `v`: its kept bundle's bytes, or its built-in name.
fn stored_bundle(v: &Version) -> Result<StoredBundle, ShareError> {
    let id = v.set.identity();
    let unkept = |reason: String| ShareError::Unkept {
        name: id.name.clone(),
        version: id.version.clone(),
        reason,
    };
    let source = match &v.restore_from {
        Some(r) if r.starts_with(embedded::PREFIX) => BundleSource::Builtin(r.clone()),
        Some(path) => BundleSource::Bytes(std::fs::read(path).map_err(|e| unkept(e.to_string()))?),
        None => {
            return Err(unkept(
                "no copy was kept in the data directory (see the log)".into(),
            ));
        }
    };
    Ok(StoredBundle {
        digest: id.digest.clone(),
        name: id.name.clone(),
        version: id.version.clone(),
        source,
        origin: v.origin.clone(),
        signer: v.signer.clone(),
        added_micros: arbiter_store::now_micros(),
    })
}
