/*
 * latency.c - latency statistics (latency.h): nearest-rank percentiles
 * and a half-octave histogram of sorted samples.
 */
#include "util/latency.h"

#include <stdlib.h>
#include <string.h>

static int uc_lat_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

void uc_lat_sort(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), uc_lat_cmp);
}

double uc_lat_percentile(const uint64_t *sorted, size_t n, double q)
{
    double rank = q * (double)n;
    size_t idx;

    if (n == 0) {
        return 0;
    }
    idx = (size_t)rank;               /* ceil(rank), then 0-based */
    idx += ((double)idx < rank);
    idx = (idx == 0) ? 0 : idx - 1;
    return (double)sorted[idx < n ? idx : n - 1];
}

/* floor(2 log2 x) for x >= 2: the bit length of x^2, less one (exact). */
static unsigned uc_lat_bin(uint64_t x)
{
    unsigned __int128 sq = (unsigned __int128)x * x;
    uint64_t hi = (uint64_t)(sq >> 64), lo = (uint64_t)sq;

    return (hi != 0) ? 127u - (unsigned)__builtin_clzll(hi) :
                       63u - (unsigned)__builtin_clzll(lo);
}

void uc_lat_stats(const uint64_t *sorted, size_t n, uc_lat_t *lat)
{
    unsigned b;
    size_t i;

    lat->p50_us  = uc_lat_percentile(sorted, n, 0.50) / 1e3;
    lat->p90_us  = uc_lat_percentile(sorted, n, 0.90) / 1e3;
    lat->p99_us  = uc_lat_percentile(sorted, n, 0.99) / 1e3;
    lat->p999_us = uc_lat_percentile(sorted, n, 0.999) / 1e3;
    lat->max_us  = (n > 0) ? (double)sorted[n - 1] / 1e3 : 0;
    memset(lat->hist, 0, sizeof(lat->hist));
    for (i = 0; i < n; i++) {
        b = (sorted[i] > 1) ? uc_lat_bin(sorted[i]) : 0;
        lat->hist[(b >= UC_LAT_BINS) ? UC_LAT_BINS - 1 : b]++;
    }
}
