// world arbiter:policy/policy@0.1.0
export type * as ArbiterPolicyData010 from './interfaces/arbiter-policy-data.js'; // import arbiter:policy/data@0.1.0
export type * as ArbiterPolicyLog010 from './interfaces/arbiter-policy-log.js'; // import arbiter:policy/log@0.1.0
export type * as ArbiterPolicyTypes010 from './interfaces/arbiter-policy-types.js'; // import arbiter:policy/types@0.1.0
export * as evaluator from './interfaces/arbiter-policy-evaluator.js'; // export arbiter:policy/evaluator@0.1.0
