/*
 * test_store.c - the node store: layout parsing and verification (every
 * corruption rejected), the TLSF allocator and its quarantine, the S3-FIFO
 * policy, the owner API (capacity, pins, quotas, index conflicts, grace),
 * a concurrent fill/evict vs raw-reader stress test, and a store over a
 * transport-exported region read through the transport.
 */
#include "store/alloc.h"
#include "store/evict.h"
#include "store/store.h"
#include "transport/transport.h"
#include "util/config.h"
#include "util/time.h"
#include "../common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <xxhash.h>

#define MiB (1ull << 20)
#define KiB 1024ull

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static us_key_t key_of(uint64_t id)
{
    /* keys are hashes in production; splitmix64 spreads test ids alike */
    uint64_t z = id + 0x9e3779b97f4a7c15ull;
    us_key_t k;

    z    = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z    = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    k.hi = z ^ (z >> 31);
    z    = k.hi + 0x9e3779b97f4a7c15ull;
    z    = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z    = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    k.lo = z ^ (z >> 31);
    return k;
}

/* The bytes chunk @p id holds: a function of the id alone.  With @p check
 * set, compares instead of writing and returns the bytes that differ. */
static size_t pattern(uint8_t *p, size_t len, uint64_t id, int check)
{
    uint64_t x = id * 0x2545f4914f6cdd1dull + 1, w;
    size_t i, bad = 0;

    for (i = 0; i + 8 <= len; i += 8) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        if (!check) {
            memcpy(p + i, &x, 8);
        } else {
            memcpy(&w, p + i, 8);
            bad += (w != x) ? 8 : 0;
        }
    }
    for (; i < len; i++) {
        if (!check) {
            p[i] = (uint8_t)(id + i);
        } else {
            bad += (p[i] != (uint8_t)(id + i));
        }
    }
    return bad;
}

static void fill_pattern(uint8_t *p, size_t len, uint64_t id)
{
    pattern(p, len, id, 0);
}

static size_t pattern_bad(const uint8_t *p, size_t len, uint64_t id)
{
    return pattern((uint8_t *)p, len, id, 1);
}

static us_store_t *make_store(size_t len, uint64_t grace_ns, size_t index_chunk,
                              size_t max_payload)
{
    us_store_params_t p = { .len = len, .grace_ns = grace_ns,
                            .index_chunk = index_chunk, .max_payload = max_payload,
                            .lock = 1 };
    us_store_t *s = NULL;

    CU_ASSERT_EQUAL_FATAL(us_store_create(&p, &s), UCACHE_OK);
    return s;
}

/* One source buffer for the main thread's puts, so the heap (and RSS)
 * does not move while a test measures the store; freed by main(). */
static uint8_t *put_buf;
static size_t put_buf_len;

static ucache_status_t put_id(us_store_t *s, uint64_t id, uint16_t ns, size_t len)
{
    us_key_t k = key_of(id);

    if (put_buf_len < len) {
        free(put_buf);
        put_buf     = malloc(len);
        put_buf_len = (put_buf == NULL) ? 0 : len;
        if (put_buf == NULL) {
            return UCACHE_ERR_NO_MEMORY;
        }
    }
    fill_pattern(put_buf, len, id);
    return us_store_put(s, &k, ns, put_buf, len, 5 * UC_NSEC_PER_SEC);
}

/* Read @p id through the raw path; 0 if it is there with exact bytes, 1 if
 * missing, 2 if wrong. */
static int get_id(us_store_t *s, uint64_t id, size_t len)
{
    uint8_t *buf = malloc(len ? len : 1);
    us_key_t k = key_of(id);
    size_t got = 0;
    ucache_status_t st;
    int ret;

    st = us_read_raw(us_store_layout(s), us_store_base(s), &k, buf, len, &got, 3,
                     NULL);
    if (st != UCACHE_OK) {
        ret = 1;
    } else {
        ret = ((got != len) || pattern_bad(buf, len, id)) ? 2 : 0;
    }
    free(buf);
    return ret;
}

static uint64_t rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) {
            rss = 0;
        }
        fclose(f);
    }
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void check_budget(us_store_t *s)
{
    us_store_stats_t st;

    us_store_stats(s, &st);
    CU_ASSERT(st.bytes_used + st.bytes_free == st.data_bytes - 64);
    CU_ASSERT(st.bytes_grace <= st.bytes_used);
    CU_ASSERT(st.bytes_cached <= st.bytes_used);
    CU_ASSERT(st.region_bytes >= st.index_bytes + st.data_bytes + US_SUPER_SIZE);
    CU_ASSERT(st.slots_used <= st.slots);
}

/* ------------------------------------------------------------------------ */
/* Layout                                                                    */
/* ------------------------------------------------------------------------ */

static void test_layout_super(void)
{
    us_store_t *s = make_store(16 * MiB, UC_NSEC_PER_SEC, 64 * KiB, MiB);
    uint8_t sb[US_SUPER_SIZE];
    us_super_t *h = (us_super_t *)sb;
    us_layout_t l;

    memcpy(sb, us_store_base(s), sizeof(sb));
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_OK);
    CU_ASSERT_EQUAL(l.region_len, 16 * MiB);
    CU_ASSERT_EQUAL(l.grace_ns, UC_NSEC_PER_SEC);
    CU_ASSERT_EQUAL(l.max_payload, MiB);
    CU_ASSERT(l.nbuckets * US_BUCKET_SLOTS >= 2 * (16 * MiB / (64 * KiB)));
    CU_ASSERT(l.data_off + l.data_len <= l.region_len);

    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(us_super_t) - 1, &l), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(us_layout_parse(NULL, sizeof(sb), &l), UCACHE_ERR_INVALID);
    h->magic ^= 1;
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_ERR_INVALID);
    h->magic ^= 1;
    h->layout_version = 2;
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_ERR_UNSUPPORTED);
    h->layout_version = US_LAYOUT_VERSION;
    h->nbuckets ^= 4;                         /* a flipped bit: checksum */
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_ERR_CORRUPT);
    h->nbuckets ^= 4;
    /* a well-checksummed superblock that lies about its geometry */
    h->data_len = h->region_len;
    h->checksum = XXH64(h, offsetof(us_super_t, checksum), 0);
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_ERR_INVALID);
    memcpy(sb, us_store_base(s), sizeof(sb));
    h->nbuckets = 3;
    h->checksum = XXH64(h, offsetof(us_super_t, checksum), 0);
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_ERR_INVALID);
    /* an index offset near 2^64: index_off + nbuckets * 64 wraps to 0, so
     * every older check passed and readers indexed far outside the region
     * (issue [2/11] #3) */
    memcpy(sb, us_store_base(s), sizeof(sb));
    h->index_off = (uint64_t)0 - h->nbuckets * US_BUCKET_SIZE;  /* index_end: 0 */
    h->checksum = XXH64(h, offsetof(us_super_t, checksum), 0);
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_ERR_INVALID);
    us_store_destroy(s);
}

