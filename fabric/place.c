/*
 * place.c - DxHash placement (see place.h for why this scheme), with probe
 * sequences that nest across array sizes.
 * The slot array holds, per slot, the index of the node that owns it, with
 * UF_SLOT_DEAD set while that node is not live, or UF_SLOT_EMPTY.  A lookup
 * walks the key's probe sequence to the first live slot.
 *
 * The probe sequence S_L of a key over 2^L slots is built level by level:
 * each draw of S_L flips a coin (a generator of level L's own, seeded by
 * the key); heads, a slot of the upper half [2^(L-1), 2^L) from the same
 * draw; tails, the next draw of S_(L-1).  S_3 is uniform over 8 slots.  So
 * every S_L is uniform over its 2^L slots (as DxHash needs), and the slots
 * below 2^(L-1) that S_L visits are S_(L-1), in the same order.  Hence:
 *   - the first live slot of S_L is the same for every L at or above the
 *     level of the highest live slot: a lookup walks the sequence of that
 *     level (p->level), about 2^level / live slots probes, however large
 *     the configured array A is (1% full costs what 50% full does, while
 *     nodes hold the lowest slots, as every source hands them out);
 *   - the answer does not depend on A either: a fabric that outgrows a power
 *     of two moves only the joiners' keys, and readers with different A
 *     agree wherever their live slots do.
 * Invariant: the owners of a key depend on the key and the set of live
 * slots alone (the deterministic fallback scan included).
 */
#include "fabric/place.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

#define UF_SLOT_EMPTY  UINT32_MAX
#define UF_SLOT_DEAD   0x80000000u
#define UF_PROBE_MAX   4096u   /* then a deterministic linear scan */
#define UF_LEVEL_BASE  3u      /* S_3: 8 slots                      */
#define UF_LEVEL_MAX   26u     /* 2^26 = UF_MAX_SLOTS               */

struct uf_place {
    uint32_t  mask;        /* A - 1 */
    uint32_t  level;       /* lookups walk S_level: 2^level > the highest
                              live slot                              */
    uint32_t  top;         /* the highest live slot + 1 (0: none)    */
    uint32_t  nnodes;
    uint32_t  nlive;
    uint32_t  zones_live;  /* zones with at least one live node */
    uint32_t *slots;       /* A entries */
    uint32_t *zone;        /* per node */
    uint32_t *slot0;       /* per node */
    uint32_t *weight;      /* per node */
    uint32_t *zone_live;   /* live nodes per zone */
    uint8_t  *alive;       /* per node */
};

/* The key's generator state: both halves mixed, so placement does not
 * correlate with the bits the owner's index uses to pick buckets. */
static inline uint64_t uf_seed(const us_key_t *key)
{
    return (key->hi ^ ((key->lo << 32) | (key->lo >> 32))) * 0x9e3779b97f4a7c15ull;
}

static inline uint64_t uf_next(uint64_t *s)
{
    __uint128_t t;

    *s += 0xa0761d6478bd642full;
    t = (__uint128_t)*s * (*s ^ 0xe7037ed1a0b428dbull);
    return (uint64_t)(t >> 64) ^ (uint64_t)t;
}

/* A key's probe sequences: one generator per level, seeded on first use. */
typedef struct uf_seq {
    uint64_t seed;
    uint32_t inited;                 /* levels whose st[] is seeded */
    uint64_t st[UF_LEVEL_MAX + 1];
} uf_seq_t;

static inline void uf_seq_init(uf_seq_t *q, const us_key_t *key)
{
    q->seed   = uf_seed(key);
    q->inited = 0;
}

static inline uint64_t uf_seq_next(uf_seq_t *q, unsigned l)
{
    if (!(q->inited & (1u << l))) {
        q->st[l] = (q->seed ^ ((uint64_t)l * 0xd1b54a32d192ed03ull)) * 0x9e3779b97f4a7c15ull;
        q->inited |= 1u << l;
    }
    return uf_next(&q->st[l]);
}

/* The next slot of S_L (uniform over [0, 2^L)). */
static inline uint32_t uf_seq_draw(uf_seq_t *q, unsigned L)
{
    uint64_t r;
    unsigned l;

    for (l = L; l > UF_LEVEL_BASE; l--) {
        r = uf_seq_next(q, l);
        if (r >> 63) {
            return (1u << (l - 1)) | ((uint32_t)r & ((1u << (l - 1)) - 1));
        }
    }
    return (uint32_t)uf_seq_next(q, UF_LEVEL_BASE) & ((1u << UF_LEVEL_BASE) - 1);
}

