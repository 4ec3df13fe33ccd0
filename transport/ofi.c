/*
 * ofi.c - the libfabric backend of the transport layer (ops table
 * ut_ofi_ops, UCACHE_TRANSPORT=ofi): its context - one fabric, domain,
 * address vector and completion queue, and one reliable-datagram endpoint
 * (FI_EP_RDM) of the provider UCACHE_OFI_PROVIDER names, serialized by
 * ctx->lock - made, configured and destroyed here; its objects live
 * beside it: ofi_peer.c (peers, the handshake, requesters, the listener),
 * ofi_req.c (requests, completions, deadlines), ofi_serve.c (the serving
 * side: requests in, replies out), ofi_wait.c (waiting, the progress
 * thread), ofi_mem.c (regions and remote keys); ofi_int.h is what they
 * share.
 *
 * The protocol is the UCX backend's, over libfabric's primitives:
 *   request: an untagged message, ut_am_req_hdr + the room the requester
 *            has for the reply's data (uint64) + payload, signed over all
 *            of it, into the serving endpoint's multi-receive buffers;
 *   reply:   a tagged message (tag: UT_OFI_TAG_REPLY | the request's id)
 *            of ut_am_rep_hdr + metadata (padded to UT_RPC_META_MAX when
 *            data follows) + data, landing in the requester's buffers
 *            (a directed receive where the provider has FI_DIRECTED_RECV:
 *            only the peer asked can answer);
 *   read:    fi_read of a region registered FI_REMOTE_READ only.
 * A requester introduces itself first (a PING with its address blob), so
 * the owner can answer it; a request waits for that handshake.
 *
 * Reads pick the fastest correct primitive per provider: fi_read where the
 * provider's RMA needs nothing of the target (shm's cross-memory attach,
 * verbs, efa); elsewhere (tcp, where the target's progress answers a
 * read) none - the key's path is UT_PATH_AM and the layer above reads by
 * RPC, as over UCX's tcp.  UCACHE_READ_PATH=get forces fi_read there, into a
 * bounce buffer so that a frozen owner's deadline still holds.
 *
 * Wire formats: transport/wire.h (UT_OFI_ADDR_MAGIC, UT_OFI_RKEY_MAGIC;
 * a UCX blob is refused here, and ours there).
 */
#include "transport/ofi_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

ucache_status_t ut_ofi_status(int err)
{
    switch ((err < 0) ? -err : err) {
    case 0:            return UCACHE_OK;
    case FI_EAGAIN:    return UCACHE_ERR_AGAIN;
    case FI_ENOMEM:    return UCACHE_ERR_NO_MEMORY;
    case FI_EINVAL:    return UCACHE_ERR_INVALID;
    case FI_ETIMEDOUT: return UCACHE_ERR_TIMEOUT;
    case FI_ECANCELED: return UCACHE_ERR_CANCELED;
    case FI_ENOSYS:
    case FI_EOPNOTSUPP: return UCACHE_ERR_UNSUPPORTED;
    case FI_ETRUNC:
    case FI_EMSGSIZE:  return UCACHE_ERR_MSG_TRUNCATED;
    case FI_EIO:       return UCACHE_ERR_IO;
    case FI_EACCES:
    case FI_EPERM:
    case FI_EKEYREJECTED: return UCACHE_ERR_DENIED;
    case FI_ECONNREFUSED:
    case FI_ECONNRESET:
    case FI_ECONNABORTED:
    case FI_ENOTCONN:
    case FI_EHOSTUNREACH:
    case FI_ENETUNREACH:
    case FI_EADDRNOTAVAIL:     return UCACHE_ERR_PEER;
    default:           return UCACHE_ERR_TRANSPORT;
    }
}

/* A local buffer's descriptor: registered now where the provider wants
 * local buffers registered (FI_MR_LOCAL), else none. */
