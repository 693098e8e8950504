//! The policy sets a server answers with: per set name, the enforced version, an
//! optional shadow version, and the versions loaded before (for rollback). Readers get
//! a consistent snapshot without locks; every change builds a new snapshot and swaps
//! it in one step, so a request sees one whole version, never a half-changed one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arbiter_core::Outcome;
use arbiter_runtime::PolicySet;
use arc_swap::ArcSwap;

/// Versions kept per set name (enforced and shadow included): enough to roll back
/// through a day of changes without keeping every compiled plugin forever.
pub const MAX_VERSIONS: usize = 16;

/// One loaded version of a set, with where it came from.
#[derive(Debug)]
pub struct Version {
    /// The compiled, configured set.
    pub set: Arc<PolicySet>,
    /// `builtin:NAME`, a path, or `upload`.
    pub origin: String,
    /// The key id that signed its bundle, when it came signed.
    pub signer: Option<String>,
    /// When it was loaded, unix microseconds.
    pub loaded_micros: i64,
    /// When it was last made enforced or shadow, unix microseconds (0: never).
    pub activated_micros: AtomicU64,
    /// How to load it again after a restart: `builtin:NAME` or a bundle file kept in
    /// the data directory.
    pub restore_from: Option<String>,
}

impl Version {
    /// A version loaded now.
    pub fn new(set: PolicySet, origin: impl Into<String>, signer: Option<String>) -> Self {
        Self {
            set: Arc::new(set),
            origin: origin.into(),
            signer,
            loaded_micros: arbiter_store::now_micros(),
            activated_micros: AtomicU64::new(0),
            restore_from: None,
        }
    }

    fn touch(&self) {
        let now = u64::try_from(arbiter_store::now_micros()).unwrap_or(0);
        self.activated_micros.store(now, Ordering::Relaxed);
    }

    /// Whether `key` names this version: its version string, or a digest prefix of at
    /// least 8 hex digits.
    pub fn is(&self, key: &str) -> bool {
        let id = self.set.identity();
        id.version == key || (key.len() >= 8 && id.digest.starts_with(key))
    }
}

/// How a shadow version compares with the enforced one, since it started shadowing.
#[derive(Debug, Default)]
pub struct ShadowStats {
    /// Decisions evaluated by both.
    pub compared: AtomicU64,
    /// Shadow evaluations skipped because no evaluation slot was free.
    pub shed: AtomicU64,
    divergences: Mutex<BTreeMap<(Outcome, Outcome), u64>>,
}

impl ShadowStats {
    /// Counts one comparison; `true` when the outcomes differ.
    pub fn compare(&self, enforced: Outcome, shadow: Outcome) -> bool {
        self.compared.fetch_add(1, Ordering::Relaxed);
        if enforced == shadow {
            return false;
        }
        let mut d = self.divergences.lock().unwrap_or_else(|e| e.into_inner());
        *d.entry((enforced, shadow)).or_default() += 1;
        true
    }

