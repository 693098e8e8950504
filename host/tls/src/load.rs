//! Reading PEM files into a rustls server config, with errors that name the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};

use crate::{ClientAuth, ServerFiles};

/// A TLS file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read the TLS {what} `{path}`: {source}")]
    Read {
        /// `certificate`, `key`, `client CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds nothing usable of what it should.
    #[error("the TLS {what} `{path}` {problem}")]
    Invalid {
        /// `certificate`, `key`, `client CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong, with a hint.
        problem: String,
    },
    /// The settings do not fit together.
    #[error("TLS settings: {0}")]
    Settings(String),
}

/// A built config and the digest of the files it came from.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) config: Arc<rustls::ServerConfig>,
    pub(crate) digest: [u8; 32],
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// The SHA-256 over every file's bytes, in a fixed order.
pub(crate) fn digest_of(files: &ServerFiles) -> Result<[u8; 32], TlsError> {
    let mut h = Sha256::new();
    for (what, path) in paths(files) {
        let bytes = read(what, path)?;
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().into())
}

fn paths(files: &ServerFiles) -> Vec<(&'static str, &Path)> {
    let mut v = vec![
        ("certificate", files.cert.as_path()),
        ("key", files.key.as_path()),
    ];
    if let Some(ca) = &files.client_ca {
        v.push(("client CA", ca.as_path()));
    }
    v
}

/// The certificates of a PEM file, in order (a chain: the leaf first); none is an error.
pub fn certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(what, path)?;
    let invalid = |problem: String| TlsError::Invalid {
        what,
        path: path.to_path_buf(),
        problem,
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("is not valid PEM ({e})")))?;
    if certs.is_empty() {
        return Err(invalid(
            "holds no `-----BEGIN CERTIFICATE-----` block; give a PEM certificate file".into(),
        ));
    }
    Ok(certs)
}

/// The CA certificates of a PEM file as a root store (servers verifying clients,
/// clients verifying servers).
pub fn client_roots(what: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(what, path)? {
        roots.add(cert).map_err(|e| TlsError::Invalid {
            what,
            path: path.to_path_buf(),
            problem: format!("holds a certificate that cannot be a trust anchor ({e})"),
        })?;
    }
    Ok(roots)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(what, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Invalid {
        what,
        path: path.to_path_buf(),
        problem: format!(
            "holds no usable private key ({e}); give a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`"
        ),
    })
}

/// The crypto provider: ring, which builds with the C compiler every machine here has
/// (aws-lc-rs needs cmake) and is what tonic's `tls-ring` uses on the client side.
/// rustls 0.23.48 deprecates it for lacking post-quantum key exchange; the classical
/// suites it offers are the ones every enforcement point speaks today.
#[allow(deprecated)]
pub fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

impl Loaded {
    /// Reads and builds; the digest is of the bytes actually used.
    pub(crate) fn read(files: &ServerFiles, alpn: &[Vec<u8>]) -> Result<Self, TlsError> {
        let digest = digest_of(files)?;
        let chain = certificates("certificate", &files.cert)?;
        let key = private_key("key", &files.key)?;
        let provider = Arc::new(provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Settings(e.to_string()))?;
        let builder = match (&files.client_ca, files.client_auth) {
            (_, ClientAuth::None) => builder.with_no_client_auth(),
            (None, _) => {
                return Err(TlsError::Settings(format!(
                    "client_auth = \"{}\" needs a client CA (`--tls-client-ca FILE`, [tls] client_ca)",
                    files.client_auth.as_str()
                )));
            }
            (Some(ca), auth) => {
                let roots = client_roots("client CA", ca)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if auth == ClientAuth::Optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier.build().map_err(|e| TlsError::Invalid {
                    what: "client CA",
                    path: ca.clone(),
                    problem: format!("cannot verify clients ({e})"),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Invalid {
                what: "key",
                path: files.key.clone(),
                problem: format!(
                    "does not fit the certificate `{}` ({e})",
                    files.cert.display()
                ),
            })?;
        config.alpn_protocols = alpn.to_vec();
        Ok(Self {
            config: Arc::new(config),
            digest,
        })
    }
}
