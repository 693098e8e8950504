//! The `arbiter.v1.Authorizer` service.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use super::{ApiError, decode, encode};
use crate::proto as pb;
use crate::sets::Sets;

/// Answers decisions from the loaded policy sets.
#[derive(Debug, Clone)]
pub struct Authorizer {
    sets: Arc<Sets>,
}

impl Authorizer {
    /// A service over `sets`.
    pub fn new(sets: Arc<Sets>) -> Self {
        Self { sets }
    }

    /// Decodes, routes, evaluates, encodes: the whole path of one request.
    async fn decide(&self, r: pb::AuthorizeRequest) -> Result<pb::AuthorizeResponse, ApiError> {
        let a = decode::authorize(r)?;
        let set = self
            .sets
            .get(a.policy_set.as_deref())
            .ok_or_else(|| ApiError::UnknownSet(a.policy_set.clone().unwrap_or_default()))?;
        if a.approval_id.is_some() {
            return Err(ApiError::FailedPrecondition(
                "`approval_id`: this server does not record approvals, so none can be redeemed"
                    .into(),
            ));
        }
        let span = tracing::debug_span!(
            "decide",
            set = %set.identity().name,
            principal = %a.request.principal.id,
            action = %a.request.action.name,
            outcome = tracing::field::Empty,
        );
        let d = set.decide(&a.request, false).instrument(span.clone()).await;
        span.record("outcome", d.outcome.as_str());
        Ok(encode::decision(&d, a.explain))
    }
}

#[tonic::async_trait]
impl pb::authorizer_server::Authorizer for Authorizer {
    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::AuthorizeResponse>, Status> {
        let request = request.into_inner();
        decode::check_size("request", &request)?;
        Ok(Response::new(self.decide(request).await?))
    }

    async fn authorize_batch(
        &self,
        request: Request<pb::AuthorizeBatchRequest>,
    ) -> Result<Response<pb::AuthorizeBatchResponse>, Status> {
        let batch = request.into_inner();
        decode::check_size("requests", &batch)?;
        let pb::AuthorizeBatchRequest { requests } = batch;
        if requests.len() > decode::MAX_BATCH {
            return Err(ApiError::field(
                "requests",
                format!(
                    "{} items is more than {}",
                    requests.len(),
                    decode::MAX_BATCH
                ),
            )
            .into());
        }
        let mut items = Vec::with_capacity(requests.len());
        for (i, r) in requests.into_iter().enumerate() {
            let result = match self.decide(r).await {
                Ok(response) => pb::batch_item::Result::Response(response),
                Err(e) => pb::batch_item::Result::Error(pb::ItemError {
                    code: e.code() as i32,
                    field: match e.field_name() {
                        "" => String::new(),
                        f => format!("requests[{i}].{f}"),
                    },
                    message: e.to_string(),
                }),
            };
            items.push(pb::BatchItem {
                result: Some(result),
            });
        }
        Ok(Response::new(pb::AuthorizeBatchResponse { items }))
    }
}
