//! Reference policy, split: approval gates G1 and G4 (require approval or abstain).

use arbiter_policy::{Description, Effect, Obligation, Policy, Request, Verdict, export_policy};
use reference_rules::{Facts, *};

struct Plugin;

impl Policy for Plugin {
    fn describe() -> Description {
        Description::new("identity-gate", env!("CARGO_PKG_VERSION"))
    }

    fn evaluate(request: &Request) -> Verdict {
        let f = Facts::of(request);
        verdict_if_any(Effect::RequireApproval, &f, &[G1, G4])
            .with(Obligation::ApproversRequired(1))
    }
}

export_policy!(Plugin);
