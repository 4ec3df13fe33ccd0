/*
 * ucx_req.c - the UCX backend's requests: slots and ids, gets and RPCs
 * posted by readers, waiting (deadlines, keepalives, the leader and its
 * followers) and the progress thread.  A request completes once, when its
 * last pending bit clears; its slot is freed then and only then.
 */
#include "transport/ucx_int.h"

#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>

/* ------------------------------------------------------------------------ */
/* Outstanding requests                                                      */
/* ------------------------------------------------------------------------ */

void ut_ucx_do_req_start(ut_req_t *req, ut_peer_t *peer, ut_path_t path)
{
    req->status      = UCACHE_INPROGRESS;
    req->path        = (uint8_t)path;
    req->length      = 0;
    req->meta_length = 0;
    req->priv.peer   = peer;
    req->priv.pending = 0;
    req->priv.flags  = 0;
    req->priv.error  = UCACHE_OK;
}

/*
 * A request's id: its slot in the low UT_SLOT_BITS bits, a random tag in
 * the other 44.  Only the peer asked ever sees the id, so a reply is taken
 * only from the peer that knows it: another peer cannot answer (or cut
 * short) a request it was not sent by guessing a slot number.
 */

#define UT_SLOT_BITS 20
#define UT_SLOT_MASK ((1ull << UT_SLOT_BITS) - 1)

static uint64_t do_random_tag(ut_ucx_ctx_t *ctx)
{
    unsigned i;

    if (ctx->nrnd == 0) {
        if (getrandom(ctx->rnd, sizeof(ctx->rnd), 0) != (ssize_t)sizeof(ctx->rnd)) {
            for (i = 0; i < 64; i++) {
                ctx->rnd[i] = ut_random64();
            }
        }
        ctx->nrnd = 64;
    }
    return ctx->rnd[--ctx->nrnd] >> UT_SLOT_BITS;
}

ucache_status_t ut_ucx_do_slot_alloc(ut_ucx_ctx_t *ctx, ut_req_t *req)
{
    uint32_t idx;

    if (ctx->nfree == 0) {
        return UCACHE_ERR_AGAIN;
    }
    idx = ctx->free_slots[--ctx->nfree];
    ctx->slots[idx] = req;
    ctx->slot_gen[idx] = do_random_tag(ctx);
    req->priv.posted   = uc_time_ns();
    req->priv.deadline = req->priv.posted + ctx->cfg.timeout_ns;
    req->priv.id    = (ctx->slot_gen[idx] << UT_SLOT_BITS) | idx;
    req->priv.flags |= UT_REQF_SLOT;
    ((ut_ucx_peer_t *)req->priv.peer)->inflight++;
    return UCACHE_OK;
}

ut_req_t *ut_ucx_do_slot_find(ut_ucx_ctx_t *ctx, uint64_t id)
{
    uint64_t idx = id & UT_SLOT_MASK;

    if ((idx >= ctx->cfg.max_outstanding) || (ctx->slots[idx] == NULL) ||
        (ctx->slot_gen[idx] != (id >> UT_SLOT_BITS))) {
        return NULL;
    }
    return ctx->slots[idx];
}

/* Record the request's error (the first one wins); it becomes the status
 * when the request completes, never before. */
void ut_ucx_do_req_set_status(ut_req_t *req, ucache_status_t status)
{
    if (req->priv.error == UCACHE_OK) {
        req->priv.error = status;
    }
}

/* Clear pending bits; when none are left, release the slot and finish. */
void ut_ucx_do_req_clear(ut_ucx_ctx_t *ctx, ut_req_t *req, uint32_t bits)
{
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)req->priv.peer;
    uint32_t idx;

    req->priv.pending &= ~bits;
    if (req->priv.pending != 0) {
        return;
    }
    if (req->priv.flags & UT_REQF_SLOT) {
        idx = (uint32_t)(req->priv.id & UT_SLOT_MASK);
        ctx->slots[idx] = NULL;
        ctx->slot_gen[idx] = 0;
        ctx->free_slots[ctx->nfree++] = idx;
        req->priv.flags &= ~UT_REQF_SLOT;
        peer->inflight--;
    }
    req->status = (ucache_status_t)req->priv.error;
    if (req->status == UCACHE_OK) {
        if (req->path == UT_PATH_RPC) {
            UT_STAT_ADD(ctx, rpcs, 1);
            if (req->length > 0) { /* a bulk reply: a read over active messages */
                UT_STAT_ADD(ctx, am_reads, 1);
                UT_STAT_ADD(ctx, read_bytes, req->length);
            }
        } else if (req->path == UT_PATH_GET) { /* NONE: the connect ping */
            UT_STAT_ADD(ctx, get_reads, 1);
            UT_STAT_ADD(ctx, read_bytes, req->length);
        }
    } else if (req->status == UCACHE_ERR_TIMEOUT) {
        UT_STAT_ADD(ctx, timeouts, 1);
    }
}

/* ------------------------------------------------------------------------ */
/* Reads and RPCs                                                            */
/* ------------------------------------------------------------------------ */

