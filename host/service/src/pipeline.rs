//! The decision pipeline, the same for every front door: admission, set selection,
//! approval redemption, evaluation, the audit record before the answer, shadow
//! evaluation, the approval hold and credential issue. A probe goes through the same
//! evaluation and stops at its record: no shadow, no approval, no credential.

use std::sync::Arc;
use std::time::Duration;

use arbiter_core::{Decision, Outcome, Request};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::ServiceError;
use crate::app::App;
use crate::approvals::blocking;
use crate::auth::Caller;
use crate::events::{ApprovalStep, AuditEvent, CredentialEvent};

/// A validated request with its routing options, as a front door decoded it.
#[derive(Debug, Clone)]
pub struct Authorize {
    /// The question.
    pub request: Request,
    /// The set to ask; `None` for the default.
    pub policy_set: Option<String>,
    /// An approval to redeem.
    pub approval_id: Option<String>,
    /// Whether to list plugin verdicts.
    pub explain: bool,
    /// A credential is wanted on allow, with this lifetime wish (`None`: the default).
    pub credential: Option<Option<Duration>>,
    /// Only asks what the set would answer ("could this ever be allowed?"): decided as
    /// usual, recorded as a probe, with no effect (no approval held, no credential, no
    /// shadow comparison). Cannot carry `credential` or `approval_id`.
    pub probe: bool,
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The set's decision (recorded before this is returned).
    pub decision: Decision,
    /// The approval held for a `require-approval`, or the one redeemed by an allow.
    pub approval_id: Option<String>,
    /// A credential issued with an allow, when one was asked for.
    pub credential: Option<IssuedCredential>,
}

/// What a decision led to besides itself.
#[derive(Debug, Default)]
struct Effects {
    approval_id: Option<String>,
    credential: Option<IssuedCredential>,
}

/// A just-in-time credential handed out with an allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCredential {
    /// Its id (`jti`).
    pub id: String,
    /// The signed JWT.
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Items of one batch decided at once: enough for their audit records to share group
/// commits, few enough that one batch cannot take every evaluation slot.
pub const BATCH_CONCURRENCY: usize = 16;

/// How long a request may wait for a free sandbox before it is refused with
/// RESOURCE_EXHAUSTED. An enforcement point waiting longer than this for a decision
/// is better told to back off.
pub const ADMISSION_WAIT: Duration = Duration::from_secs(2);
/// Requests that may wait for a sandbox, per evaluation slot. Past this the server
/// refuses at once rather than holding unbounded decoded requests in memory.
pub const QUEUE_PER_SLOT: usize = 4;

/// Decides requests from the loaded policy sets: the pipeline every front door calls.
#[derive(Debug, Clone)]
pub struct Decider {
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
    shadow: Arc<Semaphore>,
    capacity: usize,
}

