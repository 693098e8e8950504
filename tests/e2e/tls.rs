//! TLS and mutual TLS over real loopback connections, with certificates made here
//! (rcgen): who may connect, which identity a certificate proves, which roles it
//! maps to, and certificates rotated on disk while connections stay open.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arbiter::auth::{PeerConfig, Role};
use arbiter::config::TlsSettings;
use arbiter::proto as pb;
use arbiter::proto::approvals_client::ApprovalsClient;
use arbiter::proto::authorizer_client::AuthorizerClient;
use arbiter::proto::policy_admin_client::PolicyAdminClient;
use arbiter_tls::{ClientAuth, ServerFiles};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::approvals::{bearer, identity_change, with_tokens};
use crate::support::*;

/// A certificate authority of the tests.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM.
#[derive(Clone)]
pub(crate) struct Pem {
    pub(crate) cert: String,
    pub(crate) key: String,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Self {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer =
            CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("ca");
        Self { issuer }
    }

    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for localhost and 127.0.0.1, named `cn`.
    pub(crate) fn server(&self, cn: &str) -> Pem {
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        p.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
        p.distinguished_name.push(DnType::CommonName, cn);
        self.sign(p)
    }

    /// A client certificate: an X.509 SVID when `spiffe_id` is given.
    pub(crate) fn client(&self, cn: &str, spiffe_id: Option<&str>) -> Pem {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        if let Some(id) = spiffe_id {
            p.subject_alt_names
                .push(SanType::URI(id.try_into().expect("ia5")));
        }
        self.sign(p)
    }

    /// A client certificate whose validity ended in 2020.
    fn expired_client(&self, spiffe_id: &str) -> Pem {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.subject_alt_names
            .push(SanType::URI(spiffe_id.try_into().expect("ia5")));
        p.not_before = rcgen::date_time_ymd(2019, 1, 1);
        p.not_after = rcgen::date_time_ymd(2020, 1, 1);
        self.sign(p)
    }

    fn sign(&self, p: CertificateParams) -> Pem {
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &self.issuer).expect("signed");
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// The files of a TLS server in `dir`.
pub(crate) struct Files {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) ca: PathBuf,
}

pub(crate) fn write_files(dir: &Path, server: &Pem, client_ca: &Ca) -> Files {
    let f = Files {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        ca: dir.join("client-ca.pem"),
    };
    std::fs::write(&f.cert, &server.cert).expect("cert");
    std::fs::write(&f.key, &server.key).expect("key");
    std::fs::write(&f.ca, client_ca.pem()).expect("ca");
    f
}

pub(crate) fn peer(key: &str, value: &str, kind: &str, roles: &[Role]) -> arbiter::auth::PeerRule {
    let mut c = PeerConfig {
        kind: kind.into(),
        roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
        ..PeerConfig::default()
    };
    let v = Some(value.to_string());
    match key {
        "spiffe_id" => c.spiffe_id = v,
        "spiffe_prefix" => c.spiffe_prefix = v,
        _ => c.trust_domain = v,
    }
    c.rule().expect("valid peer entry")
}

/// A server with TLS (and client certificates as `auth` says), mapping SPIFFE IDs:
/// `.../sa/ops` exactly to admin, `spiffe://acme.org/ns/prod/` to enforcer, and the
/// trust domain `people.acme.org` to human approvers.
async fn tls_server(ca: &Ca, auth: ClientAuth) -> (TestServer, tempfile::TempDir, Files) {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = write_files(dir.path(), &ca.server("server-one"), ca);
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    config.tls = Some(TlsSettings {
        grpc: ServerFiles {
            cert: files.cert.clone(),
            key: files.key.clone(),
            client_ca: (auth != ClientAuth::None).then(|| files.ca.clone()),
            client_auth: auth,
        },
        metrics_plaintext: true,
    });
    config.peers = vec![
        peer(
            "spiffe_id",
            "spiffe://acme.org/ns/prod/sa/ops",
            "service",
            &[Role::Admin],
        ),
        peer(
            "spiffe_prefix",
            "spiffe://acme.org/ns/prod/",
            "service",
            &[Role::Enforcer],
        ),
        peer(
            "trust_domain",
            "people.acme.org",
            "human",
            &[Role::Approver],
        ),
    ];
    (TestServer::start_config(config, data).await, dir, files)
}

fn https(server: &TestServer) -> String {
    format!("https://localhost:{}", server.running.local_addr.port())
}

