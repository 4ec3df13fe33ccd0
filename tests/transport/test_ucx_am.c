/*
 * test_ucx_am.c - active messages (transport/ucx_am.c): RPCs and bulk replies, malformed
 * and forged messages dropped or refused, a raw peer's remote put refused,
 * and the signed wire (keys, roles, replays).
 */
#include "tests/transport/ucx_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_rpc(void)
{
    pair_t p;
    ut_req_t req;
    char msg[] = "hello, fabric: request/reply";
    uint8_t meta[UT_RPC_META_MAX], data[256];
    uint64_t bulk[2];
    uint8_t *big = malloc(4u << 20);
    uint32_t magic = 0xC0FFEEu;
    ut_stats_t st;
    uint64_t t0;

    pair_open(&p, "tcp", NULL);
    CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, RPC_ECHO, msg, sizeof(msg), meta,
                                sizeof(meta), data, sizeof(data)), UCACHE_OK);
    CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, UC_NSEC_PER_SEC * 5), UCACHE_OK);
    CU_ASSERT_EQUAL(req.length, sizeof(msg));
    CU_ASSERT_EQUAL(req.meta_length, 16);
    CU_ASSERT_EQUAL(memcmp(data, msg, sizeof(msg)), 0);
    CU_ASSERT_EQUAL(memcmp(meta, msg, 16), 0);

    /* An error status travels back as the request's status. */
    CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, RPC_FAIL, msg, 4, NULL, 0, NULL, 0),
                    UCACHE_OK);
    CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, UC_NSEC_PER_SEC * 5), UCACHE_ERR_NOT_FOUND);
    /* A handler nobody registered. */
    CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, 33, msg, 4, NULL, 0, NULL, 0), UCACHE_OK);
    CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, UC_NSEC_PER_SEC * 5),
                    UCACHE_ERR_UNSUPPORTED);
    /* A handler that forgets to reply: the transport answers for it. */
    CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, RPC_NOREPLY, msg, 4, NULL, 0, NULL, 0),
                    UCACHE_OK);
    CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, UC_NSEC_PER_SEC * 5),
                    UCACHE_ERR_TRANSPORT);
    /* A reply whose status is INPROGRESS, or no status at all (issue [2/11]
     * #3): the request ends at once with a transport error, never pending. */
    t0 = uc_time_ns();
    CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, RPC_INPROG, msg, 4, NULL, 0, NULL, 0),
                    UCACHE_OK);
    CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, UC_NSEC_PER_SEC * 5), UCACHE_ERR_TRANSPORT);
    CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, RPC_INPROG, "xyz", 4, NULL, 0, NULL, 0),
                    UCACHE_OK);
    CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, UC_NSEC_PER_SEC * 5), UCACHE_ERR_TRANSPORT);
    CU_ASSERT(uc_time_ns() - t0 < tc_slow(UC_NSEC_PER_SEC));
    /* A reply larger than the caller's buffers. */
    CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, RPC_ECHO, msg, sizeof(msg), meta,
                                sizeof(meta), data, 8), UCACHE_OK);
    CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, UC_NSEC_PER_SEC * 5),
                    UCACHE_ERR_MSG_TRUNCATED);
    /* Refused locally: reserved/unknown ids, oversized requests. */
    CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, 0, msg, 4, NULL, 0, NULL, 0),
                    UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, UT_RPC_MAX_ID + 1, msg, 4, NULL, 0,
                                NULL, 0), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, RPC_ECHO, big, (64u << 10) + 1, NULL,
                                0, NULL, 0), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(ut_rpc_handler_set(p.server, 0, rpc_echo, NULL), UCACHE_ERR_INVALID);

    /* Bulk reply (rendezvous) straight into the caller's buffer. */
    bulk[0] = 12345;
    bulk[1] = 4u << 20;
    CU_ASSERT_EQUAL(ut_rpc_post(&req, p.peer, RPC_BULK, bulk, sizeof(bulk), &magic,
                                sizeof(magic), big, 4u << 20), UCACHE_OK);
    CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, UC_NSEC_PER_SEC * 5), UCACHE_OK);
    CU_ASSERT_EQUAL(req.length, 4u << 20);
    CU_ASSERT_EQUAL(req.meta_length, 0);          /* none sent: the buffer untouched */
    CU_ASSERT_EQUAL(magic, 0xC0FFEEu);
    CU_ASSERT_EQUAL(pattern_mismatches(big, 12345, 4u << 20, 0x11), 0);

    ut_stats(p.client, &st);
    CU_ASSERT_EQUAL(st.rpcs, 2);
    CU_ASSERT_EQUAL(st.am_reads, 2);              /* both replies carried data */
    CU_ASSERT_EQUAL(st.read_bytes, sizeof(msg) + (4u << 20));
    CU_ASSERT_EQUAL(st.bad_input, 5);   /* 3 refused locally, 2 statuses */
    ut_stats(p.server, &st);
    CU_ASSERT_EQUAL(st.rpcs_served, 7); /* echo, fail, noreply, 2 inprogress, truncated, bulk */
    CU_ASSERT_EQUAL(st.bad_input, 1);   /* the unknown handler */
    pair_close(&p);
    free(big);
}

