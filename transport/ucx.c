/*
 * ucx.c - the UCX backend of the transport layer (ops table ut_ucx_ops).
 *
 * One context = one ucp_context + one ucp_worker, serialized by ctx->lock.
 * Reads pick the fastest correct primitive per peer: a plain copy from the
 * owner's region mapped with ucp_rkey_ptr (same host: no lock, no syscall,
 * no remote CPU); ucp_get_nbx where the endpoint's RMA lanes are native
 * (verbs); otherwise one active-message request answered with the bytes in
 * one bulk reply (tcp, where UCX would emulate a get with messages anyway).
 *
 * Lock rules: every entry point that touches UCX or the tables takes
 * ctx->lock (do_* functions assume it is held).  UCX callbacks only run
 * inside ucp_worker_progress()/ucp_ep_close_nbx(), which are always called
 * with the lock held, so callbacks never lock.  The mapped read path reads
 * only immutable rkey fields and the peer's atomic state.
 *
 * Peer states (ut_peer_state_t):
 *
 *          peer_create()
 *               |
 *               v
 *   +-------> IDLE -- do_peer_connect() --> CONNECTING -- PING answered --> CONNECTED
 *   |          ^                              |                                |  |
 *   |          |                              | no answer by the deadline,     |  |
 *   |          |                              | error callback                 |  |
 *   |          +-- do_peer_disconnect(): LRU cap, idle ep ---------------------+  |
 *   |                                         v                                   |
 *   +-- do_peer_connect() once retry_ns --- FAILED <-- do_peer_fail(): error -----+
 *       has passed (a probe: nobody          callback, an operation's deadline
 *       waits for it)
 *
 * The handshake runs with the lock released: a peer that does not answer
 * holds up only those who wait for it, never the other peers' operations.
 * A first contact is waited for (within UCACHE_TIMEOUT); a retry of a
 * failed peer is a probe that nobody waits for - operations keep failing
 * fast until it has succeeded.  retry_ns doubles with every failure in a
 * row (up to PEER_RETRY_MAX) and is reset by a handshake that succeeds.
 *
 * Wire formats (all little-endian, this host's layout; versioned by magic):
 *   address blob: ut_blob_hdr + ut_addr_body + UCX worker address
 *   rkey blob:    ut_blob_hdr + ut_rkey_body + UCX packed rkey
 *   AM request:   header ut_am_req_hdr; payload: ut_am_read_desc or RPC bytes
 *   AM reply:     header ut_am_rep_hdr + metadata; payload: data
 * Blobs carry an xxHash64 checksum over all their bytes, so a truncated or
 * corrupted blob is rejected before UCX ever parses it.
 */
#include "transport/auth.h"
#include "transport/ucx_guard.h"
#include "transport/blob.h"
#include "transport/mapfd.h"
#include "transport/ucx_wire.h"
#include "transport.h"
#include "util/log.h"
#include "util/time.h"

#include <ucp/api/ucp.h>
#include <ucs/debug/log_def.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <xxhash.h>

#ifndef UT_WAIT_CAP_NS
#define UT_WAIT_CAP_NS UC_NSEC_PER_MSEC /* the longest a waiter sleeps unwoken */
#endif
#define UT_CLIENT_BUCKETS 1024       /* requesters a node knows, by uuid      */
#define UT_CLIENTS_MAX    65536      /* past it, one owed nothing is forgotten */
#define UT_MAX_REGIONS    4096
#define UT_ACCEPT_PER_HOST 64        /* listener connections from one address */
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

/* ut_req_t.priv.pending bits: the request completes when all are clear. */
#define UT_PEND_UCX       (1u << 0)  /* a get owned by UCX                  */
#define UT_PEND_SEND      (1u << 1)  /* AM request send not yet completed   */
#define UT_PEND_REPLY     (1u << 2)  /* waiting for the AM reply            */
#define UT_PEND_RECV      (1u << 3)  /* rendezvous reply data being received */

/* ut_req_t.priv.flags */
#define UT_REQF_SLOT      (1u << 0)  /* holds a slot in ctx->slots */
#define UT_REQF_UNOWED    (1u << 1)  /* a keepalive answer said its peer no
                                        longer owes it a reply            */


_Static_assert(sizeof(ut_am_req_hdr) + sizeof(ut_am_read_desc) <=
               sizeof(((ut_req_t *)0)->priv.wire), "wire area too small");

typedef struct ut_ucx_ctx  ut_ucx_ctx_t;
typedef struct ut_ucx_peer ut_ucx_peer_t;

typedef struct ut_ucx_mem ut_ucx_mem_t;
struct ut_ucx_mem {
    ut_mem_t      super;
    ucp_mem_h     memh;
    int           memfd;      /* exported: its sealed memfd (mapfd.h); else -1 */
    void         *blob;       /* packed rkey blob (exported regions) */
    size_t        blob_len;
    uint64_t      cookie;
    uint32_t      region_id;  /* UINT32_MAX if not exported */
    unsigned      sends;      /* replies in flight that point into it */
    ut_ucx_mem_t *parked_next;
};

struct ut_ucx_peer {
    ut_peer_t        super;
    void            *ucp_addr;   /* copy of the UCX worker address, or NULL */
    size_t           ucp_addr_len;
    struct sockaddr_storage sa;  /* ... or a listener's address (bootstrap) */
    socklen_t        salen;
    uint64_t         uuid;
    char             name[UT_HOST_MAX + 16];
    ucp_ep_h         ep;         /* NULL unless CONNECTED */
    uint32_t         gen;        /* bumped on every connect */
    _Atomic int      state;      /* ut_peer_state_t */
    ucache_status_t  fail_status;
    _Atomic uint64_t failed_at;
    uint64_t         retry_ns;   /* back-off: PEER_RETRY doubled per failure in
                                    a row, up to PEER_RETRY_MAX; reset by a
                                    handshake that succeeds             */
    ut_req_t         hs;         /* CONNECTING: the handshake's PING     */
    ut_req_t         ka;         /* CONNECTED: a keepalive PING, sent when
                                    a long request (a miss being filled)
                                    waits and we have not heard from the
                                    peer for UCACHE_TIMEOUT / 2          */
    ut_ka_rep        ka_rep;     /* ... its answer                       */
    uint64_t         ka_ids[UT_KA_IDS]; /* ... the requests it asked about */
    unsigned         ka_n;       /* ... how many (0: answer processed)  */
    uint64_t         heard_at;   /* the last reply from it (monotonic ns) */
    uint64_t         hs_uuid;    /* ... and the context it answers as    */
    bool             hs_wait;    /* ... callers wait for it (first contact);
                                    else it is a retry that nobody waits for */
    unsigned         inflight;   /* requests holding slots on this peer */
    int              native_get; /* -1 unknown */
    char             tls[64];    /* its lanes' transport/device (ucp_ep_print_info) */
    char             mapname[UT_MAPFD_NAME_MAX]; /* same host: its mapping service */
    ut_ucx_peer_t   *lru_prev, *lru_next; /* connected peers, MRU first */
    ut_ucx_peer_t   *all_next;
    unsigned         nrkeys;
    bool             client;     /* a requester this node may owe a deferred
                                    reply (learnt from its PING; the node's
                                    own, never a user's)              */
    unsigned         owed;       /* client: deferred replies still due */
    ut_ucx_peer_t   *cnext;      /* ctx->clients chain                */
};

typedef struct ut_ucx_rkey {
    ut_rkey_t       super;
    ucp_rkey_h      rkey;        /* unpacked against ep generation gen */
    uint32_t        gen;
    void           *blob;        /* UCX part of the blob, for re-unpacking */
    size_t          blob_len;
    uint64_t        cookie;
    uint32_t        region_id;
    uint64_t        map_len;     /* bytes mapped read-only (mapped only) */
} ut_ucx_rkey_t;

typedef struct ut_ucx_rpc {
    ut_rpc_t        super;
    ucp_ep_h        reply_ep;    /* UCX's: valid during the handler only  */
    ut_ucx_peer_t  *client;      /* the requester, for a deferred reply   */
    uint64_t        from;
    uint64_t        id;
    bool            replied;
    bool            deferred;    /* heap copy: reply takes the lock, frees */
    struct ut_ucx_rpc *dnext, *dprev; /* deferred: ctx->dlist (keepalives) */
} ut_ucx_rpc_t;

/* A reply in flight: keeps header, metadata and (if copied) data alive. */
typedef struct ut_ucx_reply {
    ut_am_rep_hdr        hdr;
    uint8_t              meta[UT_RPC_META_MAX];
    void                *copy;
    ut_ucx_mem_t        *mem;    /* region the data points into, or NULL */
    ut_ucx_ctx_t        *ctx;
    struct ut_ucx_reply *next;   /* free list, or the list of those in flight */
    struct ut_ucx_reply *prev;   /* in flight                               */
} ut_ucx_reply_t;

typedef struct ut_ucx_handler {
    ut_rpc_handler_t cb;
    void            *arg;
} ut_ucx_handler_t;

/* An endpoint a listener accepted: it only answers requests. */
typedef struct ut_ucx_accepted {
    ucp_ep_h                ep;
    struct ut_ucx_ctx      *ctx;
    struct ut_ucx_accepted *next;
    struct sockaddr_storage from;      /* the client's address          */
    uint64_t                deadline;  /* closed if still unauthenticated */
    bool                    authed;    /* an authenticated request came */
} ut_ucx_accepted_t;

typedef struct ut_ucx_closing {
    void                  *req;
    struct ut_ucx_closing *next;
} ut_ucx_closing_t;

struct ut_ucx_ctx {
    ut_ctx_t          super;
    uc_config_t       cfg;
    uc_progress_mode_t progress_mode;
    pthread_mutex_t   lock;
    ucp_context_h     ucp;
    ut_auth_t        *auth;      /* keys, and what each sender has sent */
    char              host[UT_HOST_MAX];
    char              mapname[UT_MAPFD_NAME_MAX];
    ut_mapfd_srv_t   *mapsrv;    /* started with the first exported region */
    bool              rma;       /* UCP_FEATURE_RMA on (native, or the test mode) */
    bool              shm;       /* UCX uses shared memory: same-host peers map */
    bool              serve;     /* exports memory to peers (ut_params_t.serve) */
    ucp_worker_h      worker;
    size_t            max_am_header;
    ut_ucx_peer_t    *clients[UT_CLIENT_BUCKETS]; /* requesters, by uuid */
    unsigned          nclients;
    void             *addr_blob;
    size_t            addr_blob_len;
    uint64_t          uuid;

    ut_ucx_mem_t     *regions[UT_MAX_REGIONS]; /* exported, by region id */

    ut_ucx_peer_t    *peers;        /* every peer (all_next)            */
    ut_ucx_peer_t    *lru_head, *lru_tail;
    unsigned          nopen;

    ut_req_t        **slots;        /* outstanding requests, by slot     */
    uint64_t         *slot_gen;     /* each one's random tag (its id's high bits) */
    uint64_t          rnd[64];      /* random words for tags, from getrandom() */
    unsigned          nrnd;
    uint32_t         *free_slots;
    uint32_t          nfree;

    ut_ucx_handler_t  handlers[UT_RPC_MAX_ID + 1];
    ut_ucx_reply_t   *reply_free;
    ut_ucx_reply_t   *reply_out;    /* replies in flight: a send UCX never
                                       completes (one on an endpoint UCX
                                       destroyed itself) is freed at the end */
    unsigned          deferred;     /* deferred RPCs not yet answered   */
    ut_ucx_rpc_t     *dlist;        /* ... them                          */
    ut_ucx_closing_t *closing;
    ut_ucx_mem_t     *parked;       /* destroyed regions with replies stuck in flight */
    ucp_listener_h    listener;     /* bootstrap connections (ut_listen) */
    struct ut_ucx_accepted *accepted; /* endpoints the listener accepted */
    unsigned          naccepted, nunauthed;
    uint64_t          accept_check_ns;  /* when unauthenticated ones were last checked */

    _Atomic uint64_t  last_progress;
    pthread_t         thread;
    bool              thread_running;
    _Atomic bool      thread_stop;
    int               epfd, stopfd;
    int               wakefd;       /* the worker's event fd (waiters), or -1 */
    int               kickfd;       /* eventfd: wakes the sleeping waiter    */
    bool              sleeper;      /* a waiter sleeps on wakefd + kickfd    */
    bool              leader;       /* a waiter progresses the worker; the
                                       others follow on `progressed`       */
    pthread_cond_t    progressed;   /* other idle waiters sleep on it        */

    struct {
        _Atomic uint64_t read_bytes, mapped_reads, get_reads, am_reads;
        _Atomic uint64_t rpcs, rpcs_served, am_reads_served, served_bytes;
        _Atomic uint64_t timeouts, peer_failures, bad_input, late_replies;
        _Atomic uint64_t replies_dropped;
        _Atomic uint64_t conns_refused, conns_unauth_closed, maps_served;
        _Atomic uint64_t regions_parked;
        _Atomic uint64_t eps_evicted, connects, keepalives, replies_lost;
        _Atomic uint64_t stalled_replies;
    } st;
};

#define UT_STAT_ADD(_ctx, _f, _v) \
    atomic_fetch_add_explicit(&(_ctx)->st._f, (_v), memory_order_relaxed)

static void do_accepted_reap(ut_ucx_ctx_t *ctx);
static void do_accepted_authed(ut_ucx_ctx_t *ctx, ucp_ep_h ep);

static inline ut_ucx_ctx_t *ut_ctx_of(ut_ctx_t *ctx)
{
    return (ut_ucx_ctx_t *)ctx;
}

static ucache_status_t ut_ucs_status(ucs_status_t status)
{
    switch (status) {
    case UCS_OK:                    return UCACHE_OK;
    case UCS_INPROGRESS:            return UCACHE_INPROGRESS;
    case UCS_ERR_NO_MEMORY:         return UCACHE_ERR_NO_MEMORY;
    case UCS_ERR_INVALID_PARAM:     return UCACHE_ERR_INVALID;
    case UCS_ERR_NO_RESOURCE:
    case UCS_ERR_BUSY:              return UCACHE_ERR_AGAIN;
    case UCS_ERR_TIMED_OUT:         return UCACHE_ERR_TIMEOUT;
    case UCS_ERR_CANCELED:          return UCACHE_ERR_CANCELED;
    case UCS_ERR_UNSUPPORTED:       return UCACHE_ERR_UNSUPPORTED;
    case UCS_ERR_MESSAGE_TRUNCATED: return UCACHE_ERR_MSG_TRUNCATED;
    case UCS_ERR_IO_ERROR:          return UCACHE_ERR_IO;
    case UCS_ERR_UNREACHABLE:
    case UCS_ERR_CONNECTION_RESET:
    case UCS_ERR_ENDPOINT_TIMEOUT:
    case UCS_ERR_REJECTED:
    case UCS_ERR_NOT_CONNECTED:     return UCACHE_ERR_PEER;
    default:                        return UCACHE_ERR_TRANSPORT;
    }
}

/* ------------------------------------------------------------------------ */
/* Self-checking blobs                                                       */
/* ------------------------------------------------------------------------ */

/*
 * Take a blob from outside: validate it (a refusal is counted and logged
 * once, naming @p what), copy its body to @p body and its UCX part to a new
 * buffer *payload_p (the caller frees it).
 */
