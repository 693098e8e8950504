//! The gRPC edge: decoding and validation of requests, encoding of decisions, the
//! services, and the one place where errors become `Status`es.

pub mod admin;
pub mod approvals;
pub mod audit;
pub mod authorizer;
pub mod credentials;
pub mod decode;
pub mod encode;
#[doc(hidden)]
pub mod fuzz;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// An error a caller can act on. Every `Status` the API returns comes from here, so
/// no internal error text reaches a caller by accident.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// A field is missing or invalid.
    #[error("`{field}`: {message}")]
    InvalidArgument {
        /// The field's path, e.g. `principal.id` or `context[\"risk\"]`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The named policy set is not loaded.
    #[error("no policy set named `{0}` is loaded")]
    UnknownSet(String),
    /// The request needs a feature this server does not offer.
    #[error("{0}")]
    FailedPrecondition(String),
    /// No credentials, or credentials that prove nothing.
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    /// The caller is known but may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The named thing (approval, credential) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The caller already did this; nothing changed.
    #[error("{0}")]
    AlreadyExists(String),
    /// Durable state (database, audit log) cannot be written: the server fails closed
    /// rather than answer without a record.
    #[error("{0}")]
    Unavailable(String),
    /// Every sandbox is busy and the wait queue is full or too slow.
    #[error(
        "the server is at capacity ({capacity} evaluations in progress and the queue is full); retry with backoff"
    )]
    Overloaded {
        /// Concurrent evaluations allowed.
        capacity: usize,
    },
}

impl ApiError {
    /// An invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The gRPC code.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::UnknownSet(_) => Code::NotFound,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::Overloaded { .. } => Code::ResourceExhausted,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::Unavailable(_) => Code::Unavailable,
        }
    }

    /// The field at fault, when there is one.
    pub fn field_name(&self) -> &str {
        match self {
            Self::InvalidArgument { field, .. } => field,
            Self::UnknownSet(_) => "policy_set",
            _ => "",
        }
    }
}

impl From<arbiter_store::StoreError> for ApiError {
    fn from(e: arbiter_store::StoreError) -> Self {
        // The caller learns that state is unavailable; the operator's log has why.
        tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "state database failure");
        Self::Unavailable(
            "the state database cannot be read or written; the request was not carried out".into(),
        )
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
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
            _ => Status::new(e.code(), message),
        }
    }
}
