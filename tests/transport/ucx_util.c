/*
 * ucx_util.c - what the UCX backend's suites share: the exporter process
 * (a forked serving context with a region of a known pattern and RPC
 * handlers: echo, bulk, a held request, a stalled reply), a reader of it,
 * batches of verified reads, a pair of contexts in one process, and a
 * connection reset injected at the socket.
 */
#include "tests/transport/ucx_util.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Pattern and helpers                                                       */
/* ------------------------------------------------------------------------ */

uint8_t pattern(uint64_t off, uint64_t seed)
{
    return ucperf_pattern_byte(off, seed);
}



void use_tls(const char *tls)
{
    if (tls != NULL) {
        setenv("UCX_TLS", tls, 1);
        setenv("UCX_NET_DEVICES", "lo", 1);
    } else {
        unsetenv("UCX_TLS");
        unsetenv("UCX_NET_DEVICES");
    }
}

/* Gets over tcp need UCX's software RMA on both sides: the test mode that
 * UCACHE_EMULATED_RMA asks for (exporters are forked with this env). */
void emulated_rma(bool on)
{
    if (on) {
        setenv("UCACHE_EMULATED_RMA", "yes", 1);
    } else {
        unsetenv("UCACHE_EMULATED_RMA");
    }
}

uc_config_t test_config(uint64_t timeout_ns)
{
    uc_config_t cfg;

    uc_config_load(&cfg);
    cfg.timeout_ns    = timeout_ns;
    cfg.peer_retry_ns = 200 * UC_NSEC_PER_MSEC;
    return cfg;
}

ut_ctx_t *make_ctx(const uc_config_t *cfg, uc_progress_mode_t mode)
{
    ut_params_t p = { .field_mask = UT_PARAM_FIELD_CONFIG | UT_PARAM_FIELD_PROGRESS,
                      .progress = mode };
    ut_ctx_t *ctx = NULL;
    ut_config_t tc;

    ut_config_from(&tc, cfg);
    p.config = &tc;
    CU_ASSERT_EQUAL_FATAL(ut_ctx_create("ucx", &p, &ctx), UCACHE_OK);
    return ctx;
}

/* Serving-side RPC handlers used by every server in these tests. */
ut_mem_t *handler_region;      /* the region RPC_BULK answers from */

void rpc_echo(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    (void)arg;
    ut_rpc_reply(rpc, UCACHE_OK, msg, len < 16 ? len : 16, msg, len, 0);
}

void rpc_fail(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    (void)arg; (void)msg; (void)len;
    ut_rpc_reply(rpc, UCACHE_ERR_NOT_FOUND, NULL, 0, NULL, 0, 0);
}

/* The exporter's read RPC over handler_region (NULL: gone, STALE). */
void rpc_bulk(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    (void)arg;
    ucperf_read_reply(rpc, handler_region, msg, len);
}

void rpc_noreply(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    (void)arg; (void)rpc; (void)msg; (void)len; /* a buggy handler */
}

/* A peer answering with a status no request ends with: INPROGRESS, or none. */
void rpc_inprogress(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    (void)arg;
    ut_rpc_reply(rpc, ((len > 0) && (((const char *)msg)[0] == 'x')) ? (ucache_status_t)4242 :
                      UCACHE_INPROGRESS, NULL, 0, NULL, 0, 0);
}

void set_handlers(ut_ctx_t *ctx)
{
    CU_ASSERT_EQUAL(ut_rpc_handler_set(ctx, RPC_ECHO, rpc_echo, NULL), UCACHE_OK);
    CU_ASSERT_EQUAL(ut_rpc_handler_set(ctx, RPC_FAIL, rpc_fail, NULL), UCACHE_OK);
    CU_ASSERT_EQUAL(ut_rpc_handler_set(ctx, RPC_BULK, rpc_bulk, NULL), UCACHE_OK);
    CU_ASSERT_EQUAL(ut_rpc_handler_set(ctx, RPC_NOREPLY, rpc_noreply, NULL), UCACHE_OK);
    CU_ASSERT_EQUAL(ut_rpc_handler_set(ctx, RPC_INPROG, rpc_inprogress, NULL), UCACHE_OK);
}

