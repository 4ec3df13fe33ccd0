/*
 * test_view.c - views (fabric/view.c) and a reader's suspicion of owners
 * (fabric/peer.c), alone: a view built from members out of slot order
 * (an overlapping one dropped, every node found by id, the records kept
 * only when they carry blobs), retired views freed only once nobody holds
 * them, and the suspicion back-off doubling to its cap and starting over
 * after a success.
 */
#include "fabric/fabric.h"
#include "tests/common.h"
#include "tests/fabric/fabric_util.h"
#include "util/time.h"

static uf_member_t *members_make(const uint64_t *ids, const uint32_t *slot0,
                                 uint32_t n, bool blobs)
{
    uf_member_t *m = calloc(n, sizeof(*m));
    uint32_t i;

    for (i = 0; i < n; i++) {
        m[i].id     = ids[i];
        m[i].slot0  = slot0[i];
        m[i].weight = 2;
        snprintf(m[i].host, sizeof(m[i].host), "node-%u", i);
        if (blobs) {
            m[i].addr_len = 8;
            m[i].addr     = calloc(1, 8);
            m[i].rkey_len = 8;
            m[i].rkey     = calloc(1, 8);
        }
    }
    return m;
}

static void test_view_build_find(void)
{
    /* slots out of order; the fifth overlaps the first's (2..3) */
    const uint64_t ids[5] = { 0x90, 0x10, 0x50, 0x30, 0x70 };
    const uint32_t slot0[5] = { 6, 2, 0, 4, 3 };
    uf_view_t *v = NULL;
    size_t bytes_file;
    uint32_t i, k;

    CU_ASSERT_EQUAL_FATAL(uf_view_build(NULL, members_make(ids, slot0, 5, false), 5, 7,
                                        0, &v), UCACHE_OK);
    CU_ASSERT_EQUAL(v->epoch, 7);
    CU_ASSERT_EQUAL(v->n, 4);                 /* 0x70 (slots 3..4) overlaps 0x10 */
    CU_ASSERT_PTR_NULL(v->recs);              /* no blobs: nothing to keep */
    for (i = 0; i < 5; i++) {
        k = uf_view_find(v, ids[i]);
        if (ids[i] == 0x70) {
            CU_ASSERT_EQUAL(k, UINT32_MAX);
            continue;
        }
        CU_ASSERT_FATAL(k < v->n);
        CU_ASSERT_EQUAL(v->nodes[k].id, ids[i]);
        CU_ASSERT_STRING_EQUAL(v->strings + v->nodes[k].host,
                               (ids[i] == 0x90) ? "node-0" : (ids[i] == 0x10) ? "node-1" :
                               (ids[i] == 0x50) ? "node-2" : "node-3");
    }
    CU_ASSERT_EQUAL(uf_view_find(v, 0x11), UINT32_MAX);
    CU_ASSERT_EQUAL(uf_view_find(NULL, 0x10), UINT32_MAX);
    /* nodes by slot: 0x50 (0), 0x10 (2), 0x30 (4), 0x90 (6) */
    CU_ASSERT_EQUAL(v->nodes[0].id, 0x50);
    CU_ASSERT_EQUAL(v->nodes[3].id, 0x90);
    bytes_file = uf_view_bytes(v);
    CU_ASSERT(bytes_file > sizeof(*v));
    uf_view_free(v);

    CU_ASSERT_EQUAL_FATAL(uf_view_build(NULL, members_make(ids, slot0, 4, true), 4, 8,
                                        0, &v), UCACHE_OK);
    CU_ASSERT_PTR_NOT_NULL(v->recs);          /* address and key blobs kept */
    CU_ASSERT_EQUAL(uf_view_bytes(v), bytes_file + 4 * (sizeof(uf_member_t) + 16));
    uf_view_free(v);
    uf_view_free(NULL);
}

static struct ucache_context *ctx_make(void)
{
    struct ucache_context *ctx = calloc(1, sizeof(*ctx));

    pthread_mutex_init(&ctx->lock, NULL);
    ctx->cfg.peer_retry_ns     = 100 * UC_NSEC_PER_MSEC;
    ctx->cfg.peer_retry_max_ns = 400 * UC_NSEC_PER_MSEC;
    return ctx;
}

