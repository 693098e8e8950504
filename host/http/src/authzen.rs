//! OpenID AuthZEN 1.0 <-> Arbiter: the mapping between the AuthZEN information model
//! (subject, action, resource, context; decision and its context) and Arbiter's
//! request and answer. Documented in `docs/authzen.md`.
//!
//! - `subject.type` gives the principal kind: `user`, `identity` and `human` are a
//!   human; `agent`, `workload` and `service` are themselves; any other type is a
//!   service. `subject.id` is the principal id, `subject.properties` its attributes.
//! - `action.name` is the action; its privilege is `action.properties.privilege`
//!   (`read`, `write`, `admin`, `identity-change`, `secret-access`), else the
//!   listener's default. Other action properties are action attributes.
//! - `resource.type` and `resource.id` are the resource kind and id, its properties
//!   its attributes.
//! - `context.intent` (`purpose`, `task_id`, `ticket`, `justification`) is the intent
//!   and `context.delegation` (a list of subjects, origin first) the delegation chain;
//!   every other context key is a context attribute.
//! - Property values: strings, integers, floats, booleans and lists of strings are
//!   typed attributes; `null` is left out; any other value (objects, mixed lists) is
//!   its JSON text, as a string.
//! - The answer: `decision` is true only for allow. Its `context` has Arbiter's
//!   `decision_id`, `outcome` (`allow`, `deny`, `require-approval`), `reasons` (codes
//!   and caller messages, never admin messages), `obligations`, and for a held
//!   request the `approval_id`.

use arbiter_core::{
    Action, Attributes, Intent, Outcome, Principal, PrincipalKind, Privilege, Request, Resource,
    Value,
};
use arbiter_service::pipeline::Answer;
use serde_json::{Map, Value as Json, json};

use arbiter_core::request_limits::{
    MAX_ATTRIBUTE_NAME_BYTES, MAX_ATTRIBUTE_VALUE_BYTES, MAX_ATTRIBUTES, MAX_DELEGATION,
    MAX_ID_BYTES, MAX_LIST_ITEMS, MAX_NAME_BYTES, MAX_TEXT_BYTES,
};

/// A request that cannot be mapped: the field and what is wrong (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field's path, e.g. `subject.id`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn object<'a>(v: &'a Json, field: &str) -> Result<&'a Map<String, Json>, Invalid> {
    v.as_object()
        .ok_or_else(|| invalid(field, "must be a JSON object"))
}

fn text(field: &str, v: Option<&Json>, max: usize, required: bool) -> Result<String, Invalid> {
    let s = match v {
        None | Some(Json::Null) if required => return Err(invalid(field, "is required")),
        None | Some(Json::Null) => return Ok(String::new()),
        Some(Json::String(s)) => s,
        Some(_) => return Err(invalid(field, "must be a string")),
    };
    if required && s.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if s.len() > max {
        return Err(invalid(
            field,
            format!("is {} bytes, more than the limit of {max}", s.len()),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(s.clone())
}

fn id(field: &str, v: Option<&Json>) -> Result<String, Invalid> {
    let s = text(field, v, MAX_ID_BYTES, true)?;
    if arbiter_core::invisible_in(&s) {
        return Err(invalid(
            field,
            "must not contain zero-width, bidirectional-override or other invisible characters: they make two ids look alike",
        ));
    }
    Ok(s)
}

fn value(field: &str, v: &Json) -> Result<Option<Value>, Invalid> {
    let long = |s: &str| s.len() > MAX_ATTRIBUTE_VALUE_BYTES;
    Ok(Some(match v {
        Json::Null => return Ok(None),
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(f)) if f.is_finite() => Value::Float(f),
            _ => return Err(invalid(field, "numbers must be finite")),
        },
        Json::String(s) if long(s) => {
            return Err(invalid(
                field,
                format!(
                    "is {} bytes, more than the limit of {MAX_ATTRIBUTE_VALUE_BYTES}",
                    s.len()
                ),
            ));
        }
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) if items.iter().all(Json::is_string) => {
            if items.len() > MAX_LIST_ITEMS {
                return Err(invalid(
                    field,
                    format!("{} items is more than {MAX_LIST_ITEMS}", items.len()),
                ));
            }
            let strings: Vec<String> = items
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect();
            if strings.iter().any(|s| long(s)) {
                return Err(invalid(
                    field,
                    format!("an item is more than {MAX_ATTRIBUTE_VALUE_BYTES} bytes"),
                ));
            }
            Value::Strings(strings)
        }
        other => {
            // Nested data reaches the plugins as its JSON text.
            let text = other.to_string();
            if long(&text) {
                return Err(invalid(
                    field,
                    format!(
                        "is {} bytes of JSON, more than the limit of {MAX_ATTRIBUTE_VALUE_BYTES}",
                        text.len()
                    ),
                ));
            }
            Value::Str(text)
        }
    }))
}

