//! Several `arbiter serve` replicas on one PostgreSQL database (the throwaway server
//! `scripts/test` starts, `ARBITER_TEST_POSTGRES`): what the shared state store makes
//! true across replicas. Without that server these tests say loudly that they did
//! not run.

use arbiter::proto as pb;
use arbiter::proto::approvals_client::ApprovalsClient;
use arbiter::proto::authorizer_client::AuthorizerClient;

use crate::approvals::{Tokens, bearer, channel, hold, identity_change, vote, with_tokens};
use crate::support::*;

mod audit;
mod events;
mod expiry;
mod measure;
mod round_trips;

/// A fresh database on the test server: its URL, or `None` (said loudly).
pub(crate) async fn database() -> Option<String> {
    let Ok(base) = std::env::var("ARBITER_TEST_POSTGRES") else {
        eprintln!(
            "SKIPPED: no PostgreSQL test server (ARBITER_TEST_POSTGRES is unset; scripts/test starts one)"
        );
        return None;
    };
    let base = base.trim_end_matches('/');
    let name = format!("arbiter_e2e_{}", uuid::Uuid::new_v4().simple());
    let (client, conn) =
        tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls)
            .await
            .expect("the test PostgreSQL server answers");
    let task = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    drop(client);
    let _ = task.await;
    Some(format!("{base}/{name}"))
}

/// `n` replicas, each with its own data directory (audit log, plugin cache) and replica
/// id, on the database at `url`, all with the same tokens.
async fn replicas(url: &str, n: usize) -> (Vec<TestServer>, Tokens) {
    replicas_with(url, n, |_| {}).await
}

