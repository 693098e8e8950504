//! `[tls]`, `[[auth.peers]]`, `[[auth.groups]]` and the plaintext rule: from raw to
//! resolved.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use arbiter_service::auth::{PeerConfig, PeerRule};
use arbiter_tls::{ClientAuth, ServerFiles};
use serde::Deserialize;

/// `[tls]`: the certificate every listener serves, and client certificates.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// PEM CA certificates client certificates must chain to (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// `required` or `optional` (default with a client CA: `required`); `none`.
    pub client_auth: Option<String>,
    /// Serve the metrics endpoint over plain HTTP even though TLS is on (it carries
    /// no secrets; a scraper without the CA can then still read it).
    pub metrics_plaintext: Option<bool>,
}

/// TLS flags of `arbiter serve`.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct TlsArgs {
    /// PEM certificate (chain) to serve over TLS on every listener.
    #[arg(
        long,
        env = "ARBITER_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(
        long,
        env = "ARBITER_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// PEM CA that client certificates must chain to (mutual TLS).
    #[arg(long, env = "ARBITER_TLS_CLIENT_CA", value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// Whether gRPC clients must present a certificate: `required` (the default with
    /// a client CA), `optional` or `none`.
    #[arg(long, env = "ARBITER_TLS_CLIENT_AUTH", value_name = "MODE")]
    pub tls_client_auth: Option<String>,
    /// Allow serving plaintext on a non-loopback address (tokens then cross the
    /// network in the clear; only behind a proxy on the same host).
    #[arg(long, env = "ARBITER_INSECURE_PLAINTEXT")]
    pub insecure_plaintext: bool,
}

/// Resolved TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// What the gRPC listener serves and asks of clients.
    pub grpc: ServerFiles,
    /// Whether the metrics endpoint stays plain HTTP.
    pub metrics_plaintext: bool,
}

impl TlsSettings {
    /// The metrics listener's files: the same certificate, no client certificates.
    pub fn metrics(&self) -> Option<ServerFiles> {
        (!self.metrics_plaintext).then(|| ServerFiles {
            client_ca: None,
            client_auth: ClientAuth::None,
            ..self.grpc.clone()
        })
    }
}

/// Flags beat the file; paths in the file are relative to it.
pub(super) fn tls_settings(
    raw: Option<RawTls>,
    args: &TlsArgs,
    base: Option<&Path>,
) -> anyhow::Result<Option<TlsSettings>> {
    let raw = raw.unwrap_or_default();
    let relative = |p: PathBuf| base.map_or(p.clone(), |b| b.join(&p));
    let cert = args.tls_cert.clone().or(raw.cert.map(relative));
    let key = args.tls_key.clone().or(raw.key.map(relative));
    let client_ca = args.tls_client_ca.clone().or(raw.client_ca.map(relative));
    let client_auth = match args
        .tls_client_auth
        .as_deref()
        .or(raw.client_auth.as_deref())
    {
        None if client_ca.is_some() => ClientAuth::Required,
        None => ClientAuth::None,
        Some(text) => ClientAuth::parse(text).ok_or_else(|| {
            anyhow::anyhow!("TLS client_auth `{text}` is not `required`, `optional` or `none`")
        })?,
    };
    let (cert, key) = match (cert, key) {
        (Some(c), Some(k)) => (c, k),
        (None, None) => {
            if client_ca.is_some() || client_auth != ClientAuth::None {
                anyhow::bail!(
                    "client certificates need TLS: give `--tls-cert FILE --tls-key FILE` ([tls] cert, key) too"
                );
            }
            return Ok(None);
        }
        _ => anyhow::bail!("TLS needs both a certificate and its key: [tls] cert and key"),
    };
    if client_auth == ClientAuth::None && client_ca.is_some() {
        anyhow::bail!(
            "TLS client_auth = \"none\" with a client CA: the CA would be ignored; use \"required\" or \"optional\", or drop client_ca"
        );
    }
    if client_auth != ClientAuth::None && client_ca.is_none() {
        anyhow::bail!(
            "TLS client_auth = \"{}\" needs a client CA: `--tls-client-ca FILE` ([tls] client_ca)",
            client_auth.as_str()
        );
    }
    Ok(Some(TlsSettings {
        grpc: ServerFiles {
            cert,
            key,
            client_ca,
            client_auth,
        },
        metrics_plaintext: raw.metrics_plaintext.unwrap_or(false),
    }))
}

