/*
 * test_layout.c - the exported layout (store/layout.c): superblock parsing,
 * every corruption of a chunk or an index slot rejected by the reader's
 * checks, batched and ranged raw reads, per-segment checksums (a part of a
 * chunk verified by the segments it touches).
 */
#include "tests/store/store_util.h"

#include <xxhash.h>

static void test_layout_super(void)
{
    us_store_t *s = make_store(16 * MiB, UC_NSEC_PER_SEC, 64 * KiB, MiB);
    uint8_t sb[US_SUPER_SIZE];
    us_super_t *h = (us_super_t *)sb;
    us_layout_t l;

    memcpy(sb, us_store_base(s), sizeof(sb));
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_OK);
    CU_ASSERT_EQUAL(l.region_len, 16 * MiB);
    CU_ASSERT_EQUAL(l.grace_ns, UC_NSEC_PER_SEC);
    CU_ASSERT_EQUAL(l.max_payload, MiB);
    CU_ASSERT(l.nbuckets * US_BUCKET_SLOTS >= 2 * (16 * MiB / (64 * KiB)));
    CU_ASSERT(l.data_off + l.data_len <= l.region_len);

    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(us_super_t) - 1, &l), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(us_layout_parse(NULL, sizeof(sb), &l), UCACHE_ERR_INVALID);
    h->magic ^= 1;
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_ERR_INVALID);
    h->magic ^= 1;
    h->layout_version = US_LAYOUT_VERSION + 1;
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_ERR_UNSUPPORTED);
    h->layout_version = 1;                    /* one checksum per chunk: not ours */
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_ERR_UNSUPPORTED);
    h->layout_version = US_LAYOUT_VERSION;
    CU_ASSERT_EQUAL(h->segment_size, US_SEGMENT);
    h->segment_size = 4096;                   /* segments readers cannot check */
    h->checksum = XXH64(h, offsetof(us_super_t, checksum), 0);
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_ERR_INVALID);
    h->segment_size = US_SEGMENT;
    h->checksum = XXH64(h, offsetof(us_super_t, checksum), 0);
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_OK);
    h->nbuckets ^= 4;                         /* a flipped bit: checksum */
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_ERR_CORRUPT);
    h->nbuckets ^= 4;
    /* a well-checksummed superblock that lies about its geometry */
    h->data_len = h->region_len;
    h->checksum = XXH64(h, offsetof(us_super_t, checksum), 0);
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_ERR_INVALID);
    memcpy(sb, us_store_base(s), sizeof(sb));
    h->nbuckets = 3;
    h->checksum = XXH64(h, offsetof(us_super_t, checksum), 0);
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_ERR_INVALID);
    /* an index offset near 2^64: index_off + nbuckets * 64 wraps to 0, so
     * every older check passed and readers indexed far outside the region
     * (issue [2/11] #3) */
    memcpy(sb, us_store_base(s), sizeof(sb));
    h->index_off = (uint64_t)0 - h->nbuckets * US_BUCKET_SIZE;  /* index_end: 0 */
    h->checksum = XXH64(h, offsetof(us_super_t, checksum), 0);
    CU_ASSERT_EQUAL(us_layout_parse(sb, sizeof(sb), &l), UCACHE_ERR_INVALID);
    us_store_destroy(s);
}

