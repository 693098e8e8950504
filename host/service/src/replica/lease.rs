//! The lease on this replica's id in a shared state database: claimed at start (the
//! server refuses to start while another live replica holds the id), renewed while it
//! runs, let go when it stops. A replica that finds its id taken by another process
//! says so loudly and reports itself not ready until it holds the id again; a
//! database that does not answer changes nothing here (the lease is about who this
//! replica is, not whether the database is up: the state health says that).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbiter_store::{ReplicaLease, StateStore, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::micros;

/// How long a lease lasts unless renewed: three renewals in a row may fail (a database
/// fail-over) before another process may take the id, and a replica killed without
/// letting go keeps its id from a successor for no longer than this.
pub const TTL: Duration = Duration::from_secs(15);
/// How often the holder renews its lease (a third of [`TTL`]).
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
/// The Arbiter version a lease row names (every crate shares the workspace version).
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why this replica cannot hold its id.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another live process holds it.
    #[error(
        "replica id `{id}` is held by a live replica (renewed {renewed_secs}s ago, expires in {expires_secs}s): give each replica its own --replica-id, or wait until the other stops"
    )]
    Held {
        /// The replica id.
        id: String,
        /// Seconds since the holder last renewed.
        renewed_secs: i64,
        /// Seconds until its lease runs out unless renewed.
        expires_secs: i64,
    },
    /// The state database did not answer the claim.
    #[error("cannot claim replica id `{id}` in the state database")]
    Store {
        /// The replica id.
        id: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
}

/// This process's hold on its replica id. Let go when dropped (or by
/// [`Lease::release`]), so that a replica with the same id may start at once.
#[derive(Debug)]
pub struct Lease {
    store: Arc<dyn StateStore>,
    id: String,
    /// Drawn at start: tells this process's hold from another's with the same id.
    nonce: String,
    /// Whether it was let go; held while the database is asked, so that a renewal in
    /// flight cannot claim the id again after it was let go.
    released: Mutex<bool>,
    held: watch::Sender<bool>,
}

impl Lease {
    /// Claims `id` for this process in `store`, with a fresh random nonce.
    pub fn claim(store: Arc<dyn StateStore>, id: &str) -> Result<Arc<Self>, LeaseError> {
        let nonce = uuid::Uuid::now_v7().simple().to_string();
        let store_error = |source| LeaseError::Store {
            id: id.to_string(),
            source,
        };
        // The database's clock, shared by every replica: theirs may disagree.
        let now = store.lease_clock_micros().map_err(store_error)?;
        match store
            .claim_replica(id, &nonce, VERSION, now, micros(TTL))
            .map_err(store_error)?
        {
            Ok(()) => Ok(Arc::new(Self {
                store,
                id: id.to_string(),
                nonce,
                released: Mutex::new(false),
                held: watch::channel(true).0,
            })),
            Err(holder) => Err(LeaseError::Held {
                id: id.to_string(),
                renewed_secs: (now - holder.renewed_micros).max(0) / 1_000_000,
                expires_secs: secs_up(holder.expires_micros - now),
            }),
        }
    }

    /// The replica id held.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `true` while this process holds its id; `false` while another does.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.held.subscribe()
    }

    /// The replicas holding a live lease on the same database, by id.
    pub fn replicas(&self) -> Result<Vec<ReplicaLease>, StoreError> {
        self.store.replicas(self.store.lease_clock_micros()?)
    }

    /// Lets go of the id (a graceful stop); later renewals do nothing. Blocking.
    pub fn release(&self) {
        let mut released = self.released.lock().unwrap_or_else(|e| e.into_inner());
        if std::mem::replace(&mut *released, true) {
            return;
        }
        match self.store.release_replica(&self.id, &self.nonce) {
            Ok(_) => tracing::info!(replica = %self.id, "let go of the replica id"),
            Err(e) => {
                tracing::warn!(replica = %self.id, error = %e, "cannot let go of the replica id; it is free once its lease runs out")
            }
        }
    }

    /// One renewal: `Ok(None)` when held, `Ok(Some(holder))` when another process
    /// holds the id (`None` inside when it was let go here). Blocking.
    fn renew(&self) -> Result<Option<Option<ReplicaLease>>, StoreError> {
        let released = self.released.lock().unwrap_or_else(|e| e.into_inner());
        if *released {
            return Ok(Some(None));
        }
        let now = self.store.lease_clock_micros()?;
        let (id, nonce) = (&self.id, &self.nonce);
        if *self.held.borrow() && self.store.renew_replica(id, nonce, now, micros(TTL))? {
            return Ok(None);
        }
        // Lost, or found gone: claimed again when no live process holds it.
        let claimed = self
            .store
            .claim_replica(id, nonce, VERSION, now, micros(TTL))?;
        Ok(claimed.err().map(Some))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.release();
    }
}

/// Renews `lease` every [`RENEW_EVERY`], and tells `metrics` (and the lease's
/// watchers) whether this process still holds its id and how many replicas are live.
pub fn spawn_renewer(lease: Arc<Lease>, metrics: Arc<Metrics>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RENEW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let l = lease.clone();
            let renewed = tokio::task::spawn_blocking(move || {
                let renewed = l.renew();
                (renewed, l.replicas())
            })
            .await;
            let Ok((renewed, live)) = renewed else {
                continue;
            };
            if let Ok(live) = live {
                metrics.replicas_live(live.len());
            }
            let held = match renewed {
                Ok(None) => true,
                Ok(Some(None)) => return,
                Ok(Some(Some(holder))) => {
                    if *lease.held.borrow() {
                        let now = arbiter_store::now_micros();
                        tracing::error!(
                            replica = %lease.id,
                            holder_started_secs_ago = (now - holder.started_micros).max(0) / 1_000_000,
                            "another process holds this replica's id: two replicas run with the same --replica-id; this one reports NOT_SERVING and not ready until it holds its id again (give each replica its own id)"
                        );
                    }
                    false
                }
                Err(e) => {
                    // The database does not answer: keep what we had, try again.
                    tracing::warn!(replica = %lease.id, error = %e, "cannot renew the replica lease; trying again shortly");
                    continue;
                }
            };
            if held && !*lease.held.borrow() {
                tracing::info!(replica = %lease.id, "this replica holds its id again");
            }
            metrics.set_replica_lease_lost(!held);
            lease
                .held
                .send_if_modified(|was| std::mem::replace(was, held) != held);
        }
    })
}

/// Whole seconds, rounded up, of a span in microseconds; never negative (the replicas'
/// clocks differ a little).
fn secs_up(micros: i64) -> i64 {
    (micros.max(0) + 999_999) / 1_000_000
}
