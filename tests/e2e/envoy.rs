//! Envoy `ext_authz` through a real Envoy (1.40, `scripts/install-envoy`) in front of
//! a small upstream HTTP server, configured with the files the docs give
//! (`deploy/envoy/envoy.yaml`, `deploy/envoy/arbiter.toml`): allow reaches the
//! upstream; deny is 403 with reasons and the upstream never sees the call;
//! require-approval is 403 with an approval id, a human approves, the retry is allowed
//! once; with Arbiter stopped, Envoy fails closed.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arbiter::proto::approvals_client::ApprovalsClient;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::approvals::{vote, with_tokens};
use crate::authzen::http;
use crate::support::*;

/// Requests the upstream saw: (request line, headers in lower case).
type Seen = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// A tiny HTTP/1.1 upstream: answers 200 `upstream ok` and remembers each request.
async fn upstream() -> (u16, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let port = listener.local_addr().expect("addr").port();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // One request per connection is enough for a test: read to the end
                // of the head (the test's requests have no body).
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let mut lines = head.lines();
                let line = lines.next().unwrap_or_default().to_string();
                let headers = lines
                    .filter_map(|l| l.split_once(": "))
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                    .collect();
                record.lock().expect("lock").push((line, headers));
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nupstream ok")
                    .await;
            });
        }
    });
    (port, seen)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Envoy, killed when dropped.
