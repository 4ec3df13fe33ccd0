/*
 * ucx_peer.c - the UCX backend's peers: endpoints, the connection
 * handshake, failure and back-off, the LRU of open endpoints.  A peer's
 * state is changed only with ctx->lock held, by the functions the diagram
 * names.
 *
 * Peer states (ut_peer_state_t):
 *
 *          peer_create()
 *               |
 *               v
 *   +-------> IDLE -- do_peer_connect() --> CONNECTING -- PING answered --> CONNECTED
 *   |          ^                              |                                |  |
 *   |          |                              | no answer by the deadline,     |  |
 *   |          |                              | error callback                 |  |
 *   |          +-- ut_ucx_do_peer_disconnect(): LRU cap, idle ep --------------+  |
 *   |                                         v                                   |
 *   +-- do_peer_connect() once retry_ns --- FAILED <-- ut_ucx_do_peer_fail() -----+
 *       has passed (a probe: nobody          an error callback, an operation's
 *       waits for it)                        deadline
 *
 * The handshake runs with the lock released: a peer that does not answer
 * holds up only those who wait for it, never the other peers' operations.
 * A first contact is waited for (within UCACHE_TIMEOUT); a retry of a
 * failed peer is a probe that nobody waits for - operations keep failing
 * fast until it has succeeded.  retry_ns doubles with every failure in a
 * row (up to PEER_RETRY_MAX) and is reset by a handshake that succeeds.
 */
#include "transport/ucx_int.h"

#include <netdb.h>

/* ------------------------------------------------------------------------ */
/* Peers and endpoints                                                       */
/* ------------------------------------------------------------------------ */

/* An open peer with nothing out (that may be closed for another). */
static bool do_lru_idle_ok(const ut_lru_link_t *l)
{
    const ut_ucx_peer_t *p = UT_LRU_ENTRY(l, ut_ucx_peer_t, lru);

    return (p->inflight == 0) && (atomic_load(&p->state) == UT_PEER_CONNECTED);
}

/* The least recently used open peer with nothing out, or NULL. */
static ut_ucx_peer_t *do_lru_idle(ut_ucx_ctx_t *ctx)
{
    ut_lru_link_t *l = ut_lru_oldest(&ctx->lru, do_lru_idle_ok);

    return (l != NULL) ? UT_LRU_ENTRY(l, ut_ucx_peer_t, lru) : NULL;
}

/* Close an endpoint without waiting: outstanding UCX requests on it complete
 * (with an error) from inside this call or later progress. */
void ut_ucx_do_ep_close(ut_ucx_ctx_t *ctx, ucp_ep_h ep)
{
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
        .flags        = UCP_EP_CLOSE_FLAG_FORCE
    };
    ut_ucx_closing_t *c;
    void *req;

    req = ucp_ep_close_nbx(ep, &param);
    if ((req == NULL) || UCS_PTR_IS_ERR(req)) {
        return;
    }
    c = malloc(sizeof(*c));
    if (c == NULL) {
        /* Cannot track it: wait for it here (we hold the lock already). */
        while (ucp_request_check_status(req) == UCS_INPROGRESS) {
            ucp_worker_progress(ctx->worker);
        }
        ucp_request_free(req);
        return;
    }
    c->req       = req;
    c->next      = ctx->closing;
    ctx->closing = c;
}

void ut_ucx_do_closing_reap(ut_ucx_ctx_t *ctx)
{
    ut_ucx_closing_t **pp = &ctx->closing, *c;

    while ((c = *pp) != NULL) {
        if (ucp_request_check_status(c->req) != UCS_INPROGRESS) {
            ucp_request_free(c->req);
            *pp = c->next;
            free(c);
        } else {
            pp = &c->next;
        }
    }
}

