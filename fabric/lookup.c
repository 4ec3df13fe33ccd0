/*
 * lookup.c - an object's size and version, and a prefix's listing, as a
 * reader finds them, first answer wins:
 *   1. the manifest it pinned (UCACHE_MANIFEST, ucache_manifest_load): no
 *      request at all;
 *   2. this process's metadata cache, while younger than UCACHE_META_TTL
 *      (an owner's answer counts from when the owner had it);
 *   3. with UCACHE_META=fabric, the owner of the object's metadata key
 *      (uf_meta_key, placed like a chunk; its replicas after it), which
 *      asks the origin at most once per its TTL for every reader (meta.c);
 *   4. the origin itself, when no owner answered (none known, all failed,
 *      refused - not its origin - or a node of before META).
 * A listing through an owner comes in pages (UF_META_PAGE_MAX objects); if
 * the owner fails midway, the origin's listing goes on after the last
 * object given, so nothing is given twice or lost.
 */
#include "fabric/fabric.h"
#include "fabric/manifest.h"
#include "fabric/meta.h"
#include "util/log.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>

#define UF_META_VIEWS 3 /* views an answer may be looked for in (MOVED) */

/* The owner is gone or unreachable (not an answer about the object). */
static bool uf_meta_peer_failed(ucache_status_t status)
{
    return (status == UCACHE_ERR_PEER) || (status == UCACHE_ERR_TIMEOUT) ||
           (status == UCACHE_ERR_TRANSPORT) || (status == UCACHE_ERR_CANCELED) ||
           (status == UCACHE_ERR_AUTH); /* it refuses us (no or another key) */
}

/* One META request @p msg (@p len bytes) to @p p; its reply's metadata in
 * @p rep, data in @p data (of @p cap bytes, *got_p of them used). */
static ucache_status_t uf_meta_call(struct ucache_context *ctx, uf_peer_t *p, const void *msg,
                                    size_t len, uf_meta_rep_t *rep, void *data, size_t cap,
                                    size_t *meta_len_p, size_t *got_p)
{
    ucache_status_t status;
    ut_req_t r;

    memset(rep, 0, sizeof(*rep));
    status = ut_rpc_post_timeout(&r, p->tp, UF_RPC_META, msg, len, rep, sizeof(*rep), data,
                                 cap, ctx->cfg.fetch_timeout_ns);
    if (status != UCACHE_OK) {
        return status;
    }
    uf_wait_all(ctx, &r, 1);
    *meta_len_p = r.meta_length;
    *got_p      = r.length;
    return r.status;
}

/* The request bytes: header, @p uri, @p after. */
static size_t uf_meta_msg(struct ucache_context *ctx, const uf_view_t *v, unsigned op,
                          uint64_t stale, unsigned max, const char *uri, const char *after,
                          char *msg)
{
    uf_meta_req_t req;

    memset(&req, 0, sizeof(req));
    req.magic      = UF_PROTO_MAGIC;
    req.version    = UF_PROTO_VERSION;
    req.op         = (uint16_t)op;
    req.epoch      = v->epoch;
    req.stale      = stale;
    req.max_age_ns = ctx->cfg.meta_ttl_ns;
    req.max       = max;
    req.uri_len   = (uint16_t)strlen(uri);
    req.after_len = (uint16_t)strlen(after);
    memcpy(msg, &req, sizeof(req));
    memcpy(msg + sizeof(req), uri, req.uri_len);
    memcpy(msg + sizeof(req) + req.uri_len, after, req.after_len);
    return sizeof(req) + req.uri_len + req.after_len;
}

/* What one owner does with a request: @p fn asks @p p (set up) in view @p v. */
typedef ucache_status_t (*uf_meta_ask_fn_t)(struct ucache_context *ctx, uf_view_t *v,
                                            uf_peer_t *p, void *arg);

/*
 * Ask the owners of @p uri's metadata key, in placement order, until one
 * answers: its answer (an error about the object included), or the last
 * owner's failure (UCACHE_ERR_PEER if none could be asked).  An owner whose
 * view is newer (MOVED) sends us to ours, refreshed.
 */
