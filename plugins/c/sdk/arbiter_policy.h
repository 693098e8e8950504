/*
 * Write Arbiter policy plugins in C.
 *
 * Over the bindings that `wit-bindgen c` generates from wit/ (world `policy`, header
 * "policy.h"); plugins/c/build.sh generates them and links arbiter_policy.c.
 *
 * A plugin defines two functions (and optionally a third):
 *
 *     #include "arbiter_policy.h"
 *
 *     void ap_policy_describe(ap_description_t *d) {
 *         ap_describe(d, "read-only", "1.0.0");
 *     }
 *
 *     void ap_policy_evaluate(const ap_request_t *r, ap_verdict_t *v) {
 *         if (r->action.privilege == AP_READ) {
 *             ap_verdict_set(v, AP_ALLOW);
 *         } else {
 *             ap_verdict_set(v, AP_DENY);
 *             ap_add_reason(v, "read-only", "only reads are allowed here", NULL);
 *         }
 *     }
 *
 *     // Optional (the default accepts any settings):
 *     bool ap_policy_configure(const ap_attributes_t *settings, ap_error_t *err);
 *
 * Ownership, done for you: the SDK frees the request (and the settings) after your
 * function returns, so do not keep pointers into them; every string you hand to a
 * verdict or description is copied, and the bindings free those copies after the host
 * has read them. Out of memory traps (the host fails the evaluation closed).
 *
 * Build with wasi-libc headers (string.h, stdlib.h, stdio's snprintf work) but without
 * WASI: anything that does I/O (printf, fopen, time, getenv...) makes the module import
 * WASI and the build fails at `wasm-tools component new`. Log with ap_log instead.
 */
#ifndef ARBITER_POLICY_H
#define ARBITER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- types (generated; see wit/types.wit for the fields) --------------------------- */

/* A UTF-8 string: `ptr` and `len` bytes, NOT nul-terminated. */
typedef policy_string_t ap_string_t;
typedef policy_list_string_t ap_strings_t;
typedef policy_list_u8_t ap_bytes_t;
typedef arbiter_policy_types_value_t ap_value_t;
typedef arbiter_policy_types_attribute_t ap_attribute_t;
typedef arbiter_policy_types_list_attribute_t ap_attributes_t;
typedef arbiter_policy_types_principal_t ap_principal_t;
typedef arbiter_policy_types_action_t ap_action_t;
typedef arbiter_policy_types_resource_t ap_resource_t;
typedef arbiter_policy_types_intent_t ap_intent_t;
typedef arbiter_policy_types_request_t ap_request_t;
typedef arbiter_policy_types_verdict_t ap_verdict_t;
typedef arbiter_policy_types_description_t ap_description_t;
typedef arbiter_policy_types_effect_t ap_effect_t;
typedef arbiter_policy_types_privilege_t ap_privilege_t;
typedef arbiter_policy_types_principal_kind_t ap_principal_kind_t;
typedef arbiter_policy_log_level_t ap_log_level_t;
/* The message returned by a refused `configure`: set it with ap_error(). */
typedef policy_string_t ap_error_t;

/* principal.kind */
#define AP_HUMAN ARBITER_POLICY_TYPES_PRINCIPAL_KIND_HUMAN
#define AP_SERVICE ARBITER_POLICY_TYPES_PRINCIPAL_KIND_SERVICE
#define AP_AGENT ARBITER_POLICY_TYPES_PRINCIPAL_KIND_AGENT
#define AP_WORKLOAD ARBITER_POLICY_TYPES_PRINCIPAL_KIND_WORKLOAD
/* action.privilege */
#define AP_READ ARBITER_POLICY_TYPES_PRIVILEGE_READ
#define AP_WRITE ARBITER_POLICY_TYPES_PRIVILEGE_WRITE
#define AP_ADMIN ARBITER_POLICY_TYPES_PRIVILEGE_ADMIN
#define AP_IDENTITY_CHANGE ARBITER_POLICY_TYPES_PRIVILEGE_IDENTITY_CHANGE
#define AP_SECRET_ACCESS ARBITER_POLICY_TYPES_PRIVILEGE_SECRET_ACCESS
/* verdict.effect */
#define AP_ALLOW ARBITER_POLICY_TYPES_EFFECT_ALLOW
#define AP_DENY ARBITER_POLICY_TYPES_EFFECT_DENY
#define AP_REQUIRE_APPROVAL ARBITER_POLICY_TYPES_EFFECT_REQUIRE_APPROVAL
#define AP_ABSTAIN ARBITER_POLICY_TYPES_EFFECT_ABSTAIN
/* ap_log levels */
#define AP_LOG_TRACE ARBITER_POLICY_LOG_LEVEL_TRACE
#define AP_LOG_DEBUG ARBITER_POLICY_LOG_LEVEL_DEBUG
#define AP_LOG_INFO ARBITER_POLICY_LOG_LEVEL_INFO
#define AP_LOG_WARN ARBITER_POLICY_LOG_LEVEL_WARN
#define AP_LOG_ERROR ARBITER_POLICY_LOG_LEVEL_ERROR

