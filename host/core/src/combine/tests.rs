use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::{FailureKind, Verdict};

fn v(effect: Effect) -> PluginOutcome {
    PluginOutcome::Verdict(Verdict {
        effect,
        reasons: vec![Reason::new(effect.as_str(), "", "")],
        obligations: Obligations::default(),
    })
}

fn fail() -> PluginOutcome {
    PluginOutcome::failed(FailureKind::Trap, "boom")
}

/// Every entry of the table: a plugin outcome and the on-error mode it runs under.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cell {
    Allow,
    Deny,
    Approval,
    Abstain,
    FailDeny,
    FailAbstain,
}

const CELLS: [Cell; 6] = [
    Cell::Allow,
    Cell::Deny,
    Cell::Approval,
    Cell::Abstain,
    Cell::FailDeny,
    Cell::FailAbstain,
];

fn outcome(c: Cell) -> (OnError, PluginOutcome) {
    match c {
        Cell::Allow => (OnError::Deny, v(Effect::Allow)),
        Cell::Deny => (OnError::Deny, v(Effect::Deny)),
        Cell::Approval => (OnError::Deny, v(Effect::RequireApproval)),
        Cell::Abstain => (OnError::Deny, v(Effect::Abstain)),
        Cell::FailDeny => (OnError::Deny, fail()),
        Cell::FailAbstain => (OnError::Abstain, fail()),
    }
}

fn run(algorithm: Combining, cells: &[Cell]) -> Combined {
    let outcomes: Vec<_> = cells.iter().map(|c| outcome(*c)).collect();
    combine(algorithm, outcomes.iter().map(|(e, o)| (*e, o)))
}

/// The expected deny-overrides outcome for a pair, written out by hand.
fn deny_overrides_expected(a: Cell, b: Cell) -> Outcome {
    use Cell::*;
    let is = |c: Cell, set: &[Cell]| set.contains(&c);
    if is(a, &[Deny, FailDeny]) || is(b, &[Deny, FailDeny]) {
        Outcome::Deny
    } else if a == Approval || b == Approval {
        Outcome::RequireApproval
    } else if a == Allow || b == Allow {
        Outcome::Allow
    } else {
        Outcome::Deny
    }
}

fn first_applicable_expected(a: Cell, b: Cell) -> Outcome {
    let single = |c: Cell| match c {
        Cell::Allow => Some(Outcome::Allow),
        Cell::Deny | Cell::FailDeny => Some(Outcome::Deny),
        Cell::Approval => Some(Outcome::RequireApproval),
        Cell::Abstain | Cell::FailAbstain => None,
    };
    single(a).or(single(b)).unwrap_or(Outcome::Deny)
}

#[test]
fn deny_overrides_every_pair() {
    for a in CELLS {
        for b in CELLS {
            let got = run(Combining::DenyOverrides, &[a, b]).outcome;
            assert_eq!(got, deny_overrides_expected(a, b), "{a:?} + {b:?}");
        }
    }
}

#[test]
fn first_applicable_every_pair() {
    for a in CELLS {
        for b in CELLS {
            let got = run(Combining::FirstApplicable, &[a, b]).outcome;
            assert_eq!(got, first_applicable_expected(a, b), "{a:?} then {b:?}");
        }
    }
}

#[test]
fn failure_reason_is_plugin_failure_and_hides_detail_from_caller() {
    let c = run(Combining::DenyOverrides, &[Cell::Allow, Cell::FailDeny]);
    assert_eq!(c.outcome, Outcome::Deny);
    assert_eq!(c.reasons.len(), 1);
    assert_eq!(c.reasons[0].code, PLUGIN_FAILURE);
    assert!(!c.reasons[0].caller_message.contains("boom"));
    assert!(c.reasons[0].admin_message.contains("trap: boom"));
}

#[test]
fn all_abstain_and_empty_are_deny_with_reason() {
    for cells in [
        &[][..],
        &[Cell::Abstain],
        &[Cell::Abstain, Cell::FailAbstain],
    ] {
        for alg in [Combining::DenyOverrides, Combining::FirstApplicable] {
            let c = run(alg, cells);
            assert_eq!(c.outcome, Outcome::Deny, "{alg:?} {cells:?}");
            assert_eq!(c.reasons[0].code, NO_APPLICABLE_POLICY);
        }
    }
}

#[test]
fn reasons_come_only_from_the_deciding_effect() {
    let c = run(
        Combining::DenyOverrides,
        &[Cell::Allow, Cell::Approval, Cell::Allow],
    );
    assert_eq!(c.outcome, Outcome::RequireApproval);
    let codes: Vec<_> = c.reasons.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, ["require-approval"]);
}

