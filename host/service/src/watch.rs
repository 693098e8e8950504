//! Watching a directory for bundles: each new or changed bundle file is loaded with
//! the same checks as the admin API and activated as its manifest's `mode` says
//! (enforce, or shadow beside the enforced version). Refusals are logged and audited;
//! what is serving stays as it is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arbiter_core::{Mode, PrincipalKind};
use tokio::task::JoinHandle;

use crate::app::App;
use crate::auth::Caller;
use crate::loader::Source;

/// How often the directory is read. Bundles are written by people and pipelines, so a
/// couple of seconds is prompt; a file still being written is skipped until its size
/// and modification time hold still for one interval.
pub const INTERVAL: Duration = Duration::from_secs(2);

type Seen = HashMap<PathBuf, (SystemTime, u64)>;

/// Starts watching `dir`.
pub fn spawn(app: Arc<App>, dir: PathBuf) -> JoinHandle<()> {
    tokio::spawn(async move {
        let actor = Caller {
            id: format!("watch:{}", dir.display()),
            kind: PrincipalKind::Service,
            roles: Vec::new(),
            authenticated: true,
            sets: crate::auth::SetAccess::Default,
        };
        let mut loaded: Seen = HashMap::new();
        let mut pending: Seen = HashMap::new();
        let mut tick = tokio::time::interval(INTERVAL);
        loop {
            tick.tick().await;
            for (path, stamp) in candidates(&dir) {
                if loaded.get(&path) == Some(&stamp) {
                    continue;
                }
                // Only once the file has held still for an interval.
                if pending.insert(path.clone(), stamp) != Some(stamp) {
                    continue;
                }
                pending.remove(&path);
                loaded.insert(path.clone(), stamp);
                load(&app, &actor, &path).await;
            }
        }
    })
}

fn candidates(dir: &Path) -> Vec<(PathBuf, (SystemTime, u64))> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "cannot read the watched directory");
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            let path = e.path();
            (meta.is_file() && arbiter_bundle::is_bundle(&path)).then(|| {
                (
                    path,
                    (
                        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        meta.len(),
                    ),
                )
            })
        })
        .collect();
    // Oldest first, so a directory of versions is applied in the order written.
    out.sort_by_key(|(p, (t, _))| (*t, p.clone()));
    out
}

async fn load(app: &App, actor: &Caller, path: &Path) {
    let origin = path.display().to_string();
    match app.loader.load(Source::Reference(origin.clone())).await {
        Err(why) => {
            tracing::error!(bundle = %origin, reason = %why, "watched bundle refused");
            let _ = app
                .record(crate::events::AuditEvent::Admin {
                    actor: &actor.id,
                    act: crate::events::AdminAct::LoadRefused {
                        origin: origin.clone(),
                        bundle_sha256: None,
                        refused: why.clone(),
                    },
                })
                .await;
        }
        Ok(v) => {
            let shadow = v.set.manifest().mode == Mode::Shadow;
            let id = v.set.identity().clone();
            // Already loaded (e.g. found again after a restart): leave the choice of
            // what is enforced to the admins and the saved state.
            if app.sets.get_named(&id.name).is_some_and(|n| {
                n.versions
                    .iter()
                    .any(|x| x.set.identity().digest == id.digest)
            }) {
                tracing::debug!(bundle = %origin, "watched bundle already loaded");
                return;
            }
            let act = crate::events::SetAct::Load {
                version: id.version.clone(),
                digest: id.digest.clone(),
                origin: origin.clone(),
                bundle_sha256: None,
                signer: v.signer.clone(),
                enforce: !shadow,
                shadow,
            };
            let sets = app.sets.clone();
            match app
                .change_sets(actor, act, &id.name, move || sets.add(v, !shadow, shadow))
                .await
            {
                Ok(Ok(())) => {
                    tracing::info!(set = %id.name, version = %id.version, shadow, "watched bundle loaded");
                }
                Ok(Err(why)) => {
                    tracing::error!(bundle = %origin, reason = %why, "watched bundle refused");
                }
                Err(e) => {
                    tracing::error!(bundle = %origin, error = %e, "watched bundle not loaded: its load could not be recorded");
                }
            }
        }
    }
}