/* ------------------------------------------------------------------------ */
/* Exporter process                                                          */
/* ------------------------------------------------------------------------ */


/* An owner busy with a request (a long fill): RPC_HOLD's message is a
 * delay in ms; the exporter answers it from another thread that long after. */
typedef struct held {
    ut_rpc_t *rpc;
    uint32_t  ms;
} held_t;

static void *hold_thread(void *arg)
{
    held_t *h = arg;

    usleep(h->ms * 1000u);
    ut_rpc_reply(h->rpc, UCACHE_OK, &h->ms, sizeof(h->ms), NULL, 0, 0);
    free(h);
    return NULL;
}

static void rpc_hold(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    held_t *h = calloc(1, sizeof(*h));
    pthread_t t;

    (void)arg;
    if ((h == NULL) || (len != sizeof(h->ms)) || (ut_rpc_defer(rpc, &h->rpc) != UCACHE_OK)) {
        ut_rpc_reply(rpc, UCACHE_ERR_INVALID, NULL, 0, NULL, 0, 0);
        free(h);
        return;
    }
    memcpy(&h->ms, msg, sizeof(h->ms));
    if (pthread_create(&t, NULL, hold_thread, h) == 0) {
        pthread_detach(t);
    }
}

/* An owner whose link dies mid-reply: RPC_STALL answers like RPC_BULK, then
 * the exporter stops itself - the reply's header (a rendezvous RTS) is out,
 * its data never follows. */
static void rpc_stall(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    rpc_bulk(arg, rpc, msg, len);
    raise(SIGSTOP);
}

/* The exporters' RPC handlers: echo and bulk over the exported region, the
 * held request and the stalled reply. */
void exporter_setup(ut_ctx_t *ctx, ut_mem_t *mem)
{
    handler_region = mem;
    ut_rpc_handler_set(ctx, RPC_ECHO, rpc_echo, NULL);
    ut_rpc_handler_set(ctx, RPC_BULK, rpc_bulk, NULL);
    ut_rpc_handler_set(ctx, RPC_HOLD, rpc_hold, NULL);
    ut_rpc_handler_set(ctx, RPC_STALL, rpc_stall, NULL);
}

int exporter_start(exporter_t *ex, uint64_t seed)
{
    return (ucperf_exporter_start(ex, REGION_SIZE, seed, exporter_setup) ==
            UCACHE_OK) ? 0 : -1;
}



