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
        (sb.max_payload > US_MAX_PAYLOAD) || (sb.grace_ns == 0)) {
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
    block_end = (granule * US_GRANULE) + US_CHUNK_OVERHEAD + length;
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

uint64_t us_chunk_checksum(const us_chunk_hdr_t *hdr, const void *payload)
{
    return XXH3_64bits_withSeed_dispatch(payload, hdr->length, us_hdr_seed(hdr));
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

ucache_status_t us_chunk_verify(const us_chunk_hdr_t *hdr, const void *payload,
                                const us_key_t *key, const us_loc_t *loc)
{
    if (us_hdr_check(hdr, key, loc) != UCACHE_OK) {
        return UCACHE_ERR_STALE;
    }
    if (us_chunk_checksum(hdr, payload) != hdr->checksum) {
        return UCACHE_ERR_CORRUPT;
    }
    return UCACHE_OK;
}

/* Copy @p n bytes of memory another thread or node may be changing. */
static void us_copy_racy(void *dst, const void *src, size_t n)
{
    US_RACY_BEGIN();
    memcpy(dst, src, n);
    US_RACY_END();
}

#define US_PREFETCH_AHEAD 2         /* chunks prefetched ahead of the copy */
#define US_FUSE_BLOCK (32u * 1024)  /* copy, then hash while still in L1/L2 */

/* A copied chunk whose checksum is still to be checked. */
typedef struct us_pending {
    uint64_t seed;
    uint64_t checksum;
} us_pending_t;

/*
 * Copy a chunk's header and payload out of racy memory at @p src; the
 * checksum is always computed over the caller's copy.  A payload of up to
 * US_FUSE_BLOCK is only copied here (UCACHE_INPROGRESS, what to check in
 * @p pend), so a batch copies all its chunks back to back, keeping many
 * memory reads in flight, and hashes them afterwards from cache.  A larger
 * one is copied and hashed block by block (one pass over memory).
 */
static ucache_status_t us_copy_chunk(const char *src, const us_read_op_t *op,
                                     const us_loc_t *loc, us_pending_t *pend)
{
    _Alignas(64) XXH3_state_t state;
    void *dst = op->dst;
    us_chunk_hdr_t hdr;
    size_t off, n;
    uint64_t sum;

    us_copy_racy(&hdr, src, sizeof(hdr));
    if (us_hdr_check(&hdr, &op->key, loc) != UCACHE_OK) {
        return UCACHE_ERR_STALE;           /* not this chunk: skip the payload */
    }
    src += US_CHUNK_HDR;
    if (op->range_len > 0) {
        /* Part of a chunk: hash it where it lies, then copy the part.  The
         * owner never changes a published payload and reuses its memory
         * only a grace period after unpublishing it, so if the group ends
         * within the grace period the copied bytes are the hashed ones. */
        if ((op->range_off > loc->length) ||
            (op->range_len > loc->length - op->range_off)) {
            return UCACHE_ERR_OUT_OF_RANGE;
        }
        US_RACY_BEGIN();
        sum = XXH3_64bits_withSeed_dispatch(src, loc->length, us_hdr_seed(&hdr));
        US_RACY_END();
        if (sum != hdr.checksum) {
            return UCACHE_ERR_CORRUPT;
        }
        us_copy_racy(dst, src + op->range_off, op->range_len);
        return UCACHE_OK;
    }
    if (loc->length <= US_FUSE_BLOCK) {
        us_copy_racy(dst, src, loc->length);
        pend->seed     = us_hdr_seed(&hdr);
        pend->checksum = hdr.checksum;
        return UCACHE_INPROGRESS;
    }
    /* libxxhash 0.8.1 skips deriving the seeded secret when the state's
     * stale seed field equals the new seed: a reused stack slot then hashes
     * with whatever overwrote the old secret.  Clear the seed first. */
    XXH3_INITSTATE(&state);
    XXH3_64bits_reset_withSeed(&state, us_hdr_seed(&hdr));
    for (off = 0; off < loc->length; off += n) {
        n = loc->length - off;
        n = (n > US_FUSE_BLOCK) ? US_FUSE_BLOCK : n;
        us_copy_racy((char *)dst + off, src + off, n);
        XXH3_64bits_update_dispatch(&state, (char *)dst + off, n);
    }
    return (XXH3_64bits_digest(&state) == hdr.checksum) ? UCACHE_OK :
                                                          UCACHE_ERR_CORRUPT;
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
    us_pending_t pend[US_READ_BATCH];
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
            st = us_copy_chunk(base + locs[i][j].hdr_off, &ops[i], &locs[i][j],
                               &pend[i]);
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
    late = (uc_time_ns() - t0 > layout->grace_ns);
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
        if (ops[i].status == UCACHE_INPROGRESS) {
            ops[i].status = (XXH3_64bits_withSeed_dispatch(ops[i].dst, ops[i].length,
                                                           pend[i].seed) ==
                             pend[i].checksum) ? UCACHE_OK : UCACHE_ERR_CORRUPT;
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
