//! The per-evaluation store: deny-all WASI, the memory limiter, capped output and the
//! host side of the `log` and `data` imports. One builder, so no store is ever made
//! without its deadline and limits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arbiter_core::Limits;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::arbiter::policy::{data, log};
use crate::output::{CappedOutput, GuestLog};

/// Data files of a policy set, shared read-only by its plugins.
pub(crate) type SetData = Arc<BTreeMap<String, Arc<[u8]>>>;

/// Why a limit tripped, recorded by the host side so that traps can be classified
/// without parsing messages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tripped {
    #[default]
    None,
    Deadline,
    Memory,
    Table,
    HostCalls,
}

pub(crate) struct StoreState {
    /// Made on the plugin's first WASI call: most evaluations make none, and building
    /// the context seeds its random sources (with looking up `evaluate` alone, about
    /// 0.5 us of a fresh instance; docs/performance.md, "Trimmed fresh instances").
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    limits: Limits,
    data: SetData,
    pub log: GuestLog,
    pub tripped: Tripped,
    host_calls: u32,
    meter: Arc<Meter>,
    /// Bytes of every linear memory of the instance together: `memory_mib` limits the
    /// plugin, however many memories its component has.
    memory_used: u64,
}

/// The clocks of one evaluation, started by [`Meter::restart`] once the instance
/// exists (so they cover `configure` plus `evaluate`, not instantiation):
///
/// - `elapsed`: wall-clock time since the start. The deadline is on this: the epoch
///   callback interrupts past it, and the host checks it again after the call returns,
///   so a late or missed epoch tick can delay an interrupt but never lets a verdict that
///   came too late through.
/// - `busy`: the time spent inside `poll` of the evaluation, i.e. the plugin's own
///   execution. A timeout with little execution time is the host's overload (the
///   evaluation waited for a CPU), not the plugin's fault, and does not count toward
///   quarantine.
#[derive(Debug)]
pub(crate) struct Meter {
    origin: Instant,
    /// Start of the evaluation (nanoseconds since `origin`).
    started: AtomicU64,
    /// When `evaluate` returned (nanoseconds since `origin`), or [`IDLE`].
    finished: AtomicU64,
    /// Nanoseconds of execution in finished slices.
    busy: AtomicU64,
    /// Start of the running slice (nanoseconds since `origin`), or [`IDLE`].
    slice: AtomicU64,
    /// Set by the epoch callback when it asks the plugin to yield, so that a `Pending`
    /// that follows is known to be voluntary.
    yielded: AtomicBool,
    /// The plugin returned `Pending` on its own: it waited inside a host call (a WASI
    /// sleep or poll), which is the plugin's doing, not the host's.
    waited: AtomicBool,
}

const IDLE: u64 = u64::MAX;

impl Meter {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            started: AtomicU64::new(0),
            finished: AtomicU64::new(IDLE),
            busy: AtomicU64::new(0),
            slice: AtomicU64::new(IDLE),
            yielded: AtomicBool::new(false),
            waited: AtomicBool::new(false),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(IDLE - 1)
    }

    /// Starts both clocks from zero now (called from inside the plugin's future, once
    /// the instance exists).
    pub(crate) fn restart(&self) {
        let now = self.now();
        self.started.store(now, Ordering::Relaxed);
        self.finished.store(IDLE, Ordering::Relaxed);
        self.busy.store(0, Ordering::Relaxed);
        self.waited.store(false, Ordering::Relaxed);
        if self.slice.load(Ordering::Relaxed) != IDLE {
            self.slice.store(now, Ordering::Relaxed);
        }
    }

    /// Marks the moment the plugin's last call returned.
    pub(crate) fn stop(&self) {
        self.finished.store(self.now(), Ordering::Relaxed);
    }

    /// Wall-clock time from the start until now, or until [`Meter::stop`].
    pub(crate) fn elapsed(&self) -> Duration {
        let end = match self.finished.load(Ordering::Relaxed) {
            IDLE => self.now(),
            at => at,
        };
        Duration::from_nanos(end.saturating_sub(self.started.load(Ordering::Relaxed)))
    }

    /// Execution time so far, including the running slice.
    pub(crate) fn busy(&self) -> Duration {
        let mut nanos = self.busy.load(Ordering::Relaxed);
        let slice = self.slice.load(Ordering::Relaxed);
        if slice != IDLE {
            nanos += self.now().saturating_sub(slice);
        }
        Duration::from_nanos(nanos)
    }

    /// Whether the plugin waited inside a host call at some point.
    pub(crate) fn waited_in_host(&self) -> bool {
        self.waited.load(Ordering::Relaxed)
    }

    fn enter(&self) {
        self.yielded.store(false, Ordering::Relaxed);
        self.slice.store(self.now(), Ordering::Relaxed);
    }

    fn leave(&self, pending: bool) {
        let start = self.slice.swap(IDLE, Ordering::Relaxed);
        if start != IDLE {
            self.busy
                .fetch_add(self.now().saturating_sub(start), Ordering::Relaxed);
        }
        if pending && !self.yielded.load(Ordering::Relaxed) {
            self.waited.store(true, Ordering::Relaxed);
        }
    }

    /// Runs `run`, counting the time spent inside its `poll` as execution time.
    pub(crate) async fn measure<T>(&self, run: impl Future<Output = T>) -> T {
        let mut run = std::pin::pin!(run);
        std::future::poll_fn(|cx| {
            self.enter();
            let poll = run.as_mut().poll(cx);
            self.leave(poll.is_pending());
            poll
        })
        .await
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let log = &self.log;
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(|| deny_all_wasi(log)),
            table: &mut self.table,
        }
    }
}

