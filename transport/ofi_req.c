/*
 * ofi_req.c - the libfabric backend's requests and their completions: reads
 * (fi_read) and RPCs (a request message, a tagged reply) posted by readers;
 * the requests a serving context receives, answered by their handlers;
 * waiting (deadlines), progress and the progress thread.  A request
 * completes once, when its last pending bit clears; its slot is freed when
 * libfabric has also handed back every operation on it (a request past its
 * deadline completes as soon as no operation out writes into the caller's
 * buffers - messages and bounce buffers are ours).
 */
#include "transport/ofi_int.h"

#include <poll.h>
#include <sys/random.h>
#include <unistd.h>

#define UT_OFI_SLOT_BITS 20
#define UT_OFI_SLOT_MASK ((1ull << UT_OFI_SLOT_BITS) - 1)
#define UT_OFI_CHECK_NS  (100ull * 1000)  /* deadlines looked at this often */
#define UT_OFI_NAP_NS    UC_NSEC_PER_MSEC /* the longest a waiter sleeps unwoken */

static __thread bool ut_ofi_progress_thread; /* this thread is a context's */

/* ------------------------------------------------------------------------ */
/* Requests and slots                                                        */
/* ------------------------------------------------------------------------ */

void ut_ofi_do_req_start(ut_req_t *req, ut_peer_t *peer, ut_path_t path)
{
    req->status       = UCACHE_INPROGRESS;
    req->path         = (uint8_t)path;
    req->length       = 0;
    req->meta_length  = 0;
    req->priv.peer    = peer;
    req->priv.pending = 0;
    req->priv.flags   = 0;
    req->priv.error   = UCACHE_OK;
}

/* The first error wins; it becomes the status when the request completes. */
void ut_ofi_do_req_set_status(ut_req_t *req, ucache_status_t status)
{
    if (req->priv.error == UCACHE_OK) {
        req->priv.error = status;
    }
}

static uint64_t do_random_tag(ut_ofi_ctx_t *ctx)
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
    /* ids travel in tags of 62 bits: the slot's 20 and a random 42 */
    return (ctx->rnd[--ctx->nrnd] >> (UT_OFI_SLOT_BITS + 2)) | 1;
}

static ut_ofi_slot_t *do_slot_alloc(ut_ofi_ctx_t *ctx, ut_req_t *req, ut_ofi_peer_t *peer)
{
    ut_ofi_slot_t *s;
    uint32_t idx;

    if (ctx->nfree == 0) {
        return NULL;
    }
    idx = ctx->free_slots[--ctx->nfree];
    s   = &ctx->slots[idx];
    s->req    = req;
    s->gen    = do_random_tag(ctx);
    s->ops    = 0;
    s->unsent = 0;
    s->ep     = &ctx->main;
    s->fa     = peer->fa;
    req->priv.posted   = uc_time_ns();
    req->priv.deadline = req->priv.posted + ctx->cfg.timeout_ns;
    req->priv.id       = (s->gen << UT_OFI_SLOT_BITS) | idx;
    req->priv.flags   |= UT_OFI_REQF_SLOT;
    peer->inflight++;
    return s;
}

static ut_ofi_slot_t *do_slot_of(ut_ofi_ctx_t *ctx, const ut_req_t *req)
{
    return &ctx->slots[req->priv.id & UT_OFI_SLOT_MASK];
}

/*
 * Bounce buffers (ours, so a request can end while libfabric still holds
 * them): reused, first fit, up to UT_OFI_BOUNCE_KEEP of them kept.  Each
 * starts with its capacity.
 */
#define UT_OFI_BOUNCE_KEEP 64

static void *do_bounce_get(ut_ofi_ctx_t *ctx, size_t len)
{
    unsigned i;
    void *b;

    for (i = 0; i < ctx->nbounces; i++) {
        if (ctx->bounce_cap[i] >= len) {
            b = ctx->bounces[i];
            ctx->bounces[i]    = ctx->bounces[--ctx->nbounces];
            ctx->bounce_cap[i] = ctx->bounce_cap[ctx->nbounces];
            return b;
        }
    }
    b = malloc(len + 64);
    if (b == NULL) {
        return NULL;
    }
    memcpy(b, &len, sizeof(len));
    return (uint8_t *)b + 64;
}

static void do_bounce_put(ut_ofi_ctx_t *ctx, void *p)
{
    uint8_t *b = (uint8_t *)p - 64;
    size_t cap;

    memcpy(&cap, b, sizeof(cap));
    if (ctx->nbounces < UT_OFI_BOUNCE_KEEP) {
        ctx->bounces[ctx->nbounces]      = p;
        ctx->bounce_cap[ctx->nbounces++] = cap;
        return;
    }
    free(b);
}

void ut_ofi_do_bounces_free(ut_ofi_ctx_t *ctx)
{
    while (ctx->nbounces > 0) {
        free((uint8_t *)ctx->bounces[--ctx->nbounces] - 64);
    }
}

/* A slot with no request and no operation out: its resources go back. */
static void do_slot_release(ut_ofi_ctx_t *ctx, ut_ofi_slot_t *s)
{
    unsigned i;

    if ((s->req != NULL) || (s->ops != 0) || (s->unsent != 0) || (s->gen == 0)) {
        return;
    }
    free(s->copy);
    if (s->bounce != NULL) {
        do_bounce_put(ctx, s->bounce);
    }
    s->copy = s->bounce = s->target = NULL;
    for (i = 0; i < 2; i++) {
        if (s->mr[i] != NULL) {
            fi_close(&s->mr[i]->fid);
            s->mr[i] = NULL;
        }
    }
    s->gen = 0;
    ctx->free_slots[ctx->nfree++] = (uint32_t)(s - ctx->slots);
}

/* Clear pending bits; when none are left the request completes (its slot
 * is released once libfabric is done with it too). */
static void do_req_clear(ut_ofi_ctx_t *ctx, ut_req_t *req, uint32_t bits)
{
    ut_ofi_peer_t *peer = (ut_ofi_peer_t *)req->priv.peer;
    ut_ofi_slot_t *s;

    req->priv.pending &= ~bits;
    if (req->priv.pending != 0) {
        return;
    }
    if (req->priv.flags & UT_OFI_REQF_SLOT) {
        s = do_slot_of(ctx, req);
        s->req = NULL;
        req->priv.flags &= ~UT_OFI_REQF_SLOT;
        peer->inflight--;
        do_slot_release(ctx, s);
    }
    req->status = (ucache_status_t)req->priv.error;
    if (req->status == UCACHE_OK) {
        if (req->path == UT_PATH_RPC) {
            UT_OFI_STAT_ADD(ctx, rpcs, 1);
            if (req->length > 0) { /* a bulk reply: a read by RPC */
                UT_OFI_STAT_ADD(ctx, am_reads, 1);
                UT_OFI_STAT_ADD(ctx, read_bytes, req->length);
            }
        } else if (req->path == UT_PATH_GET) {
            UT_OFI_STAT_ADD(ctx, get_reads, 1);
            UT_OFI_STAT_ADD(ctx, read_bytes, req->length);
        }
    } else if (req->status == UCACHE_ERR_TIMEOUT) {
        UT_OFI_STAT_ADD(ctx, timeouts, 1);
    }
    if (req == &peer->hs) {
        ut_ofi_do_handshake_done(ctx, peer);
    }
}

