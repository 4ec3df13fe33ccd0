/*
 * node.c - the owner's service: a node store in exported memory, the FETCH
 * handler, and fill threads that read missing chunks from their origins.
 * Concurrent misses for one chunk are coalesced: the first creates a fill
 * job, later ones (remote or local) wait on it, so each chunk is read from
 * its origin once.  Replies to waiting readers are deferred RPC replies.
 *
 * Fill job life:   handler / fetch_local: job created, queued, waiters join
 *                    -> fill thread: reserve, origin read, publish
 *                    -> job leaves the table (new misses now hit the store)
 *                    -> every waiter answered; the last local waiter frees it
 * Lock order: the transport's lock (held while a handler runs) before
 * node->lock; a fill thread never holds node->lock while replying.
 */
#include "fabric/fabric.h"
#include "fabric/meta.h"
#include "fabric/quota.h"
#include "util/log.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#define UF_JOB_BUCKETS 1024

typedef struct uf_waiter {
    ut_rpc_t         *rpc;
    unsigned          flags;   /* the request's UF_FETCH_* */
    uf_fetch_span_t   span;    /* and the part of the chunk it wants */
    struct uf_waiter *next;
} uf_waiter_t;

typedef struct uf_job {
    struct uf_job   *hnext, *qnext;
    us_key_t         key;
    us_object_t      obj;
    uint64_t         idx;
    uint32_t         chunk_size;
    uf_waiter_t     *waiters;
    unsigned         local_waiters;
    bool             done;
    bool             pin;       /* a waiter pins it: read from NVMe, it goes
                                   into the memory tier (node->lock) */
    ucache_status_t  status;
    us_loc_t         loc;
    uint32_t         how;
    /* an NVMe thread's asynchronous read (uf_nvme_thread) */
    us_fill_t        fill;
    uint64_t         t0, deadline;
    char             uri[];
} uf_job_t;

/* Jobs waiting for a thread; `work` is signalled when one is queued or at
 * stop. */
typedef struct uf_queue {
    uf_job_t      *head, *tail;
    pthread_cond_t work;
} uf_queue_t;

enum { UF_Q_FILL = 0, UF_Q_NVME = 1 };

struct uf_node {
    ut_ctx_t        *tr;
    uc_config_t      cfg;
    ut_mem_t        *mem;
    us_store_t      *store;
    pthread_mutex_t  lock;
    uf_queue_t       q[2];      /* UF_Q_FILL: origin fills; UF_Q_NVME: reads of
                                   the NVMe tier, which never wait behind them */
    pthread_cond_t   done;      /* a job finished */
    uf_job_t        *table[UF_JOB_BUCKETS];
    unsigned         active;    /* jobs in the table */
    bool             stop;
    pthread_t       *threads;
    unsigned         nthreads;
    pthread_t       *committers; /* commit the store's memory (us_store_commit) */
    unsigned         ncommitters;
    _Atomic bool     commit_stop;
    pthread_t        demoter;   /* writes evicted chunks to NVMe (us_store_demote) */
    bool             demoting;
    _Atomic bool     demote_stop;
    uint64_t         nvme_bytes;/* the NVMe tier's capacity */
    uint32_t         max_payload;
    _Atomic bool     draining;  /* refuse fills: ucache drain */
    _Atomic(uf_moved_fn_t) moved_fn; /* refuse fills a newer view moved away */
    void * _Atomic   moved_arg;
    _Atomic(uf_lookup_fn_t) lookup_fn; /* an object's metadata, as readers find it */
    void * _Atomic   lookup_arg;
    us_allow_t       allow;     /* the origins it fills from (UCACHE_ALLOW) */
    uf_meta_t       *meta;      /* object metadata for readers (meta.c) */
    us_origin_params_t origin;  /* how it reads them (its context's settings) */
    _Atomic uint64_t denied_logged; /* when a refused admin operation was logged */
    uint64_t         pin_quota; /* bytes a reader's pins may hold per namespace */
    struct {
        _Atomic uint64_t fetches, fetch_hits, fills, fill_bytes, coalesced;
        _Atomic uint64_t fill_errors, bad_requests, touches, refused, busy, denied, moved;
        _Atomic uint64_t fill_us_bucket[UCACHE_FILL_BUCKETS], fill_us_sum;
    } st;
};

#define UF_NODE_ADD(_n, _f, _v) \
    atomic_fetch_add_explicit(&(_n)->st._f, (_v), memory_order_relaxed)

us_key_t uf_chunk_key(const char *uri, const us_object_t *obj, uint64_t idx,
                      size_t chunk_size)
{
    uint64_t tail[4] = { obj->version, obj->size, idx, chunk_size };
    XXH3_state_t st;
    XXH128_hash_t h;
    us_key_t k;

    XXH3_128bits_reset(&st);
    XXH3_128bits_update(&st, uri, strlen(uri));
    XXH3_128bits_update(&st, tail, sizeof(tail));
    h = XXH3_128bits_digest(&st);
    k.hi = h.high64;
    k.lo = h.low64;
    return k;
}

static uint32_t uf_job_length(const uf_job_t *job)
{
    uint64_t left = job->obj.size - job->idx * job->chunk_size;

    return (left < job->chunk_size) ? (uint32_t)left : job->chunk_size;
}

static unsigned uf_job_bucket(const us_key_t *key)
{
    return (unsigned)(key->lo & (UF_JOB_BUCKETS - 1));
}

/* node->lock held */
static uf_job_t *do_job_find(uf_node_t *node, const us_key_t *key)
{
    uf_job_t *j;

    for (j = node->table[uf_job_bucket(key)]; j != NULL; j = j->hnext) {
        if ((j->key.hi == key->hi) && (j->key.lo == key->lo)) {
            return j;
        }
    }
    return NULL;
}

/* node->lock held: queue @p job at @p q's tail. */
static void do_job_queue(uf_node_t *node, uf_job_t *job, unsigned q)
{
    job->qnext = NULL;
    if (node->q[q].tail != NULL) {
        node->q[q].tail->qnext = job;
    } else {
        node->q[q].head = job;
    }
    node->q[q].tail = job;
    pthread_cond_signal(&node->q[q].work);
}

/* node->lock held: a new job for the request, in the table and queued. */
static uf_job_t *do_job_create(uf_node_t *node, const uf_fetch_req_t *req,
                               const char *uri, size_t uri_len)
{
    uf_job_t *job = calloc(1, sizeof(*job) + uri_len + 1);
    unsigned b;

    if (job == NULL) {
        return NULL;
    }
    job->key.hi      = req->key_hi;
    job->key.lo      = req->key_lo;
    job->obj.size    = req->obj_size;
    job->obj.version = req->obj_version;
    job->idx         = req->chunk_idx;
    job->chunk_size  = req->chunk_size;
    memcpy(job->uri, uri, uri_len);
    b = uf_job_bucket(&job->key);
    job->hnext = node->table[b];
    node->table[b] = job;
    /* a chunk on this node's NVMe is a device read, not an origin fill */
    do_job_queue(node, job, ((node->nvme_bytes > 0) && us_store_on_nvme(node->store, &job->key)) ?
                            UF_Q_NVME : UF_Q_FILL);
    node->active++;
    return job;
}

