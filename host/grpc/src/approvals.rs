//! The `arbiter.v1.Approvals` service: approvers list, show, decide and watch
//! approvals; the enforcement point that held a request awaits its approval.

use crate::OrStatus as _;
use std::pin::Pin;
use std::sync::Arc;

use arbiter_store::{Approval, ApprovalFilter, ApprovalState};
use futures::{Stream, StreamExt as _};
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

use super::ApiError;
use crate::CallerOf as _;
use crate::proto as pb;
use arbiter_service::app::App;
use arbiter_service::auth::Role;
use arbiter_service::awaiting::MAX_AWAIT;

/// Lists, shows, decides and streams approvals.
#[derive(Debug, Clone)]
pub struct ApprovalsService {
    app: Arc<App>,
}

impl ApprovalsService {
    /// The service over the server's state.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

const READERS: &[Role] = &[Role::Approver, Role::Admin];
/// Who may await an approval: the enforcement point that held it (checked by the
/// service), never an approver or an admin.
const ENFORCERS: &[Role] = &[Role::Enforcer];

/// The wire form of an approval (approvers see admin messages: they are evidence).
pub fn approval(a: &Approval) -> pb::Approval {
    pb::Approval {
        id: a.new.id.clone(),
        state: state(a.state) as i32,
        request_json: a.new.request.to_string(),
        request_digest: a.new.request_digest.clone(),
        principal: a.new.principal.clone(),
        delegation: a.new.delegation.clone(),
        task_id: a.new.task_id.clone(),
        policy_set: a.new.set.name.clone(),
        policy_set_version: a.new.set.version.clone(),
        policy_set_digest: a.new.set.digest.clone(),
        decision_id: a.new.decision_id.clone(),
        reasons: a
            .new
            .reasons
            .iter()
            .map(|r| pb::ApprovalReason {
                code: r.code.clone(),
                message: r.caller_message.clone(),
                admin_message: r.admin_message.clone(),
            })
            .collect(),
        approvers_required: a.new.approvers_required,
        approvals: a.approvals(),
        votes: a
            .votes
            .iter()
            .map(|v| pb::ApprovalVote {
                approver: v.approver.clone(),
                approve: v.approve,
                comment: v.comment.clone(),
                at_micros: v.at_micros,
            })
            .collect(),
        created_micros: a.new.created_micros,
        expires_micros: a.new.expires_micros,
        updated_micros: a.updated_micros,
        consumed_by: a.consumed_by.clone().unwrap_or_default(),
    }
}

/// The wire enum of a state.
pub fn state(s: ApprovalState) -> pb::ApprovalState {
    match s {
        ApprovalState::Pending => pb::ApprovalState::Pending,
        ApprovalState::Approved => pb::ApprovalState::Approved,
        ApprovalState::Rejected => pb::ApprovalState::Rejected,
        ApprovalState::Consumed => pb::ApprovalState::Consumed,
        ApprovalState::Expired => pb::ApprovalState::Expired,
    }
}

fn state_of(field: &str, v: i32) -> Result<ApprovalState, ApiError> {
    Ok(match pb::ApprovalState::try_from(v) {
        Ok(pb::ApprovalState::Pending) => ApprovalState::Pending,
        Ok(pb::ApprovalState::Approved) => ApprovalState::Approved,
        Ok(pb::ApprovalState::Rejected) => ApprovalState::Rejected,
        Ok(pb::ApprovalState::Consumed) => ApprovalState::Consumed,
        Ok(pb::ApprovalState::Expired) => ApprovalState::Expired,
        _ => {
            return Err(ApiError::field(
                field,
                format!("{v} is not an approval state"),
            ));
        }
    })
}

/// An approval id as `Authorize` hands them out (a UUID): what else is asked for is
/// malformed, refused before any lookup.
fn approval_id(id: String) -> Result<String, ApiError> {
    let id = required_id(id)?;
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(ApiError::field(
            "id",
            "is not an approval id (the `approval_id` of an `Authorize` answer)",
        ));
    }
    Ok(id)
}

/// How long an `AwaitApproval` may wait, refused past the service's limit.
fn wait_of(seconds: u32) -> Result<std::time::Duration, ApiError> {
    let wait = std::time::Duration::from_secs(u64::from(seconds));
    if wait > MAX_AWAIT {
        return Err(ApiError::field(
            "wait_seconds",
            format!(
                "{seconds} is more than {}: wait again after an answer to wait longer",
                MAX_AWAIT.as_secs()
            ),
        ));
    }
    Ok(wait)
}

