//! Propagation across replicas, measured (not asserted): run with
//! `cargo test --release -p arbiter --test e2e measure_ -- --ignored --nocapture`
//! on an otherwise idle machine, with `ARBITER_TEST_POSTGRES` set. Results go to
//! docs/performance.md ("Replicas").

use std::time::{Duration, Instant};

use arbiter::proto as pb;
use arbiter::proto::approvals_client::ApprovalsClient;
use arbiter::proto::authorizer_client::AuthorizerClient;
use arbiter::proto::credentials_client::CredentialsClient;

use super::{database, replicas};
use crate::approvals::{bearer, channel, hold, identity_change, introspect, vote};

const ROUNDS: usize = 40;

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {}",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3,
        v.len()
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: run it alone, with --ignored --nocapture"]
async fn measure_revocation_and_approval_event_propagation() {
    let Some(url) = database().await else {
        return;
    };
    let (servers, t) = replicas(&url, 3).await;
    let (a, b) = (&servers[0], &servers[1]);
    let mut authz_a = AuthorizerClient::new(channel(&a.url).await);
    let mut approvals_a = ApprovalsClient::new(channel(&a.url).await);
    let mut creds_a = CredentialsClient::new(channel(&a.url).await);
    let mut creds_b = CredentialsClient::new(channel(&b.url).await);
    let mut watch_b = ApprovalsClient::new(channel(&b.url).await)
        .watch_approvals(bearer(
            &t.alice,
            pb::WatchApprovalsRequest {
                include_pending: false,
            },
        ))
        .await
        .expect("watch on B")
        .into_inner();
    let (mut revocations, mut events) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        let mut request = identity_change(&format!("measure-{i}"), &format!("arn:role/m{i}"));
        request.credential = Some(pb::CredentialRequest::default());
        // Held on A: how long until B's watcher hears of it.
        let held_at = Instant::now();
        let id = hold(&mut authz_a, &t.gateway, request.clone()).await;
        loop {
            let e = watch_b.message().await.expect("ok").expect("event");
            if e.approval.is_some_and(|x| x.id == id) {
                break;
            }
        }
        events.push(held_at.elapsed());
        vote(&mut approvals_a, &t.alice, &id, true)
            .await
            .expect("vote");
        request.approval_id = id;
        let jwt = authz_a
            .authorize(bearer(&t.gateway, request))
            .await
            .expect("redeem")
            .into_inner()
            .credential
            .expect("credential");
        // Revoked on A: how long until introspection on B says inactive.
        creds_a
            .revoke(bearer(&t.gateway, pb::RevokeRequest { id: jwt.id }))
            .await
            .expect("revoke");
        let revoked_at = Instant::now();
        loop {
            let active = introspect(&mut creds_b, &t.gateway, &jwt.token)
                .await
                .active;
            if !active {
                break;
            }
        }
        revocations.push(revoked_at.elapsed());
    }
    println!(
        "revocation on A until inactive on B: {}",
        percentiles(revocations)
    );
    println!(
        "approval held on A until B's watch stream has it: {}",
        percentiles(events)
    );
}
