//! One loaded plugin: compiled once, pre-instantiated, run in a fresh instance for
//! every evaluation.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arbiter_core::{FailureKind, Instances, PluginOutcome, PluginSpec, Verdict};
use wasmtime::{Store, Trap};

use crate::bindings::{Policy, PolicyPre, wit};
use crate::cache::CacheOutcome;
use crate::sandbox::{self, SetData, Tripped};
use crate::{Runtime, convert};

/// Longest failure detail kept (trap messages can carry long backtraces).
const MAX_DETAIL: usize = 2048;

/// What a plugin says about itself, and how it is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginStatus {
    /// Name in the manifest.
    pub name: String,
    /// Name the plugin gives itself in `describe`.
    pub described_name: String,
    /// Version from `describe`.
    pub described_version: String,
    /// Actions from `describe` (empty: all).
    pub actions: Vec<String>,
    /// Hex SHA-256 of the component file.
    pub sha256: String,
    /// Whether the compiled form came from the on-disk cache.
    pub cache_hit: bool,
    /// Evaluations so far.
    pub evaluations: u64,
    /// Failed evaluations so far.
    pub failures: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Whether the plugin is quarantined (fails closed without running).
    pub quarantined: bool,
}

pub(crate) struct LoadedPlugin {
    pub spec: PluginSpec,
    pub digest: [u8; 32],
    pre: PolicyPre<sandbox::StoreState>,
    settings: Vec<wit::Attribute>,
    description: wit::Description,
    cache: CacheOutcome,
    evaluations: AtomicU64,
    failures: AtomicU64,
    consecutive: AtomicU32,
    quarantined: AtomicBool,
    /// Idle warm instances (`instances = "pooled"` only).
    warm: Mutex<Vec<Warm>>,
    /// For returning the idle-instance budget when the plugin is dropped.
    runtime: Arc<crate::engine::Inner>,
}

impl Drop for LoadedPlugin {
    fn drop(&mut self) {
        let idle = self.warm.get_mut().map_or(0, |w| w.len());
        for _ in 0..idle {
            self.runtime.release_warm_slot();
        }
    }
}

/// An idle instance kept for reuse.
struct Warm {
    store: Store<sandbox::StoreState>,
    policy: Policy,
    uses: u32,
}

/// Why a plugin did not produce a verdict, before classification.
enum Stop {
    Instantiate(wasmtime::Error),
    Wasm(wasmtime::Error),
    Configure(String),
    Output(String),
    Deadline,
}