/// A TLS channel trusting `ca`, presenting `client` when given.
async fn connect(url: &str, ca: &Ca, client: Option<&Pem>) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    if let Some(c) = client {
        tls = tls.identity(Identity::from_pem(&c.cert, &c.key));
    }
    let channel = Channel::from_shared(url.to_string())
        .expect("url")
        .tls_config(tls)
        .expect("tls config")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(channel)
}

/// One decision over `channel` (the TLS handshake of a lazy connection happens here).
async fn decide(channel: Channel) -> Result<pb::AuthorizeResponse, tonic::Status> {
    AuthorizerClient::new(channel)
        .authorize(normal_request())
        .await
        .map(tonic::Response::into_inner)
}

/// The count of `arbiter_refused_callers_total` for `reason` on the gRPC listener.
fn refusals(server: &TestServer, reason: &str) -> u64 {
    let text = server.running.app.metrics().encode();
    let needle = format!("arbiter_refused_callers_total{{listener=\"grpc\",reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .map_or(0, |v| v.trim().parse().expect("count"))
}

#[tokio::test]
async fn a_tls_client_is_served_and_a_plaintext_client_is_refused() {
    let ca = Ca::new("Arbiter Test CA");
    let (server, _dir, _files) = tls_server(&ca, ClientAuth::None).await;
    let answer = decide(
        connect(&https(&server), &ca, None)
            .await
            .expect("tls connects"),
    )
    .await
    .expect("decided over TLS");
    assert!(!answer.decision_id.is_empty());

    // A plaintext client gets no answer, and the server says why in its metrics.
    let plain = format!("http://127.0.0.1:{}", server.running.local_addr.port());
    let refused = match Channel::from_shared(plain).expect("url").connect().await {
        Ok(channel) => decide(channel).await.err().map(|s| s.to_string()),
        Err(e) => Some(format!("{e:?}")),
    };
    assert!(refused.is_some(), "a plaintext client must not be answered");
    assert!(refusals(&server, "not-tls") >= 1, "counted as not-tls");
    // A client that does not trust the server's CA refuses the server.
    let other = Ca::new("Some Other CA");
    let wrong_trust = match connect(&https(&server), &other, None).await {
        Ok(channel) => decide(channel).await.is_err(),
        Err(_) => true,
    };
    assert!(
        wrong_trust,
        "a server certificate from an unknown CA is refused"
    );
}

#[tokio::test]
async fn client_certificates_from_another_ca_expired_or_unmapped_are_refused() {
    let ca = Ca::new("Arbiter Test CA");
    let (server, _dir, _files) = tls_server(&ca, ClientAuth::Required).await;
    let url = https(&server);
    let refused = |r: Result<Channel, String>| async move {
        match r {
            Ok(channel) => decide(channel).await.expect_err("refused at the handshake"),
            Err(e) => tonic::Status::unavailable(e),
        }
    };
    // Another CA's certificate, for an id that would be mapped.
    let stranger = Ca::new("Stranger CA").client("gw", Some("spiffe://acme.org/ns/prod/sa/gw"));
    let s = refused(connect(&url, &ca, Some(&stranger)).await).await;
    assert_ne!(s.code(), Code::Ok);
    assert_eq!(refusals(&server, "unknown-ca"), 1, "{s:?}");
    // An expired certificate from the right CA.
    let expired = ca.expired_client("spiffe://acme.org/ns/prod/sa/gw");
    refused(connect(&url, &ca, Some(&expired)).await).await;
    assert_eq!(refusals(&server, "expired"), 1);
    // No certificate at all, where one is required (even from loopback).
    refused(connect(&url, &ca, None).await).await;
    assert_eq!(refusals(&server, "no-client-certificate"), 1);
    // A valid certificate whose SPIFFE ID no [[auth.peers]] entry maps.
    let unmapped = ca.client("x", Some("spiffe://elsewhere.org/sa/x"));
    let s = decide(
        connect(&url, &ca, Some(&unmapped))
            .await
            .expect("handshake"),
    )
    .await
    .expect_err("unmapped");
    assert_eq!(s.code(), Code::PermissionDenied);
    assert!(
        s.message().contains("spiffe://elsewhere.org/sa/x"),
        "{}",
        s.message()
    );
    assert!(s.message().contains("[[auth.peers]]"), "{}", s.message());
    assert_eq!(refusals(&server, "unmapped-certificate"), 1);
}

#[tokio::test]
async fn spiffe_ids_map_exactly_by_prefix_and_by_trust_domain_to_their_roles() {
    let ca = Ca::new("Arbiter Test CA");
    let (server, _dir, _files) = tls_server(&ca, ClientAuth::Required).await;
    let url = https(&server);
    let as_id = |id: &str| ca.client("c", Some(id));

    // Prefix: an enforcer, who decides but does not administer.
    let gw = connect(&url, &ca, Some(&as_id("spiffe://acme.org/ns/prod/sa/gw")))
        .await
        .expect("connects");
    decide(gw.clone()).await.expect("enforcer decides");
    let s = PolicyAdminClient::new(gw)
        .list_sets(pb::ListSetsRequest {})
        .await
        .expect_err("not an admin");
    assert_eq!(s.code(), Code::PermissionDenied);
    assert!(
        s.message().contains("spiffe://acme.org/ns/prod/sa/gw"),
        "{}",
        s.message()
    );

    // Exact: an admin (the more specific rule wins over the prefix).
    let ops = connect(&url, &ca, Some(&as_id("spiffe://acme.org/ns/prod/sa/ops")))
        .await
        .expect("connects");
    let sets = PolicyAdminClient::new(ops.clone())
        .list_sets(pb::ListSetsRequest {})
        .await
        .expect("admin lists sets")
        .into_inner();
    assert!(!sets.sets.is_empty());
    assert_eq!(
        decide(ops)
            .await
            .expect_err("an admin is not an enforcer")
            .code(),
        Code::PermissionDenied
    );

    // Trust domain: human approvers.
    let alice = connect(&url, &ca, Some(&as_id("spiffe://people.acme.org/alice")))
        .await
        .expect("connects");
    ApprovalsClient::new(alice.clone())
        .list_approvals(pb::ListApprovalsRequest::default())
        .await
        .expect("an approver lists approvals");
    assert_eq!(
        decide(alice).await.expect_err("not an enforcer").code(),
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn a_token_and_a_certificate_naming_two_identities_are_refused() {
    let ca = Ca::new("Arbiter Test CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let files = write_files(dir.path(), &ca.server("s"), &ca);
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let tokens = with_tokens(&mut config);
    config.tls = Some(TlsSettings {
        grpc: ServerFiles {
            cert: files.cert,
            key: files.key,
            client_ca: Some(files.ca),
            client_auth: ClientAuth::Optional,
        },
        metrics_plaintext: true,
    });
    config.peers = vec![peer(
        "spiffe_prefix",
        "spiffe://acme.org/",
        "service",
        &[Role::Enforcer],
    )];
    let server = TestServer::start_config(config, data).await;
    let url = https(&server);
    let cert = ca.client("gw", Some("spiffe://acme.org/gw"));
    let channel = connect(&url, &ca, Some(&cert)).await.expect("connects");
    // The gateway's token is `gateway`'s; the certificate proves another identity.
    let s = AuthorizerClient::new(channel.clone())
        .authorize(bearer(&tokens.gateway, normal_request()))
        .await
        .expect_err("two identities");
    assert_eq!(s.code(), Code::PermissionDenied);
    assert!(s.message().contains("one identity"), "{}", s.message());
    assert_eq!(refusals(&server, "identity-mismatch"), 1);
    // The certificate alone is an enforcer; with `client_auth = optional`, a
    // connection without a certificate may still use a token.
    decide(channel).await.expect("certificate alone");
    let no_cert = connect(&url, &ca, None).await.expect("connects");
    AuthorizerClient::new(no_cert)
        .authorize(bearer(&tokens.gateway, normal_request()))
        .await
        .expect("token alone");
}

/// The certificate a fresh TLS connection to `port` is served.
async fn served_certificate(port: u16, ca: &Ca) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca.pem().as_bytes()) {
        roots.add(c.expect("pem")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        #[allow(deprecated)]
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("tcp");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake");
    tls.get_ref().1.peer_certificates().expect("certs")[0].to_vec()
}

fn der_of(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject as _;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("pem")
        .to_vec()
}

#[tokio::test]
async fn a_certificate_rotated_on_disk_is_served_to_new_connections_while_an_open_stream_survives()
{
    let ca = Ca::new("Arbiter Test CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let first = ca.server("server-first");
    let files = write_files(dir.path(), &first, &ca);
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let tokens = with_tokens(&mut config);
    config.tls = Some(TlsSettings {
        grpc: ServerFiles {
            cert: files.cert.clone(),
            key: files.key.clone(),
            client_ca: None,
            client_auth: ClientAuth::None,
        },
        metrics_plaintext: true,
    });
    let server = TestServer::start_config(config, data).await;
    let port = server.running.local_addr.port();
    assert_eq!(served_certificate(port, &ca).await, der_of(&first.cert));

    // A watcher's stream is open on a connection made with the first certificate.
    let watching = connect(&https(&server), &ca, None).await.expect("connects");
    let mut stream = ApprovalsClient::new(watching)
        .watch_approvals(bearer(
            &tokens.carol,
            pb::WatchApprovalsRequest {
                include_pending: false,
            },
        ))
        .await
        .expect("watch")
        .into_inner();

    // Rotate: key first, then certificate, as a SPIFFE helper writes them. A torn
    // pair (new key, old certificate) is refused and the old one kept meanwhile.
    let second = ca.server("server-second");
    std::fs::write(&files.key, &second.key).expect("key");
    std::fs::write(&files.cert, &second.cert).expect("cert");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if served_certificate(port, &ca).await == der_of(&second.cert) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate is never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The stream opened before the rotation still carries events.
    let mut authz = AuthorizerClient::new(connect(&https(&server), &ca, None).await.expect("new"));
    let held = authz
        .authorize(bearer(
            &tokens.gateway,
            identity_change("task-rot", "arn:role/r"),
        ))
        .await
        .expect("held")
        .into_inner();
    assert!(!held.approval_id.is_empty());
    let event = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("an event in time")
        .expect("the stream is still open")
        .expect("an event");
    let approval = event.approval.expect("approval");
    assert_eq!(approval.id, held.approval_id);

    // A broken file is not served: the last good certificate stays.
    std::fs::write(&files.cert, "not a certificate").expect("break");
    tokio::time::sleep(arbiter_tls::RELOAD_EVERY + Duration::from_secs(1)).await;
    assert_eq!(served_certificate(port, &ca).await, der_of(&second.cert));
    let text = server.running.app.metrics().encode();
    assert!(
        text.contains("arbiter_tls_reloads_total{listener=\"grpc\",result=\"failed\"}"),
        "a failed reload is counted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_talks_to_a_mutual_tls_server_with_its_certificate_or_a_token_file() {
    let ca = Ca::new("Arbiter Test CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let files = write_files(dir.path(), &ca.server("s"), &ca);
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    let tokens = with_tokens(&mut config);
    config.tls = Some(TlsSettings {
        grpc: ServerFiles {
            cert: files.cert,
            key: files.key,
            client_ca: Some(files.ca.clone()),
            client_auth: ClientAuth::Optional,
        },
        metrics_plaintext: true,
    });
    config.peers = vec![peer(
        "spiffe_id",
        "spiffe://acme.org/ns/prod/sa/ops",
        "service",
        &[Role::Admin],
    )];
    let server = TestServer::start_config(config, data).await;
    let ops = ca.client("ops", Some("spiffe://acme.org/ns/prod/sa/ops"));
    let (cert, key) = (dir.path().join("ops.pem"), dir.path().join("ops.key"));
    std::fs::write(&cert, &ops.cert).expect("cert");
    std::fs::write(&key, &ops.key).expect("key");
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, format!("{}\n", tokens.admin)).expect("token");
    let url = https(&server);
    let run = move |args: Vec<String>| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_arbiter"))
            .args(&args)
            .env_remove("ARBITER_TOKEN")
            .output()
            .expect("runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let base = |extra: &[&str]| {
        let mut v: Vec<String> = ["sets", "list", "--server", &url, "--tls-ca"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.push(files.ca.display().to_string());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    // By certificate (mapped to admin), by token file, and refused with neither.
    let with_cert = base(&[
        "--tls-cert",
        &cert.display().to_string(),
        "--tls-key",
        &key.display().to_string(),
    ]);
    let with_token = base(&["--token-file", &token_file.display().to_string()]);
    let with_nothing = base(&[]);
    let plain = vec![
        "sets".to_string(),
        "list".into(),
        "--server".into(),
        url.replace("https", "http"),
        "--tls-ca".into(),
        files.ca.display().to_string(),
    ];
    let results =
        tokio::task::spawn_blocking(move || [with_cert, with_token, with_nothing, plain].map(run))
            .await
            .expect("joins");
    let [
        (cert_ok, cert_out),
        (token_ok, token_out),
        (none_ok, none_out),
        (plain_ok, plain_out),
    ] = results;
    assert!(cert_ok, "{cert_out}");
    assert!(cert_out.contains("reference"), "{cert_out}");
    assert!(token_ok, "{token_out}");
    assert!(!none_ok, "no certificate, no token: refused");
    assert!(none_out.contains("nauthenticated"), "{none_out}");
    assert!(!plain_ok);
    assert!(plain_out.contains("https://"), "a clear error: {plain_out}");
}
