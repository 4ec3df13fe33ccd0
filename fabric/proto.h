/*
 * proto.h - the wire protocol between readers and owners (RPC ids of the
 * transport; little-endian, this layout) and the checks (proto.c) every
 * message passes where it crosses a trust boundary.
 */
#ifndef UF_PROTO_H
#define UF_PROTO_H

#include "ucache.h"
#include "origin/origin.h"
#include "store/layout.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UF_RPC_FETCH      1          /* find or fill one chunk              */
#define UF_RPC_TOUCH      2          /* one-sided readers' hits (touch.c)  */
#define UF_RPC_HELLO      3          /* the node's record (bootstrap)       */
#define UF_RPC_ADMIN      4          /* counters, drain (admin tools)       */
#define UF_RPC_META       5          /* an object's size and version, a
                                        listing's page, from its owner (meta.c) */
#define UF_PROTO_MAGIC    0x50464355u /* "UCFP" */
#define UF_PROTO_VERSION  1u
#define UF_FETCH_DATA     (1u << 0)  /* reply with header + payload (tcp)   */
#define UF_FETCH_PIN      (1u << 1)  /* pin the chunk once found or filled  */
#define UF_FETCH_UNPIN    (1u << 2)  /* unpin it if present; never fill     */
#define UF_FETCH_EVICT    (1u << 3)  /* unpin and drop it if present; never fill */
#define UF_FETCH_SPAN     (1u << 4)  /* with DATA: a uf_fetch_span_t follows the
                                        URI; the reply's data is the chunk's
                                        segment table, then those bytes    */
#define UF_FETCH_NVME     (1u << 6)  /* found or filled: to the owner's NVMe tier,
                                        out of its memory (warm-up --tier nvme) */
#define UF_FETCH_RAW      (1u << 5)  /* alone: no chunk but bytes of the owner's
                                        exported region (a uf_fetch_raw_t
                                        follows the header; no URI, no key);
                                        the reply is those bytes, no metadata.
                                        How a reader with no one-sided path
                                        reads the region (ucache health)     */
#define UF_FETCH_RAW_MAX  (256u << 20) /* bytes one raw FETCH may ask for (ucache
                                         health --size at most)           */

/* FETCH request: this header, then uri_len bytes of URI (no terminator). */
typedef struct uf_fetch_req {
    uint32_t magic;
    uint16_t version;
    uint16_t flags;          /* UF_FETCH_* */
    uint64_t epoch;          /* the reader's view epoch */
    uint64_t key_hi, key_lo;
    uint64_t obj_size, obj_version;
    uint64_t chunk_idx;
    uint32_t chunk_size;
    uint16_t uri_len;
    uint16_t reserved;
} uf_fetch_req_t;

/* The part of a chunk a FETCH with UF_FETCH_SPAN wants: a span of whole
 * segments (us_chunk_span: off segment-aligned, off + len at a segment's
 * end or the chunk's). */
typedef struct uf_fetch_span {
    uint32_t off;
    uint32_t len;
} uf_fetch_span_t;

/* The bytes of the owner's region a FETCH with UF_FETCH_RAW wants. */
typedef struct uf_fetch_raw {
    uint64_t off;            /* from the region's start */
    uint64_t len;            /* 1 .. UF_FETCH_RAW_MAX */
} uf_fetch_raw_t;

/* HELLO request (a reader asks a node's listener for its record): the
 * reader's protocol.  Empty from readers of before this header: protocol 1. */
typedef struct uf_hello_req {
    uint32_t magic;
    uint16_t version;        /* UF_PROTO_VERSION of the reader */
    uint16_t reserved;
} uf_hello_req_t;

/*
 * META request (meta.c): this header, then uri_len bytes of the object's URI
 * (STAT) or the prefix (LIST), then after_len bytes of the URI a LIST page
 * begins after (0: the first page).  No terminators.  A node of before META
 * answers UCACHE_ERR_UNSUPPORTED (no handler): the reader asks the origin.
 */