/* Malformed messages sent straight at a server: dropped or answered with an
 * error, counted, and the server keeps serving. */
static void test_malformed_messages(void)
{
    ut_am_req_hdr hdr = { .magic = UT_AM_MAGIC, .op = UT_OP_NONE, .id = 1 };
    ut_am_rep_hdr rep = { .magic = UT_AM_MAGIC, .id = 999999 };
    uint8_t junk[sizeof(ut_am_req_hdr) + 32] = { 1, 2, 3 };
    ut_ucx_peer_t *peer;
    ut_stats_t st;
    pair_t p;
    int i;

    pair_open(&p, "tcp", NULL);
    peer = (ut_ucx_peer_t *)p.peer;
    CU_ASSERT_EQUAL(read_batch(&(reader_t){p.client, p.peer, p.rkey}, 4096, 4, 0x11,
                               UT_PATH_AM), 0);
    struct { const void *h; size_t hl; const void *d; size_t dl; unsigned id; } msgs[] = {
        {junk, 3, NULL, 0, UT_AM_ID_REQ},                /* short header      */
        {junk, sizeof(hdr), NULL, 0, UT_AM_ID_REQ},      /* bad magic         */
        {&hdr, sizeof(hdr), junk, 5, UT_AM_ID_REQ},      /* op 0: no operation */
        {&hdr, sizeof(hdr), junk, 32, UT_AM_ID_REQ},     /* ... once the built-in
                                                            read, gone      */
        {&rep, sizeof(rep), junk, 8, UT_AM_ID_REP},      /* reply nobody asked */
        {junk, 2, NULL, 0, UT_AM_ID_REP},                /* short reply header */
    };
    for (i = 0; i < (int)(sizeof(msgs) / sizeof(msgs[0])); i++) {
        if (msgs[i].h == &hdr) {  /* well signed, malformed inside */
            hdr.from = ut_ctx_of(p.client)->uuid;
            pthread_mutex_lock(&ut_ctx_of(p.client)->lock);   /* the signer's state */
            ut_auth_sign(ut_ctx_of(p.client)->auth, &hdr, sizeof(hdr),
                         offsetof(ut_am_req_hdr, auth), peer->uuid, msgs[i].d, msgs[i].dl);
            pthread_mutex_unlock(&ut_ctx_of(p.client)->lock);
        }
        raw_send_am(p.client, peer, msgs[i].id, msgs[i].h, msgs[i].hl, msgs[i].d,
                    msgs[i].dl);
    }
    /* Replies to junk requests land on the client as late replies; the server
     * went on serving: these reads must still be exact. */
    CU_ASSERT_EQUAL(read_batch(&(reader_t){p.client, p.peer, p.rkey}, 65536, 16, 0x11,
                               UT_PATH_AM), 0);
    /* The server counts its four bad requests, the reply-shaped message
     * with no request behind it (late) and the short reply header (bad). */
    ut_stats(p.server, &st);
    CU_ASSERT_EQUAL(st.bad_input, 5);
    CU_ASSERT_EQUAL(st.auth_failures, 0);
    CU_ASSERT_EQUAL(st.late_replies, 1);
    CU_ASSERT_EQUAL(st.rpcs_served, 20);
    /* The error replies to the two requests of op 0 come back to the client
     * with an id it never issued. */
    ut_stats(p.client, &st);
    CU_ASSERT_EQUAL(st.late_replies, 2);
    CU_ASSERT_EQUAL(st.bad_input, 0);
    CU_ASSERT_EQUAL(st.am_reads, 20);
    pair_close(&p);
}

