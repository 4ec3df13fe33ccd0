/*
 * view.c - membership views and the peers they point at.
 * A view is immutable once installed; readers pin it with a reference
 * (uf_view_acquire) and the context's thread frees a replaced view once no
 * reader holds it and a second has passed (a reader between loading the
 * pointer and taking its reference takes nanoseconds).  Peers outlive
 * views: a node keeps its peer (connection, keys, suspicion) across epochs.
 *
 * View epochs:   source epoch E (dir: the epoch file; external: the caller's)
 *                  -> uf_view_build(): nodes by slot, zones, placement
 *                  -> uf_view_install(): current; the old one retired
 *                  -> uf_view_reap(): freed when unreferenced
 */
#include "fabric/fabric.h"
#include "util/log.h"
#include "util/time.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static int uf_member_slot_cmp(const void *a, const void *b)
{
    const uf_member_t *x = a, *y = b;

    return (x->slot0 > y->slot0) - (x->slot0 < y->slot0);
}

/* Zone name -> index, for placement (names themselves are not kept). */
static ucache_status_t uf_zones_index(const uf_member_t *m, uint32_t n,
                                      uf_place_node_t *pn)
{
    uint32_t cap = 16, mask, i, h, nzones = 0;
    const char **names;
    uint32_t *idx;

    while (cap < 2 * n) {
        cap <<= 1;
    }
    mask  = cap - 1;
    names = calloc(cap, sizeof(*names));
    idx   = calloc(cap, sizeof(*idx));
    if ((names == NULL) || (idx == NULL)) {
        free(names);
        free(idx);
        return UCACHE_ERR_NO_MEMORY;
    }
    for (i = 0; i < n; i++) {
        h = (uint32_t)XXH3_64bits(m[i].zone, strlen(m[i].zone)) & mask;
        while ((names[h] != NULL) && (strcmp(names[h], m[i].zone) != 0)) {
            h = (h + 1) & mask;
        }
        if (names[h] == NULL) {
            names[h] = m[i].zone;
            idx[h]   = nzones++;
        }
        pn[i].zone = idx[h];
    }
    free(names);
    free(idx);
    return UCACHE_OK;
}

/* Order of view node indices by node id (qsort_r over the view's nodes). */
static int uf_vnode_id_cmp(const void *a, const void *b, void *arg)
{
    const uf_vnode_t *nodes = arg;
    uint64_t x = nodes[*(const uint32_t *)a].id, y = nodes[*(const uint32_t *)b].id;

    return (x > y) - (x < y);
}

