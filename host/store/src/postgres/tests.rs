//! The PostgreSQL backend against the [`StateStore`] contract, on a real server: the
//! one `scripts/test` starts (`ARBITER_TEST_POSTGRES`, e.g.
//! `postgres://arbiter@127.0.0.1:PORT`). Each test gets a database of its own.
//! Without that variable the tests say loudly that they did not run.

use super::*;
use crate::contract::{approval, contract_suite};

use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::NoTls;

/// The base URL of the test server (no database name), if there is one.
pub(crate) fn server() -> Option<String> {
    let url = std::env::var("ARBITER_TEST_POSTGRES").ok()?;
    Some(url.trim_end_matches('/').to_string())
}

/// A fresh, empty database on the test server: its URL.
pub(crate) fn fresh_database(base: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "arbiter_t{}_{}_{}",
        std::process::id(),
        now_nanos(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&format!("{base}/postgres"), NoTls)
            .await
            .expect("the test PostgreSQL server answers");
        let task = tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        drop(client);
        let _ = task.await;
    });
    format!("{base}/{name}")
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A store on a fresh database, or `None` (said loudly) without a test server.
fn store() -> Option<((), PgStore)> {
    let Some(base) = server() else {
        eprintln!(
            "SKIPPED: no PostgreSQL test server (ARBITER_TEST_POSTGRES is unset; scripts/test starts one)"
        );
        return None;
    };
    let url = fresh_database(&base);
    Some(((), PgStore::open(&url).expect("open")))
}

contract_suite!(store());

#[test]
fn migrations_run_once_under_the_lock_and_a_newer_schema_is_refused() {
    let Some(base) = server() else {
        return;
    };
    let url = fresh_database(&base);
    // Four replicas starting at once migrate the database once.
    std::thread::scope(|t| {
        for _ in 0..4 {
            t.spawn(|| PgStore::open(&url).expect("open"));
        }
    });
    let s = PgStore::open(&url).expect("open");
    s.create_approval(&approval("a1", 1)).expect("create");
    s.run(|c| async move {
        c.execute("UPDATE arbiter_schema SET version = 99", &[])
            .await?;
        Ok(())
    })
    .expect("bump");
    let e = PgStore::open(&url).expect_err("refused").to_string();
    assert!(e.contains("schema version 99"), "{e}");
}

#[test]
fn an_unreachable_database_fails_closed_with_a_clear_error_and_no_password() {
    // Nothing listens on port 1.
    let e = PgStore::open("postgres://arbiter:s3cret@127.0.0.1:1/arbiter")
        .expect_err("unreachable")
        .to_string();
    assert!(e.contains("cannot be reached"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
    assert_eq!(
        redact_url("postgres://arbiter:s3cret@db:5432/arbiter"),
        "postgres://arbiter:***@db:5432/arbiter"
    );
}

#[test]
fn leases_are_timed_by_the_database_servers_clock() {
    let Some((_, s)) = store() else {
        return;
    };
    // The server's clock, not this process's: read through the database (this test's
    // server runs on the same machine, so the two agree to well within a minute).
    let before = crate::now_micros();
    let db = crate::ReplicaLeases::lease_clock_micros(&s).expect("clock");
    let after = crate::ReplicaLeases::lease_clock_micros(&s).expect("clock");
    assert!(
        after >= db,
        "the database's clock went back: {db} then {after}"
    );
    assert!(
        (db - before).abs() < 60_000_000,
        "not a unix-microsecond time near now: {db} (local {before})"
    );
}