fn attributes<'a>(
    field: &str,
    entries: impl Iterator<Item = (&'a String, &'a Json)>,
) -> Result<Attributes, Invalid> {
    let mut out = Attributes::new();
    for (name, v) in entries {
        if name.is_empty()
            || name.len() > MAX_ATTRIBUTE_NAME_BYTES
            || name.chars().any(char::is_control)
        {
            return Err(invalid(
                format!("{field}[{:?}]", arbiter_core::shown(name)),
                format!(
                    "attribute names are 1-{MAX_ATTRIBUTE_NAME_BYTES} bytes without control characters"
                ),
            ));
        }
        if let Some(v) = value(&format!("{field}[{name:?}]"), v)? {
            out.insert(name.clone(), v);
        }
        if out.len() > MAX_ATTRIBUTES {
            return Err(invalid(
                field,
                format!("more than {MAX_ATTRIBUTES} attributes"),
            ));
        }
    }
    Ok(out)
}

fn properties<'a>(
    field: &str,
    entity: &'a Map<String, Json>,
) -> Result<Box<dyn Iterator<Item = (&'a String, &'a Json)> + 'a>, Invalid> {
    match entity.get("properties") {
        None | Some(Json::Null) => Ok(Box::new(std::iter::empty())),
        Some(Json::Object(p)) => Ok(Box::new(p.iter())),
        Some(_) => Err(invalid(
            format!("{field}.properties"),
            "must be a JSON object",
        )),
    }
}

/// `subject.type` to a principal kind.
pub fn kind_of(subject_type: &str) -> PrincipalKind {
    match subject_type {
        "user" | "identity" | "human" => PrincipalKind::Human,
        "agent" => PrincipalKind::Agent,
        "workload" => PrincipalKind::Workload,
        _ => PrincipalKind::Service,
    }
}

fn principal_of(field: &str, v: &Json) -> Result<Principal, Invalid> {
    let s = object(v, field)?;
    let kind = text(
        &format!("{field}.type"),
        s.get("type"),
        MAX_NAME_BYTES,
        true,
    )?;
    let id = id(&format!("{field}.id"), s.get("id"))?;
    let attributes = attributes(&format!("{field}.properties"), properties(field, s)?)?;
    Ok(Principal {
        id,
        kind: kind_of(&kind),
        attributes,
    })
}

/// Maps one AuthZEN evaluation (defaults already merged) to Arbiter's request.
pub fn request(v: &Json, default_privilege: Privilege) -> Result<Request, Invalid> {
    let top = object(v, "request")?;
    let principal = principal_of(
        "subject",
        top.get("subject")
            .ok_or_else(|| invalid("subject", "is required"))?,
    )?;
    let action = object(
        top.get("action")
            .ok_or_else(|| invalid("action", "is required"))?,
        "action",
    )?;
    let name = text("action.name", action.get("name"), MAX_NAME_BYTES, true)?;
    let props = properties("action", action)?;
    let mut privilege = default_privilege;
    let mut action_attributes = Vec::new();
    for (k, v) in props {
        if k == "privilege" {
            let p = v
                .as_str()
                .ok_or_else(|| invalid("action.properties.privilege", "must be a string"))?;
            privilege = serde_json::from_value(json!(p)).map_err(|_| {
                invalid(
                    "action.properties.privilege",
                    format!(
                        "`{}` is not read, write, admin, identity-change or secret-access",
                        arbiter_core::shown(p)
                    ),
                )
            })?;
        } else {
            action_attributes.push((k, v));
        }
    }
    let resource_v = top
        .get("resource")
        .ok_or_else(|| invalid("resource", "is required"))?;
    let resource = object(resource_v, "resource")?;
    let resource = Resource {
        kind: text("resource.type", resource.get("type"), MAX_NAME_BYTES, true)?,
        id: id("resource.id", resource.get("id"))?,
        attributes: attributes("resource.properties", properties("resource", resource)?)?,
    };
    let mut intent = Intent::default();
    let mut delegation = Vec::new();
    let mut context = Attributes::new();
    if let Some(c) = top.get("context").filter(|c| !c.is_null()) {
        let c = object(c, "context")?;
        if let Some(i) = c.get("intent").filter(|i| !i.is_null()) {
            let i = object(i, "context.intent")?;
            intent = Intent {
                purpose: text(
                    "context.intent.purpose",
                    i.get("purpose"),
                    MAX_NAME_BYTES,
                    false,
                )?,
                task_id: text(
                    "context.intent.task_id",
                    i.get("task_id"),
                    MAX_NAME_BYTES,
                    false,
                )?,
                ticket: text(
                    "context.intent.ticket",
                    i.get("ticket"),
                    MAX_NAME_BYTES,
                    false,
                )?,
                justification: text(
                    "context.intent.justification",
                    i.get("justification"),
                    MAX_TEXT_BYTES,
                    false,
                )?,
            };
        }
        if let Some(d) = c.get("delegation").filter(|d| !d.is_null()) {
            let links = d
                .as_array()
                .ok_or_else(|| invalid("context.delegation", "must be a list of subjects"))?;
            if links.len() > MAX_DELEGATION {
                return Err(invalid(
                    "context.delegation",
                    format!("{} links is more than {MAX_DELEGATION}", links.len()),
                ));
            }
            for (n, link) in links.iter().enumerate() {
                delegation.push(principal_of(&format!("context.delegation[{n}]"), link)?);
            }
        }
        context = attributes(
            "context",
            c.iter()
                .filter(|(k, _)| *k != "intent" && *k != "delegation"),
        )?;
    }
    Ok(Request {
        principal,
        delegation,
        action: Action {
            name,
            privilege,
            attributes: attributes("action.properties", action_attributes.into_iter())?,
        },
        resource,
        intent,
        context,
    })
}

