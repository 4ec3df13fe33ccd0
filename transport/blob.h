/*
 * blob.h - self-checking blobs: a header (magic, version, lengths, an
 * XXH64 checksum), a fixed body struct, then an opaque payload (a UCX
 * worker address or packed key).  Every blob from a peer or a member
 * record is checked here before any of it is used; the parser has a fuzz
 * target (tests/fuzz/fuzz_blob.c).
 */
#ifndef UT_BLOB_H
#define UT_BLOB_H

#include "util/status.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define UT_BLOB_VERSION   1

typedef struct ut_blob_hdr {
    uint32_t magic;
    uint16_t version;
    uint16_t hdr_len;     /* sizeof(ut_blob_hdr) + body struct            */
    uint32_t total_len;   /* whole blob, header included                  */
    uint32_t reserved;
    uint64_t checksum;    /* ut_blob_sum(): header (this field zero), rest */
} ut_blob_hdr;

/** A blob of @p magic with @p body and @p payload (malloc'ed; NULL if it
 *  would pass 4 GiB or there is no memory). */
void *ut_blob_build(uint32_t magic, const void *body, size_t body_len,
                    const void *payload, size_t payload_len, size_t *len_p);

/**
 * Validate the @p len untrusted bytes at @p blob as a blob of @p magic with
 * a body of @p body_len bytes; on success the body is copied to @p body (a
 * blob may sit at any alignment) and *payload_p, *payload_len_p name the
 * payload, inside @p blob (never empty).  UCACHE_ERR_INVALID for a blob of
 * another kind or lengths that disagree, UCACHE_ERR_CORRUPT for a bad sum.
 */
ucache_status_t ut_blob_check(const void *blob, size_t len, uint32_t magic,
                              size_t body_len, void *body, const void **payload_p,
                              size_t *payload_len_p);

/**
 * Take a blob from outside: ut_blob_check(), and a refusal is counted in
 * @p bad_input and logged once, naming @p what; the payload is copied to a
 * new buffer *payload_p (the caller frees it).
 */
ucache_status_t ut_blob_take(_Atomic uint64_t *bad_input, const void *blob, size_t len,
                             uint32_t magic, const char *what, void *body,
                             size_t body_len, void **payload_p, size_t *payload_len_p);

/** Set the checksum of the @p len bytes at @p blob (tests and fuzzing). */
void ut_blob_seal(void *blob, size_t len);

#endif
