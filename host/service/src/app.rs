//! What every service of one server shares: the policy sets, who may call, the
//! durable state, and the records of what happened.

use std::sync::Arc;

use arbiter_audit::{AuditLog, Durability, Record};
use arbiter_core::{AuditMode, Decision, Request, SharedClock};
use arbiter_store::{ApprovalState, StateStore};
use tokio::sync::watch;

use crate::ServiceError;
use crate::approvals::ApprovalDesk;
use crate::auth::{Authenticator, Caller};
use crate::credentials::Credentials;
use crate::events::{ApprovalStep, AuditEvent, CredentialEvent};
use crate::history::History;
use crate::loader::Loader;
use crate::metrics::Metrics;
use crate::records;
use crate::sets::Sets;

/// The shared state of a running server. Its parts are reached through accessors;
/// what changes state goes through the service's own methods.
#[derive(Debug)]
pub struct App {
    pub(crate) sets: Arc<Sets>,
    pub(crate) auth: Authenticator,
    pub(crate) store: Arc<dyn StateStore>,
    pub(crate) approvals: ApprovalDesk,
    pub(crate) credentials: Arc<Credentials>,
    pub(crate) audit: Option<AuditLog>,
    pub(crate) redaction: crate::redaction::Redaction,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) loader: Loader,
    pub(crate) history: History,
    /// Held from a set change until its audit record is written, so that a change that
    /// cannot be recorded is undone before any other change starts.
    pub(crate) set_changes: tokio::sync::Mutex<()>,
    /// Flips to `true` when the server starts shutting down (see [`App::stopping`]).
    stopping: watch::Sender<bool>,
    pub(crate) clock: SharedClock,
    replica_id: String,
    lease: Option<Arc<crate::replica::Lease>>,
}

/// What a server is assembled from (see `arbiter::server::open`).
#[derive(Debug)]
pub struct Parts {
    /// Loaded policy sets.
    pub sets: Arc<Sets>,
    /// Callers and roles.
    pub auth: Authenticator,
    /// Approvals, credentials, tokens.
    pub store: Arc<dyn StateStore>,
    /// The approval desk.
    pub approvals: ApprovalDesk,
    /// Credential issuing and checking.
    pub credentials: Arc<Credentials>,
    /// The tamper-evident record of every event; `None` when turned off.
    pub audit: Option<AuditLog>,
    /// Request fields left out of every record, and the key of their digests.
    pub redaction: crate::redaction::Redaction,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Loads new set versions with the server's trust policy.
    pub loader: Loader,
    /// Keeps the sets' state across restarts.
    pub history: History,
    /// The time records and state go by (the system clock; a test's own clock).
    pub clock: SharedClock,
    /// This replica's id among those sharing the state database.
    pub replica_id: String,
    /// This process's hold on its replica id in a shared state database (`None` on
    /// SQLite, which one server opens).
    pub lease: Option<Arc<crate::replica::Lease>>,
}

impl App {
    /// The server assembled from its parts.
    pub fn new(p: Parts) -> Self {
        p.metrics.set_replica(&p.replica_id);
        Self {
            sets: p.sets,
            auth: p.auth,
            store: p.store,
            approvals: p.approvals,
            credentials: p.credentials,
            audit: p.audit,
            redaction: p.redaction,
            metrics: p.metrics,
            loader: p.loader,
            history: p.history,
            set_changes: tokio::sync::Mutex::new(()),
            stopping: watch::channel(false).0,
            clock: p.clock,
            replica_id: p.replica_id,
            lease: p.lease,
        }
    }

    /// Loaded policy sets.
    pub fn sets(&self) -> &Arc<Sets> {
        &self.sets
    }

    /// Callers and roles.
    pub fn auth(&self) -> &Authenticator {
        &self.auth
    }

    /// The approval desk.
    pub fn approvals(&self) -> &ApprovalDesk {
        &self.approvals
    }

    /// Which request fields records (and notifications) do not show.
    pub fn redaction(&self) -> &crate::redaction::Redaction {
        &self.redaction
    }

    /// Credential issuing and checking.
    pub fn credentials(&self) -> &Arc<Credentials> {
        &self.credentials
    }

    /// The audit log, `None` when turned off.
    pub fn audit(&self) -> Option<&AuditLog> {
        self.audit.as_ref()
    }

