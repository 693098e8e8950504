//! Replica leases: one row per replica id, held by the process that claimed it (known
//! by a random nonce it drew at start) until it lets go or stops renewing. Two live
//! processes cannot hold the same id: the claim is one conditional statement, which
//! the database decides, so of processes racing for an id exactly one wins.

use crate::StoreError;

/// A replica's hold on its id, as the lease row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLease {
    /// The replica id.
    pub id: String,
    /// The Arbiter version the holder runs.
    pub version: String,
    /// When the holder claimed the id (unix microseconds).
    pub started_micros: i64,
    /// When the holder last renewed its lease.
    pub renewed_micros: i64,
    /// When the lease runs out unless renewed: from then on anyone may claim the id.
    pub expires_micros: i64,
}

/// The replica-lease part of [`crate::StateStore`]. Times are the caller's clock in
/// unix microseconds (tests inject theirs; the server reads
/// [`ReplicaLeases::lease_clock_micros`]); an expired lease is one whose
/// `expires_micros` is at or before `now_micros`.
pub trait ReplicaLeases {
    /// Claims replica id `id` for the process that drew `nonce`, until `now_micros +
    /// ttl_micros`: taken when no one holds it, when its holder's lease expired, or
    /// when it is already `nonce`'s (then renewed). `Ok(Err(holder))` when another
    /// process holds it and its lease is live.
    fn claim_replica(
        &self,
        id: &str,
        nonce: &str,
        version: &str,
        now_micros: i64,
        ttl_micros: i64,
    ) -> Result<Result<(), ReplicaLease>, StoreError>;
    /// Extends `nonce`'s lease on `id` to `now_micros + ttl_micros` (even if it ran
    /// out, as long as no one else took the id). `false` when the id is not (any
    /// longer) `nonce`'s: another process claimed it, so this one lost it.
    fn renew_replica(
        &self,
        id: &str,
        nonce: &str,
        now_micros: i64,
        ttl_micros: i64,
    ) -> Result<bool, StoreError>;
    /// Lets go of `id` if `nonce` holds it (a graceful stop), so that a replica with
    /// the same id may start at once; `false` when it did not hold it.
    fn release_replica(&self, id: &str, nonce: &str) -> Result<bool, StoreError>;
    /// The replicas whose lease is live at `now_micros`, by id.
    fn replicas(&self, now_micros: i64) -> Result<Vec<ReplicaLease>, StoreError>;
    /// The clock leases are measured on, unix microseconds: the database server's
    /// when replicas share one (their own clocks may disagree; a lease compared on
    /// two clocks could look expired to one replica while its holder renews it), this
    /// machine's otherwise.
    fn lease_clock_micros(&self) -> Result<i64, StoreError> {
        Ok(crate::now_micros())
    }
}

/// How many times a claim that lost to a holder which then let go (between the claim
/// and reading who holds it) is tried again, before it is refused as taken
/// ([`StoreError::Duplicate`]): each retry means another process claimed or released
/// the id in between, which one replica's start does not see thrice.
pub(crate) const CLAIM_ATTEMPTS: usize = 3;