impl LoadedPlugin {
    /// Pre-instantiates, then calls `describe` and `configure` once on a fresh
    /// instance: a plugin that traps or refuses its settings is refused here, at load.
    pub async fn prepare(
        rt: &Runtime,
        spec: PluginSpec,
        digest: [u8; 32],
        component: wasmtime::component::Component,
        cache: CacheOutcome,
        data: &SetData,
    ) -> Result<Self, PrepareError> {
        let instance_pre = rt
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(PrepareError::Link)?;
        let pre = PolicyPre::new(instance_pre).map_err(|e| {
            let exports: Vec<String> = component
                .component_type()
                .exports(&rt.inner.engine)
                .map(|(name, _)| format!("`{name}`"))
                .collect();
            PrepareError::Link(e.context(format!(
                "the component exports {}; this host implements `arbiter:policy@0.1.0`",
                if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    exports.join(", ")
                }
            )))
        })?;
        let settings = convert::attributes(&spec.settings);
        let mut store = sandbox::new_store(&rt.inner.engine, spec.limits, data.clone());
        let deadline = spec.limits.deadline;
        let run = async {
            let policy = pre.instantiate_async(&mut store).await?;
            let ev = policy.arbiter_policy_evaluator();
            let description = ev.call_describe(&mut store).await?;
            let configured = ev.call_configure(&mut store, &settings).await?;
            Ok::<_, wasmtime::Error>((description, configured))
        };
        let result = tokio::time::timeout(deadline, run).await;
        store.data().log.flush_to_tracing(&spec.name);
        let (description, configured) = match result {
            Err(_) => {
                return Err(PrepareError::Trap(wasmtime::format_err!(
                    "ran past its deadline of {deadline:?}"
                )));
            }
            Ok(r) => r.map_err(PrepareError::Trap)?,
        };
        configured.map_err(PrepareError::Configure)?;
        Ok(Self {
            spec,
            digest,
            pre,
            settings,
            description,
            cache,
            evaluations: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            consecutive: AtomicU32::new(0),
            quarantined: AtomicBool::new(false),
            warm: Mutex::new(Vec::new()),
            runtime: rt.inner.clone(),
        })
    }

    /// Runs one evaluation in a fresh (or, when opted in, a pooled) instance. Never
    /// fails: every failure is a classified [`PluginOutcome::Failed`].
    pub async fn evaluate(&self, request: &wit::Request, data: &SetData) -> PluginOutcome {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        let limits = self.spec.limits;
        if self.quarantined.load(Ordering::Relaxed) {
            self.failures.fetch_add(1, Ordering::Relaxed);
            return PluginOutcome::failed(
                FailureKind::Quarantined,
                format!(
                    "quarantined after {} consecutive failures; reload the set or release the plugin",
                    limits.quarantine_after
                ),
            );
        }
        let (result, tripped) = match self.spec.instances {
            Instances::Fresh => self.run_fresh(request, data).await,
            Instances::Pooled => self.run_pooled(request, data).await,
        };
        match result {
            Ok(v) => {
                self.consecutive.store(0, Ordering::Relaxed);
                PluginOutcome::Verdict(v)
            }
            Err(stop) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let outcome = classify(stop, tripped, &limits);
                if let PluginOutcome::Failed(f) = &outcome {
                    tracing::warn!(plugin = %self.spec.name, kind = %f.kind, detail = %f.detail, "plugin failed");
                }
                let in_a_row = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
                if in_a_row >= limits.quarantine_after
                    && !self.quarantined.swap(true, Ordering::Relaxed)
                {
                    tracing::error!(
                        plugin = %self.spec.name,
                        failures_in_a_row = in_a_row,
                        "plugin quarantined: it fails closed without running until its set is reloaded or it is released"
                    );
                }
                outcome
            }
        }
    }

    /// A fresh instance: instantiate, configure, evaluate, drop.
    async fn run_fresh(
        &self,
        request: &wit::Request,
        data: &SetData,
    ) -> (Result<Verdict, Stop>, Tripped) {
        let limits = self.spec.limits;
        let mut store = sandbox::new_store(&self.runtime.engine, limits, data.clone());
        let run = async {
            let policy = self.instantiate(&mut store).await?;
            evaluate_in(&policy, &mut store, request, &limits).await
        };
        let result = with_deadline(limits.deadline, run).await;
        let tripped = store.data().tripped;
        store.data().log.flush_to_tracing(&self.spec.name);
        (result, tripped)
    }

    /// A warm instance from the plugin's pool (or a new one), returned to the pool
    /// after a successful evaluation unless it has served `recycle_after` evaluations
    /// or the process-wide budget of idle instances is spent. A failed instance is
    /// dropped: it may be in any state.
    async fn run_pooled(
        &self,
        request: &wit::Request,
        data: &SetData,
    ) -> (Result<Verdict, Stop>, Tripped) {
        let limits = self.spec.limits;
        let warm = self
            .warm
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let (mut store, policy, uses) = match warm {
            Some(w) => {
                self.runtime.release_warm_slot();
                (w.store, Some(w.policy), w.uses)
            }
            None => (
                sandbox::new_store(&self.runtime.engine, limits, data.clone()),
                None,
                0,
            ),
        };
        store.data_mut().begin_evaluation();
        store.set_epoch_deadline(1);
        let run = async {
            let policy = match policy {
                Some(p) => p,
                None => self.instantiate(&mut store).await?,
            };
            let verdict = evaluate_in(&policy, &mut store, request, &limits).await?;
            Ok((verdict, policy))
        };
        let result = with_deadline(limits.deadline, run).await;
        let tripped = store.data().tripped;
        store.data().log.flush_to_tracing(&self.spec.name);
        match result {
            Ok((verdict, policy)) => {
                if uses + 1 < self.spec.recycle_after && self.runtime.take_warm_slot() {
                    let warm = Warm {
                        store,
                        policy,
                        uses: uses + 1,
                    };
                    self.warm
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(warm);
                }
                (Ok(verdict), tripped)
            }
            Err(stop) => (Err(stop), tripped),
        }
    }

    /// A new instance, configured with the plugin's settings.
    async fn instantiate(&self, store: &mut Store<sandbox::StoreState>) -> Result<Policy, Stop> {
        let policy = self
            .pre
            .instantiate_async(&mut *store)
            .await
            .map_err(Stop::Instantiate)?;
        policy
            .arbiter_policy_evaluator()
            .call_configure(&mut *store, &self.settings)
            .await
            .map_err(Stop::Wasm)?
            .map_err(Stop::Configure)?;
        Ok(policy)
    }

    /// Lifts a quarantine; returns whether the plugin was quarantined.
    pub fn release(&self) -> bool {
        self.consecutive.store(0, Ordering::Relaxed);
        let was = self.quarantined.swap(false, Ordering::Relaxed);
        if was {
            tracing::warn!(plugin = %self.spec.name, "plugin released from quarantine");
        }
        was
    }

    pub fn status(&self) -> PluginStatus {
        PluginStatus {
            name: self.spec.name.clone(),
            described_name: self.description.name.clone(),
            described_version: self.description.version.clone(),
            actions: self.description.actions.clone(),
            sha256: hex::encode(self.digest),
            cache_hit: self.cache == CacheOutcome::Hit,
            evaluations: self.evaluations.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            consecutive_failures: self.consecutive.load(Ordering::Relaxed),
            quarantined: self.quarantined.load(Ordering::Relaxed),
        }
    }
}

async fn evaluate_in(
    policy: &Policy,
    store: &mut Store<sandbox::StoreState>,
    request: &wit::Request,
    limits: &arbiter_core::Limits,
) -> Result<Verdict, Stop> {
    let verdict = policy
        .arbiter_policy_evaluator()
        .call_evaluate(&mut *store, request)
        .await
        .map_err(Stop::Wasm)?;
    convert::verdict(verdict, limits).map_err(Stop::Output)
}

/// The epoch deadline stops wasm code; this timeout also stops a plugin that waits
/// inside a host call (a WASI sleep or poll).
async fn with_deadline<T>(
    deadline: std::time::Duration,
    run: impl Future<Output = Result<T, Stop>>,
) -> Result<T, Stop> {
    tokio::time::timeout(deadline, run)
        .await
        .unwrap_or(Err(Stop::Deadline))
}

fn classify(stop: Stop, tripped: Tripped, limits: &arbiter_core::Limits) -> PluginOutcome {
    let e = match stop {
        Stop::Deadline => {
            return PluginOutcome::failed(
                FailureKind::Timeout,
                format!("ran past its deadline of {:?}", limits.deadline),
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

/// Why a plugin could not be prepared.
#[derive(Debug)]
pub(crate) enum PrepareError {
    Link(wasmtime::Error),
    Trap(wasmtime::Error),
    Configure(String),
}

pub(crate) type Shared = Arc<LoadedPlugin>;
