//! The floor: the Authorizer service answering a constant decision without looking at
//! the request beyond decoding it.

use std::net::SocketAddr;

use arbiter::proto as pb;
use tonic::{Request, Response, Status};

#[derive(Debug, Default)]
struct Noop;

#[tonic::async_trait]
impl pb::authorizer_server::Authorizer for Noop {
    async fn authorize(
        &self,
        _: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::AuthorizeResponse>, Status> {
        Ok(Response::new(pb::AuthorizeResponse {
            decision: pb::Decision::Allow as i32,
            decision_id: "00000000-0000-7000-8000-000000000000".into(),
            policy_set: "noop".into(),
            ..Default::default()
        }))
    }

    async fn authorize_batch(
        &self,
        _: Request<pb::AuthorizeBatchRequest>,
    ) -> Result<Response<pb::AuthorizeBatchResponse>, Status> {
        Ok(Response::new(pb::AuthorizeBatchResponse::default()))
    }
}

pub(crate) async fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .add_service(pb::authorizer_server::AuthorizerServer::new(Noop))
        .serve(addr)
        .await?;
    Ok(())
}
