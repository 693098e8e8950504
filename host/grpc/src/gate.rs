//! The gate in front of every gRPC service (a tower layer on the server). It runs on
//! the request's headers and connection, before a byte of the body is read:
//!
//! - **Who is calling** is settled first: an unknown token, an unmapped client
//!   certificate or a missing role is refused at once, so an unauthenticated caller
//!   cannot make the server read (and hold) a 60 MiB `LoadSet` body. Policy
//!   administration needs the admin role, decisions the enforcer role; the other
//!   services check their mixed roles in their handlers, after the gate made sure the
//!   caller is someone (the public key set excepted).
//! - **Bytes in flight** are bounded: every request body counts against one budget
//!   for the whole server while it is read and until the handler has answered (the
//!   response headers are back); a body that would exceed it is refused with
//!   `RESOURCE_EXHAUSTED` instead of being buffered. The budget is never smaller than
//!   the largest message one call may send, so every valid call can get through.
//! - **Undecodable bodies** (random bytes, truncated protobuf, invalid UTF-8) are
//!   answered `INVALID_ARGUMENT` without the decoder's own text, as the API promises.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use arbiter_service::auth::{Authenticator, Role};
use http_body::Frame;
use tonic::Status;
use tonic::body::Body;

/// Who may call a method, before its body is read.
fn needs(path: &str) -> Option<&'static [Role]> {
    const ADMIN: &[Role] = &[Role::Admin];
    const ENFORCER: &[Role] = &[Role::Enforcer];
    const ANYONE: &[Role] = &[];
    let service = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    match service {
        "arbiter.v1.PolicyAdmin" => Some(ADMIN),
        "arbiter.v1.Authorizer" | "envoy.service.auth.v3.Authorization" => Some(ENFORCER),
        // Public keys are public: resource servers fetch them without a token.
        _ if path == "/arbiter.v1.Credentials/GetJwks" => None,
        s if s.starts_with("arbiter.v1.") => Some(ANYONE),
        // Health and reflection.
        _ => None,
    }
}

pub use arbiter_service::budget::{Budget, MIN_BUDGET_MIB};

/// What one request holds of the budget, given back when both its body and its
/// answer are gone.
#[derive(Debug)]
struct Held {
    budget: Arc<Budget>,
    bytes: AtomicUsize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.give(self.bytes.load(Ordering::Relaxed));
    }
}

/// A request body counted against the budget as it is read.
struct Counted {
    inner: Body,
    held: Arc<Held>,
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            let n = data.len();
            if !self.held.budget.take(n) {
                return Poll::Ready(Some(Err(Status::resource_exhausted(format!(
                    "the server holds {} MiB of requests in flight, its limit: retry with backoff",
                    self.held.budget.limit() >> 20
                )))));
            }
            self.held.bytes.fetch_add(n, Ordering::Relaxed);
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The caller the gate settled, for the handler.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated(pub(crate) arbiter_service::auth::Caller);

/// The gate as a tower layer (see the module docs).
#[derive(Debug, Clone)]
pub struct GateLayer {
    auth: Authenticator,
    budget: Arc<Budget>,
}

impl GateLayer {
    /// Checks callers with `auth`; bounds bodies in flight by `budget`.
    pub fn new(auth: Authenticator, budget: Arc<Budget>) -> Self {
        Self { auth, budget }
    }
}

impl<S> tower::Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Gate {
            inner,
            auth: self.auth.clone(),
            budget: self.budget.clone(),
        }
    }
}

/// The gate around one service stack.
#[derive(Debug, Clone)]
pub struct Gate<S> {
    inner: S,
    auth: Authenticator,
    budget: Arc<Budget>,
}

type Answer<E> = Pin<Box<dyn Future<Output = Result<http::Response<Body>, E>> + Send>>;

impl<S> tower::Service<http::Request<Body>> for Gate<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Answer<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        if let Some(roles) = needs(request.uri().path()) {
            let presented = arbiter_service::auth::Presented::from_header(
                request.headers().get("authorization").map(|v| v.as_bytes()),
            );
            let peer = crate::peer_of_parts(request.extensions());
            let checked = if roles.is_empty() {
                self.auth.known(presented, &peer)
            } else {
                self.auth.authorize(presented, &peer, roles)
            };
            match checked {
                // The handler reuses it rather than authenticating again.
                Ok(caller) => {
                    request.extensions_mut().insert(Authenticated(caller));
                }
                Err(e) => {
                    // Answered without reading the body; hyper discards what was sent.
                    let response = crate::status(e).into_http::<Body>();
                    return Box::pin(async move { Ok(response) });
                }
            }
        }
        let held = Arc::new(Held {
            budget: self.budget.clone(),
            bytes: AtomicUsize::new(0),
        });
        let request = request.map(|inner| {
            Body::new(Counted {
                inner,
                held: held.clone(),
            })
        });
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            undecodable_is_invalid_argument(response.headers_mut());
            drop(held);
            Ok(response)
        })
    }
}

/// tonic answers a body it cannot decode with `INTERNAL` and the decoder's text;
/// the caller sent something malformed, which is `INVALID_ARGUMENT`.
fn undecodable_is_invalid_argument(headers: &mut http::HeaderMap) {
    let internal = headers.get("grpc-status").is_some_and(|s| s == "13");
    let undecodable = headers
        .get("grpc-message")
        .is_some_and(|m| m.as_bytes().starts_with(b"failed%20to%20decode"));
    if internal && undecodable {
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
        headers.insert(
            "grpc-message",
            http::HeaderValue::from_static(
                "the%20request%20body%20is%20not%20a%20valid%20protobuf%20message%20of%20this%20method%27s%20type%20%28truncated%2C%20wrong%20type%20or%20invalid%20UTF-8%29",
            ),
        );
    }
}
