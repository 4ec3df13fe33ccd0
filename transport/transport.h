/*
 * transport.h - the transport layer's interface: an ops table that each
 * backend fills (ucx.c today, ofi.c later), and thin inline wrappers that the
 * store and the fabric call.  Nothing above this layer includes UCX,
 * libfabric or verbs headers or sees their status codes.
 *
 * What it offers: exported (remote read-only) memory, self-checking blobs for
 * worker addresses and remote keys, lazily connected peers in a capped pool,
 * one-sided reads of remote memory (a mapped copy on the same host, a
 * native get over RDMA), request/reply RPCs whose replies carry bulk data
 * uncopied, and progress by polling or by a thread.  Where a peer has no
 * one-sided path (tcp) the transport has no read of its own: the layer
 * above reads by RPC (the fabric's FETCH), so there is one active-message
 * read protocol, not two.  Every remote operation has a
 * deadline; a dead or silent peer fails it with UCACHE_ERR_PEER or
 * UCACHE_ERR_TIMEOUT, and nothing hangs.
 *
 * Threads: any number of threads may call into one context.  Reads served
 * from mapped memory take no lock and make no syscall; everything else is
 * serialized by the context's lock (see the backend for the lock rules).
 */
#ifndef UT_TRANSPORT_H
#define UT_TRANSPORT_H

#include "transport/devices.h"
#include "util/status.h"
#include "util/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct ut_ctx  ut_ctx_t;
typedef struct ut_mem  ut_mem_t;
typedef struct ut_peer ut_peer_t;
typedef struct ut_rkey ut_rkey_t;
typedef struct ut_rpc  ut_rpc_t;
typedef struct ucache_transport_ops ut_ops_t;

/* Largest reply metadata an RPC handler may return (carried in the AM header). */
#define UT_RPC_META_MAX   192
/* RPC handler ids available to upper layers: 1 .. UT_RPC_MAX_ID. */
#define UT_RPC_MAX_ID     63

/* Which primitive served a read (ut_req_t.path). */
typedef enum ut_path {
    UT_PATH_NONE   = 0,
    UT_PATH_MAPPED = 1, /* plain copy from the owner's mapped region   */
    UT_PATH_GET    = 2, /* ucp_get (native RMA on RDMA NICs)           */
    UT_PATH_AM     = 3, /* no one-sided path: read by RPC (bulk reply)  */
    UT_PATH_RPC    = 4
} ut_path_t;

/* Peer states; the diagram and the transitions live in the backend. */
typedef enum ut_peer_state {
    UT_PEER_IDLE      = 0, /* known address, no endpoint open            */
    UT_PEER_CONNECTED = 1, /* endpoint open                              */
    UT_PEER_FAILED    = 2, /* error callback or deadline; retried later  */
    UT_PEER_CONNECTING = 3 /* endpoint open, handshake not yet answered  */
} ut_peer_state_t;

/*
 * What the transport takes from the configuration: its own parameters, not
 * the whole of it (ut_config_from() copies them out of a uc_config_t).
 */
typedef struct ut_config {
    char     transport[16];      /* UCACHE_TRANSPORT                       */
    char     ofi_provider[64];   /* UCACHE_OFI_PROVIDER                    */
    int      read_path;          /* UCACHE_READ_PATH (uc_read_path_t)      */
    uint64_t timeout_ns;         /* UCACHE_TIMEOUT                         */
    unsigned max_eps;            /* UCACHE_MAX_EPS                         */
    uint64_t peer_retry_ns;      /* UCACHE_PEER_RETRY                      */
    uint64_t peer_retry_max_ns;  /* UCACHE_PEER_RETRY_MAX                  */
    unsigned max_outstanding;    /* UCACHE_MAX_OUTSTANDING                 */
    size_t   rpc_max;            /* UCACHE_RPC_MAX                         */
    uint64_t progress_spin_ns;   /* UCACHE_PROGRESS_SPIN                   */
    int      map_populate;       /* UCACHE_MAP_POPULATE (bool)             */
    char     map_dir[256];       /* UCACHE_MAP_DIR ("": abstract sockets)  */
    int      emulated_rma;       /* UCACHE_EMULATED_RMA (bool; a test mode) */
    char     cluster_key_file[256]; /* UCACHE_CLUSTER_KEY_FILE             */
    char     admin_key_file[256];   /* UCACHE_ADMIN_KEY_FILE               */
    uint64_t auth_window_ns;     /* UCACHE_AUTH_WINDOW                     */
} ut_config_t;

