//! Envoy's external authorization, `envoy.service.auth.v3.Authorization/Check`, on
//! the gRPC port: a thin adapter onto the service's [`Decider`], so a service mesh or
//! edge proxy asks Arbiter without a new client. The mapping is `[envoy]`
//! ([`mapping`]); the answers:
//!
//! - allow: OK; the upstream request gets `x-arbiter-decision-id` and, when the
//!   request asked for one, the credential (`x-arbiter-credential`); the headers
//!   that asked for it or presented an approval are removed.
//! - deny: 403 with a JSON body of the decision id and the caller reasons.
//! - require-approval: 403 with the approval id in `x-arbiter-approval-id` and the
//!   body; after a human approves, the same request with that header is allowed once.
//! - a request that cannot be mapped: 400 (401 without a principal), naming what.
//!
//! Envoy itself is the caller (a token in its `initial_metadata`, or its client
//! certificate), with the `enforcer` role. Errors of Arbiter (overload, storage) are
//! gRPC errors: Envoy with `failure_mode_allow: false` then denies.

pub mod mapping;

use std::sync::Arc;

use arbiter_core::Outcome;
use arbiter_service::ServiceError;
use arbiter_service::auth::{Caller, Role};
use arbiter_service::pipeline::{Answer, Authorize, Decider};
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, HeaderAppendAction,
    HttpStatusCode,
};
use envoy_types::ext_authz::v3::{
    CheckRequestExt as _, CheckResponseExt as _, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
};
use serde_json::json;
use tonic::{Request, Response, Status};

use self::mapping::{Check, EnvoyConfig};
use crate::CallerOf as _;

/// Who may ask: Envoy, as an enforcement point.
const ENFORCERS: &[Role] = &[Role::Enforcer];
/// The header with the decision id, upstream and back to the client.
pub const DECISION_HEADER: &str = "x-arbiter-decision-id";

/// The `ext_authz` service.
#[derive(Debug, Clone)]
pub struct ExtAuthz {
    decider: Decider,
    config: Arc<EnvoyConfig>,
    approval_header: String,
    credential_request_header: String,
    credential_header: String,
}

impl ExtAuthz {
    /// The service deciding with `decider`, mapping checks with `config` (validated).
    pub fn new(decider: Decider, config: EnvoyConfig) -> Self {
        Self {
            decider,
            approval_header: config.approval_header(),
            credential_request_header: config.credential_request_header(),
            credential_header: config.credential_header(),
            config: Arc::new(config),
        }
    }

    /// As a tonic service.
    pub fn into_server(self) -> AuthorizationServer<Self> {
        AuthorizationServer::new(self)
    }

