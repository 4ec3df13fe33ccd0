/*
 * alloc.c - TLSF over a store's data area, with the grace quarantine.
 * Each block starts with a 16-byte header the allocator owns (size | flags,
 * offset of the physical predecessor); a free block keeps its list links
 * in the next 16 bytes.  The area ends in a used 64-byte sentinel, so every
 * block has a successor.  Invariant: free blocks are never adjacent (they
 * are coalesced on free), and every byte of the area is in exactly one block.
 */
#include "alloc.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

#define US_BLK_FREE   1ull
#define US_BLK_FLAGS  63ull
#define US_BLK_NONE   UINT64_MAX
#define US_BLK_MIN    64ull
#define US_SMALL_LIM  (1ull << (US_TLSF_SL_LOG2 + 6))   /* 1 KiB */
#define US_QUARANTINE_FIRST 64   /* ring entries at first; it doubles as needed */

typedef struct us_blk {
    uint64_t size_flags;   /* size (multiple of 64) | US_BLK_FREE */
    uint64_t prev_phys;    /* offset of the block before, or US_BLK_NONE */
    uint64_t next_free;    /* free blocks only: offset + 1, 0 = end */
    uint64_t prev_free;
} us_blk_t;

static inline us_blk_t *blk(const us_alloc_t *a, uint64_t off)
{
    return (us_blk_t *)(a->base + off);
}

static inline uint64_t blk_size(const us_blk_t *b)
{
    return b->size_flags & ~US_BLK_FLAGS;
}

static inline int blk_is_free(const us_blk_t *b)
{
    return (b->size_flags & US_BLK_FREE) != 0;
}

static inline int msb64(uint64_t v)
{
    return 63 - __builtin_clzll(v);
}

static void mapping(uint64_t size, int *fl_p, int *sl_p)
{
    int msb;

    if (size < US_SMALL_LIM) {
        *fl_p = 0;
        *sl_p = (int)(size / US_BLK_MIN);
        return;
    }
    msb   = msb64(size);
    *fl_p = msb - (US_TLSF_SL_LOG2 + 6) + 1;
    *sl_p = (int)((size >> (msb - US_TLSF_SL_LOG2)) & (US_TLSF_SL - 1));
}

static void list_insert(us_alloc_t *a, uint64_t off)
{
    us_blk_t *b = blk(a, off);
    int fl, sl;

    mapping(blk_size(b), &fl, &sl);
    b->prev_free = 0;
    b->next_free = a->heads[fl][sl];
    if (b->next_free != 0) {
        blk(a, b->next_free - 1)->prev_free = off + 1;
    }
    a->heads[fl][sl] = off + 1;
    a->fl_bitmap     |= 1ull << fl;
    a->sl_bitmap[fl] |= 1u << sl;
    a->free_bytes    += blk_size(b);
}

static void list_remove(us_alloc_t *a, uint64_t off)
{
    us_blk_t *b = blk(a, off);
    int fl, sl;

    mapping(blk_size(b), &fl, &sl);
    if (b->prev_free != 0) {
        blk(a, b->prev_free - 1)->next_free = b->next_free;
    } else {
        a->heads[fl][sl] = b->next_free;
        if (b->next_free == 0) {
            a->sl_bitmap[fl] &= ~(1u << sl);
            if (a->sl_bitmap[fl] == 0) {
                a->fl_bitmap &= ~(1ull << fl);
            }
        }
    }
    if (b->next_free != 0) {
        blk(a, b->next_free - 1)->prev_free = b->prev_free;
    }
    a->free_bytes -= blk_size(b);
}

uint64_t us_alloc_block_size(uint64_t bytes)
{
    if (bytes < US_BLK_MIN) {
        return US_BLK_MIN;
    }
    return (bytes + US_BLK_MIN - 1) & ~(US_BLK_MIN - 1);
}