/* Corrupt a payload byte, the header, the slot: the verifier rejects each. */
static void test_layout_corruption(void)
{
    us_store_t *s = make_store(16 * MiB, UC_NSEC_PER_SEC, 64 * KiB, MiB);
    const us_layout_t *l = us_store_layout(s);
    char *base = us_store_base(s);
    us_key_t k = key_of(7);
    us_read_stats_t rs = {0};
    uint8_t buf[8192];
    us_loc_t loc;
    size_t got;
    uint64_t b[2], *slot = NULL, save;
    unsigned i, j, f;
    struct { size_t off; uint8_t mask; ucache_status_t expect; } hdr_cases[] = {
        {offsetof(us_chunk_hdr_t, magic),    1,    UCACHE_ERR_STALE},
        {offsetof(us_chunk_hdr_t, key_hi),   0x10, UCACHE_ERR_STALE},
        {offsetof(us_chunk_hdr_t, key_lo),   0x80, UCACHE_ERR_STALE},
        {offsetof(us_chunk_hdr_t, version),  2,    UCACHE_ERR_STALE},
        {offsetof(us_chunk_hdr_t, length),   1,    UCACHE_ERR_STALE},
        {offsetof(us_chunk_hdr_t, flags),    1,    UCACHE_ERR_CORRUPT},
        {offsetof(us_chunk_hdr_t, ns),       1,    UCACHE_ERR_CORRUPT},
        {offsetof(us_chunk_hdr_t, checksum), 4,    UCACHE_ERR_CORRUPT},
    };

    CU_ASSERT_EQUAL_FATAL(put_id(s, 7, 0, 5000), UCACHE_OK);
    CU_ASSERT_EQUAL(get_id(s, 7, 5000), 0);
    CU_ASSERT_EQUAL_FATAL(us_store_lookup(s, &k, &loc), UCACHE_OK);
    CU_ASSERT_EQUAL(loc.length, 5000);

    /* every payload byte position class: first, middle, last */
    for (i = 0; i < 3; i++) {
        size_t off = loc.hdr_off + US_CHUNK_HDR + (i == 0 ? 0 : i == 1 ? 2500 : 4999);

        base[off] ^= 0x20;
        CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, sizeof(buf), &got, 1, &rs),
                        UCACHE_ERR_CORRUPT);
        base[off] ^= 0x20;
    }
    CU_ASSERT_EQUAL(rs.torn, 3);
    for (i = 0; i < sizeof(hdr_cases) / sizeof(hdr_cases[0]); i++) {
        base[loc.hdr_off + hdr_cases[i].off] ^= hdr_cases[i].mask;
        CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, sizeof(buf), &got, 1, NULL),
                        hdr_cases[i].expect);
        base[loc.hdr_off + hdr_cases[i].off] ^= hdr_cases[i].mask;
    }
    CU_ASSERT_EQUAL(get_id(s, 7, 5000), 0);

    /* find the slot and damage each field of it */
    us_key_buckets(&k, l->nbuckets, b);
    for (i = 0; (i < 2) && (slot == NULL); i++) {
        for (j = 0; j < US_BUCKET_SLOTS; j++) {
            uint64_t *w = (uint64_t *)(base + us_layout_bucket_off(l, b[i]) +
                                       j * US_SLOT_SIZE);
            if ((w[0] != 0) && ((w[0] >> 16) == loc.version)) {
                slot = w;
                break;
            }
        }
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(slot);
    save = slot[0];
    slot[0] ^= 1;                              /* fingerprint: no match */
    CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, sizeof(buf), &got, 1, NULL),
                    UCACHE_ERR_NOT_FOUND);
    slot[0] = save ^ (1ull << 20);             /* version */
    CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, sizeof(buf), &got, 1, NULL),
                    UCACHE_ERR_STALE);
    slot[0] = save;
    save = slot[1];
    slot[1] = save - 1;                        /* length */
    CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, sizeof(buf), &got, 1, NULL),
                    UCACHE_ERR_STALE);
    slot[1] = save + (1ull << 26);             /* location: one granule on */
    CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, sizeof(buf), &got, 1, NULL),
                    UCACHE_ERR_STALE);
    slot[1] = save | (0xFFFFFFull << 40);      /* location past the data area */
    CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, sizeof(buf), &got, 1, NULL),
                    UCACHE_ERR_NOT_FOUND);
    slot[1] = save;
    CU_ASSERT_EQUAL(get_id(s, 7, 5000), 0);

    /* a buffer too small is refused before any copy */
    CU_ASSERT_EQUAL(us_read_raw(l, base, &k, buf, 4999, &got, 1, NULL),
                    UCACHE_ERR_MSG_TRUNCATED);
    /* a read slower than the grace period counts when its slot still holds
     * the chunk afterwards (a fresh reader's first touch of a mapping; a
     * sanitizer), with no retry; us_index_holds() is that second look */
    {
        us_layout_t slow = *l;
        uint8_t bkt[2 * US_BUCKET_SIZE];

        slow.grace_ns = 1;
        memset(&rs, 0, sizeof(rs));
        CU_ASSERT_EQUAL(us_read_raw(&slow, base, &k, buf, sizeof(buf), &got, 2, &rs),
                        UCACHE_OK);
        CU_ASSERT_EQUAL(rs.ok, 1);
        CU_ASSERT_EQUAL(rs.late + rs.torn + rs.stale, 0);
        memcpy(bkt, base + us_layout_bucket_off(l, b[0]), US_BUCKET_SIZE);
        memcpy(bkt + US_BUCKET_SIZE, base + us_layout_bucket_off(l, b[1]), US_BUCKET_SIZE);
        CU_ASSERT(us_index_holds(l, bkt, &k, &loc));
        {   /* the same place with another version, or another place: gone */
            us_loc_t other = loc;

            other.version ^= 1;
            CU_ASSERT(!us_index_holds(l, bkt, &k, &other));
            other = loc;
            other.hdr_off += US_GRANULE;
            CU_ASSERT(!us_index_holds(l, bkt, &k, &other));
        }
    }
    /* evicted: the slot is gone and the old location is tombstoned */
    CU_ASSERT_EQUAL(us_store_evict(s, &k), UCACHE_OK);
    CU_ASSERT_EQUAL(get_id(s, 7, 5000), 1);
    CU_ASSERT_EQUAL(us_chunk_verify(l, &k, &loc, (us_chunk_hdr_t *)(base + loc.hdr_off), NULL,
                                    base + us_loc_payload_off(&loc), NULL, 0, loc.length, 0),
                    UCACHE_ERR_STALE);

    /* random bytes as buckets never yield a location outside the data area */
    for (f = 0; f < 20000; f++) {
        uint64_t junk[16];
        us_loc_t locs[8];
        unsigned n;

        for (i = 0; i < 16; i++) {
            junk[i] = key_of(f * 16 + i).hi;
            if (i % 2 == 0) {
                junk[i] = (junk[i] & ~0xFFFFull) | us_key_fp(&k);
            }
        }
        n = us_index_match(l, junk, &k, locs);
        for (i = 0; i < n; i++) {
            CU_ASSERT(locs[i].hdr_off >= l->data_off);
            CU_ASSERT(locs[i].hdr_off + US_CHUNK_HDR + locs[i].length <=
                      l->data_off + l->data_len);
        }
    }
    us_store_destroy(s);
}

