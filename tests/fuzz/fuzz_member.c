/*
 * fuzz_member.c - node records (fabric/member.c uf_member_decode), as a
 * reader takes them from a members source or ucache_members_set(): any
 * bytes, in a buffer of exactly their size.  Properties: an accepted
 * record's strings are terminated, its blobs are within the record and
 * their lengths within UF_BLOB_MAX, and it encodes back to a record that
 * decodes to the same member.
 */
#include "fabric/member.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uf_member_t m, m2;
    void *rec, *again;
    size_t len;

    fz_quiet();
    rec = malloc(size ? size : 1);
    memcpy(rec, data, size);
    if ((size > 0) && (data[0] & 1)) {
        uf_member_seal(rec, size);      /* past the checksum, to the checks */
    }
    if (uf_member_decode(rec, size, &m) == UCACHE_OK) {
        FZ_CHECK(memchr(m.host, '\0', sizeof(m.host)) != NULL);
        FZ_CHECK(memchr(m.zone, '\0', sizeof(m.zone)) != NULL);
        FZ_CHECK((m.addr_len <= UF_BLOB_MAX) && (m.rkey_len <= UF_BLOB_MAX));
        FZ_CHECK(m.addr_len + m.rkey_len <= size);
        if (uf_member_encode(&m, &again, &len) == UCACHE_OK) {
            FZ_CHECK(uf_member_decode(again, len, &m2) == UCACHE_OK);
            FZ_CHECK((m2.id == m.id) && (m2.addr_len == m.addr_len) &&
                     (m2.rkey_len == m.rkey_len) && (strcmp(m2.host, m.host) == 0));
            FZ_CHECK((m.addr_len == 0) || (memcmp(m2.addr, m.addr, m.addr_len) == 0));
            uf_member_clear(&m2);
            free(again);
        }
        uf_member_clear(&m);
    }
    free(rec);
    return 0;
}
