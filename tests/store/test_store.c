/*
 * test_store.c - the node store's owner API (store/store.c): states,
 * capacity, pins, quotas, index conflicts, grace, a concurrent fill/evict
 * vs raw-reader stress test, and a store over a transport-exported region
 * read through the transport.  main() runs these and the layout, alloc
 * and evict suites (test_layout.c, test_alloc.c, test_evict.c).
 */
#include "store/alloc.h"
#include "store/store.h"
#include "transport/transport.h"
#include "util/config.h"
#include "util/time.h"
#include "tests/store/store_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

extern const tc_test_t layout_tests[];
extern const tc_test_t alloc_tests[];
extern const tc_test_t evict_tests[];
extern const tc_test_t keymap_tests[];
extern const tc_test_t nvme_tests[];

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
    CU_ASSERT_EQUAL(st.bytes_pinned, (npin + 1) * us_alloc_block_size(csz + 64 + us_chunk_table_bytes((uint32_t)csz)));
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
    uint64_t bsz = us_alloc_block_size(csz + 64 + us_chunk_table_bytes((uint32_t)csz)), limit = 3 * bsz;
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
    CU_ASSERT(us_store_ns_used(s, 3) > quota - 2 * us_alloc_block_size(csz + 64 + us_chunk_table_bytes((uint32_t)csz)));
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
    CU_ASSERT_EQUAL(us_store_quota_set(s, 6, 2 * us_alloc_block_size(csz + 64 + us_chunk_table_bytes((uint32_t)csz))),
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
    buf = malloc(US_CHUNK_HDR + US_MAX_TABLE + csz);
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
            /* header, segment table and payload lie together: one get */
            size_t pay = US_CHUNK_HDR + us_chunk_table_bytes(locs[i].length);

            CU_ASSERT_EQUAL(ut_get_post(&req[0], rkey, rkey->base + locs[i].hdr_off,
                                        buf, pay + locs[i].length), UCACHE_OK);
            CU_ASSERT_EQUAL_FATAL(ut_wait(reader, req, 1, 5 * UC_NSEC_PER_SEC),
                                  UCACHE_OK);
            if (us_chunk_verify(&l, &k, &locs[i], (us_chunk_hdr_t *)buf, buf + US_CHUNK_HDR,
                                buf + pay, NULL, 0, locs[i].length, 0) == UCACHE_OK) {
                CU_ASSERT_EQUAL(locs[i].length, csz - id);
                CU_ASSERT_EQUAL(pattern_bad(buf + pay, locs[i].length, id), 0);
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

/* tcp has no one-sided path: gets in UCX's software RMA, the test mode
 * (the fabric reads such owners with FETCHes instead) */
static void test_store_transport_tcp(void)
{
    setenv("UCACHE_EMULATED_RMA", "yes", 1);
    setenv("UCACHE_READ_PATH", "get", 1);
    run_transport("tcp");
    unsetenv("UCACHE_EMULATED_RMA");
    unsetenv("UCACHE_READ_PATH");
}

static void *commit_worker(void *arg)
{
    us_store_t *s = arg;

    while (us_store_commit(s) > 0) {
    }
    return NULL;
}

/* A borrowed region committed as the store runs (params.commit_first): at
 * first only the first segment is usable; fills go on while two threads
 * commit the rest; then all of it is usable, the allocator checks out
 * and the newest chunks read exact. */
static void test_store_commit_growing(void)
{
    const size_t mem = 448 * MiB, csz = 1 * MiB;
    us_store_params_t p = { .len = mem, .grace_ns = 100 * UC_NSEC_PER_USEC,
                            .index_chunk = csz, .max_payload = csz, .lock = 1,
                            .commit_first = 1 };
    uint8_t *region = mmap(NULL, mem, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                           -1, 0);
    us_store_stats_t st;
    uint64_t id, n = 0, wrong = 0, missing = 0;
    pthread_t t[2];
    us_store_t *s = NULL;
    unsigned i;
    int r;

    CU_ASSERT_FATAL(region != MAP_FAILED);
    p.base = region;
    CU_ASSERT_EQUAL_FATAL(us_store_create(&p, &s), UCACHE_OK);
    us_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.bytes_usable, 64 * MiB);      /* one segment */
    CU_ASSERT_EQUAL(st.commit_ns, 0);
    CU_ASSERT_EQUAL(st.bytes_free, 64 * MiB);
    /* past the usable part: evicted for capacity, never written beyond it */
    for (id = 0; id < 128; id++, n++) {
        CU_ASSERT_EQUAL_FATAL(put_id(s, id, 0, csz - 64), UCACHE_OK);
    }
    us_store_stats(s, &st);
    CU_ASSERT(st.evict_capacity > 0);
    CU_ASSERT(st.bytes_used <= st.bytes_usable);
    for (i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, commit_worker, s), 0);
    }
    for (; n < 1024; n++) {                /* fills while it grows */
        CU_ASSERT_EQUAL_FATAL(put_id(s, n, 0, csz - 64), UCACHE_OK);
    }
    for (i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    CU_ASSERT_EQUAL(us_store_commit(s), 0);
    us_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.bytes_usable, st.data_bytes);
    CU_ASSERT(st.commit_ns > 0);
    CU_ASSERT_EQUAL(st.locked, 1);
    /* grown: the whole data area holds chunks now */
    for (; n < 1024 + 512; n++) {
        CU_ASSERT_EQUAL_FATAL(put_id(s, n, 0, csz - 64), UCACHE_OK);
    }
    us_store_stats(s, &st);
    CU_ASSERT(st.bytes_cached > st.data_bytes * 3 / 4);
    for (id = n - 256; id < n; id++) {
        r = get_id(s, id, csz - 64);
        missing += (r == 1);
        wrong   += (r == 2);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(missing, 0);
    printf("\n  committed %zu MiB in %.2f s while filling; %llu MiB cached\n", mem >> 20,
           st.commit_ns / 1e9, (unsigned long long)(st.bytes_cached >> 20));
    us_store_destroy(s);
    munmap(region, mem);
}

int main(void)
{
    int ret;
    static const tc_test_t store[] = {
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
        {"commit_growing", test_store_commit_growing},
        {"transport_shm", test_store_transport_shm},
        {"transport_tcp", test_store_transport_tcp},
        {NULL, NULL}
    };

    if ((CU_initialize_registry() != CUE_SUCCESS) ||
        tc_add_suite("layout", layout_tests) || tc_add_suite("alloc", alloc_tests) ||
        tc_add_suite("evict", evict_tests) || tc_add_suite("keymap", keymap_tests) || tc_add_suite("store", store) ||
        tc_add_suite("nvme", nvme_tests)) {
        return 2;
    }
    ret = tc_run();
    store_util_cleanup();
    return ret;
}
