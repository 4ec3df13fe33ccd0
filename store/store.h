/*
 * store.h - a node's cache store: one arena (the exported region) holding a
 * superblock, a remotely readable index and the chunks themselves, in the
 * layout of layout.h.  The owner fills and evicts through this API; readers
 * anywhere use layout.h alone.  store/ knows nothing of peers or the network:
 * it is handed memory (e.g. a transport-exported region) or maps its own.
 *
 * Threads: every function here takes the store's lock, so one serving
 * thread and any helpers may call them; reader threads never take it (they
 * read through us_read_raw() or one-sided reads, lock-free).
 */
#ifndef US_STORE_H
#define US_STORE_H

#include "layout.h"
#include "nvme.h"

#include <stddef.h>
#include <stdint.h>

#define US_MAX_NS  1024u        /* namespaces (datasets) with quotas/pins */
#define US_MAX_NVME 16u         /* NVMe devices of one store */

typedef struct us_store us_store_t;

typedef struct us_store_params {
    void     *base;          /* region to use (borrowed; must outlive the
                                store), or NULL: the store maps its own    */
    size_t    len;           /* region bytes: the whole memory budget      */
    uint64_t  grace_ns;      /* reuse delay after unpublish; also the
                                longest a reader may take for one read     */
    size_t    index_chunk;   /* mean chunk size the index is sized for     */
    size_t    max_payload;   /* largest chunk payload accepted             */
    int       lock;          /* mlock the region (failure is logged, counted) */
    size_t    commit_first;  /* 0: the region's memory is committed, all of
                                it usable now.  Else (a borrowed region) the
                                store commits the superblock, the index and
                                this many data bytes now, and the rest as
                                us_store_commit() is called               */
    size_t    stage_bytes;   /* NVMe tier: the staging pool, the data area's
                                first bytes (a quarter at most; 0: none)   */
    uint64_t  nvme_lease_ns; /* how long a chunk read from NVMe stays staged
                                for its readers (0: 10 ms; at least the
                                grace period)                              */
    uint64_t  nvme_window_ns;/* a chunk read from NVMe again within this
                                is promoted to the memory tier (0: 30 s)   */
} us_store_params_t;

/* A reservation being filled: write `length` bytes at `payload`, then
 * us_store_publish() or us_store_abort().  Valid until one of those. */
typedef struct us_fill {
    void    *payload;
    uint32_t length;
    uint32_t slot;
} us_fill_t;

typedef struct us_store_stats {
    uint64_t region_bytes, index_bytes, data_bytes;
    uint64_t meta_bytes;           /* owner-private metadata (heap, not exported) */
    uint64_t slots, slots_used;
    uint64_t chunks;               /* published */
    uint64_t reserved;             /* fills in progress */
    uint64_t bytes_cached;         /* published payload bytes */
    uint64_t bytes_used;           /* blocks held: published, reserved, grace */
    uint64_t bytes_grace;          /* unpublished, waiting out the grace period */
    uint64_t bytes_free;
    uint64_t bytes_pinned;
    uint64_t fills, publishes, aborts;
    uint64_t evict_capacity, evict_index, evict_quota, evict_explicit;
    uint64_t reserve_again;        /* memory was all in its grace period */
    uint64_t reserve_nomem;        /* nothing evictable (pinned / reserved) */
    uint64_t quota_denied;
    uint64_t pin_quota_denied;     /* pins refused: the namespace's pin quota */
    uint64_t hits, promotions, reinsertions, ghost_hits;
    uint64_t locked;               /* 1 if the region is mlock'ed */
    uint64_t bytes_huge;           /* bytes of the region in huge pages (smaps,
                                      after locking populated it) */
    uint64_t bytes_usable;         /* data bytes committed and usable: the data
                                      area once every segment is committed */
    uint64_t commit_ns;            /* how long committing the whole region took
                                      (0 while it goes on) */
    /* the NVMe tier (us_store_nvme_add) */
    uint64_t stage_bytes;          /* the staging pool (of data_bytes) */
    uint64_t nvme_devices, nvme_offline;   /* devices; of them out of service */
    uint64_t nvme_demotions;       /* evicted chunks written to NVMe */
    uint64_t nvme_demote_skipped;  /* evicted chunks that were on NVMe already */
    uint64_t nvme_pending_fills;   /* misses filled from a chunk on its way to NVMe */
    uint64_t nvme_demote_dropped;  /* written, then dropped: an admin evicted it meanwhile */
    uint64_t nvme_demote_failed;   /* evicted chunks NVMe did not take */
    uint64_t nvme_demoting;        /* gauge: evicted chunks waiting to be written */
    uint64_t nvme_hits;            /* fills served from NVMe */
    uint64_t nvme_staged;          /* gauge: chunks staged from NVMe for readers */
    uint64_t nvme_promotions;      /* chunks read from NVMe again, kept in memory */
    uint64_t nvme_expired;         /* staged chunks dropped when their lease ended */
} us_store_stats_t;

