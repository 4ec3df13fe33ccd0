/*
 * test_evict.c - the S3-FIFO policy (store/evict.c): a scan does not flush
 * the hot set; the ghost queue and pins.
 */
#include "store/evict.h"
#include "tests/store/store_util.h"

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

const tc_test_t evict_tests[] = {
    {"scan_resistance", test_evict_scan_resistance},
    {"ghost_and_pins", test_evict_ghost_and_pins},
    {NULL, NULL}
};
