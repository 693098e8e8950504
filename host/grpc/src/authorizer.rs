//! The `arbiter.v1.Authorizer` service: a thin adapter onto the service's
//! [`Decider`].

use futures::StreamExt as _;
use tonic::{Request, Response, Status};

use arbiter_service::auth::{Caller, Role};
use arbiter_service::pipeline::{BATCH_CONCURRENCY, Decider};

use super::{ApiError, CallerOf as _, IntoStatus as _, OrStatus as _, decode, encode};
use crate::proto as pb;

/// Who may ask for decisions.
const ENFORCERS: &[Role] = &[Role::Enforcer];

/// Answers decisions from the loaded policy sets.
#[derive(Debug, Clone)]
pub struct Authorizer {
    decider: Decider,
}

impl Authorizer {
    /// The service over a pipeline.
    pub fn new(decider: Decider) -> Self {
        Self { decider }
    }

    /// Decodes, decides, encodes: the whole path of one request.
    async fn decide(
        &self,
        caller: &Caller,
        r: pb::AuthorizeRequest,
    ) -> Result<pb::AuthorizeResponse, ApiError> {
        let a = decode::authorize(r)?;
        let explain = a.explain;
        let answer = self.decider.decide(caller, a).await?;
        Ok(encode::answer(answer, explain))
    }
}

#[tonic::async_trait]
impl pb::authorizer_server::Authorizer for Authorizer {
    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::AuthorizeResponse>, Status> {
        let caller = self.decider.app().auth().caller_of(&request, ENFORCERS)?;
        let request = request.into_inner();
        decode::check_size("request", &request).or_status()?;
        Ok(Response::new(
            self.decide(&caller, request).await.or_status()?,
        ))
    }

    async fn authorize_batch(
        &self,
        request: Request<pb::AuthorizeBatchRequest>,
    ) -> Result<Response<pb::AuthorizeBatchResponse>, Status> {
        let caller = self.decider.app().auth().caller_of(&request, ENFORCERS)?;
        let batch = request.into_inner();
        decode::check_size("requests", &batch).or_status()?;
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
            .into_status());
        }
        // Items are decided a few at a time, answers kept in order: their audit
        // records then share commits instead of each waiting for its own.
        let caller = &caller;
        let items =
            futures::stream::iter(requests.into_iter().enumerate().map(|(i, r)| async move {
                let result = match self.decide(caller, r).await {
                    Ok(response) => pb::batch_item::Result::Response(response),
                    Err(e) => pb::batch_item::Result::Error(pb::ItemError {
                        code: super::code(&e) as i32,
                        field: match e.field_name() {
                            "" => String::new(),
                            f => format!("requests[{i}].{f}"),
                        },
                        message: e.to_string(),
                    }),
                };
                pb::BatchItem {
                    result: Some(result),
                }
            }))
            .buffered(BATCH_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        Ok(Response::new(pb::AuthorizeBatchResponse { items }))
    }
}