void ut_ucx_do_peer_disconnect(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer,
                               ut_peer_state_t new_state)
{
    ucp_ep_h ep = peer->ep;

    if (ep == NULL) {
        atomic_store(&peer->state, new_state);
        return;
    }
    peer->ep = NULL;
    if (!peer->client) {
        ut_lru_unlink(&ctx->lru, &peer->lru);
        ctx->nopen--;
    }
    atomic_store(&peer->state, new_state);
    ut_ucx_do_ep_close(ctx, ep);
}

/*
 * Fail a peer: every request still waiting on it completes with @p status
 * (UCACHE_ERR_PEER from the error callback, UCACHE_ERR_TIMEOUT from a
 * deadline); closing the endpoint cancels what UCX still holds.
 */
void ut_ucx_do_peer_fail(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer,
                         ucache_status_t status)
{
    uint32_t i;
    ut_req_t *req;

    int state = atomic_load(&peer->state);

    if ((state != UT_PEER_CONNECTED) && (state != UT_PEER_CONNECTING)) {
        return;
    }
    peer->fail_status = status;
    atomic_store(&peer->failed_at, uc_time_ns());
    peer->retry_ns = (peer->retry_ns == 0) ? ctx->cfg.peer_retry_ns :
                     (2 * peer->retry_ns < ctx->cfg.peer_retry_max_ns) ?
                     2 * peer->retry_ns : ctx->cfg.peer_retry_max_ns;
    UT_STAT_ADD(ctx, peer_failures, 1);
    if ((state == UT_PEER_CONNECTED) || peer->hs_wait) {
        UC_WARN("peer %s failed: %s; its operations fail for %llu ms, then it is "
                "probed", peer->name, ucache_strerror(status),
                (unsigned long long)(peer->retry_ns / UC_NSEC_PER_MSEC));
    } else {
        UC_DEBUG("probe of %s failed: %s; next in %llu ms", peer->name,
                 ucache_strerror(status),
                 (unsigned long long)(peer->retry_ns / UC_NSEC_PER_MSEC));
    }

    for (i = 0; (i < ctx->cfg.max_outstanding) && (peer->inflight > 0); i++) {
        req = ctx->slots[i];
        if ((req != NULL) && (req->priv.peer == &peer->super)) {
            ut_ucx_do_req_set_status(req, status);
            if (req->priv.pending & UT_PEND_REPLY) {
                ut_ucx_do_req_clear(ctx, req, UT_PEND_REPLY);
            }
        }
    }
    /* UCX-owned parts (gets, sends, rendezvous receives) finish with errors
     * as the endpoint is closed; their callbacks keep the status set above. */
    ut_ucx_do_peer_disconnect(ctx, peer, UT_PEER_FAILED);
}

static void ut_ucx_ep_err_cb(void *arg, ucp_ep_h ep, ucs_status_t status)
{
    ut_ucx_peer_t *peer = arg;
    ut_ucx_ctx_t *ctx   = ut_ctx_of(peer->super.ctx);

    if (peer->ep != ep) {
        return; /* an endpoint we already closed */
    }
    UC_DEBUG("endpoint to %s reported %s", peer->name, ucs_status_string(status));
    ut_ucx_do_peer_fail(ctx, peer, UCACHE_ERR_PEER);
}

/*
 * Whether the endpoint's RMA lanes are native one-sided (verbs rc/dc, ugni,
 * ...) rather than tcp's message-based emulation, and the distinct
 * "transport/device" of all its lanes into @p tls.  UCX 1.13 has no query
 * for an endpoint's transports, so this reads ucp_ep_print_info().
 */
