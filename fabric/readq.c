/*
 * readq.c - posted reads (ucache_read_post, ucache_wait) as transport
 * requests in flight, with no thread of their own.  Each posted read is a
 * range read (uf_rop_t, client.c) with up to UCACHE_READ_WINDOW of its
 * chunks in flight; ucache_wait() drives every posted read of the context
 * - begins chunks, waits for any of their requests (index reads, chunk
 * gets, FETCHes) and steps the machines they belong to - not only the
 * ones it was given, so a caller may post many and wait for one.  One
 * caller drives at a time; the others sleep until a read completes.
 *
 * What still blocks the driving caller: an object's size and version
 * when they are not cached (UCACHE_META_TTL), the first connection to an
 * owner, a same-host (mapped) chunk - a copy - and a chunk whose first
 * owner did not serve it, which is read owner by owner and then from the
 * origin (uf_read_chunk), as ucache_read() does.
 */
#include "fabric/fabric.h"
#include "util/log.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One posted read: the caller's request, and the range read that serves it. */
struct uf_posted {
    ucache_read_req_t *req;
    struct uf_posted  *next;
    bool               started, over;
    ucache_status_t    status;
    size_t             nread;
    uf_rop_t           rop;
};

#define UF_DRIVE_SLICE (1ull * UC_NSEC_PER_MSEC) /* while others wait to drive */

/* The next posted read of a round that ends at @p last. */
#define UF_NEXT(_pr, _last) (((_pr) == (_last)) ? NULL : (_pr)->next)

/* The object's status, then the range read; false if it ended already. */
static bool uf_posted_start(struct ucache_context *ctx, uf_posted_t *pr)
{
    ucache_read_req_t *r = pr->req;
    ucache_status_t status;
    us_object_t obj;
    uint64_t end;

    pr->started = true;
    status = uf_lookup(ctx, r->uri, NULL, &obj);
    if ((status == UCACHE_OK) && (r->offset > obj.size)) {
        status = UCACHE_ERR_OUT_OF_RANGE;
    }
    if (status != UCACHE_OK) {
        pr->status = status;
        pr->over   = true;
        return false;
    }
    end = (r->len > obj.size - r->offset) ? obj.size : r->offset + r->len;
    status = uf_rop_init(ctx, &pr->rop, r->uri, &obj, r->offset, end, r->buf,
                         ctx->cfg.read_window, uf_view_acquire(ctx));
    if (status != UCACHE_OK) {
        uf_view_release(pr->rop.v);
        pr->status = status;
        pr->over   = true;
        return false;
    }
    pr->rop.strict = true; /* many reads, one driver: the owners' bound is theirs */
    return true;
}

/* The range read is over: the request's outcome.  An object that changed
 * at the origin meanwhile is read again whole, as ucache_read() does. */
static void uf_posted_end(struct ucache_context *ctx, uf_posted_t *pr)
{
    ucache_read_req_t *r = pr->req;

    pr->status = pr->rop.status;
    pr->nread  = (size_t)(pr->rop.end - pr->rop.offset);
    uf_view_release(pr->rop.v);
    uf_rop_fini(&pr->rop);
    if (pr->status == UCACHE_OK) {
        UF_ADD(ctx, bytes, pr->nread);
    } else if (pr->status == UCACHE_ERR_STALE) {
        UF_ADD(ctx, stale_objects, 1);
        pr->status = uf_read(ctx, r->uri, r->offset, r->len, r->buf, &pr->nread);
    }
    pr->over = true;
}

/*
 * One round over the posted reads from @p head to @p last, oldest first
 * (ctx->rq_driving ours, rq_lock not held: posts append after @p last,
 * whose next this round does not read): begin what has room - while the requests in flight
 * are fewer than half UCACHE_MAX_OUTSTANDING, the rest for the transport's
 * other users - wait up to @p slice_ns for any request in flight, step
 * what completed.  Reads that end are marked over.
 */
