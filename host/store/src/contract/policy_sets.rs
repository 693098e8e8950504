//! The policy-set part of the contract: set states are published over the revision
//! the changing replica saw, with their bundles, and each replica reports its own.

use crate::*;

fn stored_state(name: &str, enforced: &str, versions: &[&str]) -> StoredSetState {
    StoredSetState {
        name: name.into(),
        enforced: enforced.into(),
        shadow: None,
        config: Some(enforced.into()),
        versions: versions.iter().map(|v| (*v).to_string()).collect(),
        revision: 0,
        changed_by: "replica-a".into(),
        changed_micros: 7,
    }
}

fn stored_bundle(digest: &str, source: BundleSource) -> StoredBundle {
    StoredBundle {
        digest: digest.into(),
        name: "reference".into(),
        version: digest.to_uppercase(),
        source,
        origin: "upload".into(),
        signer: Some("key-1".into()),
        added_micros: 5,
    }
}

/// Set states are stored with their bundles at a growing revision, only over the
/// state the changing replica saw; each replica's own report replaces its last one.
pub(crate) fn set_states_are_published_over_the_revision_seen(s: &dyn StateStore) {
    assert_eq!(s.set_revision().expect("revision"), 0);
    assert_eq!(s.set_states().expect("states"), (0, Vec::new()));
    let v1 = stored_bundle("d1", BundleSource::Bytes(vec![0, 1, 2, 255]));
    let builtin = stored_bundle("d0", BundleSource::Builtin("builtin:reference".into()));
    let first = s
        .publish_set(
            &stored_state("reference", "d1", &["d1", "d0"]),
            &[v1.clone(), builtin.clone()],
            0,
        )
        .expect("publish")
        .expect("nothing stored before");
    assert_eq!(s.set_revision().expect("revision"), first);
    assert_eq!(s.set_bundle("d1").expect("read"), Some(v1.clone()));
    assert_eq!(s.set_bundle("d0").expect("read"), Some(builtin));
    assert_eq!(s.set_bundle("nope").expect("read"), None);
    assert_eq!(
        s.stored_set_bundles(&["d0".into(), "d9".into(), "d1".into()])
            .expect("stored"),
        vec!["d0".to_string(), "d1".to_string()]
    );
    // A replica that saw no state for the name is too late now: nothing changes.
    assert_eq!(
        s.publish_set(&stored_state("reference", "d2", &["d2"]), &[], 0)
            .expect("publish"),
        None
    );
    let mut shadowing = stored_state("reference", "d1", &["d2", "d1"]);
    shadowing.shadow = Some("d2".into());
    let v2 = stored_bundle("d2", BundleSource::Bytes(vec![7; 300]));
    let second = s
        .publish_set(&shadowing, std::slice::from_ref(&v2), first)
        .expect("publish")
        .expect("over the revision seen");
    assert!(second > first);
    // A bundle stored before keeps its first bytes.
    let mut other = v1.clone();
    other.source = BundleSource::Bytes(vec![9]);
    let third = s
        .publish_set(&stored_state("other", "d1", &["d1"]), &[other], 0)
        .expect("publish")
        .expect("a new name");
    assert_eq!(s.set_bundle("d1").expect("read"), Some(v1));
    let (revision, states) = s.set_states().expect("states");
    assert_eq!(revision, third);
    assert_eq!(states.len(), 2);
    assert_eq!(states[0].name, "other");
    assert_eq!(
        states[1],
        StoredSetState {
            revision: second,
            ..shadowing
        }
    );

    let row = |replica: &str, name: &str, digest: &str| ReplicaSet {
        replica_id: replica.into(),
        name: name.into(),
        enforced_digest: digest.into(),
        enforced_version: digest.to_uppercase(),
        shadow_digest: None,
        error: None,
        updated_micros: 9,
    };
    s.record_replica_sets("a", &[row("a", "reference", "d1"), row("a", "other", "d1")])
        .expect("record");
    let mut refused = row("b", "reference", "d0");
    refused.error = Some("not signed by a trusted key".into());
    s.record_replica_sets("b", std::slice::from_ref(&refused))
        .expect("record");
    s.record_replica_sets("a", &[row("a", "reference", "d2")])
        .expect("record again");
    assert_eq!(
        s.replica_sets().expect("read"),
        vec![row("a", "reference", "d2"), refused]
    );
}
