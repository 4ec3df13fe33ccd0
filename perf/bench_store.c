/*
 * bench_store.c - ucperf mode store: the node store alone, no network.
 * Fills an arena of --region bytes with --size chunks (into empty memory,
 * then past capacity, evicting), then reads them back through the raw-memory
 * path a remote reader uses (bucket pair, chunk, full verification, copy)
 * and, in the same run, plain memcpy of the same sizes from random places
 * in the same arena: the baseline the read figure is judged against.
 */
#include "perf/ucperf.h"
#include "util/latency.h"
#include "store/alloc.h"
#include "store/store.h"
#include "util/config.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>

#define SRC_LEN (64u << 20)

typedef struct row {
    const char *phase;
    uint64_t    ops, errors;
    double      seconds, p50_us, p99_us;
} row_t;

static us_key_t bench_key(uint64_t id)
{
    us_key_t k = { .hi = id * 0x9e3779b97f4a7c15ull ^ 0x5bd1e995u,
                   .lo = (id + 1) * 0xc2b2ae3d27d4eb4full };

    k.hi ^= k.hi >> 29;
    k.lo ^= k.lo >> 31;
    return k;
}

static size_t src_off(uint64_t id, size_t size)
{
    return (size_t)((id * 64 * 1021) % (SRC_LEN - size)) & ~(size_t)63;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

static void print_row(FILE *out, const ucperf_opts_t *o, const row_t *r, int json)
{
    double gbps = (r->seconds > 0) ? (double)r->ops * o->size / r->seconds / 1e9 : 0;
    double mops = (r->seconds > 0) ? (double)r->ops / r->seconds / 1e6 : 0;
    char size[32];

    if (json) {
        fprintf(out, "{\"bench\":\"ucperf\",\"mode\":\"store\",\"phase\":\"%s\","
                "\"size\":%zu,\"region\":%zu,\"ops\":%llu,\"errors\":%llu,"
                "\"seconds\":%.6f,\"gbps\":%.4f,\"mops\":%.4f,\"p50_us\":%.3f,"
                "\"p99_us\":%.3f}\n", r->phase, o->size, o->region,
                (unsigned long long)r->ops, (unsigned long long)r->errors,
                r->seconds, gbps, mops, r->p50_us, r->p99_us);
        return;
    }
    uc_format_size(o->size, size, sizeof(size));
    fprintf(out, "%-5s %-12s %7s %9llu %9.3f %8.3f %8.3f %8.3f %6llu\n", "store",
            r->phase, size, (unsigned long long)r->ops, mops, gbps, r->p50_us,
            r->p99_us, (unsigned long long)r->errors);
}

/* Fill ids [*next, *next + n); returns the fill row. */
static row_t fill(us_store_t *s, const uint8_t *src, size_t size, uint64_t *next,
                  uint64_t n, const char *phase)
{
    row_t r = { .phase = phase };
    uint64_t t0 = uc_time_ns(), id;
    us_key_t k;

    for (id = *next; id < *next + n; id++) {
        k = bench_key(id);
        r.errors += (us_store_put(s, &k, 0, src + src_off(id, size), size,
                                  10 * UC_NSEC_PER_SEC) != UCACHE_OK);
    }
    r.seconds = (uc_time_ns() - t0) / 1e9;
    r.ops     = n;
    *next    += n;
    return r;
}

ucache_status_t ucperf_store_run(const ucperf_opts_t *opts, FILE *out)
{
    ucperf_opts_t oo = *opts, *o = &oo;
    us_store_params_t p = { .len = o->region, .index_chunk = o->size,
                            .max_payload = o->size };
    uint64_t cap, next = 0, id, i, n, present = 0, *ids, *lat, x = 88172645463325252ull;
    uint64_t iters = o->iters ? o->iters : 100000, t0, t1;
    const us_layout_t *l;
    us_store_stats_t st;
    ucache_status_t status;
    row_t rows[5];   /* fill-empty, fill-evict, read-verify, read-batch, memcpy */
    us_read_op_t ops[US_READ_BATCH] = {0};
    uint8_t *bdst = NULL;
    unsigned j;
    size_t stride, dstride, pay_off;
    uint64_t errors = 0;
    uint8_t *src, *dst;
    us_store_t *s;
    uc_config_t cfg;
    size_t got;
    us_key_t k;
    us_loc_t loc;
    char *data;

    if (o->region == 0) {
        o->region = 1ull << 30;
    }
    if (getenv("UCPERF_CHURN") != NULL) {   /* the allocators' churn alone */
        iters = o->iters ? o->iters : 100000;
        return ucperf_alloc_churn(o, (iters < 40000) ? iters * 10 : 400000, out);
    }
    p.len = o->region;
    uc_config_load(&cfg);
    p.grace_ns = cfg.grace_ns;
    p.lock     = cfg.mem_lock;
    status = us_store_create(&p, &s);
    if (status != UCACHE_OK) {
        return status;
    }
    pay_off = US_CHUNK_OVERHEAD + us_chunk_table_bytes((uint32_t)o->size); /* its payload */
    stride  = us_alloc_block_size(pay_off + o->size);                      /* a chunk's block */
    dstride = (o->size + 63) & ~(size_t)63;                      /* a destination */
    src = malloc(SRC_LEN);
    dst = aligned_alloc(64, dstride);
    lat = malloc(iters * sizeof(*lat));
    us_store_stats(s, &st);
    cap = st.data_bytes / stride;
    ids = malloc(2 * cap * sizeof(*ids));
    if ((src == NULL) || (dst == NULL) || (lat == NULL) || (ids == NULL)) {
        status = UCACHE_ERR_NO_MEMORY;
        goto out;
    }
    for (i = 0; i < SRC_LEN / 8; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        memcpy(src + 8 * i, &x, 8);
    }
    /* fill: into empty memory (95% of it), then as much again, evicting */
    rows[0] = fill(s, src, o->size, &next, cap * 95 / 100, "fill-empty");
    rows[1] = fill(s, src, o->size, &next, cap, "fill-evict");
    us_store_stats(s, &st);
    for (id = 0; id < next; id++) {
        k = bench_key(id);
        if (us_store_lookup(s, &k, &loc) == UCACHE_OK) {
            ids[present++] = id;
        }
    }
    if (present == 0) {
        status = UCACHE_ERR_NOT_FOUND;
        goto out;
    }
    l = us_store_layout(s);

    /* lookup + verify + copy, random order over what is cached */
    rows[2] = (row_t){ .phase = "read-verify" };
    t0 = uc_time_ns();
    for (i = 0; i < iters; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        id = ids[x % present];
        k  = bench_key(id);
        if ((us_read_raw(l, us_store_base(s), &k, dst, o->size, &got, 3, NULL) !=
             UCACHE_OK) || (got != o->size) ||
            ((i % 16 == 0) && memcmp(dst, src + src_off(id, o->size), o->size))) {
            rows[2].errors++;
        }
    }
    rows[2].seconds = (uc_time_ns() - t0) / 1e9;
    rows[2].ops     = iters;
    /* latency of the same, one timed read at a time */
    n = (iters < 20000) ? iters : 20000;
    for (i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        k  = bench_key(ids[x % present]);
        t0 = uc_time_ns();
        rows[2].errors += (us_read_raw(l, us_store_base(s), &k, dst, o->size, &got, 3,
                                       NULL) != UCACHE_OK);
        t1 = uc_time_ns();
        lat[i] = t1 - t0;
    }
    qsort(lat, n, sizeof(*lat), cmp_u64);
    rows[2].p50_us = uc_lat_percentile(lat, n, 0.50) / 1e3;
    rows[2].p99_us = uc_lat_percentile(lat, n, 0.99) / 1e3;

    /* the same, US_READ_BATCH keys at a time (a reader with reads in flight) */
    bdst = aligned_alloc(64, US_READ_BATCH * dstride);
    if (bdst == NULL) {
        status = UCACHE_ERR_NO_MEMORY;
        goto out;
    }
    rows[3] = (row_t){ .phase = "read-batch" };
    t0 = uc_time_ns();
    for (i = 0; i < iters; i += US_READ_BATCH) {
        for (j = 0; j < US_READ_BATCH; j++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            ops[j].key = bench_key(ids[x % present]);
            ops[j].dst = bdst + j * dstride;
            ops[j].cap = o->size;
        }
        if (us_read_raw_batch(l, us_store_base(s), ops, US_READ_BATCH, 3, NULL) !=
            UCACHE_OK) {
            rows[3].errors++;
        }
    }
    rows[3].seconds = (uc_time_ns() - t0) / 1e9;
    rows[3].ops     = i;

    /* baseline: memcpy of the same size from random chunks of the arena */
    data = (char *)us_store_base(s) + l->data_off;
    rows[4] = (row_t){ .phase = "memcpy" };
    t0 = uc_time_ns();
    for (i = 0; i < iters; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        memcpy(dst, data + (x % cap) * stride + pay_off, o->size);
        __asm__ __volatile__("" : : "r"(dst) : "memory");
    }
    rows[4].seconds = (uc_time_ns() - t0) / 1e9;
    rows[4].ops     = iters;
    for (i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        t0 = uc_time_ns();
        memcpy(dst, data + (x % cap) * stride + pay_off, o->size);
        __asm__ __volatile__("" : : "r"(dst) : "memory");
        lat[i] = uc_time_ns() - t0;
    }
    qsort(lat, n, sizeof(*lat), cmp_u64);
    rows[4].p50_us = uc_lat_percentile(lat, n, 0.50) / 1e3;
    rows[4].p99_us = uc_lat_percentile(lat, n, 0.99) / 1e3;

    if (!o->json) {
        fprintf(out, "%-5s %-12s %7s %9s %9s %8s %8s %8s %6s\n", "mode", "phase",
                "size", "ops", "Mops/s", "GB/s", "p50us", "p99us", "errors");
    }
    for (j = 0; j < 5; j++) {
        print_row(out, o, &rows[j], o->json);
        errors += rows[j].errors;
    }
    if (o->json) {
        fprintf(out, "{\"bench\":\"ucperf\",\"mode\":\"store\",\"phase\":\"index\","
                "\"size\":%zu,\"region\":%zu,\"chunks\":%llu,\"slots\":%llu,"
                "\"index_bytes\":%llu,\"index_bytes_per_chunk\":%.1f,"
                "\"owner_meta_bytes_per_chunk\":%.1f,\"cached_fraction\":%.4f,"
                "\"locked\":%llu,\"hugepage_bytes\":%llu,\"errors\":%llu}\n",
                o->size, o->region, (unsigned long long)st.chunks,
                (unsigned long long)st.slots, (unsigned long long)st.index_bytes,
                (double)st.index_bytes / (double)st.chunks,
                (double)st.meta_bytes / (double)st.chunks,
                (double)st.bytes_cached / (double)st.data_bytes,
                (unsigned long long)st.locked, (unsigned long long)st.bytes_huge,
                (unsigned long long)errors);
    } else {
        fprintf(out, "index: %llu chunks cached in %llu slots; %.1f index bytes and "
                "%.1f owner metadata bytes per chunk; %.1f%% of the data area holds "
                "payload; locked=%llu, %llu bytes in huge pages\n",
                (unsigned long long)st.chunks, (unsigned long long)st.slots,
                (double)st.index_bytes / (double)st.chunks,
                (double)st.meta_bytes / (double)st.chunks,
                100.0 * (double)st.bytes_cached / (double)st.data_bytes,
                (unsigned long long)st.locked, (unsigned long long)st.bytes_huge);
    }
    if (errors > 0) {
        status = UCACHE_ERR_CORRUPT;
    }
    us_store_destroy(s); /* its memory, for the allocators' churn */
    s = NULL;
    if (status == UCACHE_OK) {
        status = ucperf_alloc_churn(o, (iters < 40000) ? iters * 10 : 400000, out);
    }
out:
    free(bdst);
    free(ids);
    free(lat);
    free(dst);
    free(src);
    if (s != NULL) {
        us_store_destroy(s);
    }
    return status;
}
