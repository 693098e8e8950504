//! The database file: refusing what is not ours, owner-only modes.

#![allow(
    clippy::expect_used,
    reason = "test code: a failed expectation is the test failing"
)]

mod common;

use arbiter_audit::{AuditConfig, AuditError, AuditLog, Durability, Filter, query, verify};
use common::{closed_log, config, decision, key, sql};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_schema_is_refused() {
    let (dir, path) = closed_log(5).await;
    sql(&path)
        .execute(
            "UPDATE meta SET value = 99 WHERE name = 'schema_version'",
            [],
        )
        .expect("update");
    let e = AuditLog::open(config(dir.path()), None).expect_err("refused");
    assert!(
        matches!(
            e,
            AuditError::Schema {
                found: 99,
                supported: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("schema version 99"), "{e}");
    let e = verify(&path, None).expect_err("refused");
    assert!(matches!(e, AuditError::Schema { found: 99, .. }), "{e:?}");
    assert!(query(&path, &Filter::default()).is_err());
}

#[test]
fn foreign_database_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("other.db");
    sql(&path)
        .execute_batch("CREATE TABLE users (name TEXT)")
        .expect("create");
    let e = AuditLog::open(AuditConfig::new(&path, key()), None).expect_err("refused");
    assert!(matches!(e, AuditError::NotAnAuditLog { .. }), "{e:?}");
    let e = verify(&path, None).expect_err("refused");
    assert!(matches!(e, AuditError::NotAnAuditLog { .. }), "{e:?}");
}

#[test]
fn missing_file_is_an_io_error_when_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = verify(&dir.path().join("none.db"), None).expect_err("missing");
    assert!(matches!(e, AuditError::Io { .. }), "{e:?}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(config(dir.path()), None).expect("open");
    log.append(decision(0), Durability::Durable)
        .await
        .expect("append");
    for name in ["audit.db", "audit.db-wal"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    log.close().await.expect("close");
}
