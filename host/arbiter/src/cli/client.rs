//! How CLI subcommands reach a running server: its URL and the caller's bearer token.

use anyhow::Context as _;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Default server address.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// Where the server is and who is calling.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Server URL.
    #[arg(long, env = "ARBITER_SERVER", default_value = DEFAULT_SERVER, global = true)]
    pub server: String,
    /// Bearer token (create one with `arbiter token create`).
    #[arg(long, env = "ARBITER_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            r.metadata_mut().insert("authorization", v.clone());
        }
        Ok(r)
    }
}

/// A channel that authenticates every call.
pub type Authed = InterceptedService<Channel, Bearer>;

impl ClientArgs {
    /// Connects, with a message naming the server on failure.
    pub async fn connect(&self) -> anyhow::Result<Authed> {
        let bearer = match self.token.as_deref().map(str::trim) {
            None | Some("") => Bearer(None),
            Some(t) => Bearer(Some(format!("Bearer {t}").parse().context(
                "the token has characters that cannot travel in gRPC metadata",
            )?)),
        };
        let channel = tonic::transport::Endpoint::from_shared(self.server.clone())
            .with_context(|| format!("`{}` is not a server URL (e.g. {DEFAULT_SERVER})", self.server))?
            .connect()
            .await
            .with_context(|| {
                format!(
                    "cannot reach the Arbiter server at {}; is `arbiter serve` running? Set --server or ARBITER_SERVER",
                    self.server
                )
            })?;
        Ok(InterceptedService::new(channel, bearer))
    }
}

/// A gRPC error as a CLI error: the server's message and the code.
pub fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{} ({:?})", s.message(), s.code())
}
