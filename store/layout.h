/*
 * layout.h - the node store's binary layout in exported memory, version 1:
 * what a remote reader walks with one-sided reads alone.  The owner writes
 * it (store.c); readers on other nodes parse and verify it (layout.c) and
 * trust nothing in it: every field is bounds-checked, every chunk verified
 * (key, version, length, checksum) before a byte reaches a caller.
 *
 * Region (one exported region per node, offsets from its base):
 *
 *   0            us_super_t, padded to US_SUPER_SIZE (4 KiB)
 *   index_off    nbuckets buckets of US_BUCKET_SIZE (64) bytes = 4 slots each
 *   data_off     data area: blocks of 64-byte granules
 *
 * Slot (16 bytes, two little-endian u64 words; word0 == 0 means empty):
 *   word0 = version << 16 | fingerprint           (version 48 bits, nonzero)
 *   word1 = granule << 26 | length                (block offset / 64 in the
 *                                                  data area, payload bytes)
 * A key has two candidate buckets (us_key_buckets); a reader fetches both
 * (128 bytes, one batch) and tries every slot whose fingerprint matches.
 *
 * Block at data_off + granule * 64:
 *   +0   16 bytes the owner's allocator uses (never read by readers)
 *   +16  us_chunk_hdr_t (48 bytes)   <- a reader reads from here
 *   +64  payload (length bytes)
 */
#ifndef US_LAYOUT_H
#define US_LAYOUT_H

#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define US_LAYOUT_VERSION   1u
#define US_SUPER_MAGIC      0x31455246534355ull   /* "UCSFRE1" */
#define US_SUPER_SIZE       4096u
#define US_CHUNK_MAGIC      0x48434355u           /* "UCCH" */
#define US_GRANULE          64u
#define US_BUCKET_SIZE      64u
#define US_BUCKET_SLOTS     4u
#define US_SLOT_SIZE        16u
#define US_BLOCK_HDR        16u                   /* allocator-private */
#define US_CHUNK_HDR        48u
#define US_CHUNK_OVERHEAD   (US_BLOCK_HDR + US_CHUNK_HDR)  /* 64 */
#define US_MAX_PAYLOAD      ((1u << 26) - 1u)     /* slot length field */
#define US_MAX_GRANULES     (1ull << 38)          /* 16 TiB data area   */
#define US_VERSION_MASK     ((1ull << 48) - 1u)

/* A chunk's 128-bit key: H(object URI, object version, chunk index). */
typedef struct us_key {
    uint64_t hi;
    uint64_t lo;
} us_key_t;

/* The superblock: region geometry and the rules readers must follow. */
typedef struct us_super {
    uint64_t magic;
    uint32_t layout_version;
    uint32_t super_size;
    uint64_t incarnation;     /* random per store instance                */
    uint64_t region_len;
    uint64_t index_off;
    uint64_t nbuckets;        /* power of two                              */
    uint64_t data_off;
    uint64_t data_len;        /* multiple of US_GRANULE                    */
    uint64_t grace_ns;        /* a lookup + chunk read must complete within
                                 this, measured by the reader from before
                                 its bucket read, or see its slot unchanged
                                 after it (us_index_holds), or be discarded */
    uint32_t bucket_size;
    uint32_t bucket_slots;
    uint32_t max_payload;
    uint32_t reserved;
    uint64_t checksum;        /* XXH64 of the bytes above                  */
} us_super_t;

/* The chunk header; immutable while the chunk is published, except that
 * unpublishing zeroes `version` (the tombstone). */
typedef struct us_chunk_hdr {
    uint32_t magic;
    uint32_t flags;           /* reserved, 0 */
    uint64_t key_hi;
    uint64_t key_lo;
    uint64_t version;         /* == the slot's version while published     */
    uint32_t length;          /* payload bytes                             */
    uint32_t ns;              /* namespace the chunk is accounted to       */
    uint64_t checksum;        /* XXH3_64(payload, seed = XXH3_64(bytes above)) */
} us_chunk_hdr_t;

_Static_assert(sizeof(us_chunk_hdr_t) == US_CHUNK_HDR, "chunk header size");
_Static_assert(sizeof(us_super_t) <= US_SUPER_SIZE, "superblock size");

/* A decoded slot: where a chunk is and which version it must carry. */
typedef struct us_loc {
    uint64_t version;         /* 48 bits, nonzero */
    uint64_t hdr_off;         /* region offset of the chunk header         */
    uint32_t length;          /* payload bytes                             */
} us_loc_t;

/* Geometry a reader keeps per owner after parsing its superblock. */
typedef struct us_layout {
    uint64_t incarnation;
    uint64_t region_len;
    uint64_t index_off;
    uint64_t nbuckets;
    uint64_t data_off;
    uint64_t data_len;
    uint64_t grace_ns;
    uint32_t max_payload;
} us_layout_t;

/* Reader-side outcome counters (the caller owns and sums them). */
typedef struct us_read_stats {
    uint64_t ok;
    uint64_t not_found;
    uint64_t torn;            /* checksum mismatch: bytes changed under us */
    uint64_t stale;           /* key/version/length mismatch, tombstone    */
    uint64_t late;            /* read exceeded the grace period and its
                                 slot changed: discarded                    */
} us_read_stats_t;

static inline uint16_t us_key_fp(const us_key_t *key)
{
    uint16_t fp = (uint16_t)(key->hi >> 48);

    return (fp == 0) ? 1 : fp;
}

