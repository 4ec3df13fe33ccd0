/*
 * ofi_int.h - what the files of the libfabric backend share (transport/
 * ofi*.c; its test suite includes it to reach the wire formats): the
 * context, endpoint, peer, key, slot and reply structs and the functions
 * one file calls in another.  Other layers see transport.h only.  Lock
 * rule: do_* and ut_ofi_do_* assume ctx->lock.
 */
#ifndef UT_OFI_INT_H
#define UT_OFI_INT_H

#include "transport/auth.h"
#include "transport/blob.h"
#include "transport/lru.h"
#include "transport/wire.h"
#include "transport.h"
#include "util/log.h"
#include "util/time.h"

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <rdma/fi_tagged.h>

#include <netinet/in.h>
#include <sys/uio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define UT_OFI_API          FI_VERSION(1, 9)
#define UT_OFI_CLIENT_BUCKETS 1024    /* requesters a node knows, by uuid      */
#define UT_OFI_CLIENTS_MAX  65536     /* past it, one owed nothing is forgotten */
#define UT_OFI_MAX_REGIONS  4096
#define UT_OFI_RBUF_MSGS    16        /* requests of UCACHE_RPC_MAX one multi-
                                         receive buffer holds               */
#define UT_OFI_REP_LEN      (sizeof(ut_am_rep_hdr) + UT_RPC_META_MAX)
#define UT_OFI_TAG_REPLY    (1ull << 62) /* a reply's tag: this | its id's
                                            low 62 bits                       */
#define UT_OFI_TAG_MASK     (UT_OFI_TAG_REPLY - 1)
#define UT_OFI_DIRECT_MAX   8192      /* reply data up to this lands in the
                                         caller's buffer on any provider: it
                                         comes whole, in one eager message */

/* ut_req_t.priv.pending bits: the request completes when all are clear. */
#define UT_OFI_PEND_GET     (1u << 0)  /* an fi_read into the caller's buffer */
#define UT_OFI_PEND_SEND    (1u << 1)  /* the request message not yet sent   */
#define UT_OFI_PEND_REPLY   (1u << 2)  /* its tagged reply receive is posted */

/* ut_req_t.priv.flags */
#define UT_OFI_REQF_SLOT    (1u << 0)  /* holds a slot                        */
#define UT_OFI_REQF_CANCEL  (1u << 1)  /* its reply receive is being cancelled */
#define UT_OFI_REQF_ABORTED (1u << 2)  /* given up (deadline, failed peer)    */
#define UT_OFI_REQF_UNOWED  (1u << 3)  /* a keepalive answer said its peer no
                                          longer owes it a reply            */

/* What a completion is for (ut_ofi_op_t.kind). */
enum {
    UT_OFI_OP_FOREIGN = 0, /* posted by someone else (a test's raw operation):
                              its error is left in its slot field, with
                              UT_OFI_OP_DONE                              */
    UT_OFI_OP_GET = 1,   /* a read: slot's get                              */
    UT_OFI_OP_SEND,      /* a request message: slot's send                  */
    UT_OFI_OP_RECV,      /* a reply (tagged receive): slot's recv           */
    UT_OFI_OP_RBUF,      /* requests to us: a multi-receive buffer          */
    UT_OFI_OP_REPLY      /* our reply to a requester                        */
};

#define UT_OFI_OP_DONE      (1u << 31)

/* A libfabric operation's context: fi_context2 first (FI_CONTEXT2 mode). */
typedef struct ut_ofi_op {
    struct fi_context2 fc;
    uint8_t  kind;
    uint32_t slot;
} ut_ofi_op_t;

typedef struct ut_ofi_ctx  ut_ofi_ctx_t;
typedef struct ut_ofi_peer ut_ofi_peer_t;
typedef struct ut_ofi_ep   ut_ofi_ep_t;

/* A multi-receive buffer of requests (two per endpoint). */
typedef struct ut_ofi_rbuf {
    ut_ofi_op_t    op;
    ut_ofi_ep_t   *ep;
    uint8_t       *buf;
    size_t         size;
    struct fid_mr *mr;      /* FI_MR_LOCAL */
    bool           posted;
} ut_ofi_rbuf_t;

