/*
 * evict.c - S3-FIFO with a ghost FIFO and a pinned list (see evict.h).
 * The ghost is a direct-mapped table of key tags stamped with the ghost
 * clock; a tag counts only while fewer than n newer ghosts were added, which
 * approximates the paper's ghost FIFO as long as the main queue in O(1)
 * memory.  Invariant: an entry is in exactly one list, or in none
 * (US_Q_NONE) while the store does not hold it.
 */
#include "evict.h"

#include <stdlib.h>
#include <string.h>

#define US_SMALL_PERCENT 10

ucache_status_t us_evict_init(us_evict_t *ev, uint32_t n, uint64_t capacity)
{
    uint32_t g = 1, i;

    memset(ev, 0, sizeof(*ev));
    while (g < n) {
        g <<= 1;
    }
    ev->e     = calloc(n, sizeof(*ev->e));
    ev->ghost = calloc(g, sizeof(*ev->ghost));
    if ((ev->e == NULL) || (ev->ghost == NULL)) {
        us_evict_cleanup(ev);
        return UCACHE_ERR_NO_MEMORY;
    }
    ev->n          = n;
    ev->capacity   = capacity;
    ev->ghost_mask = g - 1;
    ev->arr.link0  = (char *)&ev->e[0].link;
    ev->arr.stride = sizeof(ev->e[0]);
    for (i = 0; i < US_Q_COUNT; i++) {
        us_ilist_init(&ev->q[i].list);
    }
    return UCACHE_OK;
}

void us_evict_cleanup(us_evict_t *ev)
{
    free(ev->e);
    free(ev->ghost);
    ev->e     = NULL;
    ev->ghost = NULL;
}

static void list_push(us_evict_t *ev, us_queue_t qi, uint32_t i)
{
    us_evict_list_t *q = &ev->q[qi];

    ev->e[i].queue = (uint8_t)qi;
    us_ilist_push(&q->list, &ev->arr, i);
    q->count++;
    q->bytes += ev->e[i].bytes;
}

static void list_unlink(us_evict_t *ev, uint32_t i)
{
    us_evict_entry_t *e = &ev->e[i];
    us_evict_list_t *q = &ev->q[e->queue];

    us_ilist_unlink(&q->list, &ev->arr, i);
    q->count--;
    q->bytes -= e->bytes;
    e->queue  = US_Q_NONE;
}

static int ghost_take(us_evict_t *ev, uint32_t tag)
{
    us_ghost_t *g = &ev->ghost[tag & ev->ghost_mask];

    if ((g->tag == tag) && (ev->ghost_clock - g->clock <= ev->n)) {
        g->tag = 0;
        return 1;
    }
    return 0;
}

static void ghost_add(us_evict_t *ev, uint32_t tag)
{
    us_ghost_t *g = &ev->ghost[tag & ev->ghost_mask];

    g->tag   = tag;
    g->clock = ++ev->ghost_clock;
}

void us_evict_insert(us_evict_t *ev, uint32_t i, uint64_t bytes, uint32_t tag,
                     int pinned)
{
    us_evict_entry_t *e = &ev->e[i];

    e->bytes     = bytes;
    e->freq      = 0;
    e->ghost_tag = tag | 1u;      /* 0 marks an empty ghost cell */
    if (pinned) {
        list_push(ev, US_Q_PINNED, i);
    } else if (ghost_take(ev, e->ghost_tag)) {
        ev->stats.ghost_hits++;
        list_push(ev, US_Q_MAIN, i);
    } else {
        list_push(ev, US_Q_SMALL, i);
    }
}

void us_evict_hit(us_evict_t *ev, uint32_t i, unsigned weight)
{
    us_evict_entry_t *e = &ev->e[i];
    unsigned f = e->freq + weight;

    e->freq = (uint8_t)((f > US_FREQ_MAX) ? US_FREQ_MAX : f);
    ev->stats.hits++;
}

void us_evict_remove(us_evict_t *ev, uint32_t i)
{
    if (ev->e[i].queue != US_Q_NONE) {
        list_unlink(ev, i);
    }
}

void us_evict_pin(us_evict_t *ev, uint32_t i, int pinned)
{
    us_evict_entry_t *e = &ev->e[i];

    if ((e->queue == US_Q_NONE) || ((e->queue == US_Q_PINNED) == !!pinned)) {
        return;
    }
    list_unlink(ev, i);
    list_push(ev, pinned ? US_Q_PINNED : US_Q_MAIN, i);
}

uint32_t us_evict_pop(us_evict_t *ev)
{
    us_evict_list_t *s = &ev->q[US_Q_SMALL], *m = &ev->q[US_Q_MAIN];
    uint64_t small_target = ev->capacity / 100 * US_SMALL_PERCENT;
    us_evict_entry_t *e;
    uint32_t i;

    /* ends: every main entry is reinserted at most US_FREQ_MAX times and
     * every small entry is moved at most once */
    for (;;) {
        if ((s->count > 0) && ((s->bytes > small_target) || (m->count == 0))) {
            i = s->list.tail;
            e = &ev->e[i];
            list_unlink(ev, i);
            if (e->freq > 0) {
                e->freq = 0;
                list_push(ev, US_Q_MAIN, i);
                ev->stats.promotions++;
                continue;
            }
            ghost_add(ev, e->ghost_tag);
            return i;
        }
        if (m->count == 0) {
            return US_EVICT_NONE;
        }
        i = m->list.tail;
        e = &ev->e[i];
        list_unlink(ev, i);
        if (e->freq > 0) {
            e->freq--;
            list_push(ev, US_Q_MAIN, i);
            ev->stats.reinsertions++;
            continue;
        }
        return i;
    }
}
