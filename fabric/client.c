/*
 * client.c - the read path of libucache-rdma: object metadata, chunking,
 * placement, and one chunk read per owner by the fastest correct way:
 *   MAPPED (same host, or this process's own store): index and chunk read
 *          straight from the owner's mapped region, verified, no syscall;
 *   GET    (RDMA): one-sided reads of the two index buckets, then of the
 *          chunk header and payload, verified;
 *   AM     (tcp): one FETCH request; the owner looks the chunk up (filling
 *          it first on a miss) and replies with header and payload, which
 *          are verified exactly like one-sided bytes.
 * A miss on MAPPED/GET asks the owner to fill (FETCH without data) and then
 * reads one-sidedly.  A failed or silent owner is marked suspect and the
 * next owner is tried, then the origin itself.  Invariant: no byte reaches
 * the caller unless its chunk's key, version, length and checksum matched.
 */
#include "fabric/fabric.h"
#include "util/log.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UF_CHUNK_ATTEMPTS 3
#define UF_READ_ATTEMPTS  3

/* One chunk read: what it is and where its bytes go. */
typedef struct uf_chunk {
    const char        *uri;
    const us_object_t *obj;
    uint64_t           idx;
    us_key_t           key;
    uint32_t           length;   /* the chunk's payload bytes */
    uint32_t           off, len; /* the part the caller wants */
    uint32_t           span_off, span_len; /* the segments covering it */
    char              *dst;
    uint32_t           how;      /* warm-up: UF_HOW_*, 0 unpinned, ~0 absent */
} uf_chunk_t;

/* ------------------------------------------------------------------------ */
/* Bounce buffers (a part of a chunk read through GET or AM)                 */
/* ------------------------------------------------------------------------ */

static void *uf_bounce_get(struct ucache_context *ctx)
{
    void *b = NULL;

    pthread_mutex_lock(&ctx->cache_lock);
    if (ctx->nbounce > 0) {
        b = ctx->bounce[--ctx->nbounce];
    }
    pthread_mutex_unlock(&ctx->cache_lock);
    return (b != NULL) ? b : malloc(ctx->cfg.chunk_size);
}

static void uf_bounce_put(struct ucache_context *ctx, void *b)
{
    pthread_mutex_lock(&ctx->cache_lock);
    if (ctx->nbounce < UF_BOUNCE_MAX) {
        ctx->bounce[ctx->nbounce++] = b;
        b = NULL;
    }
    pthread_mutex_unlock(&ctx->cache_lock);
    free(b);
}

/* ------------------------------------------------------------------------ */
/* FETCH                                                                     */
/* ------------------------------------------------------------------------ */

/* Whether a read of @p c moves only part of the chunk: the segments it
 * touches, with the chunk's segment table, are less than the whole (so a
 * FETCH reply of table and span fits where the whole chunk would). */
static inline bool uf_chunk_partial(const uf_chunk_t *c)
{
    return (uint64_t)c->span_len + us_chunk_table_bytes(c->length) < c->length;
}

/* Bytes of data a FETCH with @p flags brings for @p c. */
static size_t uf_fetch_data_len(const uf_chunk_t *c, unsigned flags)
{
    if (!(flags & UF_FETCH_DATA)) {
        return 0;
    }
    return (flags & UF_FETCH_SPAN) ? us_chunk_table_bytes(c->length) + (size_t)c->span_len :
                                     c->length;
}

/* A FETCH request's bytes: its header, the URI, and a span (UF_FETCH_SPAN).
 * The transport may send from them until the request completes. */
typedef struct uf_fetch_msg {
    uint8_t b[sizeof(uf_fetch_req_t) + US_URI_MAX + sizeof(uf_fetch_span_t)];
} uf_fetch_msg_t;

/* The FETCH request header for chunk @p c with @p flags. */
static void uf_fetch_req(struct ucache_context *ctx, const uf_view_t *v, const uf_chunk_t *c,
                         unsigned flags, uf_fetch_req_t *req)
{
    memset(req, 0, sizeof(*req));
    req->magic       = UF_PROTO_MAGIC;
    req->version     = UF_PROTO_VERSION;
    req->flags       = (uint16_t)flags;
    req->epoch       = v->epoch;
    req->key_hi      = c->key.hi;
    req->key_lo      = c->key.lo;
    req->obj_size    = c->obj->size;
    req->obj_version = c->obj->version;
    req->chunk_idx   = c->idx;
    req->chunk_size  = (uint32_t)ctx->cfg.chunk_size;
    req->uri_len     = (uint16_t)strlen(c->uri);
}

/* Post a FETCH of chunk @p c to remote owner @p p into @p r: @p flags as for
 * uf_fetch, its reply metadata to @p rep, its data to @p data; @p msg holds
 * the request until @p r completes. */
