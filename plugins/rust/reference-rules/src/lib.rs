//! The reference policy (`shared/reference-policy.md`): fifteen rules in three groups.
//!
//! Forbid rules deny on any match; permit rules are needed for anything but a deny;
//! gate rules hold a permitted action for human approval unless the host verified an
//! approval. Missing or mistyped inputs never help a request: a missing risk counts as
//! maximal, a missing hour as outside business hours, a missing team as no match.

use arbiter_policy::{
    AttributesExt, Effect, Obligation, Principal, PrincipalKind, Privilege, Reason, Request,
    Verdict,
};

/// Credentials for routine actions live at most 15 minutes.
pub const ROUTINE_CREDENTIAL_SECS: u64 = 15 * 60;
/// Credentials for admin and identity changes live at most 5 minutes.
pub const PRIVILEGED_CREDENTIAL_SECS: u64 = 5 * 60;

/// The inputs the rules read, extracted once per request.
#[derive(Debug)]
pub struct Facts<'a> {
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
    /// Reads the facts from a request.
    pub fn of(r: &'a Request) -> Self {
        let team = |p: &'a Principal| p.attributes.str("team");
        Self {
            kind: r.principal.kind,
            team: team(&r.principal),
            delegator_team: r.delegation.first().map(team),
            action: &r.action.name,
            privilege: r.action.privilege,
            resource_kind: &r.resource.kind,
            env: r.resource.attributes.str("env"),
            owner: r.resource.attributes.str("owner_team"),
            purpose: &r.intent.purpose,
            ticket: &r.intent.ticket,
            hour: r.context.int("hour"),
            corporate_ip: r.context.str("source_ip").is_some_and(is_corporate),
            risk: r.context.int("risk").unwrap_or(100),
            mfa: r.context.bool("mfa").unwrap_or(false),
            approved: r.approval_verified,
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

/// True for a dotted IPv4 address in 10.0.0.0/8.
fn is_corporate(ip: &str) -> bool {
    let mut parts = ip.split('.');
    let octets: Vec<Option<u8>> = parts.by_ref().take(4).map(|p| p.parse().ok()).collect();
    parts.next().is_none()
        && octets.len() == 4
        && octets.iter().all(Option::is_some)
        && octets[0] == Some(10)
}

/// The three rule groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Any match denies.
    Forbid,
    /// At least one must match.
    Permit,
    /// Holds for approval unless approved.
    Gate,
}

/// One rule of the reference policy.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// `F1`..`G4`.
    pub id: &'static str,
    /// Its group.
    pub group: Group,
    /// Stable reason code.
    pub code: &'static str,
    /// What the caller is told.
    pub message: &'static str,
    test: fn(&Facts<'_>) -> bool,
}

impl Rule {
    /// Whether the rule matches.
    pub fn matches(&self, f: &Facts<'_>) -> bool {
        (self.test)(f)
    }

    /// The reason this rule gives when it matches.
    pub fn reason(&self) -> Reason {
        Reason::new(self.code, self.message).admin(format!("reference rule {} matched", self.id))
    }
}

macro_rules! rule {
    ($id:ident, $group:ident, $code:literal, $msg:literal, $test:expr) => {
        #[doc = concat!("Rule ", stringify!($id), ": ", $msg)]
        pub const $id: Rule = Rule {
            id: stringify!($id),
            group: Group::$group,
            code: $code,
            message: $msg,
            test: $test,
        };
    };
}

rule!(
    F1,
    Forbid,
    "risk-too-high",
    "the session's risk score is 80 or more; re-authenticate or lower the risk before retrying",
    |f| f.risk >= 80
);
rule!(
    F2,
    Forbid,
    "agent-admin-in-prod",
    "agents may not take admin actions in production; ask a human operator",
    |f| { f.kind == PrincipalKind::Agent && f.privilege == Privilege::Admin && f.prod() }
);
rule!(
    F3,
    Forbid,
    "prod-write-outside-hours",
    "production writes are allowed only between 08:00 and 18:00; retry in business hours or open an incident",
    |f| { f.privilege == Privilege::Write && f.prod() && !f.business_hours() }
);
rule!(
    F4,
    Forbid,
    "delegator-not-owner",
    "the human you act for does not own this resource; act for a member of the owning team",
    |f| { matches!(f.delegator_team, Some(t) if t.is_none() || t != f.owner) }
);
rule!(
    F5,
    Forbid,
    "secret-read-needs-ticket",
    "reading secrets needs a ticket and a risk score under 50",
    |f| { f.action == "secrets:Read" && (f.ticket.is_empty() || f.risk >= 50) }
);
rule!(
    F6,
    Forbid,
    "privileged-from-outside",
    "admin and identity changes must come from the corporate network",
    |f| { matches!(f.privilege, Privilege::Admin | Privilege::IdentityChange) && !f.corporate_ip }
);
rule!(
    P1,
    Permit,
    "read-own-team",
    "reads of your team's resources are allowed",
    |f| { f.privilege == Privilege::Read && f.same_team() }
);
rule!(
    P2,
    Permit,
    "read-staging",
    "reads in staging are allowed",
    |f| { f.privilege == Privilege::Read && f.env == Some("staging") }
);
rule!(
    P3,
    Permit,
    "write-own-team",
    "writes to your team's resources are allowed",
    |f| { f.privilege == Privilege::Write && f.same_team() }
);
rule!(
    P4,
    Permit,
    "admin-own-team",
    "admin actions on your team's resources are allowed (humans need MFA)",
    |f| {
        f.privilege == Privilege::Admin
            && f.same_team()
            && (f.kind != PrincipalKind::Human || f.mfa)
    }
);
rule!(
    P5,
    Permit,
    "identity-change-authorised",
    "identity changes are allowed for the security team, or for an owner with MFA",
    |f| {
        f.privilege == Privilege::IdentityChange
            && (f.team == Some("security")
                || (f.same_team() && f.kind == PrincipalKind::Human && f.mfa))
    }
);
rule!(
    G1,
    Gate,
    "identity-change-needs-approval",
    "an agent's identity change needs a human approver; wait for approval and resubmit with the approval id",
    |f| {
        f.kind == PrincipalKind::Agent && f.privilege == Privilege::IdentityChange && !f.approved
    }
);
rule!(
    G2,
    Gate,
    "risky-prod-write-needs-approval",
    "an agent's production write at risk 50 or more needs a human approver",
    |f| {
        f.kind == PrincipalKind::Agent
            && f.privilege == Privilege::Write
            && f.prod()
            && f.risk >= 50
            && !f.approved
    }
);
rule!(
    G3,
    Gate,
    "prod-admin-needs-approval",
    "admin actions in production need a human approver",
    |f| { f.privilege == Privilege::Admin && f.prod() && !f.approved }
);
rule!(
    G4,
    Gate,
    "data-export-needs-approval",
    "exporting data from databases or S3 needs a human approver",
    |f| {
        f.purpose == "data-export"
            && matches!(f.resource_kind, "database" | "s3_bucket" | "s3_object")
            && !f.approved
    }
);

/// All fifteen rules in document order.
pub const ALL: [Rule; 15] = [F1, F2, F3, F4, F5, F6, P1, P2, P3, P4, P5, G1, G2, G3, G4];

/// The reasons of the rules among `rules` that match.
pub fn matching(f: &Facts<'_>, rules: &[Rule]) -> Vec<Reason> {
    rules
        .iter()
        .filter(|r| r.matches(f))
        .map(Rule::reason)
        .collect()
}

/// The credential lifetime obligation for a permitted action.
pub fn credential_lifetime(f: &Facts<'_>) -> Obligation {
    match f.privilege {
        Privilege::Admin | Privilege::IdentityChange => {
            Obligation::MaxCredentialLifetime(PRIVILEGED_CREDENTIAL_SECS)
        }
        _ => Obligation::MaxCredentialLifetime(ROUTINE_CREDENTIAL_SECS),
    }
}

/// The reason for a request that no permit rule covers.
pub fn no_permit() -> Reason {
    Reason::new(
        "no-permit",
        "no rule permits this action for you on this resource",
    )
    .admin("reference policy: no permit rule (P1-P5) matched")
}

/// Deny-on-match: a deny with every matching rule's reason, or abstain.
pub fn deny_if_any(f: &Facts<'_>, rules: &[Rule]) -> Verdict {
    verdict_if_any(Effect::Deny, f, rules)
}

/// `effect` with every matching rule's reason, or abstain when none matches.
pub fn verdict_if_any(effect: Effect, f: &Facts<'_>, rules: &[Rule]) -> Verdict {
    let reasons = matching(f, rules);
    if reasons.is_empty() {
        Verdict::abstain()
    } else {
        Verdict::with_reasons(effect, reasons)
    }
}

/// Deployment choices a set's manifest can make through plugin settings. The
/// defaults are the reference policy exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Bit `i` set: rule `ALL[i]` is switched off (a deliberately weakened variant, to
    /// measure what a rule is worth with `arbiter replay`).
    pub disabled: u16,
    /// Distinct human approvers a gated action needs.
    pub approvers_required: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            disabled: 0,
            approvers_required: 1,
        }
    }
}

