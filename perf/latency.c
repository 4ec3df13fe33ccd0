/*
 * latency.c - a benchmark result's latency figures, from the samples'
 * statistics (util/latency.c, which `ucache health` shares).
 */
#include "perf/ucperf.h"
#include "util/latency.h"

#include <string.h>

_Static_assert(UCPERF_HIST_BINS == UC_LAT_BINS, "one histogram layout");

void ucperf_latencies(const uint64_t *sorted, size_t n, ucperf_result_t *res)
{
    uc_lat_t lat;

    uc_lat_stats(sorted, n, &lat);
    res->p50_us  = lat.p50_us;
    res->p90_us  = lat.p90_us;
    res->p99_us  = lat.p99_us;
    res->p999_us = lat.p999_us;
    res->max_us  = lat.max_us;
    memcpy(res->hist, lat.hist, sizeof(res->hist));
}
