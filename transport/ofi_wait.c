/*
 * ofi_wait.c - the libfabric backend's waiting: waiters progress the
 * completion queue themselves (one at a time, under the context's lock)
 * and, once nothing has moved for UCACHE_PROGRESS_SPIN, sleep on its wait
 * fd where libfabric says that is safe (fi_trywait), else briefly - never
 * past a deadline or 1 ms unwoken; with a progress thread (a serving
 * context: providers here need the target to progress), the thread
 * progresses and waiters sleep on its broadcasts.  The thread's own naps
 * grow while nothing moves: to 1 ms while requests or replies are out, to
 * 20 ms on a wait fd or 1 ms without one (shm) when it is idle - an idle
 * owner costs next to no CPU - and a request posted wakes it.
 */
#include "transport/ofi_int.h"

#include <poll.h>
#include <sched.h>
#include <unistd.h>

#define UT_OFI_NAP_NS UC_NSEC_PER_MSEC /* the longest a waiter sleeps unwoken */
#define UT_OFI_NAP_FIRST       (50ull * 1000)        /* the thread's first nap */
#define UT_OFI_NAP_IDLE_FD     (20ull * UC_NSEC_PER_MSEC) /* idle, on a wait fd */
#define UT_OFI_NAP_IDLE_POLLED UC_NSEC_PER_MSEC      /* idle, no wait fd (shm) */
#define UT_OFI_SPIN_MAX UC_NSEC_PER_MSEC /* the thread's longest spin (traffic) */

static __thread bool ut_ofi_progress_thread; /* this thread is a context's */

unsigned ut_ofi_progress(ut_ctx_t *c)
{
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(c);
    unsigned n;

    pthread_mutex_lock(&ctx->lock);
    n = ut_ofi_do_progress(ctx);
    pthread_mutex_unlock(&ctx->lock);
    return n;
}

/* ctx->lock held: wait on @p cond up to @p ns (lock released). */
static void do_cond_nap(ut_ofi_ctx_t *ctx, pthread_cond_t *cond, uint64_t ns)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ns;
    ts.tv_sec  += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(cond, &ctx->lock, &ts);
}

/* ctx->lock held: sleep up to @p ns (lock released) on the queue's wait fd
 * if there is one and libfabric says that is safe: -1 if it is not, 1 if
 * the fd woke us (traffic), 0 if the time ran out. */
static int do_fd_nap(ut_ofi_ctx_t *ctx, uint64_t ns)
{
    struct fid *fids[1] = { &ctx->cq->fid };
    struct pollfd pfd;
    int ret;

    if ((ctx->waitfd < 0) || (fi_trywait(ctx->fabric, fids, 1) != FI_SUCCESS)) {
        return -1;
    }
    pfd.fd      = ctx->waitfd;
    pfd.events  = POLLIN;
    pfd.revents = 0;
    pthread_mutex_unlock(&ctx->lock);
    ret = poll(&pfd, 1, (int)((ns + UC_NSEC_PER_MSEC - 1) / UC_NSEC_PER_MSEC));
    pthread_mutex_lock(&ctx->lock);
    return (ret > 0) ? 1 : 0;
}

/*
 * ctx->lock held, nothing progressed: sleep (lock released) until @p until
 * or UT_OFI_NAP_NS - on the queue's wait fd where libfabric says it is safe
 * to, else briefly; with a progress thread, until it progresses.
 */
static void do_nap(ut_ofi_ctx_t *ctx, uint64_t until)
{
    uint64_t now = uc_time_ns(), ns;

    if (until <= now) {
        return;
    }
    ns = (until - now < UT_OFI_NAP_NS) ? until - now : UT_OFI_NAP_NS;
    if (ctx->thread_running && !ut_ofi_progress_thread) {
        do_cond_nap(ctx, &ctx->progressed, ns);
        return;
    }
    if (do_fd_nap(ctx, ns) >= 0) {
        return;
    }
    pthread_mutex_unlock(&ctx->lock);
    usleep((ns > 50000) ? 50 : (useconds_t)(ns / 1000 + 1));
    pthread_mutex_lock(&ctx->lock);
}

static bool do_done(const ut_req_t *req)
{
    return req->status != UCACHE_INPROGRESS;
}

/* ctx->lock held: progress (or, with a progress thread, let it) once; nap
 * when nothing moved for UCACHE_PROGRESS_SPIN. */
static void do_wait_step(ut_ofi_ctx_t *ctx, uint64_t until, uint64_t *idle_since)
{
    uint64_t now;

    if (!ctx->thread_running && (ut_ofi_do_progress(ctx) > 0)) {
        *idle_since = 0;
        return;
    }
    now = uc_time_ns();
    if (*idle_since == 0) {
        *idle_since = now;
    }
    if (!ctx->thread_running && (now - *idle_since < ctx->cfg.progress_spin_ns)) {
        return;
    }
    do_nap(ctx, until);
}