static void do_unsent_push(ut_ofi_ctx_t *ctx, ut_ofi_slot_t *s, uint8_t kind)
{
    uint32_t idx = (uint32_t)(s - ctx->slots);

    s->unsent      = kind;
    s->unsent_next = UINT32_MAX;
    if (ctx->unsent_tail == UINT32_MAX) {
        ctx->unsent_head = idx;
    } else {
        ctx->slots[ctx->unsent_tail].unsent_next = idx;
    }
    ctx->unsent_tail = idx;
}

/* Post the slot's send or read; -FI_EAGAIN leaves it to be posted again by
 * progress.  Returns 0 or a libfabric error. */
static int do_slot_post(ut_ofi_ctx_t *ctx, ut_ofi_slot_t *s, uint8_t kind, bool queued)
{
    int ret;

    if (kind == UT_OFI_OP_SEND) {
        ret = (int)fi_send(s->ep->ep, s->copy, s->len,
                           (s->mr[0] != NULL) ? fi_mr_desc(s->mr[0]) : NULL, s->fa, &s->send);
    } else {
        ret = (int)fi_read(s->ep->ep, s->target, s->tlen,
                           (s->mr[1] != NULL) ? fi_mr_desc(s->mr[1]) : NULL, s->fa, s->raddr,
                           s->key, &s->get);
    }
    if (ret == 0) {
        s->ops |= 1u << kind;
    } else if ((ret == -FI_EAGAIN) && !queued) {
        do_unsent_push(ctx, s, kind);
        ret = 0;
    }
    return ret;
}

/* ------------------------------------------------------------------------ */
/* Reads and RPCs                                                            */
/* ------------------------------------------------------------------------ */

/*
 * Post an RPC whose header goes in req->priv.wire: the tagged receive of
 * its reply first (header and metadata into the slot, data straight into
 * the caller's buffer), then the request, copied (ours until libfabric
 * hands it back, whatever happens to the request).
 */
ucache_status_t ut_ofi_do_rpc_send(ut_ofi_ctx_t *ctx, ut_req_t *req, ut_ofi_peer_t *peer,
                                   uint16_t op, const void *msg, size_t len)
{
    ut_am_req_hdr *hdr = (ut_am_req_hdr *)req->priv.wire;
    uint64_t cap = req->priv.cap;
    struct iovec iov[2];
    uint8_t *body;
    void *desc[2] = { NULL, NULL };
    ucache_status_t status;
    ut_ofi_slot_t *s;
    int ret;

    s = do_slot_alloc(ctx, req, peer);
    if (s == NULL) {
        req->status = UCACHE_ERR_AGAIN;
        return UCACHE_ERR_AGAIN;
    }
    hdr->magic    = UT_AM_MAGIC;
    hdr->op       = op;
    hdr->reserved = 0;
    hdr->id       = req->priv.id;
    hdr->from     = ctx->uuid;
    /* the message: header, the room for the reply's data (so the owner
     * never sends more: a reply truncated at the receiver is an error on
     * tcp, and shm in libfabric 1.17 spins on it), the payload; signed
     * over all of it */
    s->len  = sizeof(*hdr) + sizeof(cap) + len;
    s->copy = malloc(s->len);
    status  = (s->copy != NULL) ? UCACHE_OK : UCACHE_ERR_NO_MEMORY;
    if (status == UCACHE_OK) {
        body = (uint8_t *)s->copy + sizeof(*hdr);
        memcpy(body, &cap, sizeof(cap));
        if (len > 0) {
            memcpy(body + sizeof(cap), msg, len);
        }
        ut_auth_sign(ctx->auth, hdr, sizeof(*hdr), offsetof(ut_am_req_hdr, auth), peer->uuid,
                     body, sizeof(cap) + len);
        memcpy(s->copy, hdr, sizeof(*hdr));
        status = ut_ofi_do_local_mr(ctx, s->copy, s->len, FI_SEND, &s->mr[0], &desc[0]);
    }
    /* a reply's data lands in the caller's buffer, unless it is large and
     * the provider's transfer needs the owner's progress: an owner that
     * froze halfway leaves a receive nothing can cancel, so into ours */
    s->target = req->priv.buf;
    if ((status == UCACHE_OK) && !ctx->one_sided && (req->priv.cap > UT_OFI_DIRECT_MAX)) {
        s->bounce = s->target = do_bounce_get(ctx, req->priv.cap);
        status = (s->bounce != NULL) ? UCACHE_OK : UCACHE_ERR_NO_MEMORY;
    }
    if ((status == UCACHE_OK) && (req->priv.cap > 0)) {
        status = ut_ofi_do_local_mr(ctx, s->target, req->priv.cap, FI_RECV, &s->mr[1],
                                    &desc[1]);
    }
    if (status != UCACHE_OK) {
        ut_ofi_do_req_set_status(req, status);
        do_req_clear(ctx, req, 0);
        return status;
    }
    iov[0].iov_base = s->rep;
    iov[0].iov_len  = sizeof(s->rep);
    iov[1].iov_base = s->target;
    iov[1].iov_len  = req->priv.cap;
    ret = (int)fi_trecvv(s->ep->ep, iov, desc, (req->priv.cap > 0) ? 2 : 1,
                         ctx->directed ? s->fa : FI_ADDR_UNSPEC,
                         UT_OFI_TAG_REPLY | (req->priv.id & UT_OFI_TAG_MASK), 0, &s->recv);
    if (ret == 0) {
        s->ops |= 1u << UT_OFI_OP_RECV;
        req->priv.pending = UT_OFI_PEND_REPLY | UT_OFI_PEND_SEND;
        ret = do_slot_post(ctx, s, UT_OFI_OP_SEND, false);
        if (ret != 0) { /* no request went: no reply comes */
            req->priv.pending &= ~(uint32_t)UT_OFI_PEND_SEND;
            ut_ofi_do_req_set_status(req, ut_ofi_status(ret));
            fi_cancel(&s->ep->ep->fid, &s->recv);
            req->priv.flags |= UT_OFI_REQF_CANCEL;
            UC_DEBUG("a request to %s: %s", peer->pname, fi_strerror(-ret));
            return ut_ofi_status(ret);
        }
        return UCACHE_OK;
    }
    UC_ERROR("posting the receive of a reply from %s: %s", peer->pname, fi_strerror(-ret));
    ut_ofi_do_req_set_status(req, ut_ofi_status(ret));
    do_req_clear(ctx, req, 0);
    return ut_ofi_status(ret);
}

/*
 * The path of @p rk's reads: fi_read where the provider's reads need
 * nothing of the target, or where UCACHE_READ_PATH=get asks; else none
 * (UT_PATH_AM: the layer above reads by RPC).
 */
static ut_path_t do_key_path(ut_ofi_ctx_t *ctx)
{
    if (ctx->cfg.read_path == UC_READ_PATH_GET) {
        return UT_PATH_GET;
    }
    return ((ctx->cfg.read_path == UC_READ_PATH_AUTO) && ctx->one_sided) ? UT_PATH_GET :
           UT_PATH_AM;
}

ut_path_t ut_ofi_rkey_path(ut_rkey_t *rkey)
{
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(rkey->ctx);
    ut_ofi_peer_t *peer = (ut_ofi_peer_t *)rkey->peer;
    ut_path_t path = UT_PATH_NONE;

    pthread_mutex_lock(&ctx->lock);
    if (ut_ofi_do_peer_ensure(ctx, peer) == UCACHE_OK) {
        path = do_key_path(ctx);
    }
    pthread_mutex_unlock(&ctx->lock);
    return path;
}

