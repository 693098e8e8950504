//! Reading records back: the filters behind the CLI, the admin API and `tail -f`-style
//! following (`after_seq` set to the last seq seen).

use std::collections::HashMap;
use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{OptionalExtension as _, Row};

use serde_json::value::RawValue;

use crate::chain::Hash;
use crate::error::AuditError;
use crate::record::{Kind, Record, StoredRecord};
use crate::schema;

/// The limit of [`Filter::default`]: a screenful for a person, a sane page for a program.
pub const DEFAULT_LIMIT: usize = 1000;

/// Which records a query returns. Every field that is set must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Records at or after this time (unix micros).
    pub since_micros: Option<i64>,
    /// Records before this time (unix micros, exclusive).
    pub until_micros: Option<i64>,
    /// Records about this principal.
    pub principal: Option<String>,
    /// Records with this outcome (`allow`, `deny`, `approved`, ...).
    pub outcome: Option<String>,
    /// Records of this policy set.
    pub policy_set: Option<String>,
    /// Records of this decision.
    pub decision_id: Option<String>,
    /// Records of this kind.
    pub kind: Option<Kind>,
    /// Records after this sequence number (exclusive).
    pub after_seq: Option<u64>,
    /// At most this many records (0 returns none).
    pub limit: usize,
    /// Newest first (the last `limit` records) instead of oldest first.
    pub newest_first: bool,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            since_micros: None,
            until_micros: None,
            principal: None,
            outcome: None,
            policy_set: None,
            decision_id: None,
            kind: None,
            after_seq: None,
            limit: DEFAULT_LIMIT,
            newest_first: false,
        }
    }
}

impl Filter {
    /// The SQL and its arguments, in order.
    fn to_sql(&self) -> (String, Vec<Value>) {
        let mut sql = format!("SELECT {COLUMNS} FROM records WHERE 1 = 1");
        let mut args = Vec::new();
        let mut clause = |column: &str, op: &str, value: Value| {
            sql.push_str(&format!(" AND {column} {op} ?"));
            args.push(value);
        };
        let text = |s: &String| Value::Text(s.clone());
        if let Some(t) = self.since_micros {
            clause("at_micros", ">=", Value::Integer(t));
        }
        if let Some(t) = self.until_micros {
            clause("at_micros", "<", Value::Integer(t));
        }
        if let Some(p) = &self.principal {
            clause("principal", "=", text(p));
        }
        if let Some(o) = &self.outcome {
            clause("outcome", "=", text(o));
        }
        if let Some(p) = &self.policy_set {
            clause("policy_set", "=", text(p));
        }
        if let Some(d) = &self.decision_id {
            clause("decision_id", "=", text(d));
        }
        if let Some(k) = self.kind {
            clause("kind", "=", Value::Text(k.as_str().to_owned()));
        }
        if let Some(s) = self.after_seq {
            // Past the largest possible seq nothing can follow.
            clause(
                "seq",
                ">",
                Value::Integer(i64::try_from(s).unwrap_or(i64::MAX)),
            );
        }
        let order = if self.newest_first { "DESC" } else { "ASC" };
        sql.push_str(&format!(" ORDER BY seq {order} LIMIT ?"));
        args.push(Value::Integer(
            i64::try_from(self.limit).unwrap_or(i64::MAX),
        ));
        (sql, args)
    }
}

/// The columns of a record, in the order [`decode`] reads them.
pub(crate) const COLUMNS: &str =
    "seq, kind, at_micros, principal, outcome, policy_set, decision_id, body, prev_hash, hash";

/// Records of the log at `path` matching `filter`, in ascending seq order (descending
/// with [`Filter::newest_first`]). Opens the file read-only, so it works beside a
/// running server.
pub fn query(path: &Path, filter: &Filter) -> Result<Vec<StoredRecord>, AuditError> {
    let conn = schema::open_for_reading(path)?;
    let (sql, args) = filter.to_sql();
    let mut stmt = conn.prepare(&sql).map_err(AuditError::db(path))?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(args))
        .map_err(AuditError::db(path))?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(AuditError::db(path))? {
        found.push(decode(row, path)?);
    }
    Ok(found)
}

/// The stored hash of each record in `seqs` that the log at `path` still has (a seq
/// missing from the answer is not in the log), read through one read-only connection:
/// what comparing the log with checkpoints copied off the machine needs.
pub fn record_hashes(path: &Path, seqs: &[u64]) -> Result<HashMap<u64, Hash>, AuditError> {
    let conn = schema::open_for_reading(path)?;
    let mut stmt = conn
        .prepare("SELECT hash FROM records WHERE seq = ?1")
        .map_err(AuditError::db(path))?;
    let mut found = HashMap::with_capacity(seqs.len());
    for &seq in seqs {
        let bytes: Option<Vec<u8>> = stmt
            .query_row([i64::try_from(seq).unwrap_or(i64::MAX)], |r| r.get(0))
            .optional()
            .map_err(AuditError::db(path))?;
        if let Some(bytes) = bytes {
            let hash = Hash::try_from(bytes.as_slice()).map_err(|_| AuditError::Corrupt {
                path: path.to_path_buf(),
                seq,
                column: "hash",
            })?;
            found.insert(seq, hash);
        }
    }
    Ok(found)
}

/// A row as a record; a column that does not decode is reported, not skipped.
fn decode(row: &Row<'_>, path: &Path) -> Result<StoredRecord, AuditError> {
    let seq: u64 = row.get(0).map_err(AuditError::db(path))?;
    let corrupt = |column| AuditError::Corrupt {
        path: path.to_path_buf(),
        seq,
        column,
    };
    let text = |i: usize, column| row.get::<_, Option<String>>(i).map_err(|_| corrupt(column));
    let hash = |i: usize, column| {
        let bytes = row
            .get_ref(i)
            .and_then(|v| Ok(v.as_blob()?))
            .map_err(|_| corrupt(column))?;
        Hash::try_from(bytes).map_err(|_| corrupt(column))
    };
    let kind = text(1, "kind")?
        .and_then(|k| k.parse::<Kind>().ok())
        .ok_or_else(|| corrupt("kind"))?;
    let body = text(7, "body")?.ok_or_else(|| corrupt("body"))?;
    Ok(StoredRecord {
        seq,
        record: Record {
            kind,
            at_micros: row.get(2).map_err(|_| corrupt("at_micros"))?,
            principal: text(3, "principal")?,
            outcome: text(4, "outcome")?,
            policy_set: text(5, "policy_set")?,
            decision_id: text(6, "decision_id")?,
            body: RawValue::from_string(body).map_err(|_| corrupt("body"))?,
        },
        prev_hash: hash(8, "prev_hash")?,
        hash: hash(9, "hash")?,
    })
}
