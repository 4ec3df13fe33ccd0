/*
 * nvme_rec.c - sealing and checking the NVMe tier's superblock and records
 * (format in nvme_rec.h).  Everything read from a device is untrusted: a
 * record is taken only when its header checks out against the device's
 * superblock, and its bytes only when their checksum does.
 */
#include "nvme_rec.h"

#include <stdbool.h>
#include <string.h>
#include <xxhash.h>

void us_nvme_super_seal(us_nvme_super_t *sb)
{
    sb->checksum = XXH64(sb, offsetof(us_nvme_super_t, checksum), 0);
}

ucache_status_t us_nvme_super_parse(const void *buf, size_t len, uint64_t dev_bytes,
                                    us_nvme_super_t *sb_p)
{
    us_nvme_super_t sb;

    if (len < sizeof(sb)) {
        return UCACHE_ERR_NOT_FOUND;
    }
    memcpy(&sb, buf, sizeof(sb));
    if (sb.magic != US_NVME_SUPER_MAGIC) {
        return UCACHE_ERR_NOT_FOUND;
    }
    if (sb.checksum != XXH64(&sb, offsetof(us_nvme_super_t, checksum), 0)) {
        return UCACHE_ERR_CORRUPT;
    }
    if ((sb.format != US_NVME_FORMAT) || (sb.block != US_NVME_BLOCK)) {
        return UCACHE_ERR_NOT_FOUND;                 /* another format: reformat */
    }
    if ((sb.seg_bytes < 2 * US_NVME_BLOCK) || (sb.seg_bytes % US_NVME_BLOCK != 0) ||
        (sb.nsegs == 0) || (sb.nsegs > (1ull << 32)) || (sb.dev_bytes > dev_bytes) ||
        (sb.dev_bytes < US_NVME_BLOCK) ||
        (sb.seg_bytes > (sb.dev_bytes - US_NVME_BLOCK) / sb.nsegs) ||
        (sb.max_payload == 0) || (sb.max_payload > US_MAX_PAYLOAD) ||
        (us_nvme_rec_size(sb.max_payload) > sb.seg_bytes)) {
        return UCACHE_ERR_INVALID;
    }
    *sb_p = sb;
    return UCACHE_OK;
}

static uint64_t rec_hdr_sum(const us_nvme_rec_t *rec)
{
    return XXH64(rec, offsetof(us_nvme_rec_t, checksum), 0);
}

void us_nvme_rec_seal(void *buf, const us_nvme_rec_t *in)
{
    uint64_t size = us_nvme_rec_size(in->length);
    us_nvme_trailer_t tr;
    us_nvme_rec_t rec = *in;
    char *p = buf;

    rec.magic        = US_NVME_REC_MAGIC;
    rec.format       = US_NVME_FORMAT;
    rec.hdr_checksum = 0;
    rec.checksum     = 0;
    rec.hdr_checksum = rec_hdr_sum(&rec);
    rec.checksum     = XXH3_64bits_withSeed(p + US_NVME_REC_HDR, rec.length,
                                            rec.hdr_checksum);
    memcpy(p, &rec, sizeof(rec));
    memset(p + US_NVME_REC_HDR + rec.length, 0,
           size - US_NVME_REC_HDR - rec.length - US_NVME_TRAILER);
    tr.seq          = rec.seq;
    tr.hdr_checksum = rec.hdr_checksum;
    memcpy(p + size - US_NVME_TRAILER, &tr, sizeof(tr));
}

ucache_status_t us_nvme_rec_parse(const void *buf, size_t len, const us_nvme_super_t *sb,
                                  us_nvme_rec_t *rec_p)
{
    us_nvme_rec_t rec;

    if (len < sizeof(rec)) {
        return UCACHE_ERR_NOT_FOUND;
    }
    memcpy(&rec, buf, sizeof(rec));
    if ((rec.magic != US_NVME_REC_MAGIC) || (rec.format != US_NVME_FORMAT) ||
        (rec.uuid != sb->uuid)) {
        return UCACHE_ERR_NOT_FOUND;
    }
    if ((rec.hdr_checksum != rec_hdr_sum(&rec)) || (rec.seq == 0) ||
        (rec.length > sb->max_payload) || (rec.flags & ~US_NVME_REC_FLAGS) ||
        ((rec.flags & US_NVME_REC_DROPPED) &&
         ((rec.length != 0) || (rec.flags & US_NVME_REC_PINNED))) ||
        (rec.ns >= US_NVME_MAX_NS)) {
        return UCACHE_ERR_CORRUPT;
    }
    *rec_p = rec;
    return UCACHE_OK;
}

bool us_nvme_trailer_ok(const void *blk, const us_nvme_rec_t *rec)
{
    us_nvme_trailer_t tr;

    memcpy(&tr, (const char *)blk + US_NVME_BLOCK - US_NVME_TRAILER, sizeof(tr));
    return (tr.seq == rec->seq) && (tr.hdr_checksum == rec->hdr_checksum);
}

bool us_nvme_payload_ok(const us_nvme_rec_t *rec, const void *payload)
{
    return XXH3_64bits_withSeed(payload, rec->length, rec->hdr_checksum) == rec->checksum;
}
