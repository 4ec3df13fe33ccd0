/*
 * ucx_raw.h - what the tests' attackers do with UCX directly, below the
 * transport's checks: a raw UCX peer of their own (any features, e.g. the
 * software RMA a ucache context never turns on for a serving node) with the
 * UCX part of a node's address and key blobs, and requests sent on a
 * context's endpoint byte for byte (a replay, an unsigned copy).  Include
 * after "transport/ucx_int.h".  No CUnit here: callers check the results.
 */
#ifndef UCACHE_TESTS_UCX_RAW_H
#define UCACHE_TESTS_UCX_RAW_H

typedef struct raw_peer {
    ucp_context_h ctx;
    ucp_worker_h  worker;
    ucp_ep_h      ep;
    ucp_rkey_h    rkey;   /* NULL if UCX would not unpack the key */
    uint64_t      base;   /* the region's address, from its key blob */
} raw_peer_t;

/* Connect a raw UCX context with @p features to the worker in @p addr and
 * unpack @p rkey_blob.  @return 0, or -1 if a blob or UCX refused. */
static inline int raw_peer_open(raw_peer_t *rp, uint64_t features, const void *addr,
                                size_t addr_len, const void *rkey_blob, size_t rkey_len)
{
    ucp_params_t up = { .field_mask = UCP_PARAM_FIELD_FEATURES, .features = features };
    ucp_worker_params_t wp = { .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                               .thread_mode = UCS_THREAD_MODE_SINGLE };
    ucp_ep_params_t ep = { .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS };
    const void *apay, *rpay;
    size_t aplen, rplen;
    ut_addr_body abody;
    ut_rkey_body rbody;
    ucp_config_t *ucfg;

    memset(rp, 0, sizeof(*rp));
    if ((ut_blob_check(addr, addr_len, UT_ADDR_MAGIC, sizeof(abody), &abody, &apay,
                       &aplen) != UCACHE_OK) ||
        (ut_blob_check(rkey_blob, rkey_len, UT_RKEY_MAGIC, sizeof(rbody), &rbody, &rpay,
                       &rplen) != UCACHE_OK) ||
        (ucp_config_read(NULL, NULL, &ucfg) != UCS_OK)) {
        return -1;
    }
    if (ucp_init(&up, ucfg, &rp->ctx) != UCS_OK) {
        ucp_config_release(ucfg);
        return -1;
    }
    ucp_config_release(ucfg);
    ep.address = apay;
    if ((ucp_worker_create(rp->ctx, &wp, &rp->worker) != UCS_OK) ||
        (ucp_ep_create(rp->worker, &ep, &rp->ep) != UCS_OK)) {
        return -1;
    }
    rp->base = rbody.base;
    if (ucp_ep_rkey_unpack(rp->ep, rpay, &rp->rkey) != UCS_OK) {
        rp->rkey = NULL;
    }
    return 0;
}

/* Progress @p worker until @p req completes or @p deadline (ns) passes.
 * @return UCS_OK, its error, or UCS_ERR_TIMED_OUT; frees the request. */
static inline ucs_status_t raw_wait(ucp_worker_h worker, void *req, uint64_t deadline)
{
    ucs_status_t st;

    if (UCS_PTR_IS_ERR(req)) {
        return UCS_PTR_STATUS(req);
    }
    if (req == NULL) {
        return UCS_OK;
    }
    while (((st = ucp_request_check_status(req)) == UCS_INPROGRESS) &&
           (uc_time_ns() < deadline)) {
        ucp_worker_progress(worker);
    }
    ucp_request_free(req);     /* (UCX completes or drops an unfinished one at close) */
    return (st == UCS_INPROGRESS) ? UCS_ERR_TIMED_OUT : st;
}

static inline void raw_peer_close(raw_peer_t *rp)
{
    if (rp->rkey != NULL) {
        ucp_rkey_destroy(rp->rkey);
    }
    if (rp->ep != NULL) {
        raw_wait(rp->worker, ucp_ep_close_nbx(rp->ep, &(ucp_request_param_t){
                     .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                     .flags = UCP_EP_CLOSE_FLAG_FORCE }), UINT64_MAX);
    }
    if (rp->worker != NULL) {
        ucp_worker_destroy(rp->worker);
    }
    if (rp->ctx != NULL) {
        ucp_cleanup(rp->ctx);
    }
}

/* Send active message @p am_id (a header of @p hdr_len bytes and a payload)
 * on @p peer's endpoint of context @p c as it is (signed or not, well
 * formed or not), and progress until UCX has sent it. */
static inline void raw_send_am(ut_ctx_t *c, ut_ucx_peer_t *peer, unsigned am_id,
                               const void *hdr, size_t hdr_len, const void *payload,
                               size_t len)
{
    ucp_request_param_t prm = { .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                                .flags = UCP_AM_SEND_FLAG_REPLY | UCP_AM_SEND_FLAG_EAGER };
    void *sreq;

    pthread_mutex_lock(&ut_ctx_of(c)->lock);
    sreq = ucp_am_send_nbx(peer->ep, am_id, hdr, hdr_len, payload, len, &prm);
    while ((sreq != NULL) && !UCS_PTR_IS_ERR(sreq) &&
           (ucp_request_check_status(sreq) == UCS_INPROGRESS)) {
        ut_ucx_do_progress(ut_ctx_of(c));
    }
    if ((sreq != NULL) && !UCS_PTR_IS_ERR(sreq)) {
        ucp_request_free(sreq);
    }
    pthread_mutex_unlock(&ut_ctx_of(c)->lock);
}

/* A request header and payload, as they are (a replay, an unsigned copy). */
static inline void raw_send(ut_ctx_t *c, ut_ucx_peer_t *peer, const ut_am_req_hdr *hdr,
                            const void *payload, size_t len)
{
    raw_send_am(c, peer, UT_AM_ID_REQ, hdr, sizeof(*hdr), payload, len);
}

#endif
