//! The AuthZEN access-request approval profile over real HTTP on loopback: a held
//! request is a requestable denial; submitting it returns a task; a human approves
//! over gRPC; the re-evaluation carrying the approval is allowed once. Refusals
//! first: wrong caller, wrong role, tampered or foreign binding, changed request,
//! reused idempotency key, expiry.

use arbiter::proto::approvals_client::ApprovalsClient;
use serde_json::{Value, json};

use crate::approvals::{AGENT, BOB, vote, with_tokens};
use crate::authzen::{JSON, http};
use crate::support::*;

/// The agent, acting for bob, attaches a role policy: held for approval (G1).
fn identity_change(resource: &str) -> Value {
    json!({
        "subject": {"type": "agent", "id": AGENT, "properties": {"team": "security"}},
        "action": {"name": "iam:AttachRolePolicy", "properties": {"privilege": "identity-change"}},
        "resource": {"type": "iam_role", "id": resource,
                     "properties": {"env": "prod", "owner_team": "security"}},
        "context": {
            "intent": {"purpose": "access-review", "task_id": "T-1", "ticket": "CHG-7"},
            "delegation": [{"type": "user", "id": BOB, "properties": {"team": "security"}}],
            "hour": 10, "source_ip": "10.0.0.5", "risk": 10, "mfa": true
        }
    })
}

struct Profile {
    server: TestServer,
    tokens: crate::approvals::Tokens,
}

impl Profile {
    async fn start(ttl: Option<std::time::Duration>) -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(data.path());
        let tokens = with_tokens(&mut config);
        if let Some(ttl) = ttl {
            config.approval_ttl = ttl;
        }
        config.http = Some(arbiter_http::settings::HttpSettings {
            listen: "127.0.0.1:0".parse().expect("addr"),
            default_privilege: arbiter_core::Privilege::Read,
            client_auth: arbiter_tls::ClientAuth::None,
        });
        let server = TestServer::start_config(config, data).await;
        Self { server, tokens }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.server.running.http_addr.expect("http")
    }

    /// `method path` with `token` (if any) and `body`: (status, headers, JSON body).
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, &str)],
        body: &Value,
    ) -> (u16, Vec<(String, String)>, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![JSON];
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        headers.extend_from_slice(extra);
        let text = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, headers, answer) = http(self.addr(), method, path, &headers, &text).await;
        let v = serde_json::from_str(&answer).unwrap_or(Value::String(answer));
        (status, headers, v)
    }

    async fn post(
        &self,
        token: Option<String>,
        body: Value,
        extra: Vec<(String, String)>,
    ) -> (u16, Vec<(String, String)>, Value) {
        let extra: Vec<(&str, &str)> = extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.call(
            "POST",
            "/access/v1/requests",
            token.as_deref(),
            &extra,
            &body,
        )
        .await
    }

    async fn evaluate(&self, token: &str, body: &Value) -> Value {
        let (status, _, d) = self
            .call("POST", "/access/v1/evaluation", Some(token), &[], body)
            .await;
        assert_eq!(status, 200, "{d}");
        d
    }
}