static void ut_ucx_get_done_cb(void *request, ucs_status_t status,
                               void *user_data)
{
    ut_req_t *req = user_data;
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)req->priv.peer;

    if (status != UCS_OK) {
        ut_ucx_do_req_set_status(req, (atomic_load(&peer->state) == UT_PEER_FAILED) ?
                               peer->fail_status : ut_ucs_status(status));
    }
    ut_ucx_do_req_clear(ut_ctx_of(peer->super.ctx), req, UT_PEND_UCX);
    ucp_request_free(request);
}


unsigned ut_ucx_do_progress(ut_ucx_ctx_t *ctx)
{
    unsigned n = 0, k;

    /* (in the UCACHE_EMULATED_RMA test mode a serving context's UCX answers
     * peers' gets here, copying exported memory: racy by design, see
     * ucx_mem.c) */
    while ((k = ucp_worker_progress(ctx->worker)) != 0) {
        n += k;
    }
    if (ctx->closing != NULL) {
        ut_ucx_do_closing_reap(ctx);
    }
    ut_ucx_do_accepted_reap(ctx);
    atomic_store_explicit(&ctx->last_progress, uc_time_ns(), memory_order_relaxed);
    if (n > 0) { /* requests may have completed: wake those who wait for them */
        uint64_t one = 1;

        pthread_cond_broadcast(&ctx->progressed);
        if (ctx->sleeper && (write(ctx->kickfd, &one, sizeof(one)) < 0)) {
            UC_DEBUG("waking the sleeping waiter: %m"); /* it wakes within 1 ms */
        }
    }
    return n;
}

/*
 * A client that only reads mapped memory would never progress its worker,
 * so it would never hear of a peer's death: progress at most once a
 * millisecond from the mapped path, and only if nobody else holds the lock.
 */
static void ut_ucx_progress_maybe(ut_ucx_ctx_t *ctx)
{
    uint64_t now;

    if (ctx->thread_running) {
        return; /* the progress thread hears of failures */
    }
    now = uc_time_ns();
    if (now - atomic_load_explicit(&ctx->last_progress, memory_order_relaxed) <
        UC_NSEC_PER_MSEC) {
        return;
    }
    if (pthread_mutex_trylock(&ctx->lock) == 0) {
        ut_ucx_do_progress(ctx);
        pthread_mutex_unlock(&ctx->lock);
    }
}

ucache_status_t ut_ucx_do_rkey_ready(ut_ucx_ctx_t *ctx, ut_ucx_rkey_t *rk,
                                     ut_ucx_peer_t *peer)
{
    ucs_status_t status;

    if ((rk->rkey != NULL) && (rk->gen == peer->gen)) {
        return UCACHE_OK;
    }
    if (rk->rkey != NULL) {
        ucp_rkey_destroy(rk->rkey);
        rk->rkey = NULL;
    }
    status = ucp_ep_rkey_unpack(peer->ep, rk->blob, &rk->rkey);
    if (status != UCS_OK) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_ERROR("cannot unpack a remote key of %s: %s", peer->name,
                 ucs_status_string(status));
        rk->rkey = NULL;
        return UCACHE_ERR_INVALID;
    }
    rk->gen = peer->gen;
    return UCACHE_OK;
}

/*
 * The path of @p rk's reads (the endpoint is open, ctx->lock held): gets
 * only with RMA on, where asked or where the endpoint's RMA lanes are
 * native, else none (UT_PATH_AM: the caller reads by RPC).  Decided once
 * per key and followed by every read after it - a reconnect that finds
 * other lanes does not change it (a get over lanes that are no longer
 * native is emulated by UCX, still correct); a key unpacked later decides
 * anew.
 */
static ut_path_t do_key_path(ut_ucx_ctx_t *ctx, ut_ucx_rkey_t *rk, ut_ucx_peer_t *peer)
{
    if (rk->path != UT_PATH_NONE) {
        return (ut_path_t)rk->path;
    }
    if (peer->native_get < 0) {
        peer->native_get = ut_ucx_do_ep_native_rma(peer->ep, peer->tls, sizeof(peer->tls));
    }
    rk->path = (ctx->rma && ((ctx->cfg.read_path == UC_READ_PATH_GET) ||
                             ((ctx->cfg.read_path == UC_READ_PATH_AUTO) &&
                              peer->native_get))) ? UT_PATH_GET : UT_PATH_AM;
    UC_DEBUG("reads from %s use %s", peer->name,
             (rk->path == UT_PATH_GET) ? "gets" : "active messages");
    return (ut_path_t)rk->path;
}

