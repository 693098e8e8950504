// The isolation probe (twin of plugins/fixtures/isolation): `configure` stores the `mark`
// setting; every `evaluate` counts itself, appends the principal's id to a list and
// denies with the reason code `probe` and the message `mark=M count=N seen=ID,...`. A
// fresh instance must always report `count=1` and only its own request's id.

import { definePolicy, deny, reason } from '../sdk/index.js';

const state = { mark: 'unset', count: 0, seen: [] };

export const evaluator = definePolicy({
  name: 'isolation',
  version: '0.1.0',
  configure(settings) {
    state.mark = settings.str('mark') ?? 'unset';
    state.count = 0;
    state.seen = [];
  },
  evaluate(request) {
    state.count += 1;
    state.seen.push(request.principal.id);
    const seen = state.seen.map((id) => `${id},`).join('');
    return deny([reason('probe', `mark=${state.mark} count=${state.count} seen=${seen}`)]);
  },
});