int ut_ucx_do_ep_native_rma(ucp_ep_h ep, char *tls, size_t cap)
{
    static const char *const emulated[] = { "tcp", "sockcm", "self", NULL };
    char *text = NULL, *line, *save = NULL, *tl, *end;
    size_t size = 0;
    int native = 0;
    unsigned i;
    bool more;
    FILE *f;

    f = open_memstream(&text, &size);
    if (f == NULL) {
        return 0;
    }
    ucp_ep_print_info(ep, f);
    fclose(f);
    tls[0] = '\0';
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strstr(line, "lane[") == NULL) {
            continue;
        }
        /* "#   lane[1]:  2:rc_mlx5/mlx5_0:1.0 md[1] ... rma_bw#0" */
        tl = strchr(strstr(line, "lane["), ']');
        if ((tl == NULL) || (tl[1] != ':')) {
            continue;
        }
        tl += 2;
        tl += strspn(tl, " ");
        tl += strspn(tl, "0123456789");
        if (*tl++ != ':') {
            continue;
        }
        end = tl + strcspn(tl, " \t");
        more = (*end != '\0');
        *end = '\0';
        if ((strstr(tls, tl) == NULL) && (strlen(tls) + strlen(tl) + 2 < cap)) {
            snprintf(tls + strlen(tls), cap - strlen(tls), "%s%s", tls[0] ? "," : "", tl);
        }
        if (!more || (strstr(end + 1, "rma_bw") == NULL)) {
            continue;
        }
        end = strchr(tl, '/');
        if (end == NULL) {
            continue;
        }
        *end = '\0';
        for (i = 0; emulated[i] != NULL; i++) {
            if (strcmp(tl, emulated[i]) == 0) {
                break;
            }
        }
        if (emulated[i] == NULL) {
            native = 1;
        }
    }
    free(text);
    return native;
}

/*
 * Post the handshake of a new endpoint: one round trip (a PING that
 * carries our address; the answer carries the peer's context id).  When
 * the answer is in, UCX's wireup has finished on both sides.  (UCX 1.13
 * aborts a server that must answer a wireup from a client that already
 * left: finishing the handshake before anything else is done on the
 * endpoint keeps that window small.)
 */
static ucache_status_t do_hs_post(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer)
{
    ut_req_t *req = &peer->hs;

    ut_ucx_do_req_start(req, &peer->super, UT_PATH_NONE);
    req->priv.buf      = NULL;
    req->priv.cap      = 0;
    peer->hs_uuid      = 0;
    req->priv.meta     = &peer->hs_uuid;
    req->priv.meta_cap = sizeof(peer->hs_uuid);
    /* our address goes with it: the peer answers deferred requests on an
     * endpoint of its own to us (ut_ucx_do_client_learn) */
    return ut_ucx_do_am_request(ctx, req, peer, UT_OP_PING, ctx->addr_blob, ctx->addr_blob_len);
}

/*
 * CONNECTING: end the handshake if its answer is in or its deadline has
 * passed (then the peer is CONNECTED or FAILED); else leave it.
 */
static void do_hs_check(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer)
{
    ucache_status_t status = peer->hs.status;

    if (atomic_load(&peer->state) != UT_PEER_CONNECTING) {
        return;
    }
    if (status == UCACHE_INPROGRESS) {
        if (uc_time_ns() <= peer->hs.priv.deadline) {
            return;
        }
        if (peer->hs_wait) {
            UC_WARN("%s did not answer the connection handshake within %llu ms",
                    peer->name, (unsigned long long)(ctx->cfg.timeout_ns /
                                                     UC_NSEC_PER_MSEC));
        }
        ut_ucx_do_peer_fail(ctx, peer, UCACHE_ERR_TIMEOUT);
        return;
    }
    if ((status == UCACHE_OK) && (peer->hs.meta_length == sizeof(peer->hs_uuid))) {
        if (peer->uuid == 0) {
            peer->uuid = peer->hs_uuid; /* a listener's context: now we know it */
        } else if (peer->uuid != peer->hs_uuid) {
            UC_WARN("%s answered as another context (restarted?)", peer->name);
            status = UCACHE_ERR_STALE;
        }
    }
    if (status != UCACHE_OK) {
        ut_ucx_do_peer_fail(ctx, peer, status);
        return;
    }
    if (!peer->hs_wait || (peer->retry_ns != 0)) {
        UC_INFO("peer %s answers again", peer->name);
    }
    peer->retry_ns = 0;
    peer->heard_at = uc_time_ns();
    atomic_store(&peer->state, UT_PEER_CONNECTED);
}