/* An endpoint: the context's own, and a listener's (ut_listen). */
struct ut_ofi_ep {
    struct fid_ep *ep;
    ut_ofi_rbuf_t  rbuf[2];
    ut_ofi_name    name;
};

/* One outstanding request's resources, by slot.  A slot is freed once its
 * request completed and libfabric handed back every operation on it. */
typedef struct ut_ofi_slot {
    ut_ofi_op_t    get, send, recv;
    ut_req_t      *req;       /* NULL once detached (its ops still out)  */
    uint64_t       gen;       /* the random high bits of its id          */
    unsigned       ops;       /* operations out: 1u << UT_OFI_OP_*       */
    uint8_t        unsent;    /* UT_OFI_OP_SEND/GET to post again (EAGAIN) */
    uint32_t       unsent_next;
    ut_ofi_ep_t   *ep;        /* where it goes out, and to whom          */
    fi_addr_t      fa;
    void          *copy;      /* the request message, ours: its send may
                                 outlive the request (a frozen peer)     */
    size_t         len;
    void          *target;    /* a read: into this (the caller's buffer,
                                 or the bounce) ...                      */
    size_t         tlen;
    void          *bounce;    /* ... ours, copied out on completion       */
    uint64_t       raddr, key;
    struct fid_mr *mr[2];     /* FI_MR_LOCAL: this request's buffers     */
    uint8_t        rep[UT_OFI_REP_LEN]; /* a reply's header and metadata */
} ut_ofi_slot_t;

typedef struct ut_ofi_mem {
    ut_mem_t       super;
    struct fid_mr *mr;
    bool           exported;
    bool           mapped;    /* we mapped base, and ro (exported) */
    int            memfd;     /* exported: the sealed memfd, else -1   */
    void          *ro;        /* ... mapped read-only: what libfabric
                                 registers and peers' keys address     */
    void          *blob;
    size_t         blob_len;
    uint64_t       cookie;
    uint32_t       region_id;
    unsigned       sends;     /* replies in flight that point into it */
} ut_ofi_mem_t;

typedef struct ut_ofi_rkey {
    ut_rkey_t      super;
    uint64_t       key;
    bool           virt;
    uint64_t       cookie;
    uint32_t       region_id;
} ut_ofi_rkey_t;

struct ut_ofi_peer {
    ut_peer_t        super;
    ut_ofi_name      name;       /* its endpoint (len 0: a sockaddr peer) */
    struct sockaddr_storage sa;  /* ... a listener's address             */
    socklen_t        salen;
    uint64_t         uuid;       /* 0 until known (a sockaddr peer)     */
    char             pname[UT_HOST_MAX + 16];
    fi_addr_t        fa;         /* FI_ADDR_NOTAVAIL unless in the AV   */
    _Atomic int      state;      /* ut_peer_state_t */
    ucache_status_t  fail_status;
    _Atomic uint64_t failed_at;
    uint64_t         retry_ns;
    ut_req_t         hs;         /* CONNECTING: the handshake's PING    */
    uint64_t         hs_uuid;    /* ... its answer                       */
    unsigned         inflight;   /* slots held for requests to it       */
    ut_req_t         ka;         /* the KEEPALIVE out while a long request
                                    waits (ofi_req.c)                    */
    ut_ka_rep        ka_rep;     /* ... its answer                       */
    uint64_t         ka_ids[UT_KA_IDS]; /* ... the requests it asked about */
    unsigned         ka_n;       /* ... how many (0: answer processed)  */
    unsigned         nrkeys;
    pid_t            pid;        /* its process (from its address blob) */
    bool             pid_seen;   /* ... visible to us when it answered (a
                                    same-host provider: its exit is seen) */
    uint64_t         alive_at;   /* ... last looked for                  */
    ut_lru_link_t    lru;        /* in ctx->lru while counted open      */
    bool             open;       /* ... (CONNECTING or CONNECTED)       */
    ut_ofi_peer_t   *all_next;
    /* a requester of ours (learnt from its PING) */
    bool             client;
    unsigned         owed;       /* deferred replies still due          */
    ut_ofi_peer_t   *cnext;
};

