//! The audit log through the real server: every decision and event recorded in a
//! hash chain that `arbiter audit verify` checks; tampering of each kind detected;
//! `kill -9` under load loses no decision that was returned; a log that cannot be
//! written fails decisions closed.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbiter::proto as pb;
use arbiter::proto::audit_client::AuditClient;
use arbiter::proto::authorizer_client::AuthorizerClient;
use tonic::Code;

use crate::approvals::{bearer, channel, with_tokens};
use crate::crash::Process;
use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_arbiter");

/// `arbiter audit ARGS --data-dir DIR`: (exit code, stdout, stderr).
fn audit_cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("audit")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Verifies with the public key, as an auditor holding a copy of it would.
fn verify(dir: &Path) -> (i32, String) {
    let key = dir.join("keys/audit.pub");
    let (code, out, err) = audit_cli(dir, &["verify", "--pubkey", &key.display().to_string()]);
    (code, format!("{out}{err}"))
}

/// Serves, decides the first `n` public vectors, stops; returns the data directory.
async fn log_with_decisions(n: usize) -> (tempfile::TempDir, Vec<String>) {
    let data = tempfile::tempdir().expect("tempdir");
    let config = test_config(data.path());
    let running = arbiter::server::start(&config).await.expect("starts");
    let mut client =
        AuthorizerClient::new(channel(&format!("http://{}", running.local_addr)).await);
    let requests = vectors()
        .iter()
        .take(n)
        .map(|v| arbiter::grpc::encode::request(&v.request))
        .collect();
    let items = client
        .authorize_batch(pb::AuthorizeBatchRequest { requests })
        .await
        .expect("batch")
        .into_inner()
        .items;
    let ids = items
        .into_iter()
        .map(|i| match i.result {
            Some(pb::batch_item::Result::Response(r)) => r.decision_id,
            other => panic!("{other:?}"),
        })
        .collect();
    running.shutdown().await.expect("stops");
    (data, ids)
}