ucache_status_t ut_ucx_get_post(ut_req_t *req, ut_rkey_t *rkey,
                                uint64_t raddr, void *buf, size_t len)
{
    ut_ucx_rkey_t *rk   = (ut_ucx_rkey_t *)rkey;
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)rkey->peer;
    ut_ucx_ctx_t *ctx   = ut_ctx_of(rkey->ctx);
    ucp_request_param_t param;
    ucache_status_t status;
    void *greq;

    ut_ucx_do_req_start(req, rkey->peer, UT_PATH_NONE);
    if ((buf == NULL) || (len == 0)) {
        status = UCACHE_ERR_INVALID;
        goto bad_input;
    }
    if ((raddr < rkey->base) || (len > rkey->len) ||
        (raddr - rkey->base > rkey->len - len)) {
        status = UCACHE_ERR_OUT_OF_RANGE;
        goto bad_input;
    }

    if ((rkey->mapped != NULL) &&
        (atomic_load_explicit(&peer->state, memory_order_acquire) != UT_PEER_FAILED)) {
        memcpy(buf, (const uint8_t *)rkey->mapped + (raddr - rkey->base), len);
        req->path   = UT_PATH_MAPPED;
        req->length = len;
        req->status = UCACHE_OK;
        UT_STAT_ADD(ctx, read_bytes, len);
        UT_STAT_ADD(ctx, mapped_reads, 1);
        ut_ucx_progress_maybe(ctx);
        return UCACHE_OK;
    }

    pthread_mutex_lock(&ctx->lock);
    status = ut_ucx_do_peer_ensure(ctx, peer);
    if (status != UCACHE_OK) {
        goto out_fail;
    }
    if (rkey->mapped != NULL) { /* the peer was failed and is being retried */
        pthread_mutex_unlock(&ctx->lock);
        return ut_ucx_get_post(req, rkey, raddr, buf, len);
    }
    if (do_key_path(ctx, rk, peer) != UT_PATH_GET) {
        /* No one-sided path to this peer: its owner answers reads as RPCs
         * with a bulk reply (the fabric's FETCH); the transport has none of
         * its own. */
        UC_DEBUG("a get from %s refused: its key's path is active messages",
                 peer->name);
        status = UCACHE_ERR_UNSUPPORTED;
        goto out_fail;
    }
    status = ut_ucx_do_rkey_ready(ctx, rk, peer);
    if (status == UCACHE_OK) {
        req->path     = UT_PATH_GET;
        req->priv.buf = buf;
        req->priv.cap = len;
        status = ut_ucx_do_slot_alloc(ctx, req);
    }
    if (status != UCACHE_OK) {
        goto out_fail;
    }
    param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
    param.cb.send      = ut_ucx_get_done_cb;
    param.user_data    = req;
    req->priv.pending  = UT_PEND_UCX;
    req->length        = len;
    greq = ucp_get_nbx(peer->ep, buf, len, raddr, rk->rkey, &param);
    if (greq == NULL) {
        ut_ucx_do_req_clear(ctx, req, UT_PEND_UCX);
    } else if (UCS_PTR_IS_ERR(greq)) {
        ut_ucx_do_req_set_status(req, ut_ucs_status(UCS_PTR_STATUS(greq)));
        ut_ucx_do_req_clear(ctx, req, UT_PEND_UCX);
    }
    /* Read under the lock: another thread's progress may complete it. */
    status = (req->status == UCACHE_INPROGRESS) ? UCACHE_OK : req->status;
    pthread_mutex_unlock(&ctx->lock);
    return status;

out_fail:
    pthread_mutex_unlock(&ctx->lock);
    req->status = status;
    return status;

bad_input:
    UT_STAT_ADD(ctx, bad_input, 1);
    UC_DEBUG("read of %zu bytes at 0x%llx refused: region is [0x%llx, +%zu): %s",
             len, (unsigned long long)raddr, (unsigned long long)rkey->base,
             rkey->len, ucache_strerror(status));
    req->status = status;
    return status;
}

ucache_status_t ut_ucx_rpc_post(ut_req_t *req, ut_peer_t *p, unsigned id,
                                const void *msg, size_t len, void *meta,
                                size_t meta_cap, void *data,
                                size_t data_cap, uint64_t timeout_ns)
{
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)p;
    ut_ucx_ctx_t *ctx   = ut_ctx_of(p->ctx);
    ucache_status_t status;

    ut_ucx_do_req_start(req, p, UT_PATH_RPC);
    if (ut_rpc_args_take(req, ctx->cfg.rpc_max, id, msg, len, meta, meta_cap, data,
                         data_cap) != UCACHE_OK) {
        UT_STAT_ADD(ctx, bad_input, 1);
        return req->status;
    }

    pthread_mutex_lock(&ctx->lock);
    status = ut_ucx_do_peer_ensure(ctx, peer);
    if (status == UCACHE_OK) {
        status = ut_ucx_do_am_request(ctx, req, peer, (uint16_t)id, msg, len);
        if (status == UCACHE_OK) {
            if (timeout_ns != 0) { /* before any progress can see it */
                req->priv.deadline = uc_deadline(timeout_ns);
            }
            status = (req->status == UCACHE_INPROGRESS) ? UCACHE_OK : req->status;
        }
    } else {
        req->status = status;
    }
    pthread_mutex_unlock(&ctx->lock);
    return status;
}

