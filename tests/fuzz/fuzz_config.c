/*
 * fuzz_config.c - configuration values (util/config.c), as an operator
 * writes them in UCACHE_* variables, and the allow list and the quota list
 * they hold (origin/allow.c, fabric/quota.c).  The first byte picks the
 * entry, the rest is the value.  Properties: an accepted number is within
 * its entry's bounds and prints back to a value that parses to the same
 * number; an accepted string fits its field; the rules of an accepted
 * allow list re-parse from their parts; an accepted quota list has at most
 * UF_QUOTA_MAX rules, each of 1-100 percent and a namespace of the store's,
 * which is that of the objects under its root, each rule re-parses alone.
 */
#include "fabric/quota.h"
#include "origin/allow.h"
#include "store/store.h"
#include "tests/fuzz/fuzz.h"
#include "util/config.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uc_config_entry_t *e;
    uc_config_t cfg, again;
    char value[2048], out[2048];
    us_allow_t allow, allow2;
    uf_quota_t quota, quota2;
    uint64_t v, w;
    unsigned i;

    fz_quiet();
    if ((size < 1) || (size > sizeof(value))) {
        return 0;
    }
    memcpy(value, data + 1, size - 1);
    value[size - 1] = '\0';
    if (strlen(value) != size - 1) {
        return 0;
    }
    e = &uc_config_table[data[0] % uc_config_table_len];
    memset(&cfg, 0, sizeof(cfg));
    if (uc_config_set(&cfg, e->name, value) == UCACHE_OK) {
        uc_config_format(&cfg, e, out, sizeof(out));
        memset(&again, 0, sizeof(again));
        FZ_CHECK(uc_config_set(&again, e->name, out) == UCACHE_OK);
        FZ_CHECK(memcmp((char *)&cfg + e->offset, (char *)&again + e->offset, e->size) == 0);
        if ((e->type == UC_CFG_SIZE) || (e->type == UC_CFG_TIME) || (e->type == UC_CFG_UINT)) {
            v = 0;
            memcpy(&v, (char *)&cfg + e->offset, e->size);
            FZ_CHECK((v >= e->min) && (v <= e->max));
        } else if (e->type == UC_CFG_STRING) {
            FZ_CHECK(memchr((char *)&cfg + e->offset, '\0', e->size) != NULL);
        }
    }
    if (uc_parse_size(value, &v) == UCACHE_OK) {
        uc_format_size(v, out, sizeof(out));
        FZ_CHECK((uc_parse_size(out, &w) == UCACHE_OK) && (w == v));
    }
    if (uc_parse_time(value, &v) == UCACHE_OK) {
        uc_format_time(v, out, sizeof(out));
        FZ_CHECK((uc_parse_time(out, &w) == UCACHE_OK) && (w == v));
    }
    if (us_allow_parse(value, &allow) == UCACHE_OK) {
        FZ_CHECK(allow.n <= US_ALLOW_MAX);
        for (i = 0; i < allow.n; i++) {
            const us_allow_rule_t *r = &allow.rule[i];

            if (r->port != 0) {
                snprintf(out, sizeof(out), "%s://%s:%u%s", r->scheme, r->host, r->port,
                         r->path);
            } else {
                snprintf(out, sizeof(out), "%s://%s%s", r->scheme, r->host, r->path);
            }
            FZ_CHECK(us_allow_parse(out, &allow2) == UCACHE_OK);
            FZ_CHECK((allow2.n == 1) && (strcmp(allow2.rule[0].host, r->host) == 0) &&
                     (allow2.rule[0].port == r->port) &&
                     (strcmp(allow2.rule[0].path, r->path) == 0));
        }
    }
    if (uf_quota_parse(value, &quota) == UCACHE_OK) {
        FZ_CHECK(quota.n <= UF_QUOTA_MAX);
        for (i = 0; i < quota.n; i++) {
            const uf_quota_rule_t *r = &quota.rule[i];

            FZ_CHECK((r->pct >= 1) && (r->pct <= 100));
            FZ_CHECK((r->ns > 0) && (r->ns < US_MAX_NS));
            snprintf(out, sizeof(out), "%s/x/y", r->root);
            FZ_CHECK(uf_ns_of(out) == r->ns);
            snprintf(out, sizeof(out), "%s=%u%%", r->root, r->pct);
            FZ_CHECK(uf_quota_parse(out, &quota2) == UCACHE_OK);
            FZ_CHECK((quota2.n == 1) && (quota2.rule[0].ns == r->ns) &&
                     (quota2.rule[0].pct == r->pct));
        }
    }
    return 0;
}