    async fn decide(&self, caller: &Caller, check: &CheckRequest) -> Result<CheckResponse, Status> {
        let http = check
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref());
        let Some(http) = http else {
            return Ok(denied(
                400,
                &json!({"error": "attributes.request.http", "message": "is required: only HTTP checks are answered"}),
            ));
        };
        let source_principal = check
            .attributes
            .as_ref()
            .and_then(|a| a.source.as_ref())
            .map_or("", |s| s.principal.as_str());
        let source_ip = check.get_client_address().map(String::as_str);
        let view = Check {
            method: &http.method,
            path: &http.path,
            host: &http.host,
            headers: &http.headers,
            source_principal,
            source_ip,
        };
        let request = match mapping::request(&self.config, &view) {
            Ok(r) => r,
            Err(u) => {
                let status = if u.unauthenticated { 401 } else { 400 };
                return Ok(denied(
                    status,
                    &json!({"error": u.field, "message": u.message}),
                ));
            }
        };
        let approval_id = match http.headers.get(&self.approval_header) {
            None => None,
            Some(id) if id.is_empty() => None,
            Some(id)
                if id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                Some(id.clone())
            }
            Some(_) => {
                return Ok(denied(
                    400,
                    &json!({"error": self.approval_header, "message": "is not an approval id"}),
                ));
            }
        };
        let credential = match http.headers.get(&self.credential_request_header) {
            None => None,
            Some(v) if v.is_empty() => Some(None),
            Some(v) => match v.parse::<u64>() {
                Ok(secs) if secs > 0 => Some(Some(std::time::Duration::from_secs(secs))),
                _ => {
                    return Ok(denied(
                        400,
                        &json!({"error": self.credential_request_header, "message": "is the credential's lifetime in seconds, or empty for the default"}),
                    ));
                }
            },
        };
        if credential.is_some() && request.intent.task_id.is_empty() {
            return Ok(denied(
                400,
                &json!({"error": "intent.task_id", "message": "is required when asking for a credential: credentials are bound to a task (map a header to [envoy.intent] task_id)"}),
            ));
        }
        let ask = Authorize {
            request,
            policy_set: self.config.policy_set.clone(),
            approval_id,
            explain: false,
            credential,
            probe: false,
        };
        match self.decider.decide(caller, ask).await {
            Ok(answer) => Ok(self.answer(&answer)),
            // The request's own problem: answered to the client, with what is wrong.
            Err(e @ ServiceError::InvalidArgument { .. }) => Ok(denied(
                400,
                &json!({"error": "request", "message": e.to_string()}),
            )),
            Err(
                e @ (ServiceError::ApprovalMismatch { .. }
                | ServiceError::ApprovalBusy { .. }
                | ServiceError::ApprovalClosed { .. }
                | ServiceError::ApprovalNotYours { .. }
                | ServiceError::NotFound { .. }),
            ) => Ok(denied(
                403,
                &json!({"outcome": "deny", "error": self.approval_header, "message": e.to_string()}),
            )),
            // Arbiter's or the caller's: a gRPC error, and Envoy fails closed.
            Err(e) => Err(crate::status(e)),
        }
    }

    fn answer(&self, answer: &Answer) -> CheckResponse {
        let d = &answer.decision;
        let reasons: Vec<_> = d
            .reasons
            .iter()
            .map(|r| json!({"code": r.code, "message": r.caller_message}))
            .collect();
        match d.outcome {
            Outcome::Allow => {
                // Overwritten, not appended: a client's own copy of these headers
                // never reaches the upstream (Envoy applies removals after additions,
                // so the credential header is removed only when none is issued).
                let overwrite = Some(HeaderAppendAction::OverwriteIfExistsOrAdd);
                let mut ok = OkHttpResponseBuilder::new();
                ok.add_header(DECISION_HEADER, d.id.clone(), overwrite, false)
                    .add_response_header(DECISION_HEADER, d.id.clone(), overwrite, false)
                    .remove_header(self.approval_header.clone())
                    .remove_header(self.credential_request_header.clone());
                match &answer.credential {
                    Some(c) => ok.add_header(
                        self.credential_header.clone(),
                        c.token.clone(),
                        overwrite,
                        false,
                    ),
                    None => ok.remove_header(self.credential_header.clone()),
                };
                let mut r = CheckResponse::with_status(Status::ok(""));
                r.set_http_response(ok);
                r
            }
            Outcome::Deny => {
                let body = json!({"decision_id": d.id, "outcome": "deny", "reasons": reasons});
                let mut r = denied(403, &body);
                add_denied_header(&mut r, DECISION_HEADER, &d.id);
                r
            }
            Outcome::RequireApproval => {
                let id = answer.approval_id.clone().unwrap_or_default();
                let body = json!({
                    "decision_id": d.id,
                    "outcome": "require-approval",
                    "approval_id": id,
                    "reasons": reasons,
                    "message": format!("held for human approval; once approved, repeat the request with the header {}: {id}", self.approval_header),
                });
                let mut r = denied(403, &body);
                add_denied_header(&mut r, DECISION_HEADER, &d.id);
                add_denied_header(&mut r, &self.approval_header, &id);
                r
            }
        }
    }
}

/// A denial Envoy answers the client with: `status` and a JSON body.
fn denied(status: u16, body: &serde_json::Value) -> CheckResponse {
    let (code, grpc) = match status {
        400 => (HttpStatusCode::BadRequest, Status::invalid_argument("")),
        401 => (HttpStatusCode::Unauthorized, Status::unauthenticated("")),
        _ => (HttpStatusCode::Forbidden, Status::permission_denied("")),
    };
    let mut d = DeniedHttpResponseBuilder::new();
    d.set_http_status(code)
        .add_header("content-type", "application/json", None, false)
        .set_body(body.to_string());
    let mut r = CheckResponse::with_status(grpc);
    r.set_http_response(d);
    r
}

fn add_denied_header(r: &mut CheckResponse, key: &str, value: &str) {
    use envoy_types::ext_authz::v3::pb::{HeaderValue, HeaderValueOption, HttpResponse};
    if let Some(HttpResponse::DeniedResponse(d)) = &mut r.http_response {
        #[allow(deprecated)]
        d.headers.push(HeaderValueOption {
            header: Some(HeaderValue {
                key: key.to_string(),
                value: value.to_string(),
                raw_value: Vec::new(),
            }),
            ..Default::default()
        });
    }
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let caller = self.decider.app().auth().caller_of(&request, ENFORCERS)?;
        let check = request.into_inner();
        Ok(Response::new(self.decide(&caller, &check).await?))
    }
}
