//! The fifteen rules of `shared/reference-policy.md`, written directly against the
//! host's request type. Same reading of missing inputs as the plugins: a missing risk
//! counts as maximal, a missing hour as outside business hours, a missing team or
//! owner never matches.

use arbiter_core::{Attributes, Outcome, PrincipalKind, Privilege, Request, Value};

#[derive(Debug)]
struct Facts<'a> {
    kind: PrincipalKind,
    team: Option<&'a str>,
    /// `Some(team)` of `delegation[0]` when delegation is not empty.
    delegator_team: Option<Option<&'a str>>,
    action: &'a str,
    privilege: Privilege,
    resource_kind: &'a str,
    env: Option<&'a str>,
    owner: Option<&'a str>,
    purpose: &'a str,
    ticket: &'a str,
    hour: Option<i64>,
    corporate_ip: bool,
    risk: i64,
    mfa: bool,
    approved: bool,
}

impl<'a> Facts<'a> {
    fn of(r: &'a Request, approved: bool) -> Self {
        Self {
            kind: r.principal.kind,
            team: text(&r.principal.attributes, "team"),
            delegator_team: r.delegation.first().map(|p| text(&p.attributes, "team")),
            action: &r.action.name,
            privilege: r.action.privilege,
            resource_kind: &r.resource.kind,
            env: text(&r.resource.attributes, "env"),
            owner: text(&r.resource.attributes, "owner_team"),
            purpose: &r.intent.purpose,
            ticket: &r.intent.ticket,
            hour: int(&r.context, "hour"),
            corporate_ip: text(&r.context, "source_ip").is_some_and(is_corporate),
            risk: int(&r.context, "risk").unwrap_or(100),
            mfa: matches!(r.context.get("mfa"), Some(Value::Bool(true))),
            approved,
        }
    }
    fn same_team(&self) -> bool {
        matches!((self.team, self.owner), (Some(t), Some(o)) if t == o)
    }
    fn prod(&self) -> bool {
        self.env == Some("prod")
    }
    fn business_hours(&self) -> bool {
        self.hour.is_some_and(|h| (8..18).contains(&h))
    }
}

fn text<'a>(a: &'a Attributes, name: &str) -> Option<&'a str> {
    match a.get(name) {
        Some(Value::Str(s)) => Some(s),
        _ => None,
    }
}

fn int(a: &Attributes, name: &str) -> Option<i64> {
    match a.get(name) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

/// A dotted IPv4 address (four decimal octets) in 10.0.0.0/8.
fn is_corporate(ip: &str) -> bool {
    let mut octets = 0;
    let mut first = None;
    for part in ip.split('.') {
        let Ok(octet) = part.parse::<u8>() else {
            return false;
        };
        if octets == 0 {
            first = Some(octet);
        }
        octets += 1;
    }
    octets == 4 && first == Some(10)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Forbid,
    Permit,
    Gate,
}
use Group::{Forbid, Gate, Permit};
use PrincipalKind::{Agent, Human};
use Privilege::{Admin, IdentityChange, Read, Write};

type Test = fn(&Facts<'_>) -> bool;
const RULES: [(&str, Group, Test); 15] = [
    ("F1", Forbid, |f| f.risk >= 80),
    ("F2", Forbid, |f| {
        f.kind == Agent && f.privilege == Admin && f.prod()
    }),
    ("F3", Forbid, |f| {
        f.privilege == Write && f.prod() && !f.business_hours()
    }),
    (
        "F4",
        Forbid,
        |f| matches!(f.delegator_team, Some(t) if t.is_none() || t != f.owner),
    ),
    ("F5", Forbid, |f| {
        f.action == "secrets:Read" && (f.ticket.is_empty() || f.risk >= 50)
    }),
    ("F6", Forbid, |f| {
        matches!(f.privilege, Admin | IdentityChange) && !f.corporate_ip
    }),
    ("P1", Permit, |f| f.privilege == Read && f.same_team()),
    ("P2", Permit, |f| {
        f.privilege == Read && f.env == Some("staging")
    }),
    ("P3", Permit, |f| f.privilege == Write && f.same_team()),
    ("P4", Permit, |f| {
        f.privilege == Admin && f.same_team() && (f.kind != Human || f.mfa)
    }),
    ("P5", Permit, |f| {
        f.privilege == IdentityChange
            && (f.team == Some("security") || (f.same_team() && f.kind == Human && f.mfa))
    }),
    ("G1", Gate, |f| {
        f.kind == Agent && f.privilege == IdentityChange && !f.approved
    }),
    ("G2", Gate, |f| {
        f.kind == Agent && f.privilege == Write && f.prod() && f.risk >= 50 && !f.approved
    }),
    ("G3", Gate, |f| {
        f.privilege == Admin && f.prod() && !f.approved
    }),
    ("G4", Gate, |f| {
        f.purpose == "data-export"
            && matches!(f.resource_kind, "database" | "s3_bucket" | "s3_object")
            && !f.approved
    }),
];

/// A decision and the ids of the rules that made it (none for "no permit").
#[derive(Debug)]
pub(crate) struct Native {
    pub outcome: Outcome,
    pub rules: Vec<&'static str>,
}

fn matching(f: &Facts<'_>, group: Option<Group>) -> Vec<&'static str> {
    let in_group = |g: Group| group.is_none_or(|want| want == g);
    let hits = RULES.iter().filter(|(_, g, test)| in_group(*g) && test(f));
    hits.map(|(id, _, _)| *id).collect()
}

/// Any forbid denies; no permit denies; any gate holds for approval; else allow.
pub(crate) fn decide(r: &Request, approved: bool) -> Native {
    let f = Facts::of(r, approved);
    let decided = |outcome, rules| Native { outcome, rules };
    let forbids = matching(&f, Some(Forbid));
    if !forbids.is_empty() {
        return decided(Outcome::Deny, forbids);
    }
    let permits = matching(&f, Some(Permit));
    if permits.is_empty() {
        return decided(Outcome::Deny, permits);
    }
    let gates = matching(&f, Some(Gate));
    if !gates.is_empty() {
        return decided(Outcome::RequireApproval, gates);
    }
    decided(Outcome::Allow, permits)
}

/// Every matching rule, in document order (what the vectors list in `rules`).
pub(crate) fn all_matching(r: &Request, approved: bool) -> Vec<&'static str> {
    matching(&Facts::of(r, approved), None)
}
