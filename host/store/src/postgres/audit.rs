//! The replicas' audit chains in PostgreSQL (see [`crate::audit`]): one row per record
//! and per checkpoint keyed by chain id, and one head row per chain, moved in the
//! transaction that ships (its row lock keeps two shipments of one chain apart).

use super::cached;
use arbiter_audit::{Filter, Hash, Kind, SignedCheckpoint, StoredRecord};
use deadpool_postgres::Object;
use serde_json::value::RawValue;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::PgStore;

#[cfg(test)]
mod tests;
use crate::{AuditChains, ChainHead, ChainRecord, StoreError};

const RECORD_COLUMNS: &str = "chain_id, seq, kind, at_micros, principal, outcome, policy_set, decision_id, body, prev_hash, hash";

const CHECKPOINT_COLUMNS: &str = "number, seq, hash, at_micros, key_id, signature, public_key";

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn uint(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl AuditChains for PgStore {
    fn keeps_audit_chains(&self) -> bool {
        true
    }

    fn ship_audit(
        &self,
        chain_id: &str,
        records: &[StoredRecord],
        checkpoints: &[SignedCheckpoint],
        now: i64,
    ) -> Result<(), StoreError> {
        if records.is_empty() && checkpoints.is_empty() {
            return Ok(());
        }
        let shipment = (chain_id.to_owned(), records.to_vec(), checkpoints.to_vec());
        self.run(move |c| ship(c, shipment, now))
    }

    fn audit_chain_heads(&self) -> Result<Vec<ChainHead>, StoreError> {
        self.run(|c| async move {
            let rows = cached::query(
                &c,
                "SELECT chain_id, seq, hash, checkpoint_number, shipped_micros
                     FROM audit_chains ORDER BY chain_id",
                &[],
            )
            .await?;
            rows.iter().map(head).collect()
        })
    }

    fn audit_chain_head(&self, chain_id: &str) -> Result<Option<ChainHead>, StoreError> {
        let chain = chain_id.to_owned();
        self.run(move |c| async move {
            let row = cached::query_opt(
                &c,
                "SELECT chain_id, seq, hash, checkpoint_number, shipped_micros
                     FROM audit_chains WHERE chain_id = $1",
                &[&chain],
            )
            .await?;
            row.as_ref().map(head).transpose()
        })
    }

    fn audit_chain_records(
        &self,
        chain_id: &str,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let chain = chain_id.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| async move {
            let rows = cached::query(
                &c,
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM audit_records
                         WHERE chain_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4"
                ),
                &[&chain, &int(after), &int(through), &limit],
            )
            .await?;
            rows.iter().map(|r| record(r).map(|r| r.record)).collect()
        })
    }

    fn audit_chain_checkpoints(
        &self,
        chain_id: &str,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<Vec<SignedCheckpoint>, StoreError> {
        let chain = chain_id.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| async move {
            let rows = cached::query(
                &c,
                &format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints
                         WHERE chain_id = $1 AND number > $2 AND number <= $3
                         ORDER BY number LIMIT $4"
                ),
                &[&chain, &int(after), &int(through), &limit],
            )
            .await?;
            rows.iter().map(|r| checkpoint(r, &chain)).collect()
        })
    }

    fn audit_chain_keys(&self, chain_id: &str) -> Result<Vec<String>, StoreError> {
        let chain = chain_id.to_owned();
        self.run(move |c| async move {
            let rows = cached::query(
                &c,
                "SELECT DISTINCT public_key FROM audit_checkpoints
                     WHERE chain_id = $1 AND public_key IS NOT NULL",
                &[&chain],
            )
            .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn query_audit_chains(
        &self,
        filter: &Filter,
        chain_id: Option<&str>,
    ) -> Result<Vec<ChainRecord>, StoreError> {
        let (sql, args) = to_sql(filter, chain_id);
        self.run(move |c| async move {
            let refs: Vec<&(dyn ToSql + Sync)> =
                args.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect();
            let rows = cached::query(&c, &sql, &refs).await?;
            rows.iter().map(record).collect()
        })
    }
}

/// One shipment, in one transaction (see [`AuditChains::ship_audit`]).
async fn ship(
    mut c: Object,
    (chain, records, checkpoints): (String, Vec<StoredRecord>, Vec<SignedCheckpoint>),
    now: i64,
) -> Result<(), StoreError> {
    let fork = |seq| StoreError::AuditFork {
        chain_id: chain.clone(),
        seq,
    };
    let tx = c.transaction().await?;
    cached::execute(
        &tx,
        "INSERT INTO audit_chains (chain_id, seq, hash, checkpoint_number, shipped_micros)
         VALUES ($1, 0, $2, 0, $3) ON CONFLICT (chain_id) DO NOTHING",
        &[&chain, &vec![0u8; 32], &now],
    )
    .await?;
    let row = cached::query_one(
        &tx,
        "SELECT seq, hash, checkpoint_number FROM audit_chains WHERE chain_id = $1 FOR UPDATE",
        &[&chain],
    )
    .await?;
    let (mut head_seq, mut head_hash, mut head_number) =
        (uint(row.get(0)), hash(&row, 1, &chain)?, uint(row.get(2)));
    if let Some(first) = records.first() {
        if first.seq > head_seq + 1 {
            return Err(fork(head_seq + 1));
        }
        for (i, r) in records.iter().enumerate() {
            if r.seq != first.seq + i as u64 {
                return Err(fork(first.seq + i as u64));
            }
            if r.seq == head_seq + 1 && r.prev_hash != head_hash {
                return Err(fork(r.seq));
            }
        }
    }
    let new: Vec<i64> = insert_records(&tx, &chain, &records, now).await?;
    let clashes: Vec<&StoredRecord> = records
        .iter()
        .filter(|r| !new.contains(&int(r.seq)))
        .collect();
    if !clashes.is_empty() {
        let seqs: Vec<i64> = clashes.iter().map(|r| int(r.seq)).collect();
        let stored = cached::query(
            &tx,
            "SELECT seq, hash FROM audit_records WHERE chain_id = $1 AND seq = ANY($2)",
            &[&chain, &seqs],
        )
        .await?;
        for r in clashes {
            let same = stored
                .iter()
                .any(|s| uint(s.get(0)) == r.seq && s.get::<_, &[u8]>(1) == r.hash);
            if !same {
                return Err(fork(r.seq));
            }
        }
    }
    if let Some(last) = records.last()
        && last.seq > head_seq
    {
        head_seq = last.seq;
        head_hash = last.hash;
    }
    for cp in &checkpoints {
        let inserted = cached::execute(
            &tx,
            "INSERT INTO audit_checkpoints
                 (chain_id, number, seq, hash, at_micros, key_id, signature, public_key)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            &[
                &chain,
                &int(cp.number),
                &int(cp.seq),
                &&cp.hash[..],
                &cp.at_micros,
                &cp.key_id,
                &cp.signature,
                &cp.public_key,
            ],
        )
        .await?;
        if inserted == 0 {
            let stored = cached::query_one(
                &tx,
                "SELECT seq, hash, signature FROM audit_checkpoints
                     WHERE chain_id = $1 AND number = $2",
                &[&chain, &int(cp.number)],
            )
            .await?;
            let same = uint(stored.get(0)) == cp.seq
                && stored.get::<_, &[u8]>(1) == cp.hash
                && stored.get::<_, &[u8]>(2) == cp.signature;
            if !same {
                return Err(fork(cp.seq));
            }
        }
        head_number = head_number.max(cp.number);
    }
    cached::execute(
        &tx,
        "UPDATE audit_chains SET seq = $2, hash = $3, checkpoint_number = $4, shipped_micros = $5
         WHERE chain_id = $1",
        &[
            &chain,
            &int(head_seq),
            &&head_hash[..],
            &int(head_number),
            &now,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Inserts `records` in one statement (one round trip per shipment); returns the seqs
/// that were new.
async fn insert_records(
    tx: &deadpool_postgres::Transaction<'_>,
    chain: &str,
    records: &[StoredRecord],
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let seq: Vec<i64> = records.iter().map(|r| int(r.seq)).collect();
    let kind: Vec<&str> = records.iter().map(|r| r.record.kind.as_str()).collect();
    let at: Vec<i64> = records.iter().map(|r| r.record.at_micros).collect();
    let principal: Vec<Option<&str>> = records
        .iter()
        .map(|r| r.record.principal.as_deref())
        .collect();
    let outcome: Vec<Option<&str>> = records
        .iter()
        .map(|r| r.record.outcome.as_deref())
        .collect();
    let set: Vec<Option<&str>> = records
        .iter()
        .map(|r| r.record.policy_set.as_deref())
        .collect();
    let decision: Vec<Option<&str>> = records
        .iter()
        .map(|r| r.record.decision_id.as_deref())
        .collect();
    let body: Vec<&str> = records.iter().map(|r| r.record.body.get()).collect();
    let prev: Vec<&[u8]> = records.iter().map(|r| &r.prev_hash[..]).collect();
    let hash: Vec<&[u8]> = records.iter().map(|r| &r.hash[..]).collect();
    let rows = cached::query(
        tx,
        "INSERT INTO audit_records (chain_id, seq, kind, at_micros, principal, outcome,
                 policy_set, decision_id, body, prev_hash, hash, shipped_micros)
             SELECT $1, u.*, $12 FROM UNNEST($2::bigint[], $3::text[], $4::bigint[], $5::text[],
                 $6::text[], $7::text[], $8::text[], $9::text[], $10::bytea[], $11::bytea[]) AS u
             ON CONFLICT DO NOTHING RETURNING seq",
        &[
            &chain, &seq, &kind, &at, &principal, &outcome, &set, &decision, &body, &prev, &hash,
            &now,
        ],
    )
    .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The merged query of [`AuditChains::query_audit_chains`] and its arguments.
fn to_sql(f: &Filter, chain: Option<&str>) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut sql = format!("SELECT {RECORD_COLUMNS} FROM audit_records WHERE TRUE");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut clause = |column: &str, op: &str, value: Box<dyn ToSql + Sync + Send>| {
        args.push(value);
        sql.push_str(&format!(" AND {column} {op} ${}", args.len()));
    };
    if let Some(c) = chain {
        clause("chain_id", "=", Box::new(c.to_owned()));
    }
    if let Some(t) = f.since_micros {
        clause("at_micros", ">=", Box::new(t));
    }
    if let Some(t) = f.until_micros {
        clause("at_micros", "<", Box::new(t));
    }
    if let Some(p) = &f.principal {
        clause("principal", "=", Box::new(p.clone()));
    }
    if let Some(o) = &f.outcome {
        clause("outcome", "=", Box::new(o.clone()));
    }
    if let Some(p) = &f.policy_set {
        clause("policy_set", "=", Box::new(p.clone()));
    }
    if let Some(d) = &f.decision_id {
        clause("decision_id", "=", Box::new(d.clone()));
    }
    if let Some(k) = f.kind {
        clause("kind", "=", Box::new(k.as_str().to_owned()));
    }
    if let Some(s) = f.after_seq {
        clause("seq", ">", Box::new(int(s)));
    }
    let order = if f.newest_first { "DESC" } else { "ASC" };
    args.push(Box::new(i64::try_from(f.limit).unwrap_or(i64::MAX)));
    sql.push_str(&format!(
        " ORDER BY at_micros {order}, chain_id {order}, seq {order} LIMIT ${}",
        args.len()
    ));
    (sql, args)
}

fn head(r: &Row) -> Result<ChainHead, StoreError> {
    let chain_id: String = r.get(0);
    Ok(ChainHead {
        seq: uint(r.get(1)),
        hash: hash(r, 2, &chain_id)?,
        checkpoint_number: uint(r.get(3)),
        shipped_micros: r.get(4),
        chain_id,
    })
}

fn hash(r: &Row, i: usize, chain: &str) -> Result<Hash, StoreError> {
    Hash::try_from(r.get::<_, &[u8]>(i)).map_err(|_| StoreError::Corrupt {
        what: "audit hash",
        id: chain.to_owned(),
    })
}

/// A row of [`RECORD_COLUMNS`].
fn record(r: &Row) -> Result<ChainRecord, StoreError> {
    let chain_id: String = r.get(0);
    let seq = uint(r.get(1));
    let corrupt = || StoreError::Corrupt {
        what: "audit record",
        id: format!("{chain_id}#{seq}"),
    };
    let kind: String = r.get(2);
    let body: String = r.get(8);
    let record = StoredRecord {
        seq,
        record: arbiter_audit::Record {
            kind: kind.parse::<Kind>().map_err(|_| corrupt())?,
            at_micros: r.get(3),
            principal: r.get(4),
            outcome: r.get(5),
            policy_set: r.get(6),
            decision_id: r.get(7),
            body: RawValue::from_string(body).map_err(|_| corrupt())?,
        },
        prev_hash: Hash::try_from(r.get::<_, &[u8]>(9)).map_err(|_| corrupt())?,
        hash: Hash::try_from(r.get::<_, &[u8]>(10)).map_err(|_| corrupt())?,
    };
    Ok(ChainRecord { chain_id, record })
}

/// A row of [`CHECKPOINT_COLUMNS`].
fn checkpoint(r: &Row, chain: &str) -> Result<SignedCheckpoint, StoreError> {
    let number = uint(r.get(0));
    Ok(SignedCheckpoint {
        number,
        seq: uint(r.get(1)),
        hash: Hash::try_from(r.get::<_, &[u8]>(2)).map_err(|_| StoreError::Corrupt {
            what: "audit checkpoint",
            id: format!("{chain}@{number}"),
        })?,
        at_micros: r.get(3),
        key_id: r.get(4),
        signature: r.get(5),
        public_key: r.get(6),
    })
}
