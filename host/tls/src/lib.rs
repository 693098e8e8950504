//! TLS for every Arbiter listener (gRPC, metrics, the HTTP doors).
//!
//! - [`Acceptor`] holds a rustls server config built from PEM files: the certificate
//!   chain, its key and, for mutual TLS, the CA that client certificates must chain
//!   to. [`Acceptor::reload`] re-reads the files and swaps the config in when their
//!   bytes changed, so certificates that rotate (SPIFFE SVIDs rotate hourly) are
//!   served to new connections without a restart; connections already open keep the
//!   session they have. A reload that fails keeps the old config, logs why and tells
//!   the [`Observer`].
//! - [`Acceptor::accept`] completes one handshake, with a deadline. A refused
//!   handshake (expired, not yet valid or wrong-CA certificate, no certificate where
//!   one is required, a plaintext client) is logged with its reason and counted by
//!   the [`Observer`]. The caller runs each handshake in its own task, so a slow or
//!   hostile client never holds up the others.
//! - [`identity_of`] reads the identity a verified client certificate proves: its
//!   SPIFFE ID (the one `spiffe://` URI SAN), else its subject.
//!
//! Certificate validation itself is rustls's and webpki's: chain to the configured
//! CA, validity period, key usage, signature. This crate only wires it.

mod identity;
mod load;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

pub use identity::{certificate_of, identity_of};
pub use load::{TlsError, certificates, client_roots, private_key, provider};
pub use rustls_pki_types::CertificateDer;

/// How long a client has to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often [`Acceptor::spawn_reloader`] looks at the files.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// Whether a listener asks clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificates (callers prove who they are with tokens).
    #[default]
    None,
    /// A client may present a certificate from the client CA; one that does is
    /// verified, one that does not may still call with a token.
    Optional,
    /// Every client must present a valid certificate from the client CA.
    Required,
}

impl ClientAuth {
    /// Parses a config value: `none`, `optional`, `required`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "optional" => Some(Self::Optional),
            "required" => Some(Self::Required),
            _ => None,
        }
    }

    /// The config value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

/// The files a listener's TLS is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates that client certificates must chain to.
    pub client_ca: Option<PathBuf>,
    /// Whether clients are asked for a certificate (needs `client_ca`).
    pub client_auth: ClientAuth,
}

/// Why a handshake was refused, as counted in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client certificate's validity period has ended.
    Expired,
    /// The client certificate is not valid yet.
    NotYetValid,
    /// The client certificate does not chain to the client CA.
    UnknownCa,
    /// A certificate is required and none was presented.
    NoCertificate,
    /// Another certificate problem (bad signature, wrong key usage, revoked...).
    BadCertificate,
    /// The client did not speak TLS (a plaintext client on a TLS port).
    NotTls,
    /// The client did not finish its handshake in time.
    Timeout,
    /// Anything else (no common protocol version or cipher suite, a reset...).
    Other,
}

impl Refusal {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::NotYetValid => "not-yet-valid",
            Self::UnknownCa => "unknown-ca",
            Self::NoCertificate => "no-client-certificate",
            Self::BadCertificate => "bad-certificate",
            Self::NotTls => "not-tls",
            Self::Timeout => "timeout",
            Self::Other => "other",
        }
    }

    fn of(e: &io::Error) -> Self {
        use rustls::{CertificateError as C, Error as E};
        let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<E>()) else {
            return Self::Other;
        };
        match tls {
            E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => Self::Expired,
            E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
                Self::NotYetValid
            }
            E::InvalidCertificate(C::UnknownIssuer) => Self::UnknownCa,
            E::InvalidCertificate(_) => Self::BadCertificate,
            E::NoCertificatesPresented => Self::NoCertificate,
            E::InvalidMessage(_) => Self::NotTls,
            _ => Self::Other,
        }
    }
}

/// Told about reloads and refused handshakes (the server's metrics).
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// A reload of `listener`'s files succeeded (`true`) or failed and the old
    /// certificate is still served (`false`).
    fn reloaded(&self, listener: &'static str, ok: bool);
    /// A handshake on `listener` was refused.
    fn refused(&self, listener: &'static str, why: Refusal);
}

/// An [`Observer`] that only logs (tests, clients).
#[derive(Debug, Default)]
pub struct LogOnly;

impl Observer for LogOnly {
    fn reloaded(&self, _: &'static str, _: bool) {}
    fn refused(&self, _: &'static str, _: Refusal) {}
}

/// A TLS server config that follows its files.
#[derive(Debug)]
pub struct Acceptor {
    listener: &'static str,
    files: ServerFiles,
    alpn: Vec<Vec<u8>>,
    current: ArcSwap<load::Loaded>,
    observer: Arc<dyn Observer>,
}

impl Acceptor {
    /// Builds the config of `listener` (a name for logs and metrics: `grpc`,
    /// `metrics`, `http`) from `files`, offering the ALPN protocols `alpn` (`h2` for
    /// gRPC, `http/1.1` for HTTP/1). Fails, naming the file, if any cannot be read or
    /// used.
    pub fn new(
        listener: &'static str,
        files: ServerFiles,
        alpn: &[&[u8]],
        observer: Arc<dyn Observer>,
    ) -> Result<Self, TlsError> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let loaded = load::Loaded::read(&files, &alpn)?;
        Ok(Self {
            listener,
            files,
            alpn,
            current: ArcSwap::from_pointee(loaded),
            observer,
        })
    }

    /// The config new connections get.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.current.load().config.clone()
    }

    /// The SHA-256 of the files the current config was built from (it changes when a
    /// reload took).
    pub fn fingerprint(&self) -> [u8; 32] {
        self.current.load().digest
    }

    /// Re-reads the files; swaps the config in when they changed. `Ok(true)` when a
    /// new config is served from now on; on an error the old one still is.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let digest = match load::digest_of(&self.files) {
            Ok(d) => d,
            Err(e) => return Err(self.failed(e)),
        };
        if digest == self.current.load().digest {
            return Ok(false);
        }
        match load::Loaded::read(&self.files, &self.alpn) {
            Ok(loaded) => {
                self.current.store(Arc::new(loaded));
                self.observer.reloaded(self.listener, true);
                tracing::info!(listener = self.listener, cert = %self.files.cert.display(), "TLS certificate reloaded; new connections get it");
                Ok(true)
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    fn failed(&self, e: TlsError) -> TlsError {
        self.observer.reloaded(self.listener, false);
        tracing::error!(listener = self.listener, error = %e, "TLS files changed but cannot be used; still serving the previous certificate");
        e
    }

    /// Calls [`Acceptor::reload`] every `every` until the task is aborted.
    pub fn spawn_reloader(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                // Errors are logged and counted by `reload`.
                let _ = me.reload();
            }
        })
    }

    /// Completes the handshake of one accepted connection, within
    /// [`HANDSHAKE_TIMEOUT`]; a refusal is logged and counted.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        let peer = tcp.peer_addr().ok();
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config());
        let result = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the TLS handshake did not finish in time",
            )),
        };
        if let Err(e) = &result {
            let why = if e.kind() == io::ErrorKind::TimedOut {
                Refusal::Timeout
            } else {
                Refusal::of(e)
            };
            self.observer.refused(self.listener, why);
            tracing::warn!(listener = self.listener, peer = ?peer, reason = why.as_str(), error = %e, "TLS handshake refused");
        }
        result
    }
}
