//! `Approvals.AwaitApproval`: the enforcement point that held a request waits for its
//! approval (a long poll), through the real server, real tokens and a real state file.
//! Who may ask and what is refused first, then what the wait answers.

use std::time::Duration;

use arbiter::proto as pb;
use arbiter::proto::approvals_client::ApprovalsClient;
use arbiter::proto::authorizer_client::AuthorizerClient;
use arbiter_service::auth::{Caller, Role};
use arbiter_store::ApprovalState;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

use crate::approvals::{Tokens, bearer, channel, hold, identity_change, vote, with_tokens};
use crate::support::*;

/// Far longer than any wait below should take: a call still running after this is a
/// wait that did not end on the change it waited for.
const NEVER: Duration = Duration::from_secs(30);

async fn server_with_clock(clock: arbiter_core::SharedClock) -> (TestServer, Tokens) {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let tokens = with_tokens(&mut config);
    (
        TestServer::start_config_with_clock(config, data, clock).await,
        tokens,
    )
}

async fn server() -> (TestServer, Tokens) {
    server_with_clock(arbiter_core::system_clock()).await
}

fn ask(token: &str, id: &str, wait_seconds: u32) -> tonic::Request<pb::AwaitApprovalRequest> {
    bearer(
        token,
        pb::AwaitApprovalRequest {
            id: id.into(),
            wait_seconds,
        },
    )
}

async fn await_approval(
    ch: &Channel,
    token: &str,
    id: &str,
    wait_seconds: u32,
) -> Result<pb::ApprovalStatus, tonic::Status> {
    ApprovalsClient::new(ch.clone())
        .await_approval(ask(token, id, wait_seconds))
        .await
        .map(tonic::Response::into_inner)
}