/// Arbiter's answer as an AuthZEN decision.
pub fn decision(answer: &Answer) -> Json {
    let d = &answer.decision;
    let reasons: Vec<Json> = d
        .reasons
        .iter()
        .map(|r| json!({ "code": r.code, "message": r.caller_message }))
        .collect();
    let mut context = json!({
        "decision_id": d.id,
        "outcome": d.outcome.as_str(),
        "reasons": reasons,
        "obligations": d.obligations,
        "policy_set": { "name": d.set.name, "version": d.set.version },
    });
    if d.outcome == Outcome::RequireApproval
        && let Some(id) = &answer.approval_id
    {
        context["approval_id"] = id.as_str().into();
    }
    json!({ "decision": d.outcome == Outcome::Allow, "context": context })
}

/// An evaluation's defaults (top-level `subject`, `action`, `resource`, `context`)
/// under its own values: the item's keys win, key by key at the top level.
pub fn merged<'a>(defaults: &Map<String, Json>, item: &'a Json) -> std::borrow::Cow<'a, Json> {
    const KEYS: [&str; 4] = ["subject", "action", "resource", "context"];
    if !KEYS.iter().any(|k| defaults.contains_key(*k)) {
        return std::borrow::Cow::Borrowed(item);
    }
    let mut out = Map::new();
    for key in KEYS {
        if let Some(v) = defaults.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(item) = item.as_object() {
        for (k, v) in item {
            out.insert(k.clone(), v.clone());
        }
    }
    std::borrow::Cow::Owned(Json::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn todo_request() -> Json {
        json!({
            "subject": {"type": "user", "id": "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs", "properties": {"roles": ["viewer"], "level": 3}},
            "action": {"name": "can_read_todos"},
            "resource": {"type": "todo", "id": "todo-1", "properties": {"ownerID": "rick@the-citadel.com"}},
            "context": {"intent": {"task_id": "t-1"}, "time": "2024-05-31T15:22-07:00", "risk": 0.5}
        })
    }

    #[test]
    fn an_authzen_request_maps_to_an_arbiter_request() {
        let r = request(&todo_request(), Privilege::Read).expect("maps");
        assert_eq!(r.principal.kind, PrincipalKind::Human);
        assert_eq!(
            r.principal.attributes["roles"],
            Value::Strings(vec!["viewer".into()])
        );
        assert_eq!(r.principal.attributes["level"], Value::Int(3));
        assert_eq!(r.action.name, "can_read_todos");
        assert_eq!(r.action.privilege, Privilege::Read);
        assert_eq!(r.resource.kind, "todo");
        assert_eq!(r.intent.task_id, "t-1");
        assert_eq!(r.context["risk"], Value::Float(0.5));
        assert!(!r.context.contains_key("intent"));
    }

    #[test]
    fn missing_and_mistyped_fields_are_named() {
        let field = |v: Json| request(&v, Privilege::Read).expect_err("refused").field;
        let mut v = todo_request();
        v["subject"].as_object_mut().expect("o").remove("id");
        assert_eq!(field(v), "subject.id");
        let mut v = todo_request();
        v.as_object_mut().expect("o").remove("action");
        assert_eq!(field(v), "action");
        let mut v = todo_request();
        v["resource"]["type"] = json!(7);
        assert_eq!(field(v), "resource.type");
        let mut v = todo_request();
        v["action"]["properties"] = json!({"privilege": "root"});
        assert_eq!(field(v), "action.properties.privilege");
        let mut v = todo_request();
        v["subject"]["id"] = json!("al\u{200b}ice");
        assert_eq!(field(v), "subject.id");
    }

    #[test]
    fn item_values_override_the_defaults() {
        let defaults = json!({"subject": {"type": "user", "id": "a"}, "action": {"name": "x"}});
        let item = json!({"action": {"name": "y"}, "resource": {"type": "t", "id": "1"}});
        let m = merged(defaults.as_object().expect("o"), &item);
        assert_eq!(m["subject"]["id"], "a");
        assert_eq!(m["action"]["name"], "y");
        assert_eq!(m["resource"]["id"], "1");
    }
}