/* Batched raw reads: groups larger than US_READ_BATCH, a mix of present,
 * missing and too-large chunks, each with its own status and exact bytes. */
static void test_layout_batch(void)
{
    enum { N = 3 * US_READ_BATCH + 5 };
    /* a long grace period: this test is about batching, not lateness (a
     * group under a sanitizer on a busy machine can take over 1 ms) */
    us_store_t *s = make_store(16 * MiB, UC_NSEC_PER_SEC, 16 * KiB, 64 * KiB);
    us_read_op_t ops[N] = {0};
    us_read_stats_t rs = {0};
    uint8_t *bufs = malloc((size_t)N * 64 * KiB);
    unsigned i, ok = 0;

    for (i = 0; i < N; i++) {
        if (i % 4 != 3) {                      /* every fourth id is missing */
            CU_ASSERT_EQUAL_FATAL(put_id(s, 100 + i, 0, 1000 + i * 997), UCACHE_OK);
        }
        ops[i].key = key_of(100 + i);
        ops[i].dst = bufs + (size_t)i * 64 * KiB;
        ops[i].cap = (i == 5) ? 100 : 64 * KiB;   /* one buffer too small */
    }
    CU_ASSERT_NOT_EQUAL(us_read_raw_batch(us_store_layout(s), us_store_base(s), ops, N,
                                          2, &rs), UCACHE_OK);
    for (i = 0; i < N; i++) {
        if (i == 5) {
            CU_ASSERT_EQUAL(ops[i].status, UCACHE_ERR_MSG_TRUNCATED);
        } else if (i % 4 == 3) {
            CU_ASSERT_EQUAL(ops[i].status, UCACHE_ERR_NOT_FOUND);
        } else {
            CU_ASSERT_EQUAL(ops[i].status, UCACHE_OK);
            CU_ASSERT_EQUAL(ops[i].length, 1000 + i * 997);
            CU_ASSERT_EQUAL(pattern_bad(ops[i].dst, ops[i].length, 100 + i), 0);
            ok++;
        }
    }
    CU_ASSERT_EQUAL(rs.ok, ok);
    CU_ASSERT_EQUAL(rs.not_found, N / 4);
    CU_ASSERT_EQUAL(rs.torn + rs.stale + rs.late, 0);
    free(bufs);
    us_store_destroy(s);
}

