//! What the store keeps of the policy sets when replicas share it: each version's
//! bundle (bytes, or the name of a built-in set), each set name's state (which version
//! is enforced, which shadows, which are kept), one revision that grows with every
//! change so a replica can ask "anything newer than N?" with one cheap read, and what
//! each replica says it serves.
//!
//! The store keeps bytes, not trust: every replica that loads a stored bundle verifies
//! its signature with its own trusted keys.

use crate::StoreError;

/// Where a stored version's set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleSource {
    /// A bundle file's bytes (`arbiter bundle pack`, signed or not).
    Bytes(Vec<u8>),
    /// `builtin:NAME`: compiled into every replica, kept by reference.
    Builtin(String),
}

/// One version of a set, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBundle {
    /// The set's digest (over the manifest and every file): the key.
    pub digest: String,
    /// The set name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its bundle or built-in reference.
    pub source: BundleSource,
    /// Where it was loaded from first (a path, `upload`, a watched file).
    pub origin: String,
    /// The key id that signed it, as the replica that stored it saw.
    pub signer: Option<String>,
    /// When it was stored, unix microseconds.
    pub added_micros: i64,
}

/// One set name's state, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSetState {
    /// The set name.
    pub name: String,
    /// Digest of the enforced version.
    pub enforced: String,
    /// Digest of the shadow version, if any.
    pub shadow: Option<String>,
    /// Digest of the version the config named when this name was first stored.
    pub config: Option<String>,
    /// Digests of every kept version, newest first (enforced and shadow included).
    pub versions: Vec<String>,
    /// The revision this state was stored at (set by the store; ignored when storing).
    pub revision: i64,
    /// The replica that stored it.
    pub changed_by: String,
    /// When, unix microseconds.
    pub changed_micros: i64,
}

/// What one replica serves under one set name, as it last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSet {
    /// The replica.
    pub replica_id: String,
    /// The set name.
    pub name: String,
    /// Digest of the version it enforces.
    pub enforced_digest: String,
    /// That version.
    pub enforced_version: String,
    /// Digest of its shadow version, if any.
    pub shadow_digest: Option<String>,
    /// Why it does not serve the stored state, when it cannot (a bundle its keys do
    /// not trust, one that does not compile).
    pub error: Option<String>,
    /// When it said so, unix microseconds.
    pub updated_micros: i64,
}

/// The policy sets replicas share (part of every [`crate::StateStore`]). Synchronous
/// and durable when it returns, as the rest of the store.
pub trait SetStore {
    /// The revision of the stored set state: it grows with every [`SetStore::publish_set`]
    /// (0 while nothing is stored). One cheap read, for replicas that poll.
    fn set_revision(&self) -> Result<i64, StoreError>;
    /// Every set name's stored state, by name, and the revision they are at (read
    /// together).
    fn set_states(&self) -> Result<(i64, Vec<StoredSetState>), StoreError>;
    /// The stored version `digest`.
    fn set_bundle(&self, digest: &str) -> Result<Option<StoredBundle>, StoreError>;
    /// Which of `digests` are stored (so their bytes need not be sent again).
    fn stored_set_bundles(&self, digests: &[String]) -> Result<Vec<String>, StoreError>;
    /// Stores the `bundles` not stored yet and `state` in one transaction, if the
    /// stored revision of `state.name` is still `expected` (0: nothing stored for that
    /// name); the new revision, or `None` when another change came first (nothing is
    /// stored then).
    fn publish_set(
        &self,
        state: &StoredSetState,
        bundles: &[StoredBundle],
        expected: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// Records what `replica` serves: `rows` replace the rows it had.
    fn record_replica_sets(&self, replica: &str, rows: &[ReplicaSet]) -> Result<(), StoreError>;
    /// What every replica last said it serves, by replica and set name.
    fn replica_sets(&self) -> Result<Vec<ReplicaSet>, StoreError>;
    /// A signal that changes whenever a set change may have been stored by any
    /// replica (a notification arrived, or the listening connection was made again
    /// after a break); `None` when the store announces none (then followers poll).
    fn set_change_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}
