/*
 * layout.c - the reader's side of the store's binary layout (layout.h):
 * superblock parsing, slot matching, chunk verification and the raw-memory
 * read path.  Used by owners and by every reader; it trusts no byte it is
 * given, because those bytes were copied from memory another node changes.
 */
#include "layout.h"
#include "util/time.h"

#include <string.h>
/* XXH3_state_t on the stack: its layout is that of the libxxhash we build
 * against (Debian pins it), so the static-linking-only API is safe here */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#include <xxh_x86dispatch.h>  /* XXH3 with AVX2/AVX-512 chosen at run time */

/*
 * A one-sided read races with the owner by design; the checksum, not a
 * lock, makes it safe.  ThreadSanitizer is told so (the copies below are
 * the only intentionally racy accesses in the store).
 */
#if defined(__SANITIZE_THREAD__)
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define US_RACY_BEGIN() AnnotateIgnoreReadsBegin(__FILE__, __LINE__)
#define US_RACY_END()   AnnotateIgnoreReadsEnd(__FILE__, __LINE__)
#else
#define US_RACY_BEGIN() do { } while (0)
#define US_RACY_END()   do { } while (0)
#endif

ucache_status_t us_layout_parse(const void *buf, size_t len, us_layout_t *layout_p)
{
    us_super_t sb;
    uint64_t index_end;

    if ((buf == NULL) || (len < sizeof(sb))) {
        return UCACHE_ERR_INVALID;
    }
    memcpy(&sb, buf, sizeof(sb));
    if ((sb.magic != US_SUPER_MAGIC) || (sb.super_size != US_SUPER_SIZE)) {
        return UCACHE_ERR_INVALID;
    }
    if (sb.layout_version != US_LAYOUT_VERSION) {
        return UCACHE_ERR_UNSUPPORTED;
    }
    if (sb.checksum != XXH64(&sb, offsetof(us_super_t, checksum), 0)) {
        return UCACHE_ERR_CORRUPT;
    }
    if ((sb.bucket_size != US_BUCKET_SIZE) || (sb.bucket_slots != US_BUCKET_SLOTS) ||
        (sb.nbuckets == 0) || ((sb.nbuckets & (sb.nbuckets - 1)) != 0) ||
        (sb.nbuckets > (sb.region_len / US_BUCKET_SIZE)) ||
        (sb.index_off < US_SUPER_SIZE) || (sb.index_off % US_BUCKET_SIZE != 0) ||
        (sb.data_off % US_GRANULE != 0) || (sb.data_len % US_GRANULE != 0) ||
        (sb.data_len / US_GRANULE > US_MAX_GRANULES) ||
        (sb.max_payload > US_MAX_PAYLOAD) || (sb.grace_ns == 0) ||
        (sb.segment_size != US_SEGMENT)) {
        return UCACHE_ERR_INVALID;
    }
    if ((sb.index_off > sb.region_len) ||
        (sb.nbuckets > (sb.region_len - sb.index_off) / US_BUCKET_SIZE)) {
        return UCACHE_ERR_INVALID;      /* (index_off + the index would wrap) */
    }
    index_end = sb.index_off + sb.nbuckets * US_BUCKET_SIZE;
    if ((index_end > sb.data_off) || (sb.data_off > sb.region_len) ||
        (sb.data_len > sb.region_len - sb.data_off)) {
        return UCACHE_ERR_INVALID;
    }
    layout_p->incarnation = sb.incarnation;
    layout_p->region_len  = sb.region_len;
    layout_p->index_off   = sb.index_off;
    layout_p->nbuckets    = sb.nbuckets;
    layout_p->data_off    = sb.data_off;
    layout_p->data_len    = sb.data_len;
    layout_p->grace_ns    = sb.grace_ns;
    layout_p->max_payload = sb.max_payload;
    return UCACHE_OK;
}

bool us_slot_decode(const us_layout_t *layout, const void *slot, us_loc_t *loc,
                    uint16_t *fp_p)
{
    uint64_t w[2], granule, block_end;
    uint32_t length;

    memcpy(w, slot, sizeof(w));
    if (w[0] == 0) {
        return false;
    }
    granule   = w[1] >> 26;
    length    = (uint32_t)(w[1] & US_MAX_PAYLOAD);
    block_end = (granule * US_GRANULE) + US_CHUNK_OVERHEAD + us_chunk_table_bytes(length) +
                length;
    if ((length > layout->max_payload) || (granule >= US_MAX_GRANULES) ||
        (block_end > layout->data_len)) {
        return false; /* torn or garbage slot: it can only point outside */
    }
    loc->version = w[0] >> 16;
    loc->hdr_off = layout->data_off + granule * US_GRANULE + US_BLOCK_HDR;
    loc->length  = length;
    *fp_p = (uint16_t)w[0];
    return true;
}

