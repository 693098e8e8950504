//! The other front doors under the same closed loop as gRPC `Authorize`: AuthZEN
//! `evaluation` over HTTP/1.1 keep-alive (one connection per loop), AuthZEN
//! `evaluations` with 25 items per call (decisions/s counts items), and Envoy
//! `ext_authz` `Check` over the same gRPC channel.
//!
//! The AuthZEN requests are the vectors in the documented mapping. The `Check`
//! requests carry the vectors' fields as headers, mapped back by [`ENVOY_CONFIG`];
//! delegation has no place in a header mapping, so the `Check` workload is the
//! vectors without their delegation chains (the same rules, one forbid fewer to fire).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use arbiter_core::{PrincipalKind, Request, Value};
use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address, socket_address};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Peer, Request as AttrRequest,
};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use hdrhistogram::Histogram;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tonic::transport::Channel;

/// Items in one `evaluations` call.
pub(crate) const BATCH: usize = 25;

/// The `[envoy]` mapping the `ext-authz` target serves with.
pub(crate) const ENVOY_CONFIG: &str = r#"
[envoy]
principal_header = "x-principal"
principal_kind = "agent"
[envoy.principal_attributes]
team = "x-team"
[envoy.intent]
purpose = "x-purpose"
task_id = "x-task"
ticket = "x-ticket"
[envoy.context]
hour = "x-hour"
risk = "x-risk"
mfa = "x-mfa"
source_ip = "x-ip"
[[envoy.routes]]
path = "/read/{kind}/{env}/{owner_team}/{id*}"
action = "bench:Read"
privilege = "read"
[[envoy.routes]]
path = "/write/{kind}/{env}/{owner_team}/{id*}"
action = "bench:Write"
privilege = "write"
[[envoy.routes]]
path = "/admin/{kind}/{env}/{owner_team}/{id*}"
action = "bench:Admin"
privilege = "admin"
[[envoy.routes]]
path = "/identity-change/{kind}/{env}/{owner_team}/{id*}"
action = "bench:IdentityChange"
privilege = "identity-change"
[[envoy.routes]]
path = "/secret-access/{kind}/{env}/{owner_team}/{id*}"
action = "bench:SecretAccess"
privilege = "secret-access"
"#;