ucache_status_t ut_ofi_get_post(ut_req_t *req, ut_rkey_t *rkey, uint64_t raddr, void *buf,
                                size_t len)
{
    ut_ofi_rkey_t *rk = (ut_ofi_rkey_t *)rkey;
    ut_ofi_peer_t *peer = (ut_ofi_peer_t *)rkey->peer;
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(rkey->ctx);
    ucache_status_t status;
    ut_ofi_slot_t *s;
    void *desc;
    int ret;

    ut_ofi_do_req_start(req, rkey->peer, UT_PATH_NONE);
    if ((buf == NULL) || (len == 0)) {
        status = UCACHE_ERR_INVALID;
        goto bad_input;
    }
    if ((raddr < rkey->base) || (len > rkey->len) || (raddr - rkey->base > rkey->len - len)) {
        status = UCACHE_ERR_OUT_OF_RANGE;
        goto bad_input;
    }
    pthread_mutex_lock(&ctx->lock);
    status = ut_ofi_do_peer_ensure(ctx, peer);
    if ((status == UCACHE_OK) && (do_key_path(ctx) != UT_PATH_GET)) {
        UC_DEBUG("a get from %s refused: its key's path is RPCs", peer->pname);
        status = UCACHE_ERR_UNSUPPORTED;
    }
    if (status != UCACHE_OK) {
        pthread_mutex_unlock(&ctx->lock);
        req->status = status;
        return status;
    }
    s = do_slot_alloc(ctx, req, peer);
    if (s == NULL) {
        pthread_mutex_unlock(&ctx->lock);
        req->status = UCACHE_ERR_AGAIN;
        return UCACHE_ERR_AGAIN;
    }
    req->path     = UT_PATH_GET;
    req->priv.buf = buf;
    req->priv.cap = len;
    req->length   = len;
    s->tlen   = len;
    s->raddr  = rk->virt ? raddr : raddr - rkey->base;
    s->key    = rk->key;
    s->target = buf;
    if (!ctx->one_sided) { /* the target's progress answers: a read may hang on a
                            * frozen one, so not in the caller's buffer */
        s->bounce = s->target = do_bounce_get(ctx, len);
    }
    status = (s->target != NULL) ?
             ut_ofi_do_local_mr(ctx, s->target, len, FI_READ, &s->mr[1], &desc) :
             UCACHE_ERR_NO_MEMORY;
    if (status == UCACHE_OK) {
        req->priv.pending = UT_OFI_PEND_GET;
        ret = do_slot_post(ctx, s, UT_OFI_OP_GET, false);
        if (ret != 0) {
            status = ut_ofi_status(ret);
            UC_DEBUG("fi_read from %s: %s", peer->pname, fi_strerror(-ret));
        }
    }
    if (status != UCACHE_OK) {
        ut_ofi_do_req_set_status(req, status);
        do_req_clear(ctx, req, UT_OFI_PEND_GET);
    }
    status = (req->status == UCACHE_INPROGRESS) ? UCACHE_OK : req->status;
    pthread_mutex_unlock(&ctx->lock);
    return status;

bad_input:
    UT_OFI_STAT_ADD(ctx, bad_input, 1);
    UC_DEBUG("read of %zu bytes at 0x%llx refused: region is [0x%llx, +%zu): %s", len,
             (unsigned long long)raddr, (unsigned long long)rkey->base, rkey->len,
             ucache_strerror(status));
    req->status = status;
    return status;
}

ucache_status_t ut_ofi_rpc_post(ut_req_t *req, ut_peer_t *p, unsigned id, const void *msg,
                                size_t len, void *meta, size_t meta_cap, void *data,
                                size_t data_cap, uint64_t timeout_ns)
{
    ut_ofi_peer_t *peer = (ut_ofi_peer_t *)p;
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(p->ctx);
    ucache_status_t status;

    ut_ofi_do_req_start(req, p, UT_PATH_RPC);
    if ((id == UT_OP_NONE) || (id > UT_RPC_MAX_ID) || (len > ctx->cfg.rpc_max) ||
        ((len > 0) && (msg == NULL)) || ((meta_cap > 0) && (meta == NULL)) ||
        ((data_cap > 0) && (data == NULL))) {
        UT_OFI_STAT_ADD(ctx, bad_input, 1);
        UC_DEBUG("RPC %u of %zu bytes refused (UCACHE_RPC_MAX %zu)", id, len,
                 ctx->cfg.rpc_max);
        req->status = UCACHE_ERR_INVALID;
        return req->status;
    }
    req->priv.buf      = data;
    req->priv.cap      = data_cap;
    req->priv.meta     = meta;
    req->priv.meta_cap = meta_cap;
    pthread_mutex_lock(&ctx->lock);
    status = ut_ofi_do_peer_ensure(ctx, peer);
    if (status == UCACHE_OK) {
        status = ut_ofi_do_rpc_send(ctx, req, peer, (uint16_t)id, msg, len);
        if ((status == UCACHE_OK) && (timeout_ns != 0)) {
            req->priv.deadline = uc_deadline(timeout_ns);
        }
        status = (req->status == UCACHE_INPROGRESS) ? UCACHE_OK : req->status;
    } else {
        req->status = status;
    }
    pthread_mutex_unlock(&ctx->lock);
    return status;
}

/*
 * ctx->lock held: a request of @p peer is given up with @p status (the peer
 * failed, was destroyed, or the request passed its deadline): its reply's
 * receive is cancelled (it completes when libfabric confirms), its message
 * and a bounced read are left to libfabric; only a read into the caller's
 * buffer (a one-sided provider: it ends without the peer) is waited for.
 */
static void do_req_abort(ut_ofi_ctx_t *ctx, ut_ofi_slot_t *s, ucache_status_t status)
{
    ut_req_t *req = s->req;
    uint32_t detach = 0;

    ut_ofi_do_req_set_status(req, status);
    req->priv.flags |= UT_OFI_REQF_ABORTED;
    if ((req->priv.pending & UT_OFI_PEND_REPLY) && !(req->priv.flags & UT_OFI_REQF_CANCEL)) {
        req->priv.flags |= UT_OFI_REQF_CANCEL;
        if (fi_cancel(&s->ep->ep->fid, &s->recv) != 0) {
            UC_DEBUG("cancelling a reply's receive: already done");
        }
    }
    if (req->priv.pending & UT_OFI_PEND_SEND) {
        detach |= UT_OFI_PEND_SEND;
    }
    if ((req->priv.pending & UT_OFI_PEND_REPLY) && (s->bounce != NULL)) {
        detach |= UT_OFI_PEND_REPLY; /* its receive may be stuck: ours alone */
    }
    if ((req->priv.pending & UT_OFI_PEND_GET) && ((s->bounce != NULL) || s->unsent)) {
        detach |= UT_OFI_PEND_GET;
    }
    if (s->unsent) { /* never posted: nothing of libfabric's to wait for */
        s->unsent = 0;
    }
    if (detach != 0) {
        do_req_clear(ctx, req, detach);
    }
}

