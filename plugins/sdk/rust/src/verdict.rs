//! Building verdicts and reasons.

use crate::{Effect, Obligation, Reason, Verdict};

impl Reason {
    /// A reason whose admin message repeats the caller message.
    pub fn new(code: &str, caller_message: &str) -> Self {
        Self {
            code: code.to_string(),
            caller_message: caller_message.to_string(),
            admin_message: caller_message.to_string(),
        }
    }

    /// Sets the message for administrators (never sent to the caller).
    pub fn admin(mut self, admin_message: impl Into<String>) -> Self {
        self.admin_message = admin_message.into();
        self
    }
}

impl Verdict {
    fn of(effect: Effect, reasons: Vec<Reason>) -> Self {
        Self {
            effect,
            reasons,
            obligations: Vec::new(),
        }
    }

    /// Allow, with no reason.
    pub fn allow() -> Self {
        Self::of(Effect::Allow, Vec::new())
    }

    /// Allow, saying why.
    pub fn allow_because(reason: Reason) -> Self {
        Self::of(Effect::Allow, vec![reason])
    }

    /// Deny, saying why.
    pub fn deny(reason: Reason) -> Self {
        Self::of(Effect::Deny, vec![reason])
    }

    /// Hold for human approval, saying why.
    pub fn require_approval(reason: Reason) -> Self {
        Self::of(Effect::RequireApproval, vec![reason])
    }

    /// No opinion.
    pub fn abstain() -> Self {
        Self::of(Effect::Abstain, Vec::new())
    }

    /// A verdict with several reasons.
    pub fn with_reasons(effect: Effect, reasons: Vec<Reason>) -> Self {
        Self::of(effect, reasons)
    }

    /// Adds an obligation.
    pub fn with(mut self, obligation: Obligation) -> Self {
        self.obligations.push(obligation);
        self
    }
}
