//! What the audit log says about each event: the record of a decision (with the
//! request, redacted as configured), of an approval step, of a credential event and of
//! an administrative act. Replay (`arbiter replay --audit`) reads the decision records
//! back, so their `body.request` is the request as the plugins saw it, unless redacted.

use arbiter_audit::{Kind, Record};
use arbiter_core::{
    Decision, Obligations, PluginOutcome, PluginReport, Reason, Request, SetIdentity,
};
use serde::Serialize;
use serde::ser::SerializeMap as _;
use serde_json::Value;

/// What replaced a redacted field.
pub const REDACTED: &str = "[redacted]";

/// Request strings longer than this are recorded by their SHA-256 and length, not in
/// full, so that the record of a large request stays small (a 4 MiB request would
/// otherwise write 4 MB to the log); `body.digested` lists where.
pub const MAX_RECORDED_VALUE_BYTES: usize = 1024;

fn long(s: &str) -> bool {
    s.len() > MAX_RECORDED_VALUE_BYTES
}

/// Whether any string of `request` is recorded by digest.
fn has_long_values(request: &Request) -> bool {
    let attrs = |a: &arbiter_core::Attributes| {
        a.values().any(|v| match v {
            arbiter_core::Value::Str(s) => long(s),
            arbiter_core::Value::Strings(items) => items.iter().any(|s| long(s)),
            _ => false,
        })
    };
    let principal = |p: &arbiter_core::Principal| long(&p.id) || attrs(&p.attributes);
    // Attribute names are bounded by the API (far below the limit) and not checked.
    principal(&request.principal)
        || request.delegation.iter().any(principal)
        || long(&request.resource.id)
        || attrs(&request.resource.attributes)
        || attrs(&request.context)
        || long(&request.intent.justification)
}

