//! `arbiter sets`: policy-set lifecycle on a running server (admin token).

use std::path::PathBuf;

use anyhow::Context as _;

use super::client::{ClientArgs, status};
use crate::proto as pb;
use crate::proto::policy_admin_client::PolicyAdminClient;

/// Flags of `arbiter sets`.
#[derive(Debug, clap::Args)]
pub struct SetsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SetsCommand,
    /// The server and the admin's token.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// How a loaded version starts.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Activate {
    /// Loaded only (activate or shadow it later).
    None,
    /// Enforced at once.
    Enforce,
    /// Shadowing the enforced version.
    Shadow,
    /// As the manifest's `mode` says.
    Manifest,
}

/// `arbiter sets` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SetsCommand {
    /// Every set with its versions.
    List,
    /// One set: versions, plugins (quarantine, failures), shadow divergence.
    Status {
        /// The set name.
        name: String,
    },
    /// Uploads a bundle (or, with --server-path, names a bundle or directory on the
    /// server) and loads it: verified, compiled and configured off the request path.
    Load {
        /// The bundle file (`arbiter bundle pack`).
        bundle: PathBuf,
        /// The path is on the server, not here.
        #[arg(long)]
        server_path: bool,
        /// What the new version does once loaded.
        #[arg(long, value_enum, default_value = "none")]
        activate: Activate,
    },
    /// Enforces a loaded version (promotes a shadow), atomically.
    Activate {
        /// The set name.
        name: String,
        /// The version (or a digest prefix of at least 8 hex digits).
        version: String,
    },
    /// Shadows a loaded version beside the enforced one; `--demote` turns the enforced
    /// version into the shadow and enforces the previous one again.
    Shadow {
        /// The set name.
        name: String,
        /// The version (or digest prefix) to shadow.
        #[arg(required_unless_present = "demote")]
        version: Option<String>,
        /// Demote the enforced version to shadow.
        #[arg(long)]
        demote: bool,
    },
    /// Stops shadowing.
    ClearShadow {
        /// The set name.
        name: String,
    },
    /// Enforces an earlier version again (default: the one enforced before).
    Rollback {
        /// The set name.
        name: String,
        /// The version (or digest prefix).
        version: Option<String>,
    },
    /// Lets a quarantined plugin run again.
    Release {
        /// The set name.
        name: String,
        /// The plugin.
        plugin: String,
    },
}

fn state(s: i32) -> &'static str {
    match pb::SetState::try_from(s) {
        Ok(pb::SetState::Enforced) => "enforced",
        Ok(pb::SetState::Shadow) => "shadow",
        Ok(pb::SetState::Loaded) => "loaded",
        _ => "?",
    }
}

