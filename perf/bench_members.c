/*
 * bench_members.c - ucperf members: the cost of membership on etcd, against
 * a real etcd (--members etcd://...).  --nodes N simulated nodes register
 * as daemons do (a lease each, one txn claiming the record and the slots),
 * from 8 threads; each lease is then kept alive every third of --ttl (as a
 * daemon's keeper does), and --watchers W contexts watch the prefix (as
 * every daemon does; readers follow their daemon).  Reports:
 *   - registration: seconds for the N joins, and joins/s;
 *   - steady state over --duration: etcd requests/s and bytes/s (as the
 *     clients count them: JSON over HTTP), and etcd's CPU (the etcd
 *     processes on this host, from /proc);
 *   - propagation: how long a join and a leave take to reach every watcher
 *     (median and max of 10 of each), from the txn's reply;
 *   - etcd's database size.
 * The simulated nodes are named 10.B.C.D:7000; everything is removed (the
 * leases revoked) at the end.
 */
#include "perf/ucperf.h"
#include "fabric/etcd.h"
#include "fabric/member.h"
#include "util/config.h"
#include "util/time.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MB_REG_THREADS   8u
#define MB_KEEP_THREADS  4u
#define MB_ROUNDS        10u

typedef struct mb_ctx {
    const char       *url;      /* etcd://... */
    uc_config_t       cfg;
    uint32_t          n;
    int64_t           ttl;
    _Atomic int64_t  *leases;   /* 0 until granted (keepers skip it) */
    void             *reg[MB_REG_THREADS];
    _Atomic uint32_t  next;
    _Atomic uint64_t  failed;
    _Atomic bool      stop;
    uint64_t          keep_requests, keep_bytes, keep_failed;
} mb_ctx_t;

typedef struct mb_thread {
    mb_ctx_t   *m;
    unsigned    idx;
    uf_etcd_t  *e;   /* keepers: a client of their own */
    pthread_t   th;
    uint64_t    failed;
} mb_thread_t;

