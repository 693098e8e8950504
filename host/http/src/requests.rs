//! The OpenID AuthZEN access-request approval profile on Arbiter's approvals.
//!
//! A `require-approval` decision is a *requestable denial*: `decision: false` with
//! `context.access_request`, whose `binding_token` is a JWS (EdDSA, typed
//! `arbiter-denial+jwt`, signed with the credential key published at
//! `/access/v1/jwks`) that binds the approval Arbiter already holds to the denied
//! evaluation: the request digest, the context members it had, the policy set, the
//! enforcement identity that asked, and the expiry. Submitting it
//! (`POST /access/v1/requests`) joins that approval and returns it as the task;
//! `GET /access/v1/requests/{id}` reports it in the profile's states. After humans
//! approve, an evaluation carrying `context.approval` redeems it, exactly as a gRPC
//! redemption does (same digest, same set version, same enforcement identity, once).
//! A presented approval that does not apply is evaluated as absent, with the
//! profile's `reason` and `next_action`. Documented in `docs/authzen.md`.

use std::borrow::Cow;

use arbiter_core::{Outcome, clock::rfc3339};
use arbiter_service::ServiceError;
use arbiter_service::approvals::approval_digest;
use arbiter_service::auth::Caller;
use arbiter_service::pipeline::Answer;
use arbiter_store::{Approval, ApprovalState};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::Door;
use crate::authzen::{self, Invalid};

/// Where access requests are submitted, and tasks read (`/{id}`).
pub(crate) const REQUESTS: &str = "/access/v1/requests";
/// The JWK Set that verifies binding tokens (and Arbiter's credentials).
pub(crate) const JWKS: &str = "/access/v1/jwks";
/// The profile's capability, advertised in the metadata.
pub(crate) const CAPABILITY: &str = "urn:openid:authzen:capability:access-request";
/// The JWS type of a denial binding: never accepted as a credential, nor the reverse.
const BINDING_TYPE: &str = "arbiter-denial+jwt";
/// The one workflow a requestable denial names: Arbiter's human approval.
const TEMPLATE: &str = "arbiter-approval";

const PROBLEM: &str = "urn:openid:authzen:access-request:error:";

/// What a binding token says (kept short: it travels in every requestable denial).
#[derive(Debug, Serialize, Deserialize)]
struct Binding {
    iss: String,
    aud: String,
    /// The approval Arbiter holds for the denied request.
    apr: String,
    /// The denied evaluation (Arbiter's decision id).
    eid: String,
    /// The approval digest of the denied request.
    dig: String,
    /// The members of the denied evaluation's `context`.
    ctx: Vec<String>,
    /// The enforcement identity (or group) that asked.
    hld: String,
    iat: i64,
    exp: i64,
}

/// `context.approval.id`, if the evaluation presents one, and the evaluation without
/// it (the approval reference is not part of the request the approval covers).
pub(crate) fn split_approval(v: &Json) -> Result<(Cow<'_, Json>, Option<String>), Invalid> {
    let Some(approval) = v.get("context").and_then(|c| c.get("approval")) else {
        return Ok((Cow::Borrowed(v), None));
    };
    let id = approval
        .get("id")
        .and_then(Json::as_str)
        .filter(|id| !id.is_empty() && id.len() <= arbiter_core::request_limits::MAX_ID_BYTES)
        .ok_or_else(|| Invalid {
            field: "context.approval.id".into(),
            message: "must be the approval id of a task's result (a non-empty string)".into(),
        })?;
    let mut v = v.clone();
    if let Some(context) = v.get_mut("context").and_then(Json::as_object_mut) {
        context.remove("approval");
    }
    Ok((Cow::Owned(v), Some(id.to_string())))
}