unsigned us_index_match(const us_layout_t *layout, const void *buckets,
                        const us_key_t *key, us_loc_t *locs)
{
    const uint16_t fp = us_key_fp(key);
    unsigned i, n = 0;
    uint16_t slot_fp;

    for (i = 0; i < 2 * US_BUCKET_SLOTS; i++) {
        const char *slot = (const char *)buckets + i * US_SLOT_SIZE;
        uint64_t w0;

        memcpy(&w0, slot, sizeof(w0));
        if ((w0 != 0) && ((uint16_t)w0 == fp)) { /* decode only a fingerprint match */
            n += us_slot_decode(layout, slot, &locs[n], &slot_fp);
        }
    }
    return n;
}

bool us_index_holds(const us_layout_t *layout, const void *buckets,
                    const us_key_t *key, const us_loc_t *loc)
{
    us_loc_t locs[2 * US_BUCKET_SLOTS];
    unsigned i, n = us_index_match(layout, buckets, key, locs);

    for (i = 0; i < n; i++) {
        if ((locs[i].version == loc->version) && (locs[i].hdr_off == loc->hdr_off) &&
            (locs[i].length == loc->length)) {
            return true;
        }
    }
    return false;
}

static inline uint64_t us_hdr_seed(const us_chunk_hdr_t *hdr)
{
    return XXH3_64bits(hdr, offsetof(us_chunk_hdr_t, checksum));
}

/* The checksum of segment @p i (@p n bytes at @p p) of a chunk whose header
 * seeds @p seed. */
static inline uint64_t us_seg_sum(const void *p, size_t n, uint64_t seed, uint32_t i)
{
    return XXH3_64bits_withSeed_dispatch(p, n, seed + i);
}

void us_chunk_seal(us_chunk_hdr_t *hdr, void *table, const void *payload)
{
    uint32_t nseg = us_chunk_segments(hdr->length), i;
    uint64_t seed = us_hdr_seed(hdr), *sums = table, off, n;

    if (nseg == 1) {
        hdr->checksum = XXH3_64bits_withSeed_dispatch(payload, hdr->length, seed);
        return;
    }
    memset(table, 0, us_chunk_table_bytes(hdr->length));
    for (i = 0; i < nseg; i++) {
        off = (uint64_t)i * US_SEGMENT;
        n   = (hdr->length - off < US_SEGMENT) ? hdr->length - off : US_SEGMENT;
        sums[i] = us_seg_sum((const char *)payload + off, n, seed, i);
    }
    hdr->checksum = XXH3_64bits_withSeed_dispatch(table, nseg * sizeof(uint64_t), seed);
}

static inline ucache_status_t us_hdr_check(const us_chunk_hdr_t *hdr,
                                          const us_key_t *key, const us_loc_t *loc)
{
    if ((hdr->magic != US_CHUNK_MAGIC) || (hdr->key_hi != key->hi) ||
        (hdr->key_lo != key->lo) || (hdr->version != loc->version) ||
        (loc->version == 0) || (hdr->length != loc->length)) {
        return UCACHE_ERR_STALE;
    }
    return UCACHE_OK;
}


/* The checksum of @p n bytes at @p src, after copying them to @p copy_to
 * when it is set; @p src may be memory another node changes. */
static uint64_t us_sum_racy(const char *src, char *copy_to, size_t n, uint64_t seed)
{
    uint64_t sum;

    if (copy_to != NULL) {
        us_copy_racy(copy_to, src, n);
        return XXH3_64bits_withSeed_dispatch(copy_to, n, seed);
    }
    US_RACY_BEGIN();
    sum = XXH3_64bits_withSeed_dispatch(src, n, seed);
    US_RACY_END();
    return sum;
}

/* us_sum_racy of segment @p i, at @p pos of the span at @p src (@p dst). */
static inline uint64_t us_seg_sum_racy_at(const char *src, char *dst, uint64_t pos,
                                          uint64_t n, uint64_t seed, uint32_t i)
{
    return us_sum_racy(src + pos, (dst != NULL) ? dst + pos : NULL, n, seed + i);
}