/// A request as an AuthZEN evaluation (the mapping of `docs/authzen.md`).
pub(crate) fn authzen(r: &Request) -> Json {
    let subject = |p: &arbiter_core::Principal| {
        let kind = match p.kind {
            PrincipalKind::Human => "user",
            other => other.as_str(),
        };
        json!({"type": kind, "id": p.id, "properties": p.attributes})
    };
    let mut action = serde_json::to_value(&r.action.attributes).unwrap_or_default();
    action["privilege"] = r.action.privilege.as_str().into();
    let mut context = serde_json::to_value(&r.context).unwrap_or_default();
    context["intent"] = serde_json::to_value(&r.intent).unwrap_or_default();
    context["delegation"] = r.delegation.iter().map(subject).collect::<Vec<_>>().into();
    json!({
        "subject": subject(&r.principal),
        "action": {"name": r.action.name, "properties": action},
        "resource": {"type": r.resource.kind, "id": r.resource.id, "properties": r.resource.attributes},
        "context": context,
    })
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::Str(s)) => s.clone(),
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::Float(f)) => f.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// A request as the `Check` Envoy would send for it under [`ENVOY_CONFIG`].
pub(crate) fn check(r: &Request) -> CheckRequest {
    let mut headers: HashMap<String, String> = HashMap::new();
    let mut put = |k: &str, v: String| {
        if !v.is_empty() {
            headers.insert(k.into(), v);
        }
    };
    put("x-principal", r.principal.id.clone());
    put("x-team", text(r.principal.attributes.get("team")));
    put("x-purpose", r.intent.purpose.clone());
    put("x-task", r.intent.task_id.clone());
    put("x-ticket", r.intent.ticket.clone());
    for (k, h) in [
        ("hour", "x-hour"),
        ("risk", "x-risk"),
        ("mfa", "x-mfa"),
        ("source_ip", "x-ip"),
    ] {
        put(h, text(r.context.get(k)));
    }
    let seg = |v: Option<&Value>| {
        let s = text(v);
        if s.is_empty() {
            "-".to_string()
        } else {
            s.replace('/', "_")
        }
    };
    let path = format!(
        "/{}/{}/{}/{}/{}",
        r.action.privilege.as_str(),
        if r.resource.kind.is_empty() {
            "-"
        } else {
            &r.resource.kind
        },
        seg(r.resource.attributes.get("env")),
        seg(r.resource.attributes.get("owner_team")),
        if r.resource.id.is_empty() {
            "-".to_string()
        } else {
            r.resource.id.replace('/', "_")
        },
    );
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                address: Some(Address {
                    address: Some(address::Address::SocketAddress(SocketAddress {
                        address: "10.0.0.9".into(),
                        port_specifier: Some(socket_address::PortSpecifier::PortValue(40000)),
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            }),
            request: Some(AttrRequest {
                http: Some(HttpRequest {
                    method: "POST".into(),
                    path,
                    host: "bench.local".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Http {
    stream: BufReader<tokio::net::TcpStream>,
    host: String,
}

impl Http {
    async fn connect(port: u16) -> anyhow::Result<Self> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    return Ok(Self {
                        stream: BufReader::new(s),
                        host: format!("127.0.0.1:{port}"),
                    });
                }
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => bail!("HTTP listener on {port} did not come up: {e}"),
            }
        }
    }

    /// POSTs `body` to `path`; the answer's body, after checking for a 200.
    async fn post(&mut self, path: &str, body: &[u8]) -> anyhow::Result<Vec<u8>> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        if !line.starts_with("HTTP/1.1 200") {
            bail!("HTTP answer `{}`", line.trim());
        }
        let mut length = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().context("content-length")?;
            }
        }
        let mut out = vec![0u8; length];
        self.stream.read_exact(&mut out).await?;
        Ok(out)
    }
}

/// What a loop sends.
#[derive(Clone)]
pub(crate) enum Work {
    /// Pre-encoded `evaluation` bodies.
    Evaluation(Vec<Vec<u8>>),
    /// Pre-encoded `evaluations` bodies of [`BATCH`] items.
    Evaluations(Vec<Vec<u8>>),
    /// `Check` requests.
    Check(Vec<CheckRequest>),
}

impl Work {
    /// The work for `target` from the vectors.
    pub(crate) fn of(target: &str, requests: &[Request]) -> anyhow::Result<Self> {
        Ok(match target {
            "authzen" => Self::Evaluation(
                requests
                    .iter()
                    .map(|r| authzen(r).to_string().into_bytes())
                    .collect(),
            ),
            "authzen-batch" => Self::Evaluations(
                requests
                    .chunks(BATCH)
                    .filter(|c| c.len() == BATCH)
                    .map(|c| {
                        json!({"evaluations": c.iter().map(authzen).collect::<Vec<_>>()})
                            .to_string()
                            .into_bytes()
                    })
                    .collect(),
            ),
            "ext-authz" => Self::Check(requests.iter().map(check).collect()),
            other => bail!("not a door target: `{other}`"),
        })
    }
}

/// Drives `in_flight` closed loops of `work` for `duration`: latencies per call (ns),
/// decisions made, and the time taken.
pub(crate) async fn run(
    channel: &Channel,
    http_port: u16,
    work: &Work,
    in_flight: usize,
    duration: Duration,
) -> anyhow::Result<(Histogram<u64>, u64, Duration)> {
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = Vec::new();
    for worker in 0..in_flight {
        let work = work.clone();
        let channel = channel.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
            let mut decisions = 0u64;
            let mut i = worker * 7919;
            let mut http = match &work {
                Work::Check(_) => None,
                _ => Some(Http::connect(http_port).await?),
            };
            let mut client = AuthorizationClient::new(channel);
            while Instant::now() < end {
                let t = Instant::now();
                match (&work, http.as_mut()) {
                    (Work::Evaluation(bodies), Some(h)) => {
                        h.post("/access/v1/evaluation", &bodies[i % bodies.len()])
                            .await?;
                        decisions += 1;
                    }
                    (Work::Evaluations(bodies), Some(h)) => {
                        let out = h
                            .post("/access/v1/evaluations", &bodies[i % bodies.len()])
                            .await?;
                        let v: Json = serde_json::from_slice(&out)?;
                        let n = v["evaluations"].as_array().map_or(0, Vec::len);
                        if n != BATCH {
                            bail!("a batch of {BATCH} answered {n} items");
                        }
                        decisions += BATCH as u64;
                    }
                    (Work::Check(checks), _) => {
                        client
                            .check(checks[i % checks.len()].clone())
                            .await
                            .context("Check failed")?;
                        decisions += 1;
                    }
                    _ => bail!("no HTTP connection"),
                }
                i += 1;
                hist.record(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX))?;
            }
            anyhow::Ok((hist, decisions))
        }));
    }
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut decisions = 0;
    for t in tasks {
        let (h, n) = t.await??;
        total.add(h)?;
        decisions += n;
    }
    Ok((total, decisions, start.elapsed()))
}
