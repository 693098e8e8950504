"""The reference policy (`shared/reference-policy.md`): fifteen rules in three groups.

Forbid rules deny on any match; permit rules are needed for anything but a deny; gate
rules hold a permitted action for human approval unless the host verified an approval.
Missing or mistyped inputs never help a request: a missing risk counts as maximal, a
missing hour as outside business hours, a missing team as no match.

The same rules, reason codes and obligations as plugins/rust/reference-rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional

from arbiter_policy import (
    Effect,
    Obligation,
    Policy,
    PrincipalKind,
    Privilege,
    Reason,
    Request,
    Verdict,
    approvers_required,
    attrs,
    deny,
    export,
    max_credential_lifetime,
    reason,
    verdict,
)

#: Credentials for routine actions live at most 15 minutes.
ROUTINE_CREDENTIAL_SECS = 15 * 60
#: Credentials for admin and identity changes live at most 5 minutes.
PRIVILEGED_CREDENTIAL_SECS = 5 * 60

_DIGITS = frozenset("0123456789")


def is_corporate(ip: str) -> bool:
    """True for a dotted IPv4 address in 10.0.0.0/8 (octets parsed as Rust's `u8` does:
    ASCII digits, an optional leading `+`, leading zeros allowed, at most 255)."""
    parts = ip.split(".")
    if len(parts) != 4:
        return False
    octets = []
    for p in parts:
        digits = p[1:] if p.startswith("+") else p
        if not digits or not _DIGITS.issuperset(digits) or int(digits) > 255:
            return False
        octets.append(int(digits))
    return octets[0] == 10


@dataclass
class Facts:
    """The inputs the rules read, extracted once per request."""

    kind: PrincipalKind
    team: Optional[str]
    has_delegator: bool
    #: The team of `delegation[0]`, when delegation is not empty.
    delegator_team: Optional[str]
    action: str
    privilege: Privilege
    resource_kind: str
    env: Optional[str]
    owner: Optional[str]
    purpose: str
    ticket: str
    hour: Optional[int]
    corporate_ip: bool
    risk: int
    mfa: bool
    approved: bool

    @staticmethod
    def of(r: Request) -> "Facts":
        ctx = attrs(r.context)
        res = attrs(r.resource.attributes)
        risk = ctx.int("risk")
        ip = ctx.str("source_ip")
        return Facts(
            kind=r.principal.kind,
            team=attrs(r.principal.attributes).str("team"),
            has_delegator=len(r.delegation) > 0,
            delegator_team=attrs(r.delegation[0].attributes).str("team") if r.delegation else None,
            action=r.action.name,
            privilege=r.action.privilege,
            resource_kind=r.resource.kind,
            env=res.str("env"),
            owner=res.str("owner_team"),
            purpose=r.intent.purpose,
            ticket=r.intent.ticket,
            hour=ctx.int("hour"),
            corporate_ip=ip is not None and is_corporate(ip),
            risk=100 if risk is None else risk,
            mfa=ctx.bool("mfa") is True,
            approved=r.approval_verified,
        )

    @property
    def same_team(self) -> bool:
        return self.team is not None and self.owner is not None and self.team == self.owner

    @property
    def prod(self) -> bool:
        return self.env == "prod"

    @property
    def business_hours(self) -> bool:
        return self.hour is not None and 8 <= self.hour < 18


FORBID, PERMIT, GATE = "forbid", "permit", "gate"


@dataclass(frozen=True)
class Rule:
    id: str
    group: str
    code: str
    message: str
    test: Callable[[Facts], bool]

    def reason(self) -> Reason:
        return reason(self.code, self.message, f"reference rule {self.id} matched")


HUMAN, AGENT = PrincipalKind.HUMAN, PrincipalKind.AGENT
READ, WRITE, ADMIN, IDENTITY = Privilege.READ, Privilege.WRITE, Privilege.ADMIN, Privilege.IDENTITY_CHANGE

RULES: List[Rule] = [
    Rule("F1", FORBID, "risk-too-high",
         "the session's risk score is 80 or more; re-authenticate or lower the risk before retrying",
         lambda f: f.risk >= 80),
    Rule("F2", FORBID, "agent-admin-in-prod",
         "agents may not take admin actions in production; ask a human operator",
         lambda f: f.kind == AGENT and f.privilege == ADMIN and f.prod),
    Rule("F3", FORBID, "prod-write-outside-hours",
         "production writes are allowed only between 08:00 and 18:00; retry in business hours or open an incident",
         lambda f: f.privilege == WRITE and f.prod and not f.business_hours),
    Rule("F4", FORBID, "delegator-not-owner",
         "the human you act for does not own this resource; act for a member of the owning team",
         lambda f: f.has_delegator and (f.delegator_team is None or f.delegator_team != f.owner)),
    Rule("F5", FORBID, "secret-read-needs-ticket",
         "reading secrets needs a ticket and a risk score under 50",
         lambda f: f.action == "secrets:Read" and (f.ticket == "" or f.risk >= 50)),
    Rule("F6", FORBID, "privileged-from-outside",
         "admin and identity changes must come from the corporate network",
         lambda f: f.privilege in (ADMIN, IDENTITY) and not f.corporate_ip),
    Rule("P1", PERMIT, "read-own-team",
         "reads of your team's resources are allowed",
         lambda f: f.privilege == READ and f.same_team),
    Rule("P2", PERMIT, "read-staging",
         "reads in staging are allowed",
         lambda f: f.privilege == READ and f.env == "staging"),
    Rule("P3", PERMIT, "write-own-team",
         "writes to your team's resources are allowed",
         lambda f: f.privilege == WRITE and f.same_team),
    Rule("P4", PERMIT, "admin-own-team",
         "admin actions on your team's resources are allowed (humans need MFA)",
         lambda f: f.privilege == ADMIN and f.same_team and (f.kind != HUMAN or f.mfa)),
    Rule("P5", PERMIT, "identity-change-authorised",
         "identity changes are allowed for the security team, or for an owner with MFA",
         lambda f: f.privilege == IDENTITY
         and (f.team == "security" or (f.same_team and f.kind == HUMAN and f.mfa))),
    Rule("G1", GATE, "identity-change-needs-approval",
         "an agent's identity change needs a human approver; wait for approval and resubmit with the approval id",
         lambda f: f.kind == AGENT and f.privilege == IDENTITY and not f.approved),
    Rule("G2", GATE, "risky-prod-write-needs-approval",
         "an agent's production write at risk 50 or more needs a human approver",
         lambda f: f.kind == AGENT and f.privilege == WRITE and f.prod and f.risk >= 50
         and not f.approved),
    Rule("G3", GATE, "prod-admin-needs-approval",
         "admin actions in production need a human approver",
         lambda f: f.privilege == ADMIN and f.prod and not f.approved),
    Rule("G4", GATE, "data-export-needs-approval",
         "exporting data from databases or S3 needs a human approver",
         lambda f: f.purpose == "data-export"
         and f.resource_kind in ("database", "s3_bucket", "s3_object") and not f.approved),
]


def matching(f: Facts, group: str) -> List[Reason]:
    """The reasons of the rules of `group` that match, in document order."""
    return [r.reason() for r in RULES if r.group == group and r.test(f)]


def credential_lifetime(f: Facts) -> Obligation:
    """The credential lifetime obligation for a permitted action."""
    if f.privilege in (ADMIN, IDENTITY):
        return max_credential_lifetime(PRIVILEGED_CREDENTIAL_SECS)
    return max_credential_lifetime(ROUTINE_CREDENTIAL_SECS)


def no_permit() -> Reason:
    return reason("no-permit", "no rule permits this action for you on this resource",
                  "reference policy: no permit rule (P1-P5) matched")


def decide(r: Request) -> Verdict:
    """Any forbid denies; no permit denies; any gate holds for approval; else allow."""
    f = Facts.of(r)
    forbidden = matching(f, FORBID)
    if forbidden:
        return deny(*forbidden)
    permits = matching(f, PERMIT)
    if not permits:
        return deny(no_permit())
    gates = matching(f, GATE)
    if gates:
        return verdict(Effect.REQUIRE_APPROVAL, gates,
                       [approvers_required(1), credential_lifetime(f)])
    return verdict(Effect.ALLOW, permits, [credential_lifetime(f)])


class Reference(Policy):
    name = "reference-python"
    version = "0.1.0"

    def evaluate(self, request: Request) -> Verdict:
        return decide(request)


# componentize-py instantiates the class named after the exported interface.
Evaluator = export(Reference)
