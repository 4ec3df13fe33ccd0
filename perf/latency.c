/*
 * latency.c - ucperf's latency statistics (percentiles, the histogram),
 * shared by the benchmark modes and `ucache health`.
 */
#include "perf/ucperf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int ucperf_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

double ucperf_percentile(const uint64_t *sorted, size_t n, double q)
{
    size_t idx;

    if (n == 0) {
        return 0;
    }
    idx = (size_t)ceil(q * (double)n);
    idx = (idx == 0) ? 0 : idx - 1;
    return (double)sorted[idx < n ? idx : n - 1];
}

void ucperf_sort(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), ucperf_cmp_u64);
}

void ucperf_latencies(const uint64_t *sorted, size_t n, ucperf_result_t *res)
{
    size_t i;
    int b;

    res->p50_us  = ucperf_percentile(sorted, n, 0.50) / 1e3;
    res->p90_us  = ucperf_percentile(sorted, n, 0.90) / 1e3;
    res->p99_us  = ucperf_percentile(sorted, n, 0.99) / 1e3;
    res->p999_us = ucperf_percentile(sorted, n, 0.999) / 1e3;
    res->max_us  = (n > 0) ? sorted[n - 1] / 1e3 : 0;
    memset(res->hist, 0, sizeof(res->hist));
    for (i = 0; i < n; i++) {
        b = (sorted[i] > 1) ? (int)floor(2.0 * log2((double)sorted[i])) : 0;
        b = (b >= UCPERF_HIST_BINS) ? UCPERF_HIST_BINS - 1 : b;
        res->hist[b]++;
    }
}
