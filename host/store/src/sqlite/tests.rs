use super::*;
use crate::contract::{approval, contract_suite, credential};

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = SqliteStore::open(&dir.path().join("state.db")).expect("open");
    (dir, s)
}

contract_suite!(Some(store()));

#[test]
fn state_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    {
        let s = SqliteStore::open(&path).expect("open");
        s.create_approval(&approval("a1", 1)).expect("create");
        s.insert_credential(&credential("c1", "t1"))
            .expect("insert");
        s.revoke_credential("c1", 5, "revoked").expect("revoke");
        s.add_token(&TokenEntry {
            sha256: "h".into(),
            id: "alice".into(),
            kind: "human".into(),
            roles: vec!["approver".into()],
            created_micros: 1,
        })
        .expect("token");
        s.activate_signing_key("k1", 1).expect("key");
        s.activate_signing_key("k2", 2).expect("key");
    }
    let s = SqliteStore::open(&path).expect("reopen");
    assert!(s.approval("a1", 2_000).expect("read").is_some());
    assert_eq!(
        s.credential("c1")
            .expect("read")
            .expect("c1")
            .revoked_micros,
        Some(5)
    );
    assert_eq!(s.tokens().expect("tokens")[0].roles, ["approver"]);
    let keys = s.signing_keys().expect("keys");
    assert_eq!(
        keys.iter()
            .map(|k| (k.kid.as_str(), k.retired_micros))
            .collect::<Vec<_>>(),
        [("k1", Some(2)), ("k2", None)]
    );
    assert_eq!(s.remove_tokens("alice").expect("remove"), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn a_database_from_the_future_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    drop(SqliteStore::open(&path).expect("open"));
    Connection::open(&path)
        .expect("raw")
        .pragma_update(None, "user_version", 99)
        .expect("bump");
    let e = SqliteStore::open(&path).expect_err("refused").to_string();
    assert!(e.contains("schema version 99"), "{e}");
}

#[test]
fn purging_an_approval_removes_its_votes() {
    let (_d, s) = store();
    s.create_approval(&approval("a1", 1)).expect("create");
    s.vote("a1", &crate::contract::vote("bob", false), 2_000)
        .expect("vote");
    assert_eq!(s.purge_closed_approvals(3_000).expect("purge"), 1);
    let votes: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM votes", [], |r| r.get(0))
        .expect("count");
    assert_eq!(votes, 0);
}
