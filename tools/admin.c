/*
 * admin.c - the fabric's admin commands: `ucache status` (the view,
 * capacity, hit ratio, one screen), `ucache stat [--watch S]` (every node's
 * counters, with rates), `ucache health [--deep]` (every node probed in
 * parallel: reachable / suspect / dead, one-sided latency and bandwidth,
 * the index check) and `ucache drain NODE [--undo]`.  They ask each node
 * over the fabric (an ADMIN request) within --timeout; a node that does
 * not answer is shown as unreachable (dead).  --json prints one object per
 * node (and one for the fabric) instead of the tables.
 * Exit codes: status, stat, drain: 0 every node answered (drained), 1 some
 * did not (or the fabric is empty, or no such node); health: 0 healthy,
 * 1 degraded, 2 broken; all: 2 bad command line.
 */
#include "tools/commands.h"
#include "tools/dataset.h"
#include "perf/ucperf.h"
#include "util/config.h"

#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct ad_node {
    ucache_node_info_t info;
    ucache_stats_t     st;
    ucache_status_t    status;   /* of its ADMIN request */
} ad_node_t;

typedef struct ad_opts {
    ucache_params_t p;
    uint64_t        timeout_ns;
    uint64_t        members_ttl_ns; /* UCACHE_MEMBERS_TTL (health: heartbeats) */
    double          watch;       /* seconds between samples, 0: one sample */
    unsigned        count;       /* samples with --watch (0: until killed)  */
    int             json;
    const char     *node;        /* drain: the node named                  */
    int             undo;        /* drain --undo                           */
    unsigned        deep;        /* health --deep[=N]: chunks per node     */
    uint64_t        size;        /* health --size                          */
    unsigned        iters;       /* health --iters                         */
    unsigned        parallel;    /* health --parallel                      */
} ad_opts_t;

/* What a command accepts beyond --members, --timeout, --json, --help. */
enum { AD_WATCH = 1, AD_NODE = 2, AD_PROBE = 4 };

/* The view's nodes (caller frees *info_p), or -1 with a message. */
typedef ucache_status_t (*ad_list_fn_t)(ucache_h ctx, ucache_node_info_t *nodes, size_t cap,
                                        size_t *count_p);

/* All of a node list (ucache_nodes, ucache_nodes_left); *info_p freed by
 * the caller. */
static int ad_list(ucache_h ctx, const char *cmd, ad_list_fn_t list,
                   ucache_node_info_t **info_p, size_t *n_p)
{
    ucache_node_info_t *info = NULL;
    size_t n = 0, cap;

    do {
        free(info);
        cap = n + 16;
        info = calloc(cap, sizeof(*info));
        if ((info == NULL) || (list(ctx, info, cap, &n) != UCACHE_OK)) {
            free(info);
            fprintf(stderr, "ucache %s: cannot list the nodes (out of memory?)\n", cmd);
            return -1;
        }
    } while (n > cap);
    *info_p = info;
    *n_p = n;
    return 0;
}

static int ad_nodes(ucache_h ctx, const char *cmd, ucache_node_info_t **info_p, size_t *n_p)
{
    return ad_list(ctx, cmd, ucache_nodes, info_p, n_p);
}

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

/* Hits an owner served or was told of: FETCH hits, and sampled one-sided
 * hits (each reported key stands for UF_TOUCH_SAMPLE = 16). */
static uint64_t ad_hits(const ucache_stats_t *s)
{
    return s->fetch_hits + 16 * s->hits_reported;
}

static uint64_t ad_lookups(const ucache_stats_t *s)
{
    return s->fetches_served + 16 * s->hits_reported;
}

