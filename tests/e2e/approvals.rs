//! Human approval and just-in-time credentials through the real server, real tokens
//! and a real SQLite file (issue: approvals and credentials).

use std::process::Command;
use std::time::Duration;

use arbiter::auth::{self, Role};
use arbiter::proto as pb;
use arbiter::proto::approvals_client::ApprovalsClient;
use arbiter::proto::authorizer_client::AuthorizerClient;
use arbiter::proto::credentials_client::CredentialsClient;
use arbiter_core::Request;
use base64::Engine as _;
use tonic::Code;
use tonic::transport::Channel;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_arbiter");
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub(crate) const AGENT: &str = "spiffe://acme.org/agent/iam-bot";
pub(crate) const BOB: &str = "bob@acme.org";

/// Callers of the tests, each with its token.
pub(crate) struct Tokens {
    pub gateway: String,
    pub alice: String,
    pub bob: String,
    pub carol: String,
    pub agent: String,
    pub admin: String,
}

/// Tokens for a gateway (enforcer), humans alice, bob (the delegator) and carol
/// (approvers), the agent itself (enforcer) and an admin; added to `config`, where
/// callers without a token may do nothing.
pub(crate) fn with_tokens(config: &mut arbiter::config::Config) -> Tokens {
    let mut add = |id: &str, kind: &str, roles: &[Role]| {
        let token = auth::new_token().expect("token");
        let roles: Vec<String> = roles.iter().map(|r| r.as_str().to_string()).collect();
        let hash = auth::token_hash(&token);
        let mut caller = auth::caller_of(&hash, id, kind, &roles).expect("valid token entry");
        // These tests name several sets; which sets a caller may name is tested in
        // `findings` (a token entry may name only the default set unless it lists more).
        caller.sets = auth::SetAccess::Any;
        config.tokens.insert(hash, caller);
        token
    };
    let t = Tokens {
        gateway: add("gateway", "service", &[Role::Enforcer]),
        alice: add("alice@acme.org", "human", &[Role::Approver]),
        bob: add(BOB, "human", &[Role::Approver]),
        carol: add("carol@acme.org", "human", &[Role::Approver]),
        agent: add(AGENT, "agent", &[Role::Enforcer]),
        admin: add("root@acme.org", "human", &[Role::Admin]),
    };
    config.anonymous_roles = Vec::new();
    t
}

/// `message` with `authorization: Bearer token`.
pub(crate) fn bearer<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    r
}

/// An agent, acting for bob, attaches a role policy: permitted (P5) but held for
/// approval (G1) by the reference policy.
pub(crate) fn identity_change(task: &str, resource: &str) -> pb::AuthorizeRequest {
    let r: Request = serde_json::from_value(serde_json::json!({
        "principal": {"id": AGENT, "kind": "agent", "attributes": {"team": "security"}},
        "delegation": [{"id": BOB, "kind": "human", "attributes": {"team": "security"}}],
        "action": {"name": "iam:AttachRolePolicy", "privilege": "identity-change"},
        "resource": {"id": resource, "kind": "iam_role", "attributes": {"env": "prod", "owner_team": "security"}},
        "intent": {"purpose": "access-review", "task_id": task, "ticket": "CHG-7"},
        "context": {"hour": 10, "source_ip": "10.0.0.5", "risk": 10, "mfa": true}
    }))
    .expect("request");
    arbiter::grpc::encode::request(&r)
}

pub(crate) async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_string())
        .expect("url")
        .connect()
        .await
        .expect("connects")
}

/// A human (`principal`, security team, MFA) schedules a prod key's deletion: an admin
/// action the reference policy permits (P4) and holds for approval (G3).
pub(crate) fn own_admin_action(principal: &str, key: &str, task: &str) -> pb::AuthorizeRequest {
    let r: Request = serde_json::from_value(serde_json::json!({
        "principal": {"id": principal, "kind": "human", "attributes": {"team": "security"}},
        "action": {"name": "kms:ScheduleKeyDeletion", "privilege": "admin"},
        "resource": {"id": key, "kind": "kms_key", "attributes": {"env": "prod", "owner_team": "security"}},
        "intent": {"purpose": "rotation", "task_id": task, "ticket": "CHG-9"},
        "context": {"hour": 10, "source_ip": "10.0.0.9", "risk": 5, "mfa": true}
    }))
    .expect("request");
    arbiter::grpc::encode::request(&r)
}

/// Held, then returns the approval id.
pub(crate) async fn hold(
    c: &mut AuthorizerClient<Channel>,
    token: &str,
    r: pb::AuthorizeRequest,
) -> String {
    let d = c
        .authorize(bearer(token, r))
        .await
        .expect("authorize")
        .into_inner();
    assert_eq!(d.decision(), pb::Decision::RequireApproval, "{d:?}");
    assert!(
        !d.approval_id.is_empty(),
        "a held decision names its approval"
    );
    d.approval_id
}