/* The RPC a deferring handler keeps (on the server's progress thread),
 * answered later by the test. */
static ut_rpc_t *_Atomic kept_rpc;

static void rpc_keep(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    ut_rpc_t *d = NULL;

    (void)arg; (void)msg; (void)len;
    CU_ASSERT_EQUAL(ut_rpc_defer(rpc, &d), UCACHE_OK);
    atomic_store(&kept_rpc, d);
}

static bool rpc_kept(void)
{
    return atomic_load(&kept_rpc) != NULL;
}

/* A client waiting on its request (and so progressing its worker: it
 * answers connection handshakes and takes in replies) for 1 s. */
typedef struct waiter {
    ut_ctx_t       *ctx;
    ut_req_t       *req;
    ucache_status_t status;
} waiter_t;

static void *wait_thread(void *arg)
{
    waiter_t *w = arg;

    w->status = ut_wait(w->ctx, w->req, 1, tc_slow(UC_NSEC_PER_SEC));
    return NULL;
}

/*
 * Issue [2/11] #3, replies matched by slot id only: a third process that
 * knows the client's address sends it replies for the ids a request would
 * have had when ids were (generation << 32 | slot) - every generation 1..4
 * of slots 0..3.  None completes the request the client is waiting for
 * (they are late replies); the real answer still does.
 */
static void test_forged_replies(void)
{
    uc_config_t cfg = test_config(2 * UC_NSEC_PER_SEC);
    ut_am_rep_hdr rep = { .magic = UT_AM_MAGIC, .status = UCACHE_OK };
    uint8_t data[64];
    const void *caddr;
    size_t caddr_len;
    ut_ctx_t *forger;
    ut_ucx_peer_t *victim;
    ut_peer_t *vp;
    ut_stats_t st;
    ut_req_t req;
    unsigned gen, slot;
    waiter_t w;
    pthread_t t;
    pair_t p;

    pair_open(&p, "tcp", NULL);
    CU_ASSERT_EQUAL(ut_rpc_handler_set(p.server, RPC_KEEP, rpc_keep, NULL), UCACHE_OK);
    atomic_store(&kept_rpc, NULL);
    CU_ASSERT_EQUAL_FATAL(ut_rpc_post_timeout(&req, p.peer, RPC_KEEP, "ask", 4, NULL, 0, data,
                                              sizeof(data), tc_slow(20 * UC_NSEC_PER_SEC)),
                          UCACHE_OK);
    CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, 300 * UC_NSEC_PER_MSEC), UCACHE_INPROGRESS);
    for (gen = 0; (gen < 500) && !rpc_kept(); gen++) {      /* 5 s at most */
        ut_wait(p.client, &req, 1, 10 * UC_NSEC_PER_MSEC);
    }
    CU_ASSERT_FATAL(rpc_kept());

    w.ctx = p.client;
    w.req = &req;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, wait_thread, &w), 0);
    forger = make_ctx(&cfg, UC_PROGRESS_POLL);
    ut_address(p.client, &caddr, &caddr_len);
    CU_ASSERT_EQUAL_FATAL(ut_peer_create(forger, caddr, caddr_len, &vp), UCACHE_OK);
    victim = (ut_ucx_peer_t *)vp;
    pthread_mutex_lock(&ut_ctx_of(forger)->lock);
    CU_ASSERT_EQUAL_FATAL(ut_ucx_do_peer_ensure(ut_ctx_of(forger), victim), UCACHE_OK);
    pthread_mutex_unlock(&ut_ctx_of(forger)->lock);
    for (gen = 1; gen <= 4; gen++) {
        for (slot = 0; slot < 4; slot++) {
            rep.id = ((uint64_t)gen << 32) | slot;
            raw_send_am(forger, victim, UT_AM_ID_REP, &rep, sizeof(rep), NULL, 0);
        }
    }
    /* the client took them all in (and dropped them) while it waited */
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(w.status, UCACHE_INPROGRESS);
    ut_stats(p.client, &st);
    CU_ASSERT_EQUAL(st.late_replies, 16);
    /* the owner's own answer completes it */
    CU_ASSERT_EQUAL(ut_rpc_reply(atomic_load(&kept_rpc), UCACHE_OK, NULL, 0, "answer", 7, 0),
                    UCACHE_OK);
    CU_ASSERT_EQUAL(ut_wait(p.client, &req, 1, 5 * UC_NSEC_PER_SEC), UCACHE_OK);
    CU_ASSERT_EQUAL(req.length, 7);
    CU_ASSERT_STRING_EQUAL((char *)data, "answer");
    ut_peer_destroy(vp);
    ut_ctx_destroy(forger);
    pair_close(&p);
}