/*
 * node->lock held: the fill job of @p req's key - the one under way
 * (*how_p UF_HOW_COALESCED), or a new one (UF_HOW_FILLED).  NULL with
 * *status_p: UCACHE_ERR_CANCELED (stopping), UCACHE_ERR_BUSY (the fill
 * queue is full: the reader backs off), UCACHE_ERR_NO_MEMORY.
 */
static uf_job_t *do_job_get(uf_node_t *node, const uf_fetch_req_t *req, const char *uri,
                            size_t uri_len, uint32_t *how_p, ucache_status_t *status_p)
{
    us_key_t key = { req->key_hi, req->key_lo };
    uf_job_t *job;

    *status_p = UCACHE_ERR_CANCELED;
    if (node->stop) {
        return NULL;
    }
    job = do_job_find(node, &key);
    if (job != NULL) {
        UF_NODE_ADD(node, coalesced, 1);
        *how_p = UF_HOW_COALESCED;
        job->pin |= (req->flags & UF_FETCH_PIN) != 0;
        return job;
    }
    if (node->active >= node->cfg.fill_queue) {
        UF_NODE_ADD(node, busy, 1);
        *status_p = UCACHE_ERR_BUSY;
        return NULL;
    }
    *how_p    = UF_HOW_FILLED;
    *status_p = UCACHE_ERR_NO_MEMORY;
    job = do_job_create(node, req, uri, uri_len);
    if (job != NULL) {
        job->pin = (req->flags & UF_FETCH_PIN) != 0;
    }
    return job;
}

/* Whether @p job's read from NVMe may be staged: not when a waiter pins
 * the chunk (a staged chunk's lease could end before the pin). */
static bool uf_job_may_stage(uf_node_t *node, const uf_job_t *job)
{
    bool pin;

    pthread_mutex_lock(&node->lock);
    pin = job->pin;
    pthread_mutex_unlock(&node->lock);
    return !pin;
}

/* node->lock held */
static void do_job_unlink(uf_node_t *node, uf_job_t *job)
{
    uf_job_t **pp = &node->table[uf_job_bucket(&job->key)];

    while (*pp != NULL) {
        if (*pp == job) {
            *pp = job->hnext;
            node->active--;
            return;
        }
        pp = &(*pp)->hnext;
    }
}

/*
 * The data of a FETCH reply for a part of a chunk: its segment table, then
 * the span asked for (checked against the chunk: a span that does not fit
 * it is refused).  Table and span lie together in the block when the span
 * starts the payload, and go uncopied; otherwise they are gathered here.
 */
static ucache_status_t uf_reply_span(uf_node_t *node, ut_rpc_t *rpc,
                                     const uf_fetch_rep_t *rep, const us_loc_t *loc,
                                     const uf_fetch_span_t *span)
{
    const char *table = (const char *)us_store_base(node->store) + loc->hdr_off + US_CHUNK_HDR;
    uint32_t tlen = us_chunk_table_bytes(loc->length);
    uint64_t end = (uint64_t)span->off + span->len;
    ucache_status_t status;
    char *buf;

    if ((end > loc->length) || ((end != loc->length) && (end % US_SEGMENT != 0))) {
        UF_NODE_ADD(node, bad_requests, 1);
        UC_WARN("refused a FETCH for bytes %u..%llu of a %u-byte chunk", span->off,
                (unsigned long long)end, loc->length);
        return ut_rpc_reply(rpc, UCACHE_ERR_INVALID, NULL, 0, NULL, 0, 0);
    }
    if (span->off == 0) {
        return ut_rpc_reply(rpc, UCACHE_OK, rep, sizeof(*rep), table, tlen + span->len,
                            UT_REPLY_DATA_STABLE);
    }
    buf = malloc(tlen + (size_t)span->len);
    if (buf == NULL) {
        return ut_rpc_reply(rpc, UCACHE_ERR_NO_MEMORY, NULL, 0, NULL, 0, 0);
    }
    us_copy_racy(buf, table, tlen);   /* the reader verifies what it gets */
    us_copy_racy(buf + tlen, table + tlen + span->off, span->len);
    status = ut_rpc_reply(rpc, UCACHE_OK, rep, sizeof(*rep), buf, tlen + span->len, 0);
    free(buf);
    return status;
}

static ucache_status_t uf_reply_loc(uf_node_t *node, ut_rpc_t *rpc, unsigned flags,
                                    const uf_fetch_span_t *span, ucache_status_t status,
                                    const us_loc_t *loc, uint32_t how)
{
    const char *base = us_store_base(node->store);
    uf_fetch_rep_t rep;

    /* unpin and evict are an admin's, not lookups: they stay out of the hit ratio */
    UF_NODE_ADD(node, fetches, !(flags & (UF_FETCH_UNPIN | UF_FETCH_EVICT)));
    if (status != UCACHE_OK) {
        return ut_rpc_reply(rpc, status, NULL, 0, NULL, 0, 0);
    }
    memset(&rep, 0, sizeof(rep));
    rep.version = loc->version;
    rep.hdr_off = loc->hdr_off;
    rep.length  = loc->length;
    rep.how     = how;
    if (!(flags & UF_FETCH_DATA)) {
        return ut_rpc_reply(rpc, UCACHE_OK, &rep, sizeof(rep), NULL, 0, 0);
    }
    /* The chunk stays where it is for at least a grace period after any
     * unpublish, and the reader verifies what arrives: send it uncopied. */
    us_copy_racy(&rep.hdr, base + loc->hdr_off, sizeof(rep.hdr));
    if ((flags & UF_FETCH_SPAN) && (span != NULL)) {
        return uf_reply_span(node, rpc, &rep, loc, span);
    }
    return ut_rpc_reply(rpc, UCACHE_OK, &rep, sizeof(rep), base + us_loc_payload_off(loc),
                        loc->length, UT_REPLY_DATA_STABLE);
}

/*
 * A raw FETCH: bytes of the exported region, for readers with no one-sided
 * path (the same bytes a get would read; the reader verifies what it uses).
 * Sent uncopied: the region outlives the reply (the transport keeps it
 * mapped until the send ends).
 */
static void uf_reply_raw(uf_node_t *node, ut_rpc_t *rpc, const uf_fetch_raw_t *raw)
{
    if ((raw->off > node->mem->len) || (raw->len > node->mem->len - raw->off)) {
        UF_NODE_ADD(node, bad_requests, 1);
        UC_WARN("refused a raw FETCH of %llu bytes at %llu: the region has %zu",
                (unsigned long long)raw->len, (unsigned long long)raw->off,
                node->mem->len);
        ut_rpc_reply(rpc, UCACHE_ERR_OUT_OF_RANGE, NULL, 0, NULL, 0, 0);
        return;
    }
    ut_rpc_reply(rpc, UCACHE_OK, NULL, 0, (const char *)node->mem->base + raw->off,
                 raw->len, UT_REPLY_DATA_STABLE);
}

