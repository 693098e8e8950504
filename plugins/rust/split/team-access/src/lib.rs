//! Reference policy, split: permit rules P1-P5. Owns the default deny: allow when a permit matches, else deny.

use arbiter_policy::{Description, Effect, Policy, Request, Verdict, export_policy};
use reference_rules::{Facts, *};

struct Plugin;

impl Policy for Plugin {
    fn describe() -> Description {
        Description::new("team-access", env!("CARGO_PKG_VERSION"))
    }

    fn evaluate(request: &Request) -> Verdict {
        let f = Facts::of(request);
        let permits = matching(&f, &[P1, P2, P3, P4, P5]);
        if permits.is_empty() {
            return Verdict::deny(no_permit());
        }
        Verdict::with_reasons(Effect::Allow, permits).with(credential_lifetime(&f))
    }
}

export_policy!(Plugin);