enum { UF_META_STAT = 1, UF_META_LIST = 2 };
/* A bit of uf_meta_req_t.op: the reader wants mtimes (objects' last-modified
 * times at the origin, seconds since the epoch, 0 unknown; until 2106).  The
 * reply then carries them where a reply without holds 0: a STAT reply's
 * `count`, each LIST entry's `reserved`.  A node of before it refuses the
 * request as malformed (the reader asks the origin itself). */
#define UF_META_MTIME 0x100u
#define UF_META_OP(op) ((op) & ~UF_META_MTIME)
#define UF_META_PAGE_MAX   1000         /* entries one LIST reply holds at most */
#define UF_META_PAGE_BYTES (256u << 10) /* bytes of entries one LIST reply holds at most */

typedef struct uf_meta_req {
    uint32_t magic;
    uint16_t version;
    uint16_t op;             /* UF_META_* */
    uint64_t epoch;          /* the reader's view epoch */
    uint64_t stale;          /* STAT: a version the reader found changed at the
                                origin: not good enough (0: any) */
    uint64_t max_age_ns;     /* the oldest answer the reader takes (its
                                UCACHE_META_TTL); the owner's TTL if longer */
    uint32_t max;            /* LIST: entries wanted, 1 .. UF_META_PAGE_MAX; STAT: 0 */
    uint16_t uri_len;        /* 1 .. US_URI_MAX - 1 */
    uint16_t after_len;      /* LIST: 0 .. US_URI_MAX - 1; STAT: 0 */
} uf_meta_req_t;

/* META reply metadata.  STAT: the object, its ETag (etag_len bytes) the
 * reply's data; LIST: count entries (uf_meta_ent_t) the data, in strcmp
 * order, after the request's `after`; more if the listing goes on. */
typedef struct uf_meta_rep {
    uint64_t size, version;  /* STAT */
    uint64_t age_ns;         /* how long ago the owner had it from the origin */
    uint32_t count;          /* LIST; STAT with UF_META_MTIME: the mtime */
    uint16_t etag_len;       /* STAT: < US_ETAG_MAX */
    uint8_t  more;           /* LIST: 0 or 1 */
    uint8_t  reserved;
} uf_meta_rep_t;

/* One object of a LIST reply's data: this, uri_len bytes of URI (beginning
 * with the prefix), etag_len bytes of ETag. */
typedef struct uf_meta_ent {
    uint64_t size, version;
    uint16_t uri_len, etag_len;
    uint32_t reserved;       /* UF_META_MTIME: the mtime; else 0 */
} uf_meta_ent_t;

/* How an owner answered a FETCH (uf_fetch_rep_t.how). */
enum { UF_HOW_HIT = 1, UF_HOW_FILLED = 2, UF_HOW_COALESCED = 3,
       UF_HOW_NVME = 4 /* read from the owner's NVMe tier */ };

/* FETCH reply metadata; with UF_FETCH_DATA the data is the payload. */
typedef struct uf_fetch_rep {
    uint64_t       version;  /* slot version (us_loc_t) */
    uint64_t       hdr_off;
    uint32_t       length;
    uint32_t       how;
    us_chunk_hdr_t hdr;      /* the chunk header (UF_FETCH_DATA only) */
} uf_fetch_rep_t;

/* TOUCH request: this header, then count keys (16 bytes each). */
typedef struct uf_touch_req {
    uint32_t magic;
    uint16_t version;
    uint16_t count;          /* keys, 0 .. UF_TOUCH_MAX */
    uint32_t weight;         /* hits each key counts for in eviction (1) */
    uint32_t hits;           /* one-sided hits this report stands for (for
                                the owner's hit ratio; 0 from readers that
                                sampled: count * weight); 0 keys need > 0 */
} uf_touch_req_t;

