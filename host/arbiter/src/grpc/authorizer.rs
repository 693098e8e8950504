//! The `arbiter.v1.Authorizer` service.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use arbiter_core::Outcome;

use super::{ApiError, decode, encode};
use crate::app::App;
use crate::approvals::blocking;
use crate::auth::{Caller, Role};
use crate::proto as pb;

/// Who may ask for decisions.
const ENFORCERS: &[Role] = &[Role::Enforcer];

/// How long a request may wait for a free sandbox before it is refused with
/// RESOURCE_EXHAUSTED. An enforcement point waiting longer than this for a decision
/// is better told to back off.
pub const ADMISSION_WAIT: Duration = Duration::from_secs(2);
/// Requests that may wait for a sandbox, per evaluation slot. Past this the server
/// refuses at once rather than holding unbounded decoded requests in memory.
pub const QUEUE_PER_SLOT: usize = 4;

/// Answers decisions from the loaded policy sets.
#[derive(Debug, Clone)]
pub struct Authorizer {
    app: Arc<App>,
    admission: Admission,
}

/// Admission control, sized with the sandbox pool: at most `capacity` decisions
/// evaluate at once (each holds one instance at a time), at most
/// `QUEUE_PER_SLOT * capacity` wait, for at most [`ADMISSION_WAIT`]. Overload becomes
/// queueing, then RESOURCE_EXHAUSTED, never an allocation failure inside a sandbox.
#[derive(Debug, Clone)]
pub struct Admission {
    running: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
    capacity: usize,
}

impl Admission {
    /// Admission for a pool of `capacity` instances.
    pub fn new(capacity: usize) -> Self {
        Self {
            running: Arc::new(Semaphore::new(capacity)),
            waiting: Arc::new(Semaphore::new(capacity * QUEUE_PER_SLOT)),
            capacity,
        }
    }

    async fn enter(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        if let Ok(p) = self.running.clone().try_acquire_owned() {
            return Ok(p);
        }
        let overloaded = || ApiError::Overloaded {
            capacity: self.capacity,
        };
        let _queued = self.waiting.try_acquire().map_err(|_| overloaded())?;
        match tokio::time::timeout(ADMISSION_WAIT, self.running.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(overloaded()),
        }
    }
}

impl Authorizer {
    /// A service over the server's state, admitting at most `capacity` concurrent
    /// evaluations.
    pub fn new(app: Arc<App>, capacity: usize) -> Self {
        Self {
            app,
            admission: Admission::new(capacity),
        }
    }

    /// Decodes, routes, evaluates, encodes: the whole path of one request.
    async fn decide(
        &self,
        caller: &Caller,
        r: pb::AuthorizeRequest,
    ) -> Result<pb::AuthorizeResponse, ApiError> {
        let a = decode::authorize(r)?;
        let set = self
            .app
            .sets
            .get(a.policy_set.as_deref())
            .ok_or_else(|| ApiError::UnknownSet(a.policy_set.clone().unwrap_or_default()))?;
        if a.credential.is_some() && !caller.authenticated {
            return Err(ApiError::PermissionDenied(
                "credentials are issued only to authenticated enforcement points: send a bearer token with the enforcer role".into(),
            ));
        }
        // An approval is checked before evaluation (digest, state, expiry) and
        // consumed after it, only when the re-evaluation allows.
        let approval = match &a.approval_id {
            Some(id) => Some(
                self.app
                    .approvals
                    .check(id, &a.request, &set.identity().name)
                    .await?,
            ),
            None => None,
        };
        let span = tracing::debug_span!(
            "decide",
            set = %set.identity().name,
            principal = %a.request.principal.id,
            action = %a.request.action.name,
            outcome = tracing::field::Empty,
        );
        let permit = self.admission.enter().await?;
        let d = set
            .decide(&a.request, approval.is_some())
            .instrument(span.clone())
            .await;
        drop(permit);
        span.record("outcome", d.outcome.as_str());
        let mut response = encode::decision(&d, a.explain);
        match d.outcome {
            Outcome::RequireApproval => {
                let held = self.app.approvals.hold(&a.request, &d).await?;
                response.approval_id = held.new.id;
            }
            Outcome::Allow => {
                // The credential is recorded first and the approval consumed second: if
                // recording fails the approval stays usable; if another request used
                // the approval meanwhile, the credential is revoked before anyone sees it.
                let issued = match a.credential {
                    Some(wish) => {
                        let creds = self.app.credentials.clone();
                        let (request, decision) = (a.request.clone(), d.clone());
                        Some(blocking(move || creds.issue(&request, &decision, wish)).await?)
                    }
                    None => None,
                };
                if let Some(approval) = &approval {
                    if let Err(e) = self.app.approvals.consume(&approval.new.id, &d.id).await {
                        if let Some(issued) = &issued {
                            let (creds, id) = (self.app.credentials.clone(), issued.id.clone());
                            blocking(move || creds.revoke(&id)).await?;
                        }
                        return Err(e);
                    }
                    response.approval_id = approval.new.id.clone();
                }
                response.credential = issued.map(|issued| pb::IssuedCredential {
                    id: issued.id,
                    token: issued.token,
                    expires_at: issued.expires_at,
                });
            }
            Outcome::Deny => {}
        }
        Ok(response)
    }
}

#[tonic::async_trait]
impl pb::authorizer_server::Authorizer for Authorizer {
    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::AuthorizeResponse>, Status> {
        let caller = self.app.auth.authorize(request.metadata(), ENFORCERS)?;
        let request = request.into_inner();
        decode::check_size("request", &request)?;
        Ok(Response::new(self.decide(&caller, request).await?))
    }

    async fn authorize_batch(
        &self,
        request: Request<pb::AuthorizeBatchRequest>,
    ) -> Result<Response<pb::AuthorizeBatchResponse>, Status> {
        let caller = self.app.auth.authorize(request.metadata(), ENFORCERS)?;
        let batch = request.into_inner();
        decode::check_size("requests", &batch)?;
        let pb::AuthorizeBatchRequest { requests } = batch;
        if requests.len() > decode::MAX_BATCH {
            return Err(ApiError::field(
                "requests",
                format!(
                    "{} items is more than {}",
                    requests.len(),
                    decode::MAX_BATCH
                ),
            )
            .into());
        }
        let mut items = Vec::with_capacity(requests.len());
        for (i, r) in requests.into_iter().enumerate() {
            let result = match self.decide(&caller, r).await {
                Ok(response) => pb::batch_item::Result::Response(response),
                Err(e) => pb::batch_item::Result::Error(pb::ItemError {
                    code: e.code() as i32,
                    field: match e.field_name() {
                        "" => String::new(),
                        f => format!("requests[{i}].{f}"),
                    },
                    message: e.to_string(),
                }),
            };
            items.push(pb::BatchItem {
                result: Some(result),
            });
        }
        Ok(Response::new(pb::AuthorizeBatchResponse { items }))
    }
}
