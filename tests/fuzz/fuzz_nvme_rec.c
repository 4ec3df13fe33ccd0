/*
 * fuzz_nvme_rec.c - what the NVMe tier reads back from a device at start-up
 * and on every read (store/nvme_rec.c): the superblock and a record, bytes
 * that a failing device, another program or an older format may have left.
 * Input: a flags byte, a superblock block (US_NVME_BLOCK bytes), then a
 * record; bit 0 of the flags sets the superblock's checksum, bit 1 the
 * record header's, to reach the checks past them.  Properties: an accepted
 * superblock's segments lie inside the device and hold a chunk of its
 * largest; an accepted record is of this device (uuid), has a sequence and
 * a length within the largest, only known flags, a namespace within the
 * limit; its trailer and payload
 * are checked only within the bytes given (ASan: exactly sized copies); a
 * record sealed from what was accepted parses back to the same fields and
 * bytes.
 */
#include "store/nvme_rec.h"
#include "tests/fuzz/fuzz.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint64_t dev = 1ull << 40;
    us_nvme_super_t sb;
    us_nvme_rec_t rec, back;
    uint8_t *blk, *img;
    uint64_t rsize;
    size_t rlen;

    fz_quiet();
    if (size < 1 + US_NVME_BLOCK + sizeof(rec)) {
        return 0;
    }
    blk = malloc(US_NVME_BLOCK);
    memcpy(blk, data + 1, US_NVME_BLOCK);
    if (data[0] & 1) {
        memcpy(&sb, blk, sizeof(sb));
        us_nvme_super_seal(&sb);
        memcpy(blk, &sb, sizeof(sb));
    }
    if (us_nvme_super_parse(blk, US_NVME_BLOCK, dev, &sb) != UCACHE_OK) {
        free(blk);
        return 0;
    }
    free(blk);
    FZ_CHECK(sb.nsegs > 0);
    FZ_CHECK(US_NVME_BLOCK + sb.nsegs * sb.seg_bytes <= sb.dev_bytes);
    FZ_CHECK(sb.dev_bytes <= dev);
    FZ_CHECK(us_nvme_rec_size(sb.max_payload) <= sb.seg_bytes);
    rlen = size - 1 - US_NVME_BLOCK;
    img  = malloc(rlen);
    memcpy(img, data + 1 + US_NVME_BLOCK, rlen);
    if (data[0] & 2) {
        memcpy(&rec, img, sizeof(rec));
        rec.hdr_checksum = XXH64(&rec, offsetof(us_nvme_rec_t, checksum), 0);
        memcpy(img, &rec, sizeof(rec));
    }
    if (us_nvme_rec_parse(img, rlen, &sb, &rec) != UCACHE_OK) {
        free(img);
        return 0;
    }
    FZ_CHECK(rec.uuid == sb.uuid);
    FZ_CHECK(rec.seq != 0);
    FZ_CHECK(rec.length <= sb.max_payload);
    FZ_CHECK((rec.flags & ~US_NVME_REC_FLAGS) == 0);
    FZ_CHECK(!(rec.flags & US_NVME_REC_DROPPED) ||
             ((rec.length == 0) && !(rec.flags & US_NVME_REC_PINNED)));
    FZ_CHECK(rec.ns < US_NVME_MAX_NS);
    rsize = us_nvme_rec_size(rec.length);
    FZ_CHECK(rsize % US_NVME_BLOCK == 0);
    FZ_CHECK(rsize >= US_NVME_REC_HDR + rec.length + US_NVME_TRAILER);
    if (rlen >= rsize) {
        uint8_t *whole = malloc(rsize);

        memcpy(whole, img, rsize);
        (void)us_nvme_trailer_ok(whole + rsize - US_NVME_BLOCK, &rec);
        (void)us_nvme_payload_ok(&rec, whole + US_NVME_REC_HDR);
        /* sealed again, it parses back the same, its payload intact */
        us_nvme_rec_seal(whole, &rec);
        FZ_CHECK(us_nvme_rec_parse(whole, rsize, &sb, &back) == UCACHE_OK);
        FZ_CHECK((back.seq == rec.seq) && (back.length == rec.length) &&
                 (back.key_hi == rec.key_hi) && (back.key_lo == rec.key_lo) &&
                 (back.ns == rec.ns) && (back.seg == rec.seg) && (back.flags == rec.flags));
        FZ_CHECK(us_nvme_trailer_ok(whole + rsize - US_NVME_BLOCK, &back));
        FZ_CHECK(us_nvme_payload_ok(&back, whole + US_NVME_REC_HDR));
        FZ_CHECK(memcmp(whole + US_NVME_REC_HDR, img + US_NVME_REC_HDR, rec.length) == 0);
        free(whole);
    }
    free(img);
    return 0;
}
