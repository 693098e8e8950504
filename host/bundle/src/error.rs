//! Why a bundle was not packed, signed or opened. Each refusal is its own variant, so a
//! server can count and audit them by kind and a CLI can print a sentence with the fix.

use std::path::PathBuf;

use arbiter_core::ManifestError;

/// Why a bundle was refused. `origin` names the bundle (usually its path) as the caller
/// gave it; `path` is a file's relative path inside the set or the bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A whole bundle is over [`crate::MAX_BUNDLE_BYTES`].
    #[error("`{origin}` is {size} bytes, over the limit of {limit} for a bundle")]
    BundleTooLarge {
        /// The bundle.
        origin: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A file on disk could not be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The bundle could not be written.
    #[error("cannot write `{path}`; check that its directory exists and is writable")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// At pack time, the manifest names a file the set directory does not have.
    #[error("`{manifest}` names `{path}`, which cannot be read; add the file or fix the manifest")]
    SetFile {
        /// The manifest.
        manifest: PathBuf,
        /// The file, relative to the manifest.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// At pack time, the manifest names a file at a path the bundle keeps for itself.
    #[error("`{manifest}` names `{path}`, a name bundles reserve; rename the file")]
    ReservedPath {
        /// The manifest.
        manifest: PathBuf,
        /// The reserved path.
        path: String,
    },
    /// The bytes are not a tar archive (or the archive is truncated).
    #[error("`{origin}` is not a policy bundle: it is not a readable tar archive")]
    NotATar {
        /// The bundle.
        origin: String,
        /// What the tar reader said.
        #[source]
        source: std::io::Error,
    },
    /// The archive's first entry is not `bundle.json`.
    #[error(
        "`{origin}` is not a policy bundle: its first entry is not `bundle.json`; create bundles with `arbiter bundle pack`"
    )]
    NoIndex {
        /// The bundle.
        origin: String,
    },
    /// `bundle.json` is not a valid index.
    #[error("`{origin}`: `bundle.json` is malformed ({why}); pack the set again")]
    BadIndex {
        /// The bundle.
        origin: String,
        /// What is wrong.
        why: String,
    },
    /// `bundle.json` declares a format this host does not read.
    #[error("`{origin}`: bundle format {format} is not supported; this host reads format 1")]
    UnknownFormat {
        /// The bundle.
        origin: String,
        /// The declared format.
        format: u64,
    },
    /// An entry's path is absolute, climbs with `..`, or is otherwise not a plain
    /// relative path.
    #[error(
        "`{origin}`: entry `{path}` is not a plain relative path (absolute, `..`, `.` or empty parts); refusing the bundle"
    )]
    UnsafePath {
        /// The bundle, or the manifest at pack time.
        origin: String,
        /// The path as written.
        path: String,
    },
    /// An entry is a directory, link, device or other non-file.
    #[error("`{origin}`: entry `{path}` is a {kind}; bundles hold only regular files")]
    NotAFile {
        /// The bundle.
        origin: String,
        /// The entry.
        path: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// Two entries have the same path.
    #[error("`{origin}`: entry `{path}` appears twice; refusing the bundle")]
    Duplicate {
        /// The bundle.
        origin: String,
        /// The repeated path.
        path: String,
    },
    /// The archive has more entries than [`crate::MAX_ENTRIES`].
    #[error("`{origin}` has more than {limit} entries")]
    TooManyEntries {
        /// The bundle.
        origin: String,
        /// The limit.
        limit: usize,
    },
    /// A file is over [`crate::MAX_FILE_BYTES`].
    #[error("`{origin}`: `{path}` is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The bundle, or the set directory at pack time.
        origin: String,
        /// The file.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A file is in the archive but not in `bundle.json`.
    #[error(
        "`{origin}`: `{path}` is in the bundle but not listed in `bundle.json`: the bundle was altered after packing"
    )]
    Unlisted {
        /// The bundle.
        origin: String,
        /// The extra file.
        path: String,
    },
    /// A file is listed in `bundle.json` but not in the archive.
    #[error(
        "`{origin}`: `{path}` is listed in `bundle.json` but missing from the bundle: the bundle was altered after packing"
    )]
    Missing {
        /// The bundle.
        origin: String,
        /// The missing file.
        path: String,
    },
    /// A file's bytes differ from its digest or size in `bundle.json`.
    #[error(
        "`{origin}`: `{path}` does not match its digest in `bundle.json`: the bundle was altered after packing"
    )]
    Tampered {
        /// The bundle.
        origin: String,
        /// The altered file.
        path: String,
        /// SHA-256 in the index (hex).
        expected: String,
        /// SHA-256 of the bytes (hex).
        actual: String,
    },
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// `bundle.json`'s name or version differs from the manifest's.
    #[error(
        "`{origin}`: `bundle.json` says {field} `{index}` but the manifest says `{manifest}`; pack the set again"
    )]
    IndexMismatch {
        /// The bundle.
        origin: String,
        /// `name` or `version`.
        field: &'static str,
        /// What the index says.
        index: String,
        /// What the manifest says.
        manifest: String,
    },
    /// The manifest names a plugin or data file the bundle does not hold.
    #[error(
        "`{origin}`: the manifest names `{path}`, but the bundle does not hold it; pack the set again"
    )]
    NotInBundle {
        /// The bundle.
        origin: String,
        /// The missing file.
        path: String,
    },
    /// The bundle holds a file the manifest does not name.
    #[error(
        "`{origin}`: `{path}` is in the bundle but the manifest does not name it; pack the set again"
    )]
    Unreferenced {
        /// The bundle.
        origin: String,
        /// The stray file.
        path: String,
    },
    /// A plugin's file does not match the digest its manifest pins.
    #[error(
        "`{origin}`: plugin `{plugin}`: `{path}` has sha256 {actual}, but the manifest pins {expected}; rebuild the plugin or update `sha256`"
    )]
    PinMismatch {
        /// The bundle, or the manifest at pack time.
        origin: String,
        /// The plugin's name.
        plugin: String,
        /// Its file.
        path: String,
        /// The pinned digest (hex).
        expected: String,
        /// The file's digest (hex).
        actual: String,
    },
    /// `bundle.sig` is not a signature this host can read.
    #[error("`{origin}`: `bundle.sig` is malformed ({why}); sign the bundle again")]
    BadSignatureFile {
        /// The bundle.
        origin: String,
        /// What is wrong.
        why: String,
    },
    /// Trusted keys are configured and the bundle has no signature.
    #[error(
        "`{origin}` is not signed, and trusted bundle keys are configured; sign it with `arbiter bundle sign`"
    )]
    Unsigned {
        /// The bundle.
        origin: String,
    },
    /// The signature names a key that is not trusted.
    #[error(
        "`{origin}` is signed by key `{key_id}`, which is not a trusted bundle key; sign it with a trusted key or trust this one"
    )]
    UnknownKey {
        /// The bundle.
        origin: String,
        /// The signer's key id.
        key_id: String,
    },
    /// The signature does not verify with the trusted key it names.
    #[error(
        "`{origin}`: the signature by key `{key_id}` does not verify: the bundle was altered after signing"
    )]
    BadSignature {
        /// The bundle.
        origin: String,
        /// The key id the signature names.
        key_id: String,
    },
}
