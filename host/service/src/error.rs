//! The one error type of the service: what a caller can act on, with structured
//! fields. Each front door maps it to its own wire form (gRPC status, HTTP status) in
//! one place, so no internal error text reaches a caller by accident.

/// An error a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
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
    /// The request needs a feature this server does not offer, or a state it is not in.
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

impl ServiceError {
    /// An invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            message: message.into(),
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

impl From<arbiter_store::StoreError> for ServiceError {
    fn from(e: arbiter_store::StoreError) -> Self {
        // The caller learns that state is unavailable; the operator's log has why.
        tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "state database failure");
        Self::Unavailable(
            "the state database cannot be read or written; the request was not carried out".into(),
        )
    }
}