static ucache_status_t ut_blob_take(_Atomic uint64_t *bad_input, const void *blob,
                                    size_t len, uint32_t magic, const char *what,
                                    void *body, size_t body_len,
                                    void **payload_p, size_t *payload_len_p)
{
    const void *payload;
    ucache_status_t status;

    status = ut_blob_check(blob, len, magic, body_len, body, &payload,
                           payload_len_p);
    if (status != UCACHE_OK) {
        atomic_fetch_add_explicit(bad_input, 1, memory_order_relaxed);
        UC_ERROR("refused %s of %zu bytes: %s", what, len,
                 (status == UCACHE_ERR_CORRUPT) ? "checksum mismatch" :
                                                  "not a ucache blob of that kind");
        return status;
    }
    *payload_p = malloc(*payload_len_p);
    if (*payload_p == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    memcpy(*payload_p, payload, *payload_len_p);
    return UCACHE_OK;
}

/* ------------------------------------------------------------------------ */
/* Outstanding requests                                                      */
/* ------------------------------------------------------------------------ */

static void do_req_start(ut_req_t *req, ut_peer_t *peer, ut_path_t path)
{
    req->status      = UCACHE_INPROGRESS;
    req->path        = (uint8_t)path;
    req->length      = 0;
    req->meta_length = 0;
    req->priv.peer   = peer;
    req->priv.pending = 0;
    req->priv.flags  = 0;
    req->priv.error  = UCACHE_OK;
}

/*
 * A request's id: its slot in the low UT_SLOT_BITS bits, a random tag in
 * the other 44.  Only the peer asked ever sees the id, so a reply is taken
 * only from the peer that knows it: another peer cannot answer (or cut
 * short) a request it was not sent by guessing a slot number.
 */
static uint64_t ut_random64(void);

#define UT_SLOT_BITS 20
#define UT_SLOT_MASK ((1ull << UT_SLOT_BITS) - 1)

static uint64_t do_random_tag(ut_ucx_ctx_t *ctx)
{
    unsigned i;

    if (ctx->nrnd == 0) {
        if (getrandom(ctx->rnd, sizeof(ctx->rnd), 0) != (ssize_t)sizeof(ctx->rnd)) {
            for (i = 0; i < 64; i++) {
                ctx->rnd[i] = ut_random64();
            }
        }
        ctx->nrnd = 64;
    }
    return ctx->rnd[--ctx->nrnd] >> UT_SLOT_BITS;
}

static ucache_status_t do_slot_alloc(ut_ucx_ctx_t *ctx, ut_req_t *req)
{
    uint32_t idx;

    if (ctx->nfree == 0) {
        return UCACHE_ERR_AGAIN;
    }
    idx = ctx->free_slots[--ctx->nfree];
    ctx->slots[idx] = req;
    ctx->slot_gen[idx] = do_random_tag(ctx);
    req->priv.posted   = uc_time_ns();
    req->priv.deadline = req->priv.posted + ctx->cfg.timeout_ns;
    req->priv.id    = (ctx->slot_gen[idx] << UT_SLOT_BITS) | idx;
    req->priv.flags |= UT_REQF_SLOT;
    ((ut_ucx_peer_t *)req->priv.peer)->inflight++;
    return UCACHE_OK;
}

static ut_req_t *do_slot_find(ut_ucx_ctx_t *ctx, uint64_t id)
{
    uint64_t idx = id & UT_SLOT_MASK;

    if ((idx >= ctx->cfg.max_outstanding) || (ctx->slots[idx] == NULL) ||
        (ctx->slot_gen[idx] != (id >> UT_SLOT_BITS))) {
        return NULL;
    }
    return ctx->slots[idx];
}

/* Record the request's error (the first one wins); it becomes the status
 * when the request completes, never before. */
static void do_req_set_status(ut_req_t *req, ucache_status_t status)
{
    if (req->priv.error == UCACHE_OK) {
        req->priv.error = status;
    }
}

/* Clear pending bits; when none are left, release the slot and finish. */
static void do_req_clear(ut_ucx_ctx_t *ctx, ut_req_t *req, uint32_t bits)
{
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)req->priv.peer;
    uint32_t idx;

    req->priv.pending &= ~bits;
    if (req->priv.pending != 0) {
        return;
    }
    if (req->priv.flags & UT_REQF_SLOT) {
        idx = (uint32_t)(req->priv.id & UT_SLOT_MASK);
        ctx->slots[idx] = NULL;
        ctx->slot_gen[idx] = 0;
        ctx->free_slots[ctx->nfree++] = idx;
        req->priv.flags &= ~UT_REQF_SLOT;
        peer->inflight--;
    }
    req->status = (ucache_status_t)req->priv.error;
    if (req->status == UCACHE_OK) {
        if (req->path == UT_PATH_RPC) {
            UT_STAT_ADD(ctx, rpcs, 1);
        } else if (req->path != UT_PATH_NONE) { /* NONE: the connect ping */
            UT_STAT_ADD(ctx, read_bytes, req->length);
            if (req->path == UT_PATH_GET) {
                UT_STAT_ADD(ctx, get_reads, 1);
            } else {
                UT_STAT_ADD(ctx, am_reads, 1);
            }
        }
    } else if (req->status == UCACHE_ERR_TIMEOUT) {
        UT_STAT_ADD(ctx, timeouts, 1);
    }
}

/* ------------------------------------------------------------------------ */
/* Peers and endpoints                                                       */
/* ------------------------------------------------------------------------ */

static void do_lru_unlink(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer)
{
    if (peer->lru_prev != NULL) {
        peer->lru_prev->lru_next = peer->lru_next;
    } else {
        ctx->lru_head = peer->lru_next;
    }
    if (peer->lru_next != NULL) {
        peer->lru_next->lru_prev = peer->lru_prev;
    } else {
        ctx->lru_tail = peer->lru_prev;
    }
    peer->lru_prev = peer->lru_next = NULL;
}

static void do_lru_push(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer)
{
    peer->lru_prev = NULL;
    peer->lru_next = ctx->lru_head;
    if (ctx->lru_head != NULL) {
        ctx->lru_head->lru_prev = peer;
    } else {
        ctx->lru_tail = peer;
    }
    ctx->lru_head = peer;
}

static void do_lru_touch(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer)
{
    if (ctx->lru_head != peer) {
        do_lru_unlink(ctx, peer);
        do_lru_push(ctx, peer);
    }
}

/* Close an endpoint without waiting: outstanding UCX requests on it complete
 * (with an error) from inside this call or later progress. */
static void do_ep_close(ut_ucx_ctx_t *ctx, ucp_ep_h ep)
{
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
        .flags        = UCP_EP_CLOSE_FLAG_FORCE
    };
    ut_ucx_closing_t *c;
    void *req;

    req = ucp_ep_close_nbx(ep, &param);
    if ((req == NULL) || UCS_PTR_IS_ERR(req)) {
        return;
    }
    c = malloc(sizeof(*c));
    if (c == NULL) {
        /* Cannot track it: wait for it here (we hold the lock already). */
        while (ucp_request_check_status(req) == UCS_INPROGRESS) {
            ucp_worker_progress(ctx->worker);
        }
        ucp_request_free(req);
        return;
    }
    c->req       = req;
    c->next      = ctx->closing;
    ctx->closing = c;
}

static void do_closing_reap(ut_ucx_ctx_t *ctx)
{
    ut_ucx_closing_t **pp = &ctx->closing, *c;

    while ((c = *pp) != NULL) {
        if (ucp_request_check_status(c->req) != UCS_INPROGRESS) {
            ucp_request_free(c->req);
            *pp = c->next;
            free(c);
        } else {
            pp = &c->next;
        }
    }
}

static void do_peer_disconnect(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer,
                               ut_peer_state_t new_state)
{
    ucp_ep_h ep = peer->ep;

    if (ep == NULL) {
        atomic_store(&peer->state, new_state);
        return;
    }
    peer->ep = NULL;
    if (!peer->client) {
        do_lru_unlink(ctx, peer);
        ctx->nopen--;
    }
    atomic_store(&peer->state, new_state);
    do_ep_close(ctx, ep);
}

/*
 * Fail a peer: every request still waiting on it completes with @p status
 * (UCACHE_ERR_PEER from the error callback, UCACHE_ERR_TIMEOUT from a
 * deadline); closing the endpoint cancels what UCX still holds.
 */
static void do_peer_fail(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer,
                         ucache_status_t status)
{
    uint32_t i;
    ut_req_t *req;

    int state = atomic_load(&peer->state);

    if ((state != UT_PEER_CONNECTED) && (state != UT_PEER_CONNECTING)) {
        return;
    }
    peer->fail_status = status;
    atomic_store(&peer->failed_at, uc_time_ns());
    peer->retry_ns = (peer->retry_ns == 0) ? ctx->cfg.peer_retry_ns :
                     (2 * peer->retry_ns < ctx->cfg.peer_retry_max_ns) ?
                     2 * peer->retry_ns : ctx->cfg.peer_retry_max_ns;
    UT_STAT_ADD(ctx, peer_failures, 1);
    if ((state == UT_PEER_CONNECTED) || peer->hs_wait) {
        UC_WARN("peer %s failed: %s; its operations fail for %llu ms, then it is "
                "probed", peer->name, ucache_strerror(status),
                (unsigned long long)(peer->retry_ns / UC_NSEC_PER_MSEC));
    } else {
        UC_DEBUG("probe of %s failed: %s; next in %llu ms", peer->name,
                 ucache_strerror(status),
                 (unsigned long long)(peer->retry_ns / UC_NSEC_PER_MSEC));
    }

    for (i = 0; (i < ctx->cfg.max_outstanding) && (peer->inflight > 0); i++) {
        req = ctx->slots[i];
        if ((req != NULL) && (req->priv.peer == &peer->super)) {
            do_req_set_status(req, status);
            if (req->priv.pending & UT_PEND_REPLY) {
                do_req_clear(ctx, req, UT_PEND_REPLY);
            }
        }
    }
    /* UCX-owned parts (gets, sends, rendezvous receives) finish with errors
     * as the endpoint is closed; their callbacks keep the status set above. */
    do_peer_disconnect(ctx, peer, UT_PEER_FAILED);
}

static void ut_ucx_ep_err_cb(void *arg, ucp_ep_h ep, ucs_status_t status)
{
    ut_ucx_peer_t *peer = arg;
    ut_ucx_ctx_t *ctx   = ut_ctx_of(peer->super.ctx);

    if (peer->ep != ep) {
        return; /* an endpoint we already closed */
    }
    UC_DEBUG("endpoint to %s reported %s", peer->name, ucs_status_string(status));
    do_peer_fail(ctx, peer, UCACHE_ERR_PEER);
}

/*
 * Whether the endpoint's RMA lanes are native one-sided (verbs rc/dc, ugni,
 * ...) rather than tcp's message-based emulation, and the distinct
 * "transport/device" of all its lanes into @p tls.  UCX 1.13 has no query
 * for an endpoint's transports, so this reads ucp_ep_print_info().
 */
static int do_ep_native_rma(ucp_ep_h ep, char *tls, size_t cap)
{
    static const char *const emulated[] = { "tcp", "sockcm", "self", NULL };
    char *text = NULL, *line, *save = NULL, *tl, *end;
    size_t size = 0;
    int native = 0;
    unsigned i;
    bool more;
    FILE *f;

    f = open_memstream(&text, &size);
    if (f == NULL) {
        return 0;
    }
    ucp_ep_print_info(ep, f);
    fclose(f);
    tls[0] = '\0';
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strstr(line, "lane[") == NULL) {
            continue;
        }
        /* "#   lane[1]:  2:rc_mlx5/mlx5_0:1.0 md[1] ... rma_bw#0" */
        tl = strchr(strstr(line, "lane["), ']');
        if ((tl == NULL) || (tl[1] != ':')) {
            continue;
        }
        tl += 2;
        tl += strspn(tl, " ");
        tl += strspn(tl, "0123456789");
        if (*tl++ != ':') {
            continue;
        }
        end = tl + strcspn(tl, " \t");
        more = (*end != '\0');
        *end = '\0';
        if ((strstr(tls, tl) == NULL) && (strlen(tls) + strlen(tl) + 2 < cap)) {
            snprintf(tls + strlen(tls), cap - strlen(tls), "%s%s", tls[0] ? "," : "", tl);
        }
        if (!more || (strstr(end + 1, "rma_bw") == NULL)) {
            continue;
        }
        end = strchr(tl, '/');
        if (end == NULL) {
            continue;
        }
        *end = '\0';
        for (i = 0; emulated[i] != NULL; i++) {
            if (strcmp(tl, emulated[i]) == 0) {
                break;
            }
        }
        if (emulated[i] == NULL) {
            native = 1;
        }
    }
    free(text);
    return native;
}

static ucache_status_t do_am_request(ut_ucx_ctx_t *ctx, ut_req_t *req,
                                     ut_ucx_peer_t *peer, uint16_t op,
                                     const void *payload, size_t len);
static unsigned do_progress(ut_ucx_ctx_t *ctx);

/*
 * Post the handshake of a new endpoint: one round trip (a PING that
 * carries our address; the answer carries the peer's context id).  When
 * the answer is in, UCX's wireup has finished on both sides.  (UCX 1.13
 * aborts a server that must answer a wireup from a client that already
 * left: finishing the handshake before anything else is done on the
 * endpoint keeps that window small.)
 */
static ucache_status_t do_hs_post(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer)
{
    ut_req_t *req = &peer->hs;

    do_req_start(req, &peer->super, UT_PATH_NONE);
    req->priv.buf      = NULL;
    req->priv.cap      = 0;
    peer->hs_uuid      = 0;
    req->priv.meta     = &peer->hs_uuid;
    req->priv.meta_cap = sizeof(peer->hs_uuid);
    /* our address goes with it: the peer answers deferred requests on an
     * endpoint of its own to us (do_client_learn) */
    return do_am_request(ctx, req, peer, UT_OP_PING, ctx->addr_blob, ctx->addr_blob_len);
}

/*
 * CONNECTING: end the handshake if its answer is in or its deadline has
 * passed (then the peer is CONNECTED or FAILED); else leave it.
 */
static void do_hs_check(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer)
{
    ucache_status_t status = peer->hs.status;

    if (atomic_load(&peer->state) != UT_PEER_CONNECTING) {
        return;
    }
    if (status == UCACHE_INPROGRESS) {
        if (uc_time_ns() <= peer->hs.priv.deadline) {
            return;
        }
        if (peer->hs_wait) {
            UC_WARN("%s did not answer the connection handshake within %llu ms",
                    peer->name, (unsigned long long)(ctx->cfg.timeout_ns /
                                                     UC_NSEC_PER_MSEC));
        }
        do_peer_fail(ctx, peer, UCACHE_ERR_TIMEOUT);
        return;
    }
    if ((status == UCACHE_OK) && (peer->hs.meta_length == sizeof(peer->hs_uuid))) {
        if (peer->uuid == 0) {
            peer->uuid = peer->hs_uuid; /* a listener's context: now we know it */
        } else if (peer->uuid != peer->hs_uuid) {
            UC_WARN("%s answered as another context (restarted?)", peer->name);
            status = UCACHE_ERR_STALE;
        }
    }
    if (status != UCACHE_OK) {
        do_peer_fail(ctx, peer, status);
        return;
    }
    if (!peer->hs_wait || (peer->retry_ns != 0)) {
        UC_INFO("peer %s answers again", peer->name);
    }
    peer->retry_ns = 0;
    peer->heard_at = uc_time_ns();
    atomic_store(&peer->state, UT_PEER_CONNECTED);
}

/*
 * ctx->lock held: wait until @p peer's handshake ends, with the lock
 * released while waiting (other threads post and progress meanwhile).
 * The handshake's own deadline bounds the wait.
 */
static ucache_status_t ut_ucx_wait(ut_ctx_t *c, ut_req_t *reqs, size_t n,
                                   uint64_t timeout_ns);

static void do_hs_await(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer)
{
    uint32_t gen = peer->gen;

    for (;;) {
        do_hs_check(ctx, peer);
        if ((atomic_load(&peer->state) != UT_PEER_CONNECTING) || (peer->gen != gen)) {
            return;
        }
        pthread_mutex_unlock(&ctx->lock);
        ut_ucx_wait(&ctx->super, &peer->hs, 1, UT_WAIT_CAP_NS * 10);
        pthread_mutex_lock(&ctx->lock);
    }
}

static ucache_status_t do_peer_connect(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer, bool wait)
{
    ucp_ep_params_t params = {
        .field_mask      = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                           UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                           UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .address         = peer->ucp_addr,
        .err_mode        = UCP_ERR_HANDLING_MODE_PEER,
        .err_handler     = { .cb = ut_ucx_ep_err_cb, .arg = peer }
    };
    ut_ucx_peer_t *victim;

    if (peer->ucp_addr == NULL) { /* a listener's address: client-server mode */
        params.field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR |
                            UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                            UCP_EP_PARAM_FIELD_ERR_HANDLER;
        params.flags            = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
        params.sockaddr.addr    = (const struct sockaddr *)&peer->sa;
        params.sockaddr.addrlen = peer->salen;
    }
    ucache_status_t ret;
    ucs_status_t status;
    ucp_ep_h ep;

    if (peer->hs.priv.pending != 0) {
        /* the last handshake's send is still held by UCX (its endpoint is
         * closing): not yet */
        return (atomic_load(&peer->state) == UT_PEER_FAILED) ? peer->fail_status :
               UCACHE_ERR_AGAIN;
    }
    /* A requester's endpoint is outside the cap: UCX matches it to the
     * connection the requester made (no new socket or queue pair), and
     * closing it would cut that connection; UT_CLIENTS_MAX bounds them. */
    while (!peer->client && (ctx->nopen >= ctx->cfg.max_eps)) {
        for (victim = ctx->lru_tail; victim != NULL; victim = victim->lru_prev) {
            if ((victim->inflight == 0) &&
                (atomic_load(&victim->state) == UT_PEER_CONNECTED)) {
                break;
            }
        }
        if (victim == NULL) {
            UC_WARN("all %u endpoints (UCACHE_MAX_EPS) are busy; cannot "
                    "connect to %s now", ctx->cfg.max_eps, peer->name);
            return UCACHE_ERR_AGAIN;
        }
        UC_DEBUG("closing idle endpoint to %s (UCACHE_MAX_EPS=%u)",
                 victim->name, ctx->cfg.max_eps);
        do_peer_disconnect(ctx, victim, UT_PEER_IDLE);
        UT_STAT_ADD(ctx, eps_evicted, 1);
    }

    status = ucp_ep_create(ctx->worker, &params, &ep);
    if (status != UCS_OK) {
        UC_ERROR("cannot connect to %s: %s", peer->name, ucs_status_string(status));
        peer->fail_status = ut_ucs_status(status);
        atomic_store(&peer->failed_at, uc_time_ns());
        atomic_store(&peer->state, UT_PEER_FAILED);
        return UCACHE_ERR_PEER;
    }
    peer->ep         = ep;
    peer->gen++;
    peer->native_get = -1;
    if (!peer->client) {
        ctx->nopen++;
        do_lru_push(ctx, peer);
    }
    UT_STAT_ADD(ctx, connects, 1);
    if (peer->client) {
        /* a requester is waiting for our reply, progressing: the reply
         * itself ends the handshake */
        atomic_store(&peer->state, UT_PEER_CONNECTED);
        return UCACHE_OK;
    }
    atomic_store(&peer->state, UT_PEER_CONNECTING);
    peer->hs_wait = wait;
    ret = do_hs_post(ctx, peer);
    if (ret != UCACHE_OK) {
        do_peer_fail(ctx, peer, ret);
        return ret;
    }
    if (!wait) {
        return peer->fail_status; /* a probe: this operation fails fast */
    }
    do_hs_await(ctx, peer);
    switch (atomic_load(&peer->state)) {
    case UT_PEER_CONNECTED: return UCACHE_OK;
    case UT_PEER_FAILED:    return peer->fail_status;
    default:                return UCACHE_ERR_AGAIN; /* closed meanwhile (LRU) */
    }
}

