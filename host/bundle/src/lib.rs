//! Policy-set bundles: one file carrying a set's manifest, every plugin component and
//! every data file, with the digest of each, optionally signed with Ed25519. A
//! compliance team packs a set directory ([`pack`]), signs the bundle with a key kept
//! offline ([`sign`]), and the server refuses unsigned, badly signed or altered bundles
//! when trusted keys are configured ([`open`], [`open_file`]).
//!
//! This crate never compiles WebAssembly: an opened [`Bundle`] hands back the manifest
//! text and the files ([`Bundle::into_set_files`]) for the runtime's in-memory set
//! source, which compiles and configures them like a set read from a directory.
//!
//! ```
//! use arbiter_bundle::{Trust, open_file, pack, sign};
//!
//! let dir = tempfile::tempdir()?;
//! let set = dir.path().join("set");
//! std::fs::create_dir(&set)?;
//! std::fs::write(
//!     set.join("policy-set.toml"),
//!     "format = 1\nname = \"demo\"\nversion = \"1.0.0\"\n\n[[plugins]]\nname = \"p\"\npath = \"p.wasm\"\n",
//! )?;
//! std::fs::write(set.join("p.wasm"), b"\0asm component bytes")?;
//!
//! let bundle = dir.path().join("demo.bundle");
//! pack(&set, &bundle)?;
//! let key = arbiter_keys::SecretKey::generate()?;
//! sign(&bundle, &key)?;
//!
//! let trusted = [key.public()];
//! let opened = open_file(&bundle, Trust::Keys(&trusted))?;
//! assert_eq!(opened.signer, Some(key.public().id()));
//! let (manifest, files) = opened.into_set_files();
//! assert!(manifest.contains("demo") && files.contains_key("p.wasm"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Format
//!
//! An uncompressed tar archive (`tar tvf x.bundle` lists it), entries in this order:
//!
//! 1. `bundle.json`, the index (always first, which is how [`is_bundle`] recognises a
//!    bundle):
//!    ```json
//!    { "format": 1, "name": "demo", "version": "1.0.0",
//!      "manifest": { "path": "policy-set.toml", "sha256": "<64 hex>", "size": 93 },
//!      "files": [ { "path": "data/teams.json", "sha256": "<64 hex>", "size": 12 },
//!                 { "path": "p.wasm", "sha256": "<64 hex>", "size": 2048 } ] }
//!    ```
//!    `files` holds every plugin and data file the manifest names, sorted by path,
//!    each once; digests are lowercase hex.
//! 2. `bundle.sig`, once signed: `{ "algorithm": "ed25519", "key_id": "<16 hex>",
//!    "signature": "<base64 of 64 bytes>" }`.
//! 3. `policy-set.toml`, the manifest.
//! 4. Every plugin and data file at its path relative to the manifest, in path order.
//!
//! Every entry is a regular file with mode 0644, mtime 0 and owner 0, so packing the
//! same set twice gives the same bytes. Paths are plain relative paths: `/`-separated,
//! no empty, `.` or `..` parts, no backslash; a manifest's `./p.wasm` is stored as
//! `p.wasm`. Paths over 100 bytes use GNU long-name entries, which `tar` reads.
//!
//! # What the signature covers
//!
//! An Ed25519 signature over `arbiter-bundle-v1\n` followed by the exact bytes of
//! `bundle.json`. The prefix keeps a bundle signature from ever being valid for
//! anything else the same key signs. Because `bundle.json` holds the SHA-256 and size
//! of the manifest and of every file, and [`open`] refuses any file not listed there,
//! the signature covers the manifest and every byte of every file. It does not cover
//! tar headers, which carry nothing the server uses. A bundle has one signer: signing
//! again replaces the signature.
//!
//! # Checks, in order
//!
//! [`open`] refuses, with its own [`BundleError`] variant for each:
//!
//! 1. bytes that are not a tar archive, a first entry that is not `bundle.json`, an
//!    index of another format or a malformed one;
//! 2. entries that are not regular files (directories, links, devices), paths that
//!    are absolute or climb out with `..`, duplicates, and anything over the limits;
//! 3. files in the archive not listed in `bundle.json`, and listed files missing;
//! 4. any file, the manifest included, whose SHA-256 or size differs from the index;
//! 5. a manifest that does not parse, whose name or version differs from the index's,
//!    that names a file the bundle does not hold (or does not name one it holds), or
//!    that pins a plugin `sha256` the file does not have;
//! 6. the signature, by the [`Trust`] rules.
//!
//! # Trust
//!
//! - [`Trust::Keys`] (trusted bundle keys are configured): a signature is required
//!   ([`BundleError::Unsigned`]), it must name a trusted key's id
//!   ([`BundleError::UnknownKey`]) and verify with it ([`BundleError::BadSignature`]).
//!   [`Bundle::signer`] is that key's id.
//! - [`Trust::Any`] (no keys configured): a signature is neither required nor
//!   verified, since there is no key to verify it with, and [`Bundle::signer`] is
//!   `None`. A malformed `bundle.sig` is still refused: it means a broken tool or a
//!   tampered file. The digests then prove the bundle is intact as packed, not who
//!   packed it.
//!
//! # Limits
//!
//! [`MAX_BUNDLE_BYTES`] for a whole bundle, [`MAX_FILE_BYTES`] for one file and
//! [`MAX_ENTRIES`] entries, each checked before the bytes are read, so a hostile
//! bundle cannot make the server allocate more than a bundle's size.

mod archive;
mod error;
mod index;
mod open;
mod pack;
mod trust;

use std::io::Read as _;
use std::path::Path;

pub use error::BundleError;
pub use index::{
    BUNDLE_FORMAT, FileDigest, INDEX_FILE, Index, MANIFEST_FILE, SIGNATURE_DOMAIN, SIGNATURE_FILE,
};
pub use open::{Bundle, open, open_file};
pub use pack::{Signed, pack, sign};
pub use trust::Trust;

/// Bytes of a whole bundle. A server holds a bundle in memory while checking it, and
/// again as the set's files; 256 MiB fits a dozen of the largest plugin runtime
/// (Python, about 20 MB) while bounding what one hostile bundle can make it allocate.
pub const MAX_BUNDLE_BYTES: u64 = 256 << 20;
/// Bytes of one file in a bundle: the runtime's limit for one plugin component, the
/// largest file a set can use.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Entries in a bundle. A set holds at most 64 plugins and a few data files; 1024 is
/// far past any real set and bounds the work an archive of empty entries can cause.
pub const MAX_ENTRIES: usize = 1024;

/// Whether `path` is a bundle rather than a set directory or a manifest: a file whose
/// first tar header names `bundle.json`. Decided by content, not extension, so a
/// bundle may be called anything. Only the first 512 bytes are read; [`open_file`]
/// does the real checks.
pub fn is_bundle(path: &Path) -> bool {
    let mut block = [0u8; 512];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut block));
    if read.is_err() {
        return false;
    }
    // The name field (100 bytes, NUL-padded), and the `ustar` magic shared by POSIX
    // and GNU headers, which plain text never has at offset 257.
    let name = &block[..100];
    let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
    name == INDEX_FILE.as_bytes() && block[257..262] == *b"ustar"
}
