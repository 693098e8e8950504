//! The AuthZEN door over real HTTP/1.1 on loopback: the public vectors as AuthZEN
//! evaluations, batches with their three semantics, the metadata, and the error
//! cases of the certification scenario (missing fields, malformed JSON, wrong content
//! type, `X-Request-ID` echo, no token where tokens are required).

use arbiter_core::{Outcome, PrincipalKind, Request};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::approvals::with_tokens;
use crate::support::*;

/// One HTTP/1.1 exchange on a fresh connection: (status, headers, body).
pub(crate) async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    exchange(s, &addr.to_string(), method, path, headers, body).await
}

/// One HTTP/1.1 exchange over `s` (plain TCP or TLS), then the connection closes.
pub(crate) async fn exchange<S>(
    mut s: S,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let addr = host;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("writes");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("reads");
    let text = String::from_utf8(raw).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let mut lines = head.lines();
    let status = lines.next().expect("status line")[9..12]
        .parse()
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    (status, headers, body.to_string())
}

pub(crate) const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn evaluate(
    addr: std::net::SocketAddr,
    body: &Value,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let mut headers = vec![JSON];
    headers.extend_from_slice(extra);
    let (status, _, body) = http(
        addr,
        "POST",
        "/access/v1/evaluation",
        &headers,
        &body.to_string(),
    )
    .await;
    (status, body)
}

/// An Arbiter request written as an AuthZEN evaluation (the documented mapping).
fn authzen(r: &Request) -> Value {
    let subject = |p: &arbiter_core::Principal| {
        let kind = match p.kind {
            PrincipalKind::Human => "user",
            other => other.as_str(),
        };
        json!({"type": kind, "id": p.id, "properties": p.attributes})
    };
    let mut action_props = serde_json::to_value(&r.action.attributes).expect("attrs");
    action_props["privilege"] = r.action.privilege.as_str().into();
    let mut context = serde_json::to_value(&r.context).expect("context");
    context["intent"] = serde_json::to_value(&r.intent).expect("intent");
    context["delegation"] = r.delegation.iter().map(subject).collect::<Vec<_>>().into();
    json!({
        "subject": subject(&r.principal),
        "action": {"name": r.action.name, "properties": action_props},
        "resource": {"type": r.resource.kind, "id": r.resource.id, "properties": r.resource.attributes},
        "context": context,
    })
}

