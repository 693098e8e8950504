//! The handle the server holds: opening the log, appending, closing.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arbiter_keys::SecretKey;
use tokio::sync::{mpsc, oneshot, watch};

use crate::chain::Hash;
use crate::clock::now_micros;
use crate::entry::{Entry, Msg};
use crate::error::AuditError;
use crate::query::Filter;
use crate::record::{Durability, Record, StoredRecord};
use crate::schema;
use crate::writer::{Outcome, Writer};

/// How often the chain head is signed while records arrive. A truncation of the records
/// since the last checkpoint goes unseen, so this bounds that window to about a second;
/// one Ed25519 signature a second costs nothing.
pub const DEFAULT_CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// No pacing by default: batches already grow with load, because what arrives during one
/// commit's fsync makes the next batch. Pacing at 1 ms cut the log's CPU by about a
/// third at 35,000 durable records a second with 64 appenders (see the crate docs), but
/// it adds up to that much latency to durable appends under load, and a closed loop of
/// few clients (each waiting for its answer before asking again) loses throughput to it.
pub const DEFAULT_MIN_COMMIT_INTERVAL: Duration = Duration::ZERO;

/// How long the writer keeps gathering a batch in which no one waits (only
/// [`Durability::Async`] records). Without it the writer syncs as fast as the disk
/// allows, and an async record cost more CPU than a durable one (97 against 79 us a
/// decision, see `docs/performance.md`); 10 ms makes that one fsync per hundreds of
/// records. It is also how much more an async record may be lost in a crash, which
/// async sets accept by choice; a durable record arriving ends the wait at once.
pub const DEFAULT_ASYNC_LINGER: Duration = Duration::from_millis(10);

/// Records that may wait for the writer. At 35,000 decisions a second this is about a
/// quarter second: enough to ride out a slow fsync, small enough to bound memory. Past
/// it, appenders wait (back-pressure) rather than records being dropped.
pub const DEFAULT_QUEUE_CAPACITY: NonZeroUsize = nonzero(8192);

/// Records per transaction at most. Under full load one fsync then covers many records,
/// while one transaction still stays short enough not to hold up the waiters of the
/// next batch for long.
pub const DEFAULT_MAX_BATCH: NonZeroUsize = nonzero(1024);

const fn nonzero(n: usize) -> NonZeroUsize {
    match NonZeroUsize::new(n) {
        Some(n) => n,
        None => NonZeroUsize::MIN,
    }
}

/// Where and how to keep the log.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The SQLite file, created (mode 0600) if missing, e.g. `<data_dir>/audit.db`.
    pub path: PathBuf,
    /// The key that signs checkpoints. Keep its public half outside the data
    /// directory: verifying with it is what defeats someone who can rewrite the file.
    pub key: SecretKey,
    /// How often the chain head is signed while records arrive.
    pub checkpoint_every: Duration,
    /// The least time from the start of one commit to the start of the next, so that
    /// under load records gather and one fsync covers more of them. A record arriving
    /// after a quiet spell is still committed at once.
    pub min_commit_interval: Duration,
    /// How long a batch holding only async records keeps gathering before it is
    /// written (zero: at once).
    pub async_linger: Duration,
    /// How many records may wait for the writer before appenders wait.
    pub queue_capacity: NonZeroUsize,
    /// How many records one transaction holds at most.
    pub max_batch: NonZeroUsize,
}

impl AuditConfig {
    /// The log at `path`, signed by `key`, with the default timing and sizes.
    pub fn new(path: impl Into<PathBuf>, key: SecretKey) -> Self {
        Self {
            path: path.into(),
            key,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            min_commit_interval: DEFAULT_MIN_COMMIT_INTERVAL,
            async_linger: DEFAULT_ASYNC_LINGER,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_batch: DEFAULT_MAX_BATCH,
        }
    }
}

/// Told by the writer thread about every batch, for metrics. Calls happen on the
/// writer thread between batches: keep them short (bump a counter, record a histogram).
pub trait Observer: Send + Sync + 'static {
    /// A batch of `records` committed; `latency` is the time its transaction took,
    /// fsync included.
    fn committed(&self, records: usize, latency: Duration);

    /// A batch of `records` failed and was rolled back. Durable appenders got the error;
    /// records appended with [`Durability::Async`] among them are lost although their
    /// appends succeeded, which is why this is worth an alert.
    fn failed(&self, records: usize, error: &AuditError) {
        let _ = (records, error);
    }

    /// Checkpoint `number` signed the chain head `seq` with `hash`. Copying these off
    /// the machine (a log shipper, a second store) is what lets a truncation that also
    /// removed the covering checkpoints be seen.
    fn checkpointed(&self, number: u64, seq: u64, hash: &Hash) {
        let _ = (number, seq, hash);
    }
}

/// An open audit log. Clones share one writer; the writer stops when
/// [`close`](Self::close) is called or the last clone is dropped.
#[derive(Debug, Clone)]
pub struct AuditLog {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    tx: mpsc::Sender<Msg>,
    depth: Arc<AtomicUsize>,
    /// Set while the writer sleeps to gather async records; see `Writer::linger`.
    lingering: Arc<AtomicBool>,
    writer: std::thread::Thread,
    closed: AtomicBool,
    done: watch::Receiver<Outcome>,
    path: PathBuf,
    key_id: String,
}

