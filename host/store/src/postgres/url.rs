//! The database URL and password as operators give them.
//!
//! Operators write libpq's URLs (`postgres://user@host/db?sslmode=verify-full&...`,
//! or `host=... sslmode=...`); tokio-postgres reads most of it, but refuses the TLS
//! parameters it does not know (`sslrootcert`, `sslcert`, `sslkey`, `sslmode` beyond
//! `require`). [`split_params`] takes such parameters out, from either form, and
//! leaves the rest as written for tokio-postgres.

use crate::StoreError;

/// The password in `path` (a mounted secret), without its final newline.
pub(crate) fn read_password(path: &std::path::Path) -> Result<String, StoreError> {
    std::fs::read_to_string(path)
        .map(|p| p.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| {
            StoreError::Unreachable(format!(
                "cannot read the database password file `{}`: {e}",
                path.display()
            ))
        })
}

/// `e` and its causes, each once: tokio-postgres's errors say only their kind
/// ("error performing TLS handshake", "db error") and keep the reason as a cause.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text = format!("{text}: {s}");
        }
        cause = c.source();
    }
    text
}

/// Why the pool gave no connection: the database's reason, without the pool's
/// wrapper ("Error occurred while creating a new object").
pub(crate) fn pool_error(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => with_causes(e),
        e => with_causes(e),
    }
}

/// Parameters that hold secrets: never shown.
const SECRET_PARAMS: [&str; 2] = ["password", "sslpassword"];

/// `url` with any password replaced or left out, for logs and errors. A string that
/// does not parse is not shown at all: it might hold a password anywhere.
pub fn redact_url(url: &str) -> String {
    let Some((url, _)) = try_split_params(url, &SECRET_PARAMS) else {
        return "(a database URL that does not parse)".to_string();
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return url;
    };
    // As tokio-postgres reads it: user and password run to the first `@`, whatever
    // they hold (an unencoded `/` or `?` included).
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => format!("{scheme}://{rest}"),
    }
}

/// `url` without the parameters named in `keys`, and those parameters (key, value),
/// in the order written. Works on both forms: the query of a `postgres://` URL
/// (values percent-decoded) and the `key=value` form (values possibly quoted). A
/// string that does not parse is returned whole, for tokio-postgres to refuse.
pub(crate) fn split_params(url: &str, keys: &[&str]) -> (String, Vec<(String, String)>) {
    try_split_params(url, keys).unwrap_or_else(|| (url.to_string(), Vec::new()))
}

fn try_split_params(url: &str, keys: &[&str]) -> Option<(String, Vec<(String, String)>)> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        split_query(url, keys)
    } else {
        split_key_values(url, keys)
    }
}

fn split_query(url: &str, keys: &[&str]) -> Option<(String, Vec<(String, String)>)> {
    // The query starts after the credentials, which run to the first `@` and may hold
    // a `?` of their own.
    let after = url.find('@').map_or(0, |at| at + 1);
    let Some(q) = url[after..].find('?').map(|i| after + i) else {
        return Some((url.to_string(), Vec::new()));
    };
    let (base, query) = (&url[..q], &url[q + 1..]);
    let (mut kept, mut taken) = (Vec::new(), Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=')?;
        let key = percent_decode(k)?;
        if keys.contains(&key.as_str()) {
            taken.push((key, percent_decode(v)?));
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Some((rest, taken))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// libpq's `key = value` form: values bare or in single quotes, `\` escaping.
fn split_key_values(s: &str, keys: &[&str]) -> Option<(String, Vec<(String, String)>)> {
    let (mut kept, mut taken) = (Vec::new(), Vec::new());
    let mut chars = s.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        chars.next_if(|(_, c)| *c == '=')?;
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        let quoted = chars.next_if(|(_, c)| *c == '\'').is_some();
        loop {
            match chars.next() {
                None if quoted => return None,
                None => break,
                Some((_, '\\')) => value.push(chars.next()?.1),
                Some((_, '\'')) if quoted => break,
                Some((_, c)) if c.is_whitespace() && !quoted => break,
                Some((_, c)) => value.push(c),
            }
        }
        let end = chars.peek().map_or(s.len(), |(i, _)| *i);
        if keys.contains(&key.as_str()) {
            taken.push((key, value));
        } else {
            kept.push(s[start..end].trim_end());
        }
    }
    Some((kept.join(" "), taken))
}
