//! How an evaluation stopped, and what failure that is: the limits checked after every
//! evaluation (no verdict from a plugin that broke one) and the classification of
//! every other way a plugin can fail.

use std::time::Duration;

use arbiter_core::{FailureKind, PluginOutcome};
use wasmtime::Trap;

use crate::sandbox::Tripped;

/// Longest failure detail kept (trap messages can carry long backtraces).
pub(super) const MAX_DETAIL: usize = 2048;

/// The bound on one whole evaluation (instantiation included), as a multiple of the
/// plugin's deadline. The epoch enforces the deadline on running wasm code; this also
/// stops a plugin that waits inside a host call (a WASI sleep or poll), where no epoch
/// reaches it.
pub(super) const WALL_FACTOR: u32 = 2;

/// Why a plugin did not produce a verdict, before classification.
pub(super) enum Stop {
    Instantiate(wasmtime::Error),
    Wasm(wasmtime::Error),
    Configure(String),
    Output(String),
    /// It ran past its deadline (the epoch interrupted it, or the host's clock says so
    /// after the call returned: the epoch may have been late).
    Deadline,
    /// The wall-clock bound ([`WALL_FACTOR`]) passed.
    WallClock,
    /// It returned normally after the host refused a memory or table grow (or its
    /// host-call budget ran out): the verdict of a plugin that broke a limit is not
    /// accepted.
    Limit(Tripped),
}

/// The epoch deadline stops wasm code that runs too long; this wall-clock bound also
/// stops a plugin that waits inside a host call (a WASI sleep or poll), and gives up on
/// an evaluation the saturated host could not finish in time.
pub(super) async fn with_wall_clock<T>(
    deadline: Duration,
    run: impl Future<Output = Result<T, Stop>>,
) -> Result<T, Stop> {
    tokio::time::timeout(deadline.saturating_mul(WALL_FACTOR), run)
        .await
        .unwrap_or(Err(Stop::WallClock))
}

/// No verdict is accepted from a plugin that broke a limit during the evaluation: a
/// refused memory or table grow it survived, or a deadline it passed without the epoch
/// interrupting it in time.
pub(super) fn broke_limit(
    tripped: Tripped,
    elapsed: Duration,
    limits: &arbiter_core::Limits,
) -> Option<Stop> {
    match tripped {
        Tripped::Memory | Tripped::Table | Tripped::HostCalls => Some(Stop::Limit(tripped)),
        Tripped::Deadline => Some(Stop::Deadline),
        Tripped::None if elapsed > limits.deadline => Some(Stop::Deadline),
        Tripped::None => None,
    }
}

pub(super) fn classify(
    stop: Stop,
    tripped: Tripped,
    limits: &arbiter_core::Limits,
) -> PluginOutcome {
    let e = match stop {
        Stop::Deadline => {
            return PluginOutcome::failed(
                FailureKind::Timeout,
                format!("ran past its deadline of {:?}", limits.deadline),
            );
        }
        Stop::WallClock => {
            return PluginOutcome::failed(
                FailureKind::Timeout,
                format!(
                    "did not finish within {:?} of wall-clock time ({}x its deadline of {:?})",
                    limits.deadline.saturating_mul(WALL_FACTOR),
                    WALL_FACTOR,
                    limits.deadline
                ),
            );
        }
        Stop::Limit(Tripped::Table) => {
            return PluginOutcome::failed(
                FailureKind::TableLimit,
                format!(
                    "tried to grow a table past its limit of {} elements; a verdict returned after a refused grow is not accepted",
                    limits.max_table_elements
                ),
            );
        }
        Stop::Limit(Tripped::HostCalls) => {
            return PluginOutcome::failed(
                FailureKind::HostCallLimit,
                format!("made more than {} host calls", limits.max_host_calls),
            );
        }
        Stop::Limit(_) => {
            return PluginOutcome::failed(
                FailureKind::MemoryLimit,
                format!(
                    "tried to grow past its memory limit of {} MiB; a verdict returned after a refused grow is not accepted",
                    limits.memory_bytes >> 20
                ),
            );
        }
        Stop::Configure(m) => return PluginOutcome::failed(FailureKind::Configure, truncate(m)),
        Stop::Output(m) => return PluginOutcome::failed(FailureKind::BadOutput, m),
        Stop::Instantiate(e) if tripped == Tripped::None => {
            return PluginOutcome::failed(FailureKind::Instantiation, truncate(format!("{e:#}")));
        }
        Stop::Instantiate(e) | Stop::Wasm(e) => e,
    };
    let full = format!("{e:#}");
    let kind = match (tripped, e.downcast_ref::<Trap>()) {
        (Tripped::Deadline, _) | (_, Some(Trap::Interrupt)) => FailureKind::Timeout,
        (Tripped::Memory, _) => FailureKind::MemoryLimit,
        (Tripped::HostCalls, _) => FailureKind::HostCallLimit,
        (Tripped::Table, _) => FailureKind::TableLimit,
        _ if full.contains("fuel allocated for hostcalls has been exhausted") => {
            FailureKind::BadOutput
        }
        (_, Some(Trap::StackOverflow)) => FailureKind::StackOverflow,
        (_, Some(Trap::MemoryOutOfBounds)) if shadow_stack_overflow(&full) => {
            FailureKind::StackOverflow
        }
        (_, Some(_)) => FailureKind::Trap,
        (_, None) => FailureKind::Trap,
    };
    let detail = truncate(full);
    let detail = match kind {
        FailureKind::Timeout => format!("ran past its deadline of {:?}", limits.deadline),
        FailureKind::MemoryLimit => format!(
            "tried to grow past its memory limit of {} MiB ({detail})",
            limits.memory_bytes >> 20
        ),
        _ => detail,
    };
    PluginOutcome::failed(kind, detail)
}

/// Rust and C guests keep a shadow stack at the bottom of linear memory, growing down
/// from a fixed size; overflowing it wraps the stack pointer past zero, so the fault
/// lands in the top 64 KiB of the 32-bit address space. No legitimate access goes
/// there (memories that large are not allowed), so such a fault is a stack overflow.
fn shadow_stack_overflow(detail: &str) -> bool {
    const MARK: &str = "memory fault at wasm address 0x";
    detail
        .find(MARK)
        .map(|i| &detail[i + MARK.len()..])
        .and_then(|rest| {
            let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|addr| (0xffff_0000..=0xffff_ffff).contains(&addr))
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_DETAIL {
        let mut cut = MAX_DETAIL;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}
