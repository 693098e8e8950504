//! One HTTP/1.1 connection of the AuthZEN door: routing, the caller, the body, the
//! answer.

use std::sync::Arc;

use arbiter_core::Outcome;
use arbiter_service::auth::{Caller, Peer, Presented, Role};
use arbiter_service::pipeline::Authorize;
use arbiter_service::{ErrorClass, ServiceError};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value as Json, json};

use crate::Door;
use crate::authzen::{self, Invalid};

/// The largest request body: as the gRPC door's largest decoded message.
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// Items in one `evaluations` call, as the gRPC door's batch.
const MAX_EVALUATIONS: usize = 1000;
/// Bytes of an `X-Request-ID` that is echoed.
const MAX_REQUEST_ID_BYTES: usize = 256;

const EVALUATION: &str = "/access/v1/evaluation";
const EVALUATIONS: &str = "/access/v1/evaluations";
const METADATA: &str = "/.well-known/authzen-configuration";

type Answer = Response<Full<Bytes>>;

/// Serves one connection until it closes.
pub(crate) async fn connection<S>(io: S, peer: Peer, door: Arc<Door>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (door, peer) = (door.clone(), peer.clone());
        async move { Ok::<_, std::convert::Infallible>(route(&door, &peer, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
}

fn text(status: StatusCode, message: impl Into<String>) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(message.into() + "\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json_answer(body: &Json) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn bad(e: &Invalid) -> Answer {
    text(StatusCode::BAD_REQUEST, e.to_string())
}

/// A service error as an HTTP status and message; internals never reach the caller.
fn refused(e: &ServiceError) -> Answer {
    let status = match e.class() {
        ErrorClass::InvalidArgument
        | ErrorClass::FailedPrecondition
        | ErrorClass::AlreadyExists => StatusCode::BAD_REQUEST,
        // An unknown policy set is named in a header the caller sent.
        ErrorClass::NotFound => StatusCode::BAD_REQUEST,
        ErrorClass::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorClass::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorClass::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        ErrorClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut r = text(status, e.to_string());
    if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        r.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
    }
    r
}

async fn route(door: &Door, peer: &Peer, req: Request<Incoming>) -> Answer {
    let request_id = req
        .headers()
        .get("x-request-id")
        .filter(|v| v.len() <= MAX_REQUEST_ID_BYTES)
        .cloned();
    let mut answer = match (req.method(), req.uri().path()) {
        (&Method::GET, METADATA) => metadata(door, req.headers()),
        (&Method::POST, path @ (EVALUATION | EVALUATIONS)) => {
            let single = path == EVALUATION;
            match caller(door, peer, req.headers()) {
                Err(e) => refused(&e),
                Ok(caller) => evaluate(door, &caller, req, single).await,
            }
        }
        (_, METADATA | EVALUATION | EVALUATIONS) => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed on this endpoint",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            format!(
                "not found: the AuthZEN endpoints are {EVALUATION}, {EVALUATIONS} and {METADATA}"
            ),
        ),
    };
    if let Some(id) = request_id {
        answer.headers_mut().insert("x-request-id", id);
    }
    answer
}

/// The caller, from the `Authorization` header and the connection, before the body
/// is read.
fn caller(door: &Door, peer: &Peer, headers: &HeaderMap) -> Result<Caller, ServiceError> {
    let presented = Presented::from_header(
        headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
    );
    door.decider
        .app()
        .auth()
        .authorize(presented, peer, &[Role::Enforcer])
}

fn metadata(door: &Door, headers: &HeaderMap) -> Answer {
    // The host the caller reached us by; a value that is not a plain host[:port] is
    // not echoed into URLs.
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let base = format!("{}://{host}", door.scheme);
    json_answer(&json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}{EVALUATION}"),
        "access_evaluations_endpoint": format!("{base}{EVALUATIONS}"),
    }))
}

