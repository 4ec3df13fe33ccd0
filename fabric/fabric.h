/*
 * fabric.h - the fabric's internal objects: the wire protocol between
 * readers and owners, the owner's service (node.c), peers and views
 * (view.c), the read path (client.c) and the context that ties them to
 * include/ucache.h (context.c).  Nothing here includes UCX.
 */
#ifndef UF_FABRIC_H
#define UF_FABRIC_H

#include "ucache.h"
#include "fabric/member.h"
#include "fabric/place.h"
#include "store/layout.h"
#include "origin/origin.h"
#include "store/store.h"
#include "transport/transport.h"
#include "util/config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* ------------------------------------------------------------------------ */
/* Wire protocol (RPC ids of the transport; little-endian, this layout)      */
/* ------------------------------------------------------------------------ */

#define UF_RPC_FETCH      1          /* find or fill one chunk              */
#define UF_RPC_TOUCH      2          /* sampled hits of one-sided readers   */
#define UF_RPC_HELLO      3          /* the node's record (bootstrap)       */
#define UF_RPC_ADMIN      4          /* counters, drain (admin tools)       */
#define UF_PROTO_MAGIC    0x50464355u /* "UCFP" */
#define UF_PROTO_VERSION  1u
#define UF_FETCH_DATA     (1u << 0)  /* reply with header + payload (tcp)   */
#define UF_FETCH_PIN      (1u << 1)  /* pin the chunk once found or filled  */
#define UF_FETCH_UNPIN    (1u << 2)  /* unpin it if present; never fill     */
#define UF_FETCH_EVICT    (1u << 3)  /* unpin and drop it if present; never fill */

/* FETCH request: this header, then uri_len bytes of URI (no terminator). */
typedef struct uf_fetch_req {
    uint32_t magic;
    uint16_t version;
    uint16_t flags;          /* UF_FETCH_* */
    uint64_t epoch;          /* the reader's view epoch */
    uint64_t key_hi, key_lo;
    uint64_t obj_size, obj_version;
    uint64_t chunk_idx;
    uint32_t chunk_size;
    uint16_t uri_len;
    uint16_t reserved;
} uf_fetch_req_t;

/* How an owner answered a FETCH (uf_fetch_rep_t.how). */
enum { UF_HOW_HIT = 1, UF_HOW_FILLED = 2, UF_HOW_COALESCED = 3 };

/* FETCH reply metadata; with UF_FETCH_DATA the data is the payload. */
typedef struct uf_fetch_rep {
    uint64_t       version;  /* slot version (us_loc_t) */
    uint64_t       hdr_off;
    uint32_t       length;
    uint32_t       how;
    us_chunk_hdr_t hdr;      /* the chunk header (UF_FETCH_DATA only) */
} uf_fetch_rep_t;

/* TOUCH request: this header, then count keys (16 bytes each). */
typedef struct uf_touch_req {
    uint32_t magic;
    uint16_t version;
    uint16_t count;          /* 1 .. UF_TOUCH_MAX */
    uint32_t weight;         /* hits each key stands for (the sampling rate) */
    uint32_t reserved;
} uf_touch_req_t;

/* ADMIN request: this header alone, count holding the operation.  Every
 * operation is answered with this header, then count little-endian uint64
 * counters in ucache_stats_t order (a newer node may send more, an older
 * fewer): the node's counters after the operation. */
typedef struct uf_admin_msg {
    uint32_t magic;
    uint16_t version;
    uint16_t count;          /* request: UF_ADMIN_*; reply: counters */
} uf_admin_msg_t;

enum { UF_ADMIN_STATS = 0, UF_ADMIN_DRAIN = 1, UF_ADMIN_UNDRAIN = 2 };
#define UF_ADMIN_QUEUE    8          /* admin requests waiting for an answer */

#define UF_TOUCH_MAX      1024       /* keys per TOUCH (16 KiB)             */
#define UF_TOUCH_SAMPLE   16         /* a reader reports 1 in this many hits */

/** The 128-bit key of chunk @p idx of (uri, version, size, chunk size). */
us_key_t uf_chunk_key(const char *uri, const us_object_t *obj, uint64_t idx,
                      size_t chunk_size);

/* proto.c: the checks of every message that crosses a trust boundary */

/** Check a FETCH request; on success *uri_p points into @p msg (not
 *  terminated, req->uri_len bytes).  UCACHE_ERR_INVALID else. */
ucache_status_t uf_fetch_req_check(const void *msg, size_t len, uf_fetch_req_t *req,
                                   const char **uri_p);