/** The transport's parameters out of the whole configuration @p cfg. */
void ut_config_from(ut_config_t *tc, const uc_config_t *cfg);

enum ut_params_field {
    UT_PARAM_FIELD_CONFIG   = 1u << 0,
    UT_PARAM_FIELD_PROGRESS = 1u << 1,
    UT_PARAM_FIELD_SERVE    = 1u << 2
};

typedef struct ut_params {
    uint64_t            field_mask;
    const ut_config_t  *config;    /* copied; defaults + environment if absent */
    uc_progress_mode_t  progress;  /* default UC_PROGRESS_POLL                 */
    bool                serve;     /* it exports memory to peers: it never
                                      turns on UCX's software RMA (below)    */
} ut_params_t;

/* What a request's signature lets it do (ut_rpc_t.role; transport/auth.h). */
typedef enum ut_role {
    UT_ROLE_NONE   = 0,
    UT_ROLE_READER = 1,   /* the cluster key: read, fill, pin, touch      */
    UT_ROLE_ADMIN  = 2    /* the admin key (or an open fabric): all       */
} ut_role_t;

/* Register flags for ut_mem_register(). */
enum ut_mem_flags {
    UT_MEM_EXPORT = 1u << 0   /* remote read-only access (packable rkey) */
};

/* Flags for ut_rpc_reply(). */
enum ut_reply_flags {
    /* The data stays valid and unchanged until long after the reply is sent
     * (exported memory within its grace period): sent without a copy. */
    UT_REPLY_DATA_STABLE = 1u << 0
};

/*
 * One operation, owned by the caller from post until it completes: status
 * leaves UCACHE_INPROGRESS only when the transport holds no part of it.  The
 * caller must not move, reuse or free it, nor the buffers it names, before.
 */
typedef struct ut_req {
    ucache_status_t status;      /* out */
    uint8_t         path;        /* out: ut_path_t that served it        */
    size_t          length;      /* out: data bytes delivered            */
    size_t          meta_length; /* out: reply metadata bytes (RPC)      */
    struct {                     /* backend-private */
        ut_peer_t *peer;
        void      *buf;
        void      *meta;
        size_t     cap;
        size_t     meta_cap;
        uint64_t   id;
        uint64_t   deadline;
        uint64_t   posted;   /* when its slot was taken (monotonic ns) */
        uint32_t   pending;
        uint32_t   flags;
        int32_t    error;    /* first error; becomes status on completion */
        uint8_t    wire[120] __attribute__((aligned(8)));
    } priv;
} ut_req_t;

/*
 * An RPC handler runs on the serving context's progress path with the
 * request bytes (valid only during the call) and must, before it returns,
 * either call ut_rpc_reply() or ut_rpc_defer() and reply later (from any
 * thread) through the deferred handle.
 */
typedef void (*ut_rpc_handler_t)(void *arg, ut_rpc_t *rpc, const void *msg,
                                 size_t len);

typedef struct ut_stats {
    uint64_t reads, read_bytes;
    uint64_t mapped_reads, get_reads, am_reads;
    uint64_t rpcs, rpcs_served, served_bytes;
    uint64_t timeouts, peer_failures, bad_input, late_replies;
    uint64_t regions_parked;  /* destroyed regions kept mapped for stuck sends */
    uint64_t replies_dropped; /* deferred replies to a requester that failed */
    uint64_t eps_open, eps_evicted, connects;
    uint64_t auth_failures;   /* requests refused: unsigned, bad key, replayed */
    uint64_t conns_open;      /* gauge: connections the listener holds        */
    uint64_t conns_refused;   /* listener connections past the caps           */
    uint64_t conns_unauth_closed; /* closed: no authenticated request in time */
    uint64_t maps_served;     /* read-only descriptors given to same-host readers */
    uint64_t keepalives;      /* KEEPALIVEs to a peer while a long request waited */
    uint64_t replies_lost;    /* requests its answer said were no longer owed */
    uint64_t stalled_replies; /* reply data not in UCACHE_TIMEOUT after its header */
    uint64_t wireup_guarded;  /* UCX 1.13 wireup aborts averted (ucx_guard.c) */
    uint64_t stale_events;    /* UCX 1.13 stale listener events dropped (ucx_guard.c) */
    uint64_t zcopy_guarded;   /* UCX 1.13 double zero-copy completions averted (ditto) */
} ut_stats_t;