ut_path_t ut_ucx_rkey_path(ut_rkey_t *rkey)
{
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)rkey->peer;
    ut_ucx_ctx_t *ctx   = ut_ctx_of(rkey->ctx);
    ut_path_t path = UT_PATH_NONE;

    if (rkey->mapped != NULL) {
        return UT_PATH_MAPPED;
    }
    pthread_mutex_lock(&ctx->lock);
    if ((((ut_ucx_rkey_t *)rkey)->path != UT_PATH_NONE) ||
        (ut_ucx_do_peer_ensure(ctx, peer) == UCACHE_OK)) {
        path = do_key_path(ctx, (ut_ucx_rkey_t *)rkey, peer);
    }
    pthread_mutex_unlock(&ctx->lock);
    return path;
}

ucache_status_t ut_ucx_rpc_reply(ut_rpc_t *r, ucache_status_t status,
                                 const void *meta, size_t meta_len,
                                 const void *data, size_t data_len,
                                 unsigned flags)
{
    ut_ucx_rpc_t *rpc = (ut_ucx_rpc_t *)r;
    ut_ucx_ctx_t *ctx = ut_ctx_of(r->ctx);
    ucache_status_t ret;
    bool stable;

    if (rpc->replied || (meta_len > UT_RPC_META_MAX) ||
        (meta_len > ctx->max_am_header - sizeof(ut_am_rep_hdr)) ||
        ((meta_len > 0) && (meta == NULL)) || ((data_len > 0) && (data == NULL)) ||
        (flags & ~(unsigned)UT_REPLY_DATA_STABLE)) {
        UC_ERROR("invalid RPC reply (replied=%d meta %zu data %zu flags 0x%x)",
                 rpc->replied, meta_len, data_len, flags);
        if (!rpc->deferred || rpc->replied) {
            return UCACHE_ERR_INVALID;
        }
        status = UCACHE_ERR_INVALID; /* a deferred RPC is answered regardless */
    }
    rpc->replied = true;
    if (status != UCACHE_OK) {
        meta_len = data_len = 0;
    }
    stable = (data_len > 0) && (flags & UT_REPLY_DATA_STABLE);
    if (!rpc->deferred) { /* inside the handler: the lock is held */
        return ut_ucx_do_reply_send(ctx, rpc->reply_ep, rpc->id, status, meta, meta_len,
                                    data, data_len, stable,
                                    stable ? ut_ucx_do_region_of(ctx, data, data_len) : NULL);
    }
    pthread_mutex_lock(&ctx->lock);
    /* Never UCX's reply endpoint: UCX destroys it when the requester fails,
     * which may have happened meanwhile.  Our own endpoint to the requester
     * reports a failure instead (the reply is dropped, counted).  One that
     * failed earlier (a link that was cut and came back) is connected again
     * now, not after a back-off: the requester waits for this reply, and
     * answers our keepalives only through its own endpoint. */
    if (atomic_load(&rpc->client->state) == UT_PEER_FAILED) {
        atomic_store(&rpc->client->failed_at, 0);
    }
    ret = ut_ucx_do_peer_ensure(ctx, rpc->client);
    if (ret == UCACHE_OK) {
        ret = ut_ucx_do_reply_send(ctx, rpc->client->ep, rpc->id, status, meta, meta_len,
                                   data, data_len, stable,
                                   stable ? ut_ucx_do_region_of(ctx, data, data_len) : NULL);
    } else {
        UT_STAT_ADD(ctx, replies_dropped, 1);
        UC_DEBUG("deferred reply to %s dropped: %s", rpc->client->name,
                 ucache_strerror(ret));
    }
    rpc->client->owed--;
    ctx->deferred--;
    if (rpc->dprev != NULL) {
        rpc->dprev->dnext = rpc->dnext;
    } else {
        ctx->dlist = rpc->dnext;
    }
    if (rpc->dnext != NULL) {
        rpc->dnext->dprev = rpc->dprev;
    }
    pthread_mutex_unlock(&ctx->lock);
    free(rpc);
    return ret;
}

ucache_status_t ut_ucx_rpc_defer(ut_rpc_t *r, ut_rpc_t **deferred_p)
{
    ut_ucx_rpc_t *rpc = (ut_ucx_rpc_t *)r, *copy;
    ut_ucx_ctx_t *ctx = ut_ctx_of(r->ctx);

    if (rpc->replied || rpc->deferred) {
        UC_ERROR("an RPC can be deferred once, inside its handler, before a reply");
        return UCACHE_ERR_INVALID;
    }
    rpc->client = ut_ucx_do_client_find(ctx, rpc->from);
    if (rpc->client == NULL) {
        /* not a requester that introduced itself (every ucache one does, on
         * connect): it cannot be answered later, so not at all later */
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_WARN("cannot defer a request from an unknown requester");
        return UCACHE_ERR_UNSUPPORTED;
    }
    copy = malloc(sizeof(*copy));
    if (copy == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    rpc->client->owed++;       /* kept while the reply is due */
    *copy          = *rpc;
    copy->reply_ep = NULL;     /* UCX's, valid during the handler only */
    copy->deferred = true;
    copy->dprev    = NULL;
    copy->dnext    = ctx->dlist;
    if (ctx->dlist != NULL) {
        ctx->dlist->dprev = copy;
    }
    ctx->dlist     = copy;
    rpc->replied   = true; /* the handler's frame no longer answers it */
    ctx->deferred++;       /* the lock is held inside handlers */
    *deferred_p = &copy->super;
    return UCACHE_OK;
}

ucache_status_t ut_ucx_rpc_handler_set(ut_ctx_t *c, unsigned id,
                                       ut_rpc_handler_t cb, void *arg)
{
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);

    if ((id == UT_OP_NONE) || (id > UT_RPC_MAX_ID)) {
        return UCACHE_ERR_INVALID;
    }
    pthread_mutex_lock(&ctx->lock);
    ctx->handlers[id].cb  = cb;
    ctx->handlers[id].arg = arg;
    pthread_mutex_unlock(&ctx->lock);
    return UCACHE_OK;
}