void reader_open(reader_t *r, ut_ctx_t *ctx, const exporter_t *ex)
{
    r->ctx = ctx;
    CU_ASSERT_EQUAL_FATAL(ut_peer_create(ctx, ex->addr, ex->addr_len, &r->peer),
                          UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(ut_rkey_unpack(r->peer, ex->rkey, ex->rkey_len, &r->rkey),
                          UCACHE_OK);
}

void reader_close(reader_t *r)
{
    ut_rkey_destroy(r->rkey);
    ut_peer_destroy(r->peer);
    r->rkey = NULL;
    r->peer = NULL;
}

/*
 * Read @p count blocks of @p size at pseudo-random offsets, all outstanding
 * at once, one wait; compare every byte.  A key with no one-sided path
 * (UT_PATH_AM) is read with the exporter's read RPC.  No CUnit calls
 * (threads use it): @return bad bytes plus one per request that failed,
 * took another path or came back short.
 */
size_t read_batch(reader_t *r, size_t size, unsigned count,
                  uint64_t seed, ut_path_t expect_path)
{
    ut_req_t *reqs = calloc(count, sizeof(*reqs));
    ucperf_read_msg_t *msgs = calloc(count, sizeof(*msgs));
    uint64_t *offs = calloc(count, sizeof(*offs));
    ut_path_t want = (expect_path == UT_PATH_AM) ? UT_PATH_RPC : expect_path;
    ut_path_t path = ut_rkey_path(r->rkey);
    uint8_t *bufs  = malloc((size_t)count * size);
    size_t bad = 0;
    unsigned i;

    if ((reqs == NULL) || (msgs == NULL) || (offs == NULL) || (bufs == NULL)) {
        bad = SIZE_MAX;
        goto out;
    }
    for (i = 0; i < count; i++) {
        offs[i] = ((uint64_t)i * 7919u * 4096u + (i * 13u)) % (REGION_SIZE - size + 1);
        bad += (ucperf_read_post(&reqs[i], r->rkey, path, &msgs[i], offs[i],
                                 bufs + (size_t)i * size, size) != UCACHE_OK);
    }
    bad += (ut_wait(r->ctx, reqs, count, 10 * UC_NSEC_PER_SEC) != UCACHE_OK);
    for (i = 0; i < count; i++) {
        bad += (reqs[i].status != UCACHE_OK) || (reqs[i].path != want) ||
               (reqs[i].length != size);
        bad += pattern_mismatches(bufs + (size_t)i * size, offs[i], size, seed);
    }
out:
    free(reqs);
    free(msgs);
    free(offs);
    free(bufs);
    return bad;
}

static const struct { size_t size; unsigned count; } batch_sizes[] = {
    {4096, 256}, {65536, 128}, {1u << 20, 32}, {4u << 20, 8}
};

/* Read every size of batch_sizes from a fresh exporter over @p tls. */
void run_read_sizes(const char *tls, int read_path, ut_path_t expect)
{
    uc_config_t cfg;
    exporter_t ex;
    reader_t r;
    ut_ctx_t *ctx;
    ut_stats_t st;
    unsigned i, total = 0;

    use_tls(tls);
    emulated_rma(read_path == UC_READ_PATH_GET);
    CU_ASSERT_EQUAL_FATAL(exporter_start(&ex, 0x5a), 0);
    cfg = test_config(5 * UC_NSEC_PER_SEC);
    cfg.read_path = read_path;
    ctx = make_ctx(&cfg, UC_PROGRESS_POLL);
    reader_open(&r, ctx, &ex);
    CU_ASSERT_EQUAL(ut_rkey_is_mapped(r.rkey), expect == UT_PATH_MAPPED);
    for (i = 0; i < sizeof(batch_sizes) / sizeof(batch_sizes[0]); i++) {
        CU_ASSERT_EQUAL(read_batch(&r, batch_sizes[i].size, batch_sizes[i].count,
                                   ex.seed, expect), 0);
        total += batch_sizes[i].count;
    }
    ut_stats(ctx, &st);
    CU_ASSERT_EQUAL(st.reads, total);
    CU_ASSERT_EQUAL((expect == UT_PATH_MAPPED) ? st.mapped_reads :
                    (expect == UT_PATH_GET) ? st.get_reads : st.am_reads, total);
    CU_ASSERT_EQUAL(st.timeouts, 0);
    CU_ASSERT_EQUAL(st.peer_failures, 0);
    reader_close(&r);
    ut_ctx_destroy(ctx);
    CU_ASSERT_EQUAL(exporter_stop(&ex, 0), 0);
    emulated_rma(false);
    use_tls(NULL);
}



void pair_open(pair_t *p, const char *tls, const uc_config_t *ccfg)
{
    uc_config_t scfg = test_config(2 * UC_NSEC_PER_SEC);
    const void *addr, *rkey;
    size_t addr_len, rkey_len;

    use_tls(tls);
    memset(p, 0, sizeof(*p));
    p->server = make_ctx(&scfg, UC_PROGRESS_THREAD);
    p->client = make_ctx(ccfg ? ccfg : &scfg, UC_PROGRESS_POLL);
    CU_ASSERT_EQUAL_FATAL(ut_mem_export(p->server, REGION_SIZE, &p->mem), UCACHE_OK);
    fill_pattern(p->mem->base, REGION_SIZE, 0x11);
    handler_region = p->mem;
    set_handlers(p->server);
    ut_address(p->server, &addr, &addr_len);
    ut_mem_pack(p->mem, &rkey, &rkey_len);
    CU_ASSERT_EQUAL_FATAL(ut_peer_create(p->client, addr, addr_len, &p->peer), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(ut_rkey_unpack(p->peer, rkey, rkey_len, &p->rkey), UCACHE_OK);
}

void pair_close(pair_t *p)
{
    ut_rkey_destroy(p->rkey);
    ut_peer_destroy(p->peer);
    ut_ctx_destroy(p->client);
    handler_region = NULL;
    ut_mem_destroy(p->mem);
    ut_ctx_destroy(p->server);
    use_tls(NULL);
}

/* Several reader threads share one context and one rkey: each posts its own
 * batches and waits on them; every byte is checked. */
typedef struct thread_arg {
    reader_t *r;
    uint64_t  seed;
    ut_path_t path;
    size_t    bad;
} thread_arg_t;

static void *reader_thread(void *p)
{
    thread_arg_t *a = p;
    int round;

    for (round = 0; round < 10; round++) {
        a->bad += read_batch(a->r, 65536, 16, a->seed, a->path);
    }
    return NULL;
}

void run_threads(const char *tls, ut_path_t path)
{
    enum { T = 4 };
    uc_config_t cfg = test_config(5 * UC_NSEC_PER_SEC);
    thread_arg_t args[T];
    pthread_t th[T];
    exporter_t ex;
    reader_t r;
    ut_ctx_t *ctx;
    ut_stats_t st;
    int i;

    use_tls(tls);
    CU_ASSERT_EQUAL_FATAL(exporter_start(&ex, 0x91), 0);
    ctx = make_ctx(&cfg, UC_PROGRESS_POLL);
    reader_open(&r, ctx, &ex);
    for (i = 0; i < T; i++) {
        args[i] = (thread_arg_t){ &r, ex.seed, path, 0 };
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, reader_thread, &args[i]), 0);
    }
    for (i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(args[i].bad, 0);
    }
    ut_stats(ctx, &st);
    CU_ASSERT_EQUAL(st.reads, T * 10 * 16);
    CU_ASSERT_EQUAL(st.timeouts, 0);
    reader_close(&r);
    ut_ctx_destroy(ctx);
    CU_ASSERT_EQUAL(exporter_stop(&ex, 0), 0);
    use_tls(NULL);
}

