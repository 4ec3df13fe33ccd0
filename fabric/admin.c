/*
 * admin.c - the ADMIN service: a node's counters and drain/undrain, asked
 * by the admin tools (ucache status, stat, health, drain).  A serving node
 * answers from its context's thread, never from the transport's handler
 * (which holds the transport lock); drain and undrain need the admin key
 * when the node has one.  The caller's side: uf_admin_call(),
 * ucache_node_stats(), ucache_node_drain().
 */
#include "fabric/fabric.h"
#include "origin/cred.h"
#include "util/key.h"
#include "util/log.h"
#include "util/time.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Drain or return this node (an ADMIN request, or the node's own call):
 * leave or rejoin the members source, refuse or take fills. */
static void uf_admin_drain(struct ucache_context *ctx, bool drain)
{
    if (ctx->node == NULL) {
        return;
    }
    pthread_mutex_lock(&ctx->member_lock);
    if (uf_node_draining(ctx->node) != drain) {
        uf_node_set_draining(ctx->node, drain);
        UC_INFO("node %016" PRIx64 " %s", ctx->self.id,
                drain ? "drained: it takes no new chunks" : "back in service");
        /* a static list or an external source cannot be left: readers skip it */
        if ((ctx->source != NULL) && (ctx->source->join != NULL)) {
            if (drain && ctx->registered) {
                ctx->source->leave(ctx->source_src, ctx->self.id);
                ctx->registered = false;
            } else if (!drain && !ctx->registered) {
                uf_register(ctx);
            }
        }
    }
    pthread_mutex_unlock(&ctx->member_lock);
}

/* Carry out deferred ADMIN requests and answer each with this node's
 * counters (@p status OK), or refuse them.  Called by the background thread
 * without any lock held: the counters take the transport's lock, which a
 * handler already holds, and leaving a source is file I/O. */
void uf_admin_answer(struct ucache_context *ctx, ucache_status_t status)
{
    _Alignas(8) uint8_t rep[UF_ADMIN_REP_MAX];
    ut_rpc_t *rpcs[UF_ADMIN_QUEUE];
    uint16_t ops[UF_ADMIN_QUEUE];
    ucache_stats_t st;
    unsigned n, i;
    size_t len;

    pthread_mutex_lock(&ctx->admin_lock);
    n = ctx->nadmin;
    memcpy(rpcs, ctx->admin_rpcs, n * sizeof(rpcs[0]));
    memcpy(ops, ctx->admin_ops, n * sizeof(ops[0]));
    ctx->nadmin = 0;
    pthread_mutex_unlock(&ctx->admin_lock);
    for (i = 0; (i < n) && (status == UCACHE_OK); i++) {
        if ((ops[i] & ~UF_ADMIN_TAGGED) != UF_ADMIN_STATS) {
            uf_admin_drain(ctx, (ops[i] & ~UF_ADMIN_TAGGED) == UF_ADMIN_DRAIN);
        }
    }
    if (n == 0) {
        return;
    }
    memset(&st, 0, sizeof(st));
    if (status == UCACHE_OK) {
        ucache_stats_get(ctx, &st);
    }
    for (i = 0; i < n; i++) { /* each in the encoding its requester reads */
        len = (status == UCACHE_OK) ?
              uf_admin_rep_encode(&st, (ops[i] & UF_ADMIN_TAGGED) != 0, rep, sizeof(rep)) : 0;
        ut_rpc_reply(rpcs[i], status, NULL, 0, rep, len, 0);
    }
}

/* ADMIN: this node's counters, or drain it, for the admin tools.  The
 * handler runs with the transport's lock held, so the answer comes from the
 * background thread. */
void uf_admin_handler(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    struct ucache_context *ctx = arg;
    uf_admin_msg_t req;
    ut_rpc_t *d;

    bool ok = (uf_admin_req_check(msg, len, &req) == UCACHE_OK);
    unsigned op = req.count & ~UF_ADMIN_TAGGED;

    if (ok && (op != UF_ADMIN_STATS) && (ctx->node != NULL) &&
        (rpc->role < UT_ROLE_ADMIN)) {
        uf_node_denied(ctx->node, (op == UF_ADMIN_DRAIN) ? "drain" : "undrain");
        ut_rpc_reply(rpc, UCACHE_ERR_AUTH, NULL, 0, NULL, 0, 0);
        return;
    }
    if (!ok || ((op != UF_ADMIN_STATS) && (ctx->node == NULL))) {
        UC_WARN("refused a malformed ADMIN request (%zu bytes, operation %u)", len,
                (unsigned)req.count);
        if (ctx->node != NULL) {
            uf_node_bad_request(ctx->node);
        }
        ut_rpc_reply(rpc, UCACHE_ERR_INVALID, NULL, 0, NULL, 0, 0);
        return;
    }
    pthread_mutex_lock(&ctx->admin_lock);
    if ((ctx->nadmin >= UF_ADMIN_QUEUE) || (ut_rpc_defer(rpc, &d) != UCACHE_OK)) {
        pthread_mutex_unlock(&ctx->admin_lock);
        ut_rpc_reply(rpc, UCACHE_ERR_BUSY, NULL, 0, NULL, 0, 0);
        return;
    }
    ctx->admin_ops[ctx->nadmin]    = req.count;
    ctx->admin_rpcs[ctx->nadmin++] = d;
    pthread_mutex_unlock(&ctx->admin_lock);
    pthread_cond_signal(&ctx->cond); /* missed, it is answered within a poll */
}

