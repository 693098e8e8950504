//! An approver's vote, end to end: separation of duties by identity, the vote, and
//! its audit record (a vote that cannot be recorded does not count). Every door that
//! lets humans decide (gRPC, the console) goes through [`App::vote`].

use arbiter_core::PrincipalKind;
use arbiter_store::{Approval, ApprovalState};

use crate::ServiceError;
use crate::app::App;
use crate::approvals::identity_key;
use crate::auth::{Caller, Role};
use crate::events::{ApprovalStep, AuditEvent};

impl App {
    /// Counts `caller`'s vote on approval `id` and records it; a refused vote is
    /// recorded too.
    pub async fn vote(
        &self,
        caller: &Caller,
        id: &str,
        approve: bool,
        comment: String,
    ) -> Result<Approval, ServiceError> {
        let counted = match self.both_sides(caller, id).await {
            Err(e) => Err(e),
            Ok(()) => {
                self.approvals
                    .vote(caller, id, approve, comment.clone())
                    .await
            }
        };
        let event = match &counted {
            Ok(a) => AuditEvent::Approval {
                actor: &caller.id,
                approval: a,
                step: ApprovalStep::Vote,
                vote: Some((approve, &comment)),
            },
            Err(e) => AuditEvent::VoteRefused {
                actor: &caller.id,
                approval_id: id,
                approve,
                comment: &comment,
                refused: Some(e.to_string()),
            },
        };
        if let Err(e) = self.record(event).await {
            // A vote that cannot be audited does not count.
            if counted.is_ok() {
                self.approvals.retract(id, &caller.id).await?;
            }
            return Err(e);
        }
        counted
    }

    /// Separation of duties compares identities, not credentials: an approver whose
    /// identity also holds the enforcer role (through any token or certificate
    /// mapping), or who held this very request, may not approve.
    async fn both_sides(&self, caller: &Caller, id: &str) -> Result<(), ServiceError> {
        if let Some(refused) = self.enforcer_too(caller) {
            return Err(refused);
        }
        let a = self.approvals.get(id).await?;
        held_it(caller, &a).map_or(Ok(()), Err)
    }

    fn enforcer_too(&self, caller: &Caller) -> Option<ServiceError> {
        self.auth
            .identity_holds(&caller.id, Role::Enforcer)
            .then(|| ServiceError::PermissionDenied(format!(
                "`{}` also holds the enforcer role (another token or certificate of the same identity); one identity cannot hold requests and approve them",
                caller.id
            )))
    }

    /// Why `caller` may not vote on `a` as it stands, by the rules [`App::vote`]
    /// applies (role, human, separation of duties, one vote each, still open); `None`
    /// when a vote would be counted. For doors that show the reason before a vote is
    /// tried (the console's disabled buttons).
    pub fn vote_refusal(&self, caller: &Caller, a: &Approval) -> Option<ServiceError> {
        if !caller.has_any(&[Role::Approver]) {
            return Some(ServiceError::MissingRole {
                caller: caller.authenticated.then(|| caller.id.clone()),
                needed: vec![Role::Approver],
            });
        }
        let me = identity_key(&caller.id);
        not_a_human(caller)
            .or_else(|| self.enforcer_too(caller))
            .or_else(|| held_it(caller, a))
            .or_else(|| in_the_request(caller, a))
            .or_else(|| {
                (a.state != ApprovalState::Pending).then(|| ServiceError::ApprovalClosed {
                    id: a.new.id.clone(),
                    state: a.state,
                })
            })
            .or_else(|| {
                a.votes
                    .iter()
                    .any(|v| identity_key(&v.approver) == me)
                    .then(|| ServiceError::AlreadyVoted {
                        id: a.new.id.clone(),
                        approver: caller.id.clone(),
                    })
            })
    }
}

/// Only authenticated humans approve.
pub(crate) fn not_a_human(caller: &Caller) -> Option<ServiceError> {
    (caller.kind != PrincipalKind::Human || !caller.authenticated).then(|| {
        ServiceError::PermissionDenied(format!(
            "`{}` is not an authenticated human; only humans approve",
            caller.id
        ))
    })
}

/// The enforcement point that held a request may not approve it.
fn held_it(caller: &Caller, a: &Approval) -> Option<ServiceError> {
    let held_by = a
        .new
        .held_by
        .strip_prefix("group:")
        .unwrap_or(&a.new.held_by);
    (!a.new.held_by.is_empty() && identity_key(held_by) == identity_key(&caller.id)).then(|| {
        ServiceError::PermissionDenied(format!(
            "`{}` held this request as an enforcement point and cannot approve it",
            caller.id
        ))
    })
}

/// Whoever asked, and whoever they act for, may not approve.
pub(crate) fn in_the_request(caller: &Caller, a: &Approval) -> Option<ServiceError> {
    let me = identity_key(&caller.id);
    if identity_key(&a.new.principal) == me {
        return Some(ServiceError::PermissionDenied(format!(
            "`{}` requested this action and cannot approve it",
            caller.id
        )));
    }
    a.new
        .delegation
        .iter()
        .any(|d| identity_key(d) == me)
        .then(|| {
            ServiceError::PermissionDenied(format!(
                "`{}` is in the delegation chain of this request and cannot approve it",
                caller.id
            ))
        })
}
