/*
 * meta.h - object metadata owned by the fabric, the owner's side (meta.c):
 * a serving node answers META requests (proto.h) for the objects and
 * prefixes placed on it - an object's size and version, a listing's pages -
 * asking the origin at most once per its UCACHE_META_TTL for any number of
 * readers, and only within its own UCACHE_ALLOW.
 */
#ifndef UF_META_H
#define UF_META_H

#include "fabric/node.h"
#include "fabric/proto.h"
#include "origin/origin.h"
#include "transport/transport.h"

#include <stddef.h>
#include <stdint.h>

typedef struct uf_meta uf_meta_t;

/** The placement key of @p uri's metadata (an object's, or a prefix's
 *  listing): which owner answers for it. */
us_key_t uf_meta_key(const char *uri);

/**
 * Serve META on @p tr for @p node with @p nthreads threads asking the
 * origin (with the settings @p origin, within @p allow; both outlive it),
 * keeping listings in at most @p mem_cap bytes.
 */
ucache_status_t uf_meta_create(uf_node_t *node, ut_ctx_t *tr, const us_allow_t *allow,
                               const us_origin_params_t *origin, size_t mem_cap,
                               unsigned nthreads, uf_meta_t **meta_p);

/** Stop serving: queued requests are answered UCACHE_ERR_CANCELED.
 *  Accepts NULL. */
void uf_meta_destroy(uf_meta_t *meta);

/**
 * @p uri's size and version as this owner knows it, asking the origin if
 * its answer is older than @p max_age_ns or the owner's TTL, or is of
 * version @p stale (not 0); *age_p: how long ago the origin gave it.
 * UCACHE_ERR_REFUSED outside UCACHE_ALLOW.  Blocks (the self-owner path,
 * and the meta threads).
 */
ucache_status_t uf_meta_stat(uf_meta_t *meta, const char *uri, uint64_t stale,
                             uint64_t max_age_ns, us_object_t *obj_p, uint64_t *age_p);

/**
 * A page of the listing of @p prefix: up to @p max objects after URI
 * @p after ("": the first), in strcmp order, as LIST entries in @p buf
 * (UF_META_PAGE_BYTES at most), *rep_p and *len_p saying what it holds.
 * The listing is asked of the origin once per TTL (or @p max_age_ns, if
 * shorter) and kept whole.  With
 * @p wait false, UCACHE_INPROGRESS where it would ask or wait.
 */
ucache_status_t uf_meta_page(uf_meta_t *meta, const char *prefix, const char *after,
                             unsigned max, uint64_t max_age_ns, bool wait, void *buf,
                             uf_meta_rep_t *rep_p, size_t *len_p);

/** META requests answered (any outcome but a malformed request). */
uint64_t uf_meta_served(uf_meta_t *meta);

#endif
