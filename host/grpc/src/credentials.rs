//! The `arbiter.v1.Credentials` service.

use crate::OrStatus as _;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::ApiError;
use crate::CallerOf as _;
use crate::proto as pb;
use arbiter_service::app::App;
use arbiter_service::approvals::blocking;
use arbiter_service::auth::Role;
use arbiter_service::events::{AuditEvent, CredentialEvent};

/// Introspection, revocation, task completion, keys.
#[derive(Debug, Clone)]
pub struct CredentialsService {
    app: Arc<App>,
}

impl CredentialsService {
    /// The service over the server's state.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

const HOLDERS: &[Role] = &[Role::Enforcer, Role::Admin];
/// Resource servers check credentials with the narrow `introspector` role.
const INTROSPECTORS: &[Role] = &[Role::Introspector, Role::Enforcer, Role::Admin];

/// Reading or changing credential state needs a proven identity: a caller without a
/// token (allowed to ask for decisions on loopback) may not revoke or introspect.
fn authenticated(
    caller: arbiter_service::auth::Caller,
) -> Result<arbiter_service::auth::Caller, ApiError> {
    if caller.authenticated {
        Ok(caller)
    } else {
        Err(ApiError::Unauthenticated(
            "credential calls need a bearer token with the enforcer or admin role",
        ))
    }
}
/// A JWT longer than this is not one of ours.
const MAX_TOKEN_BYTES: usize = 8192;

/// Whose credentials a caller may revoke: an admin's, anyone's; an enforcer's, those
/// issued to it (or its group).
fn scope(app: &App, caller: &arbiter_service::auth::Caller) -> Option<String> {
    (!caller.roles.contains(&Role::Admin)).then(|| app.auth().holder_of(caller))
}

fn required(field: &str, v: String) -> Result<String, ApiError> {
    if v.is_empty() {
        return Err(ApiError::field(field, "is required"));
    }
    if v.len() > super::decode::MAX_NAME_BYTES {
        return Err(ApiError::field(
            field,
            format!("is more than {} bytes", super::decode::MAX_NAME_BYTES),
        ));
    }
    Ok(v)
}

#[tonic::async_trait]
impl pb::credentials_server::Credentials for CredentialsService {
    async fn introspect(
        &self,
        request: Request<pb::IntrospectRequest>,
    ) -> Result<Response<pb::IntrospectResponse>, Status> {
        authenticated(self.app.auth().caller_of(&request, INTROSPECTORS)?).or_status()?;
        let token = request.into_inner().token;
        if token.len() > MAX_TOKEN_BYTES {
            return Ok(Response::new(pb::IntrospectResponse::default()));
        }
        let creds = self.app.credentials().clone();
        let found = blocking(move || creds.introspect(&token))
            .await
            .or_status()?;
        Ok(Response::new(match found {
            None => pb::IntrospectResponse::default(),
            Some((c, kid)) => pb::IntrospectResponse {
                active: true,
                id: c.jti,
                subject: c.sub,
                action: c.action,
                resource: c.aud,
                task_id: c.task_id,
                decision_id: c.decision_id,
                issued_at: c.iat,
                expires_at: c.exp,
                kid,
            },
        }))
    }

    async fn revoke(
        &self,
        request: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        let caller = authenticated(self.app.auth().caller_of(&request, HOLDERS)?).or_status()?;
        let id = required("id", request.into_inner().id).or_status()?;
        let creds = self.app.credentials().clone();
        let key = id.clone();
        let holder = scope(&self.app, &caller);
        let revoked = blocking(move || creds.revoke(&key, holder.as_deref()))
            .await
            .or_status()?;
        if revoked {
            self.app
                .record(AuditEvent::Credential {
                    actor: &caller.id,
                    event: CredentialEvent::Revoked {
                        ids: vec![id],
                        decision_id: None,
                        reason: None,
                    },
                })
                .await
                .or_status()?;
        }
        Ok(Response::new(pb::RevokeResponse { revoked }))
    }

    async fn complete_task(
        &self,
        request: Request<pb::CompleteTaskRequest>,
    ) -> Result<Response<pb::CompleteTaskResponse>, Status> {
        let caller = authenticated(self.app.auth().caller_of(&request, HOLDERS)?).or_status()?;
        let task_id = required("task_id", request.into_inner().task_id).or_status()?;
        let creds = self.app.credentials().clone();
        let task = task_id.clone();
        let holder = scope(&self.app, &caller);
        let revoked = blocking(move || creds.complete_task(&task, holder.as_deref()))
            .await
            .or_status()?;
        self.app
            .record(AuditEvent::Credential {
                actor: &caller.id,
                event: CredentialEvent::TaskComplete {
                    task_id,
                    ids: revoked.clone(),
                },
            })
            .await
            .or_status()?;
        Ok(Response::new(pb::CompleteTaskResponse { revoked }))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        // Public keys are public: no token needed, so resource servers can fetch them.
        Ok(Response::new(pb::GetJwksResponse {
            jwks_json: self.app.credentials().jwks(),
            active_kid: self.app.credentials().active_kid(),
        }))
    }

    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        let caller = self.app.auth().caller_of(&request, &[Role::Admin])?;
        let creds = self.app.credentials().clone();
        let (active_kid, retired_kid) = blocking(move || creds.rotate()).await.or_status()?;
        self.app
            .record(AuditEvent::Admin {
                actor: &caller.id,
                act: arbiter_service::events::AdminAct::RotateSigningKey {
                    active_kid: active_kid.clone(),
                    retired_kid: retired_kid.clone(),
                },
            })
            .await
            .or_status()?;
        Ok(Response::new(pb::RotateSigningKeyResponse {
            active_kid,
            retired_kid,
        }))
    }
}
