"""{{name}}: an Arbiter policy plugin. Two rules and a default, each with its reason
code (the `rules` of policy-set.toml):

1. `agent-privileged-action` (deny): agents take no admin, identity-change or
   secret-access actions.
2. `prod-change-needs-approval` (require approval): writes and admin actions on a
   resource whose `env` is `prod` wait for a human approver.
3. Anything else is allowed (`permitted`).
"""

from arbiter_policy import (
    Policy,
    PrincipalKind,
    Privilege,
    Request,
    Verdict,
    allow,
    attrs,
    deny,
    export,
    reason,
    require_approval,
)

PRIVILEGED = (Privilege.ADMIN, Privilege.IDENTITY_CHANGE, Privilege.SECRET_ACCESS)
CHANGES = (Privilege.WRITE, Privilege.ADMIN)


class Starter(Policy):
    name = "{{name}}"
    version = "0.1.0"

    def evaluate(self, request: Request) -> Verdict:
        privilege = request.action.privilege
        # Rule 1.
        if request.principal.kind == PrincipalKind.AGENT and privilege in PRIVILEGED:
            return deny(reason(
                "agent-privileged-action",
                "agents may not take admin, identity-change or secret-access actions; ask a human",
                "rule 1: an agent asked for a privileged action",
            ))
        # Rule 2.
        prod = attrs(request.resource.attributes).str("env") == "prod"
        if prod and privilege in CHANGES and not request.approval_verified:
            return require_approval(reason(
                "prod-change-needs-approval",
                "changes in production need a human approver; resubmit once approved",
                "rule 2: a production change without a verified approval",
            ))
        return allow(reason("permitted", "permitted"))


Evaluator = export(Starter)
