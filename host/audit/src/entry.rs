//! What travels from the appenders to the writer.

use tokio::sync::oneshot;

use crate::chain::Fields;
use crate::error::AuditError;
use crate::record::{Kind, Record};

/// Where a durable append waits for its sequence number.
pub(crate) type Reply = oneshot::Sender<Result<u64, AuditError>>;

/// What travels on the queue.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A record to write.
    Append(Entry),
    /// Write everything queued so far, checkpoint, stop.
    Close,
}

/// A record ready for the chain. Its body is already JSON text, serialized by the
/// appender, so JSON encoding runs on the many request tasks and the one writer thread
/// only hashes and writes.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) kind: Kind,
    pub(crate) at_micros: i64,
    pub(crate) principal: Option<String>,
    pub(crate) outcome: Option<String>,
    pub(crate) policy_set: Option<String>,
    pub(crate) decision_id: Option<String>,
    pub(crate) body: String,
    pub(crate) reply: Option<Reply>,
}

impl Entry {
    /// Takes `record` for the queue; `reply` is where a durable append waits.
    pub(crate) fn new(record: Record, reply: Option<Reply>) -> Self {
        let body = String::from(Box::<str>::from(record.body));
        Self {
            kind: record.kind,
            at_micros: record.at_micros,
            principal: record.principal,
            outcome: record.outcome,
            policy_set: record.policy_set,
            decision_id: record.decision_id,
            body,
            reply,
        }
    }

    /// The hashed columns.
    pub(crate) fn fields(&self) -> Fields<'_> {
        Fields {
            kind: self.kind.as_str().as_bytes(),
            at_micros: self.at_micros,
            principal: self.principal.as_deref().map(str::as_bytes),
            outcome: self.outcome.as_deref().map(str::as_bytes),
            policy_set: self.policy_set.as_deref().map(str::as_bytes),
            decision_id: self.decision_id.as_deref().map(str::as_bytes),
            body: self.body.as_bytes(),
        }
    }
}
