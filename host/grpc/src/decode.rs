//! Protobuf to domain, with every check the edge owes the plugins: nothing malformed,
//! oversized or ambiguous ever reaches a sandbox. Each proto struct is destructured
//! whole, so a new field is a compile error here until someone decides what it means.

use std::collections::HashMap;

use arbiter_core::{
    Action, Attributes, Intent, Principal, PrincipalKind, Privilege, Request, Resource, Value,
};

use super::ApiError;
use crate::proto as pb;

pub use arbiter_core::request_limits::{
    MAX_ATTRIBUTE_NAME_BYTES, MAX_ATTRIBUTE_VALUE_BYTES, MAX_ATTRIBUTES, MAX_DELEGATION,
    MAX_ID_BYTES, MAX_LIST_ITEMS, MAX_NAME_BYTES, MAX_TEXT_BYTES,
};
/// Items in one `AuthorizeBatch`. Larger batches hold one connection's worth of work
/// hostage and give no throughput gain over several batches.
pub const MAX_BATCH: usize = 1000;
/// Bytes of one gRPC message, checked after decoding so the caller gets
/// INVALID_ARGUMENT with the size. A batch of 1,000 typical requests is about 400 KiB.
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;
/// The transport's hard cap, before decoding: four times the checked limit, so that
/// slightly oversized messages get the clear error above and huge ones cost nothing
/// (the transport refuses those with OUT_OF_RANGE).
pub const MAX_TRANSPORT_BYTES: usize = 4 * MAX_MESSAGE_BYTES;

/// Refuses a message over [`MAX_MESSAGE_BYTES`].
pub fn check_size(field: &str, message: &impl prost::Message) -> Result<(), ApiError> {
    let size = message.encoded_len();
    if size > MAX_MESSAGE_BYTES {
        return Err(ApiError::field(
            field,
            format!("message is {size} bytes, more than the limit of {MAX_MESSAGE_BYTES}"),
        ));
    }
    Ok(())
}

pub use arbiter_service::pipeline::Authorize;

/// Decodes and validates one request.
pub fn authorize(r: pb::AuthorizeRequest) -> Result<Authorize, ApiError> {
    let pb::AuthorizeRequest {
        principal,
        delegation,
        action,
        resource,
        intent,
        context,
        policy_set,
        approval_id,
        explain,
        credential,
        probe,
    } = r;
    let principal = decode_principal(
        "principal",
        principal.ok_or_else(|| ApiError::field("principal", "is required"))?,
    )?;
    if delegation.len() > MAX_DELEGATION {
        return Err(ApiError::field(
            "delegation",
            format!("{} links is more than {MAX_DELEGATION}", delegation.len()),
        ));
    }
    let delegation = delegation
        .into_iter()
        .enumerate()
        .map(|(i, p)| decode_principal(&format!("delegation[{i}]"), p))
        .collect::<Result<_, _>>()?;
    let action = decode_action(action.ok_or_else(|| ApiError::field("action", "is required"))?)?;
    let resource = match resource {
        None => Resource::default(),
        Some(pb::Resource {
            id,
            kind,
            attributes,
        }) => Resource {
            id: text("resource.id", id, MAX_ID_BYTES)?,
            kind: text("resource.kind", kind, MAX_NAME_BYTES)?,
            attributes: decode_attributes("resource.attributes", attributes)?,
        },
    };
    let intent = match intent {
        None => Intent::default(),
        Some(pb::Intent {
            purpose,
            task_id,
            ticket,
            justification,
        }) => Intent {
            purpose: text("intent.purpose", purpose, MAX_NAME_BYTES)?,
            task_id: text("intent.task_id", task_id, MAX_NAME_BYTES)?,
            ticket: text("intent.ticket", ticket, MAX_NAME_BYTES)?,
            justification: free_text("intent.justification", justification, MAX_TEXT_BYTES)?,
        },
    };
    let context = decode_attributes("context", context)?;
    let policy_set =
        Some(text("policy_set", policy_set, MAX_NAME_BYTES)?).filter(|s| !s.is_empty());
    let approval_id =
        Some(text("approval_id", approval_id, MAX_NAME_BYTES)?).filter(|s| !s.is_empty());
    let credential = credential.map(|pb::CredentialRequest { lifetime_seconds }| {
        (lifetime_seconds > 0).then(|| std::time::Duration::from_secs(lifetime_seconds))
    });
    if credential.is_some() && intent.task_id.is_empty() {
        return Err(ApiError::field(
            "intent.task_id",
            "is required when asking for a credential: credentials are bound to a task and revoked when it completes",
        ));
    }
    Ok(Authorize {
        request: Request {
            principal,
            delegation,
            action,
            resource,
            intent,
            context,
        },
        policy_set,
        approval_id,
        explain,
        credential,
        probe,
    })
}

fn decode_principal(field: &str, p: pb::Principal) -> Result<Principal, ApiError> {
    let pb::Principal {
        id,
        kind,
        attributes,
    } = p;
    check_bounded(&id, MAX_ID_BYTES, false)
        .map_err(|m| ApiError::field(format!("{field}.id"), m))?;
    if arbiter_core::invisible_in(&id) {
        return Err(ApiError::field(
            format!("{field}.id"),
            "must not contain zero-width, bidirectional-override or other invisible characters: they make two ids look alike",
        ));
    }
    if id.is_empty() {
        return Err(ApiError::field(format!("{field}.id"), "is required"));
    }
    let kind = match pb::PrincipalKind::try_from(kind) {
        Ok(pb::PrincipalKind::Human) => PrincipalKind::Human,
        Ok(pb::PrincipalKind::Service) => PrincipalKind::Service,
        Ok(pb::PrincipalKind::Agent) => PrincipalKind::Agent,
        Ok(pb::PrincipalKind::Workload) => PrincipalKind::Workload,
        Ok(pb::PrincipalKind::Unspecified) => {
            return Err(ApiError::field(
                format!("{field}.kind"),
                "is required: human, service, agent or workload",
            ));
        }
        Err(_) => {
            return Err(ApiError::field(
                format!("{field}.kind"),
                format!("unknown principal kind {kind}"),
            ));
        }
    };
    Ok(Principal {
        id,
        kind,
        attributes: decode_attributes(&format!("{field}.attributes"), attributes)?,
    })
}