/* What a FETCH's pin flags ask of a chunk that is present (warm-up).  A
 * reader's pins stay within its namespace's pin quota (UCACHE_PIN_QUOTA);
 * an admin's, and the node's own, only within the store's limit.
 * UCACHE_ERR_NOT_FOUND: the chunk to pin is gone since (evicted, or its
 * lease from NVMe ended). */
static ucache_status_t uf_pin_apply(uf_node_t *node, unsigned flags, const us_key_t *key,
                                    unsigned role)
{
    ucache_status_t status;

    if (flags & UF_FETCH_EVICT) { /* an admin's word: unpin it and drop it */
        us_store_pin(node->store, key, 0);
        status = us_store_evict(node->store, key);
        return (status == UCACHE_ERR_NOT_FOUND) ? UCACHE_OK : status; /* raced */
    }
    if (flags & UF_FETCH_NVME) {  /* warm-up to NVMe: out of memory, onto a device */
        status = us_store_demote_key(node->store, key);
        return ((status == UCACHE_ERR_UNSUPPORTED) || (status == UCACHE_ERR_NOT_FOUND)) ?
                   UCACHE_OK : status;   /* no tier: it stays in memory; raced: gone */
    }
    if (!(flags & (UF_FETCH_PIN | UF_FETCH_UNPIN))) {
        return UCACHE_OK;
    }
    status = us_store_pin_quota(node->store, key, (flags & UF_FETCH_PIN) ? 1 : 0,
                                (role >= UT_ROLE_ADMIN) ? 0 : node->pin_quota);
    if ((status == UCACHE_ERR_NOT_FOUND) && (flags & UF_FETCH_PIN)) {
        return status;
    }
    if ((status == UCACHE_ERR_NO_MEMORY) && (flags & UF_FETCH_PIN)) {
        UC_WARN("a chunk stays unpinned: pins may take 90%% of the memory at most, a "
                "reader's %u%% per dataset (UCACHE_PIN_QUOTA)", node->cfg.pin_quota_pct);
    }
    return status;
}

/* uf_pin_apply() once a fill has brought the chunk in: gone again before
 * its pin (memory under pressure), it stays unpinned. */
static ucache_status_t uf_pin_done(uf_node_t *node, unsigned flags, const us_key_t *key,
                                   unsigned role)
{
    ucache_status_t status = uf_pin_apply(node, flags, key, role);

    if (status == UCACHE_ERR_NOT_FOUND) {
        UC_WARN("a chunk stays unpinned: evicted before it could be pinned");
        status = UCACHE_ERR_NO_MEMORY;
    }
    return status;
}

/* An admin's unpin or evict of a chunk memory does not hold: its NVMe copy
 * (a restart keeps pins there), if there is one - UCACHE_OK and a location
 * of its length, else UCACHE_ERR_NOT_FOUND. */
static ucache_status_t uf_pin_nvme(uf_node_t *node, unsigned flags, const us_key_t *key,
                                   us_loc_t *loc_p)
{
    uint32_t len;

    memset(loc_p, 0, sizeof(*loc_p));
    if (!us_store_nvme_lookup(node->store, key, &len)) {
        return UCACHE_ERR_NOT_FOUND;
    }
    loc_p->length = len;
    us_store_pin(node->store, key, 0);
    return (flags & UF_FETCH_EVICT) ? us_store_evict(node->store, key) : UCACHE_OK;
}

/* Whether this node's own configuration lets it fill from @p uri. */
static ucache_status_t uf_fill_allowed(uf_node_t *node, const char *uri)
{
    bool named;

    if (us_allow_uri(&node->allow, uri, &named) != UCACHE_OK) {
        UF_NODE_ADD(node, refused, 1);
        UC_INFO("refused a fill from '%.*s': no UCACHE_ALLOW rule allows it",
                us_uri_loglen(uri), uri);
        return UCACHE_ERR_REFUSED;
    }
    return UCACHE_OK;
}

static void uf_fetch_handler(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    uf_node_t *node = arg;
    char uri[US_URI_MAX];
    uf_fetch_req_t req;
    uf_fetch_span_t span;
    uf_fetch_raw_t raw;
    ucache_status_t status;
    uf_waiter_t *w;
    const char *u;
    us_object_t obj;
    us_key_t key;
    us_loc_t loc;
    uf_job_t *job;
    uint32_t how;

    status = uf_fetch_req_check(msg, len, &req, &u, &span, &raw);
    if ((status == UCACHE_OK) && (req.flags & UF_FETCH_RAW)) {
        uf_reply_raw(node, rpc, &raw);
        return;
    }
    if (status == UCACHE_OK) {
        memcpy(uri, u, req.uri_len);
        uri[req.uri_len] = '\0';
        obj.size    = req.obj_size;
        obj.version = req.obj_version;
        key = uf_chunk_key(uri, &obj, req.chunk_idx, req.chunk_size);
        if ((key.hi != req.key_hi) || (key.lo != req.key_lo)) {
            status = UCACHE_ERR_INVALID;
        }
    }
    if (status == UCACHE_ERR_PROTOCOL) {
        UF_NODE_ADD(node, bad_requests, 1);
        UC_WARN("refused a FETCH of protocol version %u: this node speaks %u (a reader "
                "of another release; upgrade nodes and readers together)",
                (unsigned)req.version, UF_PROTO_VERSION);
        uf_reply_loc(node, rpc, 0, NULL, status, NULL, 0);
        return;
    }
    if (status != UCACHE_OK) {
        UF_NODE_ADD(node, bad_requests, 1);
        UC_WARN("refused a malformed FETCH request (%zu bytes)", len);
        uf_reply_loc(node, rpc, 0, NULL, status, NULL, 0);
        return;
    }
    if ((req.flags & (UF_FETCH_UNPIN | UF_FETCH_EVICT)) && (rpc->role < UT_ROLE_ADMIN)) {
        uf_node_denied(node, (req.flags & UF_FETCH_EVICT) ? "evict" : "unpin");
        uf_reply_loc(node, rpc, req.flags, NULL, UCACHE_ERR_AUTH, NULL, 0);
        return;
    }
    if ((us_store_lookup(node->store, &key, &loc) == UCACHE_OK) &&
        ((status = uf_pin_apply(node, req.flags, &key, rpc->role)) != UCACHE_ERR_NOT_FOUND)) {
        UF_NODE_ADD(node, fetch_hits, !(req.flags & (UF_FETCH_UNPIN | UF_FETCH_EVICT)));
        uf_reply_loc(node, rpc, req.flags, &span, status, &loc, UF_HOW_HIT);
        return;
    }                                /* (gone before its pin: read again, pinned) */
    if (req.flags & (UF_FETCH_UNPIN | UF_FETCH_EVICT)) { /* not in memory */
        status = uf_pin_nvme(node, req.flags, &key, &loc);
        uf_reply_loc(node, rpc, req.flags, NULL, status, &loc, UF_HOW_NVME);
        return;
    }
    if (atomic_load_explicit(&node->draining, memory_order_relaxed)) {
        uf_reply_loc(node, rpc, 0, NULL, UCACHE_ERR_MOVED, NULL, 0); /* drained: go elsewhere */
        return;
    }
    if (uf_node_moved(node, &key, req.epoch)) { /* the reader's view is behind ours */
        uf_reply_loc(node, rpc, 0, NULL, UCACHE_ERR_MOVED, NULL, 0);
        return;
    }
    status = uf_fill_allowed(node, uri);
    if (status != UCACHE_OK) {
        uf_reply_loc(node, rpc, 0, NULL, status, NULL, 0);
        return;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        uf_reply_loc(node, rpc, 0, NULL, UCACHE_ERR_NO_MEMORY, NULL, 0);
        return;
    }
    pthread_mutex_lock(&node->lock);
    job = do_job_get(node, &req, uri, req.uri_len, &how, &status);
    if ((job == NULL) || (ut_rpc_defer(rpc, &w->rpc) != UCACHE_OK)) {
        pthread_mutex_unlock(&node->lock);
        free(w);
        uf_reply_loc(node, rpc, 0, NULL, status, NULL, 0);
        return;
    }
    w->flags = req.flags;
    w->span  = span;
    w->next  = job->waiters;
    job->waiters = w;
    pthread_mutex_unlock(&node->lock);
}

