//! The contract of [`StateStore`]: every backend passes the same tests. Each is a
//! function of a fresh, empty store; `contract_suite!` makes a `#[test]` of each for
//! a backend (see `sqlite/tests.rs` and `postgres/tests.rs`).

use crate::*;
use arbiter_core::{Reason, SetIdentity};

pub(crate) mod leases;
mod policy_sets;
mod races;
pub(crate) use policy_sets::set_states_are_published_over_the_revision_seen;
pub(crate) use races::races_are_decided_by_the_store;

pub(crate) fn approval(id: &str, required: u32) -> NewApproval {
    NewApproval {
        id: id.into(),
        request_digest: "d1".into(),
        request: serde_json::json!({"principal": {"id": "agent"}}),
        principal: "agent".into(),
        delegation: vec!["alice".into()],
        task_id: "t1".into(),
        set: SetIdentity {
            name: "reference".into(),
            version: "1".into(),
            digest: "ab".into(),
        },
        decision_id: "dec".into(),
        reasons: vec![Reason::new("g1", "needs approval", "G1")],
        approvers_required: required,
        created_micros: 1_000,
        expires_micros: 10_000,
        held_by: "gateway".into(),
    }
}

pub(crate) fn vote(who: &str, approve: bool) -> Vote {
    Vote {
        approver: who.into(),
        approve,
        comment: format!("{who} says {approve}"),
        at_micros: 2_000,
    }
}

fn state(o: &VoteOutcome) -> ApprovalState {
    match o {
        VoteOutcome::Counted(a) | VoteOutcome::AlreadyVoted(a) | VoteOutcome::Closed(a) => a.state,
        VoteOutcome::NotFound => panic!("not found"),
    }
}

pub(crate) fn credential(id: &str, task: &str) -> Credential {
    Credential {
        id: id.into(),
        task_id: task.into(),
        principal: "agent".into(),
        action: "iam:AttachRolePolicy".into(),
        resource: "arn".into(),
        decision_id: "dec".into(),
        kid: "k1".into(),
        issued_at: 1,
        expires_at: 100,
        revoked_micros: None,
        revoke_reason: None,
        holder: "gateway".into(),
    }
}

pub(crate) fn approvals_round_trip_and_expire_by_the_clock(s: &dyn StateStore) {
    s.create_approval(&approval("a1", 1)).expect("create");
    let a = s.approval("a1", 5_000).expect("read").expect("exists");
    assert_eq!(a.state, ApprovalState::Pending);
    assert_eq!(a.new, approval("a1", 1));
    let a = s.approval("a1", 10_000).expect("read").expect("exists");
    assert_eq!(a.state, ApprovalState::Expired);
    assert!(matches!(
        s.create_approval(&approval("a1", 1)),
        Err(StoreError::Duplicate(_))
    ));
}

pub(crate) fn the_same_approver_counts_once_and_enough_approvals_approve(s: &dyn StateStore) {
    s.create_approval(&approval("a1", 2)).expect("create");
    assert_eq!(
        state(&s.vote("a1", &vote("bob", true), 3_000).expect("vote")),
        ApprovalState::Pending
    );
    let again = s.vote("a1", &vote("bob", true), 3_000).expect("vote");
    assert!(matches!(again, VoteOutcome::AlreadyVoted(_)));
    assert_eq!(state(&again), ApprovalState::Pending);
    let done = s.vote("a1", &vote("carol", true), 3_000).expect("vote");
    assert!(matches!(done, VoteOutcome::Counted(_)));
    assert_eq!(state(&done), ApprovalState::Approved);
    // Closed for further votes.
    assert!(matches!(
        s.vote("a1", &vote("dan", false), 3_000).expect("vote"),
        VoteOutcome::Closed(_)
    ));
}

pub(crate) fn a_rejection_rejects_and_expired_approvals_take_no_votes(s: &dyn StateStore) {
    s.create_approval(&approval("a1", 2)).expect("create");
    assert_eq!(
        state(&s.vote("a1", &vote("bob", false), 3_000).expect("vote")),
        ApprovalState::Rejected
    );
    s.create_approval(&approval("a2", 1)).expect("create");
    let late = s.vote("a2", &vote("bob", true), 10_001).expect("vote");
    assert!(matches!(late, VoteOutcome::Closed(_)));
    assert_eq!(state(&late), ApprovalState::Expired);
    assert!(matches!(
        s.vote("zz", &vote("bob", true), 1).expect("vote"),
        VoteOutcome::NotFound
    ));
}