/** Create a store over params->base (or a fresh mapping).  The region is
 *  formatted: superblock, empty index, one free data block. */
ucache_status_t us_store_create(const us_store_params_t *params,
                                us_store_t **store_p);
void us_store_destroy(us_store_t *store);

/**
 * Commit the next segment of the data area that is not usable yet (fault
 * it in, mlock it if params->lock) and, once the segments before it are
 * done too, hand it to the allocator.  Any number of threads may call it
 * at once, each committing another segment.  Returns the bytes this call
 * committed; 0 when no segment is left to take.
 */
uint64_t us_store_commit(us_store_t *store);

/** The region to export and its geometry; valid until destroy. */
void *us_store_base(const us_store_t *store);
size_t us_store_len(const us_store_t *store);
const us_layout_t *us_store_layout(const us_store_t *store);

/**
 * Reserve room for a chunk of @p length payload bytes under @p key,
 * accounted to namespace @p ns; evicts as needed.  Returns
 * UCACHE_ERR_EXISTS if the key is published, UCACHE_INPROGRESS if another
 * fill of it is under way, UCACHE_ERR_AGAIN if the memory it needs is still
 * in its grace period (retry after us_store_retry_ns()),
 * UCACHE_ERR_NO_MEMORY if pinned or reserved chunks leave no room (index
 * buckets, memory or the namespace's quota).
 */
ucache_status_t us_store_reserve(us_store_t *store, const us_key_t *key,
                                 uint16_t ns, size_t length, us_fill_t *fill_p);

/** Checksum, write the header, publish the slot (last).  Readers see the
 *  chunk from here on; its bytes must not change any more. */
ucache_status_t us_store_publish(us_store_t *store, const us_fill_t *fill);

/** us_store_publish(), and where the chunk was published into @p loc_p (a
 *  lookup afterwards may already miss it: memory pressure can evict it). */
ucache_status_t us_store_publish_at(us_store_t *store, const us_fill_t *fill,
                                    us_loc_t *loc_p);

/** Give a reservation back (the fill failed); its memory is reused at once. */
void us_store_abort(us_store_t *store, const us_fill_t *fill);

/** Owner-side lookup (service path); counts a hit.  UCACHE_ERR_NOT_FOUND. */
ucache_status_t us_store_lookup(us_store_t *store, const us_key_t *key,
                                us_loc_t *loc_p);

/** Hits reported for @p n keys (service path, sampled reader feedback),
 *  @p weight hits each; unknown keys are ignored. */
void us_store_touch(us_store_t *store, const us_key_t *keys, unsigned n,
                    unsigned weight);

/** Pin or unpin one chunk (published or being filled): pinned chunks are
 *  never evicted.  UCACHE_ERR_NO_MEMORY past 90% of the data area pinned. */
ucache_status_t us_store_pin(us_store_t *store, const us_key_t *key, int pin);

/** us_store_pin(), and a new pin is refused (UCACHE_ERR_NO_MEMORY, counted
 *  as pin_quota_denied) if it would take the pinned bytes of the chunk's
 *  namespace past @p ns_limit (0: no limit but the store's). */
ucache_status_t us_store_pin_quota(us_store_t *store, const us_key_t *key, int pin,
                                   uint64_t ns_limit);

/** Pin or unpin a whole namespace (a dataset), present and future chunks. */
ucache_status_t us_store_pin_ns(us_store_t *store, uint16_t ns, int pin);

/** Cap namespace @p ns at @p bytes of blocks (0 = no cap); evicts down now. */
ucache_status_t us_store_quota_set(us_store_t *store, uint16_t ns, uint64_t bytes);

/** Bytes of blocks namespace @p ns holds (published and reserved). */
uint64_t us_store_ns_used(us_store_t *store, uint16_t ns);

/** Bytes of blocks of namespace @p ns's published chunks that are pinned. */
uint64_t us_store_ns_pinned(us_store_t *store, uint16_t ns);

/** Unpublish a chunk now.  UCACHE_ERR_BUSY if it is pinned. */
ucache_status_t us_store_evict(us_store_t *store, const us_key_t *key);

/** When a reserve that returned UCACHE_ERR_AGAIN can succeed (monotonic ns). */
uint64_t us_store_retry_ns(us_store_t *store);

void us_store_stats(us_store_t *store, us_store_stats_t *stats);

/** Check the store's books (tests): both allocators whole, and every
 *  block held by exactly one owner - a reservation or a chunk, the
 *  quarantine, or the demoter's queue (a block handed out twice, freed
 *  twice or lost fails).  UCACHE_OK or UCACHE_ERR_CORRUPT. */
ucache_status_t us_store_check(us_store_t *store);

