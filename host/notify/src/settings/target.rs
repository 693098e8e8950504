//! Where a webhook posts: the URL taken apart once, with the rules for plaintext.

use std::net::IpAddr;

use super::SettingsError;

/// A receiver's URL. `Debug` and `Display` show scheme, host and port only: the path
/// of a chat service's webhook URL is a secret (whoever has it may post).
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://` (or plaintext `http://`).
    pub tls: bool,
    /// The host name or IP address (without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
    /// `Host` header value: the authority as written.
    pub authority: String,
    /// Path and query.
    pub path: String,
}

impl Target {
    /// Parses `url`: `https://` anywhere, `http://` only to loopback unless
    /// `insecure_plaintext`. The error says what is wrong and how to fix it.
    pub fn parse(url: &str, insecure_plaintext: bool) -> Result<Self, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("is not a URL ({e}); e.g. `https://hooks.example/arbiter`"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("must start with `https://` (or `http://` on loopback)".into()),
        };
        let Some(authority) = uri.authority() else {
            return Err("has no host".into());
        };
        if authority.as_str().contains('@') {
            return Err(
                "carries a user name or password; credentials in URLs are not sent (the signature header authenticates notices)"
                    .into(),
            );
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() {
            return Err("has no host".into());
        }
        if !tls && !insecure_plaintext && !is_loopback(&host) {
            return Err(format!(
                "is plain `http://` to `{host}`, which is not loopback: notices would cross the network unencrypted and unauthenticated; use `https://`, or set `insecure_plaintext = true` on this webhook to accept that"
            ));
        }
        Ok(Self {
            tls,
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            authority: authority.as_str().to_string(),
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
            host,
        })
    }
}

/// `localhost`, or an IP address on loopback.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}/…", self.authority)
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({self})")
    }
}

/// The console's base URL, checked: `http(s)://`, no query or fragment, no trailing
/// `/`.
pub(super) fn console_url(url: &str) -> Result<String, SettingsError> {
    let invalid = |problem: &str| SettingsError::Invalid {
        section: "[notifications]".into(),
        key: "console_url",
        problem: format!("`{url}` {problem}; e.g. `https://arbiter.example/console`"),
    };
    let uri: http::Uri = url.parse().map_err(|_| invalid("is not a URL"))?;
    if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.authority().is_none() {
        return Err(invalid("must be an `https://` (or `http://`) URL"));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(invalid(
            "must not carry a query or fragment (approval links are appended to it)",
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}
