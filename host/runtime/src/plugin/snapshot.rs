//! Plugins configured once. At load, each plugin runs `describe` and `configure` in an
//! instrumented instance, and its memories and globals right after `configure` are
//! written into a new component (wasmtime-wizer). That component's memory image, shared
//! read-only and mapped copy-on-write, is where every fresh instance starts: a fresh
//! evaluation instantiates and calls `evaluate`, and never re-runs `configure` or the
//! language runtime's start-up.
//!
//! Nothing can leak between evaluations through this: the image is fixed at load and
//! every instance gets its own private copy of it (the pooling allocator resets each
//! slot to the image when an instance ends). What it bakes in is the state `configure`
//! left, which before this was rebuilt, identically, by every instance.
//!
//! A component that wizer cannot instrument (an unsupported shape), or whose
//! `configure` leaves host resources open (a handle into a table the next instance
//! would not have), keeps the old path: `configure` on every fresh instance.

use std::panic::AssertUnwindSafe;

use arbiter_core::PluginSpec;
use futures::FutureExt as _;
use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::{Component, Instance, Lift, WasmList};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use super::PrepareError;
use crate::Runtime;
use crate::bindings::{Policy, PolicyPre, wit};
use crate::cache::CacheOutcome;
use crate::sandbox::{self, Meter, SetData, StoreState};

/// Bumped whenever what goes into a snapshot changes, so old cache entries are ignored.
const FORMAT: &str = "arbiter-preinit-1 wasmtime-wizer-48.0.8";

/// A plugin whose instances start configured.
pub(crate) struct Configured {
    pub component: Component,
    pub description: wit::Description,
    pub cache: CacheOutcome,
}

/// What pre-initialising a plugin came to.
pub(crate) enum Outcome {
    Ready(Configured),
    /// The plugin is fine, but cannot start from a snapshot (the reason is logged).
    Unsupported(String),
    /// The plugin itself failed: it is refused, exactly as without snapshots.
    Failed(PrepareError),
}

/// The cache key of a plugin's snapshot: everything `configure` could see (the
/// component, its settings, the set's data files, its limits) and the snapshot format.
fn key(spec: &PluginSpec, digest: &[u8; 32], data: &SetData) -> String {
    let mut h = Sha256::new();
    h.update(FORMAT);
    h.update(digest);
    h.update(format!("{:?}\0{:?}", spec.settings, spec.limits));
    for (name, bytes) in data.iter() {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(Sha256::digest(bytes));
    }
    format!("preinit-{}", hex::encode(h.finalize()))
}

