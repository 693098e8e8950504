/*
 * {{name}}: an Arbiter policy plugin. Two rules and a default, each with its reason
 * code (the `rules` of policy-set.toml):
 *
 * 1. `agent-privileged-action` (deny): agents take no admin, identity-change or
 *    secret-access actions.
 * 2. `prod-change-needs-approval` (require approval): writes and admin actions on a
 *    resource whose `env` is `prod` wait for a human approver.
 * 3. Anything else is allowed (`permitted`).
 *
 * The SDK (sdk/arbiter_policy.h) says what a plugin may call: no I/O (printf, fopen,
 * time...), log with ap_log.
 */
#include "arbiter_policy.h"

void ap_policy_describe(ap_description_t *d) { ap_describe(d, "{{name}}", "0.1.0"); }

void ap_policy_evaluate(const ap_request_t *r, ap_verdict_t *v) {
    ap_privilege_t privilege = r->action.privilege;
    bool privileged =
        privilege == AP_ADMIN || privilege == AP_IDENTITY_CHANGE || privilege == AP_SECRET_ACCESS;
    /* Rule 1. */
    if (r->principal.kind == AP_AGENT && privileged) {
        ap_verdict_set(v, AP_DENY);
        ap_add_reason(v, "agent-privileged-action",
                      "agents may not take admin, identity-change or secret-access actions; ask a human",
                      "rule 1: an agent asked for a privileged action");
        return;
    }
    /* Rule 2. */
    bool prod = ap_attr_is(&r->resource.attributes, "env", "prod");
    bool change = privilege == AP_WRITE || privilege == AP_ADMIN;
    if (prod && change && !r->approval_verified) {
        ap_verdict_set(v, AP_REQUIRE_APPROVAL);
        ap_add_reason(v, "prod-change-needs-approval",
                      "changes in production need a human approver; resubmit once approved",
                      "rule 2: a production change without a verified approval");
        return;
    }
    ap_verdict_set(v, AP_ALLOW);
    ap_add_reason(v, "permitted", "permitted", NULL);
}
