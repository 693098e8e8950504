//! The request: who wants to do what, to which resource, why, in which context.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A typed attribute value. WIT has no recursive types, so nested data travels as a
/// JSON string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// `true` / `false`.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// A list of strings.
    Strings(Vec<String>),
}

/// Named attributes, kept sorted by name so that digests and plugin inputs are stable.
pub type Attributes = BTreeMap<String, Value>;

/// What kind of identity a principal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalKind {
    /// A person.
    Human,
    /// A service account or API key.
    Service,
    /// An AI agent.
    Agent,
    /// A workload identity (pod, job, function).
    Workload,
}

impl PrincipalKind {
    /// The wire name, as in JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Service => "service",
            Self::Agent => "agent",
            Self::Workload => "workload",
        }
    }
}

/// An identity: the caller of the action, or one link of its delegation chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// Stable id, e.g. `spiffe://acme.org/agent/triage-bot`.
    pub id: String,
    /// Human, service, agent or workload.
    pub kind: PrincipalKind,
    /// e.g. `team`.
    #[serde(default)]
    pub attributes: Attributes,
}

/// The privilege level of an action, declared by the enforcement point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Privilege {
    /// Reads data.
    Read,
    /// Changes data.
    Write,
    /// Changes configuration or infrastructure.
    Admin,
    /// Changes who can do what: roles, policies, group membership, credentials.
    IdentityChange,
    /// Reads secrets.
    SecretAccess,
}

impl Privilege {
    /// The wire name, as in JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
            Self::IdentityChange => "identity-change",
            Self::SecretAccess => "secret-access",
        }
    }
}

/// What the principal wants to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// e.g. `iam:AttachRolePolicy`.
    pub name: String,
    /// Declared by the enforcement point, never guessed by a plugin.
    pub privilege: Privilege,
    /// Anything else about the action.
    #[serde(default)]
    pub attributes: Attributes,
}

/// What the action is taken on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// e.g. an ARN.
    #[serde(default)]
    pub id: String,
    /// e.g. `database`, `s3_bucket`.
    #[serde(default)]
    pub kind: String,
    /// e.g. `env`, `owner_team`.
    #[serde(default)]
    pub attributes: Attributes,
}

/// The declared reason for the action. Empty strings mean "not given".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// e.g. `incident-response`, `data-export`.
    #[serde(default)]
    pub purpose: String,
    /// Ties approvals and credentials to one task.
    #[serde(default, alias = "task-id")]
    pub task_id: String,
    /// A change or incident ticket.
    #[serde(default)]
    pub ticket: String,
    /// Free text.
    #[serde(default)]
    pub justification: String,
}

/// One authorization question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Who takes the action.
    pub principal: Principal,
    /// On whose behalf, origin first. Empty when acting for itself.
    #[serde(default)]
    pub delegation: Vec<Principal>,
    /// What is done.
    pub action: Action,
    /// To what.
    #[serde(default)]
    pub resource: Resource,
    /// Why.
    #[serde(default)]
    pub intent: Intent,
    /// What the enforcement point knows at request time.
    #[serde(default)]
    pub context: Attributes,
}

impl Request {
    /// The request's parts, as named in JSON, TOML and redaction paths, in order.
    pub const PARTS: [&str; 6] = [
        "principal",
        "delegation",
        "action",
        "resource",
        "intent",
        "context",
    ];

    /// The canonical digest of the request: SHA-256 over its canonical JSON (attribute
    /// maps sorted by name, fields in declaration order). An approval is bound to this
    /// digest, so any change to any part of the request gives another digest.
    pub fn digest(&self) -> [u8; 32] {
        // Serialising these types cannot fail: every map key is a string and every
        // float is written as a number (NaN becomes null).
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(&canonical).into()
    }

