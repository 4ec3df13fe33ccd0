/*
 * ucx_int.h - what the files of the UCX backend share (transport/ucx*.c;
 * the tests that reach its wire formats and states include it too): the
 * context, peer, key, reply and accepted-connection structs, the request
 * bits, and the functions one file calls in another.  Other layers see
 * transport.h only.  Lock rule: do_* and ut_ucx_do_* assume ctx->lock.
 */
#ifndef UT_UCX_INT_H
#define UT_UCX_INT_H

#include "transport/auth.h"
#include "transport/blob.h"
#include "transport/lru.h"
#include "transport/mapfd.h"
#include "transport/ucx_guard.h"
#include "transport/wire.h"
#include "transport.h"
#include "util/log.h"
#include "util/time.h"

#include <ucp/api/ucp.h>

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* How often a polling waiter looks at its requests' deadlines and peers'
 * liveness (a deadline is milliseconds; a look costs a pass over them). */
#define UT_DEADLINE_CHECK_NS (100ull * 1000)

#ifndef UT_WAIT_CAP_NS
#define UT_WAIT_CAP_NS UC_NSEC_PER_MSEC /* the longest a waiter sleeps unwoken */
#endif
#define UT_CLIENT_BUCKETS 1024       /* requesters a node knows, by uuid      */
#define UT_MAX_REGIONS    4096
#define UT_ACCEPT_PER_HOST 64        /* listener connections from one address */

/* ut_req_t.priv.pending bits: the request completes when all are clear. */
#define UT_PEND_UCX       (1u << 0)  /* a get owned by UCX                  */
#define UT_PEND_SEND      (1u << 1)  /* AM request send not yet completed   */
#define UT_PEND_REPLY     (1u << 2)  /* waiting for the AM reply            */
#define UT_PEND_RECV      (1u << 3)  /* rendezvous reply data being received */

/* ut_req_t.priv.flags */
#define UT_REQF_SLOT      (1u << 0)  /* holds a slot in ctx->slots */
#define UT_REQF_UNOWED    (1u << 1)  /* a keepalive answer said its peer no
                                        longer owes it a reply            */

