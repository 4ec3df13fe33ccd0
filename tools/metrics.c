/*
 * metrics.c - ucached's Prometheus endpoint: GET /metrics on ADDR:PORT
 * (libmicrohttpd, its own thread) answers the node's counters in the text
 * exposition format: *_total counters, gauges, and the fill duration as a
 * histogram in seconds.  Every other path is 404, every other method 405.
 */
#include "tools/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tool_metrics {
    struct MHD_Daemon *d;
    ucache_h           ctx;
};

/* name, help, the ucache_stats_t field */
#define TM_COUNTERS(X)                                                        \
    X("ucache_fetches_served_total", "FETCH requests answered", fetches_served) \
    X("ucache_fetch_hits_total", "FETCH requests found in the store", fetch_hits) \
    X("ucache_fills_total", "chunks filled from an origin", fills)           \
    X("ucache_fill_bytes_total", "bytes filled from origins", fill_bytes)    \
    X("ucache_fills_coalesced_total", "misses that joined a fill in progress", \
      fills_coalesced)                                                        \
    X("ucache_fill_errors_total", "fills that failed", fill_errors)          \
    X("ucache_fills_refused_total", "fills of origins UCACHE_ALLOW does not allow", \
      fills_refused)                                                          \
    X("ucache_fills_busy_total", "FETCHes refused: the fill queue was full", fills_busy) \
    X("ucache_fills_moved_total", "misses answered MOVED: the reader's view was older " \
      "and in this node's the key is another node's", fills_moved)            \
    X("ucache_meta_served_total", "object metadata and listing requests this node " \
      "answered for readers", meta_served)                                     \
    X("ucache_origin_meta_total", "metadata requests (size and version, listings) " \
      "this node made of origins", origin_meta)                                \
    X("ucache_auth_failures_total", "requests refused: not signed with the cluster key, " \
      "replayed, or an admin operation without the admin key", auth_failures) \
    X("ucache_evictions_total", "chunks evicted", evictions)                 \
    X("ucache_hits_reported_total", "one-sided hits readers reported (their keys " \
      "count in eviction)", hits_reported)                                    \
    X("ucache_bad_requests_total", "malformed requests refused", bad_requests) \
    X("ucache_origin_requests_total", "data requests to origins", origin_reads) \
    X("ucache_origin_bytes_total", "bytes read from origins", origin_bytes)  \
    X("ucache_origin_errors_total", "failed origin requests", origin_errors) \
    X("ucache_rpcs_served_total", "RPC requests answered", rpcs_served)      \
    X("ucache_peer_failures_total", "peers marked failed", peer_failures)    \
    X("ucache_timeouts_total", "operations that passed their deadline", timeouts) \
    X("ucache_reads_total", "reads this process made", reads)                \
    X("ucache_read_bytes_total", "bytes this process read", read_bytes)      \
    X("ucache_nvme_hits_total", "FETCHes answered from the NVMe tier", nvme_hits) \
    X("ucache_nvme_demotions_total", "chunks evicted from memory, written to NVMe", \
      nvme_demotions)                                                         \
    X("ucache_nvme_promotions_total", "chunks read from NVMe again, kept in memory", \
      nvme_promotions)                                                        \
    X("ucache_nvme_errors_total", "NVMe device I/O errors", nvme_errors)     \
    X("ucache_nvme_corrupt_total", "NVMe records that failed their checksum", \
      nvme_corrupt)                                                           \
    X("ucache_nvme_read_bytes_total", "bytes read from NVMe devices", nvme_read_bytes) \
    X("ucache_nvme_read_nanoseconds_total", "device time of NVMe reads (bandwidth: " \
      "bytes / nanoseconds)", nvme_read_ns)                                   \
    X("ucache_chunks_nvme_total", "chunks owners read from their NVMe tier for this " \
      "reader", chunk_nvme)

