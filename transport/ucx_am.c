/*
 * ucx_am.c - the UCX backend's active messages: a serving node's
 * request handler (reads, RPCs, keepalives, the handshake PING), its
 * replies and the requesters it may owe one; a reader's reply handler.
 * Every header from a peer is checked (magic, lengths, signature) first.
 */
#include "transport/ucx_int.h"

#define UT_CLIENTS_MAX    65536      /* past it, one owed nothing is forgotten */

/* ------------------------------------------------------------------------ */
/* Active messages                                                           */
/* ------------------------------------------------------------------------ */

static ut_ucx_reply_t *do_reply_get(ut_ucx_ctx_t *ctx)
{
    ut_ucx_reply_t *r = ctx->reply_free;

    if (r != NULL) {
        ctx->reply_free = r->next;
    } else {
        r = malloc(sizeof(*r));
        if (r == NULL) {
            return NULL;
        }
    }
    r->copy = NULL;
    r->mem  = NULL;
    r->ctx  = ctx;
    r->prev = NULL;
    r->next = ctx->reply_out;
    if (ctx->reply_out != NULL) {
        ctx->reply_out->prev = r;
    }
    ctx->reply_out = r;
    return r;
}

static void do_reply_put(ut_ucx_reply_t *r)
{
    ut_ucx_ctx_t *ctx = r->ctx;

    if (r->mem != NULL) {
        r->mem->sends--;
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

static void ut_ucx_reply_sent_cb(void *request, ucs_status_t status,
                                 void *user_data)
{
    ut_ucx_reply_t *r = user_data;

    if (status != UCS_OK) {
        UC_DEBUG("reply to a requester failed: %s", ucs_status_string(status));
    }
    do_reply_put(r);
    ucp_request_free(request);
}

/* Send one reply on @p ep; metadata is copied, data borrowed if stable. */
ucache_status_t ut_ucx_do_reply_send(ut_ucx_ctx_t *ctx, ucp_ep_h ep,
                                     uint64_t id, ucache_status_t status,
                                     const void *meta, size_t meta_len,
                                     const void *data, size_t data_len,
                                     bool stable, ut_ucx_mem_t *mem)
{
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.send      = ut_ucx_reply_sent_cb
    };
    ut_ucx_reply_t *r;
    void *sreq;

    r = do_reply_get(ctx);
    if (r == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    if ((data_len > 0) && !stable) {
        r->copy = malloc(data_len);
        if (r->copy == NULL) {
            do_reply_put(r);
            return UCACHE_ERR_NO_MEMORY;
        }
        memcpy(r->copy, data, data_len);
        data = r->copy;
    } else if (mem != NULL) {
        r->mem = mem; /* mem_destroy waits for this reply to be sent */
        mem->sends++;
    }
    r->hdr.magic    = UT_AM_MAGIC;
    r->hdr.status   = status;
    r->hdr.id       = id;
    r->hdr.meta_len = (uint32_t)meta_len;
    r->hdr.reserved = 0;
    if (meta_len > 0) {
        memcpy(r->meta, meta, meta_len);
    }
    param.user_data = r;
    sreq = ucp_am_send_nbx(ep, UT_AM_ID_REP, &r->hdr, sizeof(r->hdr) + meta_len,
                           (data_len > 0) ? data : NULL, data_len, &param);
    if (sreq == NULL) {
        do_reply_put(r);
    } else if (UCS_PTR_IS_ERR(sreq)) {
        UC_DEBUG("cannot send a reply: %s",
                 ucs_status_string(UCS_PTR_STATUS(sreq)));
        do_reply_put(r);
        return ut_ucs_status(UCS_PTR_STATUS(sreq));
    }
    if (status == UCACHE_OK) {
        UT_STAT_ADD(ctx, served_bytes, data_len);
    }
    return UCACHE_OK;
}

/* ------------------------------------------------------------------------ */
/* Requesters a node may owe a deferred reply                                */
/* ------------------------------------------------------------------------ */

/* ctx->lock held: the requester of uuid @p uuid, if it introduced itself. */
ut_ucx_peer_t *ut_ucx_do_client_find(ut_ucx_ctx_t *ctx, uint64_t uuid)
{
    ut_ucx_peer_t *c;

    for (c = ctx->clients[uuid % UT_CLIENT_BUCKETS]; c != NULL; c = c->cnext) {
        if (c->uuid == uuid) {
            return c;
        }
    }
    return NULL;
}

/* ctx->lock held: forget one requester owed nothing (its endpoint closed),
 * from @p uuid's bucket on, to make room.  False if every one is owed. */
static bool do_client_evict(ut_ucx_ctx_t *ctx, uint64_t uuid)
{
    ut_ucx_peer_t **pp, *c;
    unsigned i, b;

    for (i = 0; i < UT_CLIENT_BUCKETS; i++) {
        b = (unsigned)((uuid + i) % UT_CLIENT_BUCKETS);
        for (pp = &ctx->clients[b]; (c = *pp) != NULL; pp = &c->cnext) {
            if (c->owed > 0) {
                continue;
            }
            *pp = c->cnext;
            if (atomic_load(&c->state) == UT_PEER_CONNECTED) {
                ut_ucx_do_peer_disconnect(ctx, c, UT_PEER_IDLE);
            }
            free(c->ucp_addr);
            free(c);
            ctx->nclients--;
            return true;
        }
    }
    return false;
}

/*
 * ctx->lock held: a requester's PING carries its address blob (checked
 * here like any blob from outside; it must name the uuid the request came
 * with).  The node keeps it as a peer of its own, connected only when a
 * deferred reply is due: UCX's reply endpoint is valid only during the
 * request's handler, and is destroyed by UCX when the requester fails.
 */
void ut_ucx_do_client_learn(ut_ucx_ctx_t *ctx, uint64_t uuid, const void *blob,
                            size_t len)
{
    const void *payload;
    ut_addr_body body;
    ut_ucx_peer_t *c;
    size_t plen;

    if ((uuid == 0) || (len == 0) || (ut_ucx_do_client_find(ctx, uuid) != NULL)) {
        return;
    }
    if ((ut_blob_check(blob, len, UT_ADDR_MAGIC, sizeof(body), &body, &payload,
                       &plen) != UCACHE_OK) || (body.uuid != uuid)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_WARN("a requester's address does not check out; its requests are not "
                "deferred");
        return;
    }
    if ((ctx->nclients >= UT_CLIENTS_MAX) && !do_client_evict(ctx, uuid)) {
        UC_WARN("%u requesters known, each owed a reply; no more are (their "
                "misses are answered at once)", UT_CLIENTS_MAX);
        return;
    }
    c = calloc(1, sizeof(*c));
    if ((c == NULL) || ((c->ucp_addr = malloc(plen)) == NULL)) {
        free(c);
        return;
    }
    memcpy(c->ucp_addr, payload, plen);
    c->ucp_addr_len = plen;
    c->uuid         = uuid;
    c->client       = true;
    c->super.ctx    = &ctx->super;
    c->native_get   = -1;
    atomic_init(&c->state, UT_PEER_IDLE);
    snprintf(c->name, sizeof(c->name), "requester %.*s:%u", UT_HOST_MAX - 1, body.host,
             body.pid);
    c->cnext = ctx->clients[uuid % UT_CLIENT_BUCKETS];
    ctx->clients[uuid % UT_CLIENT_BUCKETS] = c;
    ctx->nclients++;
}

/* ctx->lock held, at context destroy: every requester's endpoint closed. */
void ut_ucx_do_clients_free(ut_ucx_ctx_t *ctx)
{
    ut_ucx_peer_t *c;
    unsigned b;

    for (b = 0; b < UT_CLIENT_BUCKETS; b++) {
        while ((c = ctx->clients[b]) != NULL) {
            ctx->clients[b] = c->cnext;
            if (atomic_load(&c->state) == UT_PEER_CONNECTED) {
                ut_ucx_do_peer_disconnect(ctx, c, UT_PEER_IDLE);
            }
            free(c->ucp_addr);
            free(c);
        }
    }
    ctx->nclients = 0;
}

/*
 * A requester waits long for replies and asks whether we are there and
 * still owe them (do_peer_liveness).  The answer says which of the asked
 * ids are deferred replies still due, and takes the path those replies
 * take - our own endpoint to the requester - behind any that went out, so
 * the requester never takes a reply in flight for a lost one.  A requester
 * we never answered on our own endpoint is answered on UCX's reply one.
 */
static void do_keepalive_answer(ut_ucx_ctx_t *ctx, ucp_ep_h reply_ep,
                                const ut_am_req_hdr *hdr, const void *data, size_t len)
{
    ut_ucx_peer_t *c = ut_ucx_do_client_find(ctx, hdr->from);
    ut_ka_rep rep = { .uuid = ctx->uuid, .pending = 0 };
    uint64_t ids[UT_KA_IDS];
    ucp_ep_h ep = reply_ep;
    ut_ucx_rpc_t *d;
    int i, n;

    n = ut_ka_ids_parse(data, len, ids);
    if (n < 0) {
        UT_STAT_ADD(ctx, bad_input, 1);
        ut_ucx_do_reply_send(ctx, reply_ep, hdr->id, UCACHE_ERR_INVALID, NULL, 0, NULL, 0,
                             false, NULL);
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
    if ((c != NULL) && ((c->owed > 0) || (atomic_load(&c->state) != UT_PEER_IDLE))) {
        if (atomic_load(&c->state) == UT_PEER_FAILED) {
            atomic_store(&c->failed_at, 0);
        }
        if (ut_ucx_do_peer_ensure(ctx, c) != UCACHE_OK) {
            return; /* no way back to it: no answer, as for the replies */
        }
        ep = c->ep;
    }
    ut_ucx_do_reply_send(ctx, ep, hdr->id, UCACHE_OK, &rep, sizeof(rep), NULL, 0, false, NULL);
}

ucs_status_t ut_ucx_am_req_cb(void *arg, const void *header,
                              size_t header_length, void *data,
                              size_t length,
                              const ucp_am_recv_param_t *param)
{
    ut_ucx_ctx_t *ctx = arg;
    bool rndv = !!(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV);
    ut_role_t role = UT_ROLE_NONE;
    ut_ucx_handler_t *h;
    ut_am_req_hdr hdr;
    ut_ucx_peer_t *c;
    ut_ucx_rpc_t rpc;

    if ((header_length != sizeof(hdr)) ||
        !(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_WARN("dropped a malformed request (header %zu bytes)", header_length);
        return UCS_OK;
    }
    memcpy(&hdr, header, sizeof(hdr));
    if (hdr.magic != UT_AM_MAGIC) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_WARN("dropped a request with a bad magic 0x%x", hdr.magic);
        return UCS_OK;
    }
    /* Signed, to us, fresh, never seen: before anything else is done for
     * it (a rendezvous payload is not here to check, so it is refused). */
    if (ut_auth_check(ctx->auth, header, header_length, offsetof(ut_am_req_hdr, auth),
                      hdr.from, ctx->uuid, hdr.op == UT_OP_PING, rndv ? NULL : data,
                      length, &role) != UCACHE_OK) {
        if (rndv) {
            ucp_am_data_release(ctx->worker, data);
        }
        ut_ucx_do_reply_send(ctx, param->reply_ep, hdr.id, UCACHE_ERR_AUTH, NULL, 0, NULL, 0,
                             false, NULL);
        return UCS_OK;
    }
    if (ctx->nunauthed > 0) {
        ut_ucx_do_accepted_authed(ctx, param->reply_ep);
    }
    if (hdr.op == UT_OP_PING) {
        c = ut_ucx_do_client_find(ctx, hdr.from);
        if ((c != NULL) && (atomic_load(&c->state) != UT_PEER_IDLE) &&
            (c->ep != param->reply_ep)) { /* (the same endpoint: it is live) */
            /* A requester we know connects again: its old connection - which
             * our endpoint to it may share (UCX matches them) - is gone or
             * going, and a reply sent on that endpoint now would be lost.
             * The next reply due opens a fresh one. */
            ut_ucx_do_peer_disconnect(ctx, c, UT_PEER_IDLE);
        }
        if (!(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) {
            ut_ucx_do_client_learn(ctx, hdr.from, data, length);
        } else {
            ucp_am_data_release(ctx->worker, data);
        }
        /* our uuid: a requester that knew only our listener addresses its
         * later requests to it */
        ut_ucx_do_reply_send(ctx, param->reply_ep, hdr.id, UCACHE_OK, &ctx->uuid,
                             sizeof(ctx->uuid), NULL, 0, false, NULL);
        return UCS_OK;
    }
    if (hdr.op == UT_OP_KEEPALIVE) {
        do_keepalive_answer(ctx, param->reply_ep, &hdr, rndv ? NULL : data,
                            rndv ? UT_KA_IDS * sizeof(uint64_t) + 1 : length);
        if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
            ucp_am_data_release(ctx->worker, data);
        }
        return UCS_OK;
    }
    if ((param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) ||
        (length > ctx->cfg.rpc_max)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_WARN("refused a %zu-byte request (UCACHE_RPC_MAX is %zu)", length,
                ctx->cfg.rpc_max);
        if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
            ucp_am_data_release(ctx->worker, data);
        }
        ut_ucx_do_reply_send(ctx, param->reply_ep, hdr.id, UCACHE_ERR_MSG_TRUNCATED,
                             NULL, 0, NULL, 0, false, NULL);
        return UCS_OK;
    }
    h = (hdr.op <= UT_RPC_MAX_ID) ? &ctx->handlers[hdr.op] : NULL;
    if ((h == NULL) || (h->cb == NULL)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_DEBUG("request for unknown handler %u", hdr.op);
        ut_ucx_do_reply_send(ctx, param->reply_ep, hdr.id, UCACHE_ERR_UNSUPPORTED,
                             NULL, 0, NULL, 0, false, NULL);
        return UCS_OK;
    }
    rpc.super.ctx  = &ctx->super;
    rpc.super.role = role;
    rpc.reply_ep   = param->reply_ep;
    rpc.client    = NULL;
    rpc.from      = hdr.from;
    rpc.id        = hdr.id;
    rpc.replied   = false;
    rpc.deferred  = false;
    UT_STAT_ADD(ctx, rpcs_served, 1); /* before its reply can reach anyone */
    h->cb(h->arg, &rpc.super, data, length);
    if (!rpc.replied) {
        UC_ERROR("RPC handler %u returned without replying; answering with an "
                 "error", hdr.op);
        ut_ucx_do_reply_send(ctx, param->reply_ep, hdr.id, UCACHE_ERR_TRANSPORT,
                             NULL, 0, NULL, 0, false, NULL);
    }
    return UCS_OK;
}

static void ut_ucx_recv_done_cb(void *request, ucs_status_t status,
                                size_t length, void *user_data)
{
    ut_req_t *req = user_data;
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)req->priv.peer;

    if (status != UCS_OK) {
        ut_ucx_do_req_set_status(req, (atomic_load(&peer->state) == UT_PEER_FAILED) ?
                               peer->fail_status : ut_ucs_status(status));
    } else {
        req->length = length;
    }
    ut_ucx_do_req_clear(ut_ctx_of(peer->super.ctx), req, UT_PEND_RECV);
    ucp_request_free(request);
}

ucs_status_t ut_ucx_am_rep_cb(void *arg, const void *header,
                              size_t header_length, void *data,
                              size_t length,
                              const ucp_am_recv_param_t *param)
{
    ut_ucx_ctx_t *ctx = arg;
    bool rndv = !!(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV);
    ucp_request_param_t rparam;
    ut_am_rep_hdr hdr;
    ut_req_t *req;
    void *rreq;

    if (header_length < sizeof(hdr)) {
        goto bad;
    }
    memcpy(&hdr, header, sizeof(hdr));
    if ((hdr.magic != UT_AM_MAGIC) ||
        (hdr.meta_len != header_length - sizeof(hdr))) {
        goto bad;
    }
    req = ut_ucx_do_slot_find(ctx, hdr.id);
    if ((req == NULL) || !(req->priv.pending & UT_PEND_REPLY)) {
        UT_STAT_ADD(ctx, late_replies, 1); /* its request timed out or failed */
        goto drop;
    }
    ((ut_ucx_peer_t *)req->priv.peer)->heard_at = uc_time_ns();
    if ((hdr.status > UCACHE_OK) ||
        (strcmp(ucache_status_name((ucache_status_t)hdr.status), "UCACHE_ERR_UNKNOWN") == 0)) {
        UT_STAT_ADD(ctx, bad_input, 1);   /* INPROGRESS or no status at all */
        UC_WARN("a reply carried status %d, which no request ends with", (int)hdr.status);
        ut_ucx_do_req_set_status(req, UCACHE_ERR_TRANSPORT);
        ut_ucx_do_req_clear(ctx, req, UT_PEND_REPLY);
        goto drop;
    }
    if (hdr.status != UCACHE_OK) {
        ut_ucx_do_req_set_status(req, (ucache_status_t)hdr.status);
        ut_ucx_do_req_clear(ctx, req, UT_PEND_REPLY);
        goto drop;
    }
    if ((hdr.meta_len > req->priv.meta_cap) || (length > req->priv.cap)) {
        UC_WARN("reply of %u+%zu bytes does not fit the %zu+%zu-byte buffers",
                hdr.meta_len, length, req->priv.meta_cap, req->priv.cap);
        ut_ucx_do_req_set_status(req, UCACHE_ERR_MSG_TRUNCATED);
        ut_ucx_do_req_clear(ctx, req, UT_PEND_REPLY);
        goto drop;
    }
    if (hdr.meta_len > 0) {
        memcpy(req->priv.meta, (const uint8_t *)header + sizeof(hdr), hdr.meta_len);
    }
    req->meta_length = hdr.meta_len;
    req->length      = length;
    if (!rndv) {
        if (length > 0) {
            memcpy(req->priv.buf, data, length);
        }
        ut_ucx_do_req_clear(ctx, req, UT_PEND_REPLY);
        return UCS_OK;
    }
    /* Bulk data: received by UCX straight into the caller's buffer.  No
     * reply is owed any more, so no keepalive covers it: like a get, the
     * transfer has UCACHE_TIMEOUT (a link cut mid-transfer would otherwise
     * hold it until the link came back, or to the RPC's own deadline). */
    if (req->priv.deadline > uc_time_ns() + ctx->cfg.timeout_ns) {
        req->priv.deadline = uc_time_ns() + ctx->cfg.timeout_ns;
    }
    rparam.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
    rparam.cb.recv_am   = ut_ucx_recv_done_cb;
    rparam.user_data    = req;
    req->priv.pending  |= UT_PEND_RECV;
    rreq = ucp_am_recv_data_nbx(ctx->worker, data, req->priv.buf, length, &rparam);
    if (rreq == NULL) {
        req->priv.pending &= ~UT_PEND_RECV;
    } else if (UCS_PTR_IS_ERR(rreq)) {
        req->priv.pending &= ~UT_PEND_RECV;
        ut_ucx_do_req_set_status(req, ut_ucs_status(UCS_PTR_STATUS(rreq)));
    }
    ut_ucx_do_req_clear(ctx, req, UT_PEND_REPLY);
    return UCS_OK;

bad:
    UT_STAT_ADD(ctx, bad_input, 1);
    UC_WARN("dropped a malformed reply (header %zu bytes)", header_length);
drop:
    if (rndv) {
        ucp_am_data_release(ctx->worker, data);
    }
    return UCS_OK;
}

static void ut_ucx_send_done_cb(void *request, ucs_status_t status,
                                void *user_data)
{
    ut_req_t *req = user_data;
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)req->priv.peer;
    ut_ucx_ctx_t *ctx = ut_ctx_of(peer->super.ctx);
    uint32_t bits = UT_PEND_SEND;

    if (status != UCS_OK) {
        ut_ucx_do_req_set_status(req, (atomic_load(&peer->state) == UT_PEER_FAILED) ?
                               peer->fail_status : ut_ucs_status(status));
        bits |= UT_PEND_REPLY; /* no reply will come */
    }
    ut_ucx_do_req_clear(ctx, req, bits);
    ucp_request_free(request);
}