static ucache_status_t uf_fetch_post(struct ucache_context *ctx, uf_view_t *v,
                                     uf_peer_t *p, const uf_chunk_t *c, unsigned flags,
                                     uf_fetch_rep_t *rep, void *data, uf_fetch_msg_t *msg,
                                     ut_req_t *r)
{
    uf_fetch_span_t span = { c->span_off, c->span_len };
    uf_fetch_req_t req;
    size_t len;

    uf_fetch_req(ctx, v, c, flags, &req);
    memset(rep, 0, sizeof(*rep));
    UF_ADD(ctx, fetches, 1);
    memcpy(msg->b, &req, sizeof(req));
    memcpy(msg->b + sizeof(req), c->uri, req.uri_len);
    len = sizeof(req) + req.uri_len;
    if (flags & UF_FETCH_SPAN) {
        memcpy(msg->b + len, &span, sizeof(span));
        len += sizeof(span);
    }
    return ut_rpc_post_timeout(r, p->tp, UF_RPC_FETCH, msg->b, len, rep, sizeof(*rep), data,
                               uf_fetch_data_len(c, flags), ctx->cfg.fetch_timeout_ns);
}

/* The reply of a FETCH posted with uf_fetch_post, complete: its shape
 * checked, not its bytes. */
static ucache_status_t uf_fetch_end(struct ucache_context *ctx, uf_peer_t *p,
                                    const uf_chunk_t *c, unsigned flags,
                                    const uf_fetch_rep_t *rep, const ut_req_t *r)
{
    if (r->status != UCACHE_OK) {
        return r->status;
    }
    if (uf_fetch_rep_check(rep, r->meta_length, r->length, c->length,
                           uf_fetch_data_len(c, flags)) != UCACHE_OK) {
        UF_ADD(ctx, bad_replies, 1);
        UC_WARN("owner %016llx sent a malformed FETCH reply (%zu+%zu bytes, "
                "length %u, want %u)", (unsigned long long)p->id, r->meta_length,
                r->length, rep->length, c->length);
        return UCACHE_ERR_CORRUPT;
    }
    return UCACHE_OK;
}

/* Wait for @p n posted requests to complete: each fails at its own deadline,
 * so this ends; their buffers are the caller's again after it. */
static void uf_wait_all(struct ucache_context *ctx, ut_req_t *r, unsigned n)
{
    while (ut_wait(ctx->transport, r, n, ctx->cfg.fetch_timeout_ns + ctx->cfg.timeout_ns) ==
           UCACHE_INPROGRESS) {
    }
}

/* Ask owner @p p for chunk @p c (filling it on a miss); with UF_FETCH_DATA
 * its payload lands in @p data - with UF_FETCH_SPAN, its segment table and
 * then the span of @p c.  Checks the reply's shape, not its bytes. */
static ucache_status_t uf_fetch(struct ucache_context *ctx, uf_view_t *v,
                                uf_peer_t *p, const uf_chunk_t *c, unsigned flags,
                                uf_fetch_rep_t *rep, void *data)
{
    ucache_status_t status;
    uf_fetch_msg_t msg;
    uf_fetch_req_t req;
    us_loc_t loc;
    ut_req_t r;

    if (p->self) {
        uf_fetch_req(ctx, v, c, flags, &req);
        memset(rep, 0, sizeof(*rep));
        UF_ADD(ctx, fetches, 1);
        status = uf_node_fetch_local(ctx->node, &req, c->uri, &loc, &rep->how);
        rep->version = loc.version;
        rep->hdr_off = loc.hdr_off;
        rep->length  = loc.length;
        return status;
    }
    status = uf_fetch_post(ctx, v, p, c, flags, rep, data, &msg, &r);
    if (status != UCACHE_OK) {
        return status;
    }
    uf_wait_all(ctx, &r, 1);
    return uf_fetch_end(ctx, p, c, flags, rep, &r);
}

/* ------------------------------------------------------------------------ */
/* One chunk from one owner                                                  */
/* ------------------------------------------------------------------------ */

/* Where a chunk read through GET or AM lands: the caller's buffer when the
 * caller wants the whole chunk, else a bounce buffer (NULL: no memory), of
 * the chunk size: a part's span with the segment table before it (AM) is
 * smaller than the chunk (uf_chunk_partial). */
static char *uf_chunk_target(struct ucache_context *ctx, const uf_chunk_t *c)
{
    return (c->len == c->length) ? c->dst : uf_bounce_get(ctx);
}

static void uf_chunk_target_put(struct ucache_context *ctx, const uf_chunk_t *c,
                                char *target)
{
    if (target != c->dst) {
        uf_bounce_put(ctx, target);
    }
}

/* A chunk verified: count how it was found, report a one-sided hit to its
 * owner (@p sample: it did not see it), hand the caller its part - the
 * bytes at @p span (the verified span of the chunk, or the whole of it) -
 * unless they are in place (NULL). */
static void uf_chunk_done(struct ucache_context *ctx, uf_peer_t *p, const uf_chunk_t *c,
                          const char *span, uint32_t how, bool sample)
{
    if (how == UF_HOW_HIT) {
        UF_ADD(ctx, hits, 1);
        if (sample) {
            uf_touch_note(ctx, p, &c->key);
        }
    } else {
        UF_ADD(ctx, misses, 1);
    }
    if ((span != NULL) && (span != c->dst)) {
        memcpy(c->dst, span + (c->off - (uf_chunk_partial(c) ? c->span_off : 0)), c->len);
    }
}

static ucache_status_t uf_read_am(struct ucache_context *ctx, uf_view_t *v,
                                  uf_peer_t *p, const uf_chunk_t *c);

