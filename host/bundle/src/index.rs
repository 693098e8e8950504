//! `bundle.json` and `bundle.sig`: what they hold, how they are checked, and the paths
//! a bundle may contain.

use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::BundleError;

/// The bundle format this host writes and reads.
pub const BUNDLE_FORMAT: u32 = 1;
/// The index's name; always the archive's first entry.
pub const INDEX_FILE: &str = "bundle.json";
/// The signature's name.
pub const SIGNATURE_FILE: &str = "bundle.sig";
/// The manifest's name inside a bundle (and a set directory).
pub const MANIFEST_FILE: &str = "policy-set.toml";
/// Prefix of the signed message, so a bundle signature can never be replayed as a
/// signature over anything else the same key signs (credentials, audit checkpoints).
pub const SIGNATURE_DOMAIN: &[u8] = b"arbiter-bundle-v1\n";
/// The only signature algorithm.
pub(crate) const ALGORITHM: &str = "ed25519";

/// `bundle.json`: the set's identity and the digest of every file in the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// Always [`BUNDLE_FORMAT`].
    pub format: u32,
    /// The set's name, as in its manifest.
    pub name: String,
    /// The set's version, as in its manifest.
    pub version: String,
    /// The manifest, at [`MANIFEST_FILE`].
    pub manifest: FileDigest,
    /// Every plugin and data file, sorted by path, each once.
    pub files: Vec<FileDigest>,
}

/// One file's path, SHA-256 and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDigest {
    /// Relative, `/`-separated, no `.` or `..` parts.
    pub path: String,
    /// SHA-256 of the bytes, 64 lowercase hex digits.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// `bundle.sig`: who signed, and the signature.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignatureFile {
    pub algorithm: String,
    pub key_id: String,
    /// Standard base64 of the 64 signature bytes.
    pub signature: String,
}

/// Just the format, read before the rest so a future format is reported as such
/// rather than as a field this host does not know.
#[derive(Deserialize)]
struct FormatOnly {
    format: u64,
}

/// The message a bundle signature covers: the domain, then `bundle.json` exactly.
pub(crate) fn signed_message(index_json: &[u8]) -> Vec<u8> {
    [SIGNATURE_DOMAIN, index_json].concat()
}

impl Index {
    /// Parses and checks `bundle.json`: format first, then shape, digests, order and
    /// paths.
    pub(crate) fn parse(bytes: &[u8], origin: &str) -> Result<Self, BundleError> {
        let bad = |why: String| BundleError::BadIndex {
            origin: origin.to_string(),
            why,
        };
        let format: FormatOnly = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if format.format != u64::from(BUNDLE_FORMAT) {
            return Err(BundleError::UnknownFormat {
                origin: origin.to_string(),
                format: format.format,
            });
        }
        let index: Index = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if index.manifest.path != MANIFEST_FILE {
            return Err(bad(format!(
                "the manifest must be `{MANIFEST_FILE}`, not `{}`",
                index.manifest.path
            )));
        }
        for file in std::iter::once(&index.manifest).chain(&index.files) {
            if !is_digest(&file.sha256) {
                return Err(bad(format!(
                    "`{}` has sha256 `{}`, not 64 lowercase hex digits",
                    file.path, file.sha256
                )));
            }
        }
        for file in &index.files {
            check_path(&file.path, origin)?;
            if is_reserved(&file.path) {
                return Err(bad(format!("`{}` is a reserved name", file.path)));
            }
        }
        // Sorted and unique makes the index canonical: one set, one `bundle.json`.
        if let Some(pair) = index.files.windows(2).find(|w| w[0].path >= w[1].path) {
            return Err(bad(format!(
                "`files` must be sorted by path, each once (`{}` then `{}`)",
                pair[0].path, pair[1].path
            )));
        }
        Ok(index)
    }
}

impl SignatureFile {
    /// Parses `bundle.sig` into the signer's key id and the signature bytes.
    pub(crate) fn parse(bytes: &[u8], origin: &str) -> Result<(String, [u8; 64]), BundleError> {
        use base64::Engine as _;
        let bad = |why: String| BundleError::BadSignatureFile {
            origin: origin.to_string(),
            why,
        };
        let sig: SignatureFile = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if sig.algorithm != ALGORITHM {
            return Err(bad(format!(
                "algorithm `{}`, expected `{ALGORITHM}`",
                sig.algorithm
            )));
        }
        let key_id_ok = sig.key_id.len() == 16
            && sig
                .key_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !key_id_ok {
            return Err(bad(format!(
                "key id `{}` is not 16 lowercase hex digits",
                sig.key_id
            )));
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&sig.signature)
            .map_err(|_| bad("`signature` is not base64".into()))?;
        let signature: [u8; 64] = raw
            .try_into()
            .map_err(|_| bad("`signature` is not 64 bytes".into()))?;
        Ok((sig.key_id, signature))
    }
}

fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Names a bundle keeps for itself; a set's plugin or data file cannot use them.
pub(crate) fn is_reserved(path: &str) -> bool {
    matches!(path, INDEX_FILE | SIGNATURE_FILE | MANIFEST_FILE)
}

/// Refuses anything but a plain relative path: `/`-separated non-empty parts, none
/// `.` or `..`, no backslash (a separator on Windows) and no NUL. Stricter than tar
/// itself, so no extraction tool can place a bundle's file outside its directory.
pub(crate) fn check_path(path: &str, origin: &str) -> Result<(), BundleError> {
    let plain = !path.is_empty()
        && !path.contains(['\\', '\0'])
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if plain {
        Ok(())
    } else {
        Err(BundleError::UnsafePath {
            origin: origin.to_string(),
            path: path.to_string(),
        })
    }
}

/// A manifest path as the bundle stores it: `/`-separated, without `.` parts. The
/// same rule the manifest applies to data paths, so both name a file the same way.
pub(crate) fn normalize(path: &str) -> String {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}