impl AuditLog {
    /// Opens (creating or migrating) the log, reads the chain head so the chain goes on
    /// across restarts, records the checkpoint key's public half, and starts the writer.
    pub fn open(
        config: AuditConfig,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<Self, AuditError> {
        let AuditConfig {
            path,
            key,
            checkpoint_every,
            min_commit_interval,
            async_linger,
            queue_capacity,
            max_batch,
        } = config;
        let conn = schema::open_for_writing(&path)?;
        let public = key.public();
        schema::register_key(&conn, &public, now_micros()).map_err(AuditError::db(&path))?;
        let head = schema::head(&conn, &path)?;
        // The writer waits on the queue and on the checkpoint timer together; a
        // current-thread runtime of its own does that without touching the server's.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|source| AuditError::Spawn { source })?;
        // tokio panics above this many permits; no sane configuration comes near it.
        let capacity = queue_capacity
            .get()
            .min(tokio::sync::Semaphore::MAX_PERMITS);
        let (tx, rx) = mpsc::channel(capacity);
        let (done_tx, done) = watch::channel(None);
        let depth = Arc::new(AtomicUsize::new(0));
        let lingering = Arc::new(AtomicBool::new(false));
        let key_id = public.id();
        let writer = Writer {
            conn,
            path: path.clone(),
            key,
            key_id: key_id.clone(),
            head,
            checkpoint_every,
            min_commit_interval,
            async_linger,
            lingering: Arc::clone(&lingering),
            last_commit: Instant::now(),
            max_batch: max_batch.get(),
            depth: Arc::clone(&depth),
            observer,
            done: done_tx,
            checkpoint_due: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("arbiter-audit".into())
            .spawn(move || writer.run(rx, rt))
            .map_err(|source| AuditError::Spawn { source })?
            .thread()
            .clone();
        tracing::info!(path = %path.display(), seq = head.seq, key_id, "audit log opened");
        Ok(Self {
            shared: Arc::new(Shared {
                tx,
                depth,
                lingering,
                writer: thread,
                closed: AtomicBool::new(false),
                done,
                path,
                key_id,
            }),
        })
    }

    /// Appends `record`. With [`Durability::Durable`] this returns the record's sequence
    /// number once its transaction is committed and synced; with [`Durability::Async`] it
    /// returns `None` once the record is queued. Either way it waits while the queue is
    /// full. An error means the record is not in the log: fail the request closed.
    pub async fn append(
        &self,
        record: Record,
        durability: Durability,
    ) -> Result<Option<u64>, AuditError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(AuditError::Closed);
        }
        let (reply, answer) = match durability {
            Durability::Durable => {
                let (reply, answer) = oneshot::channel();
                (Some(reply), Some(answer))
            }
            Durability::Async => (None, None),
        };
        let entry = Entry::new(record, reply);
        let permit = self.shared.tx.reserve().await.map_err(|_| self.stopped())?;
        // Counted before sending, so the writer's decrement can never run first.
        self.shared.depth.fetch_add(1, Ordering::Relaxed);
        permit.send(Msg::Append(entry));
        match answer {
            None => Ok(None),
            Some(answer) => {
                // The writer may be sleeping to gather async records; this one has a
                // waiter. The fence orders the send before the load, against the
                // writer's store before it looks at the queue: one of the two sees
                // the other (and the sleep is bounded by the linger regardless).
                std::sync::atomic::fence(Ordering::SeqCst);
                if self.shared.lingering.load(Ordering::SeqCst) {
                    self.shared.writer.unpark();
                }
                answer.await.map_err(|_| self.stopped())?.map(Some)
            }
        }
    }

    /// Records queued and not yet taken by the writer.
    pub fn queue_depth(&self) -> usize {
        self.shared.depth.load(Ordering::Relaxed)
    }

    /// Writes everything queued, signs the final head and stops the writer. Appends
    /// after this fail with [`AuditError::Closed`]; closing again is harmless.
    pub async fn close(&self) -> Result<(), AuditError> {
        self.shared.closed.store(true, Ordering::Release);
        // Fails only when the writer is already stopping; then it is enough to wait.
        let _ = self.shared.tx.send(Msg::Close).await;
        // A writer gathering async records would otherwise finish its wait first.
        self.shared.writer.unpark();
        let mut done = self.shared.done.clone();
        let outcome = done
            .wait_for(Option::is_some)
            .await
            .map_err(|_| AuditError::WriterStopped)?;
        match &*outcome {
            Some(Err(source)) => Err(AuditError::CheckpointFailed {
                source: Arc::clone(source),
            }),
            _ => Ok(()),
        }
    }

    /// Records matching `filter`, read through a connection of its own. This is
    /// blocking SQLite work: from async code, call it inside `spawn_blocking`.
    pub fn query(&self, filter: &Filter) -> Result<Vec<StoredRecord>, AuditError> {
        crate::query(&self.shared.path, filter)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The id of the key signing this session's checkpoints.
    pub fn key_id(&self) -> &str {
        &self.shared.key_id
    }

    fn stopped(&self) -> AuditError {
        if self.shared.closed.load(Ordering::Acquire) {
            AuditError::Closed
        } else {
            AuditError::WriterStopped
        }
    }
}
