/*
 * check.c - the store's books checked (us_store_check): every block of
 * both pools is held by exactly one owner.  For tests: it walks the whole
 * data area under the store's lock.
 */
#include "store_int.h"
#include "util/log.h"

#include <stdlib.h>

/* Blocks held, by pool: the staging pool's offsets, then the memory tier's. */
typedef struct held {
    uint64_t *v[2];
    size_t    n[2];
} held_t;

static void held_add(us_store_t *s, held_t *h, uint64_t block)
{
    unsigned p = (block >= s->stage_len);

    h->v[p][h->n[p]++] = p ? block - s->stage_len : block;
}

/* Whether @p e, a write-through of a chunk still published, shares the
 * chunk's block (then the chunk is its owner). */
static bool shares_block(const us_store_t *s, const us_demote_t *e)
{
    const us_desc_t *d = &s->desc[e->slot];

    return e->copy && (d->state == US_SLOT_PUBLISHED) && (d->version == e->version) &&
           d->copying && (d->block == e->block);
}

ucache_status_t us_store_check(us_store_t *s)
{
    ucache_status_t st = UCACHE_OK;
    uint32_t slot, i, copies = 0, copying = 0;
    held_t h = { { NULL, NULL }, { 0, 0 } };
    const us_demote_t *e;
    bool whole;

    pthread_mutex_lock(&s->lock);
    h.v[0] = malloc(((size_t)s->nslots + s->dq_n + 1) * sizeof(uint64_t));
    h.v[1] = malloc(((size_t)s->nslots + s->dq_n + 1) * sizeof(uint64_t));
    if ((h.v[0] == NULL) || (h.v[1] == NULL)) {
        st = UCACHE_ERR_NO_MEMORY;
    } else if ((us_alloc_check(&s->alloc) != UCACHE_OK) ||
               ((s->stage_len > 0) && (us_alloc_check(&s->stage) != UCACHE_OK))) {
        st = UCACHE_ERR_CORRUPT;
    }
    for (slot = 0; (st == UCACHE_OK) && (slot < s->nslots); slot++) {
        if (s->desc[slot].state != US_SLOT_FREE) {
            held_add(s, &h, s->desc[slot].block);
            copying += (s->desc[slot].state == US_SLOT_PUBLISHED) && s->desc[slot].copying;
        }
    }
    for (i = 0; (st == UCACHE_OK) && (i < s->dq_n); i++) {
        e = &s->dq[(s->dq_head + i) % s->dq_cap];
        if (shares_block(s, e)) {
            copies++;
        } else {
            held_add(s, &h, e->block);
        }
    }
    /* the demoter's batch is out of the queue while it writes: its blocks
     * are not counted then, nor its chunks' write-throughs */
    whole = (s->dq_busy == 0);
    if ((st == UCACHE_OK) && whole && (copies != copying)) {
        st = UCACHE_ERR_CORRUPT;     /* a chunk written through twice, or never */
    }
    if ((st == UCACHE_OK) && (s->stage_len > 0)) {
        st = us_alloc_check_owners(&s->stage, h.v[0], h.n[0], whole);
    } else if ((st == UCACHE_OK) && (h.n[0] > 0)) {
        st = UCACHE_ERR_CORRUPT;
    }
    if (st == UCACHE_OK) {
        st = us_alloc_check_owners(&s->alloc, h.v[1], h.n[1], whole);
    }
    pthread_mutex_unlock(&s->lock);
    if (st == UCACHE_ERR_CORRUPT) {
        UC_ERROR("store: its books do not add up (a block held twice, or lost)");
    }
    free(h.v[0]);
    free(h.v[1]);
    return st;
}