pub(crate) fn an_approval_is_consumed_once_and_only_when_approved_in_time(s: &dyn StateStore) {
    s.create_approval(&approval("a1", 1)).expect("create");
    // A use that loses records nothing it was given; the one that wins records its
    // credential with the use, at once.
    let signed = credential("k-pending", "t");
    assert!(
        !s.redeem_approval("a1", "d2", 3_000, Some(&signed))
            .expect("pending")
    );
    assert_eq!(s.credential("k-pending").expect("read"), None);
    s.vote("a1", &vote("bob", true), 3_000).expect("vote");
    assert!(
        !s.redeem_approval("a1", "d2", 10_000, None)
            .expect("expired")
    );
    let signed = credential("k-won", "t");
    assert!(
        s.redeem_approval("a1", "d2", 4_000, Some(&signed))
            .expect("consume")
    );
    assert_eq!(s.credential("k-won").expect("read"), Some(signed));
    assert!(!s.redeem_approval("a1", "d3", 4_000, None).expect("again"));
    let a = s.approval("a1", 4_000).expect("read").expect("exists");
    assert_eq!(a.state, ApprovalState::Consumed);
    assert_eq!(a.consumed_by.as_deref(), Some("d2"));
    // Only the decision that consumed it may give it back, once; then it is usable.
    assert!(!s.release_approval("a1", "d3", 4_500).expect("not d3's"));
    assert!(s.release_approval("a1", "d2", 4_500).expect("release"));
    assert!(!s.release_approval("a1", "d2", 4_500).expect("twice"));
    let a = s.approval("a1", 4_500).expect("read").expect("exists");
    assert_eq!((a.state, a.consumed_by), (ApprovalState::Approved, None));
    assert!(
        s.redeem_approval("a1", "d3", 4_600, None)
            .expect("consume again")
    );
}

pub(crate) fn holding_the_same_request_again_finds_its_open_approval(s: &dyn StateStore) {
    let (a, created) = s.hold_approval(&approval("a1", 1), 2_000).expect("hold");
    assert!(created && a.new.id == "a1");
    // The same digest and set, still open: the same approval.
    let (again, created) = s.hold_approval(&approval("a2", 1), 2_000).expect("hold");
    assert_eq!((again.new.id.as_str(), created), ("a1", false));
    // Another set, or after expiry: a new one.
    let mut other = approval("a3", 1);
    other.set.name = "other".into();
    assert!(s.hold_approval(&other, 2_000).expect("hold").1);
    let mut later = approval("a4", 1);
    later.expires_micros = 100_000;
    let (fresh, created) = s.hold_approval(&later, 20_000).expect("hold");
    assert_eq!((fresh.new.id.as_str(), created), ("a4", true));
    // Once decided, no longer open.
    s.vote("a4", &vote("bob", true), 20_001).expect("vote");
    let mut next = approval("a5", 1);
    next.expires_micros = 100_000;
    assert!(s.hold_approval(&next, 20_002).expect("hold").1);
}

pub(crate) fn listing_filters_by_derived_state(s: &dyn StateStore) {
    s.create_approval(&approval("a1", 1)).expect("create");
    let mut b = approval("a2", 1);
    b.expires_micros = 100_000;
    s.create_approval(&b).expect("create");
    let f = |states: Vec<ApprovalState>| ApprovalFilter {
        states,
        now_micros: 50_000,
        ..ApprovalFilter::default()
    };
    let ids = |v: Vec<Approval>| v.into_iter().map(|a| a.new.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s
            .list_approvals(&f(vec![ApprovalState::Pending]))
            .expect("list")),
        ["a2"]
    );
    assert_eq!(
        ids(s
            .list_approvals(&f(vec![ApprovalState::Expired]))
            .expect("list")),
        ["a1"]
    );
    assert_eq!(s.list_approvals(&f(vec![])).expect("list").len(), 2);
}

