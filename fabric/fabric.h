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
#define UF_SPARES_MAX    16
#define UF_LOC_ENTRIES   4096

/* Memory kept for the next read rather than freed (client.c). */
typedef struct uf_spares {
    void    *v[UF_SPARES_MAX];
    unsigned n;
} uf_spares_t;

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
    void              *source_src;    /* the open source (its `open`), or
                                         source_arg                       */
    struct uf_manifest *manifest;     /* pinned metadata (UCACHE_MANIFEST) */
    struct uf_vshm    *vshm;          /* the view published for this host's
                                         readers (sources that publish)   */
    char               vshm_path[512];
    bool               vshm_off;      /* publishing failed: not tried again */
    uf_member_t        self;          /* own record (serving)             */
    bool               registered;    /* in the source (member_lock)      */
    pthread_mutex_t    member_lock;   /* registration: join, heartbeat, leave */
    pthread_mutex_t    refresh_lock;  /* building a view from the source    */

    pthread_mutex_t    lock;          /* peers, views                     */
    pthread_mutex_t    cache_lock;    /* bounce buffers, location cache   */
    pthread_cond_t     cond;
    _Atomic(uf_view_t *) view;
    uf_view_t         *retired;
    _Atomic(uf_peer_t *) peers[UF_PEER_BUCKETS]; /* chains grow at the head */
    uf_spares_t        bounce;        /* chunk-size buffers (cache_lock)  */
    uf_loc_entry_t     locs[UF_LOC_ENTRIES];  /* one-sided hits (cache_lock) */
    _Atomic uint64_t   touch_seen[UF_TOUCH_SEEN]; /* keys reported this window */
    _Atomic uint64_t   touch_gen;     /* the window (touch.c)             */
    _Atomic bool       touch_wake;    /* a report buffer is half full     */
    _Atomic unsigned   window_owners; /* owners with window chunks in flight */

    pthread_t          thread;
    bool               thread_running;
    bool               thread_stop;
    pthread_mutex_t    admin_lock;    /* deferred ADMIN requests (a leaf lock) */
    ut_rpc_t          *admin_rpcs[UF_ADMIN_QUEUE]; /* answered by the background thread */
    uint16_t           admin_ops[UF_ADMIN_QUEUE];
    unsigned           nadmin;
    void              *self_rec;      /* encoded own record (serving)     */
    size_t             self_rec_len;

    /* posted reads (ucache_read_post, readq.c): in flight, driven by
     * ucache_wait() callers, one at a time */
    pthread_mutex_t    rq_lock;
    pthread_cond_t     rq_done;       /* a read completed, or the driver left */
    struct uf_posted  *rq_head, *rq_tail; /* not yet handed back, oldest first */
    bool               rq_driving;
    unsigned           rq_waiters;    /* callers waiting to drive          */
    ut_req_t         **rq_reqs;       /* the driver's list of requests     */
    size_t             rq_reqs_cap;

    struct {
        _Atomic uint64_t chunk_reads, hits, misses, origin_direct, nvme;
        _Atomic uint64_t verify_retries, failovers, bad_replies, stale_objects;
        _Atomic uint64_t bytes, touch_sent, touch_dropped, fetches, loc_hits;
        _Atomic uint64_t mapped;     /* chunks read out of a mapped region */
        _Atomic uint64_t owner_refusals, windowed, moved;
        _Atomic uint64_t meta_owner, meta_direct, meta_pinned;
        _Atomic uint64_t peer_restarts;
    } st;
};

/** After an owner answered MOVED (our view is behind its own): the source
 *  read again; the context's view, acquired, if it is newer than @p v, else
 *  NULL (a drained owner, or a source whose epochs are not global). */
uf_view_t *uf_view_newer(struct ucache_context *ctx, const uf_view_t *v);

/* ------------------------------------------------------------------------ */
/* The read path's pieces (client.c)                                         */
/* ------------------------------------------------------------------------ */

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

/* A FETCH request's bytes: its header, the URI, and a span (UF_FETCH_SPAN).
 * The transport may send from them until the request completes. */
typedef struct uf_fetch_msg {
    uint8_t b[sizeof(uf_fetch_req_t) + US_URI_MAX + sizeof(uf_fetch_span_t)];
} uf_fetch_msg_t;

/*
 * One chunk read from one owner, as a state machine of transport requests
 * (client.c): begun by uf_cop_begin, stepped by uf_cop_step each time all
 * its requests r[0 .. nr) have completed, until state is UF_COP_DONE with
 * its status.  The same machine serves a single read (waited for at once),
 * the chunks of a large read in flight together, and posted reads.
 */
enum { UF_COP_DONE, UF_COP_AM, UF_COP_IDX, UF_COP_DATA, UF_COP_RECHECK, UF_COP_FILL };

typedef struct uf_cop {
    ut_req_t         r[4];
    unsigned         nr;         /* requests posted, all to complete     */
    unsigned         taken;      /* of them seen complete (uf_rop_*): bits */
    unsigned         state;
    unsigned         a;          /* the attempt                          */
    unsigned         li, nloc;   /* GET: the matched slot tried, of nloc */
    bool             cached, am;
    uint32_t         how;
    ucache_status_t  status;
    uint64_t         t0;         /* the attempt's start (grace rule)     */
    uf_peer_t       *p;
    uf_view_t       *v;
    uf_chunk_t      *c;
    char            *target;
    us_read_stats_t  rs;
    us_loc_t         loc;        /* the cached location (cached)         */
    us_loc_t         locs[2 * US_BUCKET_SLOTS];
    uint64_t         offs[4];
    uf_fetch_rep_t   rep;
    uf_fetch_msg_t   msg;
    _Alignas(64) uint8_t bkt[2 * US_BUCKET_SIZE];
    _Alignas(64) uint8_t head[US_CHUNK_HDR + US_MAX_TABLE];
} uf_cop_t;

