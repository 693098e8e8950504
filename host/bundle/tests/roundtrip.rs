//! What packing, signing and opening produce when nothing is wrong.

#![allow(
    clippy::expect_used,
    reason = "test code: a failed expectation is the test failing"
)]

mod common;

use std::collections::BTreeMap;

use arbiter_bundle::{BundleError, Trust, is_bundle, open_file, pack, sign};
use arbiter_keys::SecretKey;
use common::*;

#[test]
fn pack_then_open_returns_the_manifest_and_files_unchanged() {
    let f = fixture();
    let index = pack(&f.set, &f.bundle).expect("pack");
    let bundle = open_file(&f.bundle, Trust::Any).expect("open");
    assert_eq!(bundle.manifest, MANIFEST);
    let expected: BTreeMap<String, Vec<u8>> = [
        ("data/teams.json".to_string(), TEAMS.to_vec()),
        ("p.wasm".to_string(), PLUGIN.to_vec()),
    ]
    .into();
    assert_eq!(bundle.files, expected);
    assert_eq!(bundle.index, index);
    assert_eq!(
        (index.name.as_str(), index.version.as_str()),
        ("demo", "1.0.0")
    );
    assert_eq!(
        index.manifest,
        digest("policy-set.toml", MANIFEST.as_bytes())
    );
    assert_eq!(
        index.files,
        [digest("data/teams.json", TEAMS), digest("p.wasm", PLUGIN)]
    );
    assert_eq!(bundle.signer, None);
    let bytes = std::fs::read(&f.bundle).expect("read");
    assert_eq!(
        bundle.digest,
        sha256(data_of(&entries(&bytes), "bundle.json"))
    );
}

#[test]
fn pack_accepts_the_manifest_path_as_well_as_its_directory() {
    let f = fixture();
    pack(&f.set.join("policy-set.toml"), &f.bundle).expect("pack");
    assert_eq!(
        open_file(&f.bundle, Trust::Any).expect("open").files.len(),
        2
    );
}

#[test]
fn packing_twice_gives_identical_bytes() {
    let f = fixture();
    pack(&f.set, &f.bundle).expect("first pack");
    let first = std::fs::read(&f.bundle).expect("read");
    // Nothing from the file system may leak into the bundle: not mtimes, not modes.
    let plugin = std::fs::File::options()
        .write(true)
        .open(f.set.join("p.wasm"))
        .expect("plugin");
    plugin
        .set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 << 30))
        .expect("mtime");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let perms = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(f.set.join("p.wasm"), perms).expect("chmod");
    }
    let again = f.dir.path().join("again.bundle");
    pack(&f.set, &again).expect("second pack");
    assert_eq!(first, std::fs::read(&again).expect("read again"));
}

#[test]
fn entries_are_ordered_with_fixed_headers() {
    let (_f, bytes) = packed();
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut names = Vec::new();
    for entry in archive.entries().expect("entries") {
        let entry = entry.expect("entry");
        let h = entry.header();
        assert_eq!(h.entry_type(), tar::EntryType::Regular);
        assert_eq!(h.mode().expect("mode"), 0o644);
        assert_eq!(h.mtime().expect("mtime"), 0);
        assert_eq!((h.uid().expect("uid"), h.gid().expect("gid")), (0, 0));
        names.push(String::from_utf8_lossy(&entry.path_bytes()).into_owned());
    }
    assert_eq!(
        names,
        [
            "bundle.json",
            "policy-set.toml",
            "data/teams.json",
            "p.wasm"
        ]
    );
}

#[test]
fn signed_bundle_opens_with_its_key_and_names_the_signer() {
    let (f, _) = packed();
    let key = SecretKey::generate().expect("key");
    let other = SecretKey::generate().expect("key");
    let signed = sign(&f.bundle, &key).expect("sign");
    assert_eq!(signed.key_id, key.public().id());

    let trusted = [other.public(), key.public()];
    let bundle = open_file(&f.bundle, Trust::Keys(&trusted)).expect("open");
    assert_eq!(bundle.signer, Some(key.public().id()));
    assert_eq!(bundle.digest, signed.digest);
    assert_eq!(bundle.manifest, MANIFEST);

    let names: Vec<_> = entries(&std::fs::read(&f.bundle).expect("read"))
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(names[..2], ["bundle.json", "bundle.sig"]);
    // Without trusted keys nothing is verified, so nothing is claimed.
    assert_eq!(open_file(&f.bundle, Trust::Any).expect("open").signer, None);
}