ucache_status_t ut_ofi_wait(ut_ctx_t *c, ut_req_t *reqs, size_t n, uint64_t timeout_ns)
{
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(c);
    uint64_t until = uc_deadline(timeout_ns), idle = 0;
    ucache_status_t status = UCACHE_OK;
    size_t i;
    bool all;

    pthread_mutex_lock(&ctx->lock);
    for (;;) {
        all = true;
        for (i = 0; (i < n) && all; i++) {
            all = do_done(&reqs[i]);
        }
        if (all || (uc_time_ns() >= until)) {
            break;
        }
        do_wait_step(ctx, until, &idle);
    }
    if (!all && !ctx->thread_running) {
        ut_ofi_do_progress(ctx);
    }
    for (i = 0; i < n; i++) {
        if (!do_done(&reqs[i])) {
            status = UCACHE_INPROGRESS;
        } else if ((reqs[i].status != UCACHE_OK) && (status == UCACHE_OK)) {
            status = reqs[i].status;
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    return status;
}

size_t ut_ofi_wait_any(ut_ctx_t *c, ut_req_t **reqs, size_t n, uint64_t timeout_ns)
{
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(c);
    uint64_t until = uc_deadline(timeout_ns), idle = 0;
    size_t i, done = 0;
    ut_req_t *t;

    pthread_mutex_lock(&ctx->lock);
    for (;;) {
        for (i = 0; i < n; i++) {
            if (do_done(reqs[i])) {
                t = reqs[done];
                reqs[done++] = reqs[i];
                reqs[i] = t;
            }
        }
        if ((done > 0) || (n == 0) || (uc_time_ns() >= until)) {
            break;
        }
        do_wait_step(ctx, until, &idle);
    }
    pthread_mutex_unlock(&ctx->lock);
    return done;
}

/*
 * ctx->lock held: the progress thread sleeps @p ns (lock released) - on the
 * queue's wait fd where libfabric says that is safe, else until a request
 * is posted (ctx->kick) - and returns how long its next nap may be: 0 if
 * the fd woke it (traffic: a peer's one-sided read over tcp is served by
 * our progress and leaves no completion, so the thread spins again, as
 * after a completion), else twice this one, up to UT_OFI_NAP_NS while
 * anything is out (a send may need progress to leave), longer while nothing
 * is (an idle owner: over tcp its fd wakes it, over shm a request waits at
 * most UT_OFI_NAP_IDLE_POLLED).
 */
static uint64_t do_thread_nap(ut_ofi_ctx_t *ctx, uint64_t ns)
{
    bool busy, fd = (ctx->waitfd >= 0);

    if (!fd) {
        ctx->napping = true;
        do_cond_nap(ctx, &ctx->kick, ns);
        ctx->napping = false;
    } else if (do_fd_nap(ctx, ns) > 0) {
        return 0;
    }
    busy = (ctx->nfree < ctx->cfg.max_outstanding) || (ctx->reply_out != NULL);
    ns  *= 2;
    return busy ? ((ns < UT_OFI_NAP_NS) ? ns : UT_OFI_NAP_NS) :
           (ns < (fd ? UT_OFI_NAP_IDLE_FD : UT_OFI_NAP_IDLE_POLLED)) ? ns :
           (fd ? UT_OFI_NAP_IDLE_FD : UT_OFI_NAP_IDLE_POLLED);
}

/*
 * The progress thread: progress while anything moves, spin a while once
 * nothing does, then nap (do_thread_nap).  Over tcp a peer's read is served
 * by our progress and leaves no completion, so the traffic that matters is
 * seen only as the wait fd waking a nap: woken sooner than it spun, the
 * thread doubles its spin (up to UT_OFI_SPIN_MAX) - a steady stream of
 * reads is served spinning, not each after a wake-up - and a nap that runs
 * out brings the spin back to UCACHE_PROGRESS_SPIN.
 */
static void *do_thread(void *arg)
{
    ut_ofi_ctx_t *ctx = arg;
    uint64_t base = ctx->cfg.progress_spin_ns;
    uint64_t idle = 0, nap = UT_OFI_NAP_FIRST, spin = base, now;

    ut_ofi_progress_thread = true;
    pthread_mutex_lock(&ctx->lock);
    while (!atomic_load(&ctx->thread_stop)) {
        /* the lock is let go between two progress calls: the threads that
         * post, reply and wait for completions take it there, not only
         * when this thread naps (held through a spin of up to
         * UT_OFI_SPIN_MAX, it kept an owner's fill threads' replies) */
        pthread_mutex_unlock(&ctx->lock);
        sched_yield();
        pthread_mutex_lock(&ctx->lock);
        if (ut_ofi_do_progress(ctx) > 0) {
            idle = 0;
            nap  = UT_OFI_NAP_FIRST;
            continue;
        }
        now = uc_time_ns();
        if (idle == 0) {
            idle = now;
            continue;
        }
        if (now - idle < spin) {
            continue;
        }
        nap = do_thread_nap(ctx, nap);
        if (nap != 0) { /* slept it out (or polled: shm) */
            spin = base;
            continue;
        }
        spin = (uc_time_ns() - now < spin) ?
               ((2 * spin < UT_OFI_SPIN_MAX) ? 2 * spin : UT_OFI_SPIN_MAX) : base;
        spin = (spin > base) ? spin : base;
        idle = 0;
        nap  = UT_OFI_NAP_FIRST;
    }
    pthread_mutex_unlock(&ctx->lock);
    return NULL;
}

ucache_status_t ut_ofi_thread_start(ut_ofi_ctx_t *ctx)
{
    atomic_store(&ctx->thread_stop, false);
    ctx->thread_running = true; /* before the thread reads it */
    if (pthread_create(&ctx->thread, NULL, do_thread, ctx) != 0) {
        ctx->thread_running = false;
        UC_ERROR("cannot start the progress thread");
        return UCACHE_ERR_NO_MEMORY;
    }
    return UCACHE_OK;
}

void ut_ofi_thread_stop(ut_ofi_ctx_t *ctx)
{
    if (!ctx->thread_running) {
        return;
    }
    atomic_store(&ctx->thread_stop, true);
    pthread_join(ctx->thread, NULL);
    ctx->thread_running = false;
}