impl Tuning {
    /// Reads `disabled_rules` (rule ids, e.g. `["F1"]`) and `approvers_required` (1-5)
    /// from plugin settings, refusing unknown rules and out-of-range numbers.
    pub fn from_settings(settings: &[arbiter_policy::Attribute]) -> Result<Self, String> {
        let mut t = Self::default();
        for id in settings.strings("disabled_rules").unwrap_or_default() {
            let i = ALL.iter().position(|r| r.id == id).ok_or_else(|| {
                format!("`disabled_rules`: no rule `{id}` (rules are F1-F6, P1-P5, G1-G4)")
            })?;
            t.disabled |= 1 << i;
        }
        if let Some(n) = settings.int("approvers_required") {
            t.approvers_required = u32::try_from(n)
                .ok()
                .filter(|n| (1..=5).contains(n))
                .ok_or_else(|| format!("`approvers_required` = {n}: use 1 to 5"))?;
        }
        Ok(t)
    }

    fn enabled(&self, rule: &Rule) -> bool {
        ALL.iter()
            .position(|r| r.id == rule.id)
            .is_none_or(|i| self.disabled & (1 << i) == 0)
    }
}

/// The whole policy as one verdict: any forbid denies; no permit denies; any gate holds
/// for approval; else allow.
pub fn decide(r: &Request) -> Verdict {
    decide_tuned(r, &Tuning::default())
}

/// [`decide`] with deployment [`Tuning`].
pub fn decide_tuned(r: &Request, tuning: &Tuning) -> Verdict {
    let f = Facts::of(r);
    let by_group = |g: Group| {
        ALL.iter()
            .copied()
            .filter(move |r| r.group == g && tuning.enabled(r))
    };
    let forbid: Vec<Rule> = by_group(Group::Forbid).collect();
    let denied = deny_if_any(&f, &forbid);
    if denied.effect == Effect::Deny {
        return denied;
    }
    let permits = matching(&f, &by_group(Group::Permit).collect::<Vec<_>>());
    if permits.is_empty() {
        return Verdict::deny(no_permit());
    }
    let gates = matching(&f, &by_group(Group::Gate).collect::<Vec<_>>());
    if !gates.is_empty() {
        return Verdict::with_reasons(Effect::RequireApproval, gates)
            .with(Obligation::ApproversRequired(tuning.approvers_required))
            .with(credential_lifetime(&f));
    }
    Verdict::with_reasons(Effect::Allow, permits).with(credential_lifetime(&f))
}