/*
 * ADMIN request: this header alone, count holding the operation
 * (UF_ADMIN_*), with UF_ADMIN_TAGGED set by a requester that reads tagged
 * replies.  Every operation is answered with the node's counters after it:
 *  - tagged (asked for): header {UF_STATS_MAGIC, UF_STATS_VERSION, count},
 *    then count uf_stat_tv_t.  A counter keeps its tag for ever
 *    (UF_STATS_FIELDS in proto.c); a reader skips tags it does not know
 *    and leaves counters it was not sent at 0, so nodes and tools of any
 *    two versions understand each other;
 *  - positional (a requester of before tags): header {UF_PROTO_MAGIC,
 *    UF_PROTO_VERSION, count}, then count uint64, the counters of tags 1,
 *    2, ... count (frozen at UF_STATS_POSITIONAL).
 * A node of before tags refuses UF_ADMIN_TAGGED (UCACHE_ERR_INVALID): the
 * requester asks again without it and remembers (uf_peer_t.admin_old).
 */
typedef struct uf_admin_msg {
    uint32_t magic;
    uint16_t version;
    uint16_t count;          /* request: UF_ADMIN_*; reply: counters */
} uf_admin_msg_t;

enum { UF_ADMIN_STATS = 0, UF_ADMIN_DRAIN = 1, UF_ADMIN_UNDRAIN = 2 };
#define UF_ADMIN_TAGGED      0x100u       /* request: reply with tagged counters */
#define UF_STATS_MAGIC       0x54534355u  /* "UCST" */
#define UF_STATS_VERSION     1u
#define UF_STATS_POSITIONAL  65           /* counters of a positional reply */

/* One counter of a tagged ADMIN reply. */
typedef struct uf_stat_tv {
    uint32_t tag;            /* UF_STATS_FIELDS; never 0 */
    uint32_t reserved;       /* 0 */
    uint64_t value;
} uf_stat_tv_t;

/* The longest ADMIN reply this build sends. */
#define UF_ADMIN_REP_MAX (sizeof(uf_admin_msg_t) + \
                          sizeof(ucache_stats_t) / sizeof(uint64_t) * sizeof(uf_stat_tv_t))
#define UF_ADMIN_QUEUE    8          /* admin requests waiting for an answer */

#define UF_TOUCH_MAX      1024       /* keys per TOUCH (16 KiB)             */
#define UF_TOUCH_SEEN     8192       /* a reader's table of keys reported
                                        in the current window            */

/** The 128-bit key of chunk @p idx of (uri, version, size, chunk size). */
us_key_t uf_chunk_key(const char *uri, const us_object_t *obj, uint64_t idx,
                      size_t chunk_size);

/* proto.c: the checks of every message that crosses a trust boundary */

/** Check a FETCH request; on success *uri_p points into @p msg (not
 *  terminated, req->uri_len bytes), *span_p holds the span asked for
 *  (UF_FETCH_SPAN; else 0, 0) and *raw_p the region bytes (UF_FETCH_RAW,
 *  whose request names no chunk: uri_len 0; else 0, 0).  Whether raw bytes
 *  lie inside the region is the owner's check.  UCACHE_ERR_INVALID else. */
ucache_status_t uf_fetch_req_check(const void *msg, size_t len, uf_fetch_req_t *req,
                                   const char **uri_p, uf_fetch_span_t *span_p,
                                   uf_fetch_raw_t *raw_p);

/** A raw FETCH (UF_FETCH_RAW) of @p len bytes at @p off of the region, in
 *  @p msg (its header, then the uf_fetch_raw_t). */
void uf_fetch_raw_build(void *msg, uint64_t off, uint64_t len);
#define UF_FETCH_RAW_MSG (sizeof(uf_fetch_req_t) + sizeof(uf_fetch_raw_t))

/** A HELLO request: UCACHE_ERR_PROTOCOL if of another protocol version,
 *  UCACHE_ERR_INVALID if malformed (an empty one is protocol 1's). */
ucache_status_t uf_hello_req_check(const void *msg, size_t len);

