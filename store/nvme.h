/*
 * nvme.h - one NVMe device (or preallocated file) as the store's second
 * tier (nvme.c): an extent pool of segments written as logs, O_DIRECT,
 * through io_uring (one ring per I/O context, registered buffers, a batch
 * of records in one write), an owner-private index of what is on it, and
 * a scan that rebuilds that index after a restart.  Format: nvme_rec.h.
 *
 * The invariant: a key is in the index only once its record is wholly on
 * the device, and no read returns a byte before the record's key, sequence
 * and checksum were checked (a segment rewritten under a read is caught).
 *
 * Eviction is by segment, oldest first; a segment's records that were hit
 * since they were written (or are pinned) are written again at the head,
 * up to half a segment, the rest dropped: a scan that passes through once
 * does not flush what is read again (CLOCK over a log).
 *
 * Threads: any number may read at once (each takes an I/O context, or
 * reads asynchronously through its own us_nvme_aio_t); one writes at a
 * time (writes take the writer's lock).  Never logs a key.
 */
#ifndef US_NVME_H
#define US_NVME_H

#include "store/layout.h"
#include "store/nvme_rec.h"
#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define US_NVME_SEG_DEFAULT  (64ull << 20)
#define US_NVME_MAX_ERRORS   8u
#define US_NVME_ERROR_WINDOW (60ull * 1000000000ull)  /* max_errors within it */

typedef struct us_nvme us_nvme_t;

typedef struct us_nvme_params {
    const char *path;        /* a block device or a preallocated file */
    uint64_t    bytes;       /* bytes to use; 0: all of it */
    uint64_t    seg_bytes;   /* segment size; 0: US_NVME_SEG_DEFAULT, or less
                                so that the device has 8 segments at least */
    uint32_t    max_payload; /* largest chunk it takes */
    unsigned    contexts;    /* I/O contexts: reads in progress at once; 0: 4 */
    unsigned    depth;       /* entries of each ring; 0: 64 */
    unsigned    max_errors;  /* device errors within US_NVME_ERROR_WINDOW that
                                take it out of service; 0: US_NVME_MAX_ERRORS */
} us_nvme_params_t;

/* One chunk to write (us_nvme_write). */
typedef struct us_nvme_item {
    us_key_t    key;
    const void *payload;
    uint32_t    length;
    uint16_t    ns;
    uint8_t     pinned;
    ucache_status_t status;  /* out: UCACHE_OK, UCACHE_ERR_EXISTS (it was on
                                the device), or why it is not */
} us_nvme_item_t;

typedef struct us_nvme_stats {
    uint64_t dev_bytes;          /* bytes of the device the tier uses */
    uint64_t seg_bytes, segs, segs_free;
    uint64_t records;            /* chunks on the device (indexed) */
    uint64_t payload_bytes;      /* their payload bytes */
    uint64_t used_bytes;         /* device bytes their records take */
    uint64_t pinned;             /* of them pinned */
    uint64_t pin_writes;         /* records written again for a pin change */
    uint64_t pin_unwritten;      /* pin changes not written (no memory) */
    uint64_t drop_writes;        /* tombstones written (us_nvme_drop) */
    uint64_t drop_unwritten;     /* drops not written (no memory) */
    uint64_t rebuild_tombstones; /* tombstones a start-up scan honoured */
    uint64_t quota_evicted;      /* records dropped for their namespace's quota */
    uint64_t quota_refused;      /* writes with no room under their quota */
    uint64_t writes, write_bytes;     /* records written, device bytes */
    uint64_t write_submits;      /* io_uring submissions of writes (batches) */
    uint64_t write_skipped;      /* already on the device */
    uint64_t reads, read_bytes, read_ns; /* verified reads; device bytes and
                                            time (bandwidth = bytes / ns) */
    uint64_t read_misses;        /* not on the device */
    uint64_t stale;              /* overwritten under a read: a miss */
    uint64_t corrupt;            /* checksum failed: the record dropped */
    uint64_t errors;             /* device I/O errors and short transfers */
    uint64_t evicted;            /* records dropped by segment cleaning */
    uint64_t reinserted;         /* records written again by cleaning */
    uint64_t rebuilt;            /* records found by the start-up scan */
    uint64_t rebuild_dropped;    /* scanned records not taken (torn, older) */
    uint64_t rebuild_bytes;      /* device bytes the scan covered */
    uint64_t rebuild_ns;
    uint64_t online;             /* 1 in service, 0 taken out (errors) */
} us_nvme_stats_t;

/**
 * Open the device, check its superblock and rebuild the index from its
 * records, or format it (a new superblock; nothing older is taken) when
 * it holds none of ours or another geometry.  UCACHE_ERR_IO if it cannot
 * be opened O_DIRECT or read, UCACHE_ERR_INVALID for parameters that do not
 * fit (a file shorter than @p bytes: preallocate it), UCACHE_ERR_UNSUPPORTED
 * without io_uring.
 */
ucache_status_t us_nvme_open(const us_nvme_params_t *params, us_nvme_t **nv_p);

/** Close (waits for no I/O: callers have stopped).  Accepts NULL. */
void us_nvme_close(us_nvme_t *nv);

/** The path it was opened with (valid until close). */
const char *us_nvme_path(const us_nvme_t *nv);