/// An evaluation slot held by shadow work.
#[derive(Debug)]
pub struct ShadowPermit {
    _share: tokio::sync::OwnedSemaphorePermit,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Admission {
    /// Admission for a pool of `capacity` instances.
    pub fn new(capacity: usize) -> Self {
        Self {
            running: Arc::new(Semaphore::new(capacity)),
            waiting: Arc::new(Semaphore::new(capacity * QUEUE_PER_SLOT)),
            shadow: Arc::new(Semaphore::new((capacity / 2).max(1))),
            capacity,
        }
    }

    /// A slot for shadow work, only if one is free right now (never waits) and shadow
    /// work holds fewer than half the slots.
    fn try_shadow(&self) -> Option<ShadowPermit> {
        let share = self.shadow.clone().try_acquire_owned().ok()?;
        let slot = self.running.clone().try_acquire_owned().ok()?;
        Some(ShadowPermit {
            _share: share,
            _slot: slot,
        })
    }

    async fn enter(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ServiceError> {
        if let Ok(p) = self.running.clone().try_acquire_owned() {
            return Ok(p);
        }
        let overloaded = || ServiceError::Overloaded {
            capacity: self.capacity,
        };
        let _queued = self.waiting.try_acquire().map_err(|_| overloaded())?;
        match tokio::time::timeout(ADMISSION_WAIT, self.running.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(overloaded()),
        }
    }
}

impl Decider {
    /// The pipeline over the server's state, admitting at most `capacity` concurrent
    /// evaluations.
    pub fn new(app: Arc<App>, capacity: usize) -> Self {
        Self {
            app,
            admission: Admission::new(capacity),
        }
    }

    /// The server's state behind this pipeline.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Routes, evaluates, records and applies the effects of one decoded request.
    pub async fn decide(&self, caller: &Caller, a: Authorize) -> Result<Answer, ServiceError> {
        let started = std::time::Instant::now();
        // The decoding doors refuse control characters; this is for every door.
        if let Some(field) = a.request.field_with_nul() {
            return Err(ServiceError::nul(field));
        }
        ServiceError::refuse_nul("approval_id", a.approval_id.as_deref().unwrap_or(""))?;
        if a.probe {
            probe_has_no_effects(&a)?;
        }
        // Before the set is looked up: which names exist is none of a caller's
        // business unless it may use them.
        if let Some(named) = &a.policy_set
            && !caller.sets.allows(named, &self.app.sets.default_name())
        {
            return Err(ServiceError::PermissionDenied(format!(
                "`{}` may not select policy set `{named}`: a caller uses the default set unless its `sets` list names others",
                caller.id
            )));
        }
        let route = self
            .app
            .sets
            .route(a.policy_set.as_deref())
            .ok_or_else(|| ServiceError::UnknownSet(a.policy_set.clone().unwrap_or_default()))?;
        let set = route.set;
        let holder = self.app.auth.holder_of(caller);
        if a.credential.is_some() && !caller.authenticated {
            return Err(ServiceError::PermissionDenied(
                "credentials are issued only to authenticated enforcement points: send a bearer token or a client certificate with the enforcer role".into(),
            ));
        }
        // An approval is checked before evaluation (digest, state, expiry) and
        // consumed after it, only when the re-evaluation allows.
        // The redemption is held to the end of this call: no other request redeems
        // the same approval meanwhile.
        let (approval, _redemption) = match &a.approval_id {
            Some(id) => {
                let checked = self
                    .app
                    .approvals
                    .check(id, &a.request, a.credential, set.identity(), &holder)
                    .await;
                match checked {
                    Ok((approval, redemption)) => (Some(approval), Some(redemption)),
                    Err(e) => {
                        self.record_refused_redemption(caller, id, &a.request, &e)
                            .await;
                        return Err(e);
                    }
                }
            }
            None => (None, None),
        };
        let span = tracing::debug_span!(
            "decide",
            set = %set.identity().name,
            principal = %a.request.principal.id,
            action = %a.request.action.name,
            probe = a.probe,
            outcome = tracing::field::Empty,
        );
        let permit = self.admission.enter().await?;
        let d = set
            .decide_as(&a.request, approval.is_some(), &holder)
            .instrument(span.clone())
            .await;
        drop(permit);
        span.record("outcome", d.outcome.as_str());
        // Recorded before anything is returned or changed: no record, no decision.
        let latency = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if a.probe {
            let mode = set.manifest().audit;
            self.app
                .record_probe(&a.request, &d, mode, caller, latency)
                .await?;
            return Ok(Answer {
                decision: d,
                approval_id: None,
                credential: None,
            });
        }
        self.app
            .record_decision(
                &a.request,
                &d,
                set.manifest().audit,
                caller,
                a.approval_id.as_deref(),
                latency,
            )
            .await?;
        if let Some(shadow) = route.shadow {
            let permit = self.admission.try_shadow();
            crate::shadow::spawn(
                self.app.clone(),
                shadow,
                permit,
                a.request.clone(),
                approval.is_some(),
                &d,
            );
        }
        let mut answer = Effects::default();
        match d.outcome {
            Outcome::RequireApproval => {
                let (id, created) = self
                    .app
                    .approvals
                    .hold(&a.request, a.credential, &d, &holder)
                    .await?;
                if let Some(created) = created {
                    self.app
                        .record(AuditEvent::Approval {
                            actor: &caller.id,
                            approval: &created,
                            step: ApprovalStep::Created,
                            vote: None,
                        })
                        .await?;
                }
                answer.approval_id = Some(id);
            }
            Outcome::Allow => {
                self.allow(caller, &holder, &a, &d, approval, &mut answer)
                    .await?
            }
            Outcome::Deny => {}
        }
        Ok(Answer {
            decision: d,
            approval_id: answer.approval_id,
            credential: answer.credential,
        })
    }

    /// The effects of an allow: the approval used, and a credential when asked for.
    /// The credential is signed first; the approval's use and the credential's record
    /// are then one conditional statement in the store, so of any number of requests
    /// racing for an approval (on any replica) one wins and only its credential
    /// exists. When the issue or the use cannot be audited, the credential is revoked
    /// before anyone sees it and the approval is given back, usable again.
    async fn allow(
        &self,
        caller: &Caller,
        holder: &str,
        a: &Authorize,
        d: &Decision,
        approval: Option<arbiter_store::Approval>,
        answer: &mut Effects,
    ) -> Result<(), ServiceError> {
        let minted = match a.credential {
            Some(wish) => {
                let creds = self.app.credentials.clone();
                let (request, decision, to) = (a.request.clone(), d.clone(), holder.to_string());
                Some(blocking(move || creds.mint(&request, &decision, wish, &to)).await?)
            }
            None => None,
        };
        let (record, issued) = minted.unzip();
        let consumed = match approval {
            Some(approval) => {
                let redeemed = self.app.approvals.redeem(&approval, &d.id, record).await;
                if let Err(e @ ServiceError::ApprovalClosed { .. }) = &redeemed {
                    // Used (or closed) since it was checked, by a request that won.
                    self.record_refused_redemption(caller, &approval.new.id, &a.request, e)
                        .await;
                }
                Some(redeemed?)
            }
            None => {
                if let Some(record) = record {
                    let store = self.app.store.clone();
                    blocking(move || Ok(store.insert_credential(&record)?)).await?;
                }
                None
            }
        };
        if let Some(issued) = &issued
            && let Err(e) = self.record_issue(caller, a, d, issued).await
        {
            if let Some(c) = &consumed {
                self.app.approvals.release(&c.new.id, &d.id).await;
            }
            return Err(e);
        }
        if let Some(consumed) = consumed {
            let recorded = self
                .app
                .record(AuditEvent::Approval {
                    actor: &caller.id,
                    approval: &consumed,
                    step: ApprovalStep::Consumed,
                    vote: None,
                })
                .await;
            if let Err(e) = recorded {
                if let Some(issued) = &issued {
                    let why = "the use of its approval could not be recorded";
                    self.revoke_unhanded(caller, &issued.id, d, why).await;
                }
                self.app.approvals.release(&consumed.new.id, &d.id).await;
                return Err(e);
            }
            answer.approval_id = Some(consumed.new.id);
        }
        answer.credential = issued.map(|issued| IssuedCredential {
            id: issued.id,
            token: issued.token,
            expires_at: issued.expires_at,
        });
        Ok(())
    }

    /// Audits the issue of a recorded credential; one whose issue cannot be audited is
    /// revoked before anyone sees it.
    async fn record_issue(
        &self,
        caller: &Caller,
        a: &Authorize,
        d: &Decision,
        issued: &crate::credentials::Issued,
    ) -> Result<(), ServiceError> {
        let recorded = self
            .app
            .record(AuditEvent::Credential {
                actor: &caller.id,
                event: CredentialEvent::Issued {
                    id: issued.id.clone(),
                    decision_id: d.id.clone(),
                    task_id: a.request.intent.task_id.clone(),
                    expires_at: issued.expires_at,
                },
            })
            .await;
        if let Err(e) = recorded {
            self.revoke_unhanded(caller, &issued.id, d, "its issue could not be recorded")
                .await;
            return Err(e);
        }
        Ok(())
    }

    /// Revokes a credential that must not escape, and records that (`why` it was never
    /// handed out); logs if either fails. The request fails either way.
    async fn revoke_unhanded(
        &self,
        caller: &Caller,
        id: &str,
        d: &arbiter_core::Decision,
        why: &str,
    ) {
        let (creds, key) = (self.app.credentials.clone(), id.to_string());
        if let Err(e) = blocking(move || creds.revoke(&key, None)).await {
            tracing::error!(credential = id, error = %e, "cannot revoke a credential that was never handed out");
            return;
        }
        let recorded = self
            .app
            .record(AuditEvent::Credential {
                actor: &caller.id,
                event: CredentialEvent::Revoked {
                    ids: vec![id.to_string()],
                    decision_id: Some(d.id.clone()),
                    reason: Some(format!("never handed out: {why}")),
                },
            })
            .await;
        if let Err(e) = recorded {
            tracing::warn!(credential = id, error = %e, "revoked a credential that was never handed out, but cannot record that");
        }
    }

    /// Records that `caller` presented approval `id` and it was refused (`e` says why),
    /// so that attempts to replay or stretch an approval are on record. The request is
    /// refused either way; a record that cannot be written is logged.
    async fn record_refused_redemption(
        &self,
        caller: &Caller,
        id: &str,
        request: &arbiter_core::Request,
        e: &ServiceError,
    ) {
        let recorded = self
            .app
            .record(AuditEvent::RedemptionRefused {
                actor: &caller.id,
                approval_id: id,
                request,
                reason: e.to_string(),
            })
            .await;
        if let Err(err) = recorded {
            tracing::warn!(approval = id, error = %err, "cannot record a refused approval redemption");
        }
    }
}

/// Refuses a probe that asks for an effect: a probe has none, so a credential or an
/// approval to redeem cannot be part of one.
fn probe_has_no_effects(a: &Authorize) -> Result<(), ServiceError> {
    if a.credential.is_some() {
        return Err(ServiceError::field(
            "credential",
            "must not be set on a probe: a probe issues no credential; ask again without `probe`",
        ));
    }
    if a.approval_id.is_some() {
        return Err(ServiceError::field(
            "approval_id",
            "must not be set on a probe: a probe redeems no approval; re-submit without `probe`",
        ));
    }
    Ok(())
}