fn required_id(id: String) -> Result<String, ApiError> {
    if id.is_empty() {
        return Err(ApiError::field("id", "is required"));
    }
    if id.len() > super::decode::MAX_NAME_BYTES {
        return Err(ApiError::field("id", "is too long to be an approval id"));
    }
    Ok(id)
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::ApprovalEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::approvals_server::Approvals for ApprovalsService {
    async fn list_approvals(
        &self,
        request: Request<pb::ListApprovalsRequest>,
    ) -> Result<Response<pb::ListApprovalsResponse>, Status> {
        self.app.auth().caller_of(&request, READERS)?;
        let pb::ListApprovalsRequest {
            states,
            principal,
            task_id,
            limit,
        } = request.into_inner();
        let states = states
            .into_iter()
            .enumerate()
            .map(|(i, s)| state_of(&format!("states[{i}]"), s))
            .collect::<Result<_, _>>()
            .or_status()?;
        let filter = ApprovalFilter {
            states,
            principal: Some(principal).filter(|p| !p.is_empty()),
            task_id: Some(task_id).filter(|t| !t.is_empty()),
            now_micros: 0,
            limit: limit as usize,
        };
        let list = self.app.approvals().list(filter).await.or_status()?;
        Ok(Response::new(pb::ListApprovalsResponse {
            approvals: list.iter().map(approval).collect(),
        }))
    }

    async fn get_approval(
        &self,
        request: Request<pb::GetApprovalRequest>,
    ) -> Result<Response<pb::Approval>, Status> {
        self.app.auth().caller_of(&request, READERS)?;
        let id = required_id(request.into_inner().id).or_status()?;
        Ok(Response::new(approval(
            &self.app.approvals().get(&id).await.or_status()?,
        )))
    }

    async fn decide(
        &self,
        request: Request<pb::DecideApprovalRequest>,
    ) -> Result<Response<pb::Approval>, Status> {
        let caller = self.app.auth().caller_of(&request, &[Role::Approver])?;
        let pb::DecideApprovalRequest {
            id,
            approve,
            comment,
        } = request.into_inner();
        let id = required_id(id).or_status()?;
        let a = self.app.vote(&caller, &id, approve, comment).await;
        Ok(Response::new(approval(&a.or_status()?)))
    }

    type WatchApprovalsStream = EventStream;

    async fn watch_approvals(
        &self,
        request: Request<pb::WatchApprovalsRequest>,
    ) -> Result<Response<Self::WatchApprovalsStream>, Status> {
        self.app.auth().caller_of(&request, READERS)?;
        // What the caller proved, kept to prove it again before every event: a token
        // revoked (or a role taken away) while the stream is open ends the stream.
        let token = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes().to_vec());
        let peer = crate::peer_of(&request);
        let auth = self.app.auth().clone();
        let still_allowed = move || {
            let presented = arbiter_service::auth::Presented::from_header(token.as_deref());
            auth.authorize(presented, &peer, READERS)
                .map(drop)
                .map_err(crate::status)
        };
        let include_pending = request.into_inner().include_pending;
        // Subscribe before listing so nothing that changes in between is missed.
        let events = self.app.approvals().subscribe();
        let initial = if include_pending {
            self.app
                .approvals()
                .list(ApprovalFilter {
                    states: vec![ApprovalState::Pending],
                    limit: 10_000,
                    ..ApprovalFilter::default()
                })
                .await
                .or_status()?
        } else {
            Vec::new()
        };
        let initial = futures::stream::iter(initial.into_iter().map(|a| Ok(event(&a))));
        let stopping = self.app.stopping();
        let live = futures::stream::unfold(Some((events, stopping)), move |state| {
            let still_allowed = still_allowed.clone();
            async move {
                let (mut events, mut stopping) = state?;
                let got = tokio::select! {
                    // The server is shutting down: end the stream so the drain can finish.
                    _ = stopping.wait_for(|s| *s) => return None,
                    got = events.recv() => got,
                };
                if let Err(refused) = still_allowed() {
                    return Some((Err(refused), None));
                }
                match got {
                    Ok(change) => Some((Ok(event(&change.approval)), Some((events, stopping)))),
                    Err(RecvError::Lagged(n)) => Some((
                        Err(Status::data_loss(format!(
                            "this watcher fell {n} events behind; list approvals again and re-watch"
                        ))),
                        None,
                    )),
                    Err(RecvError::Closed) => None,
                }
            }
        });
        let stream = initial.chain(live);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn await_approval(
        &self,
        request: Request<pb::AwaitApprovalRequest>,
    ) -> Result<Response<pb::ApprovalStatus>, Status> {
        let caller = self.app.auth().caller_of(&request, ENFORCERS)?;
        let pb::AwaitApprovalRequest { id, wait_seconds } = request.into_inner();
        let id = approval_id(id).or_status()?;
        let wait = wait_of(wait_seconds).or_status()?;
        let a = self
            .app
            .await_approval(&caller, &id, wait)
            .await
            .or_status()?;
        Ok(Response::new(pb::ApprovalStatus {
            id: a.new.id.clone(),
            state: state(a.state) as i32,
            approvals: a.approvals(),
            approvers_required: a.new.approvers_required,
            expires_micros: a.new.expires_micros,
        }))
    }
}

fn event(a: &Approval) -> pb::ApprovalEvent {
    pb::ApprovalEvent {
        approval: Some(approval(a)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_id_is_required_and_shaped_like_one() {
        let field = |r: Result<_, ApiError>| r.map_err(|e| e.field_name().to_string());
        assert_eq!(
            field(approval_id("0198a1b2-0000-7000-8000-000000000000".into())),
            Ok("0198a1b2-0000-7000-8000-000000000000".to_string())
        );
        let long = "a".repeat(300);
        for bad in ["", "../etc", "a b", "id\u{0}", long.as_str()] {
            assert_eq!(field(approval_id(bad.into())), Err("id".into()), "{bad:?}");
        }
    }

    #[test]
    fn a_wait_past_the_limit_is_refused_naming_the_field() {
        assert_eq!(wait_of(0), Ok(std::time::Duration::ZERO));
        assert_eq!(wait_of(60), Ok(MAX_AWAIT));
        let e = wait_of(61).expect_err("too long");
        assert_eq!(e.field_name(), "wait_seconds");
        assert_eq!(
            e.to_string(),
            "`wait_seconds`: 61 is more than 60: wait again after an answer to wait longer"
        );
    }
}
