//! The scenarios' decision files as requests, for native tests of the plugins.
//!
//! A decision file (`tests/vectors/authzen/*.json`) has the shape of the interop
//! runner's `interop-todo-decisions.json`: `evaluation`, a list of single
//! evaluations `{request, expected}` with `expected` a boolean, and `evaluations`, a
//! list of batches whose `expected` is the list of `{decision}` items (or, for a batch
//! without items, one `{decision}`). An `expected` decision of `null` is one the
//! scenario leaves to the implementer: only its shape is checked. Cases may carry an
//! `id` (the certification scenario's test ids).
//!
//! Requests are mapped as the AuthZEN door maps them (`host/http/src/authzen.rs`,
//! `docs/authzen.md`); a batch item takes the batch's top-level `subject`, `action`,
//! `resource` and `context` for the keys it does not have. An item that cannot be
//! mapped is answered `decision: false` by the door, so it keeps its mapping error.

use arbiter_policy::{
    Action, Attribute, Intent, Principal, PrincipalKind, Privilege, Request, Resource, Value,
};
use serde_json::{Map, Value as Json};

/// One decision to check: a single evaluation or one item of a batch.
#[derive(Debug)]
pub struct Case {
    /// Where it is in the file: `evaluation[3]`, `evaluations[1][0]`, with its id.
    pub name: String,
    /// The mapped request, or why the door would refuse it.
    pub request: Result<Request, String>,
    /// The decision the scenario requires; `None` when it leaves it open.
    pub expected: Option<bool>,
}

/// A decision file: its single evaluations and its batches, flattened to cases.
#[derive(Debug)]
pub struct DecisionFile {
    /// Every single evaluation, then every item of every batch, in file order.
    pub cases: Vec<Case>,
    /// How many single evaluations the file has.
    pub singles: usize,
    /// How many batches the file has.
    pub batches: usize,
}

/// Reads a decision file.
pub fn decision_file(text: &str) -> Result<DecisionFile, String> {
    let file: Json = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let list = |key: &str| -> Result<Vec<Json>, String> {
        match file.get(key) {
            None => Ok(Vec::new()),
            Some(Json::Array(items)) => Ok(items.clone()),
            Some(_) => Err(format!("`{key}` must be a list")),
        }
    };
    let (singles, batches) = (list("evaluation")?, list("evaluations")?);
    let mut cases = Vec::new();
    for (n, single) in singles.iter().enumerate() {
        cases.push(Case {
            name: named(format!("evaluation[{n}]"), single),
            request: request(&single["request"]),
            expected: decision(&single["expected"], &format!("evaluation[{n}]"))?,
        });
    }
    for (n, batch) in batches.iter().enumerate() {
        let at = format!("evaluations[{n}]");
        let top = batch["request"]
            .as_object()
            .ok_or_else(|| format!("{at}: `request` must be an object"))?;
        match top.get("evaluations").and_then(Json::as_array) {
            Some(items) if !items.is_empty() => {
                let expected = batch["expected"]
                    .as_array()
                    .filter(|e| e.len() == items.len())
                    .ok_or_else(|| format!("{at}: `expected` must list one decision per item"))?;
                for (i, (item, e)) in items.iter().zip(expected).enumerate() {
                    cases.push(Case {
                        name: named(format!("{at}[{i}]"), batch),
                        request: request(&merged(top, item)),
                        expected: decision(&e["decision"], &format!("{at}[{i}]"))?,
                    });
                }
            }
            // Without items, the batch endpoint answers as one evaluation.
            _ => cases.push(Case {
                name: named(at.clone(), batch),
                request: request(&batch["request"]),
                expected: decision(&batch["expected"]["decision"], &at)?,
            }),
        }
    }
    Ok(DecisionFile {
        cases,
        singles: singles.len(),
        batches: batches.len(),
    })
}

fn named(at: String, case: &Json) -> String {
    match case.get("id").and_then(Json::as_str) {
        Some(id) => format!("{at} ({id})"),
        None => at,
    }
}

fn decision(v: &Json, at: &str) -> Result<Option<bool>, String> {
    match v {
        Json::Bool(b) => Ok(Some(*b)),
        Json::Null => Ok(None),
        _ => Err(format!(
            "{at}: the expected decision must be true, false or null"
        )),
    }
}

