//! Reference policy, split: production rules F2 and F3 (deny) and G2 and G3 (require approval), else abstain.

use arbiter_policy::{Description, Effect, Obligation, Policy, Request, Verdict, export_policy};
use reference_rules::{Facts, *};

struct Plugin;

impl Policy for Plugin {
    fn describe() -> Description {
        Description::new("prod-guard", env!("CARGO_PKG_VERSION"))
    }

    fn evaluate(request: &Request) -> Verdict {
        let f = Facts::of(request);
        let denied = deny_if_any(&f, &[F2, F3]);
        if denied.effect == Effect::Deny {
            return denied;
        }
        verdict_if_any(Effect::RequireApproval, &f, &[G2, G3])
            .with(Obligation::ApproversRequired(1))
    }
}

export_policy!(Plugin);
