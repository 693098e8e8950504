//! The flags of `arbiter serve`.

use std::path::PathBuf;

use crate::config::{LogFormat, TlsArgs};

/// Flags of `arbiter serve`; each also reads an environment variable.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeArgs {
    /// Config file (TOML).
    #[arg(long, env = "ARBITER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to serve gRPC on [default: 127.0.0.1:50051].
    #[arg(long, env = "ARBITER_LISTEN")]
    pub listen: Option<String>,
    /// Directory for state and the compiled-plugin cache
    /// [default: $XDG_DATA_HOME/arbiter or ~/.local/share/arbiter].
    #[arg(long, env = "ARBITER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL of the state shared by replicas (`postgres://user@host/db`;
    /// the password from `[state] password_file`) [default: <data-dir>/state.db].
    #[arg(long, env = "ARBITER_STATE_URL")]
    pub state_url: Option<String>,
    /// This replica's id among those sharing the state database, unique among the
    /// live ones [default: the host name, which is the pod name in Kubernetes].
    #[arg(long, env = "ARBITER_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// Policy set to load: `builtin:NAME` or a set directory; repeat for several.
    /// [default: builtin:reference]
    #[arg(
        long = "policy-set",
        env = "ARBITER_POLICY_SETS",
        value_delimiter = ','
    )]
    pub policy_sets: Vec<String>,
    /// Name of the set that answers requests naming none [default: the first].
    #[arg(long, env = "ARBITER_DEFAULT_SET")]
    pub default_set: Option<String>,
    /// Log format.
    #[arg(long, env = "ARBITER_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Decisions evaluated at once: the size of the sandbox pool and of the admission
    /// limit (up to four times as many wait) [default: 256].
    #[arg(long, env = "ARBITER_CAPACITY")]
    pub capacity: Option<u32>,
    /// Wasm stack per evaluation in KiB, for every plugin (64-8192) [default: 1024].
    #[arg(long, env = "ARBITER_WASM_STACK_KIB")]
    pub wasm_stack_kib: Option<u32>,
    /// Prometheus metrics endpoint (`IP:port`, or `off`) [default: 127.0.0.1:9464].
    #[arg(long, env = "ARBITER_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// AuthZEN over HTTP (`IP:port`, or `off`) [default: off; 127.0.0.1:8181 when
    /// `arbiter serve` runs with no arguments at all].
    #[arg(long, env = "ARBITER_HTTP_LISTEN")]
    pub http_listen: Option<String>,
    /// Turn the audit log off (`--no-audit`): decisions are then not recorded.
    #[arg(long, env = "ARBITER_NO_AUDIT")]
    pub no_audit: bool,
    /// Trusted bundle-signing public key (PEM); repeat for several. With any, only
    /// signed bundles load.
    #[arg(
        long = "trusted-key",
        env = "ARBITER_TRUSTED_KEYS",
        value_delimiter = ','
    )]
    pub trusted_keys: Vec<PathBuf>,
    /// Watch this directory and load the bundles that appear in it.
    #[arg(long, env = "ARBITER_WATCH_DIR")]
    pub watch_dir: Option<PathBuf>,
    /// TLS and mutual TLS.
    #[command(flatten)]
    pub tls: TlsArgs,
}