/*
 * ctx->lock held: wait until @p peer's handshake ends, with the lock
 * released while waiting (other threads post and progress meanwhile).
 * The handshake's own deadline bounds the wait.
 */
static void do_hs_await(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer)
{
    uint32_t gen = peer->gen;

    for (;;) {
        do_hs_check(ctx, peer);
        if ((atomic_load(&peer->state) != UT_PEER_CONNECTING) || (peer->gen != gen)) {
            return;
        }
        pthread_mutex_unlock(&ctx->lock);
        ut_ucx_wait(&ctx->super, &peer->hs, 1, UT_WAIT_CAP_NS * 10);
        pthread_mutex_lock(&ctx->lock);
    }
}

static ucache_status_t do_peer_connect(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer, bool wait)
{
    ucp_ep_params_t params = {
        .field_mask      = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                           UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                           UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .address         = peer->ucp_addr,
        .err_mode        = UCP_ERR_HANDLING_MODE_PEER,
        .err_handler     = { .cb = ut_ucx_ep_err_cb, .arg = peer }
    };
    ut_ucx_peer_t *victim;

    if (peer->ucp_addr == NULL) { /* a listener's address: client-server mode */
        params.field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR |
                            UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                            UCP_EP_PARAM_FIELD_ERR_HANDLER;
        params.flags            = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
        params.sockaddr.addr    = (const struct sockaddr *)&peer->sa;
        params.sockaddr.addrlen = peer->salen;
    }
    ucache_status_t ret;
    ucs_status_t status;
    ucp_ep_h ep;

    if (peer->hs.priv.pending != 0) {
        /* the last handshake's send is still held by UCX (its endpoint is
         * closing): not yet */
        return (atomic_load(&peer->state) == UT_PEER_FAILED) ? peer->fail_status :
               UCACHE_ERR_AGAIN;
    }
    /* A requester's endpoint is outside the cap: UCX matches it to the
     * connection the requester made (no new socket or queue pair), and
     * closing it would cut that connection; UT_CLIENTS_MAX (ucx_am.c)
     * bounds them. */
    while (!peer->client && (ctx->nopen >= ctx->cfg.max_eps)) {
        victim = do_lru_idle(ctx);
        if (victim == NULL) {
            UC_WARN("all %u endpoints (UCACHE_MAX_EPS) are busy; cannot "
                    "connect to %s now", ctx->cfg.max_eps, peer->name);
            return UCACHE_ERR_AGAIN;
        }
        UC_DEBUG("closing idle endpoint to %s (UCACHE_MAX_EPS=%u)",
                 victim->name, ctx->cfg.max_eps);
        ut_ucx_do_peer_disconnect(ctx, victim, UT_PEER_IDLE);
        UT_STAT_ADD(ctx, eps_evicted, 1);
    }

    status = ucp_ep_create(ctx->worker, &params, &ep);
    if (status != UCS_OK) {
        UC_ERROR("cannot connect to %s: %s", peer->name, ucs_status_string(status));
        peer->fail_status = ut_ucs_status(status);
        atomic_store(&peer->failed_at, uc_time_ns());
        atomic_store(&peer->state, UT_PEER_FAILED);
        return UCACHE_ERR_PEER;
    }
    peer->ep         = ep;
    peer->gen++;
    peer->native_get = -1;
    if (!peer->client) {
        ctx->nopen++;
        ut_lru_push(&ctx->lru, &peer->lru);
    }
    UT_STAT_ADD(ctx, connects, 1);
    if (peer->client) {
        /* a requester is waiting for our reply, progressing: the reply
         * itself ends the handshake */
        atomic_store(&peer->state, UT_PEER_CONNECTED);
        return UCACHE_OK;
    }
    atomic_store(&peer->state, UT_PEER_CONNECTING);
    peer->hs_wait = wait;
    ret = do_hs_post(ctx, peer);
    if (ret != UCACHE_OK) {
        ut_ucx_do_peer_fail(ctx, peer, ret);
        return ret;
    }
    if (!wait) {
        return peer->fail_status; /* a probe: this operation fails fast */
    }
    do_hs_await(ctx, peer);
    switch (atomic_load(&peer->state)) {
    case UT_PEER_CONNECTED: return UCACHE_OK;
    case UT_PEER_FAILED:    return peer->fail_status;
    default:                return UCACHE_ERR_AGAIN; /* closed meanwhile (LRU) */
    }
}

