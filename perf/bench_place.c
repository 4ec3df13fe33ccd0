/*
 * bench_place.c - ucperf placement: DxHash placement (fabric/place.c) against
 * a consistent-hash ring with 100 virtual nodes per node, in one run, at
 * each node count: median lookup time, keys moved when one node leaves or
 * joins, max/mean load over equal-weight nodes, and memory.  Lookups are
 * also timed in arrays 1% and 10% full (a fabric far below its configured
 * capacity): with the nodes on the lowest slots, as every members source
 * hands them out, and spread over the whole array - which is what a
 * lookup cost everywhere before probe sequences nested (A / live probes).
 * The ring's load is its exact arc shares (what it would converge to); ours
 * is counted over keys_per_node * N keys, sampling noise included.
 */
#include "perf/ucperf.h"
#include "fabric/fabric.h"
#include "fabric/place.h"
#include "util/time.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RING_VNODES    100u
#define TIME_KEYS      (1u << 20)
#define TIME_BATCH     1024u
#define MOVE_KEYS      (4u << 20)
#define MOVE_ROUNDS    8u
#define MOVE_PER_NODE  500u   /* keys per node in the movement passes */
#define PLACE_ZONES    8u

static volatile uint64_t place_sink; /* keeps timed lookups from being elided */

typedef struct ring_point {
    uint64_t point;
    uint32_t node;
} ring_point_t;

typedef struct ring {
    ring_point_t *pts;
    size_t        n;
} ring_t;

typedef struct bal_arg {
    const uf_place_t *place;
    uint64_t          first, count;
    uint32_t         *load;
} bal_arg_t;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static us_key_t key_of(uint64_t i)
{
    uint64_t s = i * 2 + 12345;
    us_key_t k;

    k.hi = splitmix(&s);
    k.lo = splitmix(&s);
    return k;
}

static int ring_cmp(const void *a, const void *b)
{
    const ring_point_t *x = a, *y = b;

    return (x->point > y->point) - (x->point < y->point);
}

static int ring_build(ring_t *r, uint32_t nodes, uint32_t skip)
{
    uint64_t s;
    uint32_t i, v;

    r->pts = malloc(sizeof(*r->pts) * (size_t)nodes * RING_VNODES);
    if (r->pts == NULL) {
        return -1;
    }
    r->n = 0;
    for (i = 0; i < nodes; i++) {
        if (i == skip) {
            continue;
        }
        for (v = 0; v < RING_VNODES; v++) {
            s = ((uint64_t)i << 20) | v;
            r->pts[r->n].point = splitmix(&s);
            r->pts[r->n].node  = i;
            r->n++;
        }
    }
    qsort(r->pts, r->n, sizeof(*r->pts), ring_cmp);
    return 0;
}

