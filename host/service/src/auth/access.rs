//! Which policy sets a caller may name.

use super::{Caller, Role};

/// Which policy sets a caller may name in a request (a request naming none is
/// decided by the default set, which every caller may use).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SetAccess {
    /// The default set only.
    #[default]
    Default,
    /// Any loaded set (the zero-config tour; in-process callers).
    Any,
    /// The default set and these (`pci-*` matches by prefix).
    Only(Vec<String>),
}

impl SetAccess {
    /// From a config entry's `sets` (absent: the default set only).
    pub fn from_config(sets: Option<Vec<String>>) -> Self {
        match sets {
            None => Self::Default,
            Some(s) if s.iter().any(|n| n == "*") => Self::Any,
            Some(s) => Self::Only(s),
        }
    }

    /// Whether a caller with this access may name `set`, the default being `default`.
    pub fn allows(&self, set: &str, default: &str) -> bool {
        set == default
            || match self {
                Self::Default => false,
                Self::Any => true,
                Self::Only(names) => names.iter().any(|n| match n.strip_suffix('*') {
                    Some(prefix) => set.starts_with(prefix),
                    None => n == set,
                }),
            }
    }
}

impl Caller {
    /// Whether the caller holds any of `roles`.
    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.roles.iter().any(|r| roles.contains(r))
    }
}