/*
 * Make sure the peer has an endpoint that finished its handshake.  A first
 * contact waits for the handshake; a failed peer fails fast for retry_ns,
 * then a probe is started that this operation does not wait for.
 */
ucache_status_t ut_ucx_do_peer_ensure(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer)
{
    do_hs_check(ctx, peer);
    switch (atomic_load(&peer->state)) {
    case UT_PEER_CONNECTED:
        if (!peer->client) {
            ut_lru_touch(&ctx->lru, &peer->lru);
        }
        return UCACHE_OK;
    case UT_PEER_CONNECTING:
        if (!peer->hs_wait) {
            ut_ucx_do_progress(ctx);   /* a probe: moved on, never waited for */
            do_hs_check(ctx, peer);
            return (atomic_load(&peer->state) == UT_PEER_CONNECTED) ? UCACHE_OK :
                   (peer->fail_status != UCACHE_OK) ? peer->fail_status : UCACHE_ERR_PEER;
        }
        do_hs_await(ctx, peer);
        return (atomic_load(&peer->state) == UT_PEER_CONNECTED) ? UCACHE_OK :
               (atomic_load(&peer->state) == UT_PEER_FAILED) ? peer->fail_status :
               UCACHE_ERR_AGAIN;
    case UT_PEER_FAILED:
        if (uc_time_ns() - atomic_load(&peer->failed_at) < peer->retry_ns) {
            return peer->fail_status;
        }
        UC_DEBUG("probing failed peer %s", peer->name);
        return do_peer_connect(ctx, peer, false);
    default:
        return do_peer_connect(ctx, peer, true);
    }
}

/* ------------------------------------------------------------------------ */
/* Peer and rkey objects                                                     */
/* ------------------------------------------------------------------------ */

ucache_status_t ut_ucx_peer_create(ut_ctx_t *c, const void *blob,
                                   size_t len, ut_peer_t **peer_p)
{
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);
    ut_addr_body body;
    ut_ucx_peer_t *peer;
    ucache_status_t status;
    void *addr;
    size_t plen;

    status = ut_blob_take(&ctx->st.bad_input, blob, len, UT_ADDR_MAGIC,
                          "a peer address", &body, sizeof(body), &addr, &plen);
    if (status != UCACHE_OK) {
        return status;
    }
    peer = calloc(1, sizeof(*peer));
    if (peer == NULL) {
        free(addr);
        return UCACHE_ERR_NO_MEMORY;
    }
    peer->ucp_addr     = addr;
    peer->ucp_addr_len = plen;
    peer->uuid         = body.uuid;
    peer->super.ctx    = c;
    peer->native_get   = -1;
    atomic_init(&peer->state, UT_PEER_IDLE);
    snprintf(peer->name, sizeof(peer->name), "%.*s:%u", UT_HOST_MAX - 1,
             body.host, body.pid);
    /* same host: the same hostname, or (another namespace of it: a pod)
     * its mapping socket in the host's shared UCACHE_MAP_DIR */
    if (memchr(body.mapname, '\0', sizeof(body.mapname)) != NULL) {
        peer->map_dir = ut_mapfd_present(ctx->cfg.map_dir, body.mapname);
        if (peer->map_dir || (strncmp(body.host, ctx->host, sizeof(body.host)) == 0)) {
            memcpy(peer->mapname, body.mapname, sizeof(peer->mapname));
        }
    }

    pthread_mutex_lock(&ctx->lock);
    peer->all_next = ctx->peers;
    ctx->peers     = peer;
    pthread_mutex_unlock(&ctx->lock);
    *peer_p = &peer->super;
    return UCACHE_OK;
}