/*
 * Waiters (ut_ucx_wait), many threads on one worker.  ctx->lock is held
 * except while sleeping; one waiter at a time progresses the worker:
 *
 *   ut_ucx_wait() --> all done? --yes--> return (a LEADER hands over:
 *        ^               | no              leader = false, broadcast
 *        |               v                 `progressed`)
 *        |      ctx->leader taken? --yes--> FOLLOWER: sleep on `progressed`
 *        |               | no                (lock released) until a
 *        |               v                   broadcast, a deadline or 1 ms;
 *        |      LEADER: ucp_worker_progress,  check the deadlines; loop
 *        |      check the deadlines
 *        |               | nothing progressed for UCACHE_PROGRESS_SPIN
 *        |               v
 *        +------ SLEEPER: arm the worker, ppoll(its event fd, the kick fd)
 *                with the lock released, until an event, a deadline or 1 ms
 *
 * Whoever completes a request broadcasts `progressed` and, if a leader
 * sleeps, kicks it (ctx->kickfd), so nobody sleeps past a completion; the
 * 1 ms cap (UT_WAIT_CAP_NS) bounds a wait on a wake-up that never comes.
 * Contexts with a progress thread never sleep on the worker (it does).
 */

/* A request that is done: mapped reads complete in the posting thread before
 * post returns, so only they may be checked without the lock. */
static bool do_req_done(const ut_req_t *req)
{
    return req->status != UCACHE_INPROGRESS;
}

/* The requests a waiter waits for: an array, or an array of pointers. */
typedef struct do_reqs {
    ut_req_t        *arr;
    ut_req_t *const *ptr;
} do_reqs_t;

static inline ut_req_t *do_req_at(const do_reqs_t *s, size_t i)
{
    return (s->ptr != NULL) ? s->ptr[i] : &s->arr[i];
}

/* ctx->lock held, a follower: wait on `progressed` until the nearest of
 * @p deadline, the requests' deadlines and 1 ms. */
static void do_wait_follow(ut_ucx_ctx_t *ctx, const do_reqs_t *reqs, size_t first,
                           size_t n, uint64_t deadline, uint64_t now)
{
    uint64_t until = now + UT_WAIT_CAP_NS;
    struct timespec ts;
    size_t i;

    until = (deadline < until) ? deadline : until;
    for (i = first; i < n; i++) {
        if (!do_req_done(do_req_at(reqs, i)) && (do_req_at(reqs, i)->priv.deadline < until)) {
            until = do_req_at(reqs, i)->priv.deadline;
        }
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)((until > now) ? until - now : 0);
    ts.tv_sec  += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&ctx->progressed, &ctx->lock, &ts);
}

/*
 * ctx->lock held, the leading waiter, nothing happened for
 * UCACHE_PROGRESS_SPIN: sleep (lock released) on the worker's event fd and
 * the kick fd until progress, the nearest deadline of @p reqs, or 1 ms - so
 * a reader waiting for a miss to be filled leaves the CPU to the owners and
 * the origin (the followers sleep on `progressed`).  Whoever progresses the worker
 * and completes something broadcasts the condition and kicks the sleeper,
 * so no waiter sleeps past its request's completion.  Contexts with a
 * progress thread keep polling.
 */
static void do_wait_event(ut_ucx_ctx_t *ctx, const do_reqs_t *reqs, size_t first,
                          size_t n, uint64_t deadline, uint64_t now)
{
    uint64_t until = now + UT_WAIT_CAP_NS, drain;
    struct pollfd pfd[2];
    struct timespec ts;
    size_t i;

    if (ctx->thread_running || (ctx->kickfd < 0)) {
        return;
    }
    until = (deadline < until) ? deadline : until;
    for (i = first; i < n; i++) {
        if (!do_req_done(do_req_at(reqs, i)) && (do_req_at(reqs, i)->priv.deadline < until)) {
            until = do_req_at(reqs, i)->priv.deadline;
        }
    }
    if (until <= now) {
        return;
    }
    if ((ctx->wakefd < 0) && (ucp_worker_get_efd(ctx->worker, &ctx->wakefd) != UCS_OK)) {
        ctx->wakefd = -1;
        return;
    }
    if (ucp_worker_arm(ctx->worker) != UCS_OK) {
        return; /* UCS_ERR_BUSY: events are pending; progress them */
    }
    pfd[0].fd     = ctx->wakefd;
    pfd[1].fd     = ctx->kickfd;
    pfd[0].events = pfd[1].events = POLLIN;
    pfd[0].revents = pfd[1].revents = 0;
    ts.tv_sec  = 0;
    ts.tv_nsec = (long)(until - now);
    ctx->sleeper = true;
    pthread_mutex_unlock(&ctx->lock);
    ppoll(pfd, 2, &ts, NULL);
    pthread_mutex_lock(&ctx->lock);
    ctx->sleeper = false;
    if (read(ctx->kickfd, &drain, sizeof(drain)) < 0) {
        /* EAGAIN: nobody kicked */
    }
}

