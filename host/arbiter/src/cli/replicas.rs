//! `arbiter replicas`: which replica answers, and the replicas sharing its state
//! database (admin token).

use super::client::{ClientArgs, status};
use crate::proto as pb;
use crate::proto::policy_admin_client::PolicyAdminClient;

/// Flags of `arbiter replicas`.
#[derive(Debug, clap::Args)]
pub struct ReplicasArgs {
    /// The server and the admin's token.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub async fn run(args: ReplicasArgs) -> anyhow::Result<i32> {
    let mut c = PolicyAdminClient::new(args.client.connect().await?);
    let list = c
        .list_replicas(pb::ListReplicasRequest {})
        .await
        .map_err(status)?
        .into_inner();
    if args.json {
        println!("{}", to_json(&list));
        return Ok(0);
    }
    println!("answered by replica {}", list.replica_id);
    if list.replicas.is_empty() {
        println!("no replica leases: the state is this server's own (SQLite)");
        return Ok(0);
    }
    println!("{} live:", list.replicas.len());
    let now = arbiter_store::now_micros();
    for r in &list.replicas {
        println!(
            "  {:<24} {:<10} started {}  renewed {}s ago  expires in {}s",
            r.id,
            r.version,
            arbiter_core::clock::rfc3339(r.started_micros),
            (now - r.renewed_micros).max(0) / 1_000_000,
            ((r.expires_micros - now).max(0) + 999_999) / 1_000_000,
        );
    }
    Ok(0)
}

fn to_json(list: &pb::ListReplicasResponse) -> serde_json::Value {
    serde_json::json!({
        "replica_id": list.replica_id,
        "replicas": list.replicas.iter().map(|r| serde_json::json!({
            "id": r.id, "version": r.version, "started_micros": r.started_micros,
            "renewed_micros": r.renewed_micros, "expires_micros": r.expires_micros,
        })).collect::<Vec<_>>(),
    })
}