static void mb_listen(uint32_t i, char *out, size_t len)
{
    snprintf(out, len, "10.%u.%u.%u:7000", (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

static void *mb_register(void *arg)
{
    mb_thread_t *t = arg;
    mb_ctx_t *m = t->m;
    int64_t granted, rev, lease = 0;
    char listen[64];
    uint32_t i, slot0;

    while ((i = atomic_fetch_add(&m->next, 1)) < m->n) {
        mb_listen(i, listen, sizeof(listen));
        if (uf_etcd_lease_grant(uf_etcd_source_client(m->reg[t->idx]), m->ttl, &lease,
                                &granted) == UCACHE_OK) {
            atomic_store(&m->leases[i], lease); /* kept alive from now */
        }
        if ((lease == 0) ||
            (uf_etcd_register(m->reg[t->idx], listen, 4ull << 30, lease, &slot0,
                              &rev) != UCACHE_OK)) {
            atomic_fetch_add(&m->failed, 1);
        }
        lease = 0;
    }
    return NULL;
}

/* Keep leases idx, idx + K, ... alive, each every ttl / 3, spread evenly. */
static void *mb_keep(void *arg)
{
    mb_thread_t *t = arg;
    mb_ctx_t *m = t->m;
    uint64_t per = (uint64_t)m->ttl * UC_NSEC_PER_SEC / 3, start = uc_time_ns(), due;
    uint32_t i, k = 0, mine = (m->n + MB_KEEP_THREADS - 1 - t->idx) / MB_KEEP_THREADS;
    int64_t left, lease;

    while (!atomic_load(&m->stop) && (mine > 0)) {
        i = t->idx + (k % mine) * MB_KEEP_THREADS;
        due = start + (uint64_t)((double)k * per / mine);
        while ((uc_time_ns() < due) && !atomic_load(&m->stop)) {
            usleep(200);
        }
        lease = atomic_load(&m->leases[i]);
        if ((lease != 0) &&
            ((uf_etcd_lease_keepalive(t->e, lease, &left) != UCACHE_OK) || (left == 0))) {
            t->failed++;
        }
        k++;
    }
    return NULL;
}

/* CPU seconds (user + system) of every process named etcd on this host. */
static double mb_etcd_cpu(void)
{
    long tick = sysconf(_SC_CLK_TCK);
    unsigned long ut, st;
    char path[300], buf[1024], *p;
    struct dirent *de;
    double s = 0;
    FILE *f;
    DIR *d;

    d = opendir("/proc");
    if (d == NULL) {
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        if ((fgets(buf, sizeof(buf), f) != NULL) && (strstr(buf, "(etcd)") != NULL) &&
            ((p = strrchr(buf, ')')) != NULL) &&
            (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                    &ut, &st) == 2)) {
            s += (double)(ut + st) / (double)tick;
        }
        fclose(f);
    }
    closedir(d);
    return s;
}

static void mb_keepers_stop(mb_ctx_t *m, mb_thread_t *keep, unsigned *nkeep_p)
{
    unsigned i;

    atomic_store(&m->stop, true);
    for (i = 0; i < *nkeep_p; i++) {
        pthread_join(keep[i].th, NULL);
        m->keep_failed += keep[i].failed;
        uf_etcd_destroy(keep[i].e);
    }
    *nkeep_p = 0;
}

static int mb_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Seconds until every watcher's epoch reaches @p rev (from @p t0). */
static double mb_reach(void **w, unsigned nw, int64_t rev, uint64_t t0)
{
    uint64_t deadline = t0 + 30 * UC_NSEC_PER_SEC;
    unsigned i = 0;

    while (i < nw) {
        if ((int64_t)uf_source_etcd.epoch(w[i]) >= rev) {
            i++;
            continue;
        }
        if (uc_time_ns() > deadline) {
            return -1;
        }
        usleep(100);
    }
    return (double)(uc_time_ns() - t0) / 1e9;
}

/* One join and one leave of a probe node, timed to every watcher. */
static ucache_status_t mb_probe(mb_ctx_t *m, void **w, unsigned nw, unsigned r,
                                double *join_s, double *leave_s)
{
    uf_etcd_t *e = uf_etcd_source_client(m->reg[0]);
    char listen[64], key[UF_ETCD_KEY_MAX];
    uf_etcd_put_t del;
    int64_t lease, granted, rev;
    ucache_status_t status;
    uint32_t slot0;
    uint64_t t0;
    bool ok;

    snprintf(listen, sizeof(listen), "10.255.255.%u:7000", r + 1);
    status = uf_etcd_lease_grant(e, m->ttl, &lease, &granted);
    if (status != UCACHE_OK) {
        return status;
    }
    status = uf_etcd_register(m->reg[0], listen, 4ull << 30, lease, &slot0, &rev);
    t0 = uc_time_ns();
    *join_s = (status == UCACHE_OK) ? mb_reach(w, nw, rev, t0) : -1;
    /* the leave: the record deleted (as its lease's expiry does) */
    snprintf(key, sizeof(key), "%s%s", uf_etcd_source_nodes(m->reg[0]), listen);
    del = (uf_etcd_put_t){ .key = key };
    if (status == UCACHE_OK) {
        status = uf_etcd_txn(e, NULL, 0, &del, 1, &ok, &rev);
    }
    t0 = uc_time_ns();
    *leave_s = (status == UCACHE_OK) ? mb_reach(w, nw, rev, t0) : -1;
    uf_etcd_lease_revoke(e, lease);
    return status;
}

ucache_status_t ucperf_members_run(const ucperf_opts_t *o, FILE *out)
{
    mb_ctx_t m = { 0 };
    mb_thread_t reg[MB_REG_THREADS], keep[MB_KEEP_THREADS];
    unsigned nw = o->watchers ? o->watchers : 100, i, r, nwo = 0, nkeep = 0;
    double reg_s, window, cpu0, cpu1, join[MB_ROUNDS], leave[MB_ROUNDS];
    uint64_t t0, req0 = 0, byt0 = 0, req1, byt1, fo, q, b;
    ucache_status_t status;
    int64_t db = -1;
    void **w = NULL;

    m.url = (o->members != NULL) ? o->members : getenv("UCACHE_MEMBERS");
    if ((m.url == NULL) || (strncmp(m.url, "etcd", 4) != 0)) {
        fprintf(stderr, "ucperf members: --members etcd://HOST:PORT[,...]/PREFIX "
                "(a real etcd, best a prefix of its own)\n");
        return UCACHE_ERR_INVALID;
    }
    status = uc_config_load(&m.cfg);
    if (status != UCACHE_OK) {
        return status;
    }
    m.n   = o->nodes ? o->nodes : 1000;
    m.ttl = o->ttl_s ? (int64_t)o->ttl_s : 30;
    window = (o->duration > 0) ? o->duration : 10;
    m.leases = calloc(m.n, sizeof(*m.leases));
    w = calloc(nw, sizeof(*w));
    if ((m.leases == NULL) || (w == NULL)) {
        status = UCACHE_ERR_NO_MEMORY;
        goto out;
    }
    /* registrars: sources of daemons (their own client, their own view) */
    for (i = 0; i < MB_REG_THREADS; i++) {
        status = uf_source_etcd.open(m.url + 4, &m.cfg, true, &m.reg[i]);
        if (status != UCACHE_OK) {
            goto out;
        }
    }
    /* keepalives from clients of their own, from the first lease on */
    for (nkeep = 0; nkeep < MB_KEEP_THREADS; nkeep++) {
        keep[nkeep] = (mb_thread_t){ .m = &m, .idx = nkeep };
        status = uf_etcd_create(m.url, NULL, &keep[nkeep].e);
        if (status != UCACHE_OK) {
            goto out;
        }
        pthread_create(&keep[nkeep].th, NULL, mb_keep, &keep[nkeep]);
    }
    t0 = uc_time_ns();
    for (i = 0; i < MB_REG_THREADS; i++) {
        reg[i] = (mb_thread_t){ .m = &m, .idx = i };
        pthread_create(&reg[i].th, NULL, mb_register, &reg[i]);
    }
    for (i = 0; i < MB_REG_THREADS; i++) {
        pthread_join(reg[i].th, NULL);
    }
    reg_s = (double)(uc_time_ns() - t0) / 1e9;
    /* watchers: contexts that range the N records, then watch */
    t0 = uc_time_ns();
    for (nwo = 0; nwo < nw; nwo++) {
        status = uf_source_etcd.open(m.url + 4, &m.cfg, false, &w[nwo]);
        if (status != UCACHE_OK) {
            goto out;
        }
    }
    usleep(1000000);  /* settle into the rhythm */
    for (i = 0; i < MB_KEEP_THREADS; i++) {
        uf_etcd_counts(keep[i].e, &q, &fo, &b);
        req0 += q;
        byt0 += b;
    }
    cpu0 = mb_etcd_cpu();
    t0 = uc_time_ns();
    usleep((useconds_t)(window * 1e6));
    req1 = byt1 = 0;
    for (i = 0; i < MB_KEEP_THREADS; i++) {
        uf_etcd_counts(keep[i].e, &q, &fo, &b);
        req1 += q;
        byt1 += b;
    }
    cpu1 = mb_etcd_cpu();
    window = (double)(uc_time_ns() - t0) / 1e9;
    /* propagation, with the keepalives still running */
    for (r = 0; r < MB_ROUNDS; r++) {
        status = mb_probe(&m, w, nw, r, &join[r], &leave[r]);
        if ((status != UCACHE_OK) || (join[r] < 0) || (leave[r] < 0)) {
            fprintf(stderr, "ucperf members: a join or leave did not reach every watcher\n");
            status = (status != UCACHE_OK) ? status : UCACHE_ERR_TIMEOUT;
            break;
        }
    }
    mb_keepers_stop(&m, keep, &nkeep);
    if (status != UCACHE_OK) {
        goto out;
    }
    uf_etcd_db_size(uf_etcd_source_client(m.reg[0]), &db);
    qsort(join, MB_ROUNDS, sizeof(join[0]), mb_cmp);
    qsort(leave, MB_ROUNDS, sizeof(leave[0]), mb_cmp);
    if (o->json) {
        fprintf(out, "{\"bench\":\"ucperf\",\"mode\":\"members\",\"nodes\":%u,\"watchers\":%u,"
                "\"ttl_s\":%lld,\"register_s\":%.3f,\"joins_per_s\":%.1f,"
                "\"register_failed\":%llu,\"steady_requests_per_s\":%.1f,"
                "\"steady_bytes_per_s\":%.0f,\"keepalives_needed_per_s\":%.1f,"
                "\"keepalive_failed\":%llu,\"etcd_cpu_cores\":%.3f,"
                "\"join_to_watchers_ms_p50\":%.2f,\"join_to_watchers_ms_max\":%.2f,"
                "\"leave_to_watchers_ms_p50\":%.2f,\"leave_to_watchers_ms_max\":%.2f,"
                "\"etcd_db_bytes\":%lld}\n",
                m.n, nw, (long long)m.ttl, reg_s, m.n / reg_s,
                (unsigned long long)atomic_load(&m.failed), (req1 - req0) / window,
                (byt1 - byt0) / window, m.n / (m.ttl / 3.0),
                (unsigned long long)m.keep_failed,
                (cpu0 >= 0) ? (cpu1 - cpu0) / window : -1.0,
                join[MB_ROUNDS / 2] * 1e3, join[MB_ROUNDS - 1] * 1e3,
                leave[MB_ROUNDS / 2] * 1e3, leave[MB_ROUNDS - 1] * 1e3, (long long)db);
    } else {
        fprintf(out, "%-8s %7s %8s %6s %8s %9s %10s %11s %9s %8s %9s %9s %9s %10s\n",
                "mode", "nodes", "watchers", "ttl_s", "reg_s", "joins/s", "req/s",
                "bytes/s", "needed/s", "etcd_cpu", "join_p50", "join_max", "leave_p50",
                "db_bytes");
        fprintf(out, "%-8s %7u %8u %6lld %8.2f %9.1f %10.1f %11.0f %9.1f %8.3f %9.2f %9.2f "
                "%9.2f %10lld\n", "members", m.n, nw, (long long)m.ttl, reg_s, m.n / reg_s,
                (req1 - req0) / window, (byt1 - byt0) / window, m.n / (m.ttl / 3.0),
                (cpu0 >= 0) ? (cpu1 - cpu0) / window : -1.0, join[MB_ROUNDS / 2] * 1e3,
                join[MB_ROUNDS - 1] * 1e3, leave[MB_ROUNDS / 2] * 1e3, (long long)db);
        fprintf(out, "req/s, bytes/s: keepalives at steady state as the clients count "
                "them (JSON over HTTP); needed/s: N / (TTL / 3); etcd_cpu: cores the "
                "etcd processes here used; join/leave: ms until all %u watchers saw it\n",
                nw);
    }
    if ((atomic_load(&m.failed) > 0) || (m.keep_failed > 0)) {
        fprintf(stderr, "ucperf members: %llu registrations and %llu keepalives failed\n",
                (unsigned long long)atomic_load(&m.failed),
                (unsigned long long)m.keep_failed);
        status = UCACHE_ERR_IO;
    }
out:
    mb_keepers_stop(&m, keep, &nkeep);
    for (i = 0; i < nwo; i++) {
        uf_source_etcd.close(w[i]);
    }
    /* the simulated nodes go: their leases revoked, 8 clients at once */
    for (i = 0; (m.leases != NULL) && (i < m.n); i++) {
        if ((atomic_load(&m.leases[i]) != 0) && (m.reg[i % MB_REG_THREADS] != NULL)) {
            uf_etcd_lease_revoke(uf_etcd_source_client(m.reg[i % MB_REG_THREADS]),
                                 atomic_load(&m.leases[i]));
        }
    }
    for (i = 0; i < MB_REG_THREADS; i++) {
        if (m.reg[i] != NULL) {
            uf_source_etcd.close(m.reg[i]);
        }
    }
    free(m.leases);
    free(w);
    return status;
}
