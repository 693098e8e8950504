//! How CLI subcommands reach a running server: its URL (`http://` or `https://`), the
//! CA that signed its certificate, the client certificate for mutual TLS, and the
//! caller's bearer token (from a flag, a file or the environment).

use std::path::{Path, PathBuf};

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
    /// Bearer token (create one with `arbiter token create`). Prefer
    /// `--token-file` or `ARBITER_TOKEN`: a flag is visible in `ps`.
    #[arg(long, env = "ARBITER_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// File holding the bearer token (its first line).
    #[arg(
        long,
        env = "ARBITER_TOKEN_FILE",
        value_name = "FILE",
        global = true,
        conflicts_with = "token"
    )]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate that signed the server's certificate (`https://` URLs).
    #[arg(long, env = "ARBITER_TLS_CA", value_name = "FILE", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate, for servers that require mutual TLS.
    #[arg(
        long,
        env = "ARBITER_CLIENT_TLS_CERT",
        value_name = "FILE",
        global = true,
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(
        long,
        env = "ARBITER_CLIENT_TLS_KEY",
        value_name = "FILE",
        global = true,
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
}

fn read(what: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the {what} `{}`", path.display()))
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
        let (channel, token) = self.channel().await?;
        let bearer = match token {
            None => Bearer(None),
            Some(t) => Bearer(Some(format!("Bearer {t}").parse().context(
                "the token has characters that cannot travel in gRPC metadata",
            )?)),
        };
        Ok(InterceptedService::new(channel, bearer))
    }

    /// The connected channel and the bearer token (from the flag or the file), for
    /// callers that add the token themselves.
    pub async fn channel(&self) -> anyhow::Result<(Channel, Option<String>)> {
        let from_file = match &self.token_file {
            Some(path) => Some(
                String::from_utf8(read("token file", path)?)
                    .with_context(|| format!("the token file `{}` is not UTF-8", path.display()))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            ),
            None => None,
        };
        let token = match from_file
            .as_deref()
            .or(self.token.as_deref())
            .map(str::trim)
        {
            None | Some("") => None,
            Some(t) => Some(t.to_string()),
        };
        let mut endpoint = tonic::transport::Endpoint::from_shared(self.server.clone())
            .with_context(|| {
                format!(
                    "`{}` is not a server URL (e.g. {DEFAULT_SERVER})",
                    self.server
                )
            })?;
        let https = self.server.starts_with("https://");
        if !https && (self.tls_ca.is_some() || self.tls_cert.is_some()) {
            anyhow::bail!(
                "--tls-ca and --tls-cert need an `https://` server URL (got `{}`)",
                self.server
            );
        }
        if https {
            let mut tls = tonic::transport::ClientTlsConfig::new();
            match &self.tls_ca {
                Some(ca) => {
                    tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(read(
                        "CA certificate",
                        ca,
                    )?));
                }
                None => anyhow::bail!(
                    "an `https://` server needs the CA that signed its certificate: --tls-ca FILE (or ARBITER_TLS_CA)"
                ),
            }
            if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
                tls = tls.identity(tonic::transport::Identity::from_pem(
                    read("client certificate", cert)?,
                    read("client key", key)?,
                ));
            }
            endpoint = endpoint
                .tls_config(tls)
                .context("cannot set up TLS for the server connection")?;
        }
        let channel = endpoint
            .connect()
            .await
            .with_context(|| {
                format!(
                    "cannot reach the Arbiter server at {}; is `arbiter serve` running? Set --server or ARBITER_SERVER",
                    self.server
                )
            })?;
        Ok((channel, token))
    }
}

/// A gRPC error as a CLI error: the server's message and the code.
pub fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{} ({:?})", s.message(), s.code())
}
