/*
 * context.c - the public context (ucache_h): configuration, the transport,
 * the membership source and its views, the owner service of a serving
 * context, the read calls, and a background thread that follows the
 * members source (new epochs, heartbeats) so reads never do.  The ADMIN
 * service is admin.c, the posted-read queue readq.c.
 * Invariant: a context is fully built or not returned at all.
 */
#include "fabric/fabric.h"
#include "fabric/manifest.h"
#include "fabric/view_shm.h"
#include "origin/azure_identity.h"
#include "origin/cred.h"
#include "util/key.h"
#include "util/log.h"
#include "util/time.h"

#include <inttypes.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define UCACHE_PARAM_FIELDS_ALL                                              \
    (UCACHE_PARAM_FIELD_MEM_BYTES | UCACHE_PARAM_FIELD_MEMBERS |              \
     UCACHE_PARAM_FIELD_LOG_LEVEL | UCACHE_PARAM_FIELD_TIMEOUT_NS |           \
     UCACHE_PARAM_FIELD_CHUNK_SIZE | UCACHE_PARAM_FIELD_SERVE |               \
     UCACHE_PARAM_FIELD_ZONE | UCACHE_PARAM_FIELD_ALLOW |                     \
     UCACHE_PARAM_FIELD_CONFIG)

#define UF_DRAIN_NS (5 * UC_NSEC_PER_SEC)

/* The credentials file @p path, "~/" expanded (nothing if HOME is unset),
 * into @p out. */
static void ucc_credentials(const char *path, char *out, size_t cap)
{
    const char *home = getenv("HOME");

    if (strncmp(path, "~/", 2) == 0) {
        if (home == NULL) {
            out[0] = '\0';
            return;
        }
        snprintf(out, cap, "%s/%s", home, path + 2);
    } else {
        snprintf(out, cap, "%s", path);
    }
}

/* "NAME=VALUE" settings (params->config) over the environment. */
static ucache_status_t uf_params_config(uc_config_t *cfg, const char *const *config)
{
    char name[64];
    const char *eq, *n;
    size_t i, j, len;

    for (i = 0; (config != NULL) && (config[i] != NULL); i++) {
        n   = config[i];
        n  += (strncasecmp(n, "UCACHE_", 7) == 0) ? 7 : 0;
        eq  = strchr(n, '=');
        len = (eq != NULL) ? (size_t)(eq - n) : 0;
        if ((len == 0) || (len >= sizeof(name))) {
            UC_ERROR("configuration setting %zu is not NAME=VALUE", i);
            return UCACHE_ERR_INVALID;
        }
        for (j = 0; j < len; j++) {
            name[j] = (char)toupper((unsigned char)n[j]); /* "meta_ttl" too */
        }
        name[len] = '\0';
        if (uc_config_set(cfg, name, eq + 1) != UCACHE_OK) {
            return UCACHE_ERR_INVALID;
        }
    }
    return UCACHE_OK;
}

/* Apply explicit parameters over defaults + environment. */
static ucache_status_t uf_params_apply(uc_config_t *cfg, const ucache_params_t *p,
                                       bool *serve_p)
{
    ucache_status_t status;

    if (p->field_mask & ~(uint64_t)UCACHE_PARAM_FIELDS_ALL) {
        UC_ERROR("unknown ucache_params_t field bits 0x%llx",
                 (unsigned long long)(p->field_mask & ~(uint64_t)UCACHE_PARAM_FIELDS_ALL));
        return UCACHE_ERR_INVALID;
    }
    if (p->field_mask & UCACHE_PARAM_FIELD_CONFIG) {
        status = uf_params_config(cfg, p->config);
        if (status != UCACHE_OK) {
            return status;
        }
    }
    if (p->field_mask & UCACHE_PARAM_FIELD_MEM_BYTES) {
        if (p->mem_bytes < 4096) {
            UC_ERROR("mem_bytes %zu is below the 4 KiB minimum", p->mem_bytes);
            return UCACHE_ERR_INVALID;
        }
        cfg->mem_bytes = p->mem_bytes;
    }
    if (p->field_mask & UCACHE_PARAM_FIELD_MEMBERS) {
        if ((p->members == NULL) || (strlen(p->members) >= sizeof(cfg->members))) {
            UC_ERROR("members must be a string shorter than %zu bytes",
                     sizeof(cfg->members));
            return UCACHE_ERR_INVALID;
        }
        strcpy(cfg->members, p->members);
    }
    if (p->field_mask & UCACHE_PARAM_FIELD_LOG_LEVEL) {
        if ((p->log_level < UCACHE_LOG_NONE) || (p->log_level > UCACHE_LOG_TRACE)) {
            UC_ERROR("log_level %d is out of range", (int)p->log_level);
            return UCACHE_ERR_INVALID;
        }
        cfg->log_level = p->log_level;
    }
    if (p->field_mask & UCACHE_PARAM_FIELD_TIMEOUT_NS) {
        if (p->timeout_ns == 0) {
            UC_ERROR("timeout_ns must be positive");
            return UCACHE_ERR_INVALID;
        }
        cfg->timeout_ns = p->timeout_ns;
    }
    if (p->field_mask & UCACHE_PARAM_FIELD_CHUNK_SIZE) {
        if ((p->chunk_size < 4096) || (p->chunk_size > US_MAX_PAYLOAD)) {
            UC_ERROR("chunk_size %zu must be within 4 KiB .. 64 MiB - 1", p->chunk_size);
            return UCACHE_ERR_INVALID;
        }
        cfg->chunk_size = p->chunk_size;
    }
    if (p->field_mask & UCACHE_PARAM_FIELD_SERVE) {
        *serve_p = (p->serve != 0);
    }
    if (p->field_mask & UCACHE_PARAM_FIELD_ZONE) {
        if ((p->zone == NULL) || (strlen(p->zone) >= sizeof(cfg->zone))) {
            UC_ERROR("zone must be a string shorter than %zu bytes", sizeof(cfg->zone));
            return UCACHE_ERR_INVALID;
        }
        strcpy(cfg->zone, p->zone);
    }
    if (p->field_mask & UCACHE_PARAM_FIELD_ALLOW) {
        if ((p->allow == NULL) || (strlen(p->allow) >= sizeof(cfg->allow))) {
            UC_ERROR("allow must be a string shorter than %zu bytes", sizeof(cfg->allow));
            return UCACHE_ERR_INVALID;
        }
        strcpy(cfg->allow, p->allow);
    }
    return UCACHE_OK;
}

