//! The engine: one per process, shared by every policy set.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use arbiter_core::limits::MAX_MEMORY_BYTES;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::Policy;
use crate::sandbox::StoreState;

/// Component instances that may be alive at once across the process. Each decision
/// holds one instance at a time (plugins of a set run one after another), so this is
/// also the number of decisions that can be in evaluation at once; the server's
/// admission limit is derived from it so that overload queues instead of failing to
/// allocate.
pub const POOL_INSTANCES: u32 = 256;
/// Idle warm instances kept across the whole process for plugins in `pooled` mode.
/// They hold pool slots while idle, so the pool is this much larger than the
/// admission limit; past the budget, an instance is dropped instead of kept.
pub(crate) const WARM_INSTANCES: u32 = 64;
/// Core instances per component instance. A Rust `wasm32-wasip2` component has about
/// four (the module plus adapter shims); Python and JavaScript runtimes a few more.
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
/// Linear memories per component instance (module plus adapter).
const MEMORIES_PER_COMPONENT: u32 = 4;
/// Tables per component instance.
const TABLES_PER_COMPONENT: u32 = 8;
/// Bytes of each linear memory that stay mapped when an instance ends and are reset
/// with a copy instead of being returned to the kernel. Returning them costs a page
/// fault per page on the next instance plus a TLB shootdown; a small policy plugin
/// (64 KiB stack, data and heap) fits entirely in 256 KiB. Measured: fresh-instance
/// decisions went from 29 us to 11 us at p50 (docs/performance.md).
const KEEP_RESIDENT_BYTES: usize = 256 << 10;
/// The same for tables.
const TABLE_KEEP_RESIDENT_BYTES: usize = 64 << 10;
/// Memory beyond the resident part is returned to the kernel when each instance ends,
/// not in batches: a small plugin fits in the resident part and has nothing to give
/// back, while a batch held the grown memory of up to `batch - 1` finished instances
/// (each up to its memory limit) until it filled. Batching 32 measured no faster
/// here and peaked 60 MiB higher in the hostile soak (docs/performance.md).
const DECOMMIT_BATCH: usize = 1;
/// How often the epoch advances: the granularity of every deadline.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Wasm stack per instance: deep enough for interpreters (Python, QuickJS), bounded
/// so that runaway recursion traps quickly as a stack overflow.
pub const MAX_WASM_STACK: usize = 1 << 20;
/// Bounds for a configured wasm stack: below 64 KiB language runtimes fail to start;
/// above 8 MiB a runaway recursion holds that much memory per evaluation.
pub const WASM_STACK_RANGE: std::ops::RangeInclusive<usize> = (64 << 10)..=(8 << 20);
/// Host frames (WASI calls, lifting) run on the same fiber stack as the guest.
const HOST_STACK_HEADROOM: usize = 1 << 20;

