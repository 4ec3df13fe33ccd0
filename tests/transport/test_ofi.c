/*
 * test_ofi.c - the libfabric backend (transport/ofi*.c, UCACHE_TRANSPORT=
 * ofi) over the two providers this machine has, tcp;ofi_rxm and shm, each
 * test run once per provider: its blobs (every malformed one refused, a
 * UCX blob too), RPCs with metadata and bulk replies, reads checked byte
 * by byte against an exporter process, a remote write into an exported
 * region refused, malformed and unsigned requests, deferred replies and
 * keepalives, the listener, UCACHE_MAX_EPS (idle peers closed for new
 * ones, busy ones kept), and owners killed and frozen during reads
 * (every stall bounded by its deadline).  Where the assertion rests on the
 * provider (reads while the owner is stopped), the test says what the
 * provider does.
 */
#include "tests/common.h"
#include "transport/ofi_int.h"
#include "perf/exporter.h"

#include <inttypes.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define RPC_ECHO    5
#define RPC_FAIL    6
#define RPC_BULK    UCPERF_RPC_READ
#define RPC_NOREPLY 8
#define RPC_DEFER   9
#define REGION      (8u << 20)

static const char *const providers[] = { "tcp;ofi_rxm", "shm" };
#define NPROV (sizeof(providers) / sizeof(providers[0]))

static const char *cur_prov;

static void use_provider(const char *prov)
{
    cur_prov = prov;
    setenv("UCACHE_TRANSPORT", "ofi", 1);
    setenv("UCACHE_OFI_PROVIDER", prov, 1);
}

static ut_config_t ofi_config(uint64_t timeout_ns, int read_path)
{
    ut_config_t tc;
    uc_config_t cfg;

    uc_config_load(&cfg);
    cfg.timeout_ns    = timeout_ns;
    cfg.peer_retry_ns = 200 * UC_NSEC_PER_MSEC;
    cfg.read_path     = read_path;
    ut_config_from(&tc, &cfg);
    return tc;
}

static ut_ctx_t *ofi_ctx(const ut_config_t *tc, uc_progress_mode_t mode)
{
    ut_params_t p = { .field_mask = UT_PARAM_FIELD_CONFIG | UT_PARAM_FIELD_PROGRESS |
                                    UT_PARAM_FIELD_SERVE,
                      .config = tc, .progress = mode, .serve = (mode == UC_PROGRESS_THREAD) };
    ut_ctx_t *ctx = NULL;

    CU_ASSERT_EQUAL_FATAL(ut_ctx_create("ofi", &p, &ctx), UCACHE_OK);
    return ctx;
}

/* ------------------------------------------------------------------------ */
/* Handlers of the in-process servers                                        */
/* ------------------------------------------------------------------------ */

static ut_mem_t *bulk_region;
static ut_rpc_t *deferred;

static void rpc_echo(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    (void)arg;
    ut_rpc_reply(rpc, UCACHE_OK, msg, (len < 16) ? len : 16, msg, len, 0);
}

static void rpc_fail(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    (void)arg; (void)msg; (void)len;
    ut_rpc_reply(rpc, UCACHE_ERR_NOT_FOUND, NULL, 0, NULL, 0, 0);
}

static void rpc_bulk(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    (void)arg;
    ucperf_read_reply(rpc, bulk_region, msg, len);
}

static void rpc_noreply(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    (void)arg; (void)rpc; (void)msg; (void)len; /* a buggy handler */
}

static void rpc_defer(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    ut_rpc_t *d = NULL;

    (void)arg; (void)msg; (void)len;
    CU_ASSERT_EQUAL(ut_rpc_defer(rpc, &d), UCACHE_OK);
    __atomic_store_n(&deferred, d, __ATOMIC_RELEASE); /* the test thread answers it */
}

static void set_handlers(ut_ctx_t *ctx)
{
    CU_ASSERT_EQUAL(ut_rpc_handler_set(ctx, RPC_ECHO, rpc_echo, NULL), UCACHE_OK);
    CU_ASSERT_EQUAL(ut_rpc_handler_set(ctx, RPC_FAIL, rpc_fail, NULL), UCACHE_OK);
    CU_ASSERT_EQUAL(ut_rpc_handler_set(ctx, RPC_BULK, rpc_bulk, NULL), UCACHE_OK);
    CU_ASSERT_EQUAL(ut_rpc_handler_set(ctx, RPC_NOREPLY, rpc_noreply, NULL), UCACHE_OK);
    CU_ASSERT_EQUAL(ut_rpc_handler_set(ctx, RPC_DEFER, rpc_defer, NULL), UCACHE_OK);
}

/* A server (its progress thread) and a client in this process. */
typedef struct pair {
    ut_ctx_t  *server, *client;
    ut_mem_t  *mem;
    ut_peer_t *peer;
    ut_rkey_t *rkey;
} pair_t;

