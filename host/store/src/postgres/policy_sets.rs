//! The policy sets replicas share, in PostgreSQL. Every change takes the one
//! `set_revision` row's lock first, so changes are stored one after the other and the
//! check that a name's state is still the one the changing replica saw is made after
//! the change before it committed (READ COMMITTED reads afresh per statement).

use super::cached;
use tokio_postgres::Row;

use super::PgStore;
use crate::StoreError;
use crate::columns::{json, to_json};
use crate::policy_sets::{BundleSource, ReplicaSet, SetStore, StoredBundle, StoredSetState};

const STATE_COLUMNS: &str = "name, enforced_digest, shadow_digest, config_digest, versions, revision, changed_by, changed_micros";
const REPLICA_COLUMNS: &str =
    "replica_id, name, enforced_digest, enforced_version, shadow_digest, error, updated_micros";

fn state(r: &Row) -> Result<StoredSetState, StoreError> {
    let name: String = r.get(0);
    Ok(StoredSetState {
        versions: json(r.get(4), "set versions", &name)?,
        enforced: r.get(1),
        shadow: r.get(2),
        config: r.get(3),
        revision: r.get(5),
        changed_by: r.get(6),
        changed_micros: r.get(7),
        name,
    })
}

fn replica(r: &Row) -> ReplicaSet {
    ReplicaSet {
        replica_id: r.get(0),
        name: r.get(1),
        enforced_digest: r.get(2),
        enforced_version: r.get(3),
        shadow_digest: r.get(4),
        error: r.get(5),
        updated_micros: r.get(6),
    }
}

impl SetStore for PgStore {
    fn set_revision(&self) -> Result<i64, StoreError> {
        self.run(|c| async move {
            Ok(
                cached::query_one(&c, "SELECT revision FROM set_revision WHERE id = 1", &[])
                    .await?
                    .get(0),
            )
        })
    }

    fn set_states(&self) -> Result<(i64, Vec<StoredSetState>), StoreError> {
        self.run(|mut c| async move {
            // One snapshot for the revision and the states it stands for.
            let tx = c
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let revision: i64 =
                cached::query_one(&tx, "SELECT revision FROM set_revision WHERE id = 1", &[])
                    .await?
                    .get(0);
            let rows = cached::query(
                &tx,
                &format!("SELECT {STATE_COLUMNS} FROM set_state ORDER BY name"),
                &[],
            )
            .await?;
            tx.commit().await?;
            let states = rows.iter().map(state).collect::<Result<Vec<_>, _>>()?;
            Ok((revision, states))
        })
    }

    fn set_bundle(&self, digest: &str) -> Result<Option<StoredBundle>, StoreError> {
        let digest = digest.to_string();
        self.run(move |c| async move {
            let Some(r) = cached::query_opt(&c,
                    "SELECT digest, name, version, bytes, reference, origin, signer, added_micros FROM set_bundles WHERE digest = $1",
                    &[&digest],
                )
                .await?
            else {
                return Ok(None);
            };
            let source = match (r.get::<_, Option<Vec<u8>>>(3), r.get::<_, Option<String>>(4)) {
                (Some(b), _) => BundleSource::Bytes(b),
                (None, Some(reference)) => BundleSource::Builtin(reference),
                (None, None) => {
                    return Err(StoreError::Corrupt {
                        what: "set bundle",
                        id: digest,
                    });
                }
            };
            Ok(Some(StoredBundle {
                digest: r.get(0),
                name: r.get(1),
                version: r.get(2),
                source,
                origin: r.get(5),
                signer: r.get(6),
                added_micros: r.get(7),
            }))
        })
    }

    fn stored_set_bundles(&self, digests: &[String]) -> Result<Vec<String>, StoreError> {
        let digests = digests.to_vec();
        self.run(move |c| async move {
            let rows = cached::query(
                &c,
                "SELECT digest FROM set_bundles WHERE digest = ANY($1)",
                &[&digests],
            )
            .await?;
            let found: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            Ok(digests.into_iter().filter(|d| found.contains(d)).collect())
        })
    }

    fn publish_set(
        &self,
        state: &StoredSetState,
        bundles: &[StoredBundle],
        expected: i64,
    ) -> Result<Option<i64>, StoreError> {
        let (state, bundles) = (state.clone(), bundles.to_vec());
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            // The lock every change takes first; the revision it returns is rolled
            // back with the transaction when the name changed meanwhile.
            let revision: i64 = cached::query_one(&tx,
                    "UPDATE set_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision",
                    &[],
                )
                .await?
                .get(0);
            let current: i64 = cached::query_opt(&tx, "SELECT revision FROM set_state WHERE name = $1", &[&state.name])
                .await?
                .map_or(0, |r| r.get(0));
            if current != expected {
                return Ok(None);
            }
            for b in &bundles {
                let (bytes, reference) = match &b.source {
                    BundleSource::Bytes(bytes) => (Some(bytes.as_slice()), None),
                    BundleSource::Builtin(r) => (None, Some(r.as_str())),
                };
                cached::execute(&tx,
                    "INSERT INTO set_bundles (digest, name, version, bytes, reference, origin, signer, added_micros)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (digest) DO NOTHING",
                    &[&b.digest, &b.name, &b.version, &bytes, &reference, &b.origin, &b.signer, &b.added_micros],
                )
                .await?;
            }
            cached::execute(&tx,
                &format!(
                    "INSERT INTO set_state ({STATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (name) DO UPDATE SET enforced_digest = EXCLUDED.enforced_digest,
                     shadow_digest = EXCLUDED.shadow_digest, config_digest = EXCLUDED.config_digest,
                     versions = EXCLUDED.versions, revision = EXCLUDED.revision,
                     changed_by = EXCLUDED.changed_by, changed_micros = EXCLUDED.changed_micros"
                ),
                &[
                    &state.name,
                    &state.enforced,
                    &state.shadow,
                    &state.config,
                    &to_json(&state.versions),
                    &revision,
                    &state.changed_by,
                    &state.changed_micros,
                ],
            )
            .await?;
            // Delivered at commit: the followers read the change as soon as it is there.
            cached::execute(
                &tx,
                "SELECT pg_notify($1, $2)::TEXT",
                &[&super::events::SET_CHANNEL, &revision.to_string()],
            )
            .await?;
            tx.commit().await?;
            Ok(Some(revision))
        })
    }

    fn record_replica_sets(&self, replica: &str, rows: &[ReplicaSet]) -> Result<(), StoreError> {
        let (replica, rows) = (replica.to_string(), rows.to_vec());
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            cached::execute(&tx, "DELETE FROM replica_sets WHERE replica_id = $1", &[&replica])
                .await?;
            for r in &rows {
                cached::execute(&tx,
                    &format!(
                        "INSERT INTO replica_sets ({REPLICA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    ),
                    &[
                        &replica,
                        &r.name,
                        &r.enforced_digest,
                        &r.enforced_version,
                        &r.shadow_digest,
                        &r.error,
                        &r.updated_micros,
                    ],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn set_change_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.set_changes.clone())
    }

    fn replica_sets(&self) -> Result<Vec<ReplicaSet>, StoreError> {
        self.run(|c| async move {
            let rows = cached::query(
                &c,
                &format!("SELECT {REPLICA_COLUMNS} FROM replica_sets ORDER BY replica_id, name"),
                &[],
            )
            .await?;
            Ok(rows.iter().map(replica).collect())
        })
    }
}