/*
 * After UF_CHUNK_ATTEMPTS one-sided attempts that did not end in verified
 * bytes - the last one a miss the owner filled (status OK from the FETCH,
 * no bytes read yet), or reads that kept failing verification or came
 * late while the chunk was evicted and refilled under them - the chunk
 * comes in the owner's FETCH reply instead, verified the same way (a peer
 * that failed fails that too, at once).  (A FETCH's OK was
 * once taken for the chunk's: the caller got whatever its buffer held.)
 */
static ucache_status_t uf_read_fallback(struct ucache_context *ctx, uf_view_t *v,
                                        uf_peer_t *p, const uf_chunk_t *c,
                                        ucache_status_t status)
{
    if ((status == UCACHE_OK) || (status == UCACHE_ERR_STALE) || (status == UCACHE_ERR_AGAIN) ||
        (status == UCACHE_ERR_CORRUPT) || (status == UCACHE_ERR_TIMEOUT)) {
        UF_ADD(ctx, verify_retries, 1);
        return uf_read_am(ctx, v, p, c);
    }
    return status;
}

static ucache_status_t uf_read_mapped(struct ucache_context *ctx, uf_view_t *v,
                                      uf_peer_t *p, const uf_chunk_t *c)
{
    us_read_stats_t rs = { 0 };
    uf_fetch_rep_t rep;
    ucache_status_t status = UCACHE_ERR_CORRUPT;
    us_read_op_t op;
    uint32_t how = UF_HOW_HIT;
    unsigned a;

    for (a = 0; a < UF_CHUNK_ATTEMPTS; a++) {
        memset(&op, 0, sizeof(op));
        op.key = c->key;
        op.dst = c->dst;
        op.cap = c->len;
        if (c->len != c->length) {
            op.range_off = c->off;
            op.range_len = c->len;
        }
        status = us_read_raw_batch(&p->layout, p->mapped, &op, 1, UF_CHUNK_ATTEMPTS,
                                   &rs);
        if ((status == UCACHE_OK) && (op.length != c->length)) {
            status = UCACHE_ERR_CORRUPT;
        }
        if (status == UCACHE_OK) {
            uf_chunk_done(ctx, p, c, NULL, how, true); /* copied in place */
            UF_ADD(ctx, verify_retries, rs.torn + rs.stale + rs.late);
            return UCACHE_OK;
        }
        if (status != UCACHE_ERR_NOT_FOUND) {
            continue;
        }
        status = uf_fetch(ctx, v, p, c, 0, &rep, NULL);
        if (status != UCACHE_OK) {
            break;
        }
        how = UF_HOW_FILLED;
    }
    UF_ADD(ctx, verify_retries, rs.torn + rs.stale + rs.late);
    return uf_read_fallback(ctx, v, p, c, status);
}

/* The FETCH flags that bring chunk @p c's bytes: its span, if a part. */
static unsigned uf_am_flags(const uf_chunk_t *c)
{
    return UF_FETCH_DATA | (uf_chunk_partial(c) ? UF_FETCH_SPAN : 0);
}

/* A FETCH reply with chunk @p c's bytes at @p target (table and span, or
 * the whole chunk), its shape checked: verified, and on success the
 * caller's (an owner saw this hit itself: no report). */
static ucache_status_t uf_am_take(struct ucache_context *ctx, uf_peer_t *p,
                                  const uf_chunk_t *c, const uf_fetch_rep_t *rep,
                                  const char *target)
{
    bool part = uf_chunk_partial(c);
    const char *span = target + (part ? us_chunk_table_bytes(c->length) : 0);
    us_loc_t loc = { .version = rep->version, .hdr_off = rep->hdr_off,
                     .length = rep->length };
    ucache_status_t status;

    status = us_chunk_verify(&p->layout, &c->key, &loc, &rep->hdr, part ? target : NULL,
                             span, NULL, part ? c->span_off : 0,
                             part ? c->span_len : c->length, 0);
    if (status == UCACHE_OK) {
        uf_chunk_done(ctx, p, c, span, rep->how, false);
    }
    return status;
}

