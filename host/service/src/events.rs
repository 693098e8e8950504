//! Everything the audit log records besides decisions, typed: approval steps,
//! credential events and administrative acts. [`AuditEvent::record`] is the one place
//! their record bodies are built, and [`crate::app::App::record`] the one place they
//! are counted in metrics and appended. Bodies are the JSON objects the log has always
//! held (same keys, same order), so old and new records read alike. Decision records
//! have their own allocation-free path in [`crate::records::decision`].

use arbiter_audit::{Kind, Record};
use arbiter_core::Request;
use arbiter_store::Approval;
use serde_json::{Value, json};

use crate::records;

mod admin;
use crate::redaction::Redaction;
pub use admin::{AdminAct, SetAct, TokenChange};

/// A step in an approval's life that changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStep {
    /// A held request opened it.
    Created,
    /// An approver's vote was counted.
    Vote,
    /// An allow used it.
    Consumed,
    /// It passed its expiry unused.
    Expired,
    /// A counted vote was taken back (its record could not be written).
    Retracted,
}

/// A change to an approval, as watchers see it: the step and the approval after it.
/// The approval desk publishes these; the watch streams of every door consume them.
#[derive(Debug, Clone)]
pub struct ApprovalChange {
    /// What happened.
    pub step: ApprovalStep,
    /// The approval as it is now.
    pub approval: Approval,
    /// The replica that took the step, when another one than this (replicas sharing
    /// a database see each other's steps); `None`: this replica.
    pub from_replica: Option<String>,
}

impl ApprovalStep {
    /// The record's outcome.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Vote => "vote",
            Self::Consumed => "consumed",
            Self::Expired => "expired",
            Self::Retracted => "retracted",
        }
    }

    /// The step [`Self::as_str`] names.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Created,
            Self::Vote,
            Self::Consumed,
            Self::Expired,
            Self::Retracted,
        ]
        .into_iter()
        .find(|step| step.as_str() == s)
    }
}

/// What happened to credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialEvent {
    /// One was signed for an allow.
    Issued {
        /// Its id (`jti`).
        id: String,
        /// The decision it was issued for.
        decision_id: String,
        /// The task it belongs to.
        task_id: String,
        /// Unix seconds.
        expires_at: i64,
    },
    /// Some were revoked: by their holder, or because they must never be handed out
    /// (`decision_id` and `reason` then say which decision and why).
    Revoked {
        /// Their ids.
        ids: Vec<String>,
        /// The decision, for a credential revoked before it was handed out.
        decision_id: Option<String>,
        /// Why, for a credential revoked before it was handed out.
        reason: Option<String>,
    },
    /// A task ended: every credential it had was revoked.
    TaskComplete {
        /// The task.
        task_id: String,
        /// The credentials revoked.
        ids: Vec<String>,
    },
}

/// One event for the audit log.
#[derive(Debug)]
pub enum AuditEvent<'a> {
    /// An approval changed.
    Approval {
        /// Who changed it (a caller id, or the server's own actor for expiry).
        actor: &'a str,
        /// The approval as it is now.
        approval: &'a Approval,
        /// What happened.
        step: ApprovalStep,
        /// The vote, for [`ApprovalStep::Vote`].
        vote: Option<(bool, &'a str)>,
    },
    /// A vote that was not counted.
    VoteRefused {
        /// Who voted.
        actor: &'a str,
        /// The approval voted on.
        approval_id: &'a str,
        /// The vote.
        approve: bool,
        /// The comment (kept short: it may be why the vote was refused).
        comment: &'a str,
        /// Why it was refused.
        refused: Option<String>,
    },
    /// An approval was presented with a request and refused.
    RedemptionRefused {
        /// Who presented it.
        actor: &'a str,
        /// The approval.
        approval_id: &'a str,
        /// The request it was presented with.
        request: &'a Request,
        /// Why it was refused.
        reason: String,
    },
    /// Credentials were issued or revoked.
    Credential {
        /// Who caused it.
        actor: &'a str,
        /// What happened.
        event: CredentialEvent,
    },
    /// An administrative act (set changes, key rotation, token changes, purges).
    Admin {
        /// Who did it.
        actor: &'a str,
        /// What it was and what it changed.
        act: AdminAct,
    },
}

impl AuditEvent<'_> {
    /// The record of this event, at `now` (microseconds since the Unix epoch), with the
    /// server's redaction applied (ids of redacted fields, keyed request digests).
    pub fn record(&self, now: i64, redaction: &Redaction) -> Record {
        match self {
            Self::Approval {
                actor,
                approval: a,
                step,
                vote,
            } => {
                let detail = match vote {
                    Some((approve, comment)) => json!({ "approve": approve, "comment": comment }),
                    None => Value::Null,
                };
                let mut r = records::event(
                    Kind::Approval,
                    actor,
                    step.as_str(),
                    Some(&a.new.decision_id),
                    json!({
                        "approval_id": a.new.id,
                        "state": a.state.as_str(),
                        "requester": redaction.shown("principal.id", &a.new.principal),
                        "delegation": a.new.delegation.iter().map(|d| redaction.shown("delegation.id", d)).collect::<Vec<_>>(),
                        "approvals": a.approvals(),
                        "approvers_required": a.new.approvers_required,
                        "request_digest": redaction.digest_of_digest(&a.new.request_digest),
                        "detail": detail,
                    }),
                    now,
                );
                r.policy_set = Some(a.new.set.name.clone());
                r
            }
            Self::VoteRefused {
                actor,
                approval_id,
                approve,
                comment,
                refused,
            } => records::event(
                Kind::Approval,
                actor,
                "vote-refused",
                None,
                json!({
                    "approval_id": approval_id,
                    "approve": approve,
                    "comment": comment.chars().take(crate::approvals::MAX_COMMENT_BYTES / 4).collect::<String>(),
                    "refused": refused,
                }),
                now,
            ),
            Self::RedemptionRefused {
                actor,
                approval_id,
                request,
                reason,
            } => records::event(
                Kind::Approval,
                actor,
                "redemption-refused",
                None,
                json!({
                    "approval_id": approval_id,
                    "reason": reason,
                    "principal": redaction.shown("principal.id", &request.principal.id),
                    "action": redaction.shown("action.name", &request.action.name),
                    "request_digest": redaction.request_digest(request),
                }),
                now,
            ),
            Self::Credential { actor, event } => {
                let (outcome, decision_id, body) = match event {
                    CredentialEvent::Issued {
                        id,
                        decision_id,
                        task_id,
                        expires_at,
                    } => (
                        "issued",
                        Some(decision_id.as_str()),
                        json!({
                            "credentials": [id],
                            "decision_id": decision_id,
                            "task_id": task_id,
                            "expires_at": expires_at,
                        }),
                    ),
                    CredentialEvent::Revoked {
                        ids,
                        decision_id,
                        reason,
                    } => {
                        let mut body = json!({ "credentials": ids });
                        if let Some(d) = decision_id {
                            body["decision_id"] = d.as_str().into();
                        }
                        if let Some(r) = reason {
                            body["reason"] = r.as_str().into();
                        }
                        ("revoked", decision_id.as_deref(), body)
                    }
                    CredentialEvent::TaskComplete { task_id, ids } => (
                        "task-complete",
                        None,
                        json!({ "task_id": task_id, "credentials": ids }),
                    ),
                };
                records::event(Kind::Credential, actor, outcome, decision_id, body, now)
            }
            Self::Admin { actor, act } => {
                let mut r = records::event(Kind::Admin, actor, &act.name(), None, act.body(), now);
                r.policy_set = act.set().map(str::to_string);
                r
            }
        }
    }
}
