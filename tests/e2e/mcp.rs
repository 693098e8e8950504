//! The MCP gateway (`arbiter mcp-gateway`) between a real MCP client (the official
//! Python SDK, `tests/mcp/agent.py`) and real MCP servers from npm
//! (`@modelcontextprotocol/server-filesystem` on stdio), deciding with
//! `builtin:mcp-example` on an in-process Arbiter. `scripts/install-mcp` installs the
//! pinned servers and SDK the first time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use arbiter::proto as pb;
use arbiter::proto::approvals_client::ApprovalsClient;
use arbiter::proto::credentials_client::CredentialsClient;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::approvals::{Tokens, bearer, vote, with_tokens};
use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_arbiter");

/// `scripts/install-mcp`'s answer: NODE, FILESYSTEM_SERVER, EVERYTHING_SERVER, PYTHON.
pub(crate) fn toolchain() -> HashMap<String, String> {
    let root = arbiter_plugin_build::repo_root();
    let out = std::process::Command::new(root.join("scripts/install-mcp"))
        .output()
        .expect("runs scripts/install-mcp");
    assert!(
        out.status.success(),
        "installing the MCP servers and SDK failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A real MCP client driven one JSON step at a time.
pub(crate) struct Agent {
    child: Child,
    stdin: ChildStdin,
    out: Lines<BufReader<ChildStdout>>,
    pub ready: Value,
}

impl Agent {
    /// Starts `agent.py ARGS...` and waits for its ready line.
    pub(crate) async fn start(tools: &HashMap<String, String>, args: &[String]) -> Self {
        let root = arbiter_plugin_build::repo_root();
        let mut child = tokio::process::Command::new(&tools["PYTHON"])
            .arg(root.join("tests/mcp/agent.py"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env("ARBITER_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .expect("the agent starts");
        let stdin = child.stdin.take().expect("stdin");
        let out = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut agent = Self {
            child,
            stdin,
            out,
            ready: Value::Null,
        };
        agent.ready = agent.read().await;
        agent
    }

    async fn read(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(120), self.out.next_line())
            .await
            .expect("the agent answers within two minutes")
            .expect("reads")
            .expect("the agent is still running");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))
    }

    /// Sends one step and returns its result.
    pub(crate) async fn step(&mut self, step: Value) -> Value {
        let mut line = step.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.expect("writes");
        self.stdin.flush().await.expect("flushes");
        self.read().await
    }

    pub(crate) async fn call(&mut self, tool: &str, arguments: Value) -> Value {
        self.step(json!({ "op": "call", "tool": tool, "arguments": arguments }))
            .await
    }

    /// Closes the session and waits for the agent (and so the gateway) to exit.
    pub(crate) async fn close(mut self) {
        let _ = self.step(json!({ "op": "close" })).await;
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
    }
}

/// The text of a successful tool result.
pub(crate) fn text(result: &Value) -> String {
    assert_eq!(result["ok"], true, "{result}");
    result["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|x| {
                    x.as_str().map_or_else(
                        || x["text"].as_str().unwrap_or_default().to_string(),
                        str::to_string,
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The one pending approval whose principal is `agent`, once it appears.
pub(crate) async fn pending_approval(
    url: &str,
    approver: &str,
    task: Option<&str>,
) -> pb::Approval {
    let mut a = ApprovalsClient::new(crate::approvals::channel(url).await);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = a
            .list_approvals(bearer(
                approver,
                pb::ListApprovalsRequest {
                    states: vec![pb::ApprovalState::Pending as i32],
                    task_id: task.unwrap_or_default().into(),
                    ..Default::default()
                },
            ))
            .await
            .expect("lists")
            .into_inner();
        if let Some(x) = list.approvals.into_iter().next() {
            return x;
        }
        assert!(Instant::now() < deadline, "no approval appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The workspace: `notes.txt`, a secrets file, a scratch folder; and a folder outside.
fn workspace() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = dir.path().join("ws");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(ws.join("scratch")).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(ws.join("notes.txt"), "hello from the workspace\n").expect("write");
    std::fs::write(ws.join(".env"), "API_KEY=do-not-leak\n").expect("write");
    (dir, ws, outside)
}

/// Gateway arguments for stdio around the filesystem server, whose stdin is copied
/// to `seen` so the test sees what the server received.
fn stdio_gateway(
    tools: &HashMap<String, String>,
    url: &str,
    token_file: &Path,
    ws: &Path,
    seen: &Path,
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "stdio".into(),
        "--".into(),
        BIN.into(),
        "mcp-gateway".into(),
    ];
    for a in [
        "--server",
        url,
        "--token-file",
        token_file.to_str().expect("utf-8"),
        "--catalog",
        "builtin:filesystem",
        "--principal",
        "spiffe://acme.org/agent/coder",
        "--on-behalf-of",
        "dave@acme.org",
        "--workspace",
        ws.to_str().expect("utf-8"),
        "--scratch",
        ws.join("scratch").to_str().expect("utf-8"),
        "--approval-timeout",
        "60",
    ] {
        args.push(a.into());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = format!(
        "tee -a '{}' | exec '{}' '{}' '{}'",
        seen.display(),
        tools["NODE"],
        tools["FILESYSTEM_SERVER"],
        ws.display()
    );
    args.extend(["--".into(), "sh".into(), "-c".into(), server]);
    args
}

async fn arbiter_with_tokens() -> (TestServer, Tokens) {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    config.policy_sets = vec!["builtin:mcp-example".into()];
    let t = with_tokens(&mut config);
    (TestServer::start_config(config, data).await, t)
}

#[tokio::test(flavor = "multi_thread")]
async fn stdio_gateway_allows_denies_holds_and_revokes_over_a_real_filesystem_server() {
    let tools = toolchain();
    let (server, t) = arbiter_with_tokens().await;
    let (_dir, ws, outside) = workspace();
    let token_file = ws.parent().expect("parent").join("gateway.token");
    std::fs::write(&token_file, &t.gateway).expect("token file");
    let seen = ws.parent().expect("parent").join("seen.jsonl");
    let args = stdio_gateway(&tools, &server.url, &token_file, &ws, &seen, &[]);
    let mut agent = Agent::start(&tools, &args).await;
    assert_eq!(agent.ready["ok"], true, "{}", agent.ready);

    // A read inside the workspace is allowed and returns the file.
    let read = agent
        .call("read_text_file", json!({ "path": "notes.txt" }))
        .await;
    assert!(text(&read).contains("hello from the workspace"), "{read}");

    // A write outside the workspace is denied: -32001, nothing written.
    let target = outside.join("x.txt");
    let denied = agent
        .call(
            "write_file",
            json!({ "path": target.to_str(), "content": "no" }),
        )
        .await;
    assert_eq!(denied["ok"], false, "{denied}");
    assert_eq!(denied["code"], -32001, "{denied}");
    assert!(!target.exists(), "a denied write reached the disk");
    // So is `..` out of the workspace, and the secrets file even for reading.
    let escaped = agent
        .call(
            "write_file",
            json!({ "path": "../outside/y.txt", "content": "no" }),
        )
        .await;
    assert_eq!(escaped["code"], -32001, "{escaped}");
    assert!(!outside.join("y.txt").exists());
    let secret = agent
        .call("read_text_file", json!({ "path": ".env" }))
        .await;
    assert_eq!(secret["code"], -32001, "{secret}");
    assert!(!secret.to_string().contains("do-not-leak"), "{secret}");
    // A credential an agent plants in `_meta` never reaches the server.
    let planted = agent
        .step(json!({ "op": "request", "method": "tools/call", "params": {
            "name": "read_text_file", "arguments": { "path": "notes.txt" },
            "_meta": { "dev.arbiter/credential": "planted-by-the-agent" } } }))
        .await;
    assert_eq!(planted["ok"], true, "{planted}");
    // A tool missing from the catalog is denied.
    let unknown = agent.call("delete_everything", json!({})).await;
    assert_eq!(unknown["code"], -32001, "{unknown}");

    // A write in the scratch folder is allowed, with a credential for the server only.
    let scratch = agent
        .call(
            "write_file",
            json!({ "path": "scratch/out.txt", "content": "draft" }),
        )
        .await;
    assert_eq!(scratch["ok"], true, "{scratch}");
    assert_eq!(
        std::fs::read_to_string(ws.join("scratch/out.txt")).expect("written"),
        "draft"
    );
    assert!(
        !scratch.to_string().contains("dev.arbiter/credential"),
        "the agent saw the credential"
    );

    // A write elsewhere in the workspace is held until a human approves it.
    let started = agent
        .step(
            json!({ "op": "call_async", "tool": "write_file", "progress": true,
                      "arguments": { "path": "report.md", "content": "approved text" } }),
        )
        .await;
    let n = started["started"].clone();
    let approval = pending_approval(&server.url, &t.bob, None).await;
    assert!(approval.task_id.starts_with("mcp-"), "{approval:?}");
    assert!(
        !ws.join("report.md").exists(),
        "a held write reached the disk"
    );
    let mut approvals = ApprovalsClient::new(server.channel().await);
    vote(&mut approvals, &t.bob, &approval.id, true)
        .await
        .expect("approves");
    let done = agent.step(json!({ "op": "await", "n": n })).await;
    assert_eq!(done["ok"], true, "{done}");
    assert!(
        done["progress"].as_array().is_some_and(|p| !p.is_empty()),
        "no progress while held: {done}"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("report.md")).expect("written"),
        "approved text"
    );

    // A rejected one errors and writes nothing.
    let started = agent
        .step(json!({ "op": "call_async", "tool": "write_file",
                      "arguments": { "path": "rejected.md", "content": "no" } }))
        .await;
    let approval = pending_approval(&server.url, &t.bob, None).await;
    vote(&mut approvals, &t.bob, &approval.id, false)
        .await
        .expect("rejects");
    let done = agent
        .step(json!({ "op": "await", "n": started["started"] }))
        .await;
    assert_eq!(done["code"], -32001, "{done}");
    assert!(
        done["message"]
            .as_str()
            .unwrap_or_default()
            .contains("rejected"),
        "{done}"
    );
    assert!(!ws.join("rejected.md").exists());

    // The server saw the credentials; the session's end revokes every one of them.
    agent.close().await;
    let seen = std::fs::read_to_string(&seen).expect("the server's input");
    assert!(
        !seen.contains("planted-by-the-agent"),
        "a planted credential reached the server"
    );
    let credentials: Vec<String> = seen
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|m| {
            m.pointer("/params/_meta/dev.arbiter~1credential")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    assert_eq!(
        credentials.len(),
        2,
        "one credential per allowed write: {seen}"
    );
    let mut c = CredentialsClient::new(server.channel().await);
    for jwt in &credentials {
        let r = c
            .introspect(bearer(
                &t.gateway,
                pb::IntrospectRequest { token: jwt.clone() },
            ))
            .await
            .expect("introspects")
            .into_inner();
        assert!(
            !r.active,
            "a credential of the ended session is still active"
        );
    }

    // Every call is on record: the tool name, the session as task; a held call twice.
    let records = arbiter_audit::query(
        &server.audit_db(),
        &arbiter_audit::Filter {
            kind: Some(arbiter_audit::Kind::Decision),
            ..Default::default()
        },
    )
    .expect("audit");
    // initialize, five reads and refused writes, the scratch write, the held write
    // (hold and redemption) and the rejected one (hold): ten evaluations reached
    // Arbiter, all in this session's task. The tool missing from the catalog never did.
    let in_task = records
        .iter()
        .filter(|r| r.record.body.get().contains(&approval.task_id))
        .count();
    assert_eq!(in_task, 10, "decision records of the session");
    let report: Vec<String> = records
        .iter()
        .map(|r| r.record.body.get().to_string())
        .filter(|b| b.contains("report.md"))
        .collect();
    assert_eq!(report.len(), 2, "the hold and the redemption: {report:?}");
    assert!(
        report
            .iter()
            .all(|b| b.contains("write_file") && b.contains(&approval.task_id)),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stdio_gateway_fails_closed_when_arbiter_is_down() {
    let tools = toolchain();
    let (server, t) = arbiter_with_tokens().await;
    let (_dir, ws, _outside) = workspace();
    let token_file = ws.parent().expect("parent").join("gateway.token");
    std::fs::write(&token_file, &t.gateway).expect("token file");
    let seen = ws.parent().expect("parent").join("seen.jsonl");
    // A gateway calling with a token that is not an enforcer's gets nothing through.
    let approver_file = ws.parent().expect("parent").join("approver.token");
    std::fs::write(&approver_file, &t.bob).expect("token file");
    let args = stdio_gateway(&tools, &server.url, &approver_file, &ws, &seen, &[]);
    let wrong_role = Agent::start(&tools, &args).await;
    assert_eq!(wrong_role.ready["ok"], false, "{}", wrong_role.ready);
    assert_eq!(wrong_role.ready["code"], -32603, "{}", wrong_role.ready);

    let args = stdio_gateway(&tools, &server.url, &token_file, &ws, &seen, &[]);
    let mut agent = Agent::start(&tools, &args).await;
    let ok = agent
        .call("read_text_file", json!({ "path": "notes.txt" }))
        .await;
    assert_eq!(ok["ok"], true, "{ok}");
    server.running.shutdown().await.expect("stops");
    let down = agent
        .call(
            "write_file",
            json!({ "path": "scratch/late.txt", "content": "no" }),
        )
        .await;
    assert_eq!(down["code"], -32603, "{down}");
    assert!(!ws.join("scratch/late.txt").exists());
    agent.close().await;
}

/// A TCP relay in front of `target` that keeps every byte clients send, so the test
/// sees the headers the upstream received.
async fn recording_relay(target: u16) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let port = listener.local_addr().expect("addr").port();
    let seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>> = Default::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
                    return;
                };
                let (mut cr, mut cw) = client.split();
                let (mut ur, mut uw) = up.split();
                let to_up = async {
                    let mut buf = [0u8; 16384];
                    loop {
                        let n = match tokio::io::AsyncReadExt::read(&mut cr, &mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        record.lock().expect("lock").extend_from_slice(&buf[..n]);
                        if uw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let to_client = tokio::io::copy(&mut ur, &mut cw);
                let _ = tokio::join!(to_up, to_client);
            });
        }
    });
    (port, seen)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A JWKS with one Ed25519 key, and a function minting agents' tokens with it.
fn jwks(dir: &Path) -> (PathBuf, impl Fn(&str, &str) -> String) {
    use base64::Engine as _;
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
    let path = dir.join("agents.jwks");
    std::fs::write(
        &path,
        json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": "agents-1", "alg": "EdDSA" }] }).to_string(),
    )
    .expect("jwks");
    let der = key.to_pkcs8_der().expect("pkcs8");
    let encoding = jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes());
    let mint = move |sub: &str, agent: &str| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("agents-1".into());
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs()
            + 3600;
        let claims = json!({ "sub": sub, "client_id": agent, "aud": "everything", "iss": "https://idp.test", "exp": exp });
        jsonwebtoken::encode(&header, &claims, &encoding).expect("mints")
    };
    (path, mint)
}

const EVERYTHING_CATALOG: &str = r#"
format = 1
server = "everything"
[[tools]]
name = "echo"
privilege = "read"
credential = true
[[tools]]
name = "get-sum"
privilege = "write"
[[tools]]
name = "get-annotated-message"
privilege = "admin"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn http_gateway_keeps_two_agents_sessions_decisions_and_credentials_apart() {
    let tools = toolchain();
    let (server, t) = arbiter_with_tokens().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let everything_port = free_port();
    let _everything = tokio::process::Command::new(&tools["NODE"])
        .arg(&tools["EVERYTHING_SERVER"])
        .arg("streamableHttp")
        .env("PORT", everything_port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("server-everything starts");
    wait_for_port(everything_port).await;
    let (relay, upstream_saw) = recording_relay(everything_port).await;
    let (jwks, mint) = jwks(dir.path());
    let catalog = dir.path().join("everything.toml");
    std::fs::write(&catalog, EVERYTHING_CATALOG).expect("catalog");
    let token_file = dir.path().join("gateway.token");
    std::fs::write(&token_file, &t.gateway).expect("token file");
    let gateway_port = free_port();
    let _gateway = tokio::process::Command::new(BIN)
        .args(["mcp-gateway", "--server", &server.url, "--catalog"])
        .arg(&catalog)
        .arg("--token-file")
        .arg(&token_file)
        .args(["--listen", &format!("127.0.0.1:{gateway_port}")])
        .args(["--upstream", &format!("http://127.0.0.1:{relay}/mcp")])
        .arg("--jwks")
        .arg(&jwks)
        .args(["--token-issuer", "https://idp.test", "--workspace"])
        .arg(dir.path())
        .args(["--hide-denied-tools", "--approval-timeout", "60"])
        .env("ARBITER_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("the gateway starts");
    wait_for_port(gateway_port).await;
    let url = format!("http://127.0.0.1:{gateway_port}/mcp");
    let agent_args = |token: &str| -> Vec<String> {
        vec![
            "http".into(),
            url.clone(),
            "--header".into(),
            format!("Authorization: Bearer {token}"),
        ]
    };

    // Refusals first: no token, a token signed by another key.
    let no_token = Agent::start(&tools, &["http".into(), url.clone()]).await;
    assert_eq!(no_token.ready["ok"], false, "{}", no_token.ready);
    let forged = jwks_with_seed(dir.path(), 9).1("erin@acme.org", "agent-a");
    let forged = Agent::start(&tools, &agent_args(&forged)).await;
    assert_eq!(forged.ready["ok"], false, "{}", forged.ready);

    // Sessions belong to the identity that opened them; bodies are bounded.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{gateway_port}").parse().expect("addr");
    let erin = format!("Bearer {}", mint("erin@acme.org", "agent-a"));
    let frank = format!("Bearer {}", mint("frank@acme.org", "agent-b"));
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "raw", "version": "1" } } })
    .to_string();
    let json_only = [
        ("content-type", "application/json"),
        ("accept", "application/json"),
    ];
    let (status, headers, body) = crate::authzen::http(
        addr,
        "POST",
        "/mcp",
        &[json_only[0], json_only[1], ("authorization", erin.as_str())],
        &init,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let session = header(&headers, "mcp-session-id")
        .expect("a session id")
        .to_string();
    let list = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }).to_string();
    let (status, _, body) = crate::authzen::http(
        addr,
        "POST",
        "/mcp",
        &[
            json_only[0],
            json_only[1],
            ("authorization", frank.as_str()),
            ("mcp-session-id", session.as_str()),
        ],
        &list,
    )
    .await;
    assert_eq!(status, 404, "another identity used erin's session: {body}");
    let (status, _, body) = crate::authzen::http(
        addr,
        "POST",
        "/mcp",
        &[json_only[0], json_only[1], ("authorization", erin.as_str())],
        &list,
    )
    .await;
    assert_eq!(status, 400, "a request with no session: {body}");
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\",\"params\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(5 << 20)
    );
    let (status, _, _) = crate::authzen::http(
        addr,
        "POST",
        "/mcp",
        &[
            json_only[0],
            json_only[1],
            ("authorization", erin.as_str()),
            ("mcp-session-id", session.as_str()),
        ],
        &huge,
    )
    .await;
    assert_eq!(status, 413, "an oversized body");
    let (status, _, _) = crate::authzen::http(
        addr,
        "DELETE",
        "/mcp",
        &[
            ("authorization", erin.as_str()),
            ("mcp-session-id", session.as_str()),
        ],
        "",
    )
    .await;
    assert_eq!(status, 200);

    let mut a = Agent::start(&tools, &agent_args(&mint("erin@acme.org", "agent-a"))).await;
    let mut b = Agent::start(&tools, &agent_args(&mint("frank@acme.org", "agent-b"))).await;
    assert_eq!(a.ready["ok"], true, "{}", a.ready);
    assert_eq!(b.ready["ok"], true, "{}", b.ready);

    // tools/list honesty: the admin tool and every tool missing from the catalog are gone.
    let listed = a.step(json!({ "op": "list_tools" })).await;
    let mut names: Vec<&str> = listed["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["echo", "get-sum"], "{listed}");

    // A's write is held; B is served meanwhile; A completes once approved.
    let held = a
        .step(json!({ "op": "call_async", "tool": "get-sum", "progress": true, "arguments": { "a": 2, "b": 3 } }))
        .await;
    let approval = pending_approval(&server.url, &t.bob, None).await;
    assert_eq!(approval.principal, "agent-a", "{approval:?}");
    let echo_b = b.call("echo", json!({ "message": "from b" })).await;
    assert!(text(&echo_b).contains("from b"), "{echo_b}");
    let mut approvals = ApprovalsClient::new(server.channel().await);
    vote(&mut approvals, &t.bob, &approval.id, true)
        .await
        .expect("approves");
    let sum = a.step(json!({ "op": "await", "n": held["started"] })).await;
    assert!(text(&sum).contains('5'), "{sum}");
    let echo_a = a.call("echo", json!({ "message": "from a" })).await;
    assert!(text(&echo_a).contains("from a"), "{echo_a}");
    // A tool the catalog lacks is denied even when called by name.
    let unlisted = a.call("get-env", json!({})).await;
    assert_eq!(unlisted["code"], -32001, "{unlisted}");

    // The upstream saw one credential per echo, for each agent's own task; the agents'
    // tokens never reached it.
    let saw = String::from_utf8_lossy(&upstream_saw.lock().expect("lock")).to_string();
    let creds: Vec<String> = saw
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("authorization: bearer "))
        .map(|l| l[22..].trim().to_string())
        .collect();
    assert_eq!(creds.len(), 2, "{saw}");
    assert!(
        !saw.contains(&mint("erin@acme.org", "agent-a")[..40]),
        "an agent token reached the upstream"
    );
    let mut c = CredentialsClient::new(server.channel().await);
    let mut tasks = Vec::new();
    for jwt in &creds {
        let r = c
            .introspect(bearer(
                &t.gateway,
                pb::IntrospectRequest { token: jwt.clone() },
            ))
            .await
            .expect("introspects")
            .into_inner();
        assert!(r.active);
        tasks.push((r.subject, r.task_id));
    }
    assert_ne!(tasks[0].1, tasks[1].1, "two sessions, two tasks: {tasks:?}");

    // Ending A's session revokes A's credential and leaves B's alone.
    a.close().await;
    for (jwt, (subject, _)) in creds.iter().zip(&tasks) {
        let r = c
            .introspect(bearer(
                &t.gateway,
                pb::IntrospectRequest { token: jwt.clone() },
            ))
            .await
            .expect("introspects")
            .into_inner();
        assert_eq!(r.active, subject == "agent-b", "{subject}: {r:?}");
    }
    b.close().await;

    // A third agent gives up on a held call (its SDK sends notifications/cancelled):
    // approving it afterwards sends nothing to the server.
    let mut c_args = vec!["--call-timeout".to_string(), "5".to_string()];
    c_args.extend(agent_args(&mint("gina@acme.org", "agent-c")));
    let mut c3 = Agent::start(&tools, &c_args).await;
    let started = c3
        .step(json!({ "op": "call_async", "tool": "get-sum", "arguments": { "a": 40, "b": 2 } }))
        .await;
    let approval = pending_approval(&server.url, &t.bob, None).await;
    assert_eq!(approval.principal, "agent-c", "{approval:?}");
    let gave_up = c3
        .step(json!({ "op": "await", "n": started["started"] }))
        .await;
    assert_eq!(gave_up["ok"], false, "{gave_up}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    vote(&mut approvals, &t.bob, &approval.id, true)
        .await
        .expect("approves");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sums = String::from_utf8_lossy(&upstream_saw.lock().expect("lock"))
        .matches("\"name\":\"get-sum\"")
        .count();
    assert_eq!(
        sums, 1,
        "only agent A's approved get-sum reached the server"
    );
    // Not closed gracefully: after a cancelled call through the recording relay, the
    // SDK's close did not finish within two minutes here, nor did other agents' closes
    // after it (direct to the gateway it does; not yet understood, see the closing
    // note): so this comes last, and killing the agent leaves its session to the sweep.
    drop(c3);
}

