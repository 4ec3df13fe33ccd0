/*
 * stats_json.c - ucache_stats_t as one JSON object with stable keys (the
 * field names): what ucached logs, `ucache ... --stats` prints and the
 * Python package's Client.stats() parses.
 */
#include "ucache.h"

#include <stdarg.h>
#include <stdio.h>

#define UF_STATS(X)                                                           \
    X(reads) X(read_bytes) X(mapped_reads) X(get_reads) X(am_reads) X(rpcs)   \
    X(rpcs_served) X(timeouts) X(peer_failures) X(bad_input) X(eps_open)      \
    X(eps_evicted) X(chunk_reads) X(chunk_hits) X(chunk_misses) X(fetch_requests) \
    X(location_hits) X(origin_direct) X(verify_retries) X(failovers) X(bad_replies) \
    X(stale_objects) X(bytes_returned) X(hits_sampled) X(fetches_served) X(fills) \
    X(fill_bytes) X(fills_coalesced) X(fill_errors) X(bad_requests) X(hits_reported) \
    X(chunks_cached) X(bytes_cached) X(origin_reads) X(origin_bytes)          \
    X(view_epoch) X(view_nodes) X(mem_bytes) X(bytes_used) X(bytes_pinned)    \
    X(evictions) X(fetch_hits) X(origin_errors) X(fill_us_sum) X(fills_refused) \
    X(fills_busy) X(owner_refusals) X(auth_failures) X(hits_unreported)       \
    X(chunks_windowed) X(moved_refreshes) X(fills_moved)                      \
    X(origin_meta) X(meta_owner) X(meta_direct) X(meta_pinned) X(meta_served) \
    X(mem_usable) X(mem_commit_ns) X(member_lease_ms)                         \
    X(nvme_devices) X(nvme_offline) X(nvme_bytes) X(nvme_used) X(nvme_chunks) \
    X(nvme_hits) X(nvme_demotions) X(nvme_promotions) X(nvme_staged)          \
    X(nvme_errors) X(nvme_corrupt) X(nvme_read_bytes) X(nvme_read_ns)         \
    X(nvme_rebuild_ns) X(chunk_nvme) X(nvme_pinned) X(owner_restarts)

/* snprintf at *used of buf, counting what does not fit */
static void uf_put(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf((*used < len) ? buf + *used : NULL, (*used < len) ? len - *used : 0,
                  fmt, ap);
    va_end(ap);
    if (n > 0) {
        *used += (size_t)n;
    }
}

size_t ucache_stats_format(const ucache_stats_t *s, const char *who, char *buf, size_t len)
{
    size_t used = 0;

    uf_put(buf, len, &used, "{");
    if (who != NULL) {
        uf_put(buf, len, &used, "\"stats\":\"%s\",", who);
    }
#define UF_STAT_FIELD(f) uf_put(buf, len, &used, "\"" #f "\":%llu,", (unsigned long long)s->f);
    UF_STATS(UF_STAT_FIELD)
#undef UF_STAT_FIELD
    used--; /* the last comma */
    if (used < len) {
        buf[used] = '\0';
    }
    uf_put(buf, len, &used, "}");
    return used;
}

ucache_status_t ucache_stats_json(ucache_h ctx, char *buf, size_t len, size_t *need_p)
{
    ucache_stats_t st;
    ucache_status_t status;
    size_t need;

    if ((buf == NULL) && (len != 0)) {
        return UCACHE_ERR_INVALID;
    }
    status = ucache_stats_get(ctx, &st);
    if (status != UCACHE_OK) {
        return status;
    }
    need = ucache_stats_format(&st, NULL, buf, len) + 1;
    if (need_p != NULL) {
        *need_p = need;
    }
    return (need <= len) ? UCACHE_OK : UCACHE_ERR_MSG_TRUNCATED;
}
