/*
 * alloc.h - the allocator of a store's data area: TLSF (two-level
 * segregated fit: O(1) allocate and free, immediate coalescing, bounded
 * fragmentation) over one fixed range, plus the grace quarantine.  It never
 * grows: when it cannot satisfy a request the store evicts.  Freed blocks
 * wait in the quarantine until their grace period has passed, so a remote
 * reader that looked a chunk up just before it was unpublished never reads
 * reused memory.  Not thread-safe: the store's lock covers it.
 */
#ifndef US_ALLOC_H
#define US_ALLOC_H

#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define US_TLSF_SL_LOG2  4                         /* 16 second-level lists  */
#define US_TLSF_SL       (1u << US_TLSF_SL_LOG2)
#define US_TLSF_FL       40

typedef struct us_quarantined {
    uint64_t off;          /* block offset */
    uint64_t size;         /* block bytes  */
    uint64_t expiry_ns;    /* reusable from this time on */
} us_quarantined_t;

typedef struct us_alloc {
    char     *base;        /* data area */
    uint64_t  len;         /* usable bytes (the end sentinel excluded) */
    uint64_t  free_bytes;  /* in free lists */
    uint64_t  used_bytes;  /* allocated, quarantine included */
    uint64_t  quarantine_bytes;
    uint64_t  held;        /* bytes at the end not usable yet (one used
                              block at held_off, counted in used_bytes):
                              memory still being committed (us_alloc_grow) */
    uint64_t  held_off;
    uint64_t  grace_ns;
    uint64_t  fl_bitmap;
    uint32_t  sl_bitmap[US_TLSF_FL];
    uint64_t  heads[US_TLSF_FL][US_TLSF_SL];   /* block offset + 1; 0 = empty */
    us_quarantined_t *q;   /* ring */
    uint64_t  q_cap, q_head, q_count;
} us_alloc_t;

/** Manage [base, base + len); len is a multiple of 64.  The allocator's
 *  quarantine ring is heap memory that grows as needed and is freed by
 *  us_alloc_cleanup(). */
ucache_status_t us_alloc_init(us_alloc_t *a, void *base, uint64_t len,
                              uint64_t grace_ns);
void us_alloc_cleanup(us_alloc_t *a);

/** Right after init: only the first @p usable bytes (rounded down to 64)
 *  may be allocated; the rest is held back until us_alloc_grow() hands it
 *  over.  No-op if @p usable leaves fewer than 64 bytes to hold. */
void us_alloc_hold(us_alloc_t *a, uint64_t usable);

/** Make the next @p bytes (rounded up to 64) of the held tail usable; a
 *  remainder under 64 bytes goes with them.  Returns the bytes released
 *  (0 when nothing is held).  Writes one block header in the tail. */
uint64_t us_alloc_grow(us_alloc_t *a, uint64_t bytes);

/** Block size (multiple of 64) that holds @p bytes. */
uint64_t us_alloc_block_size(uint64_t bytes);

/** Allocate a block of at least @p bytes, the first 16 of which are the
 *  allocator's (the caller's data starts at offset 16); UCACHE_ERR_NO_MEMORY
 *  if no free block is large enough now (quarantined memory is not used). */
ucache_status_t us_alloc_get(us_alloc_t *a, uint64_t bytes, uint64_t *off_p);

/** Size of the allocated block at @p off. */
uint64_t us_alloc_size(const us_alloc_t *a, uint64_t off);

/** Free a block that was never visible to readers: reusable at once. */
void us_alloc_put(us_alloc_t *a, uint64_t off);

/** Free a block readers may still be reading: it is reused only after
 *  grace_ns from @p now_ns.  UCACHE_ERR_NO_MEMORY if the quarantine ring
 *  cannot grow (the block then stays allocated for good). */
ucache_status_t us_alloc_retire(us_alloc_t *a, uint64_t off, uint64_t now_ns);

/** Free quarantined blocks whose grace has passed; returns bytes freed. */
uint64_t us_alloc_reclaim(us_alloc_t *a, uint64_t now_ns);

/** Expiry of the oldest quarantined block, 0 if none. */
uint64_t us_alloc_next_expiry(const us_alloc_t *a);

/** Largest block a request could get now (for stats and tests). */
uint64_t us_alloc_largest_free(const us_alloc_t *a);

/** Walk every block and check the free lists against it; OK or
 *  UCACHE_ERR_CORRUPT (tests call this after every mutation). */
ucache_status_t us_alloc_check(const us_alloc_t *a);

/** After us_alloc_check(): the @p n block offsets the caller holds (any
 *  order) and the quarantine each start a used block, none twice; with
 *  @p whole, they and the held tail are every used block.  OK or
 *  UCACHE_ERR_CORRUPT (a block freed twice, or lost). */
ucache_status_t us_alloc_check_owners(const us_alloc_t *a, uint64_t *offs, size_t n,
                                      bool whole);

#endif