/// The profile's members on an evaluation's answer: for a held request the
/// requestable denial; for a redeemed approval, `context.approval`.
pub(crate) async fn annotate(
    door: &Door,
    caller: &Caller,
    base: &str,
    evaluation: &Json,
    answer: &Answer,
    decision: &mut Json,
) -> Result<(), ServiceError> {
    let d = &answer.decision;
    let Some(id) = &answer.approval_id else {
        return Ok(());
    };
    let app = door.decider.app();
    let approval = app.approvals().get(id).await?;
    let context = &mut decision["context"];
    context["evaluation_id"] = d.id.as_str().into();
    context["evaluated_at"] = rfc3339(app.clock().now_micros()).into();
    match d.outcome {
        Outcome::RequireApproval => {
            let now = app.clock().now_secs();
            let exp = approval.new.expires_micros.div_euclid(1_000_000);
            let issuer = app.credentials().config().issuer.clone();
            let binding = Binding {
                iss: issuer.clone(),
                aud: issuer,
                apr: id.clone(),
                eid: d.id.clone(),
                dig: approval.new.request_digest.clone(),
                ctx: context_members(evaluation),
                hld: app.auth().holder_of(caller),
                iat: now,
                exp,
            };
            let token = app.credentials().sign_statement(BINDING_TYPE, &binding)?;
            context["reason"] = "approval_required".into();
            context["access_request"] = json!({
                "endpoint": format!("{base}{REQUESTS}"),
                "template": TEMPLATE,
                "expires_at": rfc3339(approval.new.expires_micros),
                "binding_token": token,
                "display": {
                    "title": "Human approval required",
                    "description": approvers_text(&approval),
                },
            });
        }
        Outcome::Allow => context["approval"] = approval_result(&approval),
        Outcome::Deny => {}
    }
    Ok(())
}

fn context_members(evaluation: &Json) -> Vec<String> {
    evaluation
        .get("context")
        .and_then(Json::as_object)
        .map(|c| c.keys().cloned().collect())
        .unwrap_or_default()
}

fn approvers_text(a: &Approval) -> String {
    format!(
        "{} of {} approvals given; approvers decide with `arbiter approvals` or the Approvals API",
        a.approvals(),
        a.new.approvers_required
    )
}

/// Why a presented approval does not apply, as the profile's re-evaluation `reason`
/// and `next_action`; `None` when `e` is not about the approval (it is then the
/// evaluation's error).
pub(crate) async fn refusal(door: &Door, id: &str, e: &ServiceError) -> Option<Refusal> {
    let unverifiable = Refusal::new("approval_unverifiable", "none");
    match e {
        ServiceError::NotFound {
            kind: "approval", ..
        }
        | ServiceError::ApprovalNotYours { .. } => Some(unverifiable),
        ServiceError::ApprovalBusy { .. } => {
            Some(Refusal::new("urn:arbiter:reason:approval-in-use", "retry").after(1))
        }
        ServiceError::ApprovalClosed { state, .. } => Some(Refusal::of_state(*state)),
        ServiceError::ApprovalMismatch { .. } => {
            let Ok(a) = door.decider.app().approvals().get(id).await else {
                return Some(unverifiable);
            };
            Some(match a.state {
                // Approved, but for another request, or under another version of the
                // rules: a new request is needed either way.
                ApprovalState::Approved => Refusal::new("out_of_scope", "request"),
                state => Refusal::of_state(state),
            })
        }
        _ => None,
    }
}

/// The profile's answer to a re-evaluation whose approval did not apply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refusal {
    reason: &'static str,
    next_action: &'static str,
    retry_after: Option<u32>,
}

impl Refusal {
    fn new(reason: &'static str, next_action: &'static str) -> Self {
        Self {
            reason,
            next_action,
            retry_after: None,
        }
    }

    fn after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    fn of_state(state: ApprovalState) -> Self {
        match state {
            ApprovalState::Pending => {
                Self::new("urn:arbiter:reason:approval-pending", "retry").after(10)
            }
            ApprovalState::Rejected => Self::new("urn:arbiter:reason:approval-rejected", "none"),
            // Used (approvals are single-use) or past its time: request again.
            ApprovalState::Consumed | ApprovalState::Expired => {
                Self::new("approval_expired", "request")
            }
            ApprovalState::Approved => Self::new("out_of_scope", "request"),
        }
    }

