//! Sets that cannot be packed, and archives that are not well-formed bundles.

#![allow(
    clippy::expect_used,
    reason = "test code: a failed expectation is the test failing"
)]

mod common;

use arbiter_bundle::{BundleError, MAX_ENTRIES, MAX_FILE_BYTES, Trust, open, pack};
use common::*;
use tar::EntryType;

fn refused(bytes: &[u8]) -> BundleError {
    open(bytes, "demo.bundle", Trust::Any).expect_err("bundle must be refused")
}

/// The demo bundle's entries with `extra` appended.
fn demo_with(extra: (&str, &[u8])) -> Vec<u8> {
    let (_f, bytes) = packed();
    let mut entries = entries(&bytes);
    entries.push((extra.0.to_string(), extra.1.to_vec()));
    files_tar(&entries)
}

#[test]
fn missing_data_file_is_refused_at_pack_time() {
    let f = fixture_with(MANIFEST, &[("p.wasm", PLUGIN)]);
    let err = pack(&f.set, &f.bundle).expect_err("pack must refuse");
    assert!(
        matches!(&err, BundleError::SetFile { path, source, .. }
            if path == "data/teams.json" && source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert!(err.to_string().ends_with(
        "names `data/teams.json`, which cannot be read; add the file or fix the manifest"
    ));
    assert!(!f.bundle.exists());
}

#[test]
fn plugin_that_differs_from_its_pin_is_refused_at_pack_time() {
    let pin = "0".repeat(64);
    let manifest = format!("{MANIFEST}sha256 = \"{pin}\"\n");
    let f = fixture_with(&manifest, &[("p.wasm", PLUGIN), ("data/teams.json", TEAMS)]);
    let err = pack(&f.set, &f.bundle).expect_err("pack must refuse");
    assert!(
        matches!(&err, BundleError::PinMismatch { plugin, expected, actual, .. }
            if plugin == "p" && *expected == pin && *actual == sha256(PLUGIN)),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("rebuild the plugin or update `sha256`")
    );
    // A correct pin packs.
    let good = format!("{MANIFEST}sha256 = \"{}\"\n", sha256(PLUGIN));
    std::fs::write(f.set.join("policy-set.toml"), good).expect("manifest");
    pack(&f.set, &f.bundle).expect("correct pin packs");
}

#[test]
fn plugin_that_differs_from_its_pin_is_refused_in_a_hand_made_bundle() {
    let manifest = format!("{MANIFEST}sha256 = \"{}\"\n", "1".repeat(64));
    let bytes = hand_made(&manifest, &[("data/teams.json", TEAMS), ("p.wasm", PLUGIN)]);
    let err = refused(&bytes);
    assert!(
        matches!(&err, BundleError::PinMismatch { path, .. } if path == "p.wasm"),
        "{err:?}"
    );
}

#[test]
fn file_listed_in_the_index_but_absent_is_missing() {
    let mut entries = vec![
        (
            "bundle.json".to_string(),
            index_json(MANIFEST, &[("data/teams.json", TEAMS), ("p.wasm", PLUGIN)]),
        ),
        ("policy-set.toml".to_string(), MANIFEST.as_bytes().to_vec()),
        ("p.wasm".to_string(), PLUGIN.to_vec()),
    ];
    let err = refused(&files_tar(&entries));
    assert!(
        matches!(&err, BundleError::Missing { path, .. } if path == "data/teams.json"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("`data/teams.json` is listed in `bundle.json` but missing")
    );
    entries.push(("data/teams.json".to_string(), TEAMS.to_vec()));
    assert!(open(&files_tar(&entries), "demo.bundle", Trust::Any).is_ok());
}

#[test]
fn file_the_manifest_names_but_the_bundle_lacks_is_refused() {
    let bytes = hand_made(MANIFEST, &[("p.wasm", PLUGIN)]);
    let err = refused(&bytes);
    assert!(
        matches!(&err, BundleError::NotInBundle { path, .. } if path == "data/teams.json"),
        "{err:?}"
    );
}

#[test]
fn file_the_manifest_does_not_name_is_refused() {
    let files: [(&str, &[u8]); 3] = [
        ("data/teams.json", TEAMS),
        ("notes.txt", b"hi"),
        ("p.wasm", PLUGIN),
    ];
    let err = refused(&hand_made(MANIFEST, &files));
    assert!(
        matches!(&err, BundleError::Unreferenced { path, .. } if path == "notes.txt"),
        "{err:?}"
    );
}

#[test]
fn file_not_listed_in_the_index_is_refused() {
    let err = refused(&demo_with(("extra.wasm", b"\0asm")));
    assert!(
        matches!(&err, BundleError::Unlisted { path, .. } if path == "extra.wasm"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "`demo.bundle`: `extra.wasm` is in the bundle but not listed in `bundle.json`: the bundle was altered after packing"
    );
}

#[test]
fn paths_that_leave_the_bundle_are_refused() {
    for path in [
        "../x",
        "data/../../x",
        "/etc/passwd",
        "./p.wasm",
        "a//b",
        "a\\b",
    ] {
        let err = refused(&demo_with((path, b"x")));
        assert!(
            matches!(&err, BundleError::UnsafePath { path: p, .. } if p == path),
            "{path}: {err:?}"
        );
    }
    let err = refused(&demo_with(("../x", b"x")));
    assert!(
        err.to_string()
            .contains("entry `../x` is not a plain relative path"),
        "{err}"
    );
}

#[test]
fn entries_that_are_not_regular_files_are_refused() {
    let (_f, bytes) = packed();
    let index = entries(&bytes).remove(0).1;
    for (kind, name) in [
        (EntryType::Symlink, "symbolic link"),
        (EntryType::Link, "hard link"),
        (EntryType::Directory, "directory"),
        (EntryType::Fifo, "fifo"),
    ] {
        let tar = raw_tar(&[
            ("bundle.json", EntryType::Regular, &index),
            ("data", kind, b""),
        ]);
        let err = refused(&tar);
        assert!(
            matches!(&err, BundleError::NotAFile { kind, path, .. } if *kind == name && path == "data"),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn duplicate_entries_are_refused() {
    let err = refused(&demo_with(("p.wasm", PLUGIN)));
    assert!(
        matches!(&err, BundleError::Duplicate { path, .. } if path == "p.wasm"),
        "{err:?}"
    );
    let err = refused(&demo_with(("bundle.json", b"{}")));
    assert!(
        matches!(&err, BundleError::Duplicate { path, .. } if path == "bundle.json"),
        "{err:?}"
    );
}

#[test]
fn bytes_that_are_not_a_tar_are_refused() {
    let err = refused(&[0x55; 2048]);
    assert!(matches!(err, BundleError::NotATar { .. }), "{err:?}");
    let err = refused(MANIFEST.as_bytes());
    assert!(matches!(err, BundleError::NotATar { .. }), "{err:?}");
}

#[test]
fn archive_without_the_index_first_is_not_a_bundle() {
    let (_f, bytes) = packed();
    let mut entries = entries(&bytes);
    entries.swap(0, 1);
    let err = refused(&files_tar(&entries));
    assert!(matches!(err, BundleError::NoIndex { .. }), "{err:?}");
    assert!(matches!(
        refused(&files_tar(&[])),
        BundleError::NoIndex { .. }
    ));
}

#[test]
fn unknown_format_is_refused_before_anything_else_in_the_index() {
    let index = br#"{"format": 2, "anything": "new"}"#.to_vec();
    let err = refused(&files_tar(&[("bundle.json".into(), index)]));
    assert!(
        matches!(err, BundleError::UnknownFormat { format: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("bundle format 2 is not supported"));
}

#[test]
fn malformed_index_is_refused() {
    let (_f, bytes) = packed();
    let mut entries = entries(&bytes);
    let index = String::from_utf8(entries[0].1.clone()).expect("utf8");
    entries[0].1 = index.replace("\"size\"", "\"bytes\"").into_bytes();
    let err = refused(&files_tar(&entries));
    assert!(matches!(err, BundleError::BadIndex { .. }), "{err:?}");
}

#[test]
fn index_naming_another_set_is_refused() {
    let (_f, bytes) = packed();
    let mut entries = entries(&bytes);
    let index = String::from_utf8(entries[0].1.clone()).expect("utf8");
    entries[0].1 = index.replace("\"demo\"", "\"other\"").into_bytes();
    let err = refused(&files_tar(&entries));
    assert!(
        matches!(&err, BundleError::IndexMismatch { field: "name", index, .. } if index == "other"),
        "{err:?}"
    );
}

#[test]
fn entry_over_the_file_limit_is_refused_from_its_header() {
    // Only the header: the size must be refused before anything is read or allocated.
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..6].copy_from_slice(b"p.wasm");
    header.set_size(MAX_FILE_BYTES + 1);
    header.set_cksum();
    let (_f, bytes) = packed();
    let index = entries(&bytes).remove(0).1;
    let mut tar = raw_tar(&[("bundle.json", EntryType::Regular, &index)]);
    tar.truncate(tar.len() - 1024); // drop the end-of-archive blocks
    tar.extend_from_slice(header.as_bytes());
    let err = refused(&tar);
    assert!(
        matches!(&err, BundleError::TooLarge { path, size, .. } if path == "p.wasm" && *size == MAX_FILE_BYTES + 1),
        "{err:?}"
    );
}

#[test]
fn archive_of_too_many_entries_is_refused() {
    let (_f, bytes) = packed();
    let mut entries = entries(&bytes);
    entries.extend((0..MAX_ENTRIES).map(|i| (format!("f{i}"), Vec::new())));
    let err = refused(&files_tar(&entries));
    assert!(matches!(err, BundleError::TooManyEntries { .. }), "{err:?}");
}

#[test]
fn manifest_errors_name_the_bundle() {
    let manifest = MANIFEST.replace("format = 1", "format = 7");
    let err = refused(&hand_made(
        &manifest,
        &[("data/teams.json", TEAMS), ("p.wasm", PLUGIN)],
    ));
    assert!(matches!(err, BundleError::Manifest(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("demo.bundle/policy-set.toml:1:"),
        "{err}"
    );
}

#[test]
fn reserved_names_cannot_be_set_files() {
    let manifest = MANIFEST.replace("data/teams.json", "bundle.sig");
    let f = fixture_with(&manifest, &[("p.wasm", PLUGIN), ("bundle.sig", b"{}")]);
    let err = pack(&f.set, &f.bundle).expect_err("pack must refuse");
    assert!(
        matches!(&err, BundleError::ReservedPath { path, .. } if path == "bundle.sig"),
        "{err:?}"
    );
}
