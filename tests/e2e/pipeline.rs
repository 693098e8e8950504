//! The decision pipeline itself (`arbiter_service::pipeline::Decider`), called as a
//! front door calls it: no gRPC in between, but a real server's state (a real SQLite
//! state file, a real audit log) and real plugins. Approval redemption, single use, a
//! deny that wins over an approval, the credential on record before it is returned,
//! and an audit log that cannot be written.

use std::sync::Arc;
use std::time::Duration;

use arbiter::app::App;
use arbiter::auth::{Caller, Role};
use arbiter_core::{Outcome, PrincipalKind};
use arbiter_service::ServiceError;
use arbiter_service::pipeline::{Answer, Authorize, Decider};

use crate::approvals::{identity_change, with_tokens};
use crate::support::*;

fn caller(id: &str, kind: PrincipalKind, role: Role) -> Caller {
    Caller {
        id: id.into(),
        kind,
        roles: vec![role],
        authenticated: true,
        sets: arbiter_service::auth::SetAccess::Any,
    }
}

fn gateway() -> Caller {
    caller("gateway", PrincipalKind::Service, Role::Enforcer)
}

fn alice() -> Caller {
    caller("alice@acme.org", PrincipalKind::Human, Role::Approver)
}

/// A server with tokens, the reference set, and `guarded`: the reference plugin plus
/// one that denies whatever a human approved (deny-overrides).
async fn server() -> (TestServer, Decider) {
    server_with_clock(arbiter_core::system_clock()).await
}

async fn server_with_clock(clock: arbiter_core::SharedClock) -> (TestServer, Decider) {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    with_tokens(&mut config);
    let guarded = data.path().join("guarded");
    std::fs::create_dir_all(&guarded).expect("mkdir");
    for p in ["reference", "misbehave"] {
        std::fs::copy(
            arbiter_plugin_build::plugin(p),
            guarded.join(format!("{p}.wasm")),
        )
        .expect("copy");
    }
    std::fs::write(
        guarded.join("policy-set.toml"),
        "format = 1\nname = \"guarded\"\nversion = \"1\"\ncombining = \"deny-overrides\"\n\n[[plugins]]\nname = \"reference\"\npath = \"reference.wasm\"\n\n[[plugins]]\nname = \"late-deny\"\npath = \"misbehave.wasm\"\n[plugins.settings]\nbehaviour = \"deny-approved\"\n",
    )
    .expect("manifest");
    config.policy_sets = vec!["builtin:reference".into(), guarded.display().to_string()];
    let server = TestServer::start_config_with_clock(config, data, clock).await;
    let decider = Decider::new(server.running.app.clone(), 16);
    (server, decider)
}

/// The held identity change of the approval tests, asking for a credential.
fn held(set: Option<&str>, approval: Option<&str>) -> Authorize {
    let mut a =
        arbiter::grpc::decode::authorize(identity_change("task-p", "arn:aws:iam::1:role/pipeline"))
            .expect("valid");
    a.policy_set = set.map(str::to_string);
    a.approval_id = approval.map(str::to_string);
    a.credential = Some(Some(Duration::from_secs(600)));
    a
}

/// Holds the request on `set`, has alice approve it, and returns the approval id.
async fn approved(decider: &Decider, app: &Arc<App>, set: Option<&str>) -> String {
    let answer = decider
        .decide(&gateway(), held(set, None))
        .await
        .expect("held");
    assert_eq!(answer.decision.outcome, Outcome::RequireApproval);
    assert!(answer.credential.is_none());
    let id = answer.approval_id.expect("an approval id");
    let a = app
        .approvals()
        .vote(&alice(), &id, true, "reviewed".into())
        .await
        .expect("alice approves");
    assert_eq!(a.state, arbiter_store::ApprovalState::Approved);
    id
}