static void uf_posted_round(struct ucache_context *ctx, uf_posted_t *head,
                            const uf_posted_t *last, uint64_t slice_ns)
{
    ut_req_t **reqs = ctx->rq_reqs;
    size_t n = 0, k, i, cap, limit = ctx->cfg.max_outstanding / 2;
    uf_posted_t *pr;

    for (pr = head; pr != NULL; pr = UF_NEXT(pr, last)) {
        if (pr->over || (!pr->started && (n >= limit || !uf_posted_start(ctx, pr)))) {
            continue;
        }
        pr->rop.hold = (n >= limit);
        if (uf_rop_pump(ctx, &pr->rop)) {
            uf_posted_end(ctx, pr);
            continue;
        }
        cap = n + (size_t)pr->rop.window * 4;
        if ((cap > ctx->rq_reqs_cap) &&
            ((reqs = realloc(ctx->rq_reqs, cap * 2 * sizeof(*reqs))) != NULL)) {
            ctx->rq_reqs     = reqs;
            ctx->rq_reqs_cap = cap * 2;
        }
        reqs = ctx->rq_reqs;
        if (cap <= ctx->rq_reqs_cap) {
            n += uf_rop_reqs(&pr->rop, reqs + n);
        }
    }
    if (n == 0) {
        return; /* nothing in flight (no memory for the list: the next round) */
    }
    k = ut_wait_any(ctx->transport, reqs, n, slice_ns);
    for (i = 0; i < k; i++) {
        for (pr = head; (pr != NULL) && (pr->over || !pr->started ||
                                         !uf_rop_take(ctx, &pr->rop, reqs[i]));
             pr = UF_NEXT(pr, last)) {
        }
    }
    for (pr = head; pr != NULL; pr = UF_NEXT(pr, last)) { /* those whose last chunk ended */
        pr->rop.hold = true;
        if (pr->started && !pr->over && uf_rop_pump(ctx, &pr->rop)) {
            uf_posted_end(ctx, pr);
        }
    }
}

/* rq_lock held: hand the reads that are over to their callers. */
static void uf_posted_reap(struct ucache_context *ctx)
{
    uf_posted_t **pp = &ctx->rq_head, *pr, *prev = NULL;
    bool any = false;

    while ((pr = *pp) != NULL) {
        if (!pr->over) {
            prev = pr;
            pp   = &pr->next;
            continue;
        }
        *pp = pr->next;
        if (ctx->rq_tail == pr) {
            ctx->rq_tail = prev;
        }
        pr->req->nread  = (pr->status == UCACHE_OK) ? pr->nread : 0;
        pr->req->status = pr->status;
        pr->req->priv[0] = NULL;
        free(pr);
        any = true;
    }
    if (any) {
        pthread_cond_broadcast(&ctx->rq_done);
    }
}

/* rq_lock held, not driving: sleep until a read completes, the driver
 * leaves, or @p deadline (at most UF_DRIVE_SLICE). */
static void uf_posted_sleep(struct ucache_context *ctx, uint64_t deadline)
{
    uint64_t now = uc_time_ns(), t;
    struct timespec ts;

    t = (deadline > now) ? deadline - now : 0;
    t = (t < UF_DRIVE_SLICE) ? t : UF_DRIVE_SLICE;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t += (uint64_t)ts.tv_nsec;
    ts.tv_sec += (time_t)(t / UC_NSEC_PER_SEC);
    ts.tv_nsec = (long)(t % UC_NSEC_PER_SEC);
    ctx->rq_waiters++;
    pthread_cond_timedwait(&ctx->rq_done, &ctx->rq_lock, &ts);
    ctx->rq_waiters--;
}

/* rq_lock held: one round as the driver (false: another drives). */
static bool uf_posted_drive(struct ucache_context *ctx, uint64_t deadline)
{
    uint64_t now = uc_time_ns(), slice = (deadline > now) ? deadline - now : 0;
    uf_posted_t *head, *last;

    if (ctx->rq_driving) {
        return false;
    }
    ctx->rq_driving = true;
    head = ctx->rq_head; /* posts go in after the tail: this round leaves them */
    last = ctx->rq_tail;
    if ((ctx->rq_waiters > 0) && (slice > UF_DRIVE_SLICE)) {
        slice = UF_DRIVE_SLICE;
    }
    pthread_mutex_unlock(&ctx->rq_lock);
    uf_posted_round(ctx, head, last, slice);
    pthread_mutex_lock(&ctx->rq_lock);
    ctx->rq_driving = false;
    uf_posted_reap(ctx);
    pthread_cond_broadcast(&ctx->rq_done); /* another may drive now */
    return true;
}