static int ad_parse(int argc, char **argv, const char *cmd, unsigned accept, ad_opts_t *o)
{
    static const struct option opts[] = {
        {"members", required_argument, NULL, 'M'},
        {"timeout", required_argument, NULL, 'T'},
        {"watch", optional_argument, NULL, 'w'},
        {"count", required_argument, NULL, 'c'},
        {"undo", no_argument, NULL, 'u'},
        {"deep", optional_argument, NULL, 'd'},
        {"size", required_argument, NULL, 's'},
        {"iters", required_argument, NULL, 'i'},
        {"parallel", required_argument, NULL, 'P'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}
    };
    uc_config_t cfg;
    uint64_t v;
    char *end;
    int c;

    memset(o, 0, sizeof(*o));
    /* the deadline of one remote operation, as for every other request */
    o->timeout_ns     = 2000000000ull;
    o->members_ttl_ns = 10000000000ull;
    if (uc_config_load(&cfg) == UCACHE_OK) {
        o->timeout_ns     = cfg.timeout_ns;
        o->members_ttl_ns = cfg.members_ttl_ns;
    }
    o->size       = 1u << 20;
    o->iters      = 32;
    o->parallel   = 32;
    optind = 2;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "M:T:jh", opts, NULL)) != -1) {
        if ((((c == 'w') || (c == 'c')) && !(accept & AD_WATCH)) ||
            ((c == 'u') && !(accept & AD_NODE)) ||
            (((c == 'd') || (c == 's') || (c == 'i') || (c == 'P')) && !(accept & AD_PROBE))) {
            c = '?';
        }
        switch (c) {
        case 'M':
            o->p.members = optarg;
            o->p.field_mask |= UCACHE_PARAM_FIELD_MEMBERS;
            break;
        case 'T':
            if ((uc_parse_time(optarg, &v) != UCACHE_OK) || (v == 0)) {
                fprintf(stderr, "ucache %s: bad --timeout '%s'\n", cmd, optarg);
                return 2;
            }
            o->timeout_ns = v;
            break;
        case 'w':
            o->watch = (optarg != NULL) ? strtod(optarg, &end) : 2.0;
            if (((optarg != NULL) && (*end != '\0')) || !(o->watch > 0) ||
                (o->watch > 3600)) {
                fprintf(stderr, "ucache %s: bad --watch '%s'\n", cmd, optarg ? optarg : "");
                return 2;
            }
            break;
        case 'c':
        case 'i':
        case 'P':
        case 'd':
            v = (optarg == NULL) ? 64 : strtoull(optarg, &end, 10);
            if (((optarg != NULL) && ((*end != '\0') || (*optarg == '-'))) || (v == 0) ||
                (v > 100000) || ((c == 'P') && (v > 1024))) {
                fprintf(stderr, "ucache %s: bad --%s '%s'\n", cmd,
                        (c == 'c') ? "count" : (c == 'i') ? "iters" :
                        (c == 'P') ? "parallel" : "deep", optarg ? optarg : "");
                return 2;
            }
            *((c == 'c') ? &o->count : (c == 'i') ? &o->iters : (c == 'P') ? &o->parallel :
              &o->deep) = (unsigned)v;
            break;
        case 's':
            if ((uc_parse_size(optarg, &v) != UCACHE_OK) || (v < 64) || (v > (256u << 20))) {
                fprintf(stderr, "ucache %s: bad --size '%s' (64 .. 256M)\n", cmd, optarg);
                return 2;
            }
            o->size = v;
            break;
        case 'u':
            o->undo = 1;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'h':
            return 1;
        default:
            fprintf(stderr, "ucache %s: unknown or malformed option '%s' (see ucache %s "
                    "--help)\n", cmd, argv[optind - 1], cmd);
            return 2;
        }
    }
    if ((accept & AD_NODE) && (optind < argc)) {
        o->node = argv[optind++];
    }
    if (optind != argc) {
        fprintf(stderr, "ucache %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return 2;
    }
    if ((accept & AD_NODE) && (o->node == NULL)) {
        fprintf(stderr, "ucache %s: which node? (an id or its prefix, HOST:PID or "
                "HOST:PORT; ucache status lists them)\n", cmd);
        return 2;
    }
    return 0;
}

/* Parse the command line (--help prints @p usage) and open a reader
 * context: -1 to go on, else the exit code (@p fail_rc if the members
 * source cannot be reached). */
