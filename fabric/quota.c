/*
 * quota.c - dataset quotas: the operator's list parsed (quota.h), and the
 * namespace a URI falls into (the node store's quotas and pins are per
 * namespace).
 */
#include "fabric/quota.h"
#include "origin/allow.h"
#include "store/store.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

uint16_t uf_ns_of(const char *uri)
{
    us_uri_parts_t u;
    char root[1400];
    size_t seg;

    if (us_uri_split(uri, &u) != UCACHE_OK) {
        return 0;
    }
    seg = strcspn(u.path + (u.path[0] == '/'), "/");
    snprintf(root, sizeof(root), "%s://%s:%u/%.*s", u.scheme, u.host, u.port, (int)seg,
             u.path + (u.path[0] == '/'));
    return (uint16_t)(1 + XXH3_64bits(root, strlen(root)) % (US_MAX_NS - 1));
}

/* One "ROOT=PCT%" of @p len bytes at @p s into @p r. */
static ucache_status_t quota_rule(const char *s, size_t len, uf_quota_rule_t *r)
{
    const char *eq = NULL, *path;
    us_uri_parts_t u;
    unsigned pct = 0;
    size_t i, rlen, seg;

    for (i = 0; i < len; i++) {
        eq = (s[i] == '=') ? s + i : eq;
    }
    if (eq == NULL) {
        return UCACHE_ERR_INVALID;
    }
    rlen = (size_t)(eq - s);
    if ((rlen == 0) || (rlen >= sizeof(r->root))) {
        return UCACHE_ERR_INVALID;
    }
    for (i = rlen + 1; (i < len) && (s[i] >= '0') && (s[i] <= '9') && (pct <= 100); i++) {
        pct = pct * 10 + (unsigned)(s[i] - '0');
    }
    if ((i == rlen + 1) || (pct < 1) || (pct > 100) ||
        !((i == len) || ((i + 1 == len) && (s[i] == '%')))) {
        return UCACHE_ERR_INVALID;
    }
    memcpy(r->root, s, rlen);
    r->root[rlen] = '\0';
    if (us_uri_split(r->root, &u) != UCACHE_OK) {
        return UCACHE_ERR_INVALID;
    }
    path = u.path + (u.path[0] == '/');
    seg  = strcspn(path, "/");
    if ((seg == 0) || ((path[seg] == '/') && (path[seg + 1] != '\0'))) {
        return UCACHE_ERR_INVALID;   /* above or below a dataset's root */
    }
    r->ns  = uf_ns_of(r->root);
    r->pct = pct;
    return (r->ns != 0) ? UCACHE_OK : UCACHE_ERR_INVALID;
}

ucache_status_t uf_quota_parse(const char *list, uf_quota_t *q)
{
    const char *p = list, *end;
    unsigned k;
    size_t len;

    memset(q, 0, sizeof(*q));
    if ((list[0] == '\0') || (strcmp(list, "none") == 0)) {
        return UCACHE_OK;
    }
    for (;;) {
        end = strchr(p, ',');
        len = (end != NULL) ? (size_t)(end - p) : strlen(p);
        if (q->n == UF_QUOTA_MAX) {
            UC_ERROR("UCACHE_QUOTA: more than %u rules", UF_QUOTA_MAX);
            return UCACHE_ERR_INVALID;
        }
        if (quota_rule(p, len, &q->rule[q->n]) != UCACHE_OK) {
            UC_ERROR("UCACHE_QUOTA: '%.*s' is not ROOT=PCT%% (a dataset's root - "
                     "scheme, account, bucket or host, and one path segment: a "
                     "container or top-level prefix - and 1-100 percent of each tier)",
                     (int)(len > 300 ? 300 : len), p);
            return UCACHE_ERR_INVALID;
        }
        for (k = 0; k < q->n; k++) {
            if (q->rule[k].ns == q->rule[q->n].ns) {
                UC_ERROR("UCACHE_QUOTA: '%s' and '%s' fall into one dataset namespace "
                         "(the same root, or a hash collision): give one quota",
                         q->rule[k].root, q->rule[q->n].root);
                return UCACHE_ERR_INVALID;
            }
        }
        q->n++;
        if (end == NULL) {
            return UCACHE_OK;
        }
        p = end + 1;
    }
}
