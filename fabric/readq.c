/*
 * readq.c - posted reads (ucache_read_post, ucache_wait): a queue of the
 * caller's requests served by UCACHE_READ_THREADS reader threads, started
 * on first use.  The caller owns each request until ucache_wait() has seen
 * it complete; the queue links them through priv[0].
 */
#include "fabric/fabric.h"
#include "origin/cred.h"
#include "util/key.h"
#include "util/log.h"
#include "util/time.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Posted reads: priv[0] links the queue. */
#define UF_RQ_NEXT(r) (*(ucache_read_req_t **)&(r)->priv[0])

static void *uf_reader_thread(void *arg)
{
    struct ucache_context *ctx = arg;
    ucache_read_req_t *r;
    ucache_status_t status;
    size_t nread = 0;

    pthread_mutex_lock(&ctx->rq_lock);
    for (;;) {
        while (!ctx->rq_stop && (ctx->rq_head == NULL)) {
            pthread_cond_wait(&ctx->rq_work, &ctx->rq_lock);
        }
        if (ctx->rq_head == NULL) {
            break;
        }
        r = ctx->rq_head;
        ctx->rq_head = UF_RQ_NEXT(r);
        if (ctx->rq_head == NULL) {
            ctx->rq_tail = NULL;
        }
        pthread_mutex_unlock(&ctx->rq_lock);
        status = ucache_read(ctx, r->uri, r->offset, r->len, r->buf, &nread);
        pthread_mutex_lock(&ctx->rq_lock);
        r->nread  = (status == UCACHE_OK) ? nread : 0;
        r->status = status;
        pthread_cond_broadcast(&ctx->rq_done);
    }
    pthread_mutex_unlock(&ctx->rq_lock);
    return NULL;
}

void uf_readers_stop(struct ucache_context *ctx)
{
    unsigned i;

    pthread_mutex_lock(&ctx->rq_lock);
    ctx->rq_stop = true; /* queued reads still run: callers own them */
    pthread_cond_broadcast(&ctx->rq_work);
    pthread_mutex_unlock(&ctx->rq_lock);
    for (i = 0; i < ctx->nreaders; i++) {
        pthread_join(ctx->readers[i], NULL);
    }
    free(ctx->readers);
    ctx->readers  = NULL;
    ctx->nreaders = 0;
}

ucache_status_t ucache_read_post(ucache_h ctx, ucache_read_req_t *reqs, size_t n)
{
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
    pthread_mutex_lock(&ctx->rq_lock);
    if (ctx->readers == NULL) {
        ctx->readers = calloc(ctx->cfg.read_threads, sizeof(*ctx->readers));
        for (i = 0; (ctx->readers != NULL) && (i < ctx->cfg.read_threads); i++) {
            if (pthread_create(&ctx->readers[i], NULL, uf_reader_thread, ctx) != 0) {
                break;
            }
            ctx->nreaders++;
        }
        if (ctx->nreaders == 0) {
            free(ctx->readers);
            ctx->readers = NULL;
            pthread_mutex_unlock(&ctx->rq_lock);
            UC_ERROR("cannot start reader threads");
            return UCACHE_ERR_NO_MEMORY;
        }
    }
    for (i = 0; i < n; i++) {
        reqs[i].status = UCACHE_INPROGRESS;
        reqs[i].nread  = 0;
        UF_RQ_NEXT(&reqs[i]) = NULL;
        if (ctx->rq_tail != NULL) {
            UF_RQ_NEXT(ctx->rq_tail) = &reqs[i];
        } else {
            ctx->rq_head = &reqs[i];
        }
        ctx->rq_tail = &reqs[i];
    }
    pthread_cond_broadcast(&ctx->rq_work);
    pthread_mutex_unlock(&ctx->rq_lock);
    return UCACHE_OK;
}

ucache_status_t ucache_wait(ucache_h ctx, ucache_read_req_t *reqs, size_t n,
                            uint64_t timeout_ns)
{
    uint64_t deadline = uc_deadline(timeout_ns), t;
    ucache_status_t ret;
    struct timespec ts;
    size_t i;

    if ((ctx == NULL) || ((n > 0) && (reqs == NULL))) {
        return UCACHE_ERR_INVALID;
    }
    pthread_mutex_lock(&ctx->rq_lock);
    for (;;) {
        ret = UCACHE_OK;
        for (i = 0; i < n; i++) {
            if (reqs[i].status == UCACHE_INPROGRESS) {
                ret = UCACHE_INPROGRESS;
                break;
            }
            if ((reqs[i].status != UCACHE_OK) && (ret == UCACHE_OK)) {
                ret = reqs[i].status;
            }
        }
        if ((ret != UCACHE_INPROGRESS) || (uc_time_ns() >= deadline)) {
            break;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        t = (uint64_t)ts.tv_nsec + ((deadline - uc_time_ns() < 100 * UC_NSEC_PER_MSEC) ?
                                    deadline - uc_time_ns() : 100 * UC_NSEC_PER_MSEC);
        ts.tv_sec += (time_t)(t / UC_NSEC_PER_SEC);
        ts.tv_nsec = (long)(t % UC_NSEC_PER_SEC);
        pthread_cond_timedwait(&ctx->rq_done, &ctx->rq_lock, &ts);
    }
    pthread_mutex_unlock(&ctx->rq_lock);
    return ret;
}