/** Whether @p key is on the device; its payload length and namespace. */
bool us_nvme_lookup(us_nvme_t *nv, const us_key_t *key, uint32_t *length_p,
                    uint16_t *ns_p);

/**
 * Read @p key's payload into @p dst (@p cap bytes), verified; the record
 * is marked hit (cleaning keeps it).  UCACHE_ERR_NOT_FOUND (not on the
 * device, or overwritten under the read), UCACHE_ERR_MSG_TRUNCATED,
 * UCACHE_ERR_CORRUPT (checksum: the record is dropped), UCACHE_ERR_IO (the
 * device failed: the record is dropped; UCACHE_ERR_IO for every call once
 * the device is out of service).
 */
ucache_status_t us_nvme_read(us_nvme_t *nv, const us_key_t *key, void *dst, size_t cap,
                             size_t *len_p);

/* --- asynchronous reads ----------------------------------------------------
 * One thread's reads of many records at once: an io_uring of @p depth
 * entries and a registered buffer of as many record slots, shared by any
 * devices.  us_nvme_aio_read() queues a read (nothing is submitted yet);
 * us_nvme_aio_reap() submits what is queued in one call, waits up to
 * @p timeout_ns for a completion if none is there, and hands each finished
 * read to @p fn: UCACHE_OK when the record checked out (key, sequence,
 * length, checksums) and its payload is in the caller's buffer; otherwise
 * the status us_nvme_read() would return (the record dropped as it would
 * be).  Not thread-safe: one thread owns an aio. */
typedef struct us_nvme_aio us_nvme_aio_t;
typedef void (*us_nvme_done_fn)(void *arg, uint64_t tag, ucache_status_t status);

/** An aio for @p depth reads of records of at most @p max_payload bytes. */
ucache_status_t us_nvme_aio_create(unsigned depth, uint32_t max_payload, us_nvme_aio_t **aio_p);

/** Waits for the reads still in flight (their buffers are the kernel's),
 *  without calling anyone, then frees @p aio. */
void us_nvme_aio_destroy(us_nvme_aio_t *aio);

/** Reads that can be queued now; reads queued or in flight. */
unsigned us_nvme_aio_room(const us_nvme_aio_t *aio);
unsigned us_nvme_aio_busy(const us_nvme_aio_t *aio);

/** Queue the read of @p key's record on @p nv into @p dst (@p cap bytes);
 *  @p tag comes back with its completion.  UCACHE_ERR_BUSY (no room),
 *  else as us_nvme_read() before its I/O: UCACHE_ERR_IO (out of service),
 *  UCACHE_ERR_NOT_FOUND, UCACHE_ERR_MSG_TRUNCATED. */
ucache_status_t us_nvme_aio_read(us_nvme_aio_t *aio, us_nvme_t *nv, const us_key_t *key,
                                 void *dst, size_t cap, uint64_t tag);

/** Submit, wait (up to @p timeout_ns, 0: not at all) and complete; returns
 *  the reads completed. */
unsigned us_nvme_aio_reap(us_nvme_aio_t *aio, uint64_t timeout_ns, us_nvme_done_fn fn,
                          void *arg);

/**
 * Append @p n chunks as records, packed into as few writes as the segments
 * allow; each is indexed once its write completed.  Each item's status says
 * how it went; returns UCACHE_OK if every one was written or was on the
 * device already, UCACHE_ERR_IO if the device failed (or is out of service).
 */
ucache_status_t us_nvme_write(us_nvme_t *nv, us_nvme_item_t *items, unsigned n);

/** Pin or unpin @p key's record: at once in the index (cleaning keeps a
 *  pinned one), on the device at the next us_nvme_flush_changes() (the record
 *  written again with its flag, so a restart keeps the pin).
 *  UCACHE_ERR_NOT_FOUND if it is not on the device. */
ucache_status_t us_nvme_pin(us_nvme_t *nv, const us_key_t *key, int pin);

/** Namespace @p ns may hold @p bytes of the device (its records' sizes;
 *  0: no quota).  A write past it drops the namespace's own oldest
 *  records first; one larger than the quota is refused
 *  (UCACHE_ERR_NO_MEMORY).  The next write applies a lowered quota. */
void us_nvme_quota_set(us_nvme_t *nv, uint16_t ns, uint64_t bytes);

/** Device bytes namespace @p ns's records take. */
uint64_t us_nvme_ns_used(us_nvme_t *nv, uint16_t ns);

/** Whether @p key is on the device, pinned (a restart keeps pins). */
bool us_nvme_pinned(us_nvme_t *nv, const us_key_t *key);

/** Write up to @p max changes to the device (the writer's work): the
 *  tombstones of drops (a block each), then pin changes (each record read
 *  back, verified, appended again with its flag); returns how many keys it
 *  looked at (0: none waits). */
unsigned us_nvme_flush_changes(us_nvme_t *nv, unsigned max);

/** Drop @p key's record from the index at once (its space is reclaimed
 *  with its segment); at the next us_nvme_flush_changes() a tombstone goes
 *  to the device, so that a restart does not serve it again.
 *  UCACHE_ERR_NOT_FOUND. */
ucache_status_t us_nvme_drop(us_nvme_t *nv, const us_key_t *key);

/** Whether the device is in service. */
bool us_nvme_online(us_nvme_t *nv);

void us_nvme_stats(us_nvme_t *nv, us_nvme_stats_t *stats);

#endif
