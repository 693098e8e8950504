//! The console over HTTPS on loopback: the session cookie is `Secure`, and with
//! mutual TLS an approver signs in with the client certificate of the connection;
//! a certificate that proves no approver, a connection without one, and a session
//! carried to a connection with another certificate (or none) are refused.

use std::net::SocketAddr;
use std::sync::Arc;

use arbiter::auth::Role;
use arbiter::config::TlsSettings;
use arbiter_tls::{ClientAuth, ServerFiles};

use crate::approvals::{Tokens, with_tokens};
use crate::authzen::exchange;
use crate::console::{FORM, cookie_pair, csrf_of, set_cookie};
use crate::support::*;
use crate::tls::{Ca, Pem, peer, write_files};

const DANA: &str = "spiffe://people.acme.org/dana";
const GATEWAY: &str = "spiffe://acme.org/ns/prod/gateway";

/// A server whose gRPC and HTTP listeners serve TLS and take client certificates when
/// offered: humans of `people.acme.org` are approvers, workloads under
/// `spiffe://acme.org/ns/prod/` enforcers; the tests' tokens work too.
async fn server(ca: &Ca) -> (TestServer, Tokens, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = write_files(dir.path(), &ca.server("console"), ca);
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
    config.http = Some(arbiter_http::settings::HttpSettings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        default_privilege: arbiter_core::Privilege::Read,
        client_auth: ClientAuth::Optional,
    });
    config.peers = vec![
        peer(
            "trust_domain",
            "people.acme.org",
            "human",
            &[Role::Approver],
        ),
        peer(
            "spiffe_prefix",
            "spiffe://acme.org/ns/prod/",
            "service",
            &[Role::Enforcer],
        ),
    ];
    (TestServer::start_config(config, data).await, tokens, dir)
}

/// One HTTPS exchange trusting `ca`, presenting `client` when given.
async fn https(
    addr: SocketAddr,
    ca: &Ca,
    client: Option<&Pem>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.pem().as_bytes()) {
        roots.add(c.expect("pem")).expect("root");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        #[allow(deprecated)]
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    let config = match client {
        Some(p) => {
            let chain = CertificateDer::pem_slice_iter(p.cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("client chain");
            let key = PrivateKeyDer::from_pem_slice(p.key.as_bytes()).expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake");
    let host = format!("localhost:{}", addr.port());
    exchange(tls, &host, method, path, headers, body).await
}

/// Loads the sign-in form over a connection presenting `client`, then posts `fields`
/// (after the form's CSRF token) over another such connection.
async fn sign_in(
    addr: SocketAddr,
    ca: &Ca,
    client: Option<&Pem>,
    fields: &str,
) -> (u16, Vec<(String, String)>, String, String) {
    let (status, headers, form) = https(addr, ca, client, "GET", "/console/sign-in", &[], "").await;
    assert_eq!(status, 200, "{form}");
    let pair = cookie_pair(set_cookie(&headers, "arbiter_console_signin").expect("form cookie"));
    let body = format!("csrf={}&{fields}", csrf_of(&form));
    let (status, headers, page) = https(
        addr,
        ca,
        client,
        "POST",
        "/console/sign-in",
        &[FORM, ("Cookie", &pair)],
        &body,
    )
    .await;
    (status, headers, page, form)
}

#[tokio::test(flavor = "multi_thread")]
async fn console_over_tls_sets_a_secure_cookie_and_signs_in_with_a_client_certificate() {
    let ca = Ca::new("Console Test CA");
    let (server, t, _dir) = server(&ca).await;
    let addr = server.running.http_addr.expect("http");

    // Refusals first. A connection without a certificate is offered no certificate
    // sign-in, and posting one anyway is refused.
    let (status, headers, page, form) = sign_in(addr, &ca, None, "with=certificate").await;
    assert!(!form.contains("Sign in with this certificate"), "{form}");
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("presented no client certificate"), "{page}");
    assert!(set_cookie(&headers, "arbiter_console").is_none());
    // An enforcement point's certificate proves an identity, but not an approver.
    let gateway = ca.client("gateway", Some(GATEWAY));
    let (status, headers, page, form) =
        sign_in(addr, &ca, Some(&gateway), "with=certificate").await;
    assert!(
        form.contains(GATEWAY),
        "the form names the certificate: {form}"
    );
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("is not an approver"), "{page}");
    assert!(set_cookie(&headers, "arbiter_console").is_none());

    // A token over TLS: the cookie is `Secure`.
    let token = format!("token={}", t.alice);
    let (status, headers, page, _) = sign_in(addr, &ca, None, &token).await;
    assert_eq!(status, 303, "{page}");
    let cookie = set_cookie(&headers, "arbiter_console").expect("session cookie");
    for flag in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(flag), "{cookie}");
    }

    // An approver's certificate signs in, and the session works over connections
    // that present it.
    let dana = ca.client("dana", Some(DANA));
    let (status, headers, page, form) = sign_in(addr, &ca, Some(&dana), "with=certificate").await;
    assert!(form.contains("Sign in with this certificate") && form.contains(DANA));
    assert_eq!(status, 303, "{page}");
    let cookie = set_cookie(&headers, "arbiter_console").expect("session cookie");
    assert!(cookie.contains("Secure"), "{cookie}");
    let pair = cookie_pair(cookie);
    let session = [("Cookie", pair.as_str())];
    let (status, _, page) = https(
        addr,
        &ca,
        Some(&dana),
        "GET",
        "/console/approvals",
        &session,
        "",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(DANA), "signed in as dana: {page}");

    // The cookie alone is not the identity: carried to a connection with another
    // certificate, or with none, it is refused and the session ends.
    let other = ca.client("erin", Some("spiffe://people.acme.org/erin"));
    let (status, headers, _) = https(
        addr,
        &ca,
        Some(&other),
        "GET",
        "/console/approvals",
        &session,
        "",
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(header(&headers, "location"), Some("/console/sign-in"));
    let (status, _, _) = https(
        addr,
        &ca,
        Some(&dana),
        "GET",
        "/console/approvals",
        &session,
        "",
    )
    .await;
    assert_eq!(status, 303, "the session ended when misused");
}