static void pair_open(pair_t *p, uint64_t timeout_ns, int read_path)
{
    ut_config_t tc = ofi_config(timeout_ns, read_path);
    const void *addr, *rkey;
    size_t addr_len, rkey_len;

    memset(p, 0, sizeof(*p));
    p->server = ofi_ctx(&tc, UC_PROGRESS_THREAD);
    p->client = ofi_ctx(&tc, UC_PROGRESS_POLL);
    CU_ASSERT_EQUAL_FATAL(ut_mem_export(p->server, REGION, &p->mem), UCACHE_OK);
    ucperf_pattern_fill(p->mem->base, REGION, 0x11);
    bulk_region = p->mem;
    set_handlers(p->server);
    ut_progress(p->server);
    ut_address(p->server, &addr, &addr_len);
    ut_mem_pack(p->mem, &rkey, &rkey_len);
    CU_ASSERT_EQUAL_FATAL(ut_peer_create(p->client, addr, addr_len, &p->peer), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(ut_rkey_unpack(p->peer, rkey, rkey_len, &p->rkey), UCACHE_OK);
}

static void pair_close(pair_t *p)
{
    ut_rkey_destroy(p->rkey);
    ut_peer_destroy(p->peer);
    ut_ctx_destroy(p->client);
    ut_mem_destroy(p->mem);
    ut_ctx_destroy(p->server);
    bulk_region = NULL;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void test_lifecycle(void)
{
    ut_config_t tc = ofi_config(UC_NSEC_PER_SEC, UC_READ_PATH_AUTO);
    ut_ctx_t *ctx[NPROV], *ucx = NULL, *bad = NULL;
    ut_params_t p = { .field_mask = UT_PARAM_FIELD_CONFIG, .config = &tc };
    const void *addr[NPROV], *uaddr;
    size_t len[NPROV], ulen;
    ut_peer_t *peer = NULL;
    ut_stats_t st;
    unsigned i;

    for (i = 0; i < NPROV; i++) {
        use_provider(providers[i]);
        tc = ofi_config(UC_NSEC_PER_SEC, UC_READ_PATH_AUTO);
        ctx[i] = ofi_ctx(&tc, UC_PROGRESS_POLL);
        CU_ASSERT_EQUAL(ut_address(ctx[i], &addr[i], &len[i]), UCACHE_OK);
        CU_ASSERT(len[i] > sizeof(ut_blob_hdr) + sizeof(ut_addr_body));
        ut_stats(ctx[i], &st);
        CU_ASSERT_EQUAL(st.reads + st.eps_open + st.bad_input, 0);
    }
    /* a provider libfabric does not have */
    snprintf(tc.ofi_provider, sizeof(tc.ofi_provider), "verbs-magic");
    CU_ASSERT_EQUAL(ut_ctx_create("ofi", &p, &bad), UCACHE_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(bad);
    /* the other provider's address, and a UCX one, are refused */
    CU_ASSERT_EQUAL(ut_peer_create(ctx[0], addr[1], len[1], &peer), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(ut_peer_create(ctx[1], addr[0], len[0], &peer), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL_FATAL(ut_ctx_create("ucx", NULL, &ucx), UCACHE_OK);
    ut_address(ucx, &uaddr, &ulen);
    CU_ASSERT_EQUAL(ut_peer_create(ctx[0], uaddr, ulen, &peer), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(ut_peer_create(ucx, addr[0], len[0], &peer), UCACHE_ERR_INVALID);
    CU_ASSERT_PTR_NULL(peer);
    ut_stats(ctx[0], &st);
    CU_ASSERT_EQUAL(st.bad_input, 2);
    ut_ctx_destroy(ucx);
    for (i = 0; i < NPROV; i++) {
        ut_ctx_destroy(ctx[i]);
    }
}

static void test_bad_blobs(void)
{
    unsigned i;

    for (i = 0; i < NPROV; i++) {
        ut_config_t tc;
        ut_ctx_t *ctx, *other;
        const void *addr, *rkey, *orkey;
        size_t addr_len, rkey_len, orkey_len;
        ut_peer_t *peer = NULL;
        ut_rkey_t *rk = NULL;
        ut_mem_t *mem, *omem, *lmem;
        uint8_t copy[4096];
        static uint8_t local[65536];
        ut_rkey_body body;
        const void *b;
        size_t bl;
        ut_stats_t st;

        use_provider(providers[i]);
        tc    = ofi_config(UC_NSEC_PER_SEC, UC_READ_PATH_AUTO);
        ctx   = ofi_ctx(&tc, UC_PROGRESS_POLL);
        other = ofi_ctx(&tc, UC_PROGRESS_POLL);
        CU_ASSERT_EQUAL_FATAL(ut_mem_export(ctx, 1u << 20, &mem), UCACHE_OK);
        CU_ASSERT_EQUAL_FATAL(ut_mem_export(other, 1u << 20, &omem), UCACHE_OK);
        ut_address(ctx, &addr, &addr_len);
        ut_mem_pack(mem, &rkey, &rkey_len);
        ut_mem_pack(omem, &orkey, &orkey_len);

        CU_ASSERT_EQUAL(ut_peer_create(ctx, addr, addr_len - 1, &peer), UCACHE_ERR_INVALID);
        CU_ASSERT_EQUAL(ut_peer_create(ctx, addr, 0, &peer), UCACHE_ERR_INVALID);
        CU_ASSERT_EQUAL(ut_peer_create(ctx, NULL, addr_len, &peer), UCACHE_ERR_INVALID);
        memcpy(copy, addr, addr_len);
        copy[addr_len - 3] ^= 0x40;
        CU_ASSERT_EQUAL(ut_peer_create(ctx, copy, addr_len, &peer), UCACHE_ERR_CORRUPT);
        CU_ASSERT_EQUAL(ut_peer_create(ctx, rkey, rkey_len, &peer), UCACHE_ERR_INVALID);
        /* a name longer than its field, resealed: refused */
        memcpy(copy, addr, addr_len);
        {
            ut_ofi_name name;
            size_t off = addr_len - sizeof(name);

            memcpy(&name, copy + off, sizeof(name));
            name.len = UT_OFI_NAME_MAX + 1;
            memcpy(copy + off, &name, sizeof(name));
            ut_blob_seal(copy, addr_len);
            CU_ASSERT_EQUAL(ut_peer_create(ctx, copy, addr_len, &peer), UCACHE_ERR_INVALID);
        }
        CU_ASSERT_PTR_NULL(peer);

        CU_ASSERT_EQUAL_FATAL(ut_peer_create(ctx, addr, addr_len, &peer), UCACHE_OK);
        CU_ASSERT_EQUAL(ut_rkey_unpack(peer, rkey, rkey_len - 1, &rk), UCACHE_ERR_INVALID);
        memcpy(copy, rkey, rkey_len);
        copy[rkey_len - 1] ^= 0x01;
        CU_ASSERT_EQUAL(ut_rkey_unpack(peer, copy, rkey_len, &rk), UCACHE_ERR_CORRUPT);
        CU_ASSERT_EQUAL(ut_rkey_unpack(peer, orkey, orkey_len, &rk), UCACHE_ERR_STALE);
        CU_ASSERT_EQUAL(ut_rkey_unpack(peer, addr, addr_len, &rk), UCACHE_ERR_INVALID);
        memcpy(copy, rkey, rkey_len);
        memcpy(&body, copy + sizeof(ut_blob_hdr), sizeof(body));
        body.base = UINT64_MAX - 4095;
        memcpy(copy + sizeof(ut_blob_hdr), &body, sizeof(body));
        ut_blob_seal(copy, rkey_len);
        CU_ASSERT_EQUAL(ut_rkey_unpack(peer, copy, rkey_len, &rk), UCACHE_ERR_INVALID);
        CU_ASSERT_PTR_NULL(rk);
        CU_ASSERT_EQUAL_FATAL(ut_rkey_unpack(peer, rkey, rkey_len, &rk), UCACHE_OK);
        CU_ASSERT_EQUAL(rk->len, 1u << 20);
        ut_rkey_destroy(rk);
        ut_stats(ctx, &st);
        CU_ASSERT_EQUAL(st.bad_input, 11);

        CU_ASSERT_EQUAL_FATAL(ut_mem_register(ctx, local, sizeof(local), 0, &lmem), UCACHE_OK);
        CU_ASSERT_EQUAL(ut_mem_pack(lmem, &b, &bl), UCACHE_ERR_INVALID);
        ut_mem_destroy(lmem);
        CU_ASSERT_EQUAL(ut_mem_register(ctx, NULL, 100, 0, &lmem), UCACHE_ERR_INVALID);
        CU_ASSERT_EQUAL(ut_mem_register(ctx, local, 10, 1u << 5, &lmem), UCACHE_ERR_INVALID);
        CU_ASSERT_EQUAL(ut_mem_export(ctx, 0, &lmem), UCACHE_ERR_INVALID);
        ut_peer_destroy(peer);
        ut_mem_destroy(mem);
        ut_mem_destroy(omem);
        ut_ctx_destroy(ctx);
        ut_ctx_destroy(other);
    }
}

static void test_rpc(void)
{
    unsigned i;

    for (i = 0; i < NPROV; i++) {
        static uint8_t big[2u << 20];
        ucperf_read_msg_t m;
        char meta[32], data[64];
        ut_req_t req, reqs[8];
        ut_stats_t st;
        unsigned k;
        pair_t p;

        use_provider(providers[i]);
        pair_open(&p, 2 * UC_NSEC_PER_SEC, UC_READ_PATH_AUTO);
        /* echo: metadata and data back */
        CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, RPC_ECHO, "hello, fabric", 14, meta,
                                    sizeof(meta), data, sizeof(data)), UCACHE_OK);
        CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, tc_slow(5 * UC_NSEC_PER_SEC)), UCACHE_OK);
        CU_ASSERT_EQUAL(req.length, 14);
        CU_ASSERT_EQUAL(req.meta_length, 14);
        CU_ASSERT_STRING_EQUAL(data, "hello, fabric");
        CU_ASSERT_STRING_EQUAL(meta, "hello, fabric");
        CU_ASSERT_EQUAL(ut_peer_state(p.peer), UT_PEER_CONNECTED);
        /* a status, an unknown handler, a handler that never answers */
        ut_rpc_post(&req, p.peer, RPC_FAIL, "x", 1, NULL, 0, NULL, 0);
        CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, tc_slow(5 * UC_NSEC_PER_SEC)),
                        UCACHE_ERR_NOT_FOUND);
        ut_rpc_post(&req, p.peer, 33, "x", 1, NULL, 0, NULL, 0);
        CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, tc_slow(5 * UC_NSEC_PER_SEC)),
                        UCACHE_ERR_UNSUPPORTED);
        ut_rpc_post(&req, p.peer, RPC_NOREPLY, "x", 1, NULL, 0, NULL, 0);
        CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, tc_slow(5 * UC_NSEC_PER_SEC)),
                        UCACHE_ERR_TRANSPORT);
        /* bulk replies, 8 in flight, each checked byte by byte */
        for (k = 0; k < 8; k++) {
            ucperf_read_msg_t *mk = malloc(sizeof(*mk));

            mk->req[0] = (uint64_t)k * 777777;
            mk->req[1] = 1u << 18;
            CU_ASSERT_EQUAL(ut_rpc_post(&reqs[k], p.peer, RPC_BULK, mk->req, sizeof(mk->req),
                                        &mk->meta, sizeof(mk->meta),
                                        big + (size_t)k * (1u << 18), 1u << 18), UCACHE_OK);
            reqs[k].priv.meta = mk; /* freed below (the request is done then) */
        }
        CU_ASSERT_EQUAL(ut_wait(p.client, reqs, 8, tc_slow(10 * UC_NSEC_PER_SEC)), UCACHE_OK);
        for (k = 0; k < 8; k++) {
            CU_ASSERT_EQUAL(reqs[k].length, 1u << 18);
            CU_ASSERT_EQUAL(ucperf_pattern_mismatches(big + (size_t)k * (1u << 18),
                                                      (uint64_t)k * 777777, 1u << 18, 0x11), 0);
            free(reqs[k].priv.meta);
        }
        /* a reply larger than the buffer: truncated, refused */
        m.req[0] = 0;
        m.req[1] = 1u << 20;
        ut_rpc_post(&req, p.peer, RPC_BULK, m.req, sizeof(m.req), &m.meta, sizeof(m.meta), big,
                    4096);
        CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, tc_slow(5 * UC_NSEC_PER_SEC)),
                        UCACHE_ERR_MSG_TRUNCATED);
        /* a request over UCACHE_RPC_MAX never leaves */
        CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, RPC_ECHO, big, (1u << 20) + 1, NULL, 0, NULL,
                                    0), UCACHE_ERR_INVALID);
        /* still fine */
        CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, RPC_ECHO, "again", 6, meta, sizeof(meta),
                                    data, sizeof(data)), UCACHE_OK);
        CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, tc_slow(5 * UC_NSEC_PER_SEC)), UCACHE_OK);
        ut_stats(p.client, &st);
        CU_ASSERT_EQUAL(st.timeouts, 0);
        CU_ASSERT_EQUAL(st.peer_failures, 0);
        CU_ASSERT_EQUAL(st.am_reads, 10); /* 8 bulk, 2 echoes with data */
        pair_close(&p);
    }
}

