//! The HTTP front door: the OpenID AuthZEN Authorization API 1.0 over HTTP/1.1 (plain
//! on loopback, or TLS with the server's certificate), a thin adapter onto
//! `arbiter_service::pipeline::Decider`, and the Prometheus metrics endpoint.
//!
//! | endpoint | does |
//! | --- | --- |
//! | `POST /access/v1/evaluation` | one decision |
//! | `POST /access/v1/evaluations` | several, with `execute_all`, `deny_on_first_deny` or `permit_on_first_permit` |
//! | `GET /.well-known/authzen-configuration` | the PDP metadata: what is served, nothing else |
//! | `POST /access/v1/requests` | an access request for a requestable denial (the approval profile) |
//! | `GET /access/v1/requests/{id}` | its task: pending, approved, denied or expired |
//! | `GET /access/v1/jwks` | the keys that verify binding tokens and credentials |
//! | `/console/...` | the approver console (`arbiter-console`) |
//!
//! Who is calling is settled from the headers and the connection before the body is
//! read (bearer token or client certificate, the same roles as gRPC: decisions need
//! `enforcer`). Errors are 400 (naming the field), 401, 403, 429 and 503 (retry), and
//! 500, each with a plain-text message; `X-Request-ID` is echoed on every answer.

pub mod authzen;
mod body;
mod handler;
mod idempotency;
pub mod metrics;
mod requests;
pub mod settings;

use std::net::SocketAddr;
use std::sync::Arc;

use arbiter_core::Privilege;
use arbiter_service::pipeline::Decider;
use arbiter_tls::Acceptor;
use tokio::net::TcpListener;

pub use handler::MAX_BODY_BYTES;

/// Aborts a task when dropped (a listener's certificate reloader stops with it).
#[derive(Debug)]
pub struct AbortOnDrop(pub Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            t.abort();
        }
    }
}

/// The AuthZEN door of one server.
#[derive(Debug)]
pub struct Door {
    decider: Decider,
    default_privilege: Privilege,
    scheme: &'static str,
    budget: Arc<arbiter_service::budget::Budget>,
    idempotency: idempotency::Idempotency,
    /// The approver console, on the same listener.
    console: arbiter_console::Console,
}

impl Door {
    /// Decides with `decider`; an action without `properties.privilege` has
    /// `default_privilege`. `tls` says whether the listener serves TLS (for the
    /// metadata's URLs). Request bodies count against `budget`, the server's.
    pub fn new(
        decider: Decider,
        default_privilege: Privilege,
        tls: bool,
        budget: Arc<arbiter_service::budget::Budget>,
    ) -> Self {
        Self {
            console: arbiter_console::Console::new(decider.app().clone(), tls),
            decider,
            default_privilege,
            scheme: if tls { "https" } else { "http" },
            budget,
            idempotency: idempotency::Idempotency::default(),
        }
    }
}

/// Serves the door on `listener` until the task is aborted; with `tls`, every
/// connection completes a TLS handshake first (its client certificate, if any, is a
/// caller identity).
pub async fn serve(listener: TcpListener, tls: Option<Arc<Acceptor>>, door: Arc<Door>) {
    loop {
        let Ok((tcp, addr)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (door, tls) = (door.clone(), tls.clone());
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let certificate = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(arbiter_tls::certificate_of);
                    handler::connection(stream, peer(addr, certificate), door).await;
                }
                None => handler::connection(tcp, peer(addr, None), door).await,
            }
        });
    }
}

fn peer(
    addr: SocketAddr,
    certificate: Option<arbiter_service::auth::PeerCertificate>,
) -> arbiter_service::auth::Peer {
    arbiter_service::auth::Peer {
        door: "http",
        addr: Some(addr),
        certificate,
    }
}
