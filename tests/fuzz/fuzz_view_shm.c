/*
 * fuzz_view_shm.c - the view a daemon publishes for its host's readers
 * (fabric/view_shm.c uf_vshm_parse): a file's bytes, untrusted.
 * Properties: an accepted view has at most as many records as the bytes
 * hold, each with a nonzero id, slots in range and terminated strings.
 */
#include "fabric/place.h"
#include "fabric/view_shm.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t epoch, bytes;
    uint32_t n, slots, i;
    uf_member_t *m;

    fz_quiet();
    if (uf_vshm_parse(data, size, &m, &n, &epoch, &slots, &bytes) != UCACHE_OK) {
        return 0;
    }
    FZ_CHECK((size_t)n * 128 <= size);
    FZ_CHECK(slots <= UF_MAX_SLOTS);
    for (i = 0; i < n; i++) {
        FZ_CHECK((m[i].id != 0) && (m[i].weight >= 1) && (m[i].weight <= UF_MAX_WEIGHT));
        FZ_CHECK((uint64_t)m[i].slot0 + m[i].weight <= UF_MAX_SLOTS);
        FZ_CHECK(memchr(m[i].host, '\0', sizeof(m[i].host)) != NULL);
        FZ_CHECK(memchr(m[i].zone, '\0', sizeof(m[i].zone)) != NULL);
        FZ_CHECK(m[i].addr == NULL);
    }
    free(m);
    return 0;
}
