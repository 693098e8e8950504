/** @module Interface arbiter:policy/evaluator@0.1.0 **/
/**
 * Name, version and the actions the plugin covers.
 */
export function describe(): Description;
/**
 * The plugin's settings from the policy-set manifest, flattened to typed attributes
 * (nested tables become dotted names such as `hours.start`). Called once at load,
 * where an error refuses the load with the returned message, and again on every new
 * instance before its first `evaluate`, so it must be deterministic and cheap.
 */
export function configure(settings: Array<Attribute>): void;
/**
 * Decide one request.
 */
export function evaluate(request: Request): Verdict;
export type Attribute = import('./arbiter-policy-types.js').Attribute;
export type Description = import('./arbiter-policy-types.js').Description;
export type Request = import('./arbiter-policy-types.js').Request;
export type Verdict = import('./arbiter-policy-types.js').Verdict;
