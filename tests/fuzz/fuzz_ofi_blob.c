/*
 * fuzz_ofi_blob.c - the libfabric backend's address and key blobs
 * (transport/ofi_peer.c, ofi_mem.c), as member records hand them over: a
 * node's endpoint name and its region's key.  Input: a first byte (bit 0:
 * a key, else an address; bit 1: seal the checksum, to reach the checks
 * past it), then the blob.  One shm context (no network) takes them all;
 * keys are unpacked against a peer made from its own address.
 * Properties: an accepted address gives a peer with a name; an accepted
 * key names a region of its peer's context that does not wrap.
 */
#include "transport/transport.h"
#include "transport/blob.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

static ut_ctx_t  *fz_ctx;
static ut_peer_t *fz_self;

static int fz_setup(void)
{
    ut_params_t p = { .field_mask = UT_PARAM_FIELD_CONFIG };
    ut_config_t tc;
    uc_config_t cfg;
    const void *addr;
    size_t len;

    if (fz_ctx != NULL) {
        return 0;
    }
    uc_config_load(&cfg);
    ut_config_from(&tc, &cfg);
    snprintf(tc.ofi_provider, sizeof(tc.ofi_provider), "shm");
    p.config = &tc;
    if ((ut_ctx_create("ofi", &p, &fz_ctx) != UCACHE_OK) ||
        (ut_address(fz_ctx, &addr, &len) != UCACHE_OK) ||
        (ut_peer_create(fz_ctx, addr, len, &fz_self) != UCACHE_OK)) {
        fprintf(stderr, "fuzz_ofi_blob: no libfabric shm context here\n");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ut_peer_t *peer = NULL;
    ut_rkey_t *rk = NULL;
    uint8_t *blob;

    fz_quiet();
    fz_setup();
    if (size < 1 + sizeof(ut_blob_hdr)) {
        return 0;
    }
    blob = malloc(size - 1);
    memcpy(blob, data + 1, size - 1);
    if (data[0] & 2) {
        ut_blob_seal(blob, size - 1);
    }
    if (data[0] & 1) {
        if (ut_rkey_unpack(fz_self, blob, size - 1, &rk) == UCACHE_OK) {
            FZ_CHECK(rk->len > 0);
            FZ_CHECK(rk->base + rk->len > rk->base);
            ut_rkey_destroy(rk);
        }
    } else if (ut_peer_create(fz_ctx, blob, size - 1, &peer) == UCACHE_OK) {
        FZ_CHECK(ut_peer_name(peer)[0] != '\0');
        ut_peer_destroy(peer);
    }
    free(blob);
    return 0;
}
