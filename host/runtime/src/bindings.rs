//! Generated host bindings for the `arbiter:policy` world. Kept private: the rest of
//! the crate converts to and from `arbiter_core` types in `convert.rs`.

wasmtime::component::bindgen!({
    world: "policy",
    path: "../../wit",
    imports: { default: trappable },
    exports: { default: async },
});

pub(crate) use arbiter::policy::types as wit;