/* --- the NVMe tier --------------------------------------------------------
 * With devices added, chunks evicted from memory for room (capacity, index,
 * quota; not an admin's evict) are demoted: their memory is kept until
 * us_store_demote() has written them to a device (one chosen by key), and
 * fills wait rather than outrun it.  A chunk on NVMe already costs nothing
 * to evict.  A fill of a key a device holds reserves with
 * us_store_reserve_nvme() and reads it (us_store_fill_nvme): staged in the
 * staging pool (params.stage_bytes) - in the index for its readers, outside
 * the eviction policy, dropped when its lease ends (whichever way its
 * readers take: mapped, get or a reply) - unless it was read from NVMe
 * within the window
 * already: a second hit, promoted to the memory tier.  One-hit reads never
 * displace memory-tier chunks. */

/** Add device @p nv (the store closes it at destroy).  Before serving. */
ucache_status_t us_store_nvme_add(us_store_t *store, us_nvme_t *nv);

/** Devices added; the stats of device @p i (0 .. n-1). */
unsigned us_store_nvme_count(us_store_t *store);
void us_store_nvme_stats(us_store_t *store, unsigned i, us_nvme_stats_t *stats);

/** Whether a device holds @p key. */
bool us_store_on_nvme(us_store_t *store, const us_key_t *key);

/** Whether a device holds @p key, and its length. */
bool us_store_nvme_lookup(us_store_t *store, const us_key_t *key, uint32_t *length_p);

/**
 * The demoter's step: end the staged chunks whose leases are over, wait up
 * to @p timeout_ns for evicted chunks (or pin changes), write up to @p max
 * of them to their devices and give their memory back, write the records
 * of chunks pinned or unpinned since (a restart keeps a pin).  Returns the
 * chunks and pin changes it handled (0: none was waiting).
 */
unsigned us_store_demote(us_store_t *store, unsigned max, uint64_t timeout_ns);

/** us_store_reserve() for a key a device holds: in the staging pool (then
 *  *staged_p) or, for a second hit within the window, the memory tier.
 *  Without @p may_stage, the memory tier (a pin will follow the read). */
ucache_status_t us_store_reserve_nvme(us_store_t *store, const us_key_t *key, uint16_t ns,
                                      size_t length, bool may_stage, us_fill_t *fill_p,
                                      bool *staged_p);

/**
 * Read @p fill's key from the device that holds it into the reservation,
 * verified: UCACHE_OK (publish it), else
 * UCACHE_ERR_NOT_FOUND (no device has it readable: fill from the origin).
 */
ucache_status_t us_store_fill_nvme(us_store_t *store, const us_fill_t *fill);

/**
 * us_store_fill_nvme() without waiting: queue the read of @p fill's key on
 * @p aio (store/nvme.h; the caller's thread owns it) with @p tag.
 * UCACHE_OK: its completion comes from us_nvme_aio_reap() - the payload is
 * in the reservation when it says UCACHE_OK; tell the store with
 * us_store_nvme_read_done(), then publish (or abort).  UCACHE_ERR_BUSY:
 * the aio is full.  UCACHE_ERR_NOT_FOUND: no device has it readable.
 */
ucache_status_t us_store_nvme_start(us_store_t *store, us_nvme_aio_t *aio,
                                    const us_fill_t *fill, uint64_t tag);
void us_store_nvme_read_done(us_store_t *store, ucache_status_t status);

/**
 * Fill @p fill from the memory its key still holds on the way to NVMe
 * (evicted, its write not done yet): UCACHE_OK (publish it), else
 * UCACHE_ERR_NOT_FOUND (no such chunk: the origin's).  A miss of a chunk
 * between the tiers is never a second origin read.
 */
ucache_status_t us_store_fill_pending(us_store_t *store, const us_fill_t *fill);

/** Write every chunk of memory that is not on NVMe yet to NVMe (a node
 *  stopping: a restart finds them there), for up to @p timeout_ns; the
 *  demoter must not run meanwhile.  Returns the chunks written. */
unsigned us_store_nvme_flush(us_store_t *store, uint64_t timeout_ns);

/** Move @p key's chunk out of memory onto NVMe now (warm-up to NVMe): it
 *  is demoted as an eviction would (free if on NVMe already).
 *  UCACHE_ERR_UNSUPPORTED without devices, UCACHE_ERR_NOT_FOUND,
 *  UCACHE_ERR_BUSY if it is pinned; a staged chunk is on NVMe: UCACHE_OK. */
ucache_status_t us_store_demote_key(us_store_t *store, const us_key_t *key);

/** Reserve, copy, publish, waiting out grace periods up to @p timeout_ns.
 *  For tools, tests and warm-up; the serving path uses the calls above. */
ucache_status_t us_store_put(us_store_t *store, const us_key_t *key, uint16_t ns,
                             const void *data, size_t length, uint64_t timeout_ns);

#endif
