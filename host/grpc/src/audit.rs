//! The `arbiter.v1.Audit` service.

use crate::OrStatus as _;
use std::sync::Arc;

use arbiter_audit::{Filter, Kind, StoredRecord, Verification};
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
        chain_id: String::new(),
    }
}

/// The wire form of a record of chain `chain_id`.
fn chain_record(chain_id: String, r: StoredRecord) -> pb::AuditRecord {
    pb::AuditRecord {
        chain_id,
        ..record(r)
    }
}

/// The wire form of one chain's verification.
fn chain_verification(chain_id: String, v: &Verification) -> pb::ChainVerification {
    pb::ChainVerification {
        chain_id,
        intact: v.is_intact(),
        records: v.records,
        checkpoints: v.checkpoints,
        head_seq: v.head_seq,
        head_hash: hex::encode(v.head_hash),
        broken_seq: v.broken.as_ref().map_or(0, |b| b.seq),
        report: v.to_string(),
    }
}

/// A query's filter from the wire (the chain it names, if any, is for the caller).
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
        chain_id: _,
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
        let q = request.into_inner();
        let chain = Some(q.chain_id.clone()).filter(|c| !c.is_empty());
        let shared = arbiter_service::audit_log::shared_chains(&self.app);
        if shared.is_some() && chain.is_none() && q.after_seq != 0 {
            // Each chain counts its own seqs: following the merged log by one would
            // skip every record of a chain behind the others.
            return Err(ApiError::field(
                "after_seq",
                "counts in one replica's chain: name it with `chain_id` to follow that chain (the replicas' chains are merged by time)",
            ))
            .or_status();
        }
        let filter = filter(q).or_status()?;
        let log = self.log().or_status()?.clone();
        let unreadable = |e: &dyn std::fmt::Display| {
            tracing::error!(error = %e, "audit query failed");
            ApiError::Unavailable("the audit log cannot be read".into())
        };
        // With the state shared, every replica's chain, merged by time.
        if let Some(store) = shared {
            let records = blocking(move || {
                store
                    .query_audit_chains(&filter, chain.as_deref())
                    .map_err(|e| unreadable(&e))
            })
            .await
            .or_status()?;
            return Ok(Response::new(pb::QueryAuditResponse {
                records: records
                    .into_iter()
                    .map(|r| chain_record(r.chain_id, r.record))
                    .collect(),
            }));
        }
        let own = self.app.replica_id().to_string();
        if chain.is_some_and(|c| c != own) {
            return Ok(Response::new(pb::QueryAuditResponse::default()));
        }
        let records = blocking(move || log.query(&filter).map_err(|e| unreadable(&e)))
            .await
            .or_status()?;
        Ok(Response::new(pb::QueryAuditResponse {
            records: records
                .into_iter()
                .map(|r| chain_record(own.clone(), r))
                .collect(),
        }))
    }

    async fn verify_audit(
        &self,
        request: Request<pb::VerifyAuditRequest>,
    ) -> Result<Response<pb::VerifyAuditResponse>, Status> {
        self.app.auth().caller_of(&request, &[Role::Admin])?;
        let path = self.log().or_status()?.path().to_path_buf();
        let shared = arbiter_service::audit_log::shared_chains(&self.app);
        let (v, chains) = blocking(move || {
            let failed = |e: &dyn std::fmt::Display| {
                tracing::error!(error = %e, "audit verification could not run");
                ApiError::Unavailable("the audit log cannot be read".into())
            };
            let v = arbiter_audit::verify(&path, None).map_err(|e| failed(&e))?;
            let chains = match shared {
                Some(store) => {
                    arbiter_store::verify_chains(&*store, None).map_err(|e| failed(&e))?
                }
                None => Vec::new(),
            };
            Ok((v, chains))
        })
        .await
        .or_status()?;
        let mut report = v.to_string();
        for (head, c) in &chains {
            report.push_str(&format!("\nchain {}: {c}", head.chain_id));
        }
        Ok(Response::new(pb::VerifyAuditResponse {
            intact: v.is_intact() && chains.iter().all(|(_, c)| c.is_intact()),
            records: v.records,
            checkpoints: v.checkpoints,
            head_seq: v.head_seq,
            head_hash: hex::encode(v.head_hash),
            broken_seq: v.broken.as_ref().map_or(0, |b| b.seq),
            report,
            chains: chains
                .iter()
                .map(|(head, c)| chain_verification(head.chain_id.clone(), c))
                .collect(),
        }))
    }
}
