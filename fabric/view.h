/*
 * view.h - membership views (view.c), the peers they point at (peer.c) and
 * the hit feedback readers send them (touch.c).
 */
#ifndef UF_VIEW_H
#define UF_VIEW_H

#include "fabric/member.h"
#include "fabric/place.h"
#include "fabric/proto.h"
#include "store/layout.h"
#include "transport/transport.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct ucache_context;

/* A HELLO to a node's listener in flight (peer.c) */
typedef struct uf_hello {
    uf_hello_req_t msg;
    ut_peer_t     *boot;       /* a connection made for it */
    ut_req_t       req;
    void          *buf;        /* UF_HELLO_CAP bytes: the record */
} uf_hello_t;

#define UF_HELLO_CAP (3 * UF_BLOB_MAX)

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
    _Atomic bool     hello;       /* its address and key came from its
                                     listener (HELLO: file:, etcd:), which
                                     is asked again after a failure      */
    uint64_t         hello_inc;   /* ... the incarnation HELLO gave      */
    _Atomic int      recheck;     /* failed since: ask its listener before
                                     it is used again                    */
    uf_hello_t      *asking;      /* ... asked (under lock)              */
    _Atomic(struct uf_peer *) newer; /* the node restarted under its id:
                                     this peer is done, that one serves  */
    ut_peer_t       *tp;
    ut_rkey_t       *rkey;
    ut_path_t        path;        /* MAPPED, GET or AM                   */
    const char      *mapped;      /* base of the region, MAPPED only     */
    us_layout_t      layout;      /* MAPPED and GET                      */
    _Atomic uint64_t suspect_until; /* skip it until then (monotonic ns) */
    _Atomic uint64_t backoff_ns;  /* the last suspicion's length: doubles
                                     per failure in a row (PEER_RETRY up to
                                     PEER_RETRY_MAX), 0 after a success  */
    _Atomic bool     admin_old;   /* refused a tagged ADMIN request: a node
                                     of before tagged counters (proto.h) */
    _Atomic bool     version_warned; /* said once: it speaks another protocol */
    pthread_mutex_t  touch_lock;  /* hit keys waiting to be reported     */
    us_key_t        *touch;       /* UF_TOUCH_MAX keys, allocated on use */
    _Atomic unsigned ntouch;      /* written under touch_lock            */
    _Atomic uint64_t touch_hits;  /* one-sided hits since the last report */
    _Atomic unsigned windowed;    /* chunks of windows in flight to it   */
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

/* view.c; uf_view_build() takes @p members (malloc'd) whatever it returns.
 * @p nslots: the placement's slot count the source fixes (0: the smallest
 * power of two with 2x headroom over the members' slots). */
ucache_status_t uf_view_build(struct ucache_context *ctx, uf_member_t *members,
                              uint32_t n, uint64_t epoch, uint32_t nslots,
                              uf_view_t **view_p);
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
/* peer.c */
/** The peer of view node @p idx, set up (connected, keys unpacked) on
 *  first use.  NULL (and the peer marked suspect) if it cannot be. */
uf_peer_t *uf_view_peer(struct ucache_context *ctx, uf_view_t *view, uint32_t idx);
void uf_peer_suspect(struct ucache_context *ctx, uf_peer_t *peer, const char *why);
/** An operation on @p peer succeeded: its back-off starts over. */
void uf_peer_ok(uf_peer_t *peer);
bool uf_peer_is_suspect(const uf_peer_t *peer, uint64_t now);
void uf_peers_destroy(struct ucache_context *ctx);
/* touch.c */
/** A one-sided hit of @p key at @p peer: counted, and its key queued for
 *  the owner unless it was reported in this window already.  No call. */
void uf_touch_note(struct ucache_context *ctx, uf_peer_t *peer, const us_key_t *key);
/** Report every peer's queued hits (the context's thread, and finalize);
 *  @p new_window: a key hit from now on is reported again. */
void uf_touch_flush(struct ucache_context *ctx, bool new_window);

#endif