typedef struct ut_ofi_rpc {
    ut_rpc_t        super;
    ut_ofi_ep_t    *ep;          /* the endpoint the request came on     */
    ut_ofi_peer_t  *client;      /* the requester                        */
    uint64_t        from;
    uint64_t        id;
    uint64_t        cap;         /* the requester's room for the reply's data */
    bool            replied;
    bool            deferred;
    struct ut_ofi_rpc *dnext, *dprev;
} ut_ofi_rpc_t;

/* A reply in flight: header, metadata and (if copied) data kept alive. */
typedef struct ut_ofi_reply {
    ut_ofi_op_t          op;
    uint8_t              head[UT_OFI_REP_LEN];
    void                *copy;
    ut_ofi_mem_t        *mem;    /* the region its data points into, or NULL */
    struct fid_mr       *mr[2];  /* FI_MR_LOCAL */
    ut_ofi_ep_t         *ep;     /* what it is sent on, to whom, how */
    fi_addr_t            fa;
    uint64_t             tag;
    struct iovec         iov[2];
    void                *desc[2];
    unsigned             niov;
    bool                 unsent; /* waits to be posted again (EAGAIN) */
    bool                 auth_refused; /* to ctx->auth_refused         */
    struct ut_ofi_reply *next, *prev;
} ut_ofi_reply_t;

typedef struct ut_ofi_handler {
    ut_rpc_handler_t cb;
    void            *arg;
} ut_ofi_handler_t;

struct ut_ofi_ctx {
    ut_ctx_t           super;
    ut_config_t        cfg;
    uc_progress_mode_t progress_mode;
    pthread_mutex_t    lock;
    ut_auth_t         *auth;
    bool               serve;
    uint64_t           uuid;
    char               host[UT_HOST_MAX];

    struct fi_info    *info;
    struct fid_fabric *fabric;
    struct fid_domain *domain;
    struct fid_av     *av;
    struct fid_cq     *cq;
    ut_ofi_ep_t        main;
    ut_ofi_ep_t       *listener;   /* ut_listen's, or NULL */
    bool               mr_local;   /* FI_MR_LOCAL: our buffers registered */
    bool               mr_virt;    /* FI_MR_VIRT_ADDR */
    bool               mr_prov_key;
    bool               one_sided;  /* reads need nothing of the target */
    bool               conns;      /* a connection per peer: UCACHE_MAX_EPS */
    bool               local;      /* same-host peers only (shm)          */
    bool               directed;   /* FI_DIRECTED_RECV */
    int                waitfd;     /* the CQ's wait fd (FI_WAIT_FD), or -1 */
    size_t             rbuf_min;   /* a request's largest message */

    void              *addr_blob;
    size_t             addr_blob_len;

    ut_ofi_mem_t      *regions[UT_OFI_MAX_REGIONS];
    unsigned           region_top;
    uint64_t           next_key;

    ut_ofi_peer_t     *peers;      /* every peer we made (all_next) */
    ut_lru_t           lru;        /* open peers, MRU first: UCACHE_MAX_EPS */
    unsigned           nopen;
    ut_ofi_peer_t     *clients[UT_OFI_CLIENT_BUCKETS];
    unsigned           nclients;

    ut_ofi_slot_t     *slots;
    uint32_t          *free_slots;
    uint32_t           nfree;
    uint32_t           unsent_head, unsent_tail; /* slots to post again */
    void              *bounces[64];  /* bounce buffers kept for reuse */
    size_t             bounce_cap[64];
    unsigned           nbounces;
    unsigned           replies_unsent;
    uint64_t           checked_at;  /* deadlines last looked at */
    unsigned           orphans;     /* errors libfabric tied to no operation */
    fi_addr_t          auth_refused; /* a refused requester, answered once:
                                        out of the AV when that is sent */
    uint64_t           rnd[64];
    unsigned           nrnd;

    ut_ofi_handler_t   handlers[UT_RPC_MAX_ID + 1];
    ut_ofi_reply_t    *reply_free, *reply_out;
    unsigned           deferred;
    ut_ofi_rpc_t      *dlist;

    pthread_cond_t     progressed;
    pthread_cond_t     kick;       /* a request posted: the napping thread wakes */
    bool               napping;    /* ... it waits on kick (no wait fd)   */
    bool               leader;
    pthread_t          thread;
    bool               thread_running;
    _Atomic bool       thread_stop;

