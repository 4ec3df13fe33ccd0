/*
 * stats.c - ucache_stats_t as one JSON object per line (stable keys).
 */
#include "tools/stats.h"

#define TOOL_STATS(X)                                                         \
    X(reads) X(read_bytes) X(mapped_reads) X(get_reads) X(am_reads) X(rpcs)   \
    X(rpcs_served) X(timeouts) X(peer_failures) X(bad_input) X(eps_open)      \
    X(eps_evicted) X(chunk_reads) X(chunk_hits) X(chunk_misses) X(fetch_requests) \
    X(location_hits) X(origin_direct) X(verify_retries) X(failovers) X(bad_replies)            \
    X(stale_objects) X(bytes_returned) X(hits_sampled) X(fetches_served) X(fills)             \
    X(fill_bytes) X(fills_coalesced) X(fill_errors) X(bad_requests) X(hits_reported)           \
    X(chunks_cached) X(bytes_cached) X(origin_reads) X(origin_bytes)          \
    X(view_epoch) X(view_nodes) X(mem_bytes) X(bytes_used) X(bytes_pinned)    \
    X(evictions) X(fetch_hits) X(origin_errors) X(fill_us_sum) X(fills_refused) \
    X(fills_busy) X(owner_refusals) X(auth_failures) X(hits_unreported) \
    X(chunks_windowed) X(moved_refreshes) X(fills_moved) \
    X(origin_meta) X(meta_owner) X(meta_direct) X(meta_pinned) X(meta_served) X(mem_usable) X(mem_commit_ns) X(member_lease_ms) \
    X(nvme_devices) X(nvme_offline) X(nvme_bytes) X(nvme_used) X(nvme_chunks) X(nvme_hits) \
    X(nvme_demotions) X(nvme_promotions) X(nvme_staged) X(nvme_errors) X(nvme_corrupt) \
    X(nvme_read_bytes) X(nvme_read_ns) X(nvme_rebuild_ns) X(chunk_nvme) X(nvme_pinned)

void tool_stats_json(FILE *out, const char *who, const ucache_stats_t *s)
{
    fprintf(out, "{\"stats\":\"%s\"", who);
#define TOOL_STAT_FIELD(f) fprintf(out, ",\"" #f "\":%llu", (unsigned long long)s->f);
    TOOL_STATS(TOOL_STAT_FIELD)
#undef TOOL_STAT_FIELD
    fprintf(out, "}\n");
    fflush(out);
}
