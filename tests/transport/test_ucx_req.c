/*
 * test_ucx_req.c - requests (transport/ucx_req.c): bad reads refused, a get
 * where the key has no one-sided path refused (the transport has no
 * active-message read of its own: the fabric's FETCH is it), the cap on
 * requests in flight, verified reads of every size on each path (mapped,
 * gets, and the exporter's read RPC), one-sided reads while the exporter is
 * stopped, and reader threads sharing one context.
 */
#include "tests/transport/ucx_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_bad_reads(void)
{
    pair_t p;
    ut_req_t req;
    ucperf_read_msg_t m;
    ut_stats_t st;
    uint8_t buf[4096];
    uint64_t base;

    pair_open(&p, "tcp", NULL);
    base = p.rkey->base;
    CU_ASSERT_EQUAL(ut_get_post(&req, p.rkey, base, buf, 0), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(req.status, UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(ut_get_post(&req, p.rkey, base, NULL, 10), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(ut_get_post(&req, p.rkey, base - 1, buf, 10), UCACHE_ERR_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(ut_get_post(&req, p.rkey, base + REGION_SIZE - 10, buf, 11),
                    UCACHE_ERR_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(ut_get_post(&req, p.rkey, base, buf, (size_t)REGION_SIZE + 1),
                    UCACHE_ERR_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(ut_get_post(&req, p.rkey, UINT64_MAX - 4, buf, 10),
                    UCACHE_ERR_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(ut_get_post(&req, p.rkey, base + 100, buf, SIZE_MAX),
                    UCACHE_ERR_OUT_OF_RANGE);
    ut_stats(p.client, &st);
    CU_ASSERT_EQUAL(st.bad_input, 7);
    CU_ASSERT_EQUAL(st.reads, 0);
    /* In range, but tcp has no one-sided path: no get, and no read in its
     * place (the caller's protocol reads by request) */
    CU_ASSERT_EQUAL(ut_rkey_path(p.rkey), UT_PATH_AM);
    CU_ASSERT_EQUAL(ut_get_post(&req, p.rkey, base + REGION_SIZE - 1, buf, 1),
                    UCACHE_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(req.status, UCACHE_ERR_UNSUPPORTED);
    /* The last byte of the region is fine, read by request. */
    CU_ASSERT_EQUAL(read_post(&req, p.rkey, &m, REGION_SIZE - 1, buf, 1), UCACHE_OK);
    CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, UC_NSEC_PER_SEC * 5), UCACHE_OK);
    CU_ASSERT_EQUAL(buf[0], pattern(REGION_SIZE - 1, 0x11));
    pair_close(&p);
}

static void test_max_outstanding(void)
{
    uc_config_t cfg = test_config(2 * UC_NSEC_PER_SEC);
    ut_req_t reqs[5];
    ucperf_read_msg_t m[5];
    uint8_t buf[5][4096];
    pair_t p;
    int i;

    cfg.max_outstanding = 4;
    pair_open(&p, "tcp", &cfg);
    for (i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(read_post(&reqs[i], p.rkey, &m[i], i * 4096, buf[i], 4096),
                        UCACHE_OK);
    }
    CU_ASSERT_EQUAL(read_post(&reqs[4], p.rkey, &m[4], 0, buf[4], 4096), UCACHE_ERR_AGAIN);
    CU_ASSERT_EQUAL(ut_wait(p.client, reqs, 4, UC_NSEC_PER_SEC * 5), UCACHE_OK);
    for (i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(pattern_mismatches(buf[i], (uint64_t)i * 4096, 4096, 0x11), 0);
    }
    /* Slots are free again. */
    CU_ASSERT_EQUAL(read_post(&reqs[4], p.rkey, &m[4], 0, buf[4], 4096), UCACHE_OK);
    CU_ASSERT_EQUAL(ut_wait(p.client, &reqs[4], 1, UC_NSEC_PER_SEC * 5), UCACHE_OK);
    pair_close(&p);
}

static void test_shm_read_sizes(void)
{
    run_read_sizes(NULL, UC_READ_PATH_AUTO, UT_PATH_MAPPED);
}

static void test_tcp_read_sizes_am(void)
{
    run_read_sizes("tcp", UC_READ_PATH_AUTO, UT_PATH_AM);
}

static void test_tcp_read_sizes_get(void)
{
    run_read_sizes("tcp", UC_READ_PATH_GET, UT_PATH_GET);
}

/* A get of 4 KiB at the start of @p rkey's region: the path that served it,
 * or UT_PATH_AM where the key's path refuses gets. */
static ut_path_t get_path(pair_t *p, ut_rkey_t *rkey)
{
    uint8_t buf[4096];
    ucache_status_t status;
    ut_req_t r;

    status = ut_get_post(&r, rkey, rkey->base, buf, sizeof(buf));
    if (status == UCACHE_ERR_UNSUPPORTED) {
        return UT_PATH_AM;
    }
    CU_ASSERT_EQUAL(status, UCACHE_OK);
    CU_ASSERT_EQUAL(ut_wait(p->client, &r, 1, 2 * UC_NSEC_PER_SEC), UCACHE_OK);
    CU_ASSERT_EQUAL(pattern_mismatches(buf, sizeof(buf), 0, 0x11), 0);
    return (ut_path_t)r.path;
}

/*
 * The path of a key's reads is decided once, when the key's path is first
 * asked (the fabric does it as it unpacks an owner's key) - not again on
 * each get: what a reconnect learns of the endpoint later (here: its RMA
 * lanes turned native, then not) does not turn active-message reads into
 * gets mid-life, nor gets into active messages.  A key unpacked later
 * decides anew (a path change is a new setup).
 */
static void test_path_fixed(void)
{
    ut_ucx_peer_t *peer;
    ut_rkey_t *k2;
    const void *blob;
    uc_config_t cfg;
    size_t len;
    pair_t p;

    emulated_rma(true);                  /* gets are possible over tcp ... */
    cfg = test_config(2 * UC_NSEC_PER_SEC);
    cfg.read_path = UC_READ_PATH_AUTO;   /* ... and chosen where native */
    pair_open(&p, "tcp", &cfg);
    peer = (ut_ucx_peer_t *)p.peer;
    CU_ASSERT_EQUAL(ut_rkey_path(p.rkey), UT_PATH_AM);    /* tcp: not native */
    CU_ASSERT_EQUAL(get_path(&p, p.rkey), UT_PATH_AM);
    peer->native_get = 1;                /* as a reconnect to RDMA lanes would */
    CU_ASSERT_EQUAL(get_path(&p, p.rkey), UT_PATH_AM);
    CU_ASSERT_EQUAL(ut_rkey_path(p.rkey), UT_PATH_AM);
    CU_ASSERT_EQUAL_FATAL(ut_mem_pack(p.mem, &blob, &len), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(ut_rkey_unpack(p.peer, blob, len, &k2), UCACHE_OK);
    CU_ASSERT_EQUAL(ut_rkey_path(k2), UT_PATH_GET);       /* a new key: decided now */
    peer->native_get = 0;
    CU_ASSERT_EQUAL(get_path(&p, k2), UT_PATH_GET);
    CU_ASSERT_EQUAL(get_path(&p, p.rkey), UT_PATH_AM);
    ut_rkey_destroy(k2);
    pair_close(&p);
    emulated_rma(false);
}

/* Same-host reads are one-sided: they complete while the exporter is stopped. */
static void test_shm_sigstop(void)
{
    uc_config_t cfg = test_config(UC_NSEC_PER_SEC);
    exporter_t ex;
    reader_t r;
    ut_ctx_t *ctx;
    ut_stats_t st;

    use_tls(NULL);
    CU_ASSERT_EQUAL_FATAL(exporter_start(&ex, 0x33), 0);
    ctx = make_ctx(&cfg, UC_PROGRESS_POLL);
    reader_open(&r, ctx, &ex);
    if (!ut_rkey_is_mapped(r.rkey)) {
        TC_SKIP("UCX could not map the exporter's region (no posix/sysv shm)");
    } else {
        CU_ASSERT_EQUAL_FATAL(exporter_pause(&ex), 0);
        CU_ASSERT_EQUAL(read_batch(&r, 1u << 20, 16, ex.seed, UT_PATH_MAPPED), 0);
        CU_ASSERT_EQUAL(read_batch(&r, 4096, 512, ex.seed, UT_PATH_MAPPED), 0);
        ut_stats(ctx, &st);
        CU_ASSERT_EQUAL(st.mapped_reads, 528);
        CU_ASSERT_EQUAL(kill(ex.pid, SIGCONT), 0);
    }
    reader_close(&r);
    ut_ctx_destroy(ctx);
    CU_ASSERT_EQUAL(exporter_stop(&ex, 0), 0);
}

static void test_shm_threads(void)
{
    run_threads(NULL, UT_PATH_MAPPED);
}

static void test_tcp_threads(void)
{
    run_threads("tcp", UT_PATH_AM);
}

const tc_test_t ucx_req_tests[] = {
    {"bad_reads", test_bad_reads},
    {"max_outstanding", test_max_outstanding},
    {"read_sizes_mapped", test_shm_read_sizes},
    {"read_sizes_am", test_tcp_read_sizes_am},
    {"read_sizes_get", test_tcp_read_sizes_get},
    {"path_decided_once", test_path_fixed},
    {"one_sided_under_sigstop", test_shm_sigstop},
    {"reader_threads_mapped", test_shm_threads},
    {"reader_threads_am", test_tcp_threads},
    {NULL, NULL}
};
