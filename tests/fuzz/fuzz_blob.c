/*
 * fuzz_blob.c - self-checking transport blobs (transport/blob.c), as
 * member records and peers hand them over: worker addresses and remote
 * keys.  Input: a body length byte, then the blob, whose checksum is set
 * when the length byte is odd (to reach the checks past the sum).
 * Properties: an accepted blob's payload lies inside it and is not empty,
 * its lengths agree, and its body is copied whole.
 */
#include "transport/blob.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *blob, body[256];
    const void *payload;
    size_t body_len, plen;
    uint32_t magic;

    fz_quiet();
    if (size < 1 + sizeof(ut_blob_hdr)) {
        return 0;
    }
    body_len = data[0] & 0x7f;
    blob = malloc(size - 1);
    memcpy(blob, data + 1, size - 1);
    if (data[0] & 1) {
        ut_blob_seal(blob, size - 1);
    }
    memcpy(&magic, blob, sizeof(magic));
    if (ut_blob_check(blob, size - 1, magic, body_len, body, &payload, &plen) == UCACHE_OK) {
        FZ_CHECK(plen > 0);
        FZ_CHECK((const uint8_t *)payload == blob + sizeof(ut_blob_hdr) + body_len);
        FZ_CHECK((const uint8_t *)payload + plen == blob + size - 1);
        FZ_CHECK(memcmp(body, blob + sizeof(ut_blob_hdr), body_len) == 0);
    }
    free(blob);
    return 0;
}
