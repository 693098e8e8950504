//! Approval events across replicas: a watch stream or a waiting enforcement point on
//! one replica sees the steps taken on the others (through the database's event log
//! and `LISTEN/NOTIFY`), and webhooks fire once, on the replica that took the step.

use std::time::Duration;

use arbiter::proto as pb;
use arbiter::proto::approvals_client::ApprovalsClient;
use arbiter::proto::authorizer_client::AuthorizerClient;

use super::{database, replicas};
use crate::approvals::{bearer, channel, hold, identity_change, vote};

/// The next event for approval `id` on `stream` (others are skipped), within a bound
/// generous enough for a loaded machine: the event is expected, not timed.
async fn next_for(s: &mut tonic::Streaming<pb::ApprovalEvent>, id: &str) -> pb::Approval {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(30), s.message())
            .await
            .expect("an event within 30 s")
            .expect("ok")
            .expect("event");
        let a = e.approval.expect("approval");
        if a.id == id {
            return a;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_on_one_replica_and_a_wait_on_another_see_steps_taken_on_a_third() {
    let Some(url) = database().await else {
        return;
    };
    let (servers, t) = replicas(&url, 3).await;
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let mut watch = ApprovalsClient::new(channel(&b.url).await)
        .watch_approvals(bearer(
            &t.alice,
            pb::WatchApprovalsRequest {
                include_pending: false,
            },
        ))
        .await
        .expect("watch on B")
        .into_inner();
    // Held on A: B's watcher sees it pending.
    let mut authz_a = AuthorizerClient::new(channel(&a.url).await);
    let request = identity_change("replicas-events", "arn:aws:iam::1:role/events");
    let id = hold(&mut authz_a, &t.gateway, request.clone()).await;
    let seen = next_for(&mut watch, &id).await;
    assert_eq!(seen.state(), pb::ApprovalState::Pending);

    // The gateway waits on A while alice votes on C: A's wait ends approved (a wait
    // that never heard of the vote would end pending after its 50 s).
    let mut approvals_a = ApprovalsClient::new(channel(&a.url).await);
    let (gateway, awaited) = (t.gateway.clone(), id.clone());
    let waiting = tokio::spawn(async move {
        approvals_a
            .await_approval(bearer(
                &gateway,
                pb::AwaitApprovalRequest {
                    id: awaited,
                    wait_seconds: 50,
                },
            ))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut approvals_c = ApprovalsClient::new(channel(&c.url).await);
    vote(&mut approvals_c, &t.alice, &id, true)
        .await
        .expect("vote on C");
    let waited = waiting.await.expect("task").expect("await").into_inner();
    assert_eq!(waited.state(), pb::ApprovalState::Approved, "{waited:?}");
    let seen = next_for(&mut watch, &id).await;
    assert_eq!(seen.state(), pb::ApprovalState::Approved);

    // Redeemed on A: B's watcher sees it used.
    let mut redeem = request;
    redeem.approval_id = id.clone();
    let d = authz_a
        .authorize(bearer(&t.gateway, redeem))
        .await
        .expect("redeem")
        .into_inner();
    assert_eq!(d.decision(), pb::Decision::Allow);
    let seen = next_for(&mut watch, &id).await;
    assert_eq!(seen.state(), pb::ApprovalState::Consumed);
}
