//! The policy sets a server answers with, by name, swapped whole.

use std::collections::BTreeMap;
use std::sync::Arc;

use arbiter_runtime::PolicySet;
use arc_swap::ArcSwap;

/// The loaded sets and which one answers requests that name none. Reads are
/// lock-free; a change replaces the whole map, so a request sees one consistent set.
#[derive(Debug)]
pub struct Sets {
    inner: ArcSwap<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    default: String,
    by_name: BTreeMap<String, Arc<PolicySet>>,
}

impl Sets {
    /// A registry of `sets`, the first being the default unless `default` names another.
    pub fn new(sets: Vec<PolicySet>, default: Option<&str>) -> Result<Self, String> {
        let first = sets
            .first()
            .map(|s| s.identity().name.clone())
            .ok_or("no policy set configured")?;
        let mut by_name = BTreeMap::new();
        for s in sets {
            let name = s.identity().name.clone();
            if by_name.insert(name.clone(), Arc::new(s)).is_some() {
                return Err(format!(
                    "two policy sets are named `{name}`; set names must be unique"
                ));
            }
        }
        let default = default.map_or(first, str::to_string);
        if !by_name.contains_key(&default) {
            return Err(format!(
                "default policy set `{default}` is not loaded; loaded: {}",
                by_name.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(Self {
            inner: ArcSwap::from_pointee(Registry { default, by_name }),
        })
    }

    /// The set named `name`, or the default set for `None`.
    pub fn get(&self, name: Option<&str>) -> Option<Arc<PolicySet>> {
        let r = self.inner.load();
        r.by_name.get(name.unwrap_or(&r.default)).cloned()
    }

    /// Name of the default set.
    pub fn default_name(&self) -> String {
        self.inner.load().default.clone()
    }

    /// Every loaded set.
    pub fn all(&self) -> Vec<Arc<PolicySet>> {
        self.inner.load().by_name.values().cloned().collect()
    }
}
