//! Audit with replicas: three `arbiter serve` processes on one database, each shipping
//! its local audit log as its own chain. One is killed with SIGKILL under load and
//! restarted on its data directory; every decision any replica acknowledged is then in
//! the merged audit (`arbiter audit query --state-url`), and `arbiter audit verify
//! --state-url` reports three intact chains.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arbiter::proto as pb;
use arbiter::proto::authorizer_client::AuthorizerClient;

use super::database;
use crate::approvals::channel;
use crate::support::*;

/// One `arbiter serve` process with a replica id, on a data directory that outlives it.
struct Replica {
    child: std::process::Child,
    url: String,
}

impl Replica {
    /// Starts replica `id` on `data_dir`. A restart right after a SIGKILL may find the
    /// killed process's lease on the id still live: the server then refuses to start,
    /// and this tries again until the lease has expired (well within 60 s).
    async fn start(id: &str, data_dir: &Path, config: &Path) -> Self {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("addr")
                .port();
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_arbiter"))
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .args(["--metrics-listen", "127.0.0.1:0", "--replica-id", id])
                .arg("--config")
                .arg(config)
                .arg("--data-dir")
                .arg(data_dir)
                .env("ARBITER_LOG", "error")
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("server starts");
            let url = format!("http://127.0.0.1:{port}");
            loop {
                assert!(Instant::now() < deadline, "replica `{id}` did not come up");
                if child.try_wait().expect("status").is_some() {
                    // Refused (the id's lease is still held): try again shortly.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
                // The port is bound before the lease is claimed: only an answer says
                // this process is the one serving.
                if answers(&url).await {
                    return Self { child, url };
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// SIGKILL: no drain, no final shipment, no lease release.
    fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the server at `url` answers a decision.
async fn answers(url: &str) -> bool {
    let Ok(ch) = tonic::transport::Channel::from_shared(url.to_string())
        .expect("url")
        .connect()
        .await
    else {
        return false;
    };
    let mut client = AuthorizerClient::new(ch);
    let ask = client.authorize(normal_request());
    matches!(
        tokio::time::timeout(Duration::from_secs(10), ask).await,
        Ok(Ok(_))
    )
}

/// Decision ids each replica answered, by replica id.
type Acknowledged = Arc<Mutex<HashMap<String, Vec<String>>>>;

/// Eight clients deciding on `replica` until `stop` or until it stops answering.
fn load(
    id: &str,
    url: &str,
    acknowledged: &Acknowledged,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let requests: Arc<Vec<pb::AuthorizeRequest>> = Arc::new(
        vectors()
            .iter()
            .map(|v| arbiter::grpc::encode::request(&v.request))
            .collect(),
    );
    (0..8)
        .map(|w| {
            let (id, url) = (id.to_string(), url.to_string());
            let (acknowledged, stop, requests) =
                (acknowledged.clone(), stop.clone(), requests.clone());
            tokio::spawn(async move {
                let mut c = AuthorizerClient::new(channel(&url).await);
                for i in (w..).step_by(8) {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match c.authorize(requests[i % requests.len()].clone()).await {
                        Ok(r) => acknowledged
                            .lock()
                            .expect("lock")
                            .entry(id.clone())
                            .or_default()
                            .push(r.into_inner().decision_id),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect()
}

fn answered(acknowledged: &Acknowledged, id: &str) -> usize {
    acknowledged
        .lock()
        .expect("lock")
        .get(id)
        .map_or(0, Vec::len)
}

/// `arbiter audit <args> --state-url <url>`: exit code and standard output.
fn audit_cli(url: &str, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_arbiter"))
        .arg("audit")
        .args(args)
        .args(["--state-url", url])
        .env("ARBITER_LOG", "error")
        .output()
        .expect("arbiter audit runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("cannot"), "{stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Every decision in the merged audit: its decision id and the chain it is in.
fn merged_decisions(url: &str) -> HashMap<String, String> {
    let (code, out) = audit_cli(url, &["query", "--kind", "decision", "--limit", "10000000"]);
    assert_eq!(code, 0, "{out}");
    out.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter_map(|r| {
            let id = r["decision_id"].as_str()?.to_string();
            Some((id, r["chain_id"].as_str()?.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_a_replica_under_load_loses_no_acknowledged_decision_from_the_merged_audit() {
    let Some(url) = database().await else {
        return;
    };
    let base = tempfile::tempdir().expect("tempdir");
    let config = base.path().join("arbiter.toml");
    std::fs::write(
        &config,
        format!("[audit]\ncheckpoint_secs = 1\n[state]\nurl = \"{url}\"\n"),
    )
    .expect("config");
    let ids = ["audit-a", "audit-b", "audit-c"];
    let dirs: Vec<PathBuf> = ids.iter().map(|id| base.path().join(id)).collect();
    let mut replicas = Vec::new();
    for (id, dir) in ids.iter().zip(&dirs) {
        std::fs::create_dir_all(dir).expect("data dir");
        replicas.push(Some(Replica::start(id, dir, &config).await));
    }

    // Load on all three; the victim (b) is killed mid-load.
    let acknowledged = Acknowledged::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (id, r) in ids.iter().zip(&replicas) {
        let r = r.as_ref().expect("running");
        workers.extend(load(id, &r.url, &acknowledged, &stop));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered(&acknowledged, "audit-b") < 1500 {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    replicas[1].take().expect("victim").kill9();
    let killed_after = answered(&acknowledged, "audit-b");
    // What the database had of the victim's chain when it died (the rest is only in its
    // local log until it ships again).
    let shipped_before = {
        let merged = merged_decisions(&url);
        let answered = acknowledged.lock().expect("lock")["audit-b"].clone();
        answered.iter().filter(|d| merged.contains_key(*d)).count()
    };

    // Restarted on the same data directory with the same id, it serves again (and
    // ships what it acknowledged before it died).
    let victim = Replica::start("audit-b", &dirs[1], &config).await;
    workers.extend(load("audit-b", &victim.url, &acknowledged, &stop));
    let more = answered(&acknowledged, "audit-b") + 200;
    while answered(&acknowledged, "audit-b") < more {
        assert!(
            Instant::now() < deadline + Duration::from_secs(60),
            "the restarted replica does not answer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }
    let acknowledged: HashMap<String, HashSet<String>> = acknowledged
        .lock()
        .expect("lock")
        .iter()
        .map(|(id, d)| (id.clone(), d.iter().cloned().collect()))
        .collect();

    // Shipping catches up: every acknowledged decision is in the merged audit, in the
    // chain of the replica that answered it.
    let deadline = Instant::now() + Duration::from_secs(120);
    let missing = loop {
        let merged = merged_decisions(&url);
        let missing: Vec<(&String, &String)> = acknowledged
            .iter()
            .flat_map(|(id, decisions)| decisions.iter().map(move |d| (id, d)))
            .filter(|(id, d)| merged.get(*d) != Some(*id))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing
                .into_iter()
                .map(|(id, d)| format!("{id}:{d}"))
                .collect::<Vec<_>>();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let total: usize = acknowledged.values().map(HashSet::len).sum();
    assert!(
        missing.is_empty(),
        "{} of {total} acknowledged decisions are not in the merged audit (or not in their replica's chain): {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );

    // Three chains, each intact.
    let (code, report) = audit_cli(&url, &["verify"]);
    assert_eq!(code, 0, "{report}");
    for id in ids {
        assert!(report.contains(&format!("chain {id}: OK: ")), "{report}");
    }
    assert!(
        report.contains("OK: 3 chains, every one intact"),
        "{report}"
    );
    eprintln!(
        "kill -9 of a replica: {total} acknowledged decisions ({killed_after} by the victim before it died, {shipped_before} of them in the database then) all in the merged audit\n{report}"
    );
    drop(victim);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_service_on_any_replica_merges_and_verifies_every_replicas_chain() {
    use arbiter::proto::audit_client::AuditClient;

    use crate::approvals::bearer;

    let Some(url) = database().await else {
        return;
    };
    let (servers, t) = super::replicas(&url, 2).await;
    // One decision on each replica.
    let mut decided = Vec::new();
    for s in &servers {
        let mut c = AuthorizerClient::new(channel(&s.url).await);
        let answer = c
            .authorize(bearer(&t.gateway, normal_request()))
            .await
            .expect("decides")
            .into_inner();
        decided.push(answer.decision_id);
    }
    // Replica 0's Audit service finds both, each in its replica's chain, once shipped.
    let mut audit = AuditClient::new(channel(&servers[0].url).await);
    let deadline = Instant::now() + Duration::from_secs(60);
    for (i, id) in decided.iter().enumerate() {
        let chain = loop {
            let found = audit
                .query_audit(bearer(
                    &t.admin,
                    pb::QueryAuditRequest {
                        decision_id: id.clone(),
                        ..pb::QueryAuditRequest::default()
                    },
                ))
                .await
                .expect("query")
                .into_inner()
                .records;
            if let Some(r) = found.first() {
                break r.chain_id.clone();
            }
            assert!(
                Instant::now() < deadline,
                "decision {id} never reached the database"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(chain, format!("replica-{i}"));
    }
    // Asking for one chain gives only its records.
    let only = audit
        .query_audit(bearer(
            &t.admin,
            pb::QueryAuditRequest {
                chain_id: "replica-1".into(),
                limit: 10_000,
                ..pb::QueryAuditRequest::default()
            },
        ))
        .await
        .expect("query")
        .into_inner()
        .records;
    assert!(!only.is_empty());
    assert!(only.iter().all(|r| r.chain_id == "replica-1"));
    // Following the merged log by sequence number would skip the chains behind the
    // others: after_seq needs the chain it counts in.
    let refused = audit
        .query_audit(bearer(
            &t.admin,
            pb::QueryAuditRequest {
                after_seq: 1,
                ..pb::QueryAuditRequest::default()
            },
        ))
        .await
        .expect_err("after_seq without a chain");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("after_seq"),
        "{}",
        refused.message()
    );
    let v = audit
        .verify_audit(bearer(&t.admin, pb::VerifyAuditRequest {}))
        .await
        .expect("verify")
        .into_inner();
    assert!(v.intact, "{}", v.report);
    let chains: Vec<(&str, bool)> = v
        .chains
        .iter()
        .map(|c| (c.chain_id.as_str(), c.intact))
        .collect();
    assert_eq!(
        chains,
        [("replica-0", true), ("replica-1", true)],
        "{}",
        v.report
    );
    assert!(v.report.contains("\nchain replica-1: OK: "), "{}", v.report);
}