/// [`replicas`], each configuration changed by `change` first.
async fn replicas_with(
    url: &str,
    n: usize,
    change: impl Fn(&mut arbiter::config::Config),
) -> (Vec<TestServer>, Tokens) {
    let mut servers = Vec::new();
    let mut tokens: Option<(Tokens, _)> = None;
    for i in 0..n {
        let data = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(data.path());
        config.state_url = Some((url.to_string(), None));
        config.replica_id = format!("replica-{i}");
        // The key secret every replica mounts: their signing keys are shared.
        config.credentials.key_secret =
            Some(arbiter::credentials::KeySecret::from_bytes(&[42; 40]).expect("secret"));
        change(&mut config);
        match &tokens {
            None => {
                let t = with_tokens(&mut config);
                tokens = Some((t, config.tokens.clone()));
            }
            Some((_, entries)) => {
                config.tokens = entries.clone();
                config.anonymous_roles = Vec::new();
            }
        }
        servers.push(TestServer::start_config(config, data).await);
    }
    (servers, tokens.expect("tokens").0)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_held_on_one_replica_is_voted_on_another_and_redeemed_once_across_three() {
    let Some(url) = database().await else {
        return;
    };
    let (servers, t) = replicas(&url, 3).await;
    let (a, b) = (&servers[0], &servers[1]);
    // Held on A.
    let mut authz_a = AuthorizerClient::new(channel(&a.url).await);
    let mut request = identity_change("replicas-1", "arn:aws:iam::1:role/deploy");
    request.credential = Some(pb::CredentialRequest::default());
    let id = hold(&mut authz_a, &t.gateway, request.clone()).await;
    // B sees it and counts alice's vote; C's listing shows it approved.
    let mut approvals_b = ApprovalsClient::new(channel(&b.url).await);
    let voted = vote(&mut approvals_b, &t.alice, &id, true)
        .await
        .expect("vote on B");
    assert_eq!(voted.state(), pb::ApprovalState::Approved, "{voted:?}");
    // Sixteen redemptions at once, spread over the three replicas.
    request.approval_id = id.clone();
    let mut racers = Vec::new();
    for i in 0..16 {
        let url = servers[i % 3].url.clone();
        let (token, request) = (t.gateway.clone(), request.clone());
        racers.push(tokio::spawn(async move {
            let mut c = AuthorizerClient::new(channel(&url).await);
            c.authorize(bearer(&token, request)).await
        }));
    }
    let mut allowed = 0;
    for r in racers {
        match r.await.expect("racer") {
            Ok(d) if d.get_ref().decision() == pb::Decision::Allow => {
                assert!(
                    d.get_ref().credential.is_some(),
                    "the winner gets its credential"
                );
                allowed += 1;
            }
            Ok(d) => assert_ne!(d.get_ref().decision(), pb::Decision::Allow),
            // A redemption racing another is refused, never failed.
            Err(s) => assert_eq!(s.code(), tonic::Code::FailedPrecondition, "{s:?}"),
        }
    }
    assert_eq!(
        allowed, 1,
        "one approval, one allow, whichever replica was asked"
    );
    // Exactly one credential was ever issued across the three replicas' audit logs:
    // the approval is consumed (one conditional update in the database) before any
    // credential is signed, so the losers never sign one.
    let records = |outcome: &str| -> Vec<serde_json::Value> {
        servers
            .iter()
            .flat_map(|s| audit_records(&s.audit_db(), arbiter_audit::Kind::Credential, outcome))
            .map(|r| serde_json::from_str(r.record.body.get()).expect("json"))
            .collect()
    };
    let ids = |v: &[serde_json::Value]| -> std::collections::BTreeSet<String> {
        v.iter()
            .flat_map(|b| b["credentials"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect()
    };
    let (issued, revoked) = (ids(&records("issued")), ids(&records("revoked")));
    assert_eq!(issued.len(), 1, "issued {issued:?}");
    assert!(revoked.is_empty(), "revoked {revoked:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_created_in_the_shared_database_authenticates_on_every_replica() {
    let Some(url) = database().await else {
        return;
    };
    let (servers, t) = replicas(&url, 2).await;
    // `arbiter token create --state-url` writes the token to the shared database.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_arbiter"))
        .args([
            "token",
            "create",
            "--id",
            "dana@acme.org",
            "--role",
            "approver",
            "--state-url",
            &url,
        ])
        .output()
        .expect("arbiter token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("arb_"))
        .expect("the token is printed")
        .to_string();
    // Each replica picks it up on its token refresh (polling, generous bound).
    for s in &servers {
        let mut approvals = ApprovalsClient::new(channel(&s.url).await);
        let mut seen = false;
        for _ in 0..100 {
            let r = approvals
                .list_approvals(bearer(&token, pb::ListApprovalsRequest::default()))
                .await;
            if r.is_ok() {
                seen = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(seen, "the token authenticates on {}", s.url);
    }
    let _ = t;
}

/// A PostgreSQL server of the test's own (to stop and start, or TLS only), from
/// `scripts/postgres-test-server`; stopped and removed when dropped.
pub(crate) struct OwnServer {
    pub(crate) base: String,
    dir: String,
    /// The CA that signed a TLS-only server's certificate.
    pub(crate) ca: Option<String>,
}

impl OwnServer {
    const SCRIPT: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/postgres-test-server"
    );

    pub(crate) fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// A server that speaks only TLS, with its CA.
    pub(crate) fn start_tls() -> Option<Self> {
        Self::start_with(&["--tls"])
    }

    fn start_with(args: &[&str]) -> Option<Self> {
        if std::env::var("ARBITER_TEST_POSTGRES").is_err() {
            eprintln!(
                "SKIPPED: no PostgreSQL here (ARBITER_TEST_POSTGRES is unset; scripts/test starts one)"
            );
            return None;
        }
        let out = std::process::Command::new(Self::SCRIPT)
            .args(args)
            .output()
            .expect("scripts/postgres-test-server runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut lines = text.lines();
        let (base, dir) = (lines.next().expect("url"), lines.next().expect("dir"));
        Some(Self {
            base: base.to_string(),
            dir: dir.to_string(),
            ca: lines.next().map(str::to_string),
        })
    }

    /// The server's port.
    pub(crate) fn port(&self) -> &str {
        self.base.rsplit(':').next().expect("port")
    }

    fn run(&self, what: &str) {
        let status = std::process::Command::new(Self::SCRIPT)
            .args([what, &self.dir])
            .status()
            .expect("the script runs");
        assert!(status.success(), "{what}");
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new(Self::SCRIPT)
            .args(["stop", &self.dir])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_fails_stateful_calls_closed_and_the_replica_recovers_by_itself() {
    let Some(pg) = OwnServer::start() else {
        return;
    };
    let (client, conn) =
        tokio_postgres::connect(&format!("{}/postgres", pg.base), tokio_postgres::NoTls)
            .await
            .expect("connects");
    let task = tokio::spawn(conn);
    client
        .batch_execute("CREATE DATABASE arbiter")
        .await
        .expect("create");
    drop(client);
    let _ = task.await;
    let (servers, t) = replicas(&format!("{}/arbiter", pg.base), 1).await;
    let mut authz = AuthorizerClient::new(channel(&servers[0].url).await);
    hold(
        &mut authz,
        &t.gateway,
        identity_change("outage-1", "arn:aws:iam::1:role/a"),
    )
    .await;

    pg.run("pause");
    // Holding an approval needs the database: refused as unavailable, never decided
    // without its state.
    let held = authz
        .authorize(bearer(
            &t.gateway,
            identity_change("outage-2", "arn:aws:iam::1:role/b"),
        ))
        .await
        .expect_err("no database, no approval");
    assert_eq!(held.code(), tonic::Code::Unavailable, "{held:?}");
    assert!(held.message().contains("state database"), "{held:?}");
    // A decision that needs no state still gets its answer (its audit is local).
    let plain = authz
        .authorize(bearer(&t.gateway, normal_request()))
        .await
        .expect("a stateless decision still works");
    assert_eq!(plain.get_ref().decision(), pb::Decision::Allow);

    // Health says approvals and credentials cannot be served (the token refresher
    // finds the database gone within its interval), the authorizer still can.
    assert_eq!(
        health(&servers[0], "arbiter.v1.Approvals", false).await,
        "NOT_SERVING"
    );
    assert_eq!(
        health(&servers[0], "arbiter.v1.Credentials", false).await,
        "NOT_SERVING"
    );
    assert_eq!(
        health(&servers[0], "arbiter.v1.Authorizer", true).await,
        "SERVING"
    );

    pg.run("resume");
    // The same replica, not restarted, holds approvals again once the database is back.
    let mut recovered = false;
    for _ in 0..100 {
        let r = authz
            .authorize(bearer(
                &t.gateway,
                identity_change("outage-3", "arn:aws:iam::1:role/c"),
            ))
            .await;
        if r.as_ref()
            .is_ok_and(|d| d.get_ref().decision() == pb::Decision::RequireApproval)
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "the replica recovers without a restart");
    assert_eq!(
        health(&servers[0], "arbiter.v1.Approvals", true).await,
        "SERVING"
    );
}

/// The health of `service` on `server`, once it is `serving` (or not), polling with a
/// generous bound; what it last was otherwise.
pub(crate) async fn health(server: &TestServer, service: &str, serving: bool) -> String {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let mut client = HealthClient::new(server.channel().await);
    let want = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    let mut last = ServingStatus::Unknown;
    for _ in 0..100 {
        let r = client
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers")
            .into_inner();
        last = r.status();
        if last == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    last.as_str_name().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_credential_minted_on_one_replica_introspects_on_the_others_and_a_revocation_reaches_them()
 {
    use arbiter::proto::credentials_client::CredentialsClient;
    let Some(url) = database().await else {
        return;
    };
    let (servers, t) = replicas(&url, 3).await;
    let mut authz_a = AuthorizerClient::new(channel(&servers[0].url).await);
    let mut request = identity_change("replicas-keys", "arn:aws:iam::1:role/keys");
    request.credential = Some(pb::CredentialRequest::default());
    let id = hold(&mut authz_a, &t.gateway, request.clone()).await;
    let mut approvals_b = ApprovalsClient::new(channel(&servers[1].url).await);
    vote(&mut approvals_b, &t.alice, &id, true)
        .await
        .expect("vote on B");
    // Redeemed on C: C signs with the shared key.
    request.approval_id = id;
    let mut authz_c = AuthorizerClient::new(channel(&servers[2].url).await);
    let allowed = authz_c
        .authorize(bearer(&t.gateway, request))
        .await
        .expect("redeemed on C")
        .into_inner();
    let credential = allowed.credential.expect("a credential");
    let (jwt, jti) = (credential.token, credential.id);
    let introspect = |url: String, jwt: String, token: String| async move {
        let mut c = CredentialsClient::new(channel(&url).await);
        c.introspect(bearer(&token, pb::IntrospectRequest { token: jwt }))
            .await
            .expect("introspect")
            .into_inner()
    };
    for s in &servers {
        let r = introspect(s.url.clone(), jwt.clone(), t.gateway.clone()).await;
        assert!(r.active, "active on {}", s.url);
    }
    // Every replica publishes the same keys.
    let jwks = |url: String| async move {
        let mut c = CredentialsClient::new(channel(&url).await);
        c.get_jwks(pb::GetJwksRequest::default())
            .await
            .expect("jwks")
            .into_inner()
            .jwks_json
    };
    let first = jwks(servers[0].url.clone()).await;
    for s in &servers[1..] {
        assert_eq!(jwks(s.url.clone()).await, first);
    }
    // Revoked through B: inactive on A (polling, generous bound).
    let mut creds_b = CredentialsClient::new(channel(&servers[1].url).await);
    creds_b
        .revoke(bearer(&t.gateway, pb::RevokeRequest { id: jti }))
        .await
        .expect("revoked on B");
    let mut inactive = false;
    for _ in 0..100 {
        if !introspect(servers[0].url.clone(), jwt.clone(), t.gateway.clone())
            .await
            .active
        {
            inactive = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(inactive, "the revocation made on B is seen on A");
}
