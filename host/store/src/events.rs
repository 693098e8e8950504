//! Approval events shared by replicas: each replica appends the approval steps it
//! takes (created, vote, consumed, expired, retracted) to one numbered log in the
//! database, and every replica follows that log, so the watch streams, the console
//! and the waiting requests of any replica see every replica's approvals.
//!
//! PostgreSQL numbers the events with a sequence, appends them one at a time in
//! sequence order (under an advisory lock, so a follower never sees 7 before 6
//! commits), and announces each with `NOTIFY`; a follower wakes on the notification
//! and reads every event after the last one it applied, so one lost while it was
//! disconnected is read on the next wake. SQLite serves one process, which needs none
//! of this: its defaults keep nothing.

use crate::StoreError;

/// One approval step taken by one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalEvent {
    /// Its place in the log: strictly increasing, in commit order.
    pub seq: i64,
    /// The replica that took the step.
    pub replica: String,
    /// The step (`created`, `vote`, `consumed`, `expired`, `retracted`).
    pub step: String,
    /// The approval.
    pub approval_id: String,
    /// When it was appended (unix microseconds).
    pub at_micros: i64,
}

/// The approval-event part of [`crate::StateStore`]. The defaults are a store that
/// serves one process: nothing kept, nothing to follow.
pub trait ApprovalEvents {
    /// Appends `replica`'s `step` on approval `approval_id`; returns its sequence
    /// number (0 when the store keeps no events).
    fn append_approval_event(
        &self,
        _replica: &str,
        _step: &str,
        _approval_id: &str,
        _now_micros: i64,
    ) -> Result<i64, StoreError> {
        Ok(0)
    }
    /// Up to `limit` events after `seq`, oldest first.
    fn approval_events_after(
        &self,
        _seq: i64,
        _limit: usize,
    ) -> Result<Vec<ApprovalEvent>, StoreError> {
        Ok(Vec::new())
    }
    /// The newest event's sequence number (0 when none).
    fn approval_event_head(&self) -> Result<i64, StoreError> {
        Ok(0)
    }
    /// Deletes events appended before `before_micros`; returns how many.
    fn purge_approval_events(&self, _before_micros: i64) -> Result<usize, StoreError> {
        Ok(0)
    }
    /// A signal that changes whenever new events may be waiting (a notification
    /// arrived, or the listening connection was made again after a break); `None`
    /// when the store has no events to follow.
    fn approval_event_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}