fn sql(dir: &Path, statement: &str) {
    let conn = rusqlite::Connection::open(dir.join("audit.db")).expect("open");
    conn.execute_batch(statement).expect("tamper");
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().expect("tempdir");
    for entry in walk(from) {
        let rel = entry.strip_prefix(from).expect("prefix");
        let target = to.path().join(rel);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&entry, &target).expect("copy");
    }
    to
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_servers_chain_verifies_and_every_kind_of_tampering_is_found() {
    let (data, ids) = log_with_decisions(200).await;
    let (code, report) = verify(data.path());
    assert_eq!(code, 0, "{report}");
    // 200 decisions, plus one `created` record per approval the held ones opened.
    assert!(report.starts_with("OK: 2"), "{report}");
    // Every decision is there, by id.
    let (_, out, _) = audit_cli(
        data.path(),
        &["query", "--kind", "decision", "--limit", "1000"],
    );
    let recorded: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    // Batch items are decided a few at a time, so the log's order may differ.
    let mut recorded_ids: Vec<&str> = recorded
        .iter()
        .map(|r| r["decision_id"].as_str().expect("id"))
        .collect();
    recorded_ids.sort_unstable();
    let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    assert_eq!(recorded_ids, ids);
    assert!(recorded[0]["body"]["request"]["principal"]["id"].is_string());
    assert!(recorded[0]["body"]["plugins"][0]["elapsed_us"].is_u64());

    let cases: &[(&str, &str, &str)] = &[
        (
            "edit one byte",
            "UPDATE records SET body = replace(body, '\"caller\":\"anonymous\"', '\"caller\":\"anonymouz\"') WHERE seq = 57",
            "BROKEN at record 57",
        ),
        (
            "edit an indexed column",
            "UPDATE records SET principal = principal || 'x' WHERE seq = 12",
            "BROKEN at record 12",
        ),
        (
            "delete a record",
            "DELETE FROM records WHERE seq = 100",
            "BROKEN at record 100",
        ),
        (
            "reorder two records",
            "UPDATE records SET seq = -1 WHERE seq = 30; UPDATE records SET seq = 30 WHERE seq = 31; UPDATE records SET seq = 31 WHERE seq = -1",
            "BROKEN at record 30",
        ),
        (
            "truncate the tail",
            "DELETE FROM records WHERE seq > 190",
            "BROKEN at record 191",
        ),
    ];
    for (what, statement, expected) in cases {
        let copy = copy_dir(data.path());
        sql(copy.path(), statement);
        let (code, report) = verify(copy.path());
        assert_eq!(code, 1, "{what}: {report}");
        assert!(
            report.contains(expected),
            "{what}: expected `{expected}` in {report}"
        );
    }
    // A log re-signed with another key does not pass against the kept public key.
    let copy = copy_dir(data.path());
    let other = arbiter_keys::SecretKey::generate().expect("key");
    other
        .public()
        .write(&copy.path().join("other.pub"))
        .expect("write");
    let (code, out, err) = audit_cli(
        copy.path(),
        &[
            "verify",
            "--pubkey",
            &copy.path().join("other.pub").display().to_string(),
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn approval_steps_credentials_and_admin_acts_are_recorded_and_queryable_over_grpc() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    let server = TestServer::start_config(config, data).await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut approvals = arbiter::proto::approvals_client::ApprovalsClient::new(ch.clone());
    let mut audit = AuditClient::new(ch.clone());
    let mut r = crate::approvals::identity_change("task-a", "arn:role/audit");
    // The credential is asked for when the action is held: approvers see it.
    r.credential = Some(pb::CredentialRequest {
        lifetime_seconds: 60,
    });
    let id = crate::approvals::hold(&mut authz, &t.gateway, r.clone()).await;
    crate::approvals::vote(&mut approvals, &t.bob, &id, true)
        .await
        .expect_err("delegator refused");
    crate::approvals::vote(&mut approvals, &t.alice, &id, true)
        .await
        .expect("approved");
    r.approval_id = id.clone();
    authz
        .authorize(bearer(&t.gateway, r))
        .await
        .expect("allowed");

    let q = |kind: &str| pb::QueryAuditRequest {
        kind: kind.into(),
        ..Default::default()
    };
    let approval_steps = audit
        .query_audit(bearer(&t.admin, q("approval")))
        .await
        .expect("query")
        .into_inner()
        .records;
    let steps: Vec<(&str, &str)> = approval_steps
        .iter()
        .map(|r| (r.principal.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("gateway", "created"),
            ("bob@acme.org", "vote-refused"),
            ("alice@acme.org", "vote"),
            ("gateway", "consumed")
        ]
    );
    let decisions = audit
        .query_audit(bearer(&t.admin, q("decision")))
        .await
        .expect("query")
        .into_inner()
        .records;
    assert_eq!(
        decisions
            .iter()
            .map(|r| r.outcome.as_str())
            .collect::<Vec<_>>(),
        ["require-approval", "allow"]
    );
    let body: serde_json::Value = serde_json::from_str(&decisions[1].body_json).expect("json");
    assert_eq!(
        (
            body["approved"].as_bool(),
            body["approval_id"].as_str(),
            body["caller"].as_str()
        ),
        (Some(true), Some(id.as_str()), Some("gateway"))
    );
    let creds = audit
        .query_audit(bearer(&t.admin, q("credential")))
        .await
        .expect("query")
        .into_inner()
        .records;
    assert_eq!(
        creds.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(),
        ["issued"]
    );
    assert_eq!(creds[0].decision_id, decisions[1].decision_id);

    let v = audit
        .verify_audit(bearer(&t.admin, pb::VerifyAuditRequest {}))
        .await
        .expect("verify")
        .into_inner();
    assert!(v.intact, "{}", v.report);
    assert_eq!(v.records, 7);
    let s = audit
        .query_audit(bearer(&t.alice, q("")))
        .await
        .expect_err("admins only");
    assert_eq!(s.code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_that_cannot_be_written_fails_decisions_closed() {
    let server = TestServer::start(&[]).await;
    let mut client = server.client().await;
    client.authorize(normal_request()).await.expect("recorded");
    // Another process breaks the log: every insert now fails.
    let db = server.audit_db();
    break_audit_log(&db);
    let s = client
        .authorize(normal_request())
        .await
        .expect_err("no record, no decision");
    assert_eq!(s.code(), Code::Unavailable);
    assert!(
        s.message().contains("audit log cannot be written"),
        "{}",
        s.message()
    );
    // It recovers when the log does.
    mend_audit_log(&db);
    client
        .authorize(normal_request())
        .await
        .expect("recorded again");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_under_load_keeps_every_returned_decision_in_a_verifying_chain() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = data.path().join("arbiter.toml");
    std::fs::write(&config, "[audit]\ncheckpoint_secs = 1\n").expect("config");
    let server = Process::start(data.path(), &config).await;
    let ch = channel(&server.url).await;
    let returned = Arc::new(Mutex::new(Vec::<String>::new()));
    let vectors: Arc<Vec<pb::AuthorizeRequest>> = Arc::new(
        vectors()
            .iter()
            .map(|v| arbiter::grpc::encode::request(&v.request))
            .collect(),
    );
    let mut workers = Vec::new();
    for w in 0..16 {
        let (ch, returned, vectors) = (ch.clone(), returned.clone(), vectors.clone());
        workers.push(tokio::spawn(async move {
            let mut c = AuthorizerClient::new(ch);
            for i in (w..).step_by(16) {
                match c.authorize(vectors[i % vectors.len()].clone()).await {
                    Ok(r) => returned
                        .lock()
                        .expect("lock")
                        .push(r.into_inner().decision_id),
                    Err(_) => return,
                }
            }
        }));
    }
    while returned.lock().expect("lock").len() < 3000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    for w in workers {
        w.await.expect("worker");
    }
    let returned: HashSet<String> = returned.lock().expect("lock").iter().cloned().collect();

    // It restarts on the same log, and the chain goes on.
    let server = Process::start(data.path(), &config).await;
    let mut c = AuthorizerClient::new(channel(&server.url).await);
    let after = c
        .authorize(normal_request())
        .await
        .expect("serves")
        .into_inner()
        .decision_id;
    drop(server);

    let (code, report) = verify(data.path());
    assert_eq!(code, 0, "{report}");
    let recorded: HashSet<String> = arbiter_audit::query(
        &data.path().join("audit.db"),
        &arbiter_audit::Filter {
            kind: Some(arbiter_audit::Kind::Decision),
            limit: 1_000_000,
            ..Default::default()
        },
    )
    .expect("query")
    .into_iter()
    .filter_map(|r| r.record.decision_id)
    .collect();
    let missing: Vec<_> = returned.difference(&recorded).collect();
    assert!(
        missing.is_empty(),
        "{} of {} returned decisions missing: {:?}",
        missing.len(),
        returned.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(recorded.contains(&after));
    eprintln!(
        "kill -9: {} returned decisions all in the chain ({} records); {report}",
        returned.len(),
        recorded.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vote_that_cannot_be_audited_does_not_count() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    let server = TestServer::start_config(config, data).await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut approvals = arbiter::proto::approvals_client::ApprovalsClient::new(ch.clone());
    let id = crate::approvals::hold(
        &mut authz,
        &t.gateway,
        crate::approvals::identity_change("task-b", "arn:role/b"),
    )
    .await;
    let db = server.audit_db();
    break_audit_log(&db);
    let s = crate::approvals::vote(&mut approvals, &t.alice, &id, true)
        .await
        .expect_err("not recorded");
    assert_eq!(s.code(), Code::Unavailable);
    mend_audit_log(&db);
    let a = approvals
        .get_approval(bearer(&t.alice, pb::GetApprovalRequest { id: id.clone() }))
        .await
        .expect("get")
        .into_inner();
    assert_eq!((a.state(), a.votes.len()), (pb::ApprovalState::Pending, 0));
    // Voting again, once the log works, counts.
    let a = crate::approvals::vote(&mut approvals, &t.alice, &id, true)
        .await
        .expect("recorded");
    assert_eq!(a.state(), pb::ApprovalState::Approved);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redemption_whose_credential_cannot_be_recorded_gives_its_approval_back() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    let server = TestServer::start_config(config, data).await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut approvals = arbiter::proto::approvals_client::ApprovalsClient::new(ch.clone());
    let mut request = crate::approvals::identity_change("task-r", "arn:role/r");
    request.credential = Some(pb::CredentialRequest::default());
    let id = crate::approvals::hold(&mut authz, &t.gateway, request.clone()).await;
    crate::approvals::vote(&mut approvals, &t.alice, &id, true)
        .await
        .expect("approved");
    request.approval_id = id.clone();
    let db = server.audit_db();
    break_audit_log(&db);
    let s = authz
        .authorize(bearer(&t.gateway, request.clone()))
        .await
        .expect_err("a credential not on record is not handed out");
    assert_eq!(s.code(), Code::Unavailable, "{s:?}");
    mend_audit_log(&db);
    // The approval was given back: still approved, and the redemption now succeeds.
    let a = approvals
        .get_approval(bearer(&t.alice, pb::GetApprovalRequest { id: id.clone() }))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(a.state(), pb::ApprovalState::Approved, "{a:?}");
    let d = authz
        .authorize(bearer(&t.gateway, request.clone()))
        .await
        .expect("redeemed")
        .into_inner();
    assert_eq!(d.decision(), pb::Decision::Allow);
    assert!(d.credential.is_some());
    let s = authz
        .authorize(bearer(&t.gateway, request))
        .await
        .expect_err("once");
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
}

/// Polls `check` every 100 ms for up to 20 s (ten token refresh periods).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not within 20 s: {what}");
}

/// `arbiter token` changes are admin acts: the running server records each one, and a
/// new token authenticates only once its addition is on record; a removed token stops
/// working and its removal is recorded.
#[tokio::test(flavor = "multi_thread")]
async fn token_changes_are_recorded_before_they_count() {
    use arbiter::auth;
    use arbiter_store::{SqliteStore, StateStore as _, TokenEntry};

    let data = tempfile::tempdir().expect("tempdir");
    let dir = data.path().to_path_buf();
    let mut config = test_config(&dir);
    config.anonymous_roles = Vec::new();
    let server = TestServer::start_config(config, data).await;
    let db = server.audit_db();
    let store = SqliteStore::open(&dir.join("state.db")).expect("state");
    let token = auth::new_token().expect("token");
    let entry = TokenEntry {
        sha256: auth::token_hash(&token),
        id: "gateway-7".into(),
        kind: "service".into(),
        roles: vec!["enforcer".into()],
        created_micros: arbiter_store::now_micros(),
    };
    let url = server.url.clone();
    let authenticates = move || {
        let (url, token) = (url.clone(), token.clone());
        async move {
            let mut client = AuthorizerClient::new(channel(&url).await);
            let r = client.authorize(bearer(&token, normal_request())).await;
            match r {
                Ok(_) => true,
                Err(s) if s.code() == Code::Unauthenticated => false,
                Err(s) => panic!("unexpected {s:?}"),
            }
        }
    };
    let records = |outcome: &str| audit_records(&db, arbiter_audit::Kind::Admin, outcome);

    // While the log cannot be written the new token is not let in.
    break_audit_log(&db);
    store.add_token(&entry).expect("add");
    tokio::time::sleep(auth::REFRESH * 3).await;
    assert!(
        !authenticates().await,
        "a token not on record authenticated"
    );
    assert!(records("token-added").is_empty());

    mend_audit_log(&db);
    eventually("the recorded token authenticates", &authenticates).await;
    let added = records("token-added");
    assert_eq!(added.len(), 1, "{added:?}");
    let body = added[0].record.body_value();
    assert_eq!(
        added[0].record.principal.as_deref(),
        Some(arbiter::tokens::ACTOR)
    );
    assert_eq!(body["token_for"], "gateway-7");
    assert_eq!(body["roles"], serde_json::json!(["enforcer"]));
    assert_eq!(body["token_sha256_prefix"], entry.sha256[..12]);

    // Roles edited by hand in the state file are a change on record too.
    rusqlite::Connection::open(dir.join("state.db"))
        .expect("open")
        .execute(
            "UPDATE tokens SET roles = ?1 WHERE id = 'gateway-7'",
            [serde_json::json!(["enforcer", "introspector"]).to_string()],
        )
        .expect("edit");
    eventually("the edit is recorded", || async {
        !records("token-changed").is_empty()
    })
    .await;
    let changed = records("token-changed")[0].record.body_value();
    assert_eq!(
        changed["roles"],
        serde_json::json!(["enforcer", "introspector"])
    );
    assert_eq!(changed["was"]["roles"], serde_json::json!(["enforcer"]));

    assert_eq!(store.remove_tokens("gateway-7").expect("remove"), 1);
    eventually("the removed token stops working", || async {
        !authenticates().await
    })
    .await;
    eventually("the removal is recorded", || async {
        records("token-removed").len() == 1
    })
    .await;
    let (code, out) = verify(&dir);
    assert_eq!(code, 0, "{out}");
}

/// Someone who can rewrite the data directory can cut the newest records together with
/// the checkpoints covering them, and the log alone then verifies. A copy of every
/// checkpoint kept elsewhere (`[audit] checkpoint_copy`) still catches it.
#[tokio::test(flavor = "multi_thread")]
async fn a_checkpoint_copy_catches_a_truncation_that_took_the_checkpoints_too() {
    let data = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let copy = elsewhere.path().join("checkpoints.jsonl");
    let mut config = test_config(data.path());
    config.audit.as_mut().expect("audit on").checkpoint_copy = Some(copy.clone());
    let running = arbiter::server::start(&config).await.expect("starts");
    let mut client =
        AuthorizerClient::new(channel(&format!("http://{}", running.local_addr)).await);
    for v in vectors().iter().take(40) {
        client
            .authorize(arbiter::grpc::encode::request(&v.request))
            .await
            .expect("decides");
    }
    running.shutdown().await.expect("stops");
    let dir = data.path();
    let copy_arg = copy.display().to_string();
    let (code, out, err) = audit_cli(dir, &["verify", "--checkpoints", &copy_arg]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("OK against the copy"), "{out}");

    // Cut the last ten records and every checkpoint that covered them.
    let conn = rusqlite::Connection::open(dir.join("audit.db")).expect("open");
    let head: i64 = conn
        .query_row("SELECT max(seq) FROM records", [], |r| r.get(0))
        .expect("head");
    conn.execute("DELETE FROM records WHERE seq > ?1", [head - 10])
        .expect("truncate");
    conn.execute("DELETE FROM checkpoints WHERE seq > ?1", [head - 10])
        .expect("drop checkpoints");
    drop(conn);
    let (code, out, _) = audit_cli(dir, &["verify"]);
    assert_eq!(code, 0, "the log alone cannot see this: {out}");
    let (code, out, err) = audit_cli(dir, &["verify", "--checkpoints", &copy_arg]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("is gone, but checkpoint") && out.contains("truncated?"),
        "{out}"
    );
}
