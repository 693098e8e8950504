//! What the audit log says about each event: the record of a decision (with the
//! request, redacted as configured), of an approval step, of a credential event and of
//! an administrative act. Replay (`arbiter replay --audit`) reads the decision records
//! back, so their `body.request` is the request as the plugins saw it, unless redacted.

use arbiter_audit::{Kind, Record};
use arbiter_core::{Decision, PluginOutcome, Request};
use serde_json::{Value, json};

/// What replaced a redacted field.
pub const REDACTED: &str = "[redacted]";

/// The record of one decision.
pub fn decision(
    request: &Request,
    d: &Decision,
    caller: &str,
    approval_id: Option<&str>,
    latency_micros: u64,
    redact: &[String],
) -> Record {
    let mut request_json = serde_json::to_value(request).unwrap_or(Value::Null);
    let redacted: Vec<&String> = redact
        .iter()
        .filter(|path| redact_path(&mut request_json, path))
        .collect();
    let plugins: Vec<Value> = d
        .plugins
        .iter()
        .map(|p| match &p.outcome {
            PluginOutcome::Verdict(v) => json!({
                "name": p.name,
                "effect": v.effect.as_str(),
                "reasons": v.reasons.iter().map(|r| &r.code).collect::<Vec<_>>(),
                "elapsed_us": p.elapsed.as_micros() as u64,
            }),
            PluginOutcome::Failed(f) => json!({
                "name": p.name,
                "effect": "failed",
                "failure": f.kind.as_str(),
                "detail": f.detail,
                "elapsed_us": p.elapsed.as_micros() as u64,
            }),
        })
        .collect();
    let mut r = Record::new(Kind::Decision, arbiter_store::now_micros());
    let principal_redacted = redact
        .iter()
        .any(|p| p == "principal" || p == "principal.id");
    r.principal = Some(if principal_redacted {
        REDACTED.to_string()
    } else {
        request.principal.id.clone()
    });
    r.outcome = Some(d.outcome.as_str().to_string());
    r.policy_set = Some(d.set.name.clone());
    r.decision_id = Some(d.id.clone());
    r.body = json!({
        "request": request_json,
        "redacted": redacted,
        "request_digest": hex::encode(request.digest()),
        "set": { "name": d.set.name, "version": d.set.version, "digest": d.set.digest },
        "caller": caller,
        "approval_id": approval_id,
        "approved": approval_id.is_some(),
        "reasons": d.reasons.iter().map(|r| json!({
            "code": r.code, "message": r.caller_message, "admin_message": r.admin_message,
        })).collect::<Vec<_>>(),
        "obligations": d.obligations,
        "plugins": plugins,
        "evaluation_us": d.elapsed.as_micros() as u64,
        "latency_us": latency_micros,
    });
    r
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
) -> Record {
    let mut r = Record::new(kind, arbiter_store::now_micros());
    r.principal = Some(actor.to_string());
    r.outcome = Some(outcome.to_string());
    r.decision_id = decision_id.map(str::to_string);
    r.body = body;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_replaces_fields_everywhere_on_the_path() {
        let mut v = json!({
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