async fn evaluate(door: &Door, caller: &Caller, req: Request<Incoming>, single: bool) -> Answer {
    let json_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return bad(&invalid_top("Content-Type", "must be application/json"));
    }
    let policy_set = match req.headers().get("x-arbiter-policy-set") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(s) if !s.is_empty() && s.len() <= arbiter_core::request_limits::MAX_NAME_BYTES => {
                Some(s.to_string())
            }
            _ => {
                return bad(&invalid_top(
                    "X-Arbiter-Policy-Set",
                    format!(
                        "must be a policy set name of 1-{} visible characters",
                        arbiter_core::request_limits::MAX_NAME_BYTES
                    ),
                ));
            }
        },
    };
    // The body's bytes are taken from the server's budget before it is read (all of
    // the limit when its length is not announced) and given back with the answer.
    let announced = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > MAX_BODY_BYTES) {
        return bad(&invalid_top(
            "body",
            format!("is more than {MAX_BODY_BYTES} bytes"),
        ));
    }
    let want = announced.unwrap_or(MAX_BODY_BYTES);
    if !door.budget.take(want) {
        let mut r = text(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "the server holds {} MiB of requests in flight, its limit: retry with backoff",
                door.budget.limit() >> 20
            ),
        );
        r.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
        return r;
    }
    let _held = Taken(&door.budget, want);
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return bad(&invalid_top(
                "body",
                format!("is more than {MAX_BODY_BYTES} bytes, or was cut off"),
            ));
        }
    };
    if body.is_empty() {
        return bad(&invalid_top("body", "is empty: send a JSON object"));
    }
    let v: Json = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return bad(&invalid_top(
                "body",
                format!(
                    "is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            ));
        }
    };
    let Some(top) = v.as_object() else {
        return bad(&invalid_top("body", "must be a JSON object"));
    };
    let items = match top.get("evaluations") {
        _ if single => None,
        None | Some(Json::Null) => None,
        Some(Json::Array(items)) if items.is_empty() => None,
        Some(Json::Array(items)) => Some(items),
        Some(_) => return bad(&invalid_top("evaluations", "must be a list")),
    };
    let Some(items) = items else {
        // One evaluation (the `evaluations` endpoint without a list behaves as one).
        return match one(door, caller, &v, policy_set).await {
            Ok(decision) => json_answer(&decision),
            Err(Err(invalid)) => bad(&invalid),
            Err(Ok(e)) => refused(&e),
        };
    };
    if items.len() > MAX_EVALUATIONS {
        return bad(&invalid_top(
            "evaluations",
            format!("{} items is more than {MAX_EVALUATIONS}", items.len()),
        ));
    }
    let semantic = match top
        .get("options")
        .and_then(|o| o.get("evaluations_semantic"))
    {
        None | Some(Json::Null) => "execute_all",
        Some(Json::String(s))
            if matches!(
                s.as_str(),
                "execute_all" | "deny_on_first_deny" | "permit_on_first_permit"
            ) =>
        {
            s.as_str()
        }
        Some(_) => {
            return bad(&invalid_top(
                "options.evaluations_semantic",
                "must be execute_all, deny_on_first_deny or permit_on_first_permit",
            ));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let merged = authzen::merged(top, item);
        let decision = match one(door, caller, &merged, policy_set.clone()).await {
            Ok(d) => d,
            // A bad item is a denied item with its reason; the batch goes on.
            Err(Err(invalid)) => json!({
                "decision": false,
                "context": { "code": 400, "reason": invalid.to_string() },
            }),
            // Who is calling, capacity, durable state: the whole call fails.
            Err(Ok(e)) if e.class() != ErrorClass::InvalidArgument => return refused(&e),
            Err(Ok(e)) => json!({
                "decision": false,
                "context": { "code": 400, "reason": e.to_string() },
            }),
        };
        let permitted = decision["decision"] == true;
        out.push(decision);
        let stop = match semantic {
            "deny_on_first_deny" => !permitted,
            "permit_on_first_permit" => permitted,
            _ => false,
        };
        if stop {
            break;
        }
    }
    json_answer(&json!({ "evaluations": out }))
}

/// Bytes taken from the budget, given back when dropped.
struct Taken<'a>(&'a arbiter_service::budget::Budget, usize);

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.0.give(self.1);
    }
}

fn invalid_top(field: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// One evaluation through the pipeline: the decision, or a mapping error (`Err(Err)`)
/// or a service error (`Err(Ok)`).
async fn one(
    door: &Door,
    caller: &Caller,
    v: &Json,
    policy_set: Option<String>,
) -> Result<Json, Result<ServiceError, Invalid>> {
    let request = authzen::request(v, door.default_privilege).map_err(Err)?;
    let ask = Authorize {
        request,
        policy_set,
        approval_id: None,
        explain: false,
        credential: None,
    };
    let answer = door.decider.decide(caller, ask).await.map_err(Ok)?;
    debug_assert!(matches!(
        answer.decision.outcome,
        Outcome::Allow | Outcome::Deny | Outcome::RequireApproval
    ));
    Ok(authzen::decision(&answer))
}
