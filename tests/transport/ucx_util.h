/*
 * ucx_util.h - helpers of the UCX backend's suites (ucx_util.c).
 */
#ifndef UCACHE_TESTS_UCX_UTIL_H
#define UCACHE_TESTS_UCX_UTIL_H

#include "tests/common.h"
#include "ucache.h"
#include "transport/ucx_int.h" /* to reach the wire formats for malformed messages */
#include "perf/exporter.h"
#include "tests/transport/ucx_raw.h"
#include "util/time.h"

#define REGION_SIZE   (16u << 20)
#define RPC_ECHO      5
#define RPC_FAIL      6
#define RPC_BULK      UCPERF_RPC_READ
#define RPC_NOREPLY   8
#define RPC_INPROG    9
#define RPC_KEEP      10
#define RPC_HOLD      11
#define RPC_STALL     12

#define fill_pattern ucperf_pattern_fill
/* ucperf_read_post on the key's own path */
#define read_post(_req, _rkey, _m, _off, _buf, _len) \
    ucperf_read_post((_req), (_rkey), ut_rkey_path(_rkey), (_m), (_off), (_buf), (_len))
#define pattern_mismatches ucperf_pattern_mismatches

/* The region RPC_BULK answers from (set by pair_open, the exporter). */
extern ut_mem_t *handler_region;

typedef ucperf_exporter_t exporter_t;
#define exporter_pause ucperf_exporter_pause
#define exporter_stop  ucperf_exporter_stop

/* A connected reader of one exporter. */
typedef struct reader {
    ut_ctx_t  *ctx;
    ut_peer_t *peer;
    ut_rkey_t *rkey;
} reader_t;

typedef struct pair {
    ut_ctx_t  *server, *client;
    ut_mem_t  *mem;
    ut_peer_t *peer;
    ut_rkey_t *rkey;
} pair_t;

/* Wait (bounded) until the server's counter @p f reaches @p want. */
#define WAIT_STAT(_ctx, _f, _want)                                            \
    do {                                                                      \
        ut_stats_t st_;                                                       \
        uint64_t dl_ = uc_deadline(tc_slow(2 * UC_NSEC_PER_SEC));            \
        do {                                                                  \
            ut_stats(_ctx, &st_);                                             \
        } while ((st_._f < (_want)) && (uc_time_ns() < dl_) && !usleep(1000)); \
    } while (0)

uint8_t pattern(uint64_t off, uint64_t seed);
void use_tls(const char *tls);
void emulated_rma(bool on);
uc_config_t test_config(uint64_t timeout_ns);
ut_ctx_t *make_ctx(const uc_config_t *cfg, uc_progress_mode_t mode);
void set_handlers(ut_ctx_t *ctx);
int exporter_start(exporter_t *ex, uint64_t seed);
void reader_open(reader_t *r, ut_ctx_t *ctx, const exporter_t *ex);
void reader_close(reader_t *r);
size_t read_batch(reader_t *r, size_t size, unsigned count, uint64_t seed, ut_path_t expect_path);
void run_read_sizes(const char *tls, int read_path, ut_path_t expect);
void pair_open(pair_t *p, const char *tls, const uc_config_t *ccfg);
void pair_close(pair_t *p);
void run_threads(const char *tls, ut_path_t path);
void rpc_echo(void *arg, ut_rpc_t *rpc, const void *msg, size_t len);
void rpc_bulk(void *arg, ut_rpc_t *rpc, const void *msg, size_t len);
void rpc_fail(void *arg, ut_rpc_t *rpc, const void *msg, size_t len);
void rpc_noreply(void *arg, ut_rpc_t *rpc, const void *msg, size_t len);
void rpc_inprogress(void *arg, ut_rpc_t *rpc, const void *msg, size_t len);
void exporter_setup(ut_ctx_t *ctx, ut_mem_t *mem);

#endif
