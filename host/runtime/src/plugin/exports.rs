//! The two evaluator functions a fresh instance calls, found once per plugin.

use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, Instance, TypedFunc};

use super::PrepareError;
use super::stop::Stop;
use crate::bindings::{PolicyPre, wit};
use crate::sandbox;

/// The evaluator's `configure` and `evaluate` in a plugin's component, found once at
/// load. [`PolicyPre::instantiate_async`] looks up and type-checks all three evaluator
/// functions in every new instance; a fresh instance needs `evaluate`, and `configure`
/// only when it does not start from the configured snapshot.
pub(super) struct Exports {
    configure: ComponentExportIndex,
    evaluate: ComponentExportIndex,
}

type Configure<'a> = TypedFunc<(&'a [wit::Attribute],), (Result<(), String>,)>;
type Evaluate<'a> = TypedFunc<(&'a wit::Request,), (wit::Verdict,)>;

impl Exports {
    pub(super) fn find(pre: &PolicyPre<sandbox::StoreState>) -> Result<Self, PrepareError> {
        let component = pre.instance_pre().component();
        let missing = |name: &str| {
            PrepareError::Link(wasmtime::format_err!(
                "the component does not export `{name}` in `arbiter:policy/evaluator@0.1.0`"
            ))
        };
        let interface = component
            .get_export_index(None, "arbiter:policy/evaluator@0.1.0")
            .ok_or_else(|| missing("the evaluator"))?;
        let find = |name: &str| {
            component
                .get_export_index(Some(&interface), name)
                .ok_or_else(|| missing(name))
        };
        Ok(Self {
            configure: find("configure")?,
            evaluate: find("evaluate")?,
        })
    }

    pub(super) fn configure<'a>(
        &self,
        instance: &Instance,
        store: &mut Store<sandbox::StoreState>,
    ) -> Result<Configure<'a>, Stop> {
        instance
            .get_typed_func(store, self.configure)
            .map_err(Stop::Instantiate)
    }

    pub(super) fn evaluate<'a>(
        &self,
        instance: &Instance,
        store: &mut Store<sandbox::StoreState>,
    ) -> Result<Evaluate<'a>, Stop> {
        instance
            .get_typed_func(store, self.evaluate)
            .map_err(Stop::Instantiate)
    }
}
