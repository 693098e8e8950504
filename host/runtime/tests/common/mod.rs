//! Helpers shared by the runtime's integration tests.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::BTreeMap;

use arbiter_core::{Limits, Request};
use arbiter_runtime::{PolicySet, Runtime, RuntimeConfig, SetSource};

pub(crate) fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).expect("runtime starts")
}

/// A set made of built fixture plugins: `(plugin name, crate name, extra manifest lines)`.
pub(crate) async fn set_of(
    rt: &Runtime,
    header: &str,
    plugins: &[(&str, &str, &str)],
) -> Result<PolicySet, arbiter_runtime::LoadError> {
    let mut manifest = format!("format = 1\nname = \"test\"\nversion = \"1\"\n{header}\n");
    let mut files = BTreeMap::new();
    for (name, krate, extra) in plugins {
        let file = format!("{krate}.wasm");
        let bytes = std::fs::read(arbiter_plugin_build::plugin(krate)).expect("plugin built");
        files.insert(file.clone(), bytes);
        manifest.push_str(&format!(
            "\n[[plugins]]\nname = \"{name}\"\npath = \"{file}\"\n{extra}\n"
        ));
    }
    PolicySet::load(
        rt,
        SetSource::Files {
            origin: "test".into(),
            manifest,
            files,
        },
        Limits::default(),
    )
    .await
}

/// A set with one `misbehave` plugin doing `behaviour`.
pub(crate) async fn misbehaving(rt: &Runtime, behaviour: &str, extra: &str) -> PolicySet {
    let settings = format!("{extra}\n[plugins.settings]\nbehaviour = \"{behaviour}\"");
    set_of(rt, "", &[("misbehave", "misbehave", &settings)])
        .await
        .expect("misbehave set loads")
}

pub(crate) fn request(json: &str) -> Request {
    serde_json::from_str(json).expect("request json")
}

/// A plain request; `behave` switches the misbehave plugin to a normal allow.
pub(crate) fn plain(behave: bool) -> Request {
    request(&format!(
        r#"{{"principal":{{"id":"spiffe://t/agent/a","kind":"agent"}},
            "action":{{"name":"db:Query","privilege":"read"}},
            "context":{{"behave":{behave}}}}}"#
    ))
}