void uf_node_touch(uf_node_t *node, const us_key_t *keys, unsigned n, unsigned weight,
                   uint64_t hits)
{
    us_store_touch(node->store, keys, n, weight);
    UF_NODE_ADD(node, touches, hits);
}

static void uf_touch_handler(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    us_key_t keys[UF_TOUCH_MAX];
    uf_node_t *node = arg;
    uf_touch_req_t req;

    if (uf_touch_req_check(msg, len, &req) != UCACHE_OK) {
        UF_NODE_ADD(node, bad_requests, 1);
        UC_WARN("refused a malformed TOUCH request (%zu bytes)", len);
        ut_rpc_reply(rpc, UCACHE_ERR_INVALID, NULL, 0, NULL, 0, 0);
        return;
    }
    memcpy(keys, (const char *)msg + sizeof(req), req.count * sizeof(us_key_t));
    uf_node_touch(node, keys, req.count, req.weight,
                  (req.hits != 0) ? req.hits : req.count * req.weight);
    ut_rpc_reply(rpc, UCACHE_OK, NULL, 0, NULL, 0, 0);
}

/* Fill one chunk: reserve (waiting out grace periods), read, publish. */

/* A FETCH names the object's version, not its ETag: the origin needs the
 * ETag for If-Match, and asks for it (a HEAD) unless this process knows
 * it.  With the context's lookup (UCACHE_META=fabric) the object's metadata
 * owner answers - the one request per TTL every reader shares - and the
 * fill sends its ETag when the version is the one asked for. */
static void uf_fill_etag(uf_node_t *node, uf_job_t *job)
{
    uf_lookup_fn_t fn = atomic_load_explicit(&node->lookup_fn, memory_order_acquire);
    us_object_t cur;

    if ((job->obj.etag[0] == '\0') && (fn != NULL) && us_origin_by_etag(job->uri) &&
        (fn(atomic_load_explicit(&node->lookup_arg, memory_order_relaxed), job->uri,
            &cur) == UCACHE_OK) &&
        (cur.version == job->obj.version) && (cur.size == job->obj.size)) {
        memcpy(job->obj.etag, cur.etag, sizeof(cur.etag));
    }
}

static ucache_status_t uf_fill(uf_node_t *node, uf_job_t *job, us_loc_t *loc_p,
                               uint32_t *how_p)
{
    uint64_t deadline = uc_deadline(node->cfg.fetch_timeout_ns), wait;
    uint32_t length = uf_job_length(job);
    bool nvme, tried = false, staged = false;
    ucache_status_t status;
    struct timespec ts;
    us_fill_t fill;

    for (;;) {
        /* (looked at each time: the demoter may write it while we wait) */
        nvme   = !tried && us_store_on_nvme(node->store, &job->key);
        status = nvme ? us_store_reserve_nvme(node->store, &job->key, uf_ns_of(job->uri),
                                              length, uf_job_may_stage(node, job), &fill,
                                              &staged) :
                        us_store_reserve(node->store, &job->key, uf_ns_of(job->uri), length,
                                         &fill);
        if ((status == UCACHE_OK) && nvme) {
            /* on this node's NVMe: read from the device, verified there */
            if (us_store_fill_nvme(node->store, &fill) == UCACHE_OK) {
                *how_p = UF_HOW_NVME;
                return us_store_publish_at(node->store, &fill, loc_p);
            }
            us_store_abort(node->store, &fill);   /* gone or bad: the origin's */
            tried = true;
            continue;
        }
        if ((status == UCACHE_OK) &&
            (us_store_fill_pending(node->store, &fill) == UCACHE_OK)) {
            *how_p = UF_HOW_HIT;     /* still in memory, on its way to NVMe */
            return us_store_publish_at(node->store, &fill, loc_p);
        }
        if ((status == UCACHE_OK) && !tried && us_store_on_nvme(node->store, &job->key)) {
            /* its way to NVMe ended between the two looks: read it there
             * (CI's make asan met 2 chunks read from the origin again) */
            us_store_abort(node->store, &fill);
            continue;
        }
        if (status == UCACHE_OK) {
            break;
        }
        if (status == UCACHE_ERR_EXISTS) {
            *how_p = UF_HOW_HIT;
            status = us_store_lookup(node->store, &job->key, loc_p);
            if (status != UCACHE_ERR_NOT_FOUND) {
                return status;
            }
            status = UCACHE_ERR_AGAIN; /* evicted since: fill it after all */
        }
        if (((status != UCACHE_ERR_AGAIN) && (status != UCACHE_INPROGRESS)) ||
            (uc_time_ns() > deadline)) {
            return status;
        }
        wait = us_store_retry_ns(node->store);
        wait = (wait > uc_time_ns()) ? wait - uc_time_ns() : 0;
        wait = (wait < 100000) ? 100000 : (wait > 10000000) ? 10000000 : wait;
        ts.tv_sec  = 0;
        ts.tv_nsec = (long)wait;
        nanosleep(&ts, NULL);
    }
    uf_fill_etag(node, job);
    status = us_origin_fill(&node->origin, &node->allow, job->uri, &job->obj,
                            job->idx * job->chunk_size, fill.payload, length);
    if (status != UCACHE_OK) {
        us_store_abort(node->store, &fill);
        return status;
    }
    UF_NODE_ADD(node, fills, 1);
    UF_NODE_ADD(node, fill_bytes, length);
    status = us_store_publish_at(node->store, &fill, loc_p);
    *how_p = UF_HOW_FILLED;
    return status;
}

