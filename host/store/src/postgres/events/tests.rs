//! Approval events on a real PostgreSQL server, followed by a second store on the
//! same database (a second replica).

use std::time::Duration;

use super::super::tests::{fresh_database, server};
use crate::{ApprovalEvents, PgStore, SetStore};

/// Waits (up to 20 s) until `signal` changes from `seen`.
fn changed(signal: &mut tokio::sync::watch::Receiver<u64>) -> bool {
    for _ in 0..200 {
        if signal.has_changed().unwrap_or(false) {
            signal.borrow_and_update();
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Two stores on one fresh database (two replicas), or `None` (said loudly).
fn two_replicas() -> Option<(PgStore, PgStore)> {
    let Some(base) = server() else {
        eprintln!("SKIPPED: no PostgreSQL test server (ARBITER_TEST_POSTGRES is unset)");
        return None;
    };
    let url = fresh_database(&base);
    Some((
        PgStore::open(&url).expect("a"),
        PgStore::open(&url).expect("b"),
    ))
}

#[test]
fn events_appended_on_one_replica_are_announced_to_and_read_by_another_in_order() {
    let Some((a, b)) = two_replicas() else {
        return;
    };
    let mut signal = b.approval_event_signal().expect("PostgreSQL has events");
    // The listener announces its (first) connection: anything before it is read then.
    assert!(
        changed(&mut signal),
        "the listening connection never came up"
    );
    assert_eq!(b.approval_event_head().expect("head"), 0);

    let first = a
        .append_approval_event("a", "created", "ap-1", 1_000)
        .expect("append");
    assert!(
        changed(&mut signal),
        "no notification reached the other replica"
    );
    let second = b
        .append_approval_event("b", "vote", "ap-1", 2_000)
        .expect("append");
    assert!(second > first);
    let events = b.approval_events_after(0, 10).expect("after");
    let seen: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.seq,
                e.replica.as_str(),
                e.step.as_str(),
                e.approval_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (first, "a", "created", "ap-1"),
            (second, "b", "vote", "ap-1")
        ]
    );
    assert_eq!(a.approval_events_after(first, 10).expect("after").len(), 1);
    assert_eq!(a.approval_events_after(first, 0).expect("limit").len(), 0);
    assert_eq!(a.approval_event_head().expect("head"), second);

    // Sequence numbers follow commit order, whoever appends at once.
    std::thread::scope(|s| {
        for store in [&a, &b] {
            s.spawn(move || {
                for i in 0..20 {
                    store
                        .append_approval_event("x", "vote", &format!("ap-{i}"), 3_000)
                        .expect("append");
                }
            });
        }
    });
    let all = a.approval_events_after(0, 100).expect("all");
    assert_eq!(all.len(), 42);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));

    // Old events are purged; the head stays where it was.
    assert_eq!(a.purge_approval_events(2_500).expect("purge"), 2);
    assert_eq!(b.approval_events_after(0, 100).expect("rest").len(), 40);
}

#[test]
fn a_set_change_stored_by_one_replica_is_announced_to_another() {
    let Some((a, b)) = two_replicas() else {
        return;
    };
    let mut sets = b
        .set_change_signal()
        .expect("PostgreSQL announces set changes");
    let mut events = b.approval_event_signal().expect("events");
    assert!(changed(&mut sets), "the listening connection never came up");
    assert!(changed(&mut events));
    let state = crate::StoredSetState {
        name: "reference".into(),
        enforced: "d1".into(),
        shadow: None,
        config: Some("d1".into()),
        versions: vec!["d1".into()],
        revision: 0,
        changed_by: "a".into(),
        changed_micros: 7,
    };
    let bundle = crate::StoredBundle {
        digest: "d1".into(),
        name: "reference".into(),
        version: "1.0.0".into(),
        source: crate::BundleSource::Builtin("builtin:reference".into()),
        origin: "upload".into(),
        signer: None,
        added_micros: 5,
    };
    a.publish_set(&state, &[bundle], 0).expect("publish");
    assert!(
        changed(&mut sets),
        "no announcement reached the other replica"
    );
    assert_eq!(b.set_revision().expect("revision"), 1);
    // Announced on its own channel: the approval-event followers are not woken.
    assert!(!events.has_changed().unwrap_or(true));
}