static ucache_status_t uf_meta_owners(struct ucache_context *ctx, const char *uri,
                                      uf_meta_ask_fn_t fn, void *arg)
{
    us_key_t key = uf_meta_key(uri);
    uint32_t owners[UF_MAX_REPLICAS];
    ucache_status_t status = UCACHE_ERR_PEER;
    uf_view_t *v = uf_view_acquire(ctx), *nv;
    unsigned n, i, views;
    uf_peer_t *p = NULL;

    for (views = 0; (v != NULL) && (views < UF_META_VIEWS); views++) {
        n = (v->n > 0) ? uf_place_owners(v->place, &key, ctx->cfg.replicas, owners) : 0;
        status = UCACHE_ERR_PEER;
        for (i = 0; i < n; i++) {
            p = atomic_load_explicit(&v->peers[owners[i]], memory_order_acquire);
            if ((p != NULL) && uf_peer_is_suspect(p, uc_time_ns())) {
                continue;
            }
            p = uf_view_peer(ctx, v, owners[i]);
            if (p == NULL) {
                continue;
            }
            status = fn(ctx, v, p, arg);
            if (!uf_meta_peer_failed(status)) {
                break;
            }
            uf_peer_suspect(ctx, p, ucache_strerror(status));
        }
        if ((status != UCACHE_ERR_MOVED) || ((nv = uf_view_newer(ctx, v)) == NULL)) {
            break;
        }
        UF_ADD(ctx, moved, 1);
        uf_view_release(v);
        v = nv;
    }
    if (v != NULL) {
        uf_view_release(v);
    }
    if ((status == UCACHE_OK) && (p != NULL)) {
        uf_peer_ok(p);
    }
    return status;
}

/* ------------------------------------------------------------------------ */
/* An object                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct uf_meta_stat_arg {
    const char  *uri;
    uint64_t     stale;
    us_object_t *obj;
    uint64_t     age;
} uf_meta_stat_arg_t;

static ucache_status_t uf_meta_stat_ask(struct ucache_context *ctx, uf_view_t *v,
                                        uf_peer_t *p, void *arg)
{
    uf_meta_stat_arg_t *a = arg;
    char msg[sizeof(uf_meta_req_t) + US_URI_MAX], etag[US_ETAG_MAX];
    size_t len, meta_len, got;
    ucache_status_t status;
    uf_meta_rep_t rep;

    if (p->self) {
        return uf_meta_stat(uf_node_meta(ctx->node), a->uri, a->stale, ctx->cfg.meta_ttl_ns,
                            a->obj, &a->age);
    }
    len    = uf_meta_msg(ctx, v, UF_META_STAT | UF_META_MTIME, a->stale, 0, a->uri, "", msg);
    status = uf_meta_call(ctx, p, msg, len, &rep, etag, sizeof(etag), &meta_len, &got);
    if (status != UCACHE_OK) {
        return status;
    }
    if (uf_meta_stat_parse(&rep, meta_len, etag, got, true, a->obj) != UCACHE_OK) {
        UF_ADD(ctx, bad_replies, 1);
        UC_WARN("owner %016llx sent a malformed META reply (%zu+%zu bytes)",
                (unsigned long long)p->id, meta_len, got);
        return UCACHE_ERR_CORRUPT;
    }
    a->age = rep.age_ns;
    return UCACHE_OK;
}

/* The manifest's answer; UCACHE_ERR_NOT_FOUND if it names no @p uri. */
static ucache_status_t uf_lookup_pinned(struct ucache_context *ctx, const char *uri,
                                        const us_object_t *stale, us_object_t *obj_p)
{
    if (!uf_manifest_get(ctx->manifest, uri, obj_p)) {
        return UCACHE_ERR_NOT_FOUND;
    }
    UF_ADD(ctx, meta_pinned, 1);
    if ((stale != NULL) && (stale->version == obj_p->version)) {
        UC_ERROR("%.*s changed at its origin since the manifest was written (version "
                 "%016llx): the job pinned that version; write a new manifest "
                 "(ucache manifest)", us_uri_loglen(uri), uri,
                 (unsigned long long)obj_p->version);
        return UCACHE_ERR_STALE;
    }
    return UCACHE_OK;
}

ucache_status_t uf_lookup(struct ucache_context *ctx, const char *uri,
                          const us_object_t *stale, us_object_t *obj_p)
{
    uf_meta_stat_arg_t a = { uri, (stale != NULL) ? stale->version : 0, obj_p, 0 };
    ucache_status_t status;
    us_object_t prev;
    uint64_t age;

    if (stale != NULL) {
        prev = *stale; /* @p stale may be @p obj_p */
        stale = &prev;
        a.stale = prev.version;
    }
    if (ctx->manifest != NULL) {
        status = uf_lookup_pinned(ctx, uri, stale, obj_p);
        if (status != UCACHE_ERR_NOT_FOUND) {
            return status;
        }
    }
    if ((stale == NULL) && (us_origin_meta_peek(&ctx->origin, uri, obj_p, &age) == UCACHE_OK)) {
        return UCACHE_OK;
    }
    if ((ctx->cfg.meta_mode == UC_META_FABRIC) && (uri != NULL) &&
        (strnlen(uri, US_URI_MAX) < US_URI_MAX) && (uri[0] != '\0')) {
        status = uf_meta_owners(ctx, uri, uf_meta_stat_ask, &a);
        if (status == UCACHE_OK) {
            UF_ADD(ctx, meta_owner, 1);
            us_origin_meta_put(uri, obj_p, a.age);
            return UCACHE_OK;
        }
        UC_DEBUG("no owner answered for %.*s (%s): asking its origin", us_uri_loglen(uri), uri,
                 ucache_strerror(status));
    }
    UF_ADD(ctx, meta_direct, 1);
    return us_origin_stat_cached(&ctx->origin, uri, stale != NULL, obj_p);
}

