//! One POST to a receiver: a fresh connection (TLS verified against the web roots or
//! the webhook's CA), HTTP/1.1, the whole attempt under one deadline. No pool: a few
//! notices a minute do not need one, and a fresh connection never reuses a dead one.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::settings::{Target, Webhook};

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// No TCP connection (refused, unreachable, name not found).
    #[error("cannot connect")]
    Connect(#[source] std::io::Error),
    /// The TLS handshake failed (certificate not trusted, wrong name, protocol).
    #[error("TLS handshake failed")]
    Tls(#[source] std::io::Error),
    /// The attempt did not finish in time.
    #[error("no answer within the timeout")]
    Timeout,
    /// The receiver answered with a status other than 2xx.
    #[error("the receiver answered {status}")]
    Status {
        /// The status.
        status: u16,
        /// Its `Retry-After`, in seconds, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The HTTP exchange broke off.
    #[error("HTTP exchange failed")]
    Protocol(#[source] hyper::Error),
    /// The request could not be put together (a bug: its parts were checked when the
    /// settings were read).
    #[error("cannot build the request")]
    Request(#[source] http::Error),
}

impl Failure {
    /// The `reason` label of `arbiter_webhook_failures_total`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Tls(_) => "tls",
            Self::Timeout => "timeout",
            Self::Status { status, .. } if *status >= 500 => "status-5xx",
            Self::Status { .. } => "status-4xx",
            Self::Protocol(_) => "protocol",
            Self::Request(_) => "request",
        }
    }

    /// Whether trying again cannot help: the receiver refused this notice (4xx other
    /// than timeout, too early and too many requests), or its certificate is not
    /// trusted (the operator must fix the CA or the URL).
    pub(crate) fn permanent(&self) -> bool {
        match self {
            Self::Status { status, .. } => {
                (400..500).contains(status) && !matches!(status, 408 | 425 | 429)
            }
            Self::Tls(_) | Self::Request(_) => true,
            Self::Connect(_) | Self::Timeout | Self::Protocol(_) => false,
        }
    }

    /// How long the receiver asked to be left alone.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Posts to one webhook.
#[derive(Clone)]
pub(crate) struct Client {
    target: Target,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.target)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// TLS for a webhook cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The host is not a name TLS can verify.
    #[error("webhook `{webhook}`: `{host}` is not a valid TLS server name")]
    ServerName {
        /// The webhook.
        webhook: String,
        /// Its host.
        host: String,
    },
    /// A CA certificate of `ca_file` is unusable, or rustls refused the settings.
    #[error("webhook `{webhook}`: cannot set up TLS")]
    Tls {
        /// The webhook.
        webhook: String,
        /// Why.
        #[source]
        source: rustls::Error,
    },
}

impl Client {
    /// A client for `hook`, its TLS set up.
    pub(crate) fn new(hook: &Webhook) -> Result<Self, ClientError> {
        let tls = if hook.target.tls {
            let tls_error = |source| ClientError::Tls {
                webhook: hook.name.clone(),
                source,
            };
            let mut roots = rustls::RootCertStore::empty();
            match &hook.ca {
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
                Some(certs) => {
                    for c in certs {
                        roots.add(c.clone()).map_err(tls_error)?;
                    }
                }
            }
            let provider = Arc::new(provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(tls_error)?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = ServerName::try_from(hook.target.host.clone()).map_err(|_| {
                ClientError::ServerName {
                    webhook: hook.name.clone(),
                    host: hook.target.host.clone(),
                }
            })?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Self {
            target: hook.target.clone(),
            tls,
            timeout: hook.timeout,
        })
    }

    /// POSTs `body` with `headers`; `Ok` for a 2xx answer.
    pub(crate) async fn post(
        &self,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<(), Failure> {
        let mut request = http::Request::post(&self.target.path)
            .header(http::header::HOST, &self.target.authority)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("arbiter/", env!("CARGO_PKG_VERSION")),
            )
            .header(http::header::CONNECTION, "close");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(Full::new(body)).map_err(Failure::Request)?;
        let attempt = async {
            let tcp = TcpStream::connect((self.target.host.as_str(), self.target.port))
                .await
                .map_err(Failure::Connect)?;
            let _ = tcp.set_nodelay(true);
            match &self.tls {
                None => exchange(TokioIo::new(tcp), request).await,
                Some((connector, name)) => {
                    let tls = connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(Failure::Tls)?;
                    exchange(TokioIo::new(tls), request).await
                }
            }
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| Failure::Timeout)?
    }
}

/// ring, as every listener of the server uses (`arbiter-tls`): it builds with the C
/// compiler every machine here has.
#[expect(
    deprecated,
    reason = "rustls 0.23.48 deprecates ring's provider for lacking post-quantum key exchange; the classical suites are what webhook receivers speak today"
)]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

async fn exchange<I>(io: I, request: http::Request<Full<Bytes>>) -> Result<(), Failure>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(Failure::Protocol)?;
    // The connection is driven beside the request, and dropped with it.
    let driver = tokio::spawn(connection);
    let answered = sender.send_request(request).await;
    driver.abort();
    let response = answered.map_err(Failure::Protocol)?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Err(Failure::Status {
        status: status.as_u16(),
        retry_after,
    })
}