uint32_t uf_view_find(const uf_view_t *v, uint64_t id)
{
    uint32_t lo = 0, hi = (v != NULL) ? v->n : 0, mid;

    while (lo < hi) { /* binary search of by_id */
        mid = lo + (hi - lo) / 2;
        if (v->nodes[v->by_id[mid]].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return ((v != NULL) && (lo < v->n) && (v->nodes[v->by_id[lo]].id == id)) ?
           v->by_id[lo] : UINT32_MAX;
}

ucache_status_t uf_view_build(struct ucache_context *ctx, uf_member_t *members,
                              uint32_t n, uint64_t epoch, uf_view_t **view_p)
{
    uf_place_node_t *pn = NULL;
    ucache_status_t status = UCACHE_ERR_NO_MEMORY;
    uint32_t i, kept = 0, end = 0;
    bool blobs = false;
    size_t len, off = 0;
    uf_view_t *v;

    (void)ctx;
    v = calloc(1, sizeof(*v));
    if (v == NULL) {
        uf_members_free(members, n);
        return UCACHE_ERR_NO_MEMORY;
    }
    if (n > 1) {
        qsort(members, n, sizeof(*members), uf_member_slot_cmp);
    }
    /* drop members whose slots overlap an earlier one (a torn directory) */
    for (i = 0; i < n; i++) {
        if ((kept > 0) && (members[i].slot0 < members[kept - 1].slot0 +
                                              members[kept - 1].weight)) {
            UC_WARN("members: node %016" PRIx64 " overlaps the slots of node %016"
                    PRIx64 "; ignored in epoch %" PRIu64, members[i].id,
                    members[kept - 1].id, epoch);
            uf_member_clear(&members[i]);
            continue;
        }
        members[kept++] = members[i];
        blobs |= (members[i].addr_len > 0);
        v->strings_len += strlen(members[i].host) + 1;
    }
    n = kept;
    v->epoch   = epoch;
    v->n       = n;
    v->recs    = members;        /* until the end: freed below if not needed */
    v->nodes   = calloc(n + 1, sizeof(*v->nodes));
    v->strings = malloc(v->strings_len + 1);
    v->peers   = calloc(n + 1, sizeof(*v->peers));
    v->by_id   = calloc(n + 1, sizeof(*v->by_id));
    pn         = calloc(n + 1, sizeof(*pn));
    if ((v->nodes == NULL) || (v->strings == NULL) || (v->peers == NULL) ||
        (v->by_id == NULL) ||
        (pn == NULL) || (uf_zones_index(members, n, pn) != UCACHE_OK)) {
        goto err;
    }
    for (i = 0; i < n; i++) {
        v->nodes[i].id   = members[i].id;
        v->nodes[i].port = members[i].port;
        v->nodes[i].host = (uint32_t)off;
        len = strlen(members[i].host) + 1;
        memcpy(v->strings + off, members[i].host, len);
        off += len;
        pn[i].slot0  = members[i].slot0;
        pn[i].weight = members[i].weight;
        pn[i].alive  = true;
        end = members[i].slot0 + members[i].weight;
        v->by_id[i] = i;
    }
    qsort_r(v->by_id, n, sizeof(*v->by_id), uf_vnode_id_cmp, v->nodes);
    status = uf_place_create(pn, n, uf_place_capacity(end), &v->place);
    if (status != UCACHE_OK) {
        goto err;
    }
    if (!blobs) { /* file: nothing beyond host and port to keep */
        uf_members_free(members, n);
        v->recs = NULL;
    }
    free(pn);
    *view_p = v;
    return UCACHE_OK;

err:
    free(pn);
    uf_view_free(v);
    return status;
}

void uf_view_free(uf_view_t *v)
{
    if (v == NULL) {
        return;
    }
    uf_members_free(v->recs, v->n);
    free(v->nodes);
    free(v->strings);
    free(v->peers);
    free(v->by_id);
    uf_place_destroy(v->place);
    free(v);
}

size_t uf_view_bytes(const uf_view_t *v)
{
    size_t bytes = sizeof(*v) + (size_t)v->n * (sizeof(*v->nodes) + sizeof(*v->peers) +
                                                 sizeof(*v->by_id)) +
                   v->strings_len + uf_place_bytes(v->place);
    uint32_t i;

    for (i = 0; (v->recs != NULL) && (i < v->n); i++) {
        bytes += sizeof(v->recs[i]) + v->recs[i].addr_len + v->recs[i].rkey_len;
    }
    return bytes;
}

uf_view_t *uf_view_acquire(struct ucache_context *ctx)
{
    uf_view_t *v = atomic_load_explicit(&ctx->view, memory_order_acquire);

    if (v != NULL) {
        atomic_fetch_add_explicit(&v->refs, 1, memory_order_acq_rel);
    }
    return v;
}

void uf_view_release(uf_view_t *v)
{
    if (v != NULL) {
        atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel);
    }
}

void uf_view_install(struct ucache_context *ctx, uf_view_t *v)
{
    uf_view_t *old;

    pthread_mutex_lock(&ctx->lock);
    old = atomic_exchange_explicit(&ctx->view, v, memory_order_acq_rel);
    if (old != NULL) {
        old->retired_ns   = uc_time_ns();
        old->retired_next = ctx->retired;
        ctx->retired      = old;
    }
    pthread_mutex_unlock(&ctx->lock);
    UC_INFO("view epoch %" PRIu64 ": %u nodes, %u slots", v->epoch, v->n,
            uf_place_slots(v->place));
}

void uf_view_reap(struct ucache_context *ctx, bool all)
{
    uf_view_t **pp, *v;
    uint64_t now = uc_time_ns();

    pthread_mutex_lock(&ctx->lock);
    pp = &ctx->retired;
    while ((v = *pp) != NULL) {
        if (all || ((atomic_load(&v->refs) == 0) &&
                    (now - v->retired_ns > UC_NSEC_PER_SEC))) {
            *pp = v->retired_next;
            uf_view_free(v);
        } else {
            pp = &v->retired_next;
        }
    }
    pthread_mutex_unlock(&ctx->lock);
}

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

/* A node known only as host:port (file: members): ask its listener for its
 * record (worker address, store key) over a connection made for that. */
static ucache_status_t uf_peer_hello(struct ucache_context *ctx, const char *host,
                                     uint16_t port, uf_member_t *rec)
{
    size_t cap = 3 * UF_BLOB_MAX;
    ucache_status_t status;
    ut_peer_t *boot;
    void *buf;
    ut_req_t r;

    buf = malloc(cap);
    if (buf == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    status = ut_peer_create_sockaddr(ctx->transport, host, port, &boot);
    if (status == UCACHE_OK) {
        status = ut_rpc_post(&r, boot, UF_RPC_HELLO, NULL, 0, NULL, 0, buf, cap);
        if (status == UCACHE_OK) {
            status = ut_wait(ctx->transport, &r, 1, 2 * ctx->cfg.timeout_ns);
        }
        if (status == UCACHE_OK) {
            status = uf_member_decode(buf, r.length, rec);
            if (status != UCACHE_OK) {
                atomic_fetch_add(&ctx->st.bad_replies, 1);
                UC_WARN("%s:%u answered HELLO with a malformed record", host, port);
            }
        }
        ut_peer_destroy(boot);
    }
    free(buf);
    return status;
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
        m = &rec;
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
        status = ut_wait(ctx->transport, &req, 1, ctx->cfg.timeout_ns);
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
    const uf_member_t *r;

    if (v->recs == NULL) {
        return 0;
    }
    r = &v->recs[idx];
    return XXH64(r->rkey, r->rkey_len, XXH64(r->addr, r->addr_len, 0x55434950ull));
}

uf_peer_t *uf_view_peer(struct ucache_context *ctx, uf_view_t *v, uint32_t idx)
{
    const uf_vnode_t *m = &v->nodes[idx];
    uf_peer_t *p = atomic_load_explicit(&v->peers[idx], memory_order_acquire);
    ucache_status_t status;
    uint64_t inc;
    unsigned b;

    if (p == NULL) {
        b = (unsigned)(m->id % UF_PEER_BUCKETS);
        inc = uf_peer_inc(v, idx);
        pthread_mutex_lock(&ctx->lock);
        for (p = ctx->peers[b]; (p != NULL) && ((p->id != m->id) || (p->inc != inc));
             p = p->next) {
        }
        if (p == NULL) {
            p = calloc(1, sizeof(*p));
            if (p == NULL) {
                pthread_mutex_unlock(&ctx->lock);
                return NULL;
            }
            p->id   = m->id;
            p->inc  = inc;
            p->self = ctx->serve && (m->id == ctx->self.id);
            pthread_mutex_init(&p->lock, NULL);
            pthread_mutex_init(&p->touch_lock, NULL);
            p->next = atomic_load(&ctx->peers[b]);
            atomic_store_explicit(&ctx->peers[b], p, memory_order_release);
        }
        pthread_mutex_unlock(&ctx->lock);
        atomic_store_explicit(&v->peers[idx], p, memory_order_release);
    }
    if (atomic_load_explicit(&p->ready, memory_order_acquire)) {
        return p;
    }
    if (uf_peer_is_suspect(p, uc_time_ns())) {
        return NULL;
    }
    pthread_mutex_lock(&p->lock);
    status = UCACHE_OK;
    if (!atomic_load(&p->ready)) {
        status = uf_peer_setup(ctx, p, v, idx);
        if (status == UCACHE_OK) {
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
            ut_rkey_destroy(p->rkey);
            ut_peer_destroy(p->tp);
            pthread_mutex_destroy(&p->lock);
            pthread_mutex_destroy(&p->touch_lock);
            free(p->touch);
            free(p);
        }
    }
}

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
