/*
 * test_client.c - the read path (fabric/client.c) in one process: two
 * serving contexts joined with ucache_members_set() and a reader read an
 * object exactly, each chunk filled once; reads that come late while
 * chunks are evicted and refilled under them are retried, never wrong.
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

/* Two serving contexts in one process joined with ucache_members_set():
 * both read a 5-chunk object exactly; each chunk is filled once. */
static void test_members_set(void)
{
    ucache_params_t p = pair_params;
    const void *recs[2];
    size_t lens[2], got;
    char uri[160], *data, *buf, junk[100] = { 0 };
    ucache_stats_t s[2];
    ucache_h c[2] = { NULL, NULL }, reader;
    unsigned k;

    data = pair_start(&p, 7, 251, uri, sizeof(uri), c, recs, lens);
    buf = malloc(300000);
    recs[1] = junk;                              /* a malformed record */
    lens[1] = sizeof(junk);
    CU_ASSERT_EQUAL(ucache_members_set(c[0], recs, lens, 2, 1), UCACHE_ERR_CORRUPT);
    ucache_member_record(c[1], &recs[1], &lens[1]);
    CU_ASSERT_EQUAL(ucache_members_set(c[0], recs, lens, 2, 0), UCACHE_ERR_INVALID);
    for (k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL(ucache_members_set(c[k], recs, lens, 2, 1), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(ucache_members_set(c[0], recs, lens, 2, 1), UCACHE_ERR_INVALID);
    for (k = 0; k < 2; k++) {
        memset(buf, 0, 300000);
        CU_ASSERT_EQUAL(ucache_read(c[k], uri, 0, 300000, buf, &got), UCACHE_OK);
        CU_ASSERT_EQUAL(got, 300000);
        CU_ASSERT(memcmp(buf, data, 300000) == 0);
        CU_ASSERT_EQUAL(ucache_read(c[k], uri, 70000, 1000, buf, &got), UCACHE_OK);
        CU_ASSERT(memcmp(buf, data + 70000, 1000) == 0);
    }
    for (k = 0; k < 2; k++) {
        ucache_stats_get(c[k], &s[k]);
        CU_ASSERT_EQUAL(s[k].view_nodes, 2);
        CU_ASSERT_EQUAL(s[k].origin_direct, 0);
    }
    CU_ASSERT_EQUAL(s[0].fills + s[1].fills, 5);  /* 300000 / 64K: 5 chunks */
    CU_ASSERT_EQUAL(s[0].chunk_misses + s[1].chunk_misses, 5);
    /* a reader context with "mpi" members and no view reads the origin */
    p.field_mask = UCACHE_PARAM_FIELD_MEMBERS;
    CU_ASSERT_EQUAL_FATAL(ucache_init(&p, &reader), UCACHE_OK);
    CU_ASSERT_EQUAL(ucache_read(reader, uri, 299990, 100, buf, &got), UCACHE_OK);
    CU_ASSERT_EQUAL(got, 10);
    CU_ASSERT(memcmp(buf, data + 299990, 10) == 0);
    ucache_finalize(reader);
    for (k = 0; k < 2; k++) {
        ucache_finalize(c[k]);
    }
    free(data);
    free(buf);
    tdir_remove();
}

/* Owners whose grace period (1 us) every read outlasts, as a fresh reader's
 * first touch of a mapping or a sanitizer's copy does: the reads still
 * count at once, none retried, on the mapped path and over one-sided gets
 * (tcp), because the slot still holds each chunk after its copy; the
 * index check verifies every chunk the same way. */
static void test_late_reads(void)
{
    ucache_params_t p = pair_params;
    ucache_probe_params_t prm = { .field_mask = UCACHE_PROBE_FIELD_DEEP, .deep = 64 };
    const void *recs[2];
    size_t lens[2], got, n;
    char uri[160], *data, *buf;
    ucache_node_info_t nodes[2];
    ucache_probe_result_t r;
    ucache_stats_t s[2];
    ucache_h c[2];
    unsigned k, pass, other, o;

    buf = malloc(300000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    setenv("UCACHE_GRACE", "1us", 1);
    for (pass = 0; pass < 2; pass++) {        /* mapped, then gets over tcp */
        if (pass == 1) {
            setenv("UCX_TLS", "tcp", 1);
            setenv("UCACHE_READ_PATH", "get", 1);
            setenv("UCACHE_EMULATED_RMA", "yes", 1);   /* both nodes: the test mode */
        }
        data = pair_start(&p, 11, 239, uri, sizeof(uri), c, recs, lens);
        for (k = 0; k < 2; k++) {
            CU_ASSERT_EQUAL(ucache_members_set(c[k], recs, lens, 2, 1), UCACHE_OK);
        }
        for (k = 0; k < 4; k++) {             /* misses, then hits */
            memset(buf, 0, 300000);
            CU_ASSERT_EQUAL(ucache_read(c[k % 2], uri, 0, 300000, buf, &got), UCACHE_OK);
            CU_ASSERT(memcmp(buf, data, 300000) == 0);
        }
        for (k = 0; k < 2; k++) {
            ucache_stats_get(c[k], &s[k]);
            CU_ASSERT_EQUAL(s[k].verify_retries, 0);
            CU_ASSERT_EQUAL(s[k].origin_direct, 0);
        }
        CU_ASSERT(s[0].chunk_hits + s[1].chunk_hits > 0);
        /* probe the node that holds chunks (placement may give one all 5) */
        o = (s[1].chunks_cached > 0) ? 1 : 0;
        CU_ASSERT_EQUAL_FATAL(ucache_nodes(c[1 - o], nodes, 2, &n), UCACHE_OK);
        other = nodes[0].self ? 1 : 0;
        CU_ASSERT_EQUAL(ucache_node_probe(c[1 - o], nodes[other].id, &prm, &r), UCACHE_OK);
        CU_ASSERT_STRING_EQUAL(r.path, (pass == 0) ? "mapped" : "get");
        CU_ASSERT_EQUAL(r.chunks_checked, r.stats.chunks_cached);
        CU_ASSERT(r.chunks_checked > 0);
        CU_ASSERT_EQUAL(r.chunks_bad + r.chunks_changed, 0);
        for (k = 0; k < 2; k++) {
            ucache_finalize(c[k]);
        }
        free(data);
        tdir_remove();
    }
    unsetenv("UCACHE_GRACE");
    unsetenv("UCX_TLS");
    unsetenv("UCACHE_READ_PATH");
    unsetenv("UCACHE_EMULATED_RMA");
    free(buf);
}

const tc_test_t client_tests[] = {
    { "members_set", test_members_set },
    { "late_reads", test_late_reads },
    { NULL, NULL }
};