/** Check a META request; on success *uri_p and *after_p point into @p msg
 *  (req->uri_len and req->after_len bytes, not terminated).
 *  UCACHE_ERR_PROTOCOL for another version, UCACHE_ERR_INVALID else. */
ucache_status_t uf_meta_req_check(const void *msg, size_t len, uf_meta_req_t *req,
                                  const char **uri_p, const char **after_p);

/** Whether @p len bytes at @p etag may be an ETag: shorter than US_ETAG_MAX,
 *  printable ASCII only (it goes into an If-Match header). */
bool uf_meta_etag_ok(const char *etag, size_t len);

/** The metadata of a STAT reply for @p obj (its mtime with @p mtime). */
void uf_meta_stat_rep(const us_object_t *obj, bool mtime, uf_meta_rep_t *rep);

/** A STAT reply (@p meta_len bytes of metadata, @p data_len of data) to a
 *  request with (@p mtime) or without UF_META_MTIME: the object and the
 *  answer's age.  UCACHE_ERR_CORRUPT if malformed. */
ucache_status_t uf_meta_stat_parse(const uf_meta_rep_t *rep, size_t meta_len,
                                   const void *data, size_t data_len, bool mtime,
                                   us_object_t *obj_p);

/** One LIST entry of @p obj at @p uri (its mtime too) appended to @p buf at
 *  *off_p (of @p cap bytes); false if it does not fit. */
bool uf_meta_ent_put(void *buf, size_t cap, size_t *off_p, const char *uri,
                     const us_object_t *obj);

/** Zero the mtimes of the @p count entries in @p buf (@p len bytes, made
 *  by uf_meta_ent_put): a page for a reader that did not ask for them. */
void uf_meta_ents_no_mtime(void *buf, size_t len, uint32_t count);

/** Call @p fn for each object of a LIST reply to a request for @p prefix
 *  after @p after ("": from the first), once the whole page is checked:
 *  count well-formed entries filling @p data_len exactly, each URI beginning
 *  with the prefix, each after the one before.  UCACHE_ERR_CORRUPT if
 *  malformed (fn never called), else the first non-OK of fn.  *last_p (of
 *  US_URI_MAX bytes) gets the last URI. */
ucache_status_t uf_meta_list_parse(const uf_meta_rep_t *rep, size_t meta_len,
                                   const void *data, size_t data_len, const char *prefix,
                                   const char *after, bool mtime, us_origin_list_fn_t fn,
                                   void *arg, char *last_p);

/** Check a TOUCH request: its header, then exactly req->count keys. */
ucache_status_t uf_touch_req_check(const void *msg, size_t len, uf_touch_req_t *req);

/** Check an ADMIN request (exactly one header; any other length, zero
 *  included, is UCACHE_ERR_INVALID). */
ucache_status_t uf_admin_req_check(const void *msg, size_t len, uf_admin_msg_t *req);

/** Check a FETCH reply's shape (not its bytes): @p meta_len bytes of
 *  metadata in @p rep, @p data_len of data, for a chunk of @p want bytes
 *  of which @p want_data bytes of data were asked (0: none).
 *  UCACHE_ERR_CORRUPT if it is not what was asked. */
ucache_status_t uf_fetch_rep_check(const uf_fetch_rep_t *rep, size_t meta_len,
                                   size_t data_len, uint32_t want, size_t want_data);

/** The counters of an ADMIN reply of @p len bytes, tagged or positional
 *  (counters this build does not know are skipped, those it is not sent
 *  left at 0).  UCACHE_ERR_CORRUPT if it is malformed (lengths, a tag 0 or
 *  given twice, reserved bits). */
ucache_status_t uf_admin_rep_parse(const void *buf, size_t len, ucache_stats_t *stats_p);

/** Encode @p st as an ADMIN reply, tagged or positional, into @p buf of
 *  @p cap bytes (UF_ADMIN_REP_MAX is enough); its length, 0 if it does
 *  not fit. */
size_t uf_admin_rep_encode(const ucache_stats_t *st, bool tagged, void *buf, size_t cap);

#endif
