//! Reference policy, split: risk rules F1, F5 and F6 (deny or abstain).

use arbiter_policy::{Description, Policy, Request, Verdict, export_policy};
use reference_rules::{Facts, *};

struct Plugin;

impl Policy for Plugin {
    fn describe() -> Description {
        Description::new("risk-guard", env!("CARGO_PKG_VERSION"))
    }

    fn evaluate(request: &Request) -> Verdict {
        let f = Facts::of(request);
        deny_if_any(&f, &[F1, F5, F6])
    }
}

export_policy!(Plugin);