#define TM_GAUGES(X)                                                          \
    X("ucache_memory_bytes", "the store's data area", mem_bytes)             \
    X("ucache_memory_used_bytes", "held by chunks, fills and grace", bytes_used) \
    X("ucache_memory_usable_bytes", "of the data area, committed and usable so far", \
      mem_usable)                                                                  \
    X("ucache_members_lease_left_milliseconds", "on etcd: the node's lease time left as " \
      "etcd last said (0: none)", member_lease_ms)                                   \
    X("ucache_memory_pinned_bytes", "pinned", bytes_pinned)                  \
    X("ucache_cached_chunks", "chunks in the store", chunks_cached)          \
    X("ucache_cached_bytes", "payload bytes in the store", bytes_cached)     \
    X("ucache_view_epoch", "membership epoch of the view", view_epoch)       \
    X("ucache_view_nodes", "nodes in the view", view_nodes)                  \
    X("ucache_endpoints_open", "transport endpoints open", eps_open)         \
    X("ucache_nvme_devices", "NVMe tier devices", nvme_devices)              \
    X("ucache_nvme_devices_offline", "NVMe tier devices out of service (errors)", \
      nvme_offline)                                                           \
    X("ucache_nvme_bytes", "NVMe tier capacity", nvme_bytes)                 \
    X("ucache_nvme_used_bytes", "NVMe tier bytes its chunks take", nvme_used) \
    X("ucache_nvme_chunks", "chunks on the NVMe tier", nvme_chunks)          \
    X("ucache_nvme_pinned_chunks", "of them pinned (kept across restarts)",  \
      nvme_pinned)                                                            \
    X("ucache_nvme_staged_chunks", "chunks staged from NVMe for their readers", \
      nvme_staged)

int tool_metrics_text(FILE *out, const ucache_stats_t *s)
{
    uint64_t cum = 0;
    unsigned b;

#define TM_COUNTER(name, help, f)                                             \
    fprintf(out, "# HELP " name " " help "\n# TYPE " name " counter\n" name " %llu\n", \
            (unsigned long long)s->f);
    TM_COUNTERS(TM_COUNTER)
#undef TM_COUNTER
#define TM_GAUGE(name, help, f)                                               \
    fprintf(out, "# HELP " name " " help "\n# TYPE " name " gauge\n" name " %llu\n", \
            (unsigned long long)s->f);
    TM_GAUGES(TM_GAUGE)
#undef TM_GAUGE
    fprintf(out, "# HELP ucache_fill_duration_seconds origin read and publish of a chunk\n"
                 "# TYPE ucache_fill_duration_seconds histogram\n");
    for (b = 0; b < UCACHE_FILL_BUCKETS; b++) {
        cum += s->fill_us_bucket[b];
        if (b + 1 < UCACHE_FILL_BUCKETS) {
            fprintf(out, "ucache_fill_duration_seconds_bucket{le=\"%g\"} %llu\n",
                    (double)UCACHE_FILL_BUCKET_US(b) / 1e6, (unsigned long long)cum);
        } else {
            fprintf(out, "ucache_fill_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                    (unsigned long long)cum);
        }
    }
    fprintf(out, "ucache_fill_duration_seconds_sum %.6f\n"
                 "ucache_fill_duration_seconds_count %llu\n",
            (double)s->fill_us_sum / 1e6, (unsigned long long)cum);
    return ferror(out) ? -1 : 0;
}

static enum MHD_Result tm_reply(struct MHD_Connection *c, unsigned code, char *body,
                                size_t len, const char *type)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result tm_handler(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_len, void **state)
{
    struct tool_metrics *m = cls;
    ucache_stats_t st;
    char *body = NULL;
    size_t len = 0;
    FILE *f;

    (void)version;
    (void)upload;
    (void)upload_len;
    (void)state;
    if ((strcmp(method, "GET") != 0) && (strcmp(method, "HEAD") != 0)) {
        return tm_reply(c, 405, strdup("method not allowed\n"), 19, "text/plain");
    }
    if (strcmp(url, "/metrics") != 0) {
        return tm_reply(c, 404, strdup("not found: try /metrics\n"), 24, "text/plain");
    }
    f = open_memstream(&body, &len);
    if ((f == NULL) || (ucache_stats_get(m->ctx, &st) != UCACHE_OK) ||
        (tool_metrics_text(f, &st) != 0)) {
        if (f != NULL) {
            fclose(f);
        }
        free(body);
        return tm_reply(c, 500, strdup("no counters\n"), 12, "text/plain");
    }
    fclose(f);
    return tm_reply(c, 200, body, len, "text/plain; version=0.0.4");
}

struct tool_metrics *tool_metrics_start(ucache_h ctx, const char *addr, unsigned port)
{
    struct tool_metrics *m = calloc(1, sizeof(*m));
    struct sockaddr_in sa;

    if (m == NULL) {
        return NULL;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port   = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "ucached: --metrics-addr '%s' is not an IPv4 address\n", addr);
        free(m);
        return NULL;
    }
    m->ctx = ctx;
    m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL,
                            tm_handler, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (m->d == NULL) {
        fprintf(stderr, "ucached: cannot serve metrics on %s:%u (in use?)\n", addr, port);
        free(m);
        return NULL;
    }
    return m;
}

void tool_metrics_stop(struct tool_metrics *m)
{
    if (m != NULL) {
        MHD_stop_daemon(m->d);
        free(m);
    }
}
