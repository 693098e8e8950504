//! `arbiter mcp-gateway`: the MCP gateway (host/mcp) as a command. Stdio when a server
//! command follows `--`; Streamable HTTP with `--listen ADDR --upstream URL`. It asks a
//! running Arbiter for every decision with its own enforcer identity. Its environment
//! variables are `ARBITER_MCP_*`, apart from `arbiter serve`'s and the other client
//! commands', so one shell can run a server and a gateway.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arbiter_mcp::{Catalog, Gateway, Pdp, Settings};
use serde_json::json;

use super::client::ClientArgs;

/// `arbiter mcp-gateway [options] -- COMMAND ARGS...` or `--listen ADDR --upstream URL`.
#[derive(Debug, clap::Args)]
pub struct McpArgs {
    /// Arbiter's gRPC URL.
    #[arg(long, env = "ARBITER_MCP_SERVER", default_value = super::client::DEFAULT_SERVER)]
    pub server: String,
    /// The gateway's bearer token (an `enforcer` token). Prefer `--token-file`.
    #[arg(long, env = "ARBITER_MCP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the gateway's bearer token (its first line).
    #[arg(
        long,
        env = "ARBITER_MCP_TOKEN_FILE",
        value_name = "FILE",
        conflicts_with = "token"
    )]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate that signed Arbiter's certificate (`https://` URLs).
    #[arg(long, env = "ARBITER_MCP_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate of the gateway, for mutual TLS.
    #[arg(
        long,
        env = "ARBITER_MCP_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(
        long,
        env = "ARBITER_MCP_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// The tool catalog: a TOML file or `builtin:filesystem`.
    #[arg(long, env = "ARBITER_MCP_CATALOG", value_name = "FILE")]
    pub catalog: String,
    /// The policy set to ask (default: the server's default set).
    #[arg(long, env = "ARBITER_MCP_POLICY_SET", default_value = "")]
    pub policy_set: String,
    /// Who the agent is (stdio, or HTTP without `--jwks`).
    #[arg(long, env = "ARBITER_MCP_PRINCIPAL")]
    pub principal: Option<String>,
    /// The human the agent acts for (stdio, or HTTP without `--jwks`).
    #[arg(long, env = "ARBITER_MCP_ON_BEHALF_OF")]
    pub on_behalf_of: Option<String>,
    /// Serve Streamable HTTP on ADDR (e.g. 127.0.0.1:8282) instead of stdio.
    #[arg(long, env = "ARBITER_MCP_LISTEN", requires = "upstream")]
    pub listen: Option<String>,
    /// The MCP server's Streamable HTTP endpoint (e.g. http://127.0.0.1:3001/mcp).
    #[arg(long, env = "ARBITER_MCP_UPSTREAM", requires = "listen")]
    pub upstream: Option<String>,
    /// How long a held call waits for a human, in seconds (at most a day).
    #[arg(long, env = "ARBITER_MCP_APPROVAL_TIMEOUT", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub approval_timeout: u64,
    /// Answer a held call at once with the approval id and a retry hint.
    #[arg(long, env = "ARBITER_MCP_NO_WAIT")]
    pub no_wait: bool,
    /// JWKS file that verifies agents' HTTP bearer tokens (HTTP mode).
    #[arg(long, env = "ARBITER_MCP_JWKS", value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// The `iss` agents' tokens must carry (with `--jwks`).
    #[arg(long, env = "ARBITER_MCP_TOKEN_ISSUER", requires = "jwks")]
    pub token_issuer: Option<String>,
    /// The `aud` agents' tokens must carry (with `--jwks`; default: the catalog's server).
    #[arg(long, env = "ARBITER_MCP_TOKEN_AUDIENCE", requires = "jwks")]
    pub token_audience: Option<String>,
    /// Leave tools the agent could never be allowed to call out of `tools/list`.
    #[arg(long, env = "ARBITER_MCP_HIDE_DENIED_TOOLS")]
    pub hide_denied_tools: bool,
    /// The agent's workspace, sent as request context `workspace`.
    #[arg(long, env = "ARBITER_MCP_WORKSPACE", value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// A scratch folder inside the workspace, sent as context `scratch`.
    #[arg(
        long,
        env = "ARBITER_MCP_SCRATCH",
        value_name = "DIR",
        requires = "workspace"
    )]
    pub scratch: Option<PathBuf>,
    /// HTTP sessions idle this long (seconds) end, and their task with them.
    #[arg(long, env = "ARBITER_MCP_SESSION_IDLE_TIMEOUT", default_value_t = 1800,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub session_idle_timeout: u64,
    /// The MCP server to launch (stdio mode).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// An absolute, normalised directory path.
