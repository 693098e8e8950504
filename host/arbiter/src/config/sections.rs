//! The `[audit]` and `[credentials]` sections, the capacity and the wasm stack, from
//! raw to resolved.

use std::time::Duration;

use anyhow::Context as _;

use super::{AuditSettings, MAX_AUDIT_QUEUE, REDACTABLE, RawAudit, RawCredentials};
use crate::credentials::CredentialConfig;

pub(super) fn audit_settings(raw: RawAudit, off: bool) -> anyhow::Result<Option<AuditSettings>> {
    if off || raw.enabled == Some(false) {
        return Ok(None);
    }
    let checkpoint_secs = raw.checkpoint_secs.unwrap_or(1);
    if !(1..=3600).contains(&checkpoint_secs) {
        anyhow::bail!(
            "config [audit] checkpoint_secs = {checkpoint_secs} is out of range: use 1 to 3600"
        );
    }
    let queue_capacity = raw.queue_capacity.unwrap_or(8192);
    if !(16..=MAX_AUDIT_QUEUE).contains(&queue_capacity) {
        anyhow::bail!(
            "config [audit] queue_capacity = {queue_capacity} is out of range: use 16 to {MAX_AUDIT_QUEUE}"
        );
    }
    for path in &raw.redact {
        let first = path.split('.').next().unwrap_or_default();
        if !REDACTABLE.contains(&first) || path.split('.').any(str::is_empty) {
            anyhow::bail!(
                "config [audit] redact: `{path}` is not a request field path; start with one of {} (e.g. `context.source_ip`)",
                REDACTABLE.join(", ")
            );
        }
    }
    Ok(Some(AuditSettings {
        checkpoint_every: Duration::from_secs(checkpoint_secs),
        queue_capacity,
        redact: raw.redact,
        checkpoint_copy: raw.checkpoint_copy,
    }))
}

pub(super) fn credential_config(raw: RawCredentials) -> anyhow::Result<CredentialConfig> {
    let d = CredentialConfig::default();
    let ceiling = crate::credentials::MAX_LIFETIME_CEILING.as_secs();
    let max = raw.max_lifetime_secs.unwrap_or(d.max_lifetime.as_secs());
    if max == 0 || max > ceiling {
        anyhow::bail!(
            "config [credentials] max_lifetime_secs = {max} is out of range: use 1 to {ceiling}; credentials for agents live minutes, not hours"
        );
    }
    let default = raw
        .default_lifetime_secs
        .unwrap_or(d.default_lifetime.as_secs())
        .min(max);
    if default == 0 {
        anyhow::bail!("config [credentials] default_lifetime_secs must be at least 1");
    }
    // Absent: this deployment's own issuer (see `arbiter_service::credentials`).
    let issuer = match raw.issuer {
        Some(i) if i.trim().is_empty() => {
            anyhow::bail!("config [credentials] issuer must not be empty")
        }
        Some(i) => i,
        None => d.issuer,
    };
    let key_secret = match raw.key_secret_file {
        None => None,
        Some(path) => {
            let bytes = std::fs::read(&path).with_context(|| {
                format!(
                    "cannot read [credentials] key_secret_file `{}`",
                    path.display()
                )
            })?;
            let secret = crate::credentials::KeySecret::from_bytes(&bytes).map_err(|e| {
                anyhow::anyhow!("[credentials] key_secret_file `{}` {e}", path.display())
            })?;
            Some(secret)
        }
    };
    Ok(CredentialConfig {
        issuer,
        max_lifetime: Duration::from_secs(max),
        default_lifetime: Duration::from_secs(default),
        key_secret,
    })
}

pub(super) fn check_stack(kib: Option<u32>) -> anyhow::Result<usize> {
    let Some(kib) = kib else {
        return Ok(arbiter_runtime::MAX_WASM_STACK);
    };
    let bytes = kib as usize * 1024;
    let range = arbiter_runtime::WASM_STACK_RANGE;
    if !range.contains(&bytes) {
        anyhow::bail!(
            "wasm stack of {kib} KiB is out of range: use {} to {} KiB",
            range.start() / 1024,
            range.end() / 1024
        );
    }
    Ok(bytes)
}

pub(super) fn check_capacity(c: u32) -> anyhow::Result<u32> {
    if c == 0 || c > super::MAX_CAPACITY {
        anyhow::bail!(
            "capacity {c} is out of range: use 1 to {} concurrent evaluations",
            super::MAX_CAPACITY
        );
    }
    Ok(c)
}
