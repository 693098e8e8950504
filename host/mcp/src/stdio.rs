//! Stdio mode: the agent launches the gateway as its MCP server; the gateway launches
//! the real server as a child and relays newline-delimited JSON-RPC both ways, gating
//! every message the agent sends. A held call does not block the others. The
//! session (the task) ends when the agent closes stdin or the server exits: the
//! gateway then completes the task in Arbiter, which revokes its credentials.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use futures::future::BoxFuture;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::gate::{Gateway, Session, Upstream, Verdict};
use crate::jsonrpc::{self, Kind};

/// The longest line either side may send: a bound on what one message can make the
/// gateway hold in memory.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// How long the gateway waits for the server to answer its own `tools/list`.
const OWN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The child server, as the gateway asks it.
struct Child {
    to_child: mpsc::UnboundedSender<Json>,
    own: Mutex<HashMap<String, oneshot::Sender<Json>>>,
    next: AtomicU64,
}

impl Upstream for Child {
    fn list_tools(&self, cursor: Option<String>) -> BoxFuture<'_, Result<Json, String>> {
        Box::pin(async move {
            let id = format!(
                "{}{}",
                crate::jsonrpc::OWN_ID_PREFIX,
                self.next.fetch_add(1, Ordering::Relaxed)
            );
            let (tx, rx) = oneshot::channel();
            self.own
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.clone(), tx);
            let params = cursor.map_or_else(|| json!({}), |c| json!({ "cursor": c }));
            self.to_child
                .send(
                    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params }),
                )
                .map_err(|_| "the server has exited".to_string())?;
            let answer = tokio::time::timeout(OWN_REQUEST_TIMEOUT, rx)
                .await
                .map_err(|_| "the server did not answer tools/list".to_string())?
                .map_err(|_| "the server has exited".to_string())?;
            answer.get("result").cloned().ok_or_else(|| {
                format!(
                    "the server answered tools/list with {}",
                    answer.get("error").unwrap_or(&Json::Null)
                )
            })
        })
    }
}

