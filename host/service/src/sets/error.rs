//! Why a change to the loaded sets was refused.

/// Why a lifecycle change was refused. The messages name the set and version and say
/// what to do instead; they reach admins as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    /// A registry needs at least one set.
    #[error("no policy set configured")]
    NoSets,
    /// Two configured sets have one name.
    #[error("two policy sets are named `{name}`; set names must be unique")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// The configured default names no loaded set.
    #[error("default policy set `{name}` is not loaded; loaded: {}", loaded.join(", "))]
    UnknownDefault {
        /// The configured default.
        name: String,
        /// The names that are loaded.
        loaded: Vec<String>,
    },
    /// No set of that name is loaded.
    #[error("no policy set named `{name}` is loaded")]
    UnknownSet {
        /// The name asked for.
        name: String,
    },
    /// A new set name can only arrive enforced.
    #[error(
        "no set named `{name}` is enforced yet, so version `{version}` cannot only be loaded or shadow it; activate it to enforce"
    )]
    NotEnforcedYet {
        /// The set name.
        name: String,
        /// The version offered.
        version: String,
    },
    /// No loaded version matches the key.
    #[error("`{name}` has no loaded version `{key}`; loaded: {}", loaded.join(", "))]
    UnknownVersion {
        /// The set name.
        name: String,
        /// The version or digest prefix asked for.
        key: String,
        /// The loaded versions, `VERSION (DIGEST PREFIX)`.
        loaded: Vec<String>,
    },
    /// The key matches several loaded versions.
    #[error("`{key}` names several loaded versions of `{name}`; use a digest prefix")]
    AmbiguousVersion {
        /// The set name.
        name: String,
        /// The key asked for.
        key: String,
    },
    /// The enforced version cannot also be its own shadow.
    #[error("version `{version}` is the enforced one; to watch it in shadow instead, demote it")]
    ShadowIsEnforced {
        /// The enforced version.
        version: String,
    },
    /// Demoting needs an earlier version to enforce instead.
    #[error("`{name}` has no earlier version to enforce in its place; load one first")]
    NoEarlierVersion {
        /// The set name.
        name: String,
    },
    /// The set has no plugin of that name.
    #[error("`{name}` has no plugin `{plugin}`")]
    UnknownPlugin {
        /// The set name.
        name: String,
        /// The plugin asked for.
        plugin: String,
    },
    /// The change could not be stored for the other replicas sharing the state
    /// database, so it was undone (the reason says why: another replica changed the
    /// set first, or the database cannot be written).
    #[error("{reason}")]
    NotShared {
        /// Why.
        reason: String,
    },
    /// A version older than the newest of its name ever loaded (see
    /// [`crate::newest`]); the reason says which and what to do instead.
    #[error("{reason}")]
    Older {
        /// Why, naming both versions.
        reason: String,
    },
    /// Rolling back needs a version enforced before.
    #[error("`{name}` has never enforced another loaded version; nothing to roll back to")]
    NothingToRollBack {
        /// The set name.
        name: String,
    },
}