ucache_status_t us_chunk_verify(const us_layout_t *layout, const us_key_t *key,
                                const us_loc_t *loc, const us_chunk_hdr_t *hdr,
                                const void *table, const void *bytes, void *copy_to,
                                uint64_t off, uint64_t len, uint64_t t0)
{
    uint64_t local[US_MAX_SEGMENTS], seed, n, pos, sum;
    const uint64_t *sums = table;
    const char *src = bytes;
    char *dst = copy_to;
    uint32_t nseg, i;

    if (us_hdr_check(hdr, key, loc) != UCACHE_OK) {
        return UCACHE_ERR_STALE;
    }
    if ((off % US_SEGMENT != 0) || (off > loc->length) || (len > loc->length - off) ||
        ((off + len != loc->length) && ((off + len) % US_SEGMENT != 0)) ||
        ((len == 0) && (loc->length != 0))) {
        return UCACHE_ERR_INVALID;
    }
    seed = us_hdr_seed(hdr);
    nseg = us_chunk_segments(loc->length);
    if (nseg == 1) {         /* off 0, len the whole payload: no table */
        sum = us_sum_racy(src, dst, len, seed);
    } else {
        if (sums == NULL) {  /* the whole payload: recompute the table */
            if ((off != 0) || (len != loc->length)) {
                return UCACHE_ERR_INVALID;
            }
            sums = local;
            for (i = 0; i < nseg; i++) {
                pos = (uint64_t)i * US_SEGMENT;
                n   = (len - pos < US_SEGMENT) ? len - pos : US_SEGMENT;
                local[i] = us_seg_sum_racy_at(src, dst, pos, n, seed, i);
            }
        }
        sum = XXH3_64bits_withSeed_dispatch(sums, nseg * sizeof(uint64_t), seed);
        if ((sum == hdr->checksum) && (sums != local)) {
            for (pos = 0; pos < len; pos += n) {  /* the segments of the span */
                i = (uint32_t)((off + pos) / US_SEGMENT);
                n = (len - pos < US_SEGMENT) ? len - pos : US_SEGMENT;
                if (us_seg_sum_racy_at(src, dst, pos, n, seed, i) != sums[i]) {
                    return UCACHE_ERR_CORRUPT;
                }
            }
        }
    }
    if (sum != hdr->checksum) {
        return UCACHE_ERR_CORRUPT;
    }
    if (us_read_late(layout, t0)) {
        return UCACHE_INPROGRESS; /* late: counts only if its slot still holds it */
    }
    return UCACHE_OK;
}

void us_copy_racy(void *dst, const void *src, size_t n)
{
    US_RACY_BEGIN();
    memcpy(dst, src, n);
    US_RACY_END();
}

#define US_PREFETCH_AHEAD 2         /* chunks prefetched ahead of the copy */
#define US_COPY_FIRST     (32u * 1024) /* payloads copied first, hashed after */

/*
 * Copy what @p op wants of the chunk whose header is at @p src (racy
 * memory) and verify it.  A part of a chunk: its segments are verified
 * where they lie, then the part is copied (the owner never changes a
 * published payload and reuses its memory only a grace period after
 * unpublishing it, so if the group ends within the grace period the copied
 * bytes are the hashed ones).  A whole payload of up to US_COPY_FIRST is
 * only copied here (UCACHE_INPROGRESS: verify the copy later), so a batch
 * copies all its chunks back to back, keeping many memory reads in flight,
 * and hashes them afterwards from cache; a larger one is copied and hashed
 * segment by segment (one pass over memory).  @p hdr gets the header copy.
 */
