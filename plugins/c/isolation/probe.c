/*
 * The isolation probe (twin of plugins/fixtures/isolation): `configure` stores the
 * `mark` setting; every `evaluate` counts itself, appends the principal's id to a list
 * and denies with the reason code `probe` and the message `mark=M count=N seen=ID,...`.
 * A fresh instance must always report `count=1` and only its own request's id.
 */
#include <stdio.h>
#include <string.h>

#include "arbiter_policy.h"

static char mark[64] = "unset";
static unsigned long count;
static char seen[1024];
static size_t seen_len;

void ap_policy_describe(ap_description_t *d) { ap_describe(d, "isolation", "0.1.0"); }

bool ap_policy_configure(const ap_attributes_t *settings, ap_error_t *err) {
    (void)err;
    ap_string_t m;
    if (ap_get_str(settings, "mark", &m)) {
        size_t n = m.len < sizeof mark - 1 ? m.len : sizeof mark - 1;
        memcpy(mark, m.ptr, n);
        mark[n] = '\0';
    }
    count = 0;
    seen_len = 0;
    seen[0] = '\0';
    return true;
}

void ap_policy_evaluate(const ap_request_t *r, ap_verdict_t *v) {
    count += 1;
    size_t n = r->principal.id.len;
    if (seen_len + n + 2 < sizeof seen) {
        memcpy(seen + seen_len, r->principal.id.ptr, n);
        seen_len += n;
        seen[seen_len++] = ',';
        seen[seen_len] = '\0';
    }
    char message[1200];
    snprintf(message, sizeof message, "mark=%s count=%lu seen=%s", mark, count, seen);
    ap_verdict_set(v, AP_DENY);
    ap_add_reason(v, "probe", message, NULL);
}