/// Builds (or loads from the compiled-code cache) the configured form of a plugin.
pub(crate) async fn configured(
    rt: &Runtime,
    spec: &PluginSpec,
    bytes: &[u8],
    digest: &[u8; 32],
    settings: &[wit::Attribute],
    data: &SetData,
) -> Outcome {
    let key = key(spec, digest, data);
    let cached = {
        let (rt, key) = (rt.clone(), key.clone());
        tokio::task::spawn_blocking(move || rt.cached(&key))
            .await
            .ok()
            .flatten()
    };
    if let Some(component) = cached {
        match describe(rt, spec, &component, data).await {
            Ok(description) => {
                return Outcome::Ready(Configured {
                    component,
                    description,
                    cache: CacheOutcome::Hit,
                });
            }
            Err(e) => {
                tracing::warn!(plugin = %spec.name, error = %format!("{e:#}"), "a cached snapshot does not run; rebuilding it")
            }
        }
    }
    let wizer = Wizer::new();
    let (cx, instrumented) = match wizer.instrument_component(bytes) {
        Ok(x) => x,
        Err(e) => return Outcome::Unsupported(format!("cannot instrument it: {e:#}")),
    };
    let compiled = {
        let rt = rt.clone();
        tokio::task::spawn_blocking(move || Component::new(&rt.inner.engine, &instrumented)).await
    };
    let component = match compiled {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Outcome::Failed(PrepareError::Compile(e)),
        Err(e) => return Outcome::Failed(PrepareError::Compile(wasmtime::format_err!("{e}"))),
    };
    // A component that does not fit the world is refused by the plain path, whose
    // message names what the component exports.
    let pre = match rt.inner.linker.instantiate_pre(&component) {
        Ok(pre) if PolicyPre::new(pre.clone()).is_ok() => pre,
        _ => return Outcome::Unsupported("it does not link".into()),
    };
    let mut store = sandbox::new_store(&rt.inner.engine, spec.limits, data.clone(), Meter::new());
    let deadline = spec.limits.deadline;
    let run = async {
        let instance = pre.instantiate_async(&mut store).await?;
        let policy = Policy::new(&mut store, &instance)?;
        let ev = policy.arbiter_policy_evaluator();
        let description = ev.call_describe(&mut store).await?;
        let configured = ev.call_configure(&mut store, settings).await?;
        Ok::<_, wasmtime::Error>((instance, description, configured))
    };
    let result = tokio::time::timeout(deadline, run).await;
    store.data().log.flush_to_tracing(&spec.name);
    let (instance, description, configured) = match result {
        Err(_) => {
            return Outcome::Failed(PrepareError::Trap(wasmtime::format_err!(
                "ran past its deadline of {deadline:?}"
            )));
        }
        Ok(Err(e)) => return Outcome::Failed(PrepareError::Trap(e)),
        Ok(Ok(r)) => r,
    };
    if let Err(message) = configured {
        return Outcome::Failed(PrepareError::Configure(message));
    }
    if !store.data().resources_closed() {
        return Outcome::Unsupported("`configure` left host resources open".into());
    }
    // Reading the state out is the host's work: no deadline or copy budget applies.
    store.set_epoch_deadline(1 << 40);
    store.set_hostcall_fuel(usize::MAX);
    let snapshot = AssertUnwindSafe(wizer.snapshot_component(
        &cx,
        &mut Access {
            store: &mut store,
            instance,
        },
    ))
    .catch_unwind()
    .await;
    let wasm = match snapshot {
        Ok(Ok(wasm)) => wasm,
        Ok(Err(e)) => return Outcome::Unsupported(format!("cannot snapshot it: {e:#}")),
        Err(_) => return Outcome::Unsupported("the snapshot failed".into()),
    };
    let compiled = {
        let rt = rt.clone();
        tokio::task::spawn_blocking(move || rt.compile(&wasm, &key)).await
    };
    match compiled {
        Ok(Ok((component, cache))) => Outcome::Ready(Configured {
            component,
            description,
            cache,
        }),
        Ok(Err(e)) => Outcome::Unsupported(format!("its snapshot does not compile: {e:#}")),
        Err(e) => Outcome::Unsupported(format!("its snapshot does not compile: {e}")),
    }
}

/// `describe` on a fresh instance of a cached snapshot, which also proves it runs.
async fn describe(
    rt: &Runtime,
    spec: &PluginSpec,
    component: &Component,
    data: &SetData,
) -> wasmtime::Result<wit::Description> {
    let pre = rt.inner.linker.instantiate_pre(component)?;
    let mut store = sandbox::new_store(&rt.inner.engine, spec.limits, data.clone(), Meter::new());
    let run = async {
        let instance = pre.instantiate_async(&mut store).await?;
        let policy = Policy::new(&mut store, &instance)?;
        policy
            .arbiter_policy_evaluator()
            .call_describe(&mut store)
            .await
    };
    let result = tokio::time::timeout(spec.limits.deadline, run).await;
    store.data().log.flush_to_tracing(&spec.name);
    result.map_err(|_| wasmtime::format_err!("ran past its deadline"))?
}

/// Wizer reads an instance's memories and globals through functions the
/// instrumentation exported; this calls them.
struct Access<'a> {
    store: &'a mut Store<StoreState>,
    instance: Instance,
}

impl Access<'_> {
    async fn call<R: Lift + 'static, O>(
        &mut self,
        instance: &str,
        func: &str,
        then: impl FnOnce(&mut Store<StoreState>, R) -> O,
    ) -> O {
        #[expect(
            clippy::expect_used,
            reason = "wizer added these exports itself; it catches the panic of a broken one"
        )]
        let ret = async {
            let (_, exported) = self
                .instance
                .get_export(&mut *self.store, None, instance)
                .expect("wizer's accessor instance");
            let (_, index) = self
                .instance
                .get_export(&mut *self.store, Some(&exported), func)
                .expect("wizer's accessor function");
            let f = self
                .instance
                .get_typed_func::<(), (R,)>(&mut *self.store, index)
                .expect("wizer's accessor type");
            f.call_async(&mut *self.store, ())
                .await
                .expect("wizer's accessor runs")
                .0
        }
        .await;
        then(&mut *self.store, ret)
    }
}

impl ComponentInstanceState for Access<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        self.call(instance, func, |store, list: WasmList<u8>| {
            contents(list.as_le_slice(&*store));
        })
        .await
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func, |_, r| r).await
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func, |_, r| r).await
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call(instance, func, |_, r: f32| r.to_bits()).await
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call(instance, func, |_, r: f64| r.to_bits()).await
    }
}
