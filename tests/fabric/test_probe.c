/*
 * test_probe.c - a node's probe (fabric/probe.c) and the admin calls
 * around it (fabric/admin.c, the evict of fabric/client.c) on a pair of
 * serving contexts in one process.
 */
#include "tests/common.h"
#include "tests/fabric/fabric_util.h"
#include "fabric/fabric.h"
#include "util/time.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The admin calls on an in-process fabric of two serving contexts: a
 * probe measures and checks the other node's index (every chunk verified);
 * a payload byte flipped in its store shows as a bad chunk, and a read
 * still returns the origin's bytes; evict drops every copy; a drained
 * node fills nothing, and comes back. */
static void test_node_admin(void)
{
    ucache_params_t p = pair_params;
    ucache_probe_params_t prm = { .field_mask = UCACHE_PROBE_FIELD_ITERS |
                                                UCACHE_PROBE_FIELD_DEEP |
                                                UCACHE_PROBE_FIELD_SIZE |
                                                UCACHE_PROBE_FIELD_LAT_NS,
                                  .iters = 8, .deep = 64, .size = 256u << 10 };
    const void *recs[2];
    size_t lens[2], got, n;
    uint64_t lat[8] = { 0 };
    char uri[160], *data, *buf, *base, *hit;
    ucache_node_info_t nodes[2];
    ucache_probe_result_t r;
    ucache_warm_result_t w;
    ucache_stats_t s[2], st;
    ucache_h c[2] = { NULL, NULL };
    unsigned i, k, other, o, q;

    prm.lat_ns = lat;
    data = pair_start(&p, 13, 241, uri, sizeof(uri), c, recs, lens);
    buf = malloc(300000);
    for (k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL(ucache_members_set(c[k], recs, lens, 2, 1), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(ucache_read(c[0], uri, 0, 300000, buf, &got), UCACHE_OK);
    CU_ASSERT(memcmp(buf, data, 300000) == 0);
    /* o: a node holding chunks; q probes it */
    ucache_stats_get(c[0], &s[0]);
    ucache_stats_get(c[1], &s[1]);
    o = (s[1].chunks_cached > 0) ? 1 : 0;
    q = 1 - o;
    CU_ASSERT_FATAL(s[o].chunks_cached > 0);
    CU_ASSERT_EQUAL_FATAL(ucache_nodes(c[q], nodes, 2, &n), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    other = nodes[0].self ? 1 : 0;

    /* the probe: counters, latency, bandwidth, every chunk verified */
    CU_ASSERT_EQUAL(ucache_node_probe(c[q], nodes[other].id, &prm, &r), UCACHE_OK);
    CU_ASSERT_EQUAL(r.status, UCACHE_OK);
    CU_ASSERT_EQUAL(r.lat_reads, 8);
    CU_ASSERT(lat[0] > 0);
    CU_ASSERT_EQUAL(r.bw_bytes, 8u * (256u << 10));
    CU_ASSERT(r.path[0] != '\0');
    CU_ASSERT_EQUAL(r.stats.chunks_cached, s[o].chunks_cached);
    CU_ASSERT_EQUAL(r.chunks_checked, s[o].chunks_cached);
    CU_ASSERT_EQUAL(r.chunks_bad, 0);
    CU_ASSERT_EQUAL(r.chunks_misplaced, 0);
    CU_ASSERT(r.buckets_scanned > 0);
    CU_ASSERT_EQUAL(r.index_cut, 0);

    /* a deadline that ends in the timed reads leaves the index check
     * undone, and the result says so (not a clean "0 chunks checked") */
    {
        ucache_probe_params_t cut = prm;

        cut.field_mask |= UCACHE_PROBE_FIELD_TIMEOUT_NS;
        cut.iters      = 100000;
        cut.timeout_ns = 20 * 1000000ull;
        cut.lat_ns     = NULL;
        CU_ASSERT_EQUAL(ucache_node_probe(c[q], nodes[other].id, &cut, &r), UCACHE_OK);
        CU_ASSERT(r.lat_reads > 0);
        CU_ASSERT(r.lat_reads + r.bw_reads < 200000);  /* the deadline ended them */
        CU_ASSERT_EQUAL(r.index_cut, 1);
        CU_ASSERT(r.chunks_checked < s[o].chunks_cached);
    }

    /* one payload byte flipped in the other node's memory */
    base = us_store_base(uf_node_store(c[o]->node));
    hit = NULL;
    for (i = 0; (hit == NULL) && (i < 5); i++) {
        hit = memmem(base, us_store_len(uf_node_store(c[o]->node)), data + 65536 * i, 256);
    }
    CU_ASSERT_FATAL(hit != NULL);
    hit[100] ^= 0x40;
    CU_ASSERT_EQUAL(ucache_node_probe(c[q], nodes[other].id, &prm, &r), UCACHE_OK);
    CU_ASSERT_EQUAL(r.chunks_bad, 1);
    CU_ASSERT_EQUAL(r.chunks_checked, s[o].chunks_cached - 1);
    memset(buf, 0, 300000);   /* a reader never gets the flipped byte */
    CU_ASSERT_EQUAL(ucache_read(c[q], uri, 0, 300000, buf, &got), UCACHE_OK);
    CU_ASSERT(memcmp(buf, data, 300000) == 0);
    hit[100] ^= 0x40;

    /* bad input */
    CU_ASSERT_EQUAL(ucache_node_probe(c[q], 12345, NULL, &r), UCACHE_ERR_NOT_FOUND);
    prm.iters = 0;
    CU_ASSERT_EQUAL(ucache_node_probe(c[q], nodes[other].id, &prm, &r), UCACHE_ERR_INVALID);
    prm.field_mask = 1u << 20;
    CU_ASSERT_EQUAL(ucache_node_probe(c[q], nodes[other].id, &prm, &r), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(ucache_node_drain(c[q], 12345, 1, 1000000000ull, &st),
                    UCACHE_ERR_NOT_FOUND);

    /* evict: every copy dropped */
    memset(&w, 0, sizeof(w));
    CU_ASSERT_EQUAL(ucache_warm(c[q], uri, 0, UINT64_MAX, UCACHE_WARM_EVICT, &w), UCACHE_OK);
    CU_ASSERT_EQUAL(w.chunks, 5);
    CU_ASSERT(w.evicted >= 5); /* and the copies the corrupt read sent elsewhere */
    CU_ASSERT_EQUAL(ucache_warm(c[q], uri, 0, UINT64_MAX, UCACHE_WARM_EVICT | UCACHE_WARM_PIN,
                                &w), UCACHE_ERR_INVALID);
    for (k = 0; k < 2; k++) {
        ucache_stats_get(c[k], &s[k]);
        CU_ASSERT_EQUAL(s[k].chunks_cached, 0);
    }

    /* drain the other node: it fills nothing; the bytes stay exact */
    CU_ASSERT_EQUAL(ucache_node_drain(c[q], nodes[other].id, 1, 1000000000ull, &st), UCACHE_OK);
    CU_ASSERT_EQUAL(st.draining, 1);
    CU_ASSERT_EQUAL(ucache_read(c[q], uri, 0, 300000, buf, &got), UCACHE_OK);
    CU_ASSERT(memcmp(buf, data, 300000) == 0);
    ucache_stats_get(c[o], &st);
    CU_ASSERT_EQUAL(st.fills, s[o].fills);
    CU_ASSERT_EQUAL(st.chunks_cached, 0);
    CU_ASSERT_EQUAL(ucache_node_drain(c[q], nodes[other].id, 0, 1000000000ull, &st), UCACHE_OK);
    CU_ASSERT_EQUAL(st.draining, 0);
    for (k = 0; k < 2; k++) {
        ucache_finalize(c[k]);
    }
    free(data);
    free(buf);
    tdir_remove();
}

const tc_test_t probe_tests[] = {
    { "node_admin", test_node_admin },
    { NULL, NULL }
};
