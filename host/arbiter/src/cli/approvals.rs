//! `arbiter approvals`: what a human approver does, through a running server.

use futures::StreamExt as _;
use serde_json::json;

use super::client::{ClientArgs, status};
use crate::proto as pb;
use crate::proto::approvals_client::ApprovalsClient;

/// Flags of `arbiter approvals`.
#[derive(Debug, clap::Args)]
pub struct ApprovalsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ApprovalsCommand,
    /// The server and the approver's token.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Print JSON lines instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `arbiter approvals` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ApprovalsCommand {
    /// Lists approvals (default: pending ones).
    List {
        /// State to list: pending, approved, rejected, consumed, expired or all.
        #[arg(long, default_value = "pending")]
        state: String,
        /// Only for this requesting principal.
        #[arg(long)]
        principal: Option<String>,
        /// Only for this task.
        #[arg(long)]
        task: Option<String>,
    },
    /// Shows one approval with its evidence.
    Show {
        /// The approval id.
        id: String,
    },
    /// Approves (your vote counts once).
    Approve {
        /// The approval id.
        id: String,
        /// Why.
        #[arg(long, short, default_value = "")]
        comment: String,
    },
    /// Rejects.
    Reject {
        /// The approval id.
        id: String,
        /// Why.
        #[arg(long, short, default_value = "")]
        comment: String,
    },
    /// Prints approvals as they are created and change, until interrupted.
    Watch {
        /// Print the pending ones first.
        #[arg(long)]
        pending: bool,
    },
}

fn state_name(s: i32) -> &'static str {
    match pb::ApprovalState::try_from(s) {
        Ok(pb::ApprovalState::Pending) => "pending",
        Ok(pb::ApprovalState::Approved) => "approved",
        Ok(pb::ApprovalState::Rejected) => "rejected",
        Ok(pb::ApprovalState::Consumed) => "consumed",
        Ok(pb::ApprovalState::Expired) => "expired",
        _ => "unknown",
    }
}

fn parse_state(s: &str) -> anyhow::Result<Vec<i32>> {
    Ok(match s {
        "all" => Vec::new(),
        "pending" => vec![pb::ApprovalState::Pending as i32],
        "approved" => vec![pb::ApprovalState::Approved as i32],
        "rejected" => vec![pb::ApprovalState::Rejected as i32],
        "consumed" => vec![pb::ApprovalState::Consumed as i32],
        "expired" => vec![pb::ApprovalState::Expired as i32],
        other => anyhow::bail!(
            "--state `{other}` is not one of pending, approved, rejected, consumed, expired, all"
        ),
    })
}

/// The JSON form printed with `--json` (and by `show`).
pub fn to_json(a: &pb::Approval) -> serde_json::Value {
    json!({
        "id": a.id,
        "state": state_name(a.state),
        "principal": a.principal,
        "delegation": a.delegation,
        "task_id": a.task_id,
        "policy_set": a.policy_set,
        "policy_set_version": a.policy_set_version,
        "decision_id": a.decision_id,
        "request_digest": a.request_digest,
        "request": serde_json::from_str::<serde_json::Value>(&a.request_json).unwrap_or_default(),
        "reasons": a.reasons.iter().map(|r| json!({"code": r.code, "message": r.message, "admin_message": r.admin_message})).collect::<Vec<_>>(),
        "approvers_required": a.approvers_required,
        "approvals": a.approvals,
        "votes": a.votes.iter().map(|v| json!({"approver": v.approver, "approve": v.approve, "comment": v.comment, "at_micros": v.at_micros})).collect::<Vec<_>>(),
        "created_micros": a.created_micros,
        "expires_micros": a.expires_micros,
        "consumed_by": a.consumed_by,
    })
}

fn line(a: &pb::Approval) -> String {
    let request: serde_json::Value = serde_json::from_str(&a.request_json).unwrap_or_default();
    format!(
        "{}  {:<8}  {}/{} approvals  {} -> {} on {}  [{}]",
        a.id,
        state_name(a.state),
        a.approvals,
        a.approvers_required,
        a.principal,
        request["action"]["name"].as_str().unwrap_or("?"),
        request["resource"]["id"].as_str().unwrap_or("?"),
        a.reasons
            .iter()
            .map(|r| r.code.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn print(a: &pb::Approval, json: bool) {
    if json {
        println!("{}", to_json(a));
    } else {
        println!("{}", line(a));
    }
}

/// Runs the command.
pub async fn run(args: ApprovalsArgs) -> anyhow::Result<i32> {
    let mut client = ApprovalsClient::new(args.client.connect().await?);
    match args.command {
        ApprovalsCommand::List {
            state,
            principal,
            task,
        } => {
            let list = client
                .list_approvals(pb::ListApprovalsRequest {
                    states: parse_state(&state)?,
                    principal: principal.unwrap_or_default(),
                    task_id: task.unwrap_or_default(),
                    limit: 0,
                })
                .await
                .map_err(status)?
                .into_inner();
            for a in &list.approvals {
                print(a, args.json);
            }
            if !args.json && list.approvals.is_empty() {
                eprintln!("no {state} approvals");
            }
        }
        ApprovalsCommand::Show { id } => {
            let a = client
                .get_approval(pb::GetApprovalRequest { id })
                .await
                .map_err(status)?
                .into_inner();
            let v = to_json(&a);
            println!(
                "{}",
                if args.json {
                    v.to_string()
                } else {
                    serde_json::to_string_pretty(&v)?
                }
            );
        }
        ApprovalsCommand::Approve { id, comment } => {
            vote(&mut client, id, true, comment, args.json).await?;
        }
        ApprovalsCommand::Reject { id, comment } => {
            vote(&mut client, id, false, comment, args.json).await?;
        }
        ApprovalsCommand::Watch { pending } => {
            let mut stream = client
                .watch_approvals(pb::WatchApprovalsRequest {
                    include_pending: pending,
                })
                .await
                .map_err(status)?
                .into_inner();
            while let Some(event) = stream.next().await {
                if let Some(a) = event.map_err(status)?.approval {
                    print(&a, args.json);
                }
            }
        }
    }
    Ok(0)
}

async fn vote(
    client: &mut ApprovalsClient<super::client::Authed>,
    id: String,
    approve: bool,
    comment: String,
    json: bool,
) -> anyhow::Result<()> {
    let a = client
        .decide(pb::DecideApprovalRequest {
            id,
            approve,
            comment,
        })
        .await
        .map_err(status)?
        .into_inner();
    print(&a, json);
    Ok(())
}