/* Corrupt a payload byte, the header, the slot: the verifier rejects each. */
static void test_layout_corruption(void)
{
    us_store_t *s = make_store(16 * MiB, UC_NSEC_PER_SEC, 64 * KiB, MiB);
    const us_layout_t *l = us_store_layout(s);
    char *base = us_store_base(s);
    us_key_t k = key_of(7);
    us_read_stats_t rs = {0};
    uint8_t buf[8192];
    us_loc_t loc;
    size_t got;
    uint64_t b[2], *slot = NULL, save;
    unsigned i, j, f;
    struct { size_t off; uint8_t mask; ucache_status_t expect; } hdr_cases[] = {
        {offsetof(us_chunk_hdr_t, magic),    1,    UCACHE_ERR_STALE},
        {offsetof(us_chunk_hdr_t, key_hi),   0x10, UCACHE_ERR_STALE},
        {offsetof(us_chunk_hdr_t, key_lo),   0x80, UCACHE_ERR_STALE},
        {offsetof(us_chunk_hdr_t, version),  2,    UCACHE_ERR_STALE},
        {offsetof(us_chunk_hdr_t, length),   1,    UCACHE_ERR_STALE},
        {offsetof(us_chunk_hdr_t, flags),    1,    UCACHE_ERR_CORRUPT},
        {offsetof(us_chunk_hdr_t, ns),       1,    UCACHE_ERR_CORRUPT},
        {offsetof(us_chunk_hdr_t, checksum), 4,    UCACHE_ERR_CORRUPT},
    };

    CU_ASSERT_EQUAL_FATAL(put_id(s, 7, 0, 5000), UCACHE_OK);
    CU_ASSERT_EQUAL(get_id(s, 7, 5000), 0);
    CU_ASSERT_EQUAL_FATAL(us_store_lookup(s, &k, &loc), UCACHE_OK);
    CU_ASSERT_EQUAL(loc.length, 5000);

    /* every payload byte position class: first, middle, last */
    for (i = 0; i < 3; i++) {
        size_t off = loc.hdr_off + US_CHUNK_HDR + (i == 0 ? 0 : i == 1 ? 2500 : 4999);

        base[off] ^= 0x20;
        CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, sizeof(buf), &got, 1, &rs),
                        UCACHE_ERR_CORRUPT);
        base[off] ^= 0x20;
    }
    CU_ASSERT_EQUAL(rs.torn, 3);
    for (i = 0; i < sizeof(hdr_cases) / sizeof(hdr_cases[0]); i++) {
        base[loc.hdr_off + hdr_cases[i].off] ^= hdr_cases[i].mask;
        CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, sizeof(buf), &got, 1, NULL),
                        hdr_cases[i].expect);
        base[loc.hdr_off + hdr_cases[i].off] ^= hdr_cases[i].mask;
    }
    CU_ASSERT_EQUAL(get_id(s, 7, 5000), 0);

    /* find the slot and damage each field of it */
    us_key_buckets(&k, l->nbuckets, b);
    for (i = 0; (i < 2) && (slot == NULL); i++) {
        for (j = 0; j < US_BUCKET_SLOTS; j++) {
            uint64_t *w = (uint64_t *)(base + us_layout_bucket_off(l, b[i]) +
                                       j * US_SLOT_SIZE);
            if ((w[0] != 0) && ((w[0] >> 16) == loc.version)) {
                slot = w;
                break;
            }
        }
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(slot);
    save = slot[0];
    slot[0] ^= 1;                              /* fingerprint: no match */
    CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, sizeof(buf), &got, 1, NULL),
                    UCACHE_ERR_NOT_FOUND);
    slot[0] = save ^ (1ull << 20);             /* version */
    CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, sizeof(buf), &got, 1, NULL),
                    UCACHE_ERR_STALE);
    slot[0] = save;
    save = slot[1];
    slot[1] = save - 1;                        /* length */
    CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, sizeof(buf), &got, 1, NULL),
                    UCACHE_ERR_STALE);
    slot[1] = save + (1ull << 26);             /* location: one granule on */
    CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, sizeof(buf), &got, 1, NULL),
                    UCACHE_ERR_STALE);
    slot[1] = save | (0xFFFFFFull << 40);      /* location past the data area */
    CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, sizeof(buf), &got, 1, NULL),
                    UCACHE_ERR_NOT_FOUND);
    slot[1] = save;
    CU_ASSERT_EQUAL(get_id(s, 7, 5000), 0);

    /* a buffer too small is refused before any copy */
    CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, 4999, &got, 1, NULL),
                    UCACHE_ERR_MSG_TRUNCATED);
    /* a read slower than the grace period counts when its slot still holds
     * the chunk afterwards (a fresh reader's first touch of a mapping; a
     * sanitizer), with no retry; us_index_holds() is that second look */
    {
        us_layout_t slow = *l;
        uint8_t bkt[2 * US_BUCKET_SIZE];

        slow.grace_ns = 1;
        memset(&rs, 0, sizeof(rs));
        CU_ASSERT_EQUAL(us_read_raw(&slow, base, &k, buf, sizeof(buf), &got, 2, &rs),
                        UCACHE_OK);
        CU_ASSERT_EQUAL(rs.ok, 1);
        CU_ASSERT_EQUAL(rs.late + rs.torn + rs.stale, 0);
        memcpy(bkt, base + us_layout_bucket_off(l, b[0]), US_BUCKET_SIZE);
        memcpy(bkt + US_BUCKET_SIZE, base + us_layout_bucket_off(l, b[1]), US_BUCKET_SIZE);
        CU_ASSERT(us_index_holds(l, bkt, &k, &loc));
        {   /* the same place with another version, or another place: gone */
            us_loc_t other = loc;

            other.version ^= 1;
            CU_ASSERT(!us_index_holds(l, bkt, &k, &other));
            other = loc;
            other.hdr_off += US_GRANULE;
            CU_ASSERT(!us_index_holds(l, bkt, &k, &other));
        }
    }
    /* evicted: the slot is gone and the old location is tombstoned */
    CU_ASSERT_EQUAL(us_store_evict(s, &k), UCACHE_OK);
    CU_ASSERT_EQUAL(get_id(s, 7, 5000), 1);
    CU_ASSERT_EQUAL(us_chunk_verify((us_chunk_hdr_t *)(base + loc.hdr_off),
                                    base + loc.hdr_off + US_CHUNK_HDR, &k, &loc),
                    UCACHE_ERR_STALE);

    /* random bytes as buckets never yield a location outside the data area */
    for (f = 0; f < 20000; f++) {
        uint64_t junk[16];
        us_loc_t locs[8];
        unsigned n;

        for (i = 0; i < 16; i++) {
            junk[i] = key_of(f * 16 + i).hi;
            if (i % 2 == 0) {
                junk[i] = (junk[i] & ~0xFFFFull) | us_key_fp(&k);
            }
        }
        n = us_index_match(l, junk, &k, locs);
        for (i = 0; i < n; i++) {
            CU_ASSERT(locs[i].hdr_off >= l->data_off);
            CU_ASSERT(locs[i].hdr_off + US_CHUNK_HDR + locs[i].length <=
                      l->data_off + l->data_len);
        }
    }
    us_store_destroy(s);
}

/* Batched raw reads: groups larger than US_READ_BATCH, a mix of present,
 * missing and too-large chunks, each with its own status and exact bytes. */
static void test_layout_batch(void)
{
    enum { N = 3 * US_READ_BATCH + 5 };
    /* a long grace period: this test is about batching, not lateness (a
     * group under a sanitizer on a busy machine can take over 1 ms) */
    us_store_t *s = make_store(16 * MiB, UC_NSEC_PER_SEC, 16 * KiB, 64 * KiB);
    us_read_op_t ops[N] = {0};
    us_read_stats_t rs = {0};
    uint8_t *bufs = malloc((size_t)N * 64 * KiB);
    unsigned i, ok = 0;

    for (i = 0; i < N; i++) {
        if (i % 4 != 3) {                      /* every fourth id is missing */
            CU_ASSERT_EQUAL_FATAL(put_id(s, 100 + i, 0, 1000 + i * 997), UCACHE_OK);
        }
        ops[i].key = key_of(100 + i);
        ops[i].dst = bufs + (size_t)i * 64 * KiB;
        ops[i].cap = (i == 5) ? 100 : 64 * KiB;   /* one buffer too small */
    }
    CU_ASSERT_NOT_EQUAL(us_read_raw_batch(us_store_layout(s), us_store_base(s), ops, N,
                                          2, &rs), UCACHE_OK);
    for (i = 0; i < N; i++) {
        if (i == 5) {
            CU_ASSERT_EQUAL(ops[i].status, UCACHE_ERR_MSG_TRUNCATED);
        } else if (i % 4 == 3) {
            CU_ASSERT_EQUAL(ops[i].status, UCACHE_ERR_NOT_FOUND);
        } else {
            CU_ASSERT_EQUAL(ops[i].status, UCACHE_OK);
            CU_ASSERT_EQUAL(ops[i].length, 1000 + i * 997);
            CU_ASSERT_EQUAL(pattern_bad(ops[i].dst, ops[i].length, 100 + i), 0);
            ok++;
        }
    }
    CU_ASSERT_EQUAL(rs.ok, ok);
    CU_ASSERT_EQUAL(rs.not_found, N / 4);
    CU_ASSERT_EQUAL(rs.torn + rs.stale + rs.late, 0);
    free(bufs);
    us_store_destroy(s);
}

