/*
 * view.c - membership views (the peers they point at: peer.c).
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
                              uint32_t n, uint64_t epoch, uint32_t nslots,
                              uf_view_t **view_p)
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
    /* placement does not depend on the array's size (place.c): it holds
     * the slots in use, within the source's capacity */
    status = uf_place_create(pn, n, ((nslots != 0) && (uf_place_capacity(end) > nslots)) ?
                             nslots : uf_place_capacity(end), &v->place);
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