/* ------------------------------------------------------------------------ */
/* A listing                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct uf_meta_list_arg {
    const char          *prefix;
    us_origin_list_fn_t  fn;
    void                *arg;
    char                 last[US_URI_MAX]; /* given so far, up to it ("": none) */
    uint64_t             age;              /* the page's */
    ucache_status_t      stopped;          /* fn's non-OK */
    char                *page;
} uf_meta_list_arg_t;

/* One object of a page or of the origin's listing: to the caller, once. */
static ucache_status_t uf_meta_give(void *arg, const char *uri, const us_object_t *obj)
{
    uf_meta_list_arg_t *a = arg;
    ucache_status_t status;

    if ((a->last[0] != '\0') && (strcmp(uri, a->last) <= 0)) {
        return UCACHE_OK; /* given by the owner before it failed */
    }
    us_origin_meta_put(uri, obj, a->age);
    status = a->fn(a->arg, uri, obj);
    if (status != UCACHE_OK) {
        a->stopped = status;
    }
    return status;
}

static ucache_status_t uf_meta_list_ask(struct ucache_context *ctx, uf_view_t *v,
                                        uf_peer_t *p, void *arg)
{
    uf_meta_list_arg_t *a = arg;
    char msg[sizeof(uf_meta_req_t) + 2 * US_URI_MAX], last[US_URI_MAX];
    ucache_status_t status;
    size_t len, meta_len, got;
    uf_meta_rep_t rep;

    do {
        if (p->self) {
            status = uf_meta_page(uf_node_meta(ctx->node), a->prefix, a->last,
                                  UF_META_PAGE_MAX, ctx->cfg.meta_ttl_ns, true, a->page, &rep,
                                  &got);
            meta_len = sizeof(rep);
        } else {
            len    = uf_meta_msg(ctx, v, UF_META_LIST | UF_META_MTIME, 0, UF_META_PAGE_MAX,
                                 a->prefix, a->last,
                                 msg);
            status = uf_meta_call(ctx, p, msg, len, &rep, a->page, UF_META_PAGE_BYTES,
                                  &meta_len, &got);
        }
        if (status != UCACHE_OK) {
            return status;
        }
        a->age = rep.age_ns;
        last[0] = '\0';
        status = uf_meta_list_parse(&rep, meta_len, a->page, got, a->prefix, a->last, true,
                                    uf_meta_give, a, last);
        if (status == UCACHE_ERR_CORRUPT) {
            UF_ADD(ctx, bad_replies, 1);
            UC_WARN("owner %016llx sent a malformed listing page (%zu+%zu bytes)",
                    (unsigned long long)p->id, meta_len, got);
            return status;
        }
        UF_ADD(ctx, meta_owner, 1);
        if (a->stopped != UCACHE_OK) {
            return UCACHE_OK; /* the caller's word: the listing ends */
        }
        if (last[0] != '\0') {
            memcpy(a->last, last, strlen(last) + 1);
        }
    } while (rep.more);
    return UCACHE_OK;
}

ucache_status_t uf_lookup_list(struct ucache_context *ctx, const char *prefix,
                               us_origin_list_fn_t fn, void *arg)
{
    uf_meta_list_arg_t *a;
    ucache_status_t status;

    if ((ctx->manifest != NULL) && uf_manifest_covers(ctx->manifest, prefix)) {
        UF_ADD(ctx, meta_pinned, 1);
        return uf_manifest_list(ctx->manifest, prefix, fn, arg);
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    a->prefix = prefix;
    a->fn     = fn;
    a->arg    = arg;
    status    = UCACHE_ERR_UNSUPPORTED;
    if ((ctx->cfg.meta_mode == UC_META_FABRIC) && (strnlen(prefix, US_URI_MAX) < US_URI_MAX) &&
        (prefix[0] != '\0') && ((a->page = malloc(UF_META_PAGE_BYTES)) != NULL)) {
        status = uf_meta_owners(ctx, prefix, uf_meta_list_ask, a);
        if (status != UCACHE_OK) {
            UC_DEBUG("no owner listed %.*s (%s): listing its origin%s", us_uri_loglen(prefix),
                     prefix, ucache_strerror(status), a->last[0] ? " from where it stopped" :
                                                               "");
        }
    }
    if ((status != UCACHE_OK) && (a->stopped == UCACHE_OK)) {
        UF_ADD(ctx, meta_direct, 1);
        a->age = 0;
        status = us_origin_list(&ctx->origin, prefix, uf_meta_give, a);
    }
    if (a->stopped != UCACHE_OK) {
        status = a->stopped;
    }
    free(a->page);
    free(a);
    return status;
}
