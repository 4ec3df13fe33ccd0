/*
 * touch.c - hit feedback: one-sided hits never reach an owner's CPU, so
 * readers sample them (1 in UF_TOUCH_SAMPLE) and the context's thread
 * reports the keys to their owners (TOUCH), whose eviction counts each as
 * UF_TOUCH_SAMPLE hits.  Best effort: a sample that would wait is dropped.
 */
#include "fabric/fabric.h"
#include "util/log.h"
#include "util/time.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/*
 * Hit feedback.  One-sided hits never reach the owner's CPU, so its
 * eviction would see them as cold; readers report 1 in UF_TOUCH_SAMPLE hits
 * (a per-thread random draw, so no access pattern can hide from it), each
 * standing for UF_TOUCH_SAMPLE hits.  The keys wait per peer and the
 * context's thread sends them, so the read path makes no call for it.
 */
void uf_touch_sample(struct ucache_context *ctx, uf_peer_t *p, const us_key_t *key)
{
    static _Thread_local uint64_t rng;

    if (rng == 0) {
        rng = (uint64_t)(uintptr_t)&rng ^ uc_time_ns() ^ 0x9e3779b97f4a7c15ull;
    }
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    if (rng % UF_TOUCH_SAMPLE != 0) {
        return;
    }
    if (pthread_mutex_trylock(&p->touch_lock) != 0) { /* being flushed: never wait */
        atomic_fetch_add_explicit(&ctx->st.touch_dropped, 1, memory_order_relaxed);
        return;
    }
    if (p->touch == NULL) {
        p->touch = malloc(sizeof(*p->touch) * UF_TOUCH_MAX);
    }
    if ((p->touch != NULL) && (p->ntouch < UF_TOUCH_MAX)) {
        p->touch[p->ntouch++] = *key;
    } else {
        atomic_fetch_add_explicit(&ctx->st.touch_dropped, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&p->touch_lock);
}

static void uf_touch_send(struct ucache_context *ctx, uf_peer_t *p,
                          const us_key_t *keys, unsigned n)
{
    static _Thread_local uint8_t msg[sizeof(uf_touch_req_t) +
                                     UF_TOUCH_MAX * sizeof(us_key_t)];
    uf_touch_req_t req = { .magic = UF_PROTO_MAGIC, .version = UF_PROTO_VERSION,
                           .count = (uint16_t)n, .weight = UF_TOUCH_SAMPLE };
    ut_req_t r;

    if (p->self) {
        us_store_touch(uf_node_store(ctx->node), keys, n, UF_TOUCH_SAMPLE);
    } else {
        memcpy(msg, &req, sizeof(req));
        memcpy(msg + sizeof(req), keys, n * sizeof(*keys));
        if (ut_rpc_post(&r, p->tp, UF_RPC_TOUCH, msg, sizeof(req) + n * sizeof(*keys),
                        NULL, 0, NULL, 0) == UCACHE_OK) {
            ut_wait(ctx->transport, &r, 1, ctx->cfg.timeout_ns);
        }
        if (r.status != UCACHE_OK) {
            return; /* feedback is best effort; the next read reports failures */
        }
    }
    atomic_fetch_add_explicit(&ctx->st.touch_sent, n, memory_order_relaxed);
}

void uf_touch_flush(struct ucache_context *ctx)
{
    us_key_t *keys = malloc(sizeof(*keys) * UF_TOUCH_MAX);
    uf_peer_t *p, *first;
    unsigned b, n;

    if (keys == NULL) {
        return;
    }
    for (b = 0; b < UF_PEER_BUCKETS; b++) {
        /* chains only grow at their head and peers live until finalize,
         * so a chain's head, once read, can be walked without the lock */
        first = atomic_load_explicit(&ctx->peers[b], memory_order_acquire);
        for (p = first; p != NULL; p = p->next) {
            if (atomic_load_explicit(&p->ntouch, memory_order_relaxed) == 0) {
                continue;
            }
            pthread_mutex_lock(&p->touch_lock);
            n = p->ntouch;
            memcpy(keys, p->touch, n * sizeof(*keys));
            p->ntouch = 0;
            pthread_mutex_unlock(&p->touch_lock);
            if ((n > 0) && atomic_load(&p->ready)) {
                uf_touch_send(ctx, p, keys, n);
            }
        }
    }
    free(keys);
}