/** Check a TOUCH request: its header, then exactly req->count keys. */
ucache_status_t uf_touch_req_check(const void *msg, size_t len, uf_touch_req_t *req);

/** Check an ADMIN request (exactly one header; any other length, zero
 *  included, is UCACHE_ERR_INVALID). */
ucache_status_t uf_admin_req_check(const void *msg, size_t len, uf_admin_msg_t *req);

/** Check a FETCH reply's shape (not its bytes): @p meta_len bytes of
 *  metadata in @p rep, @p data_len of data, for a chunk of @p want bytes
 *  asked with @p flags.  UCACHE_ERR_CORRUPT if it is not what was asked. */
ucache_status_t uf_fetch_rep_check(const uf_fetch_rep_t *rep, size_t meta_len,
                                   size_t data_len, uint32_t want, unsigned flags);

/** The counters of an ADMIN reply of @p len bytes (more or fewer than this
 *  build knows are fine).  UCACHE_ERR_CORRUPT if it is malformed. */
ucache_status_t uf_admin_rep_parse(const void *buf, size_t len, ucache_stats_t *stats_p);

/* ------------------------------------------------------------------------ */
/* Owner service (node.c)                                                    */
/* ------------------------------------------------------------------------ */

typedef struct uf_node uf_node_t;

typedef struct uf_node_stats {
    uint64_t fetches;        /* FETCH requests answered (any outcome) */
    uint64_t fetch_hits;     /* found in the store */
    uint64_t fills;          /* origin reads made to fill a chunk */
    uint64_t fill_bytes;
    uint64_t coalesced;      /* requests that joined a fill in progress */
    uint64_t fill_errors;
    uint64_t bad_requests;
    uint64_t touches;        /* sampled hit keys received from readers */
    uint64_t refused;        /* fills refused: UCACHE_ALLOW does not allow them */
    uint64_t busy;           /* FETCHes refused: the fill queue was full */
    uint64_t denied;         /* admin operations without the admin key  */
    uint64_t fill_us_bucket[UCACHE_FILL_BUCKETS]; /* fill durations */
    uint64_t fill_us_sum;
} uf_node_stats_t;

/** Export @p cfg->mem_bytes through @p tr, build the store in it, serve
 *  FETCH with cfg->fetch_threads fill threads. */
ucache_status_t uf_node_create(ut_ctx_t *tr, const uc_config_t *cfg,
                               uf_node_t **node_p);

/** Stop serving: fail waiting requests (UCACHE_ERR_CANCELED), join the
 *  fill threads, free the store.  Accepts NULL. */
void uf_node_destroy(uf_node_t *node);

/** Draining: FETCH misses are refused (UCACHE_ERR_MOVED) instead of filled,
 *  so readers go to the next owner; hits are still served. */
void uf_node_set_draining(uf_node_t *node, bool draining);
bool uf_node_draining(uf_node_t *node);

/** Count (and log, rate-limited) an admin operation @p what refused for a
 *  request without the admin key. */
void uf_node_denied(uf_node_t *node, const char *what);

/** Count a malformed request (one the context refused for the node). */
void uf_node_bad_request(uf_node_t *node);

/** Wait up to @p timeout_ns for fills in progress to finish (drain). */
void uf_node_drain(uf_node_t *node, uint64_t timeout_ns);

us_store_t *uf_node_store(uf_node_t *node);

/** The exported region's rkey blob (owned by the node). */
ucache_status_t uf_node_rkey(uf_node_t *node, const void **blob_p, size_t *len_p);

/** The self-owner path: find or fill a chunk in this process, blocking;
 *  *how_p says how (UF_HOW_*).  Pin flags as for a FETCH. */
ucache_status_t uf_node_fetch_local(uf_node_t *node, const uf_fetch_req_t *req,
                                    const char *uri, us_loc_t *loc_p, uint32_t *how_p);

void uf_node_stats(uf_node_t *node, uf_node_stats_t *stats);

/* ------------------------------------------------------------------------ */
/* Peers and views (view.c)                                                  */
/* ------------------------------------------------------------------------ */

/* What a reader knows of one owner; created on first use, kept until the
 * context goes.  Set up under `lock` once; immutable after `ready`. */
