/*
 * evict.h - the store's eviction policy: S3-FIFO (Yang et al., SOSP '23)
 * over entries named by index, with a pinned list the policy never looks at.
 * A training epoch is one big scan: new chunks enter a small probationary
 * FIFO (10% of the bytes) and leave it unless they were hit while there, so
 * a scan never flushes the main FIFO's reused chunks.  Not thread-safe: the
 * store's lock covers it.
 *
 * Where the hits come from (the owner never sees a one-sided hit):
 *  - the owner's own service path (RPC reads, the tcp bulk-read path, misses
 *    answered from memory) calls us_store_touch() for each chunk it serves;
 *  - readers report the keys of their one-sided hits (fabric/touch.c: each
 *    distinct key once per window), batched per owner and sent from a
 *    background thread (a TOUCH request), and the owner calls
 *    us_store_touch(keys, n, 1).  Frequencies saturate at US_FREQ_MAX.
 */
#ifndef US_EVICT_H
#define US_EVICT_H

#include "ilist.h"
#include "util/status.h"

#include <stdint.h>

#define US_EVICT_NONE   US_ILIST_NONE
#define US_FREQ_MAX     3

typedef enum us_queue {
    US_Q_NONE   = 0,
    US_Q_SMALL  = 1,
    US_Q_MAIN   = 2,
    US_Q_PINNED = 3,
    US_Q_COUNT
} us_queue_t;

typedef struct us_evict_entry {
    us_link_t link;
    uint64_t bytes;
    uint32_t ghost_tag;
    uint8_t  queue;           /* us_queue_t */
    uint8_t  freq;
} us_evict_entry_t;

typedef struct us_evict_list {
    us_ilist_t list;          /* insert at head, evict at tail */
    uint64_t   count, bytes;
} us_evict_list_t;

typedef struct us_evict_stats {
    uint64_t promotions;      /* small -> main (hit while probationary) */
    uint64_t reinsertions;    /* main tail -> main head (hit since)     */
    uint64_t ghost_hits;      /* inserted straight into main            */
    uint64_t hits;
} us_evict_stats_t;

typedef struct us_ghost {
    uint32_t tag, clock;
} us_ghost_t;

typedef struct us_evict {
    us_evict_entry_t *e;
    us_ilist_array_t  arr;        /* e as an ilist array */
    uint32_t          n;
    uint64_t          capacity;   /* bytes the queues may hold */
    us_evict_list_t   q[US_Q_COUNT];
    us_ghost_t       *ghost;
    uint32_t          ghost_mask;
    uint32_t          ghost_clock;
    us_evict_stats_t  stats;
} us_evict_t;

ucache_status_t us_evict_init(us_evict_t *ev, uint32_t n, uint64_t capacity);
void us_evict_cleanup(us_evict_t *ev);

/** Add entry @p i (not in any queue) of @p bytes; @p tag is a hash of its
 *  key, remembered by the ghost FIFO when the entry leaves unused. */
void us_evict_insert(us_evict_t *ev, uint32_t i, uint64_t bytes, uint32_t tag,
                     int pinned);

/** Count @p weight hits of entry @p i (saturating). */
void us_evict_hit(us_evict_t *ev, uint32_t i, unsigned weight);

/** Take entry @p i out of its queue (explicit eviction, quota, conflict). */
void us_evict_remove(us_evict_t *ev, uint32_t i);

/** Move entry @p i into or out of the pinned list. */
void us_evict_pin(us_evict_t *ev, uint32_t i, int pinned);

/** Choose and remove the next victim; US_EVICT_NONE if only pinned entries
 *  (or none) are left. */
uint32_t us_evict_pop(us_evict_t *ev);

#endif