/* Where the fallback scan of @p key starts: the same whatever A is. */
static inline uint32_t uf_scan_start(const uf_place_t *p, const us_key_t *key)
{
    uint32_t s = (uint32_t)(uf_seed(key) >> 38); /* 26 bits */

    return (s <= p->mask) ? s : p->mask + 1;
}

/* The slot the fallback scan visits i-th: [start, A), then [0, start). */
static inline uint32_t uf_scan_slot(const uf_place_t *p, uint32_t start, uint32_t i)
{
    uint32_t n = p->mask + 1;

    return (i < n - start) ? start + i : i - (n - start);
}

/* p->level for p->top. */
static void uf_place_relevel(uf_place_t *p)
{
    uint32_t l = UF_LEVEL_BASE;

    while ((l < UF_LEVEL_MAX) && ((1u << l) < p->top)) {
        l++;
    }
    p->level = l;
}

uint32_t uf_place_capacity(uint64_t slots)
{
    uint64_t a = 8;

    while ((a < slots) && (a < UF_MAX_SLOTS)) {
        a <<= 1;
    }
    return (uint32_t)a;
}

ucache_status_t uf_place_create(const uf_place_node_t *nodes, uint32_t n,
                                uint32_t nslots, uf_place_t **place_p)
{
    uf_place_t *p;
    uint32_t i, j, s;

    if ((nslots < (1u << UF_LEVEL_BASE)) || (nslots > UF_MAX_SLOTS) || (nslots & (nslots - 1)) ||
        (n >= UF_SLOT_DEAD) || ((n > 0) && (nodes == NULL))) {
        UC_ERROR("placement over %u nodes and %u slots is invalid", n, nslots);
        return UCACHE_ERR_INVALID;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    p->mask      = nslots - 1;
    p->level     = UF_LEVEL_BASE;
    p->nnodes    = n;
    p->slots     = malloc(sizeof(*p->slots) * nslots);
    p->zone      = malloc(sizeof(*p->zone) * (n + 1));
    p->slot0     = malloc(sizeof(*p->slot0) * (n + 1));
    p->weight    = malloc(sizeof(*p->weight) * (n + 1));
    p->zone_live = calloc(n + 1, sizeof(*p->zone_live));
    p->alive     = calloc(n + 1, 1);
    if ((p->slots == NULL) || (p->zone == NULL) || (p->slot0 == NULL) ||
        (p->weight == NULL) || (p->zone_live == NULL) || (p->alive == NULL)) {
        uf_place_destroy(p);
        return UCACHE_ERR_NO_MEMORY;
    }
    memset(p->slots, 0xff, sizeof(*p->slots) * nslots);
    for (i = 0; i < n; i++) {
        if ((nodes[i].weight == 0) || (nodes[i].weight > UF_MAX_WEIGHT) ||
            (nodes[i].zone >= n) || (nodes[i].slot0 >= nslots) ||
            (nodes[i].weight > nslots - nodes[i].slot0)) {
            UC_ERROR("node %u: slots [%u, +%u) zone %u do not fit %u slots",
                     i, nodes[i].slot0, nodes[i].weight, nodes[i].zone, nslots);
            goto err_invalid;
        }
        p->zone[i]   = nodes[i].zone;
        p->slot0[i]  = nodes[i].slot0;
        p->weight[i] = nodes[i].weight;
        for (j = 0; j < nodes[i].weight; j++) {
            s = nodes[i].slot0 + j;
            if (p->slots[s] != UF_SLOT_EMPTY) {
                UC_ERROR("nodes %u and %u both claim slot %u",
                         p->slots[s] & ~UF_SLOT_DEAD, i, s);
                goto err_invalid;
            }
            p->slots[s] = i | UF_SLOT_DEAD;
        }
    }
    for (i = 0; i < n; i++) {
        uf_place_set_alive(p, i, nodes[i].alive);
    }
    *place_p = p;
    return UCACHE_OK;

err_invalid:
    uf_place_destroy(p);
    return UCACHE_ERR_INVALID;
}

void uf_place_destroy(uf_place_t *p)
{
    if (p == NULL) {
        return;
    }
    free(p->slots);
    free(p->zone);
    free(p->slot0);
    free(p->weight);
    free(p->zone_live);
    free(p->alive);
    free(p);
}

void uf_place_set_alive(uf_place_t *p, uint32_t idx, bool alive)
{
    uint32_t j, v;

    if ((idx >= p->nnodes) || (!!p->alive[idx] == alive)) {
        return;
    }
    p->alive[idx] = alive;
    v = alive ? idx : (idx | UF_SLOT_DEAD);
    for (j = 0; j < p->weight[idx]; j++) {
        p->slots[p->slot0[idx] + j] = v;
    }
    if (alive) {
        p->nlive++;
        if (p->zone_live[p->zone[idx]]++ == 0) {
            p->zones_live++;
        }
        if (p->slot0[idx] + p->weight[idx] > p->top) {
            p->top = p->slot0[idx] + p->weight[idx];
        }
    } else {
        p->nlive--;
        if (--p->zone_live[p->zone[idx]] == 0) {
            p->zones_live--;
        }
        if (p->slot0[idx] + p->weight[idx] == p->top) { /* the top left */
            p->top = 0;
            for (j = 0; j < p->nnodes; j++) {
                if (p->alive[j] && (p->slot0[j] + p->weight[j] > p->top)) {
                    p->top = p->slot0[j] + p->weight[j];
                }
            }
        }
    }
    uf_place_relevel(p);
}

uint32_t uf_place_owner(const uf_place_t *p, const us_key_t *key)
{
    uint32_t i, e, start;
    uf_seq_t q;

    if (p->nlive == 0) {
        return UF_NO_NODE;
    }
    uf_seq_init(&q, key);
    for (i = 0; i < UF_PROBE_MAX; i++) {
        e = p->slots[uf_seq_draw(&q, p->level)];
        if (e < UF_SLOT_DEAD) {
            return e;
        }
    }
    /* Almost every slot is dead or empty: a deterministic scan. */
    start = uf_scan_start(p, key);
    for (i = 0; i <= p->mask; i++) {
        e = p->slots[uf_scan_slot(p, start, i)];
        if (e < UF_SLOT_DEAD) {
            return e;
        }
    }
    return UF_NO_NODE;
}

static bool uf_contains(const uint32_t *v, unsigned n, uint32_t x)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        if (v[i] == x) {
            return true;
        }
    }
    return false;
}

