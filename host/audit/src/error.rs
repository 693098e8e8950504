//! What can go wrong opening, writing, querying or verifying an audit log.
//!
//! Tampering found by [`verify`](crate::verify()) is not an error: it is a result
//! ([`Broken`](crate::Broken)). Errors here mean the log could not be used at all.

use std::path::PathBuf;
use std::sync::Arc;

/// An audit log that could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database file could not be created or found.
    #[error(
        "cannot create or open the audit log `{path}`; check that its directory exists and is writable"
    )]
    Io {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused an operation while opening, migrating or reading the log.
    #[error(
        "cannot use the audit log `{path}`; check that the file is intact and the disk is not full"
    )]
    Database {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is an SQLite database, but not one this crate wrote.
    #[error(
        "`{path}` is not an Arbiter audit log (it holds other tables); point the audit path at a new file"
    )]
    NotAnAuditLog {
        /// The database file.
        path: PathBuf,
    },
    /// The log was written by a newer Arbiter, with a schema this build cannot read.
    #[error(
        "audit log `{path}` has schema version {found}, but this build supports up to {supported}; run a newer Arbiter or point the audit path at a new file"
    )]
    Schema {
        /// The database file.
        path: PathBuf,
        /// The version recorded in the file.
        found: i64,
        /// The newest version this build understands.
        supported: i64,
    },
    /// The writer thread could not be started.
    #[error("cannot start the audit writer thread")]
    Spawn {
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The record body could not be serialized as JSON.
    #[error("cannot serialize the audit record body as JSON")]
    Body {
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A batch of records could not be committed; none of its records were written.
    #[error(
        "cannot write to the audit log: a batch of {records} records was rolled back; check free disk space and the permissions of the audit database"
    )]
    WriteFailed {
        /// How many records the failed batch held (this append's record among them).
        records: usize,
        /// The cause, shared by every append of the batch.
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// The final checkpoint could not be written when the log was closed. Every record
    /// is committed, but those after the last checkpoint are not protected against
    /// truncation until the log is opened again (which signs the head at once).
    #[error(
        "cannot write the final checkpoint of the audit log; check free disk space, then open the log again to sign its head"
    )]
    CheckpointFailed {
        /// The cause.
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// The log was closed; nothing more can be appended.
    #[error("the audit log is closed")]
    Closed,
    /// The writer thread ended without being asked to (it panicked).
    #[error("the audit writer stopped unexpectedly; see the error log and restart the server")]
    WriterStopped,
    /// A stored record could not be read back as a record.
    #[error(
        "record {seq} of audit log `{path}` has a malformed `{column}` column; run `arbiter audit verify` on it"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The record's sequence number.
        seq: u64,
        /// The column that could not be decoded.
        column: &'static str,
    },
}

impl AuditError {
    /// A closure mapping SQLite errors to [`AuditError::Database`] for `path`.
    pub(crate) fn db(path: &std::path::Path) -> impl FnOnce(rusqlite::Error) -> Self + '_ {
        move |source| Self::Database {
            path: path.to_path_buf(),
            source,
        }
    }
}