void uf_posted_drain(struct ucache_context *ctx)
{
    pthread_mutex_lock(&ctx->rq_lock);
    while (ctx->rq_head != NULL) { /* each read ends by its requests' deadlines */
        if (!uf_posted_drive(ctx, uc_deadline(UF_DRIVE_SLICE * 100))) {
            uf_posted_sleep(ctx, uc_deadline(UF_DRIVE_SLICE));
        }
    }
    pthread_mutex_unlock(&ctx->rq_lock);
    free(ctx->rq_reqs);
    ctx->rq_reqs     = NULL;
    ctx->rq_reqs_cap = 0;
}

ucache_status_t ucache_read_post(ucache_h ctx, ucache_read_req_t *reqs, size_t n)
{
    uf_posted_t **prs;
    size_t i;

    if ((ctx == NULL) || ((n > 0) && (reqs == NULL))) {
        return UCACHE_ERR_INVALID;
    }
    for (i = 0; i < n; i++) {
        if ((reqs[i].uri == NULL) || (reqs[i].buf == NULL) || (reqs[i].len == 0)) {
            UC_ERROR("ucache_read_post: request %zu has no URI, buffer or length", i);
            return UCACHE_ERR_INVALID;
        }
    }
    prs = calloc((n > 0) ? n : 1, sizeof(*prs));
    for (i = 0; (prs != NULL) && (i < n); i++) {
        if ((prs[i] = calloc(1, sizeof(*prs[i]))) == NULL) {
            break;
        }
    }
    if ((prs == NULL) || (i < n)) {
        while ((prs != NULL) && (i-- > 0)) {
            free(prs[i]);
        }
        free(prs);
        UC_ERROR("ucache_read_post: no memory for %zu requests", n);
        return UCACHE_ERR_NO_MEMORY;
    }
    pthread_mutex_lock(&ctx->rq_lock);
    for (i = 0; i < n; i++) {
        reqs[i].status  = UCACHE_INPROGRESS;
        reqs[i].nread   = 0;
        reqs[i].priv[0] = prs[i];
        prs[i]->req     = &reqs[i];
        prs[i]->next    = NULL;
        if (ctx->rq_tail != NULL) {
            ctx->rq_tail->next = prs[i];
        } else {
            ctx->rq_head = prs[i];
        }
        ctx->rq_tail = prs[i];
    }
    pthread_mutex_unlock(&ctx->rq_lock);
    free(prs);
    return UCACHE_OK;
}

/* rq_lock held: UCACHE_INPROGRESS while any of @p reqs is, else the first
 * failure, else UCACHE_OK. */
static ucache_status_t uf_posted_status(const ucache_read_req_t *reqs, size_t n)
{
    ucache_status_t ret = UCACHE_OK;
    size_t i;

    for (i = 0; i < n; i++) {
        if (reqs[i].status == UCACHE_INPROGRESS) {
            return UCACHE_INPROGRESS;
        }
        if ((reqs[i].status != UCACHE_OK) && (ret == UCACHE_OK)) {
            ret = reqs[i].status;
        }
    }
    return ret;
}

ucache_status_t ucache_wait(ucache_h ctx, ucache_read_req_t *reqs, size_t n,
                            uint64_t timeout_ns)
{
    uint64_t deadline = uc_deadline(timeout_ns);
    ucache_status_t ret;
    bool drove = false;

    if ((ctx == NULL) || ((n > 0) && (reqs == NULL))) {
        return UCACHE_ERR_INVALID;
    }
    pthread_mutex_lock(&ctx->rq_lock);
    for (;;) {
        ret = uf_posted_status(reqs, n);
        if ((ret != UCACHE_INPROGRESS) || ((uc_time_ns() >= deadline) && drove)) {
            break;
        }
        if (uf_posted_drive(ctx, deadline)) {
            drove = true; /* a wait of 0 drives one round */
        } else if (uc_time_ns() >= deadline) {
            break;
        } else {
            uf_posted_sleep(ctx, deadline);
        }
    }
    pthread_mutex_unlock(&ctx->rq_lock);
    return ret;
}