/*
 * ctx->lock held: a request waits longer than UCACHE_TIMEOUT may take (a
 * miss the owner fills from the origin: FETCH_TIMEOUT) - is its peer alive,
 * and still working on it?  Once such a request has waited UCACHE_TIMEOUT
 * / 2, a KEEPALIVE goes out with the ids of the peer's requests that old
 * (one round per UCACHE_TIMEOUT / 2).  Unanswered within UCACHE_TIMEOUT /
 * 2, the peer is failed, and its requests with it; answered, a request the
 * peer says twice in a row it no longer owes (its reply was lost, or the
 * request never arrived) fails on its own.  The answer travels the path of
 * the peer's deferred replies, behind them; a reply given at once travels
 * UCX's reply endpoint, and the second round gives it UCACHE_TIMEOUT / 2 to
 * land.  A
 * frozen, cut-off or one-way-broken owner so costs a miss UCACHE_TIMEOUT,
 * not FETCH_TIMEOUT; a slow origin costs nothing (its owner answers).
 */
static void do_ka_answered(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer)
{
    unsigned i, n = peer->ka_n;
    ut_req_t *req;

    peer->ka_n = 0;
    if ((peer->ka.status != UCACHE_OK) || (peer->ka.meta_length != sizeof(ut_ka_rep))) {
        return; /* no word on the requests (an error, an older peer) */
    }
    for (i = 0; i < n; i++) {
        req = ut_ucx_do_slot_find(ctx, peer->ka_ids[i]);
        if ((req == NULL) || (req->priv.peer != &peer->super) ||
            !(req->priv.pending & UT_PEND_REPLY)) {
            continue;
        }
        if (peer->ka_rep.pending & (1ull << i)) {
            req->priv.flags &= ~UT_REQF_UNOWED;
            continue;
        }
        /* Not owed: the reply may still be on its way on another path (an
         * answer given at once, on UCX's reply endpoint): lost only if the
         * next round, UCACHE_TIMEOUT / 2 later, says so again. */
        if (!(req->priv.flags & UT_REQF_UNOWED)) {
            req->priv.flags |= UT_REQF_UNOWED;
            continue;
        }
        UC_WARN("%s answers but twice no longer owed a reply it did not send: its "
                "request fails (the reply or the request was lost)", peer->name);
        UT_STAT_ADD(ctx, replies_lost, 1);
        ut_ucx_do_req_set_status(req, UCACHE_ERR_AGAIN); /* the peer is fine: ask again */
        ut_ucx_do_req_clear(ctx, req, UT_PEND_REPLY);
    }
}

static void do_peer_liveness(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer, uint64_t now)
{
    uint64_t half = ctx->cfg.timeout_ns / 2;
    ut_req_t *req;
    uint32_t i;
    unsigned n = 0;

    if (peer->ka.priv.pending != 0) {
        if (now > peer->ka.priv.deadline) {
            UC_WARN("%s did not answer a keepalive within %llu ms while a request "
                    "waited", peer->name, (unsigned long long)(half / UC_NSEC_PER_MSEC));
            ut_ucx_do_peer_fail(ctx, peer, UCACHE_ERR_TIMEOUT);
        }
        return;
    }
    if (peer->ka_n > 0) {
        do_ka_answered(ctx, peer);
    }
    if (now - peer->ka.priv.posted < half) {
        return; /* one round per UCACHE_TIMEOUT / 2 */
    }
    for (i = 0; (i < ctx->cfg.max_outstanding) && (n < UT_KA_IDS); i++) {
        req = ctx->slots[i];
        if ((req != NULL) && (req != &peer->ka) &&
            ut_ka_due(req, &peer->super, req->priv.pending & UT_PEND_REPLY, now,
                      ctx->cfg.timeout_ns)) {
            peer->ka_ids[n++] = req->priv.id;
        }
    }
    if (n == 0) {
        return;
    }
    ut_ucx_do_req_start(&peer->ka, &peer->super, UT_PATH_NONE);
    ut_ka_answer_into(&peer->ka, &peer->ka_rep, sizeof(peer->ka_rep));
    if (ut_ucx_do_am_request(ctx, &peer->ka, peer, UT_OP_KEEPALIVE, peer->ka_ids,
                             n * sizeof(uint64_t)) == UCACHE_OK) {
        peer->ka_n = n;
        peer->ka.priv.deadline = now + half;
        UT_STAT_ADD(ctx, keepalives, 1);
        UC_DEBUG("keepalive to %s about %u requests", peer->name, n);
    }
}

