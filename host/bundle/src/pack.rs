//! Writing bundles: packing a set directory, and signing a packed bundle.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arbiter_core::{Limits, Manifest, ManifestError};
use arbiter_keys::SecretKey;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::index::{
    ALGORITHM, BUNDLE_FORMAT, FileDigest, INDEX_FILE, Index, MANIFEST_FILE, SIGNATURE_FILE,
    SignatureFile, check_path, is_reserved, normalize, signed_message,
};
use crate::open::{read_bundle_file, unpack};
use crate::{BundleError, MAX_BUNDLE_BYTES, MAX_FILE_BYTES};

/// What [`sign`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The signing key's id.
    pub key_id: String,
    /// SHA-256 (hex) of the `bundle.json` that was signed.
    pub digest: String,
}

/// Packs the set whose manifest is `set` (a directory holding `policy-set.toml`, or the
/// manifest file itself) into an unsigned bundle at `out`, replacing any file there
/// atomically. Only the files the manifest names are packed; symbolic links in the set
/// directory are followed. Refuses a missing file, a file over [`MAX_FILE_BYTES`], and
/// a plugin whose bytes differ from the `sha256` its manifest pins.
pub fn pack(set: &Path, out: &Path) -> Result<Index, BundleError> {
    let manifest_path = if set.is_dir() {
        set.join(MANIFEST_FILE)
    } else {
        set.to_path_buf()
    };
    let manifest_name = manifest_path.display().to_string();
    let base = manifest_path.parent().unwrap_or(Path::new("."));
    let manifest_bytes = read_limited(&manifest_path, &manifest_name, MANIFEST_FILE, |source| {
        BundleError::Read {
            path: manifest_path.clone(),
            source,
        }
    })?;
    let text = String::from_utf8(manifest_bytes).map_err(|_| ManifestError {
        file: manifest_name.clone(),
        line: 0,
        message: "the manifest is not UTF-8 text".into(),
    })?;
    let manifest = Manifest::parse(&text, &manifest_name, Limits::default())?;

    let mut files = BTreeMap::new();
    for spec in &manifest.plugins {
        let rel = normalize(&spec.path);
        let bytes = read_set_file(&manifest_path, base, &rel, &mut files)?;
        let actual: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(expected) = spec.sha256
            && expected != actual
        {
            return Err(BundleError::PinMismatch {
                origin: manifest_name,
                plugin: spec.name.clone(),
                path: rel,
                expected: hex::encode(expected),
                actual: hex::encode(actual),
            });
        }
    }
    for rel in &manifest.data {
        read_set_file(&manifest_path, base, rel, &mut files)?;
    }

    let index = Index {
        format: BUNDLE_FORMAT,
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        manifest: digest_of(MANIFEST_FILE, text.as_bytes()),
        files: files.iter().map(|(path, b)| digest_of(path, b)).collect(),
    };
    let write_err = |source| BundleError::Write {
        path: out.to_path_buf(),
        source,
    };
    let mut index_json = serde_json::to_vec_pretty(&index).map_err(|e| write_err(e.into()))?;
    index_json.push(b'\n');
    let tar = write_tar(&index_json, None, text.as_bytes(), &files).map_err(write_err)?;
    check_total(&tar, out)?;
    write_atomic(out, &tar)?;
    Ok(index)
}

/// Signs the bundle at `path` with `key`, rewriting it atomically with a `bundle.sig`.
/// The bundle is fully checked first (digests, manifest, pins), so a broken bundle is
/// never signed. A bundle carries one signature: any previous one is replaced.
pub fn sign(path: &Path, key: &SecretKey) -> Result<Signed, BundleError> {
    let origin = path.display().to_string();
    let bytes = read_bundle_file(path, &origin)?;
    // The old signature is not checked: it is about to be replaced.
    let unpacked = unpack(&bytes, &origin)?;
    let public = key.public();
    let signature = key.sign(&signed_message(&unpacked.index_json));
    let sig = SignatureFile {
        algorithm: ALGORITHM.to_string(),
        key_id: public.id(),
        signature: base64::engine::general_purpose::STANDARD.encode(signature),
    };
    let write_err = |source| BundleError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut sig_json = serde_json::to_vec_pretty(&sig).map_err(|e| write_err(e.into()))?;
    sig_json.push(b'\n');
    let tar = write_tar(
        &unpacked.index_json,
        Some(&sig_json),
        unpacked.manifest.as_bytes(),
        &unpacked.files,
    )
    .map_err(write_err)?;
    check_total(&tar, path)?;
    write_atomic(path, &tar)?;
    Ok(Signed {
        key_id: sig.key_id,
        digest: hex::encode(Sha256::digest(&unpacked.index_json)),
    })
}

