/*
 * node.h - the owner service (node.c): a serving context's store, exported
 * through the transport, answering FETCH (find or fill, coalesced) and
 * TOUCH, with a bounded fill queue and fill threads.
 */
#ifndef UF_NODE_H
#define UF_NODE_H

#include "fabric/proto.h"
#include "store/store.h"
#include "transport/transport.h"
#include "util/config.h"

#include <stdbool.h>

typedef struct uf_node uf_node_t;

typedef struct uf_node_stats {
    uint64_t fetches;        /* FETCH requests answered (any outcome) */
    uint64_t fetch_hits;     /* found in the store */
    uint64_t fills;          /* origin reads made to fill a chunk */
    uint64_t fill_bytes;
    uint64_t coalesced;      /* requests that joined a fill in progress */
    uint64_t fill_errors;
    uint64_t bad_requests;
    uint64_t touches;        /* one-sided hits readers reported */
    uint64_t refused;        /* fills refused: UCACHE_ALLOW does not allow them */
    uint64_t busy;           /* FETCHes refused: the fill queue was full */
    uint64_t denied;         /* admin operations without the admin key  */
    uint64_t moved;          /* misses answered MOVED: the reader's view was
                                older and the key is no longer this node's */
    uint64_t meta_served;    /* META requests answered (meta.c) */
    uint64_t fill_us_bucket[UCACHE_FILL_BUCKETS]; /* fill durations */
    uint64_t fill_us_sum;
} uf_node_stats_t;

/** Export @p cfg->mem_bytes through @p tr, build the store in it, serve
 *  FETCH with cfg->fetch_threads fill threads, which read origins with the
 *  settings @p origin (copied; NULL: the defaults). */
ucache_status_t uf_node_create(ut_ctx_t *tr, const uc_config_t *cfg,
                               const us_origin_params_t *origin, uf_node_t **node_p);

/** Stop serving: fail waiting requests (UCACHE_ERR_CANCELED), join the
 *  fill threads, free the store.  Accepts NULL. */
void uf_node_destroy(uf_node_t *node);

/** Draining: FETCH misses are refused (UCACHE_ERR_MOVED) instead of filled,
 *  so readers go to the next owner; hits are still served. */
void uf_node_set_draining(uf_node_t *node, bool draining);
bool uf_node_draining(uf_node_t *node);

/**
 * Whether a FETCH miss of @p key from a reader whose view is of epoch
 * @p epoch should be answered UCACHE_ERR_MOVED: the context's check (its
 * view is newer and does not place @p key here).  NULL: never.
 */
typedef bool (*uf_moved_fn_t)(void *arg, const us_key_t *key, uint64_t epoch);
void uf_node_set_moved_check(uf_node_t *node, uf_moved_fn_t fn, void *arg);

/** How the fill threads find an object's ETag when a FETCH names only its
 *  version (the context's uf_lookup; NULL: the origin backend asks). */
typedef ucache_status_t (*uf_lookup_fn_t)(void *arg, const char *uri, us_object_t *obj_p);
void uf_node_set_lookup(uf_node_t *node, uf_lookup_fn_t fn, void *arg);

/** Whether a request about @p key from a reader of view epoch @p epoch is
 *  to be answered UCACHE_ERR_MOVED (counted); the check above. */
bool uf_node_moved(uf_node_t *node, const us_key_t *key, uint64_t epoch);

/** Bytes of the node's NVMe tier (its devices' capacity; 0: none). */
uint64_t uf_node_nvme_bytes(uf_node_t *node);

/** The node's metadata service (meta.h): the self-owner path. */
struct uf_meta *uf_node_meta(uf_node_t *node);

/** Count (and log, rate-limited) an admin operation @p what refused for a
 *  request without the admin key. */
void uf_node_denied(uf_node_t *node, const char *what);

/** Count a malformed request (one the context refused for the node). */
void uf_node_bad_request(uf_node_t *node);

/** Wait up to @p timeout_ns for fills in progress to finish (drain). */
void uf_node_drain(uf_node_t *node, uint64_t timeout_ns);

us_store_t *uf_node_store(uf_node_t *node);

/** Hit feedback: @p n keys were hit (each counts @p weight hits in
 *  eviction), standing for @p hits one-sided hits (the TOUCH handler, and
 *  a context's reports of hits in its own store). */
void uf_node_touch(uf_node_t *node, const us_key_t *keys, unsigned n, unsigned weight,
                   uint64_t hits);

/** The exported region's rkey blob (owned by the node). */
ucache_status_t uf_node_rkey(uf_node_t *node, const void **blob_p, size_t *len_p);

/** The self-owner path: find or fill a chunk in this process, blocking;
 *  *how_p says how (UF_HOW_*).  Pin flags as for a FETCH. */
ucache_status_t uf_node_fetch_local(uf_node_t *node, const uf_fetch_req_t *req,
                                    const char *uri, us_loc_t *loc_p, uint32_t *how_p);

void uf_node_stats(uf_node_t *node, uf_node_stats_t *stats);

#endif
