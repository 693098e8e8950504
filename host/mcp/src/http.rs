//! Streamable HTTP mode: the gateway serves MCP at `/mcp` for any number of agents and
//! relays to an upstream MCP server's endpoint. Each agent session is its own task:
//! the gateway issues its own `Mcp-Session-Id` (bound to the identity that opened it)
//! and keeps the upstream's session id to itself. The agent's token never reaches the
//! upstream; a just-in-time credential does, as `Authorization: Bearer`. A session ends
//! with `DELETE`, or when idle too long; its task is then completed in Arbiter.

mod calls;
mod origin;
mod upstream;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};
use hyper::body::Incoming;
use serde_json::Value as Json;
use tokio::sync::mpsc;

use crate::gate::{Gateway, Session};
use crate::jsonrpc::{self, Kind};
use crate::jwt::Verifier;

/// The largest request body the gateway reads: far above any tool call an agent
/// makes, and a bound on what one request can make it hold.
const MAX_BODY_BYTES: usize = 4 << 20;

/// Most concurrent sessions: each holds a task and a little state until it ends.
const MAX_SESSIONS: usize = 10_000;

/// The session header of Streamable HTTP.
const SESSION: &str = "mcp-session-id";

/// Who the agents are.
#[derive(Debug)]
pub enum Identity {
    /// From each request's bearer token, verified.
    Verified(Verifier),
    /// One configured identity for every session (`--principal`).
    Configured(Json),
}

/// The HTTP gateway's settings.
#[derive(Debug)]
pub struct Options {
    /// Listen address.
    pub listen: String,
    /// Upstream endpoint URL.
    pub upstream: String,
    /// Who the agents are.
    pub identity: Identity,
    /// Idle sessions end after this long.
    pub idle: Duration,
}

type Body = BoxBody<Bytes, std::io::Error>;

pub(crate) struct Live {
    session: Arc<Session>,
    upstream_id: Mutex<Option<String>>,
    owner: String,
    seen: Mutex<Instant>,
    /// Requests being decided (held calls among them), by id: a cancellation, the
    /// agent going away or the session's end drops them.
    held: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
}

