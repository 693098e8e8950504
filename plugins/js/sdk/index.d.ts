// Types of the Arbiter JavaScript SDK (index.js). The WIT types come from `jco types`
// (types/, regenerate with `plugins/js/build.sh --regen-types`). One difference the
// generated types cannot show: 64-bit integers (`s64` in an `int` attribute, the `u64`
// of `max-credential-lifetime`) arrive as a `number` under QuickJS and a `bigint` under
// StarlingMonkey; the getters and builders below accept and return plain numbers.

import type {
  Attribute,
  Description,
  Effect,
  Obligation,
  Reason,
  Request,
  Value,
  Verdict,
} from './types/interfaces/arbiter-policy-types.js';
import type { Level } from './types/interfaces/arbiter-policy-log.js';

export type {
  Action,
  Attribute,
  Description,
  Effect,
  Intent,
  Obligation,
  Principal,
  PrincipalKind,
  Privilege,
  Reason,
  Request,
  Resource,
  Value,
  Verdict,
} from './types/interfaces/arbiter-policy-types.js';
export type { Level } from './types/interfaces/arbiter-policy-log.js';

/** Typed look-ups in an attribute list: each getter answers `undefined` when the
 * attribute is missing or has another type, so a rule never matches on bad input. */
export class Attributes {
  constructor(list: Attribute[] | undefined);
  readonly list: Attribute[];
  /** The raw value named `name`. */
  get(name: string): Value | undefined;
  str(name: string): string | undefined;
  /** An integer attribute as a number, whichever engine runs the plugin. */
  int(name: string): number | undefined;
  /** A float attribute; integers widen. */
  float(name: string): number | undefined;
  bool(name: string): boolean | undefined;
  strings(name: string): string[] | undefined;
}

/** Wraps an attribute list (`request.context`, `principal.attributes`...). */
export function attributes(list: Attribute[] | undefined): Attributes;

/** A reason; the admin message repeats the caller message unless given. */
export function reason(code: string, callerMessage: string, adminMessage?: string): Reason;

/** Upper bound, in seconds, on any credential issued for this action. */
export function maxCredentialLifetime(seconds: number): Obligation;
/** Number of distinct human approvers required. */
export function approversRequired(count: number): Obligation;

type OneOrMany<T> = T | T[];

export function verdict(
  effect: Effect,
  reasons?: OneOrMany<Reason>,
  obligations?: OneOrMany<Obligation>,
): Verdict;
export function allow(reasons?: OneOrMany<Reason>, obligations?: OneOrMany<Obligation>): Verdict;
export function deny(reasons?: OneOrMany<Reason>): Verdict;
export function requireApproval(
  reasons?: OneOrMany<Reason>,
  obligations?: OneOrMany<Obligation>,
): Verdict;
/** No opinion: the request is outside what this plugin covers. */
export function abstain(): Verdict;

/** Writes a line into the host's log (capped per evaluation by the host). */
export function log(level: Level, message: string): void;
/** The bytes of a data file shipped with the policy set, or `undefined`. */
export function readData(name: string): Uint8Array | undefined;
/** A data file decoded as UTF-8, or `undefined`. */
export function readText(name: string): string | undefined;

/** What `definePolicy` takes. */
export interface Policy {
  name: string;
  version: string;
  /** Action names or `prefix:*` patterns the plugin has rules for; empty means all. */
  actions?: string[];
  /** Receives the plugin's settings (dotted names for nested tables); throw to refuse
   * the load. Runs at load and again on every fresh instance before `evaluate`: the host
   * snapshots other languages' plugins after `configure`, but componentize-qjs nests
   * components, which its snapshotter (Wizer 48) cannot instrument yet. Keep it cheap and
   * deterministic. */
  configure?(settings: Attributes): void;
  /** Decides one request. A throw is a `plugin-failure` deny. */
  evaluate(request: Request): Verdict;
}

/** The `evaluator` export: `export const evaluator = definePolicy({...})`. */
export function definePolicy(policy: Policy): {
  describe(): Description;
  configure(settings: Attribute[]): void;
  evaluate(request: Request): Verdict;
};