    /// Marks `decision` (the evaluation without the approval) with this refusal. An
    /// allow stands: the rules allow without it. A deny is final (`none`), and a
    /// `request` is only offered with a fresh requestable denial.
    pub(crate) fn mark(&self, decision: &mut Json) {
        if decision["decision"] == true {
            return;
        }
        let context = &mut decision["context"];
        let fresh_request = context.get("access_request").is_some();
        let next = match self.next_action {
            "request" if !fresh_request => "none",
            _ if context["outcome"] == "deny" => "none",
            n => n,
        };
        context["reason"] = self.reason.into();
        context["next_action"] = next.into();
        if let (Some(s), "retry") = (self.retry_after, next) {
            context["retry_after"] = s.into();
        }
    }
}

/// The `approval` of a task's result, and of a redeemed evaluation.
fn approval_result(a: &Approval) -> Json {
    let mut approval = json!({
        "id": a.new.id,
        "approved_until": rfc3339(a.new.expires_micros),
    });
    if let Some(at) = a
        .votes
        .iter()
        .filter(|v| v.approve)
        .map(|v| v.at_micros)
        .max()
    {
        approval["approved_at"] = rfc3339(at).into();
    }
    approval
}

/// The profile's task status for an approval's state.
fn status(state: ApprovalState) -> &'static str {
    match state {
        ApprovalState::Pending => "pending",
        // A used approval stays approved: terminal states do not change. Presenting
        // it again answers `approval_expired`.
        ApprovalState::Approved | ApprovalState::Consumed => "approved",
        ApprovalState::Rejected => "denied",
        ApprovalState::Expired => "expired",
    }
}

/// The task handle (and its result once approved) for approval `a`.
fn task(base: &str, a: &Approval) -> Json {
    let id = &a.new.id;
    let required = a.new.approvers_required.max(1);
    let mut description = approvers_text(a);
    if let Some(by) = &a.consumed_by {
        description = format!("approved and used by decision {by}; approvals are single-use");
    }
    let mut out = json!({
        "task": {
            "id": id,
            "status": status(a.state),
            "status_endpoint": format!("{base}{REQUESTS}/{id}"),
            "progress": {
                "current_step": (a.approvals() + 1).min(required),
                "total_steps": required,
                "step_name": "human_approval",
            },
            "display": { "title": "Human approval", "description": description },
        }
    });
    if matches!(a.state, ApprovalState::Approved | ApprovalState::Consumed) {
        out["result"] = json!({ "mode": "reevaluate", "approval": approval_result(a) });
    }
    out
}

/// An error of the profile, as RFC 9457 problem details.
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) status: u16,
    pub(crate) kind: &'static str,
    pub(crate) detail: String,
}

impl Problem {
    fn new(status: u16, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            detail: detail.into(),
        }
    }

    fn binding(detail: impl Into<String>) -> Self {
        Self::new(400, "invalid_denial_binding", detail)
    }

    /// The body: `type` is the profile's URN (or `about:blank` for a plain 400).
    pub(crate) fn body(&self) -> Json {
        let kind = if self.kind.is_empty() {
            "about:blank".to_string()
        } else {
            format!("{PROBLEM}{}", self.kind)
        };
        json!({
            "type": kind,
            "title": self.kind.replace('_', " "),
            "status": self.status,
            "detail": self.detail,
        })
    }
}