static int ad_begin(int argc, char **argv, const char *cmd, unsigned accept,
                    const char *usage, int fail_rc, ad_opts_t *o, ucache_h *ctx_p)
{
    int rc = ad_parse(argc, argv, cmd, accept, o);

    if (rc != 0) {
        if (rc == 1) {
            fputs(usage, stdout);
        }
        return (rc == 1) ? 0 : 2;
    }
    if (ucache_init(&o->p, ctx_p) != UCACHE_OK) {
        fprintf(stderr, "ucache %s: cannot reach the members source%s\n", cmd,
                (fail_rc == 2) ? ": BROKEN" : "");
        if (o->json) {
            printf("{\"fabric\":\"%s\",%s\"error\":\"members source unreachable\"}\n",
                   cmd, (fail_rc == 2) ? "\"health\":\"broken\"," : "");
        }
        return fail_rc;
    }
    return -1;
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
    ucache_stats_t self;
    ad_node_t *nodes = NULL;
    ucache_h ctx;
    ad_opts_t o;
    size_t n = 0, i;
    int rc;

    rc = ad_begin(argc, argv, "status", 0,
                  "usage: ucache status [--members SRC] [--timeout T] [--json]\n"
                   "The fabric on one screen: the view (epoch, nodes by state and zone),\n"
                   "capacity used and free per node and in all, pinned bytes, the hit\n"
                   "ratio and the origin bytes the cache saved.  Exit 0 when every node\n"
                   "answered, 1 otherwise.\n",
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
                   ",\"hit_ratio\":%.4f}\n", d->id, d->host, d->pid, d->zone, ad_state(&nodes[i]),
                   s->mem_bytes, s->bytes_used,
                   (s->mem_bytes > s->bytes_used) ? s->mem_bytes - s->bytes_used : 0,
                   s->bytes_pinned, s->chunks_cached,
                   ad_lookups(s) ? (double)ad_hits(s) / (double)ad_lookups(s) : 0.0);
        }
        printf("{\"fabric\":\"status\",\"epoch\":%" PRIu64 ",\"nodes\":%zu,\"ok\":%u,"
               "\"suspect\":%u,\"unreachable\":%u,\"zones\":\"%s\",\"mem_bytes\":%" PRIu64
               ",\"used_bytes\":%" PRIu64 ",\"pinned_bytes\":%" PRIu64 ",\"hit_ratio\":%.4f,"
               "\"origin_bytes\":%" PRIu64 ",\"origin_bytes_saved\":%" PRIu64 "}\n",
               epoch, n, ok, suspect, down, zones, mem, used, pinned,
               lookups ? (double)hits / (double)lookups : 0.0, origin, saved);
    } else {
        printf("fabric: view epoch %" PRIu64 ", %zu nodes: %u ok, %u suspect, %u unreachable; "
               "zones: %s\n", epoch, n, ok, suspect, down, zones[0] ? zones : "-");
        printf("capacity: %s used of %s (%s free), %s pinned\n", ad_bytes(used, a, sizeof(a)),
               ad_bytes(mem, b, sizeof(b)),
               ad_bytes((mem > used) ? mem - used : 0, c, sizeof(c)),
               ad_bytes(pinned, e, sizeof(e)));
        printf("hit ratio: %.1f%% (%" PRIu64 " of %" PRIu64 " chunk lookups at owners, "
               "one-sided hits sampled 1 in 16); origin: %s read, ~%s saved\n\n",
               lookups ? 100.0 * (double)hits / (double)lookups : 0.0, hits, lookups,
               ad_bytes(origin, a, sizeof(a)), ad_bytes(saved, b, sizeof(b)));
        printf("%-16s %-20s %-8s %-11s %9s %9s %9s %9s %8s %6s\n", "node", "host:pid", "zone",
               "state", "memory", "used", "free", "pinned", "chunks", "hit%");
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
            printf("%016" PRIx64 " %-20s %-8s %-11s %9s %9s %9s %9s %8" PRIu64 " %6.1f\n",
                   d->id, hp, d->zone[0] ? d->zone : "-", ad_state(&nodes[i]),
                   ad_bytes(s->mem_bytes, m1, sizeof(m1)), ad_bytes(s->bytes_used, m2, sizeof(m2)),
                   ad_bytes((s->mem_bytes > s->bytes_used) ? s->mem_bytes - s->bytes_used : 0,
                            m3, sizeof(m3)),
                   ad_bytes(s->bytes_pinned, m4, sizeof(m4)), s->chunks_cached,
                   ad_lookups(s) ? 100.0 * (double)ad_hits(s) / (double)ad_lookups(s) : 0.0);
        }
    }
    free(nodes);
    ucache_finalize(ctx);
    return ((n > 0) && (down == 0)) ? 0 : 1;
}