/* A range of a chunk: verified in place, only the range copied; a range
 * past the payload is refused; a corrupt byte fails a range in its segment,
 * not one in another segment. */
static void test_layout_range(void)
{
    us_store_t *s = make_store(16 * MiB, UC_NSEC_PER_SEC, 16 * KiB, 64 * KiB);
    uint8_t *base = us_store_base(s), want[40000], got[1000];
    us_read_op_t op = {0};
    us_loc_t loc;

    CU_ASSERT_EQUAL_FATAL(put_id(s, 9, 0, 40000), UCACHE_OK);
    fill_pattern(want, sizeof(want), 9);
    op.key = key_of(9);
    op.dst = got;
    op.cap = sizeof(got);
    op.range_off = 31000;
    op.range_len = 1000;
    CU_ASSERT_EQUAL(us_read_raw_batch(us_store_layout(s), base, &op, 1, 1, NULL),
                    UCACHE_OK);
    CU_ASSERT_EQUAL(op.length, 40000);
    CU_ASSERT(memcmp(got, want + 31000, 1000) == 0);
    op.range_off = 39500;                       /* ends past the payload */
    CU_ASSERT_EQUAL(us_read_raw_batch(us_store_layout(s), base, &op, 1, 3, NULL),
                    UCACHE_ERR_OUT_OF_RANGE);
    op.range_off = 0;
    op.range_len = 2000;                        /* larger than the buffer */
    CU_ASSERT_EQUAL(us_read_raw_batch(us_store_layout(s), base, &op, 1, 1, NULL),
                    UCACHE_ERR_MSG_TRUNCATED);
    CU_ASSERT_EQUAL_FATAL(us_store_lookup(s, &op.key, &loc), UCACHE_OK);
    base[us_loc_payload_off(&loc) + 20000] ^= 1; /* outside the range, in its segment */
    op.range_off = US_SEGMENT + 500;
    op.range_len = 1000;
    CU_ASSERT_EQUAL(us_read_raw_batch(us_store_layout(s), base, &op, 1, 2, NULL),
                    UCACHE_ERR_CORRUPT);
    op.range_off = 0;                              /* another segment: not read */
    CU_ASSERT_EQUAL(us_read_raw_batch(us_store_layout(s), base, &op, 1, 2, NULL), UCACHE_OK);
    CU_ASSERT(memcmp(got, want, 1000) == 0);
    base[us_loc_payload_off(&loc) + 20000] ^= 1;
    us_store_destroy(s);
}

