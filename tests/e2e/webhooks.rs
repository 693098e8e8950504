//! Approval notifications by webhook through the real server: a receiver on loopback
//! gets signed Slack and JSON notices for new, decided and expired approvals; with the
//! receiver down the held decision is still answered, the failures are counted on
//! /metrics, and the notice arrives once the receiver is up. Refusals first: settings
//! that would leak a secret or send notices in the clear are refused by name.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arbiter::config::{Config, ServeArgs};
use arbiter::proto as pb;
use arbiter::proto::approvals_client::ApprovalsClient;
use arbiter::proto::authorizer_client::AuthorizerClient;
use hmac::{Hmac, Mac as _};
use serde_json::Value;
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::approvals::{AGENT, bearer, channel, hold, identity_change, vote, with_tokens};
use crate::sets_admin::reqwest_metrics;
use crate::support::*;

const KEY: &str = "q3J9tXv0c5mB8wZ1yL6nR2pK7sD4fG0hA9eU3iO5=";
const CONSOLE: &str = "https://arbiter.example/console";

/// One POST the receiver got.
#[derive(Debug)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Checks the signature as a receiver would, with nothing of Arbiter's: HMAC-SHA256
    /// of `timestamp.body` under the shared secret, and a timestamp close to now.
    fn assert_signed(&self) {
        let timestamp = self.header("x-arbiter-timestamp");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KEY.as_bytes()).expect("key");
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(&self.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(self.header("x-arbiter-signature"), expected, "{self:?}");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let sent: u64 = timestamp.parse().expect("unix seconds");
        assert!(now.abs_diff(sent) < 60, "timestamp {sent}, now {now}");
    }
}

/// A minimal HTTP/1.1 receiver (over TLS with `tls`): every request is answered 200
/// and handed over.
fn receive(listener: TcpListener, tls: Option<TlsAcceptor>) -> mpsc::UnboundedReceiver<Received> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (tx, tls) = (tx.clone(), tls.clone());
            tokio::spawn(async move {
                let received = match tls {
                    None => read_request(stream).await,
                    // A client that refuses the certificate ends the handshake.
                    Some(tls) => match tls.accept(stream).await {
                        Ok(stream) => read_request(stream).await,
                        Err(_) => return,
                    },
                };
                let _ = tx.send(received);
            });
        }
    });
    rx
}

async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Received {
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    stream.read_line(&mut line).await.expect("request line");
    let path = line.split(' ').nth(1).unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        stream.read_line(&mut line).await.expect("header");
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.insert(name.to_ascii_lowercase(), value.trim().to_string());
    }
    let length = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.expect("body");
    stream
        .get_mut()
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        .await
        .expect("answer");
    let _ = stream.get_mut().shutdown().await;
    Received {
        path,
        headers,
        body,
    }
}

async fn next(inbox: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(30), inbox.recv())
        .await
        .expect("a notice within 30 s")
        .expect("receiver running")
}

/// `[notifications]` from `toml_text`, with the secret in an owner-only file in `dir`.
fn notifications(dir: &Path, toml_text: &str) -> arbiter_notify::Notifications {
    write_private(&dir.join("webhook.key"), KEY);
    let raw = toml::from_str(toml_text).expect("notifications toml");
    arbiter_notify::resolve(Some(raw), Some(dir)).expect("valid notifications")
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// `arbiter serve --config FILE` as far as reading the config: the error it stops with.
fn config_error(dir: &Path, toml_text: &str) -> String {
    let file = dir.join("arbiter.toml");
    std::fs::write(&file, toml_text).expect("write config");
    let args = ServeArgs {
        config: Some(file),
        data_dir: Some(dir.join("data")),
        ..ServeArgs::default()
    };
    format!("{:#}", Config::load(&args).expect_err("refused"))
}

#[test]
fn a_secret_file_others_can_read_is_refused_naming_the_key_and_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("webhook.key");
    write_private(&key, KEY);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let e = config_error(
        dir.path(),
        "[[notifications.webhooks]]\nurl = \"https://hooks.example/arbiter\"\nsecret_file = \"webhook.key\"\n",
    );
    assert!(
        e.contains("[[notifications.webhooks]] #1 secret_file")
            && e.contains(&key.display().to_string())
            && e.contains("readable by group or others")
            && e.contains("chmod 600"),
        "{e}"
    );
}

#[test]
fn plain_http_to_a_host_that_is_not_loopback_is_refused_without_the_opt_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_private(&dir.path().join("webhook.key"), KEY);
    let hook = "[[notifications.webhooks]]\nurl = \"http://chat.example/hooks/arbiter\"\nsecret_file = \"webhook.key\"\n";
    let e = config_error(dir.path(), hook);
    assert!(
        e.contains("[[notifications.webhooks]] #1 url")
            && e.contains("`chat.example`, which is not loopback")
            && e.contains("insecure_plaintext = true"),
        "{e}"
    );
    // The operator's explicit opt-in.
    let file = dir.path().join("arbiter.toml");
    std::fs::write(&file, format!("{hook}insecure_plaintext = true\n")).expect("write");
    let args = ServeArgs {
        config: Some(file),
        data_dir: Some(dir.path().join("data")),
        ..ServeArgs::default()
    };
    let config = Config::load(&args).expect("accepted with insecure_plaintext");
    assert!(!config.notifications.webhooks[0].target.tls);
}