ucache_status_t us_alloc_init(us_alloc_t *a, void *base, uint64_t len,
                              uint64_t grace_ns)
{
    us_blk_t *first, *sentinel;

    if ((len % US_BLK_MIN != 0) || (len < 2 * US_BLK_MIN)) {
        UC_ERROR("allocator: bad data area length %llu", (unsigned long long)len);
        return UCACHE_ERR_INVALID;
    }
    memset(a, 0, sizeof(*a));
    a->base     = base;
    a->len      = len - US_BLK_MIN;
    a->grace_ns = grace_ns;
    a->q_cap    = US_QUARANTINE_FIRST;
    a->q        = calloc(a->q_cap, sizeof(*a->q));
    if (a->q == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    first             = blk(a, 0);
    first->size_flags = a->len | US_BLK_FREE;
    first->prev_phys  = US_BLK_NONE;
    sentinel             = blk(a, a->len);
    sentinel->size_flags = US_BLK_MIN;
    sentinel->prev_phys  = 0;
    list_insert(a, 0);
    return UCACHE_OK;
}

void us_alloc_cleanup(us_alloc_t *a)
{
    free(a->q);
    a->q = NULL;
}

void us_alloc_hold(us_alloc_t *a, uint64_t usable)
{
    uint64_t off;

    usable &= ~(US_BLK_MIN - 1);
    if ((a->held != 0) || (a->used_bytes != 0) || (usable + US_BLK_MIN > a->len)) {
        return;
    }
    if (usable == 0) {               /* the whole area: the first block */
        list_remove(a, 0);
        blk(a, 0)->size_flags = a->len;
        a->used_bytes = a->len;
        a->held       = a->len;
        a->held_off   = 0;
        return;
    }
    /* split the free block in two and keep the second, as us_alloc_get does */
    if (us_alloc_get(a, usable, &off) != UCACHE_OK) {
        return;
    }
    a->held     = blk_size(blk(a, usable));
    a->held_off = usable;
    blk(a, usable)->size_flags = a->held;   /* used, not free */
    list_remove(a, usable);
    a->used_bytes += a->held;
    us_alloc_put(a, off);
}

uint64_t us_alloc_grow(us_alloc_t *a, uint64_t bytes)
{
    uint64_t off = a->held_off, n = us_alloc_block_size(bytes), noff;
    us_blk_t *b;

    if (a->held == 0) {
        return 0;
    }
    if (n + US_BLK_MIN > a->held) {
        n = a->held;
    } else {                         /* the held block moves up by n */
        noff = off + n;
        b    = blk(a, noff);
        b->size_flags = a->held - n;
        b->prev_phys  = off;
        blk(a, noff + (a->held - n))->prev_phys = noff;
        blk(a, off)->size_flags = n;
        a->held_off = noff;
    }
    a->held -= n;
    us_alloc_put(a, off);            /* coalesces with the usable part */
    return n;
}

/* Smallest list whose every block fits @p size, or -1. */
static int find_list(const us_alloc_t *a, uint64_t size, int *fl_p, int *sl_p)
{
    uint64_t fl_map;
    uint32_t sl_map;
    int fl, sl, msb;

    if (size >= US_SMALL_LIM) {
        msb = msb64(size);
        size += (1ull << (msb - US_TLSF_SL_LOG2)) - 1; /* round up to a list */
    }
    mapping(size, &fl, &sl);
    if (fl >= US_TLSF_FL) {
        return -1;
    }
    sl_map = a->sl_bitmap[fl] & (~0u << sl);
    if (sl_map == 0) {
        fl_map = (fl + 1 < 64) ? (a->fl_bitmap & (~0ull << (fl + 1))) : 0;
        if (fl_map == 0) {
            return -1;
        }
        fl     = __builtin_ctzll(fl_map);
        sl_map = a->sl_bitmap[fl];
    }
    *fl_p = fl;
    *sl_p = __builtin_ctz(sl_map);
    return 0;
}

/* First fit among the first few blocks of @p size's own list: TLSF's
 * rounded search skips blocks of exactly the size, which in a cache of
 * equal-sized chunks are most of the freed ones. */
static uint64_t find_exact(const us_alloc_t *a, uint64_t size)
{
    uint64_t p;
    unsigned n;
    int fl, sl;

    mapping(size, &fl, &sl);
    if (fl >= US_TLSF_FL) {
        return 0;
    }
    for (p = a->heads[fl][sl], n = 0; (p != 0) && (n < 8);
         p = blk(a, p - 1)->next_free, n++) {
        if (blk_size(blk(a, p - 1)) >= size) {
            return p;
        }
    }
    return 0;
}

ucache_status_t us_alloc_get(us_alloc_t *a, uint64_t bytes, uint64_t *off_p)
{
    uint64_t size = us_alloc_block_size(bytes), off, rest, roff, p;
    us_blk_t *b, *r;
    int fl, sl;

    if ((bytes == 0) || (size > a->len)) {
        return UCACHE_ERR_NO_MEMORY;
    }
    p = find_exact(a, size);
    if (p != 0) {
        off = p - 1;
    } else if (find_list(a, size, &fl, &sl) == 0) {
        off = a->heads[fl][sl] - 1;
    } else {
        return UCACHE_ERR_NO_MEMORY;
    }
    list_remove(a, off);
    b    = blk(a, off);
    rest = blk_size(b) - size;
    if (rest >= US_BLK_MIN) {            /* split; the remainder stays free */
        roff          = off + size;
        r             = blk(a, roff);
        r->size_flags = rest | US_BLK_FREE;
        r->prev_phys  = off;
        blk(a, roff + rest)->prev_phys = roff;
        list_insert(a, roff);
        b->size_flags = size;
    } else {
        b->size_flags = blk_size(b);
    }
    a->used_bytes += blk_size(b);
    *off_p = off;
    return UCACHE_OK;
}

uint64_t us_alloc_size(const us_alloc_t *a, uint64_t off)
{
    return blk_size(blk(a, off));
}

void us_alloc_put(us_alloc_t *a, uint64_t off)
{
    us_blk_t *b = blk(a, off), *n;
    uint64_t size = blk_size(b), prev = b->prev_phys, noff;

    a->used_bytes -= size;
    if ((prev != US_BLK_NONE) && blk_is_free(blk(a, prev))) {
        list_remove(a, prev);
        size += blk_size(blk(a, prev));
        off   = prev;
    }
    noff = off + size;
    n    = blk(a, noff);
    if (blk_is_free(n)) {
        list_remove(a, noff);
        size += blk_size(n);
    }
    b             = blk(a, off);
    b->size_flags = size | US_BLK_FREE;
    blk(a, off + size)->prev_phys = off;
    list_insert(a, off);
}

ucache_status_t us_alloc_retire(us_alloc_t *a, uint64_t off, uint64_t now_ns)
{
    us_quarantined_t *q;
    uint64_t i, cap;

    if (a->q_count == a->q_cap) {        /* grow the ring, keeping its order */
        cap = a->q_cap * 2;
        q   = malloc(cap * sizeof(*q));
        if (q == NULL) {
            return UCACHE_ERR_NO_MEMORY;
        }
        for (i = 0; i < a->q_count; i++) {
            q[i] = a->q[(a->q_head + i) % a->q_cap];
        }
        free(a->q);
        a->q      = q;
        a->q_cap  = cap;
        a->q_head = 0;
    }
    q = &a->q[(a->q_head + a->q_count) % a->q_cap];
    q->off       = off;
    q->size      = blk_size(blk(a, off));
    q->expiry_ns = now_ns + a->grace_ns;
    a->q_count++;
    a->quarantine_bytes += q->size;
    return UCACHE_OK;
}

uint64_t us_alloc_reclaim(us_alloc_t *a, uint64_t now_ns)
{
    uint64_t freed = 0;
    us_quarantined_t *q;

    /* expiries are in retire order: the grace period is one constant */
    while (a->q_count > 0) {
        q = &a->q[a->q_head];
        if (q->expiry_ns > now_ns) {
            break;
        }
        a->quarantine_bytes -= q->size;
        freed += q->size;
        us_alloc_put(a, q->off);
        a->q_head = (a->q_head + 1) % a->q_cap;
        a->q_count--;
    }
    return freed;
}

uint64_t us_alloc_next_expiry(const us_alloc_t *a)
{
    return (a->q_count == 0) ? 0 : a->q[a->q_head].expiry_ns;
}

uint64_t us_alloc_largest_free(const us_alloc_t *a)
{
    uint64_t best = 0, off;
    int fl, sl;

    if (a->fl_bitmap == 0) {
        return 0;
    }
    fl = msb64(a->fl_bitmap);
    sl = 31 - __builtin_clz(a->sl_bitmap[fl]);
    for (off = a->heads[fl][sl]; off != 0; off = blk(a, off - 1)->next_free) {
        if (blk_size(blk(a, off - 1)) > best) {
            best = blk_size(blk(a, off - 1));
        }
    }
    return best;
}

ucache_status_t us_alloc_check(const us_alloc_t *a)
{
    uint64_t off = 0, prev = US_BLK_NONE, free_bytes = 0, listed = 0, p;
    int fl, sl, prev_free = 0;
    const us_blk_t *b;

    while (off < a->len) {
        b = blk(a, off);
        if ((blk_size(b) < US_BLK_MIN) || (blk_size(b) > a->len - off) ||
            (b->prev_phys != prev) || (blk_is_free(b) && prev_free)) {
            return UCACHE_ERR_CORRUPT;
        }
        if (blk_is_free(b)) {
            free_bytes += blk_size(b);
        }
        prev_free = blk_is_free(b);
        prev      = off;
        off      += blk_size(b);
    }
    if ((off != a->len) || (blk(a, off)->prev_phys != prev) ||
        (free_bytes != a->free_bytes) ||
        (a->free_bytes + a->used_bytes != a->len)) {
        return UCACHE_ERR_CORRUPT;
    }
    for (fl = 0; fl < US_TLSF_FL; fl++) {
        for (sl = 0; sl < (int)US_TLSF_SL; sl++) {
            if (((a->heads[fl][sl] != 0) != !!(a->sl_bitmap[fl] & (1u << sl)))) {
                return UCACHE_ERR_CORRUPT;
            }
            for (p = a->heads[fl][sl]; p != 0; p = blk(a, p - 1)->next_free) {
                if (!blk_is_free(blk(a, p - 1))) {
                    return UCACHE_ERR_CORRUPT;
                }
                listed += blk_size(blk(a, p - 1));
            }
        }
    }
    return (listed == free_bytes) ? UCACHE_OK : UCACHE_ERR_CORRUPT;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

    return (a > b) - (a < b);
}

/* How many of the sorted @p v[0..n) equal @p off. */
static size_t count_at(const uint64_t *v, size_t n, uint64_t off)
{
    size_t lo = 0, hi = n, c = 0;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (v[mid] < off) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    while ((lo + c < n) && (v[lo + c] == off)) {
        c++;
    }
    return c;
}

ucache_status_t us_alloc_check_owners(const us_alloc_t *a, uint64_t *offs, size_t n,
                                      bool whole)
{
    uint64_t *q = malloc((a->q_count + 1) * sizeof(*q)), off;
    size_t i, c, claimed = 0;
    bool bad = false;
    const us_blk_t *b;

    if (q == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    for (i = 0; i < a->q_count; i++) {
        q[i] = a->q[(a->q_head + i) % a->q_cap].off;
    }
    qsort(q, a->q_count, sizeof(*q), cmp_u64);
    qsort(offs, n, sizeof(*offs), cmp_u64);
    for (off = 0; (off < a->len) && !bad; off += blk_size(b)) {
        b = blk(a, off);
        if (blk_is_free(b)) {
            continue;
        }
        c = count_at(offs, n, off) + count_at(q, a->q_count, off);
        if ((a->held != 0) && (off == a->held_off)) {
            bad = (c != 0);
        } else {
            bad = (c > 1) || (whole && (c == 0));
        }
        claimed += c;
    }
    free(q);
    /* an offset that starts no used block was not counted */
    return (bad || (claimed != n + a->q_count)) ? UCACHE_ERR_CORRUPT : UCACHE_OK;
}