static void test_reads(void)
{
    static const size_t sizes[] = { 1, 100, 4096, 65536, 1u << 20, 3u << 20 };
    unsigned i, j, k;

    for (i = 0; i < NPROV; i++) {
        for (j = 0; j < 2; j++) { /* the provider's own path; then forced gets */
            int rp = (j == 0) ? UC_READ_PATH_AUTO : UC_READ_PATH_GET;
            ut_config_t tc;
            ucperf_exporter_t ex;
            ucperf_read_msg_t m[4];
            ut_req_t reqs[4];
            ut_ctx_t *ctx;
            ut_peer_t *peer;
            ut_rkey_t *rkey;
            ut_path_t path, want;
            uint8_t *buf;
            ut_stats_t st;
            unsigned n = 0;

            use_provider(providers[i]);
            if (ucperf_exporter_start(&ex, REGION, 0x5eed + i, NULL) != UCACHE_OK) {
                CU_FAIL("exporter");
                continue;
            }
            tc  = ofi_config(5 * UC_NSEC_PER_SEC, rp);
            ctx = ofi_ctx(&tc, UC_PROGRESS_POLL);
            CU_ASSERT_EQUAL_FATAL(ut_peer_create(ctx, ex.addr, ex.addr_len, &peer), UCACHE_OK);
            CU_ASSERT_EQUAL_FATAL(ut_rkey_unpack(peer, ex.rkey, ex.rkey_len, &rkey), UCACHE_OK);
            path = ut_rkey_path(rkey);
            /* shm reads by cross-memory attach: one-sided; tcp's need the
             * owner's progress, so by RPC unless gets are forced */
            want = ((j == 1) || (strcmp(providers[i], "shm") == 0)) ? UT_PATH_GET : UT_PATH_AM;
            CU_ASSERT_EQUAL(path, want);
            buf = malloc(4 * (3u << 20));
            for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
                uint64_t off = (REGION - sizes[k]) / 7 * (k + 1) % (REGION - sizes[k]);
                unsigned q;

                for (q = 0; q < 4; q++) {
                    CU_ASSERT_EQUAL(ucperf_read_post(&reqs[q], rkey, path, &m[q], off + q,
                                                     buf + (size_t)q * (3u << 20), sizes[k]),
                                    UCACHE_OK);
                }
                CU_ASSERT_EQUAL(ut_wait(ctx, reqs, 4, tc_slow(10 * UC_NSEC_PER_SEC)), UCACHE_OK);
                for (q = 0; q < 4; q++) {
                    CU_ASSERT_EQUAL(reqs[q].length, sizes[k]);
                    CU_ASSERT_EQUAL(ucperf_pattern_mismatches(buf + (size_t)q * (3u << 20),
                                                              off + q, sizes[k], ex.seed), 0);
                    n++;
                }
            }
            /* out of the region: refused here, nothing sent */
            if (path == UT_PATH_GET) {
                CU_ASSERT_EQUAL(ut_get_post(&reqs[0], rkey, rkey->base + REGION - 10, buf, 11),
                                UCACHE_ERR_OUT_OF_RANGE);
            }
            ut_stats(ctx, &st);
            CU_ASSERT_EQUAL((path == UT_PATH_GET) ? st.get_reads : st.am_reads, n);
            CU_ASSERT_EQUAL(st.timeouts + st.peer_failures, 0);
            free(buf);
            ut_rkey_destroy(rkey);
            ut_peer_destroy(peer);
            ut_ctx_destroy(ctx);
            CU_ASSERT_EQUAL(ucperf_exporter_stop(&ex, 0), 0);
        }
    }
}