/// Process-wide runtime settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached, keyed by component digest and engine
    /// compatibility. `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Component instances alive at once (see [`POOL_INSTANCES`]).
    pub pool_instances: u32,
    /// Wasm stack per evaluation (engine-wide: wasmtime sets it per engine, not per
    /// instance), within [`WASM_STACK_RANGE`].
    pub wasm_stack_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            pool_instances: POOL_INSTANCES,
            wasm_stack_bytes: MAX_WASM_STACK,
        }
    }
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the configuration (for example, the host cannot reserve the
    /// pooling allocator's address space).
    #[error("cannot configure the WebAssembly engine")]
    Engine(#[source] wasmtime::Error),
    /// The linker could not be built.
    #[error("cannot link the host interfaces")]
    Linker(#[source] wasmtime::Error),
    /// Without the epoch ticker no deadline would ever fire, so the runtime refuses
    /// to start.
    #[error("cannot start the epoch ticker thread")]
    Ticker(#[source] std::io::Error),
}

pub(crate) struct Inner {
    pub engine: Engine,
    pub linker: Linker<StoreState>,
    pub cache_dir: Option<PathBuf>,
    stop: Arc<AtomicBool>,
    warm_slots: AtomicUsize,
    /// Evaluations running plugin code at once ([`RUNNING_PER_CORE`] per core). The
    /// others wait for a slot before their instance is made and their deadline
    /// starts, instead of sharing the cores a tick at a time, where each evaluation
    /// waited (in flight / cores) ticks between its turns and a timeout came that
    /// much late.
    pub running: tokio::sync::Semaphore,
}

impl Inner {
    /// Takes one slot of the idle-instance budget, if any is left.
    pub(crate) fn take_warm_slot(&self) -> bool {
        self.warm_slots
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Gives a slot back when an idle instance is taken out of a pool.
    pub(crate) fn release_warm_slot(&self) {
        self.warm_slots.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Evaluation slots per core: two, so that a plugin waiting in a host call (a WASI
/// sleep, up to twice its deadline) does not leave a core idle, while a timeout
/// still comes within about two epoch ticks of the deadline.
pub(crate) const RUNNING_PER_CORE: usize = 2;

/// The process's WebAssembly runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache_dir", &self.inner.cache_dir)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine and linker and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let engine = Engine::new(&engine_config(
            config.pool_instances + WARM_INSTANCES,
            config.wasm_stack_bytes,
        ))
        .map_err(RuntimeError::Engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(RuntimeError::Linker)?;
        Policy::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(RuntimeError::Linker)?;
        let stop = Arc::new(AtomicBool::new(false));
        start_ticker(&engine, stop.clone()).map_err(RuntimeError::Ticker)?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache_dir: config.cache_dir,
                stop,
                warm_slots: AtomicUsize::new(WARM_INSTANCES as usize),
                running: tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(1, |n| n.get()) * RUNNING_PER_CORE,
                ),
            }),
        })
    }

    /// The engine's compatibility hash: precompiled components from another engine
    /// configuration or wasmtime version are never loaded.
    pub(crate) fn compatibility(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner
            .engine
            .precompile_compatibility_hash()
            .hash(&mut h);
        format!("{:016x}", h.finish())
    }
}

fn engine_config(pool_instances: u32, wasm_stack: usize) -> Config {
    let wasm_stack = wasm_stack.clamp(*WASM_STACK_RANGE.start(), *WASM_STACK_RANGE.end());
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(pool_instances)
        .total_core_instances(pool_instances * CORE_INSTANCES_PER_COMPONENT)
        .total_memories(pool_instances * MEMORIES_PER_COMPONENT)
        .total_tables(pool_instances * TABLES_PER_COMPONENT)
        .total_stacks(pool_instances)
        .max_memory_size(usize::try_from(MAX_MEMORY_BYTES).unwrap_or(usize::MAX))
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .decommit_batch_size(DECOMMIT_BATCH)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(TABLE_KEEP_RESIDENT_BYTES);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .max_wasm_stack(wasm_stack)
        .async_stack_size(wasm_stack + HOST_STACK_HEADROOM)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the runtime is dropped.
fn start_ticker(engine: &Engine, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("arbiter-epoch".into())
        .spawn(move || {
            raise_priority();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })
        .map(drop)
}

/// The ticker must run on time while every core is busy evaluating: a tick that comes
/// late delays every interrupt by as much (measured before this: timeouts at up to
/// 63 ms for a 50 ms deadline with 16 requests in flight). A real-time priority lets it
/// preempt the evaluation threads for the microseconds it needs each millisecond; where
/// the process may not have one (no `CAP_SYS_NICE`), the highest nice level it may
/// set. Late ticks can only delay an interrupt: the host re-checks a plugin's execution
/// time after every call, so no verdict that came too late is accepted either way.
fn raise_priority() {
    #[expect(
        unsafe_code,
        reason = "plain libc calls on the calling thread with a valid, initialised argument"
    )]
    // SAFETY: `sched_setscheduler(0, ..)` and `setpriority(PRIO_PROCESS, 0, ..)` act
    // on the calling thread and read only the `sched_param` passed by reference.
    let (fifo, nice) = unsafe {
        let param = libc::sched_param { sched_priority: 1 };
        let fifo = libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0;
        let nice = fifo || libc::setpriority(libc::PRIO_PROCESS, 0, -20) == 0;
        (fifo, nice)
    };
    tracing::debug!(realtime = fifo, raised = nice, "epoch ticker priority");
}
