/*
 * ofi_req.c - the libfabric backend's requests and their completions: reads
 * (fi_read) and RPCs (a request message, a tagged reply) posted by readers,
 * slots and bounce buffers, the completion queue read (its requests to us
 * handed to ofi_serve.c), deadlines.  Waiting and the progress thread are
 * ofi_wait.c's.  A request
 * completes once, when its last pending bit clears; its slot is freed when
 * libfabric has also handed back every operation on it (a request past its
 * deadline completes as soon as no operation out writes into the caller's
 * buffers - messages and bounce buffers are ours).
 */
#include "transport/ofi_int.h"

#include <sys/random.h>

#define UT_OFI_SLOT_BITS 20
#define UT_OFI_SLOT_MASK ((1ull << UT_OFI_SLOT_BITS) - 1)
#define UT_OFI_CHECK_NS  (100ull * 1000)  /* deadlines looked at this often */
/* a same-host peer's process looked for (at most this often per peer) when
 * one of its requests is out this long */
#define UT_OFI_GONE_NS   (50ull * 1000 * 1000)

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
    if (ctx->napping) { /* its completion needs the progress thread now */
        pthread_cond_signal(&ctx->kick);
    }
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
            UC_DEBUG("a request to %s: %s", peer->pname, ut_ofi_strerror(-ret));
            return ut_ofi_status(ret);
        }
        return UCACHE_OK;
    }
    UC_ERROR("posting the receive of a reply from %s: %s", peer->pname, ut_ofi_strerror(-ret));
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

/* The provider decides it, not the peer: nothing to connect for (a peer
 * that refuses us says why on the first read or RPC, not as NONE here). */
