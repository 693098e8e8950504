//! A NUL character (U+0000) in a field that reaches the state: PostgreSQL's text
//! columns cannot hold one where SQLite's can, so it is refused before the state is
//! touched, INVALID_ARGUMENT naming the field, the same on both backends (never a
//! database error that reads as UNAVAILABLE).

use arbiter::proto as pb;
use arbiter::proto::approvals_client::ApprovalsClient;
use arbiter::proto::authorizer_client::AuthorizerClient;
use arbiter::proto::credentials_client::CredentialsClient;

use crate::approvals::{bearer, channel, hold, identity_change, vote, with_tokens};
use crate::support::*;

/// Every call that hands a caller's text to the state, with a NUL in one field.
async fn refuses_nul_in_every_field_that_reaches_the_state(state_url: Option<String>) {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    config.state_url = state_url.map(|u| (u, None));
    let t = with_tokens(&mut config);
    let server = TestServer::start_config(config, data).await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut approvals = ApprovalsClient::new(ch.clone());
    let mut credentials = CredentialsClient::new(ch);
    let id = hold(
        &mut authz,
        &t.gateway,
        identity_change("nul-1", "arn:aws:iam::1:role/nul"),
    )
    .await;

    let refused = |field: &str, r: Result<(), tonic::Status>| {
        let e = r.expect_err(field);
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{field}: {e:?}");
        assert!(
            e.message().contains(&format!("`{field}`")),
            "{field}: {e:?}"
        );
    };
    let decide = |id: &str, comment: &str| pb::DecideApprovalRequest {
        id: id.into(),
        approve: true,
        comment: comment.into(),
    };
    refused(
        "comment",
        approvals
            .decide(bearer(&t.alice, decide(&id, "checked\0")))
            .await
            .map(drop),
    );
    refused(
        "id",
        approvals
            .decide(bearer(&t.alice, decide("a\0", "checked")))
            .await
            .map(drop),
    );
    refused(
        "id",
        approvals
            .get_approval(bearer(
                &t.alice,
                pb::GetApprovalRequest { id: "a\0".into() },
            ))
            .await
            .map(drop),
    );
    for (field, filter) in [
        (
            "principal",
            pb::ListApprovalsRequest {
                principal: "p\0".into(),
                ..Default::default()
            },
        ),
        (
            "task_id",
            pb::ListApprovalsRequest {
                task_id: "t\0".into(),
                ..Default::default()
            },
        ),
    ] {
        refused(
            field,
            approvals
                .list_approvals(bearer(&t.alice, filter))
                .await
                .map(drop),
        );
    }
    refused(
        "id",
        credentials
            .revoke(bearer(&t.gateway, pb::RevokeRequest { id: "c\0".into() }))
            .await
            .map(drop),
    );
    refused(
        "task_id",
        credentials
            .complete_task(bearer(
                &t.gateway,
                pb::CompleteTaskRequest {
                    task_id: "t\0".into(),
                },
            ))
            .await
            .map(drop),
    );
    refused(
        "intent.task_id",
        authz
            .authorize(bearer(
                &t.gateway,
                identity_change("nul\0task", "arn:aws:iam::1:role/nul"),
            ))
            .await
            .map(drop),
    );
    // The state is untouched: the approval takes a clean vote.
    vote(&mut approvals, &t.alice, &id, true)
        .await
        .expect("a clean vote counts");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_a_field_for_the_state_is_invalid_argument_on_postgresql() {
    let Some(url) = crate::replicas::database().await else {
        return;
    };
    refuses_nul_in_every_field_that_reaches_the_state(Some(url)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_a_field_for_the_state_is_invalid_argument_on_sqlite_too() {
    refuses_nul_in_every_field_that_reaches_the_state(None).await;
}
