//! {{name}}: an Arbiter policy plugin. Two rules and a default, each with its reason
//! code (the `rules` of policy-set.toml):
//!
//! 1. `agent-privileged-action` (deny): agents take no admin, identity-change or
//!    secret-access actions.
//! 2. `prod-change-needs-approval` (require approval): writes and admin actions on a
//!    resource whose `env` is `prod` wait for a human approver.
//! 3. Anything else is allowed (`permitted`).

use arbiter_policy::{
    AttributesExt, Description, Policy, PrincipalKind, Privilege, Reason, Request, Verdict,
    export_policy,
};

struct Starter;

impl Policy for Starter {
    fn describe() -> Description {
        Description::new("{{name}}", env!("CARGO_PKG_VERSION"))
    }

    fn evaluate(request: &Request) -> Verdict {
        let privilege = request.action.privilege;
        let privileged = matches!(
            privilege,
            Privilege::Admin | Privilege::IdentityChange | Privilege::SecretAccess
        );
        // Rule 1.
        if request.principal.kind == PrincipalKind::Agent && privileged {
            return Verdict::deny(
                Reason::new(
                    "agent-privileged-action",
                    "agents may not take admin, identity-change or secret-access actions; ask a human",
                )
                .admin("rule 1: an agent asked for a privileged action"),
            );
        }
        // Rule 2.
        let prod = request.resource.attributes.str("env") == Some("prod");
        let change = matches!(privilege, Privilege::Write | Privilege::Admin);
        if prod && change && !request.approval_verified {
            return Verdict::require_approval(
                Reason::new(
                    "prod-change-needs-approval",
                    "changes in production need a human approver; resubmit once approved",
                )
                .admin("rule 2: a production change without a verified approval"),
            );
        }
        Verdict::allow_because(Reason::new("permitted", "permitted"))
    }
}

export_policy!(Starter);
