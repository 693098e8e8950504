//! `[notifications]` and its `[[notifications.webhooks]]`, from the file as written
//! (unknown keys refused) to validated settings: URLs checked, secrets read from
//! owner-only files, numbers in range.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Deserialize;

mod target;
pub use target::Target;

/// How long one attempt may take by default (connect, TLS, request, response
/// headers): chat services answer in well under a second; five leaves room for a slow
/// one without a dead receiver tying up its queue for long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The range of `timeout_ms`: below 100 ms even a healthy receiver across a network
/// fails; above a minute a dead one holds its queue for too long per attempt.
pub const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=60_000;
/// Attempts per notice by default: with the back-off of [`crate::backoff`] (0.5 s
/// doubling to a minute) about four minutes of trying, which outlasts a receiver's
/// restart without holding a queue for hours behind a receiver that is gone.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// The most attempts `max_attempts` may ask for (about sixteen minutes of trying).
pub const MAX_ATTEMPTS: u32 = 20;
/// The shortest HMAC key accepted: the output size of SHA-256, so the key is not the
/// weaker half of the signature.
pub const MIN_SECRET_BYTES: usize = 32;
/// The largest secret or URL file read: a key or a URL, not a document.
pub const MAX_FILE_BYTES: u64 = 4096;
/// Webhooks at most: each has its own queue and sender task.
pub const MAX_WEBHOOKS: usize = 16;

/// `[notifications]` as written in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifications {
    /// The approver console's base URL; a notice links to `{console_url}/approvals/{id}`.
    pub console_url: Option<String>,
    /// `[[notifications.webhooks]]`.
    #[serde(default)]
    pub webhooks: Vec<RawWebhook>,
}

/// One `[[notifications.webhooks]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// How logs and metrics name it (default: the URL's host).
    pub name: Option<String>,
    /// Where notices are posted (`https://`; `http://` on loopback only).
    pub url: Option<String>,
    /// A file holding the URL instead, owner-only: a Slack webhook URL is a secret.
    pub url_file: Option<PathBuf>,
    /// The HMAC-SHA256 key, in an owner-only file.
    pub secret_file: Option<PathBuf>,
    /// `slack` (a `text` payload) or `json` (the approval as data, `text` included).
    pub format: Option<Format>,
    /// Which events are sent (default: all).
    pub events: Option<Vec<Event>>,
    /// Milliseconds one attempt may take.
    pub timeout_ms: Option<u64>,
    /// Attempts per notice before it is given up.
    pub max_attempts: Option<u32>,
    /// PEM certificates of the CA(s) that sign the receiver's certificate, trusted
    /// instead of the built-in web roots.
    pub ca_file: Option<PathBuf>,
    /// Allows `http://` to a host that is not loopback: notices then cross the
    /// network readable by anyone on the path.
    #[serde(default)]
    pub insecure_plaintext: bool,
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `{"text": "..."}`: Slack incoming webhooks and the chat tools compatible
    /// with them (Mattermost, Rocket.Chat).
    Slack,
    /// The approval's caller-safe fields as JSON, with the same `text` beside them.
    Json,
}

impl Format {
    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Json => "json",
        }
    }
}

/// An approval event a webhook can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// A held request opened an approval.
    New,
    /// Enough approvers approved it, or one rejected it.
    Decided,
    /// It lapsed unused.
    Expired,
    /// A deciding vote was taken back because its audit record could not be written:
    /// the approval is open again.
    Retracted,
}

impl Event {
    /// Every event, the default of `events`.
    pub const ALL: [Self; 4] = [Self::New, Self::Decided, Self::Expired, Self::Retracted];

    /// The wire name (`event` in the JSON body, `X-Arbiter-Event`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Decided => "decided",
            Self::Expired => "expired",
            Self::Retracted => "retracted",
        }
    }
}

/// Validated `[notifications]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notifications {
    /// The console's base URL, without a trailing `/`.
    pub console_url: Option<String>,
    /// The webhooks, in the file's order.
    pub webhooks: Vec<Webhook>,
}

/// One validated webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// How logs and metrics name it.
    pub name: String,
    /// Where notices go.
    pub target: Target,
    /// The HMAC-SHA256 key.
    pub secret: Secret,
    /// The body it receives.
    pub format: Format,
    /// The events it is sent.
    pub events: Vec<Event>,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Attempts per notice.
    pub max_attempts: NonZeroU32,
    /// The roots that verify an `https://` receiver; `None`: the built-in web roots.
    pub ca: Option<Vec<CertificateDer<'static>>>,
}

