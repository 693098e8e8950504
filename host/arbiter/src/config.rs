//! Server configuration in two stages: the raw file (`--config`, TOML, unknown keys
//! refused) and the validated [`Config`], with command-line flags and environment
//! variables layered on top in one function, [`Config::resolve`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arbiter_core::{Limits, LimitsOverride};
use serde::Deserialize;

use crate::auth::{self, Caller, PeerConfig, PeerRule, Role, TokenConfig};
use crate::credentials::CredentialConfig;
use crate::embedded;
use sections::{audit_settings, check_capacity, check_stack, credential_config};

/// Where the server listens by default: loopback only, so a fresh install exposes
/// nothing to the network.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// The config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The config format: 1 (the default). A file written for a later format is
    /// refused rather than half understood.
    pub version: Option<u32>,
    /// `host:port` to serve gRPC on.
    pub listen: Option<String>,
    /// State and cache directory.
    pub data_dir: Option<PathBuf>,
    /// Sets to load: `builtin:NAME` or a path (relative paths are relative to the
    /// config file).
    pub policy_sets: Option<Vec<String>>,
    /// The set that answers requests naming none (default: the first).
    pub default_set: Option<String>,
    /// `text` or `json`.
    pub log_format: Option<LogFormat>,
    /// Host-wide default limits for plugins (manifests may override per set/plugin).
    pub limits: Option<LimitsOverride>,
    /// Decisions evaluated at once (the sandbox pool size); more wait, then are refused.
    pub capacity: Option<u32>,
    /// Wasm stack per evaluation in KiB, for every plugin (engine-wide).
    pub wasm_stack_kib: Option<u32>,
    /// Who may call.
    pub auth: Option<RawAuth>,
    /// Human approval settings.
    pub approvals: Option<RawApprovals>,
    /// `[state]`.
    pub state: Option<RawState>,
    /// Just-in-time credential settings.
    pub credentials: Option<RawCredentials>,
    /// Prometheus endpoint, `IP:port` or `off`.
    pub metrics_listen: Option<String>,
    /// Audit log settings.
    pub audit: Option<RawAudit>,
    /// Public keys (PEM) whose signatures make a bundle trusted; when any is given,
    /// only bundles signed by one of them are loaded (built-in sets excepted).
    #[serde(default)]
    pub trusted_keys: Vec<PathBuf>,
    /// `[[trusted_key]]`: a key trusted only for some set names.
    #[serde(default)]
    pub trusted_key: Vec<tls::ScopedKey>,
    /// A directory watched for new bundles, loaded with the same checks.
    pub watch_dir: Option<PathBuf>,
    /// `[tls]`.
    pub tls: Option<RawTls>,
    /// `[connections]`.
    pub connections: Option<tls::RawConnections>,
    /// `[http]`: the AuthZEN door.
    pub http: Option<arbiter_http::settings::RawHttp>,
    /// `[envoy]`: how Envoy `ext_authz` checks map to requests.
    pub envoy: Option<arbiter_grpc::envoy::mapping::EnvoyConfig>,
    /// `[notifications]`: approval webhooks.
    pub notifications: Option<arbiter_notify::RawNotifications>,
}

/// `[audit]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// `false` turns the audit log off (decisions are then not recorded at all).
    pub enabled: Option<bool>,
    /// Seconds between signed checkpoints of the chain head.
    pub checkpoint_secs: Option<u64>,
    /// Records that may wait for the writer before callers are slowed down.
    pub queue_capacity: Option<usize>,
    /// Request fields replaced by `[redacted]` in decision records, e.g.
    /// `context.source_ip`, `principal.attributes.email`, `intent.justification`.
    #[serde(default)]
    pub redact: Vec<String>,
    /// A file, outside the data directory, where every signed checkpoint is also
    /// appended; `arbiter audit verify --checkpoints FILE` compares the log with it.
    pub checkpoint_copy: Option<PathBuf>,
}

/// `[auth]`: bearer tokens and what callers without one may do.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Roles of callers without a token: `[]` or `["enforcer"]` (default: `["enforcer"]`
    /// on a loopback address, `[]` otherwise).
    pub anonymous_roles: Option<Vec<String>>,
    /// Tokens, by SHA-256.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// `[[auth.peers]]`: client-certificate identities and their roles.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// `[[auth.groups]]`: enforcement identities that share approvals and credentials.
    #[serde(default)]
    pub groups: Vec<auth::GroupConfig>,
}

/// `[approvals]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApprovals {
    /// Seconds an approval stays open and usable.
    pub ttl_secs: Option<u64>,
}

