//! The one error type of the service: what a caller can act on, with structured
//! fields. Each front door maps it to its own wire form (gRPC status, HTTP status) in
//! one place ([`ServiceError::class`] says which family each variant is), so no
//! internal error text reaches a caller by accident.

use arbiter_store::ApprovalState;

use crate::auth::Role;

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
    /// The named thing does not exist.
    #[error("no {kind} `{id}`")]
    NotFound {
        /// What was looked for: `approval`, `credential`...
        kind: &'static str,
        /// Its id, as given.
        id: String,
    },
    /// An approval that can no longer be voted on or redeemed.
    #[error("approval `{id}` is {state}: no longer open", state = state.as_str())]
    ApprovalClosed {
        /// The approval.
        id: String,
        /// Its state now.
        state: ApprovalState,
    },
    /// An approval being redeemed by another request at this moment.
    #[error("approval `{id}` is being used by another request right now; approvals are single-use")]
    ApprovalBusy {
        /// The approval.
        id: String,
    },
    /// An approval presented with a request it does not cover.
    #[error("approval `{id}` {reason}")]
    ApprovalMismatch {
        /// The approval.
        id: String,
        /// What differs.
        reason: String,
    },
    /// An approval held by another enforcement identity (or group): only it redeems.
    #[error(
        "permission denied: approval `{id}` was held by another enforcement identity; only that identity (or its group) may redeem it"
    )]
    ApprovalNotYours {
        /// The approval.
        id: String,
    },
    /// The person already voted on this approval.
    #[error("`{approver}` already voted on approval `{id}`; a person counts once")]
    AlreadyVoted {
        /// The approval.
        id: String,
        /// Who voted.
        approver: String,
    },
    /// The caller does not hold any of the roles the call needs.
    #[error("{}", missing_role(caller.as_deref(), needed))]
    MissingRole {
        /// The authenticated caller, or `None` for an anonymous one.
        caller: Option<String>,
        /// Any one of these would do.
        needed: Vec<Role>,
    },
    /// A verified client certificate whose identity no `[[auth.peers]]` entry maps.
    #[error(
        "permission denied: the client certificate proves `{id}`, which no [[auth.peers]] entry maps to a role"
    )]
    UnmappedCertificate {
        /// The certificate's SPIFFE ID or subject (at most 128 bytes of it).
        id: String,
    },
    /// A bearer token and a client certificate that name two identities.
    #[error(
        "permission denied: the bearer token is `{token}`'s but the client certificate proves `{certificate}`: one call, one identity"
    )]
    IdentityMismatch {
        /// The token's identity.
        token: String,
        /// The certificate's identity.
        certificate: String,
    },
    /// The request needs a feature this server does not offer, or a state it is not in.
    #[error("{0}")]
    FailedPrecondition(String),
    /// No credentials, or credentials that prove nothing.
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    /// The caller is known but may not do this (separation of duties, a human-only
    /// act...).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
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

fn missing_role(caller: Option<&str>, needed: &[Role]) -> String {
    let wanted = needed
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(" or ");
    match caller {
        Some(id) => format!("permission denied: `{id}` does not hold the {wanted} role"),
        None => format!("permission denied: this call needs a bearer token with the {wanted} role"),
    }
}

/// The family of an error, which every front door maps to its own status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request is malformed (gRPC `INVALID_ARGUMENT`, HTTP 400).
    InvalidArgument,
    /// The named thing does not exist (`NOT_FOUND`, 404).
    NotFound,
    /// Nothing changed because it already happened (`ALREADY_EXISTS`, 409).
    AlreadyExists,
    /// Not in a state to do this (`FAILED_PRECONDITION`, 409).
    FailedPrecondition,
    /// Who is calling is unknown (`UNAUTHENTICATED`, 401).
    Unauthenticated,
    /// The caller may not (`PERMISSION_DENIED`, 403).
    PermissionDenied,
    /// Durable state is out of reach (`UNAVAILABLE`, 503).
    Unavailable,
    /// At capacity (`RESOURCE_EXHAUSTED`, 429).
    Overloaded,
}

impl ServiceError {
    /// An invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Refuses a NUL character (U+0000) in `value`, the field `field`. No id or text
    /// has a use for one, and PostgreSQL's text columns cannot store one where SQLite's
    /// can: refused before the state is touched, it reads the same on both.
    pub fn refuse_nul(field: &str, value: &str) -> Result<(), Self> {
        if value.contains('\0') {
            return Err(Self::nul(field));
        }
        Ok(())
    }

    /// `field` holds a NUL character.
    pub fn nul(field: impl Into<String>) -> Self {
        Self::field(field, "must not contain a NUL character (U+0000)")
    }

    /// A thing that does not exist.
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            id: id.into(),
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

    /// Which family the error is in.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::InvalidArgument { .. } => ErrorClass::InvalidArgument,
            Self::UnknownSet(_) | Self::NotFound { .. } => ErrorClass::NotFound,
            Self::AlreadyVoted { .. } => ErrorClass::AlreadyExists,
            Self::ApprovalClosed { .. }
            | Self::ApprovalBusy { .. }
            | Self::ApprovalMismatch { .. }
            | Self::FailedPrecondition(_) => ErrorClass::FailedPrecondition,
            Self::Unauthenticated(_) => ErrorClass::Unauthenticated,
            Self::MissingRole { .. }
            | Self::UnmappedCertificate { .. }
            | Self::IdentityMismatch { .. }
            | Self::ApprovalNotYours { .. }
            | Self::PermissionDenied(_) => ErrorClass::PermissionDenied,
            Self::Unavailable(_) => ErrorClass::Unavailable,
            Self::Overloaded { .. } => ErrorClass::Overloaded,
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
