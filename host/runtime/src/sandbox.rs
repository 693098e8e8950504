//! The per-evaluation store: deny-all WASI, the memory limiter, capped output and the
//! host side of the `log` and `data` imports. One builder, so no store is ever made
//! without its deadline and limits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arbiter_core::Limits;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::arbiter::policy::{data, log};
use crate::output::{CappedOutput, GuestLog};

/// Data files of a policy set, shared read-only by its plugins.
pub type SetData = Arc<BTreeMap<String, Arc<[u8]>>>;

/// Why a limit tripped, recorded by the host side so that traps can be classified
/// without parsing messages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Tripped {
    #[default]
    None,
    Deadline,
    Memory,
    Table,
    HostCalls,
}

pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limits,
    data: SetData,
    pub log: GuestLog,
    pub tripped: Tripped,
    host_calls: u32,
    started: Instant,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl StoreState {
    /// Resets the per-evaluation counters of a reused instance: its deadline starts
    /// now, and its host-call budget and trip record are fresh.
    pub fn begin_evaluation(&mut self) {
        self.started = Instant::now();
        self.host_calls = 0;
        self.tripped = Tripped::None;
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
/// into the capped guest log, the memory limiter, and the wall-clock deadline enforced
/// through epoch interruption. While the plugin runs past a tick it yields to the
/// executor, so a slow plugin delays only its own request.
pub fn new_store(engine: &wasmtime::Engine, limits: Limits, data: SetData) -> Store<StoreState> {
    let log = GuestLog::new(limits.max_log_bytes);
    let wasi = WasiCtx::builder()
        .stdout(CappedOutput::new(log.clone(), "stdout"))
        .stderr(CappedOutput::new(log.clone(), "stderr"))
        .allow_blocking_current_thread(false)
        .build();
    let state = StoreState {
        wasi,
        table: ResourceTable::new(),
        limits,
        data,
        log,
        tripped: Tripped::None,
        host_calls: 0,
        started: Instant::now(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| s);
    store.set_hostcall_fuel(copy_budget(&limits));
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        let state = ctx.data_mut();
        if state.started.elapsed() >= state.limits.deadline {
            state.tripped = Tripped::Deadline;
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store
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
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = u64::try_from(desired).is_ok_and(|d| d <= self.limits.memory_bytes);
        if !allowed {
            self.tripped = Tripped::Memory;
        }
        Ok(allowed)
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