void ut_ofi_do_peer_reqs_fail(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *peer, ucache_status_t status)
{
    ut_ofi_slot_t *s;
    uint32_t i;

    for (i = 0; (i < ctx->cfg.max_outstanding) && (peer->inflight > 0); i++) {
        s = &ctx->slots[i];
        if ((s->req != NULL) && (s->req->priv.peer == &peer->super)) {
            do_req_abort(ctx, s, status);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Completions                                                               */
/* ------------------------------------------------------------------------ */

/* A reply arrived in slot @p s: @p len bytes, or @p err. */
static void do_reply_in(ut_ofi_ctx_t *ctx, ut_ofi_slot_t *s, size_t len, int err)
{
    ut_req_t *req = s->req;
    ut_am_rep_hdr hdr;
    size_t data_len = 0;

    if (err != 0) {
        ut_ofi_do_req_set_status(req, (err == FI_ETRUNC) ? UCACHE_ERR_MSG_TRUNCATED :
                                      ut_ofi_status(err));
        if (err == FI_ETRUNC) {
            UT_OFI_STAT_ADD(ctx, bad_input, 1);
            UC_WARN("a reply larger than its request's buffers (%zu data bytes)",
                    req->priv.cap);
        }
        return;
    }
    memcpy(&hdr, s->rep, (len < sizeof(hdr)) ? len : sizeof(hdr));
    if ((len < sizeof(hdr)) || (hdr.magic != UT_AM_MAGIC) || (hdr.id != req->priv.id) ||
        (hdr.meta_len > UT_RPC_META_MAX) ||
        ((len > UT_OFI_REP_LEN) ? false : (len != sizeof(hdr) + hdr.meta_len))) {
        UT_OFI_STAT_ADD(ctx, bad_input, 1);
        UC_WARN("a malformed reply (%zu bytes)", len);
        ut_ofi_do_req_set_status(req, UCACHE_ERR_INVALID);
        return;
    }
    if (len > UT_OFI_REP_LEN) {
        data_len = len - UT_OFI_REP_LEN;
    }
    if (hdr.status != UCACHE_OK) {
        ut_ofi_do_req_set_status(req, (hdr.status < 0) ? (ucache_status_t)hdr.status :
                                                          UCACHE_ERR_INVALID);
        return;
    }
    if (hdr.meta_len > req->priv.meta_cap) {
        ut_ofi_do_req_set_status(req, UCACHE_ERR_MSG_TRUNCATED);
        return;
    }
    if (hdr.meta_len > 0) {
        memcpy(req->priv.meta, s->rep + sizeof(hdr), hdr.meta_len);
    }
    if ((data_len > 0) && (s->bounce != NULL)) {
        memcpy(req->priv.buf, s->bounce, data_len);
    }
    req->meta_length = hdr.meta_len;
    req->length      = data_len;
}

static void do_request_in(ut_ofi_ctx_t *ctx, ut_ofi_ep_t *ep, const uint8_t *data, size_t len);
static void do_reply_done(ut_ofi_ctx_t *ctx, ut_ofi_reply_t *r, int err);

/* One completion (@p err 0) or failure (@p err an FI_E* code). */
static void do_complete(ut_ofi_ctx_t *ctx, ut_ofi_op_t *op, uint64_t flags, size_t len,
                        void *buf, int err)
{
    ut_ofi_slot_t *s;
    ut_ofi_rbuf_t *rb;
    ut_ofi_peer_t *peer;
    ut_req_t *req;

    err = (err < 0) ? -err : err;
    if (op == NULL) {
        /* an error the provider tied to no operation: shm (libfabric 1.17)
         * reports a read from an owner that died so, and never completes
         * the read - do_orphans() pairs it with a read of a failed peer */
        UC_DEBUG("libfabric reported %s for no operation", fi_strerror(err));
        ctx->orphans += (err != 0);
        return;
    }
    if (op->kind == UT_OFI_OP_FOREIGN) {
        op->slot = UT_OFI_OP_DONE | (uint32_t)err;
        return;
    }
    if (op->kind == UT_OFI_OP_RBUF) {
        rb = (ut_ofi_rbuf_t *)op;
        if ((err == 0) && (len > 0) && (buf != NULL)) {
            do_request_in(ctx, rb->ep, buf, len);
        } else if ((err != 0) && (err != FI_ECANCELED)) {
            UT_OFI_STAT_ADD(ctx, bad_input, 1);
            UC_WARN("a request to us failed to arrive: %s", fi_strerror(err));
        }
        if ((flags & FI_MULTI_RECV) || (err != 0)) { /* the buffer is ours again */
            rb->posted = false;
            ut_ofi_do_rbuf_post(ctx, rb);
        }
        return;
    }
    if (op->kind == UT_OFI_OP_REPLY) {
        do_reply_done(ctx, (ut_ofi_reply_t *)op, err);
        return;
    }
    s = &ctx->slots[op->slot];
    s->ops &= ~(1u << op->kind);
    req = s->req;
    if (req == NULL) { /* detached: the request completed without it */
        if ((op->kind == UT_OFI_OP_RECV) && (err == 0)) {
            UT_OFI_STAT_ADD(ctx, late_replies, 1);
        }
        do_slot_release(ctx, s);
        return;
    }
    peer = (ut_ofi_peer_t *)req->priv.peer;
    switch (op->kind) {
    case UT_OFI_OP_GET:
        if (err != 0) {
            ut_ofi_do_req_set_status(req, (atomic_load(&peer->state) == UT_PEER_FAILED) ?
                                          peer->fail_status : ut_ofi_status(err));
        } else if (s->bounce != NULL) {
            memcpy(req->priv.buf, s->bounce, s->tlen);
        }
        do_req_clear(ctx, req, UT_OFI_PEND_GET);
        break;
    case UT_OFI_OP_SEND:
        if (err != 0) { /* it never arrived: no reply comes */
            UC_DEBUG("a request to %s was not sent: %s", peer->pname, fi_strerror(err));
            ut_ofi_do_req_set_status(req, ut_ofi_status(err));
            if (!(req->priv.flags & UT_OFI_REQF_CANCEL)) {
                req->priv.flags |= UT_OFI_REQF_CANCEL;
                fi_cancel(&s->ep->ep->fid, &s->recv);
            }
        }
        do_req_clear(ctx, req, UT_OFI_PEND_SEND);
        break;
    case UT_OFI_OP_RECV:
        if ((err == FI_ECANCELED) && (req->priv.error == UCACHE_OK)) {
            ut_ofi_do_req_set_status(req, UCACHE_ERR_CANCELED);
        } else if (err != FI_ECANCELED) {
            do_reply_in(ctx, s, len, err);
        }
        do_req_clear(ctx, req, UT_OFI_PEND_REPLY);
        break;
    default:
        break;
    }
    if ((err != 0) && (err != FI_ECANCELED) && (err != FI_ETRUNC) &&
        (ut_ofi_status(err) == UCACHE_ERR_PEER) &&
        (atomic_load(&peer->state) != UT_PEER_FAILED) && !peer->client) {
        ut_ofi_do_peer_fail(ctx, peer, UCACHE_ERR_PEER);
    }
}

/* ------------------------------------------------------------------------ */
/* Serving: requests in, replies out                                         */
/* ------------------------------------------------------------------------ */

void ut_ofi_do_rbuf_post(ut_ofi_ctx_t *ctx, ut_ofi_rbuf_t *rb)
{
    struct iovec iov = { .iov_base = rb->buf, .iov_len = rb->size };
    void *desc = (rb->mr != NULL) ? fi_mr_desc(rb->mr) : NULL;
    struct fi_msg msg = { .msg_iov = &iov, .desc = &desc, .iov_count = 1,
                          .addr = FI_ADDR_UNSPEC, .context = &rb->op };
    int ret;

    if (rb->posted || (rb->ep->ep == NULL)) {
        return;
    }
    ret = (int)fi_recvmsg(rb->ep->ep, &msg, FI_MULTI_RECV);
    if (ret != 0) {
        UC_ERROR("posting a buffer for requests to %s: %s", ctx->cfg.ofi_provider,
                 fi_strerror(-ret));
        return; /* the other buffer still takes them; progress posts it again */
    }
    rb->posted = true;
}

static ut_ofi_reply_t *do_reply_get(ut_ofi_ctx_t *ctx)
{
    ut_ofi_reply_t *r = ctx->reply_free;

    if (r != NULL) {
        ctx->reply_free = r->next;
    } else if ((r = malloc(sizeof(*r))) == NULL) {
        return NULL;
    }
    memset(r, 0, offsetof(ut_ofi_reply_t, head));
    r->op.kind = UT_OFI_OP_REPLY;
    r->copy    = NULL;
    r->mem     = NULL;
    r->mr[0]   = r->mr[1] = NULL;
    r->unsent  = false;
    r->auth_refused = false;
    r->prev    = NULL;
    r->next    = ctx->reply_out;
    if (ctx->reply_out != NULL) {
        ctx->reply_out->prev = r;
    }
    ctx->reply_out = r;
    return r;
}

static void do_reply_put(ut_ofi_ctx_t *ctx, ut_ofi_reply_t *r)
{
    unsigned i;

    if (r->mem != NULL) {
        r->mem->sends--;
    }
    for (i = 0; i < 2; i++) {
        if (r->mr[i] != NULL) {
            fi_close(&r->mr[i]->fid);
        }
    }
    free(r->copy);
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        ctx->reply_out = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    r->next = ctx->reply_free;
    ctx->reply_free = r;
}

static void do_reply_done(ut_ofi_ctx_t *ctx, ut_ofi_reply_t *r, int err)
{
    if (r->auth_refused && (ctx->auth_refused != FI_ADDR_NOTAVAIL)) {
        fi_av_remove(ctx->av, &ctx->auth_refused, 1, 0);
        ctx->auth_refused = FI_ADDR_NOTAVAIL;
    }
    if (err != 0) {
        UT_OFI_STAT_ADD(ctx, replies_dropped, 1);
        UC_DEBUG("a reply to a requester failed: %s", fi_strerror(err));
    }
    do_reply_put(ctx, r);
}

static int do_reply_post(ut_ofi_ctx_t *ctx, ut_ofi_reply_t *r)
{
    int ret = (int)fi_tsendv(r->ep->ep, r->iov, r->desc, r->niov, r->fa, r->tag, &r->op);

    if (ret == -FI_EAGAIN) {
        if (!r->unsent) {
            r->unsent = true;
            ctx->replies_unsent++;
        }
        return 0;
    }
    if (r->unsent) {
        r->unsent = false;
        ctx->replies_unsent--;
    }
    if (ret != 0) {
        UT_OFI_STAT_ADD(ctx, replies_dropped, 1);
        UC_DEBUG("a reply to a requester not sent: %s", fi_strerror(-ret));
        do_reply_put(ctx, r);
    }
    return ret;
}

/* Send one reply on @p ep to @p fa; metadata is copied, data borrowed if
 * @p mem (an exported region: stable for the send) else copied. */
static ucache_status_t do_reply_send(ut_ofi_ctx_t *ctx, ut_ofi_ep_t *ep, fi_addr_t fa,
                                     uint64_t id, uint64_t cap, ucache_status_t status,
                                     const void *meta, size_t meta_len, const void *data,
                                     size_t data_len, ut_ofi_mem_t *mem)
{
    ut_ofi_reply_t *r = do_reply_get(ctx);
    ut_am_rep_hdr hdr = { .magic = UT_AM_MAGIC, .status = status, .id = id,
                          .meta_len = (uint32_t)meta_len };
    ucache_status_t ret = UCACHE_OK;

    if (r == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    if (data_len > cap) {
        UC_ERROR("a reply of %zu data bytes to a request with room for %llu: refused",
                 data_len, (unsigned long long)cap);
        hdr.status   = UCACHE_ERR_MSG_TRUNCATED;
        hdr.meta_len = 0;
        meta_len = data_len = 0;
    }
    memcpy(r->head, &hdr, sizeof(hdr));
    if (meta_len > 0) {
        memcpy(r->head + sizeof(hdr), meta, meta_len);
    }
    r->ep   = ep;
    r->fa   = fa;
    r->tag  = UT_OFI_TAG_REPLY | (id & UT_OFI_TAG_MASK);
    r->niov = 1;
    r->iov[0].iov_base = r->head;
    r->iov[0].iov_len  = sizeof(hdr) + meta_len;
    if (data_len > 0) {
        memset(r->head + sizeof(hdr) + meta_len, 0, UT_RPC_META_MAX - meta_len);
        r->iov[0].iov_len = UT_OFI_REP_LEN; /* data after the whole metadata area */
        if (mem != NULL) {
            r->mem = mem;
            mem->sends++;
        } else if ((r->copy = malloc(data_len)) != NULL) {
            memcpy(r->copy, data, data_len);
            data = r->copy;
        } else {
            ret = UCACHE_ERR_NO_MEMORY;
        }
        r->iov[1].iov_base = (void *)data;
        r->iov[1].iov_len  = data_len;
        r->niov = 2;
        UT_OFI_STAT_ADD(ctx, served_bytes, data_len);
    }
    if (ret == UCACHE_OK) {
        ret = ut_ofi_do_local_mr(ctx, r->iov[0].iov_base, r->iov[0].iov_len, FI_SEND,
                                 &r->mr[0], &r->desc[0]);
    }
    if ((ret == UCACHE_OK) && (r->niov == 2)) {
        ret = ut_ofi_do_local_mr(ctx, r->iov[1].iov_base, r->iov[1].iov_len, FI_SEND,
                                 &r->mr[1], &r->desc[1]);
    }
    if (ret != UCACHE_OK) {
        do_reply_put(ctx, r);
        return ret;
    }
    return ut_ofi_status(do_reply_post(ctx, r));
}

/* A requester asks whether we still owe it replies (keepalive.h's ids): the
 * answer says which of them are deferred replies still due. */
static void do_keepalive_answer(ut_ofi_ctx_t *ctx, ut_ofi_ep_t *ep, ut_ofi_peer_t *c,
                                const ut_am_req_hdr *hdr, const void *data, size_t len)
{
    ut_ka_rep rep = { .uuid = ctx->uuid, .pending = 0 };
    uint64_t ids[UT_KA_IDS];
    ut_ofi_rpc_t *d;
    int i, n;

    n = ut_ka_ids_parse(data, len, ids);
    if (n < 0) {
        UT_OFI_STAT_ADD(ctx, bad_input, 1);
        do_reply_send(ctx, ep, c->fa, hdr->id, 0, UCACHE_ERR_INVALID, NULL, 0, NULL, 0, NULL);
        return;
    }
    for (i = 0; i < n; i++) {
        for (d = ctx->dlist; d != NULL; d = d->dnext) {
            if ((d->from == hdr->from) && (d->id == ids[i])) {
                rep.pending |= 1ull << i;
                break;
            }
        }
    }
    do_reply_send(ctx, ep, c->fa, hdr->id, 0, UCACHE_OK, &rep, sizeof(rep), NULL, 0, NULL);
}

/*
 * A PING whose signature does not check out, from a requester we do not
 * know: answered UCACHE_ERR_AUTH once (a clear error, not a silent
 * deadline) if its address is well formed, through an address-vector
 * entry that goes when the answer has been sent; never learnt.
 */
static void do_auth_refuse(ut_ofi_ctx_t *ctx, ut_ofi_ep_t *ep, const ut_am_req_hdr *hdr,
                           const void *blob, size_t len)
{
    fi_addr_t fa = FI_ADDR_NOTAVAIL;
    ut_addr_body body;
    ut_ofi_name name;

    if ((ctx->auth_refused != FI_ADDR_NOTAVAIL) ||
        (ut_ofi_do_addr_take(ctx, blob, len, &body, &name) != UCACHE_OK) ||
        (fi_av_insert(ctx->av, name.name, 1, &fa, 0, NULL) != 1)) {
        return; /* one at a time: the others meet their deadline */
    }
    ctx->auth_refused = fa;
    if (do_reply_send(ctx, ep, ctx->auth_refused, hdr->id, 0, UCACHE_ERR_AUTH, NULL, 0, NULL,
                      0, NULL) != UCACHE_OK) {
        fi_av_remove(ctx->av, &ctx->auth_refused, 1, 0);
        ctx->auth_refused = FI_ADDR_NOTAVAIL;
        return;
    }
    ctx->reply_out->auth_refused = true; /* do_reply_get put it first */
}

/* A request to us: checked (magic, length, signature), then answered. */
static void do_request_in(ut_ofi_ctx_t *ctx, ut_ofi_ep_t *ep, const uint8_t *data, size_t len)
{
    ut_role_t role = UT_ROLE_NONE;
    const uint8_t *payload;
    ut_ofi_handler_t *h;
    uint64_t cap = 0;
    ut_am_req_hdr hdr;
    ut_ofi_rpc_t rpc;
    ut_ofi_peer_t *c;
    size_t plen;

    if (len < sizeof(hdr)) {
        UT_OFI_STAT_ADD(ctx, bad_input, 1);
        UC_WARN("dropped a malformed request (%zu bytes)", len);
        return;
    }
    memcpy(&hdr, data, sizeof(hdr));
    payload = data + sizeof(hdr);
    plen    = len - sizeof(hdr);
    if ((hdr.magic != UT_AM_MAGIC) || (plen < sizeof(cap))) {
        UT_OFI_STAT_ADD(ctx, bad_input, 1);
        UC_WARN("dropped a request with a bad magic 0x%x (%zu bytes)", hdr.magic, len);
        return;
    }
    /* signed, to us, fresh, never seen: before anything else is done for it */
    if (ut_auth_check(ctx->auth, data, sizeof(hdr), offsetof(ut_am_req_hdr, auth), hdr.from,
                      ctx->uuid, hdr.op == UT_OP_PING, payload, plen, &role) != UCACHE_OK) {
        cap = 0;
        c = ut_ofi_do_client_find(ctx, hdr.from);
        if (c != NULL) {
            do_reply_send(ctx, ep, c->fa, hdr.id, cap, UCACHE_ERR_AUTH, NULL, 0, NULL, 0, NULL);
        } else if ((hdr.op == UT_OP_PING) && (plen > sizeof(cap))) {
            do_auth_refuse(ctx, ep, &hdr, payload + sizeof(cap), plen - sizeof(cap));
        }
        return;
    }
    memcpy(&cap, payload, sizeof(cap)); /* the room for the reply's data */
    payload += sizeof(cap);
    plen    -= sizeof(cap);
    if (hdr.op == UT_OP_PING) {
        /* the requester's address: how we answer it, now and later */
        c = ut_ofi_do_client_learn(ctx, hdr.from, payload, plen);
        if (c != NULL) {
            do_reply_send(ctx, ep, c->fa, hdr.id, cap, UCACHE_OK, &ctx->uuid, sizeof(ctx->uuid),
                          NULL, 0, NULL);
        }
        return;
    }
    c = ut_ofi_do_client_find(ctx, hdr.from);
    if (c == NULL) {
        UT_OFI_STAT_ADD(ctx, bad_input, 1);
        UC_DEBUG("a request from a requester that never introduced itself: dropped");
        return;
    }
    if (hdr.op == UT_OP_KEEPALIVE) {
        do_keepalive_answer(ctx, ep, c, &hdr, payload, plen);
        return;
    }
    if (plen > ctx->cfg.rpc_max) {
        UT_OFI_STAT_ADD(ctx, bad_input, 1);
        UC_WARN("refused a %zu-byte request (UCACHE_RPC_MAX is %zu)", plen, ctx->cfg.rpc_max);
        do_reply_send(ctx, ep, c->fa, hdr.id, cap, UCACHE_ERR_MSG_TRUNCATED, NULL, 0, NULL, 0, NULL);
        return;
    }
    h = (hdr.op <= UT_RPC_MAX_ID) ? &ctx->handlers[hdr.op] : NULL;
    if ((h == NULL) || (h->cb == NULL)) {
        UT_OFI_STAT_ADD(ctx, bad_input, 1);
        UC_DEBUG("request for unknown handler %u", hdr.op);
        do_reply_send(ctx, ep, c->fa, hdr.id, cap, UCACHE_ERR_UNSUPPORTED, NULL, 0, NULL, 0, NULL);
        return;
    }
    memset(&rpc, 0, sizeof(rpc));
    rpc.super.ctx  = &ctx->super;
    rpc.super.role = role;
    rpc.ep         = ep;
    rpc.client     = c;
    rpc.from       = hdr.from;
    rpc.id         = hdr.id;
    rpc.cap        = cap;
    h->cb(h->arg, &rpc.super, payload, plen);
    if (!rpc.replied) {
        UC_ERROR("RPC handler %u returned without replying; answering with an error",
                 hdr.op);
        do_reply_send(ctx, ep, c->fa, hdr.id, cap, UCACHE_ERR_TRANSPORT, NULL, 0, NULL, 0, NULL);
    }
    UT_OFI_STAT_ADD(ctx, rpcs_served, 1);
}

ucache_status_t ut_ofi_rpc_reply(ut_rpc_t *r, ucache_status_t status, const void *meta,
                                 size_t meta_len, const void *data, size_t data_len,
                                 unsigned flags)
{
    ut_ofi_rpc_t *rpc = (ut_ofi_rpc_t *)r;
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(r->ctx);
    ut_ofi_mem_t *mem = NULL;
    ucache_status_t ret;

    if (rpc->replied || (meta_len > UT_RPC_META_MAX) || ((meta_len > 0) && (meta == NULL)) ||
        ((data_len > 0) && (data == NULL)) || (flags & ~(unsigned)UT_REPLY_DATA_STABLE)) {
        UC_ERROR("invalid RPC reply (replied=%d meta %zu data %zu flags 0x%x)", rpc->replied,
                 meta_len, data_len, flags);
        if (!rpc->deferred || rpc->replied) {
            return UCACHE_ERR_INVALID;
        }
        status = UCACHE_ERR_INVALID; /* a deferred RPC is answered regardless */
    }
    rpc->replied = true;
    if (status != UCACHE_OK) {
        meta_len = data_len = 0;
    }
    if (!rpc->deferred) { /* inside the handler: the lock is held */
        if ((data_len > 0) && (flags & UT_REPLY_DATA_STABLE)) {
            mem = ut_ofi_do_region_of(ctx, data, data_len);
        }
        return do_reply_send(ctx, rpc->ep, rpc->client->fa, rpc->id, rpc->cap, status, meta, meta_len,
                             data, data_len, mem);
    }
    pthread_mutex_lock(&ctx->lock);
    if ((data_len > 0) && (flags & UT_REPLY_DATA_STABLE)) {
        mem = ut_ofi_do_region_of(ctx, data, data_len);
    }
    ret = do_reply_send(ctx, rpc->ep, rpc->client->fa, rpc->id, rpc->cap, status, meta, meta_len, data,
                        data_len, mem);
    if (ret != UCACHE_OK) {
        UT_OFI_STAT_ADD(ctx, replies_dropped, 1);
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

ucache_status_t ut_ofi_rpc_defer(ut_rpc_t *r, ut_rpc_t **deferred_p)
{
    ut_ofi_rpc_t *rpc = (ut_ofi_rpc_t *)r, *copy;
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(r->ctx);

    if (rpc->replied || rpc->deferred) {
        UC_ERROR("an RPC can be deferred once, inside its handler, before a reply");
        return UCACHE_ERR_INVALID;
    }
    copy = malloc(sizeof(*copy));
    if (copy == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    rpc->client->owed++; /* kept (never evicted) while the reply is due */
    *copy          = *rpc;
    copy->deferred = true;
    copy->dprev    = NULL;
    copy->dnext    = ctx->dlist;
    if (ctx->dlist != NULL) {
        ctx->dlist->dprev = copy;
    }
    ctx->dlist   = copy;
    rpc->replied = true; /* the handler's frame no longer answers it */
    ctx->deferred++;     /* the lock is held inside handlers */
    *deferred_p = &copy->super;
    return UCACHE_OK;
}

ucache_status_t ut_ofi_rpc_handler_set(ut_ctx_t *c, unsigned id, ut_rpc_handler_t cb,
                                       void *arg)
{
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(c);

    if ((id == UT_OP_NONE) || (id > UT_RPC_MAX_ID)) {
        return UCACHE_ERR_INVALID;
    }
    pthread_mutex_lock(&ctx->lock);
    ctx->handlers[id].cb  = cb;
    ctx->handlers[id].arg = arg;
    pthread_mutex_unlock(&ctx->lock);
    return UCACHE_OK;
}

/* ctx->lock held, at context destroy (endpoints closed): every reply freed. */
void ut_ofi_do_replies_free(ut_ofi_ctx_t *ctx)
{
    ut_ofi_reply_t *r;

    while (ctx->reply_out != NULL) {
        do_reply_put(ctx, ctx->reply_out);
    }
    while ((r = ctx->reply_free) != NULL) {
        ctx->reply_free = r->next;
        free(r);
    }
    while (ctx->dlist != NULL) {
        ut_ofi_rpc_t *d = ctx->dlist;

        ctx->dlist = d->dnext;
        free(d);
    }
}

/* ------------------------------------------------------------------------ */
/* Progress                                                                  */
/* ------------------------------------------------------------------------ */

/* ctx->lock held: requests past their deadline fail their peer. */
static void do_deadlines(ut_ofi_ctx_t *ctx, uint64_t now)
{
    ut_ofi_peer_t *peer;
    ut_ofi_slot_t *s;
    ut_req_t *req;
    uint32_t i;

    for (i = 0; (i < ctx->cfg.max_outstanding) && (ctx->nfree < ctx->cfg.max_outstanding);
         i++) {
        s   = &ctx->slots[i];
        req = s->req;
        if ((req == NULL) || (now <= req->priv.deadline) ||
            (req->priv.flags & UT_OFI_REQF_ABORTED)) {
            continue;
        }
        peer = (ut_ofi_peer_t *)req->priv.peer;
        UC_WARN("%s of %zu bytes from %s passed its deadline", ut_path_name(req->path),
                req->priv.cap, peer->pname);
        do_req_abort(ctx, s, UCACHE_ERR_TIMEOUT);
        if ((atomic_load(&peer->state) != UT_PEER_FAILED) && !peer->client) {
            ut_ofi_do_peer_fail(ctx, peer, UCACHE_ERR_TIMEOUT);
        }
    }
}

/* ctx->lock held: each error libfabric reported for no operation ends one
 * read into a caller's buffer that was given up (its peer failed) and is
 * still out - the read it was; the oldest such first. */
static void do_orphans(ut_ofi_ctx_t *ctx)
{
    ut_ofi_slot_t *s, *oldest;
    uint32_t i;

    while (ctx->orphans > 0) {
        oldest = NULL;
        for (i = 0; i < ctx->cfg.max_outstanding; i++) {
            s = &ctx->slots[i];
            if ((s->req != NULL) && (s->req->priv.flags & UT_OFI_REQF_ABORTED) &&
                (s->req->priv.pending & UT_OFI_PEND_GET) && (s->bounce == NULL) &&
                ((oldest == NULL) || (s->req->priv.posted < oldest->req->priv.posted))) {
                oldest = s;
            }
        }
        if (oldest == NULL) {
            return; /* none given up yet: kept for the one that will be */
        }
        ctx->orphans--;
        oldest->ops &= ~(1u << UT_OFI_OP_GET);
        do_req_clear(ctx, oldest->req, UT_OFI_PEND_GET);
    }
}

/* ctx->lock held: operations libfabric asked us to post again. */
static void do_unsent_retry(ut_ofi_ctx_t *ctx)
{
    uint32_t idx = ctx->unsent_head, next;
    ut_ofi_reply_t *r, *rnext;
    ut_ofi_slot_t *s;
    uint8_t kind;
    int ret;

    ctx->unsent_head = ctx->unsent_tail = UINT32_MAX;
    for (; idx != UINT32_MAX; idx = next) {
        s    = &ctx->slots[idx];
        next = s->unsent_next;
        kind = s->unsent;
        if (kind == 0) { /* given up meanwhile */
            do_slot_release(ctx, s);
            continue;
        }
        s->unsent = 0;
        ret = do_slot_post(ctx, s, kind, true);
        if (ret == -FI_EAGAIN) {
            do_unsent_push(ctx, s, kind);
        } else if ((ret != 0) && (s->req != NULL)) {
            ut_ofi_do_req_set_status(s->req, ut_ofi_status(ret));
            do_req_abort(ctx, s, ut_ofi_status(ret));
            if (kind == UT_OFI_OP_GET) {
                do_req_clear(ctx, s->req, UT_OFI_PEND_GET);
            }
        } else {
            do_slot_release(ctx, s);
        }
    }
    for (r = ctx->reply_out; (r != NULL) && (ctx->replies_unsent > 0); r = rnext) {
        rnext = r->next;
        if (r->unsent) {
            do_reply_post(ctx, r);
        }
    }
}

unsigned ut_ofi_do_progress(ut_ofi_ctx_t *ctx)
{
    struct fi_cq_tagged_entry ents[16];
    struct fi_cq_err_entry err;
    unsigned n = 0;
    uint64_t now;
    ssize_t ret;
    ssize_t i;

    for (;;) {
        ret = fi_cq_read(ctx->cq, ents, 16);
        if (ret > 0) {
            for (i = 0; i < ret; i++) {
                do_complete(ctx, ents[i].op_context, ents[i].flags, ents[i].len,
                            ents[i].buf, 0);
            }
            n += (unsigned)ret;
            continue;
        }
        if (ret == -FI_EAVAIL) {
            memset(&err, 0, sizeof(err));
            if (fi_cq_readerr(ctx->cq, &err, 0) == 1) {
                do_complete(ctx, err.op_context, err.flags,
                            (err.err == FI_ETRUNC) ? err.len : 0, err.buf,
                            (err.err != 0) ? err.err : FI_EIO);
                n++;
                continue;
            }
        }
        break;
    }
    if ((ctx->unsent_head != UINT32_MAX) || (ctx->replies_unsent > 0)) {
        do_unsent_retry(ctx);
    }
    if (!ctx->main.rbuf[0].posted || !ctx->main.rbuf[1].posted) {
        ut_ofi_do_rbuf_post(ctx, &ctx->main.rbuf[0]);
        ut_ofi_do_rbuf_post(ctx, &ctx->main.rbuf[1]);
    }
    now = uc_time_ns();
    if (now - ctx->checked_at >= UT_OFI_CHECK_NS) {
        ctx->checked_at = now;
        do_deadlines(ctx, now);
        if (ctx->orphans > 0) {
            do_orphans(ctx);
        }
    }
    if (n > 0) {
        pthread_cond_broadcast(&ctx->progressed);
    }
    return n;
}

unsigned ut_ofi_progress(ut_ctx_t *c)
{
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(c);
    unsigned n;

    pthread_mutex_lock(&ctx->lock);
    n = ut_ofi_do_progress(ctx);
    pthread_mutex_unlock(&ctx->lock);
    return n;
}

/*
 * ctx->lock held, nothing progressed: sleep (lock released) until @p until
 * or UT_OFI_NAP_NS - on the queue's wait fd where libfabric says it is safe
 * to, else briefly; with a progress thread, until it progresses.
 */
static void do_nap(ut_ofi_ctx_t *ctx, uint64_t until)
{
    uint64_t now = uc_time_ns(), ns;
    struct fid *fids[1] = { &ctx->cq->fid };
    struct pollfd pfd;
    struct timespec ts;

    if (until <= now) {
        return;
    }
    ns = (until - now < UT_OFI_NAP_NS) ? until - now : UT_OFI_NAP_NS;
    if (ctx->thread_running && !ut_ofi_progress_thread) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)ns;
        ts.tv_sec  += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&ctx->progressed, &ctx->lock, &ts);
        return;
    }
    if ((ctx->waitfd >= 0) && (fi_trywait(ctx->fabric, fids, 1) == FI_SUCCESS)) {
        pfd.fd      = ctx->waitfd;
        pfd.events  = POLLIN;
        pfd.revents = 0;
        pthread_mutex_unlock(&ctx->lock);
        poll(&pfd, 1, (int)((ns + UC_NSEC_PER_MSEC - 1) / UC_NSEC_PER_MSEC));
        pthread_mutex_lock(&ctx->lock);
        return;
    }
    pthread_mutex_unlock(&ctx->lock);
    usleep((ns > 50000) ? 50 : (useconds_t)(ns / 1000 + 1));
    pthread_mutex_lock(&ctx->lock);
}

static bool do_done(const ut_req_t *req)
{
    return req->status != UCACHE_INPROGRESS;
}

/* ctx->lock held: progress (or, with a progress thread, let it) once; nap
 * when nothing moved for UCACHE_PROGRESS_SPIN. */
static void do_wait_step(ut_ofi_ctx_t *ctx, uint64_t until, uint64_t *idle_since)
{
    uint64_t now;

    if (!ctx->thread_running && (ut_ofi_do_progress(ctx) > 0)) {
        *idle_since = 0;
        return;
    }
    now = uc_time_ns();
    if (*idle_since == 0) {
        *idle_since = now;
    }
    if (!ctx->thread_running && (now - *idle_since < ctx->cfg.progress_spin_ns)) {
        return;
    }
    do_nap(ctx, until);
}

ucache_status_t ut_ofi_wait(ut_ctx_t *c, ut_req_t *reqs, size_t n, uint64_t timeout_ns)
{
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(c);
    uint64_t until = uc_deadline(timeout_ns), idle = 0;
    ucache_status_t status = UCACHE_OK;
    size_t i;
    bool all;

    pthread_mutex_lock(&ctx->lock);
    for (;;) {
        all = true;
        for (i = 0; (i < n) && all; i++) {
            all = do_done(&reqs[i]);
        }
        if (all || (uc_time_ns() >= until)) {
            break;
        }
        do_wait_step(ctx, until, &idle);
    }
    if (!all && !ctx->thread_running) {
        ut_ofi_do_progress(ctx);
    }
    for (i = 0; i < n; i++) {
        if (!do_done(&reqs[i])) {
            status = UCACHE_INPROGRESS;
        } else if ((reqs[i].status != UCACHE_OK) && (status == UCACHE_OK)) {
            status = reqs[i].status;
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    return status;
}

size_t ut_ofi_wait_any(ut_ctx_t *c, ut_req_t **reqs, size_t n, uint64_t timeout_ns)
{
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(c);
    uint64_t until = uc_deadline(timeout_ns), idle = 0;
    size_t i, done = 0;
    ut_req_t *t;

    pthread_mutex_lock(&ctx->lock);
    for (;;) {
        for (i = 0; i < n; i++) {
            if (do_done(reqs[i])) {
                t = reqs[done];
                reqs[done++] = reqs[i];
                reqs[i] = t;
            }
        }
        if ((done > 0) || (n == 0) || (uc_time_ns() >= until)) {
            break;
        }
        do_wait_step(ctx, until, &idle);
    }
    pthread_mutex_unlock(&ctx->lock);
    return done;
}

static void *do_thread(void *arg)
{
    ut_ofi_ctx_t *ctx = arg;
    uint64_t idle = 0;

    ut_ofi_progress_thread = true;
    pthread_mutex_lock(&ctx->lock);
    while (!atomic_load(&ctx->thread_stop)) {
        if (ut_ofi_do_progress(ctx) > 0) {
            idle = 0;
            continue;
        }
        if (idle == 0) {
            idle = uc_time_ns();
        } else if (uc_time_ns() - idle >= ctx->cfg.progress_spin_ns) {
            do_nap(ctx, uc_time_ns() + UT_OFI_NAP_NS);
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    return NULL;
}

ucache_status_t ut_ofi_thread_start(ut_ofi_ctx_t *ctx)
{
    atomic_store(&ctx->thread_stop, false);
    if (pthread_create(&ctx->thread, NULL, do_thread, ctx) != 0) {
        UC_ERROR("cannot start the progress thread");
        return UCACHE_ERR_NO_MEMORY;
    }
    ctx->thread_running = true;
    return UCACHE_OK;
}

void ut_ofi_thread_stop(ut_ofi_ctx_t *ctx)
{
    if (!ctx->thread_running) {
        return;
    }
    atomic_store(&ctx->thread_stop, true);
    pthread_join(ctx->thread, NULL);
    ctx->thread_running = false;
}