ucache_status_t uf_admin_call(struct ucache_context *ctx, uf_peer_t *p, unsigned op,
                              uint64_t timeout_ns, ucache_stats_t *stats_p)
{
    /* room for a newer node's counters too */
    _Alignas(8) uint8_t rep[UF_ADMIN_REP_MAX + 256 * sizeof(uf_stat_tv_t)];
    uf_admin_msg_t req = { UF_PROTO_MAGIC, UF_PROTO_VERSION, (uint16_t)op };
    ucache_status_t status;
    bool tagged;
    ut_req_t r;

    if (p->self) {
        if (op != UF_ADMIN_STATS) {
            uf_admin_drain(ctx, op == UF_ADMIN_DRAIN);
        }
        return ucache_stats_get(ctx, stats_p);
    }
    do {
        tagged    = !atomic_load(&p->admin_old);
        req.count = (uint16_t)(op | (tagged ? UF_ADMIN_TAGGED : 0));
        status = ut_rpc_post_timeout(&r, p->tp, UF_RPC_ADMIN, &req, sizeof(req), NULL, 0,
                                     rep, sizeof(rep), timeout_ns);
        if (status == UCACHE_OK) {
            status = ut_wait(ctx->transport, &r, 1, timeout_ns + ctx->cfg.timeout_ns);
            status = (status == UCACHE_INPROGRESS) ? UCACHE_ERR_TIMEOUT : status;
        }
        if (tagged && (status == UCACHE_ERR_INVALID)) {
            /* a node of before tagged counters: ask as it understands */
            UC_DEBUG("node %016llx reads no tagged ADMIN request; asking again",
                     (unsigned long long)p->id);
            atomic_store(&p->admin_old, true);
        }
    } while (tagged && (status == UCACHE_ERR_INVALID));
    if (status != UCACHE_OK) {
        return status;
    }
    status = uf_admin_rep_parse(rep, r.length, stats_p);
    if (status != UCACHE_OK) {
        UF_ADD(ctx, bad_replies, 1);
        UC_WARN("node %016llx sent a malformed ADMIN reply (%zu bytes)",
                (unsigned long long)p->id, r.length);
    }
    return status;
}

/* Node @p id's counters after ADMIN operation @p op. */
static ucache_status_t uf_node_admin(ucache_h ctx, uint64_t id, unsigned op,
                                     uint64_t timeout_ns, ucache_stats_t *stats_p)
{
    ucache_status_t status = UCACHE_ERR_NOT_FOUND;
    uf_view_t *v;
    uf_peer_t *p;
    uint32_t i;

    if ((ctx == NULL) || (stats_p == NULL)) {
        return UCACHE_ERR_INVALID;
    }
    v = uf_view_acquire(ctx);
    i = uf_view_find(v, id);
    if (i != UINT32_MAX) {
        p = uf_view_peer(ctx, v, i);
        status = (p != NULL) ? uf_admin_call(ctx, p, op, timeout_ns, stats_p) :
                 UCACHE_ERR_PEER;
    }
    uf_view_release(v);
    return status;
}

ucache_status_t ucache_node_stats(ucache_h ctx, uint64_t id, uint64_t timeout_ns,
                                  ucache_stats_t *stats_p)
{
    return uf_node_admin(ctx, id, UF_ADMIN_STATS, timeout_ns, stats_p);
}

ucache_status_t ucache_node_drain(ucache_h ctx, uint64_t id, int drain,
                                  uint64_t timeout_ns, ucache_stats_t *stats_p)
{
    return uf_node_admin(ctx, id, drain ? UF_ADMIN_DRAIN : UF_ADMIN_UNDRAIN, timeout_ns,
                         stats_p);
}
