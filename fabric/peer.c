/*
 * peer.c - what a reader knows of each owner (uf_peer_t): set up on first
 * use (connected, its store key unpacked, its layout learnt), kept across
 * views while the node keeps its incarnation, skipped while suspect.
 * Peers are created under ctx->lock and published with release stores;
 * a peer's setup runs under its own lock, never the context's.
 */
#include "fabric/fabric.h"
#include "util/log.h"
#include "util/time.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

bool uf_peer_is_suspect(const uf_peer_t *peer, uint64_t now)
{
    return now < atomic_load_explicit(&peer->suspect_until, memory_order_relaxed);
}

/*
 * A failed owner is skipped for a back-off that doubles with every failure
 * in a row (PEER_RETRY, then 2x, 4x ... up to PEER_RETRY_MAX) and starts
 * over after a success, so a long-lived reader pays a dead owner's
 * deadline a few times, not once per PEER_RETRY.  (Its transport peer
 * backs off the same way, and retries it by a probe nobody waits for.)
 *
 * Two machines, one per layer, side by side: the fabric's suspicion
 * (uf_peer_t.suspect_until: which owner a read tries) and the transport's
 * peer state (transport/ucx_peer.c: whether an operation may be posted).
 *
 *   fabric (per reader)                  transport (per context)
 *   -------------------                  -----------------------
 *   GOOD --uf_owners_try(): an           CONNECTED --deadline, error callback,
 *     ^    attempt failed (PEER,           ^         unanswered keepalive-->
 *     |    TIMEOUT, CORRUPT, ...)          |         FAILED (ops fail fast
 *     |    or uf_view_peer(): setup        |         with fail_status)
 *     |    failed                          |           |
 *     |         v                          |           | retry_ns passed:
 *     |      SUSPECT (now <                |           v a probe, unwaited
 *     |      suspect_until: reads skip     +---- CONNECTING <-------+
 *     |      it, uf_view_peer() NULL)           PING answered
 *     |         |
 *     +---------+ suspect_until passed: the next read tries it again
 *                 (backoff_ns reset by uf_peer_ok() on a success)
 *
 * They are independent on purpose: a SUSPECT owner whose transport peer is
 * CONNECTED again is still skipped until its back-off ends (a flapping
 * owner costs one deadline per back-off); a GOOD owner whose transport peer
 * is FAILED costs a read nothing (the post fails at once, the owner turns
 * SUSPECT).  Busy (BUSY, AGAIN), stale and out-of-memory answers come from
 * a live owner and do not make it suspect.
 */
void uf_peer_suspect(struct ucache_context *ctx, uf_peer_t *peer, const char *why)
{
    uint64_t now = uc_time_ns(), b;

    if (uf_peer_is_suspect(peer, now)) {
        return;
    }
    b = atomic_load(&peer->backoff_ns);
    b = (b == 0) ? ctx->cfg.peer_retry_ns :
        (2 * b < ctx->cfg.peer_retry_max_ns) ? 2 * b : ctx->cfg.peer_retry_max_ns;
    atomic_store(&peer->backoff_ns, b);
    atomic_store(&peer->suspect_until, now + b);
    if (peer->hello) {
        atomic_store(&peer->recheck, 1);
    }
    UC_WARN("owner %016" PRIx64 " is suspect (%s); its reads go to the next "
            "owner or the origin for %llu ms", peer->id, why,
            (unsigned long long)(b / UC_NSEC_PER_MSEC));
    atomic_fetch_add(&ctx->st.failovers, 1);
}

void uf_peer_ok(uf_peer_t *peer)
{
    if (atomic_load_explicit(&peer->backoff_ns, memory_order_relaxed) != 0) {
        atomic_store(&peer->backoff_ns, 0);
    }
}

static ucache_status_t uf_peer_setup_blobs(struct ucache_context *ctx, uf_peer_t *p,
                                           const uf_member_t *m);

/* A record's incarnation: its address and key, hashed. */
static uint64_t uf_member_inc(const uf_member_t *r)
{
    return XXH64(r->rkey, r->rkey_len, XXH64(r->addr, r->addr_len, 0x55434950ull));
}

/* A node known only as host:port (file:, etcd: members): ask its listener
 * for its record (worker address, store key) over a connection made for
 * that.  Posted here; @p h holds everything until uf_hello_end(). */
