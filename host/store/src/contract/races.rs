//! The race part of the contract: what many callers at once must not break.

use super::{approval, credential, vote};
use crate::*;

/// Many callers at once (threads here; replicas in production): one approval is
/// consumed exactly once, each approver's vote counts once and the count decides, and
/// one request held many times at once opens one approval.
pub(crate) fn races_are_decided_by_the_store(s: &dyn StateStore) {
    s.create_approval(&approval("race", 3)).expect("create");
    let outcomes: Vec<VoteOutcome> = std::thread::scope(|t| {
        let voters: Vec<_> = ["a", "b", "c", "a", "b", "c", "d", "e"]
            .into_iter()
            .map(|who| t.spawn(move || s.vote("race", &vote(who, true), 3_000).expect("vote")))
            .collect();
        voters
            .into_iter()
            .map(|h| h.join().expect("voter"))
            .collect()
    });
    let counted = outcomes
        .iter()
        .filter(|o| matches!(o, VoteOutcome::Counted(_)))
        .count();
    assert_eq!(
        counted, 3,
        "three distinct approvers were needed and counted"
    );
    let a = s.approval("race", 3_000).expect("read").expect("exists");
    assert_eq!(a.state, ApprovalState::Approved);
    assert_eq!(a.votes.len(), 3);
    let consumed = std::thread::scope(|t| {
        let racers: Vec<_> = (0..16)
            .map(|i| {
                t.spawn(move || {
                    let signed = credential(&format!("k-race-{i}"), "race");
                    s.redeem_approval("race", &format!("d{i}"), 4_000, Some(&signed))
                        .expect("consume")
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|h| h.join().expect("racer"))
            .filter(|won| *won)
            .count()
    });
    assert_eq!(consumed, 1, "consumed exactly once");
    let recorded = (0..16)
        .filter(|i| {
            s.credential(&format!("k-race-{i}"))
                .expect("read")
                .is_some()
        })
        .count();
    assert_eq!(recorded, 1, "only the winner's credential is recorded");
    let created = std::thread::scope(|t| {
        let holders: Vec<_> = (0..8)
            .map(|i| {
                t.spawn(move || {
                    let mut a = approval(&format!("held{i}"), 1);
                    a.request_digest = "same".into();
                    s.hold_approval(&a, 2_000).expect("hold")
                })
            })
            .collect();
        holders
            .into_iter()
            .map(|h| h.join().expect("holder"))
            .collect::<Vec<_>>()
    });
    assert_eq!(created.iter().filter(|(_, new)| *new).count(), 1);
    let ids: std::collections::BTreeSet<&str> =
        created.iter().map(|(a, _)| a.new.id.as_str()).collect();
    assert_eq!(ids.len(), 1, "every holder joined one approval: {ids:?}");
    // Every replica sweeps lapsed approvals at once: each is claimed by one of them.
    for i in 0..20 {
        s.create_approval(&approval(&format!("lapsed{i}"), 1))
            .expect("create");
    }
    let claims: Vec<Vec<String>> = std::thread::scope(|t| {
        let sweepers: Vec<_> = (0..8)
            .map(|i| {
                t.spawn(move || {
                    s.claim_lapsed_approvals(&format!("r{i}"), 20_000, 64, 20_000, 5_000)
                        .expect("claim")
                        .into_iter()
                        .map(|a| a.new.id)
                        .filter(|id| id.starts_with("lapsed"))
                        .collect()
                })
            })
            .collect();
        sweepers
            .into_iter()
            .map(|h| h.join().expect("sweeper"))
            .collect()
    });
    let all: Vec<&String> = claims.iter().flatten().collect();
    let distinct: std::collections::BTreeSet<&String> = all.iter().copied().collect();
    assert_eq!(
        (all.len(), distinct.len()),
        (20, 20),
        "each lapsed approval claimed by exactly one sweeper: {claims:?}"
    );
}
