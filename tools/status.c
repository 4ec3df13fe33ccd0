/*
 * status.c - `ucache status` (the view, capacity, hit ratio, one screen)
 * and `ucache stat [--watch S]` (every node's counters, with rates).
 */
#include "tools/admin.h"
#include "tools/commands.h"
#include "tools/dataset.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Every node and its counters; the caller frees *nodes_p. */
static int ad_sample(ucache_h ctx, const char *cmd, const ad_opts_t *o, ad_node_t **nodes_p,
                     size_t *n_p)
{
    ucache_node_info_t *info;
    ad_node_t *nodes;
    size_t n, i;

    if (ad_nodes(ctx, cmd, &info, &n) != 0) {
        return -1;
    }
    nodes = calloc(n + 1, sizeof(*nodes));
    for (i = 0; (nodes != NULL) && (i < n); i++) {
        nodes[i].info   = info[i];
        nodes[i].status = ucache_node_stats(ctx, info[i].id, o->timeout_ns, &nodes[i].st);
    }
    free(info);
    if (nodes == NULL) {
        fprintf(stderr, "ucache %s: out of memory\n", cmd);
        return -1;
    }
    *nodes_p = nodes;
    *n_p = n;
    return 0;
}

static const char *ad_state(const ad_node_t *d)
{
    return (d->status != UCACHE_OK) ? "unreachable" : d->st.draining ? "draining" :
           d->info.suspect ? "suspect" : "ok";
}

static const char *ad_bytes(uint64_t b, char *out, size_t cap)
{
    return ds_bytes((double)b, out, cap);
}

/* Hits an owner served or was told of: FETCH hits, and the one-sided hits
 * readers reported. */
static uint64_t ad_hits(const ucache_stats_t *s)
{
    return s->fetch_hits + s->hits_reported;
}

static uint64_t ad_lookups(const ucache_stats_t *s)
{
    return s->fetches_served + s->hits_reported;
}

/* ------------------------------------------------------------------------ */
/* ucache status                                                             */
/* ------------------------------------------------------------------------ */

