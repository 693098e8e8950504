//! Arbiter's domain model: what is asked ([`Request`]), what a plugin answers
//! ([`Verdict`] or a [`Failure`]), how answers combine into a [`Decision`]
//! ([`combine`]), and what a policy set is ([`Manifest`]).
//!
//! Nothing here knows about gRPC, protobuf or WebAssembly: those are adapters around
//! this crate, so the rules of combination can be tested as pure functions.
//!
//! ```
//! use arbiter_core::{combine, Combining, Effect, OnError, PluginOutcome, Verdict};
//!
//! let outcomes = [
//!     (OnError::Deny, PluginOutcome::Verdict(Verdict::effect(Effect::Allow))),
//!     (OnError::Deny, PluginOutcome::Verdict(Verdict::effect(Effect::Abstain))),
//! ];
//! let combined = combine(Combining::DenyOverrides, outcomes.iter().map(|(e, o)| (*e, o)));
//! assert_eq!(combined.outcome, arbiter_core::Outcome::Allow);
//! ```

pub mod clock;
mod combine;
mod decision;
#[doc(hidden)]
pub mod fuzz;
pub mod limits;
mod manifest;
mod peer;
mod request;
pub mod request_limits;
mod text;
mod verdict;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock, system_clock};
pub use combine::{Combined, Combining, combine};
pub use decision::{Decision, Outcome, PluginReport, SetIdentity};
pub use limits::{Limits, LimitsOverride};
pub use manifest::{
    AuditMode, Instances, Manifest, ManifestError, Mode, OnError, PluginSpec, line_of,
};
pub use peer::PeerCertificate;
pub use request::{
    Action, Attributes, Intent, Principal, PrincipalKind, Privilege, Request, Resource, Value,
};
pub use text::{invisible_in, prefix, shown};
pub use verdict::{Effect, Failure, FailureKind, Obligations, PluginOutcome, Reason, Verdict};
