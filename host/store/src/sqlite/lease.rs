//! Replica leases in SQLite: the same rows and conditions as PostgreSQL's (the server
//! itself only claims one on a shared PostgreSQL database).

use rusqlite::{OptionalExtension as _, params};

use crate::lease::{CLAIM_ATTEMPTS, ReplicaLease, ReplicaLeases};
use crate::{SqliteStore, StoreError};

const COLUMNS: &str = "id, version, started_micros, renewed_micros, expires_micros";

fn lease(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReplicaLease> {
    Ok(ReplicaLease {
        id: r.get(0)?,
        version: r.get(1)?,
        started_micros: r.get(2)?,
        renewed_micros: r.get(3)?,
        expires_micros: r.get(4)?,
    })
}

impl ReplicaLeases for SqliteStore {
    fn claim_replica(
        &self,
        id: &str,
        nonce: &str,
        version: &str,
        now: i64,
        ttl: i64,
    ) -> Result<Result<(), ReplicaLease>, StoreError> {
        let conn = self.conn();
        for _ in 0..CLAIM_ATTEMPTS {
            // One statement decides: inserted, or taken over where the holder's lease
            // ran out or is already ours; nothing changes where another holds it.
            let n = conn.execute(
                "INSERT INTO replica_leases (id, nonce, version, started_micros, renewed_micros, expires_micros)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET
                   nonce = excluded.nonce, version = excluded.version,
                   started_micros = CASE WHEN replica_leases.nonce = excluded.nonce
                     THEN replica_leases.started_micros ELSE excluded.started_micros END,
                   renewed_micros = excluded.renewed_micros, expires_micros = excluded.expires_micros
                 WHERE replica_leases.expires_micros <= excluded.renewed_micros
                   OR replica_leases.nonce = excluded.nonce",
                params![id, nonce, version, now, now.saturating_add(ttl)],
            )?;
            if n == 1 {
                return Ok(Ok(()));
            }
            let holder = conn
                .query_row(
                    &format!("SELECT {COLUMNS} FROM replica_leases WHERE id = ?1"),
                    [id],
                    lease,
                )
                .optional()?;
            if let Some(holder) = holder {
                return Ok(Err(holder));
            }
        }
        Err(StoreError::Duplicate(id.to_string()))
    }

    fn renew_replica(&self, id: &str, nonce: &str, now: i64, ttl: i64) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE replica_leases SET renewed_micros = ?3, expires_micros = ?4 WHERE id = ?1 AND nonce = ?2",
            params![id, nonce, now, now.saturating_add(ttl)],
        )?;
        Ok(n == 1)
    }

    fn release_replica(&self, id: &str, nonce: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM replica_leases WHERE id = ?1 AND nonce = ?2",
            params![id, nonce],
        )?;
        Ok(n == 1)
    }

    fn replicas(&self, now: i64) -> Result<Vec<ReplicaLease>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM replica_leases WHERE expires_micros > ?1 ORDER BY id"
        ))?;
        let rows = stmt
            .query_map([now], lease)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
