//! The Arbiter decision pipeline, free of any transport: policy sets and their
//! lifecycle, the decision pipeline ([`pipeline::Decider`]: admission, set selection,
//! approval redemption, evaluation, audit before the answer, shadow, the approval hold
//! and credential issue), approvals, credentials, callers and roles, audit records,
//! upkeep and metrics. A front door extracts the caller's credential and the request
//! from its wire format, calls in here, and encodes the answer; it holds no policy
//! logic of its own. This crate depends on no RPC or HTTP library (a test checks).

pub mod app;
pub mod approvals;
pub mod audit_log;
pub mod auth;
pub mod awaiting;
pub mod budget;
pub mod credentials;
pub mod embedded;
mod error;
pub mod events;
pub mod history;
pub mod loader;
pub mod metrics;
pub mod newest;
pub mod pipeline;
pub mod records;
pub mod redaction;
pub mod replica;
pub mod sets;
pub mod shadow;
pub mod tokens;
pub mod upkeep;
mod voting;
pub mod watch;

/// `d` in microseconds, as the store's times are counted (saturating).
pub(crate) fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

pub use error::{ErrorClass, ServiceError};