/* The job is out of the table: answer its waiters, wake local ones. */
static void uf_job_finish(uf_node_t *node, uf_job_t *job)
{
    uf_waiter_t *w, *next;
    bool free_now;

    pthread_mutex_lock(&node->lock);
    w = job->waiters;
    job->waiters = NULL;
    pthread_mutex_unlock(&node->lock);
    for (; w != NULL; w = next) {
        next = w->next;
        uf_reply_loc(node, w->rpc, w->flags, &w->span,
                     (job->status == UCACHE_OK) ?
                         uf_pin_done(node, w->flags, &job->key, w->rpc->role) : job->status,
                     &job->loc,
                     (w->next == NULL) ? job->how : UF_HOW_COALESCED);
        free(w);
    }
    pthread_mutex_lock(&node->lock);
    job->done = true;
    free_now  = (job->local_waiters == 0);
    pthread_cond_broadcast(&node->done);
    pthread_mutex_unlock(&node->lock);
    if (free_now) {
        free(job);
    }
}

/* A fill of @p us microseconds, into the histogram. */
static void uf_fill_timed(uf_node_t *node, uint64_t us)
{
    unsigned b = 0;

    while ((b + 1 < UCACHE_FILL_BUCKETS) && (us > UCACHE_FILL_BUCKET_US(b))) {
        b++;
    }
    UF_NODE_ADD(node, fill_us_bucket[b], 1);
    UF_NODE_ADD(node, fill_us_sum, us);
}

/* A job's work is done (job->status, loc, how set): count it, take it out
 * of the table, answer its waiters. */
static void uf_job_done(uf_node_t *node, uf_job_t *job, uint64_t t0)
{
    if (job->status == UCACHE_OK) {
        uf_fill_timed(node, (uc_time_ns() - t0) / 1000);
    }
    if (job->status == UCACHE_ERR_REFUSED) {
        UF_NODE_ADD(node, refused, 1);  /* not a regular file, a private address */
    } else if (job->status != UCACHE_OK) {
        UF_NODE_ADD(node, fill_errors, 1);
        UC_INFO("fill of chunk %llu of %.*s failed: %s",
                (unsigned long long)job->idx, us_uri_loglen(job->uri), job->uri,
                ucache_strerror(job->status));
    }
    pthread_mutex_lock(&node->lock);
    do_job_unlink(node, job); /* published: new misses find it stored */
    pthread_mutex_unlock(&node->lock);
    uf_job_finish(node, job);
}

/* A fill or NVMe thread: the jobs of queue @p q until stop. */
static void uf_worker(uf_node_t *node, uf_queue_t *q)
{
    uf_job_t *job;
    uint64_t t0;

    for (;;) {
        pthread_mutex_lock(&node->lock);
        while (!node->stop && (q->head == NULL)) {
            pthread_cond_wait(&q->work, &node->lock);
        }
        job = q->head;
        if (node->stop || (job == NULL)) {
            pthread_mutex_unlock(&node->lock);
            return;
        }
        q->head = job->qnext;
        if (q->head == NULL) {
            q->tail = NULL;
        }
        pthread_mutex_unlock(&node->lock);

        t0 = uc_time_ns();
        job->status = uf_fill(node, job, &job->loc, &job->how);
        uf_job_done(node, job, t0);
    }
}

static void *uf_fill_thread(void *arg)
{
    uf_node_t *node = arg;

    uf_worker(node, &node->q[UF_Q_FILL]);
    return NULL;
}

/* What an NVMe thread cannot read asynchronously goes to the fill threads'
 * synchronous path: it reads the other devices, or the origin. */
static void uf_job_to_fill(uf_node_t *node, uf_job_t *job)
{
    pthread_mutex_lock(&node->lock);
    do_job_queue(node, job, UF_Q_FILL);
    pthread_mutex_unlock(&node->lock);
}

/* A read from NVMe ended (us_nvme_aio_reap): publish, or hand the job on. */
static void uf_nvme_done(void *arg, uint64_t tag, ucache_status_t status)
{
    uf_job_t *job = (uf_job_t *)(uintptr_t)tag;
    uf_node_t *node = arg;

    us_store_nvme_read_done(node->store, status);
    if (status != UCACHE_OK) {
        us_store_abort(node->store, &job->fill);  /* gone or bad: the origin's */
        uf_job_to_fill(node, job);
        return;
    }
    job->how    = UF_HOW_NVME;
    job->status = us_store_publish_at(node->store, &job->fill, &job->loc);
    uf_job_done(node, job, job->t0);
}

/* Start @p job's read on @p aio.  false: not started yet (memory is on its
 * way back: the caller tries again later); otherwise it is in flight,
 * done, or handed on. */
static bool uf_nvme_begin(uf_node_t *node, us_nvme_aio_t *aio, uf_job_t *job)
{
    ucache_status_t status;
    bool staged = false;

    status = us_store_reserve_nvme(node->store, &job->key, uf_ns_of(job->uri),
                                   uf_job_length(job), uf_job_may_stage(node, job),
                                   &job->fill, &staged);
    if (status == UCACHE_OK) {
        if (us_store_nvme_start(node->store, aio, &job->fill, (uintptr_t)job) == UCACHE_OK) {
            return true;
        }
        us_store_abort(node->store, &job->fill);
        uf_job_to_fill(node, job);
        return true;
    }
    if ((status == UCACHE_ERR_AGAIN) || (status == UCACHE_INPROGRESS)) {
        if (uc_time_ns() <= job->deadline) {
            return false;
        }
    } else if (status == UCACHE_ERR_EXISTS) {
        job->how = UF_HOW_HIT;     /* in memory already (promoted, or filled) */
        status = us_store_lookup(node->store, &job->key, &job->loc);
        if (status == UCACHE_ERR_NOT_FOUND) {
            uf_job_to_fill(node, job);     /* evicted since */
            return true;
        }
    }
    job->status = status;
    uf_job_done(node, job, job->t0);
    return true;
}

#define UF_NVME_DEPTH   64         /* reads in flight per NVMe thread, at most */
#define UF_NVME_BUF     (16u << 20)/* their buffer: fewer reads of larger chunks */
#define UF_NVME_POLL_NS 200000     /* with reads in flight, the queue is looked
                                      at again at least this often */

/*
 * An NVMe thread: the jobs of the NVMe queue read asynchronously - up to
 * UF_NVME_DEPTH in flight on its own io_uring, submitted together,
 * published and answered from their completions; no thread waits on a
 * device read.  Jobs whose memory is on its way back wait on its list.
 */