/*
 * An attacker outside the fabric: a raw UCX context of its own with
 * UCP_FEATURE_RMA (UCX's software put/get over tcp), connected to a
 * serving context's worker address.  It tries @p len bytes of 0xEE at
 * @p off of the region whose key it holds.  @return 0 if UCX reported the
 * put complete (flushed to the target) within 1 s, -1 otherwise.
 */
static int attack_put(ut_ctx_t *server, ut_mem_t *mem, size_t off, size_t len)
{
    ucp_request_param_t rp = { .op_attr_mask = 0 };
    const void *ablob, *rblob;
    size_t alen, rlen;
    uint8_t bytes[4096];
    uint64_t deadline;
    raw_peer_t peer;
    int rc = -1;

    memset(bytes, 0xee, sizeof(bytes));
    CU_ASSERT_FATAL(len <= sizeof(bytes));
    ut_address(server, &ablob, &alen);
    ut_mem_pack(mem, &rblob, &rlen);
    CU_ASSERT_EQUAL_FATAL(raw_peer_open(&peer, UCP_FEATURE_RMA | UCP_FEATURE_AM, ablob, alen,
                                        rblob, rlen), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(peer.rkey);
    deadline = uc_deadline(tc_slow(UC_NSEC_PER_SEC));
    if ((raw_wait(peer.worker, ucp_put_nbx(peer.ep, bytes, len, peer.base + off, peer.rkey,
                                          &rp), deadline) == UCS_OK) &&
        (raw_wait(peer.worker, ucp_ep_flush_nbx(peer.ep, &rp), deadline) == UCS_OK)) {
        rc = 0;
    }
    raw_peer_close(&peer);
    return rc;
}

/*
 * Issue [3/11], remote writes: UCP_FEATURE_RMA turns on UCX's software RMA
 * over tcp, whose put handler copies to any address a peer names.  A
 * serving context in its default configuration must not let a peer write
 * its exported region (or anything else): the put does not complete and
 * the region holds exactly its pattern afterwards.  With
 * UCACHE_EMULATED_RMA (the explicit test mode) the same put lands - which
 * is why that mode is a test mode.
 */
static void test_remote_put(void)
{
    uc_config_t cfg = test_config(2 * UC_NSEC_PER_SEC);
    ut_mem_t *mem;
    ut_ctx_t *srv;
    int i;

    use_tls("tcp");
    for (i = 0; i < 2; i++) {
        cfg.emulated_rma = i;
        srv = make_ctx(&cfg, UC_PROGRESS_THREAD);
        CU_ASSERT_EQUAL_FATAL(ut_mem_export(srv, REGION_SIZE, &mem), UCACHE_OK);
        fill_pattern(mem->base, REGION_SIZE, 0x33);
        if (i == 0) {
            CU_ASSERT_EQUAL(attack_put(srv, mem, 4096, 64), -1);
            CU_ASSERT_EQUAL(pattern_mismatches(mem->base, 0, REGION_SIZE, 0x33), 0);
        } else {
            CU_ASSERT_EQUAL(attack_put(srv, mem, 4096, 64), 0);
            CU_ASSERT_EQUAL(pattern_mismatches(mem->base, 0, REGION_SIZE, 0x33), 64);
        }
        ut_mem_destroy(mem);
        ut_ctx_destroy(srv);
    }
    use_tls(NULL);
}

/* The role the transport gave a request (the handler's answer). */
static void rpc_role(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    uint32_t role = rpc->role;

    (void)arg; (void)msg; (void)len;
    ut_rpc_reply(rpc, UCACHE_OK, &role, sizeof(role), NULL, 0, 0);
}

/*
 * Issue [3/11]: a serving context with the cluster and admin keys refuses
 * the connection handshake, RPCs and reads of a peer with no key or
 * another fabric's key (UCACHE_ERR_AUTH, counted); a peer with the cluster
 * key reads and calls as a reader, one with the admin key as an admin; a
 * signed read or RPC sent again byte for byte is refused, so is one
 * addressed to another node.
 */
static void test_auth_wire(void)
{
    char dir[] = "/tmp/ucache-authw.XXXXXX", cluster[64], admin[64], other[64], cmd[64];
    uc_config_t scfg = test_config(2 * UC_NSEC_PER_SEC), ccfg;
    const char *keys[4][2] = { { "", "" }, { other, "" }, { cluster, "" }, { cluster, admin } };
    const ucache_status_t want[4] = { UCACHE_ERR_AUTH, UCACHE_ERR_AUTH, UCACHE_OK, UCACHE_OK };
    const uint32_t want_role[4] = { 0, 0, UT_ROLE_READER, UT_ROLE_ADMIN };
    const void *addr, *rblob;
    size_t addr_len, rlen;
    ut_ctx_t *srv, *cli[4];
    ut_peer_t *peer[4];
    ut_rkey_t *rkey[4];
    uint64_t bulk[2] = { 0, 4096 };
    ut_am_req_hdr hdr;
    ut_stats_t st0, st;
    ut_mem_t *mem;
    uint32_t role;
    ut_req_t req;
    unsigned i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(cluster, sizeof(cluster), "%s/cluster", dir);
    snprintf(admin, sizeof(admin), "%s/admin", dir);
    snprintf(other, sizeof(other), "%s/other", dir);
    CU_ASSERT_EQUAL_FATAL(ucache_keygen(cluster), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(ucache_keygen(admin), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(ucache_keygen(other), UCACHE_OK);
    use_tls("tcp");
    snprintf(scfg.cluster_key_file, sizeof(scfg.cluster_key_file), "%s", cluster);
    snprintf(scfg.admin_key_file, sizeof(scfg.admin_key_file), "%s", admin);
    srv = make_ctx(&scfg, UC_PROGRESS_THREAD);
    CU_ASSERT_EQUAL_FATAL(ut_mem_export(srv, REGION_SIZE, &mem), UCACHE_OK);
    fill_pattern(mem->base, REGION_SIZE, 0x27);
    handler_region = mem;
    set_handlers(srv);
    CU_ASSERT_EQUAL(ut_rpc_handler_set(srv, RPC_KEEP, rpc_role, NULL), UCACHE_OK);
    ut_address(srv, &addr, &addr_len);
    ut_mem_pack(mem, &rblob, &rlen);

    for (i = 0; i < 4; i++) {
        ccfg = test_config(2 * UC_NSEC_PER_SEC);
        snprintf(ccfg.cluster_key_file, sizeof(ccfg.cluster_key_file), "%s", keys[i][0]);
        snprintf(ccfg.admin_key_file, sizeof(ccfg.admin_key_file), "%s", keys[i][1]);
        cli[i] = make_ctx(&ccfg, UC_PROGRESS_POLL);
        CU_ASSERT_EQUAL_FATAL(ut_peer_create(cli[i], addr, addr_len, &peer[i]), UCACHE_OK);
        rkey[i] = NULL;
        CU_ASSERT_EQUAL(ut_rkey_unpack(peer[i], rblob, rlen, &rkey[i]), want[i]);
        role = 99;
        ut_rpc_post(&req, peer[i], RPC_KEEP, "who", 3, &role, sizeof(role), NULL, 0);
        CU_ASSERT_EQUAL(ut_wait(cli[i], &req, 1, tc_slow(2 * UC_NSEC_PER_SEC)), want[i]);
        CU_ASSERT_EQUAL(req.status, want[i]);
        if (want[i] == UCACHE_OK) {
            CU_ASSERT_EQUAL(role, want_role[i]);
            CU_ASSERT_EQUAL(read_batch(&(reader_t){cli[i], peer[i], rkey[i]}, 4096, 8, 0x27,
                                       UT_PATH_AM), 0);
        }
    }
    ut_stats(srv, &st);
    CU_ASSERT_EQUAL(st.auth_failures, 2);     /* the two handshakes; nothing after */
    CU_ASSERT_EQUAL(st.rpcs_served, 2 + 16);  /* the two roles, the reads */

    /* replays: a signed read and a signed RPC, each sent twice */
    ut_stats(srv, &st0);
    memset(&hdr, 0, sizeof(hdr));
    hdr.magic = UT_AM_MAGIC;
    hdr.op    = RPC_BULK;
    hdr.id    = 12345;
    hdr.from  = ut_ctx_of(cli[2])->uuid;
    pthread_mutex_lock(&ut_ctx_of(cli[2])->lock);
    ut_auth_sign(ut_ctx_of(cli[2])->auth, &hdr, sizeof(hdr), offsetof(ut_am_req_hdr, auth),
                 ((ut_ucx_peer_t *)peer[2])->uuid, bulk, sizeof(bulk));
    pthread_mutex_unlock(&ut_ctx_of(cli[2])->lock);
    raw_send(cli[2], (ut_ucx_peer_t *)peer[2], &hdr, bulk, sizeof(bulk));
    WAIT_STAT(srv, rpcs_served, st0.rpcs_served + 1);
    raw_send(cli[2], (ut_ucx_peer_t *)peer[2], &hdr, bulk, sizeof(bulk));
    WAIT_STAT(srv, auth_failures, st0.auth_failures + 1);
    hdr.op = RPC_ECHO;
    pthread_mutex_lock(&ut_ctx_of(cli[2])->lock);
    ut_auth_sign(ut_ctx_of(cli[2])->auth, &hdr, sizeof(hdr), offsetof(ut_am_req_hdr, auth),
                 ((ut_ucx_peer_t *)peer[2])->uuid, "echo", 4);
    pthread_mutex_unlock(&ut_ctx_of(cli[2])->lock);
    raw_send(cli[2], (ut_ucx_peer_t *)peer[2], &hdr, "echo", 4);
    WAIT_STAT(srv, rpcs_served, st0.rpcs_served + 2);
    raw_send(cli[2], (ut_ucx_peer_t *)peer[2], &hdr, "echo", 4);
    WAIT_STAT(srv, auth_failures, st0.auth_failures + 2);
    /* addressed to another node: refused though signed and fresh */
    pthread_mutex_lock(&ut_ctx_of(cli[2])->lock);
    ut_auth_sign(ut_ctx_of(cli[2])->auth, &hdr, sizeof(hdr), offsetof(ut_am_req_hdr, auth),
                 ((ut_ucx_peer_t *)peer[2])->uuid + 1, "echo", 4);
    pthread_mutex_unlock(&ut_ctx_of(cli[2])->lock);
    raw_send(cli[2], (ut_ucx_peer_t *)peer[2], &hdr, "echo", 4);
    WAIT_STAT(srv, auth_failures, st0.auth_failures + 3);
    ut_stats(srv, &st);
    CU_ASSERT_EQUAL(st.rpcs_served, st0.rpcs_served + 2);
    CU_ASSERT_EQUAL(st.auth_failures, st0.auth_failures + 3);

    for (i = 0; i < 4; i++) {
        ut_rkey_destroy(rkey[i]);
        ut_peer_destroy(peer[i]);
        ut_ctx_destroy(cli[i]);
    }
    handler_region = NULL;
    ut_mem_destroy(mem);
    ut_ctx_destroy(srv);
    use_tls(NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

const tc_test_t ucx_am_tests[] = {
    {"rpc", test_rpc},
    {"malformed_messages", test_malformed_messages},
    {"forged_replies", test_forged_replies},
    {"remote_put", test_remote_put},
    {"auth_wire", test_auth_wire},
    {NULL, NULL}
};
