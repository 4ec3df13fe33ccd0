/*
 * quota.h - dataset quotas (UCACHE_QUOTA): the share of each tier of a
 * serving node that one dataset may hold, memory and NVMe alike, so a
 * chunk is held to its dataset's quota whichever tier it is on.
 *
 * A dataset is a namespace of the node store: a URI's scheme, host (an
 * Azure account, an S3 bucket) and port, and its first path segment (a
 * container, a top-level prefix), hashed into US_MAX_NS - 1 namespaces.
 * The list is the operator's: "ROOT=PCT%[,ROOT=PCT%...]", e.g.
 * "az://acct/ckpt=30%,s3://bucket/scratch=10%"; PCT of each tier of each node
 * (1-100).  Two roots that fall into one namespace are refused (they would
 * share a quota unsaid).  "" or "none": no quota.
 */
#ifndef UF_QUOTA_H
#define UF_QUOTA_H

#include "util/status.h"

#include <stdint.h>

#define UF_QUOTA_MAX  32u

typedef struct uf_quota_rule {
    char     root[256];     /* as written */
    uint16_t ns;            /* its namespace, 1 .. US_MAX_NS - 1 */
    unsigned pct;           /* of each tier, 1 .. 100 */
} uf_quota_rule_t;

typedef struct uf_quota {
    unsigned        n;
    uf_quota_rule_t rule[UF_QUOTA_MAX];
} uf_quota_t;

/** The store namespace of @p uri (0: a URI that does not split). */
uint16_t uf_ns_of(const char *uri);

/** Parse @p list into @p q: UCACHE_OK, or UCACHE_ERR_INVALID (logged once,
 *  naming the rule). */
ucache_status_t uf_quota_parse(const char *list, uf_quota_t *q);

#endif
