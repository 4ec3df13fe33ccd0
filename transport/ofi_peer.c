/*
 * ofi_peer.c - the libfabric backend's peers: made from an address blob
 * (checked) or a listener's host:port, put in the address vector on first
 * contact, and introduced by a PING that carries our address (so the peer
 * can answer us) and answers with the peer's context uuid (a restarted
 * peer at the same address is told apart).  A first contact waits for the
 * handshake; a failed peer fails fast for its back-off, then a probe is
 * sent that nobody waits for.  Beside them: the requesters a serving
 * context learnt from their PINGs, and the listener.
 *
 *   IDLE --ensure--> CONNECTING --PING answered--> CONNECTED
 *                        |                            |
 *                        +--- error, deadline ---> FAILED --back-off--> probe
 */
#include "transport/ofi_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>

/* ctx->lock held: @p peer no longer counts against UCACHE_MAX_EPS. */
static void do_open_end(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *peer)
{
    if (peer->open) {
        ut_lru_unlink(&ctx->lru, &peer->lru);
        peer->open = false;
        ctx->nopen--;
    }
}

/* ctx->lock held: the handshake ended (peer->hs completed). */
void ut_ofi_do_handshake_done(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *peer)
{
    ucache_status_t status = peer->hs.status;

    if ((status == UCACHE_OK) && (peer->hs.meta_length == sizeof(peer->hs_uuid))) {
        if (peer->uuid == 0) {
            peer->uuid = peer->hs_uuid; /* a listener's context: now we know it */
        } else if (peer->uuid != peer->hs_uuid) {
            UC_WARN("%s answered as another context (restarted?)", peer->pname);
            status = UCACHE_ERR_STALE;
        }
    } else if (status == UCACHE_OK) {
        status = UCACHE_ERR_INVALID;
    }
    if (status != UCACHE_OK) {
        ut_ofi_do_peer_fail(ctx, peer, status);
        return;
    }
    if (peer->retry_ns != 0) {
        UC_INFO("peer %s answers again", peer->pname);
    }
    /* a same-host provider: can we see its process (not in another pid
     * namespace)?  Then its exit fails its requests at once. */
    peer->pid_seen = ctx->local && (peer->pid > 0) &&
                     ((kill(peer->pid, 0) == 0) || (errno == EPERM));
    peer->retry_ns = 0;
    atomic_store(&peer->state, UT_PEER_CONNECTED);
}

bool ut_ofi_peer_gone(const ut_ofi_ctx_t *ctx, const ut_ofi_peer_t *peer)
{
    return ctx->local && peer->pid_seen && (kill(peer->pid, 0) != 0) && (errno == ESRCH);
}

/* ctx->lock held: the peer is unreachable or broken; its requests fail
 * with @p status, new ones fail fast until its back-off has passed. */
void ut_ofi_do_peer_fail(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *peer, ucache_status_t status)
{
    int old = atomic_exchange(&peer->state, UT_PEER_FAILED);

    do_open_end(ctx, peer);
    if (old != UT_PEER_FAILED) {
        UT_OFI_STAT_ADD(ctx, peer_failures, 1);
        peer->retry_ns = (peer->retry_ns == 0) ? ctx->cfg.peer_retry_ns :
                         (2 * peer->retry_ns > ctx->cfg.peer_retry_max_ns) ?
                         ctx->cfg.peer_retry_max_ns : 2 * peer->retry_ns;
        UC_INFO("peer %s failed (%s); retried in %llu ms", peer->pname,
                ucache_strerror(status),
                (unsigned long long)(peer->retry_ns / UC_NSEC_PER_MSEC));
    }
    peer->fail_status = status;
    atomic_store(&peer->failed_at, uc_time_ns());
    /* (it stays in the address vector: removing a peer with operations
     * out crashes shm's progress in libfabric 1.17, and nothing needs it -
     * a receive a frozen sender could strand is a bounce buffer's) */
    ut_ofi_do_peer_reqs_fail(ctx, peer, status);
}

