/*
 * ucx.c - the UCX backend of the transport layer (ops table ut_ucx_ops):
 * its context - one ucp_context + one ucp_worker, serialized by ctx->lock -
 * created, configured and destroyed here; its objects live beside it:
 * ucx_peer.c (peers, endpoints, the handshake), ucx_req.c (requests,
 * waiting, progress), ucx_am.c (active messages, both ends), ucx_mem.c
 * (regions and remote keys), ucx_listen.c (the listener); ucx_int.h is
 * what they share.
 *
 * Reads pick the fastest correct primitive per peer: a plain copy from the
 * owner's region mapped with ucp_rkey_ptr (same host: no lock, no syscall,
 * no remote CPU); ucp_get_nbx where the endpoint's RMA lanes are native
 * (verbs); otherwise none - the key's path is UT_PATH_AM and the layer above
 * reads by RPC, its request answered with the bytes in one bulk reply (tcp,
 * where UCX would emulate a get with messages anyway).
 *
 * Lock rules: every entry point that touches UCX or the tables takes
 * ctx->lock (do_* and ut_ucx_do_* functions assume it is held).  UCX
 * callbacks only run inside ucp_worker_progress()/ucp_ep_close_nbx(), which
 * are always called with the lock held, so callbacks never lock.  The
 * mapped read path reads only immutable rkey fields and the peer's atomic
 * state.
 *
 * Wire formats (all little-endian, this host's layout; versioned by magic):
 *   address blob: ut_blob_hdr + ut_addr_body + UCX worker address
 *   rkey blob:    ut_blob_hdr + ut_rkey_body + UCX packed rkey
 *   AM request:   header ut_am_req_hdr; payload: RPC bytes (or a UT_OP_*'s)
 *   AM reply:     header ut_am_rep_hdr + metadata; payload: data
 * Blobs carry an xxHash64 checksum over all their bytes, so a truncated or
 */
#include "transport/ucx_int.h"

#include <ucs/debug/log_def.h>

#include <sys/eventfd.h>
#include <sys/random.h>

/* ------------------------------------------------------------------------ */
/* Context                                                                   */
/* ------------------------------------------------------------------------ */

static ucache_status_t ut_ucx_make_address(ut_ucx_ctx_t *ctx)
{
    ut_addr_body body = { .uuid = ctx->uuid, .pid = (uint32_t)getpid() };
    ucp_address_t *addr;
    size_t addr_len;
    ucs_status_t status;

    status = ucp_worker_get_address(ctx->worker, &addr, &addr_len);
    if (status != UCS_OK) {
        UC_ERROR("ucp_worker_get_address: %s", ucs_status_string(status));
        return UCACHE_ERR_TRANSPORT;
    }
    if (gethostname(body.host, sizeof(body.host) - 1) != 0) {
        snprintf(body.host, sizeof(body.host), "unknown");
    }
    memcpy(ctx->host, body.host, sizeof(ctx->host));
    snprintf(ctx->mapname, sizeof(ctx->mapname), "ucache-%016llx",
             (unsigned long long)ctx->uuid);
    memcpy(body.mapname, ctx->mapname, sizeof(body.mapname));
    ctx->addr_blob = ut_blob_build(UT_ADDR_MAGIC, &body, sizeof(body), addr,
                                   addr_len, &ctx->addr_blob_len);
    ucp_worker_release_address(ctx->worker, addr);
    return (ctx->addr_blob != NULL) ? UCACHE_OK : UCACHE_ERR_NO_MEMORY;
}

static void ut_ucx_ctx_destroy(ut_ctx_t *c);

/* UCX's own log lines go through ours (stderr or UCACHE_LOG_FILE), never
 * to stdout where UCX prints them by default: the library owns no stdout.
 * Its errors are mostly the far side of failures we report ourselves
 * (a refused connect), so they come one level down. */
static ucs_log_func_rc_t ut_ucx_log(const char *file, unsigned line, const char *function,
                                    ucs_log_level_t level,
                                    const ucs_log_component_config_t *comp_conf,
                                    const char *message, va_list ap)
{
    ucache_log_level_t ours = (level <= UCS_LOG_LEVEL_ERROR) ? UCACHE_LOG_WARN :
                              (level == UCS_LOG_LEVEL_WARN) ? UCACHE_LOG_INFO :
                              UCACHE_LOG_DEBUG;
    char buf[512];

    (void)function;
    (void)comp_conf;
    if (UC_LOG_ENABLED(ours)) {
        vsnprintf(buf, sizeof(buf), message, ap);
        uc_log_emit(ours, file, (int)line, "UCX %s", buf);
    }
    return UCS_LOG_FUNC_RC_STOP;
}

