//! The `arbiter.v1.PolicyAdmin` service: load, activate, shadow, roll back, inspect.
//! Every change (and every refusal) is an audited admin act.

use crate::{IntoStatus as _, OrStatus as _};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tonic::{Request, Response, Status};

use super::ApiError;
use crate::CallerOf as _;
use crate::proto as pb;
use arbiter_service::app::App;
use arbiter_service::auth::{Caller, Role};
use arbiter_service::events::AuditEvent;
use arbiter_service::events::{AdminAct, SetAct};
use arbiter_service::loader::Source;
use arbiter_service::sets::SetError;
use arbiter_service::sets::{Named, Version};

/// Policy-set lifecycle for admins.
#[derive(Debug, Clone)]
pub struct AdminService {
    app: Arc<App>,
}

impl AdminService {
    /// The service over the server's state.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    async fn status(&self, name: &str) -> Result<pb::SetStatus, ApiError> {
        let named = self
            .app
            .sets()
            .get_named(name)
            .ok_or_else(|| ApiError::UnknownSet(name.to_string()))?;
        let mut s = status(name, &named, self.app.sets().default_name() == name);
        s.replicas = replicas(name, &self.app.replica_sets().await);
        Ok(s)
    }

    /// Applies a change, records it (or its refusal), and answers with the status.
    async fn act(
        &self,
        caller: &Caller,
        act: SetAct,
        name: &str,
        change: impl FnOnce() -> Result<(), SetError>,
    ) -> Result<Response<pb::SetStatus>, Status> {
        let known = matches!(act, SetAct::Load { .. }) || self.app.sets().get_named(name).is_some();
        if !known {
            return Err(ApiError::UnknownSet(name.to_string()).into_status());
        }
        let act_name = act.name();
        self.app
            .change_sets(caller, act, name, change)
            .await
            .or_status()?
            .map_err(|e| ApiError::FailedPrecondition(e.to_string()))
            .or_status()?;
        if let Some(named) = self.app.sets().get_named(name) {
            let id = named.enforced.set.identity();
            tracing::info!(set = name, act = act_name, version = %id.version, digest = %id.digest, by = %caller.id, "policy set changed");
        }
        Ok(Response::new(self.status(name).await.or_status()?))
    }
}

/// What each replica serves under `name`.
fn replicas(name: &str, all: &[arbiter_store::ReplicaSet]) -> Vec<pb::ReplicaSetStatus> {
    all.iter()
        .filter(|r| r.name == name)
        .map(|r| pb::ReplicaSetStatus {
            replica_id: r.replica_id.clone(),
            enforced_version: r.enforced_version.clone(),
            enforced_digest: r.enforced_digest.clone(),
            shadow_digest: r.shadow_digest.clone().unwrap_or_default(),
            error: r.error.clone().unwrap_or_default(),
            updated_micros: r.updated_micros,
        })
        .collect()
}

fn required(field: &str, v: String) -> Result<String, ApiError> {
    if v.is_empty() {
        return Err(ApiError::field(field, "is required"));
    }
    Ok(v)
}

fn version(v: &Version, state: pb::SetState) -> pb::SetVersion {
    let id = v.set.identity();
    pb::SetVersion {
        version: id.version.clone(),
        digest: id.digest.clone(),
        state: state as i32,
        origin: v.origin.clone(),
        signer: v.signer.clone().unwrap_or_default(),
        loaded_micros: v.loaded_micros,
        activated_micros: i64::try_from(v.activated_micros.load(Ordering::Relaxed)).unwrap_or(0),
        plugins: v
            .set
            .plugin_status()
            .into_iter()
            .map(|p| pb::PluginStatus {
                name: p.name,
                sha256: p.sha256,
                evaluations: p.evaluations,
                failures: p.failures,
                consecutive_failures: p.consecutive_failures,
                quarantined: p.quarantined,
                quarantine_cause: p
                    .quarantine
                    .as_ref()
                    .map(|q| q.cause.clone())
                    .unwrap_or_default(),
                quarantine_retry_in_ms: p.quarantine.as_ref().map_or(0, |q| {
                    u64::try_from(q.retry_in.as_millis()).unwrap_or(u64::MAX)
                }),
                quarantines: p.quarantines,
                overload_timeouts: p.overload_timeouts,
                preinitialised: p.preinitialised,
                described_name: p.described_name,
                described_version: p.described_version,
            })
            .collect(),
    }
}

