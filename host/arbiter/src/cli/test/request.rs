//! The merged request of a case: deserialized with the part that is wrong named, and
//! shown on one line under a mismatch.

use arbiter_core::{Action, Attributes, Intent, Principal, Request, Resource, Value};
use serde::de::DeserializeOwned;

/// A request table as one line of JSON, its parts in request order.
pub(super) fn one_line(request: &toml::Table) -> String {
    // In the request's own order.
    let parts: Vec<String> = Request::PARTS
        .iter()
        .filter_map(|key| {
            let value = serde_json::to_string(request.get(*key)?).ok()?;
            Some(format!("\"{key}\":{value}"))
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// Deserializes the merged request (unknown fields refused) and, on error, names the
/// part of the request that is wrong.
pub(super) fn to_request(table: toml::Table) -> Result<Request, String> {
    let whole = toml::Value::Table(table);
    match whole.clone().try_into::<Request>() {
        Ok(r) => Ok(r),
        Err(e) => {
            let toml::Value::Table(table) = whole else {
                return Err(e.message().to_string());
            };
            Err(locate(&table).unwrap_or_else(|| e.message().to_string()))
        }
    }
}

/// The first part of a request that does not deserialize on its own, as `` `path`: why ``.
fn locate(request: &toml::Table) -> Option<String> {
    request.iter().find_map(|(key, value)| {
        let found = match key.as_str() {
            "principal" => part_error::<Principal>(key, value),
            "action" => part_error::<Action>(key, value),
            "resource" => part_error::<Resource>(key, value),
            "delegation" => match value.as_array() {
                Some(links) => links.iter().enumerate().find_map(|(i, link)| {
                    part_error::<Principal>(&format!("delegation[{i}]"), link)
                }),
                None => error_of::<Vec<Principal>>(value).map(|e| (key.clone(), e)),
            },
            "intent" => error_of::<Intent>(value).map(|e| (key.clone(), e)),
            "context" => attributes_error(key, value),
            _ => None,
        };
        found.map(|(path, why)| format!("`{path}`: {why}"))
    })
}

/// Why a part with attributes (principal, action, resource) is not a `T`: its
/// attributes first, then the part itself.
pub(super) fn part_error<T: DeserializeOwned>(
    path: &str,
    value: &toml::Value,
) -> Option<(String, String)> {
    value
        .get("attributes")
        .and_then(|a| attributes_error(&format!("{path}.attributes"), a))
        .or_else(|| error_of::<T>(value).map(|e| (path.to_string(), e)))
}

/// The first attribute at `path` whose value is not an attribute value.
fn attributes_error(path: &str, value: &toml::Value) -> Option<(String, String)> {
    let Some(table) = value.as_table() else {
        return error_of::<Attributes>(value).map(|e| (path.to_string(), e));
    };
    table.iter().find_map(|(name, v)| {
        error_of::<Value>(v).map(|_| {
            (
                format!("{path}.{name}"),
                format!(
                    "`{v}` is not an attribute value (a string, integer, float, boolean or array of strings)"
                ),
            )
        })
    })
}

/// Why `value` is not a `T`, if it is not.
fn error_of<T: DeserializeOwned>(value: &toml::Value) -> Option<String> {
    value
        .clone()
        .try_into::<T>()
        .err()
        .map(|e| e.message().trim_end().to_string())
}