fn digest_of(path: &str, bytes: &[u8]) -> FileDigest {
    FileDigest {
        path: path.to_string(),
        sha256: hex::encode(Sha256::digest(bytes)),
        size: bytes.len() as u64,
    }
}

/// Reads a plugin or data file named by the manifest into `files` (once, however many
/// times it is named) and returns its bytes.
fn read_set_file<'f>(
    manifest: &Path,
    base: &Path,
    rel: &str,
    files: &'f mut BTreeMap<String, Vec<u8>>,
) -> Result<&'f [u8], BundleError> {
    let origin = manifest.display().to_string();
    check_path(rel, &origin)?;
    if is_reserved(rel) {
        return Err(BundleError::ReservedPath {
            manifest: manifest.to_path_buf(),
            path: rel.to_string(),
        });
    }
    if !files.contains_key(rel) {
        let bytes = read_limited(&base.join(rel), &origin, rel, |source| {
            BundleError::SetFile {
                manifest: manifest.to_path_buf(),
                path: rel.to_string(),
                source,
            }
        })?;
        files.insert(rel.to_string(), bytes);
    }
    Ok(files.get(rel).map_or(&[], Vec::as_slice))
}

/// Reads a file of at most [`MAX_FILE_BYTES`]; `io` names a read failure the caller's
/// way (a missing manifest and a missing plugin are different mistakes).
fn read_limited(
    path: &Path,
    origin: &str,
    rel: &str,
    io: impl FnOnce(std::io::Error) -> BundleError,
) -> Result<Vec<u8>, BundleError> {
    let size = match std::fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(e) => return Err(io(e)),
    };
    if size > MAX_FILE_BYTES {
        return Err(BundleError::TooLarge {
            origin: origin.to_string(),
            path: rel.to_string(),
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    std::fs::read(path).map_err(io)
}

fn check_total(tar: &[u8], out: &Path) -> Result<(), BundleError> {
    let size = tar.len() as u64;
    if size > MAX_BUNDLE_BYTES {
        return Err(BundleError::BundleTooLarge {
            origin: out.display().to_string(),
            size,
            limit: MAX_BUNDLE_BYTES,
        });
    }
    Ok(())
}

/// The archive: `bundle.json`, `bundle.sig` when signed, the manifest, then every file
/// in path order. Headers carry nothing from the file system (mtime 0, owner 0, mode
/// 0644), so the same set always packs to the same bytes.
fn write_tar(
    index_json: &[u8],
    signature: Option<&[u8]>,
    manifest: &[u8],
    files: &BTreeMap<String, Vec<u8>>,
) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let head = [(INDEX_FILE, index_json)]
        .into_iter()
        .chain(signature.map(|s| (SIGNATURE_FILE, s)))
        .chain([(MANIFEST_FILE, manifest)]);
    let rest = files.iter().map(|(p, b)| (p.as_str(), b.as_slice()));
    for (path, bytes) in head.chain(rest) {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        // GNU long-name entries carry paths over 100 bytes; tar(1) reads them.
        builder.append_data(&mut header, path, bytes)?;
    }
    builder.into_inner()
}

/// Writes through a temporary file in the same directory and a rename, so a reader
/// (a server watching for new bundles) never sees half a bundle.
fn write_atomic(out: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let err = |source| BundleError::Write {
        path: out.to_path_buf(),
        source,
    };
    let name = out.file_name().ok_or_else(|| {
        err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the output path has no file name",
        ))
    })?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".{}-{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp: PathBuf = out.with_file_name(tmp_name);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, out));
    if written.is_err() {
        // Best effort: the write already failed, and that is the error to report.
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(err)
}
