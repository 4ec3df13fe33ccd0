/*
 * exporter.h - an exporter process for benchmarks and tests: it forks,
 * exports a region filled with a known pattern, serves it from a progress
 * thread and hands its address and rkey blobs back over a pipe.  ucperf raw
 * and the transport tests read from it and check bytes with
 * ucperf_pattern_byte(): one-sided where the key allows, else with the
 * read RPC it answers (UCPERF_RPC_READ: an active-message request and a
 * bulk reply, the shape of the fabric's FETCH).  It stops when its control
 * pipe closes.
 */
#ifndef UCPERF_EXPORTER_H
#define UCPERF_EXPORTER_H

#include "transport/transport.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ucperf_exporter {
    pid_t    pid;
    int      ctl;          /* closing it stops the exporter */
    uint64_t seed;
    uint8_t  addr[4096];
    size_t   addr_len;
    uint8_t  rkey[4096];
    size_t   rkey_len;
} ucperf_exporter_t;

/* The exporter's read RPC: request {offset, length} (uint64 each), reply
 * those bytes of the region, sent uncopied. */
#define UCPERF_RPC_READ 7

/* A read's request and room for its reply's metadata (up to 8 bytes): it
 * must stay in place until the read completes. */
typedef struct ucperf_read_msg {
    uint64_t req[2];
    uint64_t meta;
} ucperf_read_msg_t;

/* Runs in the exporter after its region is filled (e.g. to set handlers). */
typedef void (*ucperf_exporter_setup_t)(ut_ctx_t *ctx, ut_mem_t *mem);

/** The pattern's 8-byte word at word index @p index. */
static inline uint64_t ucperf_pattern_word(uint64_t index, uint64_t seed)
{
    return (index * 0x9E3779B97F4A7C15ull) ^ seed;
}

/** The pattern's byte at byte offset @p off (words are little-endian). */
static inline uint8_t ucperf_pattern_byte(uint64_t off, uint64_t seed)
{
    return (uint8_t)(ucperf_pattern_word(off / 8, seed) >> (8 * (off % 8)));
}

/** Fill [buf, buf+len) with the pattern from offset 0 (len a multiple of 8). */
void ucperf_pattern_fill(void *buf, size_t len, uint64_t seed);

/** Bytes of [buf, buf+len) that differ from the pattern at offset @p off. */
size_t ucperf_pattern_mismatches(const void *buf, uint64_t off, size_t len,
                                 uint64_t seed);

/** Check three words (first, middle, last whole one) of @p len bytes read
 *  at offset @p off against the pattern: 0 if they match (a full byte
 *  comparison would swamp a benchmark's memcpy). */
int ucperf_pattern_check3(const void *buf, uint64_t off, size_t len, uint64_t seed);

/** Answer a UCPERF_RPC_READ request @p msg of @p len bytes from @p mem
 *  (NULL: a region already gone, UCACHE_ERR_STALE). */
void ucperf_read_reply(ut_rpc_t *rpc, const ut_mem_t *mem, const void *msg, size_t len);

/** Post a read of @p len bytes at @p off of the region behind @p rkey: a
 *  get where the key's @p path (ut_rkey_path(), asked once) is one-sided,
 *  else UCPERF_RPC_READ (its request in @p m).  Either way the bytes land
 *  in @p buf. */
ucache_status_t ucperf_read_post(ut_req_t *req, ut_rkey_t *rkey, ut_path_t path,
                                 ucperf_read_msg_t *m, uint64_t off, void *buf, size_t len);

/** Fork and start an exporter of @p region bytes (a multiple of 8). */
ucache_status_t ucperf_exporter_start(ucperf_exporter_t *ex, size_t region,
                                      uint64_t seed, ucperf_exporter_setup_t setup);

/** SIGSTOP it and return once it is stopped. @return 0 or -1. */
int ucperf_exporter_pause(ucperf_exporter_t *ex);

/** Stop it (sending @p sig first, if not 0). @return exit status or -signal. */
int ucperf_exporter_stop(ucperf_exporter_t *ex, int sig);

#endif