ucache_status_t ut_ofi_do_local_mr(ut_ofi_ctx_t *ctx, const void *buf, size_t len,
                                   uint64_t access, struct fid_mr **mr_p, void **desc_p)
{
    int ret;

    *mr_p   = NULL;
    *desc_p = NULL;
    if (!ctx->mr_local || (len == 0)) {
        return UCACHE_OK;
    }
    ret = fi_mr_reg(ctx->domain, buf, len, access, 0, 0, 0, mr_p, NULL);
    if (ret != 0) {
        UC_ERROR("fi_mr_reg of a local buffer (%zu bytes): %s", len, ut_ofi_strerror(-ret));
        *mr_p = NULL;
        return ut_ofi_status(ret);
    }
    *desc_p = fi_mr_desc(*mr_p);
    return UCACHE_OK;
}

static void do_rbuf_free(ut_ofi_rbuf_t *rb)
{
    if (rb->mr != NULL) {
        fi_close(&rb->mr->fid);
        rb->mr = NULL;
    }
    free(rb->buf);
    rb->buf = NULL;
}

/*
 * libfabric 1.17's shm names an endpoint's region in /dev/shm after the
 * process id ("PID:N:M").  A process killed before it closed its endpoint
 * leaves its region behind, and a later process that gets the same pid
 * cannot create its own (EBUSY: a test suite's fresh-clone CI run met it).
 * A region named with our own pid that exists before we made it is such a
 * leftover: true if one was removed, so enabling may be tried again.
 */
static bool do_shm_leftover_removed(ut_ofi_ctx_t *ctx, struct fid_ep *ep)
{
    char name[128] = "", *base, *end;
    size_t len = sizeof(name) - 1;

    if ((strcmp(ctx->info->fabric_attr->prov_name, "shm") != 0) ||
        (fi_getname(&ep->fid, name, &len) != 0)) {
        return false;
    }
    base = strrchr(name, '/');       /* (its "fi_shm://" prefix) */
    base = (base != NULL) ? base + 1 : name;
    if ((strtol(base, &end, 10) != (long)getpid()) || (*end != ':') ||
        ((shm_unlink(base) != 0) && (errno != ENOENT))) { /* (the failed enable may
                                                             have removed it) */
        return false;
    }
    UC_WARN("libfabric shm: the region %s a killed process with this pid had left is "
            "removed", base);
    return true;
}

/* Open, bind and enable an endpoint of @p info; its requests' buffers
 * posted. */
ucache_status_t ut_ofi_do_ep_open(ut_ofi_ctx_t *ctx, ut_ofi_ep_t *ep, struct fi_info *info)
{
    size_t min = ctx->rbuf_min, len = sizeof(ep->name.name);
    void *desc;
    unsigned i;
    int ret;

    memset(ep, 0, sizeof(*ep));
    ret = fi_endpoint(ctx->domain, info, &ep->ep, NULL);
    if (ret == 0) {
        ret = fi_ep_bind(ep->ep, &ctx->av->fid, 0);
    }
    if (ret == 0) {
        ret = fi_ep_bind(ep->ep, &ctx->cq->fid, FI_TRANSMIT | FI_RECV);
    }
    if (ret == 0) {
        ret = fi_enable(ep->ep);
        if (((ret == -FI_EBUSY) || (ret == -EEXIST)) &&
            do_shm_leftover_removed(ctx, ep->ep)) {
            ret = fi_enable(ep->ep);
        }
    }
    if (ret == 0) {
        ret = fi_setopt(&ep->ep->fid, FI_OPT_ENDPOINT, FI_OPT_MIN_MULTI_RECV, &min,
                        sizeof(min));
    }
    if (ret == 0) {
        ret = fi_getname(&ep->ep->fid, ep->name.name, &len);
        if ((ret == 0) && (len > sizeof(ep->name.name))) {
            ret = -FI_ETOOSMALL;
        }
    }
    if (ret != 0) {
        UC_ERROR("a libfabric endpoint of %s: %s", ctx->info->fabric_attr->prov_name,
                 ut_ofi_strerror(-ret));
        goto err;
    }
    snprintf(ep->name.prov, sizeof(ep->name.prov), "%.*s", (int)sizeof(ep->name.prov) - 1,
             ctx->cfg.ofi_provider);
    ep->name.addr_format = info->addr_format;
    ep->name.len         = (uint32_t)len;
    for (i = 0; i < 2; i++) {
        ep->rbuf[i].op.kind = UT_OFI_OP_RBUF;
        ep->rbuf[i].op.slot = i;
        ep->rbuf[i].ep      = ep;
        ep->rbuf[i].size    = min * UT_OFI_RBUF_MSGS;
        ep->rbuf[i].buf     = malloc(ep->rbuf[i].size);
        if ((ep->rbuf[i].buf == NULL) ||
            (ut_ofi_do_local_mr(ctx, ep->rbuf[i].buf, ep->rbuf[i].size, FI_RECV,
                                &ep->rbuf[i].mr, &desc) != UCACHE_OK)) {
            goto err;
        }
        ut_ofi_do_rbuf_post(ctx, &ep->rbuf[i]);
        if (!ep->rbuf[i].posted) {
            goto err;
        }
    }
    return UCACHE_OK;

err:
    ut_ofi_do_ep_close(ctx, ep);
    return UCACHE_ERR_TRANSPORT;
}

