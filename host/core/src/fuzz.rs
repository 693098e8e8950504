//! Entry points for fuzzing (`tests/fuzz`, cargo-fuzz) and for the short randomized
//! runs in the test suite. Each takes arbitrary bytes and panics only when an
//! invariant breaks.

use std::time::Duration;

use crate::{
    Combining, Effect, Failure, FailureKind, Limits, Manifest, Obligations, OnError, Outcome,
    PluginOutcome, Reason, Verdict, combine,
};

/// Parses arbitrary text as a manifest: any input is either a manifest or an error
/// naming the file, never a panic.
pub fn manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = Manifest::parse(&text, "fuzz.toml", Limits::default()) {
        assert!(e.to_string().starts_with("fuzz.toml:"), "{e}");
    }
}

/// Combines plugin outcomes decoded from bytes (three bytes per plugin) under both
/// algorithms and checks the fail-closed invariants.
pub fn combine_outcomes(data: &[u8]) {
    let outcomes: Vec<(OnError, PluginOutcome)> = data
        .chunks_exact(3)
        .take(64)
        .map(|c| {
            let on_error = if c[0] & 0x80 == 0 {
                OnError::Deny
            } else {
                OnError::Abstain
            };
            let outcome = match c[0] % 5 {
                0 => verdict(Effect::Allow, c),
                1 => verdict(Effect::Deny, c),
                2 => verdict(Effect::RequireApproval, c),
                3 => verdict(Effect::Abstain, c),
                _ => PluginOutcome::Failed(Failure {
                    kind: FailureKind::Trap,
                    detail: String::new(),
                }),
            };
            (on_error, outcome)
        })
        .collect();
    let denies = outcomes.iter().any(|(on_error, o)| match o {
        PluginOutcome::Verdict(v) => v.effect == Effect::Deny,
        PluginOutcome::Failed(_) => *on_error == OnError::Deny,
    });
    let allows = outcomes
        .iter()
        .any(|(_, o)| matches!(o, PluginOutcome::Verdict(v) if v.effect == Effect::Allow));
    for algorithm in [Combining::DenyOverrides, Combining::FirstApplicable] {
        let c = combine(algorithm, outcomes.iter().map(|(e, o)| (*e, o)));
        assert!(
            !c.reasons.is_empty() || c.outcome != Outcome::Deny,
            "a deny always says why"
        );
        if c.outcome == Outcome::Allow {
            assert!(allows, "allow without any plugin allowing");
        }
        if c.outcome == Outcome::Deny {
            assert!(c.obligations.is_empty(), "a deny carries no obligations");
        }
        if algorithm == Combining::DenyOverrides && denies {
            assert_eq!(c.outcome, Outcome::Deny, "deny or failure must win");
        }
    }
}

fn verdict(effect: Effect, c: &[u8]) -> PluginOutcome {
    PluginOutcome::Verdict(Verdict {
        effect,
        reasons: vec![Reason::new(effect.as_str(), "", "")],
        obligations: Obligations {
            max_credential_lifetime: (c[1] != 0).then(|| Duration::from_secs(u64::from(c[1]))),
            approvers_required: (c[2] != 0).then_some(u32::from(c[2])),
        },
    })
}
