//! The reference policy in Cedar (`policies/reference.cedar`, `policies/approval.cedar`).
//!
//! Cedar answers allow or deny; the third outcome is a second question. The reference
//! set (forbids F1-F6, permits P1-P5) decides allow or deny; only when it allows is the
//! approval set (the gates G1-G4, written as permits) asked with the same request and
//! entities, and its allow means require-approval. The determining policies of the
//! answer that stands name the rules: each policy's `@id` is its policy id.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context as _, bail};
use arbiter_core::{Attributes, Outcome, Request, Value};
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request as CedarRequest, Response, RestrictedExpression,
};

use crate::Verdict;

/// Context keys the adapter sets itself; a request context attribute of the same name
/// is left out rather than allowed to stand in for them.
const RESERVED: [&str; 4] = ["privilege", "intent", "delegator", "approved"];

/// The two policy sets and the entity type names, parsed once.
#[derive(Debug)]
pub(crate) struct Cedar {
    authorizer: Authorizer,
    reference: PolicySet,
    approval: PolicySet,
    principal: EntityTypeName,
    action: EntityTypeName,
    resource: EntityTypeName,
}

impl Cedar {
    pub(crate) fn load(dir: &Path) -> anyhow::Result<Self> {
        let type_name = |name: &str| {
            EntityTypeName::from_str(name).with_context(|| format!("entity type `{name}`"))
        };
        Ok(Self {
            authorizer: Authorizer::new(),
            reference: policies(&dir.join("reference.cedar"))?,
            approval: policies(&dir.join("approval.cedar"))?,
            principal: type_name("Principal")?,
            action: type_name("Action")?,
            resource: type_name("Resource")?,
        })
    }

    /// Converts the request and asks Cedar (twice when the first answer is allow).
    pub(crate) fn decide(&self, r: &Request, approved: bool) -> anyhow::Result<Verdict> {
        let principal = EntityUid::from_type_name_and_id(
            self.principal.clone(),
            EntityId::new(&r.principal.id),
        );
        let resource =
            EntityUid::from_type_name_and_id(self.resource.clone(), EntityId::new(&r.resource.id));
        let action =
            EntityUid::from_type_name_and_id(self.action.clone(), EntityId::new(&r.action.name));
        let entities = Entities::from_entities(
            [
                Entity::new(
                    principal.clone(),
                    attributes(r.principal.kind.as_str(), &r.principal.attributes),
                    HashSet::new(),
                )?,
                Entity::new(
                    resource.clone(),
                    attributes(&r.resource.kind, &r.resource.attributes),
                    HashSet::new(),
                )?,
            ],
            None,
        )?;
        let request = CedarRequest::new(principal, action, resource, context(r, approved)?, None)?;
        let answer = self
            .authorizer
            .is_authorized(&request, &self.reference, &entities);
        if answered(&answer)? == Decision::Deny {
            return Ok(verdict(Outcome::Deny, &answer));
        }
        let gates = self
            .authorizer
            .is_authorized(&request, &self.approval, &entities);
        Ok(match answered(&gates)? {
            Decision::Allow => verdict(Outcome::RequireApproval, &gates),
            Decision::Deny => verdict(Outcome::Allow, &answer),
        })
    }
}

/// The policies of one file, each with its `@id` annotation as its policy id.
fn policies(path: &Path) -> anyhow::Result<PolicySet> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let parsed = PolicySet::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let mut set = PolicySet::new();
    for p in parsed.policies() {
        let Some(id) = p.annotation("id") else {
            bail!("{}: a policy without `@id`: {p}", path.display());
        };
        set.add(p.new_id(PolicyId::new(id)))
            .with_context(|| format!("{}: policy `{id}`", path.display()))?;
    }
    Ok(set)
}

/// The decision, unless a policy failed to evaluate: Cedar skips such a policy, which
/// for a forbid would permit more than the policy does.
fn answered(response: &Response) -> anyhow::Result<Decision> {
    let errors: Vec<String> = response
        .diagnostics()
        .errors()
        .map(ToString::to_string)
        .collect();
    if !errors.is_empty() {
        bail!("cedar policy errors: {}", errors.join("; "));
    }
    Ok(response.decision())
}

fn verdict(outcome: Outcome, response: &Response) -> Verdict {
    let rules = response
        .diagnostics()
        .reason()
        .map(ToString::to_string)
        .collect();
    Verdict {
        outcome,
        rules: Some(rules),
    }
}

/// An entity's attributes: `kind`, then the request's attributes (a `kind` among them
/// does not replace the declared one).
fn attributes(kind: &str, attrs: &Attributes) -> HashMap<String, RestrictedExpression> {
    let mut out = HashMap::with_capacity(attrs.len() + 1);
    out.insert(
        "kind".to_owned(),
        RestrictedExpression::new_string(kind.to_owned()),
    );
    for (name, v) in attrs {
        if let Some(e) = value(name, v) {
            out.entry(name.clone()).or_insert(e);
        }
    }
    out
}

/// A request attribute as a Cedar value. Cedar has no floating-point type, so a float
/// is left out (the reference policy reads none); a `source_ip` that is a dotted IPv4
/// address becomes an `ipaddr`, anything else there is left out (not corporate).
fn value(name: &str, v: &Value) -> Option<RestrictedExpression> {
    Some(match v {
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Int(i) => RestrictedExpression::new_long(*i),
        Value::Float(_) => return None,
        Value::Str(s) if name == "source_ip" => {
            s.parse::<Ipv4Addr>().ok()?;
            RestrictedExpression::new_ip(s)
        }
        Value::Str(s) => RestrictedExpression::new_string(s.clone()),
        Value::Strings(list) => RestrictedExpression::new_set(
            list.iter()
                .map(|s| RestrictedExpression::new_string(s.clone())),
        ),
    })
}

/// The request context's attributes, beside the privilege, the intent, the first link
/// of the delegation and whether an approval was verified.
fn context(r: &Request, approved: bool) -> anyhow::Result<Context> {
    let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
    let mut pairs = Vec::with_capacity(r.context.len() + RESERVED.len());
    pairs.push(("privilege".to_owned(), string(r.action.privilege.as_str())));
    let intent = [
        ("purpose", &r.intent.purpose),
        ("ticket", &r.intent.ticket),
        ("task_id", &r.intent.task_id),
        ("justification", &r.intent.justification),
    ];
    pairs.push((
        "intent".to_owned(),
        RestrictedExpression::new_record(intent.map(|(k, v)| (k.to_owned(), string(v))))?,
    ));
    if let Some(first) = r.delegation.first() {
        let mut fields = attributes(first.kind.as_str(), &first.attributes);
        fields
            .entry("id".to_owned())
            .or_insert_with(|| string(&first.id));
        pairs.push((
            "delegator".to_owned(),
            RestrictedExpression::new_record(fields)?,
        ));
    }
    pairs.push((
        "approved".to_owned(),
        RestrictedExpression::new_bool(approved),
    ));
    for (name, v) in &r.context {
        if RESERVED.contains(&name.as_str()) {
            continue;
        }
        if let Some(e) = value(name, v) {
            pairs.push((name.clone(), e));
        }
    }
    Ok(Context::from_pairs(pairs)?)
}