/// Reads newline-delimited JSON; an over-long line is an error, not a crash.
async fn read_line(
    r: &mut (impl tokio::io::AsyncBufRead + Unpin),
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<()>> {
    buf.clear();
    let mut limited = r.take(MAX_LINE_BYTES as u64 + 1);
    let n = limited.read_until(b'\n', buf).await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE_BYTES {
        return Err(std::io::Error::other(format!(
            "a message longer than {MAX_LINE_BYTES} bytes"
        )));
    }
    Ok(Some(()))
}

/// Runs the gateway over stdio until the agent or the server goes away; returns the
/// server's exit code when it ended the session.
pub async fn run(gw: Arc<Gateway>, claims: Json, command: &[String]) -> anyhow::Result<i32> {
    let (program, args) = command
        .split_first()
        .context("no MCP server command after `--`")?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start the MCP server `{program}`"))?;
    let mut child_in = child.stdin.take().context("the server's stdin")?;
    let child_out = child.stdout.take().context("the server's stdout")?;
    let session = Arc::new(Session::new(claims));
    tracing::info!(task_id = %session.task_id, server = %program, "MCP session started (stdio)");

    let (to_agent, mut agent_rx) = mpsc::unbounded_channel::<Json>();
    let (to_child, mut child_rx) = mpsc::unbounded_channel::<Json>();
    let upstream = Arc::new(Child {
        to_child: to_child.clone(),
        own: Mutex::default(),
        next: AtomicU64::new(1),
    });
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(m) = agent_rx.recv().await {
            let mut line = m.to_string();
            line.push('\n');
            if out.write_all(line.as_bytes()).await.is_err() || out.flush().await.is_err() {
                break;
            }
        }
    });
    let child_writer = tokio::spawn(async move {
        while let Some(m) = child_rx.recv().await {
            let mut line = m.to_string();
            line.push('\n');
            if child_in.write_all(line.as_bytes()).await.is_err() || child_in.flush().await.is_err()
            {
                break;
            }
        }
    });
    // Requests whose answers the gateway reads before the agent does (tools/list).
    let listing: Arc<Mutex<HashMap<String, ()>>> = Arc::default();
    let from_child = {
        let (gw, session, to_agent, upstream, listing) = (
            gw.clone(),
            session.clone(),
            to_agent.clone(),
            upstream.clone(),
            listing.clone(),
        );
        tokio::spawn(async move {
            let mut r = BufReader::new(child_out);
            let mut buf = Vec::new();
            while let Ok(Some(())) = read_line(&mut r, &mut buf).await {
                let Ok(mut msg) = serde_json::from_slice::<Json>(&buf) else {
                    tracing::warn!("the server wrote a line that is not JSON; dropped");
                    continue;
                };
                if jsonrpc::kind(&msg) == Kind::Response {
                    let key = jsonrpc::id_of(&msg).to_string();
                    if let Some(own) = jsonrpc::id_of(&msg).as_str().and_then(|id| {
                        upstream
                            .own
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(id)
                    }) {
                        let _ = own.send(msg);
                        continue;
                    }
                    if listing
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&key)
                        .is_some()
                        && let Some(result) = msg.get_mut("result")
                    {
                        gw.filter_tools(&session, result).await;
                    }
                }
                if to_agent.send(msg).is_err() {
                    break;
                }
            }
        })
    };
    // Requests being decided, by id: a cancellation drops one that is still here.
    let held: Arc<Mutex<HashMap<String, Arc<tokio::sync::Notify>>>> = Arc::default();
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut buf = Vec::new();
    let mut server_gone = Box::pin(from_child);
    // An agent's client that stops its server with SIGTERM (after closing stdin)
    // still ends the task.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch for SIGTERM")?;
    loop {
        let line = tokio::select! {
            l = read_line(&mut stdin, &mut buf) => l,
            _ = &mut server_gone => break,
            _ = terminate.recv() => break,
        };
        match line {
            Ok(Some(())) => {}
            Ok(None) => break,
            Err(e) => {
                let _ = to_agent.send(jsonrpc::error(
                    &Json::Null,
                    jsonrpc::INVALID_REQUEST,
                    e.to_string(),
                    None,
                ));
                break;
            }
        }
        let msg: Json = match serde_json::from_slice(&buf) {
            Ok(m) => m,
            Err(e) => {
                let _ = to_agent.send(jsonrpc::error(
                    &Json::Null,
                    jsonrpc::PARSE_ERROR,
                    format!("not JSON: {e}"),
                    None,
                ));
                continue;
            }
        };
        if let Kind::Notification {
            method: "notifications/cancelled",
        } = jsonrpc::kind(&msg)
            && let Some(req) = msg.pointer("/params/requestId")
            && let Some(h) = held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&req.to_string())
        {
            // A call still held in the gateway never reaches the server.
            h.notify_one();
            continue;
        }
        let id = jsonrpc::id_of(&msg).to_string();
        let is_list = matches!(
            jsonrpc::kind(&msg),
            Kind::Request {
                method: "tools/list"
            }
        );
        let is_request = matches!(jsonrpc::kind(&msg), Kind::Request { .. });
        let cancelled = Arc::new(tokio::sync::Notify::new());
        if is_request {
            held.lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.clone(), cancelled.clone());
        }
        {
            let (gw, session, upstream, to_agent, to_child, listing, held) = (
                gw.clone(),
                session.clone(),
                upstream.clone(),
                to_agent.clone(),
                to_child.clone(),
                listing.clone(),
                held.clone(),
            );
            let id = id.clone();
            tokio::spawn(async move {
                let progress = {
                    let to_agent = to_agent.clone();
                    move |n: Json| {
                        let _ = to_agent.send(n);
                    }
                };
                let verdict = tokio::select! {
                    v = gw.gate(&session, msg, upstream.as_ref(), &progress) => v,
                    () = cancelled.notified() => return,
                };
                let still_wanted = held
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id)
                    .is_some();
                if is_request && !still_wanted {
                    // Cancelled between the decision and here: the call never goes on.
                    return;
                }
                match verdict {
                    Verdict::Drop => {}
                    Verdict::Forward {
                        mut message,
                        credential,
                    } => {
                        if let Some(c) = credential {
                            message["params"]["_meta"][jsonrpc::CREDENTIAL_META] = json!(c);
                        }
                        if is_list {
                            listing
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(id, ());
                        }
                        let _ = to_child.send(message);
                    }
                    Verdict::Answer(a) => {
                        let _ = to_agent.send(a);
                    }
                }
            });
        }
    }
    // The task ends first: the agent's client may not wait for the server to exit.
    gw.end_session(&session).await;
    drop(to_child);
    let _ = tokio::time::timeout(Duration::from_secs(2), child_writer).await;
    let code = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        Ok(Ok(status)) => status.code().unwrap_or(1),
        _ => {
            let _ = child.kill().await;
            0
        }
    };
    drop(to_agent);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    Ok(code)
}