/*
 * Make sure the peer has an endpoint that finished its handshake.  A first
 * contact waits for the handshake; a failed peer fails fast for retry_ns,
 * then a probe is started that this operation does not wait for.
 */
static ucache_status_t do_peer_ensure(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer)
{
    do_hs_check(ctx, peer);
    switch (atomic_load(&peer->state)) {
    case UT_PEER_CONNECTED:
        if (!peer->client) {
            do_lru_touch(ctx, peer);
        }
        return UCACHE_OK;
    case UT_PEER_CONNECTING:
        if (!peer->hs_wait) {
            do_progress(ctx);   /* a probe: moved on, never waited for */
            do_hs_check(ctx, peer);
            return (atomic_load(&peer->state) == UT_PEER_CONNECTED) ? UCACHE_OK :
                   (peer->fail_status != UCACHE_OK) ? peer->fail_status : UCACHE_ERR_PEER;
        }
        do_hs_await(ctx, peer);
        return (atomic_load(&peer->state) == UT_PEER_CONNECTED) ? UCACHE_OK :
               (atomic_load(&peer->state) == UT_PEER_FAILED) ? peer->fail_status :
               UCACHE_ERR_AGAIN;
    case UT_PEER_FAILED:
        if (uc_time_ns() - atomic_load(&peer->failed_at) < peer->retry_ns) {
            return peer->fail_status;
        }
        UC_DEBUG("probing failed peer %s", peer->name);
        return do_peer_connect(ctx, peer, false);
    default:
        return do_peer_connect(ctx, peer, true);
    }
}

/* ------------------------------------------------------------------------ */
/* Active messages                                                           */
/* ------------------------------------------------------------------------ */

static ut_ucx_reply_t *do_reply_get(ut_ucx_ctx_t *ctx)
{
    ut_ucx_reply_t *r = ctx->reply_free;

    if (r != NULL) {
        ctx->reply_free = r->next;
    } else {
        r = malloc(sizeof(*r));
        if (r == NULL) {
            return NULL;
        }
    }
    r->copy = NULL;
    r->mem  = NULL;
    r->ctx  = ctx;
    r->prev = NULL;
    r->next = ctx->reply_out;
    if (ctx->reply_out != NULL) {
        ctx->reply_out->prev = r;
    }
    ctx->reply_out = r;
    return r;
}

static void do_reply_put(ut_ucx_reply_t *r)
{
    ut_ucx_ctx_t *ctx = r->ctx;

    if (r->mem != NULL) {
        r->mem->sends--;
    }
    free(r->copy);
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        ctx->reply_out = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    r->next = ctx->reply_free;
    ctx->reply_free = r;
}

static void ut_ucx_reply_sent_cb(void *request, ucs_status_t status,
                                 void *user_data)
{
    ut_ucx_reply_t *r = user_data;

    if (status != UCS_OK) {
        UC_DEBUG("reply to a requester failed: %s", ucs_status_string(status));
    }
    do_reply_put(r);
    ucp_request_free(request);
}

/* Send one reply on @p ep; metadata is copied, data borrowed if stable. */
static ucache_status_t do_reply_send(ut_ucx_ctx_t *ctx, ucp_ep_h ep,
                                     uint64_t id, ucache_status_t status,
                                     const void *meta, size_t meta_len,
                                     const void *data, size_t data_len,
                                     bool stable, ut_ucx_mem_t *mem)
{
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.send      = ut_ucx_reply_sent_cb
    };
    ut_ucx_reply_t *r;
    void *sreq;

    r = do_reply_get(ctx);
    if (r == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    if ((data_len > 0) && !stable) {
        r->copy = malloc(data_len);
        if (r->copy == NULL) {
            do_reply_put(r);
            return UCACHE_ERR_NO_MEMORY;
        }
        memcpy(r->copy, data, data_len);
        data = r->copy;
    } else if (mem != NULL) {
        r->mem = mem; /* mem_destroy waits for this reply to be sent */
        mem->sends++;
    }
    r->hdr.magic    = UT_AM_MAGIC;
    r->hdr.status   = status;
    r->hdr.id       = id;
    r->hdr.meta_len = (uint32_t)meta_len;
    r->hdr.reserved = 0;
    if (meta_len > 0) {
        memcpy(r->meta, meta, meta_len);
    }
    param.user_data = r;
    sreq = ucp_am_send_nbx(ep, UT_AM_ID_REP, &r->hdr, sizeof(r->hdr) + meta_len,
                           (data_len > 0) ? data : NULL, data_len, &param);
    if (sreq == NULL) {
        do_reply_put(r);
    } else if (UCS_PTR_IS_ERR(sreq)) {
        UC_DEBUG("cannot send a reply: %s",
                 ucs_status_string(UCS_PTR_STATUS(sreq)));
        do_reply_put(r);
        return ut_ucs_status(UCS_PTR_STATUS(sreq));
    }
    if (status == UCACHE_OK) {
        UT_STAT_ADD(ctx, served_bytes, data_len);
    }
    return UCACHE_OK;
}

/* ------------------------------------------------------------------------ */
/* Requesters a node may owe a deferred reply                                */
/* ------------------------------------------------------------------------ */

/* ctx->lock held: the requester of uuid @p uuid, if it introduced itself. */
static ut_ucx_peer_t *do_client_find(ut_ucx_ctx_t *ctx, uint64_t uuid)
{
    ut_ucx_peer_t *c;

    for (c = ctx->clients[uuid % UT_CLIENT_BUCKETS]; c != NULL; c = c->cnext) {
        if (c->uuid == uuid) {
            return c;
        }
    }
    return NULL;
}

/* ctx->lock held: forget one requester owed nothing (its endpoint closed),
 * from @p uuid's bucket on, to make room.  False if every one is owed. */
static bool do_client_evict(ut_ucx_ctx_t *ctx, uint64_t uuid)
{
    ut_ucx_peer_t **pp, *c;
    unsigned i, b;

    for (i = 0; i < UT_CLIENT_BUCKETS; i++) {
        b = (unsigned)((uuid + i) % UT_CLIENT_BUCKETS);
        for (pp = &ctx->clients[b]; (c = *pp) != NULL; pp = &c->cnext) {
            if (c->owed > 0) {
                continue;
            }
            *pp = c->cnext;
            if (atomic_load(&c->state) == UT_PEER_CONNECTED) {
                do_peer_disconnect(ctx, c, UT_PEER_IDLE);
            }
            free(c->ucp_addr);
            free(c);
            ctx->nclients--;
            return true;
        }
    }
    return false;
}

/*
 * ctx->lock held: a requester's PING carries its address blob (checked
 * here like any blob from outside; it must name the uuid the request came
 * with).  The node keeps it as a peer of its own, connected only when a
 * deferred reply is due: UCX's reply endpoint is valid only during the
 * request's handler, and is destroyed by UCX when the requester fails.
 */
static void do_client_learn(ut_ucx_ctx_t *ctx, uint64_t uuid, const void *blob,
                            size_t len)
{
    const void *payload;
    ut_addr_body body;
    ut_ucx_peer_t *c;
    size_t plen;

    if ((uuid == 0) || (len == 0) || (do_client_find(ctx, uuid) != NULL)) {
        return;
    }
    if ((ut_blob_check(blob, len, UT_ADDR_MAGIC, sizeof(body), &body, &payload,
                       &plen) != UCACHE_OK) || (body.uuid != uuid)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_WARN("a requester's address does not check out; its requests are not "
                "deferred");
        return;
    }
    if ((ctx->nclients >= UT_CLIENTS_MAX) && !do_client_evict(ctx, uuid)) {
        UC_WARN("%u requesters known, each owed a reply; no more are (their "
                "misses are answered at once)", UT_CLIENTS_MAX);
        return;
    }
    c = calloc(1, sizeof(*c));
    if ((c == NULL) || ((c->ucp_addr = malloc(plen)) == NULL)) {
        free(c);
        return;
    }
    memcpy(c->ucp_addr, payload, plen);
    c->ucp_addr_len = plen;
    c->uuid         = uuid;
    c->client       = true;
    c->super.ctx    = &ctx->super;
    c->native_get   = -1;
    atomic_init(&c->state, UT_PEER_IDLE);
    snprintf(c->name, sizeof(c->name), "requester %.*s:%u", UT_HOST_MAX - 1, body.host,
             body.pid);
    c->cnext = ctx->clients[uuid % UT_CLIENT_BUCKETS];
    ctx->clients[uuid % UT_CLIENT_BUCKETS] = c;
    ctx->nclients++;
}

/* ctx->lock held, at context destroy: every requester's endpoint closed. */
static void do_clients_free(ut_ucx_ctx_t *ctx)
{
    ut_ucx_peer_t *c;
    unsigned b;

    for (b = 0; b < UT_CLIENT_BUCKETS; b++) {
        while ((c = ctx->clients[b]) != NULL) {
            ctx->clients[b] = c->cnext;
            if (atomic_load(&c->state) == UT_PEER_CONNECTED) {
                do_peer_disconnect(ctx, c, UT_PEER_IDLE);
            }
            free(c->ucp_addr);
            free(c);
        }
    }
    ctx->nclients = 0;
}

/* Serve a built-in read: bounds-checked against the exported region. */
static void do_serve_read(ut_ucx_ctx_t *ctx, ucp_ep_h ep, uint64_t id,
                          const void *data, size_t length)
{
    ut_am_read_desc d;
    ut_ucx_mem_t *mem;
    uint64_t base;

    if (length != sizeof(d)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        do_reply_send(ctx, ep, id, UCACHE_ERR_INVALID, NULL, 0, NULL, 0, false,
                      NULL);
        return;
    }
    memcpy(&d, data, sizeof(d));
    mem = (d.region_id < UT_MAX_REGIONS) ? ctx->regions[d.region_id] : NULL;
    if ((mem == NULL) || (mem->cookie != d.cookie)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_DEBUG("read of unknown or stale region %u", d.region_id);
        do_reply_send(ctx, ep, id, UCACHE_ERR_STALE, NULL, 0, NULL, 0, false,
                      NULL);
        return;
    }
    base = (uint64_t)(uintptr_t)mem->super.base;
    if ((d.len == 0) || (d.raddr < base) || (d.len > mem->super.len) ||
        (d.raddr - base > mem->super.len - d.len)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        do_reply_send(ctx, ep, id, UCACHE_ERR_OUT_OF_RANGE, NULL, 0, NULL, 0,
                      false, NULL);
        return;
    }
    UT_STAT_ADD(ctx, am_reads_served, 1);
    do_reply_send(ctx, ep, id, UCACHE_OK, NULL, 0, (const void *)(uintptr_t)d.raddr,
                  d.len, true, mem);
}

/*
 * A requester waits long for replies and asks whether we are there and
 * still owe them (do_peer_liveness).  The answer says which of the asked
 * ids are deferred replies still due, and takes the path those replies
 * take - our own endpoint to the requester - behind any that went out, so
 * the requester never takes a reply in flight for a lost one.  A requester
 * we never answered on our own endpoint is answered on UCX's reply one.
 */
static void do_keepalive_answer(ut_ucx_ctx_t *ctx, ucp_ep_h reply_ep,
                                const ut_am_req_hdr *hdr, const void *data, size_t len)
{
    ut_ucx_peer_t *c = do_client_find(ctx, hdr->from);
    ut_ka_rep rep = { .uuid = ctx->uuid, .pending = 0 };
    uint64_t ids[UT_KA_IDS];
    ucp_ep_h ep = reply_ep;
    ut_ucx_rpc_t *d;
    int i, n;

    n = ut_ka_ids_parse(data, len, ids);
    if (n < 0) {
        UT_STAT_ADD(ctx, bad_input, 1);
        do_reply_send(ctx, reply_ep, hdr->id, UCACHE_ERR_INVALID, NULL, 0, NULL, 0,
                      false, NULL);
        return;
    }
    for (i = 0; i < n; i++) {
        for (d = ctx->dlist; d != NULL; d = d->dnext) {
            if ((d->from == hdr->from) && (d->id == ids[i])) {
                rep.pending |= 1ull << i;
                break;
            }
        }
    }
    if ((c != NULL) && ((c->owed > 0) || (atomic_load(&c->state) != UT_PEER_IDLE))) {
        if (atomic_load(&c->state) == UT_PEER_FAILED) {
            atomic_store(&c->failed_at, 0);
        }
        if (do_peer_ensure(ctx, c) != UCACHE_OK) {
            return; /* no way back to it: no answer, as for the replies */
        }
        ep = c->ep;
    }
    do_reply_send(ctx, ep, hdr->id, UCACHE_OK, &rep, sizeof(rep), NULL, 0, false, NULL);
}

static ucs_status_t ut_ucx_am_req_cb(void *arg, const void *header,
                                     size_t header_length, void *data,
                                     size_t length,
                                     const ucp_am_recv_param_t *param)
{
    ut_ucx_ctx_t *ctx = arg;
    bool rndv = !!(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV);
    ut_role_t role = UT_ROLE_NONE;
    ut_ucx_handler_t *h;
    ut_am_req_hdr hdr;
    ut_ucx_peer_t *c;
    ut_ucx_rpc_t rpc;

    if ((header_length != sizeof(hdr)) ||
        !(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_WARN("dropped a malformed request (header %zu bytes)", header_length);
        return UCS_OK;
    }
    memcpy(&hdr, header, sizeof(hdr));
    if (hdr.magic != UT_AM_MAGIC) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_WARN("dropped a request with a bad magic 0x%x", hdr.magic);
        return UCS_OK;
    }
    /* Signed, to us, fresh, never seen: before anything else is done for
     * it (a rendezvous payload is not here to check, so it is refused). */
    if (ut_auth_check(ctx->auth, header, header_length, offsetof(ut_am_req_hdr, auth),
                      hdr.from, ctx->uuid, hdr.op == UT_OP_PING, rndv ? NULL : data,
                      length, &role) != UCACHE_OK) {
        if (rndv) {
            ucp_am_data_release(ctx->worker, data);
        }
        do_reply_send(ctx, param->reply_ep, hdr.id, UCACHE_ERR_AUTH, NULL, 0, NULL, 0,
                      false, NULL);
        return UCS_OK;
    }
    if (ctx->nunauthed > 0) {
        do_accepted_authed(ctx, param->reply_ep);
    }
    if (hdr.op == UT_OP_PING) {
        c = do_client_find(ctx, hdr.from);
        if ((c != NULL) && (atomic_load(&c->state) != UT_PEER_IDLE) &&
            (c->ep != param->reply_ep)) { /* (the same endpoint: it is live) */
            /* A requester we know connects again: its old connection - which
             * our endpoint to it may share (UCX matches them) - is gone or
             * going, and a reply sent on that endpoint now would be lost.
             * The next reply due opens a fresh one. */
            do_peer_disconnect(ctx, c, UT_PEER_IDLE);
        }
        if (!(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) {
            do_client_learn(ctx, hdr.from, data, length);
        } else {
            ucp_am_data_release(ctx->worker, data);
        }
        /* our uuid: a requester that knew only our listener addresses its
         * later requests to it */
        do_reply_send(ctx, param->reply_ep, hdr.id, UCACHE_OK, &ctx->uuid,
                      sizeof(ctx->uuid), NULL, 0, false, NULL);
        return UCS_OK;
    }
    if (hdr.op == UT_OP_KEEPALIVE) {
        do_keepalive_answer(ctx, param->reply_ep, &hdr, rndv ? NULL : data,
                            rndv ? UT_KA_IDS * sizeof(uint64_t) + 1 : length);
        if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
            ucp_am_data_release(ctx->worker, data);
        }
        return UCS_OK;
    }
    if ((param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) ||
        (length > ctx->cfg.rpc_max)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_WARN("refused a %zu-byte request (UCACHE_RPC_MAX is %zu)", length,
                ctx->cfg.rpc_max);
        if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
            ucp_am_data_release(ctx->worker, data);
        }
        do_reply_send(ctx, param->reply_ep, hdr.id, UCACHE_ERR_MSG_TRUNCATED,
                      NULL, 0, NULL, 0, false, NULL);
        return UCS_OK;
    }
    if (hdr.op == UT_OP_READ) {
        do_serve_read(ctx, param->reply_ep, hdr.id, data, length);
        return UCS_OK;
    }
    h = (hdr.op <= UT_RPC_MAX_ID) ? &ctx->handlers[hdr.op] : NULL;
    if ((h == NULL) || (h->cb == NULL)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_DEBUG("request for unknown handler %u", hdr.op);
        do_reply_send(ctx, param->reply_ep, hdr.id, UCACHE_ERR_UNSUPPORTED,
                      NULL, 0, NULL, 0, false, NULL);
        return UCS_OK;
    }
    rpc.super.ctx  = &ctx->super;
    rpc.super.role = role;
    rpc.reply_ep   = param->reply_ep;
    rpc.client    = NULL;
    rpc.from      = hdr.from;
    rpc.id        = hdr.id;
    rpc.replied   = false;
    rpc.deferred  = false;
    h->cb(h->arg, &rpc.super, data, length);
    if (!rpc.replied) {
        UC_ERROR("RPC handler %u returned without replying; answering with an "
                 "error", hdr.op);
        do_reply_send(ctx, param->reply_ep, hdr.id, UCACHE_ERR_TRANSPORT,
                      NULL, 0, NULL, 0, false, NULL);
    }
    UT_STAT_ADD(ctx, rpcs_served, 1);
    return UCS_OK;
}

