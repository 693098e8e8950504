//! The signing-key operations of the PostgreSQL backend: activating a key (retiring
//! the others) and keeping a key's sealed secret, each in one transaction.

use super::cached;
use deadpool_postgres::Object;

use crate::StoreError;

/// Retires every other key at `now` and makes `kid` active.
async fn activate(
    tx: &deadpool_postgres::Transaction<'_>,
    kid: &str,
    now: i64,
) -> Result<(), StoreError> {
    cached::execute(
        tx,
        "UPDATE signing_keys SET retired_micros = $2 WHERE kid != $1 AND retired_micros IS NULL",
        &[&kid, &now],
    )
    .await?;
    cached::execute(
        tx,
        "INSERT INTO signing_keys (kid, created_micros, retired_micros) VALUES ($1, $2, NULL)
         ON CONFLICT (kid) DO UPDATE SET retired_micros = NULL",
        &[&kid, &now],
    )
    .await?;
    Ok(())
}

pub(super) async fn activate_key(mut c: Object, kid: String, now: i64) -> Result<(), StoreError> {
    let tx = c.transaction().await?;
    activate(&tx, &kid, now).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn add_sealed(
    mut c: Object,
    kid: String,
    sealed: Vec<u8>,
    now: i64,
) -> Result<(), StoreError> {
    let tx = c.transaction().await?;
    cached::execute(
        &tx,
        "INSERT INTO sealed_signing_keys (kid, sealed) VALUES ($1, $2)
         ON CONFLICT (kid) DO UPDATE SET sealed = EXCLUDED.sealed",
        &[&kid, &sealed],
    )
    .await?;
    activate(&tx, &kid, now).await?;
    tx.commit().await?;
    Ok(())
}