static void ut_ucx_log_setup(void)
{
    ucs_log_push_handler(ut_ucx_log);
}

/*
 * Whether UCX selected, for @p ucp, a transport whose name starts with one
 * of @p prefixes.  UCX 1.13 has no query for it, so this reads the resource
 * lines of ucp_context_print_info() ("resource 2 : md 1 dev 2 flags --
 * rc_mlx5/mlx5_0:1"), which honour UCX_TLS.
 */
static bool do_has_tl(ucp_context_h ucp, const char *const *prefixes)
{
    char *text = NULL, *line, *save = NULL, *tl;
    size_t size = 0;
    bool found = false;
    unsigned i;
    FILE *f;

    f = open_memstream(&text, &size);
    if (f == NULL) {
        return false;
    }
    ucp_context_print_info(ucp, f);
    fclose(f);
    for (line = strtok_r(text, "\n", &save); (line != NULL) && !found;
         line = strtok_r(NULL, "\n", &save)) {
        if ((strstr(line, "resource") == NULL) || ((tl = strstr(line, "-- ")) == NULL)) {
            continue;
        }
        for (i = 0; prefixes[i] != NULL; i++) {
            found = found || (strncmp(tl + 3, prefixes[i], strlen(prefixes[i])) == 0);
        }
    }
    free(text);
    return found;
}

/*
 * The UCP context, with UCP_FEATURE_RMA only where it is safe and useful.
 * That feature turns on UCX's software RMA on every transport that lacks
 * native RMA (tcp) - even beside native ones: its put and get handlers copy
 * to and from any address a connected peer names.  So RMA is requested by
 * a context that exports no memory when UCX selected a native-RMA transport
 * (its reads then go one-sided on it); by a serving context never (peers'
 * native gets of its memory need nothing of it; its own reads of other
 * nodes use requests); and by any context when UCACHE_EMULATED_RMA asks for
 * the test mode, which says so loudly.
 */
