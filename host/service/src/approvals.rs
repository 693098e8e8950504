//! Human approval of held actions: a require-approval decision becomes an approval
//! record bound to the canonical digest of exactly that request; humans vote under
//! separation of duties; the enforcement point re-submits the same request with the
//! approval id and it is allowed once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbiter_core::{Decision, Request, SetIdentity, SharedClock};
use arbiter_store::{
    Approval, ApprovalFilter, ApprovalState, NewApproval, StateStore, Vote, VoteOutcome,
};
use tokio::sync::{broadcast, mpsc};

use crate::ServiceError;
use crate::auth::Caller;
use crate::events::{ApprovalChange, ApprovalStep};

mod digest;
mod upkeep;
pub use upkeep::{purge_old, sweep_expired};
pub mod shared;
use digest::evidence;
pub use digest::{approval_digest, identity_key};

/// How long an approval stays open by default: long enough for a human to react,
/// short enough that a stale approval does not authorise tomorrow's action.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60 * 60);
/// Changes buffered per watcher; a watcher that falls further behind is told to
/// re-list rather than silently miss events.
pub const WATCH_BUFFER: usize = 1024;
/// Longest vote comment.
pub const MAX_COMMENT_BYTES: usize = 4096;
/// How often lapsed approvals are looked for: an expiry reaches watchers and the audit
/// log within about this long (it takes effect at once regardless: expiry is derived
/// from the clock wherever an approval is read).
pub const EXPIRY_SWEEP: Duration = Duration::from_secs(1);
/// Lapsed approvals recorded per sweep at most, so one sweep stays short; a backlog
/// (after downtime) clears over a few sweeps.
const SWEEP_BATCH: usize = 256;
/// Who expiry records name as the actor.
pub const EXPIRY_ACTOR: &str = "arbiter";

/// How often closed approvals and expired credentials past `[state] keep_days` are
/// deleted (also once at start).
pub const PURGE_EVERY: Duration = Duration::from_secs(60 * 60);

/// The approval desk: creates, lists, decides and redeems approvals.
#[derive(Debug, Clone)]
pub struct ApprovalDesk {
    store: Arc<dyn StateStore>,
    clock: SharedClock,
    ttl: Duration,
    events: broadcast::Sender<ApprovalChange>,
    /// Pending approvals by (request digest, set): an agent retrying a held action is
    /// answered from memory instead of a database round trip on a blocking thread.
    open: Arc<Mutex<OpenApprovals>>,
    /// Approvals some request is redeeming right now. Another request presenting the
    /// same one meanwhile is refused at once instead of racing it, which would have a
    /// credential signed for it only to be revoked (single use itself is enforced by
    /// the database, across replicas too).
    redeeming: Arc<Mutex<HashSet<String>>>,
    /// Where this replica's steps go to be shared with other replicas, when they are.
    outbox: Arc<std::sync::OnceLock<mpsc::UnboundedSender<(ApprovalStep, String)>>>,
}

/// Held while a request redeems an approval; see [`ApprovalDesk::redeeming`].
#[derive(Debug)]
pub struct Redemption {
    id: String,
    redeeming: Arc<Mutex<HashSet<String>>>,
}

impl Drop for Redemption {
    fn drop(&mut self) {
        self.redeeming
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// (request digest, set name) to (approval id, expiry in unix microseconds).
/// Pending approvals by (request digest, set name, holder).
type OpenApprovals = HashMap<(String, String, String), (String, i64)>;

/// Open approvals remembered at most; past this, expired ones are forgotten first.
const MAX_REMEMBERED: usize = 100_000;

/// Runs a state operation on a blocking thread (SQLite syncs to disk).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ServiceError::Unavailable("a state operation was interrupted".into()))?
}

impl ApprovalDesk {
    /// A desk over `store`; approvals expire after `ttl`.
    pub fn new(store: Arc<dyn StateStore>, ttl: Duration, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            ttl,
            events: broadcast::channel(WATCH_BUFFER).0,
            open: Arc::default(),
            redeeming: Arc::default(),
            outbox: Arc::default(),
        }
    }