    struct {
        _Atomic uint64_t read_bytes, get_reads, am_reads;
        _Atomic uint64_t rpcs, rpcs_served, served_bytes;
        _Atomic uint64_t timeouts, peer_failures, bad_input, late_replies;
        _Atomic uint64_t replies_dropped, connects, eps_evicted;
        _Atomic uint64_t keepalives, replies_lost;
    } st;
};

#define UT_OFI_STAT_ADD(_ctx, _f, _v) \
    atomic_fetch_add_explicit(&(_ctx)->st._f, (_v), memory_order_relaxed)

static inline ut_ofi_ctx_t *ut_ofi_ctx_of(ut_ctx_t *ctx)
{
    return (ut_ofi_ctx_t *)ctx;
}

/* libfabric's own exported functions, loaded with it (ofi_lib.c) */
typedef struct ut_ofi_lib {
    int             (*getinfo)(uint32_t version, const char *node, const char *service,
                               uint64_t flags, const struct fi_info *hints,
                               struct fi_info **info);
    void            (*freeinfo)(struct fi_info *info);
    struct fi_info *(*dupinfo)(const struct fi_info *info);
    int             (*fabric)(struct fi_fabric_attr *attr, struct fid_fabric **fabric,
                              void *context);
    const char     *(*strerror)(int errnum);
    uint32_t        (*version)(void);
} ut_ofi_lib_t;

extern ut_ofi_lib_t ut_ofi_lib;

/** Load libfabric once (the program's signal handlers kept): UCACHE_OK, or
 *  UCACHE_ERR_UNSUPPORTED where it is not installed or too old. */
ucache_status_t ut_ofi_lib_load(void);

/** fi_strerror(), through the loaded library. */
const char *ut_ofi_strerror(int err);

/** A libfabric error (a negative FI_E* or a CQ entry's positive err) as ours. */
ucache_status_t ut_ofi_status(int err);

/* ------------------------------------------------------------------------ */
/* Across the backend's files                                                */
/* ------------------------------------------------------------------------ */

/* the context (ofi.c) */
bool ut_ofi_sockaddr_fmt(uint32_t fmt); /* addresses are host:port */
ucache_status_t ut_ofi_do_ep_open(ut_ofi_ctx_t *ctx, ut_ofi_ep_t *ep, struct fi_info *info);
void ut_ofi_do_ep_close(ut_ofi_ctx_t *ctx, ut_ofi_ep_t *ep);
ucache_status_t ut_ofi_do_local_mr(ut_ofi_ctx_t *ctx, const void *buf, size_t len,
                                   uint64_t access, struct fid_mr **mr_p, void **desc_p);

/* the serving side (ofi_serve.c) */
void ut_ofi_do_request_in(ut_ofi_ctx_t *ctx, ut_ofi_ep_t *ep, const uint8_t *data, size_t len);
void ut_ofi_do_reply_done(ut_ofi_ctx_t *ctx, ut_ofi_reply_t *r, int err);
int ut_ofi_do_reply_post(ut_ofi_ctx_t *ctx, ut_ofi_reply_t *r);

/* requests, completions, deadlines (ofi_req.c); waiting (ofi_wait.c) */
ucache_status_t ut_ofi_do_rpc_send(ut_ofi_ctx_t *ctx, ut_req_t *req, ut_ofi_peer_t *peer,
                                   uint16_t op, const void *msg, size_t len);
void ut_ofi_do_req_set_status(ut_req_t *req, ucache_status_t status);
void ut_ofi_do_req_start(ut_req_t *req, ut_peer_t *peer, ut_path_t path);
void ut_ofi_do_peer_reqs_fail(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *peer, ucache_status_t status);
void ut_ofi_do_peer_reqs_resume(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *peer);
void ut_ofi_do_rbuf_post(ut_ofi_ctx_t *ctx, ut_ofi_rbuf_t *rb);
unsigned ut_ofi_do_progress(ut_ofi_ctx_t *ctx);
ucache_status_t ut_ofi_get_post(ut_req_t *req, ut_rkey_t *rkey, uint64_t raddr, void *buf,
                                size_t len);
ucache_status_t ut_ofi_rpc_post(ut_req_t *req, ut_peer_t *p, unsigned id, const void *msg,
                                size_t len, void *meta, size_t meta_cap, void *data,
                                size_t data_cap, uint64_t timeout_ns);
