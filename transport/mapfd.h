/*
 * mapfd.h - exported memory that same-host readers may map, but only to
 * read.  An exported region is a sealed memfd: after the owner's own
 * writable mapping is made, F_SEAL_FUTURE_WRITE forbids every new writable
 * shared mapping of it (and write(2)); F_SEAL_SHRINK and F_SEAL_GROW fix
 * its size.  A same-host reader asks the owner over a unix socket (an
 * abstract name, given in the owner's address blob) for a region, with a
 * request the owner checks (transport/auth.h); the owner answers with a new
 * read-only open of the memfd (SCM_RIGHTS), which the reader maps PROT_READ.
 * UCX's own same-host mapping (ucp_rkey_ptr over its posix segments) is
 * writable, which is why regions are not allocated by UCX.
 *
 * The server is one thread per context answering one connection at a time,
 * each within a deadline; a request or answer of the wrong size is refused.
 */
#ifndef UT_MAPFD_H
#define UT_MAPFD_H

#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UT_MAPFD_NAME_MAX 32
#define UT_MAPFD_REQ_MAX  256

typedef struct ut_mapfd_srv ut_mapfd_srv_t;

/**
 * Answer one request of @p len bytes: on UCACHE_OK, *fd_p is a read-only
 * descriptor of the region (the server closes it after sending) and *len_p
 * the bytes the reader may map.
 */
typedef ucache_status_t (*ut_mapfd_open_fn)(void *arg, const void *req, size_t len,
                                            int *fd_p, uint64_t *len_p);

/** @p len bytes of shared memory mapped read-write at *ptr_p, sealed
 *  against any other writable mapping; *fd_p is its memfd. */
ucache_status_t ut_memfd_alloc(size_t len, int *fd_p, void **ptr_p);

/** A new read-only open of the memfd @p fd (its own file description). */
int ut_memfd_reopen_ro(int fd);

/** Serve @p fn on the unix socket @p name: DIR/NAME.sock in directory
 *  @p dir (readable and writable by all: requests are signed), or the
 *  abstract socket @NAME if @p dir is "" or NULL. */
ucache_status_t ut_mapfd_start(const char *dir, const char *name, uint64_t deadline_ns,
                               ut_mapfd_open_fn fn, void *arg, ut_mapfd_srv_t **srv_p);
void ut_mapfd_stop(ut_mapfd_srv_t *srv);

/**
 * Ask the server at @p name for a region with @p req; within @p timeout_ns.
 * @return UCACHE_OK with a mapping of *len_p bytes at *ptr_p (PROT_READ,
 *         the caller munmaps it), the server's refusal, UCACHE_ERR_PEER if
 *         no server answers, UCACHE_ERR_INVALID for a malformed answer.
 */
ucache_status_t ut_mapfd_map(const char *dir, const char *name, const void *req, size_t len,
                             uint64_t timeout_ns, void **ptr_p, uint64_t *len_p);

/** Whether a server's socket DIR/NAME.sock is there (a directory shared
 *  by the host's processes: the server is on this host). */
bool ut_mapfd_present(const char *dir, const char *name);

#endif
