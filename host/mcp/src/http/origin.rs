//! The `Origin` check of Streamable HTTP: browsers send `Origin`, and a page on
//! another site must not reach the gateway through DNS rebinding.

use http::header;

/// The host of a URL or `Host` header value, without port or scheme.
fn host_of(v: &str) -> &str {
    let rest = v.split_once("://").map_or(v, |(_, r)| r);
    let rest = rest.split('/').next().unwrap_or(rest);
    if rest.starts_with('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| &h[1..]);
    }
    rest.rsplit_once(':').map_or(rest, |(h, _)| h)
}

/// A request with no `Origin` (not a browser) or one from loopback or from the host
/// it addressed.
pub(super) fn allowed(h: &http::HeaderMap) -> bool {
    let Some(origin) = h.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let o = host_of(origin);
    if matches!(o, "localhost" | "127.0.0.1" | "::1") {
        return true;
    }
    h.get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|host| host_of(host).eq_ignore_ascii_case(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_loopback_or_same_host_origins_may_call() {
        assert!(allowed(&headers(&[])));
        assert!(allowed(&headers(&[("origin", "http://localhost:3000")])));
        assert!(allowed(&headers(&[("origin", "http://[::1]:8080")])));
        assert!(allowed(&headers(&[
            ("origin", "https://gw.acme.org"),
            ("host", "gw.acme.org:8282")
        ])));
        assert!(!allowed(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8282")
        ])));
        assert!(!allowed(&headers(&[("origin", "null")])));
    }
}