#[test]
fn signing_leaves_the_index_and_files_as_packed() {
    let (f, unsigned) = packed();
    sign(&f.bundle, &SecretKey::generate().expect("key")).expect("sign");
    let mut signed = entries(&std::fs::read(&f.bundle).expect("read"));
    signed.retain(|(p, _)| p != "bundle.sig");
    assert_eq!(signed, entries(&unsigned));
}

#[test]
fn signing_again_replaces_the_signature() {
    let (f, _) = packed();
    let a = SecretKey::generate().expect("key");
    let b = SecretKey::generate().expect("key");
    sign(&f.bundle, &a).expect("sign a");
    sign(&f.bundle, &b).expect("sign b");
    let sigs = entries(&std::fs::read(&f.bundle).expect("read"))
        .into_iter()
        .filter(|(p, _)| p == "bundle.sig")
        .count();
    assert_eq!(sigs, 1);
    let only_a = [a.public()];
    let err = open_file(&f.bundle, Trust::Keys(&only_a)).expect_err("a no longer signs");
    assert!(
        matches!(&err, BundleError::UnknownKey { key_id, .. } if *key_id == b.public().id()),
        "{err:?}"
    );
    let only_b = [b.public()];
    let bundle = open_file(&f.bundle, Trust::Keys(&only_b)).expect("b signs");
    assert_eq!(bundle.signer, Some(b.public().id()));
}

#[test]
fn bundles_are_recognised_by_content() {
    let (f, _) = packed();
    let renamed = f.dir.path().join("policy.toml");
    std::fs::copy(&f.bundle, &renamed).expect("copy");
    assert!(is_bundle(&f.bundle));
    assert!(is_bundle(&renamed));
    assert!(!is_bundle(&f.set));
    assert!(!is_bundle(&f.set.join("policy-set.toml")));
    assert!(!is_bundle(&f.set.join("p.wasm")));
    assert!(!is_bundle(&f.dir.path().join("absent.bundle")));
}

#[test]
fn plugin_paths_keep_the_manifest_spelling_for_the_runtime() {
    let manifest = MANIFEST.replace("path = \"p.wasm\"", "path = \"./p.wasm\"");
    let f = fixture_with(&manifest, &[("p.wasm", PLUGIN), ("data/teams.json", TEAMS)]);
    let index = pack(&f.set, &f.bundle).expect("pack");
    assert!(index.files.iter().any(|d| d.path == "p.wasm"));
    let (text, files) = open_file(&f.bundle, Trust::Any)
        .expect("open")
        .into_set_files();
    assert_eq!(text, manifest);
    assert_eq!(files.get("./p.wasm").map(Vec::as_slice), Some(PLUGIN));
    assert_eq!(files.get("p.wasm").map(Vec::as_slice), Some(PLUGIN));
}

#[test]
fn long_paths_round_trip() {
    let long = format!("data/{}/teams.json", "nested".repeat(20));
    let manifest = MANIFEST.replace("data/teams.json", &long);
    let f = fixture_with(&manifest, &[("p.wasm", PLUGIN), (&long, TEAMS)]);
    pack(&f.set, &f.bundle).expect("pack");
    let bundle = open_file(&f.bundle, Trust::Any).expect("open");
    assert_eq!(bundle.files.get(&long).map(Vec::as_slice), Some(TEAMS));
}

#[test]
fn packing_replaces_the_output_and_leaves_no_temporary_file() {
    let f = fixture();
    std::fs::write(&f.bundle, b"an older bundle").expect("old");
    pack(&f.set, &f.bundle).expect("pack");
    assert!(open_file(&f.bundle, Trust::Any).is_ok());
    let mut names: Vec<_> = std::fs::read_dir(f.dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["demo.bundle", "set"]);
}