async fn server() -> TestServer {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    config.http = Some(arbiter_http::settings::HttpSettings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        default_privilege: arbiter_core::Privilege::Read,
        client_auth: arbiter_tls::ClientAuth::None,
    });
    TestServer::start_config(config, data).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_public_vectors_are_decided_the_same_over_authzen() {
    let server = server().await;
    let addr = server.running.http_addr.expect("http");
    let mut checked = 0;
    for v in vectors().into_iter().filter(|v| !v.approved).step_by(7) {
        let (status, body) = evaluate(addr, &authzen(&v.request), &[]).await;
        assert_eq!(status, 200, "{body}");
        let d: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(d["decision"], v.expected == Outcome::Allow, "{body}");
        assert_eq!(d["context"]["outcome"], v.expected.as_str(), "{body}");
        assert!(d["context"]["decision_id"].is_string());
        if v.expected == Outcome::RequireApproval {
            assert!(d["context"]["approval_id"].is_string(), "{body}");
        }
        checked += 1;
    }
    assert!(checked > 200, "{checked}");
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_follow_their_semantics_and_take_top_level_defaults() {
    let server = server().await;
    let addr = server.running.http_addr.expect("http");
    let vectors = vectors();
    let pick = |o: Outcome| {
        authzen(
            &vectors
                .iter()
                .find(|v| !v.approved && v.expected == o)
                .expect("a vector")
                .request,
        )
    };
    let (allow, deny) = (pick(Outcome::Allow), pick(Outcome::Deny));
    // The subject comes from the defaults; each item brings the rest.
    let item = |v: &Value| json!({"action": v["action"], "resource": v["resource"], "context": v["context"]});
    let batch = |semantic: &str, first: &Value| {
        json!({
            "subject": first["subject"],
            "evaluations": [item(first), item(&deny), item(&allow)],
            "options": {"evaluations_semantic": semantic},
        })
    };
    for (semantic, first, expected) in [
        ("execute_all", &allow, vec![true, false, true]),
        ("deny_on_first_deny", &allow, vec![true, false]),
        ("permit_on_first_permit", &allow, vec![true]),
    ] {
        let (status, _, body) = http(
            addr,
            "POST",
            "/access/v1/evaluations",
            &[JSON],
            &batch(semantic, first).to_string(),
        )
        .await;
        assert_eq!(status, 200, "{semantic}: {body}");
        let out: Value = serde_json::from_str(&body).expect("json");
        let decisions: Vec<bool> = out["evaluations"]
            .as_array()
            .expect("evaluations")
            .iter()
            .map(|d| d["decision"].as_bool().expect("bool"))
            .collect();
        assert_eq!(decisions, expected, "{semantic}: {body}");
    }
    // A bad item is answered in place; the others are still decided.
    let mut bad = item(&allow);
    bad["action"] = json!({"properties": {}});
    let body = json!({"subject": allow["subject"], "evaluations": [bad, item(&allow)]});
    let (status, _, body) = http(
        addr,
        "POST",
        "/access/v1/evaluations",
        &[JSON],
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let out: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(out["evaluations"][0]["decision"], false);
    assert!(
        out["evaluations"][0]["context"]["reason"]
            .as_str()
            .expect("reason")
            .contains("action.name")
    );
    assert_eq!(out["evaluations"][1]["decision"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metadata_advertises_only_what_is_served() {
    let server = server().await;
    let addr = server.running.http_addr.expect("http");
    let (status, _, body) = http(addr, "GET", "/.well-known/authzen-configuration", &[], "").await;
    assert_eq!(status, 200);
    let m: Value = serde_json::from_str(&body).expect("json");
    let keys: Vec<&str> = m
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "access_evaluation_endpoint",
            "access_evaluations_endpoint",
            "access_request_endpoint",
            "capabilities",
            "jwks_uri",
            "policy_decision_point"
        ]
    );
    assert_eq!(
        m["access_evaluation_endpoint"],
        format!("http://{addr}/access/v1/evaluation")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_400_naming_the_field_and_the_request_id_is_echoed() {
    let server = server().await;
    let addr = server.running.http_addr.expect("http");
    let valid = authzen(&vectors()[0].request);
    let mut no_id = valid.clone();
    no_id["subject"]
        .as_object_mut()
        .expect("subject")
        .remove("id");
    let (status, body) = evaluate(addr, &no_id, &[]).await;
    assert_eq!(status, 400);
    assert!(body.contains("subject.id"), "{body}");
    let mut wrong_type = valid.clone();
    wrong_type["resource"]["id"] = json!(42);
    let (status, body) = evaluate(addr, &wrong_type, &[]).await;
    assert_eq!(
        (status, body.contains("resource.id")),
        (400, true),
        "{body}"
    );
    for (what, headers, body) in [
        ("malformed JSON", vec![JSON], "{\"subject\": "),
        ("an empty body", vec![JSON], ""),
        (
            "a wrong content type",
            vec![("Content-Type", "text/plain")],
            "{}",
        ),
    ] {
        let (status, _, answer) = http(addr, "POST", "/access/v1/evaluation", &headers, body).await;
        assert_eq!(status, 400, "{what}: {answer}");
    }
    let (status, headers, _) = http(
        addr,
        "POST",
        "/access/v1/evaluation",
        &[
            JSON,
            ("X-Request-ID", "bfe9eb29-ab87-4ca3-be83-a1d5d8305716"),
        ],
        &valid.to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers.contains(&(
        "x-request-id".into(),
        "bfe9eb29-ab87-4ca3-be83-a1d5d8305716".into()
    )));
    // Echoed on errors too.
    let (_, headers, _) = http(
        addr,
        "POST",
        "/access/v1/evaluation",
        &[JSON, ("X-Request-ID", "r-2")],
        "{",
    )
    .await;
    assert!(headers.contains(&("x-request-id".into(), "r-2".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn callers_need_a_token_with_the_enforcer_role_where_tokens_are_required() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    config.http = Some(arbiter_http::settings::HttpSettings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        default_privilege: arbiter_core::Privilege::Read,
        client_auth: arbiter_tls::ClientAuth::None,
    });
    let server = TestServer::start_config(config, data).await;
    let addr = server.running.http_addr.expect("http");
    let valid = authzen(&vectors()[0].request);
    let (status, body) = evaluate(addr, &valid, &[]).await;
    assert_eq!(status, 401, "{body}");
    let bad = "Bearer arb_not-a-token";
    assert_eq!(
        evaluate(addr, &valid, &[("Authorization", bad)]).await.0,
        401
    );
    let alice = format!("Bearer {}", t.alice);
    let (status, body) = evaluate(addr, &valid, &[("Authorization", &alice)]).await;
    assert_eq!(status, 403, "an approver is not an enforcer: {body}");
    let gateway = format!("Bearer {}", t.gateway);
    let (status, body) = evaluate(addr, &valid, &[("Authorization", &gateway)]).await;
    assert_eq!(status, 200, "{body}");
    // A set the caller may not name.
    let (status, _) = evaluate(
        addr,
        &valid,
        &[
            ("Authorization", &gateway),
            ("X-Arbiter-Policy-Set", "nope"),
        ],
    )
    .await;
    assert_eq!(status, 400, "an unknown set");
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_announced_but_not_sent_hold_the_byte_budget_and_the_next_is_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    config.connections.request_bytes_in_flight = 80 << 20;
    config.http = Some(arbiter_http::settings::HttpSettings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        default_privilege: arbiter_core::Privilege::Read,
        client_auth: arbiter_tls::ClientAuth::None,
    });
    let server = TestServer::start_config(config, data).await;
    let addr = server.running.http_addr.expect("http");
    // Twenty callers announce 4 MiB bodies and send none: 80 MiB held.
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        let head = format!(
            "POST /access/v1/evaluation HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            arbiter_http::MAX_BODY_BYTES
        );
        s.write_all(head.as_bytes()).await.expect("writes");
        held.push(s);
    }
    let valid = authzen(&vectors()[0].request);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        let (status, _) = evaluate(addr, &valid, &[]).await;
        if status == 429 || std::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(status, 429, "the budget is full");
    // Once they go away, decisions are served again.
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = evaluate(addr, &valid, &[]).await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {status}: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
