// The reference policy (shared/reference-policy.md): fifteen rules in three groups, the
// same rules, reason codes and obligations as plugins/rust/reference-rules.
//
// Forbid rules deny on any match; permit rules are needed for anything but a deny; gate
// rules hold a permitted action for human approval unless the host verified an approval.
// Missing or mistyped inputs never help a request: a missing risk counts as maximal, a
// missing hour as outside business hours, a missing team as no match.

import {
  allow,
  approversRequired,
  attributes,
  definePolicy,
  deny,
  maxCredentialLifetime,
  reason,
  requireApproval,
} from '../sdk/index.js';

/** Credentials for routine actions live at most 15 minutes. */
const ROUTINE_CREDENTIAL_SECS = 15 * 60;
/** Credentials for admin and identity changes live at most 5 minutes. */
const PRIVILEGED_CREDENTIAL_SECS = 5 * 60;

/** True for a dotted IPv4 address in 10.0.0.0/8. Each part parses as Rust's `u8` does
 * (digits, an optional leading `+`, at most 255), as in the Rust plugin. */
function isCorporate(ip) {
  const parts = ip.split('.');
  const octet = (p) => (/^\+?[0-9]+$/.test(p) && Number(p) <= 255 ? Number(p) : undefined);
  const octets = parts.map(octet);
  return parts.length === 4 && octets.every((o) => o !== undefined) && octets[0] === 10;
}

/** The inputs the rules read, extracted once per request. */
function facts(r) {
  const context = attributes(r.context);
  const resource = attributes(r.resource.attributes);
  const teamOf = (p) => attributes(p.attributes).str('team');
  const ip = context.str('source_ip');
  const f = {
    kind: r.principal.kind,
    team: teamOf(r.principal),
    // Present (possibly undefined) only when delegation is not empty.
    delegated: r.delegation.length > 0,
    delegatorTeam: r.delegation.length > 0 ? teamOf(r.delegation[0]) : undefined,
    action: r.action.name,
    privilege: r.action.privilege,
    resourceKind: r.resource.kind,
    env: resource.str('env'),
    owner: resource.str('owner_team'),
    purpose: r.intent.purpose,
    ticket: r.intent.ticket,
    hour: context.int('hour'),
    corporateIp: ip !== undefined && isCorporate(ip),
    risk: context.int('risk') ?? 100,
    mfa: context.bool('mfa') ?? false,
    approved: r.approvalVerified,
  };
  f.sameTeam = f.team !== undefined && f.owner !== undefined && f.team === f.owner;
  f.prod = f.env === 'prod';
  f.businessHours = f.hour !== undefined && f.hour >= 8 && f.hour < 18;
  return f;
}

const rule = (id, group, code, message, test) => ({ id, group, code, message, test });

/** All fifteen rules in document order. */
export const RULES = [
  rule('F1', 'forbid', 'risk-too-high',
    "the session's risk score is 80 or more; re-authenticate or lower the risk before retrying",
    (f) => f.risk >= 80),
  rule('F2', 'forbid', 'agent-admin-in-prod',
    'agents may not take admin actions in production; ask a human operator',
    (f) => f.kind === 'agent' && f.privilege === 'admin' && f.prod),
  rule('F3', 'forbid', 'prod-write-outside-hours',
    'production writes are allowed only between 08:00 and 18:00; retry in business hours or open an incident',
    (f) => f.privilege === 'write' && f.prod && !f.businessHours),
  rule('F4', 'forbid', 'delegator-not-owner',
    'the human you act for does not own this resource; act for a member of the owning team',
    (f) => f.delegated && (f.delegatorTeam === undefined || f.delegatorTeam !== f.owner)),
  rule('F5', 'forbid', 'secret-read-needs-ticket',
    'reading secrets needs a ticket and a risk score under 50',
    (f) => f.action === 'secrets:Read' && (f.ticket === '' || f.risk >= 50)),
  rule('F6', 'forbid', 'privileged-from-outside',
    'admin and identity changes must come from the corporate network',
    (f) => (f.privilege === 'admin' || f.privilege === 'identity-change') && !f.corporateIp),
  rule('P1', 'permit', 'read-own-team', "reads of your team's resources are allowed",
    (f) => f.privilege === 'read' && f.sameTeam),
  rule('P2', 'permit', 'read-staging', 'reads in staging are allowed',
    (f) => f.privilege === 'read' && f.env === 'staging'),
  rule('P3', 'permit', 'write-own-team', "writes to your team's resources are allowed",
    (f) => f.privilege === 'write' && f.sameTeam),
  rule('P4', 'permit', 'admin-own-team',
    "admin actions on your team's resources are allowed (humans need MFA)",
    (f) => f.privilege === 'admin' && f.sameTeam && (f.kind !== 'human' || f.mfa)),
  rule('P5', 'permit', 'identity-change-authorised',
    'identity changes are allowed for the security team, or for an owner with MFA',
    (f) => f.privilege === 'identity-change' &&
      (f.team === 'security' || (f.sameTeam && f.kind === 'human' && f.mfa))),
  rule('G1', 'gate', 'identity-change-needs-approval',
    "an agent's identity change needs a human approver; wait for approval and resubmit with the approval id",
    (f) => f.kind === 'agent' && f.privilege === 'identity-change' && !f.approved),
  rule('G2', 'gate', 'risky-prod-write-needs-approval',
    "an agent's production write at risk 50 or more needs a human approver",
    (f) => f.kind === 'agent' && f.privilege === 'write' && f.prod && f.risk >= 50 && !f.approved),
  rule('G3', 'gate', 'prod-admin-needs-approval',
    'admin actions in production need a human approver',
    (f) => f.privilege === 'admin' && f.prod && !f.approved),
  rule('G4', 'gate', 'data-export-needs-approval',
    'exporting data from databases or S3 needs a human approver',
    (f) => f.purpose === 'data-export' &&
      ['database', 's3_bucket', 's3_object'].includes(f.resourceKind) && !f.approved),
];

const FORBID = RULES.filter((r) => r.group === 'forbid');
const PERMIT = RULES.filter((r) => r.group === 'permit');
const GATE = RULES.filter((r) => r.group === 'gate');

/** The reasons of the rules among `rules` that match. */
function matching(f, rules) {
  return rules
    .filter((r) => r.test(f))
    .map((r) => reason(r.code, r.message, `reference rule ${r.id} matched`));
}

/** The credential lifetime obligation for a permitted action. */
function credentialLifetime(f) {
  const privileged = f.privilege === 'admin' || f.privilege === 'identity-change';
  return maxCredentialLifetime(privileged ? PRIVILEGED_CREDENTIAL_SECS : ROUTINE_CREDENTIAL_SECS);
}

const NO_PERMIT = reason('no-permit', 'no rule permits this action for you on this resource',
  'reference policy: no permit rule (P1-P5) matched');

/** The whole policy as one verdict: any forbid denies; no permit denies; any gate holds
 * for approval; else allow. */
export function decide(request) {
  const f = facts(request);
  const forbidden = matching(f, FORBID);
  if (forbidden.length > 0) return deny(forbidden);
  const permits = matching(f, PERMIT);
  if (permits.length === 0) return deny(NO_PERMIT);
  const gates = matching(f, GATE);
  if (gates.length > 0) {
    return requireApproval(gates, [approversRequired(1), credentialLifetime(f)]);
  }
  return allow(permits, credentialLifetime(f));
}

export const evaluator = definePolicy({
  name: 'reference',
  version: '0.1.0',
  evaluate: decide,
});