    /// The path of the first field holding a NUL character (U+0000), as the doors
    /// name fields (`intent.task_id`, `context["k"]`). No field has a use for one, and
    /// PostgreSQL's text columns cannot store one where SQLite's can, so the pipeline
    /// refuses it for every door and both state backends alike.
    pub fn field_with_nul(&self) -> Option<String> {
        let nul = |s: &str| s.contains('\0');
        // The field's name is only made for a hit: this runs on every decision.
        let principal = |p: &Principal| {
            if nul(&p.id) {
                return Some("id".to_string());
            }
            attribute_with_nul("attributes", &p.attributes)
        };
        let texts = [
            ("action.name", &self.action.name),
            ("resource.id", &self.resource.id),
            ("resource.kind", &self.resource.kind),
            ("intent.purpose", &self.intent.purpose),
            ("intent.task_id", &self.intent.task_id),
            ("intent.ticket", &self.intent.ticket),
            ("intent.justification", &self.intent.justification),
        ];
        principal(&self.principal)
            .map(|f| format!("principal.{f}"))
            .or_else(|| {
                let mut links = self.delegation.iter().enumerate();
                links.find_map(|(i, p)| principal(p).map(|f| format!("delegation[{i}].{f}")))
            })
            .or_else(|| {
                texts
                    .iter()
                    .find(|(_, s)| nul(s))
                    .map(|(f, _)| f.to_string())
            })
            .or_else(|| attribute_with_nul("action.attributes", &self.action.attributes))
            .or_else(|| attribute_with_nul("resource.attributes", &self.resource.attributes))
            .or_else(|| attribute_with_nul("context", &self.context))
    }
}

/// `field[name]` of the first attribute whose name or text holds a NUL character.
fn attribute_with_nul(field: &str, attributes: &Attributes) -> Option<String> {
    let nul = |s: &String| s.contains('\0');
    attributes.iter().find_map(|(name, value)| {
        let in_value = match value {
            Value::Str(s) => nul(s),
            Value::Strings(list) => list.iter().any(nul),
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => false,
        };
        (nul(name) || in_value).then(|| format!("{field}[{:?}]", crate::shown(name)))
    })
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Str(s) => f.write_str(s),
            Self::Strings(list) => write!(f, "{}", list.join(",")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Request {
        serde_json::from_str(
            r#"{"principal":{"id":"spiffe://a/agent/x","kind":"agent","attributes":{"team":"payments"}},
                "action":{"name":"db:Query","privilege":"read"},
                "resource":{"id":"r1","kind":"database","attributes":{"env":"prod"}},
                "context":{"hour":5,"mfa":false,"risk":1.5,"tags":["a","b"]}}"#,
        )
        .expect("sample parses")
    }

    #[test]
    fn attribute_values_keep_their_types() {
        let r = sample();
        assert_eq!(r.context["hour"], Value::Int(5));
        assert_eq!(r.context["mfa"], Value::Bool(false));
        assert_eq!(r.context["risk"], Value::Float(1.5));
        assert_eq!(
            r.context["tags"],
            Value::Strings(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn digest_changes_with_any_field() {
        let a = sample();
        let mut b = a.clone();
        assert_eq!(a.digest(), b.digest());
        b.context.insert("hour".into(), Value::Int(6));
        assert_ne!(a.digest(), b.digest());
        let mut c = a.clone();
        c.intent.ticket = "T-1".into();
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn a_nul_anywhere_is_found_and_named() {
        assert_eq!(sample().field_with_nul(), None);
        type Spoil = fn(&mut Request);
        let cases: [(&str, Spoil); 6] = [
            ("principal.id", |r| r.principal.id.push('\0')),
            ("intent.task_id", |r| r.intent.task_id.push('\0')),
            ("resource.id", |r| r.resource.id.push('\0')),
            ("context[\"a\\0\"]", |r| {
                r.context.insert("a\0".into(), Value::Int(1));
            }),
            ("context[\"list\"]", |r| {
                r.context.insert(
                    "list".into(),
                    Value::Strings(vec!["ok".into(), "\0".into()]),
                );
            }),
            ("delegation[0].attributes[\"team\"]", |r| {
                r.delegation = vec![r.principal.clone()];
                r.delegation[0]
                    .attributes
                    .insert("team".into(), Value::Str("x\0".into()));
            }),
        ];
        for (field, spoil) in cases {
            let mut r = sample();
            spoil(&mut r);
            assert_eq!(r.field_with_nul().as_deref(), Some(field));
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<Request>(
            r#"{"principal":{"id":"p","kind":"agent"},"action":{"name":"a","privilege":"read"},"approved":true}"#,
        )
        .expect_err("unknown field");
        assert!(err.to_string().contains("approved"), "{err}");
    }
}