void ut_ofi_do_ep_close(ut_ofi_ctx_t *ctx, ut_ofi_ep_t *ep)
{
    unsigned i;

    (void)ctx;
    if (ep->ep != NULL) {
        fi_close(&ep->ep->fid);
        ep->ep = NULL;
    }
    for (i = 0; i < 2; i++) {
        do_rbuf_free(&ep->rbuf[i]);
        ep->rbuf[i].posted = false;
    }
}

static ucache_status_t do_make_address(ut_ofi_ctx_t *ctx)
{
    ut_addr_body body = { .uuid = ctx->uuid, .pid = (uint32_t)getpid() };

    if (gethostname(body.host, sizeof(body.host) - 1) != 0) {
        snprintf(body.host, sizeof(body.host), "unknown");
    }
    memcpy(ctx->host, body.host, sizeof(ctx->host));
    ctx->addr_blob = ut_blob_build(UT_OFI_ADDR_MAGIC, &body, sizeof(body), &ctx->main.name,
                                   sizeof(ctx->main.name), &ctx->addr_blob_len);
    return (ctx->addr_blob != NULL) ? UCACHE_OK : UCACHE_ERR_NO_MEMORY;
}

/* Whether the provider's reads complete without the target's CPU (so a
 * stopped owner is still read, and a read is never stuck on one): the RDMA
 * NICs', and shm's by cross-memory attach (the reader copies out of the
 * owner's memory itself; not with FI_SHM_DISABLE_CMA).  Not tcp's: the
 * target's progress answers a read there. */
static bool do_one_sided(const char *prov)
{
    const char *cma = getenv("FI_SHM_DISABLE_CMA");

    if (strncmp(prov, "shm", 3) == 0) {
        return (cma == NULL) || (cma[0] == '\0') || (cma[0] == '0') || (cma[0] == 'n') ||
               (cma[0] == 'N') || (cma[0] == 'f') || (cma[0] == 'F');
    }
    return (strstr(prov, "verbs") != NULL) || (strstr(prov, "efa") != NULL) ||
           (strstr(prov, "psm") != NULL) || (strstr(prov, "cxi") != NULL);
}

/* Whether the provider keeps a connection per peer in the address vector
 * (rxm's over tcp or verbs, sockets): UCACHE_MAX_EPS caps those.  shm,
 * efa and psm address a peer without one; and with libfabric 1.17's shm,
 * peers taken out of the address vector and put back misread (reads
 * failed with EIO, others did not verify), so no peer leaves it there. */
static bool do_conns(const char *prov)
{
    return (strstr(prov, "rxm") != NULL) || (strstr(prov, "tcp") != NULL) ||
           (strstr(prov, "sockets") != NULL) || (strstr(prov, "verbs") != NULL);
}