#[test]
fn obligations_merge_conservatively() {
    let with = |secs: u64, approvers: u32| {
        PluginOutcome::Verdict(Verdict {
            effect: Effect::Allow,
            reasons: vec![],
            obligations: Obligations {
                max_credential_lifetime: Some(Duration::from_secs(secs)),
                approvers_required: Some(approvers),
            },
        })
    };
    let outcomes = [with(900, 1), with(300, 2), v(Effect::Allow)];
    let c = combine(
        Combining::DenyOverrides,
        outcomes.iter().map(|o| (OnError::Deny, o)),
    );
    assert_eq!(
        c.obligations.max_credential_lifetime,
        Some(Duration::from_secs(300))
    );
    assert_eq!(c.obligations.approvers_required, Some(2));
}

#[test]
fn deny_carries_no_obligations() {
    let allow = PluginOutcome::Verdict(Verdict {
        effect: Effect::Allow,
        reasons: vec![],
        obligations: Obligations {
            max_credential_lifetime: Some(Duration::from_secs(1)),
            approvers_required: None,
        },
    });
    let deny = v(Effect::Deny);
    let c = combine(
        Combining::FirstApplicable,
        [(OnError::Deny, &deny), (OnError::Deny, &allow)],
    );
    assert_eq!(c.outcome, Outcome::Deny);
    assert!(c.obligations.is_empty());
}

fn any_cell() -> impl Strategy<Value = Cell> {
    prop::sample::select(CELLS.to_vec())
}

proptest! {
    #[test]
    fn deny_or_failure_never_allows(cells in prop::collection::vec(any_cell(), 0..8)) {
        let c = run(Combining::DenyOverrides, &cells);
        if cells.iter().any(|c| matches!(c, Cell::Deny | Cell::FailDeny)) {
            prop_assert_eq!(c.outcome, Outcome::Deny);
        }
        if c.outcome == Outcome::Allow {
            prop_assert!(cells.contains(&Cell::Allow));
        }
    }

    #[test]
    fn failures_never_allow_in_any_algorithm(
        cells in prop::collection::vec(prop::sample::select(vec![Cell::Abstain, Cell::FailDeny, Cell::FailAbstain]), 0..8),
    ) {
        for alg in [Combining::DenyOverrides, Combining::FirstApplicable] {
            prop_assert_eq!(run(alg, &cells).outcome, Outcome::Deny);
        }
    }

    #[test]
    fn combining_is_order_independent_under_deny_overrides(
        mut cells in prop::collection::vec(any_cell(), 0..8),
    ) {
        let a = run(Combining::DenyOverrides, &cells).outcome;
        cells.reverse();
        prop_assert_eq!(a, run(Combining::DenyOverrides, &cells).outcome);
    }
}

#[test]
fn require_approval_carries_the_permitting_plugins_obligations_too() {
    let allow = PluginOutcome::Verdict(Verdict {
        effect: Effect::Allow,
        reasons: vec![],
        obligations: Obligations {
            max_credential_lifetime: Some(Duration::from_secs(900)),
            approvers_required: None,
        },
    });
    let hold = PluginOutcome::Verdict(Verdict {
        effect: Effect::RequireApproval,
        reasons: vec![Reason::new("gate", "", "")],
        obligations: Obligations {
            max_credential_lifetime: None,
            approvers_required: Some(2),
        },
    });
    let c = combine(
        Combining::DenyOverrides,
        [(OnError::Deny, &allow), (OnError::Deny, &hold)],
    );
    assert_eq!(c.outcome, Outcome::RequireApproval);
    assert_eq!(c.reasons.len(), 1);
    assert_eq!(
        c.obligations,
        Obligations {
            max_credential_lifetime: Some(Duration::from_secs(900)),
            approvers_required: Some(2),
        }
    );
}

proptest! {
    /// The fuzz entry points, for a few thousand random inputs on every test run
    /// (the long coverage-guided runs are in tests/fuzz).
    #[test]
    fn fuzz_combine_smoke(data in prop::collection::vec(any::<u8>(), 0..200)) {
        crate::fuzz::combine_outcomes(&data);
    }

    #[test]
    fn fuzz_manifest_smoke(data in prop::collection::vec(any::<u8>(), 0..400)) {
        crate::fuzz::manifest(&data);
    }

    #[test]
    fn fuzz_manifest_mutations_smoke(
        cut in 0usize..300,
        insert in "[a-z_=\\[\\]\"0-9 .\n{}-]{0,12}",
    ) {
        let base = "format = 1\nname = \"s\"\nversion = \"1\"\n[limits]\ndeadline_ms = 5\n[[plugins]]\nname = \"p\"\npath = \"p.wasm\"\nlimits = { memory_mib = 4 }\n[plugins.settings]\na = { b = [\"c\"] }\n";
        let at = cut.min(base.len());
        let text = format!("{}{}{}", &base[..at], insert, &base[at..]);
        crate::fuzz::manifest(text.as_bytes());
    }
}
