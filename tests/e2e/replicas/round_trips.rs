//! Database round trips per operation, measured (not asserted): one replica talks to
//! PostgreSQL through a proxy that counts the client's synchronisation points (`Sync`
//! and simple `Query` messages of the wire protocol: each is one exchange the client
//! waits for). Run with
//! `cargo test --release -p arbiter --test e2e measure_ -- --ignored --nocapture`
//! and `ARBITER_TEST_POSTGRES` set. Results go to docs/performance.md ("Replicas").

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arbiter::proto as pb;
use arbiter::proto::approvals_client::ApprovalsClient;
use arbiter::proto::authorizer_client::AuthorizerClient;
use arbiter::proto::credentials_client::CredentialsClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{database, replicas};
use crate::approvals::{bearer, channel, hold, identity_change, introspect, vote};
use crate::support::normal_request;

const ROUNDS: u64 = 50;

/// A TCP proxy in front of PostgreSQL counting the exchanges clients start.
struct CountingProxy {
    url: String,
    exchanges: Arc<AtomicU64>,
}

impl CountingProxy {
    async fn start(url: &str) -> Self {
        let (head, tail) = url.rsplit_once('@').map_or(
            ("postgres://", url.trim_start_matches("postgres://")),
            |(h, t)| (h, t),
        );
        let (addr, rest) = tail.split_once('/').expect("a database in the URL");
        let upstream = addr.to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let exchanges = Arc::new(AtomicU64::new(0));
        let counter = exchanges.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&upstream).await.expect("upstream");
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                tokio::spawn(relay(client, server, counter.clone()));
            }
        });
        let sep = if head.ends_with("://") { "" } else { "@" };
        Self {
            url: format!("{head}{sep}127.0.0.1:{port}/{rest}"),
            exchanges,
        }
    }

    fn count(&self) -> u64 {
        self.exchanges.load(Ordering::SeqCst)
    }
}

/// Copies both ways; counts `Sync` ('S') and `Query` ('Q') messages from the client,
/// after its untyped start-up messages (SSL request, start-up).
async fn relay(client: TcpStream, server: TcpStream, exchanges: Arc<AtomicU64>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
    });
    let mut pending: Vec<u8> = Vec::new();
    let mut started = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match cr.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        loop {
            let (header, kind) = if started {
                (5, pending.first().copied())
            } else {
                (4, None)
            };
            if pending.len() < header {
                break;
            }
            let at = header - 4;
            let len = u32::from_be_bytes(pending[at..at + 4].try_into().expect("4 bytes")) as usize;
            let total = at + len;
            if pending.len() < total {
                break;
            }
            if !started {
                // 196608 is protocol 3.0: the start-up message; the rest are requests.
                let code = u32::from_be_bytes(pending[4..8].try_into().expect("4 bytes"));
                started = code == 196_608;
            } else if matches!(kind, Some(b'S' | b'Q')) {
                exchanges.fetch_add(1, Ordering::SeqCst);
            }
            pending.drain(..total);
        }
        if sw.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: run it alone, with --ignored --nocapture"]
async fn measure_database_round_trips() {
    let Some(url) = database().await else {
        return;
    };
    let proxy = CountingProxy::start(&url).await;
    let (servers, t) = replicas(&proxy.url, 1).await;
    let a = &servers[0];
    let mut authz = AuthorizerClient::new(channel(&a.url).await);
    let mut approvals = ApprovalsClient::new(channel(&a.url).await);
    let mut creds = CredentialsClient::new(channel(&a.url).await);
    let mut per = [0u64; 6];
    let names = [
        "decision needing no state (allow, no credential)",
        "hold (require approval)",
        "vote",
        "redemption (approval used, credential issued)",
        "introspection",
        "revocation",
    ];
    let started = Instant::now();
    // Round 0 warms statement caches and connections; it is not counted.
    for i in 0..=ROUNDS {
        let mut marks = vec![proxy.count()];
        let d = authz
            .authorize(bearer(&t.gateway, normal_request()))
            .await
            .expect("decide")
            .into_inner();
        assert_eq!(d.decision(), pb::Decision::Allow, "{d:?}");
        marks.push(proxy.count());
        let mut request = identity_change(&format!("rt-{i}"), &format!("arn:role/rt{i}"));
        request.credential = Some(pb::CredentialRequest::default());
        let id = hold(&mut authz, &t.gateway, request.clone()).await;
        marks.push(proxy.count());
        vote(&mut approvals, &t.alice, &id, true)
            .await
            .expect("vote");
        marks.push(proxy.count());
        request.approval_id = id;
        let jwt = authz
            .authorize(bearer(&t.gateway, request))
            .await
            .expect("redeem")
            .into_inner()
            .credential
            .expect("credential");
        marks.push(proxy.count());
        let active = introspect(&mut creds, &t.gateway, &jwt.token).await.active;
        assert!(active);
        marks.push(proxy.count());
        creds
            .revoke(bearer(&t.gateway, pb::RevokeRequest { id: jwt.id }))
            .await
            .expect("revoke");
        marks.push(proxy.count());
        if i > 0 {
            for (k, w) in marks.windows(2).enumerate() {
                per[k] += w[1] - w[0];
            }
        }
    }
    let busy = started.elapsed();
    // The background (lease, set revision poll, key and token refresh, event follow),
    // over as long again with nothing asked.
    let idle_from = proxy.count();
    tokio::time::sleep(busy.max(Duration::from_secs(5))).await;
    let idle = proxy.count() - idle_from;
    let idle_rate = idle as f64 / busy.max(Duration::from_secs(5)).as_secs_f64();
    println!("database round trips per operation, {ROUNDS} rounds in {busy:.2?}:");
    for (name, n) in names.iter().zip(per) {
        println!("  {name}: {:.2}", n as f64 / ROUNDS as f64);
    }
    println!(
        "  background with nothing asked: {idle_rate:.1}/s (about {:.2} per round of six operations)",
        idle_rate * busy.as_secs_f64() / ROUNDS as f64
    );
}