struct ucache_transport_ops {
    const char *name;
    ucache_status_t (*ctx_create)(const ut_params_t *params, ut_ctx_t **ctx_p);
    void            (*ctx_destroy)(ut_ctx_t *ctx);
    ucache_status_t (*address)(ut_ctx_t *ctx, const void **blob_p, size_t *len_p);
    ucache_status_t (*mem_export)(ut_ctx_t *ctx, size_t len, ut_mem_t **mem_p);
    ucache_status_t (*mem_register)(ut_ctx_t *ctx, void *addr, size_t len,
                                    unsigned flags, ut_mem_t **mem_p);
    void            (*mem_destroy)(ut_mem_t *mem);
    ucache_status_t (*mem_pack)(ut_mem_t *mem, const void **blob_p, size_t *len_p);
    ucache_status_t (*peer_create)(ut_ctx_t *ctx, const void *addr, size_t len,
                                   ut_peer_t **peer_p);
    void            (*peer_destroy)(ut_peer_t *peer);
    ut_peer_state_t (*peer_state)(ut_peer_t *peer);
    ucache_status_t (*rkey_unpack)(ut_peer_t *peer, const void *blob, size_t len,
                                   ut_rkey_t **rkey_p);
    void            (*rkey_destroy)(ut_rkey_t *rkey);
    ucache_status_t (*get_post)(ut_req_t *req, ut_rkey_t *rkey, uint64_t raddr,
                                void *buf, size_t len);
    ucache_status_t (*rpc_post)(ut_req_t *req, ut_peer_t *peer, unsigned id,
                                const void *msg, size_t len, void *meta,
                                size_t meta_cap, void *data, size_t data_cap,
                                uint64_t timeout_ns);
    ut_path_t       (*rkey_path)(ut_rkey_t *rkey);
    ucache_status_t (*peer_create_sockaddr)(ut_ctx_t *ctx, const char *host,
                                            uint16_t port, ut_peer_t **peer_p);
    ucache_status_t (*listen)(ut_ctx_t *ctx, const char *ip, uint16_t port,
                              uint16_t *port_p);
    ucache_status_t (*wait)(ut_ctx_t *ctx, ut_req_t *reqs, size_t n,
                            uint64_t timeout_ns);
    size_t          (*wait_any)(ut_ctx_t *ctx, ut_req_t **reqs, size_t n,
                                uint64_t timeout_ns);
    unsigned        (*progress)(ut_ctx_t *ctx);
    ucache_status_t (*rpc_handler_set)(ut_ctx_t *ctx, unsigned id,
                                       ut_rpc_handler_t cb, void *arg);
    ucache_status_t (*rpc_reply)(ut_rpc_t *rpc, ucache_status_t status,
                                 const void *meta, size_t meta_len,
                                 const void *data, size_t data_len,
                                 unsigned flags);
    ucache_status_t (*rpc_defer)(ut_rpc_t *rpc, ut_rpc_t **deferred_p);
    void            (*stats)(ut_ctx_t *ctx, ut_stats_t *stats);
    const char     *(*peer_name)(ut_peer_t *peer);
    void            (*peer_transports)(ut_peer_t *peer, char *buf, size_t cap);
};

/* Base objects; a backend's objects embed these as their first member. */
struct ut_ctx {
    const ut_ops_t *ops;
};

struct ut_mem {
    ut_ctx_t *ctx;
    void     *base;   /* local address of the region */
    size_t    len;
};

struct ut_peer {
    ut_ctx_t *ctx;
};

struct ut_rkey {
    ut_ctx_t  *ctx;
    ut_peer_t *peer;
    uint64_t   base;  /* remote address of the region */
    size_t     len;
    void      *mapped; /* local pointer to the region's base, or NULL */
};

struct ut_rpc {
    ut_ctx_t *ctx;    /* the serving context; valid during the handler */
    unsigned  role;   /* ut_role_t of the request's signature (auth.h)  */
};

