//! The replicas' audit chains on a real PostgreSQL server: real local logs shipped in
//! batches, resumed by a new shipper, refused when they fork, verified chain by chain
//! (and tampering caught), queried merged by time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use arbiter_audit::{AuditConfig, AuditLog, Durability, Filter, Kind, Record, Why};
use arbiter_keys::SecretKey;

use super::super::tests::{fresh_database, server};
use crate::{AuditChains, AuditShipper, PgStore, StoreError, verify_chains};

fn store() -> Option<PgStore> {
    let Some(base) = server() else {
        eprintln!("SKIPPED: no PostgreSQL test server (ARBITER_TEST_POSTGRES is unset)");
        return None;
    };
    Some(PgStore::open(&fresh_database(&base)).expect("open"))
}

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

/// A local log at `dir/audit.db` signed by `key(seed)`, with `n` decisions at
/// `base + i` ms each (decision ids `{tag}-{i}`), checkpointed every few milliseconds.
fn write_log(dir: &Path, seed: u8, tag: &str, from: u64, n: u64, base: i64) -> PathBuf {
    let mut cfg = AuditConfig::new(dir.join("audit.db"), key(seed));
    cfg.checkpoint_every = Duration::from_millis(2);
    let path = cfg.path.clone();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let log = AuditLog::open(cfg, None).expect("open log");
        for i in from..from + n {
            let mut r = Record::new(
                Kind::Decision,
                base + i64::try_from(i).expect("small") * 1000,
            );
            r.decision_id = Some(format!("{tag}-{i}"));
            r.principal = Some(format!("agent-{}", i % 3));
            r.outcome = Some(if i % 4 == 0 { "deny" } else { "allow" }.into());
            r.set_body(&serde_json::json!({ "i": i })).expect("body");
            log.append(r, Durability::Durable).await.expect("append");
            if i % 300 == 0 {
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        }
        log.close().await.expect("close");
    });
    path
}

/// Ships everything, pass after pass; returns how many passes it took.
fn ship_all(shipper: &mut AuditShipper, store: &PgStore) -> usize {
    let mut passes = 0;
    loop {
        passes += 1;
        let shipped = shipper.ship(store, 1).expect("ship");
        if !shipped.more {
            return passes;
        }
    }
}

#[test]
fn a_log_ships_in_batches_resumes_from_the_database_head_and_verifies() {
    let Some(store) = store() else { return };
    assert!(store.keeps_audit_chains());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_log(dir.path(), 1, "a", 0, 2500, 1_000_000);
    let mut shipper = AuditShipper::new("replica-a", &path);
    // 2,500 records in batches of 1,000.
    // (and more passes while checkpoints, one every 2 ms here, fill their batches).
    assert!(ship_all(&mut shipper, &store) >= 3);
    let head = store
        .audit_chain_head("replica-a")
        .expect("head")
        .expect("shipped");
    assert_eq!(head.seq, 2500);
    assert!(head.checkpoint_number >= 1);
    // A quiet log ships nothing.
    assert_eq!(shipper.ship(&store, 2).expect("quiet").records, 0);

    // More records after a restart; a new shipper (a restarted replica) resumes from
    // the database's head, and shipping a batch again changes nothing.
    let path = write_log(dir.path(), 1, "a", 2500, 700, 1_000_000);
    let mut restarted = AuditShipper::new("replica-a", &path);
    ship_all(&mut restarted, &store);
    let again = store
        .audit_chain_records("replica-a", 2000, 2600, 1000)
        .expect("records");
    store
        .ship_audit("replica-a", &again, &[], 3)
        .expect("re-shipping is harmless");
    let head = store
        .audit_chain_head("replica-a")
        .expect("head")
        .expect("shipped");
    assert_eq!(head.seq, 3200);

    let chains = verify_chains(&store, None).expect("verify");
    assert_eq!(chains.len(), 1);
    let (head, v) = &chains[0];
    assert_eq!(head.chain_id, "replica-a");
    assert!(v.is_intact(), "{v}");
    assert_eq!((v.records, v.head_seq), (3200, 3200));
    assert_eq!(v.signed_seq, 3200, "the final checkpoint was shipped too");
    // Against the right key and against another one.
    let v = &verify_chains(&store, Some(&[key(1).public()])).expect("verify")[0].1;
    assert!(v.is_intact(), "{v}");
    let v = &verify_chains(&store, Some(&[key(2).public()])).expect("verify")[0].1;
    assert!(
        matches!(
            v.broken.as_ref().map(|b| &b.why),
            Some(Why::UntrustedKey { .. })
        ),
        "{v}"
    );
}