int cmd_status(int argc, char **argv)
{
    uint64_t mem = 0, used = 0, pinned = 0, hits = 0, lookups = 0, fill_bytes = 0, fills = 0;
    uint64_t origin = 0, epoch = 0;
    char a[32], b[32], c[32], e[32], zones[512] = "";
    unsigned ok = 0, suspect = 0, down = 0;
    ucache_members_health_t mh;
    ucache_stats_t self;
    ad_node_t *nodes = NULL;
    bool msrc_ok;
    ucache_h ctx;
    ad_opts_t o;
    size_t n = 0, i;
    int rc;

    rc = ad_begin(argc, argv, "status", 0,
                  "usage: ucache status [--members SRC] [--timeout T] [--json]\n"
                   "The fabric on one screen: the view (epoch, nodes by state and zone),\n"
                   "capacity used and free per node and in all, pinned bytes, the hit\n"
                   "ratio and the origin bytes the cache saved; the members source and\n"
                   "its health (etcd: reachable, its revision, each node's lease time\n"
                   "left).  Exit 0 when every node and the source answered, 1 otherwise.\n",
                  1, &o, &ctx);
    if (rc >= 0) {
        return rc;
    }
    if (ad_sample(ctx, "status", &o, &nodes, &n) != 0) {
        ucache_finalize(ctx);
        return 1;
    }
    ucache_stats_get(ctx, &self);
    epoch = self.view_epoch;
    msrc_ok = (ucache_members_health(ctx, &mh) == UCACHE_OK);
    for (i = 0; i < n; i++) {
        const ucache_stats_t *s = &nodes[i].st;
        char z[64];

        ok      += (nodes[i].status == UCACHE_OK) && !nodes[i].info.suspect;
        suspect += (nodes[i].status == UCACHE_OK) && nodes[i].info.suspect;
        down    += (nodes[i].status != UCACHE_OK);
        snprintf(z, sizeof(z), "%s,", nodes[i].info.zone[0] ? nodes[i].info.zone : "-");
        if ((strstr(zones, z) == NULL) && (strlen(zones) + strlen(z) < sizeof(zones))) {
            strcat(zones, z);
        }
        if (nodes[i].status != UCACHE_OK) {
            continue;
        }
        mem        += s->mem_bytes;
        used       += s->bytes_used;
        pinned     += s->bytes_pinned;
        hits       += ad_hits(s);
        lookups    += ad_lookups(s);
        fill_bytes += s->fill_bytes;
        fills      += s->fills;
        origin     += s->origin_bytes;
    }
    if (zones[0] != '\0') {
        zones[strlen(zones) - 1] = '\0';
    }
    /* bytes served from the cache instead of the origin, at the mean chunk */
    uint64_t saved = (fills > 0) ? hits * (fill_bytes / fills) : 0;
    if (o.json) {
        for (i = 0; i < n; i++) {
            const ucache_node_info_t *d = &nodes[i].info;
            const ucache_stats_t *s = &nodes[i].st;

            printf("{\"node\":\"%016" PRIx64 "\",\"host\":\"%s\",\"pid\":%u,\"zone\":\"%s\","
                   "\"state\":\"%s\",\"mem_bytes\":%" PRIu64 ",\"used_bytes\":%" PRIu64 ","
                   "\"free_bytes\":%" PRIu64 ",\"pinned_bytes\":%" PRIu64 ",\"chunks\":%" PRIu64
                   ",\"hit_ratio\":%.4f,\"lease_left_ms\":%" PRIu64 "}\n", d->id, d->host, d->pid,
                   d->zone, ad_state(&nodes[i]),
                   s->mem_bytes, s->bytes_used,
                   (s->mem_bytes > s->bytes_used) ? s->mem_bytes - s->bytes_used : 0,
                   s->bytes_pinned, s->chunks_cached,
                   ad_lookups(s) ? (double)ad_hits(s) / (double)ad_lookups(s) : 0.0,
                   s->member_lease_ms);
        }
        printf("{\"members\":\"%s\",\"via\":\"%s\",\"reachable\":%s,\"revision\":%" PRId64
               ",\"detail\":\"%s\"}\n", mh.source, mh.via, msrc_ok ? "true" : "false",
               mh.revision, mh.detail);
        printf("{\"fabric\":\"status\",\"epoch\":%" PRIu64 ",\"nodes\":%zu,\"ok\":%u,"
               "\"suspect\":%u,\"unreachable\":%u,\"zones\":\"%s\",\"mem_bytes\":%" PRIu64
               ",\"used_bytes\":%" PRIu64 ",\"pinned_bytes\":%" PRIu64 ",\"hit_ratio\":%.4f,"
               "\"origin_bytes\":%" PRIu64 ",\"origin_bytes_saved\":%" PRIu64 "}\n",
               epoch, n, ok, suspect, down, zones, mem, used, pinned,
               lookups ? (double)hits / (double)lookups : 0.0, origin, saved);
    } else {
        printf("fabric: view epoch %" PRIu64 ", %zu nodes: %u ok, %u suspect, %u unreachable; "
               "zones: %s\n", epoch, n, ok, suspect, down, zones[0] ? zones : "-");
        printf("members: %s (%s): %s", mh.source, mh.via, msrc_ok ? "reachable" : "UNREACHABLE");
        if (mh.revision >= 0) {
            printf(", revision %" PRId64, mh.revision);
        }
        printf(" (%s)\n", mh.detail);
        printf("capacity: %s used of %s (%s free), %s pinned\n", ad_bytes(used, a, sizeof(a)),
               ad_bytes(mem, b, sizeof(b)),
               ad_bytes((mem > used) ? mem - used : 0, c, sizeof(c)),
               ad_bytes(pinned, e, sizeof(e)));
        printf("hit ratio: %.1f%% (%" PRIu64 " of %" PRIu64 " chunk lookups at owners, "
               "one-sided hits as readers report them); origin: %s read, ~%s saved\n\n",
               lookups ? 100.0 * (double)hits / (double)lookups : 0.0, hits, lookups,
               ad_bytes(origin, a, sizeof(a)), ad_bytes(saved, b, sizeof(b)));
        printf("%-16s %-20s %-8s %-11s %9s %9s %9s %9s %8s %6s %6s\n", "node", "host:pid",
               "zone", "state", "memory", "used", "free", "pinned", "chunks", "hit%", "lease");
        for (i = 0; i < n; i++) {
            const ucache_node_info_t *d = &nodes[i].info;
            const ucache_stats_t *s = &nodes[i].st;
            char hp[40], m1[16], m2[16], m3[16], m4[16];

            snprintf(hp, sizeof(hp), "%.28s:%u", d->host, d->pid);
            if (nodes[i].status != UCACHE_OK) {
                printf("%016" PRIx64 " %-20s %-8s %-11s (%s)\n", d->id, hp,
                       d->zone[0] ? d->zone : "-", ad_state(&nodes[i]),
                       ucache_strerror(nodes[i].status));
                continue;
            }
            char ls[16] = "-";

            if (s->member_lease_ms > 0) {
                snprintf(ls, sizeof(ls), "%.1fs", s->member_lease_ms / 1e3);
            }
            printf("%016" PRIx64 " %-20s %-8s %-11s %9s %9s %9s %9s %8" PRIu64 " %6.1f %6s\n",
                   d->id, hp, d->zone[0] ? d->zone : "-", ad_state(&nodes[i]),
                   ad_bytes(s->mem_bytes, m1, sizeof(m1)), ad_bytes(s->bytes_used, m2, sizeof(m2)),
                   ad_bytes((s->mem_bytes > s->bytes_used) ? s->mem_bytes - s->bytes_used : 0,
                            m3, sizeof(m3)),
                   ad_bytes(s->bytes_pinned, m4, sizeof(m4)), s->chunks_cached,
                   ad_lookups(s) ? 100.0 * (double)ad_hits(s) / (double)ad_lookups(s) : 0.0, ls);
        }
    }
    free(nodes);
    ucache_finalize(ctx);
    return ((n > 0) && (down == 0) && msrc_ok) ? 0 : 1;
}