ucache_status_t ut_ucx_peer_create_sockaddr(ut_ctx_t *c, const char *host,
                                            uint16_t port, ut_peer_t **peer_p)
{
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);
    struct sockaddr_storage sa;
    ut_ucx_peer_t *peer;
    socklen_t salen;

    if (ut_sockaddr_resolve(host, port, AF_UNSPEC, &sa, &salen) != UCACHE_OK) {
        UT_STAT_ADD(ctx, bad_input, 1);
        return UCACHE_ERR_INVALID;
    }
    peer = calloc(1, sizeof(*peer));
    if (peer == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    memcpy(&peer->sa, &sa, salen);
    peer->salen      = salen;
    peer->super.ctx  = c;
    peer->native_get = -1;
    atomic_init(&peer->state, UT_PEER_IDLE);
    snprintf(peer->name, sizeof(peer->name), "%.*s:%u", UT_HOST_MAX - 1, host, port);
    pthread_mutex_lock(&ctx->lock);
    peer->all_next = ctx->peers;
    ctx->peers     = peer;
    pthread_mutex_unlock(&ctx->lock);
    *peer_p = &peer->super;
    return UCACHE_OK;
}

void ut_ucx_peer_destroy(ut_peer_t *p)
{
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)p, **pp;
    ut_ucx_ctx_t *ctx   = ut_ctx_of(p->ctx);
    bool warned = false;
    uint64_t t0;
    uint32_t i;

    pthread_mutex_lock(&ctx->lock);
    if (peer->nrkeys > 0) {
        UC_WARN("peer %s destroyed with %u remote keys still unpacked",
                peer->name, peer->nrkeys);
    }
    /* Requests still in flight complete with UCACHE_ERR_CANCELED. */
    for (i = 0; (i < ctx->cfg.max_outstanding) && (peer->inflight > 0); i++) {
        ut_req_t *req = ctx->slots[i];
        if ((req != NULL) && (req->priv.peer == p)) {
            ut_ucx_do_req_set_status(req, UCACHE_ERR_CANCELED);
            if (req->priv.pending & UT_PEND_REPLY) {
                ut_ucx_do_req_clear(ctx, req, UT_PEND_REPLY);
            }
        }
    }
    ut_ucx_do_peer_disconnect(ctx, peer, UT_PEER_IDLE);
    t0 = uc_time_ns();
    while (peer->inflight > 0) { /* UCX completes the rest as the ep closes */
        ut_ucx_do_progress(ctx);
        if (!warned && (uc_time_ns() - t0 > 10 * UC_NSEC_PER_SEC)) {
            UC_ERROR("%u requests to %s still held by UCX 10 s after the "
                     "endpoint was closed", peer->inflight, peer->name);
            warned = true;
        }
    }
    for (pp = &ctx->peers; *pp != NULL; pp = &(*pp)->all_next) {
        if (*pp == peer) {
            *pp = peer->all_next;
            break;
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    free(peer->ucp_addr);
    free(peer);
}

ut_peer_state_t ut_ucx_peer_state(ut_peer_t *p)
{
    return (ut_peer_state_t)atomic_load(&((ut_ucx_peer_t *)p)->state);
}

void ut_ucx_peer_transports(ut_peer_t *p, char *buf, size_t cap)
{
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)p;
    ut_ucx_ctx_t *ctx = (ut_ucx_ctx_t *)p->ctx;

    pthread_mutex_lock(&ctx->lock);
    snprintf(buf, cap, "%s", peer->tls);
    pthread_mutex_unlock(&ctx->lock);
}

const char *ut_ucx_peer_name(ut_peer_t *p)
{
    return ((ut_ucx_peer_t *)p)->name;
}