/* ------------------------------------------------------------------------ */
/* ucache stat                                                               */
/* ------------------------------------------------------------------------ */

/* The counters `ucache stat` shows, by column. */
#define AD_COLS(X)                                                            \
    X("fetches", fetches_served) X("hits", fetch_hits) X("fills", fills)      \
    X("coalesced", fills_coalesced) X("fill_err", fill_errors)                \
    X("refused", fills_refused) X("busy", fills_busy)                         \
    X("evictions", evictions) X("origin_req", origin_reads)                   \
    X("origin_MB", origin_bytes) X("origin_err", origin_errors)               \
    X("rpc_err", bad_requests) X("auth_err", auth_failures) X("1s_hits", hits_reported)

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
                   "and errors, malformed requests, sampled one-sided hits.  --watch\n"
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

/* ------------------------------------------------------------------------ */
/* Naming a node                                                             */
/* ------------------------------------------------------------------------ */

/* Does @p spec name node @p d: its id or a prefix of it (4 hex digits at
 * least), HOST:PID or HOST:PORT? */
static int ad_names(const ucache_node_info_t *d, const char *spec)
{
    char id[17], hp[96];
    size_t len = strlen(spec);

    snprintf(id, sizeof(id), "%016" PRIx64, d->id);
    if ((len >= 4) && (len <= 16) && (strncasecmp(id, spec, len) == 0)) {
        return 1;
    }
    snprintf(hp, sizeof(hp), "%s:%u", d->host, d->pid);
    if ((d->pid != 0) && (strcmp(hp, spec) == 0)) {
        return 1;
    }
    snprintf(hp, sizeof(hp), "%s:%u", d->host, d->port);
    return (d->port != 0) && (strcmp(hp, spec) == 0);
}

