/* The Arbiter C SDK: see arbiter_policy.h. */
#include "arbiter_policy.h"

#include <stdlib.h>
#include <string.h>

/* ---- memory --------------------------------------------------------------------- */

static void *ap_realloc(void *p, size_t size) {
    void *q = realloc(p, size);
    if (!q) abort(); /* out of memory: trap, the host fails the evaluation closed */
    return q;
}

static ap_string_t ap_dup(const char *s) {
    ap_string_t out = {NULL, 0};
    size_t n = s ? strlen(s) : 0;
    if (n > 0) { /* an empty string owns nothing: the bindings free only len > 0 */
        out.ptr = ap_realloc(NULL, n);
        memcpy(out.ptr, s, n);
        out.len = n;
    }
    return out;
}

/* ---- exports: the generated bindings call these ----------------------------------- */

void exports_arbiter_policy_evaluator_describe(exports_arbiter_policy_evaluator_description_t *ret) {
    memset(ret, 0, sizeof *ret);
    ap_policy_describe(ret);
}

__attribute__((weak)) bool ap_policy_configure(const ap_attributes_t *settings, ap_error_t *err) {
    (void)settings;
    (void)err;
    return true;
}

bool exports_arbiter_policy_evaluator_configure(exports_arbiter_policy_evaluator_list_attribute_t *settings,
                                                policy_string_t *err) {
    ap_attributes_t attrs = {settings->ptr, settings->len};
    err->ptr = NULL;
    err->len = 0;
    bool ok = ap_policy_configure(&attrs, err);
    /* The plugin owns the arguments it receives: free them, or every call leaks. */
    exports_arbiter_policy_evaluator_list_attribute_free(settings);
    if (!ok && err->len == 0) *err = ap_dup("configure refused the settings");
    return ok;
}

void exports_arbiter_policy_evaluator_evaluate(exports_arbiter_policy_evaluator_request_t *request,
                                               exports_arbiter_policy_evaluator_verdict_t *ret) {
    memset(ret, 0, sizeof *ret);
    ret->effect = AP_ABSTAIN;
    ap_policy_evaluate(request, ret);
    exports_arbiter_policy_evaluator_request_free(request);
}

/* ---- strings and attributes ----------------------------------------------------- */

bool ap_str_eq(ap_string_t s, const char *lit) {
    size_t n = strlen(lit);
    return s.len == n && (n == 0 || memcmp(s.ptr, lit, n) == 0);
}

const ap_value_t *ap_get(const ap_attributes_t *attrs, const char *name) {
    for (size_t i = 0; i < attrs->len; i++) {
        if (ap_str_eq(attrs->ptr[i].name, name)) return &attrs->ptr[i].value;
    }
    return NULL;
}

#define AP_GETTER(fn, type, TAG, field)                                             \
    bool fn(const ap_attributes_t *attrs, const char *name, type *out) {            \
        const ap_value_t *v = ap_get(attrs, name);                                  \
        if (!v || v->tag != ARBITER_POLICY_TYPES_VALUE_##TAG) return false;         \
        *out = v->val.field;                                                        \
        return true;                                                                \
    }

AP_GETTER(ap_get_str, ap_string_t, STR, str)
AP_GETTER(ap_get_int, int64_t, INT, int_)
AP_GETTER(ap_get_bool, bool, BOOLEAN, boolean)
AP_GETTER(ap_get_strings, ap_strings_t, STRINGS, strings)

bool ap_get_float(const ap_attributes_t *attrs, const char *name, double *out) {
    const ap_value_t *v = ap_get(attrs, name);
    if (!v) return false;
    if (v->tag == ARBITER_POLICY_TYPES_VALUE_FLOAT) {
        *out = v->val.float_;
        return true;
    }
    if (v->tag == ARBITER_POLICY_TYPES_VALUE_INT) {
        *out = (double)v->val.int_;
        return true;
    }
    return false;
}

bool ap_attr_is(const ap_attributes_t *attrs, const char *name, const char *lit) {
    ap_string_t s;
    return ap_get_str(attrs, name, &s) && ap_str_eq(s, lit);
}

/* ---- verdicts and descriptions -------------------------------------------------- */

void ap_verdict_set(ap_verdict_t *v, ap_effect_t effect) { v->effect = effect; }

void ap_add_reason(ap_verdict_t *v, const char *code, const char *caller_message,
                   const char *admin_message) {
    v->reasons.ptr = ap_realloc(v->reasons.ptr, (v->reasons.len + 1) * sizeof *v->reasons.ptr);
    arbiter_policy_types_reason_t *r = &v->reasons.ptr[v->reasons.len++];
    r->code = ap_dup(code);
    r->caller_message = ap_dup(caller_message);
    r->admin_message = ap_dup(admin_message ? admin_message : caller_message);
}

static void ap_add_obligation(ap_verdict_t *v, arbiter_policy_types_obligation_t o) {
    v->obligations.ptr =
        ap_realloc(v->obligations.ptr, (v->obligations.len + 1) * sizeof *v->obligations.ptr);
    v->obligations.ptr[v->obligations.len++] = o;
}

void ap_add_lifetime(ap_verdict_t *v, uint64_t seconds) {
    arbiter_policy_types_obligation_t o = {.tag = ARBITER_POLICY_TYPES_OBLIGATION_MAX_CREDENTIAL_LIFETIME};
    o.val.max_credential_lifetime = seconds;
    ap_add_obligation(v, o);
}

void ap_add_approvers(ap_verdict_t *v, uint32_t count) {
    arbiter_policy_types_obligation_t o = {.tag = ARBITER_POLICY_TYPES_OBLIGATION_APPROVERS_REQUIRED};
    o.val.approvers_required = count;
    ap_add_obligation(v, o);
}

void ap_verdict_clear(ap_verdict_t *v) {
    /* The generated free skips a zero-length list, which never owns memory here. */
    arbiter_policy_types_verdict_free(v);
    memset(v, 0, sizeof *v);
    v->effect = AP_ABSTAIN;
}

void ap_describe(ap_description_t *d, const char *name, const char *version) {
    policy_string_free(&d->name);
    policy_string_free(&d->version);
    d->name = ap_dup(name);
    d->version = ap_dup(version);
}

void ap_describe_action(ap_description_t *d, const char *action) {
    d->actions.ptr = ap_realloc(d->actions.ptr, (d->actions.len + 1) * sizeof *d->actions.ptr);
    d->actions.ptr[d->actions.len++] = ap_dup(action);
}

void ap_error(ap_error_t *err, const char *message) {
    policy_string_free(err);
    *err = ap_dup(message);
}

/* ---- host imports --------------------------------------------------------------- */

void ap_log(ap_log_level_t level, const char *message) {
    /* Borrowed: the import only reads the string during the call. */
    policy_string_t s = {(uint8_t *)message, strlen(message)};
    arbiter_policy_log_log(level, &s);
}

bool ap_data(const char *name, ap_bytes_t *out) {
    policy_string_t s = {(uint8_t *)name, strlen(name)};
    out->ptr = NULL;
    out->len = 0;
    return arbiter_policy_data_read(&s, out);
}

void ap_bytes_free(ap_bytes_t *bytes) {
    policy_list_u8_free(bytes);
    bytes->ptr = NULL;
    bytes->len = 0;
}
