/*
 * The reference policy (shared/reference-policy.md): fifteen rules in three groups.
 *
 * Forbid rules deny on any match; permit rules are needed for anything but a deny; gate
 * rules hold a permitted action for human approval unless the host verified an
 * approval. Missing or mistyped inputs never help a request: a missing risk counts as
 * maximal, a missing hour as outside business hours, a missing team as no match.
 *
 * The same rules, reason codes and obligations as plugins/rust/reference-rules.
 */
#include "arbiter_policy.h"

/* Credentials for routine actions live at most 15 minutes. */
#define ROUTINE_CREDENTIAL_SECS (15 * 60)
/* Credentials for admin and identity changes live at most 5 minutes. */
#define PRIVILEGED_CREDENTIAL_SECS (5 * 60)

/* The inputs the rules read, extracted once per request. Strings borrow the request. */
typedef struct {
    ap_principal_kind_t kind;
    bool has_team;
    ap_string_t team;
    bool has_delegator; /* delegation is not empty */
    bool has_delegator_team;
    ap_string_t delegator_team; /* team of delegation[0] */
    ap_string_t action;
    ap_privilege_t privilege;
    ap_string_t resource_kind;
    bool has_env;
    ap_string_t env;
    bool has_owner;
    ap_string_t owner;
    ap_string_t purpose;
    ap_string_t ticket;
    bool has_hour;
    int64_t hour;
    bool corporate_ip;
    int64_t risk;
    bool mfa;
    bool approved;
} facts_t;

static bool str_same(ap_string_t a, ap_string_t b) {
    if (a.len != b.len) return false;
    for (size_t i = 0; i < a.len; i++) {
        if (a.ptr[i] != b.ptr[i]) return false;
    }
    return true;
}

/* True for a dotted IPv4 address in 10.0.0.0/8. Octets are parsed as Rust's `u8` parses
 * them: an optional leading '+', one or more ASCII digits, leading zeros allowed, <= 255. */
static bool is_corporate(ap_string_t ip) {
    unsigned octets[4];
    size_t n = 0, i = 0;
    for (;;) {
        if (n == 4) return false; /* a fifth part */
        if (i < ip.len && ip.ptr[i] == '+') i++;
        size_t digits = 0;
        unsigned value = 0;
        while (i < ip.len && ip.ptr[i] >= '0' && ip.ptr[i] <= '9') {
            value = value * 10 + (unsigned)(ip.ptr[i] - '0');
            if (value > 255) return false;
            digits++;
            i++;
        }
        if (digits == 0) return false;
        octets[n++] = value;
        if (i == ip.len) break;
        if (ip.ptr[i] != '.') return false;
        i++;
        if (i == ip.len) return false; /* a trailing dot: an empty last part */
    }
    return n == 4 && octets[0] == 10;
}

static facts_t facts_of(const ap_request_t *r) {
    facts_t f = {0};
    f.kind = r->principal.kind;
    f.has_team = ap_get_str(&r->principal.attributes, "team", &f.team);
    f.has_delegator = r->delegation.len > 0;
    if (f.has_delegator) {
        f.has_delegator_team = ap_get_str(&r->delegation.ptr[0].attributes, "team", &f.delegator_team);
    }
    f.action = r->action.name;
    f.privilege = r->action.privilege;
    f.resource_kind = r->resource.kind;
    f.has_env = ap_get_str(&r->resource.attributes, "env", &f.env);
    f.has_owner = ap_get_str(&r->resource.attributes, "owner_team", &f.owner);
    f.purpose = r->intent.purpose;
    f.ticket = r->intent.ticket;
    f.has_hour = ap_get_int(&r->context, "hour", &f.hour);
    ap_string_t ip;
    f.corporate_ip = ap_get_str(&r->context, "source_ip", &ip) && is_corporate(ip);
    f.risk = 100; /* missing risk counts as maximal */
    ap_get_int(&r->context, "risk", &f.risk);
    f.mfa = false;
    ap_get_bool(&r->context, "mfa", &f.mfa);
    f.approved = r->approval_verified;
    return f;
}

static bool same_team(const facts_t *f) {
    return f->has_team && f->has_owner && str_same(f->team, f->owner);
}
static bool prod(const facts_t *f) { return f->has_env && ap_str_eq(f->env, "prod"); }
static bool staging(const facts_t *f) { return f->has_env && ap_str_eq(f->env, "staging"); }
static bool business_hours(const facts_t *f) { return f->has_hour && f->hour >= 8 && f->hour < 18; }
static bool privileged(const facts_t *f) {
    return f->privilege == AP_ADMIN || f->privilege == AP_IDENTITY_CHANGE;
}

/* ---- the rules ------------------------------------------------------------------ */

