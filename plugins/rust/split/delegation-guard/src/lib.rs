//! Reference policy, split: delegation rule F4 (deny or abstain).

use arbiter_policy::{Description, Policy, Request, Verdict, export_policy};
use reference_rules::{Facts, *};

struct Plugin;

impl Policy for Plugin {
    fn describe() -> Description {
        Description::new("delegation-guard", env!("CARGO_PKG_VERSION"))
    }

    fn evaluate(request: &Request) -> Verdict {
        let f = Facts::of(request);
        deny_if_any(&f, &[F4])
    }
}

export_policy!(Plugin);