static void *uf_nvme_thread(void *arg)
{
    uf_node_t *node = arg;
    uf_queue_t *q = &node->q[UF_Q_NVME];
    uf_job_t *wait = NULL, *job, *next, *take;
    us_nvme_aio_t *aio = NULL;
    struct timespec ts = { 0, 100000 };
    unsigned room;
    bool stop;

    uint64_t slot = us_nvme_rec_size(node->max_payload);
    unsigned depth = (unsigned)((UF_NVME_BUF / slot < 1) ? 1 :
                                (UF_NVME_BUF / slot > UF_NVME_DEPTH) ? UF_NVME_DEPTH :
                                                                       UF_NVME_BUF / slot);

    if (us_nvme_aio_create(depth, node->max_payload, &aio) != UCACHE_OK) {
        UC_WARN("an NVMe thread reads one chunk at a time (no io_uring of %u entries)",
                depth);
        uf_worker(node, q);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&node->lock);
        while (!node->stop && (q->head == NULL) && (wait == NULL) &&
               (us_nvme_aio_busy(aio) == 0)) {
            pthread_cond_wait(&q->work, &node->lock);
        }
        stop = node->stop;
        room = us_nvme_aio_room(aio);
        for (job = wait; job != NULL; job = job->qnext) {
            room -= (room > 0);      /* the waiting ones come first */
        }
        take = NULL;
        while (!stop && (room > 0) && (q->head != NULL)) {
            job = q->head;
            q->head = job->qnext;
            if (q->head == NULL) {
                q->tail = NULL;
            }
            job->t0       = uc_time_ns();
            job->deadline = uc_deadline(node->cfg.fetch_timeout_ns);
            job->qnext    = take;
            take = job;
            room--;
        }
        pthread_mutex_unlock(&node->lock);
        if (stop && (us_nvme_aio_busy(aio) == 0)) {
            break;
        }
        if (!stop) {                 /* the waiting ones, then the new ones */
            for (job = wait; job != NULL; job = next) {
                next = job->qnext;
                job->qnext = take;
                take = job;
            }
            wait = NULL;
        }
        for (job = take; job != NULL; job = next) {
            next = job->qnext;
            if (!uf_nvme_begin(node, aio, job)) {
                job->qnext = wait;
                wait = job;
            }
        }
        if (us_nvme_aio_busy(aio) > 0) {
            us_nvme_aio_reap(aio, UF_NVME_POLL_NS, uf_nvme_done, node);
        } else if (wait != NULL) {
            nanosleep(&ts, NULL);
        }
    }
    for (job = wait; job != NULL; job = next) {   /* stopping */
        next = job->qnext;
        job->status = UCACHE_ERR_CANCELED;
        uf_job_done(node, job, job->t0);
    }
    us_nvme_aio_destroy(aio);
    return NULL;
}

static ucache_status_t uf_fetch_local(uf_node_t *node, const uf_fetch_req_t *req,
                                      const char *uri, us_loc_t *loc_p, uint32_t *how_p)
{
    ucache_status_t status;
    us_key_t key = { req->key_hi, req->key_lo };
    uf_job_t *job;
    bool free_now;

    *how_p = UF_HOW_HIT;
    if (us_store_lookup(node->store, &key, loc_p) == UCACHE_OK) {
        return UCACHE_OK;
    }
    if (req->flags & (UF_FETCH_UNPIN | UF_FETCH_EVICT)) {
        *how_p = UF_HOW_NVME;
        return uf_pin_nvme(node, req->flags, &key, loc_p);
    }
    if (atomic_load_explicit(&node->draining, memory_order_relaxed)) {
        return UCACHE_ERR_MOVED;
    }
    status = uf_fill_allowed(node, uri);
    if (status != UCACHE_OK) {
        return status;
    }
    pthread_mutex_lock(&node->lock);
    job = do_job_get(node, req, uri, strlen(uri), how_p, &status);
    if (job == NULL) {
        pthread_mutex_unlock(&node->lock);
        return status;
    }
    job->local_waiters++;
    while (!job->done) {
        pthread_cond_wait(&node->done, &node->lock);
    }
    status = job->status;
    *loc_p = job->loc;
    free_now = (--job->local_waiters == 0);
    pthread_mutex_unlock(&node->lock);
    if (free_now) {
        free(job);
    }
    return status;
}

ucache_status_t uf_node_fetch_local(uf_node_t *node, const uf_fetch_req_t *req,
                                    const char *uri, us_loc_t *loc_p, uint32_t *how_p)
{
    us_key_t key = { req->key_hi, req->key_lo };
    ucache_status_t status = uf_fetch_local(node, req, uri, loc_p, how_p);

    /* the node's own reads: its own rights */
    return (status == UCACHE_OK) ? uf_pin_done(node, req->flags, &key, UT_ROLE_ADMIN) :
                                   status;
}

/*
 * A node serves as soon as its index and first UF_COMMIT_FIRST bytes are
 * committed; these threads commit the rest of its memory (fault it in,
 * lock it) in parallel, and the store hands each segment to the allocator
 * as it is done.  Start-up then costs the same at 1 GiB and at 1 TiB.
 */
#define UF_COMMIT_FIRST (128u << 20)

#define UF_NVME_FLUSH_NS (10ull * UC_NSEC_PER_SEC)  /* at most, at a node's stop */

/* The demoter: chunks memory evicted go to NVMe, staged chunks' leases end. */
static void *uf_demote_thread(void *arg)
{
    uf_node_t *node = arg;

    while (!atomic_load(&node->demote_stop)) {
        us_store_demote(node->store, 64, 20000000);
    }
    return NULL;
}

/*
 * Open the devices of UCACHE_NVME ("PATH[:SIZE],..."): each is checked,
 * its index rebuilt from what it holds, or formatted.  A device that cannot
 * be opened stops the node: the operator named it.
 */
/* The datasets' quotas (UCACHE_QUOTA): PCT of the memory and of each
 * device, so a chunk is held to its dataset's share on either tier. */
static void uf_quota_apply(uf_node_t *node, const uf_quota_t *q, us_nvme_t **nv,
                           unsigned nnv)
{
    uint64_t mem, dev = 0;
    us_nvme_stats_t st;
    unsigned r, i;

    for (r = 0; r < q->n; r++) {
        mem = node->cfg.mem_bytes / 100 * q->rule[r].pct;
        us_store_quota_set(node->store, q->rule[r].ns, mem);
        for (i = 0; i < nnv; i++) {
            us_nvme_stats(nv[i], &st);
            us_nvme_quota_set(nv[i], q->rule[r].ns, st.dev_bytes / 100 * q->rule[r].pct);
            dev += st.dev_bytes / 100 * q->rule[r].pct;
        }
        UC_INFO("quota: %s may hold %u%% of each tier: %.1f MiB of memory, %.1f MiB of "
                "NVMe (%u device(s))", q->rule[r].root, q->rule[r].pct, mem / 1048576.0,
                dev / 1048576.0, nnv);
        dev = 0;
    }
}

