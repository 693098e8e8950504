//! Does a built component fit the host's WIT? Reads the component's world (without
//! compiling it) and compares it with the `policy` world of the WIT embedded in this
//! binary: the evaluator it exports, the interfaces it imports, their versions, and
//! the functions and types of each shared interface. Every mismatch is named, so an
//! author fixes them in one go instead of meeting a link error at load.

use std::collections::BTreeMap;

use wit_parser::decoding::{DecodedWasm, decode};
use wit_parser::{Resolve, SourceMap, TypeDefKind, TypeId, WorldItem, WorldKey};

use crate::templates;

/// The interfaces of the host's package a plugin may import (`types` comes with them).
const IMPORTABLE: [&str; 3] = ["log", "data", "types"];

/// The host's package, e.g. `arbiter:policy@0.1.0`.
pub fn host_package() -> &'static str {
    templates::wit_package()
}

/// Checks a component against the host's WIT; `Err` lists every mismatch.
pub fn component(bytes: &[u8]) -> Result<(), Vec<String>> {
    let host =
        host_interfaces().map_err(|e| vec![format!("the embedded WIT does not parse: {e}")])?;
    // A core module decodes as a component of an empty world: say what it is instead.
    if bytes.starts_with(b"\0asm\x01\0\0\0") {
        return Err(vec![
            "it is a core WebAssembly module, not a component: make it one with `wasm-tools component new`".into(),
        ]);
    }
    let (resolve, world) = match decode(bytes) {
        Ok(DecodedWasm::Component(resolve, world)) => (resolve, world),
        Ok(DecodedWasm::WitPackage(..)) => {
            return Err(vec!["it is a WIT package, not a component".into()]);
        }
        Err(e) => {
            return Err(vec![format!(
                "it is not a WebAssembly component ({e:#}); a core module needs `wasm-tools component new`"
            )]);
        }
    };
    let package = host_package();
    let (ns, version) = package.split_once('@').unwrap_or((package, ""));
    let mut mismatches = Vec::new();
    let world = &resolve.worlds[world];
    // At any version: another version is its own mismatch.
    let mut exports_evaluator = false;
    for (key, item) in &world.exports {
        let name = resolve.name_world_key(key);
        let Some((iface, v)) = ours(&name, ns) else {
            continue;
        };
        exports_evaluator |= iface == "evaluator";
        if iface == "evaluator" && v == version {
            compare(&resolve, item, &host, iface, &name, &mut mismatches);
        } else if iface == "evaluator" {
            mismatches.push(format!(
                "exports `{name}`, but this host runs version {version} of `{ns}`: rebuild with the WIT of this host (`arbiter new` writes it into `wit/`)"
            ));
        } else {
            mismatches.push(format!(
                "exports `{name}`, which the `policy` world does not export"
            ));
        }
    }
    if !exports_evaluator {
        mismatches.push(format!(
            "does not export `{ns}/evaluator@{version}`: build it for the world `policy` of the project's `wit/`"
        ));
    }
    for (key, item) in &world.imports {
        let name = resolve.name_world_key(key);
        if let Some((iface, v)) = ours(&name, ns) {
            if !IMPORTABLE.contains(&iface) {
                mismatches.push(format!(
                    "imports `{name}`; a policy may import only `{ns}/log` and `{ns}/data`"
                ));
            } else if v != version {
                mismatches.push(format!(
                    "imports `{name}`, but this host provides version {version}: rebuild with the WIT of this host"
                ));
            } else {
                compare(&resolve, item, &host, iface, &name, &mut mismatches);
            }
        } else if !name.starts_with("wasi:") {
            let what = match key {
                WorldKey::Name(_) if matches!(item, WorldItem::Function(_)) => "function",
                _ => "interface",
            };
            mismatches.push(format!(
                "imports the {what} `{name}`, which the host does not provide (a policy gets `{ns}/log`, `{ns}/data` and WASI, stubbed)"
            ));
        }
    }
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(mismatches)
    }
}