fn decode_action(a: pb::Action) -> Result<Action, ApiError> {
    let pb::Action {
        name,
        privilege,
        attributes,
    } = a;
    let name = text("action.name", name, MAX_NAME_BYTES)?;
    if name.is_empty() {
        return Err(ApiError::field("action.name", "is required"));
    }
    let privilege = match pb::Privilege::try_from(privilege) {
        Ok(pb::Privilege::Read) => Privilege::Read,
        Ok(pb::Privilege::Write) => Privilege::Write,
        Ok(pb::Privilege::Admin) => Privilege::Admin,
        Ok(pb::Privilege::IdentityChange) => Privilege::IdentityChange,
        Ok(pb::Privilege::SecretAccess) => Privilege::SecretAccess,
        Ok(pb::Privilege::Unspecified) => {
            return Err(ApiError::field(
                "action.privilege",
                "is required: read, write, admin, identity-change or secret-access",
            ));
        }
        Err(_) => {
            return Err(ApiError::field(
                "action.privilege",
                format!("unknown privilege {privilege}"),
            ));
        }
    };
    Ok(Action {
        name,
        privilege,
        attributes: decode_attributes("action.attributes", attributes)?,
    })
}

fn text(field: &str, s: String, max: usize) -> Result<String, ApiError> {
    bounded(field, s, max, false)
}

/// Like [`text`], but line breaks and tabs are allowed (free text written by people).
fn free_text(field: &str, s: String, max: usize) -> Result<String, ApiError> {
    bounded(field, s, max, true)
}

fn bounded(field: &str, s: String, max: usize, line_breaks: bool) -> Result<String, ApiError> {
    check_bounded(&s, max, line_breaks).map_err(|m| ApiError::field(field, m))?;
    Ok(s)
}

/// What is wrong with `s` as text of at most `max` bytes, if anything. The caller names
/// the field, so that a path built per attribute is built only for an error.
fn check_bounded(s: &str, max: usize, line_breaks: bool) -> Result<(), String> {
    if s.len() > max {
        return Err(format!(
            "is {} bytes, more than the limit of {max}",
            s.len()
        ));
    }
    let refused = |c: char| c.is_control() && !(line_breaks && matches!(c, '\n' | '\r' | '\t'));
    if s.chars().any(refused) {
        let what = if line_breaks {
            "must not contain control characters other than line breaks and tabs"
        } else {
            "must not contain control characters"
        };
        return Err(what.to_string());
    }
    Ok(())
}

fn decode_attributes(field: &str, map: HashMap<String, pb::Value>) -> Result<Attributes, ApiError> {
    if map.len() > MAX_ATTRIBUTES {
        return Err(ApiError::field(
            field,
            format!("{} attributes is more than {MAX_ATTRIBUTES}", map.len()),
        ));
    }
    let mut out = Attributes::new();
    for (name, value) in map {
        // The name as an error shows it: at most 64 bytes of what the caller sent. Built
        // only for an error: a request has up to MAX_ATTRIBUTES of these.
        let at = || format!("{field}[{:?}]", arbiter_core::shown(&name));
        let text_at = |s: String| {
            check_bounded(&s, MAX_ATTRIBUTE_VALUE_BYTES, false)
                .map(|()| s)
                .map_err(|m| ApiError::field(at(), m))
        };
        if name.is_empty() {
            return Err(ApiError::field(field, "attribute names must not be empty"));
        }
        if name.len() > MAX_ATTRIBUTE_NAME_BYTES || name.chars().any(char::is_control) {
            return Err(ApiError::field(
                at(),
                format!(
                    "attribute names are 1-{MAX_ATTRIBUTE_NAME_BYTES} bytes without control characters"
                ),
            ));
        }
        let pb::Value { kind } = value;
        let value = match kind {
            None => {
                return Err(ApiError::field(
                    at(),
                    "value is empty: set one of str, int, float, boolean, strings",
                ));
            }
            Some(pb::value::Kind::Str(s)) => Value::Str(text_at(s)?),
            Some(pb::value::Kind::Int(i)) => Value::Int(i),
            Some(pb::value::Kind::Float(f)) if f.is_finite() => Value::Float(f),
            Some(pb::value::Kind::Float(_)) => {
                return Err(ApiError::field(at(), "floats must be finite"));
            }
            Some(pb::value::Kind::Boolean(b)) => Value::Bool(b),
            Some(pb::value::Kind::Strings(pb::StringList { values })) => {
                if values.len() > MAX_LIST_ITEMS {
                    return Err(ApiError::field(
                        at(),
                        format!("{} items is more than {MAX_LIST_ITEMS}", values.len()),
                    ));
                }
                Value::Strings(values.into_iter().map(text_at).collect::<Result<_, _>>()?)
            }
        };
        out.insert(name, value);
    }
    Ok(out)
}