static void ut_ucx_recv_done_cb(void *request, ucs_status_t status,
                                size_t length, void *user_data)
{
    ut_req_t *req = user_data;
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)req->priv.peer;

    if (status != UCS_OK) {
        do_req_set_status(req, (atomic_load(&peer->state) == UT_PEER_FAILED) ?
                               peer->fail_status : ut_ucs_status(status));
    } else {
        req->length = length;
    }
    do_req_clear(ut_ctx_of(peer->super.ctx), req, UT_PEND_RECV);
    ucp_request_free(request);
}

static ucs_status_t ut_ucx_am_rep_cb(void *arg, const void *header,
                                     size_t header_length, void *data,
                                     size_t length,
                                     const ucp_am_recv_param_t *param)
{
    ut_ucx_ctx_t *ctx = arg;
    bool rndv = !!(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV);
    ucp_request_param_t rparam;
    ut_am_rep_hdr hdr;
    ut_req_t *req;
    void *rreq;

    if (header_length < sizeof(hdr)) {
        goto bad;
    }
    memcpy(&hdr, header, sizeof(hdr));
    if ((hdr.magic != UT_AM_MAGIC) ||
        (hdr.meta_len != header_length - sizeof(hdr))) {
        goto bad;
    }
    req = do_slot_find(ctx, hdr.id);
    if ((req == NULL) || !(req->priv.pending & UT_PEND_REPLY)) {
        UT_STAT_ADD(ctx, late_replies, 1); /* its request timed out or failed */
        goto drop;
    }
    ((ut_ucx_peer_t *)req->priv.peer)->heard_at = uc_time_ns();
    if ((hdr.status > UCACHE_OK) ||
        (strcmp(ucache_status_name((ucache_status_t)hdr.status), "UCACHE_ERR_UNKNOWN") == 0)) {
        UT_STAT_ADD(ctx, bad_input, 1);   /* INPROGRESS or no status at all */
        UC_WARN("a reply carried status %d, which no request ends with", (int)hdr.status);
        do_req_set_status(req, UCACHE_ERR_TRANSPORT);
        do_req_clear(ctx, req, UT_PEND_REPLY);
        goto drop;
    }
    if (hdr.status != UCACHE_OK) {
        do_req_set_status(req, (ucache_status_t)hdr.status);
        do_req_clear(ctx, req, UT_PEND_REPLY);
        goto drop;
    }
    if ((hdr.meta_len > req->priv.meta_cap) || (length > req->priv.cap)) {
        UC_WARN("reply of %u+%zu bytes does not fit the %zu+%zu-byte buffers",
                hdr.meta_len, length, req->priv.meta_cap, req->priv.cap);
        do_req_set_status(req, UCACHE_ERR_MSG_TRUNCATED);
        do_req_clear(ctx, req, UT_PEND_REPLY);
        goto drop;
    }
    if (hdr.meta_len > 0) {
        memcpy(req->priv.meta, (const uint8_t *)header + sizeof(hdr), hdr.meta_len);
    }
    req->meta_length = hdr.meta_len;
    req->length      = length;
    if (!rndv) {
        if (length > 0) {
            memcpy(req->priv.buf, data, length);
        }
        do_req_clear(ctx, req, UT_PEND_REPLY);
        return UCS_OK;
    }
    /* Bulk data: received by UCX straight into the caller's buffer.  No
     * reply is owed any more, so no keepalive covers it: like a get, the
     * transfer has UCACHE_TIMEOUT (a link cut mid-transfer would otherwise
     * hold it until the link came back, or to the RPC's own deadline). */
    if (req->priv.deadline > uc_time_ns() + ctx->cfg.timeout_ns) {
        req->priv.deadline = uc_time_ns() + ctx->cfg.timeout_ns;
    }
    rparam.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
    rparam.cb.recv_am   = ut_ucx_recv_done_cb;
    rparam.user_data    = req;
    req->priv.pending  |= UT_PEND_RECV;
    rreq = ucp_am_recv_data_nbx(ctx->worker, data, req->priv.buf, length, &rparam);
    if (rreq == NULL) {
        req->priv.pending &= ~UT_PEND_RECV;
    } else if (UCS_PTR_IS_ERR(rreq)) {
        req->priv.pending &= ~UT_PEND_RECV;
        do_req_set_status(req, ut_ucs_status(UCS_PTR_STATUS(rreq)));
    }
    do_req_clear(ctx, req, UT_PEND_REPLY);
    return UCS_OK;

bad:
    UT_STAT_ADD(ctx, bad_input, 1);
    UC_WARN("dropped a malformed reply (header %zu bytes)", header_length);
drop:
    if (rndv) {
        ucp_am_data_release(ctx->worker, data);
    }
    return UCS_OK;
}

static void ut_ucx_send_done_cb(void *request, ucs_status_t status,
                                void *user_data)
{
    ut_req_t *req = user_data;
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)req->priv.peer;
    ut_ucx_ctx_t *ctx = ut_ctx_of(peer->super.ctx);
    uint32_t bits = UT_PEND_SEND;

    if (status != UCS_OK) {
        do_req_set_status(req, (atomic_load(&peer->state) == UT_PEER_FAILED) ?
                               peer->fail_status : ut_ucs_status(status));
        bits |= UT_PEND_REPLY; /* no reply will come */
    }
    do_req_clear(ctx, req, bits);
    ucp_request_free(request);
}

/* Send an AM request whose header lives in req->priv.wire. */
static ucache_status_t do_am_request(ut_ucx_ctx_t *ctx, ut_req_t *req,
                                     ut_ucx_peer_t *peer, uint16_t op,
                                     const void *payload, size_t len)
{
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
                        UCP_OP_ATTR_FIELD_FLAGS,
        .cb.send      = ut_ucx_send_done_cb,
        .user_data    = req,
        .flags        = UCP_AM_SEND_FLAG_REPLY | UCP_AM_SEND_FLAG_EAGER
    };
    ut_am_req_hdr *hdr = (ut_am_req_hdr *)req->priv.wire;
    ucache_status_t status;
    void *sreq;

    status = do_slot_alloc(ctx, req);
    if (status != UCACHE_OK) {
        return status;
    }
    hdr->magic    = UT_AM_MAGIC;
    hdr->op       = op;
    hdr->reserved = 0;
    hdr->id       = req->priv.id;
    hdr->from     = ctx->uuid;
    ut_auth_sign(ctx->auth, hdr, sizeof(*hdr), offsetof(ut_am_req_hdr, auth), peer->uuid,
                 payload, len);
    req->priv.pending = UT_PEND_SEND | UT_PEND_REPLY;
    sreq = ucp_am_send_nbx(peer->ep, UT_AM_ID_REQ, hdr, sizeof(*hdr), payload,
                           len, &param);
    if (sreq == NULL) {
        do_req_clear(ctx, req, UT_PEND_SEND);
    } else if (UCS_PTR_IS_ERR(sreq)) {
        status = ut_ucs_status(UCS_PTR_STATUS(sreq));
        do_req_set_status(req, status);
        do_req_clear(ctx, req, UT_PEND_SEND | UT_PEND_REPLY);
        return status;
    }
    return UCACHE_OK;
}

/* ------------------------------------------------------------------------ */
/* Reads and RPCs                                                            */
/* ------------------------------------------------------------------------ */

static void ut_ucx_get_done_cb(void *request, ucs_status_t status,
                               void *user_data)
{
    ut_req_t *req = user_data;
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)req->priv.peer;

    if (status != UCS_OK) {
        do_req_set_status(req, (atomic_load(&peer->state) == UT_PEER_FAILED) ?
                               peer->fail_status : ut_ucs_status(status));
    }
    do_req_clear(ut_ctx_of(peer->super.ctx), req, UT_PEND_UCX);
    ucp_request_free(request);
}

/*
 * In the UCACHE_EMULATED_RMA test mode a serving context's UCX answers
 * peers' gets in software: it copies the exported region - which the store
 * changes under it, by design, as under a NIC's one-sided read - from this
 * worker's progress.  ThreadSanitizer is told, as store/layout.c tells it
 * for same-host readers: the reader's checksum, not a lock, makes it safe.
 */
#if defined(__SANITIZE_THREAD__)
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define UT_RMA_RACY_BEGIN(_c) do { if ((_c)->serve && (_c)->rma) \
        AnnotateIgnoreReadsBegin(__FILE__, __LINE__); } while (0)
#define UT_RMA_RACY_END(_c)   do { if ((_c)->serve && (_c)->rma) \
        AnnotateIgnoreReadsEnd(__FILE__, __LINE__); } while (0)
#else
#define UT_RMA_RACY_BEGIN(_c) do { } while (0)
#define UT_RMA_RACY_END(_c)   do { } while (0)
#endif

static unsigned do_progress(ut_ucx_ctx_t *ctx)
{
    unsigned n = 0, k;

    UT_RMA_RACY_BEGIN(ctx);
    while ((k = ucp_worker_progress(ctx->worker)) != 0) {
        n += k;
    }
    UT_RMA_RACY_END(ctx);
    if (ctx->closing != NULL) {
        do_closing_reap(ctx);
    }
    do_accepted_reap(ctx);
    atomic_store_explicit(&ctx->last_progress, uc_time_ns(), memory_order_relaxed);
    if (n > 0) { /* requests may have completed: wake those who wait for them */
        uint64_t one = 1;

        pthread_cond_broadcast(&ctx->progressed);
        if (ctx->sleeper && (write(ctx->kickfd, &one, sizeof(one)) < 0)) {
            UC_DEBUG("waking the sleeping waiter: %m"); /* it wakes within 1 ms */
        }
    }
    return n;
}

/*
 * A client that only reads mapped memory would never progress its worker,
 * so it would never hear of a peer's death: progress at most once a
 * millisecond from the mapped path, and only if nobody else holds the lock.
 */
static void ut_ucx_progress_maybe(ut_ucx_ctx_t *ctx)
{
    uint64_t now;

    if (ctx->thread_running) {
        return; /* the progress thread hears of failures */
    }
    now = uc_time_ns();
    if (now - atomic_load_explicit(&ctx->last_progress, memory_order_relaxed) <
        UC_NSEC_PER_MSEC) {
        return;
    }
    if (pthread_mutex_trylock(&ctx->lock) == 0) {
        do_progress(ctx);
        pthread_mutex_unlock(&ctx->lock);
    }
}

static ucache_status_t do_rkey_ready(ut_ucx_ctx_t *ctx, ut_ucx_rkey_t *rk,
                                     ut_ucx_peer_t *peer)
{
    ucs_status_t status;

    if ((rk->rkey != NULL) && (rk->gen == peer->gen)) {
        return UCACHE_OK;
    }
    if (rk->rkey != NULL) {
        ucp_rkey_destroy(rk->rkey);
        rk->rkey = NULL;
    }
    status = ucp_ep_rkey_unpack(peer->ep, rk->blob, &rk->rkey);
    if (status != UCS_OK) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_ERROR("cannot unpack a remote key of %s: %s", peer->name,
                 ucs_status_string(status));
        rk->rkey = NULL;
        return UCACHE_ERR_INVALID;
    }
    rk->gen = peer->gen;
    return UCACHE_OK;
}

/* Whether reads of @p peer's memory are gets (the endpoint is open): only
 * with RMA on, where asked or where the endpoint's RMA lanes are native. */
static bool do_use_get(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer)
{
    if (peer->native_get < 0) {
        peer->native_get = do_ep_native_rma(peer->ep, peer->tls, sizeof(peer->tls));
        UC_DEBUG("reads from %s use %s", peer->name,
                 peer->native_get ? "native get" : "active messages");
    }
    return ctx->rma && ((ctx->cfg.read_path == UC_READ_PATH_GET) ||
                        ((ctx->cfg.read_path == UC_READ_PATH_AUTO) && peer->native_get));
}

static ucache_status_t ut_ucx_get_post(ut_req_t *req, ut_rkey_t *rkey,
                                       uint64_t raddr, void *buf, size_t len)
{
    ut_ucx_rkey_t *rk   = (ut_ucx_rkey_t *)rkey;
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)rkey->peer;
    ut_ucx_ctx_t *ctx   = ut_ctx_of(rkey->ctx);
    ucp_request_param_t param;
    ut_am_read_desc *desc;
    ucache_status_t status;
    bool use_get;
    void *greq;

    do_req_start(req, rkey->peer, UT_PATH_NONE);
    if ((buf == NULL) || (len == 0)) {
        status = UCACHE_ERR_INVALID;
        goto bad_input;
    }
    if ((raddr < rkey->base) || (len > rkey->len) ||
        (raddr - rkey->base > rkey->len - len)) {
        status = UCACHE_ERR_OUT_OF_RANGE;
        goto bad_input;
    }

    if ((rkey->mapped != NULL) &&
        (atomic_load_explicit(&peer->state, memory_order_acquire) != UT_PEER_FAILED)) {
        memcpy(buf, (const uint8_t *)rkey->mapped + (raddr - rkey->base), len);
        req->path   = UT_PATH_MAPPED;
        req->length = len;
        req->status = UCACHE_OK;
        UT_STAT_ADD(ctx, read_bytes, len);
        UT_STAT_ADD(ctx, mapped_reads, 1);
        ut_ucx_progress_maybe(ctx);
        return UCACHE_OK;
    }

    pthread_mutex_lock(&ctx->lock);
    status = do_peer_ensure(ctx, peer);
    if (status != UCACHE_OK) {
        goto out_fail;
    }
    if (rkey->mapped != NULL) { /* the peer was failed and is being retried */
        pthread_mutex_unlock(&ctx->lock);
        return ut_ucx_get_post(req, rkey, raddr, buf, len);
    }
    status = do_rkey_ready(ctx, rk, peer);
    if (status != UCACHE_OK) {
        goto out_fail;
    }
    use_get = do_use_get(ctx, peer);
    req->priv.buf = buf;
    req->priv.cap = len;

    if (use_get) {
        req->path = UT_PATH_GET;
        status = do_slot_alloc(ctx, req);
        if (status != UCACHE_OK) {
            goto out_fail;
        }
        param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
        param.cb.send      = ut_ucx_get_done_cb;
        param.user_data    = req;
        req->priv.pending  = UT_PEND_UCX;
        req->length        = len;
        greq = ucp_get_nbx(peer->ep, buf, len, raddr, rk->rkey, &param);
        if (greq == NULL) {
            do_req_clear(ctx, req, UT_PEND_UCX);
        } else if (UCS_PTR_IS_ERR(greq)) {
            do_req_set_status(req, ut_ucs_status(UCS_PTR_STATUS(greq)));
            do_req_clear(ctx, req, UT_PEND_UCX);
        }
    } else {
        req->path      = UT_PATH_AM;
        req->priv.meta = NULL;
        req->priv.meta_cap = 0;
        desc = (ut_am_read_desc *)(req->priv.wire + sizeof(ut_am_req_hdr));
        desc->region_id = rk->region_id;
        desc->reserved  = 0;
        desc->cookie    = rk->cookie;
        desc->raddr     = raddr;
        desc->len       = len;
        status = do_am_request(ctx, req, peer, UT_OP_READ, desc, sizeof(*desc));
        if (status != UCACHE_OK) {
            goto out_fail;
        }
    }
    /* Read under the lock: another thread's progress may complete it. */
    status = (req->status == UCACHE_INPROGRESS) ? UCACHE_OK : req->status;
    pthread_mutex_unlock(&ctx->lock);
    return status;

out_fail:
    pthread_mutex_unlock(&ctx->lock);
    req->status = status;
    return status;

bad_input:
    UT_STAT_ADD(ctx, bad_input, 1);
    UC_DEBUG("read of %zu bytes at 0x%llx refused: region is [0x%llx, +%zu): %s",
             len, (unsigned long long)raddr, (unsigned long long)rkey->base,
             rkey->len, ucache_strerror(status));
    req->status = status;
    return status;
}

static ucache_status_t ut_ucx_rpc_post(ut_req_t *req, ut_peer_t *p, unsigned id,
                                       const void *msg, size_t len, void *meta,
                                       size_t meta_cap, void *data,
                                       size_t data_cap, uint64_t timeout_ns)
{
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)p;
    ut_ucx_ctx_t *ctx   = ut_ctx_of(p->ctx);
    ucache_status_t status;

    do_req_start(req, p, UT_PATH_RPC);
    if ((id == UT_OP_READ) || (id > UT_RPC_MAX_ID) || (len > ctx->cfg.rpc_max) ||
        ((len > 0) && (msg == NULL)) || ((meta_cap > 0) && (meta == NULL)) ||
        ((data_cap > 0) && (data == NULL))) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_DEBUG("RPC %u of %zu bytes refused (UCACHE_RPC_MAX %zu)", id, len,
                 ctx->cfg.rpc_max);
        req->status = UCACHE_ERR_INVALID;
        return req->status;
    }
    req->priv.buf      = data;
    req->priv.cap      = data_cap;
    req->priv.meta     = meta;
    req->priv.meta_cap = meta_cap;

    pthread_mutex_lock(&ctx->lock);
    status = do_peer_ensure(ctx, peer);
    if (status == UCACHE_OK) {
        status = do_am_request(ctx, req, peer, (uint16_t)id, msg, len);
        if (status == UCACHE_OK) {
            if (timeout_ns != 0) { /* before any progress can see it */
                req->priv.deadline = uc_deadline(timeout_ns);
            }
            status = (req->status == UCACHE_INPROGRESS) ? UCACHE_OK : req->status;
        }
    } else {
        req->status = status;
    }
    pthread_mutex_unlock(&ctx->lock);
    return status;
}