/// `(interface, version)` when `name` is an interface of the host's package `ns`.
fn ours<'a>(name: &'a str, ns: &str) -> Option<(&'a str, &'a str)> {
    let rest = name.strip_prefix(ns)?.strip_prefix('/')?;
    Some(rest.split_once('@').unwrap_or((rest, "")))
}

/// An interface's shape, comparable across two `Resolve`s: each function's parameter
/// names and whether it returns, each type's kind with its field or case names.
#[derive(Debug, PartialEq)]
struct Shape {
    functions: BTreeMap<String, String>,
    types: BTreeMap<String, String>,
}

fn host_interfaces() -> Result<BTreeMap<String, Shape>, String> {
    let mut map = SourceMap::new();
    for (path, text) in templates::WIT {
        map.push_str(path, text);
    }
    let group = map.parse().map_err(|(_, e)| e.to_string())?;
    let mut resolve = Resolve::default();
    let package = resolve.push_group(group).map_err(|e| format!("{e:#}"))?;
    Ok(resolve.packages[package]
        .interfaces
        .iter()
        .map(|(name, id)| (name.clone(), shape(&resolve, *id)))
        .collect())
}

fn shape(resolve: &Resolve, id: wit_parser::InterfaceId) -> Shape {
    let iface = &resolve.interfaces[id];
    Shape {
        functions: iface
            .functions
            .iter()
            .map(|(name, f)| {
                let params: Vec<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
                let result = if f.result.is_some() { " -> _" } else { "" };
                (name.clone(), format!("({}){result}", params.join(", ")))
            })
            .collect(),
        types: iface
            .types
            .iter()
            .map(|(name, t)| (name.clone(), type_shape(resolve, *t)))
            .collect(),
    }
}

fn type_shape(resolve: &Resolve, id: TypeId) -> String {
    let names = |n: Vec<&str>| n.join(", ");
    match &resolve.types[id].kind {
        TypeDefKind::Record(r) => format!(
            "record {{{}}}",
            names(r.fields.iter().map(|f| f.name.as_str()).collect())
        ),
        TypeDefKind::Enum(e) => format!(
            "enum {{{}}}",
            names(e.cases.iter().map(|c| c.name.as_str()).collect())
        ),
        TypeDefKind::Variant(v) => format!(
            "variant {{{}}}",
            names(v.cases.iter().map(|c| c.name.as_str()).collect())
        ),
        TypeDefKind::Flags(f) => format!(
            "flags {{{}}}",
            names(f.flags.iter().map(|c| c.name.as_str()).collect())
        ),
        TypeDefKind::Type(_) => "alias".into(),
        _ => "other".into(),
    }
}

/// Compares the component's `item` (interface `iface` of the host's package) with the
/// host's, one mismatch per differing function or type.
fn compare(
    resolve: &Resolve,
    item: &WorldItem,
    host: &BTreeMap<String, Shape>,
    iface: &str,
    name: &str,
    out: &mut Vec<String>,
) {
    let (WorldItem::Interface { id, .. }, Some(want)) = (item, host.get(iface)) else {
        out.push(format!("`{name}` is not the host's interface `{iface}`"));
        return;
    };
    let got = shape(resolve, *id);
    for (kind, want, got) in [
        ("function", &want.functions, &got.functions),
        ("type", &want.types, &got.types),
    ] {
        for (n, w) in want {
            match got.get(n) {
                // A component names only the types it uses; the host's functions are all required.
                None if kind == "type" => {}
                None => out.push(format!("`{name}` lacks the {kind} `{n}` {w}")),
                Some(g) if g != w => out.push(format!(
                    "`{name}`: the {kind} `{n}` is {g}; the host's is {w}"
                )),
                Some(_) => {}
            }
        }
        for n in got.keys().filter(|n| !want.contains_key(*n)) {
            out.push(format!(
                "`{name}` has the {kind} `{n}`, which the host's does not"
            ));
        }
    }
}

#[cfg(test)]
mod tests;
