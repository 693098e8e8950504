//! Combining algorithms: how the verdicts of a set's plugins become one decision.
//! Pure functions, so every case is a table row in the tests.

use serde::{Deserialize, Serialize};

use crate::{Effect, Failure, Obligations, OnError, Outcome, PluginOutcome, Reason};

/// How a policy set combines its plugins' verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Combining {
    /// Any deny wins; else any require-approval; else any allow; else deny.
    #[default]
    DenyOverrides,
    /// The first plugin (manifest order) that does not abstain decides; none: deny.
    FirstApplicable,
}

impl Combining {
    /// The manifest name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DenyOverrides => "deny-overrides",
            Self::FirstApplicable => "first-applicable",
        }
    }
}

/// The result of combining: the outcome, the reasons that carry it and the merged
/// obligations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combined {
    /// Allow, deny or require approval.
    pub outcome: Outcome,
    /// Reasons of the verdicts that produced the outcome.
    pub reasons: Vec<Reason>,
    /// Conservative merge of the obligations of those verdicts.
    pub obligations: Obligations,
}

/// Stable reason code for a plugin that failed closed.
pub(crate) const PLUGIN_FAILURE: &str = "plugin-failure";
/// Stable reason code for a set in which no plugin had an opinion.
pub(crate) const NO_APPLICABLE_POLICY: &str = "no-applicable-policy";

/// Combines plugin outcomes, given in manifest order with each plugin's `on_error`.
///
/// A failure counts as a deny with reason `plugin-failure`, unless its plugin is
/// advisory (`OnError::Abstain`), where it counts as an abstain. Nothing here can turn a
/// failure into an allow.
pub fn combine<'a>(
    algorithm: Combining,
    outcomes: impl IntoIterator<Item = (OnError, &'a PluginOutcome)>,
) -> Combined {
    let effective = outcomes
        .into_iter()
        .map(|(on_error, outcome)| match outcome {
            PluginOutcome::Verdict(v) => (v.effect, Contribution::Verdict(v)),
            PluginOutcome::Failed(f) => match on_error {
                OnError::Deny => (Effect::Deny, Contribution::Failure(f)),
                OnError::Abstain => (Effect::Abstain, Contribution::Failure(f)),
            },
        });
    match algorithm {
        Combining::DenyOverrides => deny_overrides(effective),
        Combining::FirstApplicable => first_applicable(effective),
    }
}

enum Contribution<'a> {
    Verdict(&'a crate::Verdict),
    Failure(&'a Failure),
}

impl Contribution<'_> {
    fn reasons(&self) -> Vec<Reason> {
        match self {
            Self::Verdict(v) => v.reasons.clone(),
            Self::Failure(f) => vec![failure_reason(f)],
        }
    }

    fn obligations(&self) -> Obligations {
        match self {
            Self::Verdict(v) => v.obligations,
            Self::Failure(_) => Obligations::default(),
        }
    }
}

fn failure_reason(f: &Failure) -> Reason {
    Reason::new(
        PLUGIN_FAILURE,
        "a policy could not be evaluated, so the action is denied; retry later or contact the policy owners",
        format!("{}: {}", f.kind, f.detail),
    )
}

fn no_applicable_policy() -> Combined {
    Combined {
        outcome: Outcome::Deny,
        reasons: vec![Reason::new(
            NO_APPLICABLE_POLICY,
            "no policy permits this action",
            "every plugin abstained; deny by default",
        )],
        obligations: Obligations::default(),
    }
}

fn deny_overrides<'a>(effective: impl Iterator<Item = (Effect, Contribution<'a>)>) -> Combined {
    // Collect the contributions of the strongest effect seen so far; a stronger effect
    // discards what was gathered for a weaker one.
    let rank = |e: Effect| match e {
        Effect::Deny => 3,
        Effect::RequireApproval => 2,
        Effect::Allow => 1,
        Effect::Abstain => 0,
    };
    // Obligations of allows also bind a require-approval: once approved, the action
    // proceeds under every permitting plugin's conditions.
    let mut best = Effect::Abstain;
    let mut reasons = Vec::new();
    let mut permitting = Obligations::default();
    let mut holding = Obligations::default();
    for (effect, contribution) in effective {
        if rank(effect) > rank(best) {
            best = effect;
            reasons.clear();
        }
        if effect == best && effect != Effect::Abstain {
            reasons.extend(contribution.reasons());
        }
        match effect {
            Effect::Allow => permitting = permitting.merge(contribution.obligations()),
            Effect::RequireApproval => holding = holding.merge(contribution.obligations()),
            Effect::Deny | Effect::Abstain => {}
        }
    }
    let obligations = match best {
        Effect::Allow => permitting,
        Effect::RequireApproval => permitting.merge(holding),
        Effect::Deny | Effect::Abstain => Obligations::default(),
    };
    finish(best, reasons, obligations)
}

fn first_applicable<'a>(
    mut effective: impl Iterator<Item = (Effect, Contribution<'a>)>,
) -> Combined {
    match effective.find(|(effect, _)| *effect != Effect::Abstain) {
        Some((effect, c)) => finish(effect, c.reasons(), c.obligations()),
        None => no_applicable_policy(),
    }
}

fn finish(effect: Effect, reasons: Vec<Reason>, obligations: Obligations) -> Combined {
    let outcome = match effect {
        Effect::Allow => Outcome::Allow,
        Effect::RequireApproval => Outcome::RequireApproval,
        Effect::Deny => Outcome::Deny,
        Effect::Abstain => return no_applicable_policy(),
    };
    let obligations = if outcome == Outcome::Deny {
        Obligations::default()
    } else {
        obligations
    };
    Combined {
        outcome,
        reasons,
        obligations,
    }
}

#[cfg(test)]
mod tests;
