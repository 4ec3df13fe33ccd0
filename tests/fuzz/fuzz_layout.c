/*
 * fuzz_layout.c - the exported layout as a reader sees it in an owner's
 * region (store/layout.c): the superblock, the index buckets, chunk
 * headers and payloads, all bytes of a peer.  Input: a 16-byte key, then
 * the arena, copied into a buffer of exactly its size - so any read the
 * parsers make outside the arena is an ASan report.  The superblock's
 * checksum is set when the first key byte is odd, to reach the checks past
 * it.  Properties: an accepted layout lies inside the arena; every slot
 * the index decodes for the key lies inside the region (its segment table
 * included); a read that succeeds returns a payload of its slot's length,
 * verified; so does a read of part of it (its segments and table only).
 */
#include "store/layout.h"
#include "tests/fuzz/fuzz.h"

#include <stddef.h>
#include <string.h>
#include <xxhash.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    us_loc_t locs[2 * US_BUCKET_SLOTS];
    uint8_t bkt[2 * US_BUCKET_SIZE], *arena, *dst;
    us_read_op_t op;
    us_layout_t l;
    us_super_t sb;
    us_key_t key;
    uint64_t b[2];
    unsigned n, i;
    size_t cap;

    fz_quiet();
    if (size < sizeof(key) + sizeof(sb)) {
        return 0;
    }
    memcpy(&key, data, sizeof(key));
    size -= sizeof(key);
    arena = malloc(size);
    memcpy(arena, data + sizeof(key), size);
    if (data[0] & 1) {
        memcpy(&sb, arena, sizeof(sb));
        sb.checksum = XXH64(&sb, offsetof(us_super_t, checksum), 0);
        memcpy(arena, &sb, sizeof(sb));
    }
    if ((us_layout_parse(arena, size, &l) != UCACHE_OK) || (l.region_len > size)) {
        free(arena);        /* a reader checks region_len against the key's length too */
        return 0;
    }
    FZ_CHECK(l.index_off + l.nbuckets * US_BUCKET_SIZE <= l.data_off);
    FZ_CHECK(l.data_off + l.data_len <= l.region_len);
    us_key_buckets(&key, l.nbuckets, b);
    for (i = 0; i < 2; i++) {
        FZ_CHECK(b[i] < l.nbuckets);
        memcpy(bkt + i * US_BUCKET_SIZE, arena + us_layout_bucket_off(&l, b[i]), US_BUCKET_SIZE);
    }
    n = us_index_match(&l, bkt, &key, locs);
    for (i = 0; i < n; i++) {
        FZ_CHECK(locs[i].hdr_off >= l.data_off);
        FZ_CHECK(us_loc_payload_off(&locs[i]) + (uint64_t)locs[i].length <= l.region_len);
    }
    cap = ((l.max_payload < size) ? l.max_payload : size) + 1; /* no payload is larger */
    dst = malloc(cap);
    memset(&op, 0, sizeof(op));
    op.key = key;
    op.dst = dst;
    op.cap = cap;
    if (us_read_raw_batch(&l, arena, &op, 1, 2, NULL) == UCACHE_OK) {
        FZ_CHECK((op.length <= l.max_payload) && (op.length < cap));
        FZ_CHECK(n > 0);
    }
    if ((n > 0) && (locs[0].length > 1)) {  /* a part, chosen by the key's bits */
        memset(&op, 0, sizeof(op));
        op.key       = key;
        op.dst       = dst;
        op.cap       = cap;
        op.range_off = key.lo % locs[0].length;
        op.range_len = 1 + (key.hi >> 17) % (locs[0].length - op.range_off);
        if (us_read_raw_batch(&l, arena, &op, 1, 2, NULL) == UCACHE_OK) {
            FZ_CHECK(op.range_off + op.range_len <= op.length);
        }
    }
    free(dst);
    free(arena);
    return 0;
}
