/*
 * store_util.c - what the store's suites share: keys and chunk patterns
 * of a test id, a store made for a test, puts and raw reads of a test id,
 * the process's RSS and the store's byte budget check.
 */
#include "tests/store/store_util.h"

#include <stdio.h>
#include <unistd.h>

us_key_t key_of(uint64_t id)
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

void fill_pattern(uint8_t *p, size_t len, uint64_t id)
{
    pattern(p, len, id, 0);
}

size_t pattern_bad(const uint8_t *p, size_t len, uint64_t id)
{
    return pattern((uint8_t *)p, len, id, 1);
}

us_store_t *make_store(size_t len, uint64_t grace_ns, size_t index_chunk,
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

ucache_status_t put_id(us_store_t *s, uint64_t id, uint16_t ns, size_t len)
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
int get_id(us_store_t *s, uint64_t id, size_t len)
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

uint64_t rss_bytes(void)
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

void check_budget(us_store_t *s)
{
    us_store_stats_t st;

    us_store_stats(s, &st);
    CU_ASSERT(st.bytes_used + st.bytes_free == st.data_bytes - 64);
    CU_ASSERT(st.bytes_grace <= st.bytes_used);
    CU_ASSERT(st.bytes_cached <= st.bytes_used);
    CU_ASSERT(st.region_bytes >= st.index_bytes + st.data_bytes + US_SUPER_SIZE);
    CU_ASSERT(st.slots_used <= st.slots);
}

void store_util_cleanup(void)
{
    free(put_buf);
    put_buf = NULL;
    put_buf_len = 0;
}
