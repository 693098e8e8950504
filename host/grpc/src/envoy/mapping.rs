//! `[envoy]`: how an Envoy `ext_authz` check becomes an Arbiter request. Documented
//! in `docs/envoy.md`.
//!
//! - The principal is the header `principal_header` when configured (a header Envoy
//!   sets itself, after `jwt_authn` say, and strips from clients), else the
//!   downstream's mTLS identity as Envoy saw it (`source.principal`). Its kind is
//!   `principal_kind` (default `service`); `[envoy.principal_attributes]` name
//!   headers that become its attributes.
//! - The action and privilege come from the first `[[envoy.routes]]` entry whose
//!   methods and path template match; else the action is `http:METHOD` and the
//!   privilege the method's (`[envoy.method_privileges]`, defaults: GET, HEAD and
//!   OPTIONS read; everything else write).
//! - The resource is the path without its query; its kind the route's `resource_kind`
//!   (default `http_route`); its attributes the template's captured segments, `host`
//!   and `method`.
//! - `[envoy.intent]` and `[envoy.context]` name headers that become the intent and
//!   context attributes (typed: integers, floats, `true` and `false` are themselves,
//!   anything else a string); the client's IP is the context attribute `source_ip`
//!   unless `[envoy.context]` maps `source_ip` to a header (set by a trusted edge).

use std::collections::{BTreeMap, HashMap};

use arbiter_core::{
    Action, Attributes, Intent, Principal, PrincipalKind, Privilege, Request, Resource, Value,
};
use serde::Deserialize;

use arbiter_core::request_limits::{MAX_ATTRIBUTE_VALUE_BYTES, MAX_ID_BYTES, MAX_TEXT_BYTES};

/// `[envoy]` as written in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvoyConfig {
    /// The policy set that answers; the default set when unset.
    pub policy_set: Option<String>,
    /// A header carrying the principal id; unset: the downstream's mTLS identity.
    pub principal_header: Option<String>,
    /// The principal's kind: `human`, `agent`, `workload` or `service` (default).
    pub principal_kind: Option<PrincipalKind>,
    /// Principal attribute name to the header that carries it.
    #[serde(default)]
    pub principal_attributes: BTreeMap<String, String>,
    /// Intent field (`purpose`, `task_id`, `ticket`, `justification`) to header.
    #[serde(default)]
    pub intent: BTreeMap<String, String>,
    /// Context attribute name to header.
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    /// HTTP method to privilege, over the defaults.
    #[serde(default)]
    pub method_privileges: BTreeMap<String, Privilege>,
    /// The resource kind when no route names one (default `http_route`).
    pub resource_kind: Option<String>,
    /// The request header carrying an approval id to redeem (default
    /// `x-arbiter-approval-id`); it is stripped before the request goes upstream.
    pub approval_header: Option<String>,
    /// A request header asking for a credential (default
    /// `x-arbiter-credential-request`); its value is the lifetime wish in seconds, or
    /// empty for the default.
    pub credential_request_header: Option<String>,
    /// The header that carries an issued credential to the upstream (default
    /// `x-arbiter-credential`).
    pub credential_header: Option<String>,
    /// Routes, first match wins.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// One `[[envoy.routes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Methods it covers; empty: all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// A path template: literal segments, `{name}` for one segment, and a last
    /// `{name*}` for the rest of the path.
    pub path: String,
    /// The action name.
    pub action: String,
    /// The privilege; unset: the method's.
    pub privilege: Option<Privilege>,
    /// The resource kind; unset: `[envoy] resource_kind`.
    pub resource_kind: Option<String>,
}

/// The defaults of the headers the door itself reads and writes.
pub const APPROVAL_HEADER: &str = "x-arbiter-approval-id";
/// See [`EnvoyConfig::credential_request_header`].
pub const CREDENTIAL_REQUEST_HEADER: &str = "x-arbiter-credential-request";
/// See [`EnvoyConfig::credential_header`].
pub const CREDENTIAL_HEADER: &str = "x-arbiter-credential";