ut_path_t ut_ofi_rkey_path(ut_rkey_t *rkey);
ucache_status_t ut_ofi_rpc_reply(ut_rpc_t *r, ucache_status_t status, const void *meta,
                                 size_t meta_len, const void *data, size_t data_len,
                                 unsigned flags);
ucache_status_t ut_ofi_rpc_defer(ut_rpc_t *r, ut_rpc_t **deferred_p);
ucache_status_t ut_ofi_rpc_handler_set(ut_ctx_t *c, unsigned id, ut_rpc_handler_t cb,
                                       void *arg);
ucache_status_t ut_ofi_wait(ut_ctx_t *c, ut_req_t *reqs, size_t n, uint64_t timeout_ns);
size_t ut_ofi_wait_any(ut_ctx_t *c, ut_req_t **reqs, size_t n, uint64_t timeout_ns);
unsigned ut_ofi_progress(ut_ctx_t *c);
ucache_status_t ut_ofi_thread_start(ut_ofi_ctx_t *ctx);
void ut_ofi_thread_stop(ut_ofi_ctx_t *ctx);
void ut_ofi_do_replies_free(ut_ofi_ctx_t *ctx);
void ut_ofi_do_replies_detach(ut_ofi_ctx_t *ctx, const ut_ofi_mem_t *mem);
void ut_ofi_do_bounces_free(ut_ofi_ctx_t *ctx);

/* peers, requesters, the listener (ofi_peer.c) */
ucache_status_t ut_ofi_do_peer_ensure(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *peer);
void ut_ofi_do_peer_fail(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *peer, ucache_status_t status);
void ut_ofi_do_handshake_done(ut_ofi_ctx_t *ctx, ut_ofi_peer_t *peer);
/* Whether a same-host peer's process is known to have exited. */
bool ut_ofi_peer_gone(const ut_ofi_ctx_t *ctx, const ut_ofi_peer_t *peer);
ut_ofi_peer_t *ut_ofi_do_client_find(ut_ofi_ctx_t *ctx, uint64_t uuid);
ucache_status_t ut_ofi_do_addr_take(ut_ofi_ctx_t *ctx, const void *blob, size_t len,
                                    ut_addr_body *body, ut_ofi_name *name);
ut_ofi_peer_t *ut_ofi_do_client_learn(ut_ofi_ctx_t *ctx, uint64_t uuid, const void *blob,
                                      size_t len);
void ut_ofi_do_clients_free(ut_ofi_ctx_t *ctx);
ucache_status_t ut_ofi_peer_create(ut_ctx_t *c, const void *blob, size_t len,
                                   ut_peer_t **peer_p);
ucache_status_t ut_ofi_peer_create_sockaddr(ut_ctx_t *c, const char *host, uint16_t port,
                                            ut_peer_t **peer_p);
void ut_ofi_peer_destroy(ut_peer_t *p);
ut_peer_state_t ut_ofi_peer_state(ut_peer_t *p);
const char *ut_ofi_peer_name(ut_peer_t *p);
void ut_ofi_peer_transports(ut_peer_t *p, char *buf, size_t cap);
ucache_status_t ut_ofi_listen(ut_ctx_t *c, const char *ip, uint16_t port, uint16_t *port_p);

/* regions and remote keys (ofi_mem.c) */
ucache_status_t ut_ofi_mem_export(ut_ctx_t *c, size_t len, ut_mem_t **mem_p);
ucache_status_t ut_ofi_mem_register(ut_ctx_t *c, void *addr, size_t len, unsigned flags,
                                    ut_mem_t **mem_p);
void ut_ofi_mem_destroy(ut_mem_t *m);
ut_ofi_mem_t *ut_ofi_do_region_of(ut_ofi_ctx_t *ctx, const void *data, size_t len);
ucache_status_t ut_ofi_mem_pack(ut_mem_t *m, const void **blob_p, size_t *len_p);
ucache_status_t ut_ofi_rkey_unpack(ut_peer_t *p, const void *blob, size_t len,
                                   ut_rkey_t **rkey_p);
void ut_ofi_rkey_destroy(ut_rkey_t *rkey);

#endif