/* ctx->lock held: fail the peers of requests past their deadline; check
 * the peers of long requests are alive. */
static void do_req_deadlines(ut_ucx_ctx_t *ctx, const do_reqs_t *reqs, size_t first,
                             size_t n, uint64_t now)
{
    ut_ucx_peer_t *peer;
    ut_req_t *req;
    size_t i;

    for (i = first; i < n; i++) {
        req = do_req_at(reqs, i);
        if (do_req_done(req)) {
            continue;
        }
        peer = (ut_ucx_peer_t *)req->priv.peer;
        if (now <= req->priv.deadline) {
            if ((req->priv.deadline > req->priv.posted + ctx->cfg.timeout_ns) &&
                (atomic_load(&peer->state) == UT_PEER_CONNECTED)) {
                do_peer_liveness(ctx, peer, now);
            }
            continue;
        }
        if (atomic_load(&peer->state) != UT_PEER_CONNECTED) {
            continue;
        }
        if (req->priv.pending & UT_PEND_RECV) {
            UT_STAT_ADD(ctx, stalled_replies, 1);
            UC_WARN("the %zu data bytes of a reply from %s did not arrive within "
                    "%llu ms of its header", req->length, peer->name,
                    (unsigned long long)(ctx->cfg.timeout_ns / UC_NSEC_PER_MSEC));
        } else {
            UC_WARN("%s read/RPC of %zu bytes from %s passed its deadline",
                    ut_path_name(req->path), req->priv.cap, peer->name);
        }
        ut_ucx_do_peer_fail(ctx, peer, UCACHE_ERR_TIMEOUT);
    }
}

/* The status of a batch: INPROGRESS if any is, else the first error. */
static ucache_status_t do_reqs_status(const do_reqs_t *reqs, size_t n)
{
    ucache_status_t ret = UCACHE_OK;
    size_t i;

    for (i = 0; i < n; i++) {
        if (do_req_at(reqs, i)->status == UCACHE_INPROGRESS) {
            ret = UCACHE_INPROGRESS;
        } else if ((do_req_at(reqs, i)->status != UCACHE_OK) && (ret == UCACHE_OK)) {
            ret = do_req_at(reqs, i)->status;
        }
    }
    return ret;
}

/*
 * Progress until every request of @p reqs completes - or, with @p any, one
 * of them - or @p timeout_ns passes.  One waiter (the leader) progresses
 * the worker; the others sleep until it completes something.  @return the
 * status of the batch, read under the lock.
 */
static ucache_status_t do_wait(ut_ucx_ctx_t *ctx, const do_reqs_t *reqs, size_t n,
                               uint64_t timeout_ns, bool any)
{
    uint64_t deadline = 0, now, idle_since = uc_time_ns(), checked = 0;
    ucache_status_t ret;
    size_t i, first = 0;
    bool progressed, lead = false;

    /* Fast path: a batch of mapped reads needs neither lock nor progress. */
    while ((first < n) && (do_req_at(reqs, first)->path == UT_PATH_MAPPED)) {
        first++;
    }
    if ((first == n) || (any && (first > 0))) {
        return do_reqs_status(reqs, n);
    }
    deadline = uc_deadline(timeout_ns);
    pthread_mutex_lock(&ctx->lock);
    for (;;) {
        for (i = first; (i < n) && do_req_done(do_req_at(reqs, i)); i++) {
        }
        if ((i == n) || (any && (i > 0))) {
            break;
        }
        if (any) { /* any one of them: look at all */
            for (i = first; (i < n) && !do_req_done(do_req_at(reqs, i)); i++) {
            }
            if (i < n) {
                break;
            }
        } else {
            first = i;
        }
        now = uc_time_ns();
        if (ctx->leader && !lead) {
            /* Another waiter progresses the worker: sleep until it
             * completes something (it broadcasts), a deadline, or 1 ms,
             * rather than fight it for the lock. */
            if (now >= deadline) {
                break;
            }
            do_wait_follow(ctx, reqs, first, n, deadline, now);
            do_req_deadlines(ctx, reqs, first, n, uc_time_ns());
            continue;
        }
        lead = ctx->leader = true;
        progressed = (ut_ucx_do_progress(ctx) > 0);
        now = uc_time_ns();
        if ((now - checked >= UT_DEADLINE_CHECK_NS) || (now > deadline)) {
            do_req_deadlines(ctx, reqs, first, n, now); /* not on every poll */
            checked = now;
        }
        if (now > deadline) {
            break;
        }
        if (progressed) {
            idle_since = now;
        } else if (now - idle_since > ctx->cfg.progress_spin_ns) {
            do_wait_event(ctx, reqs, first, n, deadline, now);
            idle_since = uc_time_ns();
            continue;
        }
        /* Give a progress thread or other callers a chance at the
         * lock between polls. */
        pthread_mutex_unlock(&ctx->lock);
        pthread_mutex_lock(&ctx->lock);
    }
    if (lead) { /* hand the worker to a waiting follower */
        ctx->leader = false;
        pthread_cond_broadcast(&ctx->progressed);
    }
    /* read under the lock: a request several threads wait for (a
     * peer's handshake) may be posted again by one of them right after */
    ret = do_reqs_status(reqs, n);
    pthread_mutex_unlock(&ctx->lock);
    return ret;
}