static ucache_status_t do_ucp_init(ut_ucx_ctx_t *ctx)
{
    ucp_params_t uparams = {
        .field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED,
        .features   = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP,
        .mt_workers_shared = 0
    };
    /* native one-sided RMA (reads without the target's CPU); unknown
     * transports count as not native */
    static const char *const native_tls[] = { "rc_", "dc_", "ugni_rdma", NULL };
    /* shared memory: same-host peers are reached, and mapped, directly */
    static const char *const shm_tls[] = { "posix", "sysv", "xpmem", NULL };
    ucp_config_t *ucfg = NULL;
    ucs_status_t status;
    const char *tls;
    bool native;

    status = ucp_config_read(NULL, NULL, &ucfg);
    if (status != UCS_OK) {
        UC_ERROR("ucp_config_read: %s", ucs_status_string(status));
        return UCACHE_ERR_TRANSPORT;
    }
    /*
     * UCX 1.13's tcp connect() blocks (UCX_TCP_CONN_NB=n): to a host that
     * went dark, for the kernel's SYN retries (minutes), inside
     * ucp_ep_create with the lock held.  Non-blocking, the handshake's
     * deadline bounds a connect.  But a non-blocking connect that fails
     * with the node's half of a wireup pending hits UCX 1.13's wireup abort
     * far more often (a client killed during its connect: 1 in 3 tries):
     * without the guard against it (ucx_guard.c), a serving context keeps
     * the blocking connect, whose connects go to requesters only.  The
     * user's own UCX_TCP_CONN_NB wins.  The key is the tcp table's own name,
     * which UCX warns of when no tcp interface is opened (UCX_TLS without
     * tcp).  (UCX_TCP_SYN_CNT cannot shorten the blocking connect: in UCX
     * 1.13 setting it breaks the worker, "Invalid memory pool parameter".)
     */
    tls = getenv("UCX_TLS");
    if ((tls == NULL) || (tls[0] == '^') || (strstr(tls, "tcp") != NULL) ||
        (strstr(tls, "all") != NULL)) {
        if ((!ctx->serve || ut_ucx_guard_active()) && (getenv("UCX_TCP_CONN_NB") == NULL) &&
            (ucp_config_modify(ucfg, "CONN_NB", "y") != UCS_OK)) {
            UC_WARN("cannot set UCX_TCP_CONN_NB=y: a tcp connect to a dark host may "
                    "block past UCACHE_TIMEOUT");
        }
    }
    status = ucp_init(&uparams, ucfg, &ctx->ucp);
    if (status == UCS_OK) {
        native   = do_has_tl(ctx->ucp, native_tls);
        ctx->shm = do_has_tl(ctx->ucp, shm_tls);
        if ((native && !ctx->serve) || ctx->cfg.emulated_rma) {
            ucp_cleanup(ctx->ucp);
            ctx->ucp = NULL;
            uparams.features |= UCP_FEATURE_RMA;
            status = ucp_init(&uparams, ucfg, &ctx->ucp);
            ctx->rma = (status == UCS_OK);
        }
        if ((status == UCS_OK) && !ctx->rma && (ctx->cfg.read_path == UC_READ_PATH_GET)) {
            UC_WARN("UCACHE_READ_PATH=get needs a native-RMA transport or "
                    "UCACHE_EMULATED_RMA=yes; reads use active messages");
        }
        if ((status == UCS_OK) && (!native || ctx->serve) && ctx->cfg.emulated_rma) {
            UC_WARN("UCACHE_EMULATED_RMA=yes (a test mode): UCX's software RMA is on, so "
                    "any peer that reaches this process can read and write its memory");
        }
    }
    ucp_config_release(ucfg);
    if (status != UCS_OK) {
        ctx->ucp = NULL;
        UC_ERROR("ucp_init: %s (check UCX_TLS / UCX_NET_DEVICES)",
                 ucs_status_string(status));
        return UCACHE_ERR_TRANSPORT;
    }
    return UCACHE_OK;
}

static ucache_status_t ut_ucx_ctx_create(const ut_params_t *params,
                                         ut_ctx_t **ctx_p)
{
    ucp_worker_params_t wparams = {
        .field_mask  = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
        .thread_mode = UCS_THREAD_MODE_SERIALIZED
    };
    ucp_worker_attr_t wattr = {
        .field_mask = UCP_WORKER_ATTR_FIELD_MAX_AM_HEADER
    };
    ucp_am_handler_param_t am = {
        .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                      UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
        .flags      = UCP_AM_FLAG_WHOLE_MSG
    };
    ucache_status_t ret;
    ucs_status_t status;
    ut_ucx_ctx_t *ctx;
    uint32_t i;

    uc_log_init();
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    ctx->super.ops = &ut_ucx_ops;
    ctx->epfd = ctx->stopfd = -1;
    ctx->wakefd = -1;
    ctx->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); /* -1: waiters poll */
    pthread_cond_init(&ctx->progressed, NULL);
    pthread_mutex_init(&ctx->lock, NULL);
    ret = ut_params_take(params, &ctx->cfg, &ctx->progress_mode, &ctx->serve);
    if (ret != UCACHE_OK) {
        goto err;
    }
    /* every process answers wireups (a serving one most): the guard must be
     * in before the first */
    UC_DEBUG("wireup-abort guard (ucx_guard.c): %s", ut_ucx_guard_active() ? "on" : "off");
    ctx->uuid = ut_random64();
    ret = ut_auth_create(&ctx->cfg, &ctx->auth);
    if (ret != UCACHE_OK) {
        goto err;
    }

    ret = UCACHE_ERR_NO_MEMORY;
    ctx->slots      = calloc(ctx->cfg.max_outstanding, sizeof(*ctx->slots));
    ctx->slot_gen   = calloc(ctx->cfg.max_outstanding, sizeof(*ctx->slot_gen));
    ctx->free_slots = calloc(ctx->cfg.max_outstanding, sizeof(*ctx->free_slots));
    if ((ctx->slots == NULL) || (ctx->slot_gen == NULL) || (ctx->free_slots == NULL)) {
        goto err;
    }
    for (i = 0; i < ctx->cfg.max_outstanding; i++) {
        ctx->free_slots[i] = ctx->cfg.max_outstanding - 1 - i;
    }
    ctx->nfree = ctx->cfg.max_outstanding;

    ret = UCACHE_ERR_TRANSPORT;
    {
        static pthread_once_t log_once = PTHREAD_ONCE_INIT;

        pthread_once(&log_once, ut_ucx_log_setup);
    }
    ret = do_ucp_init(ctx);
    if (ret != UCACHE_OK) {
        goto err;
    }
    ret = UCACHE_ERR_TRANSPORT;
    status = ucp_worker_create(ctx->ucp, &wparams, &ctx->worker);
    if (status != UCS_OK) {
        UC_ERROR("ucp_worker_create: %s", ucs_status_string(status));
        goto err;
    }
    if ((ucp_worker_query(ctx->worker, &wattr) != UCS_OK) ||
        (wattr.max_am_header < sizeof(ut_am_rep_hdr) + UT_RPC_META_MAX)) {
        UC_ERROR("UCX allows active-message headers of %zu bytes; %zu needed",
                 wattr.max_am_header, sizeof(ut_am_rep_hdr) + UT_RPC_META_MAX);
        goto err;
    }
    ctx->max_am_header = wattr.max_am_header;

    am.id  = UT_AM_ID_REQ;
    am.cb  = ut_ucx_am_req_cb;
    am.arg = ctx;
    if (ucp_worker_set_am_recv_handler(ctx->worker, &am) != UCS_OK) {
        goto err;
    }
    am.id = UT_AM_ID_REP;
    am.cb = ut_ucx_am_rep_cb;
    if (ucp_worker_set_am_recv_handler(ctx->worker, &am) != UCS_OK) {
        goto err;
    }
    ret = ut_ucx_make_address(ctx);
    if (ret != UCACHE_OK) {
        goto err;
    }
    if (ctx->progress_mode == UC_PROGRESS_THREAD) {
        ret = ut_ucx_thread_start(ctx);
        if (ret != UCACHE_OK) {
            goto err;
        }
    }
    *ctx_p = &ctx->super;
    return UCACHE_OK;

