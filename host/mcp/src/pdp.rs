//! Arbiter, as the gateway sees it: a gRPC server asked with the gateway's own
//! enforcer identity (its bearer token and, when configured, its TLS client
//! certificate on the channel).

use std::time::Duration;

use arbiter_proto as pb;
use pb::approvals_client::ApprovalsClient;
use pb::authorizer_client::AuthorizerClient;
use pb::credentials_client::CredentialsClient;
use tonic::Code;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

/// How long one decision may take before Arbiter counts as unreachable.
const DECISION_TIMEOUT: Duration = Duration::from_secs(10);

/// Why Arbiter gave no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PdpError {
    /// Unreachable, failing or refusing the gateway itself (JSON-RPC `-32603`).
    #[error("Authorization service unavailable: {0}")]
    Unavailable(String),
    /// The request built from the agent's message was refused as invalid
    /// (JSON-RPC `-32602`).
    #[error("invalid params: {0}")]
    Invalid(String),
    /// The approval is gone (unknown to the server).
    #[error("approval `{0}` is unknown to the server")]
    UnknownApproval(String),
    /// The approval cannot be redeemed (rejected, expired, already used...).
    #[error("the approval cannot be used: {0}")]
    Precondition(String),
}

fn classify(s: &tonic::Status) -> PdpError {
    match s.code() {
        Code::InvalidArgument => PdpError::Invalid(s.message().to_string()),
        Code::FailedPrecondition => PdpError::Precondition(s.message().to_string()),
        code => PdpError::Unavailable(format!("{code:?}: {}", s.message())),
    }
}

/// A client of Arbiter's Authorizer, Approvals and Credentials services.
#[derive(Debug, Clone)]
pub struct Pdp {
    channel: Channel,
    bearer: Option<MetadataValue<Ascii>>,
}

impl Pdp {
    /// A client over `channel`, calling with `token` (the gateway's enforcer token).
    pub fn new(channel: Channel, token: Option<&str>) -> anyhow::Result<Self> {
        let bearer = match token.map(str::trim) {
            None | Some("") => None,
            Some(t) => Some(format!("Bearer {t}").parse().map_err(|_| {
                anyhow::anyhow!("the token has characters that cannot travel in gRPC metadata")
            })?),
        };
        Ok(Self { channel, bearer })
    }

    fn call<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        r.set_timeout(DECISION_TIMEOUT);
        if let Some(b) = &self.bearer {
            r.metadata_mut().insert("authorization", b.clone());
        }
        r
    }

    /// One decision.
    pub async fn authorize(
        &self,
        r: pb::AuthorizeRequest,
    ) -> Result<pb::AuthorizeResponse, PdpError> {
        let mut client = AuthorizerClient::new(self.channel.clone());
        match client.authorize(self.call(r)).await {
            Ok(resp) => Ok(resp.into_inner()),
            Err(s) if s.code() == Code::NotFound => {
                Err(PdpError::Unavailable(s.message().to_string()))
            }
            Err(s) => Err(classify(&s)),
        }
    }

    /// The state of approval `id`, waiting up to `wait` for it to change.
    pub async fn await_approval(
        &self,
        id: &str,
        wait: Duration,
    ) -> Result<pb::ApprovalStatus, PdpError> {
        let mut client = ApprovalsClient::new(self.channel.clone());
        let wait_seconds = u32::try_from(wait.as_secs()).unwrap_or(u32::MAX);
        let mut r = self.call(pb::AwaitApprovalRequest {
            id: id.to_string(),
            wait_seconds,
        });
        r.set_timeout(wait + DECISION_TIMEOUT);
        match client.await_approval(r).await {
            Ok(resp) => Ok(resp.into_inner()),
            Err(s) if s.code() == Code::NotFound => Err(PdpError::UnknownApproval(id.to_string())),
            Err(s) => Err(classify(&s)),
        }
    }

    /// Ends task `task_id`: every credential issued for it is revoked.
    pub async fn complete_task(&self, task_id: &str) -> Result<Vec<String>, PdpError> {
        let mut client = CredentialsClient::new(self.channel.clone());
        let r = self.call(pb::CompleteTaskRequest {
            task_id: task_id.to_string(),
        });
        client
            .complete_task(r)
            .await
            .map(|resp| resp.into_inner().revoked)
            .map_err(|s| classify(&s))
    }
}