/* Reads of an owner killed, then frozen: each ends within its deadline
 * (plus slack), with an error; a frozen owner that resumes is read again
 * once its back-off has passed. */
static void read_faults(int sig, int read_path)
{
    unsigned i, q;

    for (i = 0; i < NPROV; i++) {
        ut_config_t tc;
        ucperf_exporter_t ex;
        ucperf_read_msg_t m[8];
        ut_req_t reqs[8];
        ut_ctx_t *ctx;
        ut_peer_t *peer;
        ut_rkey_t *rkey;
        ut_path_t path;
        uint8_t *buf;
        uint64_t t0, took;
        ucache_status_t st;
        ut_stats_t s;

        use_provider(providers[i]);
        if (ucperf_exporter_start(&ex, REGION, 0x77 + i, NULL) != UCACHE_OK) {
            CU_FAIL("exporter");
            continue;
        }
        tc  = ofi_config(tc_slow(UC_NSEC_PER_SEC), read_path);
        ctx = ofi_ctx(&tc, UC_PROGRESS_POLL);
        CU_ASSERT_EQUAL_FATAL(ut_peer_create(ctx, ex.addr, ex.addr_len, &peer), UCACHE_OK);
        CU_ASSERT_EQUAL_FATAL(ut_rkey_unpack(peer, ex.rkey, ex.rkey_len, &rkey), UCACHE_OK);
        path = ut_rkey_path(rkey);
        buf  = malloc(8u << 20);
        CU_ASSERT_EQUAL(ucperf_read_post(&reqs[0], rkey, path, &m[0], 4096, buf, 1u << 20),
                        UCACHE_OK);
        CU_ASSERT_EQUAL(ut_wait(ctx, reqs, 1, tc_slow(5 * UC_NSEC_PER_SEC)), UCACHE_OK);
        /* 8 reads of 1 MiB posted, then the owner killed or frozen under them */
        for (q = 0; q < 8; q++) {
            ucperf_read_post(&reqs[q], rkey, path, &m[q], (uint64_t)q << 20,
                             buf + ((size_t)q << 20), 1u << 20);
        }
        t0 = uc_time_ns();
        if (sig == SIGKILL) {
            ucperf_exporter_stop(&ex, SIGKILL);
        } else {
            CU_ASSERT_EQUAL(ucperf_exporter_pause(&ex), 0);
        }
        ut_wait(ctx, reqs, 8, tc_slow(10 * UC_NSEC_PER_SEC));
        for (q = 0; q < 8; q++) {
            if (reqs[q].status == UCACHE_INPROGRESS) {
                fprintf(stderr, "%s: read %u still in progress %.1f s after the owner %s\n",
                        providers[i], q, (double)(uc_time_ns() - t0) / 1e9,
                        (sig == SIGKILL) ? "was killed" : "froze");
            }
            CU_ASSERT_NOT_EQUAL_FATAL(reqs[q].status, UCACHE_INPROGRESS);
            /* the ones that ended before it died are whole */
            if (reqs[q].status == UCACHE_OK) {
                CU_ASSERT_EQUAL(ucperf_pattern_mismatches(buf + ((size_t)q << 20),
                                                          (uint64_t)q << 20, 1u << 20,
                                                          ex.seed), 0);
            }
        }
        /* a read posted now fails at once or within its deadline - but
         * shm's gets are the reader's own copies out of the owner's memory
         * (cross-memory attach): a stopped owner is read all the same */
        st = ucperf_read_post(&reqs[0], rkey, path, &m[0], 0, buf, 4096);
        if (st == UCACHE_OK) {
            st = ut_wait(ctx, reqs, 1, tc_slow(10 * UC_NSEC_PER_SEC));
        }
        took = uc_time_ns() - t0;
        CU_ASSERT_NOT_EQUAL(st, UCACHE_INPROGRESS);
        CU_ASSERT(took < tc_slow(4 * UC_NSEC_PER_SEC));
        ut_stats(ctx, &s);
        if ((sig == SIGSTOP) && (path == UT_PATH_GET) && (strcmp(providers[i], "shm") == 0)) {
            CU_ASSERT_EQUAL(st, UCACHE_OK);
            CU_ASSERT_EQUAL(ucperf_pattern_mismatches(buf, 0, 4096, ex.seed), 0);
            for (q = 0; q < 8; q++) {
                CU_ASSERT_EQUAL(reqs[q].status, UCACHE_OK);
            }
            CU_ASSERT_EQUAL(s.peer_failures, 0);
        } else {
            CU_ASSERT_NOT_EQUAL(st, UCACHE_OK);
            CU_ASSERT(s.peer_failures >= 1);
        }
        if (sig == SIGSTOP) { /* it comes back: read again after the back-off */
            kill(ex.pid, SIGCONT);
            t0 = uc_time_ns();
            do {
                usleep(50000);
                st = ucperf_read_post(&reqs[0], rkey, path, &m[0], 12345, buf, 65536);
                if (st == UCACHE_OK) {
                    st = ut_wait(ctx, reqs, 1, tc_slow(5 * UC_NSEC_PER_SEC));
                }
            } while ((st != UCACHE_OK) && (uc_time_ns() - t0 < tc_slow(10 * UC_NSEC_PER_SEC)));
            CU_ASSERT_EQUAL(st, UCACHE_OK);
            CU_ASSERT_EQUAL(ucperf_pattern_mismatches(buf, 12345, 65536, ex.seed), 0);
            ucperf_exporter_stop(&ex, 0);
        }
        free(buf);
        ut_rkey_destroy(rkey);
        ut_peer_destroy(peer);
        ut_ctx_destroy(ctx);
    }
}