/// `[state]`: the state database (`<data_dir>/state.db`, or PostgreSQL).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// Days closed approvals and expired credentials are kept; 0 keeps them forever.
    pub keep_days: Option<u64>,
    /// A PostgreSQL URL shared by replicas, instead of the SQLite file.
    pub url: Option<String>,
    /// A file holding the PostgreSQL password (a mounted secret), kept out of the URL.
    pub password_file: Option<PathBuf>,
    /// This replica's id among those sharing the database (default: the host name).
    pub replica_id: Option<String>,
}

/// How long closed approvals and expired credentials stay in the state database by
/// default: a quarter of evidence at hand for the approvers' tools, while the audit log
/// keeps every record of them for good.
pub const DEFAULT_KEEP_DAYS: u64 = 90;

/// `[credentials]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredentials {
    /// The `iss` claim.
    pub issuer: Option<String>,
    /// Upper bound on any credential's lifetime, in seconds (at most 3,600).
    pub max_lifetime_secs: Option<u64>,
    /// Lifetime when a request names none, in seconds.
    pub default_lifetime_secs: Option<u64>,
    /// A file of at least 32 random bytes every replica mounts: signing keys are then
    /// kept sealed in the state database, shared by the replicas.
    pub key_secret_file: Option<PathBuf>,
}

/// Validated server configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// gRPC address.
    pub listen: SocketAddr,
    /// State and cache directory.
    pub data_dir: PathBuf,
    /// Set references to load, in order.
    pub policy_sets: Vec<String>,
    /// The default set's name, when not the first.
    pub default_set: Option<String>,
    /// Log format.
    pub log_format: LogFormat,
    /// Plugin limits before manifest overrides.
    pub limits: Limits,
    /// Concurrent evaluations (sandbox pool size and admission limit).
    pub capacity: u32,
    /// Wasm stack per evaluation, in bytes.
    pub wasm_stack_bytes: usize,
    /// Configured tokens, by hash.
    pub tokens: HashMap<String, Caller>,
    /// Roles of callers without a token (granted to loopback peers only).
    pub anonymous_roles: Vec<Role>,
    /// The zero-config tour: loopback, no `[auth]` section. Anonymous decisions are
    /// then allowed only while the data directory holds no tokens either.
    pub tour: bool,
    /// Client-certificate identities and their roles.
    pub peers: Vec<PeerRule>,
    /// Enforcement groups: identity id -> group name.
    pub groups: HashMap<String, String>,
    /// TLS on every listener; `None` is plaintext.
    pub tls: Option<TlsSettings>,
    /// What one client may hold of the gRPC listener.
    pub connections: ConnectionLimits,
    /// The AuthZEN door; `None` is off.
    pub http: Option<arbiter_http::settings::HttpSettings>,
    /// The Envoy `ext_authz` mapping (validated).
    pub envoy: arbiter_grpc::envoy::mapping::EnvoyConfig,
    /// How long approvals stay open.
    pub approval_ttl: Duration,
    /// How long closed approvals and expired credentials stay in the state database
    /// (`None`: forever).
    pub state_keep: Option<Duration>,
    /// PostgreSQL instead of `<data_dir>/state.db`: the URL and a password file.
    pub state_url: Option<(String, Option<PathBuf>)>,
    /// This replica's id (`--replica-id`; default the host name).
    pub replica_id: String,
    /// Credential settings.
    pub credentials: CredentialConfig,
    /// Where Prometheus metrics are served; `None` is off.
    pub metrics_listen: Option<SocketAddr>,
    /// The audit log; `None` is off.
    pub audit: Option<AuditSettings>,
    /// Trusted bundle-signing keys (for any set name).
    pub trusted_keys: Vec<PathBuf>,
    /// Trusted keys scoped to set names (`pci-*` matches by prefix).
    pub scoped_keys: Vec<(PathBuf, Vec<String>)>,
    /// Directory watched for bundles.
    pub watch_dir: Option<PathBuf>,
    /// Approval webhooks (URLs checked, secrets read).
    pub notifications: arbiter_notify::Notifications,
}

/// Validated `[audit]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// Time between signed checkpoints.
    pub checkpoint_every: Duration,
    /// Queue capacity.
    pub queue_capacity: usize,
    /// Request field paths to redact.
    pub redact: Vec<String>,
    /// Where checkpoints are also appended, if anywhere.
    pub checkpoint_copy: Option<PathBuf>,
}

/// The parts of a request a redaction path may start with.
pub const REDACTABLE: &[&str] = &arbiter_core::Request::PARTS;
/// Most records that may wait for the audit writer: beyond this, memory is better
/// spent slowing callers down.
pub const MAX_AUDIT_QUEUE: usize = 1 << 20;

/// The config file format this build reads (`version = 1`; absent means 1).
pub const CONFIG_VERSION: u32 = 1;