_Static_assert(sizeof(ut_am_req_hdr) <=
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
    bool             map_dir;    /* ... found in UCACHE_MAP_DIR: map it even
                                    where UCX has no shared-memory transport */
    ut_lru_link_t    lru;        /* connected peers, MRU first (ctx->lru) */
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
    uint8_t         path;        /* how its reads go: decided once, by the
                                    first ut_rkey_path() or get (ctx->lock) */
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
    ut_config_t       cfg;
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
    unsigned          region_top; /* ids below it were used (holes are NULL) */

    ut_ucx_peer_t    *peers;        /* every peer (all_next)            */
    ut_lru_t          lru;          /* connected peers, MRU first      */
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
        _Atomic uint64_t rpcs, rpcs_served, served_bytes;
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

static inline ut_ucx_ctx_t *ut_ctx_of(ut_ctx_t *ctx)
{
    return (ut_ucx_ctx_t *)ctx;
}

static inline ucache_status_t ut_ucs_status(ucs_status_t status)
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
/* Across the backend's files                                                */
/* ------------------------------------------------------------------------ */

/* requests, waiting, progress (ucx_req.c) */
void ut_ucx_do_req_start(ut_req_t *req, ut_peer_t *peer, ut_path_t path);
ucache_status_t ut_ucx_do_slot_alloc(ut_ucx_ctx_t *ctx, ut_req_t *req);
ut_req_t *ut_ucx_do_slot_find(ut_ucx_ctx_t *ctx, uint64_t id);
void ut_ucx_do_req_set_status(ut_req_t *req, ucache_status_t status);
void ut_ucx_do_req_clear(ut_ucx_ctx_t *ctx, ut_req_t *req, uint32_t bits);
unsigned ut_ucx_do_progress(ut_ucx_ctx_t *ctx);
ucache_status_t ut_ucx_do_rkey_ready(ut_ucx_ctx_t *ctx, ut_ucx_rkey_t *rk,
                                     ut_ucx_peer_t *peer);
ucache_status_t ut_ucx_get_post(ut_req_t *req, ut_rkey_t *rkey,
                                uint64_t raddr, void *buf, size_t len);
ucache_status_t ut_ucx_rpc_post(ut_req_t *req, ut_peer_t *p, unsigned id,
                                const void *msg, size_t len, void *meta,
                                size_t meta_cap, void *data,
                                size_t data_cap, uint64_t timeout_ns);
ut_path_t ut_ucx_rkey_path(ut_rkey_t *rkey);
ucache_status_t ut_ucx_rpc_reply(ut_rpc_t *r, ucache_status_t status,
                                 const void *meta, size_t meta_len,
                                 const void *data, size_t data_len,
                                 unsigned flags);
ucache_status_t ut_ucx_rpc_defer(ut_rpc_t *r, ut_rpc_t **deferred_p);
ucache_status_t ut_ucx_rpc_handler_set(ut_ctx_t *c, unsigned id,
                                       ut_rpc_handler_t cb, void *arg);
ucache_status_t ut_ucx_wait(ut_ctx_t *c, ut_req_t *reqs, size_t n,
                            uint64_t timeout_ns);
size_t ut_ucx_wait_any(ut_ctx_t *c, ut_req_t **reqs, size_t n, uint64_t timeout_ns);
unsigned ut_ucx_progress(ut_ctx_t *c);
ucache_status_t ut_ucx_thread_start(ut_ucx_ctx_t *ctx);
void ut_ucx_thread_stop(ut_ucx_ctx_t *ctx);

/* peers and endpoints (ucx_peer.c) */
void ut_ucx_do_ep_close(ut_ucx_ctx_t *ctx, ucp_ep_h ep);
void ut_ucx_do_closing_reap(ut_ucx_ctx_t *ctx);
void ut_ucx_do_peer_disconnect(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer,
                               ut_peer_state_t new_state);
void ut_ucx_do_peer_fail(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer,
                         ucache_status_t status);
int ut_ucx_do_ep_native_rma(ucp_ep_h ep, char *tls, size_t cap);
ucache_status_t ut_ucx_do_peer_ensure(ut_ucx_ctx_t *ctx, ut_ucx_peer_t *peer);
ucache_status_t ut_ucx_peer_create(ut_ctx_t *c, const void *blob,
                                   size_t len, ut_peer_t **peer_p);
ucache_status_t ut_ucx_peer_create_sockaddr(ut_ctx_t *c, const char *host,
                                            uint16_t port, ut_peer_t **peer_p);
void ut_ucx_peer_destroy(ut_peer_t *p);
ut_peer_state_t ut_ucx_peer_state(ut_peer_t *p);
void ut_ucx_peer_transports(ut_peer_t *p, char *buf, size_t cap);
const char *ut_ucx_peer_name(ut_peer_t *p);

/* active messages (ucx_am.c) */
ucache_status_t ut_ucx_do_reply_send(ut_ucx_ctx_t *ctx, ucp_ep_h ep,
                                     uint64_t id, ucache_status_t status,
                                     const void *meta, size_t meta_len,
                                     const void *data, size_t data_len,
                                     bool stable, ut_ucx_mem_t *mem);
ut_ucx_peer_t *ut_ucx_do_client_find(ut_ucx_ctx_t *ctx, uint64_t uuid);
void ut_ucx_do_client_learn(ut_ucx_ctx_t *ctx, uint64_t uuid, const void *blob,
                            size_t len);
void ut_ucx_do_clients_free(ut_ucx_ctx_t *ctx);
ucs_status_t ut_ucx_am_req_cb(void *arg, const void *header,
                              size_t header_length, void *data,
                              size_t length,
                              const ucp_am_recv_param_t *param);
ucs_status_t ut_ucx_am_rep_cb(void *arg, const void *header,
                              size_t header_length, void *data,
                              size_t length,
                              const ucp_am_recv_param_t *param);
ucache_status_t ut_ucx_do_am_request(ut_ucx_ctx_t *ctx, ut_req_t *req,
                                     ut_ucx_peer_t *peer, uint16_t op,
                                     const void *payload, size_t len);


/* memory regions and remote keys (ucx_mem.c) */
ucache_status_t ut_ucx_mem_export(ut_ctx_t *c, size_t len, ut_mem_t **mem_p);
ucache_status_t ut_ucx_mem_register(ut_ctx_t *c, void *addr, size_t len,
                                    unsigned flags, ut_mem_t **mem_p);
void ut_ucx_do_mem_free(ut_ucx_ctx_t *ctx, ut_ucx_mem_t *mem);
ut_ucx_mem_t *ut_ucx_do_region_of(ut_ucx_ctx_t *ctx, const void *data, size_t len);
void ut_ucx_mem_destroy(ut_mem_t *m);
ucache_status_t ut_ucx_mem_pack(ut_mem_t *m, const void **blob_p,
                                size_t *len_p);
ucache_status_t ut_ucx_rkey_unpack(ut_peer_t *p, const void *blob,
                                   size_t len, ut_rkey_t **rkey_p);
void ut_ucx_rkey_destroy(ut_rkey_t *rkey);

/* the listener (ucx_listen.c) */
void ut_ucx_do_accepted_authed(ut_ucx_ctx_t *ctx, ucp_ep_h ep);
void ut_ucx_do_accepted_reap(ut_ucx_ctx_t *ctx);
ucache_status_t ut_ucx_listen(ut_ctx_t *c, const char *ip, uint16_t port,
                              uint16_t *port_p);


#endif
