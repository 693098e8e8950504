//! Per-plugin resource limits: host-wide defaults, overridable per set and per plugin.
//! Every default is a named constant with the reason for its value.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A policy decision should take microseconds. 100 ms covers the slowest runtime's
/// cold path measured here (a Python component's first call, about 5 ms) twenty times
/// over, while bounding how long one runaway plugin holds a worker.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(100);
/// The longest deadline a manifest may ask for: a decision slower than this is not a
/// decision an enforcement point can wait for.
pub const MAX_DEADLINE: Duration = Duration::from_secs(10);
/// Linear memory per instance. The largest example runtime (Python) needs about
/// 30 MiB; 64 MiB leaves headroom without letting one instance take a real share of
/// the machine.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
/// The most memory a manifest may grant one instance. The pooling allocator reserves
/// this much address space per slot, so it is also the slot size.
pub const MAX_MEMORY_BYTES: u64 = 512 << 20;
/// Reasons per verdict. The reference policy's widest verdict names six rules; a
/// verdict with more than 64 reasons is a bug or an attack on the caller.
pub const DEFAULT_MAX_REASONS: u32 = 64;
/// Bytes per reason message (caller or admin). A message is a sentence for a person or
/// an agent, not a document.
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 4096;
/// Guest log bytes kept per evaluation (host `log` calls plus stdout and stderr). Past
/// this, lines are dropped and counted, so a chatty plugin cannot flood the host log.
pub const DEFAULT_MAX_LOG_BYTES: u32 = 16 * 1024;
/// Host calls (`log`, `data`) per evaluation. A policy needs a handful; ten thousand
/// is a plugin burning the host's time one cheap call at a time.
pub const DEFAULT_MAX_HOST_CALLS: u32 = 10_000;
/// Elements per table. Language runtimes keep their function tables in the
/// thousands; a table-growth loop fails fast.
pub const DEFAULT_MAX_TABLE_ELEMENTS: u32 = 100_000;
/// Core instances, tables and memories per evaluation (each). A component has a few
/// of each; the Python runtime about a dozen instances.
pub const DEFAULT_MAX_INSTANCES: u32 = 32;
/// Consecutive failed evaluations after which a plugin is quarantined: it fails
/// closed without running until its set is reloaded or an operator releases it. Five
/// in a row is a broken plugin, not bad luck, and stops it from burning a deadline's
/// worth of CPU on every request.
pub const DEFAULT_QUARANTINE_AFTER: u32 = 5;

/// Effective limits for one plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline per evaluation, instantiation included.
    pub deadline: Duration,
    /// Linear memory per instance.
    pub memory_bytes: u64,
    /// Reasons per verdict.
    pub max_reasons: u32,
    /// Bytes per reason code or message.
    pub max_message_bytes: u32,
    /// Guest log bytes per evaluation.
    pub max_log_bytes: u32,
    /// Host calls per evaluation.
    pub max_host_calls: u32,
    /// Elements per table.
    pub max_table_elements: u32,
    /// Core instances, tables and memories per evaluation (each).
    pub max_instances: u32,
    /// Consecutive failures before quarantine.
    pub quarantine_after: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: DEFAULT_DEADLINE,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            max_reasons: DEFAULT_MAX_REASONS,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            max_host_calls: DEFAULT_MAX_HOST_CALLS,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            max_instances: DEFAULT_MAX_INSTANCES,
            quarantine_after: DEFAULT_QUARANTINE_AFTER,
        }
    }
}

/// Limits as written in a manifest (`[limits]` or `[plugins.limits]`): every field
/// optional, applied on top of the level above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsOverride {
    /// Deadline in milliseconds.
    pub deadline_ms: Option<u64>,
    /// Memory in MiB.
    pub memory_mib: Option<u64>,
    /// Reasons per verdict.
    pub max_reasons: Option<u32>,
    /// Bytes per reason message.
    pub max_message_bytes: Option<u32>,
    /// Guest log bytes per evaluation.
    pub max_log_bytes: Option<u32>,
    /// Host calls per evaluation.
    pub max_host_calls: Option<u32>,
    /// Elements per table.
    pub max_table_elements: Option<u32>,
    /// Core instances, tables and memories per evaluation (each).
    pub max_instances: Option<u32>,
    /// Consecutive failures before quarantine.
    pub quarantine_after: Option<u32>,
}

/// A limit in a manifest outside what the host allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// `deadline_ms` is zero or above [`MAX_DEADLINE`].
    #[error("`deadline_ms` must be between 1 and {max} (got {got})")]
    Deadline {
        /// What the manifest said.
        got: u64,
        /// The maximum in ms.
        max: u128,
    },
    /// `memory_mib` is zero or above [`MAX_MEMORY_BYTES`].
    #[error("`memory_mib` must be between 1 and {max} (got {got})")]
    Memory {
        /// What the manifest said.
        got: u64,
        /// The maximum in MiB.
        max: u64,
    },
    /// A count or size limit is zero.
    #[error("`{field}` must be at least 1")]
    Zero {
        /// The field.
        field: &'static str,
    },
}

impl Limits {
    /// Applies an override, checking each value against the host's bounds.
    pub fn apply(self, o: &LimitsOverride) -> Result<Self, LimitError> {
        let mut l = self;
        if let Some(ms) = o.deadline_ms {
            if ms == 0 || u128::from(ms) > MAX_DEADLINE.as_millis() {
                return Err(LimitError::Deadline {
                    got: ms,
                    max: MAX_DEADLINE.as_millis(),
                });
            }
            l.deadline = Duration::from_millis(ms);
        }
        if let Some(mib) = o.memory_mib {
            if mib == 0 || mib > MAX_MEMORY_BYTES >> 20 {
                return Err(LimitError::Memory {
                    got: mib,
                    max: MAX_MEMORY_BYTES >> 20,
                });
            }
            l.memory_bytes = mib << 20;
        }
        let nonzero = |v: Option<u32>, field, cur: u32| match v {
            Some(0) => Err(LimitError::Zero { field }),
            Some(v) => Ok(v),
            None => Ok(cur),
        };
        l.max_reasons = nonzero(o.max_reasons, "max_reasons", l.max_reasons)?;
        l.max_message_bytes = nonzero(
            o.max_message_bytes,
            "max_message_bytes",
            l.max_message_bytes,
        )?;
        l.max_log_bytes = nonzero(o.max_log_bytes, "max_log_bytes", l.max_log_bytes)?;
        l.max_host_calls = nonzero(o.max_host_calls, "max_host_calls", l.max_host_calls)?;
        l.max_table_elements = nonzero(
            o.max_table_elements,
            "max_table_elements",
            l.max_table_elements,
        )?;
        l.max_instances = nonzero(o.max_instances, "max_instances", l.max_instances)?;
        l.quarantine_after = nonzero(o.quarantine_after, "quarantine_after", l.quarantine_after)?;
        Ok(l)
    }
}