static ucache_status_t us_copy_chunk(const us_layout_t *layout, const char *src,
                                     const us_read_op_t *op, const us_loc_t *loc,
                                     us_chunk_hdr_t *hdr)
{
    _Alignas(64) uint8_t table[US_MAX_TABLE];
    const char *payload = src + US_CHUNK_HDR + us_chunk_table_bytes(loc->length);
    uint64_t span_off, span_len;
    ucache_status_t st;

    us_copy_racy(hdr, src, sizeof(*hdr));
    if (us_hdr_check(hdr, &op->key, loc) != UCACHE_OK) {
        return UCACHE_ERR_STALE;           /* not this chunk: skip the payload */
    }
    if (op->range_len > 0) {
        if ((op->range_off > loc->length) ||
            (op->range_len > loc->length - op->range_off)) {
            return UCACHE_ERR_OUT_OF_RANGE;
        }
        us_chunk_span(loc->length, op->range_off, op->range_len, &span_off, &span_len);
        us_copy_racy(table, src + US_CHUNK_HDR, us_chunk_table_bytes(loc->length));
        st = us_chunk_verify(layout, &op->key, loc, hdr, table, payload + span_off, NULL,
                             span_off, span_len, 0);
        if (st == UCACHE_OK) {
            us_copy_racy(op->dst, payload + op->range_off, op->range_len);
        }
        return st;
    }
    if (loc->length <= US_COPY_FIRST) {
        us_copy_racy(op->dst, payload, loc->length);
        return UCACHE_INPROGRESS;
    }
    return us_chunk_verify(layout, &op->key, loc, hdr, NULL, payload, op->dst, 0,
                           loc->length, 0);
}

static void us_count(us_read_stats_t *stats, ucache_status_t st)
{
    if (stats == NULL) {
        return;
    }
    switch (st) {
    case UCACHE_OK:            stats->ok++;        break;
    case UCACHE_ERR_NOT_FOUND: stats->not_found++; break;
    case UCACHE_ERR_CORRUPT:   stats->torn++;      break;
    case UCACHE_ERR_TIMEOUT:   stats->late++;      break;
    case UCACHE_ERR_MSG_TRUNCATED:                 /* the caller's buffer */
    case UCACHE_ERR_OUT_OF_RANGE:                  break; /* the caller's range */
    default:                   stats->stale++;     break;
    }
}

static inline int us_final(ucache_status_t st)
{
    return (st == UCACHE_OK) || (st == UCACHE_ERR_NOT_FOUND) ||
           (st == UCACHE_ERR_MSG_TRUNCATED) || (st == UCACHE_ERR_OUT_OF_RANGE);
}

/* Prefetch the start of a chunk (header and up to 8 KiB of payload): the
 * hardware prefetchers do not cross 4 KiB pages, and most chunks do. */
static inline void us_prefetch_chunk(const char *base, const us_loc_t *loc)
{
    size_t off, end = US_CHUNK_HDR + ((loc->length < 8192) ? loc->length : 8192);

    for (off = 0; off < end; off += 64) {
        __builtin_prefetch(base + loc->hdr_off + off);
    }
}

/* Copy buckets @p b (a key's pair) out of the region at @p base into @p bkt. */
static void us_copy_buckets(const us_layout_t *layout, const char *base,
                            const uint64_t b[2], void *bkt)
{
    unsigned j;

    for (j = 0; j < 2; j++) {
        us_copy_racy((char *)bkt + j * US_BUCKET_SIZE,
                     base + us_layout_bucket_off(layout, b[j]), US_BUCKET_SIZE);
    }
}

/* One attempt over a group of at most US_READ_BATCH ops, in passes so the
 * memory latencies of different keys overlap: prefetch every bucket pair;
 * match slots and prefetch each first candidate's header; copy the chunks
 * (prefetching a few ahead); check the group finished its copies within
 * the grace period, or else that each copied chunk is still published
 * where it was found (the slot again, after the copies); verify the
 * copies. */