static ucache_status_t uf_members_parse(struct ucache_context *ctx)
{
    const char *m = ctx->cfg.members;

    if (strcmp(m, "mpi") == 0) {
        ctx->source = NULL; /* ucache_members_set() supplies the views */
        return UCACHE_OK;
    }
    ctx->source = uf_source_find(m, &ctx->source_arg);
    if (ctx->source == NULL) {
        UC_ERROR("UCACHE_MEMBERS '%s' is none of dir:PATH, file:PATH, "
                 "etcd://HOST:PORT[,...]/PREFIX, mpi", m);
        return UCACHE_ERR_INVALID;
    }
    if (ctx->serve && ctx->source->listens && (ctx->cfg.listen[0] == '\0')) {
        UC_ERROR("a serving node with %s members needs UCACHE_LISTEN "
                 "(ucached --listen HOST:PORT): its line in %s", ctx->source->prefix,
                 ctx->source_arg);
        return UCACHE_ERR_INVALID;
    }
    if (ctx->serve && ctx->source->publishes) {
        uf_vshm_path(ctx->cfg.view_shm, m, ctx->vshm_path, sizeof(ctx->vshm_path));
    }
    if (ctx->source->open == NULL) {
        ctx->source_src = (void *)ctx->source_arg;
        return UCACHE_OK;
    }
    return ctx->source->open(ctx->source_arg, &ctx->cfg, ctx->serve, &ctx->source_src);
}

/* Read the members source and install its view if its epoch is new
 * (ctx->refresh_lock held: the context's thread, and readers told by an
 * owner that their view is behind). */
static ucache_status_t uf_source_refresh_locked(struct ucache_context *ctx, bool force)
{
    uf_view_t *cur = atomic_load(&ctx->view), *v;
    uf_member_t *members;
    uint64_t epoch, bad = 0;
    ucache_status_t status;
    uint32_t n;

    epoch = ctx->source->epoch(ctx->source_src);
    if (!force && (cur != NULL) && (epoch == cur->epoch)) {
        return UCACHE_OK;
    }
    status = ctx->source->scan(ctx->source_src, &members, &n, &epoch, &bad);
    if (status != UCACHE_OK) {
        UC_ERROR("members: cannot read %s%s: %s", ctx->source->prefix,
                 ctx->source_arg, ucache_strerror(status));
        return status;
    }
    if (ctx->serve && ctx->source->publishes && !ctx->vshm_off) {
        /* the view for this host's readers, before the view takes members */
        if (uf_vshm_publish(&ctx->vshm, ctx->vshm_path, epoch, members, n,
                            (ctx->source->slots != NULL) ?
                            ctx->source->slots(ctx->source_src) : 0,
                            (ctx->source->slot_bytes != NULL) ?
                            ctx->source->slot_bytes(ctx->source_src) : 0) != UCACHE_OK) {
            ctx->vshm_off = true; /* said why; readers watch the source themselves */
        }
    }
    if (bad > 0) {
        UC_WARN("members: %" PRIu64 " malformed records in %s", bad, ctx->source_arg);
    }
    status = uf_view_build(ctx, members, n, epoch,
                           (ctx->source->slots != NULL) ?
                           ctx->source->slots(ctx->source_src) : 0, &v);
    if (status == UCACHE_OK) {
        uf_view_install(ctx, v);
    }
    return status;
}

static ucache_status_t uf_source_refresh(struct ucache_context *ctx, bool force)
{
    ucache_status_t status;

    pthread_mutex_lock(&ctx->refresh_lock);
    status = uf_source_refresh_locked(ctx, force);
    pthread_mutex_unlock(&ctx->refresh_lock);
    return status;
}

uf_view_t *uf_view_newer(struct ucache_context *ctx, const uf_view_t *v)
{
    uf_view_t *cur;

    if ((ctx->source == NULL) || !ctx->source->global_epochs) {
        return NULL;
    }
    pthread_mutex_lock(&ctx->refresh_lock);
    cur = atomic_load(&ctx->view);
    if ((cur == NULL) || (cur->epoch <= v->epoch)) {
        uf_source_refresh_locked(ctx, false);
    }
    pthread_mutex_unlock(&ctx->refresh_lock);
    cur = uf_view_acquire(ctx);
    if ((cur != NULL) && (cur->epoch > v->epoch)) {
        return cur;
    }
    uf_view_release(cur);
    return NULL;
}

/* uf_moved_fn_t: a reader whose view is of epoch @p epoch asks this node to
 * fill @p key: MOVED if our view is newer and its primary owner of the key
 * is another node (a joiner took it: the fill belongs there, where readers
 * of the current view look first).  The reader retries in the newer view,
 * tagged with its epoch: a node it then asks again (the primary is down)
 * fills. */
static bool uf_ctx_moved(void *arg, const us_key_t *key, uint64_t epoch)
{
    struct ucache_context *ctx = arg;
    bool moved = false;
    uf_view_t *v;
    uint32_t o;

    if ((epoch == 0) || (ctx->source == NULL) || !ctx->source->global_epochs) {
        return false;
    }
    v = uf_view_acquire(ctx);
    if ((v != NULL) && (v->epoch > epoch) && (v->n > 0)) {
        o = uf_place_owner(v->place, key);
        moved = (o != UF_NO_NODE) && (v->nodes[o].id != ctx->self.id);
    }
    uf_view_release(v);
    return moved;
}