fn to_json(s: &pb::SetStatus) -> serde_json::Value {
    serde_json::json!({
        "name": s.name,
        "default": s.default,
        "versions": s.versions.iter().map(|v| serde_json::json!({
            "version": v.version, "digest": v.digest, "state": state(v.state),
            "origin": v.origin, "signer": v.signer, "loaded_micros": v.loaded_micros,
            "activated_micros": v.activated_micros,
            "plugins": v.plugins.iter().map(|p| serde_json::json!({
                "name": p.name, "sha256": p.sha256, "evaluations": p.evaluations,
                "failures": p.failures, "consecutive_failures": p.consecutive_failures,
                "quarantined": p.quarantined, "quarantine_cause": p.quarantine_cause,
                "quarantine_retry_in_ms": p.quarantine_retry_in_ms,
                "quarantines": p.quarantines, "overload_timeouts": p.overload_timeouts,
                "preinitialised": p.preinitialised,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "shadow_compared": s.shadow_compared,
        "shadow_shed": s.shadow_shed,
        "divergences": s.divergences.iter().map(|d| serde_json::json!({"from": d.from, "to": d.to, "count": d.count})).collect::<Vec<_>>(),
        "replicas": s.replicas.iter().map(|r| serde_json::json!({
            "replica_id": r.replica_id, "enforced_version": r.enforced_version,
            "enforced_digest": r.enforced_digest, "shadow_digest": r.shadow_digest,
            "error": r.error, "updated_micros": r.updated_micros,
        })).collect::<Vec<_>>(),
    })
}

fn print(s: &pb::SetStatus, json: bool) {
    if json {
        println!("{}", to_json(s));
        return;
    }
    println!("{}{}", s.name, if s.default { " (default)" } else { "" });
    for v in &s.versions {
        let quarantined: Vec<String> = v
            .plugins
            .iter()
            .filter(|p| p.quarantined)
            .map(|p| {
                format!(
                    "{} (retried in {} ms; {})",
                    p.name, p.quarantine_retry_in_ms, p.quarantine_cause
                )
            })
            .collect();
        println!(
            "  {:<9} {:<12} {}  {}{}{}",
            state(v.state),
            v.version,
            &v.digest[..v.digest.len().min(16)],
            v.origin,
            if v.signer.is_empty() {
                String::new()
            } else {
                format!("  signed by {}", v.signer)
            },
            if quarantined.is_empty() {
                String::new()
            } else {
                format!("  QUARANTINED: {}", quarantined.join(", "))
            },
        );
    }
    if s.versions
        .iter()
        .any(|v| v.state == pb::SetState::Shadow as i32)
    {
        let diverged: u64 = s.divergences.iter().map(|d| d.count).sum();
        println!(
            "  shadow: {} compared, {} diverged, {} shed",
            s.shadow_compared, diverged, s.shadow_shed
        );
        for d in &s.divergences {
            println!("    {} -> {}: {}", d.from, d.to, d.count);
        }
    }
    print_replicas(s);
}

/// What each replica sharing the state database serves; a split is called out.
fn print_replicas(s: &pb::SetStatus) {
    if s.replicas.is_empty() {
        return;
    }
    let mut enforced: Vec<&str> = s
        .replicas
        .iter()
        .map(|r| r.enforced_digest.as_str())
        .collect();
    enforced.dedup();
    let split = enforced.len() > 1 || s.replicas.iter().any(|r| !r.error.is_empty());
    println!("  replicas:{}", if split { " SPLIT" } else { "" });
    for r in &s.replicas {
        let digest = &r.enforced_digest[..r.enforced_digest.len().min(16)];
        let error = match r.error.as_str() {
            "" => String::new(),
            e => format!("  ERROR: {e}"),
        };
        println!(
            "    {:<20} {:<12} {digest}{error}",
            r.replica_id, r.enforced_version
        );
    }
}

/// Runs the command.
pub async fn run(args: SetsArgs) -> anyhow::Result<i32> {
    let mut c = PolicyAdminClient::new(args.client.connect().await?)
        .max_encoding_message_size(crate::loader::MAX_UPLOAD_BYTES + (1 << 20));
    let answer = match args.command {
        SetsCommand::List => {
            let list = c
                .list_sets(pb::ListSetsRequest {})
                .await
                .map_err(status)?
                .into_inner();
            for s in &list.sets {
                print(s, args.json);
            }
            return Ok(0);
        }
        SetsCommand::Status { name } => c.get_set_status(pb::GetSetStatusRequest { name }).await,
        SetsCommand::Load {
            bundle,
            server_path,
            activate,
        } => {
            let source = if server_path {
                pb::load_set_request::Source::Path(bundle.display().to_string())
            } else {
                pb::load_set_request::Source::Bundle(
                    std::fs::read(&bundle)
                        .with_context(|| format!("cannot read `{}`", bundle.display()))?,
                )
            };
            let activation = match activate {
                Activate::None => pb::Activation::None,
                Activate::Enforce => pb::Activation::Enforce,
                Activate::Shadow => pb::Activation::Shadow,
                Activate::Manifest => pb::Activation::Manifest,
            };
            c.load_set(pb::LoadSetRequest {
                source: Some(source),
                activation: activation as i32,
            })
            .await
        }
        SetsCommand::Activate { name, version } => {
            c.activate_set(pb::ActivateSetRequest { name, version })
                .await
        }
        SetsCommand::Shadow {
            name,
            version,
            demote,
        } => {
            c.shadow_set(pb::ShadowSetRequest {
                name,
                version: version.unwrap_or_default(),
                demote,
            })
            .await
        }
        SetsCommand::ClearShadow { name } => c.clear_shadow(pb::ClearShadowRequest { name }).await,
        SetsCommand::Rollback { name, version } => {
            c.rollback_set(pb::RollbackSetRequest {
                name,
                version: version.unwrap_or_default(),
            })
            .await
        }
        SetsCommand::Release { name, plugin } => {
            c.release_plugin(pb::ReleasePluginRequest { name, plugin })
                .await
        }
    };
    print(&answer.map_err(status)?.into_inner(), args.json);
    Ok(0)
}