/** Begin reading chunk @p c from owner @p p (set up) into @p cop: posts its
 *  first requests, or ends at once (a mapped hit). */
void uf_cop_begin(struct ucache_context *ctx, uf_view_t *v, uf_peer_t *p, uf_chunk_t *c,
                  uf_cop_t *cop);
/** Every request of @p cop has completed: take their results on. */
void uf_cop_step(struct ucache_context *ctx, uf_cop_t *cop);

/*
 * One read of a range (client.c) whose chunks are in flight together, up to
 * a window: a large ucache_read, or a posted read (readq.c).  uf_rop_pump
 * begins chunks while the window has room; uf_rop_reqs lists the requests
 * in flight; uf_rop_take steps the chunk a completed request belongs to.
 * Chunks whose first owner is not set up, and chunks their first owner did
 * not serve, are read by uf_read_chunk (every owner, then the origin) in
 * the calling thread.
 */
typedef struct uf_rop {
    const char      *uri;
    us_object_t      obj;
    uint64_t         offset, end, pos; /* the range; the next chunk's start */
    char            *buf;
    uf_view_t       *v;
    ucache_status_t  status;     /* the first chunk that failed          */
    unsigned         window, nbusy;
    bool             hold;       /* begin none now (the context's bound) */
    bool             strict;     /* the owners' bound holds for its first
                                    chunk too (posted: another drives) */
    uf_chunk_t      *cs;         /* [window] the chunks in flight        */
    uf_cop_t        *cops;       /* [window]: state UF_COP_DONE is free  */
} uf_rop_t;

/** A read of [@p offset, @p end) of @p obj (its status checked) into @p buf
 *  with up to @p window chunks in flight; UCACHE_ERR_NO_MEMORY. */
ucache_status_t uf_rop_init(struct ucache_context *ctx, uf_rop_t *rop, const char *uri,
                            const us_object_t *obj, uint64_t offset, uint64_t end,
                            void *buf, unsigned window, uf_view_t *v);
void uf_rop_fini(uf_rop_t *rop);
/** Begin chunks while the window has room; true when the read is over
 *  (every chunk done, or failed and none in flight): status says how. */
bool uf_rop_pump(struct ucache_context *ctx, uf_rop_t *rop);
/** Append the requests in flight, not yet taken, to @p reqs; how many. */
size_t uf_rop_reqs(uf_rop_t *rop, ut_req_t **reqs);
/** Request @p r completed: true if it was one of @p rop's (and is taken). */
bool uf_rop_take(struct ucache_context *ctx, uf_rop_t *rop, ut_req_t *r);

/** Read chunk @p c through its owners, then the origin (blocking). */
ucache_status_t uf_read_chunk(struct ucache_context *ctx, uf_view_t *v, uf_chunk_t *c);

/* Count @p _v on the context's read-path counter @p _f. */
#define UF_ADD(_ctx, _f, _v) \
    atomic_fetch_add_explicit(&(_ctx)->st._f, (_v), memory_order_relaxed)

/* client.c */
#define UF_GETS_MAX 4
/** Wait for @p n posted requests until all have ended - each fails at its
 *  own deadline at the latest, so this ends - and return the first failure
 *  (UCACHE_OK if none): a transport holds a request until it ends, so one
 *  on the caller's stack must not be left before.  Their buffers are the
 *  caller's again after it. */
ucache_status_t uf_wait_all(struct ucache_context *ctx, ut_req_t *r, unsigned n);

/** Post @p n (at most UF_GETS_MAX) reads of @p p's region at once - gets,
 *  or raw FETCHes where it has no one-sided path - and wait for them all
 *  (one round trip): the first failure, if any; UCACHE_ERR_CORRUPT for a
 *  reply of another length. */
ucache_status_t uf_gets(struct ucache_context *ctx, uf_peer_t *p, unsigned n,
                        const uint64_t *offs, void *const *bufs, const size_t *lens);
/** Warm one range of an object in its owners (see ucache_warm). */
ucache_status_t uf_warm(struct ucache_context *ctx, const char *uri, uint64_t offset,
                        uint64_t len, unsigned flags, ucache_warm_result_t *res);

ucache_status_t uf_read(struct ucache_context *ctx, const char *uri, uint64_t offset,
                        size_t len, void *buf, size_t *nread_p);

/* lookup.c */
/**
 * @p uri's size and version: from the manifest, this process's cache, the
 * owner of its metadata, or the origin (lookup.c).  @p stale (may be
 * @p obj_p): a version found changed at the origin, not good enough.
 */
ucache_status_t uf_lookup(struct ucache_context *ctx, const char *uri,
                          const us_object_t *stale, us_object_t *obj_p);
/** Every object under @p prefix, as uf_lookup finds metadata; in URI order
 *  through an owner or the manifest, the origin's order from the origin. */
ucache_status_t uf_lookup_list(struct ucache_context *ctx, const char *prefix,
                               us_origin_list_fn_t fn, void *arg);

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
typedef struct uf_posted uf_posted_t;
/** Drive every posted read to its end (finalize: callers own them). */
void uf_posted_drain(struct ucache_context *ctx);

#endif