/*
 * A serving node in its members source (ctx->registered, the node's
 * draining flag; the record's states are the source's - dir: in member_dir.c):
 *
 *   ucache_init(serve) --uf_register(): join--> REGISTERED (node-ID.rec;
 *                                                |  ^  ^   its mtime the
 *        ADMIN drain: uf_admin_drain(true),      |  |  |   heartbeat, each
 *        leave (dir:; a static list stays        |  |  |   members_poll)
 *        listed, draining)                       |  |  |
 *                 +------------------------------+  |  | heartbeat finds no
 *                 v                                 |  | record: reaped by a
 *   DRAINING (serves what it holds, refuses fills   |  | peer (silent past
 *   with MOVED; no record) --ADMIN undrain:---------+  | MEMBERS_TTL, or its
 *                             uf_register()            | pid gone):
 *                                                      | uf_ctx_thread ->
 *   REAPED (left-ID.rec, listed as `left` by health) --+ uf_register(), a
 *                                                        new epoch
 *   REGISTERED --ucache_finalize(): leave (left-ID.rec), fills drained--> gone
 *   DRAINING   --ucache_finalize()--> gone (it had left already)
 */
ucache_status_t uf_register(struct ucache_context *ctx)
{
    ucache_status_t status;

    status = ctx->source->join(ctx->source_src, &ctx->self, ctx->cfg.members_ttl_ns);
    if (status == UCACHE_OK) {
        ctx->registered = true;
        UC_INFO("registered node %016" PRIx64 " in %s%s (slots %u..%u)", ctx->self.id,
                ctx->source->prefix, ctx->source_arg, ctx->self.slot0,
                ctx->self.slot0 + ctx->self.weight - 1);
    }
    return status;
}

static void *uf_ctx_thread(void *arg)
{
    struct ucache_context *ctx = arg;
    uint64_t next = uc_time_ns() + ctx->cfg.members_poll_ns;
    struct timespec ts;

    pthread_mutex_lock(&ctx->lock);
    while (!ctx->thread_stop) {
        ts.tv_sec  = (time_t)(next / UC_NSEC_PER_SEC);
        ts.tv_nsec = (long)(next % UC_NSEC_PER_SEC);
        pthread_cond_timedwait(&ctx->cond, &ctx->lock, &ts);
        if (ctx->thread_stop) {
            break;
        }
        pthread_mutex_unlock(&ctx->lock);
        if (uc_time_ns() < next) { /* woken early: an ADMIN request, hit reports */
            uf_admin_answer(ctx, UCACHE_OK);
            if (atomic_load_explicit(&ctx->touch_wake, memory_order_relaxed)) {
                uf_touch_flush(ctx, false);
            }
            pthread_mutex_lock(&ctx->lock);
            continue;
        }
        next = uc_time_ns() + ctx->cfg.members_poll_ns;
        if (ctx->source != NULL) {
            pthread_mutex_lock(&ctx->member_lock);
            if (ctx->registered &&
                (ctx->source->heartbeat(ctx->source_src, ctx->self.id,
                                        ctx->cfg.members_ttl_ns) == UCACHE_ERR_NOT_FOUND)) {
                UC_WARN("node %016" PRIx64 " was reaped from %s (stalled?); "
                        "registering again", ctx->self.id, ctx->source_arg);
                uf_register(ctx);
            }
            pthread_mutex_unlock(&ctx->member_lock);
            uf_source_refresh(ctx, false);
            uf_vshm_beat(ctx->vshm);
        }
        uf_admin_answer(ctx, UCACHE_OK);
        uf_touch_flush(ctx, true);
        uf_view_reap(ctx, false);
        pthread_mutex_lock(&ctx->lock);
    }
    pthread_mutex_unlock(&ctx->lock);
    return NULL;
}