static ucache_status_t uf_nvme_open(uf_node_t *node, uint32_t max_payload,
                                    us_nvme_t **nv, unsigned *n_p)
{
    char list[sizeof(node->cfg.nvme)], *save = NULL, *e, *colon;
    us_nvme_params_t np;
    us_nvme_stats_t st;
    ucache_status_t status;
    uint64_t bytes;
    unsigned n = 0;

    snprintf(list, sizeof(list), "%s", node->cfg.nvme);
    for (e = strtok_r(list, ",", &save); e != NULL; e = strtok_r(NULL, ",", &save)) {
        if (n == US_MAX_NVME) {
            UC_ERROR("UCACHE_NVME names more than %u devices", US_MAX_NVME);
            status = UCACHE_ERR_INVALID;
            goto err;
        }
        bytes = 0;
        colon = strrchr(e, ':');
        if ((colon != NULL) && (uc_parse_size(colon + 1, &bytes) == UCACHE_OK)) {
            *colon = '\0';
        }
        memset(&np, 0, sizeof(np));
        np.path        = e;
        np.bytes       = bytes;
        np.max_payload = max_payload;
        np.contexts    = node->cfg.fetch_threads + node->cfg.nvme_threads;
        status = us_nvme_open(&np, &nv[n]);
        if (status != UCACHE_OK) {
            UC_ERROR("NVMe tier: %s: %s", e, ucache_strerror(status));
            goto err;
        }
        us_nvme_stats(nv[n], &st);
        node->nvme_bytes += st.dev_bytes;
        UC_INFO("NVMe tier: %s, %.1f GiB, %llu chunks found (%.3f s)", e,
                st.dev_bytes / 1073741824.0, (unsigned long long)st.records,
                st.rebuild_ns / 1e9);
        n++;
    }
    *n_p = n;
    return UCACHE_OK;

err:
    while (n > 0) {
        us_nvme_close(nv[--n]);
    }
    return status;
}

static void *uf_commit_thread(void *arg)
{
    uf_node_t *node = arg;

    while (!atomic_load(&node->commit_stop) && (us_store_commit(node->store) > 0)) {
    }
    return NULL;
}

static void uf_commit_start(uf_node_t *node)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = node->cfg.commit_threads, i;

    if (n == 0) {
        n = (ncpu < 1) ? 1 : (ncpu > 8) ? 8 : (unsigned)ncpu;
    }
    node->committers = calloc(n, sizeof(*node->committers));
    for (i = 0; (node->committers != NULL) && (i < n); i++) {
        if (pthread_create(&node->committers[i], NULL, uf_commit_thread, node) != 0) {
            break;
        }
        node->ncommitters++;
    }
    if (node->ncommitters == 0) {    /* no thread: commit it all now */
        UC_WARN("cannot start threads to commit memory; committing it before serving");
        uf_commit_thread(node);
    }
}