/* ------------------------------------------------------------------------ */
/* ucache stat                                                               */
/* ------------------------------------------------------------------------ */

/* The counters `ucache stat` shows, by column. */
#define AD_COLS(X)                                                            \
    X("fetches", fetches_served) X("hits", fetch_hits) X("fills", fills)      \
    X("coalesced", fills_coalesced) X("fill_err", fill_errors)                \
    X("refused", fills_refused) X("busy", fills_busy) X("moved", fills_moved) \
    X("evictions", evictions) X("origin_req", origin_reads)                   \
    X("origin_MB", origin_bytes) X("origin_err", origin_errors)               \
    X("rpc_err", bad_requests) X("auth_err", auth_failures) X("1s_hits", hits_reported) \
    X("nvme_hits", nvme_hits) X("demoted", nvme_demotions)                    \
    X("promoted", nvme_promotions) X("nvme_err", nvme_errors)

/* The NVMe tier's gauges and totals, in --json only. */
#define AD_NVME_JSON(X)                                                       \
    X(nvme_devices) X(nvme_offline) X(nvme_bytes) X(nvme_used) X(nvme_chunks) \
    X(nvme_pinned) X(nvme_staged) X(nvme_corrupt) X(nvme_read_bytes) X(nvme_read_ns) \
    X(nvme_rebuild_ns)