err:
    ut_ucx_ctx_destroy(&ctx->super);
    return ret;
}

static void ut_ucx_ctx_destroy(ut_ctx_t *c)
{
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);
    ut_ucx_reply_t *r;
    unsigned i;

    ut_ucx_thread_stop(ctx);
    ut_mapfd_stop(ctx->mapsrv);     /* before the regions it hands out go */
    ctx->mapsrv = NULL;
    if (ctx->deferred > 0) {
        UC_ERROR("%u deferred RPCs were never answered (their handles leak)",
                 ctx->deferred);
    }
    while (ctx->peers != NULL) {
        UC_WARN("peer %s still open at context destroy; closing it",
                ctx->peers->name);
        ut_ucx_peer_destroy(&ctx->peers->super);
    }
    pthread_mutex_lock(&ctx->lock);
    ut_ucx_do_clients_free(ctx);
    pthread_mutex_unlock(&ctx->lock);
    if (ctx->listener != NULL) {
        ucp_listener_destroy(ctx->listener);
        ctx->listener = NULL;
    }
    while (ctx->accepted != NULL) {
        ut_ucx_accepted_t *a = ctx->accepted;
        ctx->accepted = a->next;
        ut_ucx_do_ep_close(ctx, a->ep);
        free(a);
    }
    for (i = 0; i < UT_MAX_REGIONS; i++) {
        if (ctx->regions[i] != NULL) {
            ut_ucx_mem_destroy(&ctx->regions[i]->super);
        }
    }
    if (ctx->worker != NULL) {
        while (ctx->closing != NULL) {
            ucp_worker_progress(ctx->worker);
            ut_ucx_do_closing_reap(ctx);
        }
        ucp_worker_destroy(ctx->worker); /* ends every send still in flight */
    }
    ut_auth_destroy(ctx->auth);          /* no request can arrive any more */
    ctx->auth = NULL;
    while (ctx->parked != NULL) {
        ut_ucx_mem_t *mem = ctx->parked;
        ctx->parked = mem->parked_next;
        ut_ucx_do_mem_free(ctx, mem);
    }
    if (ctx->ucp != NULL) {
        ucp_cleanup(ctx->ucp);
    }
    while ((r = ctx->reply_free) != NULL) {
        ctx->reply_free = r->next;
        free(r);
    }
    while ((r = ctx->reply_out) != NULL) { /* sends UCX dropped uncompleted */
        ctx->reply_out = r->next;
        free(r->copy);
        free(r);
    }
    free(ctx->addr_blob);
    free(ctx->slots);
    free(ctx->slot_gen);
    free(ctx->free_slots);
    pthread_mutex_destroy(&ctx->lock);
    pthread_cond_destroy(&ctx->progressed);
    if (ctx->kickfd >= 0) {
        close(ctx->kickfd);
    }
    free(ctx);
}