/* A range of a chunk: verified in place, only the range copied; a range
 * past the payload is refused; a corrupt payload fails the range too. */
static void test_layout_range(void)
{
    us_store_t *s = make_store(16 * MiB, UC_NSEC_PER_SEC, 16 * KiB, 64 * KiB);
    uint8_t *base = us_store_base(s), want[40000], got[1000];
    us_read_op_t op = {0};
    us_loc_t loc;

    CU_ASSERT_EQUAL_FATAL(put_id(s, 9, 0, 40000), UCACHE_OK);
    fill_pattern(want, sizeof(want), 9);
    op.key = key_of(9);
    op.dst = got;
    op.cap = sizeof(got);
    op.range_off = 31000;
    op.range_len = 1000;
    CU_ASSERT_EQUAL(us_read_raw_batch(us_store_layout(s), base, &op, 1, 1, NULL),
                    UCACHE_OK);
    CU_ASSERT_EQUAL(op.length, 40000);
    CU_ASSERT(memcmp(got, want + 31000, 1000) == 0);
    op.range_off = 39500;                       /* ends past the payload */
    CU_ASSERT_EQUAL(us_read_raw_batch(us_store_layout(s), base, &op, 1, 3, NULL),
                    UCACHE_ERR_OUT_OF_RANGE);
    op.range_off = 0;
    op.range_len = 2000;                        /* larger than the buffer */
    CU_ASSERT_EQUAL(us_read_raw_batch(us_store_layout(s), base, &op, 1, 1, NULL),
                    UCACHE_ERR_MSG_TRUNCATED);
    CU_ASSERT_EQUAL_FATAL(us_store_lookup(s, &op.key, &loc), UCACHE_OK);
    base[loc.hdr_off + US_CHUNK_HDR + 20000] ^= 1; /* outside the range */
    op.range_len = 1000;
    CU_ASSERT_EQUAL(us_read_raw_batch(us_store_layout(s), base, &op, 1, 2, NULL),
                    UCACHE_ERR_CORRUPT);
    base[loc.hdr_off + US_CHUNK_HDR + 20000] ^= 1;
    us_store_destroy(s);
}

/* ------------------------------------------------------------------------ */
/* Allocator                                                                 */
/* ------------------------------------------------------------------------ */

static void test_alloc_basic(void)
{
    const uint64_t len = MiB;
    void *mem = aligned_alloc(64, len);
    uint64_t off[4], total;
    us_alloc_t a;
    unsigned i;

    CU_ASSERT_EQUAL_FATAL(us_alloc_init(&a, mem, len, 1000), UCACHE_OK);
    total = a.free_bytes;
    CU_ASSERT_EQUAL(total, len - 64);
    CU_ASSERT_EQUAL(us_alloc_get(&a, 0, &off[0]), UCACHE_ERR_NO_MEMORY);
    CU_ASSERT_EQUAL(us_alloc_get(&a, len, &off[0]), UCACHE_ERR_NO_MEMORY);
    for (i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL_FATAL(us_alloc_get(&a, 100 * KiB + i, &off[i]), UCACHE_OK);
        CU_ASSERT_EQUAL(off[i] % 64, 0);
        CU_ASSERT(us_alloc_size(&a, off[i]) >= 100 * KiB + i);
        CU_ASSERT_EQUAL(us_alloc_check(&a), UCACHE_OK);
    }
    us_alloc_put(&a, off[1]);
    us_alloc_put(&a, off[2]);                   /* merges with [1] */
    CU_ASSERT_EQUAL(us_alloc_check(&a), UCACHE_OK);
    CU_ASSERT(us_alloc_largest_free(&a) >= 200 * KiB);
    us_alloc_put(&a, off[0]);
    us_alloc_put(&a, off[3]);                   /* everything coalesced */
    CU_ASSERT_EQUAL(us_alloc_check(&a), UCACHE_OK);
    CU_ASSERT_EQUAL(us_alloc_largest_free(&a), total);
    CU_ASSERT_EQUAL(a.used_bytes, 0);
    /* the whole area in one allocation */
    CU_ASSERT_EQUAL(us_alloc_get(&a, total, &off[0]), UCACHE_OK);
    CU_ASSERT_EQUAL(us_alloc_get(&a, 64, &off[1]), UCACHE_ERR_NO_MEMORY);
    us_alloc_put(&a, off[0]);
    us_alloc_cleanup(&a);
    free(mem);
}

/* Random allocate/free: blocks never overlap (each holds its id), the
 * structure checks out, and all memory comes back. */