/* Take live node @p e as the next owner unless it is taken, or its zone is
 * taken while other live zones are not; such nodes wait in @p later. */
static void uf_consider(const uf_place_t *p, uint32_t e, unsigned want,
                        uint32_t *owners, unsigned *n, uint32_t *zones,
                        uint32_t *later, unsigned *nlater)
{
    if (uf_contains(owners, *n, e) || uf_contains(later, *nlater, e)) {
        return;
    }
    if ((*n < p->zones_live) && uf_contains(zones, *n, p->zone[e])) {
        if (*nlater < want) {
            later[(*nlater)++] = e;
        }
        return;
    }
    zones[*n] = p->zone[e];
    owners[(*n)++] = e;
}

unsigned uf_place_owners(const uf_place_t *p, const us_key_t *key, unsigned r,
                         uint32_t *owners)
{
    uint32_t zones[UF_MAX_REPLICAS], later[UF_MAX_REPLICAS];
    unsigned n = 0, nlater = 0, i, want;
    uint32_t e, start;
    uf_seq_t q;

    want = (r > UF_MAX_REPLICAS) ? UF_MAX_REPLICAS : r;
    if (want > p->nlive) {
        want = p->nlive;
    }
    uf_seq_init(&q, key);
    for (i = 0; (i < UF_PROBE_MAX) && (n < want); i++) { /* as uf_place_owner */
        e = p->slots[uf_seq_draw(&q, p->level)];
        if (e < UF_SLOT_DEAD) {
            uf_consider(p, e, want, owners, &n, zones, later, &nlater);
        }
    }
    /* Zones ran out (or the walk did): same-zone nodes in sequence order,
     * then a deterministic scan for whatever is still missing. */
    for (i = 0; (i < nlater) && (n < want); i++) {
        if (!uf_contains(owners, n, later[i])) {
            owners[n++] = later[i];
        }
    }
    start = uf_scan_start(p, key);
    for (i = 0; (i <= p->mask) && (n < want); i++) {
        e = p->slots[uf_scan_slot(p, start, i)];
        if ((e < UF_SLOT_DEAD) && !uf_contains(owners, n, e)) {
            owners[n++] = e;
        }
    }
    return n;
}

size_t uf_place_bytes(const uf_place_t *p)
{
    return sizeof(*p) + (size_t)(p->mask + 1) * sizeof(uint32_t) +
           (size_t)(p->nnodes + 1) * (4 * sizeof(uint32_t) + 1);
}

uint32_t uf_place_slots(const uf_place_t *p)
{
    return p->mask + 1;
}

uint32_t uf_place_live_nodes(const uf_place_t *p)
{
    return p->nlive;
}
