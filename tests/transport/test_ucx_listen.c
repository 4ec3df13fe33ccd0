/*
 * test_ucx_listen.c - the listener (transport/ucx_listen.c): connections from one address
 * and in all are bounded, silent ones closed.
 */
#include "tests/transport/ucx_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Issue [3/11], connection bounds: a keyed listener accepts at most
 * UT_ACCEPT_PER_HOST connections from one address (a flood of 70 from
 * 127.0.0.1: the rest are refused, counted, and the first ones keep
 * working), and closes a connection that sent no authenticated request
 * within UCACHE_TIMEOUT (five keyless ones here).
 */
static void test_listener_bounds(void)
{
    enum { FLOOD = UT_ACCEPT_PER_HOST + 6, KEYLESS = 5 };
    char dir[] = "/tmp/ucache-listen.XXXXXX", key[64], cmd[64];
    uc_config_t scfg = test_config(tc_slow(500 * UC_NSEC_PER_MSEC)), ccfg;
    ut_peer_t *peers[FLOOD], *kl[KEYLESS];
    ucp_ep_h silent[KEYLESS];
    ut_ctx_t *srv, *cli, *anon;
    ut_stats_t st;
    ut_req_t req;
    uint16_t port = 0;
    char reply[8], meta[16];
    unsigned i, ok = 0, refused = 0;
    uint64_t dl;

    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(key, sizeof(key), "%s/cluster", dir);
    CU_ASSERT_EQUAL_FATAL(ucache_keygen(key), UCACHE_OK);
    use_tls("tcp");
    snprintf(scfg.cluster_key_file, sizeof(scfg.cluster_key_file), "%s", key);
    scfg.admin_key_file[0] = '\0';
    srv = make_ctx(&scfg, UC_PROGRESS_THREAD);
    set_handlers(srv);
    CU_ASSERT_EQUAL_FATAL(ut_listen(srv, "127.0.0.1", 0, &port), UCACHE_OK);
    ccfg = scfg;
    ccfg.timeout_ns = tc_slow(2 * UC_NSEC_PER_SEC);
    ccfg.max_eps = 4 * FLOOD;
    cli = make_ctx(&ccfg, UC_PROGRESS_POLL);
    for (i = 0; i < FLOOD; i++) {
        CU_ASSERT_EQUAL_FATAL(ut_peer_create_sockaddr(cli, "127.0.0.1", port, &peers[i]),
                              UCACHE_OK);
        memset(reply, 0, sizeof(reply));
        ut_rpc_post(&req, peers[i], RPC_ECHO, "flood", 6, meta, sizeof(meta), reply,
                    sizeof(reply));
        if (ut_wait(cli, &req, 1, tc_slow(3 * UC_NSEC_PER_SEC)) == UCACHE_OK) {
            ok += (strcmp(reply, "flood") == 0);
        } else {
            refused++;
        }
    }
    ut_stats(srv, &st);
    CU_ASSERT_EQUAL(ok, UT_ACCEPT_PER_HOST);
    CU_ASSERT_EQUAL(refused, FLOOD - UT_ACCEPT_PER_HOST);
    CU_ASSERT(st.conns_refused >= FLOOD - UT_ACCEPT_PER_HOST);
    CU_ASSERT_EQUAL(st.conns_open, UT_ACCEPT_PER_HOST);
    /* the accepted ones go on working */
    memset(reply, 0, sizeof(reply));
    ut_rpc_post(&req, peers[0], RPC_ECHO, "again", 6, meta, sizeof(meta), reply, sizeof(reply));
    CU_ASSERT_EQUAL(ut_wait(cli, &req, 1, tc_slow(3 * UC_NSEC_PER_SEC)), UCACHE_OK);
    CU_ASSERT_STRING_EQUAL(reply, "again");
    for (i = UT_ACCEPT_PER_HOST / 2; i < FLOOD; i++) {   /* room for the keyless ones */
        ut_peer_destroy(peers[i]);
    }
    dl = uc_deadline(tc_slow(3 * UC_NSEC_PER_SEC));
    do {
        ut_progress(cli);
        ut_stats(srv, &st);
    } while ((st.conns_open > UT_ACCEPT_PER_HOST / 2) && (uc_time_ns() < dl) && !usleep(1000));
    CU_ASSERT_EQUAL(st.conns_open, UT_ACCEPT_PER_HOST / 2);

    /* keyless connections: refused at their handshake */
    ccfg.cluster_key_file[0] = '\0';
    anon = make_ctx(&ccfg, UC_PROGRESS_POLL);
    for (i = 0; i < KEYLESS; i++) {
        CU_ASSERT_EQUAL_FATAL(ut_peer_create_sockaddr(anon, "127.0.0.1", port, &kl[i]),
                              UCACHE_OK);
        ut_rpc_post(&req, kl[i], RPC_ECHO, "x", 2, meta, sizeof(meta), reply, sizeof(reply));
        CU_ASSERT_EQUAL(ut_wait(anon, &req, 1, tc_slow(3 * UC_NSEC_PER_SEC)), UCACHE_ERR_AUTH);
    }
    /* connections that say nothing at all: closed by the server at their deadline */
    {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        ucp_ep_params_t ep = {
            .field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR |
                          UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE,
            .flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER,
            .sockaddr = { .addr = (struct sockaddr *)&sa, .addrlen = sizeof(sa) },
            .err_mode = UCP_ERR_HANDLING_MODE_PEER
        };

        pthread_mutex_lock(&ut_ctx_of(anon)->lock);
        for (i = 0; i < KEYLESS; i++) {
            CU_ASSERT_EQUAL(ucp_ep_create(ut_ctx_of(anon)->worker, &ep, &silent[i]), UCS_OK);
        }
        pthread_mutex_unlock(&ut_ctx_of(anon)->lock);
    }
    dl = uc_deadline(tc_slow(5 * UC_NSEC_PER_SEC));
    do {
        ut_progress(anon);
        ut_progress(cli);
        ut_stats(srv, &st);
    } while ((st.conns_unauth_closed < KEYLESS) && (uc_time_ns() < dl) && !usleep(2000));
    CU_ASSERT_EQUAL(st.conns_unauth_closed, KEYLESS);
    CU_ASSERT_EQUAL(st.conns_open, UT_ACCEPT_PER_HOST / 2);
    CU_ASSERT(st.auth_failures >= KEYLESS);

    for (i = 0; i < KEYLESS; i++) {
        ut_peer_destroy(kl[i]);
        pthread_mutex_lock(&ut_ctx_of(anon)->lock);
        ut_ucx_do_ep_close(ut_ctx_of(anon), silent[i]);
        pthread_mutex_unlock(&ut_ctx_of(anon)->lock);
    }
    ut_ctx_destroy(anon);
    for (i = 0; i < UT_ACCEPT_PER_HOST / 2; i++) {
        ut_peer_destroy(peers[i]);
    }
    ut_ctx_destroy(cli);
    ut_stats(srv, &st);
    ut_ctx_destroy(srv);
    /* UCX 1.13 delivered some closed connection's write event to a new one
     * on the same descriptor and aborted in 5 of 300 runs of this test */
    printf("\n    %" PRIu64 " stale listener events dropped (ucx_guard.c) ", st.stale_events);
    use_tls(NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

const tc_test_t ucx_listen_tests[] = {
    {"listener_bounds", test_listener_bounds},
    {NULL, NULL}
};
