//! One AuthZEN evaluation (from a COAZ mapping) as Arbiter's request, refined with
//! what the catalog and the session know. COAZ puts the human in `subject` and the
//! agent in `context.agent`; Arbiter's principal is whoever acts (the agent) and its
//! delegation chain says for whom (the human). Documented in `docs/mcp.md`.

use std::collections::HashMap;

use arbiter_proto as pb;
use serde_json::{Map, Value as Json};

use crate::coaz::MappingError;

/// What the gateway adds to a resolved evaluation.
#[derive(Debug, Clone)]
pub struct Framing<'a> {
    /// The MCP method.
    pub method: &'a str,
    /// For `tools/call`: the tool; it names the action when the mapping is the default.
    pub tool: Option<&'a str>,
    /// Whether the evaluation came from the default mapping.
    pub default_mapping: bool,
    /// The agent, from the verified token (`client_id`) or the configuration: never
    /// from a mapping, which the server being authorised may have written.
    pub agent: Option<&'a str>,
    /// The privilege level (catalog).
    pub privilege: pb::Privilege,
    /// The resource the catalog names (kind, id), replacing the mapping's.
    pub resource: Option<(String, String)>,
    /// The session's task id.
    pub task_id: &'a str,
    /// Context the gateway adds (`workspace`, `scratch`, `mcp_server`).
    pub context: &'a Map<String, Json>,
    /// The policy set to ask; empty for the server's default.
    pub policy_set: &'a str,
}

fn invalid(message: impl Into<String>) -> MappingError {
    MappingError(message.into())
}

/// A JSON value as a typed attribute; `None` for null.
pub fn value(v: &Json) -> Option<pb::Value> {
    use pb::value::Kind;
    let kind = match v {
        Json::Null => return None,
        Json::String(s) => Kind::Str(s.clone()),
        Json::Bool(b) => Kind::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Kind::Int(i),
            None => Kind::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::Array(items) if items.iter().all(Json::is_string) => Kind::Strings(pb::StringList {
            values: items
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
        }),
        other => Kind::Str(other.to_string()),
    };
    Some(pb::Value { kind: Some(kind) })
}

fn attributes<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Json)>,
) -> HashMap<String, pb::Value> {
    entries
        .filter_map(|(k, v)| Some((k.clone(), value(v)?)))
        .collect()
}

fn properties(object: &Map<String, Json>) -> HashMap<String, pb::Value> {
    object
        .get("properties")
        .and_then(Json::as_object)
        .map(|p| attributes(p.iter()))
        .unwrap_or_default()
}

fn string<'a>(
    object: &'a Map<String, Json>,
    field: &str,
    path: &str,
) -> Result<&'a str, MappingError> {
    match object.get(field) {
        Some(Json::String(s)) => Ok(s),
        Some(other) => Err(invalid(format!(
            "`{path}.{field}` must be a string, not {other}"
        ))),
        None => Err(invalid(format!("`{path}.{field}` is required"))),
    }
}

