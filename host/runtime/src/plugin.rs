//! One loaded plugin: compiled once, pre-instantiated, run in a fresh instance for
//! every evaluation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arbiter_core::{FailureKind, Instances, PluginOutcome, PluginSpec, Verdict};
use wasmtime::Store;

use crate::bindings::{Policy, PolicyPre, wit};
use crate::breaker::{Admit, Breaker, Quarantine};
use crate::cache::CacheOutcome;
use crate::sandbox::{self, Meter, SetData, Tripped};
use crate::{Runtime, convert};

mod exports;
mod snapshot;
mod stop;

use exports::Exports;
use stop::{Stop, broke_limit, classify, with_wall_clock};

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
    /// Whether fresh instances start from the snapshot taken after `configure` at load
    /// (false: `configure` runs in every fresh instance).
    pub preinitialised: bool,
    /// Evaluations so far.
    pub evaluations: u64,
    /// Failed evaluations so far.
    pub failures: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Whether the plugin is quarantined (fails closed without running).
    pub quarantined: bool,
    /// Why, and when it is retried, while quarantined.
    pub quarantine: Option<Quarantine>,
    /// How many times it has been quarantined since the set was loaded.
    pub quarantines: u64,
    /// Timeouts that were the host's overload, not the plugin's fault (denied, not
    /// counted toward quarantine).
    pub overload_timeouts: u64,
}

pub(crate) struct LoadedPlugin {
    pub spec: PluginSpec,
    pub digest: [u8; 32],
    pre: PolicyPre<sandbox::StoreState>,
    /// Where a fresh instance's `configure` and `evaluate` are, found once at load.
    exports: Exports,
    settings: Vec<wit::Attribute>,
    description: wit::Description,
    /// Instances start from the snapshot taken after `configure` (see [`snapshot`]).
    preinitialised: bool,
    cache: CacheOutcome,
    evaluations: AtomicU64,
    failures: AtomicU64,
    overload_timeouts: AtomicU64,
    breaker: Breaker,
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

impl LoadedPlugin {
    /// Prepares a plugin: its configured snapshot when it can have one (see
    /// [`snapshot`]), else the component compiled as it is, with `describe` and
    /// `configure` called once on a fresh instance. Either way a plugin that traps or
    /// refuses its settings is refused here, at load.
    pub(crate) async fn prepare(
        rt: &Runtime,
        spec: PluginSpec,
        digest: [u8; 32],
        bytes: Vec<u8>,
        data: &SetData,
    ) -> Result<Self, PrepareError> {
        let settings = convert::attributes(&spec.settings);
        let (component, cache, description, preinitialised) = match snapshot::configured(
            rt, &spec, &bytes, &digest, &settings, data,
        )
        .await
        {
            snapshot::Outcome::Ready(c) => (c.component, c.cache, Some(c.description), true),
            snapshot::Outcome::Failed(e) => return Err(e),
            snapshot::Outcome::Unsupported(why) => {
                tracing::info!(plugin = %spec.name, reason = %why, "plugin not pre-initialised: `configure` runs in every fresh instance");
                let rt2 = rt.clone();
                let compiled = tokio::task::spawn_blocking(move || rt2.component(&bytes, &digest))
                    .await
                    .map_err(|e| PrepareError::Compile(wasmtime::format_err!("{e}")))?
                    .map_err(PrepareError::Compile)?;
                (compiled.0, compiled.1, None, false)
            }
        };
        let pre = policy_pre(rt, &component)?;
        let exports = Exports::find(&pre)?;
        let description = match description {
            Some(d) => d,
            None => {
                let mut store =
                    sandbox::new_store(&rt.inner.engine, spec.limits, data.clone(), Meter::new());
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
                description
            }
        };
        let breaker = Breaker::new(spec.limits.quarantine_after);
        Ok(Self {
            spec,
            digest,
            pre,
            exports,
            settings,
            description,
            preinitialised,
            cache,
            evaluations: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            overload_timeouts: AtomicU64::new(0),
            breaker,
            warm: Mutex::new(Vec::new()),
            runtime: rt.inner.clone(),
        })
    }