/// Validates `[[auth.peers]]`.
pub(super) fn peer_rules(peers: &[PeerConfig]) -> anyhow::Result<Vec<PeerRule>> {
    peers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            p.rule()
                .map_err(|e| anyhow::anyhow!("config [[auth.peers]] entry {}: {e}", i + 1))
        })
        .collect()
}

/// A listener on a non-loopback address serves TLS, or the operator said otherwise.
pub(super) fn check_plaintext(
    what: &str,
    addr: SocketAddr,
    tls: bool,
    insecure_plaintext: bool,
) -> anyhow::Result<()> {
    if tls || insecure_plaintext || addr.ip().is_loopback() {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to serve {what} in plaintext on {addr}, which is not a loopback address: bearer tokens would cross the network in the clear\nhint: give `--tls-cert FILE --tls-key FILE` ([tls] cert, key), or `--insecure-plaintext` if a TLS proxy on this host is in front"
    )
}

/// `[connections]`: what one client may hold of the gRPC listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnections {
    /// Concurrent streams (calls) per connection (HTTP/2 `MAX_CONCURRENT_STREAMS`).
    pub max_streams: Option<u32>,
    /// Open connections per peer address.
    pub max_per_peer: Option<usize>,
    /// Whether loopback peers are held to `max_per_peer` too (default: no).
    pub limit_loopback: Option<bool>,
    /// MiB of request bodies the whole server holds at once (default: an eighth of
    /// the memory it may use, 64 to 1024 MiB).
    pub request_mib_in_flight: Option<usize>,
}

/// Resolved `[connections]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Concurrent streams per connection.
    pub max_streams: u32,
    /// Open connections per peer address.
    pub max_per_peer: usize,
    /// Loopback peers are not counted.
    pub exempt_loopback: bool,
    /// Bytes of request bodies held at once, server-wide.
    pub request_bytes_in_flight: usize,
}

pub(super) fn connection_limits(raw: Option<RawConnections>) -> anyhow::Result<ConnectionLimits> {
    let raw = raw.unwrap_or_default();
    let max_streams = raw.max_streams.unwrap_or(128);
    if !(1..=10_000).contains(&max_streams) {
        anyhow::bail!(
            "config [connections] max_streams = {max_streams} is out of range: use 1 to 10000"
        );
    }
    let max_per_peer = raw.max_per_peer.unwrap_or(64);
    if !(1..=100_000).contains(&max_per_peer) {
        anyhow::bail!(
            "config [connections] max_per_peer = {max_per_peer} is out of range: use 1 to 100000"
        );
    }
    let mib = match raw.request_mib_in_flight {
        Some(m) if (arbiter_grpc::gate::MIN_BUDGET_MIB..=65_536).contains(&m) => m,
        Some(m) => anyhow::bail!(
            "config [connections] request_mib_in_flight = {m} is out of range: use {} to 65536 (an admin upload may be 64 MiB and a decision request 16 MiB; each must fit)",
            arbiter_grpc::gate::MIN_BUDGET_MIB
        ),
        None => arbiter_grpc::gate::Budget::default_mib(),
    };
    Ok(ConnectionLimits {
        max_streams,
        max_per_peer,
        exempt_loopback: !raw.limit_loopback.unwrap_or(false),
        request_bytes_in_flight: mib << 20,
    })
}

/// `[[trusted_key]]`: a bundle-signing key trusted only for some set names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopedKey {
    /// The public key (PEM), relative to the config file.
    pub path: PathBuf,
    /// Set names it may sign; `pci-*` matches every name starting with `pci-`.
    pub sets: Vec<String>,
}

pub(super) fn scoped_keys(
    keys: Vec<ScopedKey>,
    relative: &dyn Fn(PathBuf) -> PathBuf,
) -> anyhow::Result<Vec<(PathBuf, Vec<String>)>> {
    keys.into_iter()
        .map(|k| {
            if k.sets.is_empty() || k.sets.iter().any(|s| s.is_empty() || s == "*") {
                anyhow::bail!(
                    "config [[trusted_key]] `{}`: `sets` must name the sets it may sign (for any set, list it under trusted_keys instead)",
                    k.path.display()
                );
            }
            Ok((relative(k.path), k.sets))
        })
        .collect()
}
