//! Replica leases in PostgreSQL: a replica refuses to start while another live one
//! holds its id. The claim is one `INSERT .. ON CONFLICT DO UPDATE .. WHERE`: rows
//! racing for one id are serialised by the database on its key, and the condition is
//! checked against the row as the winner left it, so exactly one claimant wins.

use super::cached;
use crate::lease::{CLAIM_ATTEMPTS, ReplicaLease, ReplicaLeases};
use crate::{PgStore, StoreError};

const COLUMNS: &str = "id, version, started_micros, renewed_micros, expires_micros";

fn lease(r: &tokio_postgres::Row) -> ReplicaLease {
    ReplicaLease {
        id: r.get(0),
        version: r.get(1),
        started_micros: r.get(2),
        renewed_micros: r.get(3),
        expires_micros: r.get(4),
    }
}

impl ReplicaLeases for PgStore {
    fn lease_clock_micros(&self) -> Result<i64, StoreError> {
        self.run(|c| async move {
            let row = cached::query_one(
                &c,
                "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT",
                &[],
            )
            .await?;
            Ok(row.get(0))
        })
    }

    fn claim_replica(
        &self,
        id: &str,
        nonce: &str,
        version: &str,
        now: i64,
        ttl: i64,
    ) -> Result<Result<(), ReplicaLease>, StoreError> {
        let (id, nonce, version) = (id.to_string(), nonce.to_string(), version.to_string());
        let expires = now.saturating_add(ttl);
        self.run(move |c| async move {
            for _ in 0..CLAIM_ATTEMPTS {
                let n = cached::execute(&c,
                        "INSERT INTO replica_leases (id, nonce, version, started_micros, renewed_micros, expires_micros)
                         VALUES ($1, $2, $3, $4, $4, $5)
                         ON CONFLICT (id) DO UPDATE SET
                           nonce = EXCLUDED.nonce, version = EXCLUDED.version,
                           started_micros = CASE WHEN replica_leases.nonce = EXCLUDED.nonce
                             THEN replica_leases.started_micros ELSE EXCLUDED.started_micros END,
                           renewed_micros = EXCLUDED.renewed_micros, expires_micros = EXCLUDED.expires_micros
                         WHERE replica_leases.expires_micros <= EXCLUDED.renewed_micros
                           OR replica_leases.nonce = EXCLUDED.nonce",
                        &[&id, &nonce, &version, &now, &expires],
                    )
                    .await?;
                if n == 1 {
                    return Ok(Ok(()));
                }
                let holder = cached::query_opt(&c,
                        &format!("SELECT {COLUMNS} FROM replica_leases WHERE id = $1"),
                        &[&id],
                    )
                    .await?;
                if let Some(holder) = holder {
                    return Ok(Err(lease(&holder)));
                }
            }
            Err(StoreError::Duplicate(id))
        })
    }

    fn renew_replica(&self, id: &str, nonce: &str, now: i64, ttl: i64) -> Result<bool, StoreError> {
        let (id, nonce) = (id.to_string(), nonce.to_string());
        let expires = now.saturating_add(ttl);
        self.run(move |c| async move {
            let n = cached::execute(&c,
                    "UPDATE replica_leases SET renewed_micros = $3, expires_micros = $4 WHERE id = $1 AND nonce = $2",
                    &[&id, &nonce, &now, &expires],
                )
                .await?;
            Ok(n == 1)
        })
    }

    fn release_replica(&self, id: &str, nonce: &str) -> Result<bool, StoreError> {
        let (id, nonce) = (id.to_string(), nonce.to_string());
        self.run(move |c| async move {
            let n = cached::execute(
                &c,
                "DELETE FROM replica_leases WHERE id = $1 AND nonce = $2",
                &[&id, &nonce],
            )
            .await?;
            Ok(n == 1)
        })
    }

    fn replicas(&self, now: i64) -> Result<Vec<ReplicaLease>, StoreError> {
        self.run(move |c| async move {
            let rows = cached::query(
                &c,
                &format!(
                    "SELECT {COLUMNS} FROM replica_leases WHERE expires_micros > $1 ORDER BY id"
                ),
                &[&now],
            )
            .await?;
            Ok(rows.iter().map(lease).collect())
        })
    }
}
