/*
 * touch.c - hit feedback: one-sided hits never reach an owner's CPU, so
 * readers report the keys they hit and the context's thread sends them to
 * their owners (TOUCH), whose eviction counts each report as a hit.
 *
 * Every distinct key a context hits is reported once per window (one
 * period of the context's thread, UCACHE_MEMBERS_POLL): a table of recent
 * reports drops the repeats, so a hot key costs one 16-byte report a
 * window however often it is read, and a reader that lives for a few
 * reads - a DataLoader worker of one epoch, a `ucache read` - reports
 * every chunk it hit (1-in-16 sampling lost most of those: a hot set read
 * by four short-lived processes kept 27 of 128 chunks through a scan).
 * The read path makes no call: keys wait per owner until the thread sends
 * them, and a buffer half full wakes it early.  Best effort: a report that
 * would wait for a lock, or find its owner's buffer full, is dropped and
 * counted.
 */
#include "fabric/fabric.h"
#include "util/log.h"
#include "util/time.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The table entry of @p key at owner @p owner in window @p gen (nonzero). */
static inline uint64_t uf_touch_tag(const us_key_t *key, uint64_t owner, uint64_t gen)
{
    uint64_t t = (key->lo ^ (key->hi * 0x9e3779b97f4a7c15ull) ^ owner) +
                 gen * 0xc2b2ae3d27d4eb4full;

    return (t == 0) ? 1 : t;
}

void uf_touch_note(struct ucache_context *ctx, uf_peer_t *p, const us_key_t *key)
{
    uint64_t gen = atomic_load_explicit(&ctx->touch_gen, memory_order_relaxed);
    uint64_t tag = uf_touch_tag(key, p->id, gen);
    _Atomic uint64_t *seen = &ctx->touch_seen[(key->lo ^ p->id) % UF_TOUCH_SEEN];
    unsigned n;

    atomic_fetch_add_explicit(&p->touch_hits, 1, memory_order_relaxed);
    if (atomic_load_explicit(seen, memory_order_relaxed) == tag) {
        return;                        /* reported in this window already */
    }
    atomic_store_explicit(seen, tag, memory_order_relaxed);
    if (pthread_mutex_trylock(&p->touch_lock) != 0) { /* being flushed: never wait */
        atomic_fetch_add_explicit(&ctx->st.touch_dropped, 1, memory_order_relaxed);
        return;
    }
    if (p->touch == NULL) {
        p->touch = malloc(sizeof(*p->touch) * UF_TOUCH_MAX);
    }
    n = p->ntouch;
    if ((p->touch != NULL) && (n < UF_TOUCH_MAX)) {
        p->touch[n] = *key;
        atomic_store_explicit(&p->ntouch, n + 1, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&ctx->st.touch_dropped, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&p->touch_lock);
    if ((n + 1 == UF_TOUCH_MAX / 2) &&
        !atomic_exchange_explicit(&ctx->touch_wake, true, memory_order_relaxed) &&
        (pthread_mutex_trylock(&ctx->lock) == 0)) {
        pthread_cond_signal(&ctx->cond); /* send before the buffer fills */
        pthread_mutex_unlock(&ctx->lock);
    }
}

static void uf_touch_send(struct ucache_context *ctx, uf_peer_t *p,
                          const us_key_t *keys, unsigned n, uint64_t hits)
{
    static _Thread_local uint8_t msg[sizeof(uf_touch_req_t) +
                                     UF_TOUCH_MAX * sizeof(us_key_t)];
    uf_touch_req_t req = { .magic = UF_PROTO_MAGIC, .version = UF_PROTO_VERSION,
                           .count = (uint16_t)n, .weight = 1,
                           .hits = (hits > UINT32_MAX) ? UINT32_MAX : (uint32_t)hits };
    ut_req_t r;

    if (p->self) {
        uf_node_touch(ctx->node, keys, n, 1, hits);
    } else {
        memcpy(msg, &req, sizeof(req));
        memcpy(msg + sizeof(req), keys, n * sizeof(*keys));
        if (ut_rpc_post(&r, p->tp, UF_RPC_TOUCH, msg, sizeof(req) + n * sizeof(*keys),
                        NULL, 0, NULL, 0) == UCACHE_OK) {
            uf_wait_all(ctx, &r, 1); /* r is on this stack */
        }
        if (r.status != UCACHE_OK) {
            return; /* feedback is best effort; the next read reports failures */
        }
    }
    atomic_fetch_add_explicit(&ctx->st.touch_sent, n, memory_order_relaxed);
}

void uf_touch_flush(struct ucache_context *ctx, bool new_window)
{
    us_key_t *keys = malloc(sizeof(*keys) * UF_TOUCH_MAX);
    uf_peer_t *p, *first;
    uint64_t hits;
    unsigned b, n;

    if (new_window) {          /* keys hit from now on are reported again */
        atomic_fetch_add_explicit(&ctx->touch_gen, 1, memory_order_relaxed);
    }
    atomic_store_explicit(&ctx->touch_wake, false, memory_order_relaxed);
    if (keys == NULL) {
        return;
    }
    for (b = 0; b < UF_PEER_BUCKETS; b++) {
        /* chains only grow at their head and peers live until finalize,
         * so a chain's head, once read, can be walked without the lock */
        first = atomic_load_explicit(&ctx->peers[b], memory_order_acquire);
        for (p = first; p != NULL; p = p->next) {
            if ((atomic_load_explicit(&p->ntouch, memory_order_relaxed) == 0) &&
                (atomic_load_explicit(&p->touch_hits, memory_order_relaxed) == 0)) {
                continue;
            }
            pthread_mutex_lock(&p->touch_lock);
            n = p->ntouch;
            if (n > 0) {     /* hits without keys (repeats): no buffer yet */
                memcpy(keys, p->touch, n * sizeof(*keys));
            }
            atomic_store_explicit(&p->ntouch, 0, memory_order_relaxed);
            pthread_mutex_unlock(&p->touch_lock);
            hits = atomic_exchange_explicit(&p->touch_hits, 0, memory_order_relaxed);
            if (((n > 0) || (hits > 0)) && atomic_load(&p->ready) &&
                (atomic_load(&p->newer) == NULL)) {   /* not a restarted node's old self */
                uf_touch_send(ctx, p, keys, n, hits);
            }
        }
    }
    free(keys);
}