static ut_path_t ut_ucx_rkey_path(ut_rkey_t *rkey)
{
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)rkey->peer;
    ut_ucx_ctx_t *ctx   = ut_ctx_of(rkey->ctx);
    ut_path_t path = UT_PATH_NONE;

    if (rkey->mapped != NULL) {
        return UT_PATH_MAPPED;
    }
    pthread_mutex_lock(&ctx->lock);
    if (do_peer_ensure(ctx, peer) == UCACHE_OK) {
        path = do_use_get(ctx, peer) ? UT_PATH_GET : UT_PATH_AM;
    }
    pthread_mutex_unlock(&ctx->lock);
    return path;
}

static ucache_status_t ut_ucx_rpc_reply(ut_rpc_t *r, ucache_status_t status,
                                        const void *meta, size_t meta_len,
                                        const void *data, size_t data_len,
                                        unsigned flags)
{
    ut_ucx_rpc_t *rpc = (ut_ucx_rpc_t *)r;
    ut_ucx_ctx_t *ctx = ut_ctx_of(r->ctx);
    ucache_status_t ret;

    if (rpc->replied || (meta_len > UT_RPC_META_MAX) ||
        (meta_len > ctx->max_am_header - sizeof(ut_am_rep_hdr)) ||
        ((meta_len > 0) && (meta == NULL)) || ((data_len > 0) && (data == NULL)) ||
        (flags & ~(unsigned)UT_REPLY_DATA_STABLE)) {
        UC_ERROR("invalid RPC reply (replied=%d meta %zu data %zu flags 0x%x)",
                 rpc->replied, meta_len, data_len, flags);
        if (!rpc->deferred || rpc->replied) {
            return UCACHE_ERR_INVALID;
        }
        status = UCACHE_ERR_INVALID; /* a deferred RPC is answered regardless */
    }
    rpc->replied = true;
    if (status != UCACHE_OK) {
        meta_len = data_len = 0;
    }
    if (!rpc->deferred) { /* inside the handler: the lock is held */
        return do_reply_send(ctx, rpc->reply_ep, rpc->id, status, meta, meta_len,
                             data, data_len, !!(flags & UT_REPLY_DATA_STABLE), NULL);
    }
    pthread_mutex_lock(&ctx->lock);
    /* Never UCX's reply endpoint: UCX destroys it when the requester fails,
     * which may have happened meanwhile.  Our own endpoint to the requester
     * reports a failure instead (the reply is dropped, counted).  One that
     * failed earlier (a link that was cut and came back) is connected again
     * now, not after a back-off: the requester waits for this reply, and
     * answers our keepalives only through its own endpoint. */
    if (atomic_load(&rpc->client->state) == UT_PEER_FAILED) {
        atomic_store(&rpc->client->failed_at, 0);
    }
    ret = do_peer_ensure(ctx, rpc->client);
    if (ret == UCACHE_OK) {
        ret = do_reply_send(ctx, rpc->client->ep, rpc->id, status, meta, meta_len,
                            data, data_len, !!(flags & UT_REPLY_DATA_STABLE), NULL);
    } else {
        UT_STAT_ADD(ctx, replies_dropped, 1);
        UC_DEBUG("deferred reply to %s dropped: %s", rpc->client->name,
                 ucache_strerror(ret));
    }
    rpc->client->owed--;
    ctx->deferred--;
    if (rpc->dprev != NULL) {
        rpc->dprev->dnext = rpc->dnext;
    } else {
        ctx->dlist = rpc->dnext;
    }
    if (rpc->dnext != NULL) {
        rpc->dnext->dprev = rpc->dprev;
    }
    pthread_mutex_unlock(&ctx->lock);
    free(rpc);
    return ret;
}

static ucache_status_t ut_ucx_rpc_defer(ut_rpc_t *r, ut_rpc_t **deferred_p)
{
    ut_ucx_rpc_t *rpc = (ut_ucx_rpc_t *)r, *copy;
    ut_ucx_ctx_t *ctx = ut_ctx_of(r->ctx);

    if (rpc->replied || rpc->deferred) {
        UC_ERROR("an RPC can be deferred once, inside its handler, before a reply");
        return UCACHE_ERR_INVALID;
    }
    rpc->client = do_client_find(ctx, rpc->from);
    if (rpc->client == NULL) {
        /* not a requester that introduced itself (every ucache one does, on
         * connect): it cannot be answered later, so not at all later */
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_WARN("cannot defer a request from an unknown requester");
        return UCACHE_ERR_UNSUPPORTED;
    }
    copy = malloc(sizeof(*copy));
    if (copy == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    rpc->client->owed++;       /* kept while the reply is due */
    *copy          = *rpc;
    copy->reply_ep = NULL;     /* UCX's, valid during the handler only */
    copy->deferred = true;
    copy->dprev    = NULL;
    copy->dnext    = ctx->dlist;
    if (ctx->dlist != NULL) {
        ctx->dlist->dprev = copy;
    }
    ctx->dlist     = copy;
    rpc->replied   = true; /* the handler's frame no longer answers it */
    ctx->deferred++;       /* the lock is held inside handlers */
    *deferred_p = &copy->super;
    return UCACHE_OK;
}

static ucache_status_t ut_ucx_rpc_handler_set(ut_ctx_t *c, unsigned id,
                                              ut_rpc_handler_t cb, void *arg)
{
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);

    if ((id == UT_OP_READ) || (id > UT_RPC_MAX_ID)) {
        return UCACHE_ERR_INVALID;
    }
    pthread_mutex_lock(&ctx->lock);
    ctx->handlers[id].cb  = cb;
    ctx->handlers[id].arg = arg;
    pthread_mutex_unlock(&ctx->lock);
    return UCACHE_OK;
}

/* A request that is done: mapped reads complete in the posting thread before
 * post returns, so only they may be checked without the lock. */
static bool do_req_done(const ut_req_t *req)
{
    return req->status != UCACHE_INPROGRESS;
}

/* ctx->lock held, a follower: wait on `progressed` until the nearest of
 * @p deadline, the requests' deadlines and 1 ms. */
static void do_wait_follow(ut_ucx_ctx_t *ctx, const ut_req_t *reqs, size_t n,
                           uint64_t deadline, uint64_t now)
{
    uint64_t until = now + UT_WAIT_CAP_NS;
    struct timespec ts;
    size_t i;

    until = (deadline < until) ? deadline : until;
    for (i = 0; i < n; i++) {
        if (!do_req_done(&reqs[i]) && (reqs[i].priv.deadline < until)) {
            until = reqs[i].priv.deadline;
        }
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)((until > now) ? until - now : 0);
    ts.tv_sec  += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&ctx->progressed, &ctx->lock, &ts);
}

/*
 * ctx->lock held, the leading waiter, nothing happened for
 * UCACHE_PROGRESS_SPIN: sleep (lock released) on the worker's event fd and
 * the kick fd until progress, the nearest deadline of @p reqs, or 1 ms - so
 * a reader waiting for a miss to be filled leaves the CPU to the owners and
 * the origin (the followers sleep on `progressed`).  Whoever progresses the worker
 * and completes something broadcasts the condition and kicks the sleeper,
 * so no waiter sleeps past its request's completion.  Contexts with a
 * progress thread keep polling.
 */
static void do_wait_event(ut_ucx_ctx_t *ctx, const ut_req_t *reqs, size_t n,
                          uint64_t deadline, uint64_t now)
{
    uint64_t until = now + UT_WAIT_CAP_NS, drain;
    struct pollfd pfd[2];
    struct timespec ts;
    size_t i;

    if (ctx->thread_running || (ctx->kickfd < 0)) {
        return;
    }
    until = (deadline < until) ? deadline : until;
    for (i = 0; i < n; i++) {
        if (!do_req_done(&reqs[i]) && (reqs[i].priv.deadline < until)) {
            until = reqs[i].priv.deadline;
        }
    }
    if (until <= now) {
        return;
    }
    if ((ctx->wakefd < 0) && (ucp_worker_get_efd(ctx->worker, &ctx->wakefd) != UCS_OK)) {
        ctx->wakefd = -1;
        return;
    }
    if (ucp_worker_arm(ctx->worker) != UCS_OK) {
        return; /* UCS_ERR_BUSY: events are pending; progress them */
    }
    pfd[0].fd     = ctx->wakefd;
    pfd[1].fd     = ctx->kickfd;
    pfd[0].events = pfd[1].events = POLLIN;
    pfd[0].revents = pfd[1].revents = 0;
    ts.tv_sec  = 0;
    ts.tv_nsec = (long)(until - now);
    ctx->sleeper = true;
    pthread_mutex_unlock(&ctx->lock);
    ppoll(pfd, 2, &ts, NULL);
    pthread_mutex_lock(&ctx->lock);
    ctx->sleeper = false;
    if (read(ctx->kickfd, &drain, sizeof(drain)) < 0) {
        /* EAGAIN: nobody kicked */
    }
}

/*
 * ctx->lock held: a request waits longer than UCACHE_TIMEOUT may take (a
 * miss the owner fills from the origin: FETCH_TIMEOUT) - is its peer alive,
 * and still working on it?  Once such a request has waited UCACHE_TIMEOUT
 * / 2, a KEEPALIVE goes out with the ids of the peer's requests that old
 * (one round per UCACHE_TIMEOUT / 2).  Unanswered within UCACHE_TIMEOUT /
 * 2, the peer is failed, and its requests with it; answered, a request the
 * peer says twice in a row it no longer owes (its reply was lost, or the
 * request never arrived) fails on its own.  The answer travels the path of
 * the peer's deferred replies, behind them; a reply given at once travels
 * UCX's reply endpoint, and the second round gives it UCACHE_TIMEOUT / 2 to
 * land.  A
 * frozen, cut-off or one-way-broken owner so costs a miss UCACHE_TIMEOUT,
 * not FETCH_TIMEOUT; a slow origin costs nothing (its owner answers).
 */
static void do_ka_answered(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer)
{
    unsigned i, n = peer->ka_n;
    ut_req_t *req;

    peer->ka_n = 0;
    if ((peer->ka.status != UCACHE_OK) || (peer->ka.meta_length != sizeof(ut_ka_rep))) {
        return; /* no word on the requests (an error, an older peer) */
    }
    for (i = 0; i < n; i++) {
        req = do_slot_find(ctx, peer->ka_ids[i]);
        if ((req == NULL) || (req->priv.peer != &peer->super) ||
            !(req->priv.pending & UT_PEND_REPLY)) {
            continue;
        }
        if (peer->ka_rep.pending & (1ull << i)) {
            req->priv.flags &= ~UT_REQF_UNOWED;
            continue;
        }
        /* Not owed: the reply may still be on its way on another path (an
         * answer given at once, on UCX's reply endpoint): lost only if the
         * next round, UCACHE_TIMEOUT / 2 later, says so again. */
        if (!(req->priv.flags & UT_REQF_UNOWED)) {
            req->priv.flags |= UT_REQF_UNOWED;
            continue;
        }
        UC_WARN("%s answers but twice no longer owed a reply it did not send: its "
                "request fails (the reply or the request was lost)", peer->name);
        UT_STAT_ADD(ctx, replies_lost, 1);
        do_req_set_status(req, UCACHE_ERR_AGAIN); /* the peer is fine: ask again */
        do_req_clear(ctx, req, UT_PEND_REPLY);
    }
}

static void do_peer_liveness(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer, uint64_t now)
{
    uint64_t half = ctx->cfg.timeout_ns / 2;
    ut_req_t *req;
    uint32_t i;
    unsigned n = 0;

    if (peer->ka.priv.pending != 0) {
        if (now > peer->ka.priv.deadline) {
            UC_WARN("%s did not answer a keepalive within %llu ms while a request "
                    "waited", peer->name, (unsigned long long)(half / UC_NSEC_PER_MSEC));
            do_peer_fail(ctx, peer, UCACHE_ERR_TIMEOUT);
        }
        return;
    }
    if (peer->ka_n > 0) {
        do_ka_answered(ctx, peer);
    }
    if (now - peer->ka.priv.posted < half) {
        return; /* one round per UCACHE_TIMEOUT / 2 */
    }
    for (i = 0; (i < ctx->cfg.max_outstanding) && (n < UT_KA_IDS); i++) {
        req = ctx->slots[i];
        if ((req != NULL) && (req->priv.peer == &peer->super) && (req != &peer->ka) &&
            (req->priv.pending & UT_PEND_REPLY) && (now - req->priv.posted >= half) &&
            (req->priv.deadline > req->priv.posted + ctx->cfg.timeout_ns)) {
            peer->ka_ids[n++] = req->priv.id;
        }
    }
    if (n == 0) {
        return;
    }
    do_req_start(&peer->ka, &peer->super, UT_PATH_NONE);
    peer->ka.priv.buf      = NULL;
    peer->ka.priv.cap      = 0;
    peer->ka.priv.meta     = &peer->ka_rep;
    peer->ka.priv.meta_cap = sizeof(peer->ka_rep);
    if (do_am_request(ctx, &peer->ka, peer, UT_OP_KEEPALIVE, peer->ka_ids,
                      n * sizeof(uint64_t)) == UCACHE_OK) {
        peer->ka_n = n;
        peer->ka.priv.deadline = now + half;
        UT_STAT_ADD(ctx, keepalives, 1);
        UC_DEBUG("keepalive to %s about %u requests", peer->name, n);
    }
}

/* ctx->lock held: fail the peers of requests past their deadline; check
 * the peers of long requests are alive. */
static void do_req_deadlines(ut_ucx_ctx_t *ctx, ut_req_t *reqs, size_t n, uint64_t now)
{
    ut_ucx_peer_t *peer;
    size_t i;

    for (i = 0; i < n; i++) {
        if (do_req_done(&reqs[i])) {
            continue;
        }
        peer = (ut_ucx_peer_t *)reqs[i].priv.peer;
        if (now <= reqs[i].priv.deadline) {
            if ((reqs[i].priv.deadline > reqs[i].priv.posted + ctx->cfg.timeout_ns) &&
                (atomic_load(&peer->state) == UT_PEER_CONNECTED)) {
                do_peer_liveness(ctx, peer, now);
            }
            continue;
        }
        if (atomic_load(&peer->state) != UT_PEER_CONNECTED) {
            continue;
        }
        if (reqs[i].priv.pending & UT_PEND_RECV) {
            UT_STAT_ADD(ctx, stalled_replies, 1);
            UC_WARN("the %zu data bytes of a reply from %s did not arrive within "
                    "%llu ms of its header", reqs[i].length, peer->name,
                    (unsigned long long)(ctx->cfg.timeout_ns / UC_NSEC_PER_MSEC));
        } else {
            UC_WARN("%s read/RPC of %zu bytes from %s passed its deadline",
                    ut_path_name(reqs[i].path), reqs[i].priv.cap, peer->name);
        }
        do_peer_fail(ctx, peer, UCACHE_ERR_TIMEOUT);
    }
}

/* The status of a batch: INPROGRESS if any is, else the first error. */
static ucache_status_t do_reqs_status(const ut_req_t *reqs, size_t n)
{
    ucache_status_t ret = UCACHE_OK;
    size_t i;

    for (i = 0; i < n; i++) {
        if (reqs[i].status == UCACHE_INPROGRESS) {
            ret = UCACHE_INPROGRESS;
        } else if ((reqs[i].status != UCACHE_OK) && (ret == UCACHE_OK)) {
            ret = reqs[i].status;
        }
    }
    return ret;
}

static ucache_status_t ut_ucx_wait(ut_ctx_t *c, ut_req_t *reqs, size_t n,
                                   uint64_t timeout_ns)
{
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);
    uint64_t deadline = 0, now, idle_since = uc_time_ns();
    ucache_status_t ret = UCACHE_OK;
    size_t i, first = 0;
    bool progressed, lead = false;

    /* Fast path: a batch of mapped reads needs neither lock nor progress. */
    while ((first < n) && (reqs[first].path == UT_PATH_MAPPED)) {
        first++;
    }
    if (first < n) {
        deadline = uc_deadline(timeout_ns);
        pthread_mutex_lock(&ctx->lock);
        for (;;) {
            for (i = first; (i < n) && do_req_done(&reqs[i]); i++) {
            }
            first = i;
            if (first == n) {
                break;
            }
            now = uc_time_ns();
            if (ctx->leader && !lead) {
                /* Another waiter progresses the worker: sleep until it
                 * completes something (it broadcasts), a deadline, or 1 ms,
                 * rather than fight it for the lock. */
                if (now >= deadline) {
                    break;
                }
                do_wait_follow(ctx, reqs + first, n - first, deadline, now);
                do_req_deadlines(ctx, reqs + first, n - first, uc_time_ns());
                continue;
            }
            lead = ctx->leader = true;
            progressed = (do_progress(ctx) > 0);
            now = uc_time_ns();
            do_req_deadlines(ctx, reqs + first, n - first, now);
            if (now > deadline) {
                break;
            }
            if (progressed) {
                idle_since = now;
            } else if (now - idle_since > ctx->cfg.progress_spin_ns) {
                do_wait_event(ctx, reqs + first, n - first, deadline, now);
                idle_since = uc_time_ns();
                continue;
            }
            /* Give a progress thread or other callers a chance at the
             * lock between polls. */
            pthread_mutex_unlock(&ctx->lock);
            pthread_mutex_lock(&ctx->lock);
        }
        if (lead) { /* hand the worker to a waiting follower */
            ctx->leader = false;
            pthread_cond_broadcast(&ctx->progressed);
        }
        /* read under the lock: a request several threads wait for (a
         * peer's handshake) may be posted again by one of them right after */
        ret = do_reqs_status(reqs, n);
        pthread_mutex_unlock(&ctx->lock);
        return ret;
    }
    return do_reqs_status(reqs, n);
}

