//! COAZ-MCP mappings: the default mapping of every MCP method and the mappings a server
//! declares in a tool's `inputSchema` (`x-authzen-mapping`), resolved into AuthZEN
//! evaluations. A string starting with `$` is a CEL expression over `params` (the
//! request's params) and `token` (the caller's verified claims); `$$` escapes a
//! literal `$`; everything else is a literal. `.?` selection that finds nothing leaves
//! the field out. Expressions are compiled once per mapping, evaluated per message.

use std::sync::{Arc, LazyLock};

use cel::{Context, Env, Program, Value};
use serde_json::{Map, Value as Json, json};

/// The longest expression a mapping may hold: mappings come from the MCP server, the
/// party being authorised, and a short expression is all any mapping needs.
const MAX_EXPRESSION_BYTES: usize = 4096;

/// The claim that names the subject (the human the agent acts for).
pub const SUBJECT_CLAIM: &str = "sub";

static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// Why no AuthZEN request could be built (JSON-RPC `-32602`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("COAZ mapping error: {0}")]
pub struct MappingError(pub String);

fn error(message: impl Into<String>) -> MappingError {
    MappingError(message.into())
}

/// A mapping template with its expressions compiled.
#[derive(Debug, Clone)]
enum Node {
    Literal(Json),
    Expression {
        source: String,
        program: Arc<Program>,
    },
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
}

impl Node {
    fn compile(v: &Json) -> Result<Self, MappingError> {
        Ok(match v {
            Json::String(s) if s.starts_with("$$") => Self::Literal(Json::String(s[1..].into())),
            Json::String(s) if s.starts_with('$') => {
                let source = &s[1..];
                if source.len() > MAX_EXPRESSION_BYTES {
                    return Err(error(format!(
                        "an expression of {} bytes is longer than {MAX_EXPRESSION_BYTES}",
                        source.len()
                    )));
                }
                let program = ENV.compile(source).map_err(|e| {
                    error(format!(
                        "expression '{s}' does not compile: {}",
                        first_line(&e.to_string())
                    ))
                })?;
                Self::Expression {
                    source: s.clone(),
                    program: Arc::new(program),
                }
            }
            Json::Object(m) => Self::Object(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), Self::compile(v)?)))
                    .collect::<Result<_, MappingError>>()?,
            ),
            Json::Array(items) => {
                Self::Array(items.iter().map(Self::compile).collect::<Result<_, _>>()?)
            }
            other => Self::Literal(other.clone()),
        })
    }

    /// The resolved value; `None` for an optional selection that found nothing.
    fn resolve(&self, ctx: &Context<'_, '_>) -> Result<Option<Json>, MappingError> {
        Ok(match self {
            Self::Literal(v) => Some(v.clone()),
            Self::Expression { source, program } => {
                let value = program
                    .execute(ctx)
                    .map_err(|e| error(format!("expression '{source}' failed: {e}")))?;
                let value = match <&cel::objects::OptionalValue>::try_from(&value) {
                    Ok(optional) => match optional.value() {
                        Some(v) => v.clone(),
                        None => return Ok(None),
                    },
                    Err(_) => value,
                };
                Some(to_json(source, &value)?)
            }
            Self::Object(entries) => {
                let mut out = Map::new();
                for (k, v) in entries {
                    if let Some(v) = v.resolve(ctx)? {
                        out.insert(k.clone(), v);
                    }
                }
                Some(Json::Object(out))
            }
            Self::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for v in items {
                    out.push(v.resolve(ctx)?.unwrap_or(Json::Null));
                }
                Some(Json::Array(out))
            }
        })
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn to_json(source: &str, v: &Value) -> Result<Json, MappingError> {
    v.json().map_err(|_| {
        error(format!(
            "expression '{source}' gave a value that is not JSON"
        ))
    })
}

/// The two envelopes a mapping may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Envelope {
    Evaluation,
    Evaluations,
}

/// A compiled mapping: its envelope and template.
#[derive(Debug, Clone)]
pub struct Mapping {
    envelope: Envelope,
    template: Node,
    declared: bool,
}