pub(crate) async fn vote(
    a: &mut ApprovalsClient<Channel>,
    token: &str,
    id: &str,
    approve: bool,
) -> Result<pb::Approval, tonic::Status> {
    a.decide(bearer(
        token,
        pb::DecideApprovalRequest {
            id: id.into(),
            approve,
            comment: "checked the ticket".into(),
        },
    ))
    .await
    .map(tonic::Response::into_inner)
}

pub(crate) async fn introspect(
    c: &mut CredentialsClient<Channel>,
    token: &str,
    jwt: &str,
) -> pb::IntrospectResponse {
    c.introspect(bearer(token, pb::IntrospectRequest { token: jwt.into() }))
        .await
        .expect("introspect")
        .into_inner()
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> (Code, String) {
    let s = r.expect_err("refused");
    (s.code(), s.message().to_string())
}

async fn server() -> (TestServer, Tokens) {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let tokens = with_tokens(&mut config);
    // The same policy, asking two approvers: to show that one person counts once.
    let two = two_approver_set(data.path());
    config.policy_sets = vec!["builtin:reference".into(), two.display().to_string()];
    (TestServer::start_config(config, data).await, tokens)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identity_change_is_held_approved_by_a_human_and_gets_a_credential_until_the_task_ends()
{
    let (server, t) = server().await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut creds = CredentialsClient::new(ch.clone());
    let mut request = identity_change("task-1", "arn:aws:iam::1:role/deploy");
    request.credential = Some(pb::CredentialRequest {
        lifetime_seconds: 3600,
    });

    // Held: no credential, an approval id; asking again gives the same approval.
    let first = authz
        .authorize(bearer(&t.gateway, request.clone()))
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(first.decision(), pb::Decision::RequireApproval);
    assert!(first.credential.is_none());
    let id = first.approval_id.clone();
    assert_eq!(hold(&mut authz, &t.gateway, request.clone()).await, id);

    // A human approver lists and approves it with the CLI.
    let url = server.url.clone();
    let (alice, id2) = (t.alice.clone(), id.clone());
    let (listed, approved) = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| {
            let out = Command::new(BIN)
                .args(args)
                .args(["--server", &url, "--json"])
                .env("ARBITER_TOKEN", &alice)
                .output()
                .expect("runs");
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        (
            run(&["approvals", "list"]),
            run(&["approvals", "approve", &id2, "--comment", "CHG-7 reviewed"]),
        )
    })
    .await
    .expect("cli");
    let listed: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["principal"], AGENT);
    assert_eq!(
        listed[0]["reasons"][0]["code"]
            .as_str()
            .map(|c| !c.is_empty()),
        Some(true)
    );
    let approved: serde_json::Value = serde_json::from_str(approved.trim()).expect("json");
    assert_eq!(approved["state"], "approved");
    assert_eq!(approved["votes"][0]["approver"], "alice@acme.org");
    assert_eq!(approved["votes"][0]["comment"], "CHG-7 reviewed");

    // The agent's gateway re-submits the same request with the approval id.
    request.approval_id = id.clone();
    let allowed = authz
        .authorize(bearer(&t.gateway, request.clone()))
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(allowed.decision(), pb::Decision::Allow, "{allowed:?}");
    assert_eq!(allowed.approval_id, id);
    let credential = allowed.credential.expect("a credential on allow");
    // Lifetime: the smaller of the wish (1 h), the obligation (5 min for identity
    // changes) and the server maximum (15 min).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!(
        (now + 290..=now + 301).contains(&credential.expires_at),
        "{} vs {now}",
        credential.expires_at
    );

    // Active, bound to principal, action, resource, task and decision.
    let active = introspect(&mut creds, &t.gateway, &credential.token).await;
    assert!(active.active);
    assert_eq!(
        (
            active.subject.as_str(),
            active.action.as_str(),
            active.resource.as_str(),
            active.task_id.as_str()
        ),
        (
            AGENT,
            "iam:AttachRolePolicy",
            "arn:aws:iam::1:role/deploy",
            "task-1"
        )
    );
    assert_eq!(active.decision_id, allowed.decision_id);
    assert_eq!(active.id, credential.id);

    // The CLI introspects it in every documented form (the JWT once clashed with the
    // global `--token`, so none of these worked).
    for out in cli_introspect(&server.url, &t.gateway, &credential.token).await {
        let (code, stdout, stderr) = out;
        assert_eq!(code, Some(0), "{stderr}");
        let json: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
        assert_eq!(json["active"], true, "{json}");
        assert_eq!(json["jti"], credential.id.as_str());
        assert_eq!(json["sub"], AGENT);
    }

    // Verifiable offline with the published keys.
    let jwks = creds
        .get_jwks(pb::GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner();
    let jwks: serde_json::Value = serde_json::from_str(&jwks.jwks_json).expect("jwks json");
    assert!(verifies_offline(&credential.token, &jwks));

    // The approval was used: it cannot be used again.
    let (c, m) = code(authz.authorize(bearer(&t.gateway, request.clone())).await);
    assert_eq!(c, Code::FailedPrecondition);
    assert!(m.contains("already used"), "{m}");

    // The task ends: every credential of it is revoked at once.
    let done = creds
        .complete_task(bearer(
            &t.gateway,
            pb::CompleteTaskRequest {
                task_id: "task-1".into(),
            },
        ))
        .await
        .expect("complete")
        .into_inner();
    assert_eq!(done.revoked, std::slice::from_ref(&credential.id));
    // Inactive now: the CLI says so and exits 1.
    for (code, stdout, stderr) in cli_introspect(&server.url, &t.gateway, &credential.token).await {
        assert_eq!(code, Some(1), "{stderr}");
        assert_eq!(stdout.trim(), r#"{"active":false}"#);
    }
    assert!(
        !introspect(&mut creds, &t.gateway, &credential.token)
            .await
            .active
    );
}

/// `arbiter credentials introspect` in each documented form: `--token T JWT`, the
/// token before the subcommand, the token from `ARBITER_TOKEN`, and the JWT from stdin
/// (`-`). Returns each run's exit code, stdout and stderr.
async fn cli_introspect(url: &str, token: &str, jwt: &str) -> Vec<(Option<i32>, String, String)> {
    let (url, token, jwt) = (url.to_string(), token.to_string(), jwt.to_string());
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let run = |args: &[&str], env_token: bool, stdin: Option<&str>| {
            let mut cmd = Command::new(BIN);
            cmd.args(args)
                .args(["--server", &url])
                .env_remove("ARBITER_TOKEN");
            if env_token {
                cmd.env("ARBITER_TOKEN", &token);
            }
            cmd.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().expect("runs");
            let mut input = child.stdin.take().expect("stdin");
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).expect("writes stdin");
            }
            drop(input);
            let out = child.wait_with_output().expect("waits");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).to_string(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        };
        vec![
            run(
                &["credentials", "introspect", "--token", &token, &jwt],
                false,
                None,
            ),
            run(
                &["credentials", "--token", &token, "introspect", &jwt],
                false,
                None,
            ),
            run(&["credentials", "introspect", &jwt], true, None),
            run(
                &["credentials", "introspect", "-"],
                true,
                Some(&format!("{jwt}\n")),
            ),
        ]
    })
    .await
    .expect("cli")
}

