//! The audit log: every decision, approval step, credential event, admin act and sampled
//! shadow divergence of the server as one record in an append-only, tamper-evident log,
//! kept in its own SQLite file (for example `<data_dir>/audit.db`, created owner-only).
//!
//! ```
//! use arbiter_audit::{AuditConfig, AuditLog, Durability, Filter, Kind, Record};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("audit.db");
//! let key = arbiter_keys::SecretKey::generate()?;
//! let public = key.public(); // keep this one away from the data directory
//!
//! tokio::runtime::Runtime::new()?.block_on(async {
//!     let log = AuditLog::open(AuditConfig::new(&path, key), None)?;
//!     let mut record = Record::new(Kind::Decision, arbiter_audit::now_micros());
//!     record.principal = Some("spiffe://acme.org/agent/triage-bot".into());
//!     record.outcome = Some("allow".into());
//!     record.set_body(&serde_json::json!({ "action": "repo:read" }))?;
//!     assert_eq!(log.append(record, Durability::Durable).await?, Some(1));
//!     log.close().await
//! })?;
//!
//! let report = arbiter_audit::verify(&path, Some(&[public]))?;
//! assert!(report.to_string().starts_with("OK: 1 record, 1 checkpoint, head "));
//! let allowed = Filter { outcome: Some("allow".into()), ..Filter::default() };
//! assert_eq!(arbiter_audit::query(&path, &allowed)?.len(), 1);
//! # Ok(()) }
//! ```
//!
//! # Format
//!
//! Table `records` holds one row per record: `seq` (1, 2, 3, ... with no gaps), `kind`
//! (`decision`, `approval`, `credential`, `admin`, `shadow`, `probe`), `at_micros` (unix
//! microseconds, set by the caller), `principal`, `outcome`, `policy_set`, `decision_id`
//! (text or NULL), `body` (JSON text as appended), `prev_hash` and `hash` (32-byte blobs). A
//! record's hash is
//!
//! ```text
//! SHA-256( "arbiter-audit-v1" || prev_hash || seq as u64 big-endian
//!          || str(kind) || at_micros as i64 big-endian
//!          || opt(principal) || opt(outcome) || opt(policy_set) || opt(decision_id)
//!          || str(body) )
//! str(s) = length of s as u64 big-endian || the bytes of s, exactly as stored
//! opt(s) = 0x00 for NULL, or 0x01 || str(s)
//! ```
//!
//! and `prev_hash` is the hash of record `seq - 1` (32 zero bytes for record 1).
//!
//! Table `checkpoints` holds signed chain heads: `number` (1, 2, 3, ...), `seq` and
//! `hash` of the head, `at_micros` (wall clock), `key_id` and an Ed25519 `signature` over
//! `"arbiter-audit-checkpoint-v1" || number || seq || hash || at_micros` (integers
//! big-endian, 8 bytes). The writer signs the head when it has moved and
//! [`AuditConfig::checkpoint_every`] (1 s) has passed, inside the transaction of the
//! batch that moved it, or after that long idle; on close; and at once when a log is
//! reopened with an unsigned head (after a crash). Table `keys` keeps the public half of
//! every key that signed, table `meta` the schema version; a file of a newer schema is
//! refused.
//!
//! # What verification finds
//!
//! [`verify`] recomputes every hash from the stored columns and follows the links, and
//! walks the checkpoints beside the records in seq order; it reports [`Verification`],
//! which prints as `OK: 12,345 records, 17 checkpoints, head <hash>` or as the first
//! broken place, `BROKEN at record 42: hash does not match its contents (edited?)`:
//!
//! - a changed byte in any column of a record: its hash no longer matches ([`Why::HashMismatch`]);
//! - a deleted record: the seq gap where it was ([`Why::Missing`]);
//! - records swapped (their contents or their seqs): the earlier of the two;
//! - a changed record whose hash and all later ones were recomputed: the next checkpoint
//!   signed a different head ([`Why::CheckpointMismatch`]);
//! - records cut off the end: a checkpoint covers more than is left ([`Why::Truncated`]);
//! - an edited, deleted or forged checkpoint: its signature, number or order
//!   ([`Why::BadSignature`], [`Why::CheckpointMissing`], [`Why::UntrustedKey`]).
//!
//! # Limits
//!
//! - **Keep the public key elsewhere.** Without one, [`verify`] trusts the keys recorded
//!   in the file, which catches accidents and careless edits but not someone who can
//!   rewrite the file: they can record their own key and re-sign everything. Verifying
//!   with a public key kept outside the data directory defeats that; a stolen *secret*
//!   key defeats everything.
//! - **Truncation is seen only through a checkpoint that survives it.** Records after
//!   the last checkpoint (about `checkpoint_every` of them, [`Verification::unsigned`])
//!   can be cut unseen, and someone who can write the file can cut any tail together
//!   with the checkpoints covering it. Copying checkpoints off the machine
//!   ([`Observer::checkpointed`]) and comparing closes that gap.
//! - The log proves integrity, not truth: `at_micros` and every field are what the
//!   server wrote. It is not encrypted either; bodies hold whole requests, which is why
//!   the file is owner-only.
//! - Queries by `principal` scan the log (narrowed by a time range if given): an index
//!   on it cost 2.5x the durable write throughput (see `schema.rs`).
//!
//! # Durability and failure
//!
//! One writer thread owns the connection (WAL, `synchronous=FULL`) and a bounded queue
//! ([`AuditConfig::queue_capacity`]) feeds it. It takes every record already queued (up
//! to [`AuditConfig::max_batch`]), writes them in one transaction, commits, and only then
//! answers: a [`Durability::Durable`] append returns the record's seq after its commit
//! is on disk, a [`Durability::Async`] one as soon as the record is queued. A batch in
//! which no one waits (async records only) gathers for up to
//! [`AuditConfig::async_linger`] (10 ms) first, so async records share fsyncs; a
//! durable append or a close cuts that short. Both wait
//! while the queue is full: records are never dropped. A batch that fails is rolled back
//! whole and the chain head stays where it was; every durable append in it gets
//! [`AuditError::WriteFailed`] (the server fails the request closed), async ones are
//! lost although their appends succeeded, so [`Observer::failed`] and the error log
//! report them. Later batches try again, so a passing problem (a full disk freed) heals.
//! [`AuditLog::queue_depth`] and [`Observer::committed`] (batch size, commit latency)
//! feed the metrics.
//!
//! # Throughput
//!
//! `examples/append_bench.rs`, on this project's 2-core machine (SQLite on ext4, a
//! virtual disk where an fsync takes about 0.15 ms), 200,000 records with a ~600-byte
//! body each (about 810 bytes a record on disk):
//!
//! | appenders | durability | records/s | mean batch | commit latency | CPU per record |
//! | ---: | --- | ---: | ---: | ---: | ---: |
//! | 16 | durable | 46,000 | 8 | 0.16 ms | 16.5 us |
//! | 64 | durable | 103,000 | 33 | 0.29 ms | 8.9 us |
//! | 256 | durable | 184,000 | 129 | 0.65 ms | 6.5 us |
//! | 16 | async | 156,000 | 1,005 | 5.7 ms | 7.0 us |
//!
//! Paced at 35,000 records/s with 64 appenders (the benchmark alone costs 2.2 us a
//! record), the log costs about 11.5 us of CPU a record durable (batches of 25): 0.40
//! of a core, a fifth of the machine. Most of it is per commit (fsync, WAL frames), so
//! it falls with batch size: with [`AuditConfig::min_commit_interval`] at 1 ms (batches
//! of 40) it is about 8 us, with async appends about 7 us. A durable append also waits
//! for a commit, 0.2 to 0.3 ms here: in a closed loop of few clients that latency, more
//! than the CPU, is what caps throughput. On this machine's virtual disk a flush is the
//! cost, not SQLite: one `write` + `fdatasync` per batch to a plain file measured no
//! faster in the server (`docs/performance.md`). Verification reads 200,000 records in 0.2 s.

mod chain;
mod checkpoint;
mod clock;
mod entry;
mod error;
mod log;
mod query;
mod record;
mod report;
mod schema;
mod verifier;
mod verify;
mod writer;

pub use chain::Hash;
pub use checkpoint::{SignedCheckpoint, checkpoints};
pub use clock::now_micros;
pub use error::AuditError;
pub use log::{
    AuditConfig, AuditLog, DEFAULT_ASYNC_LINGER, DEFAULT_CHECKPOINT_EVERY, DEFAULT_MAX_BATCH,
    DEFAULT_MIN_COMMIT_INTERVAL, DEFAULT_QUEUE_CAPACITY, Observer,
};
pub use query::{DEFAULT_LIMIT, Filter, query, record_hashes};
pub use record::{Durability, Kind, Record, StoredRecord, UnknownKind};
pub use report::{Broken, Verification, Why};
pub use verifier::ChainVerifier;
pub use verify::verify;
