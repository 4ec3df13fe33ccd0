/*
 * fabric_util.h - helpers of the fabric's unit suites (fabric_util.c).
 */
#ifndef UCACHE_TESTS_FABRIC_UTIL_H
#define UCACHE_TESTS_FABRIC_UTIL_H

#include "fabric/fabric.h"

#include <stddef.h>
#include <stdint.h>

/** A scratch directory, /tmp/ucache-tmember.XXXXXX (made, removed). */
extern char tdir[];
void tdir_make(void);
void tdir_remove(void);

/** A member record of @p id with blobs that are not a node's. */
uf_member_t tmember(uint64_t id, uint32_t weight, uint32_t pid);

/** Write @p len bytes at @p path, whole. */
void write_file(const char *path, const char *data, size_t len);

/** Serving contexts of 16 MiB in 64 KiB chunks, joined by "mpi" records. */
extern const ucache_params_t pair_params;

/** A 300000-byte object of pattern i * @p mul + i / @p div at @p uri (in
 *  tdir, made), and two serving contexts of @p p with their records (not
 *  yet joined); the object's bytes (malloc'd). */
char *pair_start(const ucache_params_t *p, unsigned mul, unsigned div, char *uri,
                 size_t cap, ucache_h c[2], const void *recs[2], size_t lens[2]);

#endif