static unsigned ut_ucx_progress(ut_ctx_t *c)
{
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);
    unsigned n;

    pthread_mutex_lock(&ctx->lock);
    n = do_progress(ctx);
    pthread_mutex_unlock(&ctx->lock);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Progress thread                                                           */
/* ------------------------------------------------------------------------ */

/*
 * Polls while there is work and for PROGRESS_SPIN after it, then arms the
 * worker and sleeps on its event fd (and the stop fd), so an idle serving
 * node costs no CPU.
 */
static void *ut_ucx_progress_thread(void *arg)
{
    ut_ucx_ctx_t *ctx = arg;
    struct epoll_event ev;
    uint64_t idle_since = uc_time_ns();
    ucs_status_t status;
    unsigned n;

    while (!atomic_load(&ctx->thread_stop)) {
        pthread_mutex_lock(&ctx->lock);
        n = do_progress(ctx);
        pthread_mutex_unlock(&ctx->lock);
        if (n > 0) {
            idle_since = uc_time_ns();
            continue;
        }
        if (uc_time_ns() - idle_since < ctx->cfg.progress_spin_ns) {
            sched_yield();
            continue;
        }
        pthread_mutex_lock(&ctx->lock);
        status = ucp_worker_arm(ctx->worker);
        pthread_mutex_unlock(&ctx->lock);
        if (status == UCS_ERR_BUSY) {
            continue;
        }
        epoll_wait(ctx->epfd, &ev, 1, 100);
        idle_since = uc_time_ns();
    }
    return NULL;
}

static ucache_status_t ut_ucx_thread_start(ut_ucx_ctx_t *ctx)
{
    struct epoll_event ev = { .events = EPOLLIN };
    ucs_status_t status;
    int efd;

    status = ucp_worker_get_efd(ctx->worker, &efd);
    if (status != UCS_OK) {
        UC_ERROR("ucp_worker_get_efd: %s", ucs_status_string(status));
        return UCACHE_ERR_TRANSPORT;
    }
    ctx->epfd   = epoll_create1(EPOLL_CLOEXEC);
    ctx->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if ((ctx->epfd < 0) || (ctx->stopfd < 0)) {
        UC_ERROR("cannot create the progress thread's fds: %m");
        return UCACHE_ERR_IO;
    }
    ev.data.fd = efd;
    if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, efd, &ev) != 0) {
        UC_ERROR("epoll_ctl(worker fd): %m");
        return UCACHE_ERR_IO;
    }
    ev.data.fd = ctx->stopfd;
    if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, ctx->stopfd, &ev) != 0) {
        UC_ERROR("epoll_ctl(stop fd): %m");
        return UCACHE_ERR_IO;
    }
    if (pthread_create(&ctx->thread, NULL, ut_ucx_progress_thread, ctx) != 0) {
        UC_ERROR("cannot start the progress thread");
        return UCACHE_ERR_NO_MEMORY;
    }
    ctx->thread_running = true;
    return UCACHE_OK;
}

static void ut_ucx_thread_stop(ut_ucx_ctx_t *ctx)
{
    uint64_t one = 1;

    if (ctx->thread_running) {
        atomic_store(&ctx->thread_stop, true);
        if (write(ctx->stopfd, &one, sizeof(one)) < 0) {
            UC_DEBUG("progress thread wake-up: %m"); /* it wakes within 100 ms */
        }
        pthread_join(ctx->thread, NULL);
        ctx->thread_running = false;
    }
    if (ctx->epfd >= 0) {
        close(ctx->epfd);
    }
    if (ctx->stopfd >= 0) {
        close(ctx->stopfd);
    }
    ctx->epfd = ctx->stopfd = -1;
}

/* ------------------------------------------------------------------------ */
/* Context                                                                   */
/* ------------------------------------------------------------------------ */

static ucache_status_t ut_ucx_make_address(ut_ucx_ctx_t *ctx)
{
    ut_addr_body body = { .uuid = ctx->uuid, .pid = (uint32_t)getpid() };
    ucp_address_t *addr;
    size_t addr_len;
    ucs_status_t status;

    status = ucp_worker_get_address(ctx->worker, &addr, &addr_len);
    if (status != UCS_OK) {
        UC_ERROR("ucp_worker_get_address: %s", ucs_status_string(status));
        return UCACHE_ERR_TRANSPORT;
    }
    if (gethostname(body.host, sizeof(body.host) - 1) != 0) {
        snprintf(body.host, sizeof(body.host), "unknown");
    }
    memcpy(ctx->host, body.host, sizeof(ctx->host));
    snprintf(ctx->mapname, sizeof(ctx->mapname), "ucache-%016llx",
             (unsigned long long)ctx->uuid);
    memcpy(body.mapname, ctx->mapname, sizeof(body.mapname));
    ctx->addr_blob = ut_blob_build(UT_ADDR_MAGIC, &body, sizeof(body), addr,
                                   addr_len, &ctx->addr_blob_len);
    ucp_worker_release_address(ctx->worker, addr);
    return (ctx->addr_blob != NULL) ? UCACHE_OK : UCACHE_ERR_NO_MEMORY;
}

static uint64_t ut_random64(void)
{
    uint64_t v;

    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
        v = uc_time_ns() ^ ((uint64_t)getpid() << 32); /* unique, if not secret */
    }
    return v;
}

static void ut_ucx_ctx_destroy(ut_ctx_t *c);

/* UCX's own log lines go through ours (stderr or UCACHE_LOG_FILE), never
 * to stdout where UCX prints them by default: the library owns no stdout.
 * Its errors are mostly the far side of failures we report ourselves
 * (a refused connect), so they come one level down. */
static ucs_log_func_rc_t ut_ucx_log(const char *file, unsigned line, const char *function,
                                    ucs_log_level_t level,
                                    const ucs_log_component_config_t *comp_conf,
                                    const char *message, va_list ap)
{
    ucache_log_level_t ours = (level <= UCS_LOG_LEVEL_ERROR) ? UCACHE_LOG_WARN :
                              (level == UCS_LOG_LEVEL_WARN) ? UCACHE_LOG_INFO :
                              UCACHE_LOG_DEBUG;
    char buf[512];

    (void)function;
    (void)comp_conf;
    if (UC_LOG_ENABLED(ours)) {
        vsnprintf(buf, sizeof(buf), message, ap);
        uc_log_emit(ours, file, (int)line, "UCX %s", buf);
    }
    return UCS_LOG_FUNC_RC_STOP;
}

static void ut_ucx_log_setup(void)
{
    ucs_log_push_handler(ut_ucx_log);
}

/*
 * Whether UCX selected, for @p ucp, a transport whose name starts with one
 * of @p prefixes.  UCX 1.13 has no query for it, so this reads the resource
 * lines of ucp_context_print_info() ("resource 2 : md 1 dev 2 flags --
 * rc_mlx5/mlx5_0:1"), which honour UCX_TLS.
 */
static bool do_has_tl(ucp_context_h ucp, const char *const *prefixes)
{
    char *text = NULL, *line, *save = NULL, *tl;
    size_t size = 0;
    bool found = false;
    unsigned i;
    FILE *f;

    f = open_memstream(&text, &size);
    if (f == NULL) {
        return false;
    }
    ucp_context_print_info(ucp, f);
    fclose(f);
    for (line = strtok_r(text, "\n", &save); (line != NULL) && !found;
         line = strtok_r(NULL, "\n", &save)) {
        if ((strstr(line, "resource") == NULL) || ((tl = strstr(line, "-- ")) == NULL)) {
            continue;
        }
        for (i = 0; prefixes[i] != NULL; i++) {
            found = found || (strncmp(tl + 3, prefixes[i], strlen(prefixes[i])) == 0);
        }
    }
    free(text);
    return found;
}

/*
 * The UCP context, with UCP_FEATURE_RMA only where it is safe and useful.
 * That feature turns on UCX's software RMA on every transport that lacks
 * native RMA (tcp) - even beside native ones: its put and get handlers copy
 * to and from any address a connected peer names.  So RMA is requested by
 * a context that exports no memory when UCX selected a native-RMA transport
 * (its reads then go one-sided on it); by a serving context never (peers'
 * native gets of its memory need nothing of it; its own reads of other
 * nodes use requests); and by any context when UCACHE_EMULATED_RMA asks for
 * the test mode, which says so loudly.
 */
static ucache_status_t do_ucp_init(ut_ucx_ctx_t *ctx)
{
    ucp_params_t uparams = {
        .field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED,
        .features   = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP,
        .mt_workers_shared = 0
    };
    /* native one-sided RMA (reads without the target's CPU); unknown
     * transports count as not native */
    static const char *const native_tls[] = { "rc_", "dc_", "ugni_rdma", NULL };
    /* shared memory: same-host peers are reached, and mapped, directly */
    static const char *const shm_tls[] = { "posix", "sysv", "xpmem", NULL };
    ucp_config_t *ucfg = NULL;
    ucs_status_t status;
    const char *tls;
    bool native;

    status = ucp_config_read(NULL, NULL, &ucfg);
    if (status != UCS_OK) {
        UC_ERROR("ucp_config_read: %s", ucs_status_string(status));
        return UCACHE_ERR_TRANSPORT;
    }
    /*
     * UCX 1.13's tcp connect() blocks (UCX_TCP_CONN_NB=n): to a host that
     * went dark, for the kernel's SYN retries (minutes), inside
     * ucp_ep_create with the lock held.  Non-blocking, the handshake's
     * deadline bounds a connect.  But a non-blocking connect that fails
     * with the node's half of a wireup pending hits UCX 1.13's wireup abort
     * far more often (a client killed during its connect: 1 in 3 tries):
     * without the guard against it (ucx_guard.c), a serving context keeps
     * the blocking connect, whose connects go to requesters only.  The
     * user's own UCX_TCP_CONN_NB wins.  The key is the tcp table's own name,
     * which UCX warns of when no tcp interface is opened (UCX_TLS without
     * tcp).  (UCX_TCP_SYN_CNT cannot shorten the blocking connect: in UCX
     * 1.13 setting it breaks the worker, "Invalid memory pool parameter".)
     */
    tls = getenv("UCX_TLS");
    if ((tls == NULL) || (tls[0] == '^') || (strstr(tls, "tcp") != NULL) ||
        (strstr(tls, "all") != NULL)) {
        if ((!ctx->serve || ut_ucx_guard_active()) && (getenv("UCX_TCP_CONN_NB") == NULL) &&
            (ucp_config_modify(ucfg, "CONN_NB", "y") != UCS_OK)) {
            UC_WARN("cannot set UCX_TCP_CONN_NB=y: a tcp connect to a dark host may "
                    "block past UCACHE_TIMEOUT");
        }
    }
    status = ucp_init(&uparams, ucfg, &ctx->ucp);
    if (status == UCS_OK) {
        native   = do_has_tl(ctx->ucp, native_tls);
        ctx->shm = do_has_tl(ctx->ucp, shm_tls);
        if ((native && !ctx->serve) || ctx->cfg.emulated_rma) {
            ucp_cleanup(ctx->ucp);
            ctx->ucp = NULL;
            uparams.features |= UCP_FEATURE_RMA;
            status = ucp_init(&uparams, ucfg, &ctx->ucp);
            ctx->rma = (status == UCS_OK);
        }
        if ((status == UCS_OK) && !ctx->rma && (ctx->cfg.read_path == UC_READ_PATH_GET)) {
            UC_WARN("UCACHE_READ_PATH=get needs a native-RMA transport or "
                    "UCACHE_EMULATED_RMA=yes; reads use active messages");
        }
        if ((status == UCS_OK) && (!native || ctx->serve) && ctx->cfg.emulated_rma) {
            UC_WARN("UCACHE_EMULATED_RMA=yes (a test mode): UCX's software RMA is on, so "
                    "any peer that reaches this process can read and write its memory");
        }
    }
    ucp_config_release(ucfg);
    if (status != UCS_OK) {
        ctx->ucp = NULL;
        UC_ERROR("ucp_init: %s (check UCX_TLS / UCX_NET_DEVICES)",
                 ucs_status_string(status));
        return UCACHE_ERR_TRANSPORT;
    }
    return UCACHE_OK;
}

static ucache_status_t ut_ucx_ctx_create(const ut_params_t *params,
                                         ut_ctx_t **ctx_p)
{
    ucp_worker_params_t wparams = {
        .field_mask  = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
        .thread_mode = UCS_THREAD_MODE_SERIALIZED
    };
    ucp_worker_attr_t wattr = {
        .field_mask = UCP_WORKER_ATTR_FIELD_MAX_AM_HEADER
    };
    ucp_am_handler_param_t am = {
        .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                      UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
        .flags      = UCP_AM_FLAG_WHOLE_MSG
    };
    ucache_status_t ret;
    ucs_status_t status;
    ut_ucx_ctx_t *ctx;
    uint32_t i;

    if ((params != NULL) &&
        (params->field_mask & ~(uint64_t)(UT_PARAM_FIELD_CONFIG | UT_PARAM_FIELD_PROGRESS |
                                          UT_PARAM_FIELD_SERVE))) {
        UC_ERROR("unknown transport parameter bits 0x%llx",
                 (unsigned long long)params->field_mask);
        return UCACHE_ERR_INVALID;
    }
    uc_log_init();
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    ctx->super.ops = &ut_ucx_ops;
    ctx->epfd = ctx->stopfd = -1;
    ctx->wakefd = -1;
    ctx->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); /* -1: waiters poll */
    pthread_cond_init(&ctx->progressed, NULL);
    pthread_mutex_init(&ctx->lock, NULL);
    if ((params != NULL) && (params->field_mask & UT_PARAM_FIELD_CONFIG) &&
        (params->config != NULL)) {
        ctx->cfg = *params->config;
    } else if ((ret = uc_config_load(&ctx->cfg)) != UCACHE_OK) {
        goto err;
    }
    ctx->progress_mode = ((params != NULL) &&
                          (params->field_mask & UT_PARAM_FIELD_PROGRESS)) ?
                         params->progress : UC_PROGRESS_POLL;
    ctx->serve = (params != NULL) && (params->field_mask & UT_PARAM_FIELD_SERVE) &&
                 params->serve;
    /* every process answers wireups (a serving one most): the guard must be
     * in before the first */
    UC_DEBUG("wireup-abort guard (ucx_guard.c): %s", ut_ucx_guard_active() ? "on" : "off");
    ctx->uuid = ut_random64();
    ret = ut_auth_create(&ctx->cfg, &ctx->auth);
    if (ret != UCACHE_OK) {
        goto err;
    }

    ret = UCACHE_ERR_NO_MEMORY;
    ctx->slots      = calloc(ctx->cfg.max_outstanding, sizeof(*ctx->slots));
    ctx->slot_gen   = calloc(ctx->cfg.max_outstanding, sizeof(*ctx->slot_gen));
    ctx->free_slots = calloc(ctx->cfg.max_outstanding, sizeof(*ctx->free_slots));
    if ((ctx->slots == NULL) || (ctx->slot_gen == NULL) || (ctx->free_slots == NULL)) {
        goto err;
    }
    for (i = 0; i < ctx->cfg.max_outstanding; i++) {
        ctx->free_slots[i] = ctx->cfg.max_outstanding - 1 - i;
    }
    ctx->nfree = ctx->cfg.max_outstanding;

    ret = UCACHE_ERR_TRANSPORT;
    {
        static pthread_once_t log_once = PTHREAD_ONCE_INIT;

        pthread_once(&log_once, ut_ucx_log_setup);
    }
    ret = do_ucp_init(ctx);
    if (ret != UCACHE_OK) {
        goto err;
    }
    ret = UCACHE_ERR_TRANSPORT;
    status = ucp_worker_create(ctx->ucp, &wparams, &ctx->worker);
    if (status != UCS_OK) {
        UC_ERROR("ucp_worker_create: %s", ucs_status_string(status));
        goto err;
    }
    if ((ucp_worker_query(ctx->worker, &wattr) != UCS_OK) ||
        (wattr.max_am_header < sizeof(ut_am_rep_hdr) + UT_RPC_META_MAX)) {
        UC_ERROR("UCX allows active-message headers of %zu bytes; %zu needed",
                 wattr.max_am_header, sizeof(ut_am_rep_hdr) + UT_RPC_META_MAX);
        goto err;
    }
    ctx->max_am_header = wattr.max_am_header;

    am.id  = UT_AM_ID_REQ;
    am.cb  = ut_ucx_am_req_cb;
    am.arg = ctx;
    if (ucp_worker_set_am_recv_handler(ctx->worker, &am) != UCS_OK) {
        goto err;
    }
    am.id = UT_AM_ID_REP;
    am.cb = ut_ucx_am_rep_cb;
    if (ucp_worker_set_am_recv_handler(ctx->worker, &am) != UCS_OK) {
        goto err;
    }
    ret = ut_ucx_make_address(ctx);
    if (ret != UCACHE_OK) {
        goto err;
    }
    if (ctx->progress_mode == UC_PROGRESS_THREAD) {
        ret = ut_ucx_thread_start(ctx);
        if (ret != UCACHE_OK) {
            goto err;
        }
    }
    *ctx_p = &ctx->super;
    return UCACHE_OK;