#[test]
fn an_unknown_notifications_key_is_refused_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = config_error(
        dir.path(),
        "[notifications]\nconsole_url = \"https://arbiter.example/console\"\n\n[[notifications.webhooks]]\nurl = \"https://hooks.example/arbiter\"\nsecret = \"inline-secret\"\n",
    );
    assert!(
        e.contains("arbiter.toml:6")
            && e.contains("unknown field `secret`")
            && e.contains("secret_file"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_approval_is_posted_signed_to_slack_and_json_receivers_and_so_is_its_decision() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut inbox = receive(listener, None);
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    config.notifications = notifications(
        data.path(),
        &format!(
            r#"
            console_url = "{CONSOLE}/"
            [[webhooks]]
            name = "chat"
            url = "http://{addr}/slack"
            format = "slack"
            secret_file = "webhook.key"
            [[webhooks]]
            name = "tickets"
            url = "http://{addr}/json"
            format = "json"
            secret_file = "webhook.key"
            "#
        ),
    );
    let server = TestServer::start_config(config, data).await;
    let ch = channel(&server.url).await;
    let mut authz = AuthorizerClient::new(ch.clone());
    let id = hold(
        &mut authz,
        &t.gateway,
        identity_change("task-w1", "arn:aws:iam::1:role/deploy"),
    )
    .await;
    let link = format!("{CONSOLE}/approvals/{id}");

    let mut got = [next(&mut inbox).await, next(&mut inbox).await];
    got.sort_by(|a, b| a.path.cmp(&b.path));
    let [json, slack] = got;
    for r in [&json, &slack] {
        r.assert_signed();
        assert_eq!(r.header("x-arbiter-event"), "new");
        assert_eq!(r.header("content-type"), "application/json");
        assert!(!r.header("x-arbiter-delivery").is_empty());
    }
    // Slack: nothing but `text`, which names the action and links to the console.
    let s = slack.json();
    assert_eq!(s.as_object().map(|o| o.len()), Some(1), "{s}");
    let text = s["text"].as_str().expect("text");
    assert!(
        text.starts_with("*Approval needed*: ")
            && text.contains(&format!("`{AGENT}`"))
            && text.contains("`iam:AttachRolePolicy` (identity-change)")
            && text.contains(&format!("<{link}|Open approval {id}>")),
        "{text}"
    );
    // JSON: the approval's caller-safe fields and the link.
    let j = json.json();
    assert_eq!(j["event"], "new");
    assert_eq!(j["link"], link.as_str());
    assert_eq!(j["approval"]["id"], id.as_str());
    assert_eq!(j["approval"]["state"], "pending");
    assert_eq!(j["approval"]["principal"], AGENT);
    assert_eq!(j["approval"]["resource"], "arn:aws:iam::1:role/deploy");
    assert_eq!(j["approval"]["approvers_required"], 1);
    assert!(
        !j["approval"]["reasons"][0]["code"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{j}"
    );
    assert!(!String::from_utf8_lossy(&json.body).contains(&t.gateway));

    // A human decides: both receivers hear it.
    let mut approvals = ApprovalsClient::new(ch.clone());
    vote(&mut approvals, &t.alice, &id, true)
        .await
        .expect("approved");
    let mut got = [next(&mut inbox).await, next(&mut inbox).await];
    got.sort_by(|a, b| a.path.cmp(&b.path));
    let [json, slack] = got;
    json.assert_signed();
    assert_eq!(json.header("x-arbiter-event"), "decided");
    let j = json.json();
    assert_eq!(j["approval"]["state"], "approved");
    assert_eq!(j["approval"]["votes"][0]["approver"], "alice@acme.org");
    let text = slack.json()["text"].as_str().unwrap_or("").to_string();
    assert!(text.starts_with("*Approved* by alice@acme.org:"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_approval_is_posted_to_a_webhook_that_asks_only_for_expiries() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut inbox = receive(listener, None);
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    config.approval_ttl = Duration::from_secs(2);
    config.notifications = notifications(
        data.path(),
        &format!(
            "[[webhooks]]\nurl = \"http://{addr}/expired\"\nsecret_file = \"webhook.key\"\nevents = [\"expired\"]"
        ),
    );
    let server = TestServer::start_config(config, data).await;
    let mut authz = AuthorizerClient::new(channel(&server.url).await);
    let id = hold(
        &mut authz,
        &t.gateway,
        identity_change("task-w2", "arn:role/w2"),
    )
    .await;
    // The first notice is the expiry: `new` was not asked for.
    let r = next(&mut inbox).await;
    r.assert_signed();
    assert_eq!(r.header("x-arbiter-event"), "expired");
    let j = r.json();
    assert_eq!(
        (j["event"].as_str(), j["approval"]["id"].as_str()),
        (Some("expired"), Some(id.as_str()))
    );
    assert_eq!(j["approval"]["state"], "expired");
    assert_eq!(j["link"], Value::Null, "no console_url, no link");
}

/// The value of the series `name{labels}` on /metrics (0 when absent).
async fn metric(addr: SocketAddr, series: &str) -> f64 {
    let text = reqwest_metrics(addr).await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_receiver_down_the_decision_is_answered_and_the_notice_is_retried_until_it_is_up()
{
    // A port nobody listens on, until the receiver starts there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    config.notifications = notifications(
        data.path(),
        &format!(
            "[[webhooks]]\nname = \"down\"\nurl = \"http://{addr}/hook\"\nsecret_file = \"webhook.key\""
        ),
    );
    let server = TestServer::start_config(config, data).await;
    let metrics = server.running.metrics_addr.expect("metrics on");
    let mut authz = AuthorizerClient::new(channel(&server.url).await);

    // The decision is answered while the webhook is down (its latency is measured in
    // scripts/bench-webhooks, not asserted here).
    let r = authz
        .authorize(bearer(
            &t.gateway,
            identity_change("task-w3", "arn:role/w3"),
        ))
        .await
        .expect("answered with the webhook down")
        .into_inner();
    assert_eq!(r.decision(), pb::Decision::RequireApproval);

    // Each failed attempt is counted on /metrics.
    let failures = "arbiter_webhook_failures_total{webhook=\"down\",reason=\"connect\"}";
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(metrics, failures).await < 2.0 {
        assert!(Instant::now() < deadline, "no failed attempts counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The receiver comes up: the retried notice arrives, signed.
    let mut inbox = receive(TcpListener::bind(addr).await.expect("rebind"), None);
    let got = next(&mut inbox).await;
    got.assert_signed();
    assert_eq!(got.header("x-arbiter-event"), "new");
    assert_eq!(got.json()["approval"]["id"], r.approval_id.as_str());
    let delivered = "arbiter_webhook_deliveries_total{webhook=\"down\",outcome=\"delivered\"}";
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(metrics, delivered).await < 1.0 {
        assert!(Instant::now() < deadline, "the delivery is not counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(metric(metrics, failures).await >= 2.0);
}

/// A receiver behind TLS with a certificate for 127.0.0.1 from a private CA; returns
/// the CA's PEM.
fn tls_receiver() -> (TlsAcceptor, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "webhook test CA");
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("ca");
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    p.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
    let key = KeyPair::generate().expect("key");
    let cert = p.signed_by(&key, &ca).expect("signed");
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der"),
        )
        .expect("server config");
    (TlsAcceptor::from(std::sync::Arc::new(config)), ca.pem())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_receiver_is_verified_against_the_configured_ca_and_refused_without_it() {
    let (acceptor, ca) = tls_receiver();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut inbox = receive(listener, Some(acceptor));
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(data.path().join("ca.pem"), ca).expect("write CA");
    let mut config = test_config(data.path());
    let t = with_tokens(&mut config);
    config.notifications = notifications(
        data.path(),
        &format!(
            r#"
            [[webhooks]]
            name = "trusted"
            url = "https://{addr}/trusted"
            secret_file = "webhook.key"
            ca_file = "ca.pem"
            [[webhooks]]
            name = "untrusted"
            url = "https://{addr}/untrusted"
            secret_file = "webhook.key"
            "#
        ),
    );
    let server = TestServer::start_config(config, data).await;
    let metrics = server.running.metrics_addr.expect("metrics on");
    let mut authz = AuthorizerClient::new(channel(&server.url).await);
    let id = hold(
        &mut authz,
        &t.gateway,
        identity_change("task-w4", "arn:role/w4"),
    )
    .await;

    let got = next(&mut inbox).await;
    got.assert_signed();
    assert_eq!(got.path, "/trusted");
    assert_eq!(got.json()["approval"]["id"], id.as_str());
    // The certificate is not one the web roots trust: refused at the handshake, given
    // up at once (retrying cannot help), counted.
    let refused = "arbiter_webhook_failures_total{webhook=\"untrusted\",reason=\"tls\"}";
    let gave_up = "arbiter_webhook_deliveries_total{webhook=\"untrusted\",outcome=\"gave-up\"}";
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(metrics, gave_up).await < 1.0 {
        assert!(Instant::now() < deadline, "the refusal is not counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(metrics, refused).await, 1.0);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), inbox.recv())
            .await
            .is_err(),
        "nothing reached the receiver over the untrusted connection"
    );
}
