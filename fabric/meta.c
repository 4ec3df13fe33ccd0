/*
 * meta.c - object metadata owned by the fabric, the owner's side (meta.h).
 *
 * A reader asks the owner of an object's metadata key (uf_meta_key, placed
 * like a chunk) for its size and version, and the owner of a prefix's key
 * for its listing, page by page.  The owner answers from this process's
 * metadata cache while its answer is younger than the node's
 * UCACHE_META_TTL - in the handler, no thread switch - and otherwise hands
 * the request to a meta thread, which asks the origin: one request however
 * many readers ask at once (us_origin_meta shares it).  Every origin
 * request is the owner's own, within its UCACHE_ALLOW and confined as a
 * fill is (us_origin_confine); a reader's request names an object, never
 * the owner's rights.  A listing is kept whole, sorted by URI, as the LIST
 * entries a reply carries (a page is one copy), in at most UCACHE_META_MEM
 * bytes for all listings, least recently used dropped first.
 */
#include "fabric/meta.h"
#include "util/log.h"
#include "util/time.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define UF_META_QUEUE 4096   /* requests waiting for a meta thread */

/* A request a meta thread answers. */
typedef struct uf_meta_job {
    struct uf_meta_job *next;
    ut_rpc_t           *rpc;
    uf_meta_req_t       req;
    char                uri[US_URI_MAX];
    char                after[US_URI_MAX];
} uf_meta_job_t;

/* A listing: its LIST entries in URI order, contiguous, and where each
 * begins. */
typedef struct uf_listing {
    struct uf_listing *next;
    char              *ents;
    size_t             bytes;
    uint32_t          *off;
    size_t             n;
    uint64_t           fetched_ns, used_ns;
    bool               busy;     /* being asked of the origin */
    char               prefix[];
} uf_listing_t;

struct uf_meta {
    uf_node_t                *node;
    ut_ctx_t                 *tr;
    const us_allow_t         *allow;
    const us_origin_params_t *origin;
    size_t                    mem_cap, mem_used;
    pthread_mutex_t           lock;
    pthread_cond_t            work;    /* a job was queued, or stop */
    pthread_cond_t            listed;  /* a listing was asked of the origin */
    uf_meta_job_t            *qhead, *qtail;
    unsigned                  queued;
    uf_listing_t             *listings;
    pthread_t                *threads;
    unsigned                  nthreads;
    bool                      stop;
    _Atomic uint64_t          served;
};

us_key_t uf_meta_key(const char *uri)
{
    XXH128_hash_t h = XXH3_128bits_withSeed(uri, strlen(uri), 0x6d657461ull); /* "meta" */
    us_key_t k = { h.high64, h.low64 };

    return k;
}

/* The owner's TTL, or the reader's if shorter. */
static uint64_t uf_meta_ttl(const uf_meta_t *meta, uint64_t max_age_ns)
{
    return (max_age_ns < meta->origin->meta_ttl_ns) ? max_age_ns : meta->origin->meta_ttl_ns;
}

ucache_status_t uf_meta_stat(uf_meta_t *meta, const char *uri, uint64_t stale,
                             uint64_t max_age_ns, us_object_t *obj_p, uint64_t *age_p)
{
    us_origin_params_t prm = *meta->origin;
    us_origin_scope_t scope;
    ucache_status_t status;

    status = us_origin_confine(meta->allow, uri, &scope);
    if (status != UCACHE_OK) {
        return status;
    }
    prm.meta_ttl_ns = uf_meta_ttl(meta, max_age_ns);
    status = us_origin_meta(&prm, uri, false, obj_p, age_p);
    if ((status == UCACHE_OK) && (stale != 0) && (obj_p->version == stale)) {
        status = us_origin_meta(&prm, uri, true, obj_p, age_p); /* changed since */
    }
    us_origin_unconfine();
    return status;
}

/* ------------------------------------------------------------------------ */
/* Listings                                                                  */
/* ------------------------------------------------------------------------ */