typedef struct uf_peer {
    uint64_t         id;
    uint64_t         inc;         /* its incarnation: a hash of the address
                                     and key it published (0: file:).  A
                                     node restarted under the same id is a
                                     new peer: the old address and key are
                                     never used for it                   */
    pthread_mutex_t  lock;
    _Atomic int      ready;
    bool             self;        /* this process's own store            */
    ut_peer_t       *tp;
    ut_rkey_t       *rkey;
    ut_path_t        path;        /* MAPPED, GET or AM                   */
    const char      *mapped;      /* base of the region, MAPPED only     */
    us_layout_t      layout;      /* MAPPED and GET                      */
    _Atomic uint64_t suspect_until; /* skip it until then (monotonic ns) */
    _Atomic uint64_t backoff_ns;  /* the last suspicion's length: doubles
                                     per failure in a row (PEER_RETRY up to
                                     PEER_RETRY_MAX), 0 after a success  */
    pthread_mutex_t  touch_lock;  /* sampled hits waiting to be sent     */
    us_key_t        *touch;       /* UF_TOUCH_MAX keys, allocated on use */
    _Atomic unsigned ntouch;      /* written under touch_lock            */
    struct uf_peer  *next;        /* context's table chain               */
} uf_peer_t;

/* A node as a view holds it: 16 bytes; slots, weight and zone live in the
 * placement.  The rest (address, key) is in recs (dir:, mpi) or fetched from
 * the node's listener on first contact (file:). */
typedef struct uf_vnode {
    uint64_t id;
    uint32_t host;           /* offset of its host name in view->strings */
    uint16_t port;           /* its listener (file:), else 0             */
    uint16_t reserved;
} uf_vnode_t;

/* One epoch of membership: nodes by slot, their placement. */
typedef struct uf_view {
    _Atomic unsigned      refs;
    uint64_t              epoch;
    uint32_t              n;
    uf_vnode_t           *nodes;
    uf_member_t          *recs;   /* full records, same order; NULL for file: */
    char                 *strings; /* host names */
    size_t                strings_len;
    _Atomic(uf_peer_t *) *peers;  /* per node, resolved lazily           */
    uint32_t             *by_id;  /* node indices in id order (uf_view_find) */
    uf_place_t           *place;
    uint64_t              retired_ns;
    struct uf_view       *retired_next;
} uf_view_t;

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
        _Atomic uint64_t owner_refusals;
    } st;
};

/* Count @p _v on the context's read-path counter @p _f. */
#define UF_ADD(_ctx, _f, _v) \
    atomic_fetch_add_explicit(&(_ctx)->st._f, (_v), memory_order_relaxed)

/* view.c; uf_view_build() takes @p members (malloc'd) whatever it returns */
ucache_status_t uf_view_build(struct ucache_context *ctx, uf_member_t *members,
                              uint32_t n, uint64_t epoch, uf_view_t **view_p);
void uf_view_free(uf_view_t *view);
/** The index of node @p id in @p v (UINT32_MAX if absent): a binary search. */
uint32_t uf_view_find(const uf_view_t *v, uint64_t id);
/** Bytes a view holds (nodes, names, records, placement, peer pointers). */
size_t uf_view_bytes(const uf_view_t *view);
uf_view_t *uf_view_acquire(struct ucache_context *ctx);
void uf_view_release(uf_view_t *view);
/** Install @p view as current; the old one is freed once unused. */
void uf_view_install(struct ucache_context *ctx, uf_view_t *view);
void uf_view_reap(struct ucache_context *ctx, bool all);
/** The peer of view node @p idx, set up (connected, keys unpacked) on
 *  first use.  NULL (and the peer marked suspect) if it cannot be. */
uf_peer_t *uf_view_peer(struct ucache_context *ctx, uf_view_t *view, uint32_t idx);
void uf_peer_suspect(struct ucache_context *ctx, uf_peer_t *peer, const char *why);
/** An operation on @p peer succeeded: its back-off starts over. */
void uf_peer_ok(uf_peer_t *peer);
bool uf_peer_is_suspect(const uf_peer_t *peer, uint64_t now);
void uf_peers_destroy(struct ucache_context *ctx);
/** Maybe record a hit of @p key at @p peer (1 in UF_TOUCH_SAMPLE). */
void uf_touch_sample(struct ucache_context *ctx, uf_peer_t *peer, const us_key_t *key);
/** Send every peer's sampled hits (the context's thread calls it). */
void uf_touch_flush(struct ucache_context *ctx);

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
/** Node @p p's counters by an ADMIN request doing @p op, within @p timeout_ns. */
ucache_status_t uf_admin_call(struct ucache_context *ctx, uf_peer_t *p, unsigned op,
                              uint64_t timeout_ns, ucache_stats_t *stats_p);


#endif