    /// New and changed approvals, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ApprovalChange> {
        self.events.subscribe()
    }

    /// Tells watchers of `a`'s new state, and which step brought it there (and other
    /// replicas, when they share the database).
    pub fn publish(&self, step: ApprovalStep, a: &Approval) {
        if let Some(outbox) = self.outbox.get() {
            let _ = outbox.send((step, a.new.id.clone()));
        }
        self.publish_from(step, a, None);
    }

    /// Tells watchers here of a step `from_replica` took (`None`: this one).
    pub(crate) fn publish_from(&self, step: ApprovalStep, a: &Approval, from: Option<String>) {
        self.remember(a);
        // No watcher is not an error.
        let _ = self.events.send(ApprovalChange {
            step,
            approval: a.clone(),
            from_replica: from,
        });
    }

    /// Shares this replica's steps through `outbox` from now on.
    pub(crate) fn share(&self, outbox: mpsc::UnboundedSender<(ApprovalStep, String)>) {
        let _ = self.outbox.set(outbox);
    }

    /// Keeps the pending-approval memory in step with `a`'s state.
    fn remember(&self, a: &Approval) {
        let key = (
            a.new.request_digest.clone(),
            a.new.set.name.clone(),
            a.new.held_by.clone(),
        );
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if a.state == ApprovalState::Pending {
            if open.len() >= MAX_REMEMBERED {
                let now = self.clock.now_micros();
                open.retain(|_, (_, expires)| *expires > now);
            }
            if open.len() < MAX_REMEMBERED {
                open.insert(key, (a.new.id.clone(), a.new.expires_micros));
            }
        } else {
            open.remove(&key);
        }
    }

    /// Records (or finds, for an identical request still pending) the approval a
    /// require-approval decision asks for; returns its id, and the approval when new.
    /// Approvals are bound to `held_by`, the enforcement identity (or group) that
    /// held the request: the same request held by another identity opens its own.
    pub async fn hold(
        &self,
        request: &Request,
        credential: Option<Option<Duration>>,
        decision: &Decision,
        held_by: &str,
    ) -> Result<(String, Option<Approval>), ServiceError> {
        let digest = approval_digest(request, credential);
        let now = self.clock.now_micros();
        let remembered = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(
                digest.clone(),
                decision.set.name.clone(),
                held_by.to_string(),
            ))
            .filter(|(_, expires)| *expires > now)
            .map(|(id, _)| id.clone());
        if let Some(id) = remembered {
            return Ok((id, None));
        }
        let new = NewApproval {
            id: uuid::Uuid::now_v7().to_string(),
            request_digest: digest,
            request: evidence(request, credential),
            principal: request.principal.id.clone(),
            delegation: request.delegation.iter().map(|p| p.id.clone()).collect(),
            task_id: request.intent.task_id.clone(),
            set: decision.set.clone(),
            decision_id: decision.id.clone(),
            reasons: decision.reasons.clone(),
            approvers_required: decision.obligations.approvers_required.unwrap_or(1).max(1),
            created_micros: now,
            expires_micros: now
                .saturating_add(i64::try_from(self.ttl.as_micros()).unwrap_or(i64::MAX)),
            held_by: held_by.to_string(),
        };
        let store = self.store.clone();
        let (approval, created) = blocking(move || Ok(store.hold_approval(&new, now)?)).await?;
        if created {
            self.publish(ApprovalStep::Created, &approval);
        } else {
            self.remember(&approval);
        }
        Ok((approval.new.id.clone(), created.then_some(approval)))
    }

    /// Checks that approval `id` may authorise `request` on `set`: approved, unexpired,
    /// unused, same digest, and no other request redeeming it right now. The caller
    /// then re-evaluates and [`Self::redeem`]s on allow, holding the [`Redemption`]
    /// until then.
    pub async fn check(
        &self,
        id: &str,
        request: &Request,
        credential: Option<Option<Duration>>,
        set: &SetIdentity,
        holder: &str,
    ) -> Result<(Approval, Redemption), ServiceError> {
        // Checked first, so that only a request the approval covers can hold it.
        let approval = self
            .check_stored(id, request, credential, set, holder)
            .await?;
        if !self
            .redeeming
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string())
        {
            return Err(ServiceError::ApprovalBusy { id: id.to_string() });
        }
        let redemption = Redemption {
            id: id.to_string(),
            redeeming: Arc::clone(&self.redeeming),
        };
        // Not read again once held: a redemption that ended between the check and the
        // hold (and used the approval) makes this one's conditional use fail, and the
        // credential it signed is never recorded. One read per redemption.
        Ok((approval, redemption))
    }

    async fn check_stored(
        &self,
        id: &str,
        request: &Request,
        credential: Option<Option<Duration>>,
        set: &SetIdentity,
        holder: &str,
    ) -> Result<Approval, ServiceError> {
        let store = self.store.clone();
        let (key, now) = (id.to_string(), self.clock.now_micros());
        let a = blocking(move || Ok(store.approval(&key, now)?))
            .await?
            .ok_or_else(|| ServiceError::not_found("approval", id))?;
        if !a.new.held_by.is_empty() && a.new.held_by != holder {
            return Err(ServiceError::ApprovalNotYours { id: id.to_string() });
        }
        let refuse = |reason: String| {
            Err(ServiceError::ApprovalMismatch {
                id: id.to_string(),
                reason,
            })
        };
        if a.new.request_digest != approval_digest(request, credential) {
            return refuse("was given for a different request (the canonical digest differs): an approval covers exactly the request that was held".into());
        }
        if a.new.set.name != set.name {
            return refuse(format!(
                "was given by policy set `{}`, not `{}`",
                a.new.set.name, set.name
            ));
        }
        if a.new.set.digest != set.digest {
            return refuse(format!(
                "was given under version {} of `{}`, and version {} is enforced now; the request must be held and approved again under the rules that now apply",
                a.new.set.version, set.name, set.version
            ));
        }
        match a.state {
            ApprovalState::Approved => Ok(a),
            ApprovalState::Pending => refuse(format!(
                "is still pending ({} of {} approvals)",
                a.approvals(),
                a.new.approvers_required
            )),
            ApprovalState::Rejected => refuse("was rejected".into()),
            ApprovalState::Consumed => refuse("was already used; approvals are single-use".into()),
            ApprovalState::Expired => refuse("has expired".into()),
        }
    }

    /// Uses `approval` (as [`Self::check`] read it) for `decision_id`, once, and
    /// records `credential` (the one this use issues, if any) in the same step; returns
    /// it consumed. One conditional statement in the store: of any number of requests
    /// racing for it, on any replica, one wins and only its credential is recorded.
    pub async fn redeem(
        &self,
        approval: &Approval,
        decision_id: &str,
        credential: Option<arbiter_store::Credential>,
    ) -> Result<Approval, ServiceError> {
        let store = self.store.clone();
        let (key, dec) = (approval.new.id.clone(), decision_id.to_string());
        let now = self.clock.now_micros();
        let won = blocking(move || {
            if store.redeem_approval(&key, &dec, now, credential.as_ref())? {
                return Ok(None);
            }
            // Lost: say what it is now (a read only on this path).
            Ok(Some(store.approval(&key, now)?))
        })
        .await?;
        match won {
            None => {
                let mut consumed = approval.clone();
                consumed.state = ApprovalState::Consumed;
                consumed.consumed_micros = Some(now);
                consumed.consumed_by = Some(decision_id.to_string());
                consumed.updated_micros = now;
                self.publish(ApprovalStep::Consumed, &consumed);
                Ok(consumed)
            }
            Some(now) => Err(ServiceError::ApprovalClosed {
                id: approval.new.id.clone(),
                state: now.map_or(ApprovalState::Expired, |a| a.state),
            }),
        }
    }

    /// Gives back an approval `decision_id` consumed but could not use (its credential
    /// could not be issued or recorded), so the requester may redeem it again; logs
    /// when it cannot.
    pub async fn release(&self, id: &str, decision_id: &str) {
        let store = self.store.clone();
        let (key, dec) = (id.to_string(), decision_id.to_string());
        let now = self.clock.now_micros();
        match blocking(move || Ok(store.release_approval(&key, &dec, now)?)).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                approval = id,
                "an approval to give back was not consumed by this decision"
            ),
            Err(e) => {
                tracing::error!(approval = id, error = %e, "cannot give back an approval whose credential was never handed out; it stays used")
            }
        }
    }

    /// One approver's vote, under separation of duties.
    pub async fn vote(
        &self,
        caller: &Caller,
        id: &str,
        approve: bool,
        comment: String,
    ) -> Result<Approval, ServiceError> {
        if let Some(refused) = crate::voting::not_a_human(caller) {
            return Err(refused);
        }
        ServiceError::refuse_nul("id", id)?;
        ServiceError::refuse_nul("comment", &comment)?;
        if comment.len() > MAX_COMMENT_BYTES {
            return Err(ServiceError::field(
                "comment",
                format!("is more than {MAX_COMMENT_BYTES} bytes"),
            ));
        }
        let store = self.store.clone();
        let (key, now) = (id.to_string(), self.clock.now_micros());
        let current = blocking(move || Ok(store.approval(&key, now)?))
            .await?
            .ok_or_else(|| ServiceError::not_found("approval", id))?;
        if let Some(refused) = crate::voting::in_the_request(caller, &current) {
            return Err(refused);
        }
        let me = identity_key(&caller.id);
        let vote = Vote {
            // One person counts once however their id is spelled.
            approver: me,
            approve,
            comment,
            at_micros: self.clock.now_micros(),
        };
        let store = self.store.clone();
        let key = id.to_string();
        let outcome = blocking(move || Ok(store.vote(&key, &vote, vote.at_micros)?)).await?;
        match outcome {
            VoteOutcome::Counted(a) => {
                self.publish(ApprovalStep::Vote, &a);
                Ok(a)
            }
            VoteOutcome::AlreadyVoted(_) => Err(ServiceError::AlreadyVoted {
                id: id.to_string(),
                approver: caller.id.clone(),
            }),
            VoteOutcome::Closed(a) => Err(ServiceError::ApprovalClosed {
                id: id.to_string(),
                state: a.state,
            }),
            VoteOutcome::NotFound => Err(ServiceError::not_found("approval", id)),
        }
    }

    /// Takes back a counted vote whose audit record could not be written.
    pub async fn retract(&self, id: &str, approver: &str) -> Result<(), ServiceError> {
        let store = self.store.clone();
        let (key, who) = (id.to_string(), identity_key(approver));
        let now = self.clock.now_micros();
        let a = blocking(move || {
            store.retract_vote(&key, &who, now)?;
            Ok(store.approval(&key, now)?)
        })
        .await?;
        if let Some(a) = a {
            self.publish(ApprovalStep::Retracted, &a);
        }
        Ok(())
    }

    /// One approval.
    pub async fn get(&self, id: &str) -> Result<Approval, ServiceError> {
        ServiceError::refuse_nul("id", id)?;
        let store = self.store.clone();
        let (key, now) = (id.to_string(), self.clock.now_micros());
        blocking(move || Ok(store.approval(&key, now)?))
            .await?
            .ok_or_else(|| ServiceError::not_found("approval", id))
    }

    /// Approvals matching `filter` (its clock is set here).
    pub async fn list(&self, mut filter: ApprovalFilter) -> Result<Vec<Approval>, ServiceError> {
        ServiceError::refuse_nul("principal", filter.principal.as_deref().unwrap_or(""))?;
        ServiceError::refuse_nul("task_id", filter.task_id.as_deref().unwrap_or(""))?;
        filter.now_micros = self.clock.now_micros();
        let store = self.store.clone();
        blocking(move || Ok(store.list_approvals(&filter)?)).await
    }
}