    /// Divergences by (enforced, shadow) outcome.
    pub fn divergences(&self) -> BTreeMap<(Outcome, Outcome), u64> {
        self.divergences
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A shadow version and its comparison so far.
#[derive(Debug, Clone)]
pub struct Shadow {
    /// The version evaluated in shadow.
    pub version: Arc<Version>,
    /// Its comparison with the enforced version.
    pub stats: Arc<ShadowStats>,
}

/// Everything loaded under one set name.
#[derive(Debug, Clone)]
pub struct Named {
    /// The version that answers.
    pub enforced: Arc<Version>,
    /// The version evaluated beside it, if any.
    pub shadow: Option<Shadow>,
    /// Every loaded version, newest first (enforced and shadow included).
    pub versions: Vec<Arc<Version>>,
    /// Digests in the order they were enforced, most recent last.
    enforced_history: Vec<String>,
}

#[derive(Debug, Default)]
struct Registry {
    default: String,
    names: BTreeMap<String, Named>,
}

/// What a request routes to.
#[derive(Debug, Clone)]
pub struct Route {
    /// The enforced set.
    pub set: Arc<PolicySet>,
    /// The shadow, if any.
    pub shadow: Option<Shadow>,
}

/// A registry state to restore.
#[derive(Debug, Clone)]
pub struct Snapshot(Arc<Registry>);

mod error;
#[cfg(test)]
mod tests;

pub use error::SetError;

/// The loaded sets, by name.
#[derive(Debug)]
pub struct Sets {
    inner: ArcSwap<Registry>,
    /// Changes are serialised; readers never wait for them.
    changes: Mutex<()>,
}

impl Sets {
    /// A registry of `sets` (all enforced), the first being the default unless
    /// `default` names another.
    pub fn new(sets: Vec<Version>, default: Option<&str>) -> Result<Self, SetError> {
        let first = sets
            .first()
            .map(|s| s.set.identity().name.clone())
            .ok_or(SetError::NoSets)?;
        let mut names = BTreeMap::new();
        for v in sets {
            let name = v.set.identity().name.clone();
            let v = Arc::new(v);
            v.touch();
            let named = Named {
                enforced: v.clone(),
                shadow: None,
                versions: vec![v.clone()],
                enforced_history: vec![v.set.identity().digest.clone()],
            };
            if names.insert(name.clone(), named).is_some() {
                return Err(SetError::DuplicateName { name });
            }
        }
        let default = default.map_or(first, str::to_string);
        if !names.contains_key(&default) {
            return Err(SetError::UnknownDefault {
                name: default,
                loaded: names.keys().cloned().collect(),
            });
        }
        Ok(Self {
            inner: ArcSwap::from_pointee(Registry { default, names }),
            changes: Mutex::new(()),
        })
    }

    /// The enforced set named `name` (or the default) and its shadow.
    pub fn route(&self, name: Option<&str>) -> Option<Route> {
        let r = self.inner.load();
        let n = r.names.get(name.unwrap_or(&r.default))?;
        Some(Route {
            set: n.enforced.set.clone(),
            shadow: n.shadow.clone(),
        })
    }

    /// The enforced set named `name`, or the default set for `None`.
    pub fn get(&self, name: Option<&str>) -> Option<Arc<PolicySet>> {
        self.route(name).map(|r| r.set)
    }

    /// Name of the default set.
    pub fn default_name(&self) -> String {
        self.inner.load().default.clone()
    }

    /// Every enforced set.
    pub fn all(&self) -> Vec<Arc<PolicySet>> {
        self.inner
            .load()
            .names
            .values()
            .map(|n| n.enforced.set.clone())
            .collect()
    }

    /// Every loaded version of every set (for status and metrics).
    pub fn named(&self) -> Vec<(String, Named)> {
        self.inner
            .load()
            .names
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// One set name's versions.
    pub fn get_named(&self, name: &str) -> Option<Named> {
        self.inner.load().names.get(name).cloned()
    }

    /// The whole registry as it is now, to put back with [`Sets::restore`] if a change
    /// cannot be recorded.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(self.inner.load_full())
    }

    /// Puts back a [`Sets::snapshot`].
    pub fn restore(&self, snapshot: Snapshot) {
        let _one_at_a_time = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.store(snapshot.0);
    }

    /// Applies `change` to a copy of the entry for `name` and swaps it in whole.
    fn change<T>(
        &self,
        name: &str,
        change: impl FnOnce(Option<Named>) -> Result<(Named, T), SetError>,
    ) -> Result<T, SetError> {
        let _one_at_a_time = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.inner.load_full();
        let (named, out) = change(current.names.get(name).cloned())?;
        let mut names = current.names.clone();
        names.insert(name.to_string(), named);
        self.inner.store(Arc::new(Registry {
            default: current.default.clone(),
            names,
        }));
        Ok(out)
    }

    /// Adds a loaded version. A new set name must be enforced; a version whose digest
    /// is already loaded is not added twice.
    pub fn add(&self, v: Version, enforce: bool, shadow: bool) -> Result<(), SetError> {
        let name = v.set.identity().name.clone();
        let v = Arc::new(v);
        self.change(&name, |named| {
            let Some(mut named) = named else {
                if !enforce {
                    return Err(SetError::NotEnforcedYet {
                        name: name.clone(),
                        version: v.set.identity().version.clone(),
                    });
                }
                v.touch();
                return Ok((
                    Named {
                        enforced: v.clone(),
                        shadow: None,
                        versions: vec![v.clone()],
                        enforced_history: vec![v.set.identity().digest.clone()],
                    },
                    (),
                ));
            };
            let digest = v.set.identity().digest.clone();
            let existing = named
                .versions
                .iter()
                .find(|x| x.set.identity().digest == digest)
                .cloned();
            let v = existing.unwrap_or_else(|| {
                named.versions.insert(0, v.clone());
                v
            });
            if enforce {
                enforce_version(&mut named, v);
            } else if shadow {
                shadow_version(&mut named, v)?;
            }
            prune(&mut named);
            Ok((named, ()))
        })
    }

    /// Enforces the loaded version `key` of `name` (promotes a shadow).
    pub fn activate(&self, name: &str, key: &str) -> Result<(), SetError> {
        self.change(name, |named| {
            let mut named = named.ok_or_else(|| unknown(name))?;
            let v = find(&named, name, key)?;
            enforce_version(&mut named, v);
            Ok((named, ()))
        })
    }

    /// Shadows the loaded version `key` of `name`.
    pub fn shadow(&self, name: &str, key: &str) -> Result<(), SetError> {
        self.change(name, |named| {
            let mut named = named.ok_or_else(|| unknown(name))?;
            let v = find(&named, name, key)?;
            shadow_version(&mut named, v)?;
            Ok((named, ()))
        })
    }

    /// The enforced version becomes the shadow; the version enforced before it is
    /// enforced again.
    pub fn demote(&self, name: &str) -> Result<(), SetError> {
        self.change(name, |named| {
            let mut named = named.ok_or_else(|| unknown(name))?;
            let current = named.enforced.clone();
            let previous = previous_enforced(&named).ok_or_else(|| SetError::NoEarlierVersion {
                name: name.to_string(),
            })?;
            enforce_version(&mut named, previous);
            shadow_version(&mut named, current)?;
            Ok((named, ()))
        })
    }

    /// Stops shadowing `name`.
    pub fn clear_shadow(&self, name: &str) -> Result<(), SetError> {
        self.change(name, |named| {
            let mut named = named.ok_or_else(|| unknown(name))?;
            named.shadow = None;
            Ok((named, ()))
        })
    }

    /// Enforces `key` again, or by default the version enforced before the current one.
    pub fn rollback(&self, name: &str, key: Option<&str>) -> Result<(), SetError> {
        self.change(name, |named| {
            let mut named = named.ok_or_else(|| unknown(name))?;
            let v = match key {
                Some(k) => find(&named, name, k)?,
                None => previous_enforced(&named).ok_or_else(|| SetError::NothingToRollBack {
                    name: name.to_string(),
                })?,
            };
            enforce_version(&mut named, v);
            Ok((named, ()))
        })
    }
}

fn unknown(name: &str) -> SetError {
    SetError::UnknownSet {
        name: name.to_string(),
    }
}

fn find(named: &Named, name: &str, key: &str) -> Result<Arc<Version>, SetError> {
    let matches: Vec<_> = named.versions.iter().filter(|v| v.is(key)).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(SetError::UnknownVersion {
            name: name.to_string(),
            key: key.to_string(),
            loaded: named
                .versions
                .iter()
                .map(|v| {
                    let id = v.set.identity();
                    format!(
                        "{} ({})",
                        id.version,
                        id.digest.get(..12).unwrap_or(&id.digest)
                    )
                })
                .collect(),
        }),
        _ => Err(SetError::AmbiguousVersion {
            name: name.to_string(),
            key: key.to_string(),
        }),
    }
}

fn enforce_version(named: &mut Named, v: Arc<Version>) {
    if named
        .shadow
        .as_ref()
        .is_some_and(|s| Arc::ptr_eq(&s.version, &v))
    {
        named.shadow = None;
    }
    v.touch();
    named.enforced_history.push(v.set.identity().digest.clone());
    if named.enforced_history.len() > 4 * MAX_VERSIONS {
        named.enforced_history.remove(0);
    }
    named.enforced = v;
}

fn shadow_version(named: &mut Named, v: Arc<Version>) -> Result<(), SetError> {
    if Arc::ptr_eq(&named.enforced, &v) {
        return Err(SetError::ShadowIsEnforced {
            version: v.set.identity().version.clone(),
        });
    }
    v.touch();
    named.shadow = Some(Shadow {
        version: v,
        stats: Arc::new(ShadowStats::default()),
    });
    Ok(())
}

/// The most recently enforced version, other than the current one, still loaded.
fn previous_enforced(named: &Named) -> Option<Arc<Version>> {
    let current = &named.enforced.set.identity().digest;
    named
        .enforced_history
        .iter()
        .rev()
        .filter(|d| *d != current)
        .find_map(|d| {
            named
                .versions
                .iter()
                .find(|v| &v.set.identity().digest == d)
                .cloned()
        })
}

/// Keeps at most [`MAX_VERSIONS`], dropping the oldest loaded first but never the
/// enforced version, the shadow, or the one `rollback` would go back to.
fn prune(named: &mut Named) {
    let rollback_target = previous_enforced(named);
    while named.versions.len() > MAX_VERSIONS {
        let Some(i) = named.versions.iter().rposition(|v| {
            !Arc::ptr_eq(v, &named.enforced)
                && !named
                    .shadow
                    .as_ref()
                    .is_some_and(|s| Arc::ptr_eq(&s.version, v))
                && !rollback_target.as_ref().is_some_and(|t| Arc::ptr_eq(t, v))
        }) else {
            return;
        };
        named.versions.remove(i);
    }
}

impl Snapshot {
    /// Every loaded version, as (set name, version, digest).
    pub fn loaded(&self) -> Vec<(String, String, String)> {
        self.0
            .names
            .iter()
            .flat_map(|(name, named)| {
                named.versions.iter().map(move |v| {
                    let id = v.set.identity();
                    (name.clone(), id.version.clone(), id.digest.clone())
                })
            })
            .collect()
    }
}