    /// Runs one evaluation in a fresh (or, when opted in, a pooled) instance. Never
    /// fails: every failure is a classified [`PluginOutcome::Failed`].
    pub(crate) async fn evaluate(
        &self,
        request: &wit::Request,
        data: &SetData,
        caller: &str,
    ) -> PluginOutcome {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        let limits = self.spec.limits;
        let admit = self.breaker.admit();
        if admit == Admit::Refuse {
            self.failures.fetch_add(1, Ordering::Relaxed);
            let q = self.breaker.quarantine();
            return PluginOutcome::failed(
                FailureKind::Quarantined,
                format!(
                    "quarantined after {} consecutive failures (last: {}); retried by itself in {:?}, or release it",
                    limits.quarantine_after,
                    q.as_ref().map_or("unknown", |q| q.cause.as_str()),
                    q.as_ref().map_or(Duration::ZERO, |q| q.retry_in),
                ),
            );
        }
        // A trial whose request is cancelled while it waits or runs hands the trial on.
        let _trial = self.breaker.guard(admit);
        // Never closed, so the permit is always granted.
        let _running = self.runtime.running.acquire().await.ok();
        let meter = Meter::new();
        let (result, tripped) = match self.spec.instances {
            Instances::Fresh => self.run_fresh(request, data, &meter).await,
            Instances::Pooled => self.run_pooled(request, data, &meter).await,
        };
        let (elapsed, busy) = (meter.elapsed(), meter.busy());
        let result = result.and_then(|v| match broke_limit(tripped, elapsed, &limits) {
            None => Ok(v),
            Some(stop) => Err(stop),
        });
        match result {
            Ok(v) => {
                if self.breaker.success(admit) {
                    tracing::warn!(plugin = %self.spec.name, "plugin passed its trial evaluation: quarantine lifted");
                }
                PluginOutcome::Verdict(v)
            }
            Err(stop) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let mut outcome = classify(stop, tripped, &limits);
                let PluginOutcome::Failed(f) = &mut outcome else {
                    return outcome;
                };
                if f.kind == FailureKind::Timeout {
                    // For operators (and the deadline bench): how long it ran by the
                    // host's clock, and how much of that it was executing.
                    f.detail.push_str(&format!(
                        "; ran {} us, executing {} us",
                        elapsed.as_micros(),
                        busy.as_micros()
                    ));
                }
                let f = &*f;
                // A timeout in which the plugin itself ran for less than its deadline,
                // without waiting in a host call, is time it spent waiting for a CPU.
                let overload = f.kind == FailureKind::Timeout
                    && busy < limits.deadline
                    && !meter.waited_in_host();
                tracing::warn!(plugin = %self.spec.name, kind = %f.kind, detail = %f.detail, busy_micros = busy.as_micros() as u64, overload, "plugin failed");
                if overload {
                    self.overload_timeouts.fetch_add(1, Ordering::Relaxed);
                    // The host could not give the plugin its time: not the plugin's
                    // fault, so it does not count toward quarantine.
                    self.breaker.inconclusive(admit);
                    return outcome;
                }
                let (in_a_row, opened) = self
                    .breaker
                    .failure(admit, caller, || format!("{}: {}", f.kind, f.detail));
                if opened {
                    tracing::error!(
                        plugin = %self.spec.name,
                        failures_in_a_row = in_a_row,
                        kind = %f.kind,
                        retry_in_ms = self.breaker.backoff().as_millis() as u64,
                        "plugin quarantined: it fails closed without running until a trial evaluation succeeds after the back-off, or it is released"
                    );
                }
                outcome
            }
        }
    }

    /// A fresh instance: instantiate, configure (unless it starts configured), evaluate,
    /// drop. The deadline counts from `configure` on: instantiation is the host's work.
    /// Only the two functions it calls are looked up in the new instance, by the
    /// indices found at load (see [`Exports`]).
    async fn run_fresh(
        &self,
        request: &wit::Request,
        data: &SetData,
        meter: &Arc<Meter>,
    ) -> (Result<Verdict, Stop>, Tripped) {
        let limits = self.spec.limits;
        let mut store =
            sandbox::new_store(&self.runtime.engine, limits, data.clone(), meter.clone());
        let run = meter.measure(async {
            let instance = self
                .pre
                .instance_pre()
                .instantiate_async(&mut store)
                .await
                .map_err(Stop::Instantiate)?;
            meter.restart();
            if !self.preinitialised {
                let configure = self.exports.configure(&instance, &mut store)?;
                let (configured,) = configure
                    .call_async(&mut store, (self.settings.as_slice(),))
                    .await
                    .map_err(Stop::Wasm)?;
                configured.map_err(Stop::Configure)?;
            }
            let evaluate = self.exports.evaluate(&instance, &mut store)?;
            let verdict = evaluate
                .call_async(&mut store, (request,))
                .await
                .map_err(Stop::Wasm)
                .and_then(|(v,)| convert::verdict(v, &limits).map_err(Stop::Output));
            meter.stop();
            verdict
        });
        let result = with_wall_clock(limits.deadline, run).await;
        let tripped = store.data().tripped;
        store.data().log.flush_to_tracing(&self.spec.name);
        (result, tripped)
    }