static ucache_status_t do_av_insert(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *peer)
{
    const void *addr = (peer->name.len > 0) ? (const void *)peer->name.name :
                       (const void *)&peer->sa;
    int ret;

    if (peer->fa != FI_ADDR_NOTAVAIL) {
        return UCACHE_OK;
    }
    ret = fi_av_insert(ctx->av, addr, 1, &peer->fa, 0, NULL);
    if (ret != 1) {
        peer->fa = FI_ADDR_NOTAVAIL;
        UC_ERROR("cannot put %s in the address vector: %s", peer->pname,
                 ut_ofi_strerror((ret < 0) ? -ret : FI_EINVAL));
        return UCACHE_ERR_PEER;
    }
    return UCACHE_OK;
}

/* ctx->lock held: wait (lock released) until @p peer's handshake ends;
 * its own deadline bounds the wait. */
static void do_hs_await(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *peer)
{
    while (peer->hs.status == UCACHE_INPROGRESS) {
        pthread_mutex_unlock(&ctx->lock);
        ut_ofi_wait(&ctx->super, &peer->hs, 1, 10 * UC_NSEC_PER_MSEC);
        pthread_mutex_lock(&ctx->lock);
    }
}

/* An open peer with nothing out (that may be closed for another). */
static bool do_lru_idle_ok(const ut_lru_link_t *l)
{
    const ut_ofi_peer_t *p = UT_LRU_ENTRY(l, ut_ofi_peer_t, lru);

    return (p->inflight == 0) && (atomic_load(&p->state) == UT_PEER_CONNECTED);
}

/* The least recently used open peer with nothing out, or NULL. */
static ut_ofi_peer_t *do_lru_idle(ut_ofi_ctx_t *ctx)
{
    ut_lru_link_t *l = ut_lru_oldest(&ctx->lru, do_lru_idle_ok);

    return (l != NULL) ? UT_LRU_ENTRY(l, ut_ofi_peer_t, lru) : NULL;
}

/*
 * ctx->lock held: room for one more open peer under UCACHE_MAX_EPS - the
 * least recently used idle one is closed: out of the address vector, so
 * the provider lets its connection go (rxm) and a later use starts over
 * with a handshake.  UCACHE_ERR_AGAIN if every open peer has requests out.
 * Providers without connections (ctx->conns) keep every peer.
 */
static ucache_status_t do_open_room(ut_ofi_ctx_t *ctx, const ut_ofi_peer_t *peer)
{
    ut_ofi_peer_t *victim;

    while (ctx->conns && (ctx->nopen >= ctx->cfg.max_eps)) {
        victim = do_lru_idle(ctx);
        if (victim == NULL) {
            UC_WARN("all %u endpoints (UCACHE_MAX_EPS) are busy; cannot connect to %s now",
                    ctx->cfg.max_eps, peer->pname);
            return UCACHE_ERR_AGAIN;
        }
        UC_DEBUG("closing idle endpoint to %s (UCACHE_MAX_EPS=%u)", victim->pname,
                 ctx->cfg.max_eps);
        do_open_end(ctx, victim);
        atomic_store(&victim->state, UT_PEER_IDLE);
        fi_av_remove(ctx->av, &victim->fa, 1, 0);
        victim->fa = FI_ADDR_NOTAVAIL;
        UT_OFI_STAT_ADD(ctx, eps_evicted, 1);
    }
    return UCACHE_OK;
}