/// Checks an EdDSA JWT against a JWKS document, as a resource server would.
pub(crate) fn verifies_offline(token: &str, jwks: &serde_json::Value) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    let header: serde_json::Value =
        serde_json::from_slice(&B64.decode(parts[0]).expect("b64")).expect("header");
    assert_eq!(header["alg"], "EdDSA");
    // An RFC 9068 access token, with Arbiter's own claim for the action (`act` is
    // RFC 8693's actor claim), this deployment's issuer and a named audience.
    assert_eq!(header["typ"], "at+jwt");
    let claims: serde_json::Value =
        serde_json::from_slice(&B64.decode(parts[1]).expect("b64")).expect("claims");
    assert!(claims.get("act").is_none(), "{claims}");
    assert!(claims["arbiter_action"].is_string(), "{claims}");
    let iss = claims["iss"].as_str().expect("iss");
    assert!(
        iss.starts_with("urn:arbiter:") && iss.len() == 12 + 32,
        "{iss}"
    );
    assert!(!claims["aud"].as_str().expect("aud").is_empty(), "{claims}");
    let Some(key) = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == header["kid"])
    else {
        return false;
    };
    let x: [u8; 32] = B64
        .decode(key["x"].as_str().expect("x"))
        .expect("b64")
        .try_into()
        .expect("32 bytes");
    let public = arbiter_keys::PublicKey::from_bytes(&x).expect("key");
    let sig = B64.decode(parts[2]).expect("b64");
    public
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn approvals_keep_separation_of_duties_and_count_each_human_once() {
    let (server, t) = server().await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut approvals = ApprovalsClient::new(ch.clone());

    let id = hold(
        &mut authz,
        &t.gateway,
        identity_change("task-2", "arn:role/a"),
    )
    .await;
    // The delegating human may not approve what an agent does on their behalf.
    let (c, m) = code(vote(&mut approvals, &t.bob, &id, true).await);
    assert_eq!(c, Code::PermissionDenied);
    assert!(m.contains("delegation chain"), "{m}");
    // Agents and services cannot approve (they cannot hold the approver role).
    assert_eq!(
        code(vote(&mut approvals, &t.agent, &id, true).await).0,
        Code::PermissionDenied
    );
    assert_eq!(
        code(vote(&mut approvals, &t.gateway, &id, true).await).0,
        Code::PermissionDenied
    );
    assert_eq!(
        code(vote(&mut approvals, &t.admin, &id, true).await).0,
        Code::PermissionDenied
    );

    // Self-approval: a human's own held admin action.
    let own = hold(
        &mut authz,
        &t.gateway,
        own_admin_action("carol@acme.org", "arn:kms:key/1", "task-3"),
    )
    .await;
    let (c, m) = code(vote(&mut approvals, &t.carol, &own, true).await);
    assert_eq!(c, Code::PermissionDenied);
    assert!(m.contains("requested this action"), "{m}");

    // Two approvers needed: the same human twice counts once.
    let mut two = identity_change("task-4", "arn:role/b");
    two.policy_set = "two-approvers".into();
    let id = hold(&mut authz, &t.gateway, two.clone()).await;
    let a = vote(&mut approvals, &t.alice, &id, true)
        .await
        .expect("counted");
    assert_eq!(
        (a.state(), a.approvals, a.approvers_required),
        (pb::ApprovalState::Pending, 1, 2)
    );
    assert_eq!(
        code(vote(&mut approvals, &t.alice, &id, true).await).0,
        Code::AlreadyExists
    );
    let shown = approvals
        .get_approval(bearer(&t.alice, pb::GetApprovalRequest { id: id.clone() }))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        (shown.state(), shown.approvals),
        (pb::ApprovalState::Pending, 1)
    );
    // Still pending: re-submitting is refused.
    two.approval_id = id.clone();
    let (c, m) = code(authz.authorize(bearer(&t.gateway, two.clone())).await);
    assert_eq!(c, Code::FailedPrecondition);
    assert!(m.contains("1 of 2"), "{m}");
    let a = vote(&mut approvals, &t.carol, &id, true)
        .await
        .expect("counted");
    assert_eq!(a.state(), pb::ApprovalState::Approved);

    // The approval covers exactly the held request: a changed request does not match.
    let mut changed = two.clone();
    changed.resource.as_mut().expect("resource").id = "arn:role/other".into();
    let (c, m) = code(authz.authorize(bearer(&t.gateway, changed)).await);
    assert_eq!(c, Code::FailedPrecondition);
    assert!(m.contains("different request"), "{m}");
    // ... nor the same request on another set.
    let mut elsewhere = two.clone();
    elsewhere.policy_set = String::new();
    assert_eq!(
        code(authz.authorize(bearer(&t.gateway, elsewhere)).await).0,
        Code::FailedPrecondition
    );
    let ok = authz
        .authorize(bearer(&t.gateway, two.clone()))
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(ok.decision(), pb::Decision::Allow);

    // A rejection cannot be redeemed.
    let mut rejected = identity_change("task-5", "arn:role/c");
    let rid = hold(&mut authz, &t.gateway, rejected.clone()).await;
    assert_eq!(
        vote(&mut approvals, &t.alice, &rid, false)
            .await
            .expect("counted")
            .state(),
        pb::ApprovalState::Rejected
    );
    rejected.approval_id = rid;
    let (c, m) = code(authz.authorize(bearer(&t.gateway, rejected)).await);
    assert_eq!(c, Code::FailedPrecondition);
    assert!(m.contains("rejected"), "{m}");
    // An unknown approval id is NOT_FOUND.
    let mut unknown = identity_change("task-5", "arn:role/c");
    unknown.approval_id = "01900000-0000-7000-8000-000000000000".into();
    assert_eq!(
        code(authz.authorize(bearer(&t.gateway, unknown)).await).0,
        Code::NotFound
    );

    // Every refused redemption is on record, with the caller and why.
    let refused = audit_records(
        &server.audit_db(),
        arbiter_audit::Kind::Approval,
        "redemption-refused",
    );
    let reasons: Vec<String> = refused
        .iter()
        .map(|r| {
            r.record.body_value()["reason"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:#?}");
    for (reason, expected) in
        reasons
            .iter()
            .zip(["1 of 2", "different request", "", "rejected", "no approval"])
    {
        assert!(reason.contains(expected), "{reason} lacks {expected}");
    }
    assert!(
        refused
            .iter()
            .all(|r| r.record.principal.as_deref() == Some("gateway")),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_supplied_approved_flag_has_no_effect() {
    let (server, t) = server().await;
    let mut authz = AuthorizerClient::new(channel(&server.url).await);
    let mut r = identity_change("task-6", "arn:role/d");
    for (k, v) in [("approved", true), ("approval_verified", true)] {
        r.context.insert(
            k.into(),
            pb::Value {
                kind: Some(pb::value::Kind::Boolean(v)),
            },
        );
        r.action.as_mut().expect("action").attributes.insert(
            k.into(),
            pb::Value {
                kind: Some(pb::value::Kind::Boolean(v)),
            },
        );
    }
    let d = authz
        .authorize(bearer(&t.gateway, r))
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(d.decision(), pb::Decision::RequireApproval);
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_need_a_known_token_with_the_right_role() {
    let (server, t) = server().await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut approvals = ApprovalsClient::new(ch.clone());
    let mut creds = CredentialsClient::new(ch.clone());
    let r = identity_change("task-7", "arn:role/e");
    assert_eq!(
        code(authz.authorize(r.clone()).await).0,
        Code::Unauthenticated
    );
    assert_eq!(
        code(authz.authorize(bearer("arb_not-a-token", r.clone())).await).0,
        Code::Unauthenticated
    );
    let mut bad = tonic::Request::new(r.clone());
    bad.metadata_mut()
        .insert("authorization", "Basic abc".parse().expect("ascii"));
    assert_eq!(code(authz.authorize(bad).await).0, Code::Unauthenticated);
    assert_eq!(
        code(authz.authorize(bearer(&t.alice, r.clone())).await).0,
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            authz
                .authorize_batch(bearer(
                    &t.admin,
                    pb::AuthorizeBatchRequest {
                        requests: vec![r.clone()]
                    }
                ))
                .await
        )
        .0,
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            approvals
                .list_approvals(pb::ListApprovalsRequest::default())
                .await
        )
        .0,
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            approvals
                .list_approvals(bearer(&t.gateway, pb::ListApprovalsRequest::default()))
                .await
        )
        .0,
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            creds
                .introspect(bearer(
                    &t.alice,
                    pb::IntrospectRequest { token: "x".into() }
                ))
                .await
        )
        .0,
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            creds
                .rotate_signing_key(bearer(&t.gateway, pb::RotateSigningKeyRequest {}))
                .await
        )
        .0,
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            creds
                .complete_task(pb::CompleteTaskRequest {
                    task_id: "t".into()
                })
                .await
        )
        .0,
        Code::Unauthenticated
    );
    // A credential needs a task.
    let mut no_task = normal_request();
    no_task.credential = Some(pb::CredentialRequest::default());
    let s = authz
        .authorize(bearer(&t.gateway, no_task))
        .await
        .expect_err("refused");
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("intent.task_id"), "{}", s.message());
}

