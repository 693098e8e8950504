//! Reading bundles: every check, in the order the crate docs give, before any byte of
//! the set is handed to a caller.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::Path;

use arbiter_core::{Limits, Manifest, ManifestError};
use sha2::{Digest as _, Sha256};

use crate::archive::read_entries;
use crate::index::{Index, MANIFEST_FILE, normalize};
use crate::trust::{Trust, check_signature};
use crate::{BundleError, MAX_BUNDLE_BYTES};

/// A bundle that passed every check.
pub struct Bundle {
    /// `bundle.json`.
    pub index: Index,
    /// The manifest's text.
    pub manifest: String,
    /// Every plugin and data file, by its path in the bundle.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The id of the trusted key whose signature verified; `None` under [`Trust::Any`],
    /// even when the bundle carries a signature, since nothing was verified.
    pub signer: Option<String>,
    /// SHA-256 (hex) of `bundle.json`: names this exact content, signature aside.
    pub digest: String,
    /// Plugin paths as the manifest spells them, where that differs from the bundle
    /// path (`./p.wasm` is stored as `p.wasm`).
    aliases: Vec<(String, String)>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("name", &self.index.name)
            .field("version", &self.index.version)
            .field("files", &self.files.len())
            .field("signer", &self.signer)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl Bundle {
    /// The manifest text and the files keyed as the manifest names them: the parts of
    /// the runtime's in-memory set source.
    pub fn into_set_files(self) -> (String, BTreeMap<String, Vec<u8>>) {
        let mut files = self.files;
        for (spelled, stored) in self.aliases {
            if let Some(bytes) = files.get(&stored).cloned() {
                files.insert(spelled, bytes);
            }
        }
        (self.manifest, files)
    }
}

/// A bundle checked up to, not including, its signature.
pub(crate) struct Unpacked {
    pub index: Index,
    /// `bundle.json` exactly as stored: the signed bytes.
    pub index_json: Vec<u8>,
    pub signature: Option<Vec<u8>>,
    pub manifest: String,
    pub files: BTreeMap<String, Vec<u8>>,
    pub aliases: Vec<(String, String)>,
}

/// Opens a bundle from its bytes. `origin` names it in errors (usually its path).
pub fn open(bytes: &[u8], origin: &str, trust: Trust<'_>) -> Result<Bundle, BundleError> {
    let unpacked = unpack(bytes, origin)?;
    let signer = check_signature(&unpacked, origin, trust)?;
    Ok(Bundle {
        digest: hex::encode(Sha256::digest(&unpacked.index_json)),
        index: unpacked.index,
        manifest: unpacked.manifest,
        files: unpacked.files,
        signer,
        aliases: unpacked.aliases,
    })
}

/// Reads and opens the bundle at `path`, refusing a file over [`MAX_BUNDLE_BYTES`]
/// before reading it.
pub fn open_file(path: &Path, trust: Trust<'_>) -> Result<Bundle, BundleError> {
    let origin = path.display().to_string();
    let bytes = read_bundle_file(path, &origin)?;
    open(&bytes, &origin, trust)
}

pub(crate) fn read_bundle_file(path: &Path, origin: &str) -> Result<Vec<u8>, BundleError> {
    let read_err = |source| BundleError::Read {
        path: path.to_path_buf(),
        source,
    };
    let too_large = |size| BundleError::BundleTooLarge {
        origin: origin.to_string(),
        size,
        limit: MAX_BUNDLE_BYTES,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let size = file.metadata().map_err(read_err)?.len();
    if size > MAX_BUNDLE_BYTES {
        return Err(too_large(size));
    }
    // The file may grow between the size check and the read.
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Every check but the signature's: archive, paths, index, digests, manifest.
pub(crate) fn unpack(bytes: &[u8], origin: &str) -> Result<Unpacked, BundleError> {
    let (index, index_json, signature, mut files) = read_entries(bytes, origin)?;

    let listed: BTreeSet<&str> = std::iter::once(&index.manifest)
        .chain(&index.files)
        .map(|f| f.path.as_str())
        .collect();
    if let Some(path) = files.keys().find(|p| !listed.contains(p.as_str())) {
        return Err(BundleError::Unlisted {
            origin: origin.to_string(),
            path: path.clone(),
        });
    }
    if let Some(path) = listed.iter().find(|p| !files.contains_key(**p)) {
        return Err(BundleError::Missing {
            origin: origin.to_string(),
            path: path.to_string(),
        });
    }
    for entry in std::iter::once(&index.manifest).chain(&index.files) {
        let bytes = files.get(&entry.path).map_or(&[][..], Vec::as_slice);
        let actual = hex::encode(Sha256::digest(bytes));
        if actual != entry.sha256 || bytes.len() as u64 != entry.size {
            return Err(BundleError::Tampered {
                origin: origin.to_string(),
                path: entry.path.clone(),
                expected: entry.sha256.clone(),
                actual,
            });
        }
    }

    let manifest_name = format!("{origin}/{MANIFEST_FILE}");
    let manifest = files.remove(MANIFEST_FILE).unwrap_or_default();
    let manifest = String::from_utf8(manifest).map_err(|_| ManifestError {
        file: manifest_name.clone(),
        line: 0,
        message: "the manifest is not UTF-8 text".into(),
    })?;
    let parsed = Manifest::parse(&manifest, &manifest_name, Limits::default())?;
    let aliases = check_manifest(&parsed, &index, &files, origin)?;
    Ok(Unpacked {
        index,
        index_json,
        signature,
        manifest,
        files,
        aliases,
    })
}

/// The manifest agrees with the index, names only files the bundle holds, and every
/// file the bundle holds is one it names. Returns the plugin path spellings that
/// differ from the stored paths.
fn check_manifest(
    manifest: &Manifest,
    index: &Index,
    files: &BTreeMap<String, Vec<u8>>,
    origin: &str,
) -> Result<Vec<(String, String)>, BundleError> {
    for (field, said, says) in [
        ("name", &index.name, &manifest.name),
        ("version", &index.version, &manifest.version),
    ] {
        if said != says {
            return Err(BundleError::IndexMismatch {
                origin: origin.to_string(),
                field,
                index: said.clone(),
                manifest: says.clone(),
            });
        }
    }
    let held = |path: &str| {
        files.get(path).ok_or_else(|| BundleError::NotInBundle {
            origin: origin.to_string(),
            path: path.to_string(),
        })
    };
    let mut named = BTreeSet::new();
    let mut aliases = Vec::new();
    for spec in &manifest.plugins {
        let path = normalize(&spec.path);
        let actual: [u8; 32] = Sha256::digest(held(&path)?).into();
        if let Some(expected) = spec.sha256
            && expected != actual
        {
            return Err(BundleError::PinMismatch {
                origin: origin.to_string(),
                plugin: spec.name.clone(),
                path,
                expected: hex::encode(expected),
                actual: hex::encode(actual),
            });
        }
        if spec.path != path {
            aliases.push((spec.path.clone(), path.clone()));
        }
        named.insert(path);
    }
    for path in &manifest.data {
        held(path)?;
        named.insert(path.clone());
    }
    if let Some(path) = files.keys().find(|p| !named.contains(*p)) {
        return Err(BundleError::Unreferenced {
            origin: origin.to_string(),
            path: path.clone(),
        });
    }
    Ok(aliases)
}
