//! The database file: creating it owner-only, the schema and its migrations, and the
//! connections the writer and the readers use.

use std::path::Path;
use std::time::Duration;

use arbiter_keys::PublicKey;
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, TransactionBehavior};

use crate::chain::{GENESIS, Hash};
use crate::error::AuditError;

/// The schema version this build writes and reads.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// Migration `i` takes a database from version `i` to `i + 1`.
///
/// Indexes are chosen for the writer: `at_micros` and `decision_id` (UUIDv7, so
/// time-ordered) grow at their right edge and cost little. There is deliberately no
/// index on `principal`: its inserts land in one place per principal, which dirtied a
/// page per record per batch and cut durable throughput by 2.5x in `append_bench`.
/// Principal queries scan, narrowed by a time range when one is given.
const MIGRATIONS: &[&str] = &[r"
    CREATE TABLE meta (name TEXT PRIMARY KEY, value ANY NOT NULL) STRICT;
    CREATE TABLE keys (
        key_id TEXT PRIMARY KEY,
        public_key TEXT NOT NULL,
        added_micros INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE records (
        seq INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        at_micros INTEGER NOT NULL,
        principal TEXT,
        outcome TEXT,
        policy_set TEXT,
        decision_id TEXT,
        body TEXT NOT NULL,
        prev_hash BLOB NOT NULL,
        hash BLOB NOT NULL
    ) STRICT;
    CREATE INDEX records_at ON records (at_micros);
    CREATE INDEX records_decision ON records (decision_id);
    CREATE TABLE checkpoints (
        number INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL,
        hash BLOB NOT NULL,
        at_micros INTEGER NOT NULL,
        key_id TEXT NOT NULL,
        signature BLOB NOT NULL
    ) STRICT;
"];

/// How long a connection waits for another one's lock (a reader's WAL checkpoint, a
/// second process) before giving up; long enough to ride out a slow disk, short enough
/// that a wedged log fails requests instead of hanging them.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating owner-only, migrating) the log for the writer: WAL, so readers never
/// block the writer, and `synchronous=FULL`, so a commit survives power loss.
pub(crate) fn open_for_writing(path: &Path) -> Result<Connection, AuditError> {
    create_private(path)?;
    let db = AuditError::db(path);
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(AuditError::db(path))?;
    let setup = |conn: &Connection| -> rusqlite::Result<()> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        conn.pragma_update(None, "synchronous", "FULL")
    };
    setup(&conn).map_err(db)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Opens the log read-only, refusing files of another schema.
pub(crate) fn open_for_reading(path: &Path) -> Result<Connection, AuditError> {
    // SQLite would report a missing file as "unable to open database file"; the
    // operating system's error names the problem.
    std::fs::metadata(path).map_err(|source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(AuditError::db(path))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(AuditError::db(path))?;
    match version(&conn, path)? {
        SCHEMA_VERSION => Ok(conn),
        0 => Err(AuditError::NotAnAuditLog {
            path: path.to_path_buf(),
        }),
        found => Err(AuditError::Schema {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        }),
    }
}

/// Creates the file with mode 0600 before SQLite sees it: SQLite would create it with
/// the umask's mode, and SQLite gives its `-wal` and `-shm` files the database's mode.
fn create_private(path: &Path) -> Result<(), AuditError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map(drop)
        .map_err(|source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// The schema version of the file; 0 for an empty database.
fn version(conn: &Connection, path: &Path) -> Result<i64, AuditError> {
    let (tables, meta): (i64, i64) = conn
        .query_row(
            "SELECT count(*), coalesce(sum(name = 'meta'), 0) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(AuditError::db(path))?;
    let not_ours = || AuditError::NotAnAuditLog {
        path: path.to_path_buf(),
    };
    match (tables, meta) {
        (0, _) => Ok(0),
        (_, 0) => Err(not_ours()),
        _ => conn
            .query_row(
                "SELECT value FROM meta WHERE name = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(AuditError::db(path))?
            .ok_or_else(not_ours),
    }
}

/// Brings the schema up to [`SCHEMA_VERSION`] in one transaction.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), AuditError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(AuditError::db(path))?;
    let found = version(&tx, path)?;
    if !(0..=SCHEMA_VERSION).contains(&found) {
        return Err(AuditError::Schema {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let apply = || -> rusqlite::Result<()> {
        for step in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
            tx.execute_batch(step)?;
        }
        tx.execute(
            "INSERT INTO meta (name, value) VALUES ('schema_version', ?1)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            [SCHEMA_VERSION],
        )?;
        Ok(())
    };
    apply().map_err(AuditError::db(path))?;
    tx.commit().map_err(AuditError::db(path))
}

/// Records `key` so that [`verify`](crate::verify()) can check checkpoints without an
/// external key (and so that every key that ever signed stays known after a rotation).
pub(crate) fn register_key(conn: &Connection, key: &PublicKey, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO keys (key_id, public_key, added_micros) VALUES (?1, ?2, ?3)",
        (key.id(), key.to_pem(), now),
    )
    .map(drop)
}

/// Where the chain stands: its last record, and the last checkpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    pub seq: u64,
    pub hash: Hash,
    pub checkpoint_number: u64,
    pub checkpoint_seq: u64,
}

/// Reads the chain head so a new session continues the chain.
pub(crate) fn head(conn: &Connection, path: &Path) -> Result<Head, AuditError> {
    let last: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(AuditError::db(path))?;
    let checkpoint: Option<(i64, i64)> = conn
        .query_row(
            "SELECT number, seq FROM checkpoints ORDER BY number DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(AuditError::db(path))?;
    let corrupt = |seq, column| AuditError::Corrupt {
        path: path.to_path_buf(),
        seq,
        column,
    };
    let (seq, hash) = match last {
        None => (0, GENESIS),
        Some((seq, hash)) => {
            let seq = u64::try_from(seq).map_err(|_| corrupt(0, "seq"))?;
            let hash = Hash::try_from(hash.as_slice()).map_err(|_| corrupt(seq, "hash"))?;
            (seq, hash)
        }
    };
    let (number, checkpoint_seq) = checkpoint.unwrap_or((0, 0));
    Ok(Head {
        seq,
        hash,
        checkpoint_number: u64::try_from(number).unwrap_or(0),
        checkpoint_seq: u64::try_from(checkpoint_seq).unwrap_or(0),
    })
}
