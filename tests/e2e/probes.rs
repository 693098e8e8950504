//! Probes (`AuthorizeRequest.probe`): the policy set's answer with no effect, through
//! the real server. A probe holds no approval, issues no credential, is recorded as a
//! probe (not a decision), feeds no shadow comparison and no decision metric.

use std::time::Duration;

use arbiter::proto as pb;
use arbiter::proto::approvals_client::ApprovalsClient;
use arbiter::proto::audit_client::AuditClient;
use arbiter::proto::authorizer_client::AuthorizerClient;
use arbiter::proto::policy_admin_client::PolicyAdminClient;
use arbiter_audit::Kind;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::approvals::{Tokens, bearer, channel, hold, identity_change, with_tokens};
use crate::support::*;

async fn server() -> (TestServer, Tokens) {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let tokens = with_tokens(&mut config);
    (TestServer::start_config(config, data).await, tokens)
}

fn probe(mut r: pb::AuthorizeRequest) -> pb::AuthorizeRequest {
    r.probe = true;
    r
}

async fn pending(ch: &tonic::transport::Channel, approver: &str) -> Vec<pb::Approval> {
    ApprovalsClient::new(ch.clone())
        .list_approvals(bearer(
            approver,
            pb::ListApprovalsRequest {
                states: vec![pb::ApprovalState::Pending as i32],
                ..pb::ListApprovalsRequest::default()
            },
        ))
        .await
        .expect("lists")
        .into_inner()
        .approvals
}