pub(crate) fn completing_a_task_revokes_all_its_credentials_once(s: &dyn StateStore) {
    for (id, task) in [("c1", "t1"), ("c2", "t1"), ("c3", "t2")] {
        s.insert_credential(&credential(id, task)).expect("insert");
    }
    assert!(s.revoke_credential("c2", 5, "revoked").expect("revoke"));
    assert!(!s.revoke_credential("c2", 6, "revoked").expect("again"));
    // Another holder's completion leaves the gateway's credentials alone.
    assert!(
        s.revoke_task("t1", Some("other"), 7)
            .expect("task")
            .is_empty()
    );
    assert_eq!(
        s.revoke_task("t1", Some("gateway"), 7).expect("task"),
        ["c1"]
    );
    assert!(s.revoke_task("t1", None, 8).expect("task").is_empty());
    let c1 = s.credential("c1").expect("read").expect("exists");
    assert_eq!(
        (c1.revoked_micros, c1.revoke_reason.as_deref()),
        (Some(7), Some("task-complete"))
    );
    assert_eq!(
        s.credential("c3")
            .expect("read")
            .expect("exists")
            .revoked_micros,
        None
    );
}

pub(crate) fn audited_tokens_are_noted_apart_from_the_tokens(s: &dyn StateStore) {
    let t = TokenEntry {
        sha256: "h1".into(),
        id: "gateway".into(),
        kind: "service".into(),
        roles: vec!["enforcer".into()],
        created_micros: 1,
    };
    s.add_token(&t).expect("add");
    assert!(s.audited_tokens().expect("read").is_empty());
    s.set_token_audited(&t, true).expect("note");
    s.set_token_audited(&t, true)
        .expect("noting twice is harmless");
    assert_eq!(s.audited_tokens().expect("read"), vec![t.clone()]);
    // Removing the token leaves the note until its removal is recorded too.
    assert_eq!(s.remove_tokens("gateway").expect("remove"), 1);
    assert_eq!(s.audited_tokens().expect("read"), vec![t.clone()]);
    s.set_token_audited(&t, false).expect("unnote");
    assert!(s.audited_tokens().expect("read").is_empty());
}

pub(crate) fn lapsed_approvals_are_claimed_by_one_sweeper_until_marked_expired(s: &dyn StateStore) {
    const HOLD: i64 = 5_000;
    let claim = |who: &str, now: i64| -> Vec<String> {
        let mut ids: Vec<String> = s
            .claim_lapsed_approvals(who, now, 10, now, HOLD)
            .expect("sweep")
            .into_iter()
            .map(|a| {
                assert_eq!(a.state, ApprovalState::Expired);
                a.new.id
            })
            .collect();
        ids.sort();
        ids
    };
    s.create_approval(&approval("a1", 1)).expect("create");
    s.create_approval(&approval("a2", 1)).expect("create");
    s.vote("a2", &vote("alice", true), 2_000).expect("vote");
    assert!(claim("r1", 9_999).is_empty());
    assert_eq!(claim("r1", 10_000), ["a1", "a2"]);
    // Claimed by r1: another sweeper finds nothing; r1 itself finds them again.
    assert!(claim("r2", 10_500).is_empty());
    assert_eq!(claim("r1", 10_500), ["a1", "a2"]);
    assert!(!s.mark_expired("a1", 9_999).expect("not yet"));
    assert!(s.mark_expired("a1", 10_000).expect("mark"));
    assert!(!s.mark_expired("a1", 10_000).expect("once"));
    assert_eq!(
        s.approval("a1", 10_000)
            .expect("read")
            .expect("exists")
            .state,
        ApprovalState::Expired
    );
    // r1 claimed a2 last at 10,500 and never marked it (it died): after the hold, r2
    // takes it over.
    assert!(claim("r2", 15_499).is_empty());
    assert_eq!(claim("r2", 15_500), ["a2"]);
    assert!(claim("r1", 15_600).is_empty());
    // A consumed approval never lapses.
    s.create_approval(&approval("a3", 1)).expect("create");
    s.vote("a3", &vote("alice", true), 2_000).expect("vote");
    assert!(s.redeem_approval("a3", "d", 3_000, None).expect("consume"));
    assert!(!claim("r3", 20_000).contains(&"a3".to_string()));
}

