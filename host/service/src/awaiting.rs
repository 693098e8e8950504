//! An enforcement point waiting for an approval it holds (a long poll): the approval
//! as it stands once it is no longer pending, once it expires, once the wait ends or
//! once the server starts shutting down. Only the enforcement identity (or group)
//! that held the request may read it; to any other caller it does not exist, exactly
//! like an unknown id, so approval ids cannot be probed. Every door that lets an
//! enforcement point wait goes through [`App::await_approval`].

use std::time::Duration;

use arbiter_store::{Approval, ApprovalState};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::ServiceError;
use crate::app::App;
use crate::auth::Caller;

/// The longest one wait lasts: an enforcement point waiting for a human asks again
/// about once a minute, and a minute stays under the idle timeouts of the proxies
/// and load balancers usually in between, so a wait ends with an answer, not a reset.
pub const MAX_AWAIT: Duration = Duration::from_secs(60);

/// The shortest sleep before reading an approval again at its expiry, so that a clock
/// a hair short of the expiry (or held still by a test) never spins the loop.
const EXPIRY_RECHECK: Duration = Duration::from_millis(10);

impl App {
    /// Approval `id`, held by `caller`'s enforcement identity: at once when it is not
    /// pending (or `wait` is zero), else when it changes, expires, or `wait` (at most
    /// [`MAX_AWAIT`]) passes, whichever comes first. Held by someone else is
    /// [`ServiceError::NotFound`], as an unknown id is.
    pub async fn await_approval(
        &self,
        caller: &Caller,
        id: &str,
        wait: Duration,
    ) -> Result<Approval, ServiceError> {
        // Subscribed before the first read, so that a change between that read and
        // the wait is not lost.
        let mut changes = self.approvals.subscribe();
        let mut stopping = self.stopping();
        let holder = self.auth.holder_of(caller);
        let mut current = self.held_approval(id, &holder).await?;
        let deadline = Instant::now() + wait.min(MAX_AWAIT);
        while current.state == ApprovalState::Pending && Instant::now() < deadline {
            // An expiry is derived from the clock where an approval is read; its event
            // comes later, from the sweep. Read again when it is due.
            let to_expiry = current
                .new
                .expires_micros
                .saturating_sub(self.clock.now_micros());
            let to_expiry = Duration::from_micros(u64::try_from(to_expiry).unwrap_or(0));
            let wake = deadline.min(Instant::now() + to_expiry.max(EXPIRY_RECHECK));
            tokio::select! {
                // Shutting down: answer with the state as it is, so the drain can end.
                _ = stopping.wait_for(|s| *s) => break,
                () = tokio::time::sleep_until(wake) => {}
                changed = changes.recv() => match changed {
                    Ok(c) if c.approval.new.id != id => continue,
                    // A lagged receiver may have missed this approval's change.
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                },
            }
            current = self.held_approval(id, &holder).await?;
        }
        Ok(current)
    }

    /// Approval `id` if `holder` held it (approvals recorded before holders were kept
    /// have none, and are anyone's, as for redemption); else not found.
    async fn held_approval(&self, id: &str, holder: &str) -> Result<Approval, ServiceError> {
        let a = self.approvals.get(id).await?;
        if !a.new.held_by.is_empty() && a.new.held_by != holder {
            return Err(ServiceError::not_found("approval", id));
        }
        Ok(a)
    }
}
