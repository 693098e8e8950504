//! Arbiter's sandbox: the only crate that touches wasmtime.
//!
//! A [`Runtime`] owns one engine (pooling allocator, copy-on-write memory images,
//! epoch interruption) and the linker that gives plugins their imports: logging,
//! read-only bundle data, and a WASI with nothing behind it. [`PolicySet::load`]
//! compiles (or loads from the on-disk cache), pre-instantiates and configures every
//! plugin of a manifest; [`PolicySet::decide`] runs each plugin in a fresh instance
//! under its limits and combines the verdicts. Every plugin failure becomes a
//! classified [`arbiter_core::Failure`]; nothing a plugin does escapes as an error.

mod bindings;
mod breaker;
mod cache;
mod convert;
mod engine;
mod output;
mod plugin;
mod sandbox;
mod set;

pub use breaker::{FIRST_BACKOFF, MAX_BACKOFF, Quarantine};
pub use cache::create_private_dir;
pub use engine::{
    MAX_WASM_STACK, POOL_INSTANCES, Runtime, RuntimeConfig, RuntimeError, WASM_STACK_RANGE,
};
pub use plugin::PluginStatus;
pub use set::{LoadError, PolicySet, SetSource};
