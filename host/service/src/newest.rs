//! The newest version of each policy set name this server ever loaded, kept in
//! `<data_dir>/sets/newest.json`: loading a version older than that (over the admin
//! API, from the watched directory or from the config) is refused, so that an old
//! signed bundle cannot be loaded over a newer one to undo a fix (a deny turned back
//! into an allow). Going back is an admin's explicit, audited activation or rollback
//! of a version the server already holds, which does not load anything.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The newest version seen per set name.
#[derive(Debug)]
pub struct Newest {
    file: Option<PathBuf>,
    names: Mutex<BTreeMap<String, String>>,
}

impl Newest {
    /// Nothing remembered and nothing saved (a scratch pipeline).
    pub fn in_memory() -> Self {
        Self {
            file: None,
            names: Mutex::new(BTreeMap::new()),
        }
    }

    /// The record in `dir` (`newest.json`), empty when there is none yet. A record
    /// that cannot be read is an error: starting without it would forget what it
    /// protects against.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let file = dir.join("newest.json");
        let names = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "`{}` is not a valid record of the newest set versions ({e}); restore it from a backup",
                    file.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("cannot read `{}`: {e}", file.display())),
        };
        Ok(Self {
            file: Some(file),
            names: Mutex::new(names),
        })
    }

    /// Refuses `version` of `name` when an newer one was loaded before.
    pub fn check(&self, name: &str, version: &str) -> Result<(), String> {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        match names.get(name) {
            Some(newest) if compare(version, newest) == Ordering::Less => Err(format!(
                "policy set `{name}` version {version} is older than version {newest}, which this server loaded before: loading an older version is refused (it could undo a fix). To go back, activate or roll back to a version the server holds (`arbiter sets activate`, `arbiter sets rollback`)"
            )),
            _ => Ok(()),
        }
    }

    /// [`Newest::check`] and [`Newest::record`] in one step, so that two loads at
    /// once cannot both pass the check.
    pub fn admit(&self, name: &str, version: &str) -> Result<(), String> {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(newest) = names.get(name)
            && compare(version, newest) == Ordering::Less
        {
            drop(names);
            return self.check(name, version);
        }
        self.record_locked(&mut names, name, version);
        Ok(())
    }

    /// Remembers `version` of `name` when it is the newest yet; saved at once.
    pub fn record(&self, name: &str, version: &str) {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        self.record_locked(&mut names, name, version);
    }

    fn record_locked(&self, names: &mut BTreeMap<String, String>, name: &str, version: &str) {
        let newer = names
            .get(name)
            .is_none_or(|n| compare(version, n) == Ordering::Greater);
        if !newer {
            return;
        }
        names.insert(name.to_string(), version.to_string());
        let Some(file) = &self.file else { return };
        let saved = serde_json::to_vec_pretty(&names)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                let tmp = file.with_extension("json.tmp");
                let dir = file.parent().unwrap_or(Path::new("."));
                arbiter_runtime::create_private_dir(dir)
                    .and_then(|()| std::fs::write(&tmp, bytes))
                    .and_then(|()| std::fs::rename(&tmp, file))
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = saved {
            tracing::error!(file = %file.display(), error = %e, "cannot save the newest set versions; a restart would forget them");
        }
    }
}

/// Orders version strings: runs of digits compare as numbers, other runs as text,
/// so `1.10` is newer than `1.9`; a pre-release (`1.0.0-rc.1`) is older than its
/// release (`1.0.0`), as in semantic versioning.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a_core, a_pre) = a.split_once('-').map_or((a, None), |(c, p)| (c, Some(p)));
    let (b_core, b_pre) = b.split_once('-').map_or((b, None), |(c, p)| (c, Some(p)));
    match cmp_all(a_core, b_core) {
        Ordering::Equal => match (a_pre, b_pre) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => cmp_all(x, y),
        },
        o => o,
    }
}

fn cmp_all(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (chunks(a), chunks(b));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match Chunk::cmp(x, y) {
                Ordering::Equal => {}
                o => return o,
            },
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Chunk<'a> {
    Number(u128),
    Text(&'a str),
}

impl Chunk<'_> {
    fn cmp(a: Self, b: Self) -> Ordering {
        match (a, b) {
            (Self::Number(x), Self::Number(y)) => x.cmp(&y),
            // Numbers sort before text, as in semantic versioning's pre-releases.
            (Self::Number(_), Self::Text(_)) => Ordering::Less,
            (Self::Text(_), Self::Number(_)) => Ordering::Greater,
            (Self::Text(x), Self::Text(y)) => x.cmp(y),
        }
    }
}

fn chunks(s: &str) -> impl Iterator<Item = Chunk<'_>> {
    let s = s.split('+').next().unwrap_or_default();
    s.split(['.', '_'])
        .flat_map(|part| {
            let mut out = Vec::new();
            let mut start = 0;
            let bytes = part.as_bytes();
            for i in 1..=bytes.len() {
                let boundary =
                    i == bytes.len() || bytes[i].is_ascii_digit() != bytes[i - 1].is_ascii_digit();
                if boundary {
                    let run = &part[start..i];
                    out.push(match run.parse::<u128>() {
                        Ok(n) if run.bytes().all(|b| b.is_ascii_digit()) => Chunk::Number(n),
                        _ => Chunk::Text(run),
                    });
                    start = i;
                }
            }
            out
        })
        .filter(|c| *c != Chunk::Text(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_as_people_expect() {
        let lt = |a, b| assert_eq!(compare(a, b), Ordering::Less, "{a} < {b}");
        lt("1.9", "1.10");
        lt("1.0.0-rc.1", "1.0.0");
        lt("1.0.0-alpha", "1.0.0-beta");
        lt("1", "1.0.1");
        lt("2024.01.5", "2024.02.1");
        lt("v1", "v2");
        assert_eq!(compare("1.0.0", "1.0.0+build5"), Ordering::Equal);
        assert_eq!(compare("3", "3"), Ordering::Equal);
    }

    #[test]
    fn an_older_version_is_refused_after_a_newer_one_and_remembered_across_opens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sets = dir.path().join("sets");
        let n = Newest::open(&sets).expect("empty: the directory need not exist yet");
        n.check("reference", "2").expect("first");
        n.record("reference", "2");
        n.record("reference", "1");
        assert!(
            n.check("reference", "1")
                .expect_err("older")
                .contains("older")
        );
        n.check("reference", "2").expect("the same again");
        n.check("reference", "3").expect("newer");
        n.check("other", "0.1").expect("another name");
        let again = Newest::open(&sets).expect("saved");
        assert!(again.check("reference", "1").is_err());
        std::fs::write(sets.join("newest.json"), "{").expect("corrupt");
        assert!(
            Newest::open(&sets).is_err(),
            "a corrupt record stops the start"
        );
    }
}