static ucache_status_t uf_hello_post(struct ucache_context *ctx, const char *host,
                                     uint16_t port, uf_hello_t *h)
{
    ucache_status_t status;

    h->msg  = (uf_hello_req_t){ UF_PROTO_MAGIC, UF_PROTO_VERSION, 0 };
    h->boot = NULL;
    h->buf  = malloc(UF_HELLO_CAP);
    if (h->buf == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    status = ut_peer_create_sockaddr(ctx->transport, host, port, &h->boot);
    if (status == UCACHE_OK) {
        status = ut_rpc_post(&h->req, h->boot, UF_RPC_HELLO, &h->msg, sizeof(h->msg), NULL,
                             0, h->buf, UF_HELLO_CAP);
        if (status != UCACHE_OK) {
            uf_wait_all(ctx, &h->req, 1);   /* (ended already: it failed) */
            ut_peer_destroy(h->boot);
        }
    }
    if (status != UCACHE_OK) {
        free(h->buf);
    }
    return status;
}

/* The answer to a HELLO posted: its record in @p rec, the connection
 * closed.  @p wait: until the request ends (it has a deadline), else
 * UCACHE_INPROGRESS at once while it has not. */
static ucache_status_t uf_hello_end(struct ucache_context *ctx, const char *host,
                                    uint16_t port, uf_hello_t *h, bool wait, uf_member_t *rec)
{
    ucache_status_t status;

    if (wait) {
        status = uf_wait_all(ctx, &h->req, 1);
    } else if ((status = ut_wait(ctx->transport, &h->req, 1, 0)) == UCACHE_INPROGRESS) {
        return status;
    }
    if (status == UCACHE_ERR_PROTOCOL) {
        UC_ERROR("%s:%u speaks another protocol version than this reader's (%u): "
                 "a node of another release, not used until one of you is upgraded",
                 host, port, UF_PROTO_VERSION);
    }
    if (status == UCACHE_OK) {
        status = uf_member_decode(h->buf, h->req.length, rec);
        if (status != UCACHE_OK) {
            atomic_fetch_add(&ctx->st.bad_replies, 1);
            UC_WARN("%s:%u answered HELLO with a malformed record", host, port);
        }
    }
    ut_peer_destroy(h->boot);
    free(h->buf);
    return status;
}

static ucache_status_t uf_peer_hello(struct ucache_context *ctx, const char *host,
                                     uint16_t port, uf_member_t *rec)
{
    ucache_status_t status;
    uf_hello_t h;

    status = uf_hello_post(ctx, host, port, &h);
    return (status == UCACHE_OK) ? uf_hello_end(ctx, host, port, &h, true, rec) : status;
}

/* Connect, unpack the store's key, learn its layout (ctx->lock not held). */
static ucache_status_t uf_peer_setup(struct ucache_context *ctx, uf_peer_t *p,
                                     const uf_view_t *v, uint32_t idx)
{
    const uf_member_t *m = (v->recs != NULL) ? &v->recs[idx] : NULL;
    uf_member_t rec = { 0 };
    ucache_status_t status;

    if (p->self) {
        p->path   = UT_PATH_MAPPED;
        p->mapped = us_store_base(uf_node_store(ctx->node));
        p->layout = *us_store_layout(uf_node_store(ctx->node));
        return UCACHE_OK;
    }
    if ((m == NULL) || (m->addr_len == 0)) {
        if (v->nodes[idx].port == 0) {
            return UCACHE_ERR_PEER; /* nothing to reach it by */
        }
        status = uf_peer_hello(ctx, v->strings + v->nodes[idx].host,
                               v->nodes[idx].port, &rec);
        if (status != UCACHE_OK) {
            return status;
        }
        m            = &rec;
        p->hello     = true;
        p->hello_inc = uf_member_inc(&rec);
    }
    status = uf_peer_setup_blobs(ctx, p, m);
    uf_member_clear(&rec);
    return status;
}

/* The rest of the setup, from a member with address and key blobs. */
static ucache_status_t uf_peer_setup_blobs(struct ucache_context *ctx, uf_peer_t *p,
                                           const uf_member_t *m)
{
    _Alignas(64) char super[US_SUPER_SIZE];
    ucache_status_t status;
    ut_req_t req;

    status = ut_peer_create(ctx->transport, m->addr, m->addr_len, &p->tp);
    if (status != UCACHE_OK) {
        return status;
    }
    status = ut_rkey_unpack(p->tp, m->rkey, m->rkey_len, &p->rkey);
    if (status != UCACHE_OK) {
        goto err;
    }
    p->path = ut_rkey_path(p->rkey);
    if (p->path == UT_PATH_NONE) {
        status = UCACHE_ERR_PEER;
        goto err;
    }
    if (p->path == UT_PATH_AM) {
        return UCACHE_OK; /* the owner looks chunks up for us */
    }
    if (p->path == UT_PATH_MAPPED) {
        p->mapped = p->rkey->mapped;
        status = us_layout_parse(p->mapped, US_SUPER_SIZE, &p->layout);
    } else {
        ut_get_post(&req, p->rkey, p->rkey->base, super, sizeof(super));
        status = uf_wait_all(ctx, &req, 1); /* req and super are on this stack */
        if (status == UCACHE_OK) {
            status = us_layout_parse(super, sizeof(super), &p->layout);
        }
    }
    if ((status == UCACHE_OK) && (p->layout.region_len > p->rkey->len)) {
        UC_WARN("node %016llx: its superblock claims %llu bytes, its key %zu",
                (unsigned long long)p->id, (unsigned long long)p->layout.region_len,
                p->rkey->len);
        status = UCACHE_ERR_CORRUPT;    /* reads would run past the region */
    }
    if (status == UCACHE_OK) {
        return UCACHE_OK;
    }
err:
    ut_rkey_destroy(p->rkey);
    ut_peer_destroy(p->tp);
    p->rkey = NULL;
    p->tp   = NULL;
    return status;
}

/* A node's incarnation in view @p v: what it published (dir:, mpi), hashed;
 * 0 if the view has only its host:port (file:). */
static uint64_t uf_peer_inc(const uf_view_t *v, uint32_t idx)
{
    return (v->recs == NULL) ? 0 : uf_member_inc(&v->recs[idx]);
}

/* ctx->lock held: a peer record for node @p id, linked at its bucket's
 * head; NULL without memory. */
static uf_peer_t *uf_peer_new(struct ucache_context *ctx, uint64_t id, uint64_t inc)
{
    unsigned b = (unsigned)(id % UF_PEER_BUCKETS);
    uf_peer_t *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        return NULL;
    }
    p->id   = id;
    p->inc  = inc;
    p->self = ctx->serve && (id == ctx->self.id);
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->touch_lock, NULL);
    p->next = atomic_load(&ctx->peers[b]);
    atomic_store_explicit(&ctx->peers[b], p, memory_order_release);
    return p;
}