static uint32_t ring_owner(const ring_t *r, const us_key_t *k)
{
    size_t lo = 0, hi = r->n, mid;
    uint64_t h = k->hi;

    while (lo < hi) {
        mid = (lo + hi) / 2;
        if (r->pts[mid].point < h) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return r->pts[(lo == r->n) ? 0 : lo].node;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* Median over batches of ns per lookup; *sink keeps the work alive. */
static double time_lookups(const uf_place_t *place, const ring_t *ring,
                           const us_key_t *keys, uint64_t *sink)
{
    uint64_t t[TIME_KEYS / TIME_BATCH], t0, acc = 0;
    uint32_t b, i;

    for (b = 0; b < TIME_KEYS / TIME_BATCH; b++) {
        t0 = uc_time_ns();
        for (i = b * TIME_BATCH; i < (b + 1) * TIME_BATCH; i++) {
            acc += (place != NULL) ? uf_place_owner(place, &keys[i]) :
                                     ring_owner(ring, &keys[i]);
        }
        t[b] = uc_time_ns() - t0;
    }
    *sink += acc;
    qsort(t, TIME_KEYS / TIME_BATCH, sizeof(t[0]), cmp_u64);
    return (double)t[TIME_KEYS / TIME_BATCH / 2] / TIME_BATCH;
}

static void *bal_thread(void *arg)
{
    bal_arg_t *a = arg;
    uint64_t i;
    us_key_t k;

    for (i = a->first; i < a->first + a->count; i++) {
        k = key_of(i);
        a->load[uf_place_owner(a->place, &k)]++;
    }
    return NULL;
}

/* Max/mean of counted keys over @p n nodes, two threads. */
static double place_balance(const uf_place_t *place, uint32_t n, uint64_t keys)
{
    bal_arg_t a[2];
    pthread_t th;
    uint64_t max = 0, total = 0;
    uint32_t i;
    int started;

    for (i = 0; i < 2; i++) {
        a[i].place = place;
        a[i].first = i * (keys / 2);
        a[i].count = (i == 0) ? keys / 2 : keys - keys / 2;
        a[i].load  = calloc(n, sizeof(uint32_t));
        if (a[i].load == NULL) {
            free(a[0].load);
            return -1;
        }
    }
    started = (pthread_create(&th, NULL, bal_thread, &a[1]) == 0);
    bal_thread(&a[0]);
    if (started) {
        pthread_join(th, NULL);
    } else {
        bal_thread(&a[1]);
    }
    for (i = 0; i < n; i++) {
        uint64_t l = (uint64_t)a[0].load[i] + a[1].load[i];
        total += l;
        max = (l > max) ? l : max;
    }
    free(a[0].load);
    free(a[1].load);
    return (double)max / ((double)total / n);
}

/* Exact ring load: each point owns the arc up to it (from the previous). */
static double ring_balance(const ring_t *r, uint32_t n)
{
    double *share = calloc(n, sizeof(double)), max = 0;
    size_t i;

    if (share == NULL) {
        return -1;
    }
    for (i = 0; i < r->n; i++) {
        uint64_t prev = r->pts[(i == 0) ? r->n - 1 : i - 1].point;
        share[r->pts[i].node] += (double)(r->pts[i].point - prev); /* wraps */
    }
    for (i = 0; i < n; i++) {
        max = (share[i] > max) ? share[i] : max;
    }
    free(share);
    return max / (18446744073709551616.0 / n);
}

static ucache_status_t build(uint32_t n, uint32_t extra, uf_place_t **p)
{
    uf_place_node_t *nodes = calloc(n + extra, sizeof(*nodes));
    ucache_status_t status;
    uint32_t i;

    if (nodes == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    for (i = 0; i < n + extra; i++) {
        nodes[i].slot0  = i;
        nodes[i].weight = 1;
        nodes[i].zone   = i % PLACE_ZONES;
        nodes[i].alive  = (i < n); /* extras join later, in the same A */
    }
    status = uf_place_create(nodes, n + extra, uf_place_capacity(n + extra), p);
    free(nodes);
    return status;
}

typedef struct place_row {
    uint32_t nodes;
    double   dx_ns, ring_ns;
    double   fill_ns[2], spread_ns[2];  /* 1% and 10% full: packed, spread */
    double   dx_moved_leave, dx_moved_join, ring_moved_leave; /* x (1/N) */
    uint64_t wrong_moves;   /* keys that moved but need not have */
    double   dx_bal, ring_bal, bal_floor;
    uint64_t bal_keys;
    double   dx_mb, ring_mb, view_mb;
} place_row_t;

/* @p n nodes of weight 1 in an array @p pct percent full, on its lowest
 * slots or spread evenly over it. */
static ucache_status_t build_fill(uint32_t n, unsigned pct, bool spread, uf_place_t **p)
{
    uf_place_node_t *nodes = calloc(n, sizeof(*nodes));
    uint32_t a = 8, i, stride;
    ucache_status_t status;

    if (nodes == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    while (((uint64_t)a * pct < (uint64_t)n * 100) && (a < UF_MAX_SLOTS)) {
        a <<= 1;
    }
    stride = spread ? a / n : 1;
    for (i = 0; i < n; i++) {
        nodes[i].slot0  = i * stride;
        nodes[i].weight = 1;
        nodes[i].zone   = i % PLACE_ZONES;
        nodes[i].alive  = true;
    }
    status = uf_place_create(nodes, n, a, p);
    free(nodes);
    return status;
}

/* The whole view of @p n nodes as a file: list gives it (host:port and a
 * zone each, 8 zones): nodes, names, placement, peer pointers. */
static double view_mb(uint32_t n)
{
    uf_member_t *m = calloc(n, sizeof(*m));
    uf_view_t *v = NULL;
    double mb = -1;
    uint32_t i;

    if (m == NULL) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        snprintf(m[i].host, sizeof(m[i].host), "10.%u.%u.%u", (i >> 16) & 255,
                 (i >> 8) & 255, i & 255);
        snprintf(m[i].zone, sizeof(m[i].zone), "zone-%u", i % PLACE_ZONES);
        m[i].port   = 7000;
        m[i].id     = (uint64_t)i + 1;
        m[i].slot0  = i;
        m[i].weight = 1;
    }
    if (uf_view_build(NULL, m, n, 1, 0, &v) == UCACHE_OK) { /* takes m */
        mb = uf_view_bytes(v) / 1e6;
        uf_view_free(v);
    }
    return mb;
}

static ucache_status_t run_one(uint32_t n, uint64_t keys_per_node, uint64_t *sink,
                               place_row_t *row)
{
    uf_place_t *place = NULL, *joined = NULL;
    uint32_t *base = NULL, j, o, victim;
    us_key_t *keys = NULL;
    ring_t ring = { 0 }, ring2 = { 0 };
    ucache_status_t status;
    uint64_t i, moved, nmove;
    us_key_t k;

    memset(row, 0, sizeof(*row));
    row->nodes = n;
    status = build(n, 0, &place);
    if (status != UCACHE_OK) {
        return status;
    }
    status = build(n, MOVE_ROUNDS, &joined);
    keys = malloc(sizeof(*keys) * MOVE_KEYS);
    if ((status != UCACHE_OK) || (keys == NULL) ||
        (ring_build(&ring, n, UINT32_MAX) != 0)) {
        status = (status != UCACHE_OK) ? status : UCACHE_ERR_NO_MEMORY;
        goto out;
    }
    for (i = 0; i < MOVE_KEYS; i++) {
        keys[i] = key_of(i + (1ull << 40));
    }

    /* Lookup time, interleaved so drift hits both alike. */
    row->dx_ns   = time_lookups(place, NULL, keys, sink);
    row->ring_ns = time_lookups(NULL, &ring, keys, sink);
    row->dx_ns   = fmin(row->dx_ns, time_lookups(place, NULL, keys, sink));
    row->ring_ns = fmin(row->ring_ns, time_lookups(NULL, &ring, keys, sink));
    for (j = 0; j < 2; j++) { /* 1% and 10% full */
        uf_place_t *f = NULL, *sp = NULL;

        if ((build_fill(n, j ? 10 : 1, false, &f) == UCACHE_OK) &&
            (build_fill(n, j ? 10 : 1, true, &sp) == UCACHE_OK)) {
            row->fill_ns[j]   = time_lookups(f, NULL, keys, sink);
            row->spread_ns[j] = time_lookups(sp, NULL, keys, sink);
        }
        uf_place_destroy(f);
        uf_place_destroy(sp);
    }

    /* Movement: nodes leave (one at a time), new nodes join (one at a
     * time, into free slots of the same A); keys are regenerated, not kept. */
    nmove = (n * MOVE_PER_NODE > MOVE_KEYS) ? (uint64_t)n * MOVE_PER_NODE : MOVE_KEYS;
    base = malloc(sizeof(*base) * nmove);
    if (base == NULL) {
        status = UCACHE_ERR_NO_MEMORY;
        goto out;
    }
    for (i = 0; i < nmove; i++) {
        k = key_of(i + (1ull << 40));
        base[i] = uf_place_owner(place, &k);
    }
    moved = 0;
    for (j = 0; j < MOVE_ROUNDS; j++) {
        victim = (uint32_t)((j * 2654435761u) % n);
        uf_place_set_alive(place, victim, false);
        for (i = 0; i < nmove; i++) {
            k = key_of(i + (1ull << 40));
            o = uf_place_owner(place, &k);
            if (o != base[i]) {
                moved++;
                row->wrong_moves += (base[i] != victim);
            }
        }
        uf_place_set_alive(place, victim, true);
    }
    row->dx_moved_leave = (double)moved / MOVE_ROUNDS / nmove * n;
    moved = 0;
    for (j = 0; j < MOVE_ROUNDS; j++) {
        uf_place_set_alive(joined, n + j, true);
        for (i = 0; i < nmove; i++) {
            k = key_of(i + (1ull << 40));
            o = uf_place_owner(joined, &k);
            if (o != base[i]) {
                moved++;
                row->wrong_moves += (o != n + j);
            }
        }
        uf_place_set_alive(joined, n + j, false);
    }
    row->dx_moved_join = (double)moved / MOVE_ROUNDS / nmove * (n + 1);
    if (ring_build(&ring2, n, 0) == 0) {
        moved = 0;
        for (i = 0; i < MOVE_KEYS; i++) {
            moved += (ring_owner(&ring2, &keys[i]) != ring_owner(&ring, &keys[i]));
        }
        row->ring_moved_leave = (double)moved / MOVE_KEYS * n;
    }

    /* Load. */
    row->bal_keys  = keys_per_node * n;
    row->dx_bal    = place_balance(place, n, row->bal_keys);
    row->ring_bal  = ring_balance(&ring, n);
    /* What a perfectly uniform random assignment of as many keys gives. */
    row->bal_floor = 1.0 + sqrt(2.0 * log((double)n) / (double)keys_per_node);
    row->dx_mb     = uf_place_bytes(place) / 1e6;
    row->view_mb   = view_mb(n);
    row->ring_mb   = (double)ring.n * sizeof(ring_point_t) / 1e6;

out:
    free(ring.pts);
    free(ring2.pts);
    free(keys);
    free(base);
    uf_place_destroy(place);
    uf_place_destroy(joined);
    return status;
}

ucache_status_t ucperf_place_run(const ucperf_opts_t *o, FILE *out)
{
    static const uint32_t dflt[] = { 1000, 10000, 100000 };
    uint32_t counts[3];
    unsigned nc, k;
    uint64_t sink = 0;
    ucache_status_t status;
    place_row_t r;

    if (o->nodes != 0) {
        counts[0] = o->nodes;
        nc = 1;
    } else {
        memcpy(counts, dflt, sizeof(dflt));
        nc = 3;
    }
    if (!o->json) {
        fprintf(out, "%-9s %8s %8s %6s %9s %9s %9s %8s %8s %8s %10s %7s %7s %7s "
                "%7s %7s %7s %7s\n",
                "mode", "nodes", "dx_ns", "ring_ns", "ratio", "leave/N",
                "join/N", "ring/N", "dx_max", "ring_max", "dx_keys", "dx_MB",
                "view_MB", "ring_MB", "1%_ns", "1%spr", "10%_ns", "10%spr");
    }
    for (k = 0; k < nc; k++) {
        status = run_one(counts[k], o->keys_per_node, &sink, &r);
        if (status != UCACHE_OK) {
            return status;
        }
        if (o->json) {
            fprintf(out, "{\"bench\":\"ucperf\",\"mode\":\"placement\",\"nodes\":%u,"
                    "\"dx_lookup_ns\":%.2f,\"ring_lookup_ns\":%.2f,\"ratio\":%.4f,"
                    "\"dx_moved_leave_x_1_over_n\":%.4f,"
                    "\"dx_moved_join_x_1_over_n\":%.4f,"
                    "\"ring_moved_leave_x_1_over_n\":%.4f,\"wrong_moves\":%llu,"
                    "\"dx_max_over_mean\":%.4f,\"ring_max_over_mean\":%.4f,"
                    "\"uniform_floor\":%.4f,\"dx_balance_keys\":%llu,"
                    "\"dx_mb\":%.3f,\"view_mb\":%.3f,\"ring_mb\":%.3f,"
                    "\"fill1_lookup_ns\":%.2f,\"fill1_spread_lookup_ns\":%.2f,"
                    "\"fill10_lookup_ns\":%.2f,\"fill10_spread_lookup_ns\":%.2f}\n",
                    r.nodes, r.dx_ns, r.ring_ns, r.dx_ns / r.ring_ns,
                    r.dx_moved_leave, r.dx_moved_join, r.ring_moved_leave,
                    (unsigned long long)r.wrong_moves, r.dx_bal, r.ring_bal,
                    r.bal_floor, (unsigned long long)r.bal_keys, r.dx_mb,
                    r.view_mb, r.ring_mb, r.fill_ns[0], r.spread_ns[0], r.fill_ns[1],
                    r.spread_ns[1]);
        } else {
            fprintf(out, "%-9s %8u %8.1f %6.1f %9.3f %9.3f %9.3f %8.3f %8.3f %8.3f "
                    "%10llu %7.2f %7.2f %7.1f %7.1f %7.1f %7.1f %7.1f\n", "placement",
                    r.nodes, r.dx_ns,
                    r.ring_ns, r.dx_ns / r.ring_ns, r.dx_moved_leave,
                    r.dx_moved_join, r.ring_moved_leave, r.dx_bal, r.ring_bal,
                    (unsigned long long)r.bal_keys, r.dx_mb, r.view_mb, r.ring_mb,
                    r.fill_ns[0], r.spread_ns[0], r.fill_ns[1], r.spread_ns[1]);
        }
        if (r.wrong_moves != 0) {
            fprintf(stderr, "ucperf: placement moved %llu keys that should not "
                    "have moved\n", (unsigned long long)r.wrong_moves);
            return UCACHE_ERR_CORRUPT;
        }
    }
    if (!o->json) {
        fprintf(out, "leave/N, join/N: keys moved per 1/N of all keys (1.0 is "
                "the minimum); dx_max: counted over dx_keys keys (uniform-random "
                "floor %.3f at the largest N); ring_max: exact arc shares; "
                "1%%_ns, 10%%_ns: lookups in an array 1%% and 10%% full, nodes on "
                "its lowest slots; 1%%spr, 10%%spr: spread over it (A / live "
                "probes, what every lookup cost before nested sequences)\n",
                r.bal_floor);
    }
    place_sink = sink;
    return UCACHE_OK;
}