/// A batch's defaults under one item: the item's keys win, whole, at the top level.
pub fn merged(top: &Map<String, Json>, item: &Json) -> Json {
    let mut out = Map::new();
    for key in ["subject", "action", "resource", "context"] {
        if let Some(v) = top.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(item) = item.as_object() {
        out.extend(item.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Json::Object(out)
}

/// One AuthZEN evaluation as the request a plugin receives.
pub fn request(v: &Json) -> Result<Request, String> {
    let principal = principal_of("subject", v.get("subject"))?;
    let action = entity("action", v.get("action"))?;
    let mut privilege = Privilege::Read;
    let mut action_attributes = Vec::new();
    for (name, value) in properties(action) {
        if name == "privilege" {
            privilege = match value.as_str() {
                Some("read") => Privilege::Read,
                Some("write") => Privilege::Write,
                Some("admin") => Privilege::Admin,
                Some("identity-change") => Privilege::IdentityChange,
                Some("secret-access") => Privilege::SecretAccess,
                _ => return Err("`action.properties.privilege`: not a privilege".into()),
            };
        } else {
            action_attributes.extend(attribute(name, value));
        }
    }
    let resource = entity("resource", v.get("resource"))?;
    let mut intent = Intent {
        purpose: String::new(),
        task_id: String::new(),
        ticket: String::new(),
        justification: String::new(),
    };
    let mut delegation = Vec::new();
    let mut context = Vec::new();
    if let Some(c) = v.get("context").and_then(Json::as_object) {
        for (name, value) in c {
            match name.as_str() {
                "intent" => {
                    let text = |k: &str| value[k].as_str().unwrap_or_default().to_string();
                    intent = Intent {
                        purpose: text("purpose"),
                        task_id: text("task_id"),
                        ticket: text("ticket"),
                        justification: text("justification"),
                    };
                }
                "delegation" => {
                    for (n, link) in value.as_array().into_iter().flatten().enumerate() {
                        delegation.push(principal_of(
                            &format!("context.delegation[{n}]"),
                            Some(link),
                        )?);
                    }
                }
                _ => context.extend(attribute(name, value)),
            }
        }
    }
    Ok(Request {
        principal,
        delegation,
        action: Action {
            name: text(action, "action", "name")?,
            privilege,
            attributes: action_attributes,
        },
        resource: Resource {
            kind: text(resource, "resource", "type")?,
            id: text(resource, "resource", "id")?,
            attributes: properties(resource)
                .flat_map(|(n, v)| attribute(n, v))
                .collect(),
        },
        intent,
        context,
        approval_verified: false,
    })
}

fn entity<'a>(field: &str, v: Option<&'a Json>) -> Result<&'a Map<String, Json>, String> {
    match v {
        None | Some(Json::Null) => Err(format!("`{field}`: is required")),
        Some(Json::Object(o)) => Ok(o),
        Some(_) => Err(format!("`{field}`: must be a JSON object")),
    }
}

fn text(entity: &Map<String, Json>, field: &str, key: &str) -> Result<String, String> {
    match entity.get(key) {
        Some(Json::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Json::String(_)) => Err(format!("`{field}.{key}`: must not be empty")),
        None | Some(Json::Null) => Err(format!("`{field}.{key}`: is required")),
        Some(_) => Err(format!("`{field}.{key}`: must be a string")),
    }
}

fn principal_of(field: &str, v: Option<&Json>) -> Result<Principal, String> {
    let s = entity(field, v)?;
    let kind = match text(s, field, "type")?.as_str() {
        "user" | "identity" | "human" => PrincipalKind::Human,
        "agent" => PrincipalKind::Agent,
        "workload" => PrincipalKind::Workload,
        _ => PrincipalKind::Service,
    };
    Ok(Principal {
        id: text(s, field, "id")?,
        kind,
        attributes: properties(s).flat_map(|(n, v)| attribute(n, v)).collect(),
    })
}

fn properties(entity: &Map<String, Json>) -> impl Iterator<Item = (&String, &Json)> {
    entity
        .get("properties")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
}

/// A property as the door passes it: typed, `null` left out, nested JSON as its text.
fn attribute(name: &str, v: &Json) -> Option<Attribute> {
    let value = match v {
        Json::Null => return None,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64()?),
        },
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) if items.iter().all(Json::is_string) => Value::Strings(
            items
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
        ),
        other => Value::Str(other.to_string()),
    };
    Some(Attribute {
        name: name.to_string(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbiter_policy::AttributesExt;

    #[test]
    fn properties_become_typed_attributes_and_nested_json_its_text() {
        let r = request(&serde_json::json!({
            "subject": {"type": "identity", "id": "PID-1", "properties": {"roles": ["a"], "n": 3, "gone": null}},
            "action": {"name": "delete", "properties": {"soft": true, "privilege": "write"}},
            "resource": {"type": "record", "id": "r", "properties": {"meta": {"a": 1}, "score": 0.5}},
            "context": {"intent": {"ticket": "T-1"}, "ip": "10.0.0.1"}
        }))
        .expect("maps");
        assert_eq!(r.principal.kind, PrincipalKind::Human);
        assert_eq!(
            r.principal.attributes.strings("roles"),
            Some(&["a".to_string()][..])
        );
        assert_eq!(r.principal.attributes.int("n"), Some(3));
        assert!(r.principal.attributes.get("gone").is_none());
        assert_eq!(r.action.privilege, Privilege::Write);
        assert_eq!(r.action.attributes.bool("soft"), Some(true));
        assert!(r.action.attributes.get("privilege").is_none());
        assert_eq!(r.resource.attributes.str("meta"), Some(r#"{"a":1}"#));
        assert_eq!(r.resource.attributes.float("score"), Some(0.5));
        assert_eq!(r.intent.ticket, "T-1");
        assert_eq!(r.context.str("ip"), Some("10.0.0.1"));
    }

    #[test]
    fn batch_items_take_the_defaults_they_lack_and_bad_items_keep_their_error() {
        let file = decision_file(
            r#"{"evaluations": [{"request": {
                "subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                "evaluations": [{"resource": {"type": "record", "id": "r1"}}, {}]},
                "expected": [{"decision": true}, {"decision": false}]}]}"#,
        )
        .expect("reads");
        assert_eq!((file.singles, file.batches, file.cases.len()), (0, 1, 2));
        let first = file.cases[0].request.as_ref().expect("maps");
        assert_eq!(
            (first.principal.id.as_str(), first.resource.id.as_str()),
            ("alice", "r1")
        );
        assert_eq!(
            file.cases[1].request.as_ref().expect_err("no resource"),
            "`resource`: is required"
        );
    }
}