static void test_view_retire(void)
{
    const uint64_t ids[2] = { 1, 2 };
    const uint32_t slot0[2] = { 0, 2 };
    struct ucache_context *ctx = ctx_make();
    uf_view_t *v1, *v2, *held;

    CU_ASSERT_EQUAL_FATAL(uf_view_build(ctx, members_make(ids, slot0, 2, false), 2, 1, 0, &v1),
                          UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(uf_view_build(ctx, members_make(ids, slot0, 1, false), 1, 2, 0, &v2),
                          UCACHE_OK);
    CU_ASSERT_PTR_NULL(uf_view_acquire(ctx));  /* none installed yet */
    uf_view_install(ctx, v1);
    held = uf_view_acquire(ctx);
    CU_ASSERT_PTR_EQUAL(held, v1);
    uf_view_install(ctx, v2);                  /* v1 retired, still held */
    CU_ASSERT_PTR_EQUAL(ctx->retired, v1);
    uf_view_reap(ctx, false);
    CU_ASSERT_PTR_EQUAL(ctx->retired, v1);     /* held: kept */
    CU_ASSERT_EQUAL(held->n, 2);               /* and readable */
    uf_view_release(held);
    uf_view_reap(ctx, false);
    CU_ASSERT_PTR_EQUAL(ctx->retired, v1);     /* unheld, but retired < 1 s ago */
    v1->retired_ns -= 2 * UC_NSEC_PER_SEC;
    uf_view_reap(ctx, false);
    CU_ASSERT_PTR_NULL(ctx->retired);          /* freed (ASan: no leak, no use after) */
    CU_ASSERT_PTR_EQUAL(uf_view_acquire(ctx), v2);
    uf_view_release(v2);
    uf_view_free(atomic_exchange(&ctx->view, NULL));
    uf_view_reap(ctx, true);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

/* A failed owner is skipped for PEER_RETRY, then 2x, 4x ... up to
 * PEER_RETRY_MAX, and a success starts it over. */
static void test_peer_suspicion(void)
{
    struct ucache_context *ctx = ctx_make();
    uf_peer_t p;
    uint64_t now, want[] = { 100, 200, 400, 400 };
    unsigned i;

    memset(&p, 0, sizeof(p));
    p.id = 0xabc;
    CU_ASSERT_FALSE(uf_peer_is_suspect(&p, uc_time_ns()));
    for (i = 0; i < 4; i++) {
        now = uc_time_ns();
        uf_peer_suspect(ctx, &p, "test");
        CU_ASSERT_EQUAL(atomic_load(&p.backoff_ns), want[i] * UC_NSEC_PER_MSEC);
        CU_ASSERT(uf_peer_is_suspect(&p, now));
        CU_ASSERT(uf_peer_is_suspect(&p, now + want[i] * UC_NSEC_PER_MSEC - UC_NSEC_PER_MSEC));
        CU_ASSERT_FALSE(uf_peer_is_suspect(&p, uc_time_ns() + want[i] * UC_NSEC_PER_MSEC + 1));
        uf_peer_suspect(ctx, &p, "again");     /* while suspect: no change */
        CU_ASSERT_EQUAL(atomic_load(&p.backoff_ns), want[i] * UC_NSEC_PER_MSEC);
        atomic_store(&p.suspect_until, 0);     /* its time is up */
    }
    CU_ASSERT_EQUAL(atomic_load(&ctx->st.failovers), 4);
    uf_peer_ok(&p);
    CU_ASSERT_EQUAL(atomic_load(&p.backoff_ns), 0);
    uf_peer_suspect(ctx, &p, "after a success");
    CU_ASSERT_EQUAL(atomic_load(&p.backoff_ns), 100 * UC_NSEC_PER_MSEC);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

/* A view finds each of 1000 nodes by id (its index in slot order), and no
 * other id. */
static void test_view_find(void)
{
    uf_member_t *m = calloc(1000, sizeof(*m));
    uint64_t ids[1000];
    uf_view_t *v = NULL;
    uint32_t i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    for (i = 0; i < 1000; i++) {
        ids[i] = ((uint64_t)(i * 2654435761u) << 20) | 1;  /* not in slot order */
        m[i] = tmember(ids[i], 1, 100 + i);
        m[i].addr = m[i].rkey = NULL;
        m[i].addr_len = m[i].rkey_len = 0;
        m[i].slot0 = 999 - i;
    }
    CU_ASSERT_EQUAL_FATAL(uf_view_build(NULL, m, 1000, 1, 0, &v), UCACHE_OK);
    for (i = 0; i < 1000; i++) {
        uint32_t k = uf_view_find(v, ids[i]);

        CU_ASSERT_FATAL(k < 1000);
        CU_ASSERT_EQUAL(v->nodes[k].id, ids[i]);
    }
    CU_ASSERT_EQUAL(uf_view_find(v, 2), UINT32_MAX);
    CU_ASSERT_EQUAL(uf_view_find(v, UINT64_MAX), UINT32_MAX);
    CU_ASSERT_EQUAL(uf_view_find(NULL, ids[0]), UINT32_MAX);
    uf_view_free(v);
}

const tc_test_t view_tests[] = {
    {"view_build_find", test_view_build_find},
    {"view_retire", test_view_retire},
    {"peer_suspicion", test_peer_suspicion},
    {"view_find", test_view_find},
    {NULL, NULL}
};
