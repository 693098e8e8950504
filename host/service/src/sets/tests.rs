//! The set lifecycle as a state machine: every transition, every refusal, and pruning
//! that keeps the enforced version, the shadow and the rollback target. Versions are
//! real compiled sets (the reference plugin under manifests that differ), so digests
//! are real.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use arbiter_core::Limits;
use arbiter_runtime::{PolicySet, Runtime, RuntimeConfig, SetSource};

use super::*;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("runtime starts"))
}

/// Version `version` of set `name`; `salt` changes the digest without changing the
/// version string.
fn version(name: &str, version: &str, salt: &str) -> Version {
    let bytes = std::fs::read(arbiter_plugin_build::plugin("reference")).expect("built");
    let mut files = BTreeMap::new();
    files.insert("reference.wasm".to_string(), bytes);
    let manifest = format!(
        "format = 1\nname = \"{name}\"\nversion = \"{version}\"\ndescription = \"{salt}\"\n[[plugins]]\nname = \"reference\"\npath = \"reference.wasm\"\n"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let set = rt
        .block_on(PolicySet::load(
            runtime(),
            SetSource::Files {
                origin: "test".into(),
                manifest,
                files,
            },
            Limits::default(),
        ))
        .expect("loads");
    Version::new(set, "test", None)
}

fn enforced(sets: &Sets, name: &str) -> String {
    sets.get_named(name)
        .expect("loaded")
        .enforced
        .set
        .identity()
        .version
        .clone()
}

fn shadow(sets: &Sets, name: &str) -> Option<String> {
    sets.get_named(name)
        .expect("loaded")
        .shadow
        .map(|s| s.version.set.identity().version.clone())
}

fn loaded(sets: &Sets, name: &str) -> Vec<String> {
    sets.get_named(name)
        .expect("loaded")
        .versions
        .iter()
        .map(|v| v.set.identity().version.clone())
        .collect()
}

#[test]
fn a_registry_needs_sets_with_unique_names_and_a_loaded_default() {
    assert_eq!(Sets::new(vec![], None).err(), Some(SetError::NoSets));
    let dup = Sets::new(vec![version("a", "1", ""), version("a", "2", "")], None);
    assert_eq!(
        dup.err(),
        Some(SetError::DuplicateName { name: "a".into() })
    );
    let missing = Sets::new(vec![version("a", "1", "")], Some("b"));
    assert_eq!(
        missing.err(),
        Some(SetError::UnknownDefault {
            name: "b".into(),
            loaded: vec!["a".into()]
        })
    );
    let sets = Sets::new(
        vec![version("a", "1", ""), version("b", "1", "")],
        Some("b"),
    )
    .expect("valid");
    assert_eq!(sets.default_name(), "b");
    assert_eq!(sets.get(None).expect("default").identity().name, "b");
}

#[test]
fn add_loads_enforces_or_shadows_and_never_twice() {
    let sets = Sets::new(vec![version("a", "1", "")], None).expect("valid");
    // A new name only arrives enforced.
    assert_eq!(
        sets.add(version("n", "1", ""), false, true),
        Err(SetError::NotEnforcedYet {
            name: "n".into(),
            version: "1".into()
        })
    );
    sets.add(version("n", "1", ""), true, false)
        .expect("enforced");
    assert_eq!(enforced(&sets, "n"), "1");
    // Loaded only: held, not enforced.
    sets.add(version("a", "2", ""), false, false)
        .expect("loaded");
    assert_eq!(enforced(&sets, "a"), "1");
    assert_eq!(loaded(&sets, "a"), ["2", "1"]);
    // The same digest again is not a second version.
    sets.add(version("a", "2", ""), false, false)
        .expect("again");
    assert_eq!(loaded(&sets, "a"), ["2", "1"]);
    // Loaded as shadow, then as enforced (which ends its shadowing).
    sets.add(version("a", "3", ""), false, true)
        .expect("shadow");
    assert_eq!(shadow(&sets, "a").as_deref(), Some("3"));
    sets.add(version("a", "3", ""), true, false)
        .expect("enforce");
    assert_eq!(enforced(&sets, "a"), "3");
    assert_eq!(shadow(&sets, "a"), None);
}

#[test]
fn activate_shadow_demote_clear_and_rollback() {
    let sets = Sets::new(vec![version("a", "1", "")], None).expect("valid");
    let unknown = SetError::UnknownSet { name: "z".into() };
    assert_eq!(sets.activate("z", "1"), Err(unknown.clone()));
    assert_eq!(sets.shadow("z", "1"), Err(unknown.clone()));
    assert_eq!(sets.demote("z"), Err(unknown.clone()));
    assert_eq!(sets.clear_shadow("z"), Err(unknown.clone()));
    assert_eq!(sets.rollback("z", None), Err(unknown));

    // Nothing earlier yet.
    assert_eq!(
        sets.demote("a"),
        Err(SetError::NoEarlierVersion { name: "a".into() })
    );
    assert_eq!(
        sets.rollback("a", None),
        Err(SetError::NothingToRollBack { name: "a".into() })
    );
    assert_eq!(
        sets.shadow("a", "1"),
        Err(SetError::ShadowIsEnforced {
            version: "1".into()
        })
    );

    sets.add(version("a", "2", ""), false, false)
        .expect("loaded");
    assert!(matches!(
        sets.activate("a", "9"),
        Err(SetError::UnknownVersion { ref key, ref loaded, .. }) if key == "9" && loaded.len() == 2
    ));
    sets.activate("a", "2").expect("activate");
    assert_eq!(enforced(&sets, "a"), "2");

    // Shadow the old one, then stop.
    sets.shadow("a", "1").expect("shadow");
    assert_eq!(shadow(&sets, "a").as_deref(), Some("1"));
    sets.clear_shadow("a").expect("clear");
    assert_eq!(shadow(&sets, "a"), None);

    // Demote: the previous version is enforced again, the demoted one shadows.
    sets.demote("a").expect("demote");
    assert_eq!(enforced(&sets, "a"), "1");
    assert_eq!(shadow(&sets, "a").as_deref(), Some("2"));

    // Roll back (to the version enforced before) and forward again by key.
    sets.rollback("a", None).expect("rollback");
    assert_eq!(enforced(&sets, "a"), "2");
    assert_eq!(shadow(&sets, "a"), None, "enforcing the shadow ends it");
    sets.rollback("a", Some("1")).expect("rollback to a key");
    assert_eq!(enforced(&sets, "a"), "1");
}

#[test]
fn a_key_that_names_several_versions_is_refused_and_a_digest_prefix_is_not() {
    let sets = Sets::new(vec![version("a", "1", "x")], None).expect("valid");
    let other = version("a", "1", "y");
    let digest = other.set.identity().digest.clone();
    sets.add(other, false, false).expect("loaded");
    assert_eq!(
        sets.activate("a", "1"),
        Err(SetError::AmbiguousVersion {
            name: "a".into(),
            key: "1".into()
        })
    );
    sets.activate("a", &digest[..12]).expect("by digest prefix");
    assert_eq!(sets.get(Some("a")).expect("a").identity().digest, digest);
}

#[test]
fn pruning_keeps_the_enforced_the_shadow_and_the_rollback_target() {
    let sets = Sets::new(vec![version("a", "base", "")], None).expect("valid");
    sets.add(version("a", "previous", ""), true, false)
        .expect("enforce");
    sets.add(version("a", "current", ""), true, false)
        .expect("enforce");
    sets.shadow("a", "base").expect("shadow the oldest");
    for i in 0..MAX_VERSIONS + 4 {
        sets.add(version("a", &format!("extra-{i}"), ""), false, false)
            .expect("loaded");
    }
    let kept = loaded(&sets, "a");
    assert_eq!(kept.len(), MAX_VERSIONS, "{kept:?}");
    for must in ["current", "previous", "base"] {
        assert!(kept.iter().any(|v| v == must), "{must} pruned: {kept:?}");
    }
    assert_eq!(enforced(&sets, "a"), "current");
    assert_eq!(shadow(&sets, "a").as_deref(), Some("base"));
    sets.rollback("a", None)
        .expect("the rollback target survived");
    assert_eq!(enforced(&sets, "a"), "previous");
    // The newest extras are the ones kept.
    assert!(
        kept.iter()
            .any(|v| v == &format!("extra-{}", MAX_VERSIONS + 3))
    );
}

#[test]
fn a_snapshot_puts_back_the_whole_registry() {
    let sets = Sets::new(vec![version("a", "1", "")], None).expect("valid");
    let before = sets.snapshot();
    sets.add(version("a", "2", ""), true, false)
        .expect("enforce");
    assert_eq!(enforced(&sets, "a"), "2");
    sets.restore(before);
    assert_eq!(enforced(&sets, "a"), "1");
    assert_eq!(loaded(&sets, "a"), ["1"]);
}
