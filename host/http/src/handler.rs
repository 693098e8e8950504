//! One HTTP/1.1 connection of the AuthZEN door: routing, the caller, the body, the
//! answer.

use std::sync::Arc;

use arbiter_service::auth::{Caller, Peer, Presented, Role};
use arbiter_service::pipeline::Authorize;
use arbiter_service::{ErrorClass, ServiceError};
use bytes::Bytes;
use futures::StreamExt as _;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::{Map, Value as Json, json};

use crate::Door;
use crate::authzen::{self, Invalid};
use crate::body::read_json;
use crate::requests;

/// The largest request body: as the gRPC door's largest decoded message.
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// Items in one `evaluations` call, as the gRPC door's batch.
const MAX_EVALUATIONS: usize = 1000;
/// Bytes of an `X-Request-ID` that is echoed.
const MAX_REQUEST_ID_BYTES: usize = 256;

const EVALUATION: &str = "/access/v1/evaluation";
const EVALUATIONS: &str = "/access/v1/evaluations";
const METADATA: &str = "/.well-known/authzen-configuration";
/// Task handles: `/access/v1/requests/{id}`.
const TASKS: &str = "/access/v1/requests/";

pub(crate) type Answer = Response<Full<Bytes>>;

/// Serves one connection until it closes.
pub(crate) async fn connection<S>(io: S, peer: Peer, door: Arc<Door>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (door, peer) = (door.clone(), peer.clone());
        async move {
            Ok::<_, std::convert::Infallible>(
                if arbiter_console::Console::serves(req.uri().path()) {
                    door.console.answer(req, &peer).await
                } else {
                    use http_body_util::BodyExt as _;
                    route(&door, &peer, req).await.map(|b| b.boxed_unsync())
                },
            )
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
}

pub(crate) fn text(status: StatusCode, message: impl Into<String>) -> Answer {
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

pub(crate) fn bad(e: &Invalid) -> Answer {
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
    let base = base_url(door, req.headers());
    let path = req.uri().path().to_string();
    let mut answer = match (req.method(), path.as_str()) {
        (&Method::GET, METADATA) => metadata(&base),
        (&Method::GET, requests::JWKS) => json_answer(
            &serde_json::from_str(&door.decider.app().credentials().jwks()).unwrap_or_default(),
        ),
        (&Method::POST, EVALUATION | EVALUATIONS | requests::REQUESTS) => {
            match caller(door, peer, req.headers()) {
                Err(e) => refused(&e),
                Ok(caller) if path == requests::REQUESTS => submit(door, &caller, &base, req).await,
                Ok(caller) => evaluate(door, &caller, &base, req, path == EVALUATION).await,
            }
        }
        (&Method::GET, p) if p.starts_with(TASKS) => match caller(door, peer, req.headers()) {
            Err(e) => refused(&e),
            Ok(caller) => {
                match requests::status_of(door, &caller, &base, &p[TASKS.len()..]).await {
                    Ok(task) => json_answer(&task),
                    Err(problem) => problem_answer(&problem),
                }
            }
        },
        (_, METADATA | EVALUATION | EVALUATIONS | requests::REQUESTS | requests::JWKS) => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed on this endpoint",
        ),
        (_, p) if p.starts_with(TASKS) => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: a task is read with GET (cancellation is not offered)",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            format!(
                "not found: the AuthZEN endpoints are {EVALUATION}, {EVALUATIONS}, {METADATA}, {} and {}",
                requests::REQUESTS,
                requests::JWKS
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

/// The base URL the caller reached us by; a `Host` that is not a plain host[:port]
/// is not echoed into URLs.
fn base_url(door: &Door, headers: &HeaderMap) -> String {
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
    format!("{}://{host}", door.scheme)
}

fn metadata(base: &str) -> Answer {
    json_answer(&json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}{EVALUATION}"),
        "access_evaluations_endpoint": format!("{base}{EVALUATIONS}"),
        "access_request_endpoint": format!("{base}{}", requests::REQUESTS),
        "jwks_uri": format!("{base}{}", requests::JWKS),
        "capabilities": [requests::CAPABILITY],
    }))
}

fn problem_answer(p: &requests::Problem) -> Answer {
    let mut r = json_answer(&p.body());
    *r.status_mut() = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/problem+json"),
    );
    r
}

