/*
 * test_place.c - placement (fabric/place.c): order independence, minimal
 * movement, replicas across zones, weights, dead views, bad input.
 */
#include "tests/common.h"
#include "fabric/place.h"

#include <math.h>

static us_key_t tkey(uint64_t i)
{
    us_key_t k;
    uint64_t z = i * 0x9e3779b97f4a7c15ull + 1;

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    k.hi = z ^ (z >> 27);
    z = k.hi * 0x94d049bb133111ebull;
    k.lo = z ^ (z >> 31);
    return k;
}

static uf_place_t *tplace(uint32_t n, uint32_t zones, uint32_t weight,
                          uint32_t nslots)
{
    uf_place_node_t *nodes = calloc(n, sizeof(*nodes));
    uf_place_t *p = NULL;
    uint32_t i;

    CU_ASSERT_FATAL(nodes != NULL);
    for (i = 0; i < n; i++) {
        nodes[i].slot0  = i * weight;
        nodes[i].weight = weight;
        nodes[i].zone   = i % zones;
        nodes[i].alive  = true;
    }
    CU_ASSERT_EQUAL_FATAL(uf_place_create(nodes, n, nslots, &p), UCACHE_OK);
    free(nodes);
    return p;
}

/* Two clients that learn of the same failures in opposite orders agree. */
static void test_place_order_independent(void)
{
    uf_place_t *a = tplace(64, 4, 1, 256), *b = tplace(64, 4, 1, 256);
    uint32_t dead[] = { 3, 17, 40, 41, 63 }, oa[3], ob[3];
    unsigned i, na, nb;
    int j;

    for (i = 0; i < 5; i++) {
        uf_place_set_alive(a, dead[i], false);
    }
    for (j = 4; j >= 0; j--) {
        uf_place_set_alive(b, dead[j], false);
        uf_place_set_alive(b, (uint32_t)j, false); /* churn, then back */
        uf_place_set_alive(b, (uint32_t)j, true);
    }
    uf_place_set_alive(b, 3, false);
    for (i = 0; i < 100000; i++) {
        us_key_t k = tkey(i);
        na = uf_place_owners(a, &k, 3, oa);
        nb = uf_place_owners(b, &k, 3, ob);
        CU_ASSERT_EQUAL(na, 3);
        CU_ASSERT_EQUAL(nb, 3);
        CU_ASSERT(memcmp(oa, ob, sizeof(oa)) == 0);
        CU_ASSERT_EQUAL(oa[0], uf_place_owner(a, &k));
    }
    uf_place_destroy(a);
    uf_place_destroy(b);
}

/* A leave moves exactly the leaver's keys; a join moves keys only onto the
 * joiner; both about 1/N of them. */
