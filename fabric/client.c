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

/* ------------------------------------------------------------------------ */
/* Spares: bounce buffers (a part of a chunk read through GET or AM), kept   */
/* for the next read rather than freed                                       */
/* ------------------------------------------------------------------------ */

static void *uf_spare_get(struct ucache_context *ctx, uf_spares_t *s, size_t size)
{
    void *b = NULL;

    pthread_mutex_lock(&ctx->cache_lock);
    if (s->n > 0) {
        b = s->v[--s->n];
    }
    pthread_mutex_unlock(&ctx->cache_lock);
    return (b != NULL) ? b : malloc(size);
}

static void uf_spare_put(struct ucache_context *ctx, uf_spares_t *s, void *b)
{
    pthread_mutex_lock(&ctx->cache_lock);
    if (s->n < UF_SPARES_MAX) {
        s->v[s->n++] = b;
        b = NULL;
    }
    pthread_mutex_unlock(&ctx->cache_lock);
    free(b);
}

static void *uf_bounce_get(struct ucache_context *ctx)
{
    return uf_spare_get(ctx, &ctx->bounce, ctx->cfg.chunk_size);
}

static void uf_bounce_put(struct ucache_context *ctx, void *b)
{
    uf_spare_put(ctx, &ctx->bounce, b);
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

ucache_status_t uf_wait_all(struct ucache_context *ctx, ut_req_t *r, unsigned n)
{
    ucache_status_t status;

    do {
        status = ut_wait(ctx->transport, r, n, ctx->cfg.fetch_timeout_ns + ctx->cfg.timeout_ns);
    } while (status == UCACHE_INPROGRESS);
    return status;
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
        UF_ADD(ctx, nvme, how == UF_HOW_NVME);
    }
    if ((span != NULL) && (span != c->dst)) {
        memcpy(c->dst, span + (c->off - (uf_chunk_partial(c) ? c->span_off : 0)), c->len);
    }
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

/*
 * Reads of the owner's region at @p offs: one-sided gets, or - where the
 * peer has no one-sided path - raw FETCHes (the same active-message protocol
 * as every other read from it), each answered with exactly the bytes asked.
 */
ucache_status_t uf_gets(struct ucache_context *ctx, uf_peer_t *p, unsigned n,
                        const uint64_t *offs, void *const *bufs, const size_t *lens)
{
    _Alignas(8) char msgs[UF_GETS_MAX][UF_FETCH_RAW_MSG];
    ucache_status_t status = UCACHE_OK, st;
    ut_req_t r[UF_GETS_MAX];
    unsigned i, posted = 0;

    if (n > UF_GETS_MAX) {
        return UCACHE_ERR_INVALID;
    }
    for (i = 0; (i < n) && (status == UCACHE_OK); i++) {
        if (p->path != UT_PATH_AM) {
            status = ut_get_post(&r[i], p->rkey, p->rkey->base + offs[i], bufs[i], lens[i]);
        } else {
            uf_fetch_raw_build(msgs[i], offs[i], lens[i]);
            status = ut_rpc_post(&r[i], p->tp, UF_RPC_FETCH, msgs[i], sizeof(msgs[i]),
                                 NULL, 0, bufs[i], lens[i]);
        }
        posted += (status == UCACHE_OK);
    }
    if (posted > 0) { /* the posted ones own their buffers until they end */
        st = uf_wait_all(ctx, r, posted);
        status = (status == UCACHE_OK) ? st : status;
    }
    for (i = 0; (i < posted) && (status == UCACHE_OK); i++) {
        if (r[i].length != lens[i]) {
            UC_WARN("node %016llx answered a read of %zu bytes with %zu",
                    (unsigned long long)p->id, lens[i], r[i].length);
            status = UCACHE_ERR_CORRUPT;
        }
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

/* ------------------------------------------------------------------------ */
/* One chunk from one owner: the state machine                               */
/* ------------------------------------------------------------------------ */

/*
 * How a chunk is read from one owner, by the owner's path (decided when its
 * region key was unpacked):
 *   MAPPED  the index and chunk straight from the mapped region, verified;
 *   GET     one-sided reads of the two index buckets (with the header, the
 *           segment table of a part, and the payload or span at once when
 *           the location cache knows the slot), then of the matching slot's
 *           header and payload; verified, and when the attempt outlasted
 *           the owner's grace period the buckets are read once more to
 *           prove the slot still holds the chunk (us_index_holds);
 *   AM      one FETCH with data: the owner replies with header and payload
 *           (or table and span), verified exactly like one-sided bytes.
 * A miss on MAPPED/GET asks the owner to fill (FETCH without data) and
 * reads again.  After UF_CHUNK_ATTEMPTS attempts that did not end in
 * verified bytes - the last one a fill, or reads that kept failing
 * verification or came late while the chunk was evicted and refilled
 * under them - the chunk comes in the owner's FETCH reply instead (a peer
 * that failed fails that too, at once).  A request that cannot be posted
 * completes at once with its error, so a machine always moves on.
 */
static void uf_cop_attempt(struct ucache_context *ctx, uf_cop_t *cop);

static void uf_cop_finish(struct ucache_context *ctx, uf_cop_t *cop, ucache_status_t status)
{
    if (cop->rs.torn + cop->rs.stale + cop->rs.late > 0) { /* no atomic add for 0 on a hit */
        UF_ADD(ctx, verify_retries, cop->rs.torn + cop->rs.stale + cop->rs.late);
    }
    if (cop->target != NULL) {
        uf_chunk_target_put(ctx, cop->c, cop->target);
        cop->target = NULL;
    }
    cop->status = status;
    cop->state  = UF_COP_DONE;
    cop->nr     = 0;
}

/* Post one-sided reads of offs[first .. first + n) into bufs, as r[0 .. n). */
static void uf_cop_gets(uf_cop_t *cop, unsigned state, unsigned first, unsigned n,
                        void *const *bufs, const size_t *lens)
{
    ucache_status_t status = UCACHE_OK;
    unsigned i;

    cop->state = state;
    cop->nr    = n;
    for (i = 0; i < n; i++) {
        if (status == UCACHE_OK) {
            status = ut_get_post(&cop->r[i], cop->p->rkey,
                                 cop->p->rkey->base + cop->offs[first + i], bufs[i], lens[i]);
        }
        if (status != UCACHE_OK) {
            cop->r[i].status = status; /* not posted: complete, with its error */
        }
    }
}

/* Post a FETCH of the chunk (UF_COP_AM with its data, UF_COP_FILL without). */
static void uf_cop_fetch(struct ucache_context *ctx, uf_cop_t *cop, unsigned state)
{
    unsigned flags = (state == UF_COP_AM) ? uf_am_flags(cop->c) : 0;
    ucache_status_t status;

    cop->state = state;
    cop->nr    = 1;
    status = uf_fetch_post(ctx, cop->v, cop->p, cop->c, flags, &cop->rep,
                           (state == UF_COP_AM) ? cop->target : NULL, &cop->msg, &cop->r[0]);
    if (status != UCACHE_OK) {
        cop->r[0].status = status;
    }
}

/* The attempts did not end in verified bytes (@p status): the owner's FETCH
 * reply brings them, unless the owner failed. */
static void uf_cop_fallback(struct ucache_context *ctx, uf_cop_t *cop, ucache_status_t status)
{
    if (!cop->am &&
        ((status == UCACHE_OK) || (status == UCACHE_ERR_STALE) || (status == UCACHE_ERR_AGAIN) ||
         (status == UCACHE_ERR_CORRUPT) || (status == UCACHE_ERR_TIMEOUT))) {
        UF_ADD(ctx, verify_retries, 1);
        cop->am = true;
        cop->a  = 0;
        /* a mapped read has no target of its own: the reply needs one */
        if ((cop->target == NULL) && ((cop->target = uf_chunk_target(ctx, cop->c)) == NULL)) {
            uf_cop_finish(ctx, cop, UCACHE_ERR_NO_MEMORY);
            return;
        }
        uf_cop_attempt(ctx, cop);
        return;
    }
    uf_cop_finish(ctx, cop, status);
}

/* A fill the owner answered with @p status (OK: read again). */
static void uf_cop_filled(struct ucache_context *ctx, uf_cop_t *cop, ucache_status_t status)
{
    if (status != UCACHE_OK) {
        uf_cop_fallback(ctx, cop, status);
        return;
    }
    /* filled from the origin, or read from the owner's NVMe tier */
    cop->how    = (cop->rep.how == UF_HOW_NVME) ? UF_HOW_NVME : UF_HOW_FILLED;
    cop->status = UCACHE_OK;
    cop->a++;
    uf_cop_attempt(ctx, cop);
}

/* The owner does not hold the chunk: it fills it (this process's own store
 * at once). */
static void uf_cop_fill(struct ucache_context *ctx, uf_cop_t *cop)
{
    uf_fetch_req_t req;
    us_loc_t loc;

    if (!cop->p->self) {
        uf_cop_fetch(ctx, cop, UF_COP_FILL);
        return;
    }
    uf_fetch_req(ctx, cop->v, cop->c, 0, &req);
    UF_ADD(ctx, fetches, 1);
    uf_cop_filled(ctx, cop, uf_node_fetch_local(ctx->node, &req, cop->c->uri, &loc,
                                                &cop->rep.how));
}

/* One attempt from the mapped region (no request: done at once). */
static void uf_cop_mapped(struct ucache_context *ctx, uf_cop_t *cop)
{
    const uf_chunk_t *c = cop->c;
    ucache_status_t status;
    us_read_op_t op;

    memset(&op, 0, sizeof(op));
    op.key = c->key;
    op.dst = c->dst;
    op.cap = c->len;
    if (c->len != c->length) {
        op.range_off = c->off;
        op.range_len = c->len;
    }
    status = us_read_raw_batch(&cop->p->layout, cop->p->mapped, &op, 1, UF_CHUNK_ATTEMPTS,
                               &cop->rs);
    if ((status == UCACHE_OK) && (op.length != c->length)) {
        status = UCACHE_ERR_CORRUPT;
    }
    if (status == UCACHE_OK) {
        atomic_fetch_add_explicit(&ctx->st.mapped, 1, memory_order_relaxed);
        uf_chunk_done(ctx, cop->p, c, NULL, cop->how, true); /* copied in place */
        uf_cop_finish(ctx, cop, UCACHE_OK);
    } else if (status == UCACHE_ERR_NOT_FOUND) {
        uf_cop_fill(ctx, cop);
    } else {
        cop->status = status;
        cop->a++;
        uf_cop_attempt(ctx, cop);
    }
}

/* Whether the read of @p c is of a part: its segment table and span move. */
static inline bool uf_cop_part(const uf_cop_t *cop)
{
    return uf_chunk_partial(cop->c);
}

/* The GET attempt's buffers and lengths: buckets, header (with the segment
 * table of a part), payload or span. */
static void uf_cop_get_bufs(uf_cop_t *cop, void *bufs[4], size_t lens[4])
{
    const uf_chunk_t *c = cop->c;
    bool part = uf_cop_part(cop);

    bufs[0] = cop->bkt;
    bufs[1] = cop->bkt + US_BUCKET_SIZE;
    bufs[2] = cop->head;
    bufs[3] = cop->target;
    lens[0] = lens[1] = US_BUCKET_SIZE;
    lens[2] = US_CHUNK_HDR + (part ? us_chunk_table_bytes(c->length) : 0);
    lens[3] = part ? c->span_len : c->length;
}

/* Where slot @p loc keeps the header and the bytes this read wants. */
static void uf_cop_get_at(uf_cop_t *cop, const us_loc_t *loc)
{
    cop->offs[2] = loc->hdr_off;
    cop->offs[3] = us_loc_payload_off(loc) + (uf_cop_part(cop) ? cop->c->span_off : 0);
}

/* A GET attempt: the buckets, and with a cached location the slot too. */
static void uf_cop_get(struct ucache_context *ctx, uf_cop_t *cop)
{
    uint64_t b[2];
    void *bufs[4];
    size_t lens[4];

    cop->t0     = uc_time_ns();
    cop->cached = (cop->a == 0) && uf_loc_get(ctx, cop->p->id, &cop->c->key, &cop->loc);
    us_key_buckets(&cop->c->key, cop->p->layout.nbuckets, b);
    cop->offs[0] = us_layout_bucket_off(&cop->p->layout, b[0]);
    cop->offs[1] = us_layout_bucket_off(&cop->p->layout, b[1]);
    if (cop->cached) {
        uf_cop_get_at(cop, &cop->loc);
    }
    uf_cop_get_bufs(cop, bufs, lens);
    uf_cop_gets(cop, UF_COP_IDX, 0, cop->cached ? 4 : 2, bufs, lens);
}

/* A GET attempt ended without verified bytes (@p status). */
static void uf_cop_get_failed(struct ucache_context *ctx, uf_cop_t *cop, ucache_status_t status)
{
    if (cop->cached) {
        uf_loc_put(ctx, cop->p->id, &cop->c->key, NULL); /* moved or evicted: forget it */
        cop->cached = false;
    }
    if (status == UCACHE_ERR_NOT_FOUND) {
        /* a miss: the owner fills it, then the buckets are read again
         * (the reply's location alone is not proof within the grace) */
        uf_cop_fill(ctx, cop);
        return;
    }
    if ((status != UCACHE_ERR_STALE) && (status != UCACHE_ERR_CORRUPT) &&
        (status != UCACHE_ERR_TIMEOUT)) {
        uf_cop_fallback(ctx, cop, status); /* the peer failed */
        return;
    }
    UF_ADD(ctx, verify_retries, 1);
    cop->status = status;
    cop->a++;
    uf_cop_attempt(ctx, cop);
}

static void uf_cop_get_check(struct ucache_context *ctx, uf_cop_t *cop);

/* The next matched slot of the buckets read: verify the bytes read with
 * them (a cached location), or read its header and bytes. */
static void uf_cop_get_slot(struct ucache_context *ctx, uf_cop_t *cop)
{
    const uf_chunk_t *c = cop->c;
    const us_loc_t *l;
    void *bufs[4];
    size_t lens[4];

    for (; cop->li < cop->nloc; cop->li++) {
        l = &cop->locs[cop->li];
        if ((l->length != c->length) ||
            (us_loc_payload_off(l) + c->length > cop->p->layout.region_len)) {
            continue;
        }
        if (cop->cached) {
            if ((l->version != cop->loc.version) || (l->hdr_off != cop->loc.hdr_off)) {
                continue; /* not the slot we read: this attempt is stale */
            }
            uf_cop_get_check(ctx, cop); /* verify what came with the buckets */
            return;
        }
        uf_cop_get_at(cop, l);
        uf_cop_get_bufs(cop, bufs, lens);
        uf_cop_gets(cop, UF_COP_DATA, 2, 2, bufs + 2, lens + 2);
        return;
    }
    uf_cop_get_failed(ctx, cop, UCACHE_ERR_STALE);
}

/* The verification of slot li's bytes ended in @p status: late bytes count
 * only if the buckets, read once more, still hold the slot. */
static void uf_cop_get_verified(struct ucache_context *ctx, uf_cop_t *cop,
                                ucache_status_t status)
{
    const uf_chunk_t *c = cop->c;
    void *bufs[4];
    size_t lens[4];

    switch (status) {
    case UCACHE_INPROGRESS:
        us_read_fence();
        uf_cop_get_bufs(cop, bufs, lens);
        uf_cop_gets(cop, UF_COP_RECHECK, 0, 2, bufs, lens);
        return;
    case UCACHE_ERR_STALE:
        cop->li++;
        uf_cop_get_slot(ctx, cop);
        return;
    case UCACHE_OK:
        if (!cop->cached) { /* a cached one stays */
            uf_loc_put(ctx, cop->p->id, &c->key, &cop->locs[cop->li]);
        }
        if (cop->cached) {
            UF_ADD(ctx, loc_hits, 1);
        }
        uf_chunk_done(ctx, cop->p, c, cop->target, cop->how, true);
        uf_cop_finish(ctx, cop, UCACHE_OK);
        return;
    default:
        uf_cop_get_failed(ctx, cop, status);
    }
}

/* The header and bytes of slot li have arrived: verify them. */
static void uf_cop_get_check(struct ucache_context *ctx, uf_cop_t *cop)
{
    const uf_chunk_t *c = cop->c;
    bool part = uf_cop_part(cop);
    us_chunk_hdr_t hdr;

    memcpy(&hdr, cop->head, sizeof(hdr));
    uf_cop_get_verified(ctx, cop,
                        us_chunk_verify(&cop->p->layout, &c->key, &cop->locs[cop->li], &hdr,
                                        part ? cop->head + US_CHUNK_HDR : NULL, cop->target,
                                        NULL, part ? c->span_off : 0,
                                        part ? c->span_len : c->length, cop->t0));
}

/* Attempt cop->a by the owner's path (AM once fallen back). */
static void uf_cop_attempt(struct ucache_context *ctx, uf_cop_t *cop)
{
    if (cop->a >= UF_CHUNK_ATTEMPTS) {
        if (cop->am) {
            uf_cop_finish(ctx, cop, cop->status);
        } else {
            uf_cop_fallback(ctx, cop, cop->status);
        }
        return;
    }
    if (cop->am || (cop->p->path == UT_PATH_AM)) {
        cop->am = true;
        uf_cop_fetch(ctx, cop, UF_COP_AM);
    } else if (cop->p->path == UT_PATH_MAPPED) {
        uf_cop_mapped(ctx, cop);
    } else {
        uf_cop_get(ctx, cop);
    }
}

void uf_cop_begin(struct ucache_context *ctx, uf_view_t *v, uf_peer_t *p, uf_chunk_t *c,
                  uf_cop_t *cop)
{
    cop->nr     = 0;
    cop->taken  = 0;
    cop->a      = 0;
    cop->am     = false;
    cop->cached = false;
    cop->how    = UF_HOW_HIT;
    cop->status = UCACHE_ERR_CORRUPT;
    cop->p      = p;
    cop->v      = v;
    cop->c      = c;
    cop->target = NULL;
    memset(&cop->rs, 0, sizeof(cop->rs));
    if (p->path != UT_PATH_MAPPED) {
        cop->target = uf_chunk_target(ctx, c);
        if (cop->target == NULL) {
            uf_cop_finish(ctx, cop, UCACHE_ERR_NO_MEMORY);
            return;
        }
    }
    uf_cop_attempt(ctx, cop);
}

/* The first error among the completed requests, UCACHE_OK if none. */
static ucache_status_t uf_cop_reqs_status(const uf_cop_t *cop)
{
    unsigned i;

    for (i = 0; i < cop->nr; i++) {
        if (cop->r[i].status != UCACHE_OK) {
            return cop->r[i].status;
        }
    }
    return UCACHE_OK;
}

void uf_cop_step(struct ucache_context *ctx, uf_cop_t *cop)
{
    ucache_status_t status = uf_cop_reqs_status(cop);
    unsigned flags = uf_am_flags(cop->c);

    cop->taken = 0;
    switch (cop->state) {
    case UF_COP_AM:
        status = uf_fetch_end(ctx, cop->p, cop->c, flags, &cop->rep, &cop->r[0]);
        if (status == UCACHE_ERR_AGAIN) {
            cop->status = status; /* its reply was lost (the owner said so): ask again */
            cop->a++;
            uf_cop_attempt(ctx, cop);
        } else if (status != UCACHE_OK) {
            uf_cop_finish(ctx, cop, status);
        } else if ((status = uf_am_take(ctx, cop->p, cop->c, &cop->rep, cop->target)) ==
                   UCACHE_OK) {
            uf_cop_finish(ctx, cop, UCACHE_OK);
        } else {
            UF_ADD(ctx, verify_retries, 1); /* evicted and reused while in flight */
            cop->status = status;
            cop->a++;
            uf_cop_attempt(ctx, cop);
        }
        return;
    case UF_COP_FILL:
        uf_cop_filled(ctx, cop, uf_fetch_end(ctx, cop->p, cop->c, 0, &cop->rep, &cop->r[0]));
        return;
    case UF_COP_IDX:
        if (status != UCACHE_OK) {
            uf_cop_get_failed(ctx, cop, status);
            return;
        }
        cop->nloc = us_index_match(&cop->p->layout, cop->bkt, &cop->c->key, cop->locs);
        cop->li   = 0;
        if (cop->nloc == 0) {
            uf_cop_get_failed(ctx, cop, UCACHE_ERR_NOT_FOUND);
            return;
        }
        uf_cop_get_slot(ctx, cop);
        return;
    case UF_COP_DATA:
        if (status == UCACHE_OK) {
            uf_cop_get_check(ctx, cop);
        } else {
            uf_cop_get_failed(ctx, cop, status);
        }
        return;
    case UF_COP_RECHECK:
        if (status == UCACHE_OK) {
            status = us_index_holds(&cop->p->layout, cop->bkt, &cop->c->key,
                                    &cop->locs[cop->li]) ? UCACHE_OK : UCACHE_ERR_TIMEOUT;
        }
        if (status == UCACHE_OK) {
            uf_cop_get_verified(ctx, cop, UCACHE_OK);
        } else {
            uf_cop_get_failed(ctx, cop, status);
        }
        return;
    default:
        return;
    }
}

/* Errors that mean "this owner cannot serve now" (or will not serve us:
 * AUTH, a reader without the cluster key): try the next one. */
static bool uf_owner_failed(ucache_status_t status)
{
    return (status == UCACHE_ERR_PEER) || (status == UCACHE_ERR_TIMEOUT) ||
           (status == UCACHE_ERR_AUTH) ||
           (status == UCACHE_ERR_TRANSPORT) || (status == UCACHE_ERR_CANCELED) ||
           (status == UCACHE_ERR_UNSUPPORTED) || (status == UCACHE_ERR_CORRUPT) ||
           (status == UCACHE_ERR_MSG_TRUNCATED) || (status == UCACHE_ERR_STALE) ||
           (status == UCACHE_ERR_PROTOCOL) ||
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
    uf_view_t *nv;
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
        if ((status == UCACHE_ERR_MOVED) && ((nv = uf_view_newer(ctx, v)) != NULL)) {
            /* our view is behind the owner's: the chunk, in the newer one */
            UF_ADD(ctx, moved, 1);
            status = uf_owners_try(ctx, nv, c, fn, arg);
            uf_view_release(nv);
            return status;
        }
        if ((status == UCACHE_ERR_PROTOCOL) && !atomic_exchange(&p->version_warned, true)) {
            UC_ERROR("owner %016llx speaks another protocol version than this reader's "
                     "(%u): a node of another release; its chunks are read from the next "
                     "owner or the origin until one of you is upgraded",
                     (unsigned long long)p->id, UF_PROTO_VERSION);
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
    uf_cop_t *cop = arg;

    uf_cop_begin(ctx, v, p, c, cop);
    while (cop->state != UF_COP_DONE) {
        uf_wait_all(ctx, cop->r, cop->nr);
        uf_cop_step(ctx, cop);
    }
    return cop->status;
}

ucache_status_t uf_read_chunk(struct ucache_context *ctx, uf_view_t *v, uf_chunk_t *c)
{
    ucache_status_t status;
    uf_cop_t cop;   /* on the stack (36 KiB, mostly untouched): a hit takes no lock for it */

    UF_ADD(ctx, chunk_reads, 1);
    status = uf_owners_try(ctx, v, c, uf_read_attempt, &cop);
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
    return ((p != NULL) && atomic_load_explicit(&p->ready, memory_order_acquire) &&
            (atomic_load_explicit(&p->recheck, memory_order_relaxed) == 0) &&
            (atomic_load_explicit(&p->newer, memory_order_relaxed) == NULL)) ? p : NULL;
}

/* ------------------------------------------------------------------------ */
/* A range with its chunks in flight together                                */
/* ------------------------------------------------------------------------ */

/* Chunk @p c of a read of [@p pos, @p end) of @p obj into @p dst: the one
 * that holds byte @p pos, and the part of it the read wants. */
static void uf_chunk_init(struct ucache_context *ctx, uf_chunk_t *c, const char *uri,
                          const us_object_t *obj, uint64_t pos, uint64_t end, char *dst)
{
    uint64_t cs = ctx->cfg.chunk_size, span_off, span_len;

    memset(c, 0, sizeof(*c));
    c->uri    = uri;
    c->obj    = obj;
    c->idx    = pos / cs;
    c->length = (uint32_t)((obj->size - c->idx * cs < cs) ? obj->size - c->idx * cs : cs);
    c->off    = (uint32_t)(pos - c->idx * cs);
    c->len    = (uint32_t)(((end - pos) < c->length - c->off) ? end - pos :
                                                                  c->length - c->off);
    c->dst    = dst;
    us_chunk_span(c->length, c->off, c->len, &span_off, &span_len);
    c->span_off = (uint32_t)span_off;
    c->span_len = (uint32_t)span_len;
}

ucache_status_t uf_rop_init(struct ucache_context *ctx, uf_rop_t *rop, const char *uri,
                            const us_object_t *obj, uint64_t offset, uint64_t end,
                            void *buf, unsigned window, uf_view_t *v)
{
    uint64_t cs = ctx->cfg.chunk_size, nchunks = (end - offset + cs - 1) / cs + 1;
    unsigned i;

    memset(rop, 0, sizeof(*rop));
    rop->uri    = uri;
    rop->obj    = *obj;
    rop->offset = rop->pos = offset;
    rop->end    = end;
    rop->buf    = buf;
    rop->v      = v;
    rop->status = UCACHE_OK;
    rop->window = (unsigned)((nchunks < window) ? nchunks : window);
    rop->window = (rop->window < 1) ? 1 : rop->window;
    rop->cs     = calloc(rop->window, sizeof(*rop->cs));
    rop->cops   = malloc(rop->window * sizeof(*rop->cops));
    if ((rop->cs == NULL) || (rop->cops == NULL)) {
        uf_rop_fini(rop);
        return UCACHE_ERR_NO_MEMORY;
    }
    for (i = 0; i < rop->window; i++) {
        rop->cops[i].state = UF_COP_DONE;
        rop->cops[i].nr    = 0;
    }
    return UCACHE_OK;
}

void uf_rop_fini(uf_rop_t *rop)
{
    free(rop->cs);
    free(rop->cops);
    rop->cs   = NULL;
    rop->cops = NULL;
}

/* A window's chunk begins (+1) or ends (-1) at owner @p p: the owners the
 * windows of the context ask at once. */
static void uf_window_count(struct ucache_context *ctx, uf_peer_t *p, int d)
{
    if ((d > 0) && (atomic_fetch_add(&p->windowed, 1) == 0)) {
        atomic_fetch_add(&ctx->window_owners, 1);
    } else if ((d < 0) && (atomic_fetch_sub(&p->windowed, 1) == 1)) {
        atomic_fetch_sub(&ctx->window_owners, 1);
    }
}

/* Whether @p rop may ask owner @p p for a chunk now: an owner windows ask
 * already, or fewer owners than a quarter of UCACHE_MAX_EPS (leaving
 * endpoints to single-chunk reads); a blocking read's first chunk always. */
static bool uf_window_admit(struct ucache_context *ctx, const uf_rop_t *rop, uf_peer_t *p)
{
    unsigned max_owners = ctx->cfg.max_eps / 4;

    max_owners = (max_owners > 0) ? max_owners : 1;
    return (atomic_load(&p->windowed) > 0) || ((rop->nbusy == 0) && !rop->strict) ||
           (atomic_load(&ctx->window_owners) < max_owners);
}

/* Chunk @p i of @p rop has ended its machine: verified, or read the single
 * way (its first owner failed, or was busy, or had no verified bytes). */
static void uf_rop_chunk_end(struct ucache_context *ctx, uf_rop_t *rop, unsigned i)
{
    uf_cop_t *cop = &rop->cops[i];
    ucache_status_t st = cop->status;

    rop->nbusy--;
    uf_window_count(ctx, cop->p, -1);
    if (st == UCACHE_OK) {
        UF_ADD(ctx, chunk_reads, 1);
        UF_ADD(ctx, windowed, 1);
        uf_peer_ok(cop->p);
        return;
    }
    if ((st == UCACHE_ERR_PEER) || (st == UCACHE_ERR_TIMEOUT) ||
        (st == UCACHE_ERR_TRANSPORT)) {
        uf_peer_suspect(ctx, cop->p, ucache_strerror(st)); /* pay its deadline once */
    }
    if (rop->status == UCACHE_OK) {
        st = uf_read_chunk(ctx, rop->v, &rop->cs[i]);
        if (st != UCACHE_OK) {
            rop->status = st;
        }
    }
}

/*
 * Begin the next chunks while the window has room.  A chunk whose first
 * owner is not set up is read the single way, here.  The windows of a
 * context ask at most a quarter of UCACHE_MAX_EPS owners at once, leaving
 * endpoints to single-chunk reads: a chunk of another owner waits
 * (uf_window_admit).  Stops beginning chunks at the first that failed.
 */
bool uf_rop_pump(struct ucache_context *ctx, uf_rop_t *rop)
{
    ucache_status_t st;
    uf_chunk_t *c;
    uf_peer_t *p;
    unsigned i;

    for (i = 0; (i < rop->window) && (rop->pos < rop->end) && (rop->status == UCACHE_OK) &&
                !rop->hold; i++) {
        if (rop->cops[i].state != UF_COP_DONE) {
            continue;
        }
        c = &rop->cs[i];
        uf_chunk_init(ctx, c, rop->uri, &rop->obj, rop->pos, rop->end,
                      rop->buf + (rop->pos - rop->offset));
        p = uf_first_owner(ctx, rop->v, c);
        if ((p != NULL) && !uf_window_admit(ctx, rop, p)) {
            break; /* another owner than those asked: not now */
        }
        rop->pos += c->len;
        if (p == NULL) {
            st = uf_read_chunk(ctx, rop->v, c);
            rop->status = (st != UCACHE_OK) ? st : rop->status;
            continue;
        }
        rop->nbusy++;
        uf_window_count(ctx, p, +1);
        uf_cop_begin(ctx, rop->v, p, c, &rop->cops[i]);
        if (rop->cops[i].state == UF_COP_DONE) {
            uf_rop_chunk_end(ctx, rop, i); /* done at once: mapped */
        }
    }
    return (rop->nbusy == 0) &&
           ((rop->pos >= rop->end) || (rop->status != UCACHE_OK));
}

size_t uf_rop_reqs(uf_rop_t *rop, ut_req_t **reqs)
{
    size_t n = 0;
    unsigned i, j;

    for (i = 0; i < rop->window; i++) {
        if (rop->cops[i].state == UF_COP_DONE) {
            continue;
        }
        for (j = 0; j < rop->cops[i].nr; j++) {
            if (!(rop->cops[i].taken & (1u << j))) {
                reqs[n++] = &rop->cops[i].r[j];
            }
        }
    }
    return n;
}

bool uf_rop_take(struct ucache_context *ctx, uf_rop_t *rop, ut_req_t *r)
{
    uintptr_t a = (uintptr_t)r, base = (uintptr_t)rop->cops;
    uf_cop_t *cop;
    unsigned i;

    if ((a < base) || (a >= base + rop->window * sizeof(*rop->cops))) {
        return false;
    }
    i   = (unsigned)((a - base) / sizeof(*rop->cops));
    cop = &rop->cops[i];
    cop->taken |= 1u << (r - cop->r);
    if (cop->taken == (1u << cop->nr) - 1) {
        uf_cop_step(ctx, cop);
        if (cop->state == UF_COP_DONE) {
            uf_rop_chunk_end(ctx, rop, i);
        }
    }
    return true;
}

/* A read of several chunks, up to UCACHE_READ_WINDOW of them in flight. */
static ucache_status_t uf_read_range(struct ucache_context *ctx, uf_view_t *v, const char *uri,
                                     const us_object_t *obj, uint64_t offset, uint64_t end,
                                     void *buf)
{
    ut_req_t **reqs;
    ucache_status_t status;
    uf_rop_t rop;
    size_t n, k, i;

    status = uf_rop_init(ctx, &rop, uri, obj, offset, end, buf, ctx->cfg.read_window, v);
    if (status != UCACHE_OK) {
        return status;
    }
    reqs = malloc(rop.window * 4 * sizeof(*reqs));
    if (reqs == NULL) {
        uf_rop_fini(&rop);
        return UCACHE_ERR_NO_MEMORY;
    }
    while (!uf_rop_pump(ctx, &rop)) {
        n = uf_rop_reqs(&rop, reqs);
        /* each request fails at its own deadline, so this ends */
        k = (n > 0) ? ut_wait_any(ctx->transport, reqs, n,
                                  ctx->cfg.fetch_timeout_ns + ctx->cfg.timeout_ns) : 0;
        for (i = 0; i < k; i++) {
            uf_rop_take(ctx, &rop, reqs[i]);
        }
    }
    status = rop.status;
    free(reqs);
    uf_rop_fini(&rop);
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
                      ((flags & UCACHE_WARM_UNPIN) ? UF_FETCH_UNPIN : 0) |
                      ((flags & UCACHE_WARM_NVME) ? UF_FETCH_NVME : 0);
    ucache_status_t status;
    us_object_t obj;
    unsigned attempt;
    uf_view_t *v;
    uf_chunk_t c;

    for (attempt = 0; attempt < UF_READ_ATTEMPTS; attempt++) {
        status = uf_lookup(ctx, uri, (attempt > 0) ? &obj : NULL, &obj);
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
            res->hits     += (c.how == UF_HOW_HIT) || (c.how == UF_HOW_NVME);
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
    uint64_t cs = ctx->cfg.chunk_size, end;
    ucache_status_t status;
    unsigned attempt;
    us_object_t obj;
    uf_view_t *v;
    uf_chunk_t c;

    for (attempt = 0; attempt < UF_READ_ATTEMPTS; attempt++) {
        /* size and version: cached for UCACHE_META_TTL (no call on a hit) */
        status = uf_lookup(ctx, uri, (attempt > 0) ? &obj : NULL, &obj);
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
        if (end <= offset) {
            /* nothing to read: at the end */
        } else if (offset / cs == (end - 1) / cs) {
            uf_chunk_init(ctx, &c, uri, &obj, offset, end, buf);
            status = uf_read_chunk(ctx, v, &c);
        } else {
            status = uf_read_range(ctx, v, uri, &obj, offset, end, buf);
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
