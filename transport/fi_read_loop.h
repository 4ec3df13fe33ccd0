/*
 * fi_read_loop.h - the baseline of `ucperf raw --transport ofi` (issue
 * [11/11]): the least a program can do to read remote memory through
 * libfabric.  perf/fi_read_loop.c is the program (make bench builds it);
 * the libfabric calls are here, the only place that includes libfabric.
 * Not part of libucache-rdma: it links libfabric itself.
 */
#ifndef UT_FI_READ_LOOP_H
#define UT_FI_READ_LOOP_H

#include <stddef.h>

typedef struct ut_frl_result {
    double gbs;          /* bytes read / wall time, GB/s          */
    double p50_us;       /* median post-to-completion time, us    */
    char   why[160];     /* what failed, when the call returns -1 */
} ut_frl_result_t;

/*
 * Fork a target process that registers a 256 MiB region FI_REMOTE_READ and
 * progresses its queue (the providers here need it); from this one keep
 * @p window fi_reads of @p size bytes in flight over it, @p iters in all,
 * into registered buffers.  No verification, no deadlines, no protocol.
 * Returns 0 and the figures, or -1 and res->why.
 */
int ut_fi_read_loop(const char *prov, size_t size, size_t window, size_t iters,
                    ut_frl_result_t *res);

#endif /* UT_FI_READ_LOOP_H */
