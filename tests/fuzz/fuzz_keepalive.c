/*
 * fuzz_keepalive.c - a KEEPALIVE's payload as an owner takes it
 * (ut_ka_ids_parse, transport/wire.h): the request ids a requester asks
 * about, from anyone who passed the signature check.  Properties: a payload
 * is taken iff it is whole ids and at most UT_KA_IDS of them; what is taken
 * is exactly those bytes, and nothing past the payload is read (ASan).
 */
#include "transport/wire.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t ids[UT_KA_IDS];
    bool whole;
    int n;

    fz_quiet();
    whole = (size % sizeof(uint64_t) == 0) && (size <= sizeof(ids));
    n = ut_ka_ids_parse((size > 0) ? data : NULL, size, ids);
    FZ_CHECK((n >= 0) == whole);
    if (n >= 0) {
        FZ_CHECK((size_t)n == size / sizeof(uint64_t));
        FZ_CHECK((n == 0) || (memcmp(ids, data, size) == 0));
    }
    return 0;
}