ucache_status_t ut_ucx_wait(ut_ctx_t *c, ut_req_t *reqs, size_t n,
                            uint64_t timeout_ns)
{
    do_reqs_t set = { reqs, NULL };

    return do_wait(ut_ctx_of(c), &set, n, timeout_ns, false);
}

/* Done requests move to the front, in order; read under the lock, so the
 * caller may look at them (and at no other) without it. */
size_t ut_ucx_wait_any(ut_ctx_t *c, ut_req_t **reqs, size_t n, uint64_t timeout_ns)
{
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);
    do_reqs_t set = { NULL, reqs };
    ut_req_t *t;
    size_t i, ndone = 0;

    do_wait(ctx, &set, n, timeout_ns, true);
    pthread_mutex_lock(&ctx->lock);
    for (i = 0; i < n; i++) {
        if (do_req_done(reqs[i])) {
            t = reqs[ndone];
            reqs[ndone++] = reqs[i];
            reqs[i] = t;
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    return ndone;
}

unsigned ut_ucx_progress(ut_ctx_t *c)
{
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);
    unsigned n;

    pthread_mutex_lock(&ctx->lock);
    n = ut_ucx_do_progress(ctx);
    pthread_mutex_unlock(&ctx->lock);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Progress thread                                                           */
/* ------------------------------------------------------------------------ */

/*
 * Polls while there is work and for PROGRESS_SPIN after it, then arms the
 * worker and sleeps on its event fd (and the stop fd), so an idle serving
 * node costs no CPU.
 */
static void *ut_ucx_progress_thread(void *arg)
{
    ut_ucx_ctx_t *ctx = arg;
    struct epoll_event ev;
    uint64_t idle_since = uc_time_ns();
    ucs_status_t status;
    unsigned n;

    while (!atomic_load(&ctx->thread_stop)) {
        pthread_mutex_lock(&ctx->lock);
        n = ut_ucx_do_progress(ctx);
        pthread_mutex_unlock(&ctx->lock);
        if (n > 0) {
            idle_since = uc_time_ns();
            continue;
        }
        if (uc_time_ns() - idle_since < ctx->cfg.progress_spin_ns) {
            sched_yield();
            continue;
        }
        pthread_mutex_lock(&ctx->lock);
        status = ucp_worker_arm(ctx->worker);
        pthread_mutex_unlock(&ctx->lock);
        if (status == UCS_ERR_BUSY) {
            continue;
        }
        epoll_wait(ctx->epfd, &ev, 1, 100);
        idle_since = uc_time_ns();
    }
    return NULL;
}

ucache_status_t ut_ucx_thread_start(ut_ucx_ctx_t *ctx)
{
    struct epoll_event ev = { .events = EPOLLIN };
    ucs_status_t status;
    int efd;

    status = ucp_worker_get_efd(ctx->worker, &efd);
    if (status != UCS_OK) {
        UC_ERROR("ucp_worker_get_efd: %s", ucs_status_string(status));
        return UCACHE_ERR_TRANSPORT;
    }
    ctx->epfd   = epoll_create1(EPOLL_CLOEXEC);
    ctx->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if ((ctx->epfd < 0) || (ctx->stopfd < 0)) {
        UC_ERROR("cannot create the progress thread's fds: %m");
        return UCACHE_ERR_IO;
    }
    ev.data.fd = efd;
    if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, efd, &ev) != 0) {
        UC_ERROR("epoll_ctl(worker fd): %m");
        return UCACHE_ERR_IO;
    }
    ev.data.fd = ctx->stopfd;
    if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, ctx->stopfd, &ev) != 0) {
        UC_ERROR("epoll_ctl(stop fd): %m");
        return UCACHE_ERR_IO;
    }
    if (pthread_create(&ctx->thread, NULL, ut_ucx_progress_thread, ctx) != 0) {
        UC_ERROR("cannot start the progress thread");
        return UCACHE_ERR_NO_MEMORY;
    }
    ctx->thread_running = true;
    return UCACHE_OK;
}

void ut_ucx_thread_stop(ut_ucx_ctx_t *ctx)
{
    uint64_t one = 1;

    if (ctx->thread_running) {
        atomic_store(&ctx->thread_stop, true);
        if (write(ctx->stopfd, &one, sizeof(one)) < 0) {
            UC_DEBUG("progress thread wake-up: %m"); /* it wakes within 100 ms */
        }
        pthread_join(ctx->thread, NULL);
        ctx->thread_running = false;
    }
    if (ctx->epfd >= 0) {
        close(ctx->epfd);
    }
    if (ctx->stopfd >= 0) {
        close(ctx->stopfd);
    }
    ctx->epfd = ctx->stopfd = -1;
}
