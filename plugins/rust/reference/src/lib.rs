//! The reference policy (all fifteen rules) as a single plugin.

use arbiter_policy::{Description, Policy, Request, Verdict, export_policy};

struct Reference;

impl Policy for Reference {
    fn describe() -> Description {
        Description::new("reference", env!("CARGO_PKG_VERSION"))
    }

    fn evaluate(request: &Request) -> Verdict {
        reference_rules::decide(request)
    }
}

export_policy!(Reference);
