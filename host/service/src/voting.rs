//! An approver's vote, end to end: separation of duties by identity, the vote, and
//! its audit record (a vote that cannot be recorded does not count). Every door that
//! lets humans decide (gRPC, the console) goes through [`App::vote`].

use arbiter_store::Approval;

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
        if self.auth.identity_holds(&caller.id, Role::Enforcer) {
            return Err(ServiceError::PermissionDenied(format!(
                "`{}` also holds the enforcer role (another token or certificate of the same identity); one identity cannot hold requests and approve them",
                caller.id
            )));
        }
        let a = self.approvals.get(id).await?;
        let me = identity_key(&caller.id);
        let held_by = a
            .new
            .held_by
            .strip_prefix("group:")
            .unwrap_or(&a.new.held_by);
        if !a.new.held_by.is_empty() && identity_key(held_by) == me {
            return Err(ServiceError::PermissionDenied(format!(
                "`{}` held this request as an enforcement point and cannot approve it",
                caller.id
            )));
        }
        Ok(())
    }
}