#[tokio::test(flavor = "multi_thread")]
async fn a_probe_asking_for_a_credential_or_redeeming_an_approval_is_invalid_naming_the_field() {
    let (server, t) = server().await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut with_credential = probe(identity_change("t-pr-1", "arn:role/pr1"));
    with_credential.credential = Some(pb::CredentialRequest::default());
    let mut with_approval = probe(identity_change("t-pr-1", "arn:role/pr1"));
    with_approval.approval_id = "0198a1b2-0000-7000-8000-000000000000".into();
    let cases = [
        (
            with_credential,
            "credential",
            "`credential`: must not be set on a probe: a probe issues no credential; ask again without `probe`",
        ),
        (
            with_approval,
            "approval_id",
            "`approval_id`: must not be set on a probe: a probe redeems no approval; re-submit without `probe`",
        ),
    ];
    for (request, field, message) in &cases {
        let s = authz
            .authorize(bearer(&t.gateway, request.clone()))
            .await
            .expect_err("refused");
        assert_eq!((s.code(), s.message()), (Code::InvalidArgument, *message));
        let details = s.get_details_bad_request().expect("BadRequest details");
        assert_eq!(details.field_violations[0].field, *field);
    }
    // In a batch, each item on its own.
    let items = authz
        .authorize_batch(bearer(
            &t.gateway,
            pb::AuthorizeBatchRequest {
                requests: cases.iter().map(|(r, _, _)| r.clone()).collect(),
            },
        ))
        .await
        .expect("batch")
        .into_inner()
        .items;
    for (i, (item, (_, field, message))) in items.iter().zip(&cases).enumerate() {
        let Some(pb::batch_item::Result::Error(e)) = &item.result else {
            panic!("item {i} should be refused: {item:?}");
        };
        assert_eq!(
            (e.code, e.field.as_str(), e.message.as_str()),
            (
                Code::InvalidArgument as i32,
                format!("requests[{i}].{field}").as_str(),
                *message
            )
        );
    }
    // Nothing was held or recorded on the way.
    assert!(pending(&ch, &t.alice).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_probe_of_a_held_request_answers_require_approval_holds_nothing_and_is_recorded_as_a_probe()
 {
    let (server, t) = server().await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let request = identity_change("t-pr-2", "arn:role/pr2");

    let answer = authz
        .authorize(bearer(&t.gateway, probe(request.clone())))
        .await
        .expect("probes")
        .into_inner();
    assert_eq!(
        answer.decision(),
        pb::Decision::RequireApproval,
        "{answer:?}"
    );
    assert_eq!(answer.approval_id, "", "a probe holds no approval");
    assert!(!answer.decision_id.is_empty());
    let batch = authz
        .authorize_batch(bearer(
            &t.gateway,
            pb::AuthorizeBatchRequest {
                requests: vec![probe(request.clone())],
            },
        ))
        .await
        .expect("batch")
        .into_inner()
        .items;
    let Some(pb::batch_item::Result::Response(batched)) = &batch[0].result else {
        panic!("{batch:?}");
    };
    assert_eq!(batched.decision(), pb::Decision::RequireApproval);
    assert_eq!(batched.approval_id, "");
    assert!(
        pending(&ch, &t.alice).await.is_empty(),
        "approvers see nothing to approve"
    );

    // On record as probes, not as decisions.
    let db = server.audit_db();
    let probes = audit_records(&db, Kind::Probe, "require-approval");
    let ids: Vec<&str> = probes
        .iter()
        .filter_map(|r| r.record.decision_id.as_deref())
        .collect();
    assert_eq!(
        ids,
        [answer.decision_id.as_str(), batched.decision_id.as_str()]
    );
    assert_eq!(probes[0].record.body_value()["caller"], "gateway");
    assert!(
        audit_records(&db, Kind::Decision, "require-approval").is_empty(),
        "a probe is not a decision"
    );
    assert!(audit_records(&db, Kind::Approval, "created").is_empty());
    // The same through the Audit API: by kind, and by decision id.
    let mut audit = AuditClient::new(ch.clone());
    let query = |q: pb::QueryAuditRequest| {
        let request = bearer(&t.admin, q);
        let mut audit = audit.clone();
        async move {
            audit
                .query_audit(request)
                .await
                .expect("query")
                .into_inner()
                .records
        }
    };
    let of_decision = query(pb::QueryAuditRequest {
        decision_id: answer.decision_id.clone(),
        ..pb::QueryAuditRequest::default()
    })
    .await;
    assert_eq!(
        of_decision
            .iter()
            .map(|r| r.kind.as_str())
            .collect::<Vec<_>>(),
        ["probe"]
    );
    let decisions = query(pb::QueryAuditRequest {
        kind: "decision".into(),
        ..pb::QueryAuditRequest::default()
    })
    .await;
    assert!(decisions.is_empty(), "{decisions:?}");
    let s = audit
        .query_audit(bearer(
            &t.admin,
            pb::QueryAuditRequest {
                kind: "probes".into(),
                ..pb::QueryAuditRequest::default()
            },
        ))
        .await
        .expect_err("unknown kind");
    assert_eq!(
        s.message(),
        "`kind`: `probes` is not decision, approval, credential, admin, shadow or probe"
    );

    // Counted apart from decisions.
    let metrics = server.running.app.metrics().encode();
    let probes_counted = metrics
        .lines()
        .find(|l| l.starts_with("arbiter_probes_total{") && l.contains("require-approval"))
        .expect("probes counted");
    assert!(probes_counted.ends_with(" 2"), "{probes_counted}");
    assert!(
        !metrics.contains("arbiter_decisions_total{"),
        "probes counted as decisions: {metrics}"
    );

    // The same request, not a probe: held, recorded and counted as a decision.
    let id = hold(&mut authz, &t.gateway, request).await;
    let listed = pending(&ch, &t.alice).await;
    assert_eq!(
        listed.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        [id.as_str()]
    );
    assert_eq!(
        audit_records(&db, Kind::Decision, "require-approval").len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_probe_feeds_no_shadow_comparison() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    let shadow = one_plugin_set(data.path(), "reference", "reference", "");
    let manifest = shadow.join("policy-set.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(
        &manifest,
        text.replace("version = \"1\"", "version = \"2.0.0\"\nmode = \"shadow\""),
    )
    .expect("shadow manifest");
    config.policy_sets = vec!["builtin:reference".into(), shadow.display().to_string()];
    let server = TestServer::start_config(config, data).await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let admin = PolicyAdminClient::new(ch.clone());
    let compared = || {
        let request = bearer(
            &t.admin,
            pb::GetSetStatusRequest {
                name: "reference".into(),
            },
        );
        let mut admin = admin.clone();
        async move {
            let s = admin
                .get_set_status(request)
                .await
                .expect("status")
                .into_inner();
            s.shadow_compared + s.shadow_shed
        }
    };
    for _ in 0..5 {
        let answer = authz
            .authorize(bearer(&t.gateway, probe(normal_request())))
            .await
            .expect("probes");
        assert_eq!(answer.into_inner().decision(), pb::Decision::Allow);
    }
    authz
        .authorize(bearer(&t.gateway, normal_request()))
        .await
        .expect("decides");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while compared().await == 0 {
        assert!(std::time::Instant::now() < deadline, "the shadow never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for any late comparison to land: only the decision's is ever counted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(compared().await, 1);
}