/// The wire status of one set name.
pub fn status(name: &str, named: &Named, default: bool) -> pb::SetStatus {
    let shadow = named.shadow.as_ref();
    let versions = named
        .versions
        .iter()
        .map(|v| {
            let state = if Arc::ptr_eq(v, &named.enforced) {
                pb::SetState::Enforced
            } else if shadow.is_some_and(|s| Arc::ptr_eq(v, &s.version)) {
                pb::SetState::Shadow
            } else {
                pb::SetState::Loaded
            };
            version(v, state)
        })
        .collect();
    pb::SetStatus {
        name: name.to_string(),
        default,
        versions,
        shadow_compared: shadow.map_or(0, |s| s.stats.compared.load(Ordering::Relaxed)),
        divergences: shadow
            .map(|s| {
                s.stats
                    .divergences()
                    .into_iter()
                    .map(|((from, to), count)| pb::Divergence {
                        from: from.as_str().into(),
                        to: to.as_str().into(),
                        count,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        shadow_shed: shadow.map_or(0, |s| s.stats.shed.load(Ordering::Relaxed)),
        replicas: Vec::new(),
    }
}

const ADMIN: &[Role] = &[Role::Admin];

#[tonic::async_trait]
impl pb::policy_admin_server::PolicyAdmin for AdminService {
    async fn list_replicas(
        &self,
        request: Request<pb::ListReplicasRequest>,
    ) -> Result<Response<pb::ListReplicasResponse>, Status> {
        self.app.auth().caller_of(&request, ADMIN)?;
        let live = match self.app.lease().cloned() {
            Some(lease) => tokio::task::spawn_blocking(move || lease.replicas())
                .await
                .map_err(|_| Status::internal("the replica listing stopped"))?
                .map_err(ApiError::from)
                .or_status()?,
            None => Vec::new(),
        };
        Ok(Response::new(pb::ListReplicasResponse {
            replica_id: self.app.replica_id().to_string(),
            replicas: live
                .into_iter()
                .map(|l| pb::Replica {
                    id: l.id,
                    version: l.version,
                    started_micros: l.started_micros,
                    renewed_micros: l.renewed_micros,
                    expires_micros: l.expires_micros,
                })
                .collect(),
        }))
    }

    async fn list_sets(
        &self,
        request: Request<pb::ListSetsRequest>,
    ) -> Result<Response<pb::ListSetsResponse>, Status> {
        self.app.auth().caller_of(&request, ADMIN)?;
        let default = self.app.sets().default_name();
        let all = self.app.replica_sets().await;
        Ok(Response::new(pb::ListSetsResponse {
            sets: self
                .app
                .sets()
                .named()
                .iter()
                .map(|(name, named)| pb::SetStatus {
                    replicas: replicas(name, &all),
                    ..status(name, named, *name == default)
                })
                .collect(),
        }))
    }

    async fn get_set_status(
        &self,
        request: Request<pb::GetSetStatusRequest>,
    ) -> Result<Response<pb::SetStatus>, Status> {
        self.app.auth().caller_of(&request, ADMIN)?;
        let name = required("name", request.into_inner().name).or_status()?;
        Ok(Response::new(self.status(&name).await.or_status()?))
    }

    async fn load_set(
        &self,
        request: Request<pb::LoadSetRequest>,
    ) -> Result<Response<pb::SetStatus>, Status> {
        let caller = self.app.auth().caller_of(&request, ADMIN)?;
        let pb::LoadSetRequest { source, activation } = request.into_inner();
        let activation = pb::Activation::try_from(activation)
            .map_err(|_| {
                ApiError::field("activation", format!("{activation} is not an activation"))
            })
            .or_status()?;
        // An upload is named by its hash in the records, so a refused bundle can be
        // matched to the file that was sent.
        let (source, origin, upload_sha256) = match source {
            Some(pb::load_set_request::Source::Bundle(b)) => {
                use sha2::Digest as _;
                let digest = hex::encode(sha2::Sha256::digest(&b));
                (Source::Bundle(b), "upload".to_string(), Some(digest))
            }
            Some(pb::load_set_request::Source::Path(p)) if !p.is_empty() => {
                (Source::Reference(p.clone()), p, None)
            }
            _ => {
                return Err(
                    ApiError::field("source", "give `bundle` bytes or a server `path`")
                        .into_status(),
                );
            }
        };
        let loaded = self.app.loader().load(source).await;
        let v = match loaded {
            Ok(v) => v,
            Err(why) => {
                self.app
                    .record(AuditEvent::Admin {
                        actor: &caller.id,
                        act: AdminAct::LoadRefused {
                            origin: origin.clone(),
                            bundle_sha256: upload_sha256.clone(),
                            refused: why.clone(),
                        },
                    })
                    .await
                    .or_status()?;
                return Err(
                    ApiError::FailedPrecondition(format!("policy set refused: {why}"))
                        .into_status(),
                );
            }
        };
        let name = v.set.identity().name.clone();
        let (enforce, shadow) = match activation {
            pb::Activation::None => (false, false),
            pb::Activation::Enforce => (true, false),
            pb::Activation::Shadow => (false, true),
            pb::Activation::Manifest => {
                let shadow = v.set.manifest().mode == arbiter_core::Mode::Shadow;
                (!shadow, shadow)
            }
        };
        let id = v.set.identity().clone();
        let act = SetAct::Load {
            version: id.version.clone(),
            digest: id.digest.clone(),
            origin,
            bundle_sha256: upload_sha256,
            signer: v.signer.clone(),
            enforce,
            shadow,
        };
        let sets = self.app.sets().clone();
        self.act(&caller, act, &name, move || sets.add(v, enforce, shadow))
            .await
    }

    async fn activate_set(
        &self,
        request: Request<pb::ActivateSetRequest>,
    ) -> Result<Response<pb::SetStatus>, Status> {
        let caller = self.app.auth().caller_of(&request, ADMIN)?;
        let pb::ActivateSetRequest { name, version } = request.into_inner();
        let (name, version) = (
            required("name", name).or_status()?,
            required("version", version).or_status()?,
        );
        let act = SetAct::Activate {
            version: version.clone(),
        };
        self.act(&caller, act, &name, || {
            self.app.sets().activate(&name, &version)
        })
        .await
    }

    async fn shadow_set(
        &self,
        request: Request<pb::ShadowSetRequest>,
    ) -> Result<Response<pb::SetStatus>, Status> {
        let caller = self.app.auth().caller_of(&request, ADMIN)?;
        let pb::ShadowSetRequest {
            name,
            version,
            demote,
        } = request.into_inner();
        let name = required("name", name).or_status()?;
        if demote {
            return self
                .act(&caller, SetAct::Demote, &name, || {
                    self.app.sets().demote(&name)
                })
                .await;
        }
        let version = required("version", version).or_status()?;
        let act = SetAct::Shadow {
            version: version.clone(),
        };
        self.act(&caller, act, &name, || {
            self.app.sets().shadow(&name, &version)
        })
        .await
    }

    async fn clear_shadow(
        &self,
        request: Request<pb::ClearShadowRequest>,
    ) -> Result<Response<pb::SetStatus>, Status> {
        let caller = self.app.auth().caller_of(&request, ADMIN)?;
        let name = required("name", request.into_inner().name).or_status()?;
        self.act(&caller, SetAct::ClearShadow, &name, || {
            self.app.sets().clear_shadow(&name)
        })
        .await
    }

    async fn rollback_set(
        &self,
        request: Request<pb::RollbackSetRequest>,
    ) -> Result<Response<pb::SetStatus>, Status> {
        let caller = self.app.auth().caller_of(&request, ADMIN)?;
        let pb::RollbackSetRequest { name, version } = request.into_inner();
        let name = required("name", name).or_status()?;
        let version = Some(version).filter(|v| !v.is_empty());
        let act = SetAct::Rollback {
            version: version.clone(),
        };
        self.act(&caller, act, &name, || {
            self.app.sets().rollback(&name, version.as_deref())
        })
        .await
    }

    async fn release_plugin(
        &self,
        request: Request<pb::ReleasePluginRequest>,
    ) -> Result<Response<pb::SetStatus>, Status> {
        let caller = self.app.auth().caller_of(&request, ADMIN)?;
        let pb::ReleasePluginRequest { name, plugin } = request.into_inner();
        let (name, plugin) = (
            required("name", name).or_status()?,
            required("plugin", plugin).or_status()?,
        );
        let act = SetAct::ReleasePlugin {
            plugin: plugin.clone(),
        };
        self.act(&caller, act, &name, || {
            let set = self
                .app
                .sets()
                .get(Some(&name))
                .ok_or_else(|| SetError::UnknownSet { name: name.clone() })?;
            set.release(&plugin)
                .map(drop)
                .ok_or_else(|| SetError::UnknownPlugin {
                    name: name.clone(),
                    plugin: plugin.clone(),
                })
        })
        .await
    }
}