static ucache_status_t ut_ucx_address(ut_ctx_t *c, const void **blob_p,
                                      size_t *len_p)
{
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);

    *blob_p = ctx->addr_blob;
    *len_p  = ctx->addr_blob_len;
    return UCACHE_OK;
}

static void ut_ucx_stats(ut_ctx_t *c, ut_stats_t *s)
{
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);

#define UT_STAT_COPY(_f) s->_f = atomic_load_explicit(&ctx->st._f, memory_order_relaxed)
    UT_STAT_COPY(read_bytes);
    UT_STAT_COPY(mapped_reads);
    UT_STAT_COPY(get_reads);
    UT_STAT_COPY(am_reads);
    UT_STAT_COPY(rpcs);
    UT_STAT_COPY(rpcs_served);
    UT_STAT_COPY(served_bytes);
    UT_STAT_COPY(timeouts);
    UT_STAT_COPY(peer_failures);
    UT_STAT_COPY(bad_input);
    UT_STAT_COPY(late_replies);
    UT_STAT_COPY(replies_dropped);
    UT_STAT_COPY(conns_refused);
    UT_STAT_COPY(conns_unauth_closed);
    UT_STAT_COPY(maps_served);
    UT_STAT_COPY(regions_parked);
    UT_STAT_COPY(eps_evicted);
    UT_STAT_COPY(connects);
    UT_STAT_COPY(keepalives);
    UT_STAT_COPY(replies_lost);
    UT_STAT_COPY(stalled_replies);
    s->wireup_guarded = ut_ucx_guard_count();
    s->stale_events   = ut_ucx_guard_stale_events();
    s->zcopy_guarded  = ut_ucx_guard_zcopy();
#undef UT_STAT_COPY
    s->reads = s->mapped_reads + s->get_reads + s->am_reads; /* derived */
    pthread_mutex_lock(&ctx->lock);
    s->eps_open = ctx->nopen;
    s->auth_failures = ut_auth_failures(ctx->auth);
    s->conns_open    = ctx->naccepted;
    pthread_mutex_unlock(&ctx->lock);
}

const ut_ops_t ut_ucx_ops = {
    .name            = "ucx",
    .ctx_create      = ut_ucx_ctx_create,
    .ctx_destroy     = ut_ucx_ctx_destroy,
    .address         = ut_ucx_address,
    .mem_export      = ut_ucx_mem_export,
    .mem_register    = ut_ucx_mem_register,
    .mem_destroy     = ut_ucx_mem_destroy,
    .mem_pack        = ut_ucx_mem_pack,
    .peer_create     = ut_ucx_peer_create,
    .peer_destroy    = ut_ucx_peer_destroy,
    .peer_state      = ut_ucx_peer_state,
    .peer_name       = ut_ucx_peer_name,
    .peer_transports = ut_ucx_peer_transports,
    .rkey_unpack     = ut_ucx_rkey_unpack,
    .rkey_destroy    = ut_ucx_rkey_destroy,
    .get_post        = ut_ucx_get_post,
    .rpc_post        = ut_ucx_rpc_post,
    .wait            = ut_ucx_wait,
    .wait_any        = ut_ucx_wait_any,
    .progress        = ut_ucx_progress,
    .rpc_handler_set = ut_ucx_rpc_handler_set,
    .rpc_reply       = ut_ucx_rpc_reply,
    .rpc_defer       = ut_ucx_rpc_defer,
    .rkey_path       = ut_ucx_rkey_path,
    .peer_create_sockaddr = ut_ucx_peer_create_sockaddr,
    .listen          = ut_ucx_listen,
    .stats           = ut_ucx_stats,
};
