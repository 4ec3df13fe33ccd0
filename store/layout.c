/*
 * layout.c - the reader's side of the store's binary layout (layout.h):
 * superblock parsing, slot matching, chunk verification and the raw-memory
 * read path.  Used by owners and by every reader; it trusts no byte it is
 * given, because those bytes were copied from memory another node changes.
 */
#include "layout.h"
#include "util/time.h"

#include <stdatomic.h>
#include <string.h>
#include <xxhash.h>

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

unsigned us_index_match(const us_layout_t *layout, const void *buckets,
                        const us_key_t *key, us_loc_t *locs)
{
    const uint16_t fp = us_key_fp(key);
    unsigned i, n = 0;
    uint64_t w[2], granule, block_end;
    uint32_t length;

    for (i = 0; i < 2 * US_BUCKET_SLOTS; i++) {
        memcpy(w, (const char *)buckets + i * US_SLOT_SIZE, sizeof(w));
        if ((w[0] == 0) || ((uint16_t)w[0] != fp)) {
            continue;
        }
        granule   = w[1] >> 26;
        length    = (uint32_t)(w[1] & US_MAX_PAYLOAD);
        block_end = (granule * US_GRANULE) + US_CHUNK_OVERHEAD + length;
        if ((length > layout->max_payload) || (granule >= US_MAX_GRANULES) ||
            (block_end > layout->data_len)) {
            continue; /* torn or garbage slot: it can only point outside */
        }
        locs[n].version = w[0] >> 16;
        locs[n].hdr_off = layout->data_off + granule * US_GRANULE + US_BLOCK_HDR;
        locs[n].length  = length;
        n++;
    }
    return n;
}

uint64_t us_chunk_checksum(const us_chunk_hdr_t *hdr, const void *payload)
{
    uint64_t seed = XXH3_64bits(hdr, offsetof(us_chunk_hdr_t, checksum));

    return XXH3_64bits_withSeed(payload, hdr->length, seed);
}

ucache_status_t us_chunk_verify(const us_chunk_hdr_t *hdr, const void *payload,
                                const us_key_t *key, const us_loc_t *loc)
{
    if ((hdr->magic != US_CHUNK_MAGIC) || (hdr->key_hi != key->hi) ||
        (hdr->key_lo != key->lo) || (hdr->version != loc->version) ||
        (loc->version == 0) || (hdr->length != loc->length)) {
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
    default:                   stats->stale++;     break;
    }
}

/* One attempt: bucket pair, then each candidate chunk. */
static ucache_status_t us_read_once(const us_layout_t *layout, const char *base,
                                    const us_key_t *key, void *dst, size_t cap,
                                    size_t *len_p)
{
    _Alignas(64) uint64_t bkt[2 * US_BUCKET_SIZE / sizeof(uint64_t)];
    us_loc_t locs[2 * US_BUCKET_SLOTS];
    ucache_status_t st = UCACHE_ERR_NOT_FOUND;
    uint64_t b[2], t0 = uc_time_ns();
    us_chunk_hdr_t hdr;
    unsigned i, n;

    us_key_buckets(key, layout->nbuckets, b);
    for (i = 0; i < 2; i++) {
        us_copy_racy((char *)bkt + i * US_BUCKET_SIZE,
                     base + us_layout_bucket_off(layout, b[i]), US_BUCKET_SIZE);
    }
    n = us_index_match(layout, bkt, key, locs);
    for (i = 0; i < n; i++) {
        if (locs[i].length > cap) {
            return UCACHE_ERR_MSG_TRUNCATED;
        }
        us_copy_racy(&hdr, base + locs[i].hdr_off, sizeof(hdr));
        us_copy_racy(dst, base + locs[i].hdr_off + US_CHUNK_HDR, locs[i].length);
        if (uc_time_ns() - t0 > layout->grace_ns) {
            return UCACHE_ERR_TIMEOUT; /* the memory may have been reused */
        }
        st = us_chunk_verify(&hdr, dst, key, &locs[i]);
        if (st == UCACHE_OK) {
            *len_p = locs[i].length;
            return UCACHE_OK;
        }
        /* a fingerprint collision looks stale: try the next candidate */
    }
    return st;
}

ucache_status_t us_read_raw(const us_layout_t *layout, const void *base,
                            const us_key_t *key, void *dst, size_t cap,
                            size_t *len_p, unsigned attempts,
                            us_read_stats_t *stats)
{
    ucache_status_t st = UCACHE_ERR_NOT_FOUND;
    unsigned i;

    for (i = 0; i < ((attempts == 0) ? 1 : attempts); i++) {
        st = us_read_once(layout, base, key, dst, cap, len_p);
        us_count(stats, st);
        if ((st == UCACHE_OK) || (st == UCACHE_ERR_NOT_FOUND) ||
            (st == UCACHE_ERR_MSG_TRUNCATED)) {
            break;
        }
    }
    return st;
}
