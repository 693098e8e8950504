//! The shared policy sets in SQLite. A server on SQLite is one replica and keeps its
//! sets' history in its data directory; these tables make the store's contract whole
//! (tools and tests use them alike on both backends).

use rusqlite::{OptionalExtension as _, Row, params};

use super::SqliteStore;
use crate::StoreError;
use crate::columns::{json, to_json};
use crate::policy_sets::{BundleSource, ReplicaSet, SetStore, StoredBundle, StoredSetState};

const STATE_COLUMNS: &str = "name, enforced_digest, shadow_digest, config_digest, versions, revision, changed_by, changed_micros";
const REPLICA_COLUMNS: &str =
    "replica_id, name, enforced_digest, enforced_version, shadow_digest, error, updated_micros";

fn state_row(r: &Row<'_>) -> rusqlite::Result<(StoredSetState, String)> {
    Ok((
        StoredSetState {
            name: r.get(0)?,
            enforced: r.get(1)?,
            shadow: r.get(2)?,
            config: r.get(3)?,
            versions: Vec::new(),
            revision: r.get(5)?,
            changed_by: r.get(6)?,
            changed_micros: r.get(7)?,
        },
        r.get(4)?,
    ))
}

fn replica_row(r: &Row<'_>) -> rusqlite::Result<ReplicaSet> {
    Ok(ReplicaSet {
        replica_id: r.get(0)?,
        name: r.get(1)?,
        enforced_digest: r.get(2)?,
        enforced_version: r.get(3)?,
        shadow_digest: r.get(4)?,
        error: r.get(5)?,
        updated_micros: r.get(6)?,
    })
}

impl SetStore for SqliteStore {
    fn set_revision(&self) -> Result<i64, StoreError> {
        let conn = self.conn();
        Ok(
            conn.query_row("SELECT revision FROM set_revision WHERE id = 1", [], |r| {
                r.get(0)
            })?,
        )
    }

    fn set_states(&self) -> Result<(i64, Vec<StoredSetState>), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let revision = tx.query_row("SELECT revision FROM set_revision WHERE id = 1", [], |r| {
            r.get(0)
        })?;
        let rows = tx
            .prepare(&format!(
                "SELECT {STATE_COLUMNS} FROM set_state ORDER BY name"
            ))?
            .query_map([], state_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let states = rows
            .into_iter()
            .map(|(mut s, versions)| {
                s.versions = json(&versions, "set versions", &s.name)?;
                Ok(s)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((revision, states))
    }

    fn set_bundle(&self, digest: &str) -> Result<Option<StoredBundle>, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT digest, name, version, bytes, reference, origin, signer, added_micros FROM set_bundles WHERE digest = ?1",
                [digest],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<Vec<u8>>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, i64>(7)?,
                    ))
                },
            )
            .optional()?;
        let Some((digest, name, version, bytes, reference, origin, signer, added_micros)) = row
        else {
            return Ok(None);
        };
        let source = match (bytes, reference) {
            (Some(b), _) => BundleSource::Bytes(b),
            (None, Some(r)) => BundleSource::Builtin(r),
            (None, None) => {
                return Err(StoreError::Corrupt {
                    what: "set bundle",
                    id: digest,
                });
            }
        };
        Ok(Some(StoredBundle {
            digest,
            name,
            version,
            source,
            origin,
            signer,
            added_micros,
        }))
    }

    fn stored_set_bundles(&self, digests: &[String]) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT 1 FROM set_bundles WHERE digest = ?1")?;
        let mut found = Vec::new();
        for d in digests {
            if stmt.exists([d])? {
                found.push(d.clone());
            }
        }
        Ok(found)
    }

    fn publish_set(
        &self,
        state: &StoredSetState,
        bundles: &[StoredBundle],
        expected: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current: i64 = tx
            .query_row(
                "SELECT revision FROM set_state WHERE name = ?1",
                [&state.name],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        if current != expected {
            return Ok(None);
        }
        for b in bundles {
            let (bytes, reference) = match &b.source {
                BundleSource::Bytes(bytes) => (Some(bytes.as_slice()), None),
                BundleSource::Builtin(r) => (None, Some(r.as_str())),
            };
            tx.execute(
                "INSERT INTO set_bundles (digest, name, version, bytes, reference, origin, signer, added_micros)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (digest) DO NOTHING",
                params![b.digest, b.name, b.version, bytes, reference, b.origin, b.signer, b.added_micros],
            )?;
        }
        let revision: i64 = tx.query_row(
            "UPDATE set_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision",
            [],
            |r| r.get(0),
        )?;
        tx.execute(
            &format!(
                "INSERT INTO set_state ({STATE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (name) DO UPDATE SET enforced_digest = excluded.enforced_digest,
                 shadow_digest = excluded.shadow_digest, config_digest = excluded.config_digest,
                 versions = excluded.versions, revision = excluded.revision,
                 changed_by = excluded.changed_by, changed_micros = excluded.changed_micros"
            ),
            params![
                state.name,
                state.enforced,
                state.shadow,
                state.config,
                to_json(&state.versions),
                revision,
                state.changed_by,
                state.changed_micros
            ],
        )?;
        tx.commit()?;
        Ok(Some(revision))
    }

    fn record_replica_sets(&self, replica: &str, rows: &[ReplicaSet]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM replica_sets WHERE replica_id = ?1", [replica])?;
        for r in rows {
            tx.execute(
                &format!(
                    "INSERT INTO replica_sets ({REPLICA_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    replica,
                    r.name,
                    r.enforced_digest,
                    r.enforced_version,
                    r.shadow_digest,
                    r.error,
                    r.updated_micros
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn replica_sets(&self) -> Result<Vec<ReplicaSet>, StoreError> {
        let conn = self.conn();
        let rows = conn
            .prepare(&format!(
                "SELECT {REPLICA_COLUMNS} FROM replica_sets ORDER BY replica_id, name"
            ))?
            .query_map([], replica_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