static ucache_status_t do_peer_connect(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *peer, bool wait)
{
    ucache_status_t ret;

    if (peer->hs.status == UCACHE_INPROGRESS) { /* a probe still out */
        return (atomic_load(&peer->state) == UT_PEER_FAILED) ? peer->fail_status :
               UCACHE_ERR_AGAIN;
    }
    if (!peer->open) {
        ret = do_open_room(ctx, peer);
        if (ret != UCACHE_OK) {
            return ret;
        }
    }
    ret = do_av_insert(ctx, peer);
    if (ret != UCACHE_OK) {
        ut_ofi_do_peer_fail(ctx, peer, ret);
        return ret;
    }
    if (!peer->open) {
        peer->open = true;
        ctx->nopen++;
        ut_lru_push(&ctx->lru, &peer->lru);
    }
    UT_OFI_STAT_ADD(ctx, connects, 1);
    atomic_store(&peer->state, UT_PEER_CONNECTING);
    ut_ofi_do_req_start(&peer->hs, &peer->super, UT_PATH_NONE);
    peer->hs.priv.meta     = &peer->hs_uuid;
    peer->hs.priv.meta_cap = sizeof(peer->hs_uuid);
    ret = ut_ofi_do_rpc_send(ctx, &peer->hs, peer, UT_OP_PING, ctx->addr_blob,
                             ctx->addr_blob_len);
    if (ret != UCACHE_OK) {
        peer->hs.status = ret;
        ut_ofi_do_peer_fail(ctx, peer, ret);
        return ret;
    }
    if (!wait) {
        return peer->fail_status; /* a probe: this operation fails fast */
    }
    do_hs_await(ctx, peer);
    switch (atomic_load(&peer->state)) {
    case UT_PEER_CONNECTED: return UCACHE_OK;
    case UT_PEER_FAILED:    return peer->fail_status;
    default:                return UCACHE_ERR_AGAIN;
    }
}

ucache_status_t ut_ofi_do_peer_ensure(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *peer)
{
    switch (atomic_load(&peer->state)) {
    case UT_PEER_CONNECTED:
        if (peer->open) { /* (a requester of ours is not in the LRU) */
            ut_lru_touch(&ctx->lru, &peer->lru);
        }
        return UCACHE_OK;
    case UT_PEER_CONNECTING:
        do_hs_await(ctx, peer);
        return (atomic_load(&peer->state) == UT_PEER_CONNECTED) ? UCACHE_OK :
               (atomic_load(&peer->state) == UT_PEER_FAILED) ? peer->fail_status :
               UCACHE_ERR_AGAIN;
    case UT_PEER_FAILED:
        if ((uc_time_ns() - atomic_load(&peer->failed_at) < peer->retry_ns) ||
            ut_ofi_peer_gone(ctx, peer)) {
            return peer->fail_status;
        }
        UC_DEBUG("probing failed peer %s", peer->pname);
        return do_peer_connect(ctx, peer, false);
    default:
        return do_peer_connect(ctx, peer, true);
    }
}

/* ------------------------------------------------------------------------ */
/* Peer objects                                                              */
/* ------------------------------------------------------------------------ */

static ut_ofi_peer_t *do_peer_new(ut_ofi_ctx_t *ctx)
{
    ut_ofi_peer_t *peer = calloc(1, sizeof(*peer));

    if (peer == NULL) {
        return NULL;
    }
    peer->super.ctx = &ctx->super;
    peer->fa        = FI_ADDR_NOTAVAIL;
    peer->hs.status = UCACHE_OK;
    peer->ka.status = UCACHE_OK;
    atomic_init(&peer->state, UT_PEER_IDLE);
    return peer;
}

/* @p blob as a libfabric address of our provider; the body and name out. */
ucache_status_t ut_ofi_do_addr_take(ut_ofi_ctx_t *ctx, const void *blob, size_t len,
                                    ut_addr_body *body, ut_ofi_name *name)
{
    ucache_status_t status;
    size_t plen;
    void *payload;

    status = ut_blob_take(&ctx->st.bad_input, blob, len, UT_OFI_ADDR_MAGIC,
                          "a peer address", body, sizeof(*body), &payload, &plen);
    if (status != UCACHE_OK) {
        return status;
    }
    if (plen == sizeof(*name)) {
        memcpy(name, payload, sizeof(*name));
    }
    free(payload);
    if ((plen != sizeof(*name)) || (name->len == 0) || (name->len > sizeof(name->name)) ||
        (memchr(name->prov, '\0', sizeof(name->prov)) == NULL)) {
        UT_OFI_STAT_ADD(ctx, bad_input, 1);
        UC_ERROR("a peer address whose libfabric part does not check out");
        return UCACHE_ERR_INVALID;
    }
    if ((strcmp(name->prov, ctx->main.name.prov) != 0) ||
        (name->addr_format != ctx->main.name.addr_format)) {
        UT_OFI_STAT_ADD(ctx, bad_input, 1);
        UC_ERROR("a peer on libfabric provider '%s', not ours ('%s'): UCACHE_OFI_PROVIDER "
                 "differs", name->prov, ctx->main.name.prov);
        return UCACHE_ERR_INVALID;
    }
    return UCACHE_OK;
}

