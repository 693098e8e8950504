//! The gRPC edge: decoding and validation of requests, encoding of decisions, the
//! services, and the one place where errors become `Status`es.

pub mod authorizer;
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
        }
    }

    /// The field at fault, when there is one.
    pub fn field_name(&self) -> &str {
        match self {
            Self::InvalidArgument { field, .. } => field,
            Self::UnknownSet(_) => "policy_set",
            Self::FailedPrecondition(_) | Self::Overloaded { .. } => "",
        }
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
