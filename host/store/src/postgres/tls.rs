//! TLS to the database: libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` URL
//! parameters, over rustls with ring (the stack of every other Arbiter connection; no
//! OpenSSL). tokio-postgres knows `sslmode` only up to `require`, so the parameters
//! are read here and tokio-postgres is told whether TLS is required.
//!
//! What each mode checks is libpq's:
//!
//! | `sslmode` | TLS | server certificate |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (default) | when the server offers it | chain to `sslrootcert` if given |
//! | `require` | always | chain to `sslrootcert` if given, else not checked |
//! | `verify-ca` | always | chain to `sslrootcert` (required) |
//! | `verify-full` | always | chain to `sslrootcert` (required) and the host name |
//!
//! Unlike libpq, a `prefer` connection whose certificate is refused is not retried in
//! plaintext: it fails. Files are read once, when the store opens, so a missing or
//! malformed one stops the start with its name. Channel binding
//! (`SCRAM-SHA-256-PLUS`) is not offered: SCRAM-SHA-256 without it is what the server
//! then uses.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::StoreError;

#[cfg(test)]
mod tests;

/// The URL parameters read here rather than by tokio-postgres.
pub(crate) const PARAMS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// The ALPN protocol PostgreSQL 17 asks of direct TLS connections
/// (`sslnegotiation=direct`); older servers ignore it.
const ALPN: &[u8] = b"postgresql";

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The connector for the URL's TLS `params` (from [`super::url::split_params`]); sets
/// on `pg` whether TLS is off, preferred or required.
pub(crate) fn connector(
    params: &[(String, String)],
    pg: &mut tokio_postgres::Config,
) -> Result<MakeRustls, StoreError> {
    // As in libpq, a parameter given twice counts with its last value.
    let param = |k: &str| {
        params
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let mode = match param("sslmode").unwrap_or("prefer") {
        "disable" => Mode::Disable,
        "prefer" => Mode::Prefer,
        "require" => Mode::Require,
        "verify-ca" => Mode::VerifyCa,
        "verify-full" => Mode::VerifyFull,
        other => {
            return Err(StoreError::Tls(format!(
                "sslmode `{other}` is not supported: use disable, prefer, require, verify-ca or verify-full"
            )));
        }
    };
    pg.ssl_mode(match mode {
        Mode::Disable => SslMode::Disable,
        // A CA given is a wish to check the server: a connection that declined TLS
        // could not honour it, so TLS is required then.
        Mode::Prefer if param("sslrootcert").is_none() => SslMode::Prefer,
        Mode::Prefer | Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    });
    let trust = match (mode, param("sslrootcert")) {
        // Never used: tokio-postgres does not start TLS.
        (Mode::Disable, _) => Trust::Any,
        (_, Some("system")) => {
            return Err(StoreError::Tls(
                "sslrootcert=system is not supported: give the PEM file of the CA that signed the database server's certificate".into(),
            ));
        }
        (Mode::VerifyCa | Mode::VerifyFull, None) => {
            return Err(StoreError::Tls(format!(
                "sslmode={} needs sslrootcert=PATH, the PEM file of the CA that signed the database server's certificate",
                if mode == Mode::VerifyCa {
                    "verify-ca"
                } else {
                    "verify-full"
                }
            )));
        }
        (Mode::Prefer | Mode::Require, None) => Trust::Any,
        (_, Some(file)) => Trust::Chain {
            roots: arbiter_tls::client_roots("database CA (sslrootcert)", Path::new(file))
                .map_err(StoreError::TlsFile)?,
            file: PathBuf::from(file),
            name: mode == Mode::VerifyFull,
        },
    };
    let client = match (param("sslcert"), param("sslkey")) {
        _ if mode == Mode::Disable => None,
        (None, None) => None,
        (Some(cert), Some(key)) => Some((
            arbiter_tls::certificates("database client certificate (sslcert)", Path::new(cert))
                .map_err(StoreError::TlsFile)?,
            arbiter_tls::private_key("database client key (sslkey)", Path::new(key))
                .map_err(StoreError::TlsFile)?,
            (cert, key),
        )),
        (Some(_), None) | (None, Some(_)) => {
            return Err(StoreError::Tls(
                "sslcert and sslkey go together: give both (the client certificate's PEM and its key's) or neither".into(),
            ));
        }
    };
    let provider = Arc::new(arbiter_tls::provider());
    let verifier = Arc::new(Verifier {
        algorithms: provider.signature_verification_algorithms,
        trust,
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some((chain, key, (cert_file, key_file))) => {
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                StoreError::Tls(format!(
                    "the client key sslkey `{key_file}` does not fit the certificate sslcert `{cert_file}` ({e})"
                ))
            })?
        }
    };
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(MakeRustls {
        config: Arc::new(config),
    })
}

/// What a server certificate must be.
#[derive(Debug)]
enum Trust {
    /// Anything (`prefer` and `require` without `sslrootcert`): encrypted, not
    /// authenticated.
    Any,
    /// Signed through a CA of `file`; for `verify-full`, also valid for the host name.
    Chain {
        roots: RootCertStore,
        file: PathBuf,
        name: bool,
    },
}

/// Checks the server's certificate as [`Trust`] says; the handshake's signatures are
/// always checked (by the certificate's key, whether or not it is trusted).
#[derive(Debug)]
struct Verifier {
    trust: Trust,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Trust::Chain { roots, file, name } = &self.trust else {
            return Ok(ServerCertVerified::assertion());
        };
        let checked = ParsedCertificate::try_from(end_entity).and_then(|cert| {
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
            if *name {
                verify_server_name(&cert, server_name)?;
            }
            Ok(())
        });
        // The rustls error alone does not say which CA file was used.
        checked.map(|()| ServerCertVerified::assertion()).map_err(|e| {
            rustls::Error::General(format!(
                "the database server's certificate is refused (checked against sslrootcert `{}`{}): {e}",
                file.display(),
                if *name { " and the host name" } else { "" }
            ))
        })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// tokio-postgres's TLS hook over tokio-rustls.
#[derive(Clone)]
pub(crate) struct MakeRustls {
    config: Arc<ClientConfig>,
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> Result<RustlsConnect, io::Error> {
        // Asked for every connection, Unix sockets (no host, no TLS) included: a host
        // that cannot be a TLS name fails only if TLS is started.
        Ok(RustlsConnect {
            config: self.config.clone(),
            name: ServerName::try_from(host.to_string()).map_err(|_| host.to_string()),
        })
    }
}

/// One handshake, with the name the certificate must be valid for.
pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: Result<ServerName<'static>, String>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = self.name.map_err(|host| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("`{host}` is not a host name or IP address TLS can check"),
                )
            })?;
            let tls = tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await?;
            Ok(RustlsStream(tls))
        })
    }
}

/// A TLS connection to the database.
pub(crate) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}