err:
    ut_ucx_ctx_destroy(&ctx->super);
    return ret;
}

static void ut_ucx_rkey_destroy(ut_rkey_t *rkey);
static void ut_ucx_peer_destroy(ut_peer_t *peer);
static void ut_ucx_mem_destroy(ut_mem_t *mem);
static void do_mem_free(ut_ucx_ctx_t *ctx, ut_ucx_mem_t *mem);

static void ut_ucx_ctx_destroy(ut_ctx_t *c)
{
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);
    ut_ucx_reply_t *r;
    unsigned i;

    ut_ucx_thread_stop(ctx);
    ut_mapfd_stop(ctx->mapsrv);     /* before the regions it hands out go */
    ctx->mapsrv = NULL;
    if (ctx->deferred > 0) {
        UC_ERROR("%u deferred RPCs were never answered (their handles leak)",
                 ctx->deferred);
    }
    while (ctx->peers != NULL) {
        UC_WARN("peer %s still open at context destroy; closing it",
                ctx->peers->name);
        ut_ucx_peer_destroy(&ctx->peers->super);
    }
    pthread_mutex_lock(&ctx->lock);
    do_clients_free(ctx);
    pthread_mutex_unlock(&ctx->lock);
    if (ctx->listener != NULL) {
        ucp_listener_destroy(ctx->listener);
        ctx->listener = NULL;
    }
    while (ctx->accepted != NULL) {
        ut_ucx_accepted_t *a = ctx->accepted;
        ctx->accepted = a->next;
        do_ep_close(ctx, a->ep);
        free(a);
    }
    for (i = 0; i < UT_MAX_REGIONS; i++) {
        if (ctx->regions[i] != NULL) {
            ut_ucx_mem_destroy(&ctx->regions[i]->super);
        }
    }
    if (ctx->worker != NULL) {
        while (ctx->closing != NULL) {
            ucp_worker_progress(ctx->worker);
            do_closing_reap(ctx);
        }
        ucp_worker_destroy(ctx->worker); /* ends every send still in flight */
    }
    ut_auth_destroy(ctx->auth);          /* no request can arrive any more */
    ctx->auth = NULL;
    while (ctx->parked != NULL) {
        ut_ucx_mem_t *mem = ctx->parked;
        ctx->parked = mem->parked_next;
        do_mem_free(ctx, mem);
    }
    if (ctx->ucp != NULL) {
        ucp_cleanup(ctx->ucp);
    }
    while ((r = ctx->reply_free) != NULL) {
        ctx->reply_free = r->next;
        free(r);
    }
    while ((r = ctx->reply_out) != NULL) { /* sends UCX dropped uncompleted */
        ctx->reply_out = r->next;
        free(r->copy);
        free(r);
    }
    free(ctx->addr_blob);
    free(ctx->slots);
    free(ctx->slot_gen);
    free(ctx->free_slots);
    pthread_mutex_destroy(&ctx->lock);
    pthread_cond_destroy(&ctx->progressed);
    if (ctx->kickfd >= 0) {
        close(ctx->kickfd);
    }
    free(ctx);
}

static ucache_status_t ut_ucx_address(ut_ctx_t *c, const void **blob_p,
                                      size_t *len_p)
{
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);

    *blob_p = ctx->addr_blob;
    *len_p  = ctx->addr_blob_len;
    return UCACHE_OK;
}

/* ------------------------------------------------------------------------ */
/* Memory                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * The mapping service's answer to a same-host reader (its thread, not the
 * progress path): a signed UT_OP_MAP request for a region of ours gets a
 * new read-only open of the region's memfd.
 */
static ucache_status_t ut_ucx_mapfd_open(void *arg, const void *req, size_t len,
                                         int *fd_p, uint64_t *len_p)
{
    ut_ucx_ctx_t *ctx = arg;
    ut_role_t role = UT_ROLE_NONE;
    ucache_status_t status;
    ut_am_map_desc d;
    ut_am_req_hdr hdr;
    ut_ucx_mem_t *mem;

    if (len != sizeof(hdr) + sizeof(d)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        return UCACHE_ERR_INVALID;
    }
    memcpy(&hdr, req, sizeof(hdr));
    memcpy(&d, (const uint8_t *)req + sizeof(hdr), sizeof(d));
    if ((hdr.magic != UT_AM_MAGIC) || (hdr.op != UT_OP_MAP)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        return UCACHE_ERR_INVALID;
    }
    pthread_mutex_lock(&ctx->lock);
    status = ut_auth_check(ctx->auth, req, sizeof(hdr), offsetof(ut_am_req_hdr, auth),
                           hdr.from, ctx->uuid, false, &d, sizeof(d), &role);
    mem = (d.region_id < UT_MAX_REGIONS) ? ctx->regions[d.region_id] : NULL;
    if ((status == UCACHE_OK) && ((mem == NULL) || (mem->cookie != d.cookie) ||
                                  (mem->memfd < 0))) {
        status = UCACHE_ERR_STALE;
    }
    if (status == UCACHE_OK) {
        *fd_p  = ut_memfd_reopen_ro(mem->memfd);
        *len_p = mem->super.len;
        status = (*fd_p >= 0) ? UCACHE_OK : UCACHE_ERR_TRANSPORT;
        UT_STAT_ADD(ctx, maps_served, status == UCACHE_OK);
    }
    pthread_mutex_unlock(&ctx->lock);
    return status;
}

static ucache_status_t do_mem_map(ut_ucx_ctx_t *ctx, void *addr, size_t len,
                                  bool allocate, bool exported,
                                  ut_mem_t **mem_p)
{
    ucp_mem_map_params_t mp = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_LENGTH |
                      UCP_MEM_MAP_PARAM_FIELD_PROT |
                      UCP_MEM_MAP_PARAM_FIELD_ADDRESS,
        .address    = addr,
        .length     = len,
        .prot       = UCP_MEM_MAP_PROT_LOCAL_READ | UCP_MEM_MAP_PROT_LOCAL_WRITE |
                      (exported ? UCP_MEM_MAP_PROT_REMOTE_READ : 0)
    };
    ucp_mem_attr_t attr = {
        .field_mask = UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH
    };
    ut_rkey_body body;
    ucache_status_t ret = UCACHE_ERR_NO_MEMORY;
    ut_ucx_mem_t *mem;
    ucs_status_t status;
    void *rbuf;
    size_t rlen;
    uint32_t id;

    if ((len == 0) || (!allocate && (addr == NULL))) {
        UC_ERROR("cannot register %zu bytes at %p", len, addr);
        return UCACHE_ERR_INVALID;
    }
    mem = calloc(1, sizeof(*mem));
    if (mem == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    mem->region_id = UINT32_MAX;
    mem->memfd     = -1;
    /* Our own sealed memfd, not UCX's allocation: UCX maps its posix
     * segments writable in every same-host peer that unpacks the key. */
    if (allocate) {
        ret = ut_memfd_alloc(len, &mem->memfd, &mp.address);
        if (ret != UCACHE_OK) {
            goto err_free;
        }
    }
    status = ucp_mem_map(ctx->ucp, &mp, &mem->memh);
    if (status != UCS_OK) {
        UC_ERROR("ucp_mem_map of %zu bytes: %s", len, ucs_status_string(status));
        ret = ut_ucs_status(status);
        goto err_free;
    }
    if (ucp_mem_query(mem->memh, &attr) != UCS_OK) {
        ret = UCACHE_ERR_TRANSPORT;
        goto err_unmap;
    }
    mem->super.ctx  = &ctx->super;
    mem->super.base = attr.address;
    mem->super.len  = len; /* UCX may round up; we export what was asked */
    if (!exported) {
        *mem_p = &mem->super;
        return UCACHE_OK;
    }

    pthread_mutex_lock(&ctx->lock);
    if ((mem->memfd >= 0) && (ctx->mapsrv == NULL) &&
        (ut_mapfd_start(ctx->mapname, ctx->cfg.timeout_ns, ut_ucx_mapfd_open, ctx,
                        &ctx->mapsrv) != UCACHE_OK)) {
        UC_WARN("same-host readers cannot map this context's memory; they read it "
                "with requests");
    }
    for (id = 0; (id < UT_MAX_REGIONS) && (ctx->regions[id] != NULL); id++) {
    }
    if (id == UT_MAX_REGIONS) {
        pthread_mutex_unlock(&ctx->lock);
        UC_ERROR("too many exported regions (%d)", UT_MAX_REGIONS);
        ret = UCACHE_ERR_AGAIN;
        goto err_unmap;
    }
    status = ucp_rkey_pack(ctx->ucp, mem->memh, &rbuf, &rlen);
    if (status != UCS_OK) {
        pthread_mutex_unlock(&ctx->lock);
        UC_ERROR("ucp_rkey_pack: %s", ucs_status_string(status));
        ret = UCACHE_ERR_TRANSPORT;
        goto err_unmap;
    }
    mem->cookie    = ut_random64();
    mem->region_id = id;
    memset(&body, 0, sizeof(body));
    body.base      = (uint64_t)(uintptr_t)attr.address;
    body.len       = len;
    body.cookie    = mem->cookie;
    body.ctx_uuid  = ctx->uuid;
    body.region_id = id;
    mem->blob = ut_blob_build(UT_RKEY_MAGIC, &body, sizeof(body), rbuf, rlen,
                              &mem->blob_len);
    ucp_rkey_buffer_release(rbuf);
    if (mem->blob == NULL) {
        pthread_mutex_unlock(&ctx->lock);
        goto err_unmap;
    }
    ctx->regions[id] = mem;
    pthread_mutex_unlock(&ctx->lock);
    *mem_p = &mem->super;
    return UCACHE_OK;

err_unmap:
    ucp_mem_unmap(ctx->ucp, mem->memh);
err_free:
    if (mem->memfd >= 0) {
        munmap(mp.address, len);
        close(mem->memfd);
    }
    free(mem);
    return ret;
}

static ucache_status_t ut_ucx_mem_export(ut_ctx_t *c, size_t len, ut_mem_t **mem_p)
{
    return do_mem_map(ut_ctx_of(c), NULL, len, true, true, mem_p);
}

static ucache_status_t ut_ucx_mem_register(ut_ctx_t *c, void *addr, size_t len,
                                           unsigned flags, ut_mem_t **mem_p)
{
    if (flags & ~(unsigned)UT_MEM_EXPORT) {
        return UCACHE_ERR_INVALID;
    }
    return do_mem_map(ut_ctx_of(c), addr, len, false, !!(flags & UT_MEM_EXPORT),
                      mem_p);
}

static void do_mem_free(ut_ucx_ctx_t *ctx, ut_ucx_mem_t *mem)
{
    ucp_mem_unmap(ctx->ucp, mem->memh);
    if (mem->memfd >= 0) {
        munmap(mem->super.base, mem->super.len);
        close(mem->memfd);
    }
    free(mem->blob);
    free(mem);
}

static void ut_ucx_mem_destroy(ut_mem_t *m)
{
    ut_ucx_mem_t *mem = (ut_ucx_mem_t *)m;
    ut_ucx_ctx_t *ctx = ut_ctx_of(m->ctx);
    uint64_t deadline;

    if (mem->region_id != UINT32_MAX) {
        /* Unpublish (new reads of it get UCACHE_ERR_STALE), then let the
         * replies that still point into it finish sending.  If a reader
         * stalls them past the deadline, the region stays mapped (parked)
         * until the context is destroyed: UCX never reads freed memory. */
        deadline = uc_deadline(ctx->cfg.timeout_ns);
        pthread_mutex_lock(&ctx->lock);
        ctx->regions[mem->region_id] = NULL;
        while ((mem->sends > 0) && (uc_time_ns() < deadline)) {
            do_progress(ctx);
            pthread_mutex_unlock(&ctx->lock);
            sched_yield();
            pthread_mutex_lock(&ctx->lock);
        }
        if (mem->sends > 0) {
            UC_WARN("region %u destroyed with %u replies still in flight; it "
                    "stays mapped until the context is destroyed",
                    mem->region_id, mem->sends);
            mem->parked_next = ctx->parked;
            ctx->parked      = mem;
            UT_STAT_ADD(ctx, regions_parked, 1);
            pthread_mutex_unlock(&ctx->lock);
            return;
        }
        pthread_mutex_unlock(&ctx->lock);
    }
    do_mem_free(ctx, mem);
}

static ucache_status_t ut_ucx_mem_pack(ut_mem_t *m, const void **blob_p,
                                       size_t *len_p)
{
    ut_ucx_mem_t *mem = (ut_ucx_mem_t *)m;

    if (mem->blob == NULL) {
        UC_ERROR("region %p was not registered for export", m->base);
        return UCACHE_ERR_INVALID;
    }
    *blob_p = mem->blob;
    *len_p  = mem->blob_len;
    return UCACHE_OK;
}

/* ------------------------------------------------------------------------ */
/* Peer and rkey objects                                                     */
/* ------------------------------------------------------------------------ */

static ucache_status_t ut_ucx_peer_create(ut_ctx_t *c, const void *blob,
                                          size_t len, ut_peer_t **peer_p)
{
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);
    ut_addr_body body;
    ut_ucx_peer_t *peer;
    ucache_status_t status;
    void *addr;
    size_t plen;

    status = ut_blob_take(&ctx->st.bad_input, blob, len, UT_ADDR_MAGIC,
                          "a peer address", &body, sizeof(body), &addr, &plen);
    if (status != UCACHE_OK) {
        return status;
    }
    peer = calloc(1, sizeof(*peer));
    if (peer == NULL) {
        free(addr);
        return UCACHE_ERR_NO_MEMORY;
    }
    peer->ucp_addr     = addr;
    peer->ucp_addr_len = plen;
    peer->uuid         = body.uuid;
    peer->super.ctx    = c;
    peer->native_get   = -1;
    atomic_init(&peer->state, UT_PEER_IDLE);
    snprintf(peer->name, sizeof(peer->name), "%.*s:%u", UT_HOST_MAX - 1,
             body.host, body.pid);
    if ((strncmp(body.host, ctx->host, sizeof(body.host)) == 0) &&
        (memchr(body.mapname, '\0', sizeof(body.mapname)) != NULL)) {
        memcpy(peer->mapname, body.mapname, sizeof(peer->mapname)); /* same host */
    }

    pthread_mutex_lock(&ctx->lock);
    peer->all_next = ctx->peers;
    ctx->peers     = peer;
    pthread_mutex_unlock(&ctx->lock);
    *peer_p = &peer->super;
    return UCACHE_OK;
}

static ucache_status_t ut_ucx_peer_create_sockaddr(ut_ctx_t *c, const char *host,
                                                   uint16_t port, ut_peer_t **peer_p)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV }, *res = NULL;
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);
    ut_ucx_peer_t *peer;
    char service[8];
    int rc;

    snprintf(service, sizeof(service), "%u", port);
    rc = (host != NULL) ? getaddrinfo(host, service, &hints, &res) : EAI_NONAME;
    if ((rc != 0) || (res == NULL) || (res->ai_addrlen > sizeof(peer->sa))) {
        UC_ERROR("cannot resolve %s:%u: %s", host ? host : "(null)", port,
                 (rc != 0) ? gai_strerror(rc) : "no address");
        if (res != NULL) {
            freeaddrinfo(res);
        }
        UT_STAT_ADD(ctx, bad_input, 1);
        return UCACHE_ERR_INVALID;
    }
    peer = calloc(1, sizeof(*peer));
    if (peer == NULL) {
        freeaddrinfo(res);
        return UCACHE_ERR_NO_MEMORY;
    }
    memcpy(&peer->sa, res->ai_addr, res->ai_addrlen);
    peer->salen      = res->ai_addrlen;
    freeaddrinfo(res);
    peer->super.ctx  = c;
    peer->native_get = -1;
    atomic_init(&peer->state, UT_PEER_IDLE);
    snprintf(peer->name, sizeof(peer->name), "%.*s:%u", UT_HOST_MAX - 1, host, port);
    pthread_mutex_lock(&ctx->lock);
    peer->all_next = ctx->peers;
    ctx->peers     = peer;
    pthread_mutex_unlock(&ctx->lock);
    *peer_p = &peer->super;
    return UCACHE_OK;
}

/* Forget an accepted connection and close its endpoint (lock held). */
static void do_accepted_close(ut_ucx_ctx_t *ctx, ut_ucx_accepted_t *a)
{
    ut_ucx_accepted_t **pp;

    for (pp = &ctx->accepted; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    }
    ctx->naccepted--;
    ctx->nunauthed -= !a->authed;
    do_ep_close(ctx, a->ep);
    free(a);
}

