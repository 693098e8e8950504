//! The `arbiter.v1.Audit` service.

use crate::OrStatus as _;
use std::sync::Arc;

use arbiter_audit::{Filter, Kind, StoredRecord};
use tonic::{Request, Response, Status};

use super::ApiError;
use crate::CallerOf as _;
use crate::proto as pb;
use arbiter_service::app::App;
use arbiter_service::approvals::blocking;
use arbiter_service::auth::Role;

/// Most records one query returns.
pub const MAX_QUERY: usize = 10_000;

/// Queries and verifies the audit log.
#[derive(Debug, Clone)]
pub struct AuditService {
    app: Arc<App>,
}

impl AuditService {
    /// The service over the server's state.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    fn log(&self) -> Result<&arbiter_audit::AuditLog, ApiError> {
        self.app.audit().ok_or_else(|| {
            ApiError::FailedPrecondition("the audit log is turned off on this server".into())
        })
    }
}

/// The wire form of a stored record.
pub fn record(r: StoredRecord) -> pb::AuditRecord {
    pb::AuditRecord {
        seq: r.seq,
        kind: r.record.kind.as_str().to_string(),
        at_micros: r.record.at_micros,
        principal: r.record.principal.unwrap_or_default(),
        outcome: r.record.outcome.unwrap_or_default(),
        policy_set: r.record.policy_set.unwrap_or_default(),
        decision_id: r.record.decision_id.unwrap_or_default(),
        body_json: r.record.body.to_string(),
        prev_hash: hex::encode(r.prev_hash),
        hash: hex::encode(r.hash),
    }
}

/// A query's filter from the wire.
pub fn filter(q: pb::QueryAuditRequest) -> Result<Filter, ApiError> {
    let pb::QueryAuditRequest {
        since_micros,
        until_micros,
        principal,
        outcome,
        policy_set,
        kind,
        after_seq,
        limit,
        newest_first,
        decision_id,
    } = q;
    let text = |v: String| Some(v).filter(|v| !v.is_empty());
    let kind = match kind.as_str() {
        "" => None,
        k => Some(k.parse::<Kind>().map_err(|_| {
            ApiError::field(
                "kind",
                format!("`{k}` is not decision, approval, credential, admin, shadow or probe"),
            )
        })?),
    };
    Ok(Filter {
        since_micros: (since_micros != 0).then_some(since_micros),
        until_micros: (until_micros != 0).then_some(until_micros),
        principal: text(principal),
        outcome: text(outcome),
        policy_set: text(policy_set),
        decision_id: text(decision_id),
        kind,
        after_seq: (after_seq != 0).then_some(after_seq),
        limit: match limit {
            0 => arbiter_audit::DEFAULT_LIMIT,
            n => (n as usize).min(MAX_QUERY),
        },
        newest_first,
    })
}

#[tonic::async_trait]
impl pb::audit_server::Audit for AuditService {
    async fn query_audit(
        &self,
        request: Request<pb::QueryAuditRequest>,
    ) -> Result<Response<pb::QueryAuditResponse>, Status> {
        self.app.auth().caller_of(&request, &[Role::Admin])?;
        let filter = filter(request.into_inner()).or_status()?;
        let log = self.log().or_status()?.clone();
        let records = blocking(move || {
            log.query(&filter).map_err(|e| {
                tracing::error!(error = %e, "audit query failed");
                ApiError::Unavailable("the audit log cannot be read".into())
            })
        })
        .await
        .or_status()?;
        Ok(Response::new(pb::QueryAuditResponse {
            records: records.into_iter().map(record).collect(),
        }))
    }

    async fn verify_audit(
        &self,
        request: Request<pb::VerifyAuditRequest>,
    ) -> Result<Response<pb::VerifyAuditResponse>, Status> {
        self.app.auth().caller_of(&request, &[Role::Admin])?;
        let path = self.log().or_status()?.path().to_path_buf();
        let v = blocking(move || {
            arbiter_audit::verify(&path, None).map_err(|e| {
                tracing::error!(error = %e, "audit verification could not run");
                ApiError::Unavailable("the audit log cannot be read".into())
            })
        })
        .await
        .or_status()?;
        Ok(Response::new(pb::VerifyAuditResponse {
            intact: v.is_intact(),
            records: v.records,
            checkpoints: v.checkpoints,
            head_seq: v.head_seq,
            head_hash: hex::encode(v.head_hash),
            broken_seq: v.broken.as_ref().map_or(0, |b| b.seq),
            report: v.to_string(),
        }))
    }
}