impl Config {
    /// Reads `--config` (when given) and layers flags and environment over it.
    pub fn load(args: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("cannot read config file `{}`: {e}", path.display())
                })?;
                let raw: RawConfig = toml::from_str(&text).map_err(|e| {
                    let line = e.span().map_or(0, |s| text[..s.start].matches('\n').count() + 1);
                    anyhow::anyhow!(
                        "{}:{line}: {}\nhint: valid keys are version, listen, data_dir, policy_sets, default_set, log_format, capacity, wasm_stack_kib, metrics_listen, trusted_keys, watch_dir, [limits], [auth], [approvals], [credentials], [audit], [state], [tls], [connections], [http], [envoy], [notifications]",
                        path.display(),
                        e.message()
                    )
                })?;
                if let Some(v) = raw.version.filter(|v| *v != CONFIG_VERSION) {
                    let line = text
                        .lines()
                        .position(|l| l.trim_start().starts_with("version"))
                        .map_or(1, |i| i + 1);
                    anyhow::bail!(
                        "{}:{line}: config version {v} is not supported\nhint: this arbiter reads `version = {CONFIG_VERSION}`; upgrade arbiter or write the file for version {CONFIG_VERSION}",
                        path.display()
                    );
                }
                Some((path.as_path(), raw))
            }
        };
        Self::resolve(file, args)
    }

    /// The one place where file values, flags and defaults meet: a flag (or its
    /// environment variable) beats the file, the file beats the default.
    pub fn resolve(file: Option<(&Path, RawConfig)>, args: &ServeArgs) -> anyhow::Result<Self> {
        let (base, raw) = match file {
            Some((path, raw)) => (path.parent().map(Path::to_path_buf), raw),
            None => (None, RawConfig::default()),
        };
        let listen_text = args
            .listen
            .clone()
            .or(raw.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_text.parse::<SocketAddr>().map_err(|e| {
            anyhow::anyhow!(
                "listen address `{listen_text}` is not `IP:port` ({e}); host names are not resolved: use e.g. 127.0.0.1:50051 or [::1]:50051"
            )
        })?;
        let relative_to_file = |p: String| match (&base, p.starts_with(embedded::PREFIX)) {
            (Some(dir), false) if Path::new(&p).is_relative() => dir.join(p).display().to_string(),
            _ => p,
        };
        let policy_sets = if !args.policy_sets.is_empty() {
            args.policy_sets.clone()
        } else if let Some(sets) = raw.policy_sets {
            sets.into_iter().map(relative_to_file).collect()
        } else {
            vec![format!("{}{}", embedded::PREFIX, embedded::DEFAULT_SET)]
        };
        let data_dir = args
            .data_dir
            .clone()
            .or_else(|| {
                raw.data_dir
                    .map(|d| base.as_ref().map_or(d.clone(), |b| b.join(&d)))
            })
            .unwrap_or_else(default_data_dir);
        let limits = Limits::default()
            .apply(&raw.limits.unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("config [limits]: {e}"))?;
        let tour = raw.auth.is_none() && listen.ip().is_loopback();
        let auth = raw.auth.unwrap_or_default();
        let peers = tls::peer_rules(&auth.peers)?;
        let groups = auth::groups(&auth.groups).map_err(anyhow::Error::msg)?;
        let tls = tls::tls_settings(raw.tls, &args.tls, base.as_deref())?;
        tls::check_plaintext("gRPC", listen, tls.is_some(), args.tls.insecure_plaintext)?;
        let http = arbiter_http::settings::resolve(
            raw.http,
            args.http_listen.as_deref(),
            tls.as_ref().is_some_and(|t| t.grpc.client_ca.is_some()),
        )?;
        if let Some(h) = &http {
            tls::check_plaintext("HTTP", h.listen, tls.is_some(), args.tls.insecure_plaintext)?;
        }
        let envoy = raw.envoy.unwrap_or_default();
        envoy.validate().map_err(anyhow::Error::msg)?;
        let asks_for_certificates = tls
            .as_ref()
            .is_some_and(|t| t.grpc.client_auth != arbiter_tls::ClientAuth::None);
        if !peers.is_empty() && !asks_for_certificates {
            anyhow::bail!(
                "config [[auth.peers]] maps client certificates, but no listener asks for them: give `--tls-client-ca FILE` ([tls] client_ca) too"
            );
        }
        let mut tokens = HashMap::new();
        for t in &auth.tokens {
            let mut caller = auth::caller_of(&t.sha256, &t.id, &t.kind, &t.roles)
                .map_err(|e| anyhow::anyhow!("config [[auth.tokens]]: {e}"))?;
            caller.sets = auth::SetAccess::from_config(t.sets.clone());
            tokens.insert(t.sha256.to_ascii_lowercase(), caller);
        }
        let anonymous_roles = match auth.anonymous_roles {
            None if listen.ip().is_loopback() => vec![Role::Enforcer],
            None => Vec::new(),
            Some(names) => names
                .iter()
                .map(|n| match Role::parse(n) {
                    Some(Role::Enforcer) => Ok(Role::Enforcer),
                    Some(_) => Err(anyhow::anyhow!(
                        "config [auth] anonymous_roles: `{n}` needs an identity; only `enforcer` can be granted to callers without a token"
                    )),
                    None => Err(anyhow::anyhow!(
                        "config [auth] anonymous_roles: `{n}` is not a role; use [] or [\"enforcer\"]"
                    )),
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        };
        let approval_ttl = match raw.approvals.unwrap_or_default().ttl_secs {
            None => crate::approvals::DEFAULT_TTL,
            Some(s @ 60..=604_800) => Duration::from_secs(s),
            Some(s) => anyhow::bail!(
                "config [approvals] ttl_secs = {s} is out of range: use 60 (a minute) to 604800 (a week)"
            ),
        };
        let state = raw.state.unwrap_or_default();
        let state_url = args
            .state_url
            .clone()
            .or(state.url)
            .filter(|u| !u.is_empty());
        // Secret files named in the file are found beside it, like every other path.
        let relative = |p: PathBuf| base.as_ref().map_or(p.clone(), |b| b.join(&p));
        let state_url = state_url.map(|u| (u, state.password_file.map(relative)));
        let replica_id = args.replica_id.as_deref().or(state.replica_id.as_deref());
        let replica_id = arbiter_service::replica::resolve(replica_id)
            .map_err(|e| anyhow::anyhow!("--replica-id / [state] replica_id: {e}"))?;
        let state_keep = match state.keep_days {
            Some(0) => None,
            Some(d @ 1..=36_500) => Some(Duration::from_secs(d * 86_400)),
            Some(d) => anyhow::bail!(
                "config [state] keep_days = {d} is out of range: use 1 to 36500 days, or 0 to keep closed approvals and expired credentials forever"
            ),
            None => Some(Duration::from_secs(DEFAULT_KEEP_DAYS * 86_400)),
        };
        let mut raw_credentials = raw.credentials.unwrap_or_default();
        raw_credentials.key_secret_file = raw_credentials.key_secret_file.map(relative);
        let credentials = credential_config(raw_credentials)?;
        let metrics_listen = arbiter_http::metrics::parse_listen(
            args.metrics_listen
                .as_deref()
                .or(raw.metrics_listen.as_deref())
                .unwrap_or(crate::metrics::DEFAULT_METRICS_LISTEN),
        )?;
        let mut audit = audit_settings(raw.audit.unwrap_or_default(), args.no_audit)?;
        if let Some(a) = &mut audit {
            a.checkpoint_copy = a.checkpoint_copy.take().map(relative);
        }
        let trusted_keys = if args.trusted_keys.is_empty() {
            raw.trusted_keys.into_iter().map(relative).collect()
        } else {
            args.trusted_keys.clone()
        };
        let watch_dir = args.watch_dir.clone().or(raw.watch_dir.map(relative));
        let scoped_keys = tls::scoped_keys(raw.trusted_key, &relative)?;
        Ok(Self {
            notifications: arbiter_notify::resolve(raw.notifications, base.as_deref())?,
            tour,
            peers,
            groups,
            connections: tls::connection_limits(raw.connections)?,
            http,
            envoy,
            tls,
            trusted_keys,
            scoped_keys,
            watch_dir,
            metrics_listen,
            audit,
            tokens,
            anonymous_roles,
            approval_ttl,
            state_keep,
            state_url,
            replica_id,
            credentials,
            listen,
            data_dir,
            policy_sets,
            default_set: args.default_set.clone().or(raw.default_set),
            log_format: args.log_format.or(raw.log_format).unwrap_or_default(),
            limits,
            capacity: check_capacity(
                args.capacity
                    .or(raw.capacity)
                    .unwrap_or(arbiter_runtime::POOL_INSTANCES),
            )?,
            wasm_stack_bytes: check_stack(args.wasm_stack_kib.or(raw.wasm_stack_kib))?,
        })
    }
}

/// The largest pool: every slot reserves address space for a maximal memory, and
/// more concurrent evaluations than this help no machine.
pub const MAX_CAPACITY: u32 = 4096;

/// `$XDG_DATA_HOME/arbiter`, else `~/.local/share/arbiter`, else `./arbiter-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("arbiter");
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/arbiter"),
        None => PathBuf::from("arbiter-data"),
    }
}

mod sections;
pub use crate::cli::serve_args::ServeArgs;
mod tls;
pub use tls::{ConnectionLimits, RawTls, TlsArgs, TlsSettings};
#[cfg(test)]
mod tests;