static void test_owner_killed(void)
{
    read_faults(SIGKILL, UC_READ_PATH_AUTO);
}

static void test_owner_frozen(void)
{
    read_faults(SIGSTOP, UC_READ_PATH_AUTO);
}

static void test_owner_frozen_gets(void)
{
    read_faults(SIGSTOP, UC_READ_PATH_GET); /* reads into bounce buffers */
}

/* Post a raw libfabric operation from @p ctx's endpoint and progress until
 * it completes or @p ns passed: its error (0: none), or -1 if it never did. */
static int raw_wait(ut_ctx_t *ctx, ut_ofi_op_t *op, uint64_t ns)
{
    uint64_t t0 = uc_time_ns();

    while (!(op->slot & UT_OFI_OP_DONE) && (uc_time_ns() - t0 < ns)) {
        ut_progress(ctx);
        usleep(1000);
    }
    return (op->slot & UT_OFI_OP_DONE) ? (int)(op->slot & ~UT_OFI_OP_DONE) : -1;
}

/* A peer writes into an exported region through libfabric: refused (the
 * region is registered FI_REMOTE_READ only), its bytes unchanged. */
static void test_remote_write_refused(void)
{
    unsigned i;

    for (i = 0; i < NPROV; i++) {
        ut_ofi_ctx_t *cc;
        ut_ofi_peer_t *pp;
        ut_ofi_rkey_t *rk;
        static uint64_t junk[512];
        static ut_ofi_op_t op; /* libfabric may complete it late, or never */
        uint8_t before[4096];
        ucperf_read_msg_t m;
        ut_req_t req;
        pair_t p;
        int ret, err;

        use_provider(providers[i]);
        pair_open(&p, 2 * UC_NSEC_PER_SEC, UC_READ_PATH_GET);
        cc = ut_ofi_ctx_of(p.client);
        pp = (ut_ofi_peer_t *)p.peer;
        rk = (ut_ofi_rkey_t *)p.rkey;
        /* a read first: the peer is connected, the key good */
        CU_ASSERT_EQUAL(ucperf_read_post(&req, p.rkey, ut_rkey_path(p.rkey), &m, 8192, before,
                                         sizeof(before)), UCACHE_OK);
        CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, tc_slow(5 * UC_NSEC_PER_SEC)), UCACHE_OK);
        CU_ASSERT_EQUAL(memcmp(before, (uint8_t *)p.mem->base + 8192, sizeof(before)), 0);
        memset(junk, 0xee, sizeof(junk));
        memset(&op, 0, sizeof(op));
        op.kind = UT_OFI_OP_FOREIGN;
        pthread_mutex_lock(&cc->lock);
        ret = (int)fi_write(cc->main.ep, junk, sizeof(junk), NULL, pp->fa,
                            rk->virt ? p.rkey->base + 8192 : 8192, rk->key, &op);
        pthread_mutex_unlock(&cc->lock);
        /* (1 s, not scaled for the sanitizers: shm never completes it,
         * and only the bytes are asserted) */
        err = (ret == 0) ? raw_wait(p.client, &op, UC_NSEC_PER_SEC) : -ret;
        /* whether the writer hears of it is the provider's affair (shm:
         * an error; tcp;ofi_rxm completes a write once sent); the bytes
         * are what count: the owner's mapping that libfabric writes to is
         * read-only, so nothing changed */
        if (err != 0) {
            printf("(%s: the write %s) ", providers[i],
                   (err == -1) ? "never completed" : ut_ofi_strerror(err));
        }
        usleep(100000);
        CU_ASSERT_EQUAL(memcmp(before, (uint8_t *)p.mem->base + 8192, sizeof(before)), 0);
        CU_ASSERT_EQUAL(ucperf_pattern_mismatches(p.mem->base, 0, REGION, 0x11), 0);
        /* and the owner still serves (through a new connection if the
         * provider dropped the writer's) */
        {
            char meta[16], data[16];
            uint64_t t0 = uc_time_ns();

            do {
                ucache_status_t st = ut_rpc_post(&req, p.peer, RPC_ECHO, "ok", 3, meta,
                                                 sizeof(meta), data, sizeof(data));
                if ((st == UCACHE_OK) &&
                    (ut_wait(p.client, &req, 1, tc_slow(5 * UC_NSEC_PER_SEC)) == UCACHE_OK)) {
                    break;
                }
                usleep(50000);
            } while (uc_time_ns() - t0 < tc_slow(10 * UC_NSEC_PER_SEC));
            CU_ASSERT_EQUAL(req.status, UCACHE_OK);
        }
        pair_close(&p);
    }
}