extern const ut_ops_t ut_ucx_ops;
extern const ut_ops_t ut_ofi_ops;

/**
 * Create a context of the backend named @p name ("ucx"); NULL means the
 * configured UCACHE_TRANSPORT.  @p params may be NULL.
 */
ucache_status_t ut_ctx_create(const char *name, const ut_params_t *params,
                              ut_ctx_t **ctx_p);

static inline void ut_ctx_destroy(ut_ctx_t *ctx)
{
    if (ctx != NULL) {
        ctx->ops->ctx_destroy(ctx);
    }
}

/** This context's worker address as a self-checking blob, owned by @p ctx. */
static inline ucache_status_t ut_address(ut_ctx_t *ctx, const void **blob_p,
                                         size_t *len_p)
{
    return ctx->ops->address(ctx, blob_p, len_p);
}

/** Allocate and register @p len bytes for remote read-only access.  The
 *  memory is not committed (nor pinned where the fabric can register on
 *  demand): the caller commits what it uses (uc_mem_commit, util/mem.h). */
static inline ucache_status_t ut_mem_export(ut_ctx_t *ctx, size_t len,
                                            ut_mem_t **mem_p)
{
    return ctx->ops->mem_export(ctx, len, mem_p);
}

/** Register caller-owned memory (destination buffers, an mmap'd file). */
static inline ucache_status_t ut_mem_register(ut_ctx_t *ctx, void *addr,
                                              size_t len, unsigned flags,
                                              ut_mem_t **mem_p)
{
    return ctx->ops->mem_register(ctx, addr, len, flags, mem_p);
}

/** Deregister (and free, if exported) a region.  Accepts NULL. */
static inline void ut_mem_destroy(ut_mem_t *mem)
{
    if (mem != NULL) {
        mem->ctx->ops->mem_destroy(mem);
    }
}

/** The region's remote key as a self-checking blob, owned by @p mem. */
static inline ucache_status_t ut_mem_pack(ut_mem_t *mem, const void **blob_p,
                                          size_t *len_p)
{
    return mem->ctx->ops->mem_pack(mem, blob_p, len_p);
}

/** A peer from its address blob (validated, copied); connects lazily. */
static inline ucache_status_t ut_peer_create(ut_ctx_t *ctx, const void *addr,
                                             size_t len, ut_peer_t **peer_p)
{
    return ctx->ops->peer_create(ctx, addr, len, peer_p);
}

/**
 * A peer known only by a listener's address (ut_listen() on its side):
 * RPCs work as with any peer (client-server mode), which is how a reader
 * fetches a node's record when all it has is a static host:port list.
 * Remote keys are for peers made from address blobs.
 */
static inline ucache_status_t ut_peer_create_sockaddr(ut_ctx_t *ctx, const char *host,
                                                      uint16_t port, ut_peer_t **peer_p)
{
    return ctx->ops->peer_create_sockaddr(ctx, host, port, peer_p);
}

/**
 * Accept connections on @p ip:@p port (port 0: any free one, written to
 * *port_p) whose requests the RPC handlers answer.  One listener per
 * context; it lives until the context is destroyed.
 */
static inline ucache_status_t ut_listen(ut_ctx_t *ctx, const char *ip, uint16_t port,
                                        uint16_t *port_p)
{
    return ctx->ops->listen(ctx, ip, port, port_p);
}

/** Close the peer; its rkeys must be destroyed first.  Accepts NULL. */
static inline void ut_peer_destroy(ut_peer_t *peer)
{
    if (peer != NULL) {
        peer->ctx->ops->peer_destroy(peer);
    }
}

static inline ut_peer_state_t ut_peer_state(ut_peer_t *peer)
{
    return peer->ctx->ops->peer_state(peer);
}

/** "host:pid" of the peer, owned by the peer. */
static inline const char *ut_peer_name(ut_peer_t *peer)
{
    return peer->ctx->ops->peer_name(peer);
}

/** Unpack a remote key blob (validated) for reads from @p peer. */
static inline ucache_status_t ut_rkey_unpack(ut_peer_t *peer, const void *blob,
                                             size_t len, ut_rkey_t **rkey_p)
{
    return peer->ctx->ops->rkey_unpack(peer, blob, len, rkey_p);
}