int cmd_stat(int argc, char **argv)
{
    ad_node_t *prev = NULL, *cur = NULL;
    size_t nprev = 0, n = 0, i, j;
    double t_prev = 0, t, dt;
    unsigned round, down;
    ucache_h ctx;
    ad_opts_t o;
    int rc;

    rc = ad_begin(argc, argv, "stat", AD_WATCH,
                  "usage: ucache stat [--watch[=SECONDS]] [--count N] [--members SRC] "
                   "[--timeout T] [--json]\n"
                   "Every node's counters: FETCH requests served and their hits, fills\n"
                   "from origins (coalesced, failed), evictions, origin requests, bytes\n"
                   "and errors, malformed requests, one-sided hits readers reported, the\n"
                   "NVMe tier's hits, demotions, promotions and device errors.  --watch\n"
                   "repeats every SECONDS (default 2) with per-second rates, --count N\n"
                   "times (default: until interrupted).  Exit 0 when every node\n"
                   "answered, 1 otherwise.\n",
                  1, &o, &ctx);
    if (rc >= 0) {
        return rc;
    }
    rc = 0;
    for (round = 0; (o.watch == 0) ? (round < 1) : ((o.count == 0) || (round < o.count));
         round++) {
        if (round > 0) {
            usleep((useconds_t)(o.watch * 1e6));
        }
        t = ds_now();
        if (ad_sample(ctx, "stat", &o, &cur, &n) != 0) {
            rc = 1;
            break;
        }
        dt = (prev != NULL) ? t - t_prev : 0;
        down = 0;
        if (!o.json) {
            printf("%s%-16s %-11s", (round > 0) ? "\n" : "", "node", "state");
#define AD_HDR(name, f) printf(" %10s", name);
            AD_COLS(AD_HDR)
#undef AD_HDR
            printf("\n");
        }
        for (i = 0; i < n; i++) {
            const ucache_stats_t *s = &cur[i].st, *p = NULL;

            down += (cur[i].status != UCACHE_OK);
            for (j = 0; (prev != NULL) && (j < nprev); j++) {
                if ((prev[j].info.id == cur[i].info.id) && (prev[j].status == UCACHE_OK)) {
                    p = &prev[j].st;
                }
            }
            if (o.json) {
                printf("{\"node\":\"%016" PRIx64 "\",\"host\":\"%s\",\"pid\":%u,"
                       "\"state\":\"%s\"", cur[i].info.id, cur[i].info.host, cur[i].info.pid,
                       ad_state(&cur[i]));
#define AD_JSON(name, f)                                                      \
                printf(",\"" #f "\":%" PRIu64, s->f);                         \
                if ((p != NULL) && (dt > 0)) {                                \
                    printf(",\"" #f "_per_s\":%.1f", (double)(s->f - p->f) / dt); \
                }
                AD_COLS(AD_JSON)
#undef AD_JSON
#define AD_JSON_NVME(f) printf(",\"" #f "\":%" PRIu64, s->f);
                AD_NVME_JSON(AD_JSON_NVME)
#undef AD_JSON_NVME
                printf("}\n");
                continue;
            }
            printf("%016" PRIx64 " %-11s", cur[i].info.id, ad_state(&cur[i]));
            if (cur[i].status != UCACHE_OK) {
                printf(" (%s)\n", ucache_strerror(cur[i].status));
                continue;
            }
#define AD_ROW(name, f)                                                       \
            if ((p != NULL) && (dt > 0)) {                                    \
                printf(" %8.1f/s", (double)(s->f - p->f) /                    \
                       (strcmp(#f, "origin_bytes") ? 1.0 : 1048576.0) / dt);  \
            } else {                                                          \
                printf(" %10" PRIu64, strcmp(#f, "origin_bytes") ? s->f :     \
                       s->f / 1048576);                                       \
            }
            AD_COLS(AD_ROW)
#undef AD_ROW
            printf("\n");
        }
        fflush(stdout);
        rc = ((n > 0) && (down == 0)) ? 0 : 1;
        free(prev);
        prev   = cur;
        nprev  = n;
        t_prev = t;
        cur    = NULL;
    }
    free(prev);
    ucache_finalize(ctx);
    return rc;
}