/* A listing being collected from the origin (in its order). */
typedef struct uf_collect {
    char     *ents;
    size_t    bytes, cap, limit;
    uint32_t *off;
    size_t    n, ncap;
} uf_collect_t;

static ucache_status_t uf_collect_one(void *arg, const char *uri, const us_object_t *obj)
{
    uf_collect_t *c = arg;
    size_t need = sizeof(uf_meta_ent_t) + US_URI_MAX + US_ETAG_MAX, at = c->bytes;
    void *p;

    if (c->bytes + need > c->cap) {
        c->cap = (c->cap * 2 > c->bytes + need) ? c->cap * 2 : c->bytes + need;
        p = realloc(c->ents, c->cap);
        if (p == NULL) {
            return UCACHE_ERR_NO_MEMORY;
        }
        c->ents = p;
    }
    if (c->n == c->ncap) {
        c->ncap = (c->ncap > 0) ? c->ncap * 2 : 1024;
        p = realloc(c->off, c->ncap * sizeof(*c->off));
        if (p == NULL) {
            return UCACHE_ERR_NO_MEMORY;
        }
        c->off = p;
    }
    if (!uf_meta_ent_put(c->ents, c->cap, &c->bytes, uri, obj)) {
        UC_WARN("listed object '%.*s' skipped: its ETag is not printable", us_uri_loglen(uri),
                uri);
        return UCACHE_OK;
    }
    c->off[c->n++] = (uint32_t)at;
    if (c->bytes + c->n * sizeof(*c->off) > c->limit) {
        return UCACHE_ERR_NO_MEMORY; /* more than UCACHE_META_MEM: not kept */
    }
    return UCACHE_OK;
}

/* The URI of the entry at @p off of @p ents, and its length. */
static const char *uf_ent_uri(const char *ents, uint32_t off, size_t *len_p)
{
    uf_meta_ent_t e;

    memcpy(&e, ents + off, sizeof(e));
    *len_p = e.uri_len;
    return ents + off + sizeof(e);
}

static size_t uf_ent_size(const char *ents, uint32_t off)
{
    uf_meta_ent_t e;

    memcpy(&e, ents + off, sizeof(e));
    return sizeof(e) + e.uri_len + e.etag_len;
}

static int uf_ent_cmp(const void *a, const void *b, void *arg)
{
    size_t la, lb;
    const char *ua = uf_ent_uri(arg, *(const uint32_t *)a, &la);
    const char *ub = uf_ent_uri(arg, *(const uint32_t *)b, &lb);
    int c = memcmp(ua, ub, (la < lb) ? la : lb);

    return (c != 0) ? c : ((la > lb) - (la < lb));
}