/** Accepts NULL; no read through @p rkey may be in flight. */
static inline void ut_rkey_destroy(ut_rkey_t *rkey)
{
    if (rkey != NULL) {
        rkey->ctx->ops->rkey_destroy(rkey);
    }
}

static inline bool ut_rkey_is_mapped(const ut_rkey_t *rkey)
{
    return rkey->mapped != NULL;
}

/**
 * Post a one-sided read of [raddr, raddr+len) of the peer's region into
 * @p buf.  A mapped region is copied at once (req completes before return).
 * @return UCACHE_OK if posted or done (see req->status); an error if the
 *         arguments are bad, the peer is failed, or the key's path is
 *         UT_PATH_AM (UCACHE_ERR_UNSUPPORTED: read by RPC instead); req->status
 *         says the same.
 */
static inline ucache_status_t ut_get_post(ut_req_t *req, ut_rkey_t *rkey,
                                          uint64_t raddr, void *buf, size_t len)
{
    return rkey->ctx->ops->get_post(req, rkey, raddr, buf, len);
}

/**
 * Post an RPC: handler @p id on @p peer gets @p msg (which must stay valid
 * until the request completes); the reply's metadata lands in @p meta and its
 * data in @p data.
 */
static inline ucache_status_t ut_rpc_post(ut_req_t *req, ut_peer_t *peer,
                                          unsigned id, const void *msg,
                                          size_t len, void *meta,
                                          size_t meta_cap, void *data,
                                          size_t data_cap)
{
    return peer->ctx->ops->rpc_post(req, peer, id, msg, len, meta, meta_cap,
                                    data, data_cap, 0);
}

/** ut_rpc_post() with its own deadline (a fill may outlast UCACHE_TIMEOUT). */
static inline ucache_status_t ut_rpc_post_timeout(ut_req_t *req, ut_peer_t *peer,
                                                  unsigned id, const void *msg,
                                                  size_t len, void *meta,
                                                  size_t meta_cap, void *data,
                                                  size_t data_cap,
                                                  uint64_t timeout_ns)
{
    return peer->ctx->ops->rpc_post(req, peer, id, msg, len, meta, meta_cap,
                                    data, data_cap, timeout_ns);
}

/**
 * The primitive ut_get_post() uses for reads through @p rkey (UT_PATH_MAPPED
 * or UT_PATH_GET), or UT_PATH_AM where there is none and the caller reads
 * by RPC; decided once per key.  Connects the peer if it must find out.
 * UT_PATH_NONE if the peer cannot be reached.
 */
static inline ut_path_t ut_rkey_path(ut_rkey_t *rkey)
{
    return rkey->ctx->ops->rkey_path(rkey);
}

/**
 * Progress until every request in @p reqs completes or @p timeout_ns passes
 * (0: only check).  Requests past their own deadline fail their peer and
 * complete with UCACHE_ERR_TIMEOUT.
 * @return UCACHE_OK if all completed successfully, the first failed request's
 *         status if any failed, UCACHE_INPROGRESS if some are still pending.
 */
static inline ucache_status_t ut_wait(ut_ctx_t *ctx, ut_req_t *reqs, size_t n,
                                      uint64_t timeout_ns)
{
    return ctx->ops->wait(ctx, reqs, n, timeout_ns);
}

/**
 * Progress until one request of @p reqs completes or @p timeout_ns passes
 * (0: only check).  The completed ones move to the front of @p reqs, in
 * order; their results may then be read, and theirs only.
 * @return how many completed.
 */
static inline size_t ut_wait_any(ut_ctx_t *ctx, ut_req_t **reqs, size_t n,
                                 uint64_t timeout_ns)
{
    return ctx->ops->wait_any(ctx, reqs, n, timeout_ns);
}

/** Progress the context once (polling mode). @return events handled. */
static inline unsigned ut_progress(ut_ctx_t *ctx)
{
    return ctx->ops->progress(ctx);
}

static inline ucache_status_t ut_rpc_handler_set(ut_ctx_t *ctx, unsigned id,
                                                 ut_rpc_handler_t cb, void *arg)
{
    return ctx->ops->rpc_handler_set(ctx, id, cb, arg);
}