static void test_alloc_random(void)
{
    const uint64_t len = 8 * MiB;
    enum { LIVE = 512 };
    uint8_t *mem = aligned_alloc(64, len);
    uint64_t off[LIVE], size[LIVE], x = 88172645463325252ull, total;
    unsigned i, op, fails = 0, bad = 0;
    us_alloc_t a;

    CU_ASSERT_EQUAL_FATAL(us_alloc_init(&a, mem, len, 1000), UCACHE_OK);
    total = a.free_bytes;
    memset(size, 0, sizeof(size));
    for (op = 0; op < 60000; op++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        i = (unsigned)(x % LIVE);
        if (size[i] != 0) {
            bad += (mem[off[i] + 16] != (uint8_t)i) ||
                   (mem[off[i] + 16 + size[i] - 1] != (uint8_t)i);
            us_alloc_put(&a, off[i]);
            size[i] = 0;
        } else {
            uint64_t want = 1 + (x >> 20) % ((x & 1) ? 4096 : 96 * KiB);

            /* the first 16 bytes of a block are the allocator's */
            if (us_alloc_get(&a, 16 + want, &off[i]) != UCACHE_OK) {
                fails++;
                continue;
            }
            size[i] = want;
            mem[off[i] + 16] = mem[off[i] + 16 + want - 1] = (uint8_t)i;
            bad += (off[i] + 16 + want > len - 64);
        }
        if (op % 1000 == 0) {
            bad += (us_alloc_check(&a) != UCACHE_OK);
        }
    }
    for (i = 0; i < LIVE; i++) {
        if (size[i] != 0) {
            bad += (mem[off[i] + 16] != (uint8_t)i);
            us_alloc_put(&a, off[i]);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(fails < 60000 / 4);
    CU_ASSERT_EQUAL(us_alloc_check(&a), UCACHE_OK);
    CU_ASSERT_EQUAL(a.free_bytes, total);
    CU_ASSERT_EQUAL(us_alloc_largest_free(&a), total);
    us_alloc_cleanup(&a);
    free(mem);
}

/* Retired blocks come back only after the grace period, in order; the
 * ring grows past its initial size. */
static void test_alloc_quarantine(void)
{
    const uint64_t len = 64 * KiB;
    void *mem = aligned_alloc(64, len);
    uint64_t off[256], n = 0, extra;
    us_alloc_t a;
    unsigned i;

    CU_ASSERT_EQUAL_FATAL(us_alloc_init(&a, mem, len, 500), UCACHE_OK);
    while ((n < 256) && (us_alloc_get(&a, 600, &off[n]) == UCACHE_OK)) {
        n++;
    }
    CU_ASSERT(n > 64);                         /* past the ring's first size */
    for (i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(us_alloc_retire(&a, off[i], 1000 + i), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(a.quarantine_bytes, a.used_bytes);
    CU_ASSERT_EQUAL(us_alloc_next_expiry(&a), 1500);
    CU_ASSERT_EQUAL(us_alloc_get(&a, 600, &extra), UCACHE_ERR_NO_MEMORY);
    CU_ASSERT_EQUAL(us_alloc_reclaim(&a, 1499), 0);
    CU_ASSERT_EQUAL(us_alloc_get(&a, 600, &extra), UCACHE_ERR_NO_MEMORY);
    CU_ASSERT_EQUAL(us_alloc_reclaim(&a, 1500 + 9), 10 * us_alloc_block_size(600));
    CU_ASSERT_EQUAL(us_alloc_next_expiry(&a), 1510);
    CU_ASSERT_EQUAL(us_alloc_check(&a), UCACHE_OK);
    CU_ASSERT_EQUAL(us_alloc_get(&a, 600, &extra), UCACHE_OK);
    CU_ASSERT_EQUAL(extra, off[0]);            /* the oldest came back first */
    us_alloc_put(&a, extra);
    us_alloc_reclaim(&a, UINT64_MAX);
    CU_ASSERT_EQUAL(a.used_bytes, 0);
    CU_ASSERT_EQUAL(a.q_count, 0);
    CU_ASSERT_EQUAL(us_alloc_check(&a), UCACHE_OK);
    us_alloc_cleanup(&a);
    free(mem);
}

/* ------------------------------------------------------------------------ */
/* Policy                                                                    */
/* ------------------------------------------------------------------------ */

/* Cache of 100 one-byte entries: 20 hot ones, then a scan of 1000. */
static unsigned run_scan(int hits)
{
    enum { CAP = 100, HOT = 20, SCAN = 1000, N = HOT + SCAN };
    uint64_t used = 0;
    unsigned i, survivors = 0;
    uint32_t v;
    us_evict_t ev;

    CU_ASSERT_EQUAL_FATAL(us_evict_init(&ev, N, CAP), UCACHE_OK);
    for (i = 0; i < N; i++) {
        if (i == HOT) {
            for (v = 0; hits && (v < HOT); v++) {
                us_evict_hit(&ev, v, 1);
            }
        }
        while (used + 1 > CAP) {
            v = us_evict_pop(&ev);
            CU_ASSERT_FATAL(v != US_EVICT_NONE);
            used--;
        }
        us_evict_insert(&ev, i, 1, i * 2654435761u, 0);
        used++;
        if ((i >= HOT) && hits && (i % 50 == 0)) {
            for (v = 0; v < HOT; v++) {       /* the hot set stays in use */
                if (ev.e[v].queue != US_Q_NONE) {
                    us_evict_hit(&ev, v, 1);
                }
            }
        }
    }
    for (i = 0; i < HOT; i++) {
        survivors += (ev.e[i].queue != US_Q_NONE);
    }
    us_evict_cleanup(&ev);
    return survivors;
}

static void test_evict_scan_resistance(void)
{
    CU_ASSERT_EQUAL(run_scan(1), 20);          /* S3-FIFO keeps the hot set */
    CU_ASSERT_EQUAL(run_scan(0), 0);           /* unused, it ages out */
}

static void test_evict_ghost_and_pins(void)
{
    us_evict_t ev;
    uint32_t v;

    CU_ASSERT_EQUAL_FATAL(us_evict_init(&ev, 8, 100), UCACHE_OK);
    us_evict_insert(&ev, 0, 10, 77, 0);
    us_evict_insert(&ev, 1, 10, 78, 1);        /* pinned */
    CU_ASSERT_EQUAL(ev.e[0].queue, US_Q_SMALL);
    CU_ASSERT_EQUAL(ev.e[1].queue, US_Q_PINNED);
    CU_ASSERT_EQUAL(us_evict_pop(&ev), 0);     /* unused: leaves as a ghost */
    CU_ASSERT_EQUAL(us_evict_pop(&ev), US_EVICT_NONE);  /* only the pin is left */
    us_evict_insert(&ev, 2, 10, 77, 0);        /* same key again */
    CU_ASSERT_EQUAL(ev.e[2].queue, US_Q_MAIN);
    CU_ASSERT_EQUAL(ev.stats.ghost_hits, 1);
    us_evict_hit(&ev, 2, 5);
    CU_ASSERT_EQUAL(ev.e[2].freq, US_FREQ_MAX);
    /* reinserted US_FREQ_MAX times, then evicted */
    CU_ASSERT_EQUAL(us_evict_pop(&ev), 2);
    CU_ASSERT_EQUAL(ev.stats.reinsertions, US_FREQ_MAX);
    us_evict_pin(&ev, 1, 0);
    CU_ASSERT_EQUAL(ev.e[1].queue, US_Q_MAIN);
    v = us_evict_pop(&ev);
    CU_ASSERT_EQUAL(v, 1);
    CU_ASSERT_EQUAL(us_evict_pop(&ev), US_EVICT_NONE);
    us_evict_cleanup(&ev);
}

/* ------------------------------------------------------------------------ */
/* Store                                                                     */
/* ------------------------------------------------------------------------ */

static void test_store_states(void)
{
    us_store_t *s = make_store(4 * MiB, UC_NSEC_PER_MSEC, 64 * KiB, 256 * KiB);
    us_store_stats_t st0, st1;
    us_fill_t f, g, bogus;
    us_key_t k = key_of(1), z = key_of(2);
    us_loc_t loc;

    us_store_stats(s, &st0);
    CU_ASSERT_EQUAL(us_store_reserve(s, &k, 0, 256 * KiB + 1, &f), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(us_store_reserve(s, &k, US_MAX_NS, 10, &f), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL_FATAL(us_store_reserve(s, &k, 0, 1000, &f), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_reserve(s, &k, 0, 1000, &g), UCACHE_INPROGRESS);
    CU_ASSERT_EQUAL(get_id(s, 1, 1000), 1);    /* reserved: invisible */
    CU_ASSERT_EQUAL(us_store_lookup(s, &k, &loc), UCACHE_ERR_NOT_FOUND);
    us_store_abort(s, &f);                     /* memory back at once */
    us_store_stats(s, &st1);
    CU_ASSERT_EQUAL(st1.bytes_used, st0.bytes_used);
    CU_ASSERT_EQUAL(st1.bytes_grace, 0);
    CU_ASSERT_EQUAL(st1.aborts, 1);
    CU_ASSERT_EQUAL(us_store_publish(s, &f), UCACHE_ERR_INVALID);
    bogus = f;
    bogus.slot = UINT32_MAX;
    CU_ASSERT_EQUAL(us_store_publish(s, &bogus), UCACHE_ERR_INVALID);

    CU_ASSERT_EQUAL_FATAL(us_store_reserve(s, &k, 0, 1000, &f), UCACHE_OK);
    fill_pattern(f.payload, 1000, 1);
    CU_ASSERT_EQUAL(us_store_publish(s, &f), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_publish(s, &f), UCACHE_ERR_INVALID); /* twice */
    CU_ASSERT_EQUAL(us_store_reserve(s, &k, 0, 1000, &g), UCACHE_ERR_EXISTS);
    CU_ASSERT_EQUAL(get_id(s, 1, 1000), 0);
    CU_ASSERT_EQUAL(us_store_lookup(s, &k, &loc), UCACHE_OK);
    CU_ASSERT_EQUAL(loc.length, 1000);
    CU_ASSERT(loc.version != 0);
    /* an empty object is a chunk too */
    CU_ASSERT_EQUAL(us_store_put(s, &z, 0, "", 0, UC_NSEC_PER_SEC), UCACHE_OK);
    CU_ASSERT_EQUAL(get_id(s, 2, 0), 0);
    /* pins, evictions */
    CU_ASSERT_EQUAL(us_store_pin(s, &k, 1), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_evict(s, &k), UCACHE_ERR_BUSY);
    CU_ASSERT_EQUAL(us_store_pin(s, &k, 0), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_evict(s, &k), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_evict(s, &k), UCACHE_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(us_store_pin(s, &k, 1), UCACHE_ERR_NOT_FOUND);
    us_store_stats(s, &st1);
    CU_ASSERT_EQUAL(st1.evict_explicit, 1);
    CU_ASSERT_EQUAL(st1.chunks, 1);
    CU_ASSERT_EQUAL(st1.publishes, 2);
    CU_ASSERT(st1.bytes_grace > 0);            /* the evicted block waits */
    CU_ASSERT_EQUAL(st1.locked, 1);
    check_budget(s);
    us_store_destroy(s);
    us_store_destroy(NULL);
}

static void test_store_bad_params(void)
{
    us_store_params_t p = { .len = 16 * MiB, .grace_ns = 1000,
                            .index_chunk = 64 * KiB, .max_payload = MiB };
    us_store_t *s;

    p.len = 1000;
    CU_ASSERT_EQUAL(us_store_create(&p, &s), UCACHE_ERR_INVALID);
    p.len = 16 * MiB;
    p.grace_ns = 0;
    CU_ASSERT_EQUAL(us_store_create(&p, &s), UCACHE_ERR_INVALID);
    p.grace_ns = 1000;
    p.max_payload = US_MAX_PAYLOAD + 1ull;
    CU_ASSERT_EQUAL(us_store_create(&p, &s), UCACHE_ERR_INVALID);
    p.max_payload = 0;
    CU_ASSERT_EQUAL(us_store_create(&p, &s), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(us_store_create(NULL, &s), UCACHE_ERR_INVALID);
}

/* Stream four times the capacity through the store: the memory used never
 * passes the budget, RSS stays within it, the newest chunks read exact. */
static void test_store_fill_past_capacity(void)
{
    const size_t mem = 32 * MiB, csz = 64 * KiB;
    uint64_t rss0 = rss_bytes(), rss_peak = 0, id, n = 4 * mem / csz;
    us_store_t *s = make_store(mem, 200 * UC_NSEC_PER_USEC, csz, csz);
    us_store_stats_t st;
    unsigned missing = 0, wrong = 0, found = 0;
    int r;

    for (id = 0; id < n; id++) {
        CU_ASSERT_EQUAL_FATAL(put_id(s, id, 0, csz - (id % 3) * 1000), UCACHE_OK);
        if (id % 64 == 0) {
            check_budget(s);
            if (rss_bytes() > rss_peak) {
                rss_peak = rss_bytes();
            }
        }
    }
    us_store_stats(s, &st);
    /* every chunk not cached was evicted for memory, a few for index room */
    CU_ASSERT_EQUAL(st.evict_capacity + st.evict_index, n - st.chunks);
    CU_ASSERT(st.evict_index < n / 20);
    CU_ASSERT(st.bytes_cached > mem / 2);      /* the cache stays well used */
    /* the last quarter of the stream is all there, exact */
    for (id = n - n / 16; id < n; id++) {
        r = get_id(s, id, csz - (id % 3) * 1000);
        missing += (r == 1);
        wrong   += (r == 2);
    }
    for (id = 0; id < n; id++) {
        found += (get_id(s, id, csz - (id % 3) * 1000) == 0);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(found, st.chunks);
    /* the arena was allocated once: RSS grows by its size at most (plus
     * the owner's private metadata).  ThreadSanitizer's shadow of the arena
     * counts in RSS too, so there only the store's own accounting holds. */
#if defined(__SANITIZE_THREAD__)
    printf("\n  (RSS bound not checked under ThreadSanitizer: its shadow memory "
           "is in RSS)");
#else
    CU_ASSERT(rss_peak <= rss0 + mem + 8 * MiB);
#endif
    printf("\n  fill: %llu chunks in, %llu cached, %.1f MiB cached of %.1f MiB, "
           "RSS +%.1f MiB\n", (unsigned long long)n, (unsigned long long)st.chunks,
           st.bytes_cached / 1048576.0, mem / 1048576.0,
           (rss_peak - rss0) / 1048576.0);
    us_store_destroy(s);
}

/* A pinned dataset survives a stream of four times the cache; pins are
 * capped; unpinned, it can go. */
static void test_store_pins_survive(void)
{
    const size_t mem = 16 * MiB, csz = 32 * KiB;
    us_store_t *s = make_store(mem, 100 * UC_NSEC_PER_USEC, csz, csz);
    uint64_t id, npin = (mem / 4) / csz, n = 4 * mem / csz;
    unsigned bad = 0;
    us_store_stats_t st;
    us_key_t k;

    for (id = 0; id < npin / 2; id++) {
        CU_ASSERT_EQUAL_FATAL(put_id(s, 1000000 + id, 1, csz), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(us_store_pin_ns(s, 1, 1), UCACHE_OK);
    for (; id < npin; id++) {                  /* future chunks pinned too */
        CU_ASSERT_EQUAL_FATAL(put_id(s, 1000000 + id, 1, csz), UCACHE_OK);
    }
    CU_ASSERT_EQUAL_FATAL(put_id(s, 5, 2, csz), UCACHE_OK);
    k = key_of(5);
    CU_ASSERT_EQUAL(us_store_pin(s, &k, 1), UCACHE_OK);   /* one chunk by key */
    for (id = 10; id < n; id++) {
        CU_ASSERT_EQUAL_FATAL(put_id(s, id, 2, csz), UCACHE_OK);
    }
    for (id = 0; id < npin; id++) {
        bad += (get_id(s, 1000000 + id, csz) != 0);
    }
    bad += (get_id(s, 5, csz) != 0);
    CU_ASSERT_EQUAL(bad, 0);
    us_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.bytes_pinned, (npin + 1) * us_alloc_block_size(csz + 64));
    check_budget(s);
    /* pinning what would leave no room for anything else is refused */
    CU_ASSERT_EQUAL(us_store_pin_ns(s, 2, 1), UCACHE_ERR_NO_MEMORY);
    /* pinned chunks cannot be evicted; unpinned, they can */
    CU_ASSERT_EQUAL(us_store_evict(s, &k), UCACHE_ERR_BUSY);
    CU_ASSERT_EQUAL(us_store_pin_ns(s, 1, 0), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_pin(s, &k, 0), UCACHE_OK);
    us_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.bytes_pinned, 0);
    CU_ASSERT_EQUAL(us_store_evict(s, &k), UCACHE_OK);
    for (bad = 0, id = 0; id < npin; id++) {
        us_key_t pk = key_of(1000000 + id);

        bad += (us_store_evict(s, &pk) != UCACHE_OK);
    }
    CU_ASSERT_EQUAL(bad, 0);
    us_store_destroy(s);
}

/* Issue [3/11], a reader's pins within its namespace's pin quota: pins by
 * key count per namespace; past the limit a new pin is refused (counted),
 * another namespace is not affected, no limit (an admin) pins on, and
 * unpinning or evicting gives the bytes back. */
static void test_store_pin_quota(void)
{
    const size_t mem = 16 * MiB, csz = 32 * KiB;
    us_store_t *s = make_store(mem, 100 * UC_NSEC_PER_USEC, csz, csz);
    uint64_t bsz = us_alloc_block_size(csz + 64), limit = 3 * bsz;
    us_store_stats_t st;
    us_key_t k[6];
    unsigned i;

    for (i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL_FATAL(put_id(s, 100 + i, (i < 5) ? 3 : 4, csz), UCACHE_OK);
        k[i] = key_of(100 + i);
    }
    for (i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(us_store_pin_quota(s, &k[i], 1, limit), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(us_store_pin_quota(s, &k[1], 1, limit), UCACHE_OK); /* again: no cost */
    CU_ASSERT_EQUAL(us_store_ns_pinned(s, 3), limit);
    CU_ASSERT_EQUAL(us_store_pin_quota(s, &k[3], 1, limit), UCACHE_ERR_NO_MEMORY);
    CU_ASSERT_EQUAL(us_store_pin_quota(s, &k[5], 1, limit), UCACHE_OK); /* ns 4 */
    CU_ASSERT_EQUAL(us_store_ns_pinned(s, 4), bsz);
    CU_ASSERT_EQUAL(us_store_pin_quota(s, &k[3], 1, 0), UCACHE_OK);     /* an admin */
    CU_ASSERT_EQUAL(us_store_ns_pinned(s, 3), limit + bsz);
    CU_ASSERT_EQUAL(us_store_pin_quota(s, &k[4], 1, limit), UCACHE_ERR_NO_MEMORY);
    us_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.pin_quota_denied, 2);
    CU_ASSERT_EQUAL(st.bytes_pinned, limit + 2 * bsz);
    CU_ASSERT_EQUAL(us_store_pin(s, &k[0], 0), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_pin(s, &k[3], 0), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_pin_quota(s, &k[4], 1, limit), UCACHE_OK);  /* room again */
    CU_ASSERT_EQUAL(us_store_ns_pinned(s, 3), limit);
    CU_ASSERT_EQUAL(us_store_pin(s, &k[4], 0), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_pin(s, &k[5], 0), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_evict(s, &k[5]), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_ns_pinned(s, 4), 0);
    CU_ASSERT_EQUAL(us_store_ns_pinned(s, 3), 2 * bsz);
    CU_ASSERT_EQUAL(us_store_ns_pinned(s, US_MAX_NS), 0);
    us_store_destroy(s);
}

/* Namespace quotas hold while a namespace streams, and other namespaces
 * keep their chunks. */
static void test_store_quotas(void)
{
    const size_t mem = 16 * MiB, csz = 16 * KiB;
    const uint64_t quota = 2 * MiB;
    us_store_t *s = make_store(mem, 100 * UC_NSEC_PER_USEC, csz, csz);
    uint64_t id, over = 0;
    unsigned bad = 0;
    us_store_stats_t st;

    for (id = 0; id < 64; id++) {
        CU_ASSERT_EQUAL_FATAL(put_id(s, 500000 + id, 4, csz), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(us_store_quota_set(s, 3, quota), UCACHE_OK);
    for (id = 0; id < 10 * quota / csz; id++) {
        CU_ASSERT_EQUAL_FATAL(put_id(s, id, 3, csz), UCACHE_OK);
        over += (us_store_ns_used(s, 3) > quota);
    }
    CU_ASSERT_EQUAL(over, 0);
    CU_ASSERT(us_store_ns_used(s, 3) > quota - 2 * us_alloc_block_size(csz + 64));
    for (id = 0; id < 64; id++) {
        bad += (get_id(s, 500000 + id, csz) != 0);
    }
    CU_ASSERT_EQUAL(bad, 0);
    us_store_stats(s, &st);
    CU_ASSERT(st.evict_quota >= 10 * quota / csz - quota / csz);
    CU_ASSERT_EQUAL(st.evict_capacity, 0);
    /* lowering the quota evicts down at once */
    CU_ASSERT_EQUAL(us_store_quota_set(s, 3, quota / 4), UCACHE_OK);
    CU_ASSERT(us_store_ns_used(s, 3) <= quota / 4);
    /* a chunk larger than its namespace's quota is refused */
    CU_ASSERT_EQUAL(us_store_quota_set(s, 5, 4 * KiB), UCACHE_OK);
    CU_ASSERT_EQUAL(put_id(s, 9, 5, csz), UCACHE_ERR_NO_MEMORY);
    /* a pinned namespace at its quota cannot take more */
    CU_ASSERT_EQUAL(us_store_quota_set(s, 6, 2 * us_alloc_block_size(csz + 64)),
                    UCACHE_OK);
    CU_ASSERT_EQUAL(put_id(s, 20, 6, csz), UCACHE_OK);
    CU_ASSERT_EQUAL(put_id(s, 21, 6, csz), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_pin_ns(s, 6, 1), UCACHE_OK);
    CU_ASSERT_EQUAL(put_id(s, 22, 6, csz), UCACHE_ERR_NO_MEMORY);
    CU_ASSERT_EQUAL(get_id(s, 20, csz) + get_id(s, 21, csz), 0);
    us_store_stats(s, &st);
    CU_ASSERT(st.quota_denied >= 2);
    us_store_destroy(s);
}

/* At store level: a hot set in use survives an epoch-sized scan. */
static unsigned store_scan(int touch)
{
    const size_t mem = 16 * MiB, csz = 32 * KiB;
    us_store_t *s = make_store(mem, 50 * UC_NSEC_PER_USEC, csz, csz);
    uint64_t id, hot = (mem / 5) / csz, n = 3 * mem / csz;
    unsigned survivors = 0;
    us_key_t k;
    us_loc_t loc;

    for (id = 0; id < hot; id++) {
        CU_ASSERT_EQUAL_FATAL(put_id(s, 900000 + id, 0, csz), UCACHE_OK);
    }
    for (id = 0; id < n; id++) {
        CU_ASSERT_EQUAL_FATAL(put_id(s, id, 0, csz), UCACHE_OK);
        if (touch && (id % 64 == 0)) {        /* sampled reader feedback */
            for (uint64_t h = 0; h < hot; h++) {
                k = key_of(900000 + h);
                us_store_touch(s, &k, 1, 1);
            }
        }
    }
    for (id = 0; id < hot; id++) {
        k = key_of(900000 + id);
        survivors += (us_store_lookup(s, &k, &loc) == UCACHE_OK) &&
                     (get_id(s, 900000 + id, csz) == 0);
    }
    us_store_destroy(s);
    return survivors;
}

static void test_store_scan_resistance(void)
{
    unsigned hot = (16 * MiB / 5) / (32 * KiB);

    CU_ASSERT_EQUAL(store_scan(1), hot);
    CU_ASSERT(store_scan(0) < hot / 10);
}

/* Small index, many small chunks: both buckets full evicts in them; a
 * bucket pair of pinned chunks refuses. */
static void test_store_index_conflicts(void)
{
    us_store_t *s = make_store(16 * MiB, 50 * UC_NSEC_PER_USEC, 8 * MiB, 4 * KiB);
    us_store_stats_t st;
    uint64_t id, nomem = 0, slots;
    unsigned bad = 0, found = 0;
    ucache_status_t r;

    us_store_stats(s, &st);
    slots = st.slots;
    CU_ASSERT_EQUAL(slots, 64);               /* the minimum index */
    for (id = 0; id < 2000; id++) {
        CU_ASSERT_EQUAL_FATAL(put_id(s, id, 0, 512), UCACHE_OK);
    }
    us_store_stats(s, &st);
    CU_ASSERT(st.evict_index >= 2000 - slots);
    CU_ASSERT_EQUAL(st.evict_capacity, 0);
    CU_ASSERT(st.chunks <= slots);
    CU_ASSERT(st.chunks > slots / 2);         /* two choices fill the index */
    for (id = 0; id < 2000; id++) {
        int g = get_id(s, id, 512);

        bad   += (g == 2);
        found += (g == 0);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(found, st.chunks);
    /* pin everything: new keys find no room in their buckets */
    CU_ASSERT_EQUAL(us_store_pin_ns(s, 0, 1), UCACHE_OK);
    for (id = 5000; id < 5100; id++) {
        r = put_id(s, id, 0, 512);
        CU_ASSERT((r == UCACHE_OK) || (r == UCACHE_ERR_NO_MEMORY));
        nomem += (r == UCACHE_ERR_NO_MEMORY);
    }
    CU_ASSERT(nomem > 0);
    us_store_stats(s, &st);
    CU_ASSERT(st.reserve_nomem >= nomem);
    us_store_destroy(s);
}

/* Memory still in its grace period: reserve says AGAIN and when. */
static void test_store_grace(void)
{
    const uint64_t grace = 200 * UC_NSEC_PER_MSEC;
    us_store_t *s = make_store(4 * MiB, grace, 256 * KiB, 2 * MiB);
    uint64_t id, t0, retry;
    ucache_status_t st0;
    us_store_stats_t st;
    us_fill_t f;
    us_key_t k;

    for (id = 0; id < 3; id++) {
        CU_ASSERT_EQUAL_FATAL(put_id(s, id, 0, MiB), UCACHE_OK);
    }
    for (id = 0; id < 3; id++) {               /* some may be evicted ahead */
        k = key_of(id);
        st0 = us_store_evict(s, &k);
        CU_ASSERT((st0 == UCACHE_OK) || (st0 == UCACHE_ERR_NOT_FOUND));
    }
    t0 = uc_time_ns();
    k  = key_of(99);
    CU_ASSERT_EQUAL(us_store_reserve(s, &k, 0, 2 * MiB, &f), UCACHE_ERR_AGAIN);
    retry = us_store_retry_ns(s);
    CU_ASSERT(retry > t0);
    CU_ASSERT(retry <= t0 + grace);
    us_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.reserve_again, 1);
    CU_ASSERT_EQUAL(st.chunks, 0);
    CU_ASSERT_EQUAL(put_id(s, 99, 0, 2 * MiB), UCACHE_OK);   /* waits it out */
    CU_ASSERT(uc_time_ns() >= retry);
    CU_ASSERT_EQUAL(get_id(s, 99, 2 * MiB), 0);
    us_store_destroy(s);
}

/* ------------------------------------------------------------------------ */
/* Concurrent stress: one filler/evicter, reader threads on the raw path     */
/* ------------------------------------------------------------------------ */

typedef struct stress {
    us_store_t      *s;
    us_layout_t      layout;          /* what readers use */
    size_t           csz;
    uint64_t         end_ns;
    atomic_uint_fast64_t last_id;     /* newest published id */
    atomic_int       stop;
    atomic_uint_fast64_t ok, wrong, torn, stale, late, missing, fills;
} stress_t;

static void *stress_reader(void *arg)
{
    stress_t *x = arg;
    uint8_t *buf = malloc(x->csz);
    us_read_stats_t rs = {0};
    uint64_t rnd = (uint64_t)pthread_self() | 1, id, last, wrong = 0;
    unsigned iter = 0;
    size_t got;
    us_key_t k;

    while (!atomic_load(&x->stop) && (iter < 2000000)) {
        iter++;
        rnd ^= rnd << 13; rnd ^= rnd >> 7; rnd ^= rnd << 17;
        last = atomic_load(&x->last_id);
        id   = last - (rnd % 96);              /* recent: likely being evicted */
        if (id > last) {
            continue;
        }
        k = key_of(id);
        if (us_read_raw(&x->layout, us_store_base(x->s), &k, buf, x->csz, &got, 1,
                        &rs) == UCACHE_OK) {
            wrong += (got != x->csz - (id % 7) * 64) ||
                     (pattern_bad(buf, got, id) != 0);
        }
    }
    atomic_fetch_add(&x->ok, rs.ok);
    atomic_fetch_add(&x->wrong, wrong);
    atomic_fetch_add(&x->torn, rs.torn);
    atomic_fetch_add(&x->stale, rs.stale);
    atomic_fetch_add(&x->late, rs.late);
    atomic_fetch_add(&x->missing, rs.not_found);
    free(buf);
    return NULL;
}

/* readers_honor_grace: 0 readers ignore the grace period, 1 they keep to
 * it, 2 every read of theirs outlasts it */
static void run_stress(uint64_t grace_ns, int readers_honor_grace, uint64_t run_ns,
                       stress_t *x)
{
    enum { READERS = 3 };
    pthread_t th[READERS];
    uint8_t *src;
    uint64_t id = 1;
    us_key_t k;
    int i;

    memset(x, 0, sizeof(*x));
    x->csz = 64 * KiB;
    x->s   = make_store(4 * MiB, grace_ns, x->csz, x->csz);
    x->layout = *us_store_layout(x->s);
    if (readers_honor_grace == 0) {
        x->layout.grace_ns = UINT64_MAX;       /* checksums alone must hold */
    } else if (readers_honor_grace == 2) {
        x->layout.grace_ns = 1;                /* every read late: slots must hold */
    }
    src = malloc(x->csz);
    for (; id < 64; id++) {
        fill_pattern(src, x->csz - (id % 7) * 64, id);
        k = key_of(id);
        CU_ASSERT_EQUAL_FATAL(us_store_put(x->s, &k, 0, src, x->csz - (id % 7) * 64,
                                           UC_NSEC_PER_SEC), UCACHE_OK);
    }
    atomic_store(&x->last_id, id - 1);
    for (i = 0; i < READERS; i++) {
        pthread_create(&th[i], NULL, stress_reader, x);
    }
    x->end_ns = uc_time_ns() + run_ns;
    while ((uc_time_ns() < x->end_ns) && (id < 5000000)) {
        us_fill_t f;
        size_t len = x->csz - (id % 7) * 64;

        k = key_of(id);
        if (us_store_reserve(x->s, &k, 0, len, &f) != UCACHE_OK) {
            continue;                          /* AGAIN: grace; retry */
        }
        /* write the payload in two halves, like an origin fetch would,
         * so readers racing the reuse see mixed bytes */
        fill_pattern(f.payload, len, id);
        CU_ASSERT_EQUAL(us_store_publish(x->s, &f), UCACHE_OK);
        if (id % 5 == 0) {                     /* explicit evictions too */
            us_key_t old = key_of(id - 3);
            us_store_evict(x->s, &old);
        }
        atomic_store(&x->last_id, id);
        id++;
    }
    atomic_store(&x->stop, 1);
    for (i = 0; i < READERS; i++) {
        pthread_join(th[i], NULL);
    }
    x->fills = id;
    check_budget(x->s);
    us_store_destroy(x->s);
    free(src);
}

static void stress_print(const char *name, const stress_t *x)
{
    printf("  %s: %llu fills, %llu ok, %llu torn, %llu stale, %llu late, %llu missing, "
           "%llu wrong\n", name, (unsigned long long)x->fills, (unsigned long long)x->ok,
           (unsigned long long)x->torn, (unsigned long long)x->stale,
           (unsigned long long)x->late, (unsigned long long)x->missing,
           (unsigned long long)x->wrong);
}

static void test_store_stress(void)
{
    stress_t a, b, c;

    /* memory reused at once and readers that ignore the grace period: the
     * checksum alone must catch every torn read */
    run_stress(1, 0, UC_NSEC_PER_SEC, &a);
    printf("\n");
    stress_print("no grace ", &a);
    CU_ASSERT_EQUAL(a.wrong, 0);
    CU_ASSERT(a.ok > 100);
    CU_ASSERT(a.torn + a.stale > 0);           /* the races did happen */
    /* the real protocol: a grace period, readers that honour it */
    run_stress(2 * UC_NSEC_PER_MSEC, 1, UC_NSEC_PER_SEC, &b);
    stress_print("grace 2ms", &b);
    CU_ASSERT_EQUAL(b.wrong, 0);
    CU_ASSERT(b.ok > 100);
    /* a read that kept to the grace period never sees reused memory: what
     * a slow (preempted) reader might have seen is discarded as late */
    CU_ASSERT_EQUAL(b.torn, 0);
    /* memory reused at once and every read late: each read counts only
     * through the slot's second look, which must discard the ones that
     * raced a reuse (late) and accept the others, all exact */
    run_stress(1, 2, UC_NSEC_PER_SEC, &c);
    stress_print("all late ", &c);
    CU_ASSERT_EQUAL(c.wrong, 0);
    CU_ASSERT(c.ok > 100);
    CU_ASSERT(c.late > 0);
}

/* ------------------------------------------------------------------------ */
/* A store in a transport-exported region, read through the transport        */
/* ------------------------------------------------------------------------ */

static void run_transport(const char *tls)
{
    const size_t mem = 8 * MiB, csz = 256 * KiB;
    ut_params_t sp = { .field_mask = UT_PARAM_FIELD_PROGRESS,
                       .progress = UC_PROGRESS_THREAD };
    ut_params_t cp = { .field_mask = UT_PARAM_FIELD_PROGRESS,
                       .progress = UC_PROGRESS_POLL };
    us_store_params_t p = { .len = mem, .grace_ns = 100 * UC_NSEC_PER_MSEC,
                            .index_chunk = csz, .max_payload = csz, .lock = 1 };
    ut_ctx_t *owner = NULL, *reader = NULL;
    uint8_t sb[US_SUPER_SIZE], bkt[2 * US_BUCKET_SIZE], *buf;
    const void *addr, *rblob;
    size_t alen, rlen;
    ut_peer_t *peer = NULL;
    ut_rkey_t *rkey = NULL;
    ut_mem_t *region = NULL;
    us_store_t *s = NULL;
    us_layout_t l;
    us_loc_t locs[8];
    ut_req_t req[2];
    uint64_t id, b[2];
    unsigned ok = 0, n, i;
    us_key_t k;

    setenv("UCX_TLS", tls, 1);
    setenv("UCX_NET_DEVICES", "lo", 1);
    CU_ASSERT_EQUAL_FATAL(ut_ctx_create("ucx", &sp, &owner), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(ut_ctx_create("ucx", &cp, &reader), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(ut_mem_export(owner, mem, &region), UCACHE_OK);
    p.base = region->base;
    CU_ASSERT_EQUAL_FATAL(us_store_create(&p, &s), UCACHE_OK);
    for (id = 0; id < 40; id++) {              /* more than fit: evictions */
        CU_ASSERT_EQUAL_FATAL(put_id(s, id, 0, csz - id), UCACHE_OK);
    }
    CU_ASSERT_EQUAL_FATAL(ut_address(owner, &addr, &alen), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(ut_mem_pack(region, &rblob, &rlen), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(ut_peer_create(reader, addr, alen, &peer), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(ut_rkey_unpack(peer, rblob, rlen, &rkey), UCACHE_OK);

    /* what the fabric's client will do: superblock once, then per key the
     * bucket pair in one batch, the chunk, verification */
    memset(req, 0, sizeof(req));
    CU_ASSERT_EQUAL_FATAL(ut_get_post(&req[0], rkey, rkey->base, sb, sizeof(sb)),
                          UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(ut_wait(reader, req, 1, 5 * UC_NSEC_PER_SEC), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_OK);
    buf = malloc(US_CHUNK_HDR + csz);
    for (id = 0; id < 40; id++) {
        k = key_of(id);
        us_key_buckets(&k, l.nbuckets, b);
        memset(req, 0, sizeof(req));
        for (i = 0; i < 2; i++) {
            CU_ASSERT_EQUAL(ut_get_post(&req[i], rkey,
                                        rkey->base + us_layout_bucket_off(&l, b[i]),
                                        bkt + i * US_BUCKET_SIZE, US_BUCKET_SIZE),
                            UCACHE_OK);
        }
        CU_ASSERT_EQUAL_FATAL(ut_wait(reader, req, 2, 5 * UC_NSEC_PER_SEC), UCACHE_OK);
        n = us_index_match(&l, bkt, &k, locs);
        for (i = 0; i < n; i++) {
            memset(req, 0, sizeof(req));
            CU_ASSERT_EQUAL(ut_get_post(&req[0], rkey, rkey->base + locs[i].hdr_off,
                                        buf, US_CHUNK_HDR + locs[i].length), UCACHE_OK);
            CU_ASSERT_EQUAL_FATAL(ut_wait(reader, req, 1, 5 * UC_NSEC_PER_SEC),
                                  UCACHE_OK);
            if (us_chunk_verify((us_chunk_hdr_t *)buf, buf + US_CHUNK_HDR, &k,
                                &locs[i]) == UCACHE_OK) {
                CU_ASSERT_EQUAL(locs[i].length, csz - id);
                CU_ASSERT_EQUAL(pattern_bad(buf + US_CHUNK_HDR, locs[i].length, id), 0);
                ok++;
                break;
            }
        }
        /* the owner's answer agrees with what the reader found */
        CU_ASSERT_EQUAL(us_store_lookup(s, &k, &locs[0]) == UCACHE_OK,
                        i < n);
    }
    CU_ASSERT(ok >= 20);                       /* 8 MiB holds ~28 of them */
    CU_ASSERT(ok < 40);
    printf("\n  %s: %u of 40 chunks read and verified through the transport "
           "(%s)\n", tls, ok, ut_rkey_is_mapped(rkey) ? "mapped" : "not mapped");
    free(buf);
    ut_rkey_destroy(rkey);
    ut_peer_destroy(peer);
    us_store_destroy(s);
    ut_mem_destroy(region);
    ut_ctx_destroy(reader);
    ut_ctx_destroy(owner);
    unsetenv("UCX_TLS");
    unsetenv("UCX_NET_DEVICES");
}

static void test_store_transport_shm(void)
{
    run_transport("posix,sysv,self,tcp");
}

static void test_store_transport_tcp(void)
{
    run_transport("tcp");
}

int main(void)
{
    int ret;
    static const uct_test_t layout[] = {
        {"super", test_layout_super},
        {"corruption_rejected", test_layout_corruption},
        {"batch", test_layout_batch},
        {"range", test_layout_range},
        {NULL, NULL}
    };
    static const uct_test_t alloc[] = {
        {"basic", test_alloc_basic},
        {"random", test_alloc_random},
        {"quarantine", test_alloc_quarantine},
        {NULL, NULL}
    };
    static const uct_test_t evict[] = {
        {"scan_resistance", test_evict_scan_resistance},
        {"ghost_and_pins", test_evict_ghost_and_pins},
        {NULL, NULL}
    };
    static const uct_test_t store[] = {
        {"states", test_store_states},
        {"bad_params", test_store_bad_params},
        {"fill_past_capacity", test_store_fill_past_capacity},
        {"pins_survive", test_store_pins_survive},
        {"pin_quota", test_store_pin_quota},
        {"quotas", test_store_quotas},
        {"scan_resistance", test_store_scan_resistance},
        {"index_conflicts", test_store_index_conflicts},
        {"grace", test_store_grace},
        {"stress_fill_vs_readers", test_store_stress},
        {"transport_shm", test_store_transport_shm},
        {"transport_tcp", test_store_transport_tcp},
        {NULL, NULL}
    };

    if ((CU_initialize_registry() != CUE_SUCCESS) ||
        uct_add_suite("layout", layout) || uct_add_suite("alloc", alloc) ||
        uct_add_suite("evict", evict) || uct_add_suite("store", store)) {
        return 2;
    }
    ret = uct_run();
    free(put_buf);
    return ret;
}
