/*
 * store_int.h - the store's own header, shared by store.c (the memory tier:
 * arena, index, publish, pins, quotas, eviction) and tier.c (the NVMe tier:
 * the demoter, fills from the devices, staging).  Not for other layers:
 * they use store.h.  Functions named us_st_* run with s->lock held.
 */
#ifndef UCACHE_STORE_INT_H
#define UCACHE_STORE_INT_H

#include "store.h"
#include "keymap.h"
#include "alloc.h"
#include "evict.h"
#include "ilist.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define US_NONE          US_ILIST_NONE
#define US_HUGE_PAGE     (2ull << 20)
#define US_PIN_LIMIT_PCT 90
#define US_COMMIT_SEG    (64ull << 20)   /* us_store_commit's unit */

enum { US_SLOT_FREE = 0, US_SLOT_RESERVED, US_SLOT_PUBLISHED };

typedef enum us_evict_reason {
    US_EV_CAPACITY, US_EV_INDEX, US_EV_QUOTA, US_EV_EXPLICIT,
    US_EV_LEASE,                     /* a staged chunk's lease ended */
    US_EV_TIER                       /* moved to NVMe (us_store_demote_key) */
} us_evict_reason_t;

#define US_STAGE_SHARE   4           /* staged chunks take at most 1/4 of memory */
#define US_DEMOTE_MAX    (256ull << 20)

/* An evicted chunk waiting for the demoter; its block is not retired yet. */
/* A chunk for the demoter to write to NVMe: one evicted (its block is the
 * entry's, retired once written) or, written through after its fill, one
 * still published (`copy`: its block stays the chunk's unless it is
 * unpublished meanwhile - slot and version tell at the end). */
typedef struct us_demote {
    us_key_t key;
    uint64_t block, bsize;
    uint64_t version;
    uint32_t length, slot;
    uint16_t ns;
    uint8_t  copy;
} us_demote_t;

/* A staged chunk's lease (a FIFO: every lease is as long). */
typedef struct us_stage {
    uint64_t until, version;
    uint32_t slot;
} us_stage_t;

/* Owner-private record of one slot (never exported). */
typedef struct us_desc {
    us_key_t key;
    uint64_t block;          /* data-area offset of the block */
    uint64_t bsize;          /* block bytes (accounting) */
    uint64_t version;
    uint32_t length;
    us_link_t ns_link;       /* in its namespace's list */
    uint16_t ns;
    uint8_t  state;
    uint8_t  pinned;         /* pinned by key */
    uint8_t  staged;         /* read from NVMe into the staging pool: leased,
                                outside the policy and the namespaces */
    uint8_t  on_nvme;        /* read from NVMe (a copy is there) */
    uint8_t  copying;        /* queued to be written through to NVMe: its
                                block is not retired before the write ends */
} us_desc_t;

typedef struct us_ns {
    uint64_t used;           /* block bytes, published + reserved */
    uint64_t quota;          /* 0 = none */
    uint64_t bytes_pinned;   /* block bytes of its published pinned chunks */
    us_ilist_t chunks;       /* published chunks, newest at head */
    uint8_t  pinned;
} us_ns_t;

struct us_store {
    pthread_mutex_t lock;
    char           *base;
    size_t          len;
    int             mapped;          /* base is our own mapping */
    us_layout_t     layout;
    uint64_t       *slots;           /* 2 words per slot, in the region */
    char           *data;
    us_desc_t      *desc;
    us_ilist_array_t ns_arr;         /* desc as an ilist array (ns_link) */
    uint32_t        nslots;
    uint64_t        max_payload;
    us_alloc_t      alloc;           /* the memory tier: data area past the pool */
    us_alloc_t      stage;           /* the staging pool: [0, stage_len) */
    uint64_t        stage_len;
    char           *main;            /* data + stage_len: alloc's base */
    us_evict_t      ev;
    us_ns_t        *ns;
    uint64_t        next_version;
    uint64_t        bytes_pinned;
    uint64_t        bytes_cached;
    uint64_t        window_start, window_bytes, last_window_bytes;
    us_store_stats_t stats;          /* event counters */
    /* committing the data area in segments (params.commit_first) */
    int             lock_pages;      /* mlock each committed segment */
    _Atomic int     lock_failed;     /* an mlock failed (logged once) */
    uint64_t        commit_first;    /* data bytes usable at create */
    uint32_t        nsegs, seg_grown;/* segments after them; handed over */
    _Atomic uint32_t seg_next;       /* next segment to take */
    uint8_t        *seg_done;
    uint64_t        commit_t0;
    /* the NVMe tier */
    us_nvme_t      *nvme[US_MAX_NVME];
    unsigned        nnvme;
    us_demote_t    *dq;              /* ring of evicted chunks to demote */
    us_keymap_t     pend;            /* key -> held block of a chunk out of
                                        memory and not on NVMe yet */
    uint32_t        dq_cap, dq_head, dq_n;
    uint64_t        dq_bytes, dq_limit;
    uint32_t        dq_busy;         /* taken by the demoter, not written yet */
    pthread_cond_t  dq_cond;
    bool            nvme_dirty;      /* pin changes, drops: for the devices to write */
    us_stage_t     *sq;              /* ring of leases */
    uint32_t        sq_cap, sq_head, sq_n;
    uint64_t        staged_bytes, staged;
    uint64_t       *recent;          /* keys staged lately: tag << 32 | ms */
    uint32_t        recent_mask;
    uint64_t        lease_ns, window_ns;
};

/* store.c */
uint32_t        us_st_find(const us_store_t *s, const us_key_t *key);
int             us_st_is_pinned(const us_store_t *s, const us_desc_t *d);
int             us_st_fill_valid(const us_store_t *s, const us_fill_t *f);
ucache_status_t us_st_blk_retire(us_store_t *s, uint64_t block, uint64_t now);
bool            us_st_demote_push(us_store_t *s, uint32_t slot, bool copy);
void            us_st_unpublish(us_store_t *s, uint32_t slot, us_evict_reason_t why);
void            us_st_expire(us_store_t *s, uint64_t now);

/* tier.c */
bool            us_st_on_nvme(us_store_t *s, const us_key_t *key);
void            us_st_nvme_dirty(us_store_t *s, bool dirty);
bool            us_st_pin_nvme(us_store_t *s, const us_key_t *key, int pin);

#endif /* UCACHE_STORE_INT_H */