static void us_read_group(const us_layout_t *layout, const char *base,
                          us_read_op_t *ops, unsigned n)
{
    _Alignas(64) uint64_t bkt[US_READ_BATCH][2 * US_BUCKET_SIZE / sizeof(uint64_t)];
    us_loc_t locs[US_READ_BATCH][2 * US_BUCKET_SLOTS];
    us_chunk_hdr_t hdr[US_READ_BATCH];
    unsigned nloc[US_READ_BATCH], used[US_READ_BATCH], i, j;
    uint64_t b[US_READ_BATCH][2], t0 = uc_time_ns();
    ucache_status_t st;
    int late;

    for (i = 0; i < n; i++) {
        us_key_buckets(&ops[i].key, layout->nbuckets, b[i]);
        __builtin_prefetch(base + us_layout_bucket_off(layout, b[i][0]));
        __builtin_prefetch(base + us_layout_bucket_off(layout, b[i][1]));
    }
    for (i = 0; i < n; i++) {
        us_copy_buckets(layout, base, b[i], bkt[i]);
        nloc[i] = us_index_match(layout, bkt[i], &ops[i].key, locs[i]);
        if (nloc[i] > 0) {
            __builtin_prefetch(base + locs[i][0].hdr_off);
        }
    }
    for (i = 0; i < n; i++) {
        if ((i + US_PREFETCH_AHEAD < n) && (nloc[i + US_PREFETCH_AHEAD] > 0)) {
            us_prefetch_chunk(base, &locs[i + US_PREFETCH_AHEAD][0]);
        }
        st = UCACHE_ERR_NOT_FOUND;
        used[i] = 0;
        for (j = 0; j < nloc[i]; j++) {
            used[i] = j;
            if (((ops[i].range_len > 0) ? ops[i].range_len : locs[i][j].length) >
                ops[i].cap) {
                st = UCACHE_ERR_MSG_TRUNCATED;
                break;
            }
            st = us_copy_chunk(layout, base + locs[i][j].hdr_off, &ops[i], &locs[i][j],
                               &hdr[i]);
            if (st != UCACHE_ERR_STALE) {
                ops[i].length = locs[i][j].length;
                break;
            }
            /* a fingerprint collision looks stale: try the next candidate */
        }
        ops[i].status = st;
    }
    /* Every copy is done.  A group that took longer than the grace period
     * (a first touch of the mapping, a preempted or sanitized reader) may
     * have read reused memory: a chunk counts only if its slot still holds
     * the version it was read at.  Versions are never reused, so the chunk
     * was not unpublished before the slot's second copy, and its memory not
     * reused during the first (the loads are ordered by the fence). */
    late = us_read_late(layout, t0);
    if (late) {
        us_read_fence();
    }
    for (i = 0; i < n; i++) {
        if (late && ((ops[i].status == UCACHE_INPROGRESS) || (ops[i].status == UCACHE_OK))) {
            us_copy_buckets(layout, base, b[i], bkt[i]);
            if (!us_index_holds(layout, bkt[i], &ops[i].key, &locs[i][used[i]])) {
                ops[i].status = UCACHE_ERR_TIMEOUT;
            }
        } else if (late && ((ops[i].status == UCACHE_ERR_CORRUPT) ||
                            (ops[i].status == UCACHE_ERR_STALE))) {
            ops[i].status = UCACHE_ERR_TIMEOUT; /* may have been reused: not torn */
        }
        if (ops[i].status == UCACHE_INPROGRESS) {   /* copied first: verify the copy */
            ops[i].status = us_chunk_verify(layout, &ops[i].key, &locs[i][used[i]], &hdr[i],
                                            NULL, ops[i].dst, NULL, 0, ops[i].length, 0);
        }
    }
}

ucache_status_t us_read_raw_batch(const us_layout_t *layout, const void *base,
                                  us_read_op_t *ops, unsigned n, unsigned attempts,
                                  us_read_stats_t *stats)
{
    us_read_op_t *retry[US_READ_BATCH];
    ucache_status_t ret = UCACHE_OK;
    unsigned g, i, a, m;

    for (g = 0; g < n; g += US_READ_BATCH) {
        m = (n - g < US_READ_BATCH) ? n - g : US_READ_BATCH;
        us_read_group(layout, base, ops + g, m);
        for (a = 1; a < attempts; a++) {       /* retry torn / stale / late ones */
            unsigned r = 0;

            for (i = 0; i < m; i++) {
                if (!us_final(ops[g + i].status)) {
                    us_count(stats, ops[g + i].status);
                    retry[r++] = &ops[g + i];
                }
            }
            for (i = 0; i < r; i++) {
                us_read_group(layout, base, retry[i], 1);
            }
            if (r == 0) {
                break;
            }
        }
        for (i = 0; i < m; i++) {
            us_count(stats, ops[g + i].status);
            if (ops[g + i].status != UCACHE_OK) {
                ret = ops[g + i].status;
            }
        }
    }
    return ret;
}

ucache_status_t us_read_raw(const us_layout_t *layout, const void *base,
                            const us_key_t *key, void *dst, size_t cap,
                            size_t *len_p, unsigned attempts,
                            us_read_stats_t *stats)
{
    us_read_op_t op = { .key = *key, .dst = dst, .cap = cap };

    us_read_raw_batch(layout, base, &op, 1, (attempts == 0) ? 1 : attempts, stats);
    if (op.status == UCACHE_OK) {
        *len_p = op.length;
    }
    return op.status;
}
