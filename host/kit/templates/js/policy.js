// {{name}}: an Arbiter policy plugin. Two rules and a default, each with its reason
// code (the `rules` of policy-set.toml):
//
// 1. `agent-privileged-action` (deny): agents take no admin, identity-change or
//    secret-access actions.
// 2. `prod-change-needs-approval` (require approval): writes and admin actions on a
//    resource whose `env` is `prod` wait for a human approver.
// 3. Anything else is allowed (`permitted`).

import { allow, attributes, definePolicy, deny, reason, requireApproval } from '../sdk/index.js';

const PRIVILEGED = ['admin', 'identity-change', 'secret-access'];
const CHANGES = ['write', 'admin'];

export const evaluator = definePolicy({
  name: '{{name}}',
  version: '0.1.0',
  evaluate(request) {
    const privilege = request.action.privilege;
    // Rule 1.
    if (request.principal.kind === 'agent' && PRIVILEGED.includes(privilege)) {
      return deny([reason('agent-privileged-action',
        'agents may not take admin, identity-change or secret-access actions; ask a human',
        'rule 1: an agent asked for a privileged action')]);
    }
    // Rule 2.
    const prod = attributes(request.resource.attributes).str('env') === 'prod';
    if (prod && CHANGES.includes(privilege) && !request.approvalVerified) {
      return requireApproval([reason('prod-change-needs-approval',
        'changes in production need a human approver; resubmit once approved',
        'rule 2: a production change without a verified approval')]);
    }
    return allow([reason('permitted', 'permitted')]);
  },
});
