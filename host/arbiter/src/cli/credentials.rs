//! `arbiter credentials`: introspect, revoke, complete a task, print the public keys,
//! rotate the signing key.

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::json;

use super::client::{ClientArgs, status};
use crate::proto as pb;
use crate::proto::credentials_client::CredentialsClient;

/// Flags of `arbiter credentials`.
#[derive(Debug, clap::Args)]
pub struct CredentialsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CredentialsCommand,
    /// The server and the caller's token.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `arbiter credentials` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CredentialsCommand {
    /// Whether a credential is active (prints RFC 7662-style JSON; exit 1 if inactive).
    Introspect {
        /// The credential (JWT); `-` reads it from stdin. Named `jwt`, not `token`:
        /// `--token` is the caller's own bearer token.
        #[arg(value_name = "JWT")]
        jwt: String,
    },
    /// Revokes one credential by id.
    Revoke {
        /// The credential id (`jti`).
        id: String,
    },
    /// Revokes every credential of a task: the task is over.
    CompleteTask {
        /// The task id.
        task_id: String,
    },
    /// Prints the public keys (JWKS) from the server, or from a data directory offline.
    Jwks {
        /// Read `jwks.json` from this data directory instead of asking the server.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Starts signing with a new key (admin); old keys verify until their credentials
    /// expire.
    RotateKey,
}

/// Runs the command.
pub async fn run(args: CredentialsArgs) -> anyhow::Result<i32> {
    if let CredentialsCommand::Jwks {
        data_dir: Some(dir),
    } = &args.command
    {
        let path = dir.join("jwks.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read `{}`; has a server run with this data directory?",
                path.display()
            )
        })?;
        println!("{}", text.trim());
        return Ok(0);
    }
    let mut client = CredentialsClient::new(args.client.connect().await?);
    match args.command {
        CredentialsCommand::Introspect { jwt } => {
            let token = if jwt == "-" {
                std::io::read_to_string(std::io::stdin())?
                    .trim()
                    .to_string()
            } else {
                jwt
            };
            let r = client
                .introspect(pb::IntrospectRequest { token })
                .await
                .map_err(status)?
                .into_inner();
            if !r.active {
                println!("{}", json!({ "active": false }));
                return Ok(1);
            }
            println!(
                "{}",
                json!({
                    "active": true, "jti": r.id, "sub": r.subject, "act": r.action,
                    "aud": r.resource, "task_id": r.task_id, "decision_id": r.decision_id,
                    "iat": r.issued_at, "exp": r.expires_at, "kid": r.kid,
                })
            );
        }
        CredentialsCommand::Revoke { id } => {
            let r = client
                .revoke(pb::RevokeRequest { id: id.clone() })
                .await
                .map_err(status)?
                .into_inner();
            eprintln!(
                "{}",
                if r.revoked {
                    format!("credential `{id}` revoked")
                } else {
                    format!("credential `{id}` was already revoked")
                }
            );
        }
        CredentialsCommand::CompleteTask { task_id } => {
            let r = client
                .complete_task(pb::CompleteTaskRequest {
                    task_id: task_id.clone(),
                })
                .await
                .map_err(status)?
                .into_inner();
            for id in &r.revoked {
                println!("{id}");
            }
            eprintln!(
                "task `{task_id}` complete: {} credential(s) revoked",
                r.revoked.len()
            );
        }
        CredentialsCommand::Jwks { .. } => {
            let r = client
                .get_jwks(pb::GetJwksRequest {})
                .await
                .map_err(status)?
                .into_inner();
            println!("{}", r.jwks_json);
        }
        CredentialsCommand::RotateKey => {
            let r = client
                .rotate_signing_key(pb::RotateSigningKeyRequest {})
                .await
                .map_err(status)?
                .into_inner();
            eprintln!(
                "now signing with `{}`; `{}` stays published until its credentials expire",
                r.active_kid, r.retired_kid
            );
            println!("{}", r.active_kid);
        }
    }
    Ok(0)
}
