/*
 * ofi_serve.c - the libfabric backend's serving side: the multi-receive
 * buffers requests land in, each request checked (magic, length, the
 * signature over all of it) before its handler runs, the handshake PING
 * (the requester learnt, or refused once with UCACHE_ERR_AUTH), keepalive
 * answers, replies (metadata copied, data borrowed from an exported region
 * or copied) as tagged messages, deferred replies.
 */
#include "transport/ofi_int.h"

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
                 ut_ofi_strerror(-ret));
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

void ut_ofi_do_reply_done(ut_ofi_ctx_t *ctx, ut_ofi_reply_t *r, int err)
{
    if (r->auth_refused && (ctx->auth_refused != FI_ADDR_NOTAVAIL)) {
        fi_av_remove(ctx->av, &ctx->auth_refused, 1, 0);
        ctx->auth_refused = FI_ADDR_NOTAVAIL;
    }
    if (err != 0) {
        UT_OFI_STAT_ADD(ctx, replies_dropped, 1);
        UC_DEBUG("a reply to a requester failed: %s", ut_ofi_strerror(err));
    }
    do_reply_put(ctx, r);
}

int ut_ofi_do_reply_post(ut_ofi_ctx_t *ctx, ut_ofi_reply_t *r)
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
        UC_DEBUG("a reply to a requester not sent: %s", ut_ofi_strerror(-ret));
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
    return ut_ofi_status(ut_ofi_do_reply_post(ctx, r));
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
void ut_ofi_do_request_in(ut_ofi_ctx_t *ctx, ut_ofi_ep_t *ep, const uint8_t *data, size_t len)
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
        do_reply_send(ctx, ep, c->fa, hdr.id, cap, UCACHE_ERR_MSG_TRUNCATED, NULL, 0, NULL, 0,
                      NULL);
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
    UT_OFI_STAT_ADD(ctx, rpcs_served, 1); /* before its reply can reach anyone */
    h->cb(h->arg, &rpc.super, payload, plen);
    if (!rpc.replied) {
        UC_ERROR("RPC handler %u returned without replying; answering with an error",
                 hdr.op);
        do_reply_send(ctx, ep, c->fa, hdr.id, cap, UCACHE_ERR_TRANSPORT, NULL, 0, NULL, 0, NULL);
    }
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
        return do_reply_send(ctx, rpc->ep, rpc->client->fa, rpc->id, rpc->cap, status, meta,
                             meta_len, data, data_len, mem);
    }
    pthread_mutex_lock(&ctx->lock);
    if ((data_len > 0) && (flags & UT_REPLY_DATA_STABLE)) {
        mem = ut_ofi_do_region_of(ctx, data, data_len);
    }
    ret = do_reply_send(ctx, rpc->ep, rpc->client->fa, rpc->id, rpc->cap, status, meta,
                        meta_len, data, data_len, mem);
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

/* ctx->lock held: region @p mem goes while replies out of it are still
 * unsent (its mapping is kept): they no longer count against it. */
void ut_ofi_do_replies_detach(ut_ofi_ctx_t *ctx, const ut_ofi_mem_t *mem)
{
    ut_ofi_reply_t *r;

    for (r = ctx->reply_out; r != NULL; r = r->next) {
        if (r->mem == mem) {
            r->mem = NULL;
        }
    }
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