    /// Prometheus metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Loads new set versions with the server's trust policy.
    pub fn loader(&self) -> &Loader {
        &self.loader
    }

    /// This replica's id among those sharing the state database.
    pub fn replica_id(&self) -> &str {
        &self.replica_id
    }

    /// This process's hold on its replica id, on a shared state database.
    pub fn lease(&self) -> Option<&Arc<crate::replica::Lease>> {
        self.lease.as_ref()
    }

    /// The time records and state go by.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Flips to `true` when the server starts shutting down; long-lived streams end.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Tells long-lived streams to end.
    pub fn stop(&self) {
        let _ = self.stopping.send(true);
    }

    /// Appends a record; an error means it is not in the log, and the caller must not
    /// be told that the event happened.
    pub async fn append(&self, record: Record, durability: Durability) -> Result<(), ServiceError> {
        let Some(log) = &self.audit else {
            return Ok(());
        };
        log.append(record, durability).await.map(drop).map_err(|e| {
            tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "audit append failed");
            ServiceError::Unavailable(
                "the audit log cannot be written, so nothing is decided or changed without a record; retry later (operators: see the server log)".into(),
            )
        })
    }

    /// Records a decision, durably unless its set says `audit = "async"`.
    pub async fn record_decision(
        &self,
        request: &Request,
        d: &Decision,
        mode: AuditMode,
        caller: &Caller,
        approval_id: Option<&str>,
        latency_micros: u64,
    ) -> Result<(), ServiceError> {
        self.metrics.decision(d);
        let record = self.decision_record(request, d, caller, approval_id, latency_micros);
        self.append_in(record, mode).await
    }

    /// Records a probe as [`App::record_decision`] records a decision, but under kind
    /// `probe` and counted apart: nothing that reads decisions (queries of kind
    /// `decision`, replay, `arbiter_decisions_total`) takes it for one.
    pub async fn record_probe(
        &self,
        request: &Request,
        d: &Decision,
        mode: AuditMode,
        caller: &Caller,
        latency_micros: u64,
    ) -> Result<(), ServiceError> {
        self.metrics.probe(d);
        let record = self
            .decision_record(request, d, caller, None, latency_micros)
            .map(|mut r| {
                r.kind = arbiter_audit::Kind::Probe;
                r
            });
        self.append_in(record, mode).await
    }

    /// The record of a decision; `None` when the log is off (nothing is built).
    fn decision_record(
        &self,
        request: &Request,
        d: &Decision,
        caller: &Caller,
        approval_id: Option<&str>,
        latency_micros: u64,
    ) -> Option<Record> {
        self.audit.as_ref()?;
        Some(records::decision(
            request,
            d,
            &caller.id,
            approval_id,
            latency_micros,
            &self.redaction,
            self.clock.now_micros(),
        ))
    }

    /// Appends `record`, if any, durably unless `mode` is async.
    async fn append_in(&self, record: Option<Record>, mode: AuditMode) -> Result<(), ServiceError> {
        let Some(record) = record else {
            return Ok(());
        };
        let durability = match mode {
            AuditMode::Durable => Durability::Durable,
            AuditMode::Async => Durability::Async,
        };
        self.append(record, durability).await
    }

    /// Counts an event in the metrics and appends its record, durably. An error means
    /// it is not in the log, and the caller must not be told that the event happened.
    pub async fn record(&self, event: AuditEvent<'_>) -> Result<(), ServiceError> {
        match &event {
            AuditEvent::Approval {
                approval: a, step, ..
            } => {
                let age = (*step == ApprovalStep::Vote
                    && matches!(a.state, ApprovalState::Approved | ApprovalState::Rejected))
                .then(|| {
                    let micros = self.clock.now_micros().saturating_sub(a.new.created_micros);
                    std::time::Duration::from_micros(u64::try_from(micros).unwrap_or(0))
                });
                self.metrics.approval(a.state.as_str(), age);
            }
            AuditEvent::Credential {
                event: CredentialEvent::Issued { .. },
                ..
            } => self.metrics.credential_issued(),
            AuditEvent::Credential {
                event:
                    CredentialEvent::Revoked { ids, .. } | CredentialEvent::TaskComplete { ids, .. },
                ..
            } => self.metrics.credentials_revoked(ids.len()),
            AuditEvent::Admin { actor, act } => {
                tracing::info!(caller = %actor, act = %act.name(), detail = %act.body(), "admin act");
            }
            AuditEvent::VoteRefused { .. } | AuditEvent::RedemptionRefused { .. } => {}
        }
        self.append(
            event.record(self.clock.now_micros(), &self.redaction),
            Durability::Durable,
        )
        .await
    }

    /// Applies a set change to set `set` and records it as an admin act (or its
    /// refusal); a change whose record cannot be written is undone and the call fails
    /// closed. With shared sets, the replica first catches up with the stored state,
    /// and the change is stored before it is recorded: one that cannot be stored (the
    /// database is down, or another replica changed the set first) is undone too.
    pub async fn change_sets(
        &self,
        caller: &Caller,
        act: crate::events::SetAct,
        set: &str,
        change: impl FnOnce() -> Result<(), crate::sets::SetError>,
    ) -> Result<Result<(), crate::sets::SetError>, ServiceError> {
        let _one_change_at_a_time = self.set_changes.lock().await;
        let shared = self.history.shared();
        if let Some(s) = shared
            && let Err(e) = s.catch_up(self).await
        {
            tracing::warn!(error = %e, "cannot read the shared policy sets before a change");
        }
        let before = self.sets.snapshot();
        // A load is checked against the newest version of its name here, one change
        // at a time, and remembered only once it was added.
        let loading = match &act {
            crate::events::SetAct::Load { version, .. } => Some(version.clone()),
            _ => None,
        };
        // A replica that refused the fleet's version of this set must not publish its
        // own state over it (that would move every replica back to what it serves).
        let split = shared.and_then(|s| s.split(set));
        let mut result = match (&loading, split) {
            (_, Some(why)) => Err(crate::sets::SetError::NotShared {
                reason: format!(
                    "this replica does not serve the version of `{set}` the other replicas do ({why}); make the change through a replica that does"
                ),
            }),
            (Some(version), None) => match self.loader.may_add(set, version) {
                Err(reason) => Err(crate::sets::SetError::Older { reason }),
                Ok(()) => change(),
            },
            (None, None) => change(),
        };
        let mut unshared = None;
        if result.is_ok()
            && let Some(s) = shared
            && let Err(e) = s.publish(self, set, None).await
        {
            self.sets.restore(before.clone());
            tracing::error!(set, error = %e, cause = ?std::error::Error::source(&e), "a policy-set change could not be stored for the other replicas and was undone");
            result = Err(crate::sets::SetError::NotShared {
                reason: e.to_string(),
            });
            unshared = Some(e);
        }
        // A load past the version limit unloads old versions: that is part of the act.
        let after = self.sets.snapshot().loaded();
        let unloaded = before
            .loaded()
            .into_iter()
            .filter(|v| !after.contains(v))
            .collect();
        let name = act.name();
        let act = crate::events::AdminAct::Set {
            act,
            set: set.to_string(),
            unloaded,
            refused: result.as_ref().err().map(ToString::to_string),
        };
        let recorded = self
            .record(AuditEvent::Admin {
                actor: &caller.id,
                act,
            })
            .await;
        if let Err(e) = recorded {
            if result.is_ok() {
                self.sets.restore(before);
                // The other replicas follow it back.
                if let Some(s) = shared
                    && let Err(e) = s.publish(self, set, None).await
                {
                    tracing::error!(set, error = %e, "a policy-set change that could not be recorded is undone here but stays stored for the other replicas");
                }
                tracing::error!(
                    act = name,
                    "a policy-set change could not be recorded and was undone"
                );
            }
            return Err(e);
        }
        if let Some(crate::history::shared::ShareError::Store(_)) = unshared {
            return Err(ServiceError::Unavailable(
                "the state database cannot store the policy-set change, so it was not made; retry later (operators: see the server log)".into(),
            ));
        }
        if result.is_ok() {
            if let Some(version) = &loading {
                self.loader.added(set, version);
            }
            self.history.save(&self.sets);
        }
        Ok(result)
    }

    /// What every replica sharing the state database serves, by replica and set name
    /// (empty when the sets are not shared, or the database cannot be read: logged).
    pub async fn replica_sets(&self) -> Vec<arbiter_store::ReplicaSet> {
        let Some(s) = self.history.shared() else {
            return Vec::new();
        };
        s.replicas().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read which policy-set versions the replicas serve");
            Vec::new()
        })
    }
}
