// Write Arbiter policy plugins in JavaScript.
//
// A plugin is an ES module that exports `evaluator`, built with `definePolicy`:
//
//   import { definePolicy, attributes, allow, deny, reason } from '../sdk/index.js';
//
//   export const evaluator = definePolicy({
//     name: 'read-only',
//     version: '1.0.0',
//     evaluate(request) {
//       return request.action.privilege === 'read'
//         ? allow()
//         : deny(reason('read-only', 'only reads are allowed here'));
//     },
//   });
//
// The same source builds with both engines that `build.sh` supports (QuickJS and
// StarlingMonkey). They differ in how 64-bit integers cross the boundary (number vs
// bigint) and how a missing option looks (null vs undefined); the helpers here hide both.
// Types: index.d.ts, over the ones `jco types` generated from the WIT (types/).

import { log as hostLog } from 'arbiter:policy/log@0.1.0';
import { read as hostRead } from 'arbiter:policy/data@0.1.0';

/** Typed look-ups in an attribute list; every getter answers undefined when the
 * attribute is missing or has another type, so a rule never matches on bad input. */
export class Attributes {
  /** @param {import('./types/interfaces/arbiter-policy-types.js').Attribute[]} list */
  constructor(list) {
    this.list = list ?? [];
  }

  /** The raw `{ tag, val }` value named `name`. */
  get(name) {
    for (const a of this.list) {
      if (a.name === name) return a.value;
    }
    return undefined;
  }

  str(name) {
    const v = this.get(name);
    return v?.tag === 'str' ? v.val : undefined;
  }

  /** An integer attribute as a number (QuickJS passes s64 as a number, StarlingMonkey
   * as a bigint). */
  int(name) {
    const v = this.get(name);
    return v?.tag === 'int' ? Number(v.val) : undefined;
  }

  /** A float attribute; integers widen. */
  float(name) {
    const v = this.get(name);
    if (v?.tag === 'float') return v.val;
    return v?.tag === 'int' ? Number(v.val) : undefined;
  }

  bool(name) {
    const v = this.get(name);
    return v?.tag === 'boolean' ? v.val : undefined;
  }

  strings(name) {
    const v = this.get(name);
    return v?.tag === 'strings' ? v.val : undefined;
  }
}

/** Wraps an attribute list (`request.context`, `principal.attributes`, settings...). */
export function attributes(list) {
  return new Attributes(list);
}

/** A reason; the admin message repeats the caller message unless given. */
export function reason(code, callerMessage, adminMessage = callerMessage) {
  return { code, callerMessage, adminMessage };
}

/** Upper bound, in seconds, on any credential issued for this action. */
export function maxCredentialLifetime(seconds) {
  // A plain number: QuickJS rejects a bigint for u64, StarlingMonkey accepts both.
  return { tag: 'max-credential-lifetime', val: Number(seconds) };
}

/** Number of distinct human approvers required. */
export function approversRequired(count) {
  return { tag: 'approvers-required', val: count };
}

const list = (x) => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

/** A verdict; `reasons` and `obligations` take one item or an array. */
export function verdict(effect, reasons, obligations) {
  return { effect, reasons: list(reasons), obligations: list(obligations) };
}

export const allow = (reasons, obligations) => verdict('allow', reasons, obligations);
export const deny = (reasons) => verdict('deny', reasons);
export const requireApproval = (reasons, obligations) =>
  verdict('require-approval', reasons, obligations);
export const abstain = () => verdict('abstain');

/** Writes a line into the host's log (capped per evaluation by the host). */
export function log(level, message) {
  hostLog(level, String(message));
}

/** The bytes of a data file shipped with the policy set, or undefined. */
export function readData(name) {
  return hostRead(name) ?? undefined;
}

/** A data file decoded as UTF-8 text, or undefined. */
export function readText(name) {
  const bytes = readData(name);
  return bytes === undefined ? undefined : utf8(bytes);
}

// TextDecoder is missing from QuickJS's runtime; the host only ships small files.
function utf8(bytes) {
  if (typeof TextDecoder === 'function') return new TextDecoder().decode(bytes);
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i++];
    let cp = b;
    let extra = 0;
    if (b >= 0xf0) [cp, extra] = [b & 0x07, 3];
    else if (b >= 0xe0) [cp, extra] = [b & 0x0f, 2];
    else if (b >= 0xc0) [cp, extra] = [b & 0x1f, 1];
    for (; extra > 0 && i < bytes.length; extra--) cp = (cp << 6) | (bytes[i++] & 0x3f);
    out += String.fromCodePoint(cp);
  }
  return out;
}

/**
 * The `evaluator` export from a policy definition:
 * `{ name, version, actions?, configure?(settings: Attributes), evaluate(request) }`.
 *
 * `configure` refuses the load by throwing (an Error or a string); its message becomes
 * the load error. An exception in `evaluate` traps, which the host counts as a
 * `plugin-failure` deny (fail closed), like a Rust panic; both engines write the
 * exception and its stack to stderr, which the host logs under `arbiter::guest`.
 */
export function definePolicy(policy) {
  const { name, version, actions = [], configure, evaluate } = policy;
  if (typeof evaluate !== 'function') throw new TypeError('definePolicy: `evaluate` is required');
  const description = { name: String(name), version: String(version), actions: [...actions] };
  return {
    describe: () => description,
    configure(settings) {
      if (!configure) return;
      try {
        configure(attributes(settings));
      } catch (e) {
        // Both engines turn a thrown string into the `err` of a result.
        throw e instanceof Error ? e.message : String(e);
      }
    },
    evaluate,
  };
}
