/*
 * nvme_rec.h - the NVMe tier's on-device format (nvme_rec.c), what a
 * restarted daemon scans and what every device read is checked against.
 * A device (or preallocated file) is self-describing: nothing but what is
 * on it is needed to serve its chunks again, and nothing on it is trusted
 * until these checks pass.
 *
 *   0                 us_nvme_super_t, padded to US_NVME_BLOCK (4 KiB)
 *   US_NVME_BLOCK     segment 0, then segment 1, ... (seg_size bytes each)
 *
 * A segment is a log: records packed from its start, each US_NVME_BLOCK-
 * aligned, written in one O_DIRECT write.  A record:
 *
 *   +0        us_nvme_rec_t (64 bytes): key, length, sequence, checksums
 *   +64       payload (length bytes)
 *   ...       zeroes
 *   +size-16  us_nvme_trailer_t: the sequence and header checksum again
 *
 * size = us_nvme_rec_size(length), a multiple of US_NVME_BLOCK.  The header
 * and the trailer are the record's first and last blocks: a scan that finds
 * both knows the write reached both ends; the payload checksum (checked by
 * every read) catches a torn middle.  Sequences only grow: a scan takes
 * the records of a segment from its start while their sequences increase,
 * so a record of an earlier pass over the segment, left behind the newest
 * one, is never taken.  A tombstone (US_NVME_REC_DROPPED, one block) says
 * that the key's older records are not to be served again (an admin's
 * evict); segments are cleaned oldest first, so it outlives them.
 */
#ifndef US_NVME_REC_H
#define US_NVME_REC_H

#include "store/layout.h"
#include "util/status.h"

#include <stddef.h>
#include <stdint.h>

#define US_NVME_BLOCK        4096u
#define US_NVME_SUPER_MAGIC  0x3145564E56434355ull   /* "UCCVNVE1" */
#define US_NVME_REC_MAGIC    0x524E4355u             /* "UCNR" */
#define US_NVME_FORMAT       2u   /* 2: records carry flags (pinned) */
#define US_NVME_REC_HDR      64u
#define US_NVME_TRAILER      16u

/* Record flags. */
#define US_NVME_REC_PINNED   0x01u    /* pinned when written: a restart keeps
                                         the pin (a newer record of the key
                                         with the flag cleared unpins it)   */
#define US_NVME_REC_DROPPED  0x02u    /* a tombstone (no payload, not pinned):
                                         the key's older records are not
                                         taken by a restart                 */
#define US_NVME_REC_FLAGS    0x03u    /* every flag this format knows       */
#define US_NVME_MAX_NS       1024u    /* namespaces: a record's ns is below  */

/* The device's superblock. */
typedef struct us_nvme_super {
    uint64_t magic;
    uint32_t format;          /* US_NVME_FORMAT */
    uint32_t block;           /* US_NVME_BLOCK */
    uint64_t uuid;            /* random per format: records of an earlier
                                 format of the same device are not taken   */
    uint64_t dev_bytes;       /* bytes the tier uses                       */
    uint64_t seg_bytes;       /* segment size, a multiple of the block     */
    uint64_t nsegs;
    uint32_t max_payload;
    uint32_t reserved;
    uint64_t checksum;        /* XXH64 of the bytes above */
} us_nvme_super_t;

/* A record's header (little-endian, as every target of ours). */
typedef struct us_nvme_rec {
    uint32_t magic;
    uint8_t  format;          /* US_NVME_FORMAT */
    uint8_t  flags;           /* US_NVME_REC_* */
    uint16_t ns;              /* namespace the chunk is accounted to       */
    uint32_t length;          /* payload bytes                             */
    uint32_t seg;             /* the segment it was written into          */
    uint64_t uuid;            /* the device's (superblock)                 */
    uint64_t seq;             /* the tier's write sequence, nonzero, never
                                 reused on a device: the record's version  */
    uint64_t key_hi;
    uint64_t key_lo;
    uint64_t checksum;        /* XXH3_64(payload, seed = hdr_checksum)     */
    uint64_t hdr_checksum;    /* XXH64 of the bytes above checksum         */
} us_nvme_rec_t;

typedef struct us_nvme_trailer {
    uint64_t seq;
    uint64_t hdr_checksum;
} us_nvme_trailer_t;

_Static_assert(sizeof(us_nvme_rec_t) == US_NVME_REC_HDR, "record header size");
_Static_assert(sizeof(us_nvme_super_t) <= US_NVME_BLOCK, "nvme superblock size");

/** Device bytes of a record of @p length payload bytes. */
static inline uint64_t us_nvme_rec_size(uint32_t length)
{
    return ((uint64_t)US_NVME_REC_HDR + length + US_NVME_TRAILER + US_NVME_BLOCK - 1) /
           US_NVME_BLOCK * US_NVME_BLOCK;
}

/** Fill in @p sb's checksum (the other fields set by the caller). */
void us_nvme_super_seal(us_nvme_super_t *sb);

/**
 * Check a superblock read from a device of @p dev_bytes bytes (@p len bytes
 * at @p buf): UCACHE_OK, or UCACHE_ERR_NOT_FOUND for one that is not ours
 * (a fresh device), UCACHE_ERR_CORRUPT for ours damaged, UCACHE_ERR_INVALID
 * for a geometry that does not fit the device.
 */
ucache_status_t us_nvme_super_parse(const void *buf, size_t len, uint64_t dev_bytes,
                                    us_nvme_super_t *sb_p);

/**
 * Write the header and the trailer of a record of @p rec->length bytes into
 * @p buf (us_nvme_rec_size() bytes, the payload already at buf + 64):
 * checksums computed, the padding zeroed.  @p rec gives the other fields.
 */
void us_nvme_rec_seal(void *buf, const us_nvme_rec_t *rec);

/**
 * Check a record header (@p len bytes at @p buf, at least the header) of
 * device @p sb: magic, format, uuid, header checksum, a nonzero sequence, a
 * length within the device's max payload, a namespace below US_NVME_MAX_NS,
 * no flag this format does not know (a tombstone: no payload, no pin).  UCACHE_OK with *rec_p filled, else
 * UCACHE_ERR_NOT_FOUND (no record here: zeroes, another device's, an older
 * format) or UCACHE_ERR_CORRUPT (ours, damaged).
 */
ucache_status_t us_nvme_rec_parse(const void *buf, size_t len, const us_nvme_super_t *sb,
                                  us_nvme_rec_t *rec_p);

/** Whether the trailer in the last block of a record (@p blk, the block's
 *  US_NVME_BLOCK bytes) belongs to @p rec. */
bool us_nvme_trailer_ok(const void *blk, const us_nvme_rec_t *rec);

/** Whether @p payload (rec->length bytes) is the record's. */
bool us_nvme_payload_ok(const us_nvme_rec_t *rec, const void *payload);

#endif
