/*
 * origin.h - where a missing chunk comes from: one backend per URI scheme
 * (file:// here; http(s)://, Azure Blob and S3 arrive with issue [4/6]).
 * The owner fills chunks through us_origin_read(); clients read an origin
 * themselves only when every owner of a chunk has failed.
 * Invariant: bytes read for an object are the bytes of the version given;
 * a backend that sees the object changed returns UCACHE_ERR_STALE rather
 * than mix versions.
 */
#ifndef US_ORIGIN_H
#define US_ORIGIN_H

#include "ucache.h"

#include <stddef.h>
#include <stdint.h>

#define US_URI_MAX 1024u    /* bytes of a URI, terminator included */

/* An object's identity at its origin. */
typedef struct us_object {
    uint64_t size;
    uint64_t version;       /* digest of the origin's version: file (dev,
                               inode, size, mtime), later the ETag */
} us_object_t;

typedef struct us_origin_ops {
    const char *scheme;     /* "file" */
    ucache_status_t (*stat)(const char *uri, us_object_t *obj_p);
    /* Exactly @p len bytes at @p off of version @p obj, or an error. */
    ucache_status_t (*read)(const char *uri, const us_object_t *obj,
                            uint64_t off, void *buf, size_t len);
} us_origin_ops_t;

typedef struct us_origin_stats {
    uint64_t stats;         /* metadata requests */
    uint64_t reads;         /* data requests     */
    uint64_t bytes;
    uint64_t errors;        /* failed requests (any status but OK) */
} us_origin_stats_t;

/**
 * The object's size and version.  UCACHE_ERR_UNSUPPORTED for a scheme no
 * backend serves, UCACHE_ERR_INVALID for a malformed URI,
 * UCACHE_ERR_NOT_FOUND if the object does not exist, UCACHE_ERR_IO else.
 */
ucache_status_t us_origin_stat(const char *uri, us_object_t *obj_p);

/** Read @p len bytes at @p off of version @p obj (see the invariant). */
ucache_status_t us_origin_read(const char *uri, const us_object_t *obj,
                               uint64_t off, void *buf, size_t len);

/** This process's origin counters. */
void us_origin_stats(us_origin_stats_t *stats_p);

extern const us_origin_ops_t us_origin_file_ops;

#endif