/// [`jwks`] with another seed: a key the gateway does not trust.
fn jwks_with_seed(dir: &Path, seed: u8) -> (PathBuf, impl Fn(&str, &str) -> String) {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let der = key.to_pkcs8_der().expect("pkcs8");
    let encoding = jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes());
    let mint = move |sub: &str, agent: &str| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("agents-1".into());
        let claims = json!({ "sub": sub, "client_id": agent, "aud": "everything", "iss": "https://idp.test", "exp": 4_000_000_000u64 });
        jsonwebtoken::encode(&header, &claims, &encoding).expect("mints")
    };
    (dir.join("unused"), mint)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_hold_never_runs_and_no_wait_answers_at_once_then_redeems() {
    let tools = toolchain();
    let (server, t) = arbiter_with_tokens().await;
    let (_dir, ws, _outside) = workspace();
    let token_file = ws.parent().expect("parent").join("gateway.token");
    std::fs::write(&token_file, &t.gateway).expect("token file");
    let seen = ws.parent().expect("parent").join("seen.jsonl");
    let mut approvals = ApprovalsClient::new(server.channel().await);

    // The agent gives up on a held call (its SDK sends notifications/cancelled): the
    // call is dropped, and approving it later writes nothing.
    let mut args = stdio_gateway(&tools, &server.url, &token_file, &ws, &seen, &[]);
    args.splice(0..0, ["--call-timeout".to_string(), "5".to_string()]);
    let mut agent = Agent::start(&tools, &args).await;
    let started = agent
        .step(json!({ "op": "call_async", "tool": "write_file",
                      "arguments": { "path": "cancelled.md", "content": "no" } }))
        .await;
    let approval = pending_approval(&server.url, &t.bob, None).await;
    let gave_up = agent
        .step(json!({ "op": "await", "n": started["started"] }))
        .await;
    assert_eq!(gave_up["ok"], false, "{gave_up}");
    // The SDK sends the cancellation as it gives up; let the gateway read it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    vote(&mut approvals, &t.bob, &approval.id, true)
        .await
        .expect("approves");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!ws.join("cancelled.md").exists(), "a cancelled call ran");
    agent.close().await;

    // Non-blocking: answered at once with the approval id; the same call made again
    // once approved goes through, without opening a second approval.
    let args = stdio_gateway(&tools, &server.url, &token_file, &ws, &seen, &["--no-wait"]);
    let mut agent = Agent::start(&tools, &args).await;
    let call = json!({ "path": "later.md", "content": "once approved" });
    let first = agent.call("write_file", call.clone()).await;
    assert_eq!(first["code"], -32001, "{first}");
    let id = first["data"]["approval_ids"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no approval id: {first}"))
        .to_string();
    let again = agent.call("write_file", call.clone()).await;
    assert_eq!(again["data"]["approval_ids"][0], id.as_str(), "{again}");
    assert!(!ws.join("later.md").exists());
    vote(&mut approvals, &t.bob, &id, true)
        .await
        .expect("approves");
    let done = agent.call("write_file", call).await;
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(
        std::fs::read_to_string(ws.join("later.md")).expect("written"),
        "once approved"
    );
    agent.close().await;
}
