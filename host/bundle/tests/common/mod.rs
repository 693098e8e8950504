//! Fixtures shared by the bundle tests: a small set directory on disk, and tar archives
//! written by hand so tests can build what `pack` never would.

#![allow(dead_code, reason = "each test binary uses part of the fixtures")]

use std::path::PathBuf;

use arbiter_bundle::{FileDigest, Index};
use sha2::{Digest as _, Sha256};

/// The demo set's manifest.
pub(crate) const MANIFEST: &str = r#"format = 1
name = "demo"
version = "1.0.0"
data = ["data/teams.json"]

[[plugins]]
name = "p"
path = "p.wasm"
"#;
/// Stands in for a component: the bundle crate never compiles plugins.
pub(crate) const PLUGIN: &[u8] = b"\0asm\x0d\0\x01\0 not really a component";
pub(crate) const TEAMS: &[u8] = br#"{"payments": ["alice"]}"#;

/// A set directory and a place for its bundle, removed on drop.
pub(crate) struct Fixture {
    pub dir: tempfile::TempDir,
    pub set: PathBuf,
    pub bundle: PathBuf,
}

/// The demo set on disk.
pub(crate) fn fixture() -> Fixture {
    fixture_with(MANIFEST, &[("p.wasm", PLUGIN), ("data/teams.json", TEAMS)])
}

/// A set directory holding `manifest` and `files`.
pub(crate) fn fixture_with(manifest: &str, files: &[(&str, &[u8])]) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = dir.path().join("set");
    std::fs::create_dir(&set).expect("set dir");
    std::fs::write(set.join("policy-set.toml"), manifest).expect("manifest");
    for (path, bytes) in files {
        let full = set.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("file dir");
        }
        std::fs::write(full, bytes).expect("set file");
    }
    let bundle = dir.path().join("demo.bundle");
    Fixture { dir, set, bundle }
}

/// The demo set, packed; returns the fixture and the bundle's bytes.
pub(crate) fn packed() -> (Fixture, Vec<u8>) {
    let f = fixture();
    arbiter_bundle::pack(&f.set, &f.bundle).expect("pack");
    let bytes = std::fs::read(&f.bundle).expect("read bundle");
    (f, bytes)
}

/// Every entry of an archive, in order, with its raw path.
pub(crate) fn entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .expect("entries")
        .map(|e| {
            let mut e = e.expect("entry");
            let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).expect("entry data");
            (path, data)
        })
        .collect()
}

/// An archive of regular files, paths written as given (no checks, so `../x` works).
pub(crate) fn files_tar(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let raw: Vec<_> = entries
        .iter()
        .map(|(p, d)| (p.as_str(), tar::EntryType::Regular, d.as_slice()))
        .collect();
    raw_tar(&raw)
}

/// An archive of arbitrary entries, paths (at most 100 bytes) written as given.
pub(crate) fn raw_tar(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(*kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, *data).expect("append");
    }
    builder.into_inner().expect("finish")
}

/// A bundle written by hand: an index consistent with `manifest` and `files`
/// (listed in the order given), then the manifest and the files.
pub(crate) fn hand_made(manifest: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut entries = vec![
        ("bundle.json".to_string(), index_json(manifest, files)),
        ("policy-set.toml".to_string(), manifest.as_bytes().to_vec()),
    ];
    entries.extend(files.iter().map(|(p, d)| (p.to_string(), d.to_vec())));
    files_tar(&entries)
}

/// `bundle.json` for `manifest` and `files`, named like the demo set.
pub(crate) fn index_json(manifest: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let index = Index {
        format: 1,
        name: "demo".into(),
        version: "1.0.0".into(),
        manifest: digest("policy-set.toml", manifest.as_bytes()),
        files: files.iter().map(|(p, d)| digest(p, d)).collect(),
    };
    serde_json::to_vec(&index).expect("index json")
}

pub(crate) fn digest(path: &str, bytes: &[u8]) -> FileDigest {
    FileDigest {
        path: path.into(),
        sha256: sha256(bytes),
        size: bytes.len() as u64,
    }
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Replaces the data of the entry at `path`.
pub(crate) fn replace(entries: &mut [(String, Vec<u8>)], path: &str, data: Vec<u8>) {
    let entry = entries
        .iter_mut()
        .find(|(p, _)| p == path)
        .expect("entry to replace");
    entry.1 = data;
}

/// The data of the entry at `path`.
pub(crate) fn data_of<'e>(entries: &'e [(String, Vec<u8>)], path: &str) -> &'e [u8] {
    &entries.iter().find(|(p, _)| p == path).expect("entry").1
}