/*
 * A peer set up through its listener (HELLO) failed: before it is used
 * again, its listener is asked once more.  The same address and key: the
 * same process, which its transport peer reconnects to.  Others: the node
 * was restarted under its identity (file: and etcd: name a node by its
 * listener), and a new peer is set up from them; the old one is done
 * (`newer`), never used again - without this a reader used the dead
 * process's address until it finalized, and read that node's chunks
 * through the next owner or the origin (test_etcd.sh).  The HELLO is
 * posted, not waited for: reads skip the node until it is answered (or
 * its deadline passes: a frozen or cut-off node), the first caller after
 * that takes the answer.  NULL: skip the node for now.
 */
static uf_peer_t *uf_peer_recheck(struct ucache_context *ctx, uf_view_t *v, uint32_t idx,
                                  uf_peer_t *p)
{
    const char *host = v->strings + v->nodes[idx].host;
    uint16_t port = v->nodes[idx].port;
    uf_member_t rec = { 0 };
    ucache_status_t status;
    uf_peer_t *np = NULL;

    if (pthread_mutex_trylock(&p->lock) != 0) {
        return NULL;                              /* another thread is at it */
    }
    if ((atomic_load(&p->recheck) == 0) || (atomic_load(&p->newer) != NULL)) {
        pthread_mutex_unlock(&p->lock);
        return (atomic_load(&p->newer) == NULL) ? p : NULL;
    }
    if (p->asking == NULL) {
        p->asking = malloc(sizeof(*p->asking));
        status = (p->asking == NULL) ? UCACHE_ERR_NO_MEMORY :
                 uf_hello_post(ctx, host, port, p->asking);
        if (status == UCACHE_OK) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
    } else if ((status = uf_hello_end(ctx, host, port, p->asking, false, &rec)) ==
               UCACHE_INPROGRESS) {
        pthread_mutex_unlock(&p->lock);
        return NULL;
    }
    free(p->asking);
    p->asking = NULL;
    if ((status == UCACHE_OK) && (uf_member_inc(&rec) == p->hello_inc)) {
        atomic_store(&p->recheck, 0);
        pthread_mutex_unlock(&p->lock);
        uf_member_clear(&rec);
        return p;
    }
    if (status == UCACHE_OK) {
        pthread_mutex_lock(&ctx->lock);
        np = uf_peer_new(ctx, p->id, p->inc);
        pthread_mutex_unlock(&ctx->lock);
        status = (np == NULL) ? UCACHE_ERR_NO_MEMORY : uf_peer_setup_blobs(ctx, np, &rec);
    }
    if (status == UCACHE_OK) {
        np->hello     = true;
        np->hello_inc = uf_member_inc(&rec);
        atomic_store_explicit(&np->ready, 1, memory_order_release);
        atomic_store_explicit(&p->newer, np, memory_order_release);
        atomic_store_explicit(&v->peers[idx], np, memory_order_release);
        atomic_store(&p->recheck, 0);
        UC_WARN("node %016" PRIx64 " (%s:%u) was restarted: read through its new address "
                "and key from now on", p->id, host, port);
        atomic_fetch_add(&ctx->st.peer_restarts, 1);
    } else {
        if (np != NULL) {
            atomic_store(&np->newer, p);    /* a record never used: lookups skip it */
        }
        uf_peer_suspect(ctx, p, ucache_strerror(status));
        np = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    uf_member_clear(&rec);
    return np;
}

uf_peer_t *uf_view_peer(struct ucache_context *ctx, uf_view_t *v, uint32_t idx)
{
    const uf_vnode_t *m = &v->nodes[idx];
    uf_peer_t *p = atomic_load_explicit(&v->peers[idx], memory_order_acquire), *n;
    ucache_status_t status;
    uint64_t inc;
    unsigned b;

    if (p == NULL) {
        b = (unsigned)(m->id % UF_PEER_BUCKETS);
        inc = uf_peer_inc(v, idx);
        pthread_mutex_lock(&ctx->lock);
        for (p = ctx->peers[b];
             (p != NULL) && ((p->id != m->id) || (p->inc != inc) || (p->newer != NULL));
             p = p->next) {
        }
        if (p == NULL) {
            p = uf_peer_new(ctx, m->id, inc);
        }
        pthread_mutex_unlock(&ctx->lock);
        if (p == NULL) {
            return NULL;
        }
        atomic_store_explicit(&v->peers[idx], p, memory_order_release);
    }
    if (atomic_load_explicit(&p->newer, memory_order_acquire) != NULL) {
        while ((n = atomic_load_explicit(&p->newer, memory_order_acquire)) != NULL) {
            p = n;                            /* restarted, maybe more than once */
        }
        atomic_store_explicit(&v->peers[idx], p, memory_order_release);
    }
    if (atomic_load_explicit(&p->ready, memory_order_acquire)) {
        if (atomic_load_explicit(&p->recheck, memory_order_relaxed) == 0) {
            return p;
        }
        return uf_peer_is_suspect(p, uc_time_ns()) ? NULL : uf_peer_recheck(ctx, v, idx, p);
    }
    if (uf_peer_is_suspect(p, uc_time_ns())) {
        return NULL;
    }
    pthread_mutex_lock(&p->lock);
    status = UCACHE_OK;
    if (!atomic_load(&p->ready)) {
        status = uf_peer_setup(ctx, p, v, idx);
        if (status == UCACHE_OK) {
            atomic_store(&p->recheck, 0);
            atomic_store_explicit(&p->ready, 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (status != UCACHE_OK) {
        uf_peer_suspect(ctx, p, ucache_strerror(status));
        return NULL;
    }
    return p;
}

void uf_peers_destroy(struct ucache_context *ctx)
{
    uf_peer_t *p;
    unsigned b;

    for (b = 0; b < UF_PEER_BUCKETS; b++) {
        while ((p = ctx->peers[b]) != NULL) {
            ctx->peers[b] = p->next;
            if (p->asking != NULL) {    /* a recheck's HELLO still out */
                uf_member_t rec = { 0 };

                uf_hello_end(ctx, "", 0, p->asking, true, &rec);
                uf_member_clear(&rec);
                free(p->asking);
            }
            ut_rkey_destroy(p->rkey);
            ut_peer_destroy(p->tp);
            pthread_mutex_destroy(&p->lock);
            pthread_mutex_destroy(&p->touch_lock);
            free(p->touch);
            free(p);
        }
    }
}
