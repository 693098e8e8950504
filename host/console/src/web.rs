//! What every console answer carries (the security headers), cookies, and form bodies.

use std::collections::HashMap;
use std::convert::Infallible;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;

use crate::Answer;

/// The largest form body: a vote's comment (4 KiB, up to three times that once
/// percent-encoded) with room for the other fields; anything larger is not a form
/// the console sent.
pub(crate) const MAX_FORM_BYTES: usize = 16 << 10;

/// Only the console's own files: no inline script or style, no framing, forms post
/// only here.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "arbiter_console";
/// The cookie that ties the sign-in form to the browser that loaded it.
pub(crate) const SIGN_IN_COOKIE: &str = "arbiter_console_signin";

/// Sets the headers every console answer carries.
pub(crate) fn secure(answer: &mut Answer) {
    let h = answer.headers_mut();
    let mut set = |name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set("content-security-policy", CSP);
    set("x-content-type-options", "nosniff");
    set("referrer-policy", "no-referrer");
    set("x-frame-options", "DENY");
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// An answer with `body` of `content_type`.
pub(crate) fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Answer {
    let mut r = Response::new(Full::new(body.into()).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// An HTML page.
pub(crate) fn html(status: StatusCode, page: maud::Markup) -> Answer {
    answer(status, "text/html; charset=utf-8", page.into_string())
}

/// `303 See Other` to `to` (a path of the console's own).
pub(crate) fn see_other(to: &str) -> Answer {
    let mut r = answer(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A `Set-Cookie` value scoped to the console, never readable by script, never sent
/// cross-site; `Secure` when the listener serves TLS. An empty value with age 0
/// removes the cookie.
pub(crate) fn cookie(name: &str, value: &str, max_age_secs: u64, tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The value of cookie `name` in the request, if sent.
pub(crate) fn cookie_of<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Why a form body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormRefused {
    /// Not `application/x-www-form-urlencoded`.
    NotAForm,
    /// Larger than [`MAX_FORM_BYTES`] or cut off.
    TooLarge,
}

impl FormRefused {
    /// The status and the sentence a person reads.
    pub(crate) fn explain(self) -> (StatusCode, String) {
        match self {
            Self::NotAForm => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the console takes forms (application/x-www-form-urlencoded) only".into(),
            ),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a form is at most {MAX_FORM_BYTES} bytes"),
            ),
        }
    }
}

/// The fields of a form body (the last of a repeated name wins).
pub(crate) async fn form(req: Request<Incoming>) -> Result<HashMap<String, String>, FormRefused> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(FormRefused::NotAForm);
    }
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > MAX_FORM_BYTES) {
        return Err(FormRefused::TooLarge);
    }
    let body = Limited::new(req.into_body(), MAX_FORM_BYTES)
        .collect()
        .await
        .map_err(|_| FormRefused::TooLarge)?
        .to_bytes();
    Ok(form_urlencoded::parse(&body).into_owned().collect())
}

/// Compares two secrets in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A new random secret: 32 bytes, hex.
pub(crate) fn secret() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

/// The body type of a streamed answer.
pub(crate) type Chunk = Result<hyper::body::Frame<Bytes>, Infallible>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; arbiter_console=abc; arbiter_console_signin=x"),
        );
        assert_eq!(cookie_of(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie_of(&h, SIGN_IN_COOKIE), Some("x"));
        assert_eq!(cookie_of(&h, "b"), None);
    }

    #[test]
    fn session_cookies_are_http_only_strict_and_secure_under_tls() {
        let c = cookie(SESSION_COOKIE, "v", 60, true);
        let c = c.to_str().unwrap_or_default();
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/console"] {
            assert!(c.contains(part), "{c}");
        }
        let plain = cookie(SESSION_COOKIE, "v", 60, false);
        assert!(!plain.to_str().unwrap_or_default().contains("Secure"));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abcd", "abcd"));
        assert!(!same_secret("abcd", "abce"));
        assert!(!same_secret("abcd", "abc"));
        assert!(!same_secret("", "a"));
    }
}