/// A normal allowed read with a credential for `task`.
fn read_with_credential(task: &str, lifetime: u64) -> pb::AuthorizeRequest {
    let mut r = normal_request();
    r.intent.as_mut().expect("intent").task_id = task.into();
    r.credential = Some(pb::CredentialRequest {
        lifetime_seconds: lifetime,
    });
    r
}

async fn issue(
    authz: &mut AuthorizerClient<Channel>,
    token: &str,
    task: &str,
    lifetime: u64,
) -> pb::IssuedCredential {
    let d = authz
        .authorize(bearer(token, read_with_credential(task, lifetime)))
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(d.decision(), pb::Decision::Allow, "{d:?}");
    d.credential.expect("credential")
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_tampered_expired_and_revoked_credentials_are_inactive() {
    let (server, t) = server().await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut creds = CredentialsClient::new(ch.clone());

    let good = issue(&mut authz, &t.gateway, "task-8", 600).await;
    assert!(introspect(&mut creds, &t.gateway, &good.token).await.active);

    // Tampered: the claims changed (another subject), the signature kept.
    let parts: Vec<&str> = good.token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&B64.decode(parts[1]).expect("b64")).expect("claims");
    claims["sub"] = "spiffe://acme.org/agent/evil".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(claims.to_string()),
        parts[2]
    );
    assert!(!introspect(&mut creds, &t.gateway, &tampered).await.active);
    // Forged: the same header (kid) and claims, signed with another key.
    let other = arbiter_keys::SecretKey::generate().expect("key");
    let input = format!("{}.{}", parts[0], parts[1]);
    let forged = format!("{input}.{}", B64.encode(other.sign(input.as_bytes())));
    assert!(!introspect(&mut creds, &t.gateway, &forged).await.active);
    // Garbage is inactive, not an error.
    assert!(!introspect(&mut creds, &t.gateway, "not.a.jwt").await.active);

    // Revoked one by one.
    let revoked = issue(&mut authz, &t.gateway, "task-9", 600).await;
    let r = creds
        .revoke(bearer(
            &t.gateway,
            pb::RevokeRequest {
                id: revoked.id.clone(),
            },
        ))
        .await
        .expect("revoke")
        .into_inner();
    assert!(r.revoked);
    assert!(
        !introspect(&mut creds, &t.gateway, &revoked.token)
            .await
            .active
    );
    assert!(
        introspect(&mut creds, &t.gateway, &good.token).await.active,
        "others stay active"
    );
    assert_eq!(
        code(
            creds
                .revoke(bearer(&t.gateway, pb::RevokeRequest { id: "nope".into() }))
                .await
        )
        .0,
        Code::NotFound
    );

    // Expired.
    let short = issue(&mut authz, &t.gateway, "task-10", 1).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(
        !introspect(&mut creds, &t.gateway, &short.token)
            .await
            .active
    );

    // Rotation: new credentials use the new key; old ones still verify.
    let before = creds
        .get_jwks(pb::GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner();
    let rotated = creds
        .rotate_signing_key(bearer(&t.admin, pb::RotateSigningKeyRequest {}))
        .await
        .expect("rotate")
        .into_inner();
    assert_eq!(rotated.retired_kid, before.active_kid);
    assert_ne!(rotated.active_kid, before.active_kid);
    let fresh = issue(&mut authz, &t.gateway, "task-11", 600).await;
    let header: serde_json::Value = serde_json::from_slice(
        &B64.decode(fresh.token.split('.').next().expect("h"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(header["kid"], rotated.active_kid.as_str());
    assert!(
        introspect(&mut creds, &t.gateway, &good.token).await.active,
        "old key still verifies"
    );
    let jwks: serde_json::Value = serde_json::from_str(
        &creds
            .get_jwks(pb::GetJwksRequest {})
            .await
            .expect("jwks")
            .into_inner()
            .jwks_json,
    )
    .expect("json");
    assert!(verifies_offline(&good.token, &jwks) && verifies_offline(&fresh.token, &jwks));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_approval_cannot_be_used_or_voted_on() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    config.approval_ttl = Duration::from_secs(3);
    let server = TestServer::start_config(config, data).await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut approvals = ApprovalsClient::new(ch.clone());
    let mut r = identity_change("task-12", "arn:role/f");
    let id = hold(&mut authz, &t.gateway, r.clone()).await;
    let late = hold(
        &mut authz,
        &t.gateway,
        identity_change("task-13", "arn:role/g"),
    )
    .await;
    vote(&mut approvals, &t.alice, &id, true)
        .await
        .expect("approved in time");
    let mut stream = approvals
        .watch_approvals(bearer(
            &t.carol,
            pb::WatchApprovalsRequest {
                include_pending: false,
            },
        ))
        .await
        .expect("watch")
        .into_inner();
    tokio::time::sleep(Duration::from_millis(3200)).await;
    r.approval_id = id.clone();
    let (c, m) = code(authz.authorize(bearer(&t.gateway, r)).await);
    assert_eq!(c, Code::FailedPrecondition);
    assert!(m.contains("expired"), "{m}");
    let (c, m) = code(vote(&mut approvals, &t.alice, &late, true).await);
    assert_eq!(c, Code::FailedPrecondition);
    assert!(m.contains("expired"), "{m}");

    // Watchers hear of both expiries (the approved-but-unused one too), and both are
    // approval steps on record.
    let mut expired = vec![next_event(&mut stream).await, next_event(&mut stream).await];
    expired.sort_by(|a, b| a.id.cmp(&b.id));
    let mut ids = vec![id, late];
    ids.sort();
    assert_eq!(
        expired.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        ids
    );
    assert!(
        expired
            .iter()
            .all(|a| a.state() == pb::ApprovalState::Expired),
        "{expired:?}"
    );
    let mut recorded = crate::support::expired_approval_ids(&server.audit_db());
    recorded.sort();
    assert_eq!(recorded, ids);
}

#[tokio::test(flavor = "multi_thread")]
async fn watchers_see_approvals_created_and_decided() {
    let (server, t) = server().await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut approvals = ApprovalsClient::new(ch.clone());
    let existing = hold(
        &mut authz,
        &t.gateway,
        identity_change("task-14", "arn:role/h"),
    )
    .await;
    let mut stream = approvals
        .watch_approvals(bearer(
            &t.alice,
            pb::WatchApprovalsRequest {
                include_pending: true,
            },
        ))
        .await
        .expect("watch")
        .into_inner();
    assert_eq!(next_event(&mut stream).await.id, existing);
    let new = hold(
        &mut authz,
        &t.gateway,
        identity_change("task-15", "arn:role/i"),
    )
    .await;
    let seen = next_event(&mut stream).await;
    assert_eq!(
        (seen.id.as_str(), seen.state()),
        (new.as_str(), pb::ApprovalState::Pending)
    );
    vote(&mut approvals, &t.alice, &new, true)
        .await
        .expect("vote");
    let seen = next_event(&mut stream).await;
    assert_eq!(
        (seen.id.as_str(), seen.state()),
        (new.as_str(), pb::ApprovalState::Approved)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn approvals_and_credentials_survive_a_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    let (pending, approved, live, revoked, kid);
    {
        let running = arbiter::server::start(&config).await.expect("starts");
        let ch = channel(&format!("http://{}", running.local_addr)).await;
        let mut authz = AuthorizerClient::new(ch.clone());
        let mut approvals = ApprovalsClient::new(ch.clone());
        let mut creds = CredentialsClient::new(ch.clone());
        pending = hold(
            &mut authz,
            &t.gateway,
            identity_change("task-16", "arn:role/j"),
        )
        .await;
        approved = hold(
            &mut authz,
            &t.gateway,
            identity_change("task-17", "arn:role/k"),
        )
        .await;
        vote(&mut approvals, &t.alice, &approved, true)
            .await
            .expect("vote");
        live = issue(&mut authz, &t.gateway, "task-18", 600).await;
        revoked = issue(&mut authz, &t.gateway, "task-19", 600).await;
        creds
            .revoke(bearer(
                &t.gateway,
                pb::RevokeRequest {
                    id: revoked.id.clone(),
                },
            ))
            .await
            .expect("revoke");
        kid = creds
            .get_jwks(pb::GetJwksRequest {})
            .await
            .expect("jwks")
            .into_inner()
            .active_kid;
        running.shutdown().await.expect("stops");
    }
    let running = arbiter::server::start(&config).await.expect("restarts");
    let ch = channel(&format!("http://{}", running.local_addr)).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut approvals = ApprovalsClient::new(ch.clone());
    let mut creds = CredentialsClient::new(ch.clone());
    let listed = approvals
        .list_approvals(bearer(
            &t.alice,
            pb::ListApprovalsRequest {
                states: vec![pb::ApprovalState::Pending as i32],
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        listed
            .approvals
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>(),
        [pending.as_str()]
    );
    let mut r = identity_change("task-17", "arn:role/k");
    r.approval_id = approved;
    assert_eq!(
        authz
            .authorize(bearer(&t.gateway, r))
            .await
            .expect("ok")
            .into_inner()
            .decision(),
        pb::Decision::Allow
    );
    assert!(introspect(&mut creds, &t.gateway, &live.token).await.active);
    assert!(
        !introspect(&mut creds, &t.gateway, &revoked.token)
            .await
            .active
    );
    assert_eq!(
        creds
            .get_jwks(pb::GetJwksRequest {})
            .await
            .expect("jwks")
            .into_inner()
            .active_kid,
        kid
    );
    running.shutdown().await.expect("stops");
}

async fn next_event(s: &mut tonic::Streaming<pb::ApprovalEvent>) -> pb::Approval {
    tokio::time::timeout(Duration::from_secs(10), s.message())
        .await
        .expect("in time")
        .expect("ok")
        .expect("event")
        .approval
        .expect("approval")
}

#[tokio::test(flavor = "multi_thread")]
async fn another_spelling_of_an_id_is_the_same_person_and_a_redemption_cannot_add_a_credential() {
    let (server, t) = server().await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut approvals = ApprovalsClient::new(ch.clone());
    // The enforcement point spells carol's id differently from her token.
    let own = hold(
        &mut authz,
        &t.gateway,
        own_admin_action(" Carol@Acme.org", "arn:kms:key/2", "task-20"),
    )
    .await;
    let (c, m) = code(vote(&mut approvals, &t.carol, &own, true).await);
    assert_eq!(c, Code::PermissionDenied);
    assert!(m.contains("requested this action"), "{m}");

    // Held without a credential, approved: the redemption cannot add one.
    let mut r = identity_change("task-21", "arn:role/z");
    let id = hold(&mut authz, &t.gateway, r.clone()).await;
    vote(&mut approvals, &t.alice, &id, true)
        .await
        .expect("approved");
    r.approval_id = id;
    let mut with_credential = r.clone();
    with_credential.credential = Some(pb::CredentialRequest {
        lifetime_seconds: 60,
    });
    let (c, m) = code(authz.authorize(bearer(&t.gateway, with_credential)).await);
    assert_eq!(c, Code::FailedPrecondition);
    assert!(m.contains("different request"), "{m}");
    let allowed = authz
        .authorize(bearer(&t.gateway, r))
        .await
        .expect("as approved")
        .into_inner();
    assert_eq!(allowed.decision(), pb::Decision::Allow);
    assert!(allowed.credential.is_none());
}

/// Many gateways redeem one approval at once, each asking for a credential: exactly
/// one gets it, and only that one credential is ever signed: the others are refused
/// while it is being redeemed, or as already used, before anything is issued for them.
#[tokio::test(flavor = "multi_thread")]
async fn a_raced_approval_gives_one_credential_and_signs_no_other() {
    let (server, t) = server().await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let mut approvals = ApprovalsClient::new(ch.clone());
    let mut creds = CredentialsClient::new(ch.clone());
    let mut request = identity_change("task-race", "arn:aws:iam::1:role/race");
    request.credential = Some(pb::CredentialRequest {
        lifetime_seconds: 60,
    });
    let id = hold(&mut authz, &t.gateway, request.clone()).await;
    vote(&mut approvals, &t.alice, &id, true)
        .await
        .expect("approved");
    request.approval_id = id;
    let racers: Vec<_> = (0..16)
        .map(|_| {
            let (mut authz, r, token) = (authz.clone(), request.clone(), t.gateway.clone());
            tokio::spawn(async move { authz.authorize(bearer(&token, r)).await })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        match racer.await.expect("task") {
            Ok(r) => winners.push(r.into_inner()),
            Err(s) => assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let credential = winners[0]
        .credential
        .clone()
        .expect("the winner's credential");

    let events = |outcome: &str| {
        audit_records(&server.audit_db(), arbiter_audit::Kind::Credential, outcome)
            .into_iter()
            .map(|r| {
                let body = r.record.body_value();
                (
                    body["credentials"][0].as_str().unwrap_or("").to_owned(),
                    body,
                )
            })
            .collect::<Vec<_>>()
    };
    let issued = events("issued");
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0].0, credential.id);
    assert!(events("revoked").is_empty());
    assert!(
        introspect(&mut creds, &t.gateway, &credential.token)
            .await
            .active
    );
}

/// `[state] keep_days`: approvals closed longer ago than that are deleted from the
/// state database (at start, then hourly), after an admin record says how many; an
/// approval still open, or closed more recently, stays.
#[tokio::test(flavor = "multi_thread")]
async fn old_closed_approvals_are_purged_on_record() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    config.state_keep = Some(Duration::from_secs(86_400));
    let (old, recent, open);
    {
        let running = arbiter::server::start(&config).await.expect("starts");
        let ch = channel(&format!("http://{}", running.local_addr)).await;
        let mut authz = AuthorizerClient::new(ch.clone());
        let mut approvals = ApprovalsClient::new(ch.clone());
        let mut ids = Vec::new();
        for (task, role) in [("task-30", "arn:role/p"), ("task-31", "arn:role/q")] {
            let id = hold(&mut authz, &t.gateway, identity_change(task, role)).await;
            vote(&mut approvals, &t.alice, &id, false)
                .await
                .expect("rejected");
            ids.push(id);
        }
        open = hold(
            &mut authz,
            &t.gateway,
            identity_change("task-32", "arn:role/r"),
        )
        .await;
        (old, recent) = (ids[0].clone(), ids[1].clone());
        running.shutdown().await.expect("stops");
    }
    // `old` closed two days ago, as far as the state database knows.
    rusqlite::Connection::open(data.path().join("state.db"))
        .expect("state")
        .execute(
            "UPDATE approvals SET updated_micros = updated_micros - 2 * 86400000000 WHERE id = ?1",
            [&old],
        )
        .expect("backdate");

    let running = arbiter::server::start(&config).await.expect("restarts");
    let ch = channel(&format!("http://{}", running.local_addr)).await;
    let approvals = ApprovalsClient::new(ch.clone());
    let get = |id: String| {
        let mut approvals = approvals.clone();
        let token = t.alice.clone();
        async move {
            approvals
                .get_approval(bearer(&token, pb::GetApprovalRequest { id }))
                .await
                .map(|r| r.into_inner())
        }
    };
    let mut purged = false;
    for _ in 0..100 {
        if get(old.clone())
            .await
            .is_err_and(|s| s.code() == Code::NotFound)
        {
            purged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(purged, "the approval closed two days ago is still there");
    assert!(get(recent.clone()).await.is_ok());
    assert!(get(open.clone()).await.is_ok());
    let records = audit_records(
        &data.path().join("audit.db"),
        arbiter_audit::Kind::Admin,
        "state-purged",
    );
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].record.body_value()["approvals"], 1);
    // The purged approval's own records stay in the audit log.
    let steps = arbiter_audit::query(
        &data.path().join("audit.db"),
        &arbiter_audit::Filter {
            kind: Some(arbiter_audit::Kind::Approval),
            ..arbiter_audit::Filter::default()
        },
    )
    .expect("query");
    assert!(
        steps
            .iter()
            .any(|r| r.record.body_value()["approval_id"] == old.as_str())
    );
    running.shutdown().await.expect("stops");
}
