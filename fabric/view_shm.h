/*
 * view_shm.h - a daemon's view published to the readers of its host
 * (view_shm.c): a file in the runtime directory (tmpfs), mapped by the
 * daemon read-write and by readers read-only, that holds the membership
 * the daemon follows (node records as placement needs them, the epoch,
 * the placement's capacity).  Readers of a fabric on etcd map it instead of
 * talking to etcd: at 100,000 nodes only the daemons watch etcd.
 *
 * Consistency: a sequence count, odd while the daemon writes; a reader
 * copies the records, then checks the count did not move and the copy's
 * checksum - it never uses a torn view.  A view that outgrows the file
 * goes to a new file renamed over the path, and the old one is marked
 * replaced (readers map the path again).  The daemon beats every
 * UCACHE_MEMBERS_POLL; a reader trusts the file while its writer lives.
 */
#ifndef UF_VIEW_SHM_H
#define UF_VIEW_SHM_H

#include "fabric/member.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct uf_vshm uf_vshm_t;

/** The path a daemon following @p members publishes at: @p configured if
 *  set (UCACHE_VIEW_SHM), else RUNTIME_DIR/view-HASH (the directory of the
 *  default dir: source, HASH of @p members). */
void uf_vshm_path(const char *configured, const char *members, char *out, size_t cap);

/**
 * Publish @p n records of epoch @p epoch at @p *w_p's path (created on
 * first use: *w_p NULL, @p path given).  UCACHE_ERR_BUSY if another live
 * daemon publishes there (its lock is held).
 */
ucache_status_t uf_vshm_publish(uf_vshm_t **w_p, const char *path, uint64_t epoch,
                                const uf_member_t *m, uint32_t n, uint32_t slots,
                                uint64_t slot_bytes);
/** The writer is alive: its beat, every poll. */
void uf_vshm_beat(uf_vshm_t *w);

/** A reader's mapping of @p path: UCACHE_ERR_NOT_FOUND if there is none or
 *  its writer is gone, UCACHE_ERR_CORRUPT if it is not a view. */
ucache_status_t uf_vshm_open(const char *path, uf_vshm_t **r_p);
/** The epoch the file holds now (0 while it cannot say): no system call,
 *  unless the file was replaced (then it is mapped again). */
uint64_t uf_vshm_epoch(uf_vshm_t *r);
/** A consistent copy of the view: malloc'd records (no blobs). */
ucache_status_t uf_vshm_read(uf_vshm_t *r, uf_member_t **m_p, uint32_t *n_p,
                             uint64_t *epoch_p, uint32_t *slots_p, uint64_t *slot_bytes_p);
/** Whether the writer of @p r still lives (its pid, and a beat within
 *  @p stale_ns). */
bool uf_vshm_alive(uf_vshm_t *r, uint64_t stale_ns);

/** Unmap (and for a writer, unlock and remove the file if @p unlink). */
void uf_vshm_close(uf_vshm_t *v, bool unlink_file);

/**
 * Check and copy the view in the @p len bytes at @p buf (a segment's
 * bytes: untrusted; the fuzz target drives this).  UCACHE_ERR_AGAIN while
 * a write is under way, UCACHE_ERR_CORRUPT if malformed.
 */
ucache_status_t uf_vshm_parse(const void *buf, size_t len, uf_member_t **m_p, uint32_t *n_p,
                              uint64_t *epoch_p, uint32_t *slots_p, uint64_t *slot_bytes_p);

#endif
