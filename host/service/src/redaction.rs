//! What the audit log must not say in clear (`[audit] redact`), for every record kind.
//!
//! A redacted field is replaced by `[redacted]`. The digest that names the request in
//! a record is then keyed (HMAC-SHA256 with the redaction key) instead of a plain
//! SHA-256: a plain digest of the unredacted request let anyone holding the log recover
//! a redacted value by trying candidates (an IPv4 address took 0.2 s). The key lives
//! with the server's other keys (`<data_dir>/keys/redaction.key`, owner-only), or, with
//! `[credentials] key_secret_file`, is derived from that secret, so replicas sharing
//! it produce the same digests.

use std::path::Path;

use arbiter_core::Request;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::records::REDACTED;

/// The redaction of one server: field paths and the key.
#[derive(Clone)]
pub struct Redaction {
    paths: Vec<String>,
    key: [u8; 32],
}

impl std::fmt::Debug for Redaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Redaction")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl Redaction {
    /// Nothing redacted.
    pub fn none() -> Self {
        Self {
            paths: Vec::new(),
            key: [0; 32],
        }
    }

    /// Redacts `paths` (e.g. `context.source_ip`, `principal`), keying digests with
    /// `key`.
    pub fn new(paths: Vec<String>, key: [u8; 32]) -> Self {
        Self { paths, key }
    }

    /// The configured paths.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// Whether nothing is redacted.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Whether `field` (e.g. `principal.id`) is redacted, itself or through a parent
    /// (`principal`).
    pub fn covers(&self, field: &str) -> bool {
        self.paths.iter().any(|p| {
            field == p
                || field
                    .strip_prefix(p.as_str())
                    .is_some_and(|r| r.starts_with('.'))
        })
    }

    /// `value` of `field`, or `[redacted]`.
    pub fn shown<'a>(&self, field: &str, value: &'a str) -> &'a str {
        if self.covers(field) { REDACTED } else { value }
    }

    /// The digest that names `request` in records: its SHA-256 when nothing is
    /// redacted (as approvals are bound to it), else `hmac-sha256:` and the keyed
    /// digest.
    pub fn request_digest(&self, request: &Request) -> String {
        if self.is_empty() {
            return hex::encode(request.digest());
        }
        let canonical = serde_json::to_vec(request).unwrap_or_default();
        self.keyed(&canonical)
    }

    /// A digest already computed (e.g. an approval's binding digest), keyed when
    /// anything is redacted.
    pub fn digest_of_digest(&self, digest: &str) -> String {
        if self.is_empty() {
            digest.to_string()
        } else {
            self.keyed(digest.as_bytes())
        }
    }

    fn keyed(&self, bytes: &[u8]) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            // HMAC takes keys of any length; this cannot happen.
            return String::from("hmac-sha256:unavailable");
        };
        mac.update(bytes);
        format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// The redaction key in `keys_dir` (`redaction.key`, 32 random bytes written
    /// owner-only on first use).
    pub fn load_key(keys_dir: &Path) -> std::io::Result<[u8; 32]> {
        let path = keys_dir.join("redaction.key");
        match std::fs::read(&path) {
            Ok(bytes) => bytes.try_into().map_err(|_| {
                std::io::Error::other(format!(
                    "`{}` is not a 32-byte redaction key; restore it from a backup (digests in the audit log were keyed with it)",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
                arbiter_runtime::create_private_dir(keys_dir)?;
                let mut open = std::fs::OpenOptions::new();
                open.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
                std::io::Write::write_all(&mut open.open(&path)?, &key)?;
                Ok(key)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ip: &str) -> Request {
        serde_json::from_value(serde_json::json!({
            "principal": {"id": "a", "kind": "agent"},
            "action": {"name": "x", "privilege": "read"},
            "context": {"source_ip": ip}
        }))
        .expect("request")
    }

    #[test]
    fn a_redacted_request_is_named_by_a_keyed_digest() {
        let plain = Redaction::none();
        let r = request("10.0.0.7");
        assert_eq!(plain.request_digest(&r), hex::encode(r.digest()));
        let red = Redaction::new(vec!["context.source_ip".into()], [7; 32]);
        let d = red.request_digest(&r);
        assert!(d.starts_with("hmac-sha256:"), "{d}");
        assert_ne!(d, red.request_digest(&request("10.0.0.8")));
        // Without the key, trying candidates finds nothing.
        let other_key = Redaction::new(vec!["context.source_ip".into()], [8; 32]);
        assert_ne!(d, other_key.request_digest(&r));
        assert!(red.covers("context.source_ip"));
        assert!(!red.covers("context.source"));
        let whole = Redaction::new(vec!["principal".into()], [7; 32]);
        assert!(whole.covers("principal.id"));
        assert_eq!(whole.shown("principal.id", "alice"), REDACTED);
        assert_eq!(whole.shown("delegation", "bob"), "bob");
    }

    #[test]
    fn the_key_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let k1 = Redaction::load_key(dir.path()).expect("made");
        let k2 = Redaction::load_key(dir.path()).expect("read");
        assert_eq!(k1, k2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("redaction.key"))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        std::fs::write(dir.path().join("redaction.key"), b"short").expect("corrupt");
        assert!(Redaction::load_key(dir.path()).is_err());
    }
}