struct Envoy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Envoy with `deploy/envoy/envoy.yaml`, its ports and the token filled in.
async fn envoy(arbiter_port: u16, upstream_port: u16, token: &str) -> Envoy {
    let root = arbiter_plugin_build::repo_root();
    let out = Command::new(root.join("scripts/install-envoy"))
        .output()
        .expect("runs scripts/install-envoy");
    assert!(
        out.status.success(),
        "installing Envoy failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = String::from_utf8(out.stdout).expect("utf-8");
    let (port, admin) = (free_port(), free_port());
    let yaml = std::fs::read_to_string(root.join("deploy/envoy/envoy.yaml")).expect("config");
    let yaml = yaml
        .replace("port_value: 50051", &format!("port_value: {arbiter_port}"))
        .replace("port_value: 8000", &format!("port_value: {upstream_port}"))
        .replace("port_value: 10000", &format!("port_value: {port}"))
        .replace("port_value: 9901", &format!("port_value: {admin}"))
        .replace(
            "# initial_metadata: [{ key: authorization, value: \"Bearer ENVOY_TOKEN\" }]",
            &format!("initial_metadata: [{{ key: authorization, value: \"Bearer {token}\" }}]"),
        );
    assert!(yaml.contains("initial_metadata: [{"), "the token went in");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("envoy.yaml");
    std::fs::write(&config, yaml).expect("writes");
    let child = Command::new(bin.trim())
        .arg("-c")
        .arg(&config)
        .args(["--log-level", "warn", "--base-id"])
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starts envoy");
    let envoy = Envoy {
        child,
        port,
        _dir: dir,
    };
    // Ready once its listener answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "Envoy did not start listening");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    envoy
}

/// The walkthrough's `[envoy]` mapping.
fn mapping() -> arbiter_grpc::envoy::mapping::EnvoyConfig {
    let root = arbiter_plugin_build::repo_root();
    let text = std::fs::read_to_string(root.join("deploy/envoy/arbiter.toml")).expect("reads");
    let file: toml::Table = toml::from_str(&text).expect("toml");
    let envoy: arbiter_grpc::envoy::mapping::EnvoyConfig =
        file["envoy"].clone().try_into().expect("[envoy]");
    envoy.validate().expect("valid");
    envoy
}

const AGENT: (&str, &str) = ("x-agent", "spiffe://acme.org/agent/deploy-bot");

async fn get(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, String) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    http(addr, method, path, headers, "").await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_envoy_allows_denies_and_holds_through_arbiter_and_fails_closed() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    config.envoy = mapping();
    let server = TestServer::start_config(config, data).await;
    let arbiter_port = server.running.local_addr.port();
    let (upstream_port, seen) = upstream().await;
    let envoy = envoy(arbiter_port, upstream_port, &t.gateway).await;
    let port = envoy.port;
    let calm = [
        ("x-team", "payments"),
        ("x-hour", "10"),
        ("x-risk", "10"),
        ("x-client-ip", "10.1.2.3"),
        ("x-task", "T-1"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        let mut h = vec![AGENT];
        h.extend_from_slice(&calm);
        h.extend_from_slice(extra);
        h
    };

    // Allow: a read of the agent's own team's staging table reaches the upstream,
    // with the decision id, and a credential when one is asked for.
    let (status, headers, body) = get(
        port,
        "GET",
        "/db/staging/payments/orders",
        &with(&[("x-arbiter-credential-request", "60")]),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "upstream ok"), "{headers:?}");
    assert!(
        header(&headers, "x-arbiter-decision-id").is_some(),
        "{headers:?}"
    );
    {
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 1);
        let (line, upstream_headers) = &seen[0];
        assert!(
            line.starts_with("GET /db/staging/payments/orders"),
            "{line}"
        );
        assert!(header(upstream_headers, "x-arbiter-decision-id").is_some());
        let jwt = header(upstream_headers, "x-arbiter-credential").expect("a credential upstream");
        assert_eq!(jwt.split('.').count(), 3, "a JWT: {jwt}");
        assert!(
            header(upstream_headers, "x-arbiter-credential-request").is_none(),
            "the ask is stripped"
        );
    }

    // A client cannot smuggle its own credential header past Arbiter.
    let (status, _, _) = get(
        port,
        "GET",
        "/db/staging/payments/orders",
        &with(&[("x-arbiter-credential", "forged")]),
    )
    .await;
    assert_eq!(status, 200);
    assert!(header(&seen.lock().expect("lock")[1].1, "x-arbiter-credential").is_none());

    // Deny: risk 90 (F1) is 403 with the reasons, and the upstream never sees it.
    let before = seen.lock().expect("lock").len();
    let risky = [
        AGENT,
        ("x-team", "payments"),
        ("x-hour", "10"),
        ("x-risk", "90"),
        ("x-client-ip", "10.1.2.3"),
    ];
    let (status, headers, body) = get(port, "GET", "/db/staging/payments/orders", &risky).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    let d: Value = serde_json::from_str(&body).expect("json body");
    assert_eq!(d["outcome"], "deny");
    assert!(
        d["reasons"].as_array().is_some_and(|r| !r.is_empty()),
        "{d}"
    );
    assert!(
        !body.contains("admin_message"),
        "caller messages only: {body}"
    );
    // No principal: 401.
    let (status, _, body) = get(port, "GET", "/db/staging/payments/orders", &calm).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        seen.lock().expect("lock").len(),
        before,
        "denied calls never reach the upstream"
    );

    // Require-approval: an agent attaching a role policy (G1) is held.
    let iam = [
        AGENT,
        ("x-team", "security"),
        ("x-hour", "10"),
        ("x-risk", "10"),
        ("x-client-ip", "10.0.0.5"),
        ("x-task", "T-2"),
    ];
    let (status, headers, body) = get(port, "POST", "/iam/prod/security/auditor", &iam).await;
    assert_eq!(status, 403, "{body}");
    let id = header(&headers, "x-arbiter-approval-id")
        .expect("an approval id")
        .to_string();
    let d: Value = serde_json::from_str(&body).expect("json body");
    assert_eq!(
        (d["outcome"].as_str(), d["approval_id"].as_str()),
        (Some("require-approval"), Some(id.as_str()))
    );
    // Presenting it before anyone approved: still refused.
    let mut retry: Vec<(&str, &str)> = iam.to_vec();
    retry.push(("x-arbiter-approval-id", &id));
    assert_eq!(
        get(port, "POST", "/iam/prod/security/auditor", &retry)
            .await
            .0,
        403
    );
    assert_eq!(seen.lock().expect("lock").len(), before);
    // A human approves; the retry is allowed once.
    let mut approvals = ApprovalsClient::new(server.channel().await);
    let a = vote(&mut approvals, &t.alice, &id, true)
        .await
        .expect("alice approves");
    assert_eq!(a.approvals, a.approvers_required);
    let (status, _, body) = get(port, "POST", "/iam/prod/security/auditor", &retry).await;
    assert_eq!((status, body.as_str()), (200, "upstream ok"));
    {
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), before + 1);
        assert!(
            header(&seen[before].1, "x-arbiter-approval-id").is_none(),
            "the approval header is stripped"
        );
    }
    let (status, _, body) = get(port, "POST", "/iam/prod/security/auditor", &retry).await;
    assert_eq!(status, 403, "single use: {body}");
    assert_eq!(seen.lock().expect("lock").len(), before + 1);

    // Arbiter gone: Envoy denies, the upstream sees nothing.
    let TestServer { running, .. } = server;
    running.shutdown().await.expect("stops");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, _) = get(port, "GET", "/db/staging/payments/orders", &with(&[])).await;
        if status == 403 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Envoy still answers {status} with Arbiter stopped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen.lock().expect("lock").len(), before + 1, "fail closed");
}