impl StoreState {
    /// Resets the per-evaluation counters of a reused instance: its deadline starts
    /// now, and its host-call budget and trip record are fresh.
    pub(crate) fn begin_evaluation(&mut self, meter: Arc<Meter>) {
        self.meter = meter;
        self.host_calls = 0;
        self.tripped = Tripped::None;
    }

    /// Whether every host resource the plugin opened (a WASI stream, say) is closed
    /// again: only then is its memory a state another instance can start from.
    pub(crate) fn resources_closed(&self) -> bool {
        self.table.is_empty()
    }

    fn count_host_call(&mut self) -> wasmtime::Result<()> {
        self.host_calls += 1;
        if self.host_calls > self.limits.max_host_calls {
            self.tripped = Tripped::HostCalls;
            return Err(wasmtime::format_err!(
                "more than {} host calls in one evaluation",
                self.limits.max_host_calls
            ));
        }
        Ok(())
    }
}

/// Builds a store for one evaluation of one plugin: deny-all WASI (no preopens, no
/// network, no environment, no arguments, closed stdin), stdout and stderr captured
/// into the capped guest log, the memory limiter, and the deadline (see [`Meter`])
/// enforced through epoch interruption. While the
/// plugin runs past a tick it yields to the executor, so a slow plugin delays only its
/// own request.
pub(crate) fn new_store(
    engine: &wasmtime::Engine,
    limits: Limits,
    data: SetData,
    meter: Arc<Meter>,
) -> Store<StoreState> {
    let log = GuestLog::new(limits.max_log_bytes);
    let state = StoreState {
        wasi: None,
        table: ResourceTable::new(),
        limits,
        data,
        log,
        tripped: Tripped::None,
        host_calls: 0,
        meter,
        memory_used: 0,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| s);
    store.set_hostcall_fuel(copy_budget(&limits));
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        let state = ctx.data_mut();
        if state.meter.elapsed() >= state.limits.deadline {
            state.tripped = Tripped::Deadline;
            Ok(UpdateDeadline::Interrupt)
        } else {
            state.meter.yielded.store(true, Ordering::Relaxed);
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store
}

/// WASI with nothing granted: no files, no network, no environment; stdout and stderr
/// go to the plugin's capped log.
fn deny_all_wasi(log: &GuestLog) -> WasiCtx {
    WasiCtx::builder()
        .stdout(CappedOutput::new(log.clone(), "stdout"))
        .stderr(CappedOutput::new(log.clone(), "stderr"))
        .allow_blocking_current_thread(false)
        .build()
}

/// The most bytes the host copies out of the guest in one call (a verdict, a log
/// line, a data file name): enough for a verdict at its limits, never the guest's
/// whole memory. Past it wasmtime refuses the copy, which is classified `bad-output`.
fn copy_budget(limits: &Limits) -> usize {
    let reason = 2 * limits.max_message_bytes as usize + 256;
    (limits.max_reasons as usize * reason).max(1 << 20)
}

impl ResourceLimiter for StoreState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The total over all memories once this one has grown from `current`.
        let total = u64::try_from(desired).ok().and_then(|d| {
            self.memory_used
                .saturating_sub(current as u64)
                .checked_add(d)
        });
        match total.filter(|t| *t <= self.limits.memory_bytes) {
            Some(t) => {
                self.memory_used = t;
                Ok(true)
            }
            None => {
                self.tripped = Tripped::Memory;
                Ok(false)
            }
        }
    }

    /// A grow the limiter allowed but the engine could not carry out (past the pooling
    /// allocator's slot or the memory's declared maximum) is a broken limit too.
    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.tripped = Tripped::Memory;
        Ok(())
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.tripped = Tripped::Table;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.limits.max_table_elements as usize;
        if !allowed {
            self.tripped = Tripped::Table;
        }
        Ok(allowed)
    }

    fn instances(&self) -> usize {
        self.limits.max_instances as usize
    }

    fn tables(&self) -> usize {
        self.limits.max_instances as usize
    }

    fn memories(&self) -> usize {
        self.limits.max_instances as usize
    }
}

impl log::Host for StoreState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.count_host_call()?;
        let level = match level {
            log::Level::Trace => "trace",
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        self.log.push(level, message.as_bytes());
        Ok(())
    }
}

impl data::Host for StoreState {
    fn read(&mut self, name: String) -> wasmtime::Result<Option<Vec<u8>>> {
        self.count_host_call()?;
        Ok(self.data.get(&name).map(|bytes| bytes.to_vec()))
    }
}

impl crate::bindings::arbiter::policy::types::Host for StoreState {}