/// A submitted access request, answered with its task: the status code, the
/// `Location`, and the body.
pub(crate) async fn submit(
    door: &Door,
    caller: &Caller,
    base: &str,
    idempotency_key: Option<&str>,
    body: &Json,
) -> Result<(u16, String, Json), Problem> {
    let top = body
        .as_object()
        .ok_or_else(|| Problem::new(400, "", "`body`: must be a JSON object"))?;
    if top.contains_key("items") {
        return Err(Problem::new(
            400,
            "",
            "`items`: bundled access requests are not supported; submit each requestable denial on its own",
        ));
    }
    let denial = top.get("denial").and_then(Json::as_object).ok_or_else(|| {
        Problem::binding("`denial`: required, with the binding_token of the denied evaluation")
    })?;
    let token = denial
        .get("binding_token")
        .and_then(Json::as_str)
        .ok_or_else(|| {
            Problem::binding("`denial.binding_token`: required; Arbiter binds an access request to its denial with the token alone (an evaluation_id is for audit)")
        })?;
    let app = door.decider.app();
    let issuer = &app.credentials().config().issuer;
    let binding: Binding = app
        .credentials()
        .verify_statement(BINDING_TYPE, token)
        .filter(|b: &Binding| b.iss == *issuer && b.aud == *issuer)
        .ok_or_else(|| {
            Problem::binding("`denial.binding_token`: not a binding this deployment signed")
        })?;
    if binding.exp <= app.clock().now_secs() {
        return Err(Problem::new(
            410,
            "expired_denial",
            "the requestable denial has expired: evaluate again for a fresh one",
        ));
    }
    let holder = app.auth().holder_of(caller);
    if binding.hld != holder {
        return Err(Problem::binding(
            "the denial was given to another enforcement identity; only it may request access for it",
        ));
    }
    // The request as submitted, with only the context members the denied evaluation
    // had (later members are submission-time augmentations, not part of the binding).
    let mut evaluation = Map::new();
    for key in ["subject", "action", "resource"] {
        if let Some(v) = top.get(key) {
            evaluation.insert(key.into(), v.clone());
        }
    }
    if let Some(context) = top.get("context").and_then(Json::as_object) {
        let kept: Map<String, Json> = context
            .iter()
            .filter(|(k, _)| binding.ctx.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        evaluation.insert("context".into(), Json::Object(kept));
    }
    let request = authzen::request(&Json::Object(evaluation), door.default_privilege)
        .map_err(|e| Problem::new(400, "", e.to_string()))?;
    if approval_digest(&request, None) != binding.dig {
        return Err(Problem::binding(
            "the submitted subject, action, resource and context differ from the denied evaluation's",
        ));
    }
    if let Some(key) = idempotency_key {
        door.idempotency
            .claim(&holder, key, body, &binding.apr, app.clock().now_secs())
            .map_err(|()| {
                Problem::new(
                    409,
                    "duplicate_request",
                    "this Idempotency-Key was used with a different submission",
                )
            })?;
    }
    let approval = app
        .approvals()
        .get(&binding.apr)
        .await
        .map_err(|e| Problem::new(503, "", e.to_string()))?;
    let answer = task(base, &approval);
    let code = if approval.state == ApprovalState::Pending {
        202
    } else {
        201
    };
    let location = format!("{base}{REQUESTS}/{}", approval.new.id);
    Ok((code, location, answer))
}

/// The task `id`, for the enforcement identity that requested it.
pub(crate) async fn status_of(
    door: &Door,
    caller: &Caller,
    base: &str,
    id: &str,
) -> Result<Json, Problem> {
    let unknown = || {
        Problem::new(
            404,
            "unknown_task",
            "no such task for this caller: task handles are held by the enforcement identity that asked",
        )
    };
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !valid {
        return Err(unknown());
    }
    let app = door.decider.app();
    let approval = match app.approvals().get(id).await {
        Ok(a) => a,
        Err(ServiceError::NotFound { .. }) => return Err(unknown()),
        Err(e) => return Err(Problem::new(503, "", e.to_string())),
    };
    let holder = app.auth().holder_of(caller);
    if !approval.new.held_by.is_empty() && approval.new.held_by != holder {
        return Err(unknown());
    }
    Ok(task(base, &approval))
}

#[cfg(test)]
mod tests;