pub(crate) fn purging_removes_only_closed_approvals_and_expired_credentials_before_the_cutoff(
    s: &dyn StateStore,
) {
    for id in ["open", "rejected", "consumed", "lapsed"] {
        s.create_approval(&approval(id, 1)).expect("create");
    }
    s.vote("rejected", &vote("bob", false), 2_000)
        .expect("vote");
    s.vote("consumed", &vote("bob", true), 2_000).expect("vote");
    assert!(
        s.redeem_approval("consumed", "d", 3_000, None)
            .expect("consume")
    );
    assert!(s.mark_expired("lapsed", 10_000).expect("mark"));
    // Closed at 2,000 (rejected), 3,000 (consumed) and 10,000 (expired).
    assert_eq!(s.purgeable(3_000, 0).expect("count"), (1, 0));
    assert_eq!(s.purge_closed_approvals(3_000).expect("purge"), 1);
    assert!(s.approval("rejected", 4_000).expect("read").is_none());
    assert_eq!(s.purge_closed_approvals(20_000).expect("purge"), 2);
    // The open one stays, even long after its expiry (it is recorded first).
    assert!(s.approval("open", 20_000).expect("read").is_some());

    s.insert_credential(&credential("c1", "t1"))
        .expect("insert");
    let expires = s
        .credential("c1")
        .expect("read")
        .expect("exists")
        .expires_at;
    assert_eq!(s.purge_expired_credentials(expires).expect("purge"), 0);
    assert_eq!(s.purge_expired_credentials(expires + 1).expect("purge"), 1);
    assert!(s.credential("c1").expect("read").is_none());
}

/// A sealed key secret is kept and made active at once; the store keeps its bytes as
/// given (sealing is the service's).
pub(crate) fn sealed_signing_keys_are_kept_and_activated(s: &dyn StateStore) {
    s.activate_signing_key("file-key", 1).expect("activate");
    s.add_sealed_signing_key("k1", &[0, 1, 2, 255], 2)
        .expect("add");
    s.add_sealed_signing_key("k2", &[9; 64], 3).expect("add");
    assert_eq!(
        s.sealed_signing_keys().expect("read"),
        vec![
            ("k1".to_string(), vec![0, 1, 2, 255]),
            ("k2".to_string(), vec![9; 64])
        ]
    );
    let keys = s.signing_keys().expect("keys");
    let state: Vec<(&str, Option<i64>)> = keys
        .iter()
        .map(|k| (k.kid.as_str(), k.retired_micros))
        .collect();
    assert_eq!(
        state,
        [("file-key", Some(2)), ("k1", Some(3)), ("k2", None)]
    );
}

/// Makes a `#[test]` of every contract test, each on the store `$fresh` makes
/// (`Some((anything to keep alive, store))`, or `None` to skip, said by `$fresh`).
macro_rules! contract_suite {
    ($fresh:expr) => {
        #[test]
        fn approvals_round_trip_and_expire_by_the_clock() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::approvals_round_trip_and_expire_by_the_clock(&store);
        }
        #[test]
        fn the_same_approver_counts_once_and_enough_approvals_approve() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::the_same_approver_counts_once_and_enough_approvals_approve(&store);
        }
        #[test]
        fn a_rejection_rejects_and_expired_approvals_take_no_votes() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::a_rejection_rejects_and_expired_approvals_take_no_votes(&store);
        }
        #[test]
        fn an_approval_is_consumed_once_and_only_when_approved_in_time() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::an_approval_is_consumed_once_and_only_when_approved_in_time(&store);
        }
        #[test]
        fn holding_the_same_request_again_finds_its_open_approval() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::holding_the_same_request_again_finds_its_open_approval(&store);
        }
        #[test]
        fn listing_filters_by_derived_state() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::listing_filters_by_derived_state(&store);
        }
        #[test]
        fn completing_a_task_revokes_all_its_credentials_once() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::completing_a_task_revokes_all_its_credentials_once(&store);
        }
        #[test]
        fn audited_tokens_are_noted_apart_from_the_tokens() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::audited_tokens_are_noted_apart_from_the_tokens(&store);
        }
        #[test]
        fn lapsed_approvals_are_claimed_by_one_sweeper_until_marked_expired() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::lapsed_approvals_are_claimed_by_one_sweeper_until_marked_expired(
                &store,
            );
        }
        #[test]
        fn purging_removes_only_closed_approvals_and_expired_credentials_before_the_cutoff() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::purging_removes_only_closed_approvals_and_expired_credentials_before_the_cutoff(&store);
        }
        #[test]
        fn sealed_signing_keys_are_kept_and_activated() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::sealed_signing_keys_are_kept_and_activated(&store);
        }
        #[test]
        fn set_states_are_published_over_the_revision_seen() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::set_states_are_published_over_the_revision_seen(&store);
        }
        #[test]
        fn races_are_decided_by_the_store() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::races_are_decided_by_the_store(&store);
        }
        $crate::contract::leases::lease_suite!($fresh);
    };
}
pub(crate) use contract_suite;