/* Malformed, unsigned and unknown requests: each refused and counted; the
 * owner answers the next good one. */
static void test_malformed_requests(void)
{
    unsigned i, k;

    for (i = 0; i < NPROV; i++) {
        ut_am_req_hdr hdr;
        uint8_t msg[256];
        static ut_ofi_op_t op;
        ut_stats_t before, after;
        char meta[16], data[16];
        ut_ofi_ctx_t *cc;
        ut_ofi_peer_t *pp;
        ut_req_t req;
        pair_t p;
        bool keyed;
        struct { size_t len; uint32_t magic; } cases[] = {
            { 3, UT_AM_MAGIC },                             /* shorter than a header  */
            { sizeof(hdr) + 8, 0xdeadbeef },                /* not our magic          */
            { sizeof(hdr) + 8 + 16, UT_AM_MAGIC },          /* a signature that fails */
            { sizeof(hdr) + 2, UT_AM_MAGIC },               /* no room field          */
        };

        use_provider(providers[i]);
        pair_open(&p, 2 * UC_NSEC_PER_SEC, UC_READ_PATH_AUTO);
        cc = ut_ofi_ctx_of(p.client);
        pp = (ut_ofi_peer_t *)p.peer;
        CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, RPC_ECHO, "a", 2, meta, sizeof(meta), data,
                                    sizeof(data)), UCACHE_OK);
        CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, tc_slow(5 * UC_NSEC_PER_SEC)), UCACHE_OK);
        ut_stats(p.server, &before);
        for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
            memset(msg, 0x5a, sizeof(msg));
            memset(&hdr, 0, sizeof(hdr));
            hdr.magic = cases[k].magic;
            hdr.op    = RPC_ECHO;
            hdr.from  = cc->uuid;
            hdr.id    = 42;
            memcpy(msg, &hdr, (cases[k].len < sizeof(hdr)) ? cases[k].len : sizeof(hdr));
            memset(&op, 0, sizeof(op));
            op.kind = UT_OFI_OP_FOREIGN;
            pthread_mutex_lock(&cc->lock);
            CU_ASSERT_EQUAL(fi_send(cc->main.ep, msg, cases[k].len, NULL, pp->fa, &op), 0);
            pthread_mutex_unlock(&cc->lock);
            CU_ASSERT_EQUAL(raw_wait(p.client, &op, tc_slow(5 * UC_NSEC_PER_SEC)), 0);
        }
        /* the good one after them is answered */
        CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, RPC_ECHO, "b", 2, meta, sizeof(meta), data,
                                    sizeof(data)), UCACHE_OK);
        CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, tc_slow(5 * UC_NSEC_PER_SEC)), UCACHE_OK);
        CU_ASSERT_STRING_EQUAL(data, "b");
        ut_stats(p.server, &after);
        /* 3 malformed; 1 refused by its signature where the owner holds a
         * key (tests/run.sh gives every suite one), else served */
        keyed = (getenv("UCACHE_CLUSTER_KEY_FILE") != NULL);
        CU_ASSERT_EQUAL(after.bad_input - before.bad_input, 3);
        CU_ASSERT_EQUAL(after.auth_failures - before.auth_failures, keyed ? 1 : 0);
        CU_ASSERT_EQUAL(after.rpcs_served - before.rpcs_served, keyed ? 1 : 2);
        pair_close(&p);
    }
}

/* A requester without the cluster key is refused with UCACHE_ERR_AUTH. */
static void test_unsigned_refused(void)
{
    unsigned i;

    if (getenv("UCACHE_CLUSTER_KEY_FILE") == NULL) {
        TC_SKIP("no UCACHE_CLUSTER_KEY_FILE: run through tests/run.sh");
        return;
    }
    for (i = 0; i < NPROV; i++) {
        ut_config_t tc;
        ut_ctx_t *server, *client;
        const void *addr;
        size_t addr_len;
        ut_peer_t *peer;
        char meta[16], data[16];
        ut_req_t req;
        ut_stats_t st;

        use_provider(providers[i]);
        tc = ofi_config(tc_slow(UC_NSEC_PER_SEC), UC_READ_PATH_AUTO);
        server = ofi_ctx(&tc, UC_PROGRESS_THREAD);
        set_handlers(server);
        tc.cluster_key_file[0] = tc.admin_key_file[0] = '\0';
        client = ofi_ctx(&tc, UC_PROGRESS_POLL);
        ut_address(server, &addr, &addr_len);
        CU_ASSERT_EQUAL_FATAL(ut_peer_create(client, addr, addr_len, &peer), UCACHE_OK);
        CU_ASSERT_EQUAL(ut_rpc_post(&req, peer, RPC_ECHO, "a", 2, meta, sizeof(meta), data,
                                    sizeof(data)), UCACHE_ERR_AUTH);
        ut_stats(server, &st);
        CU_ASSERT(st.auth_failures >= 1);
        CU_ASSERT_EQUAL(st.rpcs_served, 0);
        ut_peer_destroy(peer);
        ut_ctx_destroy(client);
        ut_ctx_destroy(server);
    }
}

