//! Domain to protobuf: decisions for callers (caller messages only, never admin
//! messages), and requests for clients (`arbiter check`, the load generator).

use std::collections::HashMap;

use arbiter_core::{
    Attributes, Decision, Outcome, PluginOutcome, Principal, PrincipalKind, Privilege, Reason,
    Request, Value,
};

use crate::proto as pb;

/// The caller's view of a decision. Admin messages stay on the server.
pub fn decision(d: &Decision, explain: bool) -> pb::AuthorizeResponse {
    pb::AuthorizeResponse {
        decision: outcome(d.outcome) as i32,
        decision_id: d.id.clone(),
        reasons: d.reasons.iter().map(reason).collect(),
        obligations: (!d.obligations.is_empty()).then(|| pb::Obligations {
            max_credential_lifetime_seconds: d
                .obligations
                .max_credential_lifetime
                .map(|t| t.as_secs()),
            approvers_required: d.obligations.approvers_required,
        }),
        policy_set: d.set.name.clone(),
        policy_set_version: d.set.version.clone(),
        policy_set_digest: d.set.digest.clone(),
        plugins: if explain {
            d.plugins
                .iter()
                .map(|p| {
                    let (effect, failure, reasons) = match &p.outcome {
                        PluginOutcome::Verdict(v) => (
                            v.effect.as_str(),
                            "",
                            v.reasons.iter().map(reason).collect(),
                        ),
                        PluginOutcome::Failed(f) => ("failed", f.kind.as_str(), Vec::new()),
                    };
                    pb::PluginVerdict {
                        plugin: p.name.clone(),
                        effect: effect.to_string(),
                        failure: failure.to_string(),
                        reasons,
                        elapsed_micros: micros(p.elapsed),
                    }
                })
                .collect()
        } else {
            Vec::new()
        },
        approval_id: String::new(),
        elapsed_micros: micros(d.elapsed),
        credential: None,
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn reason(r: &Reason) -> pb::Reason {
    pb::Reason {
        code: r.code.clone(),
        message: r.caller_message.clone(),
    }
}

/// The wire enum for an outcome.
pub fn outcome(o: Outcome) -> pb::Decision {
    match o {
        Outcome::Allow => pb::Decision::Allow,
        Outcome::Deny => pb::Decision::Deny,
        Outcome::RequireApproval => pb::Decision::RequireApproval,
    }
}

/// The domain outcome for a wire enum (`None` for unspecified or unknown).
pub fn outcome_of(d: i32) -> Option<Outcome> {
    match pb::Decision::try_from(d) {
        Ok(pb::Decision::Allow) => Some(Outcome::Allow),
        Ok(pb::Decision::Deny) => Some(Outcome::Deny),
        Ok(pb::Decision::RequireApproval) => Some(Outcome::RequireApproval),
        _ => None,
    }
}

/// A domain request as a wire request (for clients).
pub fn request(r: &Request) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        principal: Some(principal(&r.principal)),
        delegation: r.delegation.iter().map(principal).collect(),
        action: Some(pb::Action {
            name: r.action.name.clone(),
            privilege: match r.action.privilege {
                Privilege::Read => pb::Privilege::Read,
                Privilege::Write => pb::Privilege::Write,
                Privilege::Admin => pb::Privilege::Admin,
                Privilege::IdentityChange => pb::Privilege::IdentityChange,
                Privilege::SecretAccess => pb::Privilege::SecretAccess,
            } as i32,
            attributes: attributes(&r.action.attributes),
        }),
        resource: Some(pb::Resource {
            id: r.resource.id.clone(),
            kind: r.resource.kind.clone(),
            attributes: attributes(&r.resource.attributes),
        }),
        intent: Some(pb::Intent {
            purpose: r.intent.purpose.clone(),
            task_id: r.intent.task_id.clone(),
            ticket: r.intent.ticket.clone(),
            justification: r.intent.justification.clone(),
        }),
        context: attributes(&r.context),
        policy_set: String::new(),
        approval_id: String::new(),
        credential: None,
        explain: false,
        probe: false,
    }
}

fn principal(p: &Principal) -> pb::Principal {
    pb::Principal {
        id: p.id.clone(),
        kind: match p.kind {
            PrincipalKind::Human => pb::PrincipalKind::Human,
            PrincipalKind::Service => pb::PrincipalKind::Service,
            PrincipalKind::Agent => pb::PrincipalKind::Agent,
            PrincipalKind::Workload => pb::PrincipalKind::Workload,
        } as i32,
        attributes: attributes(&p.attributes),
    }
}

fn attributes(a: &Attributes) -> HashMap<String, pb::Value> {
    a.iter()
        .map(|(k, v)| {
            let kind = match v {
                Value::Bool(b) => pb::value::Kind::Boolean(*b),
                Value::Int(i) => pb::value::Kind::Int(*i),
                Value::Float(f) => pb::value::Kind::Float(*f),
                Value::Str(s) => pb::value::Kind::Str(s.clone()),
                Value::Strings(s) => pb::value::Kind::Strings(pb::StringList { values: s.clone() }),
            };
            (k.clone(), pb::Value { kind: Some(kind) })
        })
        .collect()
}

/// A pipeline answer as a response: the decision, the approval and the credential.
pub fn answer(a: arbiter_service::pipeline::Answer, explain: bool) -> pb::AuthorizeResponse {
    let mut response = decision(&a.decision, explain);
    response.approval_id = a.approval_id.unwrap_or_default();
    response.credential = a.credential.map(|c| pb::IssuedCredential {
        id: c.id,
        token: c.token,
        expires_at: c.expires_at,
    });
    response
}