/* What the backend asks of a provider (and `ucache devices` lists). */
static struct fi_info *do_hints(const char *prov)
{
    struct fi_info *hints = ut_ofi_lib.dupinfo(NULL);

    if (hints == NULL) {
        return NULL;
    }
    hints->ep_attr->type = FI_EP_RDM;
    hints->caps = FI_MSG | FI_TAGGED | FI_RMA | FI_READ | FI_REMOTE_READ | FI_MULTI_RECV |
                  FI_SEND | FI_RECV;
    hints->mode = FI_CONTEXT | FI_CONTEXT2;
    hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED |
                                  FI_MR_PROV_KEY;
    hints->domain_attr->threading = FI_THREAD_DOMAIN;
    if (prov != NULL) {
        hints->fabric_attr->prov_name = strdup(prov);
    }
    return hints;
}

bool ut_ofi_sockaddr_fmt(uint32_t fmt)
{
    return (fmt == FI_SOCKADDR) || (fmt == FI_SOCKADDR_IN) || (fmt == FI_SOCKADDR_IN6);
}

void ut_ofi_devices(ucache_devices_t *devs)
{
    struct fi_info *hints, *list = NULL, *i;
    ucache_ofi_prov_t *o;
    uint32_t v;
    size_t k;

    if (ut_ofi_lib_load() != UCACHE_OK) {
        return; /* no libfabric here: no providers, no version */
    }
    hints = do_hints(NULL);
    v     = ut_ofi_lib.version();
    snprintf(devs->ofi_version, sizeof(devs->ofi_version), "%u.%u", FI_MAJOR(v), FI_MINOR(v));
    if ((hints == NULL) || (ut_ofi_lib.getinfo(UT_OFI_API, NULL, NULL, 0, hints, &list) != 0)) {
        list = NULL;
    }
    for (i = list; (i != NULL) && (devs->nofi < UCACHE_OFI_MAX); i = i->next) {
        for (k = 0; k < devs->nofi; k++) { /* one line per provider and domain */
            if ((strcmp(devs->ofi[k].prov, i->fabric_attr->prov_name) == 0) &&
                (strcmp(devs->ofi[k].domain, i->domain_attr->name) == 0)) {
                break;
            }
        }
        if (k < devs->nofi) {
            continue;
        }
        o = &devs->ofi[devs->nofi++];
        snprintf(o->prov, sizeof(o->prov), "%s", i->fabric_attr->prov_name);
        snprintf(o->fabric, sizeof(o->fabric), "%s", i->fabric_attr->name);
        snprintf(o->domain, sizeof(o->domain), "%s", i->domain_attr->name);
        o->one_sided = do_one_sided(o->prov);
        o->listener  = ut_ofi_sockaddr_fmt(i->addr_format);
    }
    if (list != NULL) {
        ut_ofi_lib.freeinfo(list);
    }
    if (hints != NULL) {
        ut_ofi_lib.freeinfo(hints);
    }
}