    /// A warm instance from the plugin's pool (or a new one), returned to the pool
    /// after a successful evaluation unless it has served `recycle_after` evaluations
    /// or the process-wide budget of idle instances is spent. A failed instance, or one
    /// that broke a limit, is dropped: it may be in any state.
    async fn run_pooled(
        &self,
        request: &wit::Request,
        data: &SetData,
        meter: &Arc<Meter>,
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
                sandbox::new_store(&self.runtime.engine, limits, data.clone(), meter.clone()),
                None,
                0,
            ),
        };
        store.data_mut().begin_evaluation(meter.clone());
        store.set_epoch_deadline(1);
        let run = meter.measure(async {
            let policy = match policy {
                Some(p) => {
                    meter.restart();
                    p
                }
                None => {
                    let p = self.instantiate(&mut store).await?;
                    meter.restart();
                    self.configure(&p, &mut store).await?;
                    p
                }
            };
            let verdict = evaluate_in(&policy, &mut store, request, &limits).await;
            meter.stop();
            Ok((verdict?, policy))
        });
        let result = with_wall_clock(limits.deadline, run).await;
        let tripped = store.data().tripped;
        store.data().log.flush_to_tracing(&self.spec.name);
        match result {
            Ok((verdict, policy)) => {
                let clean = broke_limit(tripped, meter.elapsed(), &limits).is_none();
                if clean && uses + 1 < self.spec.recycle_after && self.runtime.take_warm_slot() {
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

    /// A new instance.
    async fn instantiate(&self, store: &mut Store<sandbox::StoreState>) -> Result<Policy, Stop> {
        self.pre
            .instantiate_async(&mut *store)
            .await
            .map_err(Stop::Instantiate)
    }

    /// Hands a new instance the plugin's settings, unless it starts from the snapshot
    /// taken after `configure`.
    async fn configure(
        &self,
        policy: &Policy,
        store: &mut Store<sandbox::StoreState>,
    ) -> Result<(), Stop> {
        if self.preinitialised {
            return Ok(());
        }
        policy
            .arbiter_policy_evaluator()
            .call_configure(&mut *store, &self.settings)
            .await
            .map_err(Stop::Wasm)?
            .map_err(Stop::Configure)
    }

    /// Lifts a quarantine; returns whether the plugin was quarantined.
    pub(crate) fn release(&self) -> bool {
        let was = self.breaker.release();
        if was {
            tracing::warn!(plugin = %self.spec.name, "plugin released from quarantine");
        }
        was
    }

    pub(crate) fn status(&self) -> PluginStatus {
        let quarantine = self.breaker.quarantine();
        PluginStatus {
            name: self.spec.name.clone(),
            described_name: self.description.name.clone(),
            described_version: self.description.version.clone(),
            actions: self.description.actions.clone(),
            sha256: hex::encode(self.digest),
            cache_hit: self.cache == CacheOutcome::Hit,
            preinitialised: self.preinitialised,
            evaluations: self.evaluations.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            consecutive_failures: self.breaker.consecutive(),
            quarantined: quarantine.is_some(),
            quarantine,
            quarantines: self.breaker.times(),
            overload_timeouts: self.overload_timeouts.load(Ordering::Relaxed),
        }
    }
}

/// The typed pre-instance, or a link error that names what the component exports.
fn policy_pre(
    rt: &Runtime,
    component: &wasmtime::component::Component,
) -> Result<PolicyPre<sandbox::StoreState>, PrepareError> {
    let instance_pre = rt
        .inner
        .linker
        .instantiate_pre(component)
        .map_err(PrepareError::Link)?;
    PolicyPre::new(instance_pre).map_err(|e| {
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
    })
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

/// Why a plugin could not be prepared.
#[derive(Debug)]
pub(crate) enum PrepareError {
    Compile(wasmtime::Error),
    Link(wasmtime::Error),
    Trap(wasmtime::Error),
    Configure(String),
}

pub(crate) type Shared = Arc<LoadedPlugin>;