static ucache_status_t uf_read_am(struct ucache_context *ctx, uf_view_t *v,
                                  uf_peer_t *p, const uf_chunk_t *c)
{
    char *target = uf_chunk_target(ctx, c);
    ucache_status_t status = UCACHE_ERR_CORRUPT;
    uf_fetch_rep_t rep;
    unsigned a;

    if (target == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    for (a = 0; a < UF_CHUNK_ATTEMPTS; a++) {
        status = uf_fetch(ctx, v, p, c, uf_am_flags(c), &rep, target);
        if (status == UCACHE_ERR_AGAIN) {
            continue;   /* its reply was lost (the owner said so): ask again */
        }
        if (status != UCACHE_OK) {
            break;
        }
        status = uf_am_take(ctx, p, c, &rep, target);
        if (status == UCACHE_OK) {
            break;
        }
        UF_ADD(ctx, verify_retries, 1); /* evicted and reused while in flight */
    }
    uf_chunk_target_put(ctx, c, target);
    return status;
}

ucache_status_t uf_gets(struct ucache_context *ctx, uf_peer_t *p, unsigned n,
                        const uint64_t *offs, void *const *bufs, const size_t *lens)
{
    ucache_status_t status = UCACHE_OK, st;
    ut_req_t r[4];
    unsigned i, posted = 0;

    for (i = 0; (i < n) && (status == UCACHE_OK); i++) {
        status = ut_get_post(&r[i], p->rkey, p->rkey->base + offs[i], bufs[i], lens[i]);
        posted += (status == UCACHE_OK);
    }
    if (posted > 0) { /* the posted ones own their buffers until they end */
        st = ut_wait(ctx->transport, r, posted, ctx->cfg.timeout_ns);
        status = (status == UCACHE_OK) ? st : status;
    }
    return status;
}

/* The location cache: where a key was last found at an owner, so a
 * repeated one-sided hit needs one round trip instead of two. */
static bool uf_loc_get(struct ucache_context *ctx, uint64_t owner, const us_key_t *key,
                       us_loc_t *loc)
{
    uf_loc_entry_t *e = &ctx->locs[key->lo % UF_LOC_ENTRIES];
    bool hit;

    pthread_mutex_lock(&ctx->cache_lock);
    hit = (e->owner == owner) && (e->key.hi == key->hi) && (e->key.lo == key->lo);
    if (hit) {
        *loc = e->loc;
    }
    pthread_mutex_unlock(&ctx->cache_lock);
    return hit;
}

static void uf_loc_put(struct ucache_context *ctx, uint64_t owner, const us_key_t *key,
                       const us_loc_t *loc)
{
    uf_loc_entry_t *e = &ctx->locs[key->lo % UF_LOC_ENTRIES];

    pthread_mutex_lock(&ctx->cache_lock);
    e->owner = (loc != NULL) ? owner : 0;
    e->key   = *key;
    if (loc != NULL) {
        e->loc = *loc;
    }
    pthread_mutex_unlock(&ctx->cache_lock);
}

/*
 * One attempt at a chunk over one-sided gets.  With a cached location the
 * two buckets, the header (and segment table) and the payload are read at
 * once; otherwise the buckets first, then header and payload of the
 * matching slot.  A read of part of a chunk reads the header with the
 * segment table and only the span of segments it touches into @p target;
 * a whole one, the header and the payload.  Either way the bytes count only
 * if they verify (us_chunk_verify) and, when the attempt outlasted the
 * owner's grace period, the buckets read once more still hold the slot (so
 * the block cannot have been reused meanwhile).  UCACHE_ERR_NOT_FOUND if no
 * slot holds the key.
 */
static ucache_status_t uf_get_attempt(struct ucache_context *ctx, uf_peer_t *p,
                                      const uf_chunk_t *c, char *target,
                                      const us_loc_t *cached)
{
    _Alignas(64) uint8_t bkt[2 * US_BUCKET_SIZE];
    _Alignas(64) uint8_t head[US_CHUNK_HDR + US_MAX_TABLE];
    bool part = uf_chunk_partial(c);
    uint64_t span_off = part ? c->span_off : 0, span_len = part ? c->span_len : c->length;
    us_loc_t locs[2 * US_BUCKET_SLOTS];
    ucache_status_t status;
    us_chunk_hdr_t hdr;
    uint64_t b[2], offs[4], t0 = uc_time_ns();
    void *bufs[4] = { bkt, bkt + US_BUCKET_SIZE, head, target };
    size_t lens[4] = { US_BUCKET_SIZE, US_BUCKET_SIZE,
                       US_CHUNK_HDR + (part ? us_chunk_table_bytes(c->length) : 0), span_len };
    unsigned nloc, i;

    us_key_buckets(&c->key, p->layout.nbuckets, b);
    offs[0] = us_layout_bucket_off(&p->layout, b[0]);
    offs[1] = us_layout_bucket_off(&p->layout, b[1]);
    if (cached != NULL) {
        offs[2] = cached->hdr_off;
        offs[3] = us_loc_payload_off(cached) + span_off;
    }
    status = uf_gets(ctx, p, (cached != NULL) ? 4 : 2, offs, bufs, lens);
    if (status != UCACHE_OK) {
        return status;
    }
    nloc = us_index_match(&p->layout, bkt, &c->key, locs);
    if (nloc == 0) {
        return UCACHE_ERR_NOT_FOUND;
    }
    status = UCACHE_ERR_STALE;
    for (i = 0; (i < nloc) && (status == UCACHE_ERR_STALE); i++) {
        if ((locs[i].length != c->length) ||
            (us_loc_payload_off(&locs[i]) + c->length > p->layout.region_len)) {
            continue;
        }
        if (cached != NULL) {
            if ((locs[i].version != cached->version) ||
                (locs[i].hdr_off != cached->hdr_off)) {
                continue; /* not the slot we read: this attempt is stale */
            }
        } else {
            offs[2] = locs[i].hdr_off;
            offs[3] = us_loc_payload_off(&locs[i]) + span_off;
            status = uf_gets(ctx, p, 2, offs + 2, bufs + 2, lens + 2);
            if (status != UCACHE_OK) {
                return status;
            }
        }
        memcpy(&hdr, head, sizeof(hdr));
        status = us_chunk_verify(&p->layout, &c->key, &locs[i], &hdr,
                                 part ? head + US_CHUNK_HDR : NULL, target, NULL, span_off,
                                 span_len, t0);
        if (status == UCACHE_INPROGRESS) {
            /* late: the bytes count only if the slot still holds them */
            us_read_fence();
            status = uf_gets(ctx, p, 2, offs, bufs, lens);
            if (status != UCACHE_OK) {
                return status;
            }
            status = us_index_holds(&p->layout, bkt, &c->key, &locs[i]) ? UCACHE_OK :
                                                                          UCACHE_ERR_TIMEOUT;
        }
        if ((status == UCACHE_OK) && (cached == NULL)) { /* a cached one stays */
            uf_loc_put(ctx, p->id, &c->key, &locs[i]);
        }
    }
    return status;
}

static ucache_status_t uf_read_get(struct ucache_context *ctx, uf_view_t *v,
                                   uf_peer_t *p, const uf_chunk_t *c)
{
    char *target = uf_chunk_target(ctx, c);
    ucache_status_t status = UCACHE_ERR_CORRUPT;
    bool cached;
    uint32_t how = UF_HOW_HIT;
    uf_fetch_rep_t rep;
    us_loc_t loc;
    unsigned a;

    if (target == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    for (a = 0; a < UF_CHUNK_ATTEMPTS; a++) {
        cached = (a == 0) && uf_loc_get(ctx, p->id, &c->key, &loc);
        status = uf_get_attempt(ctx, p, c, target, cached ? &loc : NULL);
        if (status == UCACHE_OK) {
            UF_ADD(ctx, loc_hits, cached);
            uf_chunk_done(ctx, p, c, target, how, true);
            uf_chunk_target_put(ctx, c, target);
            return UCACHE_OK;
        }
        if (cached) {
            uf_loc_put(ctx, p->id, &c->key, NULL); /* moved or evicted: forget it */
        }
        if (status == UCACHE_ERR_NOT_FOUND) {
            /* a miss: the owner fills it, then the buckets are read again
             * (the reply's location alone is not proof within the grace) */
            status = uf_fetch(ctx, v, p, c, 0, &rep, NULL);
            if (status != UCACHE_OK) {
                break;
            }
            how = UF_HOW_FILLED;
            continue;
        }
        if ((status != UCACHE_ERR_STALE) && (status != UCACHE_ERR_CORRUPT) &&
            (status != UCACHE_ERR_TIMEOUT)) {
            break; /* the peer failed */
        }
        UF_ADD(ctx, verify_retries, 1);
    }
    uf_chunk_target_put(ctx, c, target);
    return uf_read_fallback(ctx, v, p, c, status);
}

/* Errors that mean "this owner cannot serve now": try the next one. */
static bool uf_owner_failed(ucache_status_t status)
{
    return (status == UCACHE_ERR_PEER) || (status == UCACHE_ERR_TIMEOUT) ||
           (status == UCACHE_ERR_TRANSPORT) || (status == UCACHE_ERR_CANCELED) ||
           (status == UCACHE_ERR_UNSUPPORTED) || (status == UCACHE_ERR_CORRUPT) ||
           (status == UCACHE_ERR_MSG_TRUNCATED) || (status == UCACHE_ERR_STALE) ||
           (status == UCACHE_ERR_AGAIN) || (status == UCACHE_ERR_NO_MEMORY) ||
           (status == UCACHE_ERR_BUSY) || (status == UCACHE_ERR_INVALID) ||
           (status == UCACHE_ERR_MOVED);
}

/* One attempt at chunk @p c with owner @p p. */
typedef ucache_status_t (*uf_attempt_fn_t)(struct ucache_context *ctx, uf_view_t *v,
                                           uf_peer_t *p, uf_chunk_t *c, void *arg);

#define UF_BUSY_TRIES    3
#define UF_BUSY_BACKOFF  (5ull * UC_NSEC_PER_MSEC)

/* @p fn with owner @p p; an owner whose fill queue is full (UCACHE_ERR_BUSY),
 * or that cannot be reached now (UCACHE_ERR_AGAIN: every endpoint of
 * UCACHE_MAX_EPS is busy with other reads, or a reply was lost), is asked
 * again after a backoff (5, 10 ms), never marked suspect. */
static ucache_status_t uf_owner_attempt(struct ucache_context *ctx, uf_view_t *v,
                                        uf_peer_t *p, uf_chunk_t *c, uf_attempt_fn_t fn,
                                        void *arg)
{
    ucache_status_t status = UCACHE_ERR_BUSY;
    struct timespec ts;
    unsigned t;

    for (t = 0; (t < UF_BUSY_TRIES) &&
                ((status == UCACHE_ERR_BUSY) || (status == UCACHE_ERR_AGAIN)); t++) {
        if (t > 0) {
            ts.tv_sec  = 0;
            ts.tv_nsec = (long)(UF_BUSY_BACKOFF << (t - 1));
            nanosleep(&ts, NULL);
        }
        status = fn(ctx, v, p, c, arg);
    }
    return status;
}

/* Chunk @p c's key, and its owners in placement order (their view
 * indexes in @p owners); how many. */
static unsigned uf_chunk_owners(struct ucache_context *ctx, const uf_view_t *v,
                                uf_chunk_t *c, uint32_t owners[UF_MAX_REPLICAS])
{
    c->key = uf_chunk_key(c->uri, c->obj, c->idx, ctx->cfg.chunk_size);
    return ((v != NULL) && (v->n > 0)) ?
           uf_place_owners(v->place, &c->key, ctx->cfg.replicas, owners) : 0;
}

/* The first of owners[i .. n) a read tries: not known to be suspect at
 * @p now (a peer not set up yet is tried); n if none. */
static unsigned uf_next_owner(const uf_view_t *v, const uint32_t *owners, unsigned n,
                              unsigned i, uint64_t now)
{
    const uf_peer_t *p;

    for (; i < n; i++) {
        p = atomic_load_explicit(&v->peers[owners[i]], memory_order_acquire);
        if ((p == NULL) || !uf_peer_is_suspect(p, now)) {
            break;
        }
    }
    return i;
}

/*
 * Try @p c's owners in placement order until one serves it: UCACHE_OK, an
 * answer about the object itself (NOT_FOUND, OUT_OF_RANGE, DENIED, ...), or
 * - when every owner failed or none is known - the last owner's failure
 * (UCACHE_ERR_PEER if none was tried).  Failed owners turn suspect.
 */
static ucache_status_t uf_owners_try(struct ucache_context *ctx, uf_view_t *v,
                                     uf_chunk_t *c, uf_attempt_fn_t fn, void *arg)
{
    uint32_t owners[UF_MAX_REPLICAS];
    uint64_t now = uc_time_ns();
    ucache_status_t status = UCACHE_ERR_PEER;
    unsigned n, i;
    uf_peer_t *p;

    n = uf_chunk_owners(ctx, v, c, owners);
    for (i = uf_next_owner(v, owners, n, 0, now); i < n;
         i = uf_next_owner(v, owners, n, i + 1, now)) {
        p = uf_view_peer(ctx, v, owners[i]);
        if (p == NULL) {
            continue;
        }
        status = uf_owner_attempt(ctx, v, p, c, fn, arg);
        if (status == UCACHE_OK) {
            uf_peer_ok(p);
        }
        if ((status == UCACHE_OK) || (status == UCACHE_ERR_NOT_FOUND) ||
            (status == UCACHE_ERR_OUT_OF_RANGE) || !uf_owner_failed(status)) {
            return status; /* served, or the owner's origin answered for the object */
        }
        if ((status != UCACHE_ERR_STALE) && (status != UCACHE_ERR_NO_MEMORY) &&
            (status != UCACHE_ERR_BUSY) && (status != UCACHE_ERR_AGAIN)) {
            uf_peer_suspect(ctx, p, ucache_strerror(status));
        }
    }
    return status;
}

static ucache_status_t uf_read_attempt(struct ucache_context *ctx, uf_view_t *v,
                                       uf_peer_t *p, uf_chunk_t *c, void *arg)
{
    (void)arg;
    switch (p->path) {
    case UT_PATH_MAPPED: return uf_read_mapped(ctx, v, p, c);
    case UT_PATH_GET:    return uf_read_get(ctx, v, p, c);
    default:             return uf_read_am(ctx, v, p, c);
    }
}

static ucache_status_t uf_read_chunk(struct ucache_context *ctx, uf_view_t *v,
                                     uf_chunk_t *c)
{
    ucache_status_t status;

    UF_ADD(ctx, chunk_reads, 1);
    status = uf_owners_try(ctx, v, c, uf_read_attempt, NULL);
    if (status == UCACHE_ERR_REFUSED) {
        UF_ADD(ctx, owner_refusals, 1); /* not its origin to read: ours, with our rights */
    } else if ((status == UCACHE_OK) || !uf_owner_failed(status) ||
               (status == UCACHE_ERR_NOT_FOUND) || (status == UCACHE_ERR_OUT_OF_RANGE)) {
        return status;
    }
    /* No owner could serve it: read the origin ourselves. */
    UF_ADD(ctx, origin_direct, 1);
    return us_origin_read(&ctx->origin, c->uri, c->obj, c->idx * ctx->cfg.chunk_size + c->off,
                          c->dst, c->len);
}

#define UF_WINDOW_MAX 64   /* UCACHE_READ_WINDOW's bound */

/* The first owner a read of @p c would try (uf_owners_try's order), if it
 * is set up already: a window sets up no peer, as connecting while its
 * other requests hold endpoints could find them all busy (UCACHE_MAX_EPS)
 * and take a good owner for a failed one.  NULL: read it the single way. */
static uf_peer_t *uf_first_owner(struct ucache_context *ctx, uf_view_t *v, uf_chunk_t *c)
{
    uint32_t owners[UF_MAX_REPLICAS];
    unsigned n, i;
    uf_peer_t *p;

    n = uf_chunk_owners(ctx, v, c, owners);
    i = uf_next_owner(v, owners, n, 0, uc_time_ns());
    p = (i < n) ? atomic_load_explicit(&v->peers[owners[i]], memory_order_acquire) : NULL;
    return ((p != NULL) && atomic_load_explicit(&p->ready, memory_order_acquire)) ? p : NULL;
}

/*
 * The chunks @p cs[0 .. n) of one read.  Those whose first owner is reached
 * by active messages are asked for all at once - their FETCHes (misses
 * included: several fills go on together) in flight together, so their
 * replies stream in back to back - and verified as they are taken.  Every
 * chunk that did not arrive verified that way - another path, a failed or
 * busy owner, a torn reply - is read by uf_read_chunk, owner by owner and
 * then from the origin, as a single chunk is.  A window asks at most a
 * quarter of UCACHE_MAX_EPS owners at once, leaving endpoints to the other
 * readers of the process.  Stops at the first chunk that fails (after
 * every posted request has completed).
 */
static ucache_status_t uf_read_window(struct ucache_context *ctx, uf_view_t *v,
                                      uf_chunk_t *cs, unsigned n)
{
    uf_fetch_msg_t *msgs = NULL;
    uf_fetch_rep_t rep[UF_WINDOW_MAX];
    char *target[UF_WINDOW_MAX] = { NULL };
    uf_peer_t *peer[UF_WINDOW_MAX];
    ut_req_t r[UF_WINDOW_MAX];
    unsigned i, j, np = 0, nowners = 0, max_owners = ctx->cfg.max_eps / 4;
    ucache_status_t status = UCACHE_OK, st;

    for (i = 0; i < n; i++) {
        peer[i] = uf_first_owner(ctx, v, &cs[i]);
        if ((peer[i] == NULL) || peer[i]->self || (peer[i]->path != UT_PATH_AM)) {
            continue;
        }
        if ((msgs == NULL) && ((msgs = malloc(n * sizeof(*msgs))) == NULL)) {
            break;                   /* the first tcp owner: requests to hold */
        }
        for (j = 0; (j < i) && ((target[j] == NULL) || (peer[j] != peer[i])); j++) {
        }
        if ((j == i) && (++nowners > ((max_owners > 0) ? max_owners : 1))) {
            continue;                /* another owner than those asked: not now */
        }
        target[i] = uf_chunk_target(ctx, &cs[i]);
        if ((target[i] != NULL) &&
            (uf_fetch_post(ctx, v, peer[i], &cs[i], uf_am_flags(&cs[i]), &rep[np], target[i],
                           &msgs[np], &r[np]) == UCACHE_OK)) {
            np++;
        } else if (target[i] != NULL) {
            uf_chunk_target_put(ctx, &cs[i], target[i]);
            target[i] = NULL;
        }
    }
    if (np > 0) {
        uf_wait_all(ctx, r, np);    /* every buffer is ours again after it */
    }
    for (i = 0, np = 0; i < n; i++) {
        if (target[i] != NULL) {     /* posted: the np-th request */
            st = uf_fetch_end(ctx, peer[i], &cs[i], uf_am_flags(&cs[i]), &rep[np], &r[np]);
            if (st == UCACHE_OK) {
                st = uf_am_take(ctx, peer[i], &cs[i], &rep[np], target[i]);
            }
            np++;
            uf_chunk_target_put(ctx, &cs[i], target[i]);
            if (st == UCACHE_OK) {
                UF_ADD(ctx, chunk_reads, 1);
                UF_ADD(ctx, windowed, 1);
                uf_peer_ok(peer[i]);
                continue;
            }
            if ((st == UCACHE_ERR_PEER) || (st == UCACHE_ERR_TIMEOUT) ||
                (st == UCACHE_ERR_TRANSPORT)) {
                uf_peer_suspect(ctx, peer[i], ucache_strerror(st)); /* pay its deadline once */
            }
        }
        if (status == UCACHE_OK) {
            status = uf_read_chunk(ctx, v, &cs[i]);
        }
    }
    free(msgs);
    return status;
}

/* Warm-up: a FETCH without data; the owner fills (and pins) the chunk. */
static ucache_status_t uf_warm_attempt(struct ucache_context *ctx, uf_view_t *v,
                                       uf_peer_t *p, uf_chunk_t *c, void *arg)
{
    unsigned *flags = arg;
    uf_fetch_rep_t rep;
    ucache_status_t status;

    status = uf_fetch(ctx, v, p, c, *flags, &rep, NULL);
    if (status == UCACHE_OK) {
        c->how = rep.how; /* how the owner had it, for the caller */
    } else if ((status == UCACHE_ERR_NO_MEMORY) && (*flags & UF_FETCH_PIN)) {
        c->how = 0;       /* cached there, but past the pin limit */
        status = UCACHE_OK;
    }
    return status;
}

/* Eviction: every owner of @p c drops its copy (pinned or not); an owner
 * that cannot be reached makes it UCACHE_ERR_PEER, after the others. */
static ucache_status_t uf_evict_chunk(struct ucache_context *ctx, uf_view_t *v,
                                      uf_chunk_t *c, uint64_t *evicted)
{
    uint32_t owners[UF_MAX_REPLICAS];
    ucache_status_t status = UCACHE_OK, st;
    uf_fetch_rep_t rep;
    unsigned n, i;
    uf_peer_t *p;

    n = uf_chunk_owners(ctx, v, c, owners);
    if (n == 0) {
        return UCACHE_ERR_PEER;
    }
    for (i = 0; i < n; i++) {
        p = uf_view_peer(ctx, v, owners[i]);
        st = (p != NULL) ? uf_fetch(ctx, v, p, c, UF_FETCH_EVICT, &rep, NULL) :
             UCACHE_ERR_PEER;
        *evicted += (st == UCACHE_OK);
        if ((st != UCACHE_OK) && (st != UCACHE_ERR_NOT_FOUND)) {
            status = st;
        }
    }
    return status;
}

ucache_status_t uf_warm(struct ucache_context *ctx, const char *uri, uint64_t offset,
                        uint64_t len, unsigned flags, ucache_warm_result_t *res)
{
    uint64_t cs = ctx->cfg.chunk_size, end, pos;
    unsigned fflags = ((flags & UCACHE_WARM_PIN) ? UF_FETCH_PIN : 0) |
                      ((flags & UCACHE_WARM_UNPIN) ? UF_FETCH_UNPIN : 0);
    ucache_status_t status;
    us_object_t obj;
    unsigned attempt;
    uf_view_t *v;
    uf_chunk_t c;

    for (attempt = 0; attempt < UF_READ_ATTEMPTS; attempt++) {
        status = us_origin_stat_cached(&ctx->origin, uri, attempt > 0, &obj);
        if (status != UCACHE_OK) {
            return status;
        }
        if (offset >= obj.size) {
            return (offset == obj.size) ? UCACHE_OK : UCACHE_ERR_OUT_OF_RANGE;
        }
        end = (len > obj.size - offset) ? obj.size : offset + len;
        v = uf_view_acquire(ctx);
        pos = (offset + cs - 1) / cs * cs;  /* the chunks that begin in the range */
        for (; (pos < end) && (status == UCACHE_OK); pos += cs) {
            memset(&c, 0, sizeof(c));
            c.uri    = uri;
            c.obj    = &obj;
            c.idx    = pos / cs;
            c.length = (uint32_t)((obj.size - pos < cs) ? obj.size - pos : cs);
            if (flags & UCACHE_WARM_EVICT) {
                status = uf_evict_chunk(ctx, v, &c, &res->evicted);
                c.how  = UINT32_MAX;
            } else {
                status = uf_owners_try(ctx, v, &c, uf_warm_attempt, &fflags);
            }
            if ((status == UCACHE_ERR_NOT_FOUND) && (flags & UCACHE_WARM_UNPIN)) {
                status = UCACHE_OK; /* not cached: nothing to unpin */
                c.how  = UINT32_MAX;
            }
            if (status != UCACHE_OK) {
                break;
            }
            res->chunks++;
            res->bytes += c.length;
            res->hits     += (c.how == UF_HOW_HIT);
            res->filled   += (c.how == UF_HOW_FILLED) || (c.how == UF_HOW_COALESCED);
            res->unpinned += (c.how == 0);
        }
        uf_view_release(v);
        if (status != UCACHE_ERR_STALE) {
            if (status == UCACHE_ERR_PEER) {
                UC_ERROR("%s: no owner took chunk %llu (the fabric has no live node?)",
                         uri, (unsigned long long)c.idx);
            }
            return status;
        }
        UF_ADD(ctx, stale_objects, 1);
        offset = pos; /* the chunks before are warm; go on from here */
    }
    return status;
}

ucache_status_t uf_read(struct ucache_context *ctx, const char *uri, uint64_t offset,
                        size_t len, void *buf, size_t *nread_p)
{
    uint64_t cs = ctx->cfg.chunk_size, end, pos, span_off, span_len;
    unsigned attempt, n, window = ctx->cfg.read_window;
    uf_chunk_t c[UF_WINDOW_MAX];
    ucache_status_t status;
    us_object_t obj;
    uf_view_t *v;

    for (attempt = 0; attempt < UF_READ_ATTEMPTS; attempt++) {
        /* size and version: cached for UCACHE_META_TTL (no call on a hit) */
        status = us_origin_stat_cached(&ctx->origin, uri, attempt > 0, &obj);
        if (status != UCACHE_OK) {
            return status;
        }
        if (offset > obj.size) {
            UC_DEBUG("read at %llu is past the end of %s (%llu bytes)",
                     (unsigned long long)offset, uri, (unsigned long long)obj.size);
            return UCACHE_ERR_OUT_OF_RANGE;
        }
        end = (len > obj.size - offset) ? obj.size : offset + len;
        v = uf_view_acquire(ctx);
        status = UCACHE_OK;
        window = (window < 1) ? 1 : (window > UF_WINDOW_MAX) ? UF_WINDOW_MAX : window;
        for (pos = offset; (pos < end) && (status == UCACHE_OK);) {
            for (n = 0; (n < window) && (pos < end); n++, pos += c[n - 1].len) {
                memset(&c[n], 0, sizeof(c[n]));
                c[n].uri    = uri;
                c[n].obj    = &obj;
                c[n].idx    = pos / cs;
                c[n].length = (uint32_t)((obj.size - c[n].idx * cs < cs) ?
                                         obj.size - c[n].idx * cs : cs);
                c[n].off    = (uint32_t)(pos - c[n].idx * cs);
                c[n].len    = (uint32_t)(((end - pos) < c[n].length - c[n].off) ?
                                         end - pos : c[n].length - c[n].off);
                c[n].dst    = (char *)buf + (pos - offset);
                us_chunk_span(c[n].length, c[n].off, c[n].len, &span_off, &span_len);
                c[n].span_off = (uint32_t)span_off;
                c[n].span_len = (uint32_t)span_len;
            }
            status = (n == 1) ? uf_read_chunk(ctx, v, &c[0]) : uf_read_window(ctx, v, c, n);
        }
        uf_view_release(v);
        if (status == UCACHE_OK) {
            UF_ADD(ctx, bytes, end - offset);
            *nread_p = (size_t)(end - offset);
            return UCACHE_OK;
        }
        if (status != UCACHE_ERR_STALE) {
            return status;
        }
        UF_ADD(ctx, stale_objects, 1); /* changed at the origin: ask again */
    }
    return status;
}