/// A `Check` as Envoy would send it for `path` with `headers`.
fn check_request(
    path: &str,
    headers: &[(&str, &str)],
) -> envoy_types::pb::envoy::service::auth::v3::CheckRequest {
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
    use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "GET".into(),
                    path: path.into(),
                    host: "api.acme.org".into(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn checks_need_an_enforcer_and_bad_input_is_a_400_naming_it() {
    use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
    use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    config.envoy = mapping();
    let server = TestServer::start_config(config, data).await;
    let mut client = AuthorizationClient::new(server.channel().await);
    let calm = [
        AGENT,
        ("x-team", "payments"),
        ("x-hour", "10"),
        ("x-risk", "10"),
        ("x-client-ip", "10.1.2.3"),
    ];
    let ask = |token: Option<&str>, request| {
        let mut r = tonic::Request::new(request);
        if let Some(t) = token {
            r.metadata_mut().insert(
                "authorization",
                format!("Bearer {t}").parse().expect("ascii"),
            );
        }
        r
    };
    // Wrong caller: no token, an approver's token.
    let e = client
        .check(ask(
            None,
            check_request("/db/staging/payments/orders", &calm),
        ))
        .await
        .expect_err("no token");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    let e = client
        .check(ask(
            Some(&t.alice),
            check_request("/db/staging/payments/orders", &calm),
        ))
        .await
        .expect_err("an approver");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    // The enforcer is answered.
    let ok = client
        .check(ask(
            Some(&t.gateway),
            check_request("/db/staging/payments/orders", &calm),
        ))
        .await
        .expect("checked")
        .into_inner();
    assert_eq!(ok.status.expect("status").code, 0);
    assert!(matches!(
        ok.http_response,
        Some(HttpResponse::OkResponse(_))
    ));
    // Oversized and malformed input: a 400 naming what.
    let long = "9".repeat(5000);
    let mut big: Vec<(&str, &str)> = calm.to_vec();
    big.push(("x-risk", &long));
    let denied = |r: envoy_types::pb::envoy::service::auth::v3::CheckResponse| match r.http_response
    {
        Some(HttpResponse::DeniedResponse(d)) => (d.status.expect("status").code, d.body),
        other => panic!("not denied: {other:?}"),
    };
    let r = client
        .check(ask(
            Some(&t.gateway),
            check_request("/db/staging/payments/orders", &big),
        ))
        .await
        .expect("answered")
        .into_inner();
    let (status, body) = denied(r);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("x-risk"), "{body}");
    let mut bad_approval: Vec<(&str, &str)> = calm.to_vec();
    bad_approval.push(("x-arbiter-approval-id", "../../etc"));
    let r = client
        .check(ask(
            Some(&t.gateway),
            check_request("/db/staging/payments/orders", &bad_approval),
        ))
        .await
        .expect("answered")
        .into_inner();
    assert_eq!(denied(r).0, 400);
    // An approval that does not exist does not turn anything into an allow.
    let mut unknown: Vec<(&str, &str)> = calm.to_vec();
    unknown.push((
        "x-arbiter-approval-id",
        "0190f0e2-0000-7000-8000-000000000000",
    ));
    let r = client
        .check(ask(
            Some(&t.gateway),
            check_request("/db/staging/payments/orders", &unknown),
        ))
        .await
        .expect("answered")
        .into_inner();
    assert_eq!(denied(r).0, 403);
    // No HTTP attributes at all.
    let r = client
        .check(ask(Some(&t.gateway), Default::default()))
        .await
        .expect("answered")
        .into_inner();
    assert_eq!(denied(r).0, 400);
}