impl Mapping {
    /// Compiles a mapping (`{"evaluation": {...}}` or `{"evaluations": {...}}`);
    /// `declared` for mappings an MCP server declared (stricter rules on `subject`).
    pub fn compile(v: &Json, declared: bool) -> Result<Self, MappingError> {
        let m = v
            .as_object()
            .ok_or_else(|| error("a mapping must be a JSON object"))?;
        let mut keys = m.keys();
        let (Some(key), None) = (keys.next(), keys.next()) else {
            return Err(error(
                "a mapping must have exactly one member, `evaluation` or `evaluations`",
            ));
        };
        let envelope = match key.as_str() {
            "evaluation" => Envelope::Evaluation,
            "evaluations" => Envelope::Evaluations,
            other => {
                return Err(error(format!(
                    "unknown envelope `{other}` (known: evaluation, evaluations)"
                )));
            }
        };
        let body = &m[key];
        if !body.is_object() {
            return Err(error(format!("`{key}` must be an object")));
        }
        if declared && envelope == Envelope::Evaluations {
            let items = body.get("evaluations").and_then(Json::as_array);
            for item in items.into_iter().flatten() {
                if item.get("subject").is_some() {
                    return Err(error(
                        "a declared mapping may not set `subject` inside `evaluations` entries",
                    ));
                }
            }
        }
        Ok(Self {
            envelope,
            template: Node::compile(body)?,
            declared,
        })
    }

    /// Resolves the mapping against `params` and `token` into AuthZEN evaluations
    /// (top-level defaults merged into each entry), with the subject anchored to the
    /// token's subject claim.
    pub fn evaluations(&self, params: &Json, token: &Json) -> Result<Vec<Json>, MappingError> {
        let mut ctx = Context::with_env(ENV.clone());
        ctx.add_variable("params", params.clone())
            .map_err(|_| error("the request's params are not JSON"))?;
        ctx.add_variable("token", token.clone())
            .map_err(|_| error("the token's claims are not JSON"))?;
        let body = self.template.resolve(&ctx)?.unwrap_or(Json::Null);
        let Json::Object(mut body) = body else {
            return Err(error("the mapping did not resolve to an object"));
        };
        let subject_id = token
            .get(SUBJECT_CLAIM)
            .and_then(Json::as_str)
            .ok_or_else(|| {
                error(format!(
                    "the token has no `{SUBJECT_CLAIM}` claim to anchor the subject"
                ))
            })?;
        let items = match self.envelope {
            Envelope::Evaluation => vec![Json::Object(body)],
            Envelope::Evaluations => {
                let entries = match body.remove("evaluations") {
                    Some(Json::Array(a)) if !a.is_empty() => a,
                    _ => return Err(error("`evaluations` must be a non-empty list")),
                };
                entries
                    .into_iter()
                    .map(|entry| merged(&body, entry))
                    .collect::<Result<_, _>>()?
            }
        };
        items
            .into_iter()
            .map(|item| anchored(item, subject_id, self.declared))
            .collect()
    }
}

/// An `evaluations` entry with the top-level defaults it does not override (AuthZEN
/// section 7: each of subject, action, resource and context is taken whole).
fn merged(defaults: &Map<String, Json>, entry: Json) -> Result<Json, MappingError> {
    let Json::Object(mut entry) = entry else {
        return Err(error("each `evaluations` entry must be an object"));
    };
    for key in ["subject", "action", "resource", "context"] {
        if !entry.contains_key(key)
            && let Some(v) = defaults.get(key)
        {
            entry.insert(key.into(), v.clone());
        }
    }
    Ok(Json::Object(entry))
}

/// Anchors the subject: a missing subject or id becomes the token's subject, a
/// missing type `identity`; any other id is a mapping error (the gateway does not take
/// an identity from the server it is authorising).
fn anchored(item: Json, subject_id: &str, declared: bool) -> Result<Json, MappingError> {
    let Json::Object(mut item) = item else {
        return Err(error("an evaluation must be an object"));
    };
    let subject = item.entry("subject").or_insert_with(|| json!({}));
    let Json::Object(subject) = subject else {
        return Err(error("`subject` must be an object"));
    };
    match subject.get("id") {
        None if declared => {
            subject.insert("id".into(), json!(subject_id));
        }
        None => return Err(error("`subject.id` is required")),
        Some(Json::String(id)) if id == subject_id => {}
        Some(other) => {
            return Err(error(format!(
                "`subject.id` resolved to {other}, not the verified token subject: a mapping may not assert another identity"
            )));
        }
    }
    subject.entry("type").or_insert_with(|| json!("identity"));
    for field in ["action", "resource"] {
        if !item.get(field).is_some_and(Json::is_object) {
            return Err(error(format!(
                "`{field}` is required and must be an object"
            )));
        }
    }
    Ok(Json::Object(item))
}