ucache_status_t ut_ofi_peer_create(ut_ctx_t *c, const void *blob, size_t len,
                                   ut_peer_t **peer_p)
{
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(c);
    ucache_status_t status;
    ut_ofi_peer_t *peer;
    ut_addr_body body;
    ut_ofi_name name;

    status = ut_ofi_do_addr_take(ctx, blob, len, &body, &name);
    if (status != UCACHE_OK) {
        return status;
    }
    peer = do_peer_new(ctx);
    if (peer == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    peer->name = name;
    peer->uuid = body.uuid;
    peer->pid  = (pid_t)body.pid;
    snprintf(peer->pname, sizeof(peer->pname), "%.*s:%u", UT_HOST_MAX - 1, body.host,
             body.pid);
    pthread_mutex_lock(&ctx->lock);
    peer->all_next = ctx->peers;
    ctx->peers     = peer;
    pthread_mutex_unlock(&ctx->lock);
    *peer_p = &peer->super;
    return UCACHE_OK;
}

ucache_status_t ut_ofi_peer_create_sockaddr(ut_ctx_t *c, const char *host, uint16_t port,
                                            ut_peer_t **peer_p)
{
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(c);
    struct sockaddr_storage sa;
    ut_ofi_peer_t *peer;
    socklen_t salen;

    if (!ut_ofi_sockaddr_fmt(ctx->info->addr_format)) {
        UC_ERROR("libfabric provider %s has no host:port addresses: peers come from "
                 "their address blobs", ctx->cfg.ofi_provider);
        return UCACHE_ERR_UNSUPPORTED;
    }
    if (ut_sockaddr_resolve(host, port, (ctx->info->addr_format == FI_SOCKADDR_IN) ? AF_INET :
                            (ctx->info->addr_format == FI_SOCKADDR_IN6) ? AF_INET6 : AF_UNSPEC,
                            &sa, &salen) != UCACHE_OK) {
        UT_OFI_STAT_ADD(ctx, bad_input, 1);
        return UCACHE_ERR_INVALID;
    }
    peer = do_peer_new(ctx);
    if (peer == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    memcpy(&peer->sa, &sa, salen);
    peer->salen = salen;
    snprintf(peer->pname, sizeof(peer->pname), "%.*s:%u", UT_HOST_MAX - 1, host, port);
    pthread_mutex_lock(&ctx->lock);
    peer->all_next = ctx->peers;
    ctx->peers     = peer;
    pthread_mutex_unlock(&ctx->lock);
    *peer_p = &peer->super;
    return UCACHE_OK;
}

void ut_ofi_peer_destroy(ut_peer_t *p)
{
    ut_ofi_peer_t *peer = (ut_ofi_peer_t *)p, **pp;
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(p->ctx);
    uint64_t t0;
    bool warned = false;

    pthread_mutex_lock(&ctx->lock);
    if (peer->nrkeys > 0) {
        UC_WARN("peer %s destroyed with %u remote keys still unpacked", peer->pname,
                peer->nrkeys);
    }
    /* its requests complete with UCACHE_ERR_CANCELED; the operations still
     * out end as libfabric hands back their buffers */
    ut_ofi_do_peer_reqs_fail(ctx, peer, UCACHE_ERR_CANCELED);
    t0 = uc_time_ns();
    while ((peer->inflight > 0) || (peer->hs.status == UCACHE_INPROGRESS)) {
        ut_ofi_do_progress(ctx);
        if (!warned && (uc_time_ns() - t0 > 10 * UC_NSEC_PER_SEC)) {
            UC_ERROR("%u requests to %s still held by libfabric 10 s after they were "
                     "cancelled", peer->inflight, peer->pname);
            warned = true;
        }
    }
    do_open_end(ctx, peer);
    if (peer->fa != FI_ADDR_NOTAVAIL) {
        fi_av_remove(ctx->av, &peer->fa, 1, 0);
    }
    for (pp = &ctx->peers; *pp != NULL; pp = &(*pp)->all_next) {
        if (*pp == peer) {
            *pp = peer->all_next;
            break;
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    free(peer);
}

ut_peer_state_t ut_ofi_peer_state(ut_peer_t *p)
{
    return (ut_peer_state_t)atomic_load(&((ut_ofi_peer_t *)p)->state);
}

const char *ut_ofi_peer_name(ut_peer_t *p)
{
    return ((ut_ofi_peer_t *)p)->pname;
}

void ut_ofi_peer_transports(ut_peer_t *p, char *buf, size_t cap)
{
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(p->ctx);

    snprintf(buf, cap, "ofi/%s", ctx->cfg.ofi_provider);
}

/* ------------------------------------------------------------------------ */
/* Requesters                                                                */
/* ------------------------------------------------------------------------ */

ut_ofi_peer_t *ut_ofi_do_client_find(ut_ofi_ctx_t *ctx, uint64_t uuid)
{
    ut_ofi_peer_t *c;

    for (c = ctx->clients[uuid % UT_OFI_CLIENT_BUCKETS]; c != NULL; c = c->cnext) {
        if (c->uuid == uuid) {
            return c;
        }
    }
    return NULL;
}

static void do_client_free(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *c)
{
    if (c->fa != FI_ADDR_NOTAVAIL) {
        fi_av_remove(ctx->av, &c->fa, 1, 0);
    }
    free(c);
}

/* ctx->lock held: forget one requester owed nothing, from @p uuid's bucket
 * on, to make room.  False if every one is owed. */
static bool do_client_evict(ut_ofi_ctx_t *ctx, uint64_t uuid)
{
    ut_ofi_peer_t **pp, *c;
    unsigned i, b;

    for (i = 0; i < UT_OFI_CLIENT_BUCKETS; i++) {
        b = (unsigned)((uuid + i) % UT_OFI_CLIENT_BUCKETS);
        for (pp = &ctx->clients[b]; (c = *pp) != NULL; pp = &c->cnext) {
            if (c->owed > 0) {
                continue;
            }
            *pp = c->cnext;
            do_client_free(ctx, c);
            ctx->nclients--;
            return true;
        }
    }
    return false;
}

/*
 * ctx->lock held: a requester's PING carries its address blob (checked
 * like any blob from outside; it must name the uuid the request came
 * with): the requester goes in the address vector, so we can answer it.
 * A requester known already is taken as it is (the address of a uuid does
 * not change).  NULL if the blob does not check out or there is no room.
 */
ut_ofi_peer_t *ut_ofi_do_client_learn(ut_ofi_ctx_t *ctx, uint64_t uuid, const void *blob,
                                      size_t len)
{
    ut_addr_body body;
    ut_ofi_name name;
    ut_ofi_peer_t *c;

    c = ut_ofi_do_client_find(ctx, uuid);
    if ((c != NULL) || (uuid == 0)) {
        return c;
    }
    if ((ut_ofi_do_addr_take(ctx, blob, len, &body, &name) != UCACHE_OK) || (body.uuid != uuid)) {
        UC_WARN("a requester's address does not check out; it is not answered");
        return NULL;
    }
    /* a requester on this host that is gone already (it gave up while we
     * were stopped): not answered - shm in libfabric 1.17 faults in its
     * progress on a reply to a process that has exited */
    if ((strncmp(ctx->cfg.ofi_provider, "shm", 3) == 0) && (body.pid != 0) &&
        (kill((pid_t)body.pid, 0) != 0) && (errno == ESRCH)) {
        UC_DEBUG("a requester gone before its PING was read: not answered");
        return NULL;
    }
    if ((ctx->nclients >= UT_OFI_CLIENTS_MAX) && !do_client_evict(ctx, uuid)) {
        UC_WARN("%u requesters known, each owed a reply; no more are", UT_OFI_CLIENTS_MAX);
        return NULL;
    }
    c = do_peer_new(ctx);
    if (c == NULL) {
        return NULL;
    }
    c->name   = name;
    c->uuid   = uuid;
    c->client = true;
    snprintf(c->pname, sizeof(c->pname), "requester %.*s:%u", UT_HOST_MAX - 1, body.host,
             body.pid);
    if (do_av_insert(ctx, c) != UCACHE_OK) {
        free(c);
        return NULL;
    }
    atomic_store(&c->state, UT_PEER_CONNECTED);
    c->cnext = ctx->clients[uuid % UT_OFI_CLIENT_BUCKETS];
    ctx->clients[uuid % UT_OFI_CLIENT_BUCKETS] = c;
    ctx->nclients++;
    return c;
}

void ut_ofi_do_clients_free(ut_ofi_ctx_t *ctx)
{
    ut_ofi_peer_t *c;
    unsigned b;

    for (b = 0; b < UT_OFI_CLIENT_BUCKETS; b++) {
        while ((c = ctx->clients[b]) != NULL) {
            ctx->clients[b] = c->cnext;
            do_client_free(ctx, c);
        }
    }
    ctx->nclients = 0;
}

/* ------------------------------------------------------------------------ */
/* The listener                                                              */
/* ------------------------------------------------------------------------ */

/*
 * A second endpoint, bound to @p ip:@p port, sharing the context's queue
 * and address vector: readers that know only host:port (a static member
 * list) reach it, introduce themselves and are answered from it.  Only
 * providers whose addresses are socket addresses have one.
 */
ucache_status_t ut_ofi_listen(ut_ctx_t *c, const char *ip, uint16_t port, uint16_t *port_p)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV | AI_PASSIVE }, *res = NULL;
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(c);
    ucache_status_t status = UCACHE_ERR_INVALID;
    struct fi_info *info = NULL;
    ut_ofi_ep_t *ep = NULL;
    char service[8];
    int rc;

    if (!ut_ofi_sockaddr_fmt(ctx->info->addr_format)) {
        UC_ERROR("libfabric provider %s cannot listen on host:port", ctx->cfg.ofi_provider);
        return UCACHE_ERR_UNSUPPORTED;
    }
    hints.ai_family = (ctx->info->addr_format == FI_SOCKADDR_IN6) ? AF_INET6 : AF_INET;
    snprintf(service, sizeof(service), "%u", port);
    rc = getaddrinfo(((ip != NULL) && (ip[0] != '\0')) ? ip : NULL, service, &hints, &res);
    if ((rc != 0) || (res == NULL)) {
        UC_ERROR("cannot listen on %s:%u: %s", ip ? ip : "*", port,
                 (rc != 0) ? gai_strerror(rc) : "no address");
        return UCACHE_ERR_INVALID;
    }
    pthread_mutex_lock(&ctx->lock);
    if (ctx->listener != NULL) {
        UC_ERROR("a context listens once");
        goto out;
    }
    info = ut_ofi_lib.dupinfo(ctx->info);
    ep   = calloc(1, sizeof(*ep));
    status = UCACHE_ERR_NO_MEMORY;
    if ((info == NULL) || (ep == NULL)) {
        goto out;
    }
    free(info->src_addr); /* the main endpoint's, duplicated */
    if ((info->src_addr = malloc(res->ai_addrlen)) == NULL) {
        goto out;
    }
    memcpy(info->src_addr, res->ai_addr, res->ai_addrlen);
    info->src_addrlen = res->ai_addrlen;
    status = ut_ofi_do_ep_open(ctx, ep, info);
    if (status != UCACHE_OK) {
        UC_ERROR("cannot listen on %s:%u (in use?)", ip ? ip : "*", port);
        free(ep);
        ep = NULL;
        goto out;
    }
    ctx->listener = ep;
    if (port_p != NULL) {
        struct sockaddr_storage ss;

        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, ep->name.name, (ep->name.len < sizeof(ss)) ? ep->name.len : sizeof(ss));
        *port_p = ntohs((ss.ss_family == AF_INET6) ?
                        ((struct sockaddr_in6 *)&ss)->sin6_port :
                        ((struct sockaddr_in *)&ss)->sin_port);
    }
out:
    pthread_mutex_unlock(&ctx->lock);
    if (info != NULL) {
        ut_ofi_lib.freeinfo(info);
    }
    if (status != UCACHE_OK) {
        free(ep);
    }
    freeaddrinfo(res);
    return status;
}