fn refused(r: Result<Answer, ServiceError>, contains: &str) {
    match r {
        Err(e) if e.class() == arbiter_service::ErrorClass::FailedPrecondition => {
            let m = e.to_string();
            assert!(m.contains(contains), "{m}");
        }
        other => panic!("expected a refusal saying `{contains}`, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_is_redeemed_once_for_exactly_its_request_with_the_credential_on_record_first()
{
    let (server, decider) = server().await;
    let app = server.running.app.clone();
    let id = approved(&decider, &app, None).await;

    // A changed request cannot use it.
    let mut changed = held(None, Some(&id));
    changed.request.resource.id = "arn:aws:iam::1:role/other".into();
    refused(
        decider.decide(&gateway(), changed).await,
        "different request",
    );

    // The request it covers is allowed, with the approval and a credential...
    let answer = decider
        .decide(&gateway(), held(None, Some(&id)))
        .await
        .expect("redeemed");
    assert_eq!(answer.decision.outcome, Outcome::Allow);
    assert_eq!(answer.approval_id.as_deref(), Some(id.as_str()));
    let credential = answer.credential.expect("a credential on allow");
    // ... which was on record before it was returned.
    let issued = audit_records(
        &server.audit_db(),
        arbiter_audit::Kind::Credential,
        "issued",
    );
    assert!(
        issued
            .iter()
            .any(|r| r.record.body_value()["credentials"][0] == credential.id.as_str()),
        "no `issued` record for {}",
        credential.id
    );
    // The decision and the consumption are on record too.
    let consumed = audit_records(
        &server.audit_db(),
        arbiter_audit::Kind::Approval,
        "consumed",
    );
    assert_eq!(consumed.len(), 1);

    // Single use.
    refused(
        decider.decide(&gateway(), held(None, Some(&id))).await,
        "already used",
    );
    let refusals = audit_records(
        &server.audit_db(),
        arbiter_audit::Kind::Approval,
        "redemption-refused",
    );
    assert_eq!(refusals.len(), 2, "the changed request and the second use");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deny_that_appears_at_redemption_wins_and_leaves_the_approval_unused() {
    let (server, decider) = server().await;
    let app = server.running.app.clone();
    let id = approved(&decider, &app, Some("guarded")).await;
    let answer = decider
        .decide(&gateway(), held(Some("guarded"), Some(&id)))
        .await
        .expect("answered");
    assert_eq!(answer.decision.outcome, Outcome::Deny, "{answer:?}");
    assert!(answer.credential.is_none(), "no credential with a deny");
    assert_eq!(
        answer.decision.reasons[0].code, "denied-after-approval",
        "{answer:?}"
    );
    // Not consumed, and no credential was signed.
    let a = app.approvals().get(&id).await.expect("approval");
    assert_eq!(a.state, arbiter_store::ApprovalState::Approved);
    assert!(
        audit_records(
            &server.audit_db(),
            arbiter_audit::Kind::Credential,
            "issued"
        )
        .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_record_no_decision_and_no_approval_used() {
    let (server, decider) = server().await;
    let app = server.running.app.clone();
    let id = approved(&decider, &app, None).await;
    break_audit_log(&server.audit_db());
    match decider.decide(&gateway(), held(None, Some(&id))).await {
        Err(ServiceError::Unavailable(m)) => assert!(m.contains("audit log"), "{m}"),
        other => panic!("expected the audit failure to fail closed, got {other:?}"),
    }
    // The approval is still there to use once the log can be written again.
    assert_eq!(
        app.approvals().get(&id).await.expect("approval").state,
        arbiter_store::ApprovalState::Approved
    );
    mend_audit_log(&server.audit_db());
    let answer = decider
        .decide(&gateway(), held(None, Some(&id)))
        .await
        .expect("decided once the log works");
    assert_eq!(answer.decision.outcome, Outcome::Allow);
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_callers_get_no_credential_and_unknown_sets_name_the_field() {
    let (_server, decider) = server().await;
    let anonymous = Caller {
        id: "anonymous".into(),
        kind: PrincipalKind::Service,
        roles: vec![Role::Enforcer],
        authenticated: false,
        sets: arbiter_service::auth::SetAccess::Any,
    };
    match decider.decide(&anonymous, held(None, None)).await {
        Err(ServiceError::PermissionDenied(m)) => assert!(m.contains("credentials"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let e = decider
        .decide(&gateway(), held(Some("nope"), None))
        .await
        .expect_err("unknown set");
    assert_eq!(e.field_name(), "policy_set");
}

/// Time is the injected clock's: an approval lapses and a credential stops being active
/// when the clock passes them, with no sleeping.
#[tokio::test(flavor = "multi_thread")]
async fn approvals_lapse_and_credentials_expire_by_the_injected_clock() {
    let clock = arbiter_core::ManualClock::new();
    let (server, decider) = server_with_clock(clock.clone()).await;
    let app = server.running.app.clone();
    let ttl = test_config(std::path::Path::new("/unused")).approval_ttl;

    // A credential: active now, inactive once the clock passes its expiry.
    let id = approved(&decider, &app, None).await;
    let answer = decider
        .decide(&gateway(), held(None, Some(&id)))
        .await
        .expect("redeemed");
    let credential = answer.credential.expect("a credential");
    assert!(
        app.credentials()
            .introspect(&credential.token)
            .expect("introspects")
            .is_some()
    );
    let left = credential.expires_at - arbiter_core::Clock::now_secs(&*clock);
    assert!(left > 0, "{left}");
    clock.advance(Duration::from_secs(
        u64::try_from(left).expect("positive") + 1,
    ));
    assert!(
        app.credentials()
            .introspect(&credential.token)
            .expect("introspects")
            .is_none(),
        "still active after the clock passed its expiry"
    );

    // An approval left pending: it lapses when the clock passes its time to live.
    let mut other = held(None, None);
    other.request.resource.id = "arn:aws:iam::1:role/later".into();
    let pending = decider
        .decide(&gateway(), other.clone())
        .await
        .expect("held")
        .approval_id
        .expect("an approval");
    clock.advance(ttl + Duration::from_secs(1));
    let voted = app
        .approvals()
        .vote(&alice(), &pending, true, "too late".into())
        .await;
    assert!(
        matches!(
            &voted,
            Err(ServiceError::ApprovalClosed {
                state: arbiter_store::ApprovalState::Expired,
                ..
            })
        ),
        "{voted:?}"
    );
    // The expiry sweep (this call, or the server's own every second) records it by the
    // same clock.
    arbiter_service::approvals::sweep_expired(&app)
        .await
        .expect("sweeps");
    assert!(
        audit_records(&server.audit_db(), arbiter_audit::Kind::Approval, "expired")
            .iter()
            .any(|r| r.record.body_value()["approval_id"] == pending.as_str()),
        "no `expired` record for {pending}"
    );
    assert_eq!(
        app.approvals().get(&pending).await.expect("approval").state,
        arbiter_store::ApprovalState::Expired
    );
}