/* Send an AM request whose header lives in req->priv.wire. */
ucache_status_t ut_ucx_do_am_request(ut_ucx_ctx_t *ctx, ut_req_t *req,
                                     ut_ucx_peer_t *peer, uint16_t op,
                                     const void *payload, size_t len)
{
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
                        UCP_OP_ATTR_FIELD_FLAGS,
        .cb.send      = ut_ucx_send_done_cb,
        .user_data    = req,
        .flags        = UCP_AM_SEND_FLAG_REPLY | UCP_AM_SEND_FLAG_EAGER
    };
    ut_am_req_hdr *hdr = (ut_am_req_hdr *)req->priv.wire;
    ucache_status_t status;
    void *sreq;

    status = ut_ucx_do_slot_alloc(ctx, req);
    if (status != UCACHE_OK) {
        return status;
    }
    hdr->magic    = UT_AM_MAGIC;
    hdr->op       = op;
    hdr->reserved = 0;
    hdr->id       = req->priv.id;
    hdr->from     = ctx->uuid;
    ut_auth_sign(ctx->auth, hdr, sizeof(*hdr), offsetof(ut_am_req_hdr, auth), peer->uuid,
                 payload, len);
    req->priv.pending = UT_PEND_SEND | UT_PEND_REPLY;
    sreq = ucp_am_send_nbx(peer->ep, UT_AM_ID_REQ, hdr, sizeof(*hdr), payload,
                           len, &param);
    if (sreq == NULL) {
        ut_ucx_do_req_clear(ctx, req, UT_PEND_SEND);
    } else if (UCS_PTR_IS_ERR(sreq)) {
        status = ut_ucs_status(UCS_PTR_STATUS(sreq));
        ut_ucx_do_req_set_status(req, status);
        ut_ucx_do_req_clear(ctx, req, UT_PEND_SEND | UT_PEND_REPLY);
        return status;
    }
    return UCACHE_OK;
}