#[test]
fn a_different_log_under_the_same_chain_id_is_refused_and_nothing_is_shipped() {
    let Some(store) = store() else { return };
    let (one, two) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let first = write_log(one.path(), 1, "a", 0, 50, 0);
    ship_all(&mut AuditShipper::new("replica-a", &first), &store);
    // A replica that lost its data directory starts a new log under the same id.
    let second = write_log(two.path(), 1, "b", 0, 80, 10_000_000);
    let e = AuditShipper::new("replica-a", &second)
        .ship(&store, 2)
        .expect_err("forked");
    assert!(
        matches!(&e, StoreError::AuditFork { chain_id, seq: 50 } if chain_id == "replica-a"),
        "{e}"
    );
    // Records that do not link to the head are refused by the database too.
    let stray = arbiter_audit::query(
        &second,
        &Filter {
            after_seq: Some(50),
            ..Filter::default()
        },
    )
    .expect("records");
    let e = store
        .ship_audit("replica-a", &stray, &[], 3)
        .expect_err("refused");
    assert!(matches!(e, StoreError::AuditFork { seq: 51, .. }), "{e}");
    let head = store
        .audit_chain_head("replica-a")
        .expect("head")
        .expect("shipped");
    assert_eq!(head.seq, 50);
    assert!(
        verify_chains(&store, None).expect("verify")[0]
            .1
            .is_intact()
    );
}

#[test]
fn chains_are_verified_each_on_its_own_and_queried_merged_by_time() {
    let Some(store) = store() else { return };
    let (one, two) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    // Interleaved in time: a at 0, 2, 4 ... ms, b at 1, 3, 5 ... ms.
    let a = write_log(one.path(), 1, "a", 0, 400, 0);
    let b = write_log(two.path(), 2, "b", 0, 400, 500);
    ship_all(&mut AuditShipper::new("replica-a", &a), &store);
    ship_all(&mut AuditShipper::new("replica-b", &b), &store);

    let merged = store
        .query_audit_chains(
            &Filter {
                limit: 6,
                ..Filter::default()
            },
            None,
        )
        .expect("query");
    let order: Vec<(&str, u64)> = merged
        .iter()
        .map(|r| (r.chain_id.as_str(), r.record.seq))
        .collect();
    assert_eq!(
        order,
        [
            ("replica-a", 1),
            ("replica-b", 1),
            ("replica-a", 2),
            ("replica-b", 2),
            ("replica-a", 3),
            ("replica-b", 3)
        ]
    );
    let newest = store
        .query_audit_chains(
            &Filter {
                limit: 2,
                newest_first: true,
                ..Filter::default()
            },
            None,
        )
        .expect("newest");
    assert_eq!(
        (newest[0].chain_id.as_str(), newest[0].record.seq),
        ("replica-b", 400)
    );
    let one_decision = Filter {
        decision_id: Some("b-7".into()),
        ..Filter::default()
    };
    let found = store
        .query_audit_chains(&one_decision, None)
        .expect("by id");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].record.record.decision_id.as_deref(), Some("b-7"));
    let denied = Filter {
        outcome: Some("deny".into()),
        limit: 10_000,
        ..Filter::default()
    };
    assert_eq!(
        store
            .query_audit_chains(&denied, Some("replica-a"))
            .expect("a")
            .len(),
        100
    );
    assert_eq!(
        store.query_audit_chains(&denied, None).expect("all").len(),
        200
    );

    let chains = verify_chains(&store, None).expect("verify");
    assert_eq!(chains.len(), 2);
    assert!(chains.iter().all(|(_, v)| v.is_intact()));

    // Someone edits a record of b and cuts a's tail (records and head row, keeping
    // the checkpoints): each chain reports its own break.
    store
        .run(|c| async move {
            c.batch_execute(
                "UPDATE audit_records SET outcome = 'allow' WHERE chain_id = 'replica-b' AND seq = 5;
                 DELETE FROM audit_records WHERE chain_id = 'replica-a' AND seq > 350;",
            )
            .await?;
            Ok(())
        })
        .expect("tamper");
    let chains = verify_chains(&store, None).expect("verify");
    let a = &chains[0].1;
    assert!(
        matches!(
            a.broken.as_ref().map(|b| &b.why),
            Some(Why::Truncated { head: 350, .. })
        ),
        "{a}"
    );
    let b = chains[1].1.broken.clone().expect("b broken");
    assert_eq!((b.seq, b.why), (5, Why::HashMismatch));
}
