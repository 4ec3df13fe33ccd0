/*
 * fabric.h - the fabric's context (struct ucache_context) and what works on
 * it: the read path (client.c), node probes (probe.c), the ADMIN service
 * (admin.c), posted reads (readq.c) and the context itself (context.c).
 * Its objects have their own headers: proto.h (the wire protocol), node.h
 * (the owner service), view.h (views, peers, hit feedback), member.h and
 * place.h.  Nothing here includes UCX.
 */
#ifndef UF_FABRIC_H
#define UF_FABRIC_H

#include "ucache.h"
#include "fabric/member.h"
#include "fabric/node.h"
#include "fabric/place.h"
#include "fabric/proto.h"
#include "fabric/view.h"
#include "origin/origin.h"
#include "store/layout.h"
#include "store/store.h"
#include "transport/transport.h"
#include "util/config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* ------------------------------------------------------------------------ */
/* The context                                                               */
/* ------------------------------------------------------------------------ */

#define UF_PEER_BUCKETS  1024
#define UF_BOUNCE_MAX    16
#define UF_LOC_ENTRIES   4096

/* A location-cache entry: where key was at owner (0: empty). */
typedef struct uf_loc_entry {
    uint64_t owner;
    us_key_t key;
    us_loc_t loc;
} uf_loc_entry_t;

struct ucache_context {
    uc_config_t        cfg;
    us_origin_params_t origin;        /* this context's origin settings, given
                                         with each of its origin calls      */
    ut_ctx_t          *transport;
    uf_node_t         *node;          /* serving contexts only            */
    bool               serve;
    const uf_source_ops_t *source;    /* NULL: members "mpi" (external) */
    const char        *source_arg;    /* in cfg.members, after the prefix */
    uf_member_t        self;          /* own record (serving)             */
    bool               registered;    /* in the source (member_lock)      */
    pthread_mutex_t    member_lock;   /* registration: join, heartbeat, leave */

    pthread_mutex_t    lock;          /* peers, views                     */
    pthread_mutex_t    cache_lock;    /* bounce buffers, location cache   */
    pthread_cond_t     cond;
    _Atomic(uf_view_t *) view;
    uf_view_t         *retired;
    _Atomic(uf_peer_t *) peers[UF_PEER_BUCKETS]; /* chains grow at the head */
    void              *bounce[UF_BOUNCE_MAX];
    uf_loc_entry_t     locs[UF_LOC_ENTRIES];  /* one-sided hits (cache_lock) */
    _Atomic uint64_t   touch_seen[UF_TOUCH_SEEN]; /* keys reported this window */
    _Atomic uint64_t   touch_gen;     /* the window (touch.c)             */
    _Atomic bool       touch_wake;    /* a report buffer is half full     */
    unsigned           nbounce;

    pthread_t          thread;
    bool               thread_running;
    bool               thread_stop;
    pthread_mutex_t    admin_lock;    /* deferred ADMIN requests (a leaf lock) */
    ut_rpc_t          *admin_rpcs[UF_ADMIN_QUEUE]; /* answered by the background thread */
    uint16_t           admin_ops[UF_ADMIN_QUEUE];
    unsigned           nadmin;
    void              *self_rec;      /* encoded own record (serving)     */
    size_t             self_rec_len;

    /* posted reads (ucache_read_post): a queue and reader threads */
    pthread_mutex_t    rq_lock;
    pthread_cond_t     rq_work, rq_done;
    struct ucache_read_req *rq_head, *rq_tail;
    pthread_t         *readers;
    unsigned           nreaders;
    bool               rq_stop;

    struct {
        _Atomic uint64_t chunk_reads, hits, misses, origin_direct;
        _Atomic uint64_t verify_retries, failovers, bad_replies, stale_objects;
        _Atomic uint64_t bytes, touch_sent, touch_dropped, fetches, loc_hits;
        _Atomic uint64_t owner_refusals, windowed;
    } st;
};

/* Count @p _v on the context's read-path counter @p _f. */
#define UF_ADD(_ctx, _f, _v) \
    atomic_fetch_add_explicit(&(_ctx)->st._f, (_v), memory_order_relaxed)

/* client.c */
/** Post @p n (at most 4) one-sided reads of @p p's region at once and wait
 *  for them all (one round trip): the first failure, if any. */
ucache_status_t uf_gets(struct ucache_context *ctx, uf_peer_t *p, unsigned n,
                        const uint64_t *offs, void *const *bufs, const size_t *lens);
/** Warm one range of an object in its owners (see ucache_warm). */
ucache_status_t uf_warm(struct ucache_context *ctx, const char *uri, uint64_t offset,
                        uint64_t len, unsigned flags, ucache_warm_result_t *res);

ucache_status_t uf_read(struct ucache_context *ctx, const char *uri, uint64_t offset,
                        size_t len, void *buf, size_t *nread_p);

/* context.c */
/** Join the members source as this serving node (ctx->member_lock held,
 *  or before the context's thread runs). */
ucache_status_t uf_register(struct ucache_context *ctx);

/* admin.c */
/** Node @p p's counters by an ADMIN request doing @p op, within @p timeout_ns. */
ucache_status_t uf_admin_call(struct ucache_context *ctx, uf_peer_t *p, unsigned op,
                              uint64_t timeout_ns, ucache_stats_t *stats_p);
/** The transport's handler of UF_RPC_ADMIN (arg: the context): checks the
 *  request and defers it to the context's thread. */
void uf_admin_handler(void *arg, ut_rpc_t *rpc, const void *msg, size_t len);
/** Carry out the deferred ADMIN requests and answer each (the context's
 *  thread; UCACHE_ERR_CANCELED at finalize). */
void uf_admin_answer(struct ucache_context *ctx, ucache_status_t status);

/* readq.c */
/** Stop and join the reader threads of ucache_read_post(). */
void uf_readers_stop(struct ucache_context *ctx);

#endif
