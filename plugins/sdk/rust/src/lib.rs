//! Write Arbiter policy plugins in Rust.
//!
//! Implement [`Policy`] for a type and export it with [`export_policy!`]; build with
//! `cargo build --release --target wasm32-wasip2`. The result is a WebAssembly
//! component that the Arbiter host loads from a policy set.
//!
//! ```ignore
//! use arbiter_policy::{Description, Policy, Privilege, Reason, Request, Verdict};
//!
//! struct ReadOnly;
//!
//! impl Policy for ReadOnly {
//!     fn describe() -> Description {
//!         Description::new("read-only", "1.0.0")
//!     }
//!     fn evaluate(request: &Request) -> Verdict {
//!         if request.action.privilege == Privilege::Read {
//!             Verdict::allow()
//!         } else {
//!             Verdict::deny(Reason::new("read-only", "only reads are allowed here"))
//!         }
//!     }
//! }
//!
//! arbiter_policy::export_policy!(ReadOnly);
//! ```

use std::marker::PhantomData;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "policy",
        path: "../../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_policy_world",
        default_bindings_module: "arbiter_policy::bindings",
    });
}

mod attributes;
mod data_file;
mod verdict;

pub use attributes::AttributesExt;
use bindings::arbiter::policy::types;
pub use bindings::arbiter::policy::types::{
    Action, Attribute, Description, Effect, Intent, Obligation, Principal, PrincipalKind,
    Privilege, Reason, Request, Resource, Value, Verdict,
};
pub use data_file::DataFile;

/// A policy plugin. Every function is called on a fresh sandbox: keep no state between
/// calls except what `configure` derives from its settings.
pub trait Policy {
    /// Name, version and the actions the plugin covers.
    fn describe() -> Description;

    /// Receives the plugin's `settings` table from the policy-set manifest, flattened to
    /// dotted names. Return an error to refuse the load. Called once at load; every fresh
    /// instance then starts from the memory it left (the host snapshots it), so set your
    /// globals here. Keep it deterministic: a component the host cannot snapshot gets
    /// `configure` again on every fresh instance.
    fn configure(settings: &[Attribute]) -> Result<(), String> {
        let _ = settings;
        Ok(())
    }

    /// Decides one request.
    fn evaluate(request: &Request) -> Verdict;
}

/// Plumbing between the generated bindings and a [`Policy`]; used by [`export_policy!`].
#[doc(hidden)]
#[derive(Debug)]
pub struct Adapter<P>(PhantomData<P>);

impl<P: Policy> bindings::exports::arbiter::policy::evaluator::Guest for Adapter<P> {
    fn describe() -> types::Description {
        P::describe()
    }

    fn configure(settings: Vec<types::Attribute>) -> Result<(), String> {
        P::configure(&settings)
    }

    fn evaluate(request: types::Request) -> types::Verdict {
        P::evaluate(&request)
    }
}

/// Writes a message into the host's log (capped per evaluation by the host).
pub fn log(level: LogLevel, message: &str) {
    bindings::arbiter::policy::log::log(level, message);
}

pub use bindings::arbiter::policy::log::Level as LogLevel;

/// Reads a data file shipped with the policy set, or `None` when there is none. To parse
/// a file once and keep it, see [`DataFile`].
pub fn data(name: &str) -> Option<Vec<u8>> {
    bindings::arbiter::policy::data::read(name)
}

impl Description {
    /// A description covering every action.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_string(),
            version: version.to_string(),
            actions: Vec::new(),
        }
    }

    /// Restricts the description to these actions (or `prefix:*` patterns).
    pub fn actions(mut self, actions: &[&str]) -> Self {
        self.actions = actions.iter().map(|a| a.to_string()).collect();
        self
    }
}

/// Exports a [`Policy`] implementation as the plugin's `evaluator`.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        type __ArbiterPolicyAdapter = $crate::Adapter<$policy>;
        $crate::bindings::__export_policy_world!(
            __ArbiterPolicyAdapter with_types_in $crate::bindings
        );
    };
}