/// The default mapping of `method` (COAZ-MCP section 7), or `None` for a method the
/// binding does not map (denied) or passes through (see [`is_pass_through`]).
pub fn default_mapping(method: &str) -> Option<&'static Mapping> {
    static DEFAULTS: LazyLock<Vec<(&'static str, Mapping)>> = LazyLock::new(|| {
        let server = json!({ "type": "mcp_server", "id": "$token.aud" });
        let on = |action: &str, resource: Json, context: Json| {
            let mut ctx = json!({ "agent": "$token.?client_id" });
            if let (Json::Object(c), Json::Object(extra)) = (&mut ctx, context) {
                c.extend(extra);
            }
            json!({ "evaluation": {
                "subject": { "type": "identity", "id": "$token.sub" },
                "context": ctx,
                "action": { "name": action },
                "resource": resource,
            }})
        };
        let none = json!({});
        let table = [
            (
                "initialize",
                on(
                    "initialize",
                    server.clone(),
                    json!({ "protocol_version": "$params.protocolVersion" }),
                ),
            ),
            ("tools/list", on("tools/list", server.clone(), none.clone())),
            (
                "tools/call",
                on(
                    "tools/call",
                    json!({ "type": "tool", "id": "$params.name" }),
                    none.clone(),
                ),
            ),
            (
                "resources/list",
                on("resources/list", server.clone(), none.clone()),
            ),
            (
                "resources/templates/list",
                on("resources/templates/list", server.clone(), none.clone()),
            ),
            (
                "resources/read",
                on(
                    "resources/read",
                    json!({ "type": "resource", "id": "$params.uri" }),
                    none.clone(),
                ),
            ),
            (
                "resources/subscribe",
                on(
                    "resources/subscribe",
                    json!({ "type": "resource", "id": "$params.uri" }),
                    none.clone(),
                ),
            ),
            (
                "resources/unsubscribe",
                on(
                    "resources/unsubscribe",
                    json!({ "type": "resource", "id": "$params.uri" }),
                    none.clone(),
                ),
            ),
            (
                "prompts/list",
                on("prompts/list", server.clone(), none.clone()),
            ),
            (
                "prompts/get",
                on(
                    "prompts/get",
                    json!({ "type": "prompt", "id": "$params.name" }),
                    none.clone(),
                ),
            ),
            (
                "completion/complete",
                on(
                    "completion/complete",
                    json!({
                        "type": "$params.ref.type == 'ref/prompt' ? 'prompt' : 'resource'",
                        "id": "$params.ref.type == 'ref/prompt' ? params.ref.name : params.ref.uri",
                    }),
                    none.clone(),
                ),
            ),
            (
                "logging/setLevel",
                on(
                    "logging/setLevel",
                    server.clone(),
                    json!({ "level": "$params.level" }),
                ),
            ),
            (
                "tasks/get",
                on(
                    "tasks/get",
                    json!({ "type": "task", "id": "$params.taskId" }),
                    none.clone(),
                ),
            ),
            (
                "tasks/result",
                on(
                    "tasks/result",
                    json!({ "type": "task", "id": "$params.taskId" }),
                    none.clone(),
                ),
            ),
            (
                "tasks/cancel",
                on(
                    "tasks/cancel",
                    json!({ "type": "task", "id": "$params.taskId" }),
                    none.clone(),
                ),
            ),
            ("tasks/list", on("tasks/list", server, none)),
        ];
        table
            .into_iter()
            .map(|(m, v)| {
                #[expect(clippy::expect_used, reason = "the table above is a constant")]
                let mapping = Mapping::compile(&v, false).expect("default mappings compile");
                (m, mapping)
            })
            .collect()
    });
    DEFAULTS.iter().find(|(m, _)| *m == method).map(|(_, m)| m)
}

/// Methods that proceed without a decision: a `ping` request and id-less
/// notifications (`notifications/...`); the gateway applies this in `gate`.
pub fn is_pass_through(method: &str, has_id: bool) -> bool {
    if has_id {
        method == "ping"
    } else {
        method.starts_with("notifications/")
    }
}

#[cfg(test)]
mod tests;
