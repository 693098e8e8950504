//! What one plugin answers: a verdict, or a failure that the host classified.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A plugin's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// The action may proceed.
    Allow,
    /// The action must not proceed.
    Deny,
    /// The action may proceed once enough humans approve it.
    RequireApproval,
    /// No opinion.
    Abstain,
}

impl Effect {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::RequireApproval => "require-approval",
            Self::Abstain => "abstain",
        }
    }
}

/// Why a verdict is what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable, machine-readable code, e.g. `identity-change-needs-approval`.
    pub code: String,
    /// May be shown to the caller (an agent): what to do instead.
    pub caller_message: String,
    /// For administrators only; never sent to the caller.
    pub admin_message: String,
}

impl Reason {
    /// A reason with both messages.
    pub fn new(
        code: impl Into<String>,
        caller_message: impl Into<String>,
        admin_message: impl Into<String>,
    ) -> Self {
        Self {
            code: code.into(),
            caller_message: caller_message.into(),
            admin_message: admin_message.into(),
        }
    }
}

/// Typed conditions attached to an allow or require-approval. `None` means "no
/// constraint from this source".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Obligations {
    /// Upper bound on the lifetime of a credential issued for the action.
    #[serde(with = "opt_secs", default, skip_serializing_if = "Option::is_none")]
    pub max_credential_lifetime: Option<Duration>,
    /// Number of distinct human approvers required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers_required: Option<u32>,
}

impl Obligations {
    /// Conservative merge: the smaller lifetime, the larger approver count.
    pub fn merge(self, other: Self) -> Self {
        Self {
            max_credential_lifetime: min_some(
                self.max_credential_lifetime,
                other.max_credential_lifetime,
            ),
            approvers_required: self.approvers_required.max(other.approvers_required),
        }
    }

    /// True when no obligation is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

fn min_some<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}

/// One plugin's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Allow, deny, require approval or abstain.
    pub effect: Effect,
    /// Why.
    pub reasons: Vec<Reason>,
    /// Conditions.
    pub obligations: Obligations,
}

impl Verdict {
    /// A verdict with an effect and nothing else.
    pub fn effect(effect: Effect) -> Self {
        Self {
            effect,
            reasons: Vec::new(),
            obligations: Obligations::default(),
        }
    }
}

/// How a plugin failed. Every failure fails closed unless the set marks the plugin
/// advisory (`on_error = "abstain"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// Ran past its wall-clock deadline.
    Timeout,
    /// Tried to grow memory (or tables) past its limit.
    MemoryLimit,
    /// Exhausted its stack.
    StackOverflow,
    /// Trapped: `unreachable`, out-of-bounds access, a panic in the guest, and so on.
    Trap,
    /// Returned a verdict the host refuses (too many or too long reasons, bad codes).
    BadOutput,
    /// Could not be instantiated.
    Instantiation,
    /// Failed too many times in a row and is not run until released.
    Quarantined,
    /// Refused its settings in `configure` on a fresh instance.
    Configure,
    /// Made more host calls (`log`, `data`) in one evaluation than allowed.
    HostCallLimit,
    /// Tried to grow a table past its limit.
    TableLimit,
}

impl FailureKind {
    /// The wire name, as in metrics and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::MemoryLimit => "memory-limit",
            Self::StackOverflow => "stack-overflow",
            Self::Trap => "trap",
            Self::BadOutput => "bad-output",
            Self::Instantiation => "instantiation",
            Self::Quarantined => "quarantined",
            Self::Configure => "configure",
            Self::HostCallLimit => "host-call-limit",
            Self::TableLimit => "table-limit",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified plugin failure. The detail is for administrators only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What went wrong.
    pub kind: FailureKind,
    /// The host's description, e.g. the trap message. Never sent to callers.
    pub detail: String,
}

/// What running one plugin produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginOutcome {
    /// The plugin answered.
    Verdict(Verdict),
    /// The plugin failed; the host classified how.
    Failed(Failure),
}

impl PluginOutcome {
    /// Shorthand for a failure.
    pub fn failed(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self::Failed(Failure {
            kind,
            detail: detail.into(),
        })
    }
}
