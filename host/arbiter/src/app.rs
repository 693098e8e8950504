//! What every service of one server shares: the policy sets, who may call, the
//! durable state, and the records of what happened.

use std::sync::Arc;

use arbiter_store::{Approval, StateStore};
use tokio::sync::watch;

use crate::approvals::ApprovalDesk;
use crate::auth::{Authenticator, Caller};
use crate::credentials::Credentials;
use crate::grpc::ApiError;
use crate::sets::Sets;

/// The shared state of a running server.
#[derive(Debug)]
pub struct App {
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
    stopping: watch::Sender<bool>,
}

impl App {
    /// Assembles the shared state.
    pub fn new(
        sets: Arc<Sets>,
        auth: Authenticator,
        store: Arc<dyn StateStore>,
        approvals: ApprovalDesk,
        credentials: Arc<Credentials>,
    ) -> Self {
        Self {
            sets,
            auth,
            store,
            approvals,
            credentials,
            stopping: watch::channel(false).0,
        }
    }

    /// Flips to `true` when the server starts shutting down; long-lived streams end.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Tells long-lived streams to end.
    pub fn stop(&self) {
        let _ = self.stopping.send(true);
    }

    /// Records a vote (or a refused vote) on an approval.
    pub async fn record_approval_step(
        &self,
        caller: &Caller,
        id: &str,
        approve: bool,
        comment: &str,
        result: Option<&Approval>,
        refused: Option<&ApiError>,
    ) -> Result<(), ApiError> {
        tracing::info!(approver = %caller.id, approval = %id, approve, comment, state = result.map(|a| a.state.as_str()), refused = refused.map(|e| e.to_string()), "approval vote");
        Ok(())
    }

    /// Records a credential event (revocation, task completion).
    pub async fn record_credential_event(
        &self,
        caller: &Caller,
        what: &str,
        detail: serde_json::Value,
    ) -> Result<(), ApiError> {
        tracing::info!(caller = %caller.id, event = what, %detail, "credential event");
        Ok(())
    }

    /// Records an administrative act.
    pub async fn record_admin_act(
        &self,
        caller: &Caller,
        what: &str,
        detail: serde_json::Value,
    ) -> Result<(), ApiError> {
        tracing::info!(caller = %caller.id, act = what, %detail, "admin act");
        Ok(())
    }
}