/* *copy_p: a malloc'd copy of the @p len bytes at @p blob. */
static ucache_status_t uf_blob_copy(const void *blob, size_t len, void **copy_p,
                                    size_t *len_p)
{
    *copy_p = malloc(len);
    if (*copy_p == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    memcpy(*copy_p, blob, len);
    *len_p = len;
    return UCACHE_OK;
}

/* HELLO: this node's record, for readers that know only its host:port. */
static void uf_hello_handler(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    struct ucache_context *ctx = arg;
    ucache_status_t status = uf_hello_req_check(msg, len);

    if (status != UCACHE_OK) {
        uf_node_bad_request(ctx->node);
        UC_WARN("refused a HELLO %s (this node speaks protocol %u)",
                (status == UCACHE_ERR_PROTOCOL) ? "of another protocol version: a reader "
                "of another release" : "that is malformed", UF_PROTO_VERSION);
        ut_rpc_reply(rpc, status, NULL, 0, NULL, 0, 0);
        return;
    }
    ut_rpc_reply(rpc, UCACHE_OK, NULL, 0, ctx->self_rec, ctx->self_rec_len, 0);
}

/*
 * A serving node with no cluster key that others can reach says so loudly:
 * any process that reaches it may read its cache, fill it and drain it.
 * Reachable unless UCX is kept to loopback (UCX_NET_DEVICES=lo) and the
 * listener, if any, is on a loopback address.
 */
static void uf_warn_open(const uc_config_t *cfg)
{
    const char *devs = getenv("UCX_NET_DEVICES");
    const char *l = cfg->listen;

    if (cfg->cluster_key_file[0] != '\0') {
        return;
    }
    if ((devs != NULL) && (strcmp(devs, "lo") == 0) &&
        ((l[0] == '\0') || !strncmp(l, "127.", 4) || !strncmp(l, "[::1]", 5) ||
         !strncmp(l, "localhost:", 10))) {
        return;
    }
    UC_WARN("THIS FABRIC IS OPEN: no UCACHE_CLUSTER_KEY_FILE (ucached --key-file), so any "
            "process that reaches this node can read its cache, fill it, evict and drain "
            "it; create a key with `ucache keygen FILE` (docs/security.md)");
}

/* Listen on UCACHE_LISTEN ("HOST:PORT", "[V6]:PORT" or ":PORT"). */
static ucache_status_t uf_listen(struct ucache_context *ctx)
{
    char host[128], *colon, *end;
    unsigned long port;
    uint16_t bound = 0;
    ucache_status_t status;

    snprintf(host, sizeof(host), "%s", ctx->cfg.listen);
    colon = strrchr(host, ':');
    port  = (colon != NULL) ? strtoul(colon + 1, &end, 10) : 0;
    if ((colon == NULL) || (*end != '\0') || (port > 65535)) {
        UC_ERROR("UCACHE_LISTEN '%s' is not HOST:PORT", ctx->cfg.listen);
        return UCACHE_ERR_INVALID;
    }
    *colon = '\0';
    if ((host[0] == '[') && (colon[-1] == ']')) {
        colon[-1] = '\0';
        memmove(host, host + 1, strlen(host));
    }
    status = ut_listen(ctx->transport, host, (uint16_t)port, &bound);
    if (status == UCACHE_OK) {
        UC_INFO("listening on %s:%u", host[0] ? host : "*", bound);
    }
    return status;
}

static ucache_status_t uf_self_init(struct ucache_context *ctx)
{
    const void *blob;
    size_t len;
    ucache_status_t status;

    if ((ctx->source != NULL) && ctx->source->listens) {
        ctx->self.id = uf_member_id_of(ctx->cfg.listen); /* its line in the list */
    }
    while (ctx->self.id == 0) {
        if (getrandom(&ctx->self.id, sizeof(ctx->self.id), 0) != sizeof(ctx->self.id)) {
            UC_ERROR("getrandom: %m");
            return UCACHE_ERR_IO;
        }
    }
    /* capacity: memory and the NVMe tier (a node with NVMe holds more keys) */
    ctx->self.weight    = uf_member_weight(ctx->cfg.mem_bytes + uf_node_nvme_bytes(ctx->node),
                                           ((ctx->source != NULL) &&
                                            (ctx->source->slot_bytes != NULL) &&
                                            (ctx->source->slot_bytes(ctx->source_src) != 0)) ?
                                           ctx->source->slot_bytes(ctx->source_src) :
                                           ctx->cfg.slot_size);
    ctx->self.pid       = (uint32_t)getpid();
    ctx->self.mem_bytes = ctx->cfg.mem_bytes;
    snprintf(ctx->self.zone, sizeof(ctx->self.zone), "%s", ctx->cfg.zone);
    gethostname(ctx->self.host, sizeof(ctx->self.host) - 1);
    status = ut_address(ctx->transport, &blob, &len);
    if (status == UCACHE_OK) {
        status = uf_blob_copy(blob, len, &ctx->self.addr, &ctx->self.addr_len);
    }
    if (status == UCACHE_OK) {
        status = uf_node_rkey(ctx->node, &blob, &len);
    }
    if (status == UCACHE_OK) {
        status = uf_blob_copy(blob, len, &ctx->self.rkey, &ctx->self.rkey_len);
    }
    if (status != UCACHE_OK) {
        return status;
    }
    return uf_member_encode(&ctx->self, &ctx->self_rec, &ctx->self_rec_len);
}

/* The fill threads' lookup of an object's ETag (uf_node_set_lookup). */
static ucache_status_t uf_ctx_lookup(void *arg, const char *uri, us_object_t *obj_p)
{
    return uf_lookup(arg, uri, NULL, obj_p);
}

ucache_status_t ucache_init(const ucache_params_t *params, ucache_h *ctx_p)
{
    ut_config_t tcfg;
    ut_params_t tparams = { .field_mask = UT_PARAM_FIELD_CONFIG |
                                          UT_PARAM_FIELD_PROGRESS | UT_PARAM_FIELD_SERVE };
    struct ucache_context *ctx;
    pthread_condattr_t ca;
    ucache_status_t status;

    if (ctx_p == NULL) {
        return UCACHE_ERR_INVALID;
    }
    uc_log_init();
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    pthread_mutex_init(&ctx->lock, NULL);
    pthread_mutex_init(&ctx->admin_lock, NULL);
    pthread_mutex_init(&ctx->member_lock, NULL);
    pthread_mutex_init(&ctx->refresh_lock, NULL);
    pthread_mutex_init(&ctx->cache_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ctx->cond, &ca);
    pthread_cond_init(&ctx->rq_done, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&ctx->rq_lock, NULL);
    status = uc_config_load(&ctx->cfg);
    if (status != UCACHE_OK) {
        goto err;
    }
    if (params != NULL) {
        status = uf_params_apply(&ctx->cfg, params, &ctx->serve);
        if (status != UCACHE_OK) {
            goto err;
        }
        if (params->field_mask & UCACHE_PARAM_FIELD_LOG_LEVEL) {
            uc_log_set_level(params->log_level);
        }
    }
    status = uf_members_parse(ctx);
    if (status != UCACHE_OK) {
        goto err;
    }
    /* this context's origin settings: passed with each of its origin calls */
    us_origin_params_default(&ctx->origin);
    ctx->origin.retries     = ctx->cfg.origin_retries;
    ctx->origin.backoff_ns  = ctx->cfg.origin_backoff_ns;
    ctx->origin.timeout_ns  = ctx->cfg.origin_timeout_ns;
    ctx->origin.meta_ttl_ns = ctx->cfg.meta_ttl_ns;
    ctx->origin.list_page   = ctx->cfg.list_page;
    ctx->origin.part_bytes  = ctx->cfg.origin_part;
    ctx->origin.deadline_ns = ctx->cfg.origin_deadline_ns;
    snprintf(ctx->origin.ca_file, sizeof(ctx->origin.ca_file), "%s", ctx->cfg.origin_ca);
    ucc_credentials(ctx->cfg.credentials, ctx->origin.cred_path,
                    sizeof(ctx->origin.cred_path));
    us_token_command_configure(ctx->cfg.token_command); /* the process's provider */
    us_azure_identity_configure((us_azid_mode_t)ctx->cfg.azure_identity, ctx->cfg.imds_endpoint);
    if (ctx->cfg.manifest[0] != '\0') {
        status = uf_manifest_load(ctx->cfg.manifest, &ctx->manifest);
        if (status != UCACHE_OK) {
            goto err;
        }
    }
    ut_config_from(&tcfg, &ctx->cfg);
    tparams.config   = &tcfg;
    tparams.progress = ctx->serve ? UC_PROGRESS_THREAD : UC_PROGRESS_POLL;
    tparams.serve    = ctx->serve;
    status = ut_ctx_create(ctx->cfg.transport, &tparams, &ctx->transport);
    if (status != UCACHE_OK) {
        goto err;
    }
    if (ctx->serve) {
        uf_warn_open(&ctx->cfg);
        status = uf_node_create(ctx->transport, &ctx->cfg, &ctx->origin, &ctx->node);
        if (status == UCACHE_OK) {
            uf_node_set_moved_check(ctx->node, uf_ctx_moved, ctx);
            if (ctx->cfg.meta_mode == UC_META_FABRIC) {
                uf_node_set_lookup(ctx->node, uf_ctx_lookup, ctx);
            }
        }
        if (status == UCACHE_OK) {
            status = uf_self_init(ctx);
        }
        if (status == UCACHE_OK) {
            ut_rpc_handler_set(ctx->transport, UF_RPC_ADMIN, uf_admin_handler, ctx);
            status = ut_rpc_handler_set(ctx->transport, UF_RPC_HELLO, uf_hello_handler,
                                        ctx);
        }
        if ((status == UCACHE_OK) && (ctx->cfg.listen[0] != '\0')) {
            status = uf_listen(ctx);
        }
        if (status != UCACHE_OK) {
            goto err;
        }
    }
    if ((ctx->source != NULL) && (ctx->source->join != NULL) && ctx->serve) {
        status = uf_register(ctx);
        if (status != UCACHE_OK) {
            goto err;
        }
    }
    if (ctx->source != NULL) {
        status = uf_source_refresh(ctx, true);
        if (status != UCACHE_OK) {
            goto err;
        }
    }
    if (pthread_create(&ctx->thread, NULL, uf_ctx_thread, ctx) != 0) {
        UC_ERROR("cannot start the context's members thread");
        status = UCACHE_ERR_NO_MEMORY;
        goto err;
    }
    ctx->thread_running = true;
    *ctx_p = ctx;
    return UCACHE_OK;

err:
    ucache_finalize(ctx);
    return status;
}

void ucache_finalize(ucache_h ctx)
{
    uf_view_t *v;
    unsigned i;

    if (ctx == NULL) {
        return;
    }
    uf_posted_drain(ctx);
    if (ctx->transport != NULL) {
        ut_rpc_handler_set(ctx->transport, UF_RPC_HELLO, NULL, NULL);
        ut_rpc_handler_set(ctx->transport, UF_RPC_ADMIN, NULL, NULL);
    }
    if (ctx->thread_running) {
        pthread_mutex_lock(&ctx->lock);
        ctx->thread_stop = true;
        pthread_cond_broadcast(&ctx->cond);
        pthread_mutex_unlock(&ctx->lock);
        pthread_join(ctx->thread, NULL);
    }
    if (ctx->transport != NULL) {
        ut_rpc_handler_set(ctx->transport, UF_RPC_ADMIN, NULL, NULL);
    }
    uf_admin_answer(ctx, UCACHE_ERR_CANCELED); /* requests still waiting */
    uf_touch_flush(ctx, false); /* the last hits: short-lived readers' matter most */
    if (ctx->registered) { /* readers stop sending here at their next poll */
        ctx->source->leave(ctx->source_src, ctx->self.id);
        uf_node_drain(ctx->node, UF_DRAIN_NS);
    }
    uf_node_destroy(ctx->node);
    v = atomic_exchange(&ctx->view, NULL);
    uf_view_free(v);
    uf_view_reap(ctx, true);
    uf_peers_destroy(ctx);
    ut_ctx_destroy(ctx->transport);
    if ((ctx->source != NULL) && (ctx->source->close != NULL) &&
        (ctx->source_src != NULL)) {
        ctx->source->close(ctx->source_src);
    }
    uf_vshm_close(ctx->vshm, true);
    uf_manifest_free(ctx->manifest);
    for (i = 0; i < ctx->bounce.n; i++) {
        free(ctx->bounce.v[i]);
    }
    uf_member_clear(&ctx->self);
    free(ctx->self_rec);
    pthread_cond_destroy(&ctx->rq_done);
    pthread_mutex_destroy(&ctx->rq_lock);
    pthread_cond_destroy(&ctx->cond);
    pthread_mutex_destroy(&ctx->cache_lock);
    pthread_mutex_destroy(&ctx->lock);
    pthread_mutex_destroy(&ctx->admin_lock);
    pthread_mutex_destroy(&ctx->member_lock);
    pthread_mutex_destroy(&ctx->refresh_lock);
    free(ctx);
}

ucache_status_t ucache_member_record(ucache_h ctx, const void **rec_p, size_t *len_p)
{
    if ((ctx == NULL) || (rec_p == NULL) || (len_p == NULL) || !ctx->serve) {
        return UCACHE_ERR_INVALID;
    }
    *rec_p = ctx->self_rec;
    *len_p = ctx->self_rec_len;
    return UCACHE_OK;
}

ucache_status_t ucache_members_set(ucache_h ctx, const void *const *recs,
                                   const size_t *lens, uint32_t n, uint64_t epoch)
{
    uf_view_t *cur, *v;
    uf_member_t *members;
    ucache_status_t status;
    uint32_t i, slot = 0;

    if ((ctx == NULL) || (ctx->source != NULL) ||
        ((n > 0) && ((recs == NULL) || (lens == NULL))) || (epoch == 0)) {
        UC_ERROR("ucache_members_set needs a context with members \"mpi\", "
                 "records and a nonzero epoch");
        return UCACHE_ERR_INVALID;
    }
    cur = atomic_load(&ctx->view);
    if ((cur != NULL) && (epoch <= cur->epoch)) {
        UC_ERROR("epoch %" PRIu64 " is not after the current %" PRIu64, epoch,
                 cur->epoch);
        return UCACHE_ERR_INVALID;
    }
    members = calloc(n + 1, sizeof(*members));
    if (members == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    for (i = 0; i < n; i++) {
        status = uf_member_decode(recs[i], lens[i], &members[i]);
        if (status != UCACHE_OK) {
            UC_ERROR("member record %u of %u is malformed", i, n);
            uf_members_free(members, i);
            return status;
        }
        members[i].slot0 = slot;  /* slots in the order given */
        slot += members[i].weight;
        if (slot > UF_MAX_SLOTS / 2) {
            uf_members_free(members, i + 1);
            return UCACHE_ERR_INVALID;
        }
    }
    status = uf_view_build(ctx, members, n, epoch, 0, &v);
    if (status == UCACHE_OK) {
        uf_view_install(ctx, v);
    }
    return status;
}

ucache_status_t ucache_keygen(const char *path)
{
    if ((path == NULL) || (path[0] == '\0')) {
        return UCACHE_ERR_INVALID;
    }
    uc_log_init();
    return uc_key_generate(path);
}

ucache_status_t ucache_stats_get(ucache_h ctx, ucache_stats_t *s)
{
    uf_source_health_t sh;
    us_store_stats_t ss;
    us_origin_stats_t os;
    uf_node_stats_t ns;
    ut_stats_t ts;
    uf_view_t *v;

    if ((ctx == NULL) || (s == NULL)) {
        return UCACHE_ERR_INVALID;
    }
    ut_stats(ctx->transport, &ts);
    memset(s, 0, sizeof(*s));
    s->reads          = ts.reads + atomic_load(&ctx->st.mapped);
    s->read_bytes     = ts.read_bytes;
    s->mapped_reads   = ts.mapped_reads + atomic_load(&ctx->st.mapped);
    s->get_reads      = ts.get_reads;
    s->am_reads       = ts.am_reads;
    s->rpcs           = ts.rpcs;
    s->rpcs_served    = ts.rpcs_served;
    s->timeouts       = ts.timeouts;
    s->peer_failures  = ts.peer_failures;
    s->bad_input      = ts.bad_input;
    s->eps_open       = ts.eps_open;
    s->eps_evicted    = ts.eps_evicted;
    s->auth_failures  = ts.auth_failures;
    s->chunk_reads    = atomic_load(&ctx->st.chunk_reads);
    s->chunk_hits     = atomic_load(&ctx->st.hits);
    s->chunk_misses   = atomic_load(&ctx->st.misses);
    s->chunk_nvme     = atomic_load(&ctx->st.nvme);
    s->origin_direct  = atomic_load(&ctx->st.origin_direct);
    s->verify_retries = atomic_load(&ctx->st.verify_retries);
    s->failovers      = atomic_load(&ctx->st.failovers);
    s->bad_replies    = atomic_load(&ctx->st.bad_replies);
    s->stale_objects  = atomic_load(&ctx->st.stale_objects);
    s->bytes_returned = atomic_load(&ctx->st.bytes);
    s->hits_sampled   = atomic_load(&ctx->st.touch_sent);
    s->hits_unreported = atomic_load(&ctx->st.touch_dropped);
    s->chunks_windowed = atomic_load(&ctx->st.windowed);
    s->fetch_requests = atomic_load(&ctx->st.fetches);
    s->location_hits  = atomic_load(&ctx->st.loc_hits);
    s->owner_refusals = atomic_load(&ctx->st.owner_refusals);
    s->moved_refreshes = atomic_load(&ctx->st.moved);
    s->owner_restarts  = atomic_load(&ctx->st.peer_restarts);
    s->meta_owner     = atomic_load(&ctx->st.meta_owner);
    s->meta_direct    = atomic_load(&ctx->st.meta_direct);
    s->meta_pinned    = atomic_load(&ctx->st.meta_pinned);
    if (ctx->node != NULL) {
        uf_node_stats(ctx->node, &ns);
        us_store_stats(uf_node_store(ctx->node), &ss);
        s->fetches_served  = ns.fetches;
        s->fills           = ns.fills;
        s->fill_bytes      = ns.fill_bytes;
        s->fills_coalesced = ns.coalesced;
        s->fill_errors     = ns.fill_errors;
        s->fills_moved     = ns.moved;
        s->bad_requests    = ns.bad_requests;
        s->hits_reported   = ns.touches;
        s->chunks_cached   = ss.chunks;
        s->bytes_cached    = ss.bytes_cached;
        s->mem_bytes       = ss.data_bytes;
        s->mem_usable      = ss.bytes_usable;
        s->mem_commit_ns   = ss.commit_ns;
        if ((ctx->source != NULL) && (ctx->source->health != NULL) &&
            (ctx->source->health(ctx->source_src, false, &sh) == UCACHE_OK) &&
            (sh.lease_left_ms > 0)) {
            s->member_lease_ms = (uint64_t)sh.lease_left_ms;
        }
        s->bytes_used      = ss.bytes_used;
        s->bytes_pinned    = ss.bytes_pinned;
        s->evictions       = ss.evict_capacity + ss.evict_index + ss.evict_quota +
                             ss.evict_explicit;
        s->fetch_hits      = ns.fetch_hits;
        memcpy(s->fill_us_bucket, ns.fill_us_bucket, sizeof(s->fill_us_bucket));
        s->fill_us_sum     = ns.fill_us_sum;
        s->draining        = uf_node_draining(ctx->node);
        s->fills_refused   = ns.refused;
        s->fills_busy      = ns.busy;
        s->auth_failures  += ns.denied;
        s->meta_served     = ns.meta_served;
        s->nvme_devices    = ss.nvme_devices;
        s->nvme_offline    = ss.nvme_offline;
        s->nvme_hits       = ss.nvme_hits;
        s->nvme_demotions  = ss.nvme_demotions;
        s->nvme_promotions = ss.nvme_promotions;
        s->nvme_staged     = ss.nvme_staged;
        for (unsigned i = 0; i < ss.nvme_devices; i++) {
            us_nvme_stats_t nv;

            us_store_nvme_stats(uf_node_store(ctx->node), i, &nv);
            s->nvme_bytes      += nv.dev_bytes;
            s->nvme_used       += nv.used_bytes;
            s->nvme_chunks     += nv.records;
            s->nvme_pinned     += nv.pinned;
            s->nvme_errors     += nv.errors;
            s->nvme_corrupt    += nv.corrupt;
            s->nvme_read_bytes += nv.read_bytes;
            s->nvme_read_ns    += nv.read_ns;
            s->nvme_rebuild_ns  = (nv.rebuild_ns > s->nvme_rebuild_ns) ? nv.rebuild_ns :
                                                                        s->nvme_rebuild_ns;
        }
    }
    us_origin_stats(&os);
    s->origin_reads = os.reads;
    s->origin_bytes = os.bytes;
    s->origin_errors = os.errors;
    s->origin_meta   = os.stats;
    v = uf_view_acquire(ctx);
    if (v != NULL) {
        s->view_epoch = v->epoch;
        s->view_nodes = v->n;
        uf_view_release(v);
    }
    return UCACHE_OK;
}

/* ------------------------------------------------------------------------ */
/* Reads                                                                     */
/* ------------------------------------------------------------------------ */

ucache_status_t ucache_read(ucache_h ctx, const char *uri, uint64_t offset,
                            size_t len, void *buf, size_t *nread_p)
{
    if ((ctx == NULL) || (uri == NULL) || (buf == NULL) || (nread_p == NULL) ||
        (len == 0)) {
        if (ctx != NULL) {
            UC_ERROR("ucache_read: %s", (len == 0) ? "length is 0" :
                                                     "a NULL argument");
        }
        return UCACHE_ERR_INVALID;
    }
    return uf_read(ctx, uri, offset, len, buf, nread_p);
}

ucache_status_t ucache_nodes(ucache_h ctx, ucache_node_info_t *nodes, size_t cap,
                             size_t *count_p)
{
    uint64_t now = uc_time_ns();
    ucache_node_info_t *d;
    uf_view_t *v;
    uf_peer_t *p;
    uint32_t i;

    if ((ctx == NULL) || (count_p == NULL) || ((cap > 0) && (nodes == NULL))) {
        return UCACHE_ERR_INVALID;
    }
    v = uf_view_acquire(ctx);
    *count_p = (v != NULL) ? v->n : 0;
    for (i = 0; (v != NULL) && (i < v->n) && (i < cap); i++) {
        d = &nodes[i];
        memset(d, 0, sizeof(*d));
        d->id   = v->nodes[i].id;
        d->port = v->nodes[i].port;
        snprintf(d->host, sizeof(d->host), "%s", v->strings + v->nodes[i].host);
        if (v->recs != NULL) {
            snprintf(d->zone, sizeof(d->zone), "%s", v->recs[i].zone);
            d->weight       = v->recs[i].weight;
            d->mem_bytes    = v->recs[i].mem_bytes;
            d->heartbeat_ns = v->recs[i].heartbeat_ns;
            d->pid          = v->recs[i].pid;
        }
        p = atomic_load_explicit(&v->peers[i], memory_order_acquire);
        d->suspect = (p != NULL) && uf_peer_is_suspect(p, now);
        d->self    = ctx->serve && (d->id == ctx->self.id);
    }
    uf_view_release(v);
    return UCACHE_OK;
}

ucache_status_t ucache_nodes_left(ucache_h ctx, ucache_node_info_t *nodes, size_t cap,
                                  size_t *count_p)
{
    ucache_node_info_t *d;
    ucache_status_t status;
    uf_member_t *v = NULL;
    uint32_t n = 0, i;

    if ((ctx == NULL) || (count_p == NULL) || ((cap > 0) && (nodes == NULL))) {
        return UCACHE_ERR_INVALID;
    }
    *count_p = 0;
    if ((ctx->source == NULL) || (ctx->source->left == NULL)) {
        return UCACHE_OK;
    }
    status = ctx->source->left(ctx->source_src, ctx->cfg.members_ttl_ns, &v, &n);
    if (status != UCACHE_OK) {
        return status;
    }
    *count_p = n;
    for (i = 0; (i < n) && (i < cap); i++) {
        d = &nodes[i];
        memset(d, 0, sizeof(*d));
        d->id           = v[i].id;
        d->weight       = v[i].weight;
        d->mem_bytes    = v[i].mem_bytes;
        d->heartbeat_ns = v[i].heartbeat_ns;
        d->pid          = v[i].pid;
        snprintf(d->host, sizeof(d->host), "%s", v[i].host);
        snprintf(d->zone, sizeof(d->zone), "%s", v[i].zone);
    }
    uf_members_free(v, n);
    return UCACHE_OK;
}

ucache_status_t ucache_members_health(ucache_h ctx, ucache_members_health_t *h)
{
    uf_source_health_t sh;
    ucache_status_t status;
    uf_member_t *v = NULL;
    uint64_t epoch = 0, bad = 0;
    uint32_t n = 0;
    uf_view_t *view;

    if ((ctx == NULL) || (h == NULL)) {
        return UCACHE_ERR_INVALID;
    }
    memset(h, 0, sizeof(*h));
    memset(&sh, 0, sizeof(sh));
    h->revision = h->lease_left_ms = -1;
    view = uf_view_acquire(ctx);
    h->epoch = (view != NULL) ? view->epoch : 0;
    uf_view_release(view);
    if (ctx->source == NULL) {
        snprintf(h->source, sizeof(h->source), "none");
        return UCACHE_ERR_NOT_FOUND;
    }
    snprintf(h->source, sizeof(h->source), "%.*s", (int)strcspn(ctx->source->prefix, ":"),
             ctx->source->prefix);
    if (ctx->source->health != NULL) {
        status = ctx->source->health(ctx->source_src, true, &sh);
    } else {                         /* a scan that works is all there is */
        status = ctx->source->scan(ctx->source_src, &v, &n, &epoch, &bad);
        uf_members_free(v, n);
        sh.reachable = (status == UCACHE_OK);
        sh.revision  = sh.lease_left_ms = -1;
        snprintf(sh.via, sizeof(sh.via), "scans every UCACHE_MEMBERS_POLL");
        if (status == UCACHE_OK) {
            snprintf(sh.detail, sizeof(sh.detail), "%u records", n);
        } else {
            snprintf(sh.detail, sizeof(sh.detail), "%s", ucache_strerror(status));
        }
    }
    h->reachable     = sh.reachable;
    h->revision      = sh.revision;
    h->lease_left_ms = sh.lease_left_ms;
    snprintf(h->via, sizeof(h->via), "%s", sh.via);
    snprintf(h->detail, sizeof(h->detail), "%s", sh.detail);
    return status;
}

static void ucc_info(const us_object_t *obj, ucache_object_info_t *info)
{
    memset(info, 0, sizeof(*info));
    info->size    = obj->size;
    info->mtime   = obj->mtime;
    info->version = obj->version;
}

ucache_status_t ucache_stat_info(ucache_h ctx, const char *uri, ucache_object_info_t *info)
{
    us_object_t obj;
    ucache_status_t status;

    if ((ctx == NULL) || (uri == NULL) || (info == NULL)) {
        return UCACHE_ERR_INVALID;
    }
    status = uf_lookup(ctx, uri, NULL, &obj);
    if (status == UCACHE_OK) {
        ucc_info(&obj, info);
    }
    return status;
}

ucache_status_t ucache_stat(ucache_h ctx, const char *uri, uint64_t *size_p)
{
    ucache_object_info_t info;
    ucache_status_t status;

    if (size_p == NULL) {
        return UCACHE_ERR_INVALID;
    }
    status = ucache_stat_info(ctx, uri, &info);
    if (status == UCACHE_OK) {
        *size_p = info.size;
    }
    return status;
}

/* What a listing's caller asked for: objects by size, or with their info. */
typedef struct ucc_list {
    ucache_list_fn_t      fn;
    ucache_list_info_fn_t info_fn;
    void                 *arg;
} ucc_list_t;

static ucache_status_t ucc_listed(void *arg, const char *uri, const us_object_t *obj)
{
    const ucc_list_t *l = arg;
    ucache_object_info_t info;

    if (l->info_fn == NULL) {
        return l->fn(l->arg, uri, obj->size);
    }
    ucc_info(obj, &info);
    return l->info_fn(l->arg, uri, &info);
}

ucache_status_t ucache_list(ucache_h ctx, const char *prefix, ucache_list_fn_t fn,
                            void *arg)
{
    ucc_list_t l = { fn, NULL, arg };

    if ((ctx == NULL) || (prefix == NULL) || (fn == NULL)) {
        return UCACHE_ERR_INVALID;
    }
    return uf_lookup_list(ctx, prefix, ucc_listed, &l);
}

ucache_status_t ucache_list_info(ucache_h ctx, const char *prefix, ucache_list_info_fn_t fn,
                                 void *arg)
{
    ucc_list_t l = { NULL, fn, arg };

    if ((ctx == NULL) || (prefix == NULL) || (fn == NULL)) {
        return UCACHE_ERR_INVALID;
    }
    return uf_lookup_list(ctx, prefix, ucc_listed, &l);
}

ucache_status_t ucache_manifest_load(ucache_h ctx, const char *path)
{
    uf_manifest_t *m;
    ucache_status_t status;

    if ((ctx == NULL) || (path == NULL)) {
        return UCACHE_ERR_INVALID;
    }
    if (ctx->manifest != NULL) {
        UC_ERROR("a manifest is pinned already (UCACHE_MANIFEST or an earlier load): one "
                 "a context");
        return UCACHE_ERR_INVALID;
    }
    status = uf_manifest_load(path, &m);
    if (status == UCACHE_OK) {
        ctx->manifest = m; /* before the caller's reads, which are after this call */
    }
    return status;
}

typedef struct ucc_manifest {
    FILE    *out;
    uint64_t objects, skipped;
} ucc_manifest_t;

static ucache_status_t ucc_manifest_one(void *arg, const char *uri, const us_object_t *obj)
{
    ucc_manifest_t *w = arg;

    if (uf_manifest_put(w->out, uri, obj)) {
        w->objects++;
    } else {
        w->skipped++;
        UC_WARN("%.*s left out of the manifest: a tab, newline or query in its URI",
                us_uri_loglen(uri), uri);
    }
    return ferror(w->out) ? UCACHE_ERR_IO : UCACHE_OK;
}

ucache_status_t ucache_manifest_write(ucache_h ctx, const char *const *prefixes, unsigned n,
                                      FILE *out, uint64_t *objects_p)
{
    ucc_manifest_t w = { out, 0, 0 };
    ucache_status_t status = UCACHE_OK;
    unsigned i;

    if ((ctx == NULL) || (prefixes == NULL) || (n == 0) || (out == NULL)) {
        return UCACHE_ERR_INVALID;
    }
    for (i = 0; i < n; i++) {
        if ((prefixes[i] == NULL) || (strnlen(prefixes[i], US_URI_MAX) >= US_URI_MAX) ||
            (strpbrk(prefixes[i], "?\t\r\n") != NULL)) {
            UC_ERROR("a manifest's prefix is a URI without a query (a SAS goes in the "
                     "credentials file or AZURE_STORAGE_SAS_TOKEN, never in a manifest)");
            return UCACHE_ERR_INVALID;
        }
    }
    fprintf(out, UF_MANIFEST_MAGIC "\n");
    for (i = 0; i < n; i++) {
        fprintf(out, UF_MANIFEST_PREFIX "%s\n", prefixes[i]);
    }
    for (i = 0; (i < n) && (status == UCACHE_OK); i++) {
        UF_ADD(ctx, meta_direct, 1); /* as the origin has it now, not as cached */
        status = us_origin_list(&ctx->origin, prefixes[i], ucc_manifest_one, &w);
    }
    if ((status == UCACHE_OK) && (fflush(out) != 0)) {
        status = UCACHE_ERR_IO;
    }
    if (objects_p != NULL) {
        *objects_p = w.objects;
    }
    return status;
}

ucache_status_t ucache_warm(ucache_h ctx, const char *uri, uint64_t offset, uint64_t len,
                            unsigned flags, ucache_warm_result_t *res)
{
    if ((ctx == NULL) || (uri == NULL) || (res == NULL) || (len == 0) ||
        (flags & ~(UCACHE_WARM_PIN | UCACHE_WARM_UNPIN | UCACHE_WARM_EVICT |
                   UCACHE_WARM_NVME)) ||
        (__builtin_popcount(flags) > 1)) {
        if (ctx != NULL) {
            UC_ERROR("ucache_warm: a NULL argument, length 0 or bad flags");
        }
        return UCACHE_ERR_INVALID;
    }
    return uf_warm(ctx, uri, offset, len, flags, res);
}
