/** @module Interface arbiter:policy/types@0.1.0 **/
/**
 * A typed attribute value.
 */
export type Value = ValueStr | ValueInt | ValueFloat | ValueBoolean | ValueStrings;
export interface ValueStr {
  tag: 'str',
  val: string,
}
export interface ValueInt {
  tag: 'int',
  val: bigint,
}
export interface ValueFloat {
  tag: 'float',
  val: number,
}
export interface ValueBoolean {
  tag: 'boolean',
  val: boolean,
}
export interface ValueStrings {
  tag: 'strings',
  val: Array<string>,
}
/**
 * A named attribute. Names are unique within one list.
 */
export interface Attribute {
  name: string,
  value: Value,
}
/**
 * What kind of identity a principal is.
 * # Variants
 * 
 * ## `"human"`
 * 
 * ## `"service"`
 * 
 * ## `"agent"`
 * 
 * ## `"workload"`
 */
export type PrincipalKind = 'human' | 'service' | 'agent' | 'workload';
/**
 * The identity taking the action, or one link of its delegation chain.
 */
export interface Principal {
  /**
   * Stable id, e.g. `spiffe://acme.org/agent/triage-bot`.
   */
  id: string,
  kind: PrincipalKind,
  attributes: Array<Attribute>,
}
/**
 * The privilege level of an action, declared by the enforcement point. A plugin never
 * guesses it from the action name.
 * # Variants
 * 
 * ## `"read"`
 * 
 * ## `"write"`
 * 
 * ## `"admin"`
 * 
 * ## `"identity-change"`
 * 
 * ## `"secret-access"`
 */
export type Privilege = 'read' | 'write' | 'admin' | 'identity-change' | 'secret-access';
export interface Action {
  /**
   * e.g. `iam:AttachRolePolicy`.
   */
  name: string,
  privilege: Privilege,
  attributes: Array<Attribute>,
}
export interface Resource {
  id: string,
  /**
   * e.g. `database`, `s3_bucket`.
   */
  kind: string,
  attributes: Array<Attribute>,
}
/**
 * The declared reason for the action. Empty strings mean "not given".
 */
export interface Intent {
  purpose: string,
  taskId: string,
  ticket: string,
  justification: string,
}
export interface Request {
  principal: Principal,
  /**
   * Who the principal acts for, in order: `delegation[0]` is the origin (usually the
   * human), the last entry is the closest delegator. Empty when acting for itself.
   */
  delegation: Array<Principal>,
  action: Action,
  resource: Resource,
  intent: Intent,
  /**
   * Anything the enforcement point knows at request time: hour, source ip, risk, mfa...
   */
  context: Array<Attribute>,
  /**
   * True only when the host has verified a human approval bound to exactly this
   * request. Never set from a caller-supplied field.
   */
  approvalVerified: boolean,
}
/**
 * A plugin's answer.
 * # Variants
 * 
 * ## `"allow"`
 * 
 * ## `"deny"`
 * 
 * ## `"require-approval"`
 * 
 * ## `"abstain"`
 * 
 * No opinion: the request is outside what this plugin covers.
 */
export type Effect = 'allow' | 'deny' | 'require-approval' | 'abstain';
export interface Reason {
  /**
   * Stable, machine-readable, kebab-case, e.g. `identity-change-needs-approval`.
   */
  code: string,
  /**
   * Shown to the caller (possibly an AI agent): what to do instead. Never secrets.
   */
  callerMessage: string,
  /**
   * Shown to administrators only (audit log, explanations to admins). May name rules
   * and data. Never sent to the caller.
   */
  adminMessage: string,
}
/**
 * Conditions attached to an allow or require-approval. Merged conservatively across
 * plugins: the smallest lifetime, the largest approver count.
 */
export type Obligation = ObligationMaxCredentialLifetime | ObligationApproversRequired;
/**
 * Upper bound, in seconds, on any credential issued for this action.
 */
export interface ObligationMaxCredentialLifetime {
  tag: 'max-credential-lifetime',
  val: bigint,
}
/**
 * Number of distinct human approvers required.
 */
export interface ObligationApproversRequired {
  tag: 'approvers-required',
  val: number,
}
export interface Verdict {
  effect: Effect,
  reasons: Array<Reason>,
  obligations: Array<Obligation>,
}
/**
 * What a plugin says about itself.
 */
export interface Description {
  name: string,
  version: string,
  /**
   * Action names (or `prefix:*` patterns) the plugin has rules for; empty means all.
   */
  actions: Array<string>,
}