/// Starts waiting (as the gateway) in the background, and checks that the call is
/// still waiting a moment later, so that what follows happens during the wait.
async fn waiting(
    ch: &Channel,
    token: &str,
    id: &str,
) -> tokio::task::JoinHandle<Result<pb::ApprovalStatus, tonic::Status>> {
    let (ch, token, id) = (ch.clone(), token.to_string(), id.to_string());
    let call = tokio::spawn(async move { await_approval(&ch, &token, &id, 60).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !call.is_finished(),
        "the wait answered before anything changed"
    );
    call
}

async fn answered(
    call: tokio::task::JoinHandle<Result<pb::ApprovalStatus, tonic::Status>>,
) -> pb::ApprovalStatus {
    tokio::time::timeout(NEVER, call)
        .await
        .expect("the wait ends once the approval changes")
        .expect("joins")
        .expect("answers")
}

fn invalid(r: Result<pb::ApprovalStatus, tonic::Status>, field: &str) -> String {
    let s = r.expect_err("refused");
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    let details = s.get_details_bad_request().expect("BadRequest details");
    assert_eq!(details.field_violations[0].field, field);
    s.message().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn await_approval_is_for_enforcers_and_refuses_bad_ids_and_long_waits() {
    let (server, t) = server().await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let id = hold(
        &mut authz,
        &t.gateway,
        identity_change("t-aw-1", "arn:role/aw1"),
    )
    .await;

    // Roles: an approver, an admin, no token.
    for (who, token) in [("approver", &t.alice), ("admin", &t.admin)] {
        let s = await_approval(&ch, token, &id, 0)
            .await
            .expect_err("not an enforcer");
        assert_eq!(s.code(), Code::PermissionDenied, "{who}: {s:?}");
        assert!(
            s.message().contains("does not hold the enforcer role"),
            "{who}: {}",
            s.message()
        );
    }
    let s = ApprovalsClient::new(ch.clone())
        .await_approval(pb::AwaitApprovalRequest {
            id: id.clone(),
            wait_seconds: 0,
        })
        .await
        .expect_err("no token");
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");

    // Another enforcer's approval is not found, word for word like an unknown id.
    let unknown = "0198a1b2-0000-7000-8000-000000000000";
    let foreign = await_approval(&ch, &t.agent, &id, 0)
        .await
        .expect_err("not its approval");
    let missing = await_approval(&ch, &t.gateway, unknown, 0)
        .await
        .expect_err("no such approval");
    assert_eq!(
        (foreign.code(), foreign.message()),
        (Code::NotFound, format!("no approval `{id}`").as_str())
    );
    assert_eq!(
        (missing.code(), missing.message()),
        (Code::NotFound, format!("no approval `{unknown}`").as_str())
    );

    // Malformed requests, before any lookup.
    assert_eq!(
        invalid(await_approval(&ch, &t.gateway, "", 0).await, "id"),
        "`id`: is required"
    );
    assert_eq!(
        invalid(await_approval(&ch, &t.gateway, "../x y", 0).await, "id"),
        "`id`: is not an approval id (the `approval_id` of an `Authorize` answer)"
    );
    assert_eq!(
        invalid(
            await_approval(&ch, &t.gateway, &id, 61).await,
            "wait_seconds"
        ),
        "`wait_seconds`: 61 is more than 60: wait again after an answer to wait longer"
    );

    // The holder itself reads it at once.
    let status = await_approval(&ch, &t.gateway, &id, 0)
        .await
        .expect("its own");
    assert_eq!(
        (status.id.as_str(), status.state()),
        (id.as_str(), pb::ApprovalState::Pending)
    );
    assert_eq!((status.approvals, status.approvers_required), (0, 1));
    assert!(status.expires_micros > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn await_approval_answers_approved_once_an_approver_decides_during_the_wait() {
    let (server, t) = server().await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut approvals = ApprovalsClient::new(ch.clone());
    let id = hold(
        &mut authz,
        &t.gateway,
        identity_change("t-aw-2", "arn:role/aw2"),
    )
    .await;

    let call = waiting(&ch, &t.gateway, &id).await;
    vote(&mut approvals, &t.alice, &id, true)
        .await
        .expect("alice approves");
    let status = answered(call).await;
    assert_eq!(status.state(), pb::ApprovalState::Approved, "{status:?}");
    assert_eq!((status.approvals, status.approvers_required), (1, 1));

    // Decided: answered at once, however long the caller would wait.
    let again = tokio::time::timeout(NEVER, await_approval(&ch, &t.gateway, &id, 60))
        .await
        .expect("at once")
        .expect("answers");
    assert_eq!(again.state(), pb::ApprovalState::Approved);
}

#[tokio::test(flavor = "multi_thread")]
async fn await_approval_answers_rejected_after_a_rejection_and_pending_when_nobody_decides() {
    let (server, t) = server().await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut approvals = ApprovalsClient::new(ch.clone());
    let id = hold(
        &mut authz,
        &t.gateway,
        identity_change("t-aw-3", "arn:role/aw3"),
    )
    .await;

    // Nobody decides: pending at once without a wait, and after a short one.
    let now = await_approval(&ch, &t.gateway, &id, 0)
        .await
        .expect("at once");
    assert_eq!(now.state(), pb::ApprovalState::Pending);
    let later = await_approval(&ch, &t.gateway, &id, 1)
        .await
        .expect("after a second");
    assert_eq!(later.state(), pb::ApprovalState::Pending);

    // Another approval's change does not end the wait; this one's rejection does.
    let other = hold(
        &mut authz,
        &t.gateway,
        identity_change("t-aw-4", "arn:role/aw4"),
    )
    .await;
    let call = waiting(&ch, &t.gateway, &id).await;
    vote(&mut approvals, &t.alice, &other, true)
        .await
        .expect("another approval approved");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !call.is_finished(),
        "another approval's change ended the wait"
    );
    vote(&mut approvals, &t.carol, &id, false)
        .await
        .expect("carol rejects");
    let status = answered(call).await;
    assert_eq!(status.state(), pb::ApprovalState::Rejected, "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_approval_past_its_expiry_is_answered_expired_before_and_during_a_wait() {
    let clock = arbiter_core::ManualClock::new();
    let (server, t) = server_with_clock(clock.clone()).await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let ttl = test_config(std::path::Path::new("/unused")).approval_ttl;

    // Lapsed before the call: expired at once, before any sweep recorded it.
    let lapsed = hold(
        &mut authz,
        &t.gateway,
        identity_change("t-aw-5", "arn:role/aw5"),
    )
    .await;
    clock.advance(ttl + Duration::from_secs(1));
    let status = await_approval(&ch, &t.gateway, &lapsed, 60)
        .await
        .expect("answers");
    assert_eq!(status.state(), pb::ApprovalState::Expired, "{status:?}");

    // Lapsing during the wait: the server's sweep tells the waiting call.
    let id = hold(
        &mut authz,
        &t.gateway,
        identity_change("t-aw-6", "arn:role/aw6"),
    )
    .await;
    let call = waiting(&ch, &t.gateway, &id).await;
    clock.advance(ttl + Duration::from_secs(1));
    let status = answered(call).await;
    assert_eq!(status.state(), pb::ApprovalState::Expired, "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_shutting_down_ends_a_wait_with_the_state_as_it_is() {
    let (server, t) = server().await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let id = hold(
        &mut authz,
        &t.gateway,
        identity_change("t-aw-7", "arn:role/aw7"),
    )
    .await;
    let call = waiting(&ch, &t.gateway, &id).await;
    tokio::time::timeout(NEVER, server.running.shutdown())
        .await
        .expect("the drain does not wait for the whole wait")
        .expect("stops");
    let status = answered(call).await;
    assert_eq!(status.state(), pb::ApprovalState::Pending, "{status:?}");
}

/// The same rule in-process, as any door calls it: the service answers another
/// holder's approval as not found, at once (no wait for something it may not see).
#[tokio::test(flavor = "multi_thread")]
async fn the_service_reads_an_approval_only_for_its_holder() {
    let (server, t) = server().await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let id = hold(
        &mut authz,
        &t.gateway,
        identity_change("t-aw-8", "arn:role/aw8"),
    )
    .await;
    let app = server.running.app.clone();
    let enforcer = |id: &str| Caller {
        id: id.into(),
        kind: arbiter_core::PrincipalKind::Service,
        roles: vec![Role::Enforcer],
        authenticated: true,
        sets: arbiter_service::auth::SetAccess::Any,
    };
    let mine = app
        .await_approval(&enforcer("gateway"), &id, Duration::ZERO)
        .await
        .expect("the holder's");
    assert_eq!(mine.state, ApprovalState::Pending);
    let theirs = app
        .await_approval(&enforcer("someone-else"), &id, Duration::from_secs(5))
        .await
        .expect_err("another holder's");
    assert_eq!(
        theirs,
        arbiter_service::ServiceError::not_found("approval", &id)
    );
}
