//! The reference policy (all fifteen rules) as a single plugin.
//!
//! Settings (all optional; the defaults are the reference policy exactly):
//! `disabled_rules = ["F1", ...]` switches rules off (a weakened variant to measure),
//! `approvers_required = 2` asks for more approvers on gated actions.

use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};

use arbiter_policy::{Attribute, Description, Policy, Request, Verdict, export_policy};
use reference_rules::Tuning;

struct Reference;

// Set by `configure` (every fresh instance starts from the state it left); plain atomics
// hold the result.
static DISABLED: AtomicU16 = AtomicU16::new(0);
static APPROVERS: AtomicU32 = AtomicU32::new(1);

impl Policy for Reference {
    fn describe() -> Description {
        Description::new("reference", env!("CARGO_PKG_VERSION"))
    }

    fn configure(settings: &[Attribute]) -> Result<(), String> {
        let t = Tuning::from_settings(settings)?;
        DISABLED.store(t.disabled, Ordering::Relaxed);
        APPROVERS.store(t.approvers_required, Ordering::Relaxed);
        Ok(())
    }

    fn evaluate(request: &Request) -> Verdict {
        let tuning = Tuning {
            disabled: DISABLED.load(Ordering::Relaxed),
            approvers_required: APPROVERS.load(Ordering::Relaxed),
        };
        reference_rules::decide_tuned(request, &tuning)
    }
}

export_policy!(Reference);
