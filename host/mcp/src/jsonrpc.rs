//! The JSON-RPC 2.0 pieces the gateway writes itself: errors and progress.

use serde_json::{Value as Json, json};

/// An authorization denial (COAZ-MCP: `-32001`, in the implementation-defined range).
pub const DENIED: i64 = -32001;
/// A mapping error or a request that cannot be decided as sent (`Invalid params`).
pub const INVALID_PARAMS: i64 = -32602;
/// Arbiter unreachable or failing: fail closed (`Internal error`).
pub const INTERNAL: i64 = -32603;
/// A message that is not JSON-RPC.
pub const INVALID_REQUEST: i64 = -32600;
/// A body that is not JSON.
pub const PARSE_ERROR: i64 = -32700;

/// The `_meta` key under which a stdio upstream receives the call's credential. The
/// gateway removes it from every message an agent sends, so no agent can plant one.
pub const CREDENTIAL_META: &str = "dev.arbiter/credential";

/// The prefix of the ids of requests the gateway itself sends the server; an agent's
/// request may not use it.
pub const OWN_ID_PREFIX: &str = "arbiter-gateway-";

/// An error response to the request with `id` (`null` when it could not be read).
pub fn error(id: &Json, code: i64, message: impl Into<String>, data: Option<Json>) -> Json {
    let mut e = json!({ "code": code, "message": message.into() });
    if let Some(d) = data {
        e["data"] = d;
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": e })
}

/// A progress notification for `token`.
pub fn progress(token: &Json, progress: u64, message: &str) -> Json {
    json!({
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": { "progressToken": token, "progress": progress, "message": message },
    })
}

/// What a message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    /// A request: it has a method and an id.
    Request { method: &'a str },
    /// A notification: a method and no id.
    Notification { method: &'a str },
    /// A response (to a request the server sent the client).
    Response,
    /// Not JSON-RPC.
    Invalid,
}

/// Classifies `msg`.
pub fn kind(msg: &Json) -> Kind<'_> {
    let Some(obj) = msg.as_object() else {
        return Kind::Invalid;
    };
    match (obj.get("method").and_then(Json::as_str), obj.get("id")) {
        (Some(method), Some(id)) if !id.is_null() => Kind::Request { method },
        (Some(method), None) => Kind::Notification { method },
        (None, Some(_)) if obj.contains_key("result") || obj.contains_key("error") => {
            Kind::Response
        }
        _ => Kind::Invalid,
    }
}

/// The request's id, or `null`.
pub fn id_of(msg: &Json) -> Json {
    msg.get("id").cloned().unwrap_or(Json::Null)
}