/* A reply deferred by the handler and sent later from another thread. */
static void test_deferred_reply(void)
{
    unsigned i;

    for (i = 0; i < NPROV; i++) {
        char meta[16], data[16];
        ut_req_t req;
        uint64_t t0;
        pair_t p;

        use_provider(providers[i]);
        pair_open(&p, 2 * UC_NSEC_PER_SEC, UC_READ_PATH_AUTO);
        __atomic_store_n(&deferred, NULL, __ATOMIC_RELEASE);
        CU_ASSERT_EQUAL(ut_rpc_post_timeout(&req, p.peer, RPC_DEFER, "d", 2, meta,
                                            sizeof(meta), data, sizeof(data),
                                            tc_slow(10 * UC_NSEC_PER_SEC)), UCACHE_OK);
        t0 = uc_time_ns();
        while ((__atomic_load_n(&deferred, __ATOMIC_ACQUIRE) == NULL) &&
               (uc_time_ns() - t0 < tc_slow(5 * UC_NSEC_PER_SEC))) {
            ut_progress(p.client);
            usleep(1000);
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(deferred);
        CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, 0), UCACHE_INPROGRESS);
        CU_ASSERT_EQUAL(ut_rpc_reply(deferred, UCACHE_OK, "later", 6, "bytes", 6, 0),
                        UCACHE_OK);
        CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, tc_slow(5 * UC_NSEC_PER_SEC)), UCACHE_OK);
        CU_ASSERT_STRING_EQUAL(meta, "later");
        CU_ASSERT_STRING_EQUAL(data, "bytes");
        pair_close(&p);
    }
}

/* An exporter's RPC_DEFER: deferred, never answered (a fill that takes
 * longer than any deadline here). */
static void rpc_hold(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    static ut_rpc_t *held[64];
    static unsigned nheld;

    (void)arg; (void)msg; (void)len;
    if (ut_rpc_defer(rpc, &held[nheld % 64]) == UCACHE_OK) {
        nheld++;
    }
}

static void hold_setup(ut_ctx_t *ctx, ut_mem_t *mem)
{
    (void)mem;
    ut_rpc_handler_set(ctx, RPC_DEFER, rpc_hold, NULL);
}

/* A request that outlives UCACHE_TIMEOUT (T; its owner holds it, deadline
 * 30 T): its KEEPALIVEs are answered "still owed", so it waits on with its
 * peer good; then the owner freezes, and the request fails in about T, not
 * at its deadline. */
static void test_keepalive(void)
{
    const uint64_t T = tc_slow(300 * UC_NSEC_PER_MSEC);
    unsigned i;

    for (i = 0; i < NPROV; i++) {
        ucperf_exporter_t ex;
        ut_config_t tc;
        ut_ctx_t *ctx;
        ut_peer_t *peer;
        ut_stats_t st;
        ut_req_t req;
        uint64_t t0, took;
        char meta[16];

        use_provider(providers[i]);
        if (ucperf_exporter_start(&ex, REGION, 0x99 + i, hold_setup) != UCACHE_OK) {
            CU_FAIL("exporter");
            continue;
        }
        tc  = ofi_config(T, UC_READ_PATH_AUTO);
        ctx = ofi_ctx(&tc, UC_PROGRESS_POLL);
        CU_ASSERT_EQUAL_FATAL(ut_peer_create(ctx, ex.addr, ex.addr_len, &peer), UCACHE_OK);
        CU_ASSERT_EQUAL(ut_rpc_post_timeout(&req, peer, RPC_DEFER, "h", 2, meta, sizeof(meta),
                                            NULL, 0, 30 * T), UCACHE_OK);
        CU_ASSERT_EQUAL(ut_wait(ctx, &req, 1, 3 * T), UCACHE_INPROGRESS); /* still waits */
        CU_ASSERT_EQUAL(req.status, UCACHE_INPROGRESS);
        CU_ASSERT_EQUAL(ut_peer_state(peer), UT_PEER_CONNECTED);
        ut_stats(ctx, &st);
        CU_ASSERT(st.keepalives >= 3);
        CU_ASSERT_EQUAL(st.peer_failures, 0);
        CU_ASSERT_EQUAL(ucperf_exporter_pause(&ex), 0);
        t0 = uc_time_ns();
        ut_wait(ctx, &req, 1, 30 * T);
        took = uc_time_ns() - t0;
        CU_ASSERT_EQUAL(req.status, UCACHE_ERR_TIMEOUT);
        CU_ASSERT(took < 2 * T);
        CU_ASSERT_EQUAL(ut_peer_state(peer), UT_PEER_FAILED);
        printf("\n    %s: %" PRIu64 " keepalives answered over 3 T; owner frozen: failed in "
               "%.0f ms (T %.0f ms, deadline %.0f ms) ", providers[i], st.keepalives,
               took / 1e6, T / 1e6, 30 * T / 1e6);
        ucperf_exporter_stop(&ex, SIGKILL); /* not resumed: see owner_frozen (shm) */
        ut_peer_destroy(peer);
        ut_ctx_destroy(ctx);
    }
}

/* A reader that knows only host:port (tcp); shm has no such addresses. */
static void test_listener(void)
{
    unsigned i;

    for (i = 0; i < NPROV; i++) {
        ut_config_t tc;
        ut_ctx_t *server, *client;
        ut_peer_t *peer;
        char meta[16], data[16];
        uint16_t port = 0;
        ut_req_t req;

        use_provider(providers[i]);
        tc = ofi_config(tc_slow(2 * UC_NSEC_PER_SEC), UC_READ_PATH_AUTO);
        server = ofi_ctx(&tc, UC_PROGRESS_THREAD);
        set_handlers(server);
        client = ofi_ctx(&tc, UC_PROGRESS_POLL);
        if (strcmp(providers[i], "shm") == 0) {
            CU_ASSERT_EQUAL(ut_listen(server, "127.0.0.1", 0, &port), UCACHE_ERR_UNSUPPORTED);
            CU_ASSERT_EQUAL(ut_peer_create_sockaddr(client, "127.0.0.1", 1, &peer),
                            UCACHE_ERR_UNSUPPORTED);
        } else {
            CU_ASSERT_EQUAL_FATAL(ut_listen(server, "127.0.0.1", 0, &port), UCACHE_OK);
            CU_ASSERT(port != 0);
            CU_ASSERT_EQUAL(ut_listen(server, "127.0.0.1", 0, &port), UCACHE_ERR_INVALID);
            CU_ASSERT_EQUAL_FATAL(ut_peer_create_sockaddr(client, "127.0.0.1", port, &peer),
                                  UCACHE_OK);
            CU_ASSERT_EQUAL(ut_rpc_post(&req, peer, RPC_ECHO, "via listener", 13, meta,
                                        sizeof(meta), data, sizeof(data)), UCACHE_OK);
            CU_ASSERT_EQUAL(ut_wait(client, &req, 1, tc_slow(5 * UC_NSEC_PER_SEC)), UCACHE_OK);
            CU_ASSERT_STRING_EQUAL(data, "via listener");
            CU_ASSERT_EQUAL(((ut_ofi_peer_t *)peer)->uuid, ut_ofi_ctx_of(server)->uuid);
            ut_peer_destroy(peer);
        }
        ut_ctx_destroy(client);
        ut_ctx_destroy(server);
    }
}