/* The segments of a payload and the spans that cover parts of it. */
static void test_layout_span(void)
{
    uint64_t off, len;

    CU_ASSERT_EQUAL(us_chunk_segments(0), 1);
    CU_ASSERT_EQUAL(us_chunk_segments(US_SEGMENT), 1);
    CU_ASSERT_EQUAL(us_chunk_segments(US_SEGMENT + 1), 2);
    CU_ASSERT_EQUAL(us_chunk_segments(US_MAX_PAYLOAD), US_MAX_SEGMENTS);
    CU_ASSERT_EQUAL(us_chunk_table_bytes(US_SEGMENT), 0);       /* one: no table */
    CU_ASSERT_EQUAL(us_chunk_table_bytes(US_SEGMENT + 1), 64);  /* padded to 64 */
    CU_ASSERT_EQUAL(us_chunk_table_bytes(4 * MiB), 4 * MiB / US_SEGMENT * 8);
    CU_ASSERT_EQUAL(us_chunk_table_bytes(US_MAX_PAYLOAD), US_MAX_TABLE);
    us_chunk_span(4 * MiB, US_SEGMENT + 100, 4096, &off, &len); /* inside segment 1 */
    CU_ASSERT_EQUAL(off, US_SEGMENT);
    CU_ASSERT_EQUAL(len, US_SEGMENT);
    us_chunk_span(4 * MiB, US_SEGMENT - 10, 20, &off, &len);    /* across a border */
    CU_ASSERT_EQUAL(off, 0);
    CU_ASSERT_EQUAL(len, 2 * US_SEGMENT);
    us_chunk_span(4 * US_SEGMENT + 12345, 4 * US_SEGMENT + 100, 1000, &off, &len); /* short last */
    CU_ASSERT_EQUAL(off, 4 * US_SEGMENT);
    CU_ASSERT_EQUAL(len, 12345);
    us_chunk_span(5000, 100, 10, &off, &len);                   /* one segment: all */
    CU_ASSERT_EQUAL(off, 0);
    CU_ASSERT_EQUAL(len, 5000);
}

/*
 * A chunk of five segments (the last one short): a part of it is verified
 * by its header, its table and the segments it touches - damage elsewhere
 * in the payload does not stop it (it is never read), damage in a touched
 * segment or anywhere in the table does; the whole chunk fails on any of
 * them.  us_chunk_verify refuses spans that are not spans.
 */
