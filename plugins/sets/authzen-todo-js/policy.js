// The OpenID AuthZEN Todo interop scenario (shared/authzen/interop-todo-scenario.md), the
// JavaScript twin of plugins/rust/authzen/todo: the same rules, reason codes and caller
// messages, from the same users.json.
//
// Roles: `viewer` views the todo list and users; `editor` is `viewer` plus creating todos
// and updating and deleting the todos the user owns; `admin` is `editor` plus deleting any
// todo; `evil_genius` is `editor` plus updating any todo. The scenario makes both reads
// true for every user. A todo's owner is its `resource.properties.ownerID`, the owner's
// user id (email). Roles come from users.json only: roles a caller sends in
// `subject.properties` are ignored. An unknown subject, an unknown permission or a
// resource of the wrong type is denied with its reason.

import { allow, attributes, definePolicy, deny, readText, reason } from '../sdk/index.js';

const USERS_FILE = 'users.json';

/** The permissions, by AuthZEN action name. */
const PERMISSIONS = new Map([
  ['can_read_user', { resourceType: 'user', verb: 'view', what: 'users', open: true }],
  ['can_read_todos', { resourceType: 'todo', verb: 'view', what: 'todos', open: true }],
  ['can_create_todo', { resourceType: 'todo', verb: 'create', what: 'todos' }],
  ['can_update_todo', { resourceType: 'todo', verb: 'update', what: 'todos' }],
  ['can_delete_todo', { resourceType: 'todo', verb: 'delete', what: 'todos' }],
]);

/** Which todos a grant covers; a wider scope is a larger number. */
const OWN = 1;
const ANY = 2;

/** The roles: the roles each includes and what it grants on top of them. Reads are not
 * here: they are open to every user. Each role includes only roles defined before it. */
const ROLES = new Map([
  ['viewer', { includes: [], grants: new Map() }],
  [
    'editor',
    {
      includes: ['viewer'],
      grants: new Map([
        ['can_create_todo', ANY],
        ['can_update_todo', OWN],
        ['can_delete_todo', OWN],
      ]),
    },
  ],
  ['admin', { includes: ['editor'], grants: new Map([['can_delete_todo', ANY]]) }],
  ['evil_genius', { includes: ['editor'], grants: new Map([['can_update_todo', ANY]]) }],
]);

/** The widest scope (0: none) in which `name` and the roles it includes grant `action`. */
function granted(name, action) {
  const role = ROLES.get(name);
  if (role === undefined) return 0;
  return Math.max(role.grants.get(action) ?? 0, ...role.includes.map((r) => granted(r, action)));
}

/** The widest scope in which one of the user's roles grants `action`, and the role (the
 * last one of that scope, as in the Rust plugin). */
function bestGrant(user, action) {
  let best = { scope: 0, role: undefined };
  for (const role of user.roles) {
    const scope = granted(role, action);
    if (scope > 0 && scope >= best.scope) best = { scope, role };
  }
  return best;
}

/** The users by PID, parsed once per instance. */
let users;

function loadUsers() {
  if (users !== undefined) return users;
  const text = readText(USERS_FILE);
  if (text === undefined) {
    throw new Error(`data file \`${USERS_FILE}\` is not in the policy set; list it in the manifest's \`data\``);
  }
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`data file \`${USERS_FILE}\`: not a map from PID to user: ${e.message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error(`data file \`${USERS_FILE}\`: not a map from PID to user`);
  }
  const byPid = new Map(Object.entries(parsed));
  if (byPid.size === 0) throw new Error(`data file \`${USERS_FILE}\`: holds no users`);
  for (const [pid, user] of byPid) {
    const strings = (x) => Array.isArray(x) && x.every((s) => typeof s === 'string');
    if (
      user === null ||
      typeof user !== 'object' ||
      typeof user.id !== 'string' ||
      typeof user.name !== 'string' ||
      typeof user.email !== 'string' ||
      !strings(user.roles)
    ) {
      throw new Error(`data file \`${USERS_FILE}\`: user \`${pid}\` needs id, name, email and roles`);
    }
  }
  users = byPid;
  return users;
}

/** The user a subject id names: a PID, or else a user's own id (email). */
function findUser(byPid, subjectId) {
  const byPidUser = byPid.get(subjectId);
  if (byPidUser !== undefined) return byPidUser;
  for (const user of byPid.values()) {
    if (user.id === subjectId) return user;
  }
  return undefined;
}

const because = (code, caller, admin) => reason(code, caller, `authzen-todo-js: ${admin}`);

/** Decides one request against the users of the PIP. */
function decide(byPid, r) {
  const user = findUser(byPid, r.principal.id);
  if (user === undefined) {
    return deny(
      because(
        'unknown-subject',
        'the subject is not a user of the Todo application',
        `no user with PID or id \`${r.principal.id}\``,
      ),
    );
  }
  const p = PERMISSIONS.get(r.action.name);
  if (p === undefined) {
    return deny(
      because(
        'unknown-action',
        'the action is not a Todo permission: use can_read_user, can_read_todos, can_create_todo, can_update_todo or can_delete_todo',
        `action \`${r.action.name}\``,
      ),
    );
  }
  if (r.resource.kind !== p.resourceType) {
    return deny(
      because(
        'wrong-resource-type',
        `\`${r.action.name}\` applies to resources of type \`${p.resourceType}\``,
        `resource type \`${r.resource.kind}\``,
      ),
    );
  }
  const { verb, what } = p;
  if (p.open) {
    return allow(because('open-to-every-user', `every user may ${verb} ${what}`, `${user.id} may ${verb} ${what}`));
  }
  const owner = attributes(r.resource.attributes).str('ownerID');
  const { scope, role } = bestGrant(user, r.action.name);
  if (scope === ANY) {
    const caller =
      r.action.name === 'can_create_todo'
        ? `the \`${role}\` role may ${verb} ${what}`
        : `the \`${role}\` role may ${verb} any of the ${what}`;
    return allow(because('role-permits', caller, `${user.id} holds \`${role}\``));
  }
  if (scope === OWN && owner === user.id) {
    return allow(
      because(
        'owner-permits',
        `the \`${role}\` role may ${verb} the ${what} you own`,
        `${user.id} holds \`${role}\` and owns the todo`,
      ),
    );
  }
  if (scope === OWN) {
    return deny(
      because(
        'not-todo-owner',
        `the \`${role}\` role may ${verb} only the ${what} you own`,
        `${user.id} does not own the todo (its ownerID: ${JSON.stringify(owner ?? null)})`,
      ),
    );
  }
  return deny(
    because(
      'role-lacks-permission',
      `none of your roles may ${verb} ${what}`,
      `${user.id} holds ${JSON.stringify(user.roles)}`,
    ),
  );
}

export const evaluator = definePolicy({
  name: 'authzen-todo-js',
  version: '1.0.0',
  actions: [...PERMISSIONS.keys()],
  // Takes no settings; refuses the set when users.json is missing or malformed.
  configure() {
    loadUsers();
  },
  evaluate(request) {
    let byPid;
    try {
      byPid = loadUsers();
    } catch (e) {
      return deny(reason('pip-unavailable', 'the user directory is unavailable', String(e.message ?? e)));
    }
    return decide(byPid, request);
  },
});