ut_path_t ut_ofi_rkey_path(ut_rkey_t *rkey)
{
    return do_key_path(ut_ofi_ctx_of(rkey->ctx));
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
            UC_DEBUG("fi_read from %s: %s", peer->pname, ut_ofi_strerror(-ret));
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
    if (ut_rpc_args_take(req, ctx->cfg.rpc_max, id, msg, len, meta, meta_cap, data,
                         data_cap) != UCACHE_OK) {
        UT_OFI_STAT_ADD(ctx, bad_input, 1);
        return req->status;
    }
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
        UC_DEBUG("libfabric reported %s for no operation", ut_ofi_strerror(err));
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
            ut_ofi_do_request_in(ctx, rb->ep, buf, len);
        } else if ((err != 0) && (err != FI_ECANCELED)) {
            UT_OFI_STAT_ADD(ctx, bad_input, 1);
            UC_WARN("a request to us failed to arrive: %s", ut_ofi_strerror(err));
        }
        if ((flags & FI_MULTI_RECV) || (err != 0)) { /* the buffer is ours again */
            rb->posted = false;
            ut_ofi_do_rbuf_post(ctx, rb);
        }
        return;
    }
    if (op->kind == UT_OFI_OP_REPLY) {
        ut_ofi_do_reply_done(ctx, (ut_ofi_reply_t *)op, err);
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
        if (err != 0) { /* (a read that failed is the transport's, not an I/O error
                         * of the reader's: the layer above tries another way) */
            UC_DEBUG("a read from %s failed: %s", peer->pname, ut_ofi_strerror(err));
            ut_ofi_do_req_set_status(req, (atomic_load(&peer->state) == UT_PEER_FAILED) ?
                                          peer->fail_status :
                                          (ut_ofi_status(err) == UCACHE_ERR_IO) ?
                                          UCACHE_ERR_TRANSPORT : ut_ofi_status(err));
        } else if (s->bounce != NULL) {
            memcpy(req->priv.buf, s->bounce, s->tlen);
        }
        do_req_clear(ctx, req, UT_OFI_PEND_GET);
        break;
    case UT_OFI_OP_SEND:
        if (err != 0) { /* it never arrived: no reply comes */
            UC_DEBUG("a request to %s was not sent: %s", peer->pname, ut_ofi_strerror(err));
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
/* Progress                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * ctx->lock held: a request waits longer than UCACHE_TIMEOUT may take (a
 * miss its owner fills from the origin) - is its peer alive, and still
 * working on it?  As in the UCX backend (ucx_req.c): once such a request
 * has waited UCACHE_TIMEOUT / 2, a KEEPALIVE goes out with the ids of the
 * peer's requests that old, one round per UCACHE_TIMEOUT / 2, itself due
 * within UCACHE_TIMEOUT / 2 (past that its peer fails, as any request past
 * its deadline fails it); a request the answer says twice in a row is no
 * longer owed fails on its own (UCACHE_ERR_AGAIN: ask again).  A frozen or
 * cut-off owner so costs a miss UCACHE_TIMEOUT, not UCACHE_FETCH_TIMEOUT.
 */
static void do_ka_answered(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *peer)
{
    unsigned i, n = peer->ka_n;
    ut_ofi_slot_t *s;
    ut_req_t *req;

    peer->ka_n = 0;
    if ((peer->ka.status != UCACHE_OK) || (peer->ka.meta_length != sizeof(ut_ka_rep))) {
        return; /* no word on the requests */
    }
    for (i = 0; i < n; i++) {
        s   = &ctx->slots[peer->ka_ids[i] & UT_OFI_SLOT_MASK];
        req = s->req;
        if ((req == NULL) || (req->priv.id != peer->ka_ids[i]) ||
            (req->priv.flags & UT_OFI_REQF_ABORTED) || !(req->priv.pending & UT_OFI_PEND_REPLY)) {
            continue;
        }
        if (peer->ka_rep.pending & (1ull << i)) {
            req->priv.flags &= ~UT_OFI_REQF_UNOWED;
        } else if (!(req->priv.flags & UT_OFI_REQF_UNOWED)) {
            req->priv.flags |= UT_OFI_REQF_UNOWED; /* its reply may still be on its way */
        } else {
            UC_WARN("%s answers but twice no longer owes a reply it did not send: its "
                    "request fails (the reply or the request was lost)", peer->pname);
            UT_OFI_STAT_ADD(ctx, replies_lost, 1);
            do_req_abort(ctx, s, UCACHE_ERR_AGAIN); /* the peer is fine: ask again */
        }
    }
}

static void do_peer_liveness(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *peer, uint64_t now)
{
    uint64_t half = ctx->cfg.timeout_ns / 2;
    unsigned n = 0;
    ut_req_t *req;
    uint32_t i;

    if (peer->ka.status == UCACHE_INPROGRESS) {
        return; /* its deadline is UCACHE_TIMEOUT / 2 */
    }
    if (peer->ka_n > 0) {
        do_ka_answered(ctx, peer);
    }
    if (now - peer->ka.priv.posted < half) {
        return; /* one round per UCACHE_TIMEOUT / 2 */
    }
    for (i = 0; (i < ctx->cfg.max_outstanding) && (n < UT_KA_IDS); i++) {
        req = ctx->slots[i].req;
        if ((req != NULL) && (req != &peer->ka) &&
            ut_ka_due(req, &peer->super, !(req->priv.flags & UT_OFI_REQF_ABORTED) &&
                      (req->priv.pending & UT_OFI_PEND_REPLY), now, ctx->cfg.timeout_ns)) {
            peer->ka_ids[n++] = req->priv.id;
        }
    }
    if (n == 0) {
        return;
    }
    ut_ofi_do_req_start(&peer->ka, &peer->super, UT_PATH_NONE);
    ut_ka_answer_into(&peer->ka, &peer->ka_rep, sizeof(peer->ka_rep));
    if (ut_ofi_do_rpc_send(ctx, &peer->ka, peer, UT_OP_KEEPALIVE, peer->ka_ids,
                           n * sizeof(uint64_t)) == UCACHE_OK) {
        peer->ka_n = n;
        peer->ka.priv.deadline = now + half;
        UT_OFI_STAT_ADD(ctx, keepalives, 1);
        UC_DEBUG("keepalive to %s about %u requests", peer->pname, n);
    }
}

/* ctx->lock held: requests past their deadline fail their peer; the peers
 * of long requests are asked whether they are alive. */
static void do_deadlines(ut_ofi_ctx_t *ctx, uint64_t now)
{
    ut_ofi_peer_t *peer;
    ut_ofi_slot_t *s;
    ut_req_t *req;
    uint32_t i, left;

    /* slots are taken lowest first: stop once every one in use was seen */
    for (i = 0, left = ctx->cfg.max_outstanding - ctx->nfree;
         (i < ctx->cfg.max_outstanding) && (left > 0); i++) {
        s   = &ctx->slots[i];
        req = s->req;
        left -= (s->gen != 0);
        if ((req == NULL) || (req->priv.flags & UT_OFI_REQF_ABORTED)) {
            continue;
        }
        peer = (ut_ofi_peer_t *)req->priv.peer;
        if ((now <= req->priv.deadline) && peer->pid_seen && !peer->client &&
            (now - req->priv.posted > UT_OFI_GONE_NS) &&
            (now - peer->alive_at > UT_OFI_GONE_NS)) {
            peer->alive_at = now;
            if (ut_ofi_peer_gone(ctx, peer)) {
                UC_WARN("%s exited with requests out: they fail now, not at their deadline",
                        peer->pname);
                do_req_abort(ctx, s, UCACHE_ERR_PEER);
                if (atomic_load(&peer->state) != UT_PEER_FAILED) {
                    ut_ofi_do_peer_fail(ctx, peer, UCACHE_ERR_PEER);
                }
                continue;
            }
        }
        if (now <= req->priv.deadline) {
            if ((req->priv.deadline > req->priv.posted + ctx->cfg.timeout_ns) &&
                (req->priv.pending & UT_OFI_PEND_REPLY) && !peer->client &&
                (atomic_load(&peer->state) == UT_PEER_CONNECTED)) {
                do_peer_liveness(ctx, peer, now);
            }
            continue;
        }
        if (req == &peer->ka) {
            UC_WARN("%s did not answer a keepalive within %llu ms while a request waited",
                    peer->pname, (unsigned long long)(ctx->cfg.timeout_ns / 2 / UC_NSEC_PER_MSEC));
        } else {
            UC_WARN("%s of %zu bytes from %s passed its deadline", ut_path_name(req->path),
                    req->priv.cap, peer->pname);
        }
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
            ut_ofi_do_reply_post(ctx, r);
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
    if ((ctx->listener != NULL) &&
        (!ctx->listener->rbuf[0].posted || !ctx->listener->rbuf[1].posted)) {
        ut_ofi_do_rbuf_post(ctx, &ctx->listener->rbuf[0]);
        ut_ofi_do_rbuf_post(ctx, &ctx->listener->rbuf[1]);
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