struct State {
    gw: Arc<Gateway>,
    up: upstream::Upstream,
    identity: Identity,
    sessions: Mutex<HashMap<String, Arc<Live>>>,
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn rpc_error(status: StatusCode, id: &Json, code: i64, message: &str) -> Response<Body> {
    full(
        status,
        "application/json",
        jsonrpc::error(id, code, message, None).to_string(),
    )
}

/// Serves until the process ends.
pub async fn serve(gw: Arc<Gateway>, options: Options) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&options.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on `{}`: {e}", options.listen))?;
    tracing::info!(listen = %listener.local_addr()?, upstream = %options.upstream, "MCP gateway listening (Streamable HTTP at /mcp)");
    let state = Arc::new(State {
        gw,
        up: upstream::Upstream::new(&options.upstream)?,
        identity: options.identity,
        sessions: Mutex::default(),
    });
    tokio::spawn(calls::sweep(state.clone(), options.idle));
    loop {
        let (stream, _) = listener.accept().await?;
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(state, req).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

/// The verified identity of a request: its claims and a key naming the owner.
fn identify(state: &State, req: &Request<Incoming>) -> Result<(Json, String), Box<Response<Body>>> {
    let claims = match &state.identity {
        Identity::Configured(c) => c.clone(),
        Identity::Verified(v) => {
            let token = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::trim);
            let refuse = |why: &str| {
                let mut r = rpc_error(
                    StatusCode::UNAUTHORIZED,
                    &Json::Null,
                    jsonrpc::INTERNAL,
                    &format!("unauthorized: {why}"),
                );
                if let Ok(v) = "Bearer error=\"invalid_token\"".parse() {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                r
            };
            let Some(token) = token else {
                return Err(Box::new(refuse("a bearer token is required")));
            };
            v.verify(token).map_err(|why| Box::new(refuse(&why)))?
        }
    };
    let owner = format!(
        "{}\n{}",
        claims["sub"],
        claims.get("client_id").unwrap_or(&Json::Null)
    );
    Ok((claims, owner))
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    if req.uri().path() != "/mcp" {
        return full(
            StatusCode::NOT_FOUND,
            "text/plain",
            "the MCP endpoint is /mcp\n",
        );
    }
    if !origin::allowed(req.headers()) {
        // MCP Streamable HTTP: servers must check Origin (DNS rebinding).
        return full(
            StatusCode::FORBIDDEN,
            "text/plain",
            "this Origin may not call the gateway\n",
        );
    }
    let (claims, owner) = match identify(&state, &req) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let live = req
        .headers()
        .get(SESSION)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .map(|id| {
            let l = state
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&id)
                .cloned();
            // Another identity's session does not exist, as far as this caller knows.
            (id, l.filter(|l| l.owner == owner))
        });
    if let Some((_, Some(l))) = &live {
        *l.seen.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
    match *req.method() {
        Method::POST => post(state, req, claims, owner, live).await,
        Method::GET => match live {
            Some((_, Some(l))) => {
                let upstream_id = l
                    .upstream_id
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                state.up.listen(upstream_id.as_deref(), req.headers()).await
            }
            _ => rpc_error(
                StatusCode::NOT_FOUND,
                &Json::Null,
                jsonrpc::INVALID_REQUEST,
                "unknown session",
            ),
        },
        Method::DELETE => match live {
            Some((id, Some(l))) => {
                state
                    .sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                calls::end(&state, &l).await;
                full(StatusCode::OK, "text/plain", "")
            }
            _ => rpc_error(
                StatusCode::NOT_FOUND,
                &Json::Null,
                jsonrpc::INVALID_REQUEST,
                "unknown session",
            ),
        },
        _ => full(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "POST, GET or DELETE\n",
        ),
    }
}

async fn post(
    state: Arc<State>,
    req: Request<Incoming>,
    claims: Json,
    owner: String,
    live: Option<(String, Option<Arc<Live>>)>,
) -> Response<Body> {
    let headers = req.headers().clone();
    let sse = headers
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return rpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &Json::Null,
                jsonrpc::INVALID_REQUEST,
                &format!("a body larger than {MAX_BODY_BYTES} bytes"),
            );
        }
    };
    let msg: Json = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                &Json::Null,
                jsonrpc::PARSE_ERROR,
                &format!("not JSON: {e}"),
            );
        }
    };
    let id = jsonrpc::id_of(&msg);
    let live = match (jsonrpc::kind(&msg), live) {
        (
            Kind::Request {
                method: "initialize",
            },
            None,
        ) => {
            let mut sessions = state.sessions.lock().unwrap_or_else(|e| e.into_inner());
            if sessions.len() >= MAX_SESSIONS {
                return rpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &id,
                    jsonrpc::INTERNAL,
                    "too many open sessions; end one with DELETE",
                );
            }
            let l = Arc::new(Live {
                session: Arc::new(Session::new(claims)),
                upstream_id: Mutex::new(None),
                owner,
                seen: Mutex::new(Instant::now()),
                held: Mutex::default(),
            });
            let key = uuid::Uuid::new_v4().to_string();
            sessions.insert(key.clone(), l.clone());
            tracing::info!(task_id = %l.session.task_id, "MCP session started (HTTP)");
            (key, l)
        }
        (
            Kind::Request {
                method: "initialize",
            },
            Some(_),
        ) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                &id,
                jsonrpc::INVALID_REQUEST,
                "initialize opens a session: send it without Mcp-Session-Id",
            );
        }
        (_, Some((key, Some(l)))) => (key, l),
        (_, Some((_, None))) => {
            return rpc_error(
                StatusCode::NOT_FOUND,
                &id,
                jsonrpc::INVALID_REQUEST,
                "unknown session: initialize a new one",
            );
        }
        (_, None) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                &id,
                jsonrpc::INVALID_REQUEST,
                "Mcp-Session-Id is required after initialize",
            );
        }
    };
    let (key, live) = live;
    let is_request = matches!(jsonrpc::kind(&msg), Kind::Request { .. });
    let is_list = matches!(
        jsonrpc::kind(&msg),
        Kind::Request {
            method: "tools/list"
        }
    );
    let is_init = matches!(
        jsonrpc::kind(&msg),
        Kind::Request {
            method: "initialize"
        }
    );
    if !is_request || is_init || !sse {
        // Buffered: notifications, responses, initialize, and agents that take JSON only.
        let quiet = |_: Json| {};
        return match calls::decide(&state, &live, msg, &headers, &quiet, std::future::pending())
            .await
        {
            Err(Json::Null) => full(StatusCode::ACCEPTED, "text/plain", ""),
            Err(answer) => {
                if is_init {
                    state
                        .sessions
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&key);
                }
                full(StatusCode::OK, "application/json", answer.to_string())
            }
            Ok((message, credential)) => {
                let mut r = state
                    .up
                    .relay_buffered(
                        &live,
                        &state.gw,
                        &message,
                        credential.as_deref(),
                        &headers,
                        is_list,
                    )
                    .await;
                if is_init && let Ok(v) = key.parse() {
                    r.headers_mut().insert(SESSION, v);
                }
                r
            }
        };
    }
    // Streamed (SSE): progress while a call is held, then the upstream's answer.
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        let progress = {
            let tx = tx.clone();
            move |n: Json| {
                let _ = tx.send(upstream::event(&n));
            }
        };
        match calls::decide(&state, &live, msg, &headers, &progress, tx.closed()).await {
            Err(Json::Null) => {}
            Err(answer) => {
                let _ = tx.send(upstream::event(&answer));
            }
            Ok((message, credential)) => {
                state
                    .up
                    .relay_streamed(
                        &live,
                        &state.gw,
                        &message,
                        credential.as_deref(),
                        &headers,
                        is_list,
                        &tx,
                    )
                    .await;
            }
        }
    });
    upstream::sse_response(rx)
}