/* The two candidate buckets of @p key (distinct when nbuckets > 1). */
static inline void us_key_buckets(const us_key_t *key, uint64_t nbuckets,
                                  uint64_t b_p[2])
{
    uint64_t mask = nbuckets - 1;

    b_p[0] = key->lo & mask;
    b_p[1] = (key->hi ^ (key->hi >> 29)) & mask;
    if ((b_p[1] == b_p[0]) && (nbuckets > 1)) {
        b_p[1] = (b_p[0] + 1) & mask;
    }
}

static inline uint64_t us_slot_word0(uint64_t version, uint16_t fp)
{
    return (version << 16) | fp;
}

static inline uint64_t us_slot_word1(uint64_t granule, uint32_t length)
{
    return (granule << 26) | length;
}

/** Parse and check a superblock copied from an owner. */
ucache_status_t us_layout_parse(const void *buf, size_t len, us_layout_t *layout_p);

/** Region offset of bucket @p b; buckets are US_BUCKET_SIZE bytes. */
static inline uint64_t us_layout_bucket_off(const us_layout_t *l, uint64_t b)
{
    return l->index_off + b * US_BUCKET_SIZE;
}

/**
 * Decode one slot (US_SLOT_SIZE bytes copied from an owner's index): false
 * if it is empty or points outside the data area (torn or garbage), else
 * its location and fingerprint.
 */
bool us_slot_decode(const us_layout_t *layout, const void *slot, us_loc_t *loc,
                    uint16_t *fp_p);

/**
 * Find the slots of @p buckets (two copied buckets, 2 * US_BUCKET_SIZE bytes,
 * in the order us_key_buckets() gives) that may hold @p key; decoded slots
 * whose location does not fit the layout are dropped.  Returns the number
 * of candidates written to @p locs (at most 2 * US_BUCKET_SLOTS).
 */
unsigned us_index_match(const us_layout_t *layout, const void *buckets,
                        const us_key_t *key, us_loc_t *locs);

/* Orders a reader's copy of a chunk before its second look at the slot
 * (a seqlock reader's load-load fence).  GCC's ThreadSanitizer rejects
 * fences; its builds copy racy memory under ignore-reads annotations, and
 * a compiler barrier keeps the order on x86, the only target it runs on. */
static inline void us_read_fence(void)
{
#if defined(__SANITIZE_THREAD__)
    __asm__ __volatile__("" ::: "memory");
#else
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
#endif
}

/**
 * Whether @p buckets (both of @p key's buckets, copied after its chunk
 * was) still hold the slot @p loc was decoded from: the same version at the
 * same place.  Versions are never reused, so a chunk whose slot still holds
 * it was not unpublished before this copy, and its memory was not reused
 * while it was read before: how a read that outlasted the grace period is
 * still accepted (a seqlock's second look).
 */
bool us_index_holds(const us_layout_t *layout, const void *buckets,
                    const us_key_t *key, const us_loc_t *loc);

/**
 * Verify a chunk read one-sidedly: @p hdr and @p payload are the reader's
 * copies.  OK only if magic, key, version and length match @p loc and the
 * checksum over the payload matches.  UCACHE_ERR_STALE for a different or
 * unpublished chunk, UCACHE_ERR_CORRUPT for bytes that changed under the
 * read (torn).  Never logs: torn reads are expected under eviction races.
 */
ucache_status_t us_chunk_verify(const us_chunk_hdr_t *hdr, const void *payload,
                                const us_key_t *key, const us_loc_t *loc);

/** The checksum a chunk header carries (owner: before publishing). */
uint64_t us_chunk_checksum(const us_chunk_hdr_t *hdr, const void *payload);

/* One read of a batch (us_read_raw_batch). */
typedef struct us_read_op {
    us_key_t        key;      /* in */
    void           *dst;      /* in: payload lands here (garbage unless OK) */
    size_t          cap;      /* in: bytes at dst */
    uint64_t        range_off; /* in: with range_len, copy only this part of */
    size_t          range_len; /*     the payload (verified in place first);  */
                               /*     range_len 0: the whole payload          */
    size_t          length;   /* out: payload bytes, on UCACHE_OK */
    ucache_status_t status;   /* out */
} us_read_op_t;

#define US_READ_BATCH 16      /* keys whose memory accesses overlap */

/**
 * The raw-memory read path for @p n keys at once: what a remote reader
 * with many reads outstanding does.  Each op ends with its own status as
 * us_read_raw() describes; returns UCACHE_OK if all succeeded, else the
 * status of a failed one.
 */
ucache_status_t us_read_raw_batch(const us_layout_t *layout, const void *base,
                                  us_read_op_t *ops, unsigned n, unsigned attempts,
                                  us_read_stats_t *stats);

/**
 * The raw-memory read path: what a remote reader does, over a mapped copy
 * of an owner's region at @p base.  Copies both buckets, then the header
 * and payload (payload straight into @p dst), then verifies the copies;
 * a read that took longer than the grace period counts only if its slot
 * still holds it afterwards, and is discarded otherwise.  Torn or
 * stale reads are retried (@p attempts in all).  On UCACHE_OK *len_p is the
 * payload length.  UCACHE_ERR_NOT_FOUND if no slot holds the key,
 * UCACHE_ERR_MSG_TRUNCATED if @p cap is too small, UCACHE_ERR_TIMEOUT if
 * the read outlasted the grace period, else the last verification error
 * (UCACHE_ERR_STALE, UCACHE_ERR_CORRUPT).  Counts every attempt's outcome
 * in @p stats (may be NULL).  The bytes at @p dst are the caller's only on
 * UCACHE_OK: they are verified there, after the copy.
 */
ucache_status_t us_read_raw(const us_layout_t *layout, const void *base,
                            const us_key_t *key, void *dst, size_t cap,
                            size_t *len_p, unsigned attempts,
                            us_read_stats_t *stats);

#endif