static void test_layout_segments(void)
{
    enum { LEN = 4 * US_SEGMENT + 12345 };
    us_store_t *s = make_store(16 * MiB, UC_NSEC_PER_SEC, 64 * KiB, MiB);
    const us_layout_t *l = us_store_layout(s);
    uint8_t *base = us_store_base(s), *want = malloc(LEN), *got = malloc(LEN);
    us_read_op_t op = {0};
    us_chunk_hdr_t hdr;
    uint8_t *pay, *table;
    us_key_t k = key_of(11);
    us_loc_t loc;
    size_t n;

    CU_ASSERT_EQUAL_FATAL(put_id(s, 11, 0, LEN), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(us_store_lookup(s, &k, &loc), UCACHE_OK);
    fill_pattern(want, LEN, 11);
    pay   = base + us_loc_payload_off(&loc);
    table = base + loc.hdr_off + US_CHUNK_HDR;
    CU_ASSERT_EQUAL(us_loc_payload_off(&loc), loc.hdr_off + US_CHUNK_HDR + 64); /* 5 x 8 */
    CU_ASSERT(memcmp(pay, want, LEN) == 0);              /* the payload, after its table */
    memcpy(&hdr, base + loc.hdr_off, sizeof(hdr));
    op.key = k;
    op.dst = got;
    op.cap = 4096;
    op.range_off = 3 * US_SEGMENT + 100;                 /* inside segment 3 */
    op.range_len = 4096;
    CU_ASSERT_EQUAL(us_read_raw_batch(l, base, &op, 1, 1, NULL), UCACHE_OK);
    CU_ASSERT(memcmp(got, want + op.range_off, 4096) == 0);

    pay[10] ^= 1;                                        /* segment 0: untouched */
    pay[4 * US_SEGMENT + 5] ^= 1;                        /* segment 4: untouched */
    CU_ASSERT_EQUAL(us_read_raw_batch(l, base, &op, 1, 1, NULL), UCACHE_OK);
    CU_ASSERT(memcmp(got, want + op.range_off, 4096) == 0);
    CU_ASSERT_EQUAL(us_read_raw(l, base, &k, got, LEN, &n, 1, NULL), UCACHE_ERR_CORRUPT);
    pay[10] ^= 1;
    pay[4 * US_SEGMENT + 5] ^= 1;
    CU_ASSERT_EQUAL(us_read_raw(l, base, &k, got, LEN, &n, 1, NULL), UCACHE_OK);
    CU_ASSERT(memcmp(got, want, LEN) == 0);

    pay[4 * US_SEGMENT - 100] ^= 1;                      /* segment 3, not the part */
    CU_ASSERT_EQUAL(us_read_raw_batch(l, base, &op, 1, 1, NULL), UCACHE_ERR_CORRUPT);
    pay[4 * US_SEGMENT - 100] ^= 1;
    table[8 * 3] ^= 1;                                   /* segment 3's checksum */
    CU_ASSERT_EQUAL(us_read_raw_batch(l, base, &op, 1, 1, NULL), UCACHE_ERR_CORRUPT);
    table[8 * 3] ^= 1;
    table[8 * 0] ^= 1;                                   /* another's: the table's sum */
    CU_ASSERT_EQUAL(us_read_raw_batch(l, base, &op, 1, 1, NULL), UCACHE_ERR_CORRUPT);
    table[8 * 0] ^= 1;
    CU_ASSERT_EQUAL(us_read_raw_batch(l, base, &op, 1, 1, NULL), UCACHE_OK);

    /* the verifier itself: a span, the whole with or without the table */
    CU_ASSERT_EQUAL(us_chunk_verify(l, &k, &loc, &hdr, table, pay + US_SEGMENT, NULL,
                                    US_SEGMENT, 2 * US_SEGMENT, 0), UCACHE_OK);
    CU_ASSERT_EQUAL(us_chunk_verify(l, &k, &loc, &hdr, table, pay + 4 * US_SEGMENT, got,
                                    4 * US_SEGMENT, LEN - 4 * US_SEGMENT, 0), UCACHE_OK);
    CU_ASSERT(memcmp(got, want + 4 * US_SEGMENT, LEN - 4 * US_SEGMENT) == 0); /* copied */
    CU_ASSERT_EQUAL(us_chunk_verify(l, &k, &loc, &hdr, NULL, pay, NULL, 0, LEN, 0), UCACHE_OK);
    CU_ASSERT_EQUAL(us_chunk_verify(l, &k, &loc, &hdr, table, pay, NULL, 0, LEN, 0), UCACHE_OK);
    CU_ASSERT_EQUAL(us_chunk_verify(l, &k, &loc, &hdr, NULL, pay + US_SEGMENT, NULL,
                                    US_SEGMENT, US_SEGMENT, 0), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(us_chunk_verify(l, &k, &loc, &hdr, table, pay + 100, NULL, 100,
                                    US_SEGMENT, 0), UCACHE_ERR_INVALID);   /* unaligned */
    CU_ASSERT_EQUAL(us_chunk_verify(l, &k, &loc, &hdr, table, pay, NULL, 0, 1000, 0),
                    UCACHE_ERR_INVALID);                                  /* short end */
    CU_ASSERT_EQUAL(us_chunk_verify(l, &k, &loc, &hdr, table, pay, NULL, 4 * US_SEGMENT,
                                    2 * US_SEGMENT, 0), UCACHE_ERR_INVALID); /* past it */
    {   /* a read that began more than a grace period ago: late */
        us_layout_t slow = *l;

        slow.grace_ns = 1;
        CU_ASSERT_EQUAL(us_chunk_verify(&slow, &k, &loc, &hdr, NULL, pay, NULL, 0, LEN,
                                        uc_time_ns() - 1000), UCACHE_INPROGRESS);
    }
    free(want);
    free(got);
    us_store_destroy(s);
}

const tc_test_t layout_tests[] = {
    {"super", test_layout_super},
    {"corruption_rejected", test_layout_corruption},
    {"batch", test_layout_batch},
    {"range", test_layout_range},
    {"span", test_layout_span},
    {"segments", test_layout_segments},
    {NULL, NULL}
};
