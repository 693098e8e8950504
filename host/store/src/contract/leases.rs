//! The replica-lease part of the contract: a replica id is held by one live process
//! at a time, whoever races for it; time is injected, so expiry is tested without
//! waiting.

use crate::*;

const TTL: i64 = 10_000;

fn claim(s: &dyn StateStore, id: &str, nonce: &str, now: i64) -> Result<(), ReplicaLease> {
    s.claim_replica(id, nonce, "1.2.3", now, TTL)
        .expect("claim")
}

pub(crate) fn a_replica_id_is_held_by_one_live_process_at_a_time(s: &dyn StateStore) {
    assert_eq!(claim(s, "r1", "n1", 1_000), Ok(()));
    let holder = claim(s, "r1", "n2", 5_000).expect_err("held by n1");
    assert_eq!(
        holder,
        ReplicaLease {
            id: "r1".into(),
            version: "1.2.3".into(),
            started_micros: 1_000,
            renewed_micros: 1_000,
            expires_micros: 11_000,
        }
    );
    // Claiming again what is ours renews it; it started when first claimed.
    assert_eq!(claim(s, "r1", "n1", 6_000), Ok(()));
    // Another id is another lease.
    assert_eq!(claim(s, "r2", "n2", 6_000), Ok(()));
    let live = s.replicas(6_000).expect("replicas");
    let seen: Vec<(&str, i64, i64, i64)> = live
        .iter()
        .map(|l| {
            let ReplicaLease {
                id,
                started_micros,
                renewed_micros,
                expires_micros,
                ..
            } = l;
            (
                id.as_str(),
                *started_micros,
                *renewed_micros,
                *expires_micros,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("r1", 1_000, 6_000, 16_000), ("r2", 6_000, 6_000, 16_000)]
    );
}

pub(crate) fn an_expired_lease_is_taken_over_and_its_old_holder_cannot_renew_it(
    s: &dyn StateStore,
) {
    assert_eq!(claim(s, "r1", "n1", 1_000), Ok(()));
    assert!(claim(s, "r1", "n2", 10_999).is_err(), "live until 11_000");
    assert_eq!(claim(s, "r1", "n2", 11_000), Ok(()), "expired: taken over");
    assert!(!s.renew_replica("r1", "n1", 11_500, TTL).expect("renew"));
    assert!(s.renew_replica("r1", "n2", 11_500, TTL).expect("renew"));
    let live = s.replicas(12_000).expect("replicas");
    assert_eq!(live.len(), 1);
    assert_eq!(
        (live[0].started_micros, live[0].expires_micros),
        (11_000, 21_500)
    );
    assert!(s.replicas(21_500).expect("replicas").is_empty());
    // Past its expiry but taken by no one, the lease is still its holder's to renew.
    assert!(s.renew_replica("r1", "n2", 50_000, TTL).expect("renew"));
    assert_eq!(s.replicas(50_000).expect("replicas").len(), 1);
}

pub(crate) fn releasing_a_lease_frees_its_id_at_once(s: &dyn StateStore) {
    assert_eq!(claim(s, "r1", "n1", 1_000), Ok(()));
    assert!(!s.release_replica("r1", "n2").expect("not n2's"));
    assert!(claim(s, "r1", "n2", 2_000).is_err());
    assert!(s.release_replica("r1", "n1").expect("release"));
    assert!(s.replicas(2_000).expect("replicas").is_empty());
    assert_eq!(claim(s, "r1", "n2", 2_000), Ok(()), "free before the TTL");
    assert!(!s.release_replica("r1", "n1").expect("no longer n1's"));
    assert!(!s.renew_replica("r1", "n1", 2_500, TTL).expect("renew"));
    assert_eq!(
        s.replicas(2_500).expect("replicas")[0].started_micros,
        2_000
    );
}

pub(crate) fn processes_racing_for_one_id_have_one_winner(s: &dyn StateStore) {
    const RACERS: usize = 8;
    // Racing for a free id, then for the same id once its lease ran out.
    for (round, now) in [(0, 1_000), (1, 1_000 + TTL)] {
        let barrier = std::sync::Barrier::new(RACERS);
        let won: Vec<bool> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..RACERS)
                .map(|i| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        claim(s, "r1", &format!("round{round}-n{i}"), now).is_ok()
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("racer"))
                .collect()
        });
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "round {round}: {won:?}"
        );
    }
}

/// The tests above as `#[test]`s, for `contract_suite!`.
macro_rules! lease_suite {
    ($fresh:expr) => {
        #[test]
        fn a_replica_id_is_held_by_one_live_process_at_a_time() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::leases::a_replica_id_is_held_by_one_live_process_at_a_time(&store);
        }
        #[test]
        fn an_expired_lease_is_taken_over_and_its_old_holder_cannot_renew_it() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::leases::an_expired_lease_is_taken_over_and_its_old_holder_cannot_renew_it(&store);
        }
        #[test]
        fn releasing_a_lease_frees_its_id_at_once() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::leases::releasing_a_lease_frees_its_id_at_once(&store);
        }
        #[test]
        fn processes_racing_for_one_id_have_one_winner() {
            let Some((_keep, store)) = $fresh else {
                return;
            };
            $crate::contract::leases::processes_racing_for_one_id_have_one_winner(&store);
        }
    };
}
pub(crate) use lease_suite;