fn directory(flag: &str, p: &PathBuf) -> anyhow::Result<String> {
    let abs = std::path::absolute(p).with_context(|| format!("{flag} `{}`", p.display()))?;
    let s = abs
        .to_str()
        .with_context(|| format!("{flag} `{}` is not UTF-8", p.display()))?;
    Ok(arbiter_mcp::request::normalise_path("/", s))
}

pub async fn run(args: McpArgs) -> anyhow::Result<i32> {
    super::serve::init_logging(crate::config::LogFormat::Text, "info");
    let catalog = Catalog::load(&args.catalog)?;
    let workspace = args
        .workspace
        .as_ref()
        .map(|w| directory("--workspace", w))
        .transpose()?;
    let scratch = args
        .scratch
        .as_ref()
        .map(|s| directory("--scratch", s))
        .transpose()?;
    if let (Some(w), Some(s)) = (&workspace, &scratch)
        && !(s == w || s.starts_with(&format!("{}/", w.trim_end_matches('/'))))
    {
        anyhow::bail!("--scratch `{s}` is not inside --workspace `{w}`");
    }
    let client = ClientArgs {
        server: args.server.clone(),
        token: args.token.clone(),
        token_file: args.token_file.clone(),
        tls_ca: args.tls_ca.clone(),
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
    };
    let (channel, token) = client.channel().await?;
    let pdp = Pdp::new(channel, token.as_deref())?;
    let settings = Settings {
        policy_set: args.policy_set.clone(),
        workspace,
        scratch,
        approval_timeout: Duration::from_secs(args.approval_timeout),
        no_wait: args.no_wait,
        hide_denied_tools: args.hide_denied_tools,
    };
    let gateway = Arc::new(Gateway::new(pdp, catalog, settings));
    let configured = args.principal.as_ref().map(|agent| {
        let sub = args.on_behalf_of.clone().unwrap_or_else(|| agent.clone());
        json!({ "sub": sub, "client_id": agent, "aud": gateway.server() })
    });
    match (&args.listen, &args.upstream) {
        (Some(listen), Some(upstream)) => {
            if !args.command.is_empty() {
                anyhow::bail!(
                    "give either `--listen`/`--upstream` (HTTP) or a server command after `--` (stdio), not both"
                );
            }
            let identity = match (&args.jwks, configured) {
                (Some(jwks), None) => {
                    arbiter_mcp::http::Identity::Verified(arbiter_mcp::jwt::Verifier::load(
                        jwks,
                        args.token_issuer.as_deref(),
                        args.token_audience.as_deref().unwrap_or(gateway.server()),
                    )?)
                }
                (None, Some(claims)) => arbiter_mcp::http::Identity::Configured(claims),
                (Some(_), Some(_)) => anyhow::bail!(
                    "--principal and --jwks both say who the agent is: with --jwks, tokens do"
                ),
                (None, None) => anyhow::bail!(
                    "HTTP mode needs --jwks FILE (agents' tokens say who they are) or --principal"
                ),
            };
            let http = arbiter_mcp::http::Options {
                listen: listen.clone(),
                upstream: upstream.clone(),
                identity,
                idle: Duration::from_secs(args.session_idle_timeout),
            };
            arbiter_mcp::http::serve(gateway, http).await?;
            Ok(0)
        }
        _ => {
            if args.command.is_empty() {
                anyhow::bail!(
                    "give the MCP server to launch after `--` (stdio), or `--listen ADDR --upstream URL` (HTTP)"
                );
            }
            let claims = configured.context("stdio mode needs --principal (who the agent is) and, when it acts for a person, --on-behalf-of")?;
            arbiter_mcp::stdio::run(gateway, claims, &args.command).await
        }
    }
}