/* ------------------------------------------------------------------------ */
/* A reset connection, injected at the socket                                */
/* ------------------------------------------------------------------------ */

/*
 * test_ucx's own ucs_socket_sendv_nb (the Makefile exports it, so libuct's
 * calls come here): in a process whose environment has
 * UCACHE_TEST_SENDV_RESET, the first send of a message over 16 KiB is cut
 * to 512 bytes - the socket took part of it - and the next send on that
 * socket, its rest from a write event, fails as on a connection its peer
 * reset, after the socket is shut down for real.  Everywhere else, and
 * after that once, it is UCX's own.
 */
typedef ucs_status_t (*sendv_fn_t)(int fd, struct iovec *iov, size_t iov_cnt,
                                   size_t *length_p);

ucs_status_t ucs_socket_sendv_nb(int fd, struct iovec *iov, size_t iov_cnt, size_t *length_p);

ucs_status_t ucs_socket_sendv_nb(int fd, struct iovec *iov, size_t iov_cnt, size_t *length_p)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static int stage, cut_fd = -1;
    sendv_fn_t real = (sendv_fn_t)dlsym(RTLD_NEXT, "ucs_socket_sendv_nb");
    struct iovec cut[1];
    size_t i, total = 0;
    ucs_status_t status;

    if ((real == NULL) || (getenv("UCACHE_TEST_SENDV_RESET") == NULL)) {
        return (real != NULL) ? real(fd, iov, iov_cnt, length_p) : UCS_ERR_UNSUPPORTED;
    }
    for (i = 0; i < iov_cnt; i++) {
        total += iov[i].iov_len;
    }
    pthread_mutex_lock(&lock);
    if ((stage == 0) && (total > 16384) && (iov_cnt > 0) && (iov[0].iov_len >= 1)) {
        cut[0].iov_base = iov[0].iov_base;
        cut[0].iov_len  = (iov[0].iov_len < 512) ? iov[0].iov_len : 512;
        stage  = 1;
        cut_fd = fd;
        pthread_mutex_unlock(&lock);
        return real(fd, cut, 1, length_p);
    }
    if ((stage == 1) && (fd == cut_fd)) {
        stage = 2;
        pthread_mutex_unlock(&lock);
        shutdown(fd, SHUT_RDWR);
        *length_p = 0;
        return UCS_ERR_CONNECTION_RESET;
    }
    pthread_mutex_unlock(&lock);
    status = real(fd, iov, iov_cnt, length_p);
    return status;
}
