/*
 * place.h - placement: chunk key -> R distinct live owner nodes.
 *
 * The scheme is DxHash (Dong & Wang, 2021): the view's nodes occupy slots of
 * an array of A = 2^k slots (a node of weight w holds w slots), and a key
 * probes slots in the order of a pseudo-random sequence seeded by the key;
 * its owner is the node of the first live slot hit.  Why this one:
 *   - the answer depends only on WHICH slots are live, never on the order in
 *     which nodes joined, failed or left, so clients that learn of changes in
 *     different orders (or mark different peers suspect) still agree wherever
 *     their live sets agree;
 *   - removing a node moves exactly its own keys, adding one moves keys only
 *     onto it (each probe sequence is fixed; only the first live hit changes);
 *   - every live slot is equally likely to be the first hit, so load follows
 *     weight with no structural imbalance (a ring's arcs give ~1.45 max/mean);
 *   - expected probes are 2^L / live slots, where 2^L is the power of two
 *     above the highest live slot (place.c: probe sequences nest across
 *     sizes), ~20 ns; not A / live, so an array far larger than the
 *     cluster (its configured capacity) costs lookups nothing.
 * Replicas are the next distinct live nodes of the same sequence, preferring
 * zones not yet used while any remain.  The owners of a key do not depend
 * on A: a view sizes its array to the slots in use (uf_place_capacity()),
 * and growth past a power of two moves only the joiners' keys.
 */
#ifndef UF_PLACE_H
#define UF_PLACE_H

#include "ucache.h"
#include "store/layout.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UF_MAX_WEIGHT    1024u          /* slots of one node             */
#define UF_MAX_SLOTS     (1u << 26)     /* A at most                     */
#define UF_MAX_REPLICAS  8u
#define UF_NO_NODE       UINT32_MAX

typedef struct uf_place uf_place_t;

/* What placement needs of a node: its slots and its failure domain. */
typedef struct uf_place_node {
    uint32_t slot0;    /* first of its weight consecutive slots (< A)    */
    uint32_t weight;   /* 1 .. UF_MAX_WEIGHT                             */
    uint32_t zone;     /* failure-domain index, 0 .. nnodes-1            */
    bool     alive;
} uf_place_node_t;

/** The smallest power-of-two A (at least 8) that holds @p slots. */
uint32_t uf_place_capacity(uint64_t slots);

/**
 * Build placement over @p n nodes and @p nslots = A (a power of two).
 * Slots must not overlap and must fit.  Free with uf_place_destroy().
 */
ucache_status_t uf_place_create(const uf_place_node_t *nodes, uint32_t n,
                                uint32_t nslots, uf_place_t **place_p);
void uf_place_destroy(uf_place_t *place);

/** Mark node @p idx live or not (suspect, down); O(weight).  Not thread-safe
 *  against lookups: the view swaps whole placements under RCU-like rules. */
void uf_place_set_alive(uf_place_t *place, uint32_t idx, bool alive);

/** The primary owner of @p key, or UF_NO_NODE if no node is live. */
uint32_t uf_place_owner(const uf_place_t *place, const us_key_t *key);

/**
 * Up to @p r (<= UF_MAX_REPLICAS) distinct live owners of @p key, primary
 * first; owners[0] == uf_place_owner().  Returns how many were found.
 */
unsigned uf_place_owners(const uf_place_t *place, const us_key_t *key,
                         unsigned r, uint32_t *owners);

/** Bytes of memory the placement holds. */
size_t uf_place_bytes(const uf_place_t *place);
uint32_t uf_place_slots(const uf_place_t *place);
uint32_t uf_place_live_nodes(const uf_place_t *place);

#endif
