//! What the store keeps.

use arbiter_core::{Reason, SetIdentity};
use serde::{Deserialize, Serialize};

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalState {
    /// Waiting for approvers.
    Pending,
    /// Enough approvers said yes; the request may be re-submitted once.
    Approved,
    /// An approver said no.
    Rejected,
    /// Used by a re-submitted request; cannot be used again.
    Consumed,
    /// Not decided or not used in time.
    Expired,
}

impl ApprovalState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Consumed => "consumed",
            Self::Expired => "expired",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Approved,
            Self::Rejected,
            Self::Consumed,
            Self::Expired,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// A require-approval decision, as recorded when it is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewApproval {
    /// Unique id (the handle the enforcement point re-submits).
    pub id: String,
    /// Hex SHA-256 of the canonical request.
    pub request_digest: String,
    /// The request itself, as canonical JSON: the evidence approvers see.
    pub request: serde_json::Value,
    /// The requesting principal's id.
    pub principal: String,
    /// The delegation chain's ids, origin first.
    pub delegation: Vec<String>,
    /// The task the request declared, if any.
    pub task_id: String,
    /// The set that held the request.
    pub set: SetIdentity,
    /// The decision that created the approval.
    pub decision_id: String,
    /// Why approval is needed (caller and admin messages: approvers see both).
    pub reasons: Vec<Reason>,
    /// Distinct human approvers needed.
    pub approvers_required: u32,
    /// Creation time, unix microseconds.
    pub created_micros: i64,
    /// Expiry, unix microseconds.
    pub expires_micros: i64,
    /// The enforcement identity (or group) that held the request: only it may redeem
    /// the approval. Empty for approvals from before this was recorded.
    #[serde(default)]
    pub held_by: String,
}

/// One approver's vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The authenticated approver's id.
    pub approver: String,
    /// Yes or no.
    pub approve: bool,
    /// Why, in the approver's words.
    pub comment: String,
    /// When, unix microseconds.
    pub at_micros: i64,
}

/// An approval with its votes and its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// What was recorded at creation.
    #[serde(flatten)]
    pub new: NewApproval,
    /// Current state (`expired` is derived from the clock).
    pub state: ApprovalState,
    /// Votes in the order cast.
    pub votes: Vec<Vote>,
    /// When the approval was used, unix microseconds.
    pub consumed_micros: Option<i64>,
    /// The decision that used it.
    pub consumed_by: Option<String>,
    /// Last change, unix microseconds.
    pub updated_micros: i64,
}

impl Approval {
    /// Distinct approvers who said yes.
    pub fn approvals(&self) -> u32 {
        u32::try_from(self.votes.iter().filter(|v| v.approve).count()).unwrap_or(u32::MAX)
    }
}

/// What a vote did.
#[derive(Debug, Clone, PartialEq)]
pub enum VoteOutcome {
    /// Counted; the approval is now in this state.
    Counted(Approval),
    /// This approver already voted; nothing changed.
    AlreadyVoted(Approval),
    /// The approval is no longer open for votes (approved, rejected, consumed, expired).
    Closed(Approval),
    /// No such approval.
    NotFound,
}

/// Which approvals to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalFilter {
    /// Only these states (empty: all).
    pub states: Vec<ApprovalState>,
    /// Only for this requesting principal.
    pub principal: Option<String>,
    /// Only for this task.
    pub task_id: Option<String>,
    /// The clock, to derive `expired`.
    pub now_micros: i64,
    /// At most this many (0: a default of 100).
    pub limit: usize,
}

/// An issued credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Unique id (the JWT `jti`).
    pub id: String,
    /// The task it serves.
    pub task_id: String,
    /// Who holds it.
    pub principal: String,
    /// The action it permits.
    pub action: String,
    /// The resource it permits the action on.
    pub resource: String,
    /// The decision that issued it.
    pub decision_id: String,
    /// The signing key.
    pub kid: String,
    /// Issue time, unix seconds.
    pub issued_at: i64,
    /// Expiry, unix seconds.
    pub expires_at: i64,
    /// Revocation time, unix microseconds.
    pub revoked_micros: Option<i64>,
    /// Why it was revoked (`task-complete`, `revoked`, ...).
    pub revoke_reason: Option<String>,
    /// The enforcement identity (or group) it was issued to: only it (or an admin)
    /// may revoke it or complete its task. Empty for credentials from before.
    #[serde(default)]
    pub holder: String,
}

/// A caller token, by hash: the plain token is shown once and never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// The caller's identity id (e.g. `alice@acme.org`).
    pub id: String,
    /// `human`, `service`, `agent` or `workload`.
    pub kind: String,
    /// `enforcer`, `approver`, `admin`.
    pub roles: Vec<String>,
    /// Creation time, unix microseconds.
    pub created_micros: i64,
}

/// A credential signing key's metadata (the key itself is a file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyInfo {
    /// Key id (JWT `kid`).
    pub kid: String,
    /// Creation time, unix microseconds.
    pub created_micros: i64,
    /// When it stopped signing, unix microseconds; `None` for the active key.
    pub retired_micros: Option<i64>,
}