ucache_status_t uf_node_create(ut_ctx_t *tr, const uc_config_t *cfg,
                               const us_origin_params_t *origin, uf_node_t **node_p)
{
    us_nvme_t *nv[US_MAX_NVME];
    us_store_params_t sp;
    ucache_status_t status;
    unsigned i, nnv = 0, nthr;
    uf_quota_t quota;
    uf_node_t *node;

    node = calloc(1, sizeof(*node));
    if (node == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    node->tr     = tr;
    node->cfg    = *cfg;
    if (origin != NULL) {
        node->origin = *origin;
    } else {
        us_origin_params_default(&node->origin);
    }
    node->pin_quota = cfg->mem_bytes / 100 * cfg->pin_quota_pct;
    status = us_allow_parse(cfg->allow, &node->allow);
    if (status == UCACHE_OK) {
        status = uf_quota_parse(cfg->quota, &quota);
    }
    if (status != UCACHE_OK) {
        free(node);
        return status;
    }
    pthread_mutex_init(&node->lock, NULL);
    pthread_cond_init(&node->q[UF_Q_FILL].work, NULL);
    pthread_cond_init(&node->q[UF_Q_NVME].work, NULL);
    pthread_cond_init(&node->done, NULL);
    status = ut_mem_export(tr, cfg->mem_bytes, &node->mem);
    if (status != UCACHE_OK) {
        goto err;
    }
    memset(&sp, 0, sizeof(sp));
    sp.base        = node->mem->base;
    sp.len         = node->mem->len;
    sp.grace_ns    = cfg->grace_ns;
    sp.index_chunk = cfg->index_chunk;
    sp.max_payload = (cfg->chunk_size < US_MAX_PAYLOAD) ? (size_t)cfg->chunk_size :
                                                          US_MAX_PAYLOAD;
    sp.lock        = cfg->mem_lock;
    sp.commit_first = UF_COMMIT_FIRST;
    node->max_payload = (uint32_t)sp.max_payload;
    status = uf_nvme_open(node, (uint32_t)sp.max_payload, nv, &nnv);
    if (status != UCACHE_OK) {
        goto err;
    }
    if (nnv > 0) {
        /* an eighth of memory, and room for 8 chunks (the store caps it at
         * a quarter) */
        sp.stage_bytes    = cfg->nvme_stage ? cfg->nvme_stage :
                            (cfg->mem_bytes / 8 > 8 * sp.max_payload) ? cfg->mem_bytes / 8 :
                                                                       8 * sp.max_payload;
        sp.nvme_lease_ns  = cfg->nvme_lease_ns;
        sp.nvme_window_ns = cfg->nvme_window_ns;
    }
    status = us_store_create(&sp, &node->store);
    if (status != UCACHE_OK) {
        while (nnv > 0) {
            us_nvme_close(nv[--nnv]);
        }
        goto err;
    }
    for (i = 0; i < nnv; i++) {
        us_store_nvme_add(node->store, nv[i]);   /* the store closes them */
    }
    uf_quota_apply(node, &quota, nv, nnv);
    if (nnv > 0) {
        if (pthread_create(&node->demoter, NULL, uf_demote_thread, node) != 0) {
            status = UCACHE_ERR_NO_MEMORY;
            goto err;
        }
        node->demoting = true;
    }
    uf_commit_start(node);
    nthr = cfg->fetch_threads + ((nnv > 0) ? cfg->nvme_threads : 0);
    node->threads = calloc(nthr, sizeof(*node->threads));
    if (node->threads == NULL) {
        status = UCACHE_ERR_NO_MEMORY;
        goto err;
    }
    for (i = 0; i < nthr; i++) {
        if (pthread_create(&node->threads[i], NULL,
                           (i < cfg->fetch_threads) ? uf_fill_thread : uf_nvme_thread,
                           node) != 0) {
            UC_ERROR("cannot start fill thread %u", i);
            status = UCACHE_ERR_NO_MEMORY;
            goto err;
        }
        node->nthreads++;
    }
    status = ut_rpc_handler_set(tr, UF_RPC_FETCH, uf_fetch_handler, node);
    if (status == UCACHE_OK) {
        status = ut_rpc_handler_set(tr, UF_RPC_TOUCH, uf_touch_handler, node);
    }
    if (status == UCACHE_OK) {
        status = uf_meta_create(node, tr, &node->allow, &node->origin, cfg->meta_mem,
                                cfg->fetch_threads, &node->meta);
    }
    if (status != UCACHE_OK) {
        goto err;
    }
    *node_p = node;
    return UCACHE_OK;

err:
    uf_node_destroy(node);
    return status;
}

void uf_node_set_draining(uf_node_t *node, bool draining)
{
    atomic_store(&node->draining, draining);
}

bool uf_node_draining(uf_node_t *node)
{
    return atomic_load(&node->draining);
}

void uf_node_denied(uf_node_t *node, const char *what)
{
    uint64_t now = uc_time_ns(), last = atomic_load(&node->denied_logged);

    UF_NODE_ADD(node, denied, 1);
    if ((now - last >= UC_NSEC_PER_SEC) &&
        atomic_compare_exchange_strong(&node->denied_logged, &last, now)) {
        UC_WARN("refused %s: it needs the admin key (UCACHE_ADMIN_KEY_FILE); %llu "
                "admin operations refused so far", what,
                (unsigned long long)atomic_load(&node->st.denied));
    }
}

void uf_node_bad_request(uf_node_t *node)
{
    UF_NODE_ADD(node, bad_requests, 1);
}

void uf_node_drain(uf_node_t *node, uint64_t timeout_ns)
{
    uint64_t deadline = uc_deadline(timeout_ns);
    struct timespec ts = { 0, 5000000 };

    while ((node != NULL) && (uc_time_ns() < deadline)) {
        pthread_mutex_lock(&node->lock);
        if (node->active == 0) {
            pthread_mutex_unlock(&node->lock);
            return;
        }
        pthread_mutex_unlock(&node->lock);
        nanosleep(&ts, NULL);
    }
}

void uf_node_destroy(uf_node_t *node)
{
    uf_job_t *job;
    unsigned i;

    if (node == NULL) {
        return;
    }
    atomic_store(&node->commit_stop, true);
    for (i = 0; i < node->ncommitters; i++) {
        pthread_join(node->committers[i], NULL);
    }
    free(node->committers);
    uf_meta_destroy(node->meta);
    ut_rpc_handler_set(node->tr, UF_RPC_FETCH, NULL, NULL);
    ut_rpc_handler_set(node->tr, UF_RPC_TOUCH, NULL, NULL);
    pthread_mutex_lock(&node->lock);
    node->stop = true;
    pthread_cond_broadcast(&node->q[UF_Q_FILL].work);
    pthread_cond_broadcast(&node->q[UF_Q_NVME].work);
    pthread_mutex_unlock(&node->lock);
    for (i = 0; i < node->nthreads; i++) {
        pthread_join(node->threads[i], NULL);
    }
    atomic_store(&node->demote_stop, true);
    if (node->demoting) {
        pthread_join(node->demoter, NULL);
        /* what memory holds goes to NVMe too: a restart serves it again */
        us_store_nvme_flush(node->store, UF_NVME_FLUSH_NS);
    }
    /* jobs never started: answer their waiters with CANCELED */
    for (i = 0; i < 2; i++) {
        while ((job = node->q[i].head) != NULL) {
            node->q[i].head = job->qnext;
            pthread_mutex_lock(&node->lock);
            do_job_unlink(node, job);
            pthread_mutex_unlock(&node->lock);
            job->status = UCACHE_ERR_CANCELED;
            uf_job_finish(node, job);
        }
    }
    free(node->threads);
    us_store_destroy(node->store);
    ut_mem_destroy(node->mem);
    pthread_cond_destroy(&node->q[UF_Q_FILL].work);
    pthread_cond_destroy(&node->q[UF_Q_NVME].work);
    pthread_cond_destroy(&node->done);
    pthread_mutex_destroy(&node->lock);
    free(node);
}

uint64_t uf_node_nvme_bytes(uf_node_t *node)
{
    return (node != NULL) ? node->nvme_bytes : 0;
}

us_store_t *uf_node_store(uf_node_t *node)
{
    return node->store;
}

ucache_status_t uf_node_rkey(uf_node_t *node, const void **blob_p, size_t *len_p)
{
    return ut_mem_pack(node->mem, blob_p, len_p);
}

void uf_node_stats(uf_node_t *node, uf_node_stats_t *s)
{
    s->fetches      = atomic_load(&node->st.fetches);
    s->fetch_hits   = atomic_load(&node->st.fetch_hits);
    for (unsigned b = 0; b < UCACHE_FILL_BUCKETS; b++) {
        s->fill_us_bucket[b] = atomic_load(&node->st.fill_us_bucket[b]);
    }
    s->fill_us_sum  = atomic_load(&node->st.fill_us_sum);
    s->fills        = atomic_load(&node->st.fills);
    s->fill_bytes   = atomic_load(&node->st.fill_bytes);
    s->coalesced    = atomic_load(&node->st.coalesced);
    s->fill_errors  = atomic_load(&node->st.fill_errors);
    s->bad_requests = atomic_load(&node->st.bad_requests);
    s->touches      = atomic_load(&node->st.touches);
    s->refused      = atomic_load(&node->st.refused);
    s->busy         = atomic_load(&node->st.busy);
    s->denied       = atomic_load(&node->st.denied);
    s->moved        = atomic_load(&node->st.moved);
    s->meta_served  = (node->meta != NULL) ? uf_meta_served(node->meta) : 0;
}

void uf_node_set_lookup(uf_node_t *node, uf_lookup_fn_t fn, void *arg)
{
    atomic_store_explicit(&node->lookup_arg, arg, memory_order_relaxed);
    atomic_store_explicit(&node->lookup_fn, fn, memory_order_release);
}

bool uf_node_moved(uf_node_t *node, const us_key_t *key, uint64_t epoch)
{
    uf_moved_fn_t fn = atomic_load_explicit(&node->moved_fn, memory_order_acquire);

    if ((fn == NULL) ||
        !fn(atomic_load_explicit(&node->moved_arg, memory_order_relaxed), key, epoch)) {
        return false;
    }
    UF_NODE_ADD(node, moved, 1); /* not ours now */
    return true;
}

uf_meta_t *uf_node_meta(uf_node_t *node)
{
    return node->meta;
}

void uf_node_set_moved_check(uf_node_t *node, uf_moved_fn_t fn, void *arg)
{
    atomic_store_explicit(&node->moved_arg, arg, memory_order_relaxed);
    atomic_store_explicit(&node->moved_fn, fn, memory_order_release);
}
