//! Walking a bundle's tar archive, refusing any entry a bundle cannot hold.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;

use crate::index::{INDEX_FILE, Index, SIGNATURE_FILE, check_path};
use crate::{BundleError, MAX_BUNDLE_BYTES, MAX_ENTRIES, MAX_FILE_BYTES};

/// The index, its exact bytes, `bundle.sig` if any, and every other file by path.
pub(crate) type Entries = (Index, Vec<u8>, Option<Vec<u8>>, BTreeMap<String, Vec<u8>>);

/// Walks the archive: `bundle.json` first, then every entry a plain relative path to a
/// regular file within the size limits, each once.
pub(crate) fn read_entries(bytes: &[u8], origin: &str) -> Result<Entries, BundleError> {
    let size = bytes.len() as u64;
    if size > MAX_BUNDLE_BYTES {
        return Err(BundleError::BundleTooLarge {
            origin: origin.to_string(),
            size,
            limit: MAX_BUNDLE_BYTES,
        });
    }
    let not_tar = |source| BundleError::NotATar {
        origin: origin.to_string(),
        source,
    };
    let no_index = || BundleError::NoIndex {
        origin: origin.to_string(),
    };
    let mut archive = tar::Archive::new(bytes);
    let mut index = None;
    let mut signature = None;
    let mut files = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (n, entry) in archive.entries().map_err(not_tar)?.enumerate() {
        let mut entry = entry.map_err(not_tar)?;
        if n >= MAX_ENTRIES {
            return Err(BundleError::TooManyEntries {
                origin: origin.to_string(),
                limit: MAX_ENTRIES,
            });
        }
        let path = match String::from_utf8(entry.path_bytes().into_owned()) {
            Ok(path) => path,
            Err(e) => {
                if index.is_none() {
                    return Err(no_index());
                }
                return Err(BundleError::UnsafePath {
                    origin: origin.to_string(),
                    path: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                });
            }
        };
        if index.is_none() && path != INDEX_FILE {
            return Err(no_index());
        }
        // The kind first: a directory's path ends in `/`, and "is a directory" is the
        // clearer refusal.
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            return Err(BundleError::NotAFile {
                origin: origin.to_string(),
                path,
                kind: kind_name(kind),
            });
        }
        check_path(&path, origin)?;
        if !seen.insert(path.clone()) {
            return Err(BundleError::Duplicate {
                origin: origin.to_string(),
                path,
            });
        }
        // Checked against the header before any allocation.
        let size = entry.size();
        if size > MAX_FILE_BYTES {
            return Err(BundleError::TooLarge {
                origin: origin.to_string(),
                path,
                size,
                limit: MAX_FILE_BYTES,
            });
        }
        // A header may claim more than the archive holds: reserve no more than that.
        let capacity = size.min(bytes.len() as u64);
        let mut data = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        entry.read_to_end(&mut data).map_err(not_tar)?;
        if data.len() as u64 != size {
            return Err(not_tar(std::io::ErrorKind::UnexpectedEof.into()));
        }
        match path.as_str() {
            INDEX_FILE => index = Some((Index::parse(&data, origin)?, data)),
            SIGNATURE_FILE => signature = Some(data),
            _ => {
                files.insert(path, data);
            }
        }
    }
    let (index, index_json) = index.ok_or_else(no_index)?;
    Ok((index, index_json, signature, files))
}

fn kind_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Directory => "directory",
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char | tar::EntryType::Block => "device",
        tar::EntryType::Fifo => "fifo",
        _ => "special entry",
    }
}
