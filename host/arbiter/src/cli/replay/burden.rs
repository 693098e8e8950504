//! The approval burden as people would feel it: every replayed action also goes
//! through the server's own decision pipeline (`arbiter_service::pipeline::Decider`,
//! in a scratch data directory), where a held request opens an approval, or joins the
//! pending one an identical request already opened. So the burden counts the
//! approvals humans would be asked for and the votes they would cast, not only the
//! require-approval decisions.

use std::collections::HashSet;
use std::sync::Arc;

use arbiter_core::{Outcome, PrincipalKind, Request};
use arbiter_service::app::App;
use arbiter_service::auth::{Caller, Role};
use arbiter_service::pipeline::{Authorize, Decider};
use serde::Serialize;

/// The enforcement point replayed actions come from.
const ENFORCER: &str = "arbiter-replay";

/// One set's pipeline and what it was asked for.
#[derive(Debug)]
pub(super) struct Pipeline {
    decider: Decider,
    app: Arc<App>,
    _scratch: tempfile::TempDir,
    opened: HashSet<String>,
    votes: u64,
    actions: u64,
    refused: u64,
}

impl Pipeline {
    /// The pipeline of the set `source` (`builtin:NAME` or a directory).
    pub(super) async fn open(source: &str) -> anyhow::Result<Self> {
        let (decider, app, scratch) = crate::cli::test::pipeline::open(source).await?;
        Ok(Self {
            decider,
            app,
            _scratch: scratch,
            opened: HashSet::new(),
            votes: 0,
            actions: 0,
            refused: 0,
        })
    }

    /// Puts one action through the pipeline.
    pub(super) async fn add(&mut self, request: &Request) {
        self.actions += 1;
        let enforcer = Caller {
            id: ENFORCER.into(),
            kind: PrincipalKind::Service,
            roles: vec![Role::Enforcer],
            authenticated: true,
            sets: arbiter_service::auth::SetAccess::Any,
        };
        let ask = Authorize {
            request: request.clone(),
            policy_set: None,
            approval_id: None,
            explain: false,
            credential: None,
            probe: false,
        };
        let answer = match self.decider.decide(&enforcer, ask).await {
            Ok(answer) => answer,
            Err(_) => {
                self.refused += 1;
                return;
            }
        };
        let (Outcome::RequireApproval, Some(id)) = (answer.decision.outcome, answer.approval_id)
        else {
            return;
        };
        if self.opened.contains(&id) {
            return;
        }
        if let Ok(approval) = self.app.approvals().get(&id).await {
            self.votes += u64::from(approval.new.approvers_required);
        }
        self.opened.insert(id);
    }

    /// What the humans would have been asked for.
    pub(super) fn burden(&self) -> Burden {
        let per_1000 = |n: u64| (self.actions > 0).then(|| n as f64 * 1000.0 / self.actions as f64);
        Burden {
            approvals_opened: self.opened.len() as u64,
            votes_needed: self.votes,
            approvals_per_1000: per_1000(self.opened.len() as u64),
            votes_per_1000: per_1000(self.votes),
            refused: self.refused,
        }
    }
}

/// What replaying through the pipeline would have asked of people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Burden {
    /// Distinct approvals opened: identical held requests join one pending approval.
    pub approvals_opened: u64,
    /// Votes those approvals need (each approval's `approvers_required`, summed).
    pub votes_needed: u64,
    /// Approvals opened per 1,000 replayed actions (null when there are none).
    pub approvals_per_1000: Option<f64>,
    /// Votes needed per 1,000 replayed actions (null when there are none).
    pub votes_per_1000: Option<f64>,
    /// Actions the pipeline refused outright (invalid requests).
    pub refused: u64,
}