static void test_place_minimal_movement(void)
{
    const uint32_t n = 100, keys = 200000;
    uf_place_node_t nodes[101];
    uf_place_t *p, *q;
    uint32_t i, o, base, moved = 0, wrong = 0;

    for (i = 0; i <= n; i++) {
        nodes[i] = (uf_place_node_t){ .slot0 = i, .weight = 1, .zone = 0,
                                      .alive = (i < n) };
    }
    CU_ASSERT_EQUAL_FATAL(uf_place_create(nodes, n + 1, 256, &p), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(uf_place_create(nodes, n + 1, 256, &q), UCACHE_OK);
    uf_place_set_alive(q, 7, false);
    for (i = 0; i < keys; i++) {
        us_key_t k = tkey(i);
        base = uf_place_owner(p, &k);
        o = uf_place_owner(q, &k);
        CU_ASSERT(base < n);
        moved += (o != base);
        wrong += (o != base) && (base != 7);
        CU_ASSERT(o != 7);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT(fabs((double)moved / keys * n - 1.0) < 0.1);
    uf_place_set_alive(q, 7, true);
    uf_place_set_alive(q, n, true); /* the joiner */
    moved = 0;
    for (i = 0; i < keys; i++) {
        us_key_t k = tkey(i);
        base = uf_place_owner(p, &k);
        o = uf_place_owner(q, &k);
        moved += (o != base);
        wrong += (o != base) && (o != n);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT(fabs((double)moved / keys * (n + 1) - 1.0) < 0.1);
    uf_place_destroy(p);
    uf_place_destroy(q);
}

/*
 * Growth never reshuffles: a fabric of 100 nodes grows to 250 - across the
 * power of two of slots (128) that used to double the array and move most
 * keys - and every key that moved, primary and replicas, moved to a joiner;
 * the array's size (A = 256 or 2^20) changes no owner.  And a fabric
 * shrinking back gives every key its old owners again.
 */
static void test_place_growth(void)
{
    const uint32_t n = 100, grown = 250, keys = 100000;
    uint32_t i, o1[3], o2[3], o3[3], moved = 0, wrong = 0, j, n1, n2, n3;
    uf_place_t *small, *big, *huge;

    small = tplace(n, 4, 1, 256);          /* what the view used to size: 2x */
    huge  = tplace(n, 4, 1, 1u << 20);     /* a fabric configured for 1M slots */
    big   = tplace(grown, 4, 1, 1u << 20); /* the same fabric grown */
    for (i = 0; i < keys; i++) {
        us_key_t k = tkey(i);

        n1 = uf_place_owners(small, &k, 3, o1);
        n2 = uf_place_owners(huge, &k, 3, o2);
        n3 = uf_place_owners(big, &k, 3, o3);
        CU_ASSERT((n1 == 3) && (n2 == 3) && (n3 == 3));
        CU_ASSERT(memcmp(o1, o2, sizeof(o1)) == 0);   /* A changes nothing */
        moved += (o3[0] != o1[0]);
        wrong += (o3[0] != o1[0]) && (o3[0] < n);     /* only onto joiners */
        for (j = 0; j < 3; j++) {
            /* an old node still an owner was an owner before */
            wrong += (o3[j] < n) && (o3[j] != o1[0]) && (o3[j] != o1[1]) &&
                     (o3[j] != o1[2]);
        }
    }
    CU_ASSERT_EQUAL(wrong, 0);
    /* the joiners' share: 150 of 250 slots */
    CU_ASSERT(fabs((double)moved / keys - 150.0 / 250.0) < 0.01);
    /* the 150 joiners leave again: every key is back with its old owners */
    for (i = n; i < grown; i++) {
        uf_place_set_alive(big, i, false);
    }
    for (i = 0; i < keys; i += 7) {
        us_key_t k = tkey(i);

        uf_place_owners(small, &k, 3, o1);
        uf_place_owners(big, &k, 3, o3);
        CU_ASSERT(memcmp(o1, o3, sizeof(o1)) == 0);
    }
    uf_place_destroy(small);
    uf_place_destroy(huge);
    uf_place_destroy(big);
}

/* Two live nodes far apart in 2^22 slots: lookups end in the fallback
 * scan, which gives the same owners whatever the array's size.  64 keys
 * (each a scan of millions of slots: 2000 took 15 s, and 5 minutes under
 * TSan); both nodes get some, or one got all 64 (odds 2^-63). */
static void test_place_sparse(void)
{
    uf_place_node_t nodes[2] = { { .slot0 = 5, .weight = 1, .zone = 0, .alive = true },
                                 { .slot0 = (1u << 21) + 3, .weight = 1, .zone = 1,
                                   .alive = true } };
    uint32_t i, a[2], b[2], seen[2] = { 0, 0 };
    uf_place_t *p, *q;

    CU_ASSERT_EQUAL_FATAL(uf_place_create(nodes, 2, 1u << 22, &p), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(uf_place_create(nodes, 2, 1u << 24, &q), UCACHE_OK);
    for (i = 0; i < 64; i++) {
        us_key_t k = tkey(i);

        CU_ASSERT_EQUAL(uf_place_owners(p, &k, 2, a), 2);
        CU_ASSERT_EQUAL(uf_place_owners(q, &k, 2, b), 2);
        CU_ASSERT((a[0] == b[0]) && (a[1] == b[1]) && (a[0] != a[1]));
        CU_ASSERT_EQUAL(uf_place_owner(p, &k), a[0]);
        seen[a[0]]++;
    }
    CU_ASSERT((seen[0] > 0) && (seen[1] > 0)); /* both get keys */
    CU_ASSERT_EQUAL(uf_place_create(nodes, 1, 4, &p), UCACHE_ERR_INVALID);
    uf_place_destroy(p);
    uf_place_destroy(q);
}

/* Replicas are distinct, in distinct zones while zones last, and the
 * primary of a dead node's keys is its old first replica. */
static void test_place_replicas_zones(void)
{
    uf_place_t *p = tplace(30, 3, 1, 64);
    uint32_t o[5], o2[5], dead;
    unsigned i, n, a, b;

    for (i = 0; i < 20000; i++) {
        us_key_t k = tkey(i);
        n = uf_place_owners(p, &k, 3, o);
        CU_ASSERT_EQUAL(n, 3);
        CU_ASSERT((o[0] % 3 != o[1] % 3) && (o[0] % 3 != o[2] % 3) &&
                  (o[1] % 3 != o[2] % 3));
        n = uf_place_owners(p, &k, 5, o);
        CU_ASSERT_EQUAL(n, 5);
        for (a = 0; a < 5; a++) {
            for (b = a + 1; b < 5; b++) {
                CU_ASSERT(o[a] != o[b]);
            }
        }
    }
    /* One zone left alive: replicas still distinct, all from that zone. */
    for (i = 0; i < 30; i++) {
        uf_place_set_alive(p, i, i % 3 == 1);
    }
    for (i = 0; i < 2000; i++) {
        us_key_t k = tkey(i);
        n = uf_place_owners(p, &k, 3, o);
        CU_ASSERT_EQUAL(n, 3);
        CU_ASSERT((o[0] % 3 == 1) && (o[1] % 3 == 1) && (o[2] % 3 == 1));
        CU_ASSERT((o[0] != o[1]) && (o[1] != o[2]) && (o[0] != o[2]));
    }
    for (i = 0; i < 30; i++) {
        uf_place_set_alive(p, i, true);
    }
    uf_place_destroy(p);
    /* One zone: a dead primary's keys go to its old first replica. */
    p = tplace(30, 1, 1, 64);
    for (i = 0; i < 2000; i++) {
        us_key_t k = tkey(i);
        uf_place_owners(p, &k, 3, o);
        dead = o[0];
        uf_place_set_alive(p, dead, false);
        uf_place_owners(p, &k, 3, o2);
        CU_ASSERT((o2[0] == o[1]) && (o2[1] == o[2]));
        uf_place_set_alive(p, dead, true);
    }
    uf_place_destroy(p);
}

/* Load follows weight: a weight-3 node gets ~3x a weight-1 node's keys. */
static void test_place_weights(void)
{
    uf_place_node_t nodes[4] = {
        { .slot0 = 0, .weight = 1, .zone = 0, .alive = true },
        { .slot0 = 1, .weight = 3, .zone = 1, .alive = true },
        { .slot0 = 4, .weight = 2, .zone = 2, .alive = true },
        { .slot0 = 6, .weight = 2, .zone = 3, .alive = true },
    };
    uint32_t load[4] = { 0 }, i;
    uf_place_t *p;

    CU_ASSERT_EQUAL_FATAL(uf_place_create(nodes, 4, uf_place_capacity(8), &p),
                          UCACHE_OK);
    CU_ASSERT_EQUAL(uf_place_slots(p), 8);
    for (i = 0; i < 400000; i++) {
        us_key_t k = tkey(i);
        load[uf_place_owner(p, &k)]++;
    }
    CU_ASSERT(fabs(load[1] / (double)load[0] - 3.0) < 0.1);
    CU_ASSERT(fabs(load[2] / (double)load[0] - 2.0) < 0.1);
    CU_ASSERT(fabs(load[3] / (double)load[2] - 1.0) < 0.05);
    uf_place_destroy(p);
}

static void test_place_dead_and_bad(void)
{
    uf_place_node_t overlap[2] = {
        { .slot0 = 0, .weight = 2, .zone = 0, .alive = true },
        { .slot0 = 1, .weight = 1, .zone = 0, .alive = true },
    };
    uf_place_node_t big = { .slot0 = 6, .weight = 4, .zone = 0, .alive = true };
    uf_place_t *p = tplace(4, 1, 1, 4096), *q = NULL;
    uint32_t o[3], i;
    us_key_t k = tkey(1);

    /* Sparse (4 live of 4096 slots): the walk, then the scan, still finds. */
    for (i = 0; i < 1000; i++) {
        k = tkey(i);
        CU_ASSERT(uf_place_owner(p, &k) < 4);
    }
    for (i = 0; i < 4; i++) {
        uf_place_set_alive(p, i, false);
    }
    CU_ASSERT_EQUAL(uf_place_owner(p, &k), UF_NO_NODE);
    CU_ASSERT_EQUAL(uf_place_owners(p, &k, 3, o), 0);
    uf_place_set_alive(p, 2, true);
    CU_ASSERT_EQUAL(uf_place_owners(p, &k, 3, o), 1);
    CU_ASSERT_EQUAL(o[0], 2);
    CU_ASSERT_EQUAL(uf_place_live_nodes(p), 1);
    uf_place_destroy(p);

    CU_ASSERT_EQUAL(uf_place_create(overlap, 2, 8, &q), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uf_place_create(&big, 1, 8, &q), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uf_place_create(overlap, 1, 12, &q), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uf_place_create(overlap, 1, 0, &q), UCACHE_ERR_INVALID);
    CU_ASSERT(q == NULL);
    CU_ASSERT_EQUAL(uf_place_capacity(3), 8);
    CU_ASSERT_EQUAL(uf_place_capacity(100000), 131072);
    CU_ASSERT_EQUAL(uf_place_capacity(131072), 131072);
}

const tc_test_t place_tests[] = {
    { "place_order_independent", test_place_order_independent },
    { "place_minimal_movement", test_place_minimal_movement },
    { "place_growth", test_place_growth },
    { "place_sparse", test_place_sparse },
    { "place_replicas_zones", test_place_replicas_zones },
    { "place_weights", test_place_weights },
    { "place_dead_and_bad", test_place_dead_and_bad },
    { NULL, NULL }
};