/// A key that never shows in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// The key's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A `[notifications]` setting that cannot be used; the message names the key and,
/// for files, the file.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value is wrong.
    #[error("config {section} {key} {problem}")]
    Invalid {
        /// `[notifications]` or `[[notifications.webhooks]] #N`.
        section: String,
        /// The key.
        key: &'static str,
        /// What is wrong, with how to fix it.
        problem: String,
    },
    /// A file cannot be read.
    #[error("config {section} {key}: cannot read `{path}`")]
    Read {
        /// `[[notifications.webhooks]] #N`.
        section: String,
        /// The key that names the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A secret file others may read.
    #[error(
        "config {section} {key} `{path}` is readable by group or others (mode {mode:o}); a webhook secret must be owner-only: run `chmod 600 {path}`"
    )]
    Permissions {
        /// `[[notifications.webhooks]] #N`.
        section: String,
        /// The key that names the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Validates `raw`, reading its files; relative paths are relative to `base` (the
/// config file's directory).
pub fn resolve(
    raw: Option<RawNotifications>,
    base: Option<&Path>,
) -> Result<Notifications, SettingsError> {
    let raw = raw.unwrap_or_default();
    let console_url = raw
        .console_url
        .map(|u| target::console_url(&u))
        .transpose()?;
    if raw.webhooks.len() > MAX_WEBHOOKS {
        return Err(SettingsError::Invalid {
            section: "[notifications]".into(),
            key: "webhooks",
            problem: format!(
                "lists {} webhooks; at most {MAX_WEBHOOKS} are served (fan out at the receiver)",
                raw.webhooks.len()
            ),
        });
    }
    let mut webhooks: Vec<Webhook> = Vec::new();
    for (i, w) in raw.webhooks.into_iter().enumerate() {
        let section = format!("[[notifications.webhooks]] #{}", i + 1);
        let hook = webhook(w, &section, base)?;
        if webhooks.iter().any(|h| h.name == hook.name) {
            return Err(SettingsError::Invalid {
                section,
                key: "name",
                problem: format!(
                    "`{}` is used by another webhook; give each a distinct `name` (logs and metrics tell them apart by it)",
                    hook.name
                ),
            });
        }
        webhooks.push(hook);
    }
    Ok(Notifications {
        console_url,
        webhooks,
    })
}

fn webhook(w: RawWebhook, section: &str, base: Option<&Path>) -> Result<Webhook, SettingsError> {
    let invalid = |key, problem: String| SettingsError::Invalid {
        section: section.to_string(),
        key,
        problem,
    };
    let relative = |p: PathBuf| base.map_or(p.clone(), |b| b.join(&p));
    let (url, key) = match (w.url, w.url_file) {
        (Some(u), None) => (u, "url"),
        (None, Some(p)) => {
            let bytes = read_private(section, "url_file", &relative(p))?;
            (
                String::from_utf8_lossy(&bytes).trim().to_string(),
                "url_file",
            )
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                "url",
                "and url_file are both given; use one (url_file when the URL is itself a secret, as Slack's are)".into(),
            ));
        }
        (None, None) => {
            return Err(invalid(
                "url",
                "is missing; give the receiver's `url` (or `url_file`)".into(),
            ));
        }
    };
    let target = Target::parse(&url, w.insecure_plaintext).map_err(|p| invalid(key, p))?;
    let Some(secret_file) = w.secret_file else {
        return Err(invalid(
            "secret_file",
            format!(
                "is missing; every notice is signed: write at least {MIN_SECRET_BYTES} random bytes to an owner-only file, e.g. `head -c 32 /dev/urandom | base64 > webhook.key; chmod 600 webhook.key`"
            ),
        ));
    };
    let secret_path = relative(secret_file);
    let secret = read_private(section, "secret_file", &secret_path)?
        .trim_ascii()
        .to_vec();
    if secret.len() < MIN_SECRET_BYTES {
        return Err(invalid(
            "secret_file",
            format!(
                "`{}` holds {} bytes; an HMAC-SHA256 key needs at least {MIN_SECRET_BYTES} (e.g. `head -c 32 /dev/urandom | base64`)",
                secret_path.display(),
                secret.len()
            ),
        ));
    }
    let timeout = match w.timeout_ms {
        None => DEFAULT_TIMEOUT,
        Some(ms) if TIMEOUT_MS.contains(&ms) => Duration::from_millis(ms),
        Some(ms) => {
            return Err(invalid(
                "timeout_ms",
                format!(
                    "= {ms} is out of range: use {} to {}",
                    TIMEOUT_MS.start(),
                    TIMEOUT_MS.end()
                ),
            ));
        }
    };
    let max_attempts = match w.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS) {
        n @ 1..=MAX_ATTEMPTS => NonZeroU32::new(n),
        _ => None,
    }
    .ok_or_else(|| {
        invalid(
            "max_attempts",
            format!("is out of range: use 1 to {MAX_ATTEMPTS}"),
        )
    })?;
    let events = w.events.unwrap_or_else(|| Event::ALL.to_vec());
    if events.is_empty() {
        return Err(invalid(
            "events",
            "is empty; list some of \"new\", \"decided\", \"expired\", \"retracted\", or remove the webhook".into(),
        ));
    }
    let ca = match w.ca_file {
        None => None,
        Some(_) if !target.tls => {
            return Err(invalid(
                "ca_file",
                "is given for an `http://` URL; it verifies `https://` receivers".into(),
            ));
        }
        Some(p) => Some(ca_certificates(section, &relative(p))?),
    };
    let name = w.name.unwrap_or_else(|| target.host.clone());
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            format!("`{name}` must be 1 to 64 printable characters"),
        ));
    }
    Ok(Webhook {
        name,
        target,
        secret: Secret(secret),
        format: w.format.unwrap_or(Format::Json),
        events,
        timeout,
        max_attempts,
        ca,
    })
}

/// Reads a small file that must be owner-only (mode 600 or stricter).
fn read_private(section: &str, key: &'static str, path: &Path) -> Result<Vec<u8>, SettingsError> {
    let read = |source| SettingsError::Read {
        section: section.to_string(),
        key,
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SettingsError::Permissions {
                section: section.to_string(),
                key,
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(SettingsError::Invalid {
            section: section.to_string(),
            key,
            problem: format!(
                "`{}` is {} bytes; it should hold one line (at most {MAX_FILE_BYTES} bytes)",
                path.display(),
                meta.len()
            ),
        });
    }
    std::fs::read(path).map_err(read)
}

fn ca_certificates(
    section: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, SettingsError> {
    let bytes = std::fs::read(path).map_err(|source| SettingsError::Read {
        section: section.to_string(),
        key: "ca_file",
        path: path.to_path_buf(),
        source,
    })?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    if certs.is_empty() {
        return Err(SettingsError::Invalid {
            section: section.to_string(),
            key: "ca_file",
            problem: format!(
                "`{}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
                path.display()
            ),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests;