impl EnvoyConfig {
    /// Checks what serde cannot: header names, route templates, intent fields.
    pub fn validate(&self) -> Result<(), String> {
        let headers = self
            .principal_header
            .iter()
            .chain(self.approval_header.iter())
            .chain(self.credential_request_header.iter())
            .chain(self.credential_header.iter())
            .chain(self.principal_attributes.values())
            .chain(self.intent.values())
            .chain(self.context.values());
        for h in headers {
            if h.is_empty()
                || h.len() > 128
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "config [envoy]: header name `{h}` is not a plain HTTP header name (letters, digits, - and _)"
                ));
            }
        }
        for k in self.intent.keys() {
            if !matches!(
                k.as_str(),
                "purpose" | "task_id" | "ticket" | "justification"
            ) {
                return Err(format!(
                    "config [envoy.intent]: `{k}` is not an intent field; use purpose, task_id, ticket or justification"
                ));
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            Template::parse(&r.path).map_err(|e| {
                format!("config [[envoy.routes]] #{}: path `{}`: {e}", i + 1, r.path)
            })?;
            if r.action.is_empty() {
                return Err(format!(
                    "config [[envoy.routes]] #{}: `action` is empty",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    fn header<'a>(&self, name: Option<&'a String>, default: &'a str) -> &'a str {
        name.map_or(default, String::as_str)
    }

    /// The header carrying an approval to redeem.
    pub fn approval_header(&self) -> String {
        self.header(self.approval_header.as_ref(), APPROVAL_HEADER)
            .to_ascii_lowercase()
    }

    /// The header asking for a credential.
    pub fn credential_request_header(&self) -> String {
        self.header(
            self.credential_request_header.as_ref(),
            CREDENTIAL_REQUEST_HEADER,
        )
        .to_ascii_lowercase()
    }

    /// The header carrying an issued credential upstream.
    pub fn credential_header(&self) -> String {
        self.header(self.credential_header.as_ref(), CREDENTIAL_HEADER)
            .to_ascii_lowercase()
    }

    fn privilege_of(&self, method: &str) -> Privilege {
        if let Some(p) = self.method_privileges.get(method) {
            return *p;
        }
        match method {
            "GET" | "HEAD" | "OPTIONS" => Privilege::Read,
            _ => Privilege::Write,
        }
    }
}

/// What the check asked, as Envoy sent it.
#[derive(Debug)]
pub struct Check<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The path, with its query.
    pub path: &'a str,
    /// The host.
    pub host: &'a str,
    /// Request headers (Envoy sends their names in lower case).
    pub headers: &'a HashMap<String, String>,
    /// The downstream's mTLS identity, as Envoy saw it.
    pub source_principal: &'a str,
    /// The downstream's IP address.
    pub source_ip: Option<&'a str>,
}

/// A check that cannot be mapped: which part, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmapped {
    /// The header or attribute.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// Whether the cause is a missing principal (401) rather than bad input (400).
    pub unauthenticated: bool,
}

fn unmapped(field: impl Into<String>, message: impl Into<String>) -> Unmapped {
    Unmapped {
        field: field.into(),
        message: message.into(),
        unauthenticated: false,
    }
}

fn typed(s: &str) -> Value {
    if let Ok(i) = s.parse::<i64>() {
        return Value::Int(i);
    }
    match s {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => match s.parse::<f64>() {
            Ok(f) if f.is_finite() && s.contains('.') => Value::Float(f),
            _ => Value::Str(s.to_string()),
        },
    }
}

fn header_value<'a>(check: &Check<'a>, header: &str) -> Result<Option<&'a str>, Unmapped> {
    match check.headers.get(&header.to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) if v.len() > MAX_ATTRIBUTE_VALUE_BYTES => Err(unmapped(
            format!("header {header}"),
            format!("is longer than {MAX_ATTRIBUTE_VALUE_BYTES} bytes"),
        )),
        Some(v) => Ok(Some(v.as_str())),
    }
}

fn attributes(check: &Check<'_>, from: &BTreeMap<String, String>) -> Result<Attributes, Unmapped> {
    let mut out = Attributes::new();
    for (name, header) in from {
        if let Some(v) = header_value(check, header)? {
            out.insert(name.clone(), typed(v));
        }
    }
    Ok(out)
}

