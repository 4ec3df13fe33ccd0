/*
 * test_alloc.c - the TLSF allocator (store/alloc.c): allocation and
 * coalescing, a random workload against a model, the grace quarantine,
 * a held tail handed over piece by piece (memory committed as it goes).
 */
#include "store/alloc.h"
#include "tests/store/store_util.h"

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

/* A held tail: nothing past the usable part is handed out until grown,
 * growth coalesces with free memory before it, and once all is grown the
 * allocator is the one a plain init makes. */
static void test_alloc_grow(void)
{
    const uint64_t len = 4 * MiB;
    uint8_t *mem = aligned_alloc(64, len);
    uint64_t off[64], total, n, got = 0;
    unsigned i, k = 0;
    us_alloc_t a;

    CU_ASSERT_EQUAL_FATAL(us_alloc_init(&a, mem, len, 1000), UCACHE_OK);
    total = a.free_bytes;
    us_alloc_hold(&a, MiB);
    CU_ASSERT_EQUAL(a.free_bytes, MiB);
    CU_ASSERT_EQUAL(a.held, total - MiB);
    CU_ASSERT_EQUAL(a.free_bytes + a.used_bytes, a.len);
    CU_ASSERT_EQUAL(us_alloc_check(&a), UCACHE_OK);
    /* only the first MiB is handed out */
    while ((k < 64) && (us_alloc_get(&a, 100 * KiB, &off[k]) == UCACHE_OK)) {
        CU_ASSERT(off[k] + us_alloc_size(&a, off[k]) <= MiB);
        k++;
    }
    CU_ASSERT_EQUAL(k, 10);
    us_alloc_put(&a, off[k - 1]);   /* a free block just before the tail */
    k--;
    /* grown in uneven steps; the last takes a remainder under 64 bytes too */
    for (i = 0; (n = us_alloc_grow(&a, 300 * KiB + 7)) != 0; i++) {
        got += n;
        CU_ASSERT_EQUAL(us_alloc_check(&a), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(got, total - MiB);
    CU_ASSERT_EQUAL(a.held, 0);
    CU_ASSERT_EQUAL(us_alloc_grow(&a, MiB), 0);
    CU_ASSERT(us_alloc_largest_free(&a) >= total - MiB);  /* coalesced */
    while (k > 0) {
        us_alloc_put(&a, off[--k]);
    }
    CU_ASSERT_EQUAL(a.used_bytes, 0);
    CU_ASSERT_EQUAL(us_alloc_largest_free(&a), total);
    CU_ASSERT_EQUAL(us_alloc_check(&a), UCACHE_OK);
    us_alloc_cleanup(&a);
    /* everything held at first: nothing to allocate until it grows */
    CU_ASSERT_EQUAL_FATAL(us_alloc_init(&a, mem, len, 1000), UCACHE_OK);
    us_alloc_hold(&a, 0);
    CU_ASSERT_EQUAL(a.free_bytes, 0);
    CU_ASSERT_EQUAL(us_alloc_get(&a, 64, &off[0]), UCACHE_ERR_NO_MEMORY);
    CU_ASSERT_EQUAL(us_alloc_check(&a), UCACHE_OK);
    CU_ASSERT_EQUAL(us_alloc_grow(&a, 64 * KiB), 64 * KiB);
    CU_ASSERT_EQUAL(us_alloc_get(&a, 64, &off[0]), UCACHE_OK);
    CU_ASSERT_EQUAL(off[0], 0);
    CU_ASSERT_EQUAL(us_alloc_check(&a), UCACHE_OK);
    us_alloc_cleanup(&a);
    free(mem);
}

/* The owners' check: blocks held (in any order) and the quarantine each
 * start a used block once; one held twice, one retired while still held
 * (freed twice later), an offset inside a block, or a block nobody holds
 * (with whole) is caught. */
static void test_alloc_owners(void)
{
    const uint64_t len = MiB;
    void *mem = aligned_alloc(64, len);
    uint64_t off[4], v[5];
    us_alloc_t a;
    unsigned i;

    CU_ASSERT_EQUAL_FATAL(us_alloc_init(&a, mem, len, 1000000000ull), UCACHE_OK);
    for (i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL_FATAL(us_alloc_get(&a, 4 * KiB * (i + 1), &off[i]), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(us_alloc_retire(&a, off[3], 0), UCACHE_OK);   /* in its grace */
    v[0] = off[2]; v[1] = off[0]; v[2] = off[1];
    CU_ASSERT_EQUAL(us_alloc_check_owners(&a, v, 3, true), UCACHE_OK);
    v[0] = off[2]; v[1] = off[0];
    CU_ASSERT_EQUAL(us_alloc_check_owners(&a, v, 2, false), UCACHE_OK);
    v[0] = off[2]; v[1] = off[0];                                  /* off[1] lost */
    CU_ASSERT_EQUAL(us_alloc_check_owners(&a, v, 2, true), UCACHE_ERR_CORRUPT);
    v[0] = off[0]; v[1] = off[1]; v[2] = off[2]; v[3] = off[1];    /* held twice */
    CU_ASSERT_EQUAL(us_alloc_check_owners(&a, v, 4, false), UCACHE_ERR_CORRUPT);
    v[0] = off[0]; v[1] = off[1]; v[2] = off[2]; v[3] = off[3];    /* and retired */
    CU_ASSERT_EQUAL(us_alloc_check_owners(&a, v, 4, false), UCACHE_ERR_CORRUPT);
    v[0] = off[0]; v[1] = off[1]; v[2] = off[2] + 64;              /* not a block */
    CU_ASSERT_EQUAL(us_alloc_check_owners(&a, v, 3, false), UCACHE_ERR_CORRUPT);
    us_alloc_reclaim(&a, 2000000000ull);
    v[0] = off[0]; v[1] = off[1]; v[2] = off[2];
    CU_ASSERT_EQUAL(us_alloc_check_owners(&a, v, 3, true), UCACHE_OK);
    CU_ASSERT_EQUAL(us_alloc_check(&a), UCACHE_OK);
    us_alloc_cleanup(&a);
    free(mem);
}

const tc_test_t alloc_tests[] = {
    {"basic", test_alloc_basic},
    {"random", test_alloc_random},
    {"quarantine", test_alloc_quarantine},
    {"grow", test_alloc_grow},
    {"owners", test_alloc_owners},
    {NULL, NULL}
};
