/*
 * test_keymap.c - the key -> value map (store/keymap.c): against a plain
 * array as the model, through growth and backward-shift deletions, with
 * keys made to collide.
 */
#include "store/keymap.h"
#include "tests/store/store_util.h"

#include <stdlib.h>

static void test_keymap_model(void)
{
    enum { N = 3000, OPS = 40000 };
    static uint64_t model[N];
    static uint8_t  has[N];
    us_keymap_t m;
    us_key_t k;
    uint64_t v, seed = 12345;
    unsigned i, op, n = 0, bad = 0;

    us_keymap_init(&m);
    CU_ASSERT(!us_keymap_get(&m, &(us_key_t){1, 2}, &v));
    CU_ASSERT(!us_keymap_del(&m, &(us_key_t){1, 2}));
    for (op = 0; op < OPS; op++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        i = (unsigned)((seed >> 33) % N);
        /* lo's low bits repeat every 64 keys: long probe runs, wrap-around */
        k.hi = i / 64;
        k.lo = ((uint64_t)i << 40) | (i % 64);
        if ((seed >> 20) % 3 != 0) {
            CU_ASSERT_EQUAL_FATAL(us_keymap_put(&m, &k, seed), UCACHE_OK);
            n += !has[i];
            has[i] = 1;
            model[i] = seed;
        } else {
            CU_ASSERT_EQUAL(us_keymap_del(&m, &k), (bool)has[i]);
            n -= has[i];
            has[i] = 0;
        }
        CU_ASSERT_EQUAL_FATAL(m.n, n);
    }
    for (i = 0; i < N; i++) {
        k.hi = i / 64;
        k.lo = ((uint64_t)i << 40) | (i % 64);
        v = 0;
        bad += (us_keymap_get(&m, &k, &v) != (bool)has[i]) || (has[i] && (v != model[i]));
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(n > 100);
    CU_ASSERT(2 * (uint64_t)m.n <= (uint64_t)m.mask + 1);
    us_keymap_cleanup(&m);
    CU_ASSERT_EQUAL(m.n, 0);
}

const tc_test_t keymap_tests[] = {
    {"model", test_keymap_model},
    {NULL, NULL}
};