static bool f1(const facts_t *f) { return f->risk >= 80; }
static bool f2(const facts_t *f) { return f->kind == AP_AGENT && f->privilege == AP_ADMIN && prod(f); }
static bool f3(const facts_t *f) { return f->privilege == AP_WRITE && prod(f) && !business_hours(f); }
static bool f4(const facts_t *f) {
    return f->has_delegator &&
           (!f->has_delegator_team || !f->has_owner || !str_same(f->delegator_team, f->owner));
}
static bool f5(const facts_t *f) {
    return ap_str_eq(f->action, "secrets:Read") && (ap_str_empty(f->ticket) || f->risk >= 50);
}
static bool f6(const facts_t *f) { return privileged(f) && !f->corporate_ip; }
static bool p1(const facts_t *f) { return f->privilege == AP_READ && same_team(f); }
static bool p2(const facts_t *f) { return f->privilege == AP_READ && staging(f); }
static bool p3(const facts_t *f) { return f->privilege == AP_WRITE && same_team(f); }
static bool p4(const facts_t *f) {
    return f->privilege == AP_ADMIN && same_team(f) && (f->kind != AP_HUMAN || f->mfa);
}
static bool p5(const facts_t *f) {
    bool security = f->has_team && ap_str_eq(f->team, "security");
    return f->privilege == AP_IDENTITY_CHANGE &&
           (security || (same_team(f) && f->kind == AP_HUMAN && f->mfa));
}
static bool g1(const facts_t *f) {
    return f->kind == AP_AGENT && f->privilege == AP_IDENTITY_CHANGE && !f->approved;
}
static bool g2(const facts_t *f) {
    return f->kind == AP_AGENT && f->privilege == AP_WRITE && prod(f) && f->risk >= 50 && !f->approved;
}
static bool g3(const facts_t *f) { return f->privilege == AP_ADMIN && prod(f) && !f->approved; }
static bool g4(const facts_t *f) {
    bool exportable = ap_str_eq(f->resource_kind, "database") ||
                      ap_str_eq(f->resource_kind, "s3_bucket") ||
                      ap_str_eq(f->resource_kind, "s3_object");
    return ap_str_eq(f->purpose, "data-export") && exportable && !f->approved;
}

typedef enum { FORBID, PERMIT, GATE } group_t;

typedef struct {
    group_t group;
    const char *code;
    const char *message;
    const char *admin; /* "reference rule <id> matched" */
    bool (*test)(const facts_t *);
} rule_t;

#define RULE(id, group, code, message, test) {group, code, message, "reference rule " id " matched", test}

/* All fifteen rules in document order. */
static const rule_t RULES[] = {
    RULE("F1", FORBID, "risk-too-high",
         "the session's risk score is 80 or more; re-authenticate or lower the risk before retrying", f1),
    RULE("F2", FORBID, "agent-admin-in-prod",
         "agents may not take admin actions in production; ask a human operator", f2),
    RULE("F3", FORBID, "prod-write-outside-hours",
         "production writes are allowed only between 08:00 and 18:00; retry in business hours or open an incident", f3),
    RULE("F4", FORBID, "delegator-not-owner",
         "the human you act for does not own this resource; act for a member of the owning team", f4),
    RULE("F5", FORBID, "secret-read-needs-ticket",
         "reading secrets needs a ticket and a risk score under 50", f5),
    RULE("F6", FORBID, "privileged-from-outside",
         "admin and identity changes must come from the corporate network", f6),
    RULE("P1", PERMIT, "read-own-team", "reads of your team's resources are allowed", p1),
    RULE("P2", PERMIT, "read-staging", "reads in staging are allowed", p2),
    RULE("P3", PERMIT, "write-own-team", "writes to your team's resources are allowed", p3),
    RULE("P4", PERMIT, "admin-own-team",
         "admin actions on your team's resources are allowed (humans need MFA)", p4),
    RULE("P5", PERMIT, "identity-change-authorised",
         "identity changes are allowed for the security team, or for an owner with MFA", p5),
    RULE("G1", GATE, "identity-change-needs-approval",
         "an agent's identity change needs a human approver; wait for approval and resubmit with the approval id", g1),
    RULE("G2", GATE, "risky-prod-write-needs-approval",
         "an agent's production write at risk 50 or more needs a human approver", g2),
    RULE("G3", GATE, "prod-admin-needs-approval", "admin actions in production need a human approver", g3),
    RULE("G4", GATE, "data-export-needs-approval",
         "exporting data from databases or S3 needs a human approver", g4),
};
#define N_RULES (sizeof RULES / sizeof RULES[0])

/* Adds the reason of every rule of `group` that matches; returns how many matched. */
static size_t add_matching(const facts_t *f, group_t group, ap_verdict_t *v) {
    size_t n = 0;
    for (size_t i = 0; i < N_RULES; i++) {
        if (RULES[i].group == group && RULES[i].test(f)) {
            ap_add_reason(v, RULES[i].code, RULES[i].message, RULES[i].admin);
            n++;
        }
    }
    return n;
}

static bool any_matching(const facts_t *f, group_t group) {
    for (size_t i = 0; i < N_RULES; i++) {
        if (RULES[i].group == group && RULES[i].test(f)) return true;
    }
    return false;
}

static uint64_t credential_lifetime(const facts_t *f) {
    return privileged(f) ? PRIVILEGED_CREDENTIAL_SECS : ROUTINE_CREDENTIAL_SECS;
}

/* ---- the plugin ----------------------------------------------------------------- */

void ap_policy_describe(ap_description_t *d) { ap_describe(d, "reference-c", "0.1.0"); }

/* Any forbid denies; no permit denies; any gate holds for approval; else allow. */
void ap_policy_evaluate(const ap_request_t *r, ap_verdict_t *v) {
    facts_t f = facts_of(r);
    if (any_matching(&f, FORBID)) {
        ap_verdict_set(v, AP_DENY);
        add_matching(&f, FORBID, v);
        return;
    }
    if (!any_matching(&f, PERMIT)) {
        ap_verdict_set(v, AP_DENY);
        ap_add_reason(v, "no-permit", "no rule permits this action for you on this resource",
                      "reference policy: no permit rule (P1-P5) matched");
        return;
    }
    if (any_matching(&f, GATE)) {
        ap_verdict_set(v, AP_REQUIRE_APPROVAL);
        add_matching(&f, GATE, v);
        ap_add_approvers(v, 1);
        ap_add_lifetime(v, credential_lifetime(&f));
        return;
    }
    ap_verdict_set(v, AP_ALLOW);
    add_matching(&f, PERMIT, v);
    ap_add_lifetime(v, credential_lifetime(&f));
}