/// `POST /access/v1/requests`: an access request for a requestable denial.
async fn submit(door: &Door, caller: &Caller, base: &str, req: Request<Incoming>) -> Answer {
    let key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= crate::idempotency::MAX_KEY_BYTES => {
                Some(k.to_string())
            }
            _ => {
                return bad(&invalid_top(
                    "Idempotency-Key",
                    format!(
                        "must be 1-{} visible characters",
                        crate::idempotency::MAX_KEY_BYTES
                    ),
                ));
            }
        },
    };
    let (v, _held) = match read_json(door, req).await {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    match requests::submit(door, caller, base, key.as_deref(), &v).await {
        Ok((code, location, task)) => {
            let mut r = json_answer(&task);
            *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::ACCEPTED);
            if let Ok(l) = http::HeaderValue::from_str(&location) {
                r.headers_mut().insert(http::header::LOCATION, l);
            }
            r
        }
        Err(problem) => problem_answer(&problem),
    }
}

async fn evaluate(
    door: &Door,
    caller: &Caller,
    base: &str,
    req: Request<Incoming>,
    single: bool,
) -> Answer {
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
    let (v, _held) = match read_json(door, req).await {
        Ok(read) => read,
        Err(answer) => return answer,
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
        return match one(door, caller, base, &v, policy_set).await {
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
    if semantic == "execute_all" {
        // A few at a time, answers in order: their audit records then share commits
        // instead of each waiting for its own (as the gRPC door's batches).
        let pending: Vec<_> = items
            .iter()
            .map(|i| batch_item(door, caller, base, top, i, policy_set.clone()))
            .collect();
        let mut decided =
            futures::stream::iter(pending).buffered(arbiter_service::pipeline::BATCH_CONCURRENCY);
        while let Some(d) = decided.next().await {
            match d {
                Ok(d) => out.push(d),
                Err(e) => return refused(&e),
            }
        }
    } else {
        // One after the other: an item after the one that stops the batch is never
        // decided (nor recorded, nor held for approval).
        for i in items {
            let decision = match batch_item(door, caller, base, top, i, policy_set.clone()).await {
                Ok(d) => d,
                Err(e) => return refused(&e),
            };
            let permitted = decision["decision"] == true;
            out.push(decision);
            let stop = match semantic {
                "deny_on_first_deny" => !permitted,
                _ => permitted,
            };
            if stop {
                break;
            }
        }
    }
    json_answer(&json!({ "evaluations": out }))
}

/// One item of a batch: its decision (a bad item is a denied item with its reason),
/// or the error that fails the whole call (who is calling, capacity, durable state).
async fn batch_item(
    door: &Door,
    caller: &Caller,
    base: &str,
    top: &Map<String, Json>,
    item: &Json,
    policy_set: Option<String>,
) -> Result<Json, ServiceError> {
    let merged = authzen::merged(top, item);
    match one(door, caller, base, &merged, policy_set).await {
        Ok(d) => Ok(d),
        Err(Err(invalid)) => Ok(json!({
            "decision": false,
            "context": { "code": 400, "reason": invalid.to_string() },
        })),
        Err(Ok(e)) if e.class() != ErrorClass::InvalidArgument => Err(e),
        Err(Ok(e)) => Ok(json!({
            "decision": false,
            "context": { "code": 400, "reason": e.to_string() },
        })),
    }
}

pub(crate) fn invalid_top(field: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// One evaluation through the pipeline: the decision, or a mapping error (`Err(Err)`)
/// or a service error (`Err(Ok)`). An evaluation presenting `context.approval`
/// redeems it; one the approval does not apply to is decided as if it were absent,
/// and says why (the approval profile's `reason` and `next_action`).
async fn one(
    door: &Door,
    caller: &Caller,
    base: &str,
    v: &Json,
    policy_set: Option<String>,
) -> Result<Json, Result<ServiceError, Invalid>> {
    let (v, approval_id) = requests::split_approval(v).map_err(Err)?;
    let request = authzen::request(&v, door.default_privilege).map_err(Err)?;
    // Kept for a second decision without the approval only when one is presented.
    let without_approval = approval_id.as_ref().map(|_| Authorize {
        request: request.clone(),
        policy_set: policy_set.clone(),
        approval_id: None,
        explain: false,
        credential: None,
        probe: false,
    });
    let ask = Authorize {
        request,
        policy_set,
        approval_id: approval_id.clone(),
        explain: false,
        credential: None,
        probe: false,
    };
    let (answer, refusal) = match door.decider.decide(caller, ask).await {
        Ok(answer) => (answer, None),
        Err(e) => {
            let refusal = match &approval_id {
                Some(id) => requests::refusal(door, id, &e).await,
                None => None,
            };
            let (Some(refusal), Some(again)) = (refusal, without_approval) else {
                return Err(Ok(e));
            };
            let answer = door.decider.decide(caller, again).await.map_err(Ok)?;
            (answer, Some(refusal))
        }
    };
    let mut decision = authzen::decision(&answer);
    requests::annotate(door, caller, base, &v, &answer, &mut decision)
        .await
        .map_err(Ok)?;
    if let Some(refusal) = refusal {
        refusal.mark(&mut decision);
    }
    Ok(decision)
}
