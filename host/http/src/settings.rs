//! `[http]` and `--http-listen`: the AuthZEN listener's settings, from raw to resolved.

use std::net::SocketAddr;

use arbiter_core::Privilege;
use arbiter_tls::ClientAuth;
use serde::Deserialize;

/// Where `arbiter serve` with no arguments at all serves HTTP.
pub const TOUR_LISTEN: &str = "127.0.0.1:8181";

/// `[http]` as written in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// `IP:port`, or `off`.
    pub listen: Option<String>,
    /// The privilege of actions that declare none (`action.properties.privilege`).
    pub default_privilege: Option<String>,
    /// `required`, `optional` or `none` (default with a client CA: `optional`).
    pub client_auth: Option<String>,
}

/// Resolved `[http]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Where the AuthZEN door listens.
    pub listen: SocketAddr,
    /// The privilege of actions that declare none.
    pub default_privilege: Privilege,
    /// Whether the listener asks clients for certificates (with TLS and a client CA).
    pub client_auth: ClientAuth,
}

/// The flag (`--http-listen`) beats the file; `None` when the listener is off.
pub fn resolve(
    raw: Option<RawHttp>,
    flag: Option<&str>,
    client_ca: bool,
) -> anyhow::Result<Option<HttpSettings>> {
    let raw = raw.unwrap_or_default();
    let Some(text) = flag.or(raw.listen.as_deref()) else {
        return Ok(None);
    };
    if text == "off" {
        return Ok(None);
    }
    let listen = text.parse().map_err(|e| {
        anyhow::anyhow!(
            "HTTP listen address `{text}` is not `IP:port` or `off` ({e}); e.g. {TOUR_LISTEN}"
        )
    })?;
    let default_privilege = match raw.default_privilege.as_deref() {
        None => Privilege::Read,
        Some(p) => serde_json::from_value(serde_json::json!(p)).map_err(|_| {
            anyhow::anyhow!(
                "config [http] default_privilege `{p}` is not read, write, admin, identity-change or secret-access"
            )
        })?,
    };
    let client_auth = match raw.client_auth.as_deref() {
        None if client_ca => ClientAuth::Optional,
        None => ClientAuth::None,
        Some(text) => ClientAuth::parse(text).ok_or_else(|| {
            anyhow::anyhow!("config [http] client_auth `{text}` is not required, optional or none")
        })?,
    };
    if client_auth != ClientAuth::None && !client_ca {
        anyhow::bail!(
            "config [http] client_auth = \"{}\" needs a client CA: [tls] client_ca",
            client_auth.as_str()
        );
    }
    Ok(Some(HttpSettings {
        listen,
        default_privilege,
        client_auth,
    }))
}