/* Sort what was collected into @p l (URI order, duplicates dropped). */
static ucache_status_t uf_listing_take(uf_listing_t *l, uf_collect_t *c)
{
    uint32_t cur, prev = 0;
    size_t i, o, len;
    char *ents;

    if (c->n > 1) {
        qsort_r(c->off, c->n, sizeof(*c->off), uf_ent_cmp, c->ents);
    }
    ents = malloc((c->bytes > 0) ? c->bytes : 1);
    if (ents == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    for (i = 0, o = 0, l->bytes = 0; i < c->n; i++) {
        cur = c->off[i];
        if ((o > 0) && (uf_ent_cmp(&cur, &prev, c->ents) == 0)) {
            continue; /* listed twice (an origin's pages moved under it) */
        }
        prev = cur;
        len  = uf_ent_size(c->ents, cur);
        memcpy(ents + l->bytes, c->ents + cur, len);
        c->off[o++] = (uint32_t)l->bytes;
        l->bytes += len;
    }
    free(l->ents);
    free(l->off);
    l->ents = ents;
    l->off  = c->off;
    l->n    = o;
    c->off  = NULL;
    return UCACHE_OK;
}

static size_t uf_listing_mem(const uf_listing_t *l)
{
    return l->bytes + l->n * sizeof(*l->off);
}

/* meta->lock held: drop @p l (not busy). */
static void do_listing_drop(uf_meta_t *meta, uf_listing_t *l)
{
    uf_listing_t **pp;

    for (pp = &meta->listings; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    meta->mem_used -= uf_listing_mem(l);
    free(l->ents);
    free(l->off);
    free(l);
}

/* meta->lock held: drop the least recently used listings (not busy, not
 * @p keep) until the memory holds the cap. */
static void do_listing_trim(uf_meta_t *meta, const uf_listing_t *keep)
{
    uf_listing_t *l, *lru;

    while (meta->mem_used > meta->mem_cap) {
        for (lru = NULL, l = meta->listings; l != NULL; l = l->next) {
            if (!l->busy && (l != keep) && ((lru == NULL) || (l->used_ns < lru->used_ns))) {
                lru = l;
            }
        }
        if (lru == NULL) {
            return;
        }
        do_listing_drop(meta, lru);
    }
}

/* meta->lock held: the page of @p l after @p after, up to @p max. */
static void do_listing_page(const uf_listing_t *l, const char *after, unsigned max,
                            void *buf, uf_meta_rep_t *rep, size_t *len_p)
{
    size_t lo = 0, hi = l->n, mid, len, alen = strlen(after), end;
    const char *u;
    int c;

    while (lo < hi) { /* the first entry after `after` */
        mid = lo + (hi - lo) / 2;
        u   = uf_ent_uri(l->ents, l->off[mid], &len);
        c   = memcmp(u, after, (len < alen) ? len : alen);
        if ((c < 0) || ((c == 0) && (len <= alen))) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    memset(rep, 0, sizeof(*rep));
    for (end = lo; (end < l->n) && (end - lo < max); end++) {
        len = uf_ent_size(l->ents, l->off[end]);
        if (l->off[end] + len - l->off[lo] > UF_META_PAGE_BYTES) {
            break;
        }
    }
    *len_p = 0;
    if (end > lo) {
        *len_p = l->off[end - 1] + uf_ent_size(l->ents, l->off[end - 1]) - l->off[lo];
        memcpy(buf, l->ents + l->off[lo], *len_p);
    }
    rep->count = (uint32_t)(end - lo);
    rep->more  = (end < l->n);
}

static uf_listing_t *do_listing_find(uf_meta_t *meta, const char *prefix)
{
    uf_listing_t *l;

    for (l = meta->listings; l != NULL; l = l->next) {
        if (strcmp(l->prefix, prefix) == 0) {
            return l;
        }
    }
    return NULL;
}

/* Ask the origin for listing @p l (busy, meta->lock not held). */
static ucache_status_t uf_listing_fetch(uf_meta_t *meta, uf_listing_t *l)
{
    uf_collect_t c = { .limit = meta->mem_cap };
    us_origin_scope_t scope;
    ucache_status_t status;

    status = us_origin_confine(meta->allow, l->prefix, &scope);
    if (status != UCACHE_OK) {
        return status;
    }
    status = us_origin_list(meta->origin, l->prefix, uf_collect_one, &c);
    us_origin_unconfine();
    if (status == UCACHE_ERR_NO_MEMORY) {
        UC_WARN("the listing of '%.*s' is larger than UCACHE_META_MEM (%zu bytes): not "
                "kept; its readers list the origin themselves (a manifest would spare "
                "them: ucache manifest)", us_uri_loglen(l->prefix), l->prefix,
                meta->mem_cap);
    }
    if (status == UCACHE_OK) {
        pthread_mutex_lock(&meta->lock);
        meta->mem_used -= uf_listing_mem(l);
        status = uf_listing_take(l, &c);
        meta->mem_used += uf_listing_mem(l);
        pthread_mutex_unlock(&meta->lock);
    }
    free(c.ents);
    free(c.off);
    return status;
}

ucache_status_t uf_meta_page(uf_meta_t *meta, const char *prefix, const char *after,
                             unsigned max, uint64_t max_age_ns, bool wait, void *buf,
                             uf_meta_rep_t *rep_p, size_t *len_p)
{
    uint64_t ttl = uf_meta_ttl(meta, max_age_ns);
    ucache_status_t status;
    uf_listing_t *l;
    uint64_t now;
    bool ours;

    pthread_mutex_lock(&meta->lock);
    for (;;) {
        l   = do_listing_find(meta, prefix);
        now = uc_time_ns();
        if ((l != NULL) && !l->busy && (now - l->fetched_ns < ttl)) {
            do_listing_page(l, after, max, buf, rep_p, len_p);
            rep_p->age_ns = now - l->fetched_ns;
            l->used_ns    = now;
            pthread_mutex_unlock(&meta->lock);
            return UCACHE_OK;
        }
        if (!wait) {
            pthread_mutex_unlock(&meta->lock);
            return UCACHE_INPROGRESS;
        }
        if ((l == NULL) || !l->busy) {
            break;
        }
        pthread_cond_wait(&meta->listed, &meta->lock); /* one request for all */
    }
    ours = (l == NULL);
    if (ours) {
        l = calloc(1, sizeof(*l) + strlen(prefix) + 1);
        if (l == NULL) {
            pthread_mutex_unlock(&meta->lock);
            return UCACHE_ERR_NO_MEMORY;
        }
        memcpy(l->prefix, prefix, strlen(prefix) + 1);
        l->next        = meta->listings;
        meta->listings = l;
    }
    l->busy = true;
    pthread_mutex_unlock(&meta->lock);

    status = uf_listing_fetch(meta, l);

    pthread_mutex_lock(&meta->lock);
    l->busy       = false;
    l->fetched_ns = uc_time_ns();
    l->used_ns    = l->fetched_ns;
    pthread_cond_broadcast(&meta->listed);
    if (status == UCACHE_OK) {
        do_listing_trim(meta, l);
        do_listing_page(l, after, max, buf, rep_p, len_p);
    } else {
        do_listing_drop(meta, l); /* asked again by the next reader */
    }
    pthread_mutex_unlock(&meta->lock);
    return status;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */
/* ------------------------------------------------------------------------ */

/* Answer @p rpc: the result of @p req; false if, with @p wait false, it
 * must be asked of the origin (not answered). */
static bool uf_meta_answer(uf_meta_t *meta, ut_rpc_t *rpc, const uf_meta_req_t *req,
                           const char *uri, const char *after, bool wait)
{
    ucache_status_t status;
    uf_meta_rep_t rep;
    us_object_t obj;
    size_t len = 0;
    void *buf;

    memset(&rep, 0, sizeof(rep));
    memset(&obj, 0, sizeof(obj));
    if (UF_META_OP(req->op) == UF_META_STAT) {
        status = uf_meta_stat(meta, uri, req->stale, req->max_age_ns, &obj, &rep.age_ns);
        if (status == UCACHE_OK) {
            uf_meta_stat_rep(&obj, req->op & UF_META_MTIME, &rep);
        }
        atomic_fetch_add_explicit(&meta->served, 1, memory_order_relaxed);
        ut_rpc_reply(rpc, status, &rep, sizeof(rep), obj.etag,
                     (status == UCACHE_OK) ? rep.etag_len : 0, 0);
        return true;
    }
    buf = malloc(UF_META_PAGE_BYTES);
    status = (buf != NULL) ? uf_meta_page(meta, uri, after, req->max, req->max_age_ns, wait,
                                          buf, &rep, &len) :
                             UCACHE_ERR_NO_MEMORY;
    if ((status == UCACHE_OK) && !(req->op & UF_META_MTIME)) {
        uf_meta_ents_no_mtime(buf, len, rep.count); /* a reader of before them */
    }
    if (status != UCACHE_INPROGRESS) {
        atomic_fetch_add_explicit(&meta->served, 1, memory_order_relaxed);
        ut_rpc_reply(rpc, status, &rep, sizeof(rep), buf, (status == UCACHE_OK) ? len : 0, 0);
    }
    free(buf);
    return status != UCACHE_INPROGRESS;
}

static void *uf_meta_thread(void *arg)
{
    uf_meta_t *meta = arg;
    uf_meta_job_t *job;

    pthread_mutex_lock(&meta->lock);
    while (!meta->stop) {
        job = meta->qhead;
        if (job == NULL) {
            pthread_cond_wait(&meta->work, &meta->lock);
            continue;
        }
        meta->qhead = job->next;
        if (meta->qhead == NULL) {
            meta->qtail = NULL;
        }
        meta->queued--;
        pthread_mutex_unlock(&meta->lock);
        (void)uf_meta_answer(meta, job->rpc, &job->req, job->uri, job->after, true);
        free(job);
        pthread_mutex_lock(&meta->lock);
    }
    pthread_mutex_unlock(&meta->lock);
    return NULL;
}

/* Whether a STAT can be answered from the cache now (into the reply). */
static bool uf_meta_quick(uf_meta_t *meta, ut_rpc_t *rpc, const uf_meta_req_t *req,
                          const char *uri)
{
    uf_meta_rep_t rep;
    us_object_t obj;

    memset(&rep, 0, sizeof(rep));
    us_origin_params_t prm = *meta->origin;

    prm.meta_ttl_ns = uf_meta_ttl(meta, req->max_age_ns);
    if ((us_origin_meta_peek(&prm, uri, &obj, &rep.age_ns) != UCACHE_OK) ||
        ((req->stale != 0) && (obj.version == req->stale))) {
        return false;
    }
    uf_meta_stat_rep(&obj, req->op & UF_META_MTIME, &rep);
    atomic_fetch_add_explicit(&meta->served, 1, memory_order_relaxed);
    ut_rpc_reply(rpc, UCACHE_OK, &rep, sizeof(rep), obj.etag, rep.etag_len, 0);
    return true;
}

static void uf_meta_handler(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    uf_meta_t *meta = arg;
    const char *u, *a;
    uf_meta_job_t *job;
    uf_meta_req_t req;
    us_origin_scope_t scope;
    ucache_status_t status;
    us_key_t key;

    status = uf_meta_req_check(msg, len, &req, &u, &a);
    if (status != UCACHE_OK) {
        uf_node_bad_request(meta->node);
        UC_WARN("refused a %s META request (%zu bytes)",
                (status == UCACHE_ERR_PROTOCOL) ? "another protocol's" : "malformed", len);
        ut_rpc_reply(rpc, status, NULL, 0, NULL, 0, 0);
        return;
    }
    job = malloc(sizeof(*job));
    if (job == NULL) {
        ut_rpc_reply(rpc, UCACHE_ERR_NO_MEMORY, NULL, 0, NULL, 0, 0);
        return;
    }
    job->req = req;
    memcpy(job->uri, u, req.uri_len);
    job->uri[req.uri_len] = '\0';
    memcpy(job->after, a, req.after_len);
    job->after[req.after_len] = '\0';
    key = uf_meta_key(job->uri);
    if (uf_node_moved(meta->node, &key, req.epoch)) {
        ut_rpc_reply(rpc, UCACHE_ERR_MOVED, NULL, 0, NULL, 0, 0); /* the reader's view is behind */
        free(job);
        return;
    }
    status = us_origin_confine(meta->allow, job->uri, &scope); /* refused now, not later */
    us_origin_unconfine();
    if (status == UCACHE_OK) {
        if ((UF_META_OP(req.op) == UF_META_STAT) && uf_meta_quick(meta, rpc, &req, job->uri)) {
            free(job);
            return;
        }
        if ((UF_META_OP(req.op) == UF_META_LIST) &&
            uf_meta_answer(meta, rpc, &req, job->uri, job->after, false)) {
            free(job); /* a page of a listing kept */
            return;
        }
    }
    pthread_mutex_lock(&meta->lock);
    if ((status == UCACHE_OK) && (meta->queued >= UF_META_QUEUE)) {
        status = UCACHE_ERR_BUSY;
    }
    if ((status == UCACHE_OK) && (ut_rpc_defer(rpc, &job->rpc) == UCACHE_OK)) {
        job->next = NULL;
        if (meta->qtail != NULL) {
            meta->qtail->next = job;
        } else {
            meta->qhead = job;
        }
        meta->qtail = job;
        meta->queued++;
        pthread_cond_signal(&meta->work);
        pthread_mutex_unlock(&meta->lock);
        return;
    }
    pthread_mutex_unlock(&meta->lock);
    ut_rpc_reply(rpc, (status != UCACHE_OK) ? status : UCACHE_ERR_NO_MEMORY, NULL, 0, NULL,
                 0, 0);
    free(job);
}

ucache_status_t uf_meta_create(uf_node_t *node, ut_ctx_t *tr, const us_allow_t *allow,
                               const us_origin_params_t *origin, size_t mem_cap,
                               unsigned nthreads, uf_meta_t **meta_p)
{
    ucache_status_t status;
    uf_meta_t *meta;
    unsigned i;

    meta = calloc(1, sizeof(*meta));
    if (meta == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    meta->node    = node;
    meta->tr      = tr;
    meta->allow   = allow;
    meta->origin  = origin;
    meta->mem_cap = mem_cap;
    pthread_mutex_init(&meta->lock, NULL);
    pthread_cond_init(&meta->work, NULL);
    pthread_cond_init(&meta->listed, NULL);
    meta->threads = calloc(nthreads, sizeof(*meta->threads));
    status = (meta->threads != NULL) ? UCACHE_OK : UCACHE_ERR_NO_MEMORY;
    for (i = 0; (i < nthreads) && (status == UCACHE_OK); i++) {
        if (pthread_create(&meta->threads[i], NULL, uf_meta_thread, meta) != 0) {
            UC_ERROR("cannot start meta thread %u", i);
            status = UCACHE_ERR_NO_MEMORY;
            break;
        }
        meta->nthreads++;
    }
    if (status == UCACHE_OK) {
        status = ut_rpc_handler_set(tr, UF_RPC_META, uf_meta_handler, meta);
    }
    if (status != UCACHE_OK) {
        uf_meta_destroy(meta);
        return status;
    }
    *meta_p = meta;
    return UCACHE_OK;
}

void uf_meta_destroy(uf_meta_t *meta)
{
    uf_meta_job_t *job;
    unsigned i;

    if (meta == NULL) {
        return;
    }
    ut_rpc_handler_set(meta->tr, UF_RPC_META, NULL, NULL);
    pthread_mutex_lock(&meta->lock);
    meta->stop = true;
    pthread_cond_broadcast(&meta->work);
    pthread_mutex_unlock(&meta->lock);
    for (i = 0; i < meta->nthreads; i++) {
        pthread_join(meta->threads[i], NULL);
    }
    while ((job = meta->qhead) != NULL) { /* never started */
        meta->qhead = job->next;
        ut_rpc_reply(job->rpc, UCACHE_ERR_CANCELED, NULL, 0, NULL, 0, 0);
        free(job);
    }
    while (meta->listings != NULL) {
        do_listing_drop(meta, meta->listings);
    }
    free(meta->threads);
    pthread_cond_destroy(&meta->listed);
    pthread_cond_destroy(&meta->work);
    pthread_mutex_destroy(&meta->lock);
    free(meta);
}

uint64_t uf_meta_served(uf_meta_t *meta)
{
    return atomic_load_explicit(&meta->served, memory_order_relaxed);
}
