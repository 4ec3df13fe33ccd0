/*
 * health.c - `ucache health [--deep]`: every node probed in parallel -
 * reachable / suspect / dead, one-sided latency and bandwidth, the index
 * check - and nodes that left listed apart.  `--local`: this host's nodes
 * only, the probe Kubernetes and systemd run (its memory commit progress
 * too).
 */
#include "tools/admin.h"
#include "tools/commands.h"
#include "tools/dataset.h"
#include "util/latency.h"

#include <ifaddrs.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* ucache health                                                             */
/* ------------------------------------------------------------------------ */

typedef struct hp_node {
    ucache_node_info_t    info;
    ucache_probe_result_t res;
    uc_lat_t              lat;      /* percentiles of the latency pass */
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
            uc_lat_sort(lat, d->res.lat_reads);
            uc_lat_stats(lat, d->res.lat_reads, &d->lat);
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

/* Whether @p name is one of this host's addresses (a node on etcd or a
 * file: list is named by the address it listens on). */
static bool hp_local_addr(const char *name)
{
    struct ifaddrs *ifa, *a;
    char buf[NI_MAXHOST];
    bool found = false;
    socklen_t len;

    if (getifaddrs(&ifa) != 0) {
        return false;
    }
    for (a = ifa; (a != NULL) && !found; a = a->ifa_next) {
        if ((a->ifa_addr == NULL) ||
            ((a->ifa_addr->sa_family != AF_INET) && (a->ifa_addr->sa_family != AF_INET6))) {
            continue;
        }
        len = (a->ifa_addr->sa_family == AF_INET) ? sizeof(struct sockaddr_in) :
                                                    sizeof(struct sockaddr_in6);
        found = (getnameinfo(a->ifa_addr, len, buf, sizeof(buf), NULL, 0, NI_NUMERICHOST) == 0) &&
                (strcmp(buf, name) == 0);
    }
    freeifaddrs(ifa);
    return found;
}

/* --local: keep the nodes of @p want (NULL: of this host - its name, or
 * one of its addresses; the name is written to @p host). */
static void hp_keep_host(ucache_node_info_t *info, size_t *n_p, const char *want, char *host,
                         size_t cap)
{
    size_t i, k = 0;

    if (want != NULL) {
        snprintf(host, cap, "%s", want);
    } else if (gethostname(host, cap - 1) != 0) {
        snprintf(host, cap, "localhost");
    }
    for (i = 0; i < *n_p; i++) {
        if ((strcmp(info[i].host, host) == 0) ||
            ((want == NULL) && hp_local_addr(info[i].host))) {
            info[k++] = info[i];
        }
    }
    *n_p = k;
}

/* A node's memory: how much is committed and usable yet. */
static void hp_memory(const ucache_stats_t *s)
{
    char a[32], b[32];

    if (s->mem_bytes == 0) {
        return;
    }
    printf("    memory: %s of %s usable (%.0f%%)", ds_bytes((double)s->mem_usable, a, sizeof(a)),
           ds_bytes((double)s->mem_bytes, b, sizeof(b)),
           100.0 * (double)s->mem_usable / (double)s->mem_bytes);
    if (s->mem_commit_ns != 0) {
        printf(", committed in %.2f s (%.2f s a GiB)\n", s->mem_commit_ns / 1e9,
               s->mem_commit_ns / 1e9 / ((double)s->mem_bytes / (1ull << 30)));
    } else {
        printf(", committing\n");
    }
}

/* A node's NVMe tier: its devices, what they hold, how they read. */
static void hp_nvme(const ucache_stats_t *s)
{
    char a[32], b[32];

    if (s->nvme_devices == 0) {
        return;
    }
    printf("    nvme: %" PRIu64 " device(s), %s of %s used, %" PRIu64 " chunks, %" PRIu64
           " hits, %" PRIu64 " demoted, %" PRIu64 " promoted, %" PRIu64 " errors, %.2f GB/s "
           "reads%s\n", s->nvme_devices, ds_bytes((double)s->nvme_used, a, sizeof(a)),
           ds_bytes((double)s->nvme_bytes, b, sizeof(b)), s->nvme_chunks, s->nvme_hits,
           s->nvme_demotions, s->nvme_promotions, s->nvme_errors,
           s->nvme_read_ns ? (double)s->nvme_read_bytes / (double)s->nvme_read_ns : 0.0,
           s->nvme_offline ? " (see below)" : "");
    if (s->nvme_offline) {
        printf("    nvme: %" PRIu64 " device(s) OUT OF SERVICE after I/O errors (their chunks "
               "are read from the origin)\n", s->nvme_offline);
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
    char host[256] = "";
    pthread_t *threads;
    hp_state_t h;
    ucache_h ctx;
    ad_opts_t o;
    size_t n = 0;
    int rc;

    rc = ad_begin(argc, argv, "health", AD_PROBE,
                  "usage: ucache health [--deep[=N]] [--size S] [--iters N] [--parallel N]\n"
                   "                     [--local [--host NAME]] [--members SRC] [--timeout T]\n"
                   "                     [--json]\n"
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
                   "--local probes only the nodes of this host: registered under its\n"
                   "hostname or one of its addresses (--host NAME: that name), with how much\n"
                   "of its memory is committed and usable yet: the readiness and liveness\n"
                   "probe of a node's daemon (no node of the host in the view: broken).\n"
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
    if (o.local) {
        hp_keep_host(info, &n, o.host, host, sizeof(host));
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
    for (i = 0; (rc == 0) && (h.nodes != NULL) && (i < n); i++) {
        rc = (h.nodes[i].res.stats.nvme_offline > 0) ? 1 : 0; /* a device out: degraded */
    }
    verdict = (rc == 0) ? "healthy" : (rc == 1) ? "degraded" : "broken";
    if (!o.json && o.local && (n == 0)) {
        printf("%s: no node of this host in the view (epoch %" PRIu64 "): BROKEN\n", host,
               epoch);
    } else if (!o.json) {
        printf("%s%s: view epoch %" PRIu64 ", %zu nodes: %u ok, %u suspect, %u dead: %s\n",
               o.local ? "local " : "fabric", o.local ? host : "", epoch, n, ok, suspect,
               dead, (rc == 0) ? "HEALTHY" : (rc == 1) ? "DEGRADED" : "BROKEN");
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
                   "\"chunks_cached\":%" PRIu64 ",\"mem_bytes\":%" PRIu64 ","
                   "\"mem_usable\":%" PRIu64 ",\"mem_commit_s\":%.3f,"
                   "\"nvme_devices\":%" PRIu64 ",\"nvme_offline\":%" PRIu64 ","
                   "\"nvme_bytes\":%" PRIu64 ",\"nvme_used\":%" PRIu64 ","
                   "\"nvme_chunks\":%" PRIu64 ",\"nvme_errors\":%" PRIu64 "}\n",
                   d->info.id, d->info.host, d->info.pid, d->info.zone, d->state, d->why,
                   r->path, r->transport,
                   dv_memory_writable(r->transport) ? "writable" : "read-only", hb,
                   r->connect_ns / 1e3, r->rpc_ns / 1e3, r->lat_reads,
                   d->lat.p50_us, d->lat.p99_us, d->lat.max_us, r->bw_bytes, gbs,
                   r->buckets_scanned, r->chunks_checked, r->chunks_bad, r->chunks_changed,
                   r->chunks_misplaced, r->index_cut ? "true" : "false",
                   r->stats.chunks_cached, r->stats.mem_bytes, r->stats.mem_usable,
                   r->stats.mem_commit_ns / 1e9, r->stats.nvme_devices,
                   r->stats.nvme_offline, r->stats.nvme_bytes, r->stats.nvme_used,
                   r->stats.nvme_chunks, r->stats.nvme_errors);
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
        if (o.local) {
            hp_memory(&r->stats);
        }
        hp_nvme(&r->stats);
        writable += (dv_memory_writable(r->transport) != NULL);
    }
    if (!o.json && (writable > 0)) {
        printf("\n%u node(s) reached over RDMA have memory WRITABLE by peers: %s\n", writable,
               dv_memory_writable("rc_"));
    }
    /* nodes that left recently (reaped or unregistered): news to an admin,
     * not a fault of the fabric - they count for nothing above */
    if (o.local || (ad_list(ctx, "health", ucache_nodes_left, &left, &nleft) != 0)) {
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
