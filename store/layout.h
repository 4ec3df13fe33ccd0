/*
 * layout.h - the node store's binary layout in exported memory, version 2:
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
 *   +64  segment table: T = us_chunk_table_bytes(length) bytes
 *   +64+T payload (length bytes)
 *
 * Segments (version 2): the payload is cut into US_SEGMENT (16 KiB)
 * segments.  A chunk of one segment has no table and its checksum is the
 * payload's XXH3; a larger one holds one XXH3 per segment (seeded with the
 * header and the segment's index) in its table, padded to 64 bytes, and
 * its checksum is the XXH3 of that table.  A reader of part of a chunk
 * moves and hashes the header, the table and the segments it touches; a
 * reader of the whole chunk needs no table (it recomputes it).
 */
#ifndef US_LAYOUT_H
#define US_LAYOUT_H

#include "util/status.h"
#include "util/time.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define US_LAYOUT_VERSION   2u
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
#define US_SEGMENT          16384u                /* bytes per checksummed segment */
#define US_MAX_SEGMENTS     ((US_MAX_PAYLOAD + US_SEGMENT - 1) / US_SEGMENT) /* 4096 */
#define US_MAX_TABLE        (US_MAX_SEGMENTS * 8u)

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
    uint32_t segment_size;    /* US_SEGMENT                                */
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
    uint64_t checksum;        /* one segment: XXH3_64(payload, seed = XXH3_64(bytes
                                 above)); more: XXH3_64(table, same seed)  */
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

/** Segments of a payload of @p length bytes (an empty one has one). */
static inline uint32_t us_chunk_segments(uint32_t length)
{
    return (length <= US_SEGMENT) ? 1u : (length + US_SEGMENT - 1) / US_SEGMENT;
}

/** Bytes of the segment table of a @p length-byte payload (0: one segment). */
static inline uint32_t us_chunk_table_bytes(uint32_t length)
{
    uint32_t n = us_chunk_segments(length);

    return (n == 1) ? 0u : (n * 8u + 63u) & ~63u;
}

/** Region offset of the payload of the chunk at @p loc (its table, if it
 *  has one, is at loc->hdr_off + US_CHUNK_HDR). */
static inline uint64_t us_loc_payload_off(const us_loc_t *loc)
{
    return loc->hdr_off + US_CHUNK_HDR + us_chunk_table_bytes(loc->length);
}

/**
 * The segments that cover payload bytes [off, off + len) of a @p length-byte
 * payload (off + len <= length): *span_off is segment-aligned, *span_len
 * ends at a segment's end or the payload's.  What a reader of part of a
 * chunk moves and verifies.
 */
static inline void us_chunk_span(uint32_t length, uint64_t off, uint64_t len,
                                 uint64_t *span_off, uint64_t *span_len)
{
    uint64_t s = off / US_SEGMENT * US_SEGMENT;
    uint64_t e = (off + len + US_SEGMENT - 1) / US_SEGMENT * US_SEGMENT;

    e = (e > length) ? length : e;
    *span_off = s;
    *span_len = (e > s) ? e - s : 0;
}

/**
 * Copy @p n bytes of exported memory another thread or node may be changing
 * (an owner's chunk after it was evicted): what is copied counts only once
 * verified.  ThreadSanitizer is told these reads race by design.
 */
void us_copy_racy(void *dst, const void *src, size_t n);

/**
 * The grace rule: a read whose index lookup began at @p t0 (monotonic ns;
 * 0: not a read of an owner's memory) and is not over yet is late when it
 * has taken longer than the owner's grace period - its bytes then count
 * only if its slot still holds the chunk afterwards (us_index_holds).
 */
static inline bool us_read_late(const us_layout_t *layout, uint64_t t0)
{
    return (t0 != 0) && (uc_time_ns() - t0 > layout->grace_ns);
}

/**
 * The one verification of a chunk's bytes, whichever way they came (mapped
 * memory, one-sided gets, an owner's reply, a probe): no byte reaches a
 * caller unless it passed here.
 *
 * @p hdr is the reader's copy of the chunk header, which must name @p key
 * at @p loc (magic, key, version, length; a tombstone never does).  The
 * payload bytes [@p off, @p off + @p len) - a span us_chunk_span() gave, or
 * the whole payload - are at @p bytes; with @p copy_to they are copied there
 * segment by segment and each copy is hashed while it is in cache (@p bytes
 * may then be memory another node changes), else hashed where they are.
 * @p table is the reader's copy of the chunk's segment table (T bytes); it
 * may be NULL when the whole payload is verified (the table is recomputed).
 * @p t0 is when the reader began its index lookup (0: the bytes came in an
 * owner's reply, not from its memory): a read that took longer than the
 * grace period returns UCACHE_INPROGRESS - its bytes count only if a copy
 * of its buckets made now still holds the slot (us_index_holds).
 *
 * UCACHE_OK; UCACHE_INPROGRESS (late, see above); UCACHE_ERR_STALE (another
 * or an unpublished chunk); UCACHE_ERR_CORRUPT (bytes that changed under the
 * read: torn); UCACHE_ERR_INVALID (a span that is not one, no table for a
 * part).  Never logs: torn and stale reads are expected under eviction.
 */
ucache_status_t us_chunk_verify(const us_layout_t *layout, const us_key_t *key,
                                const us_loc_t *loc, const us_chunk_hdr_t *hdr,
                                const void *table, const void *bytes, void *copy_to,
                                uint64_t off, uint64_t len, uint64_t t0);

/**
 * The owner's side: fill in @p hdr's checksum and, for a payload of more
 * than one segment, its segment table at @p table (us_chunk_table_bytes()
 * bytes, padding zeroed), from the @p hdr->length bytes at @p payload.
 */
void us_chunk_seal(us_chunk_hdr_t *hdr, void *table, const void *payload);

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