static void ut_ucx_accepted_err_cb(void *arg, ucp_ep_h ep, ucs_status_t status)
{
    ut_ucx_accepted_t *a = arg;

    (void)ep;
    UC_DEBUG("an accepted connection ended: %s", ucs_status_string(status));
    do_accepted_close(a->ctx, a);
}

/* An authenticated request came on @p ep: if the listener accepted it, the
 * connection has proved itself and stays (lock held). */
static void do_accepted_authed(ut_ucx_ctx_t *ctx, ucp_ep_h ep)
{
    ut_ucx_accepted_t *a;

    for (a = ctx->accepted; (a != NULL) && (ctx->nunauthed > 0); a = a->next) {
        if ((a->ep == ep) && !a->authed) {
            a->authed = true;
            ctx->nunauthed--;
            return;
        }
    }
}

/* Close the listener's connections that sent no authenticated request
 * within UCACHE_TIMEOUT of their accept; checked at most every 10 ms. */
static void do_accepted_reap(ut_ucx_ctx_t *ctx)
{
    ut_ucx_accepted_t *a, *next;
    uint64_t now = uc_time_ns();

    if ((ctx->nunauthed == 0) || (now - ctx->accept_check_ns < 10 * UC_NSEC_PER_MSEC)) {
        return;
    }
    ctx->accept_check_ns = now;
    for (a = ctx->accepted; a != NULL; a = next) {
        next = a->next;
        if (!a->authed && (now > a->deadline)) {
            UT_STAT_ADD(ctx, conns_unauth_closed, 1);
            UC_DEBUG("closing a listener connection that sent no authenticated request");
            do_accepted_close(ctx, a);
        }
    }
}

static bool ut_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family) {
        return false;
    }
    if (a->ss_family == AF_INET) {
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
    }
    return false;
}

/* A client connects to the listener (progress, lock held): accept it. */
static void ut_ucx_conn_cb(ucp_conn_request_h conn_request, void *arg)
{
    ut_ucx_ctx_t *ctx = arg;
    ucp_ep_params_t params = {
        .field_mask   = UCP_EP_PARAM_FIELD_CONN_REQUEST |
                        UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                        UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .conn_request = conn_request,
        .err_mode     = UCP_ERR_HANDLING_MODE_PEER
    };
    ucp_conn_request_attr_t attr = { .field_mask = UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR };
    ut_ucx_accepted_t *a = NULL, *o;
    ucs_status_t status;
    unsigned same = 0;

    /* Bounded: UCACHE_MAX_EPS connections in all, UT_ACCEPT_PER_HOST from
     * one address; each must authenticate within UCACHE_TIMEOUT. */
    do_accepted_reap(ctx);
    if (ucp_conn_request_query(conn_request, &attr) == UCS_OK) {
        for (o = ctx->accepted; o != NULL; o = o->next) {
            same += ut_same_host(&o->from, &attr.client_address);
        }
    } else {
        memset(&attr.client_address, 0, sizeof(attr.client_address));
    }
    if ((ctx->naccepted < ctx->cfg.max_eps) && (same < UT_ACCEPT_PER_HOST)) {
        a = calloc(1, sizeof(*a));
    }
    if (a == NULL) {
        UT_STAT_ADD(ctx, conns_refused, 1);
        UC_WARN("refused a listener connection: %u open (UCACHE_MAX_EPS %u), %u from its "
                "address (at most %u)", ctx->naccepted, ctx->cfg.max_eps, same,
                UT_ACCEPT_PER_HOST);
        ucp_listener_reject(ctx->listener, conn_request);
        return;
    }
    a->ctx      = ctx;
    a->from     = attr.client_address;
    a->deadline = uc_deadline(ctx->cfg.timeout_ns);
    a->authed   = !ut_auth_keyed(ctx->auth);   /* an open node trusts all */
    params.err_handler.cb  = ut_ucx_accepted_err_cb;
    params.err_handler.arg = a;
    status = ucp_ep_create(ctx->worker, &params, &a->ep);
    if (status != UCS_OK) {
        UC_WARN("cannot accept a connection: %s", ucs_status_string(status));
        free(a);
        return;
    }
    a->next       = ctx->accepted;
    ctx->accepted = a;
    ctx->naccepted++;
    ctx->nunauthed += !a->authed;
}

static ucache_status_t ut_ucx_listen(ut_ctx_t *c, const char *ip, uint16_t port,
                                     uint16_t *port_p)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV | AI_PASSIVE }, *res = NULL;
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);
    ucp_listener_params_t params;
    ucp_listener_attr_t attr = { .field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR };
    ucs_status_t status;
    char service[8];
    int rc;

    snprintf(service, sizeof(service), "%u", port);
    rc = getaddrinfo((ip != NULL) && (ip[0] != '\0') ? ip : NULL, service, &hints, &res);
    if ((rc != 0) || (res == NULL)) {
        UC_ERROR("cannot listen on %s:%u: %s", ip ? ip : "*", port, gai_strerror(rc));
        return UCACHE_ERR_INVALID;
    }
    memset(&params, 0, sizeof(params));
    params.field_mask       = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR |
                              UCP_LISTENER_PARAM_FIELD_CONN_HANDLER;
    params.sockaddr.addr    = res->ai_addr;
    params.sockaddr.addrlen = res->ai_addrlen;
    params.conn_handler.cb  = ut_ucx_conn_cb;
    params.conn_handler.arg = ctx;
    pthread_mutex_lock(&ctx->lock);
    if (ctx->listener != NULL) {
        pthread_mutex_unlock(&ctx->lock);
        freeaddrinfo(res);
        return UCACHE_ERR_EXISTS;
    }
    status = ucp_listener_create(ctx->worker, &params, &ctx->listener);
    if ((status == UCS_OK) && (port_p != NULL)) {
        if (ucp_listener_query(ctx->listener, &attr) == UCS_OK) {
            *port_p = ntohs((attr.sockaddr.ss_family == AF_INET6) ?
                            ((struct sockaddr_in6 *)&attr.sockaddr)->sin6_port :
                            ((struct sockaddr_in *)&attr.sockaddr)->sin_port);
        } else {
            *port_p = port;
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    freeaddrinfo(res);
    if (status != UCS_OK) {
        UC_ERROR("cannot listen on %s:%u: %s", ip ? ip : "*", port,
                 ucs_status_string(status));
        return (status == UCS_ERR_BUSY) ? UCACHE_ERR_BUSY : UCACHE_ERR_TRANSPORT;
    }
    return UCACHE_OK;
}

static void ut_ucx_peer_destroy(ut_peer_t *p)
{
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)p, **pp;
    ut_ucx_ctx_t *ctx   = ut_ctx_of(p->ctx);
    bool warned = false;
    uint64_t t0;
    uint32_t i;

    pthread_mutex_lock(&ctx->lock);
    if (peer->nrkeys > 0) {
        UC_WARN("peer %s destroyed with %u remote keys still unpacked",
                peer->name, peer->nrkeys);
    }
    /* Requests still in flight complete with UCACHE_ERR_CANCELED. */
    for (i = 0; (i < ctx->cfg.max_outstanding) && (peer->inflight > 0); i++) {
        ut_req_t *req = ctx->slots[i];
        if ((req != NULL) && (req->priv.peer == p)) {
            do_req_set_status(req, UCACHE_ERR_CANCELED);
            if (req->priv.pending & UT_PEND_REPLY) {
                do_req_clear(ctx, req, UT_PEND_REPLY);
            }
        }
    }
    do_peer_disconnect(ctx, peer, UT_PEER_IDLE);
    t0 = uc_time_ns();
    while (peer->inflight > 0) { /* UCX completes the rest as the ep closes */
        do_progress(ctx);
        if (!warned && (uc_time_ns() - t0 > 10 * UC_NSEC_PER_SEC)) {
            UC_ERROR("%u requests to %s still held by UCX 10 s after the "
                     "endpoint was closed", peer->inflight, peer->name);
            warned = true;
        }
    }
    for (pp = &ctx->peers; *pp != NULL; pp = &(*pp)->all_next) {
        if (*pp == peer) {
            *pp = peer->all_next;
            break;
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    free(peer->ucp_addr);
    free(peer);
}

static ut_peer_state_t ut_ucx_peer_state(ut_peer_t *p)
{
    return (ut_peer_state_t)atomic_load(&((ut_ucx_peer_t *)p)->state);
}

static void ut_ucx_peer_transports(ut_peer_t *p, char *buf, size_t cap)
{
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)p;
    ut_ucx_ctx_t *ctx = (ut_ucx_ctx_t *)p->ctx;

    pthread_mutex_lock(&ctx->lock);
    snprintf(buf, cap, "%s", peer->tls);
    pthread_mutex_unlock(&ctx->lock);
}

static const char *ut_ucx_peer_name(ut_peer_t *p)
{
    return ((ut_ucx_peer_t *)p)->name;
}

/* Fault a mapped region in once, in one call, instead of one fault per page
 * on the read path (5-8 us per 4 KiB page on some VMs). */
static void do_map_populate(void *ptr, size_t len)
{
    uintptr_t page  = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)ptr & ~(page - 1);
    uintptr_t end   = ((uintptr_t)ptr + len + page - 1) & ~(page - 1);

    if (madvise((void *)start, end - start, MADV_POPULATE_READ) != 0) {
        UC_DEBUG("madvise(MADV_POPULATE_READ) of %zu bytes: %m", len);
    }
}

static ucache_status_t ut_ucx_rkey_unpack(ut_peer_t *p, const void *blob,
                                          size_t len, ut_rkey_t **rkey_p)
{
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)p;
    ut_ucx_ctx_t *ctx   = ut_ctx_of(p->ctx);
    struct {
        ut_am_req_hdr  hdr;
        ut_am_map_desc desc;
    } mreq;
    ut_rkey_body body;
    ucache_status_t status;
    ut_ucx_rkey_t *rk;
    void *ptr, *ucp_blob;
    size_t plen;

    _Static_assert(sizeof(mreq) == sizeof(ut_am_req_hdr) + sizeof(ut_am_map_desc),
                   "the mapping request has no padding");
    status = ut_blob_take(&ctx->st.bad_input, blob, len, UT_RKEY_MAGIC,
                          "a remote key", &body, sizeof(body), &ucp_blob, &plen);
    if (status != UCACHE_OK) {
        return status;
    }
    if ((body.len == 0) || (body.base + body.len < body.base)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_ERROR("refused a remote key for %s: its region wraps the address space",
                 peer->name);
        free(ucp_blob);
        return UCACHE_ERR_INVALID;
    }
    if (body.ctx_uuid != peer->uuid) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_ERROR("refused a remote key for %s: it belongs to another peer",
                 peer->name);
        free(ucp_blob);
        return UCACHE_ERR_STALE;
    }
    rk = calloc(1, sizeof(*rk));
    if (rk == NULL) {
        free(ucp_blob);
        return UCACHE_ERR_NO_MEMORY;
    }
    rk->blob            = ucp_blob;
    rk->blob_len        = plen;
    rk->cookie          = body.cookie;
    rk->region_id       = body.region_id;
    rk->super.ctx       = p->ctx;
    rk->super.peer      = p;
    rk->super.base      = body.base;
    rk->super.len       = body.len;

    pthread_mutex_lock(&ctx->lock);
    status = do_peer_ensure(ctx, peer);
    if (status == UCACHE_OK) {
        status = do_rkey_ready(ctx, rk, peer);
    }
    if (status != UCACHE_OK) {
        pthread_mutex_unlock(&ctx->lock);
        free(rk->blob);
        free(rk);
        return status;
    }
    /* Same host: ask the owner for a read-only descriptor of the region
     * (signed, like any request) and map it once; reads become plain
     * copies - if the mapping holds the length the blob claims. */
    if ((peer->mapname[0] != '\0') && ctx->shm) {
        memset(&mreq, 0, sizeof(mreq));
        mreq.hdr.magic      = UT_AM_MAGIC;
        mreq.hdr.op         = UT_OP_MAP;
        mreq.hdr.from       = ctx->uuid;
        mreq.desc.region_id = rk->region_id;
        mreq.desc.cookie    = rk->cookie;
        ut_auth_sign(ctx->auth, &mreq.hdr, sizeof(mreq.hdr), offsetof(ut_am_req_hdr, auth),
                     peer->uuid, &mreq.desc, sizeof(mreq.desc));
    }
    peer->nrkeys++;
    pthread_mutex_unlock(&ctx->lock);
    if ((peer->mapname[0] != '\0') && ctx->shm) {
        status = ut_mapfd_map(peer->mapname, &mreq, sizeof(mreq), ctx->cfg.timeout_ns, &ptr,
                              &rk->map_len);
        if ((status == UCACHE_OK) && (rk->map_len >= rk->super.len)) {
            rk->super.mapped = ptr;
        } else if (status == UCACHE_OK) {
            UC_WARN("a key of %s claims %zu bytes its mapping does not hold: read with "
                    "requests", peer->name, rk->super.len);
            munmap(ptr, rk->map_len);
        } else {
            UC_DEBUG("%s's memory is not mapped here: %s", peer->name,
                     ucache_strerror(status));
        }
    }
    if ((rk->super.mapped != NULL) && ctx->cfg.map_populate) {
        do_map_populate(rk->super.mapped, rk->super.len);
    }
    UC_DEBUG("remote key of %s: region %u, %zu bytes, %s", peer->name,
             rk->region_id, rk->super.len, rk->super.mapped ? "mapped" : "remote");
    *rkey_p = &rk->super;
    return UCACHE_OK;
}

static void ut_ucx_rkey_destroy(ut_rkey_t *rkey)
{
    ut_ucx_rkey_t *rk   = (ut_ucx_rkey_t *)rkey;
    ut_ucx_ctx_t *ctx   = ut_ctx_of(rkey->ctx);
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)rkey->peer;

    pthread_mutex_lock(&ctx->lock);
    if (rk->rkey != NULL) {
        ucp_rkey_destroy(rk->rkey);
    }
    if (rk->super.mapped != NULL) {
        munmap(rk->super.mapped, rk->map_len);
    }
    peer->nrkeys--;
    pthread_mutex_unlock(&ctx->lock);
    free(rk->blob);
    free(rk);
}

static void ut_ucx_stats(ut_ctx_t *c, ut_stats_t *s)
{
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);

#define UT_STAT_COPY(_f) s->_f = atomic_load_explicit(&ctx->st._f, memory_order_relaxed)
    UT_STAT_COPY(read_bytes);
    UT_STAT_COPY(mapped_reads);
    UT_STAT_COPY(get_reads);
    UT_STAT_COPY(am_reads);
    UT_STAT_COPY(rpcs);
    UT_STAT_COPY(rpcs_served);
    UT_STAT_COPY(am_reads_served);
    UT_STAT_COPY(served_bytes);
    UT_STAT_COPY(timeouts);
    UT_STAT_COPY(peer_failures);
    UT_STAT_COPY(bad_input);
    UT_STAT_COPY(late_replies);
    UT_STAT_COPY(replies_dropped);
    UT_STAT_COPY(conns_refused);
    UT_STAT_COPY(conns_unauth_closed);
    UT_STAT_COPY(maps_served);
    UT_STAT_COPY(regions_parked);
    UT_STAT_COPY(eps_evicted);
    UT_STAT_COPY(connects);
    UT_STAT_COPY(keepalives);
    UT_STAT_COPY(replies_lost);
    UT_STAT_COPY(stalled_replies);
    s->wireup_guarded = ut_ucx_guard_count();
    s->stale_events   = ut_ucx_guard_stale_events();
#undef UT_STAT_COPY
    s->reads = s->mapped_reads + s->get_reads + s->am_reads; /* derived */
    pthread_mutex_lock(&ctx->lock);
    s->eps_open = ctx->nopen;
    s->auth_failures = ut_auth_failures(ctx->auth);
    s->conns_open    = ctx->naccepted;
    pthread_mutex_unlock(&ctx->lock);
}

const ut_ops_t ut_ucx_ops = {
    .name            = "ucx",
    .ctx_create      = ut_ucx_ctx_create,
    .ctx_destroy     = ut_ucx_ctx_destroy,
    .address         = ut_ucx_address,
    .mem_export      = ut_ucx_mem_export,
    .mem_register    = ut_ucx_mem_register,
    .mem_destroy     = ut_ucx_mem_destroy,
    .mem_pack        = ut_ucx_mem_pack,
    .peer_create     = ut_ucx_peer_create,
    .peer_destroy    = ut_ucx_peer_destroy,
    .peer_state      = ut_ucx_peer_state,
    .peer_name       = ut_ucx_peer_name,
    .peer_transports = ut_ucx_peer_transports,
    .rkey_unpack     = ut_ucx_rkey_unpack,
    .rkey_destroy    = ut_ucx_rkey_destroy,
    .get_post        = ut_ucx_get_post,
    .rpc_post        = ut_ucx_rpc_post,
    .wait            = ut_ucx_wait,
    .progress        = ut_ucx_progress,
    .rpc_handler_set = ut_ucx_rpc_handler_set,
    .rpc_reply       = ut_ucx_rpc_reply,
    .rpc_defer       = ut_ucx_rpc_defer,
    .rkey_path       = ut_ucx_rkey_path,
    .peer_create_sockaddr = ut_ucx_peer_create_sockaddr,
    .listen          = ut_ucx_listen,
    .stats           = ut_ucx_stats,
};
