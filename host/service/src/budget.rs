//! The byte budget of request bodies in flight, one per server and shared by every
//! front door: a door takes a body's bytes before (or while) it reads them and gives
//! them back when the answer is out; a body that would pass the limit is refused
//! (`RESOURCE_EXHAUSTED`, HTTP 429) instead of being buffered.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The smallest budget: an admin upload (64 MiB) and a decision request (16 MiB)
/// must each fit, or they could never be served.
pub const MIN_BUDGET_MIB: usize = 80;

/// The byte budget shared by every request of one server.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    held: AtomicUsize,
}

impl Budget {
    /// A budget of `limit` bytes of request bodies in flight.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            held: AtomicUsize::new(0),
        })
    }

    /// The default budget in MiB: an eighth of the memory this process may use,
    /// between 64 and 1,024.
    pub fn default_mib() -> usize {
        (memory_bytes() >> 20)
            .saturating_div(8)
            .clamp(MIN_BUDGET_MIB, 1024)
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes `n` bytes; `false` (nothing taken) when that would pass the limit.
    pub fn take(&self, n: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                h.checked_add(n).filter(|t| *t <= self.limit)
            })
            .is_ok()
    }

    /// Gives back `n` bytes taken before.
    pub fn give(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::AcqRel);
    }
}

/// The memory this process may use: the cgroup limit when one is set, else the
/// machine's.
fn memory_bytes() -> usize {
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|t| t.trim().parse::<usize>().ok());
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
            .map(|kib| kib << 10)
    });
    match (cgroup, total) {
        (Some(c), Some(t)) => c.min(t),
        (c, t) => c.or(t).unwrap_or(2 << 30),
    }
}
