//! Conversions between `arbiter_core` types and the generated WIT types, and the
//! validation of what a plugin returns.

use std::time::Duration;

use arbiter_core::{
    Attributes, Effect, Limits, Obligations, PrincipalKind, Privilege, Reason, Request, Value,
    Verdict,
};

use crate::bindings::wit;

/// The request as the plugin sees it. Built once per decision and shared by every
/// plugin of the set.
pub(crate) fn request(r: &Request, approval_verified: bool) -> wit::Request {
    wit::Request {
        principal: principal(&r.principal),
        delegation: r.delegation.iter().map(principal).collect(),
        action: wit::Action {
            name: r.action.name.clone(),
            privilege: match r.action.privilege {
                Privilege::Read => wit::Privilege::Read,
                Privilege::Write => wit::Privilege::Write,
                Privilege::Admin => wit::Privilege::Admin,
                Privilege::IdentityChange => wit::Privilege::IdentityChange,
                Privilege::SecretAccess => wit::Privilege::SecretAccess,
            },
            attributes: attributes(&r.action.attributes),
        },
        resource: wit::Resource {
            id: r.resource.id.clone(),
            kind: r.resource.kind.clone(),
            attributes: attributes(&r.resource.attributes),
        },
        intent: wit::Intent {
            purpose: r.intent.purpose.clone(),
            task_id: r.intent.task_id.clone(),
            ticket: r.intent.ticket.clone(),
            justification: r.intent.justification.clone(),
        },
        context: attributes(&r.context),
        approval_verified,
    }
}

fn principal(p: &arbiter_core::Principal) -> wit::Principal {
    wit::Principal {
        id: p.id.clone(),
        kind: match p.kind {
            PrincipalKind::Human => wit::PrincipalKind::Human,
            PrincipalKind::Service => wit::PrincipalKind::Service,
            PrincipalKind::Agent => wit::PrincipalKind::Agent,
            PrincipalKind::Workload => wit::PrincipalKind::Workload,
        },
        attributes: attributes(&p.attributes),
    }
}

/// Attributes in name order (the order of the map), so plugins see a stable input.
pub(crate) fn attributes(a: &Attributes) -> Vec<wit::Attribute> {
    a.iter()
        .map(|(name, v)| wit::Attribute {
            name: name.clone(),
            value: match v {
                Value::Bool(b) => wit::Value::Boolean(*b),
                Value::Int(i) => wit::Value::Int(*i),
                Value::Float(f) => wit::Value::Float(*f),
                Value::Str(s) => wit::Value::Str(s.clone()),
                Value::Strings(s) => wit::Value::Strings(s.clone()),
            },
        })
        .collect()
}

/// Validates and converts a plugin's verdict. A verdict over the limits is refused
/// whole (the caller sees a `bad-output` failure), never cut silently: a truncated
/// reason list could hide the deny that mattered.
pub(crate) fn verdict(v: wit::Verdict, limits: &Limits) -> Result<Verdict, String> {
    if v.reasons.len() > limits.max_reasons as usize {
        return Err(format!(
            "{} reasons is more than the limit of {}",
            v.reasons.len(),
            limits.max_reasons
        ));
    }
    let max = limits.max_message_bytes as usize;
    let mut reasons = Vec::with_capacity(v.reasons.len());
    for (i, r) in v.reasons.into_iter().enumerate() {
        if r.code.is_empty() || r.code.len() > 128 || !r.code.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(format!(
                "reason {i}: code must be 1-128 printable ASCII characters without spaces"
            ));
        }
        for (what, text) in [
            ("caller message", &r.caller_message),
            ("admin message", &r.admin_message),
        ] {
            if text.len() > max {
                return Err(format!(
                    "reason {i} (`{}`): {what} of {} bytes is over the limit of {max}",
                    r.code,
                    text.len()
                ));
            }
        }
        reasons.push(Reason {
            code: r.code,
            caller_message: r.caller_message,
            admin_message: r.admin_message,
        });
    }
    let mut obligations = Obligations::default();
    for o in v.obligations {
        let one = match o {
            wit::Obligation::MaxCredentialLifetime(secs) => Obligations {
                max_credential_lifetime: Some(Duration::from_secs(secs)),
                approvers_required: None,
            },
            wit::Obligation::ApproversRequired(n) => Obligations {
                max_credential_lifetime: None,
                approvers_required: Some(n),
            },
        };
        obligations = obligations.merge(one);
    }
    Ok(Verdict {
        effect: match v.effect {
            wit::Effect::Allow => Effect::Allow,
            wit::Effect::Deny => Effect::Deny,
            wit::Effect::RequireApproval => Effect::RequireApproval,
            wit::Effect::Abstain => Effect::Abstain,
        },
        reasons,
        obligations,
    })
}
