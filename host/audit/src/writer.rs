//! The group-commit writer: one thread owns the write connection, takes what is queued
//! in batches, writes each batch in one transaction (with a checkpoint when one is due)
//! and answers the waiting appenders only after the commit.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arbiter_keys::SecretKey;
use rusqlite::{Connection, TransactionBehavior};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};

use crate::chain;
use crate::clock::now_micros;
use crate::entry::{Entry, Msg};
use crate::error::AuditError;
use crate::log::Observer;
use crate::schema::{self, Head};

/// How the writer ended: `None` while it runs, then the result of its final checkpoint.
pub(crate) type Outcome = Option<Result<(), Arc<rusqlite::Error>>>;

const INSERT_RECORD: &str = "INSERT INTO records
    (seq, kind, at_micros, principal, outcome, policy_set, decision_id, body, prev_hash, hash)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

const INSERT_CHECKPOINT: &str = "INSERT INTO checkpoints
    (number, seq, hash, at_micros, key_id, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// The writer thread's state. The chain head advances only when a commit succeeded.
pub(crate) struct Writer {
    pub conn: Connection,
    pub path: PathBuf,
    pub key: SecretKey,
    pub key_id: String,
    pub head: Head,
    pub checkpoint_every: Duration,
    pub min_commit_interval: Duration,
    pub async_linger: Duration,
    /// Set while [`Writer::linger`] sleeps: durable appenders then wake this thread.
    pub lingering: Arc<AtomicBool>,
    pub last_commit: Instant,
    pub max_batch: usize,
    pub depth: Arc<AtomicUsize>,
    pub observer: Option<Arc<dyn Observer>>,
    pub done: watch::Sender<Outcome>,
    /// When the next checkpoint is due; the first one at once, so a head left unsigned
    /// by a crash gets signed when the log is reopened.
    pub checkpoint_due: Instant,
}

enum Wake {
    Msg(Msg),
    CheckpointDue,
    Disconnected,
}

impl Writer {
    /// Runs until closed (or until every sender is gone), then signs the final head.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Msg>, rt: Runtime) {
        let mut batch = Vec::with_capacity(self.max_batch);
        loop {
            let mut closing = false;
            match self.wait(&rt, &mut rx) {
                Wake::Disconnected => break,
                Wake::CheckpointDue => {
                    self.write(&mut batch, true);
                    continue;
                }
                Wake::Msg(Msg::Close) => closing = true,
                Wake::Msg(Msg::Append(entry)) => batch.push(entry),
            }
            if !closing {
                self.pace();
                closing = self.collect(&mut rx, &mut batch);
            }
            if !closing && batch.iter().all(|e| e.reply.is_none()) {
                closing = self.linger(&mut rx, &mut batch);
            }
            self.depth.fetch_sub(batch.len(), Ordering::Relaxed);
            if !batch.is_empty() {
                let due = Instant::now() >= self.checkpoint_due;
                self.write(&mut batch, due);
            }
            if closing {
                // Refuse new sends but keep what was accepted: an append that got into
                // the queue was promised a write, so `recv` drains it before `None`.
                rx.close();
            }
        }
        let outcome = self.commit(&[], true).map(|head| self.advance(head));
        if let Err(e) = &outcome {
            tracing::error!(error = %e, seq = self.head.seq, "cannot write the final audit checkpoint");
        }
        if let Err(e) = self.conn.close() {
            tracing::warn!(error = %e.1, "cannot close the audit database cleanly");
        }
        self.done.send_replace(Some(outcome.map_err(Arc::new)));
    }

    /// Waits until `min_commit_interval` has passed since the last commit began. Under
    /// load this lets records gather so one fsync covers many; a record arriving after a
    /// quiet spell is committed at once.
    fn pace(&self) {
        let ready = self.last_commit + self.min_commit_interval;
        let now = Instant::now();
        if ready > now {
            std::thread::sleep(ready - now);
        }
    }

    /// Adds what else is already queued to `batch`, without waiting: the records that
    /// arrive while a commit is syncing make the next batch, so batches grow with load
    /// by themselves. Returns whether a close request came.
    fn collect(&self, rx: &mut mpsc::Receiver<Msg>, batch: &mut Vec<Entry>) -> bool {
        while batch.len() < self.max_batch {
            match rx.try_recv() {
                Ok(Msg::Append(entry)) => batch.push(entry),
                Ok(Msg::Close) => return true,
                Err(_) => return false,
            }
        }
        false
    }

    /// While no one waits for the batch (every record in it was appended with
    /// [`Durability::Async`](crate::Durability::Async)), keeps gathering for up to
    /// `async_linger`, so that async records cost one fsync per many instead of one per
    /// few: the writer would otherwise sync as fast as the disk allows, each batch
    /// holding what arrived during the last sync. It sleeps rather than waiting on the
    /// queue, because a writer waiting on the queue is woken by every record sent (a
    /// cross-thread wake-up each); a durable append wakes it through `lingering`
    /// instead, and a durable record, a full batch or a close ends the wait at once.
    /// Returns whether a close request came.
    fn linger(&self, rx: &mut mpsc::Receiver<Msg>, batch: &mut Vec<Entry>) -> bool {
        if self.async_linger.is_zero() {
            return false;
        }
        let until = Instant::now() + self.async_linger;
        // Set before looking at the queue, so that a durable append either is seen by
        // the next `collect` or sees the flag and wakes this thread.
        self.lingering.store(true, Ordering::SeqCst);
        let mut seen = batch.len();
        let closing = loop {
            if self.collect(rx, batch) {
                break true;
            }
            // A close (`AuditLog::close` wakes this thread) is seen by `collect`.
            let durable = batch[seen..].iter().any(|e| e.reply.is_some());
            seen = batch.len();
            let now = Instant::now();
            if durable || batch.len() >= self.max_batch || now >= until {
                break false;
            }
            std::thread::park_timeout(until - now);
        };
        self.lingering.store(false, Ordering::SeqCst);
        closing
    }

    /// Waits for the next message, or for the moment a pending checkpoint is due.
    fn wait(&self, rt: &Runtime, rx: &mut mpsc::Receiver<Msg>) -> Wake {
        let wake = |m: Option<Msg>| m.map_or(Wake::Disconnected, Wake::Msg);
        if self.head.seq == self.head.checkpoint_seq {
            return wake(rt.block_on(rx.recv()));
        }
        let due = tokio::time::Instant::from_std(self.checkpoint_due);
        // The timer must be made inside the runtime, hence the `async` block.
        rt.block_on(async { tokio::time::timeout_at(due, rx.recv()).await })
            .map_or(Wake::CheckpointDue, wake)
    }

    /// Commits `batch` (and a checkpoint if `checkpoint`), then answers its waiters.
    fn write(&mut self, batch: &mut Vec<Entry>, checkpoint: bool) {
        let started = Instant::now();
        self.last_commit = started;
        let records = batch.len();
        let result = self.commit(batch, checkpoint);
        if result.is_err() {
            self.resync();
        }
        if checkpoint {
            // Also after a failure: retrying a failing checkpoint in a tight loop helps
            // no one; the next batch or the next period tries again.
            self.checkpoint_due = started + self.checkpoint_every;
        }
        match result {
            Ok(head) => {
                let first = self.head.seq + 1;
                self.advance(head);
                if let Some(observer) = self.observer.as_ref().filter(|_| records > 0) {
                    observer.committed(records, started.elapsed());
                }
                for (seq, entry) in (first..).zip(batch.drain(..)) {
                    if let Some(reply) = entry.reply {
                        // A waiter that gave up (its task was cancelled) needs no answer.
                        let _ = reply.send(Ok(seq));
                    }
                }
            }
            Err(e) if records == 0 => {
                tracing::error!(error = %e, seq = self.head.seq, "cannot write an audit checkpoint");
            }
            Err(e) => {
                let source = Arc::new(e);
                let failed = |source: &Arc<rusqlite::Error>| AuditError::WriteFailed {
                    records,
                    source: Arc::clone(source),
                };
                let unacknowledged = batch.iter().filter(|e| e.reply.is_none()).count();
                tracing::error!(
                    error = %source,
                    records,
                    async_records_lost = unacknowledged,
                    "cannot write an audit batch; it was rolled back"
                );
                if let Some(observer) = &self.observer {
                    observer.failed(records, &failed(&source));
                }
                for entry in batch.drain(..) {
                    if let Some(reply) = entry.reply {
                        let _ = reply.send(Err(failed(&source)));
                    }
                }
            }
        }
    }

    /// Moves the head to what was committed, telling of a new checkpoint.
    fn advance(&mut self, head: Head) {
        if head.checkpoint_number != self.head.checkpoint_number {
            tracing::debug!(
                number = head.checkpoint_number,
                seq = head.seq,
                hash = %hex::encode(head.hash),
                "audit checkpoint"
            );
            if let Some(observer) = &self.observer {
                observer.checkpointed(head.checkpoint_number, head.seq, &head.hash);
            }
        }
        self.head = head;
    }

    /// Re-reads the head after a failed commit. Normally it is unchanged (the batch was
    /// rolled back), but a commit can fail after its WAL frames were written (an fsync
    /// error): then the batch is in the log although its appenders were told it failed,
    /// and the next batch must chain onto it, not reuse its seqs.
    fn resync(&mut self) {
        match schema::head(&self.conn, &self.path) {
            Ok(head) if head.seq != self.head.seq => {
                tracing::warn!(
                    seq = head.seq,
                    "an audit batch reported as failed was committed; continuing after it"
                );
                self.head = head;
            }
            Ok(head) => self.head = head,
            Err(e) => tracing::warn!(error = %e, "cannot re-read the audit chain head"),
        }
    }

    /// Writes `batch` in one transaction, plus a checkpoint of the new head if
    /// `checkpoint` and anything is unsigned; returns the head as committed.
    fn commit(&mut self, batch: &[Entry], checkpoint: bool) -> rusqlite::Result<Head> {
        let mut head = self.head;
        if batch.is_empty() && (!checkpoint || head.seq == head.checkpoint_seq) {
            return Ok(head);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(INSERT_RECORD)?;
            for entry in batch {
                let seq = head.seq + 1;
                let hash = chain::record_hash(&head.hash, seq, &entry.fields());
                insert.execute((
                    seq,
                    entry.kind.as_str(),
                    entry.at_micros,
                    &entry.principal,
                    &entry.outcome,
                    &entry.policy_set,
                    &entry.decision_id,
                    &entry.body,
                    &head.hash,
                    &hash,
                ))?;
                head.seq = seq;
                head.hash = hash;
            }
        }
        if checkpoint && head.seq > head.checkpoint_seq {
            let number = head.checkpoint_number + 1;
            let at = now_micros();
            let message = chain::checkpoint_message(number, head.seq, &head.hash, at);
            let signature = self.key.sign(&message);
            tx.prepare_cached(INSERT_CHECKPOINT)?.execute((
                number,
                head.seq,
                &head.hash,
                at,
                &self.key_id,
                &signature,
            ))?;
            head.checkpoint_number = number;
            head.checkpoint_seq = head.seq;
        }
        tx.commit()?;
        Ok(head)
    }
}
