//! Opening the audit log of a server: its file and checkpoint key in the data
//! directory, and an observer that feeds the writer's batches into the metrics.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use arbiter_audit::{AuditConfig, AuditLog};

use crate::metrics::Metrics;

pub mod ship;

/// The state database holding every replica's audit chain, when the state is shared
/// (PostgreSQL); `None` when this server's own log is the whole audit.
pub fn shared_chains(app: &crate::app::App) -> Option<Arc<dyn arbiter_store::StateStore>> {
    app.store.keeps_audit_chains().then(|| app.store.clone())
}

/// How the audit log is kept (`[audit]` in the config).
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Time between signed checkpoints.
    pub checkpoint_every: std::time::Duration,
    /// Records that may wait for the writer.
    pub queue_capacity: usize,
    /// Where checkpoints are also appended, if anywhere.
    pub checkpoint_copy: Option<PathBuf>,
}

/// Opens `<data_dir>/audit.db`, signing checkpoints with `<data_dir>/keys/audit.pem`
/// (created on first start) and publishing its public half as `keys/audit.pub`.
pub fn open(
    data_dir: &Path,
    options: &AuditOptions,
    metrics: Arc<Metrics>,
) -> anyhow::Result<AuditLog> {
    let keys = data_dir.join("keys");
    arbiter_runtime::create_private_dir(&keys)?;
    let key = arbiter_keys::SecretKey::load_or_create(&keys.join("audit.pem"))
        .context("cannot load the audit checkpoint key")?;
    key.public()
        .write(&keys.join("audit.pub"))
        .context("cannot write the audit public key")?;
    let mut audit = AuditConfig::new(data_dir.join("audit.db"), key);
    audit.checkpoint_every = options.checkpoint_every;
    audit.queue_capacity = std::num::NonZeroUsize::new(options.queue_capacity)
        .context("the audit queue capacity must be at least 1")?;
    let copy = match &options.checkpoint_copy {
        None => None,
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| {
                    format!(
                        "cannot open the audit checkpoint copy `{}` ([audit] checkpoint_copy) for appending",
                        path.display()
                    )
                })?;
            Some((path.clone(), std::sync::Mutex::new(file)))
        }
    };
    AuditLog::open(audit, Some(Arc::new(AuditObserver { metrics, copy })))
        .context("cannot open the audit log")
}

/// Feeds the audit writer's batches into the metrics, and appends each signed
/// checkpoint to `[audit] checkpoint_copy` when set.
#[derive(Debug)]
pub struct AuditObserver {
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    /// The checkpoint copy file, opened for appending.
    pub copy: Option<(std::path::PathBuf, std::sync::Mutex<std::fs::File>)>,
}

impl arbiter_audit::Observer for AuditObserver {
    fn committed(&self, records: usize, latency: std::time::Duration) {
        self.metrics.audit_committed(records, latency);
    }

    fn failed(&self, records: usize, error: &arbiter_audit::AuditError) {
        tracing::error!(records, error = %error, "audit batch could not be written");
        self.metrics.audit_failed();
    }

    fn checkpointed(&self, number: u64, seq: u64, hash: &arbiter_audit::Hash) {
        use std::io::Write as _;
        let Some((path, file)) = &self.copy else {
            return;
        };
        let line = serde_json::json!({
            "number": number,
            "seq": seq,
            "hash": hex::encode(hash),
            "at_micros": arbiter_store::now_micros(),
        });
        let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
        let written = writeln!(file, "{line}").and_then(|()| file.sync_data());
        if let Err(e) = written {
            // The log itself is intact; only its outside witness missed a checkpoint.
            tracing::error!(path = %path.display(), error = %e, number, "cannot copy an audit checkpoint");
        }
    }
}
