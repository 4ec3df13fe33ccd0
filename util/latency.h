/*
 * latency.h - statistics of a set of latency samples (ns): percentiles,
 * the maximum and a histogram of half-octave bins; ucperf's benchmarks and
 * `ucache health` both report through it.  No libm: the bins are exact
 * integer arithmetic.
 */
#ifndef UC_LATENCY_H
#define UC_LATENCY_H

#include <stddef.h>
#include <stdint.h>

#define UC_LAT_BINS 48         /* bin i: [2^(i/2), 2^((i+1)/2)) ns; the last: the rest */

typedef struct uc_lat {
    double   p50_us, p90_us, p99_us, p999_us, max_us;
    uint64_t hist[UC_LAT_BINS];
} uc_lat_t;

/** Sort @p n samples in place, ascending. */
void uc_lat_sort(uint64_t *v, size_t n);

/** The @p q quantile (0 < q <= 1; nearest rank) of @p n sorted samples; 0
 *  if there are none. */
double uc_lat_percentile(const uint64_t *sorted, size_t n, double q);

/** p50 .. max (us) and the histogram of @p n sorted samples (ns). */
void uc_lat_stats(const uint64_t *sorted, size_t n, uc_lat_t *lat);

#endif