/// Replaces every long string under `v` by its digest; returns where.
fn digest_long_strings(v: &mut Value, at: &str, out: &mut Vec<String>) {
    use sha2::Digest as _;
    match v {
        Value::String(s) if long(s) => {
            out.push(at.to_string());
            *s = format!(
                "[sha256:{} {} bytes]",
                hex::encode(sha2::Sha256::digest(s.as_bytes())),
                s.len()
            );
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                digest_long_strings(item, &format!("{at}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            // Names are short: the API refuses long attribute names.
            for (k, item) in map.iter_mut() {
                digest_long_strings(item, &format!("{at}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// The record of one decision.
///
/// This runs once per decision on the request path, so the body is serialized straight
/// from the request and the decision (no intermediate [`Value`] tree, which cost several
/// microseconds a decision in allocations and copies); only a configured redaction goes
/// through a [`Value`] to edit the request.
pub fn decision(
    request: &Request,
    d: &Decision,
    caller: &str,
    approval_id: Option<&str>,
    latency_micros: u64,
    redaction: &crate::redaction::Redaction,
    now_micros: i64,
) -> Record {
    let redact = redaction.paths();
    let mut digested = Vec::new();
    let (request_body, redacted) = if redact.is_empty() && !has_long_values(request) {
        (RequestBody::Plain(request), Vec::new())
    } else {
        let mut v = serde_json::to_value(request).unwrap_or(Value::Null);
        let redacted = redact
            .iter()
            .filter(|path| redact_path(&mut v, path))
            .collect();
        digest_long_strings(&mut v, "request", &mut digested);
        (RequestBody::Redacted(v), redacted)
    };
    let body = DecisionBody {
        request: request_body,
        redacted,
        digested,
        // Keyed when anything is redacted: a plain digest would let anyone holding the
        // log recover a redacted value by trying candidates.
        request_digest: redaction.request_digest(request),
        set: &d.set,
        caller,
        approval_id,
        approved: approval_id.is_some(),
        reasons: d.reasons.iter().map(ReasonBody).collect(),
        obligations: &d.obligations,
        plugins: d.plugins.iter().map(PluginBody).collect(),
        evaluation_us: micros(d.elapsed),
        latency_us: latency_micros,
    };
    let mut r = Record::new(Kind::Decision, now_micros);
    r.principal = Some(
        redaction
            .shown("principal.id", &request.principal.id)
            .to_string(),
    );
    r.outcome = Some(d.outcome.as_str().to_string());
    r.policy_set = Some(d.set.name.clone());
    r.decision_id = Some(d.id.clone());
    set_body(&mut r, &body);
    r
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The body of a decision record, borrowed from the request and the decision.
#[derive(Serialize)]
struct DecisionBody<'a> {
    request: RequestBody<'a>,
    redacted: Vec<&'a String>,
    /// Where strings were recorded by digest (absent when nowhere: records read as
    /// they always did).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    digested: Vec<String>,
    request_digest: String,
    set: &'a SetIdentity,
    caller: &'a str,
    approval_id: Option<&'a str>,
    approved: bool,
    reasons: Vec<ReasonBody<'a>>,
    obligations: &'a Obligations,
    plugins: Vec<PluginBody<'a>>,
    evaluation_us: u64,
    latency_us: u64,
}

#[derive(Serialize)]
#[serde(untagged)]
enum RequestBody<'a> {
    Plain(&'a Request),
    Redacted(Value),
}

struct ReasonBody<'a>(&'a Reason);

impl Serialize for ReasonBody<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("code", &self.0.code)?;
        m.serialize_entry("message", &self.0.caller_message)?;
        m.serialize_entry("admin_message", &self.0.admin_message)?;
        m.end()
    }
}

struct PluginBody<'a>(&'a PluginReport);

impl Serialize for PluginBody<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", &p.name)?;
        match &p.outcome {
            PluginOutcome::Verdict(v) => {
                m.serialize_entry("effect", v.effect.as_str())?;
                let codes: Vec<&str> = v.reasons.iter().map(|r| r.code.as_str()).collect();
                m.serialize_entry("reasons", &codes)?;
            }
            PluginOutcome::Failed(f) => {
                m.serialize_entry("effect", "failed")?;
                m.serialize_entry("failure", f.kind.as_str())?;
                m.serialize_entry("detail", &f.detail)?;
            }
        }
        m.serialize_entry("elapsed_us", &micros(p.elapsed))?;
        m.end()
    }
}

/// Replaces the field at `path` (dot-separated; applied to every element of arrays on
/// the way, e.g. `delegation.attributes.email`) with [`REDACTED`]. `true` when
/// something was replaced.
pub fn redact_path(v: &mut Value, path: &str) -> bool {
    fn walk(v: &mut Value, parts: &[&str]) -> bool {
        match v {
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |hit, item| walk(item, parts) | hit),
            Value::Object(map) => match parts {
                [] => false,
                [last] => match map.get_mut(*last) {
                    Some(field) => {
                        *field = Value::String(REDACTED.into());
                        true
                    }
                    None => false,
                },
                [first, rest @ ..] => map.get_mut(*first).is_some_and(|next| walk(next, rest)),
            },
            _ => false,
        }
    }
    let parts: Vec<&str> = path.split('.').collect();
    walk(v, &parts)
}

/// Any other event: `kind`, who acted (`actor`), what happened (`outcome`), details.
pub fn event(
    kind: Kind,
    actor: &str,
    outcome: &str,
    decision_id: Option<&str>,
    body: Value,
    now_micros: i64,
) -> Record {
    let mut r = Record::new(kind, now_micros);
    r.principal = Some(actor.to_string());
    r.outcome = Some(outcome.to_string());
    r.decision_id = decision_id.map(str::to_string);
    set_body(&mut r, &body);
    r
}

/// Sets `r`'s body. Serializing a [`Value`] or the body types here cannot fail (string
/// keys, finite numbers); should it ever, the record still says what happened, and the
/// server log says why its details are missing.
pub fn set_body<T: Serialize + ?Sized>(r: &mut Record, body: &T) {
    if let Err(e) = r.set_body(body) {
        tracing::error!(error = %e, kind = %r.kind, "cannot serialize an audit record's body");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_replaces_fields_everywhere_on_the_path() {
        let mut v = serde_json::json!({
            "context": {"source_ip": "10.0.0.1", "risk": 3},
            "delegation": [{"attributes": {"email": "a@x"}}, {"attributes": {}}],
        });
        assert!(redact_path(&mut v, "context.source_ip"));
        assert!(redact_path(&mut v, "delegation.attributes.email"));
        assert!(!redact_path(&mut v, "context.missing"));
        assert_eq!(v["context"]["source_ip"], REDACTED);
        assert_eq!(v["context"]["risk"], 3);
        assert_eq!(v["delegation"][0]["attributes"]["email"], REDACTED);
    }
}
