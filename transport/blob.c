/*
 * blob.c - self-checking blobs (blob.h): the framing of every transport
 * blob a peer hands over (worker addresses, remote keys).
 */
#include "transport/blob.h"
#include "util/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* The checksum: XXH64 of the bytes after the header, seeded with XXH64 of
 * the header whose checksum field is zero. */
static uint64_t ut_blob_sum(ut_blob_hdr hdr, const void *rest, size_t rest_len)
{
    hdr.checksum = 0;
    return XXH64(rest, rest_len, XXH64(&hdr, sizeof(hdr), 0));
}

void *ut_blob_build(uint32_t magic, const void *body, size_t body_len,
                    const void *payload, size_t payload_len, size_t *len_p)
{
    size_t total = sizeof(ut_blob_hdr) + body_len + payload_len;
    ut_blob_hdr *hdr;
    uint8_t *blob;

    if (total > UINT32_MAX) {
        return NULL;
    }
    blob = calloc(1, total);
    if (blob == NULL) {
        return NULL;
    }
    hdr            = (ut_blob_hdr *)blob;
    hdr->magic     = magic;
    hdr->version   = UT_BLOB_VERSION;
    hdr->hdr_len   = (uint16_t)(sizeof(*hdr) + body_len);
    hdr->total_len = (uint32_t)total;
    memcpy(blob + sizeof(*hdr), body, body_len);
    memcpy(blob + sizeof(*hdr) + body_len, payload, payload_len);
    hdr->checksum  = ut_blob_sum(*hdr, blob + sizeof(*hdr), total - sizeof(*hdr));
    *len_p = total;
    return blob;
}

/*
 * Validate a blob; on success its body is copied to @p body (body_len bytes:
 * a blob may sit at any alignment) and *payload_p, *payload_len_p name the
 * UCX part.
 */
ucache_status_t ut_blob_check(const void *blob, size_t len, uint32_t magic,
                              size_t body_len, void *body, const void **payload_p,
                              size_t *payload_len_p)
{
    ut_blob_hdr hdr;

    if ((blob == NULL) || (len < sizeof(hdr) + body_len)) {
        return UCACHE_ERR_INVALID;
    }
    memcpy(&hdr, blob, sizeof(hdr));
    if ((hdr.magic != magic) || (hdr.version != UT_BLOB_VERSION) ||
        (hdr.hdr_len != sizeof(hdr) + body_len) || (hdr.total_len != len) ||
        (len == sizeof(hdr) + body_len)) {
        return UCACHE_ERR_INVALID;
    }
    if (ut_blob_sum(hdr, (const uint8_t *)blob + sizeof(hdr), len - sizeof(hdr)) !=
        hdr.checksum) {
        return UCACHE_ERR_CORRUPT;
    }
    memcpy(body, (const uint8_t *)blob + sizeof(hdr), body_len);
    *payload_p     = (const uint8_t *)blob + hdr.hdr_len;
    *payload_len_p = len - hdr.hdr_len;
    return UCACHE_OK;
}

void ut_blob_seal(void *blob, size_t len)
{
    ut_blob_hdr hdr;

    if (len < sizeof(hdr)) {
        return;
    }
    memcpy(&hdr, blob, sizeof(hdr));
    hdr.checksum = ut_blob_sum(hdr, (const uint8_t *)blob + sizeof(hdr), len - sizeof(hdr));
    memcpy(blob, &hdr, sizeof(hdr));
}

/*
 * Take a blob from outside: validate it (a refusal is counted and logged
 * once, naming @p what), copy its body to @p body and its UCX part to a new
 * buffer *payload_p (the caller frees it).
 */
ucache_status_t ut_blob_take(_Atomic uint64_t *bad_input, const void *blob, size_t len,
                             uint32_t magic, const char *what, void *body,
                             size_t body_len, void **payload_p, size_t *payload_len_p)
{
    const void *payload;
    ucache_status_t status;

    status = ut_blob_check(blob, len, magic, body_len, body, &payload,
                           payload_len_p);
    if (status != UCACHE_OK) {
        atomic_fetch_add_explicit(bad_input, 1, memory_order_relaxed);
        UC_ERROR("refused %s of %zu bytes: %s", what, len,
                 (status == UCACHE_ERR_CORRUPT) ? "checksum mismatch" :
                                                  "not a ucache blob of that kind");
        return status;
    }
    *payload_p = malloc(*payload_len_p);
    if (*payload_p == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    memcpy(*payload_p, payload, *payload_len_p);
    return UCACHE_OK;
}