/// Builds Arbiter's request from one resolved evaluation.
pub fn authorize(eval: &Json, f: &Framing<'_>) -> Result<pb::AuthorizeRequest, MappingError> {
    let obj = |field: &str| -> Result<&Map<String, Json>, MappingError> {
        eval.get(field)
            .and_then(Json::as_object)
            .ok_or_else(|| invalid(format!("`{field}` must be an object")))
    };
    let subject = obj("subject")?;
    let subject_id = string(subject, "id", "subject")?;
    string(subject, "type", "subject")?;
    let empty = Map::new();
    let context = match eval.get("context") {
        Some(Json::Object(c)) => c,
        None | Some(Json::Null) => &empty,
        Some(_) => return Err(invalid("`context` must be an object")),
    };
    // The subject is the token's `sub` (anchored by the mapping); its type and
    // properties are the mapping's, untrusted, so the principal is a human with no
    // attributes from it (the binding: only the verified id is trustworthy).
    let agent = f.agent;
    let human = pb::Principal {
        id: subject_id.to_string(),
        kind: pb::PrincipalKind::Human as i32,
        attributes: HashMap::new(),
    };
    let (principal, delegation) = match agent {
        Some(a) if a != subject_id => (
            pb::Principal {
                id: a.to_string(),
                kind: pb::PrincipalKind::Agent as i32,
                attributes: HashMap::new(),
            },
            vec![human],
        ),
        // The agent acts for itself.
        Some(_) => (
            pb::Principal {
                kind: pb::PrincipalKind::Agent as i32,
                ..human
            },
            Vec::new(),
        ),
        None => (human, Vec::new()),
    };
    let action = obj("action")?;
    let mapped_name = string(action, "name", "action")?;
    let name = match (f.default_mapping, f.tool) {
        (true, Some(tool)) => tool,
        _ => mapped_name,
    };
    let mut action_attributes = properties(action);
    action_attributes.insert("mcp_method".into(), text(f.method));
    if let Some(tool) = f.tool {
        action_attributes.insert("tool".into(), text(tool));
    }
    let resource = match &f.resource {
        Some((kind, id)) => pb::Resource {
            id: id.clone(),
            kind: kind.clone(),
            attributes: HashMap::new(),
        },
        None => {
            let r = obj("resource")?;
            pb::Resource {
                id: string(r, "id", "resource")?.to_string(),
                kind: string(r, "type", "resource")?.to_string(),
                attributes: properties(r),
            }
        }
    };
    let mut ctx = attributes(context.iter());
    ctx.extend(attributes(f.context.iter()));
    Ok(pb::AuthorizeRequest {
        principal: Some(principal),
        delegation,
        action: Some(pb::Action {
            name: name.to_string(),
            privilege: f.privilege as i32,
            attributes: action_attributes,
        }),
        resource: Some(resource),
        intent: Some(pb::Intent {
            task_id: f.task_id.to_string(),
            ..Default::default()
        }),
        context: ctx,
        policy_set: f.policy_set.to_string(),
        ..Default::default()
    })
}

fn text(s: &str) -> pb::Value {
    pb::Value {
        kind: Some(pb::value::Kind::Str(s.to_string())),
    }
}

/// Makes `path` absolute against `base` and removes `.` and `..` segments lexically
/// (`..` at the root stays at the root), so a policy compares the path the server
/// will act on. Symbolic links are the server's to resolve: the filesystem server
/// refuses links that leave its allowed directories.
pub fn normalise_path(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", base.trim_end_matches('/'))
    };
    let mut parts: Vec<&str> = Vec::new();
    for segment in joined.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_made_absolute_and_normalised() {
        assert_eq!(normalise_path("/ws", "a/b.txt"), "/ws/a/b.txt");
        assert_eq!(normalise_path("/ws/", "./a/../b"), "/ws/b");
        assert_eq!(normalise_path("/ws", "../../etc/passwd"), "/etc/passwd");
        assert_eq!(normalise_path("/ws", "/tmp//x/"), "/tmp/x");
        assert_eq!(normalise_path("/ws", "/.."), "/");
    }

    #[test]
    fn the_agent_acts_for_the_subject() {
        let eval = json!({
            "subject": { "type": "identity", "id": "alice" },
            "context": { "agent": "bot", "n": 3 },
            "action": { "name": "tools/call" },
            "resource": { "type": "tool", "id": "write_file" },
        });
        let extra = Map::from_iter([("workspace".to_string(), json!("/ws"))]);
        let f = Framing {
            method: "tools/call",
            tool: Some("write_file"),
            default_mapping: true,
            agent: Some("bot"),
            privilege: pb::Privilege::Write,
            resource: Some(("file".into(), "/ws/a".into())),
            task_id: "mcp-1",
            context: &extra,
            policy_set: "",
        };
        let r = authorize(&eval, &f).unwrap();
        let p = r.principal.unwrap();
        assert_eq!(
            (p.id.as_str(), p.kind),
            ("bot", pb::PrincipalKind::Agent as i32)
        );
        assert_eq!(r.delegation[0].id, "alice");
        assert_eq!(r.delegation[0].kind, pb::PrincipalKind::Human as i32);
        let a = r.action.unwrap();
        assert_eq!(a.name, "write_file");
        assert_eq!(a.privilege, pb::Privilege::Write as i32);
        assert_eq!(a.attributes["tool"], text("write_file"));
        assert_eq!(r.resource.unwrap().id, "/ws/a");
        assert_eq!(r.intent.unwrap().task_id, "mcp-1");
        assert_eq!(r.context["workspace"], text("/ws"));
        assert!(r.context.contains_key("n"));
    }
}