/* UCACHE_MAX_EPS=2 over 3 servers: the least recently used idle peer is
 * closed (out of the address vector) for each new one, and a later use
 * starts over with a handshake; a peer with a request out is never closed.
 * shm has no connection to close: every peer stays. */
static void test_eps_capped(void)
{
    unsigned i;

    for (i = 0; i < NPROV; i++) {
        ut_ctx_t *server[3], *client;
        ut_peer_t *peer[3];
        char meta[16], data[16], hmeta[16], hdata[16];
        const void *addr;
        ut_req_t req, held;
        ut_config_t tc;
        ut_stats_t st;
        size_t len;
        unsigned k, max_open = 0;
        uint64_t t0;

        use_provider(providers[i]);
        tc = ofi_config(tc_slow(2 * UC_NSEC_PER_SEC), UC_READ_PATH_AUTO);
        for (k = 0; k < 3; k++) {
            server[k] = ofi_ctx(&tc, UC_PROGRESS_THREAD);
            set_handlers(server[k]);
        }
        tc.max_eps = 2;
        client = ofi_ctx(&tc, UC_PROGRESS_POLL);
        for (k = 0; k < 3; k++) {
            ut_address(server[k], &addr, &len);
            CU_ASSERT_EQUAL_FATAL(ut_peer_create(client, addr, len, &peer[k]), UCACHE_OK);
        }
        /* round robin: every use after the first two closes one */
        for (k = 0; k < 9; k++) {
            snprintf(data, sizeof(data), "use %u", k);
            CU_ASSERT_EQUAL(ut_rpc_post(&req, peer[k % 3], RPC_ECHO, data, strlen(data) + 1,
                                        meta, sizeof(meta), data, sizeof(data)), UCACHE_OK);
            CU_ASSERT_EQUAL(ut_wait(client, &req, 1, tc_slow(5 * UC_NSEC_PER_SEC)), UCACHE_OK);
            ut_stats(client, &st);
            max_open = (st.eps_open > max_open) ? (unsigned)st.eps_open : max_open;
        }
        ut_stats(client, &st);
        if (!ut_ofi_ctx_of(client)->conns) { /* shm: no connections, none closed */
            CU_ASSERT_EQUAL(max_open, 3);
            CU_ASSERT_EQUAL(st.eps_evicted, 0);
            CU_ASSERT_EQUAL(st.connects, 3);
            CU_ASSERT_EQUAL(st.peer_failures + st.timeouts, 0);
            goto done;
        }
        CU_ASSERT_EQUAL(max_open, 2);
        CU_ASSERT_EQUAL(st.eps_evicted, 7);
        CU_ASSERT_EQUAL(st.connects, 9);
        CU_ASSERT_EQUAL(st.peer_failures + st.timeouts, 0);
        /* peer 0 holds a deferred request: 1 and 2 take turns beside it */
        __atomic_store_n(&deferred, NULL, __ATOMIC_RELEASE);
        CU_ASSERT_EQUAL(ut_rpc_post_timeout(&held, peer[0], RPC_DEFER, "d", 2, hmeta,
                                            sizeof(hmeta), hdata, sizeof(hdata),
                                            tc_slow(10 * UC_NSEC_PER_SEC)), UCACHE_OK);
        t0 = uc_time_ns();
        while ((__atomic_load_n(&deferred, __ATOMIC_ACQUIRE) == NULL) &&
               (uc_time_ns() - t0 < tc_slow(5 * UC_NSEC_PER_SEC))) {
            ut_progress(client);
            usleep(1000);
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(deferred);
        for (k = 0; k < 4; k++) {
            CU_ASSERT_EQUAL(ut_rpc_post(&req, peer[1 + k % 2], RPC_ECHO, "x", 2, meta,
                                        sizeof(meta), data, sizeof(data)), UCACHE_OK);
            CU_ASSERT_EQUAL(ut_wait(client, &req, 1, tc_slow(5 * UC_NSEC_PER_SEC)), UCACHE_OK);
            CU_ASSERT_EQUAL(ut_peer_state(peer[0]), UT_PEER_CONNECTED);
        }
        CU_ASSERT_EQUAL(ut_rpc_reply(deferred, UCACHE_OK, "kept", 5, "bytes", 6, 0),
                        UCACHE_OK);
        CU_ASSERT_EQUAL(ut_wait(client, &held, 1, tc_slow(5 * UC_NSEC_PER_SEC)), UCACHE_OK);
        CU_ASSERT_STRING_EQUAL(hmeta, "kept");
        CU_ASSERT_STRING_EQUAL(hdata, "bytes");
        ut_stats(client, &st);
        CU_ASSERT(st.eps_open <= 2);
        CU_ASSERT_EQUAL(st.peer_failures + st.timeouts, 0);
done:
        for (k = 0; k < 3; k++) {
            ut_peer_destroy(peer[k]);
        }
        ut_ctx_destroy(client);
        for (k = 0; k < 3; k++) {
            ut_ctx_destroy(server[k]);
        }
    }
}

const tc_test_t ofi_tests[] = {
    {"lifecycle", test_lifecycle},
    {"bad_blobs", test_bad_blobs},
    {"rpc", test_rpc},
    {"reads", test_reads},
    {"owner_killed", test_owner_killed},
    {"owner_frozen", test_owner_frozen},
    {"owner_frozen_gets", test_owner_frozen_gets},
    {"remote_write_refused", test_remote_write_refused},
    {"malformed_requests", test_malformed_requests},
    {"unsigned_refused", test_unsigned_refused},
    {"deferred_reply", test_deferred_reply},
    {"keepalive", test_keepalive},
    {"listener", test_listener},
    {"eps_capped", test_eps_capped},
    {NULL, NULL}
};

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    setenv("UCACHE_LOG_LEVEL", "error", 0);
    if ((CU_initialize_registry() != CUE_SUCCESS) || tc_add_suite("ofi", ofi_tests)) {
        return 2;
    }
    return tc_run();
}