/** Answer @p rpc; @p meta (<= UT_RPC_META_MAX) and @p data are copied unless
 *  UT_REPLY_DATA_STABLE says the data outlives the send. */
static inline ucache_status_t ut_rpc_reply(ut_rpc_t *rpc, ucache_status_t status,
                                           const void *meta, size_t meta_len,
                                           const void *data, size_t data_len,
                                           unsigned flags)
{
    return rpc->ctx->ops->rpc_reply(rpc, status, meta, meta_len, data,
                                    data_len, flags);
}

/**
 * Inside a handler: keep @p rpc for a reply later, from any thread.  The
 * handle in *deferred_p must be answered with ut_rpc_reply() exactly once
 * (which frees it), before the context is destroyed.
 */
static inline ucache_status_t ut_rpc_defer(ut_rpc_t *rpc, ut_rpc_t **deferred_p)
{
    return rpc->ctx->ops->rpc_defer(rpc, deferred_p);
}

static inline void ut_stats(ut_ctx_t *ctx, ut_stats_t *stats)
{
    ctx->ops->stats(ctx, stats);
}

/** The transports the peer's endpoint uses ("tcp/lo,..."; "" until known). */
static inline void ut_peer_transports(ut_peer_t *peer, char *buf, size_t cap)
{
    peer->ctx->ops->peer_transports(peer, buf, cap);
}

const char *ut_path_name(ut_path_t path);

/*
 * Keepalives (both backends, one round per UCACHE_TIMEOUT / 2 while a long
 * request waits): whether @p req, a request to @p peer still owed its reply
 * (@p owed), is one to ask about at @p now - it has waited half of
 * UCACHE_TIMEOUT (@p timeout_ns) and its own deadline is longer than that.
 */
static inline bool ut_ka_due(const ut_req_t *req, const ut_peer_t *peer, bool owed,
                             uint64_t now, uint64_t timeout_ns)
{
    return owed && (req->priv.peer == peer) && (now - req->priv.posted >= timeout_ns / 2) &&
           (req->priv.deadline > req->priv.posted + timeout_ns);
}

/** A started keepalive request @p ka: no data; its answer into @p rep. */
static inline void ut_ka_answer_into(ut_req_t *ka, void *rep, size_t rep_len)
{
    ka->priv.buf      = NULL;
    ka->priv.cap      = 0;
    ka->priv.meta     = rep;
    ka->priv.meta_cap = rep_len;
}

/** An RPC's arguments as both backends' rpc_post take them: a known id, a
 *  message within UCACHE_RPC_MAX (@p rpc_max), buffers where sizes say so.
 *  UCACHE_OK with @p req's buffers set; else UCACHE_ERR_INVALID in
 *  req->status, said at debug level (the caller counts bad_input). */
ucache_status_t ut_rpc_args_take(ut_req_t *req, size_t rpc_max, unsigned id, const void *msg,
                                 size_t len, void *meta, size_t meta_cap, void *data,
                                 size_t data_cap);

/** What a backend's ctx_create takes from @p params (may be NULL): its
 *  bits checked, the configuration given or the environment's, the
 *  progress mode (poll by default) and whether it serves. */
ucache_status_t ut_params_take(const ut_params_t *params, ut_config_t *cfg,
                               uc_progress_mode_t *progress, bool *serve);

/** @p host:@p port (family AF_UNSPEC, AF_INET or AF_INET6) resolved into
 *  *sa; UCACHE_ERR_INVALID (logged) if it does not resolve. */
ucache_status_t ut_sockaddr_resolve(const char *host, uint16_t port, int family,
                                    struct sockaddr_storage *sa, socklen_t *len_p);

/** 64 random bits (getrandom; unique if not secret without it): uuids,
 *  cookies, request tags of the backends. */
uint64_t ut_random64(void);

/** ucache_devices_query() (fabric/api.c; devices.c): this machine's RDMA
 *  devices through rdma-core and the UCX transports usable here. */
ucache_status_t ut_devices_query(ucache_devices_t *devs);

/** The libfabric providers the ofi backend could use here (ofi.c): into
 *  devs->ofi; none (nofi 0) if libfabric lists none. */
void ut_ofi_devices(ucache_devices_t *devs);

#endif