/* The one node @p spec names, or -1 with a message (none, or several). */
static int ad_find(ucache_h ctx, const char *cmd, const char *spec, ucache_node_info_t *out)
{
    ucache_node_info_t *info;
    size_t n, i, found = 0;

    if (ad_nodes(ctx, cmd, &info, &n) != 0) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (ad_names(&info[i], spec)) {
            *out = info[i];
            found++;
        }
    }
    free(info);
    if (found != 1) {
        fprintf(stderr, "ucache %s: %s node '%s' in the view of %zu nodes (name one by its "
                "id, an id prefix of 4+ hex digits, HOST:PID or HOST:PORT; ucache status "
                "lists them)\n", cmd, (found == 0) ? "no" : "more than one", spec, n);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* ucache drain                                                              */
/* ------------------------------------------------------------------------ */

int cmd_drain(int argc, char **argv)
{
    ucache_node_info_t node, *info = NULL;
    char name[96];
    ucache_status_t status;
    ucache_stats_t st;
    uint64_t t_end;
    size_t n = 0, i;
    int rc, in_view = 1;
    ucache_h ctx;
    ad_opts_t o;

    rc = ad_begin(argc, argv, "drain", AD_NODE,
                  "usage: ucache drain NODE [--undo] [--members SRC] [--timeout T] [--json]\n"
                   "Takes NODE (an id, an id prefix, HOST:PID or HOST:PORT) out of service:\n"
                   "it fills no new chunks (readers go to the next owner or the origin)\n"
                   "but still serves the ones it holds, and on a dir: source it leaves the\n"
                   "membership, so every view stops placing chunks on it; then it can be\n"
                   "stopped.  Waits up to --timeout for the view to drop it.  --undo puts\n"
                   "it back.  Exit 0 done, 1 no such node or it did not answer.\n",
                  1, &o, &ctx);
    if (rc >= 0) {
        return rc;
    }
    if (ad_find(ctx, "drain", o.node, &node) != 0) {
        if (o.undo) {
            fprintf(stderr, "ucache drain: a node drained from a source nodes join (dir:) "
                    "has left the view; restart its ucached to bring it back\n");
        }
        ucache_finalize(ctx);
        return 1;
    }
    snprintf(name, sizeof(name), "%s:%u", node.host, node.pid ? node.pid : node.port);
    status = ucache_node_drain(ctx, node.id, !o.undo, o.timeout_ns, &st);
    if ((status == UCACHE_OK) && (st.draining != (uint64_t)!o.undo)) {
        status = UCACHE_ERR_UNSUPPORTED; /* a reader-only node, or an old one */
    }
    if (status != UCACHE_OK) {
        fprintf(stderr, "ucache drain: node %016" PRIx64 " (%s): %s\n", node.id, name,
                ucache_strerror(status));
        ucache_finalize(ctx);
        return 1;
    }
    /* Draining on a source nodes join: wait for this process's view to
     * drop it (it polls the source); a static list keeps it listed. */
    t_end = (uint64_t)(ds_now() * 1e9) + o.timeout_ns;
    while (!o.undo && in_view && ((uint64_t)(ds_now() * 1e9) < t_end)) {
        usleep(100000);
        if (ad_nodes(ctx, "drain", &info, &n) != 0) {
            break;
        }
        for (in_view = 0, i = 0; i < n; i++) {
            in_view |= (info[i].id == node.id);
        }
        free(info);
    }
    if (o.json) {
        printf("{\"node\":\"%016" PRIx64 "\",\"host\":\"%s\",\"pid\":%u,"
               "\"draining\":%s,\"in_view\":%s,\"chunks\":%" PRIu64 ","
               "\"pinned_bytes\":%" PRIu64 "}\n", node.id, node.host, node.pid,
               o.undo ? "false" : "true", in_view ? "true" : "false", st.chunks_cached,
               st.bytes_pinned);
    } else if (o.undo) {
        printf("node %016" PRIx64 " (%s) is back in service\n", node.id, name);
    } else {
        printf("node %016" PRIx64 " (%s) drained: it fills no new chunks (%" PRIu64
               " cached, still served); %s\n", node.id, name, st.chunks_cached, in_view ?
               "it is still in the view (a static list: remove its line to move its "
               "chunks, or stop it)" : "it left the view: it can be stopped");
    }
    ucache_finalize(ctx);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* ucache health                                                             */
/* ------------------------------------------------------------------------ */

typedef struct hp_node {
    ucache_node_info_t    info;
    ucache_probe_result_t res;
    ucperf_result_t       lat;      /* percentiles of the latency pass */
    const char           *state;    /* ok, suspect, dead */
    char                  why[96];
} hp_node_t;

typedef struct hp_state {
    ucache_h         ctx;
    const ad_opts_t *o;
    hp_node_t       *nodes;
    size_t           n;
    pthread_mutex_t  lock;
    size_t           next;
} hp_state_t;

/* Probe nodes from the shared queue until none is left. */
static void *hp_worker(void *arg)
{
    hp_state_t *h = arg;
    ucache_probe_params_t prm;
    uint64_t *lat = calloc(h->o->iters, sizeof(*lat));
    hp_node_t *d;
    size_t i;

    for (;;) {
        pthread_mutex_lock(&h->lock);
        i = h->next++;
        pthread_mutex_unlock(&h->lock);
        if (i >= h->n) {
            break;
        }
        d = &h->nodes[i];
        memset(&prm, 0, sizeof(prm));
        prm.field_mask = UCACHE_PROBE_FIELD_SIZE | UCACHE_PROBE_FIELD_ITERS |
                         UCACHE_PROBE_FIELD_TIMEOUT_NS | UCACHE_PROBE_FIELD_DEEP |
                         ((lat != NULL) ? UCACHE_PROBE_FIELD_LAT_NS : 0);
        prm.size       = h->o->size;
        prm.iters      = h->o->iters;
        prm.timeout_ns = h->o->timeout_ns;
        prm.deep       = h->o->deep;
        prm.lat_ns     = lat;
        ucache_node_probe(h->ctx, d->info.id, &prm, &d->res);
        if (lat != NULL) {
            ucperf_sort(lat, d->res.lat_reads);
            ucperf_latencies(lat, d->res.lat_reads, &d->lat);
        }
    }
    free(lat);
    return NULL;
}

/* ok, suspect or dead, and why. */
static void hp_judge(hp_node_t *d, uint64_t now_real, uint64_t ttl_ns)
{
    const ucache_probe_result_t *r = &d->res;
    uint64_t age = (d->info.heartbeat_ns && (now_real > d->info.heartbeat_ns)) ?
                   now_real - d->info.heartbeat_ns : 0;

    d->state = "ok";
    if (r->status != UCACHE_OK) {
        d->state = "dead";
        snprintf(d->why, sizeof(d->why), "%s", ucache_strerror(r->status));
    } else if (r->chunks_bad > 0) {
        d->state = "suspect";
        snprintf(d->why, sizeof(d->why), "%" PRIu64 " chunks fail verification",
                 r->chunks_bad);
    } else if (r->index_cut) {
        d->state = "suspect";
        snprintf(d->why, sizeof(d->why), "index check cut short by --timeout (%" PRIu64
                 " chunks verified)", r->chunks_checked);
    } else if (r->stats.draining) {
        d->state = "suspect";
        snprintf(d->why, sizeof(d->why), "drained (ucache drain --undo returns it)");
    } else if (age > ttl_ns / 2) {
        d->state = "suspect";
        snprintf(d->why, sizeof(d->why), "heartbeat %.1f s old (reaped at %.0f s)",
                 age / 1e9, ttl_ns / 1e9);
    }
}

int cmd_health(int argc, char **argv)
{
    unsigned ok = 0, suspect = 0, dead = 0, i, nthreads, started = 0, writable = 0;
    ucache_node_info_t *left = NULL;
    uint64_t view_real;
    size_t nleft;
    uint64_t epoch, now_real, checked = 0, bad = 0;
    ucache_node_info_t *info = NULL;
    const char *verdict;
    ucache_stats_t self;
    pthread_t *threads;
    hp_state_t h;
    ucache_h ctx;
    ad_opts_t o;
    size_t n = 0;
    int rc;

    rc = ad_begin(argc, argv, "health", AD_PROBE,
                  "usage: ucache health [--deep[=N]] [--size S] [--iters N] [--parallel N]\n"
                   "                     [--members SRC] [--timeout T] [--json]\n"
                   "Probes every node of the view, --parallel at a time (default 32), each\n"
                   "within --timeout (default UCACHE_TIMEOUT, 2s): its counters over the fabric, --iters\n"
                   "64-byte one-sided reads one at a time (latency p50/p99) and --iters\n"
                   "reads of --size bytes, 4 in flight (bandwidth; default 32 x 1M), the\n"
                   "path reads take (mapped / get / am) and its last heartbeat.  --deep\n"
                   "also walks each node's index and reads and verifies N chunks (default\n"
                   "64) as a reader would.  A node is dead if it does not answer, suspect\n"
                   "if it is drained, its heartbeat is late, a chunk fails or --timeout\n"
                   "ends its index check early.  Nodes that left the fabric in the last\n"
                   "10 x UCACHE_MEMBERS_TTL (reaped or stopped; dir: members) are listed as\n"
                   "left: news, not a fault.\n"
                   "Exit: 0 healthy (all ok), 1 degraded (some suspect or dead, most\n"
                   "alive), 2 broken (no view, or half the nodes or more dead), 2 also for\n"
                   "a bad command line.\n",
                  2, &o, &ctx);
    if (rc >= 0) {
        return rc;
    }
    if (ad_nodes(ctx, "health", &info, &n) != 0) {
        ucache_finalize(ctx);
        return 2;
    }
    {
        struct timespec ts; /* heartbeats are CLOCK_REALTIME stamps, read now:
                               a heartbeat's age is as of the view, not as of
                               the end of the probes (a dead node's probe takes
                               a whole --timeout) */
        clock_gettime(CLOCK_REALTIME, &ts);
        view_real = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    }
    memset(&h, 0, sizeof(h));
    h.ctx   = ctx;
    h.o     = &o;
    h.n     = n;
    h.nodes = calloc(n + 1, sizeof(*h.nodes));
    pthread_mutex_init(&h.lock, NULL);
    for (i = 0; (h.nodes != NULL) && (i < n); i++) {
        h.nodes[i].info = info[i];
    }
    free(info);
    nthreads = (n < o.parallel) ? (unsigned)n : o.parallel;
    threads = calloc(nthreads + 1, sizeof(*threads));
    for (i = 0; (h.nodes != NULL) && (threads != NULL) && (i < nthreads); i++) {
        started += (pthread_create(&threads[started], NULL, hp_worker, &h) == 0);
    }
    if ((h.nodes != NULL) && (started == 0)) {
        hp_worker(&h);
    }
    for (i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
    }
    free(threads);
    ucache_stats_get(ctx, &self);
    epoch = self.view_epoch;
    {
        struct timespec ts; /* heartbeats are CLOCK_REALTIME stamps */

        clock_gettime(CLOCK_REALTIME, &ts);
        now_real = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    }
    for (i = 0; (h.nodes != NULL) && (i < n); i++) {
        hp_judge(&h.nodes[i], view_real, o.members_ttl_ns);
        ok      += (strcmp(h.nodes[i].state, "ok") == 0);
        suspect += (strcmp(h.nodes[i].state, "suspect") == 0);
        dead    += (strcmp(h.nodes[i].state, "dead") == 0);
        checked += h.nodes[i].res.chunks_checked;
        bad     += h.nodes[i].res.chunks_bad;
    }
    rc = (h.nodes == NULL) || (n == 0) || (2 * dead >= n) ? 2 : (ok == n) ? 0 : 1;
    verdict = (rc == 0) ? "healthy" : (rc == 1) ? "degraded" : "broken";
    if (!o.json) {
        printf("fabric: view epoch %" PRIu64 ", %zu nodes: %u ok, %u suspect, %u dead: %s\n",
               epoch, n, ok, suspect, dead, (rc == 0) ? "HEALTHY" : (rc == 1) ?
               "DEGRADED" : "BROKEN");
        if (o.deep) {
            printf("index check: %" PRIu64 " chunks read and verified, %" PRIu64 " bad\n",
                   checked, bad);
        }
        printf("\n%-16s %-20s %-7s %-6s %9s %8s %8s %8s %10s",
               "node", "host:pid", "state", "path", "heartbeat", "rpc", "lat p50",
               "lat p99", "bandwidth");
        printf(o.deep ? " %14s" : "%s", o.deep ? "chunks ok/bad" : "");
        printf("  transport\n");
    }
    for (i = 0; (h.nodes != NULL) && (i < n); i++) {
        const hp_node_t *d = &h.nodes[i];
        const ucache_probe_result_t *r = &d->res;
        double hb = (d->info.heartbeat_ns && (view_real > d->info.heartbeat_ns)) ?
                    (view_real - d->info.heartbeat_ns) / 1e9 : -1;
        double gbs = r->bw_ns ? (double)r->bw_bytes / (double)r->bw_ns : 0;
        char hp[40], hbs[16], bw[16];

        if (o.json) {
            printf("{\"node\":\"%016" PRIx64 "\",\"host\":\"%s\",\"pid\":%u,"
                   "\"zone\":\"%s\",\"state\":\"%s\",\"why\":\"%s\",\"path\":\"%s\","
                   "\"transport\":\"%s\",\"memory\":\"%s\","
                   "\"heartbeat_age_s\":%.3f,\"connect_us\":%.1f,\"rpc_us\":%.1f,"
                   "\"lat_reads\":%" PRIu64 ",\"lat_p50_us\":%.2f,\"lat_p99_us\":%.2f,"
                   "\"lat_max_us\":%.2f,\"bw_bytes\":%" PRIu64 ",\"bw_gbs\":%.3f,"
                   "\"buckets_scanned\":%" PRIu64 ",\"chunks_checked\":%" PRIu64 ","
                   "\"chunks_bad\":%" PRIu64 ",\"chunks_changed\":%" PRIu64 ","
                   "\"chunks_misplaced\":%" PRIu64 ",\"index_cut\":%s,"
                   "\"chunks_cached\":%" PRIu64 "}\n",
                   d->info.id, d->info.host, d->info.pid, d->info.zone, d->state, d->why,
                   r->path, r->transport,
                   dv_memory_writable(r->transport) ? "writable" : "read-only", hb,
                   r->connect_ns / 1e3, r->rpc_ns / 1e3, r->lat_reads,
                   d->lat.p50_us, d->lat.p99_us, d->lat.max_us, r->bw_bytes, gbs,
                   r->buckets_scanned, r->chunks_checked, r->chunks_bad, r->chunks_changed,
                   r->chunks_misplaced, r->index_cut ? "true" : "false",
                   r->stats.chunks_cached);
            continue;
        }
        snprintf(hp, sizeof(hp), "%.28s:%u", d->info.host, d->info.pid);
        if (hb >= 0) {
            snprintf(hbs, sizeof(hbs), "%.1fs ago", hb);
        } else {
            snprintf(hbs, sizeof(hbs), "-");
        }
        if (r->status != UCACHE_OK) {
            printf("%016" PRIx64 " %-20s %-7s %-6s %9s  (%s)\n", d->info.id, hp, d->state,
                   "-", hbs, d->why);
            continue;
        }
        snprintf(bw, sizeof(bw), "%.2f GB/s", gbs);
        printf("%016" PRIx64 " %-20s %-7s %-6s %9s %6.0fus %6.1fus %6.1fus %10s", d->info.id,
               hp, d->state, r->path, hbs, r->rpc_ns / 1e3, d->lat.p50_us, d->lat.p99_us,
               r->bw_bytes ? bw : "-");
        if (o.deep) {
            printf(" %9" PRIu64 "/%-4" PRIu64, r->chunks_checked, r->chunks_bad);
        }
        printf("  %s%s%s%s%s\n", r->transport[0] ? r->transport : "-",
               dv_memory_writable(r->transport) ? " (memory WRITABLE)" : "",
               d->why[0] ? "  (" : "", d->why, d->why[0] ? ")" : "");
        writable += (dv_memory_writable(r->transport) != NULL);
    }
    if (!o.json && (writable > 0)) {
        printf("\n%u node(s) reached over RDMA have memory WRITABLE by peers: %s\n", writable,
               dv_memory_writable("rc_"));
    }
    /* nodes that left recently (reaped or unregistered): news to an admin,
     * not a fault of the fabric - they count for nothing above */
    if (ad_list(ctx, "health", ucache_nodes_left, &left, &nleft) != 0) {
        nleft = 0;
    }
    for (i = 0; i < nleft; i++) {
        double ago = (now_real > left[i].heartbeat_ns) ?
                     (now_real - left[i].heartbeat_ns) / 1e9 : 0;
        char hp[40];
        size_t j;

        for (j = 0; (h.nodes != NULL) && (j < n) && (h.nodes[j].info.id != left[i].id); j++) {
        }
        if ((h.nodes != NULL) && (j < n)) {
            continue; /* reaped while it was probed: listed above already */
        }

        if (o.json) {
            printf("{\"node\":\"%016" PRIx64 "\",\"host\":\"%s\",\"pid\":%u,"
                   "\"zone\":\"%s\",\"state\":\"left\",\"left_s_ago\":%.1f}\n",
                   left[i].id, left[i].host, left[i].pid, left[i].zone, ago);
        } else {
            if (i == 0) {
                printf("\n");
            }
            snprintf(hp, sizeof(hp), "%.28s:%u", left[i].host, left[i].pid);
            printf("%016" PRIx64 " %-20s %-7s %-6s %8.1fs  (left the fabric: reaped or "
                   "stopped)\n", left[i].id, hp, "left", "-", ago);
        }
    }
    free(left);
    if (o.json) {
        printf("{\"fabric\":\"health\",\"health\":\"%s\",\"exit\":%d,\"epoch\":%"
               PRIu64 ",\"nodes\":%zu,\"ok\":%u,\"suspect\":%u,\"dead\":%u,\"left\":%zu,"
               "\"chunks_checked\":%" PRIu64 ",\"chunks_bad\":%" PRIu64 "}\n", verdict, rc,
               epoch, n, ok, suspect, dead, nleft, checked, bad);
    }
    pthread_mutex_destroy(&h.lock);
    free(h.nodes);
    ucache_finalize(ctx);
    return rc;
}
