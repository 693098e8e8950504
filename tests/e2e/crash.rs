//! `kill -9` in the middle of load: nothing that was acknowledged is lost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbiter::auth;
use arbiter::proto as pb;
use arbiter::proto::approvals_client::ApprovalsClient;
use arbiter::proto::authorizer_client::AuthorizerClient;
use arbiter::proto::credentials_client::CredentialsClient;

use crate::approvals::{bearer, channel, identity_change};

/// The real binary on `data_dir` with tokens from a config file; killed on drop.
pub(crate) struct Process {
    pub child: std::process::Child,
    pub url: String,
}

impl Process {
    pub(crate) async fn start(data_dir: &std::path::Path, config: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_arbiter"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--metrics-listen",
                "127.0.0.1:0",
                "--config",
            ])
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .env("ARBITER_LOG", "error")
            .spawn()
            .expect("server starts");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while tonic::transport::Channel::from_shared(url.clone())
            .expect("url")
            .connect()
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "server did not come up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, url }
    }

    /// SIGKILL: no drain, no shutdown hooks.
    pub(crate) fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a config with a gateway (enforcer) and alice (approver); returns the tokens.
pub(crate) fn config_with_tokens(path: &std::path::Path, extra: &str) -> (String, String) {
    let gateway = auth::new_token().expect("token");
    let alice = auth::new_token().expect("token");
    std::fs::write(
        path,
        format!(
            "{extra}\n[auth]\nanonymous_roles = []\n[[auth.tokens]]\nsha256 = \"{}\"\nid = \"gateway\"\nkind = \"service\"\nroles = [\"enforcer\"]\n[[auth.tokens]]\nsha256 = \"{}\"\nid = \"alice@acme.org\"\nkind = \"human\"\nroles = [\"approver\"]\n",
            auth::token_hash(&gateway),
            auth::token_hash(&alice)
        ),
    )
    .expect("config");
    (gateway, alice)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_under_load_loses_no_acknowledged_approval_or_revocation() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = data.path().join("arbiter.toml");
    let (gateway, alice) = config_with_tokens(&config, "");
    let server = Process::start(data.path(), &config).await;
    let ch = channel(&server.url).await;

    let votes = Arc::new(Mutex::new(Vec::<String>::new()));
    let revocations = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (ch, gateway, alice) = (ch.clone(), gateway.clone(), alice.clone());
        let (votes, revocations) = (votes.clone(), revocations.clone());
        workers.push(tokio::spawn(async move {
            let mut authz = AuthorizerClient::new(ch.clone());
            let mut approvals = ApprovalsClient::new(ch.clone());
            let mut creds = CredentialsClient::new(ch);
            // Until the server dies under us: each acknowledged step is remembered.
            for i in 0.. {
                let Ok(held) = authz
                    .authorize(bearer(
                        &gateway,
                        identity_change(&format!("t{w}-{i}"), &format!("arn:role/{w}-{i}")),
                    ))
                    .await
                else {
                    return;
                };
                let id = held.into_inner().approval_id;
                let vote = pb::DecideApprovalRequest {
                    id: id.clone(),
                    approve: true,
                    comment: String::new(),
                };
                if approvals.decide(bearer(&alice, vote)).await.is_err() {
                    return;
                }
                votes.lock().expect("lock").push(id);
                let mut read = crate::support::normal_request();
                read.intent.as_mut().expect("intent").task_id = format!("c{w}-{i}");
                read.credential = Some(pb::CredentialRequest {
                    lifetime_seconds: 600,
                });
                let Ok(allowed) = authz.authorize(bearer(&gateway, read)).await else {
                    return;
                };
                let Some(credential) = allowed.into_inner().credential else {
                    return;
                };
                let revoke = pb::RevokeRequest {
                    id: credential.id.clone(),
                };
                if creds.revoke(bearer(&gateway, revoke)).await.is_err() {
                    return;
                }
                revocations.lock().expect("lock").push(credential.token);
            }
        }));
    }
    // Let the load run, then kill the server mid-flight.
    while votes.lock().expect("lock").len() < 40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill9();
    for w in workers {
        w.await.expect("worker");
    }
    let votes = votes.lock().expect("lock").clone();
    let revocations = revocations.lock().expect("lock").clone();
    assert!(
        votes.len() >= 40 && !revocations.is_empty(),
        "{} votes, {} revocations",
        votes.len(),
        revocations.len()
    );

    let server = Process::start(data.path(), &config).await;
    let ch = channel(&server.url).await;
    let mut approvals = ApprovalsClient::new(ch.clone());
    let mut creds = CredentialsClient::new(ch);
    for id in &votes {
        let a = approvals
            .get_approval(bearer(&alice, pb::GetApprovalRequest { id: id.clone() }))
            .await
            .expect("an acknowledged approval is still there")
            .into_inner();
        assert_eq!(a.state(), pb::ApprovalState::Approved, "{id}");
        assert_eq!(a.votes.len(), 1);
    }
    for token in &revocations {
        let r = creds
            .introspect(bearer(
                &gateway,
                pb::IntrospectRequest {
                    token: token.clone(),
                },
            ))
            .await
            .expect("introspect")
            .into_inner();
        assert!(!r.active, "an acknowledged revocation was lost");
    }
    eprintln!(
        "after kill -9: {} approvals and {} revocations all intact",
        votes.len(),
        revocations.len()
    );
}