/// The Arbiter request for `check`.
pub fn request(config: &EnvoyConfig, check: &Check<'_>) -> Result<Request, Unmapped> {
    let principal_id = match &config.principal_header {
        Some(h) => header_value(check, h)?.unwrap_or_default(),
        None => check.source_principal,
    };
    if principal_id.is_empty() {
        let from = config.principal_header.as_ref().map_or(
            "the downstream's client certificate (source.principal)".to_string(),
            |h| format!("header {h}"),
        );
        return Err(Unmapped {
            field: "principal".into(),
            message: format!("no principal: it comes from {from}"),
            unauthenticated: true,
        });
    }
    if principal_id.len() > MAX_ID_BYTES {
        return Err(unmapped(
            "principal",
            format!("is longer than {MAX_ID_BYTES} bytes"),
        ));
    }
    if arbiter_core::invisible_in(principal_id) {
        return Err(unmapped(
            "principal",
            "must not contain zero-width, bidirectional-override or other invisible characters",
        ));
    }
    let path = check.path.split(['?', '#']).next().unwrap_or_default();
    if path.len() > MAX_ID_BYTES {
        return Err(unmapped(
            "path",
            format!("is longer than {MAX_ID_BYTES} bytes"),
        ));
    }
    let method = check.method.to_ascii_uppercase();
    let mut resource_attributes = Attributes::new();
    let (action, privilege, kind) = match config.routes.iter().find_map(|r| {
        let methods_match =
            r.methods.is_empty() || r.methods.iter().any(|m| m.eq_ignore_ascii_case(&method));
        let captured = methods_match
            .then(|| Template::parse(&r.path).ok()?.capture(path))
            .flatten()?;
        Some((r, captured))
    }) {
        Some((route, captured)) => {
            for (k, v) in captured {
                resource_attributes.insert(k, Value::Str(v));
            }
            (
                route.action.clone(),
                route
                    .privilege
                    .unwrap_or_else(|| config.privilege_of(&method)),
                route.resource_kind.clone(),
            )
        }
        None => (format!("http:{method}"), config.privilege_of(&method), None),
    };
    resource_attributes.insert("host".into(), Value::Str(check.host.to_string()));
    resource_attributes.insert("method".into(), Value::Str(method.clone()));
    let mut intent = Intent::default();
    for (field, header) in &config.intent {
        let Some(v) = header_value(check, header)? else {
            continue;
        };
        if v.len() > MAX_TEXT_BYTES {
            return Err(unmapped(
                format!("header {header}"),
                format!("is longer than {MAX_TEXT_BYTES} bytes"),
            ));
        }
        let slot = match field.as_str() {
            "purpose" => &mut intent.purpose,
            "task_id" => &mut intent.task_id,
            "ticket" => &mut intent.ticket,
            _ => &mut intent.justification,
        };
        *slot = v.to_string();
    }
    // The client's address, unless a context header (set by a trusted edge) says it.
    let mut context = Attributes::new();
    if let Some(ip) = check.source_ip {
        context.insert("source_ip".into(), Value::Str(ip.to_string()));
    }
    context.extend(attributes(check, &config.context)?);
    Ok(Request {
        principal: Principal {
            id: principal_id.to_string(),
            kind: config.principal_kind.unwrap_or(PrincipalKind::Service),
            attributes: attributes(check, &config.principal_attributes)?,
        },
        delegation: Vec::new(),
        action: Action {
            name: action,
            privilege,
            attributes: Attributes::new(),
        },
        resource: Resource {
            id: path.to_string(),
            kind: kind
                .or_else(|| config.resource_kind.clone())
                .unwrap_or_else(|| "http_route".into()),
            attributes: resource_attributes,
        },
        intent,
        context,
    })
}

/// A parsed route path template.
#[derive(Debug)]
struct Template<'a> {
    segments: Vec<Segment<'a>>,
}

#[derive(Debug)]
enum Segment<'a> {
    Literal(&'a str),
    One(&'a str),
    Rest(&'a str),
}

impl<'a> Template<'a> {
    fn parse(path: &'a str) -> Result<Self, String> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err("must start with /".into());
        };
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let mut segments = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            let segment = match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('*') {
                    Some(name) if i + 1 == parts.len() && !name.is_empty() => Segment::Rest(name),
                    Some(_) => return Err("a `{name*}` segment must be last and named".into()),
                    None if !name.is_empty() => Segment::One(name),
                    None => return Err("a `{}` segment needs a name".into()),
                },
                None if p.contains(['{', '}']) => {
                    return Err(format!("segment `{p}` mixes text and a `{{name}}`"));
                }
                None => Segment::Literal(p),
            };
            segments.push(segment);
        }
        Ok(Self { segments })
    }

    /// The captured segments when `path` matches.
    fn capture(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let mut out = Vec::new();
        for (i, s) in self.segments.iter().enumerate() {
            match s {
                Segment::Rest(name) => {
                    let tail = parts.get(i..).filter(|t| !t.is_empty())?.join("/");
                    out.push(((*name).to_string(), tail));
                    return Some(out);
                }
                Segment::Literal(l) => (parts.get(i)? == l).then_some(())?,
                Segment::One(name) => {
                    let p = parts.get(i).filter(|p| !p.is_empty())?;
                    out.push(((*name).to_string(), (*p).to_string()));
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(out)
    }
}

#[cfg(test)]
mod tests;