/* ---- what the plugin defines ---------------------------------------------------- */

/* Name, version and (optionally) the actions the plugin covers. */
void ap_policy_describe(ap_description_t *d);

/* The plugin's settings from the policy-set manifest, flattened to dotted names.
 * Return false and set `err` with ap_error() to refuse the load. Called once at load;
 * every fresh instance starts from the memory it left (the host snapshots it). Keep it
 * deterministic.
 * Optional: a weak default accepts everything. */
bool ap_policy_configure(const ap_attributes_t *settings, ap_error_t *err);

/* Decides one request. `v` starts as abstain with no reasons or obligations. */
void ap_policy_evaluate(const ap_request_t *request, ap_verdict_t *v);

/* ---- strings -------------------------------------------------------------------- */

/* Whether `s` equals the nul-terminated `lit`. */
bool ap_str_eq(ap_string_t s, const char *lit);
/* Whether `s` is empty (WIT intent fields use "" for "not given"). */
static inline bool ap_str_empty(ap_string_t s) { return s.len == 0; }

/* ---- attributes ----------------------------------------------------------------- */
/* Look-ups by name in an attribute list (principal.attributes, resource.attributes,
 * context, settings). Each typed getter returns false, leaving *out untouched, when the
 * attribute is missing or of another type, so decide what "missing" means explicitly:
 *
 *     int64_t risk = 100;                      // missing risk counts as maximal
 *     ap_get_int(&r->context, "risk", &risk);
 */

/* The value named `name`, or NULL. */
const ap_value_t *ap_get(const ap_attributes_t *attrs, const char *name);
bool ap_get_str(const ap_attributes_t *attrs, const char *name, ap_string_t *out);
bool ap_get_int(const ap_attributes_t *attrs, const char *name, int64_t *out);
/* A float attribute (integers widen). */
bool ap_get_float(const ap_attributes_t *attrs, const char *name, double *out);
bool ap_get_bool(const ap_attributes_t *attrs, const char *name, bool *out);
bool ap_get_strings(const ap_attributes_t *attrs, const char *name, ap_strings_t *out);
/* Whether a string attribute is present and equals `lit`. */
bool ap_attr_is(const ap_attributes_t *attrs, const char *name, const char *lit);

/* ---- verdicts and descriptions -------------------------------------------------- */

void ap_verdict_set(ap_verdict_t *v, ap_effect_t effect);
/* Appends a reason. `code`: stable kebab-case. `caller_message`: shown to the caller (what
 * to do instead; never secrets). `admin_message`: for administrators only; NULL repeats
 * the caller message. All three are copied. */
void ap_add_reason(ap_verdict_t *v, const char *code, const char *caller_message,
                   const char *admin_message);
/* Appends a max-credential-lifetime obligation (seconds). */
void ap_add_lifetime(ap_verdict_t *v, uint64_t seconds);
/* Appends an approvers-required obligation. */
void ap_add_approvers(ap_verdict_t *v, uint32_t count);
/* Frees the reasons and obligations and sets the effect back to abstain. */
void ap_verdict_clear(ap_verdict_t *v);

void ap_describe(ap_description_t *d, const char *name, const char *version);
/* Restricts the description to an action name or a `prefix:*` pattern (repeatable). */
void ap_describe_action(ap_description_t *d, const char *action);

/* Sets the message of a refused configure (copied). */
void ap_error(ap_error_t *err, const char *message);

/* ---- host imports --------------------------------------------------------------- */

/* A line in the host's log (capped per evaluation by the host). */
void ap_log(ap_log_level_t level, const char *message);
/* A data file shipped with the policy set: true and *out set (free it with
 * ap_bytes_free) when there is one. */
bool ap_data(const char *name, ap_bytes_t *out);
void ap_bytes_free(ap_bytes_t *bytes);

#ifdef __cplusplus
}
#endif

#endif /* ARBITER_POLICY_H */