static ucache_status_t do_fabric_open(ut_ofi_ctx_t *ctx)
{
    struct fi_cq_attr cq_attr = { .format = FI_CQ_FORMAT_TAGGED, .wait_obj = FI_WAIT_FD };
    struct fi_av_attr av_attr = { .type = FI_AV_UNSPEC };
    struct fi_info *hints = do_hints(ctx->cfg.ofi_provider);
    int ret;

    if (hints == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    ret = ut_ofi_lib.getinfo(UT_OFI_API, NULL, NULL, 0, hints, &ctx->info);
    ut_ofi_lib.freeinfo(hints);
    if ((ret != 0) || (ctx->info == NULL)) {
        UC_ERROR("libfabric has no provider '%s' with reliable datagrams, messages, tags "
                 "and remote reads here: %s (fi_info -l lists them)", ctx->cfg.ofi_provider,
                 ut_ofi_strerror(-ret));
        ctx->info = NULL;
        return UCACHE_ERR_UNSUPPORTED;
    }
    ctx->mr_local    = !!(ctx->info->domain_attr->mr_mode & FI_MR_LOCAL);
    ctx->mr_virt     = !!(ctx->info->domain_attr->mr_mode & FI_MR_VIRT_ADDR);
    ctx->mr_prov_key = !!(ctx->info->domain_attr->mr_mode & FI_MR_PROV_KEY);
    ctx->directed    = !!(ctx->info->caps & FI_DIRECTED_RECV);
    ctx->one_sided   = do_one_sided(ctx->cfg.ofi_provider);
    ctx->conns       = do_conns(ctx->cfg.ofi_provider);
    ctx->local       = (strncmp(ctx->cfg.ofi_provider, "shm", 3) == 0);
    ret = ut_ofi_lib.fabric(ctx->info->fabric_attr, &ctx->fabric, NULL);
    if (ret == 0) {
        ret = fi_domain(ctx->fabric, ctx->info, &ctx->domain, NULL);
    }
    if (ret == 0) {
        ret = fi_av_open(ctx->domain, &av_attr, &ctx->av, NULL);
    }
    if (ret == 0) {
        ret = fi_cq_open(ctx->domain, &cq_attr, &ctx->cq, NULL);
        if (ret != 0) { /* no wait fd: waiters poll */
            cq_attr.wait_obj = FI_WAIT_NONE;
            ret = fi_cq_open(ctx->domain, &cq_attr, &ctx->cq, NULL);
        } else if (fi_control(&ctx->cq->fid, FI_GETWAIT, &ctx->waitfd) != 0) {
            ctx->waitfd = -1;
        }
    }
    if (ret != 0) {
        UC_ERROR("libfabric %s: %s", ctx->cfg.ofi_provider, ut_ofi_strerror(-ret));
        return UCACHE_ERR_TRANSPORT;
    }
    return ut_ofi_do_ep_open(ctx, &ctx->main, ctx->info);
}

static void ut_ofi_ctx_destroy(ut_ctx_t *c);

static ucache_status_t ut_ofi_ctx_create(const ut_params_t *params, ut_ctx_t **ctx_p)
{
    ucache_status_t ret;
    ut_ofi_ctx_t *ctx;
    uint32_t i;

    uc_log_init();
    if (ut_ofi_lib_load() != UCACHE_OK) {
        UC_ERROR("UCACHE_TRANSPORT=ofi: libfabric (%s) cannot be loaded here: install "
                 "libfabric1, or use UCACHE_TRANSPORT=ucx", "libfabric.so.1");
        return UCACHE_ERR_UNSUPPORTED;
    }
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    ctx->super.ops = &ut_ofi_ops;
    ctx->waitfd = -1;
    pthread_mutex_init(&ctx->lock, NULL);
    pthread_cond_init(&ctx->progressed, NULL);
    pthread_cond_init(&ctx->kick, NULL);
    ret = ut_params_take(params, &ctx->cfg, &ctx->progress_mode, &ctx->serve);
    if (ret != UCACHE_OK) {
        goto err;
    }
    if (ctx->cfg.ofi_provider[0] == '\0') {
        snprintf(ctx->cfg.ofi_provider, sizeof(ctx->cfg.ofi_provider), "tcp;ofi_rxm");
    }
    ctx->uuid  = ut_random64();
    ctx->next_key = 1;
    ctx->rbuf_min = sizeof(ut_am_req_hdr) + sizeof(uint64_t) + ctx->cfg.rpc_max;
    if (ctx->rbuf_min < sizeof(ut_am_req_hdr) + sizeof(ut_addr_body) + 2 * sizeof(ut_blob_hdr) +
                        sizeof(ut_ofi_name)) { /* a PING: our address */
        ctx->rbuf_min = 4096;
    }
    ret = ut_auth_create(&ctx->cfg, &ctx->auth);
    if (ret != UCACHE_OK) {
        goto err;
    }
    ret = UCACHE_ERR_NO_MEMORY;
    ctx->slots      = calloc(ctx->cfg.max_outstanding, sizeof(*ctx->slots));
    ctx->free_slots = calloc(ctx->cfg.max_outstanding, sizeof(*ctx->free_slots));
    if ((ctx->slots == NULL) || (ctx->free_slots == NULL)) {
        goto err;
    }
    for (i = 0; i < ctx->cfg.max_outstanding; i++) {
        ctx->free_slots[i] = ctx->cfg.max_outstanding - 1 - i;
        ctx->slots[i].get.kind  = UT_OFI_OP_GET;
        ctx->slots[i].send.kind = UT_OFI_OP_SEND;
        ctx->slots[i].recv.kind = UT_OFI_OP_RECV;
        ctx->slots[i].get.slot = ctx->slots[i].send.slot = ctx->slots[i].recv.slot = i;
    }
    ctx->nfree = ctx->cfg.max_outstanding;
    ctx->unsent_head = ctx->unsent_tail = UINT32_MAX;
    ctx->auth_refused = FI_ADDR_NOTAVAIL;
    ret = do_fabric_open(ctx);
    if (ret != UCACHE_OK) {
        goto err;
    }
    ret = do_make_address(ctx);
    if (ret != UCACHE_OK) {
        goto err;
    }
    if (ctx->progress_mode == UC_PROGRESS_THREAD) {
        ret = ut_ofi_thread_start(ctx);
        if (ret != UCACHE_OK) {
            goto err;
        }
    }
    UC_DEBUG("libfabric %s: reads %s, registration%s%s%s, %s receives, %s", ctx->cfg.ofi_provider,
             ctx->one_sided ? "one-sided" : "by RPC", ctx->mr_local ? " local" : "",
             ctx->mr_virt ? " virt" : "", ctx->mr_prov_key ? " prov-key" : "",
             ctx->directed ? "directed" : "undirected",
             (ctx->waitfd >= 0) ? "a wait fd" : "polled");
    *ctx_p = &ctx->super;
    return UCACHE_OK;

err:
    ut_ofi_ctx_destroy(&ctx->super);
    return ret;
}

static void ut_ofi_ctx_destroy(ut_ctx_t *c)
{
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(c);
    ut_ofi_peer_t *p, *next;
    unsigned i;

    ut_ofi_thread_stop(ctx);
    pthread_mutex_lock(&ctx->lock);
    if (ctx->deferred > 0) {
        UC_WARN("%u deferred RPCs never answered", ctx->deferred);
    }
    if (ctx->listener != NULL) {
        ut_ofi_do_ep_close(ctx, ctx->listener);
        free(ctx->listener);
        ctx->listener = NULL;
    }
    ut_ofi_do_ep_close(ctx, &ctx->main);
    /* the endpoints are closed: no operation is out any more */
    for (i = 0; (ctx->slots != NULL) && (i < ctx->cfg.max_outstanding); i++) {
        free(ctx->slots[i].copy);
        if (ctx->slots[i].bounce != NULL) {
            free((uint8_t *)ctx->slots[i].bounce - 64);
        }
        if (ctx->slots[i].mr[0] != NULL) {
            fi_close(&ctx->slots[i].mr[0]->fid);
        }
        if (ctx->slots[i].mr[1] != NULL) {
            fi_close(&ctx->slots[i].mr[1]->fid);
        }
    }
    ut_ofi_do_replies_free(ctx);
    ut_ofi_do_bounces_free(ctx);
    ut_ofi_do_clients_free(ctx);
    for (p = ctx->peers; p != NULL; p = next) {
        next = p->all_next;
        UC_WARN("peer %s not destroyed before its context", p->pname);
        free(p);
    }
    for (i = 0; i < ctx->region_top; i++) {
        if (ctx->regions[i] != NULL) {
            UC_WARN("region %u not destroyed before its context", i);
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    if (ctx->cq != NULL) {
        fi_close(&ctx->cq->fid);
    }
    if (ctx->av != NULL) {
        fi_close(&ctx->av->fid);
    }
    if (ctx->domain != NULL) {
        fi_close(&ctx->domain->fid);
    }
    if (ctx->fabric != NULL) {
        fi_close(&ctx->fabric->fid);
    }
    if (ctx->info != NULL) {
        ut_ofi_lib.freeinfo(ctx->info);
    }
    ut_auth_destroy(ctx->auth);
    free(ctx->slots);
    free(ctx->free_slots);
    free(ctx->addr_blob);
    pthread_cond_destroy(&ctx->progressed);
    pthread_cond_destroy(&ctx->kick);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

static ucache_status_t ut_ofi_address(ut_ctx_t *c, const void **blob_p, size_t *len_p)
{
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(c);

    *blob_p = ctx->addr_blob;
    *len_p  = ctx->addr_blob_len;
    return UCACHE_OK;
}

static void ut_ofi_stats(ut_ctx_t *c, ut_stats_t *s)
{
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(c);

    memset(s, 0, sizeof(*s));
    s->read_bytes    = atomic_load(&ctx->st.read_bytes);
    s->get_reads     = atomic_load(&ctx->st.get_reads);
    s->am_reads      = atomic_load(&ctx->st.am_reads);
    s->reads         = s->get_reads + s->am_reads;
    s->rpcs          = atomic_load(&ctx->st.rpcs);
    s->rpcs_served   = atomic_load(&ctx->st.rpcs_served);
    s->served_bytes  = atomic_load(&ctx->st.served_bytes);
    s->timeouts      = atomic_load(&ctx->st.timeouts);
    s->peer_failures = atomic_load(&ctx->st.peer_failures);
    s->bad_input     = atomic_load(&ctx->st.bad_input);
    s->late_replies  = atomic_load(&ctx->st.late_replies);
    s->replies_dropped = atomic_load(&ctx->st.replies_dropped);
    s->connects      = atomic_load(&ctx->st.connects);
    s->eps_evicted   = atomic_load(&ctx->st.eps_evicted);
    s->keepalives    = atomic_load(&ctx->st.keepalives);
    s->replies_lost  = atomic_load(&ctx->st.replies_lost);
    pthread_mutex_lock(&ctx->lock);
    s->eps_open      = ctx->nopen;
    s->auth_failures = ut_auth_failures(ctx->auth);
    pthread_mutex_unlock(&ctx->lock);
}

const ut_ops_t ut_ofi_ops = {
    .name                 = "ofi",
    .ctx_create           = ut_ofi_ctx_create,
    .ctx_destroy          = ut_ofi_ctx_destroy,
    .address              = ut_ofi_address,
    .mem_export           = ut_ofi_mem_export,
    .mem_register         = ut_ofi_mem_register,
    .mem_destroy          = ut_ofi_mem_destroy,
    .mem_pack             = ut_ofi_mem_pack,
    .peer_create          = ut_ofi_peer_create,
    .peer_destroy         = ut_ofi_peer_destroy,
    .peer_state           = ut_ofi_peer_state,
    .rkey_unpack          = ut_ofi_rkey_unpack,
    .rkey_destroy         = ut_ofi_rkey_destroy,
    .get_post             = ut_ofi_get_post,
    .rpc_post             = ut_ofi_rpc_post,
    .rkey_path            = ut_ofi_rkey_path,
    .peer_create_sockaddr = ut_ofi_peer_create_sockaddr,
    .listen               = ut_ofi_listen,
    .wait                 = ut_ofi_wait,
    .wait_any             = ut_ofi_wait_any,
    .progress             = ut_ofi_progress,
    .rpc_handler_set      = ut_ofi_rpc_handler_set,
    .rpc_reply            = ut_ofi_rpc_reply,
    .rpc_defer            = ut_ofi_rpc_defer,
    .stats                = ut_ofi_stats,
    .peer_name            = ut_ofi_peer_name,
    .peer_transports      = ut_ofi_peer_transports,
};
