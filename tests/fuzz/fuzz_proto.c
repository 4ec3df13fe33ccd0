/*
 * fuzz_proto.c - the fabric's message checks (fabric/proto.c): FETCH, TOUCH,
 * ADMIN, HELLO and META requests as an owner receives them from any peer,
 * FETCH, ADMIN and META replies (an object's metadata, a listing's page) as a
 * reader receives them.  The first byte picks the
 * parser; the rest is the message, in a buffer of exactly its size (so an
 * over-read is an ASan report).  Properties: what a check accepts is
 * exactly as long as it says, and its numbers are in range; counters taken
 * from an ADMIN reply come back the same through our own encodings.
 */
#include "fabric/fabric.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

/* A listed object: the URI a terminated string beginning with the prefix. */
static ucache_status_t fz_listed(void *arg, const char *uri, const us_object_t *obj)
{
    FZ_CHECK((strncmp(uri, "az://a/", 7) == 0) && (strlen(uri) < US_URI_MAX));
    FZ_CHECK(strlen(obj->etag) < US_ETAG_MAX);
    (*(uint32_t *)arg)++;
    return UCACHE_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uf_fetch_req_t freq;
    uf_meta_req_t mreq;
    uf_meta_rep_t mrep;
    us_object_t obj;
    char last[US_URI_MAX];
    const char *after;
    uint32_t listed;
    uf_fetch_span_t span;
    uf_fetch_raw_t raw;
    uf_touch_req_t treq;
    uf_admin_msg_t areq;
    uf_fetch_rep_t rep;
    ucache_stats_t st, st2;
    _Alignas(8) uint8_t again[UF_ADMIN_REP_MAX];
    const char *uri;
    size_t len;
    unsigned k;
    uint8_t *msg;
    uint32_t want;
    unsigned flags;

    fz_quiet();
    if (size < 1) {
        return 0;
    }
    msg = malloc(size - 1);
    memcpy(msg, data + 1, size - 1);
    size--;
    switch (data[0] % 9) {
    case 0:
        if ((uf_fetch_req_check((size > 0) ? msg : NULL, size, &freq, &uri, &span, &raw) ==
             UCACHE_OK) && (freq.flags & UF_FETCH_RAW)) {
            FZ_CHECK((freq.flags == UF_FETCH_RAW) && (size == UF_FETCH_RAW_MSG));
            FZ_CHECK((freq.uri_len == 0) && (span.len == 0));
            FZ_CHECK((raw.len > 0) && (raw.len <= UF_FETCH_RAW_MAX));
            FZ_CHECK(raw.off + raw.len > raw.off);   /* no wrap */
        } else if (uf_fetch_req_check((size > 0) ? msg : NULL, size, &freq, &uri, &span,
                                      &raw) == UCACHE_OK) {
            FZ_CHECK(uri == (const char *)msg + sizeof(freq));
            FZ_CHECK(raw.len == 0);
            FZ_CHECK(sizeof(freq) + freq.uri_len +
                     ((freq.flags & UF_FETCH_SPAN) ? sizeof(span) : 0) == size);
            FZ_CHECK(!(freq.flags & UF_FETCH_SPAN) ||
                     ((freq.flags & UF_FETCH_DATA) && (span.len > 0) &&
                      (span.off % US_SEGMENT == 0) &&
                      ((uint64_t)span.off + span.len <= freq.chunk_size)));
            FZ_CHECK((freq.uri_len > 0) && (freq.uri_len < US_URI_MAX));
            FZ_CHECK(memchr(uri, '\0', freq.uri_len) == NULL);
            FZ_CHECK(freq.chunk_idx * (uint64_t)freq.chunk_size < freq.obj_size);
        }
        break;
    case 1:
        if (uf_touch_req_check((size > 0) ? msg : NULL, size, &treq) == UCACHE_OK) {
            FZ_CHECK(size == sizeof(treq) + (size_t)treq.count * sizeof(us_key_t));
            FZ_CHECK(((treq.count > 0) || (treq.hits > 0)) && (treq.count <= UF_TOUCH_MAX));
            FZ_CHECK((treq.weight > 0) && (treq.weight <= 1024));
        }
        break;
    case 2:
        if (uf_admin_req_check((size > 0) ? msg : NULL, size, &areq) == UCACHE_OK) {
            FZ_CHECK((size == sizeof(areq)) &&
                     ((areq.count & ~UF_ADMIN_TAGGED) <= UF_ADMIN_UNDRAIN));
        }
        break;
    case 3:   /* a reply's metadata (as received), then data length, want, data wanted */
        if (size < sizeof(rep) + 10) {
            break;
        }
        memcpy(&rep, msg, sizeof(rep));
        memcpy(&want, msg + sizeof(rep), 4);
        flags = msg[sizeof(rep) + 4];
        if (uf_fetch_rep_check(&rep, msg[sizeof(rep) + 5] ? sizeof(rep) : msg[sizeof(rep) + 6],
                               (size_t)msg[sizeof(rep) + 7] << 8 | msg[sizeof(rep) + 8], want,
                               (size_t)flags << 8) == UCACHE_OK) {
            FZ_CHECK(rep.length == want);
            FZ_CHECK(((size_t)msg[sizeof(rep) + 7] << 8 | msg[sizeof(rep) + 8]) ==
                     (size_t)flags << 8);
            FZ_CHECK((rep.how >= UF_HOW_HIT) && (rep.how <= UF_HOW_NVME));
        }
        break;
    case 5:   /* a HELLO request: empty (protocol 1) or exactly its header */
        if (uf_hello_req_check((size > 0) ? msg : NULL, size) == UCACHE_OK) {
            FZ_CHECK((size == 0) || (size == sizeof(uf_hello_req_t)));
        }
        break;
    case 6:   /* a META request */
        if (uf_meta_req_check((size > 0) ? msg : NULL, size, &mreq, &uri, &after) == UCACHE_OK) {
            FZ_CHECK(size == sizeof(mreq) + mreq.uri_len + mreq.after_len);
            FZ_CHECK((mreq.uri_len > 0) && (mreq.uri_len < US_URI_MAX) &&
                     (mreq.after_len < US_URI_MAX));
            FZ_CHECK((uri == (const char *)msg + sizeof(mreq)) && (after == uri + mreq.uri_len));
            FZ_CHECK(memchr(uri, '\0', (size_t)mreq.uri_len + mreq.after_len) == NULL);
            FZ_CHECK((UF_META_OP(mreq.op) == UF_META_STAT) ?
                     ((mreq.max == 0) && (mreq.after_len == 0)) :
                     ((UF_META_OP(mreq.op) == UF_META_LIST) && (mreq.max >= 1) &&
                      (mreq.max <= UF_META_PAGE_MAX)));
        }
        break;
    case 7:   /* a META STAT reply: its metadata, then the ETag (mtimes asked
               * for when the input's length is odd) */
        if (size < sizeof(mrep)) {
            break;
        }
        memcpy(&mrep, msg, sizeof(mrep));
        if (uf_meta_stat_parse(&mrep, sizeof(mrep), msg + sizeof(mrep), size - sizeof(mrep),
                               size & 1, &obj) == UCACHE_OK) {
            FZ_CHECK((size & 1) || (obj.mtime == 0));
            FZ_CHECK(strlen(obj.etag) == size - sizeof(mrep));
            FZ_CHECK(strpbrk(obj.etag, "\r\n") == NULL);
        }
        break;
    case 8:   /* a META LIST reply: its metadata, then the page (prefix "az://a/";
               * mtimes asked for when the input's length is odd) */
        if (size < sizeof(mrep)) {
            break;
        }
        memcpy(&mrep, msg, sizeof(mrep));
        listed = 0;
        if (uf_meta_list_parse(&mrep, sizeof(mrep), msg + sizeof(mrep), size - sizeof(mrep),
                               "az://a/", "", size & 1, fz_listed, &listed, last) == UCACHE_OK) {
            FZ_CHECK(listed == mrep.count);
            FZ_CHECK((listed == 0) || (strncmp(last, "az://a/", 7) == 0));
        } else {
            FZ_CHECK(listed == 0 || listed == mrep.count); /* all or nothing */
        }
        break;
    default:
        if (uf_admin_rep_parse((size > 0) ? msg : NULL, size, &st) == UCACHE_OK) {
            FZ_CHECK((size - sizeof(uf_admin_msg_t)) % sizeof(uint64_t) == 0);
            /* what was taken survives our own encoding, both ways */
            for (k = 0; k < 2; k++) {
                len = uf_admin_rep_encode(&st, k == 0, again, sizeof(again));
                FZ_CHECK(len > 0);
                FZ_CHECK(uf_admin_rep_parse(again, len, &st2) == UCACHE_OK);
                FZ_CHECK((k == 1) || (memcmp(&st, &st2, sizeof(st)) == 0));
            }
        }
        break;
    }
    free(msg);
    return 0;
}