/// The submission a PEP builds from a requestable denial.
fn submission(evaluation: &Value, denied: &Value) -> Value {
    let ar = &denied["context"]["access_request"];
    json!({
        "subject": evaluation["subject"],
        "action": evaluation["action"],
        "resource": evaluation["resource"],
        "context": evaluation["context"],
        "denial": {
            "evaluation_id": denied["context"]["evaluation_id"],
            "expires_at": ar["expires_at"],
            "reason": denied["context"]["reason"],
            "binding_token": ar["binding_token"],
            "template": ar["template"],
        },
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_requestable_denial_is_requested_approved_and_redeemed_once() {
    let p = Profile::start(None).await;
    let t = &p.tokens;
    let addr = p.addr();
    let eval = identity_change("arn:acme:iam:prod:role/auditor");
    let denied = p.evaluate(&t.gateway, &eval).await;
    assert_eq!(denied["decision"], false, "{denied}");
    let ctx = &denied["context"];
    assert_eq!(ctx["reason"], "approval_required");
    assert!(ctx["evaluation_id"].is_string() && ctx["evaluated_at"].is_string());
    let ar = &ctx["access_request"];
    assert_eq!(
        ar["endpoint"],
        format!("http://{addr}/access/v1/requests"),
        "{ar}"
    );
    assert!(
        ar["expires_at"]
            .as_str()
            .expect("expires_at")
            .ends_with('Z')
    );
    let token = ar["binding_token"].as_str().expect("binding_token");
    assert_eq!(token.split('.').count(), 3, "a compact JWS");
    let submit = submission(&eval, &denied);

    // Refusals first.
    let post = |token: Option<&str>, body: &Value, extra: &[(&str, &str)]| {
        p.post(
            token.map(str::to_string),
            body.clone(),
            extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    assert_eq!(post(None, &submit, &[]).await.0, 401, "no token");
    assert_eq!(
        post(Some(&t.alice), &submit, &[]).await.0,
        403,
        "an approver is not an enforcement point"
    );
    let problem = |r: (u16, Vec<(String, String)>, Value)| {
        let ct = header(&r.1, "content-type").unwrap_or_default().to_string();
        assert_eq!(ct, "application/problem+json", "{}", r.2);
        (r.0, r.2["type"].as_str().unwrap_or_default().to_string())
    };
    let binding = "urn:openid:authzen:access-request:error:invalid_denial_binding";
    assert_eq!(
        problem(post(Some(&t.agent), &submit, &[]).await),
        (400, binding.to_string()),
        "another enforcement identity cannot request for this denial"
    );
    let mut tampered = submit.clone();
    let mut forged = token.to_string();
    forged.replace_range(forged.len() - 4.., "AAAA");
    tampered["denial"]["binding_token"] = forged.into();
    assert_eq!(
        problem(post(Some(&t.gateway), &tampered, &[]).await),
        (400, binding.to_string())
    );
    let mut other = submit.clone();
    other["resource"]["id"] = "arn:acme:iam:prod:role/admin".into();
    assert_eq!(
        problem(post(Some(&t.gateway), &other, &[]).await),
        (400, binding.to_string()),
        "a binding covers exactly the denied request"
    );
    let mut no_denial = submit.clone();
    no_denial.as_object_mut().expect("object").remove("denial");
    assert_eq!(
        problem(post(Some(&t.gateway), &no_denial, &[]).await),
        (400, binding.to_string())
    );
    let mut bundle = submit.clone();
    bundle["items"] = json!([{"resource": eval["resource"], "action": eval["action"]}]);
    assert_eq!(post(Some(&t.gateway), &bundle, &[]).await.0, 400);

    // Submitted: a pending task, the same one on a retry.
    let key = [("Idempotency-Key", "7b8d0f0d-65a1-4af1-9fd3-a684f08a5d13")];
    let (status, headers, created) = post(Some(&t.gateway), &submit, &key).await;
    assert_eq!(status, 202, "{created}");
    let task = &created["task"];
    assert_eq!(task["status"], "pending");
    let id = task["id"].as_str().expect("task id").to_string();
    let status_endpoint = format!("http://{addr}/access/v1/requests/{id}");
    assert_eq!(task["status_endpoint"], status_endpoint);
    assert_eq!(header(&headers, "location"), Some(status_endpoint.as_str()));
    let (status, _, again) = post(Some(&t.gateway), &submit, &key).await;
    assert_eq!((status, &again["task"]["id"]), (202, &task["id"]));
    let mut changed = submit.clone();
    changed["requested_access"] = json!({"requested_until": "2030-01-01T00:00:00Z"});
    assert_eq!(
        problem(post(Some(&t.gateway), &changed, &key).await),
        (
            409,
            "urn:openid:authzen:access-request:error:duplicate_request".to_string()
        )
    );
    // A submission-time augmentation of the context joins the same task.
    let mut justified = submit.clone();
    justified["context"]["business_justification"] = "quarterly access review".into();
    let (status, _, joined) = post(Some(&t.gateway), &justified, &[]).await;
    assert_eq!(
        (status, &joined["task"]["id"]),
        (202, &task["id"]),
        "{joined}"
    );

    // The task: pending, and only for the identity that asked.
    let path = format!("/access/v1/requests/{id}");
    let (status, _, polled) = p
        .call("GET", &path, Some(&t.gateway), &[], &Value::Null)
        .await;
    assert_eq!(
        (status, &polled["task"]["status"]),
        (200, &json!("pending"))
    );
    let (status, _, hidden) = p
        .call("GET", &path, Some(&t.agent), &[], &Value::Null)
        .await;
    assert_eq!(
        (status, &hidden["type"]),
        (
            404,
            &json!("urn:openid:authzen:access-request:error:unknown_task")
        )
    );

    // Presented while pending: not approved; retry later.
    let mut early = eval.clone();
    early["context"]["approval"] = json!({"id": id});
    let d = p.evaluate(&t.gateway, &early).await;
    assert_eq!(d["decision"], false, "{d}");
    assert_eq!(d["context"]["next_action"], "retry", "{d}");

    // A human approves.
    let mut approvals = ApprovalsClient::new(p.server.channel().await);
    let mut approved = vote(&mut approvals, &t.alice, &id, true)
        .await
        .expect("alice approves");
    if approved.approvals < approved.approvers_required {
        approved = vote(&mut approvals, &t.carol, &id, true)
            .await
            .expect("carol approves");
    }
    assert_eq!(approved.approvals, approved.approvers_required);
    let (_, _, done) = p
        .call("GET", &path, Some(&t.gateway), &[], &Value::Null)
        .await;
    assert_eq!(done["task"]["status"], "approved", "{done}");
    assert_eq!(done["result"]["mode"], "reevaluate");
    let approval = done["result"]["approval"].clone();
    assert_eq!(approval["id"], json!(id));
    assert!(approval["approved_until"].is_string() && approval["approved_at"].is_string());

    // Another enforcement identity presenting it gets nothing from it.
    let mut theirs = eval.clone();
    theirs["context"]["approval"] = approval.clone();
    let d = p.evaluate(&t.agent, &theirs).await;
    assert_eq!(d["decision"], false, "{d}");
    assert_eq!(d["context"]["reason"], "approval_unverifiable", "{d}");
    assert_eq!(d["context"]["next_action"], "none", "{d}");
    // Nor does it cover another request.
    let mut elsewhere = identity_change("arn:acme:iam:prod:role/admin");
    elsewhere["context"]["approval"] = approval.clone();
    let d = p.evaluate(&t.gateway, &elsewhere).await;
    assert_eq!(
        (&d["decision"], &d["context"]["reason"]),
        (&json!(false), &json!("out_of_scope")),
        "{d}"
    );

    // The re-evaluation carrying the approval unchanged is allowed, once.
    let mut retry = eval.clone();
    retry["context"]["approval"] = approval.clone();
    let d = p.evaluate(&t.gateway, &retry).await;
    assert_eq!(d["decision"], true, "{d}");
    assert_eq!(d["context"]["approval"]["id"], json!(id), "{d}");
    let d = p.evaluate(&t.gateway, &retry).await;
    assert_eq!(d["decision"], false, "single use: {d}");
    assert_eq!(d["context"]["reason"], "approval_expired", "{d}");
    assert_eq!(d["context"]["next_action"], "request", "{d}");
    assert!(
        d["context"]["access_request"]["binding_token"].is_string(),
        "a fresh requestable denial comes with `request`: {d}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_report_denied_and_expired_and_a_stale_denial_is_gone() {
    let p = Profile::start(Some(std::time::Duration::from_secs(2))).await;
    let t = &p.tokens;
    // Rejected by a human: denied.
    let eval = identity_change("arn:acme:iam:prod:role/reader");
    let denied = p.evaluate(&t.gateway, &eval).await;
    let (status, _, created) = p
        .call(
            "POST",
            "/access/v1/requests",
            Some(&t.gateway),
            &[],
            &submission(&eval, &denied),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["task"]["id"].as_str().expect("id").to_string();
    let mut approvals = ApprovalsClient::new(p.server.channel().await);
    vote(&mut approvals, &t.alice, &id, false)
        .await
        .expect("alice rejects");
    let path = format!("/access/v1/requests/{id}");
    let (_, _, task) = p
        .call("GET", &path, Some(&t.gateway), &[], &Value::Null)
        .await;
    assert_eq!(task["task"]["status"], "denied", "{task}");
    assert!(task.get("result").is_none(), "no result to enforce: {task}");

    // Left alone past its time: expired; its denial can no longer be requested.
    let eval = identity_change("arn:acme:iam:prod:role/writer");
    let denied = p.evaluate(&t.gateway, &eval).await;
    let submit = submission(&eval, &denied);
    let (status, _, created) = p
        .call(
            "POST",
            "/access/v1/requests",
            Some(&t.gateway),
            &[],
            &submit,
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["task"]["id"].as_str().expect("id").to_string();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let path = format!("/access/v1/requests/{id}");
    let (_, _, task) = p
        .call("GET", &path, Some(&t.gateway), &[], &Value::Null)
        .await;
    assert_eq!(task["task"]["status"], "expired", "{task}");
    let (status, _, gone) = p
        .call(
            "POST",
            "/access/v1/requests",
            Some(&t.gateway),
            &[],
            &submit,
        )
        .await;
    assert_eq!(
        (status, &gone["type"]),
        (
            410,
            &json!("urn:openid:authzen:access-request:error:expired_denial")
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metadata_advertises_the_profile_and_its_keys() {
    let p = Profile::start(None).await;
    let addr = p.addr();
    let (status, _, m) = p
        .call(
            "GET",
            "/.well-known/authzen-configuration",
            None,
            &[],
            &Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        m["access_request_endpoint"],
        format!("http://{addr}/access/v1/requests")
    );
    assert_eq!(
        m["capabilities"],
        json!(["urn:openid:authzen:capability:access-request"])
    );
    let (status, _, jwks) = p
        .call("GET", "/access/v1/jwks", None, &[], &Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(jwks["keys"][0]["kty"], "OKP", "{jwks}");
}
