//! The gRPC front door (`arbiter.v1`): decoding and validation of requests, encoding
//! of answers, one thin adapter per service onto `arbiter-service`, and the one place
//! where a service error becomes a `Status`. The generated code is `arbiter-proto`'s,
//! not re-exported here: the server side sees only these adapters.

pub mod admin;
pub mod approvals;
pub mod audit;
pub mod authorizer;
pub mod credentials;
pub mod decode;
pub mod encode;
pub mod envoy;
#[doc(hidden)]
pub mod fuzz;
pub mod gate;
pub mod health;
pub mod listen;
pub mod reflection;

// The generated code, kept behind the adapters: clients use `arbiter-proto` itself.
use arbiter_proto as proto;

use arbiter_service::auth::{Caller, Role};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The service's error, under the name the gRPC modules use for it.
pub use arbiter_service::ServiceError as ApiError;

/// The gRPC code of a service error.
pub fn code(e: &ApiError) -> Code {
    use arbiter_service::ErrorClass as C;
    match e.class() {
        C::InvalidArgument => Code::InvalidArgument,
        C::NotFound => Code::NotFound,
        C::AlreadyExists => Code::AlreadyExists,
        C::FailedPrecondition => Code::FailedPrecondition,
        C::Unauthenticated => Code::Unauthenticated,
        C::PermissionDenied => Code::PermissionDenied,
        C::Unavailable => Code::Unavailable,
        C::Overloaded => Code::ResourceExhausted,
    }
}

/// The one place a service error becomes a `Status`: its code, its caller-facing
/// message, and for an invalid field a `google.rpc.BadRequest` naming the field.
pub fn status(e: ApiError) -> Status {
    let message = e.to_string();
    match &e {
        ApiError::InvalidArgument {
            field,
            message: why,
        } => Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request_violation(field.clone(), why.clone()),
        ),
        _ => Status::new(code(&e), message),
    }
}

/// `?` for service results inside gRPC handlers.
pub trait OrStatus<T> {
    /// The result with its error as a `Status`.
    fn or_status(self) -> Result<T, Status>;
}

impl<T> OrStatus<T> for Result<T, ApiError> {
    fn or_status(self) -> Result<T, Status> {
        self.map_err(status)
    }
}

/// `.into()` for a service error where a `Status` is wanted.
pub trait IntoStatus {
    /// The error as a `Status`.
    fn into_status(self) -> Status;
}

impl IntoStatus for ApiError {
    fn into_status(self) -> Status {
        status(self)
    }
}

/// The caller of a gRPC request, who must hold one of `roles`: the `authorization`
/// metadata read into what the service understands, checked by its authenticator.
pub trait CallerOf {
    /// The caller, or the `Status` refusing it.
    fn caller_of<T>(&self, request: &tonic::Request<T>, roles: &[Role]) -> Result<Caller, Status>;
}

impl CallerOf for arbiter_service::auth::Authenticator {
    fn caller_of<T>(&self, request: &tonic::Request<T>, roles: &[Role]) -> Result<Caller, Status> {
        // Settled by the gate from the same headers and connection; a caller without
        // these roles goes the long way, so that its refusal is logged and counted.
        if let Some(gate::Authenticated(caller)) = request.extensions().get()
            && caller.has_any(roles)
        {
            return Ok(caller.clone());
        }
        self.authorize(presented(request.metadata()), &peer_of(request), roles)
            .map_err(status)
    }
}

/// What the connection proves: the remote address and, over mutual TLS, the identity
/// of the client certificate rustls verified during the handshake.
pub fn peer_of<T>(request: &tonic::Request<T>) -> arbiter_service::auth::Peer {
    peer_from(
        request.extensions().get::<TcpConnectInfo>(),
        request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>(),
    )
}

/// [`peer_of`] from the extensions of an HTTP request (the gate sees those).
pub(crate) fn peer_of_parts(extensions: &http::Extensions) -> arbiter_service::auth::Peer {
    peer_from(
        extensions.get::<TcpConnectInfo>(),
        extensions.get::<TlsConnectInfo<TcpConnectInfo>>(),
    )
}

fn peer_from(
    tcp: Option<&TcpConnectInfo>,
    tls: Option<&TlsConnectInfo<TcpConnectInfo>>,
) -> arbiter_service::auth::Peer {
    let addr = tcp
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| tls.and_then(|t| t.get_ref().remote_addr()));
    let certificate = tls
        .and_then(TlsConnectInfo::peer_certs)
        .and_then(|chain| chain.first().map(arbiter_tls::certificate_of));
    arbiter_service::auth::Peer {
        door: "grpc",
        addr,
        certificate,
    }
}

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// What the caller presented in the `authorization` metadata.
fn presented(metadata: &tonic::metadata::MetadataMap) -> arbiter_service::auth::Presented<'_> {
    arbiter_service::auth::Presented::from_header(
        metadata.get("authorization").map(|v| v.as_bytes()),
    )
}
