/*
 * proto.c - the checks of every fabric message that crosses a trust
 * boundary (proto.h's wire protocol): FETCH, TOUCH and ADMIN requests as an
 * owner receives them, FETCH and ADMIN replies as a reader receives them.
 * Each one checks lengths before it reads and never trusts a count; each
 * has a fuzz target (tests/fuzz/fuzz_proto.c).
 */
#include "fabric/proto.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/*
 * Every counter of ucache_stats_t and its tag on the wire (tagged ADMIN
 * replies).  A tag is never reused: a new counter takes the next number,
 * a counter that goes takes its tag with it.  Tags 1 .. UF_STATS_POSITIONAL
 * are also the order of a positional reply.
 */
#define UF_STATS_FIELDS(X) \
    X( 1, reads) \
    X( 2, read_bytes) \
    X( 3, mapped_reads) \
    X( 4, get_reads) \
    X( 5, am_reads) \
    X( 6, rpcs) \
    X( 7, rpcs_served) \
    X( 8, timeouts) \
    X( 9, peer_failures) \
    X(10, bad_input) \
    X(11, eps_open) \
    X(12, eps_evicted) \
    X(13, chunk_reads) \
    X(14, chunk_hits) \
    X(15, chunk_misses) \
    X(16, fetch_requests) \
    X(17, location_hits) \
    X(18, origin_direct) \
    X(19, verify_retries) \
    X(20, failovers) \
    X(21, bad_replies) \
    X(22, stale_objects) \
    X(23, bytes_returned) \
    X(24, hits_sampled) \
    X(25, fetches_served) \
    X(26, fills) \
    X(27, fill_bytes) \
    X(28, fills_coalesced) \
    X(29, fill_errors) \
    X(30, bad_requests) \
    X(31, hits_reported) \
    X(32, chunks_cached) \
    X(33, bytes_cached) \
    X(34, origin_reads) \
    X(35, origin_bytes) \
    X(36, view_epoch) \
    X(37, view_nodes) \
    X(38, mem_bytes) \
    X(39, bytes_used) \
    X(40, bytes_pinned) \
    X(41, evictions) \
    X(42, fetch_hits) \
    X(43, origin_errors) \
    X(44, fill_us_bucket[0]) \
    X(45, fill_us_bucket[1]) \
    X(46, fill_us_bucket[2]) \
    X(47, fill_us_bucket[3]) \
    X(48, fill_us_bucket[4]) \
    X(49, fill_us_bucket[5]) \
    X(50, fill_us_bucket[6]) \
    X(51, fill_us_bucket[7]) \
    X(52, fill_us_bucket[8]) \
    X(53, fill_us_bucket[9]) \
    X(54, fill_us_bucket[10]) \
    X(55, fill_us_bucket[11]) \
    X(56, fill_us_bucket[12]) \
    X(57, fill_us_bucket[13]) \
    X(58, fill_us_bucket[14]) \
    X(59, fill_us_bucket[15]) \
    X(60, fill_us_sum) \
    X(61, draining) \
    X(62, fills_refused) \
    X(63, fills_busy) \
    X(64, owner_refusals) \
    X(65, auth_failures) \
    X(66, hits_unreported) \
    X(67, chunks_windowed) \
    X(68, moved_refreshes) \
    X(69, fills_moved) \
    X(70, origin_meta) \
    X(71, meta_owner) \
    X(72, meta_direct) \
    X(73, meta_pinned) \
    X(74, meta_served) \
    X(75, mem_usable) \
    X(76, mem_commit_ns) \
    X(77, member_lease_ms) \
    X(78, nvme_devices) \
    X(79, nvme_offline) \
    X(80, nvme_bytes) \
    X(81, nvme_used) \
    X(82, nvme_chunks) \
    X(83, nvme_hits) \
    X(84, nvme_demotions) \
    X(85, nvme_promotions) \
    X(86, nvme_staged) \
    X(87, nvme_errors) \
    X(88, nvme_corrupt) \
    X(89, nvme_read_bytes) \
    X(90, nvme_read_ns) \
    X(91, nvme_rebuild_ns) \
    X(92, chunk_nvme) \
    X(93, nvme_pinned) \
    X(94, owner_restarts)

static const struct {
    uint32_t tag;
    uint32_t off;
} uf_stat_tags[] = {
#define UF_STAT_TAG(_tag, _field) { _tag, (uint32_t)offsetof(ucache_stats_t, _field) },
    UF_STATS_FIELDS(UF_STAT_TAG)
#undef UF_STAT_TAG
};

#define UF_NTAGS (sizeof(uf_stat_tags) / sizeof(uf_stat_tags[0]))

_Static_assert(UF_NTAGS == sizeof(ucache_stats_t) / sizeof(uint64_t),
               "every counter of ucache_stats_t has a tag in UF_STATS_FIELDS");
_Static_assert(UF_STATS_POSITIONAL <= UF_NTAGS, "positional replies are frozen");

void uf_fetch_raw_build(void *msg, uint64_t off, uint64_t len)
{
    uf_fetch_req_t req = { .magic = UF_PROTO_MAGIC, .version = UF_PROTO_VERSION,
                           .flags = UF_FETCH_RAW };
    uf_fetch_raw_t raw = { .off = off, .len = len };

    memcpy(msg, &req, sizeof(req));
    memcpy((char *)msg + sizeof(req), &raw, sizeof(raw));
}

/* A request header's magic and version: UCACHE_ERR_INVALID if it is not
 * ours at all, UCACHE_ERR_PROTOCOL if it is of another protocol version
 * (a node or reader of another release: refused, and said so). */
static ucache_status_t uf_proto_hdr(uint32_t magic, uint16_t version)
{
    if (magic != UF_PROTO_MAGIC) {
        return UCACHE_ERR_INVALID;
    }
    return (version == UF_PROTO_VERSION) ? UCACHE_OK : UCACHE_ERR_PROTOCOL;
}

/* A raw FETCH: the header names nothing else, the bytes are a sane count. */
static ucache_status_t uf_fetch_raw_check(const void *msg, size_t len,
                                          const uf_fetch_req_t *req, uf_fetch_raw_t *raw)
{
    if ((len != UF_FETCH_RAW_MSG) || (req->flags != UF_FETCH_RAW) ||
        (req->uri_len != 0) || (req->key_hi != 0) || (req->key_lo != 0) ||
        (req->obj_size != 0) || (req->obj_version != 0) || (req->chunk_idx != 0) ||
        (req->chunk_size != 0) || (req->reserved != 0)) {
        return UCACHE_ERR_INVALID;
    }
    memcpy(raw, (const char *)msg + sizeof(*req), sizeof(*raw));
    if ((raw->len == 0) || (raw->len > UF_FETCH_RAW_MAX) ||
        (raw->off > UINT64_MAX - raw->len)) {
        memset(raw, 0, sizeof(*raw));
        return UCACHE_ERR_INVALID;
    }
    return UCACHE_OK;
}

ucache_status_t uf_fetch_req_check(const void *msg, size_t len, uf_fetch_req_t *req,
                                   const char **uri_p, uf_fetch_span_t *span_p,
                                   uf_fetch_raw_t *raw_p)
{
    ucache_status_t status;
    size_t tail;

    memset(span_p, 0, sizeof(*span_p));
    memset(raw_p, 0, sizeof(*raw_p));
    if ((msg == NULL) || (len < sizeof(*req))) {
        return UCACHE_ERR_INVALID;
    }
    memcpy(req, msg, sizeof(*req));
    status = uf_proto_hdr(req->magic, req->version);
    if (status != UCACHE_OK) {
        return status;
    }
    if (req->flags & UF_FETCH_RAW) {
        *uri_p = (const char *)msg + sizeof(*req);
        return uf_fetch_raw_check(msg, len, req, raw_p);
    }
    tail = (req->flags & UF_FETCH_SPAN) ? sizeof(*span_p) : 0;
    if ((req->flags & ~(UF_FETCH_DATA | UF_FETCH_PIN | UF_FETCH_UNPIN | UF_FETCH_EVICT |
                        UF_FETCH_NVME |
                        UF_FETCH_SPAN)) ||
        ((req->flags & UF_FETCH_SPAN) && !(req->flags & UF_FETCH_DATA)) ||
        (__builtin_popcount(req->flags & (UF_FETCH_PIN | UF_FETCH_UNPIN |
                                          UF_FETCH_EVICT)) > 1) ||
        ((req->flags & UF_FETCH_EVICT) && (req->flags & UF_FETCH_DATA)) ||
        (req->uri_len == 0) ||
        (req->uri_len >= US_URI_MAX) || (len != sizeof(*req) + req->uri_len + tail) ||
        (req->chunk_size < 4096) || (req->chunk_size > US_MAX_PAYLOAD) ||
        (req->obj_size == 0) || (req->chunk_idx >= req->obj_size / req->chunk_size +
                                 (req->obj_size % req->chunk_size != 0)) ||
        (memchr((const char *)msg + sizeof(*req), '\0', req->uri_len) != NULL)) {
        return UCACHE_ERR_INVALID;
    }
    if (tail > 0) {
        memcpy(span_p, (const char *)msg + sizeof(*req) + req->uri_len, sizeof(*span_p));
        if ((span_p->len == 0) || (span_p->off % US_SEGMENT != 0) ||
            ((uint64_t)span_p->off + span_p->len > req->chunk_size)) {
            return UCACHE_ERR_INVALID;
        }
    }
    *uri_p = (const char *)msg + sizeof(*req);
    return UCACHE_OK;
}

ucache_status_t uf_touch_req_check(const void *msg, size_t len, uf_touch_req_t *req)
{
    if ((msg == NULL) || (len < sizeof(*req))) {
        return UCACHE_ERR_INVALID;
    }
    memcpy(req, msg, sizeof(*req));
    if (uf_proto_hdr(req->magic, req->version) != UCACHE_OK) {
        return uf_proto_hdr(req->magic, req->version);
    }
    if (((req->count == 0) && (req->hits == 0)) || (req->count > UF_TOUCH_MAX) ||
        (req->weight == 0) ||
        (req->weight > 1024) || (len != sizeof(*req) + (size_t)req->count * sizeof(us_key_t))) {
        return UCACHE_ERR_INVALID;
    }
    return UCACHE_OK;
}

ucache_status_t uf_admin_req_check(const void *msg, size_t len, uf_admin_msg_t *req)
{
    memset(req, 0, sizeof(*req));
    if ((msg == NULL) || (len != sizeof(*req))) {
        return UCACHE_ERR_INVALID;   /* a zero-length request included */
    }
    memcpy(req, msg, sizeof(*req));
    if (uf_proto_hdr(req->magic, req->version) != UCACHE_OK) {
        return uf_proto_hdr(req->magic, req->version);
    }
    if ((req->count & ~UF_ADMIN_TAGGED) > UF_ADMIN_UNDRAIN) {
        return UCACHE_ERR_INVALID;
    }
    return UCACHE_OK;
}

ucache_status_t uf_hello_req_check(const void *msg, size_t len)
{
    uf_hello_req_t req;

    if (len == 0) {
        return UCACHE_OK;   /* a reader of before versioned HELLOs: protocol 1 */
    }
    if ((msg == NULL) || (len != sizeof(req))) {
        return UCACHE_ERR_INVALID;
    }
    memcpy(&req, msg, sizeof(req));
    return uf_proto_hdr(req.magic, req.version);
}

ucache_status_t uf_meta_req_check(const void *msg, size_t len, uf_meta_req_t *req,
                                  const char **uri_p, const char **after_p)
{
    const char *b = msg;

    memset(req, 0, sizeof(*req));
    if ((msg == NULL) || (len < sizeof(*req))) {
        return UCACHE_ERR_INVALID;
    }
    memcpy(req, msg, sizeof(*req));
    if (uf_proto_hdr(req->magic, req->version) != UCACHE_OK) {
        return uf_proto_hdr(req->magic, req->version);
    }
    if ((req->uri_len == 0) || (req->uri_len >= US_URI_MAX) ||
        (req->after_len >= US_URI_MAX) ||
        (len != sizeof(*req) + (size_t)req->uri_len + req->after_len) ||
        (memchr(b + sizeof(*req), '\0', (size_t)req->uri_len + req->after_len) != NULL)) {
        return UCACHE_ERR_INVALID;
    }
    if ((UF_META_OP(req->op) == UF_META_STAT) ? ((req->max != 0) || (req->after_len != 0)) :
        ((UF_META_OP(req->op) != UF_META_LIST) || (req->max == 0) ||
         (req->max > UF_META_PAGE_MAX) || (req->stale != 0))) {
        return UCACHE_ERR_INVALID;
    }
    *uri_p   = b + sizeof(*req);
    *after_p = b + sizeof(*req) + req->uri_len;
    return UCACHE_OK;
}

bool uf_meta_etag_ok(const char *etag, size_t len)
{
    size_t i;

    if (len >= US_ETAG_MAX) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if ((etag[i] < 0x20) || (etag[i] > 0x7e)) {
            return false;
        }
    }
    return true;
}

static uint32_t uf_mtime32(uint64_t mtime)
{
    return (mtime > UINT32_MAX) ? 0 : (uint32_t)mtime;
}

void uf_meta_stat_rep(const us_object_t *obj, bool mtime, uf_meta_rep_t *rep)
{
    rep->size     = obj->size;
    rep->version  = obj->version;
    rep->count    = mtime ? uf_mtime32(obj->mtime) : 0;
    rep->etag_len = (uint16_t)strnlen(obj->etag, US_ETAG_MAX - 1);
    if (!uf_meta_etag_ok(obj->etag, rep->etag_len)) {
        rep->etag_len = 0; /* the reader looks it up, as an owner filling does */
    }
}

ucache_status_t uf_meta_stat_parse(const uf_meta_rep_t *rep, size_t meta_len,
                                   const void *data, size_t data_len, bool mtime,
                                   us_object_t *obj_p)
{
    if ((meta_len != sizeof(*rep)) || (!mtime && (rep->count != 0)) || (rep->more != 0) ||
        (rep->reserved != 0) || (data_len != rep->etag_len) ||
        ((data_len > 0) && (data == NULL)) || !uf_meta_etag_ok(data, data_len)) {
        return UCACHE_ERR_CORRUPT;
    }
    memset(obj_p, 0, sizeof(*obj_p));
    obj_p->size    = rep->size;
    obj_p->version = rep->version;
    obj_p->mtime   = mtime ? rep->count : 0;
    memcpy(obj_p->etag, data, data_len);
    obj_p->etag[data_len] = '\0';
    return UCACHE_OK;
}

bool uf_meta_ent_put(void *buf, size_t cap, size_t *off_p, const char *uri,
                     const us_object_t *obj)
{
    size_t ulen = strlen(uri), elen = strnlen(obj->etag, US_ETAG_MAX - 1);
    uf_meta_ent_t e = { obj->size, obj->version, (uint16_t)ulen, (uint16_t)elen,
                        uf_mtime32(obj->mtime) };
    char *b = buf;

    if ((ulen == 0) || (ulen >= US_URI_MAX) || !uf_meta_etag_ok(obj->etag, elen) ||
        (*off_p > cap) || (cap - *off_p < sizeof(e) + ulen + elen)) {
        return false;
    }
    memcpy(b + *off_p, &e, sizeof(e));
    memcpy(b + *off_p + sizeof(e), uri, ulen);
    memcpy(b + *off_p + sizeof(e) + ulen, obj->etag, elen);
    *off_p += sizeof(e) + ulen + elen;
    return true;
}

void uf_meta_ents_no_mtime(void *buf, size_t len, uint32_t count)
{
    char *b = buf;
    uf_meta_ent_t e;
    size_t off = 0;
    uint32_t i;

    for (i = 0; (i < count) && (len - off >= sizeof(e)); i++) {
        memcpy(&e, b + off, sizeof(e));
        e.reserved = 0;
        memcpy(b + off, &e, sizeof(e));
        off += sizeof(e) + e.uri_len + e.etag_len;
        if (off > len) {
            break;
        }
    }
}

/* The entry at @p off of a LIST reply's @p len bytes, checked: its URI
 * (terminated, in @p uri) after @p prev and beginning with @p prefix, its
 * object; the next entry's offset, or 0 if malformed. */
static size_t uf_meta_ent_get(const char *b, size_t len, size_t off, const char *prefix,
                              const char *prev, bool mtime, char *uri, us_object_t *obj)
{
    uf_meta_ent_t e;

    if (len - off < sizeof(e)) {
        return 0;
    }
    memcpy(&e, b + off, sizeof(e));
    off += sizeof(e);
    if ((e.uri_len == 0) || (e.uri_len >= US_URI_MAX) || (!mtime && (e.reserved != 0)) ||
        ((size_t)e.uri_len + e.etag_len > len - off) ||
        (memchr(b + off, '\0', e.uri_len) != NULL) ||
        !uf_meta_etag_ok(b + off + e.uri_len, e.etag_len)) {
        return 0;
    }
    memcpy(uri, b + off, e.uri_len);
    uri[e.uri_len] = '\0';
    if ((strncmp(uri, prefix, strlen(prefix)) != 0) || (strcmp(uri, prev) <= 0)) {
        return 0;
    }
    memset(obj, 0, sizeof(*obj));
    obj->size    = e.size;
    obj->version = e.version;
    obj->mtime   = e.reserved;
    memcpy(obj->etag, b + off + e.uri_len, e.etag_len);
    obj->etag[e.etag_len] = '\0';
    return off + e.uri_len + e.etag_len;
}

ucache_status_t uf_meta_list_parse(const uf_meta_rep_t *rep, size_t meta_len,
                                   const void *data, size_t data_len, const char *prefix,
                                   const char *after, bool mtime, us_origin_list_fn_t fn,
                                   void *arg, char *last_p)
{
    char uri[US_URI_MAX], prev[US_URI_MAX];
    ucache_status_t status = UCACHE_OK;
    size_t off = 0, next;
    us_object_t obj;
    uint32_t i;
    int pass;

    if ((meta_len != sizeof(*rep)) || (rep->count > UF_META_PAGE_MAX) || (rep->more > 1) ||
        (rep->reserved != 0) || (rep->etag_len != 0) || (data_len > UF_META_PAGE_BYTES) ||
        ((data_len > 0) && (data == NULL)) || ((rep->count == 0) && rep->more)) {
        return UCACHE_ERR_CORRUPT;
    }
    for (pass = 0; pass < 2; pass++) { /* check it all, then hand it over */
        snprintf(prev, sizeof(prev), "%s", after);
        for (i = 0, off = 0; i < rep->count; i++) {
            next = uf_meta_ent_get(data, data_len, off, prefix, prev, mtime, uri, &obj);
            if (next == 0) {
                return UCACHE_ERR_CORRUPT;
            }
            off = next;
            memcpy(prev, uri, strlen(uri) + 1);
            if ((pass == 1) && (status == UCACHE_OK)) {
                status = fn(arg, uri, &obj);
            }
        }
        if (off != data_len) {
            return UCACHE_ERR_CORRUPT;
        }
    }
    memcpy(last_p, prev, strlen(prev) + 1);
    return status;
}

ucache_status_t uf_fetch_rep_check(const uf_fetch_rep_t *rep, size_t meta_len,
                                   size_t data_len, uint32_t want, size_t want_data)
{
    if ((meta_len != sizeof(*rep)) || (rep->length != want) || (data_len != want_data) ||
        (rep->how < UF_HOW_HIT) || (rep->how > UF_HOW_NVME)) {
        return UCACHE_ERR_CORRUPT;
    }
    return UCACHE_OK;
}

/* The index of @p tag in uf_stat_tags, UF_NTAGS if unknown. */
static size_t uf_stat_index(uint32_t tag)
{
    size_t i;

    for (i = 0; i < UF_NTAGS; i++) {
        if (uf_stat_tags[i].tag == tag) {
            return i;
        }
    }
    return UF_NTAGS;
}

static void uf_stat_set(ucache_stats_t *st, size_t i, uint64_t v)
{
    memcpy((char *)st + uf_stat_tags[i].off, &v, sizeof(v));
}

ucache_status_t uf_admin_rep_parse(const void *buf, size_t len, ucache_stats_t *stats_p)
{
    bool seen[UF_NTAGS] = { false };
    uf_admin_msg_t hdr;
    uf_stat_tv_t tv;
    size_t i, k;
    uint64_t v;

    if ((buf == NULL) || (len < sizeof(hdr))) {
        return UCACHE_ERR_CORRUPT;
    }
    memcpy(&hdr, buf, sizeof(hdr));
    memset(stats_p, 0, sizeof(*stats_p));
    if ((hdr.magic == UF_STATS_MAGIC) && (hdr.version == UF_STATS_VERSION) &&
        (len == sizeof(hdr) + (size_t)hdr.count * sizeof(tv))) {
        for (i = 0; i < hdr.count; i++) {
            memcpy(&tv, (const char *)buf + sizeof(hdr) + i * sizeof(tv), sizeof(tv));
            if ((tv.tag == 0) || (tv.reserved != 0)) {
                return UCACHE_ERR_CORRUPT;
            }
            k = uf_stat_index(tv.tag);
            if (k == UF_NTAGS) {
                continue;           /* a newer node's counter */
            }
            if (seen[k]) {
                return UCACHE_ERR_CORRUPT;
            }
            seen[k] = true;
            uf_stat_set(stats_p, k, tv.value);
        }
        return UCACHE_OK;
    }
    if ((hdr.magic == UF_PROTO_MAGIC) && (hdr.version == UF_PROTO_VERSION) &&
        (len == sizeof(hdr) + (size_t)hdr.count * sizeof(uint64_t))) {
        for (i = 0; i < hdr.count; i++) { /* tags 1, 2, ... */
            k = uf_stat_index((uint32_t)(i + 1));
            if (k < UF_NTAGS) {
                memcpy(&v, (const char *)buf + sizeof(hdr) + i * sizeof(v), sizeof(v));
                uf_stat_set(stats_p, k, v);
            }
        }
        return UCACHE_OK;
    }
    return UCACHE_ERR_CORRUPT;
}

size_t uf_admin_rep_encode(const ucache_stats_t *st, bool tagged, void *buf, size_t cap)
{
    uf_admin_msg_t hdr;
    uf_stat_tv_t tv = { 0 };
    size_t i, k, n, len;
    uint64_t v;
    char *p = buf;

    n   = tagged ? UF_NTAGS : UF_STATS_POSITIONAL;
    len = sizeof(hdr) + n * (tagged ? sizeof(tv) : sizeof(v));
    if (len > cap) {
        return 0;
    }
    hdr.magic   = tagged ? UF_STATS_MAGIC : UF_PROTO_MAGIC;
    hdr.version = (uint16_t)(tagged ? UF_STATS_VERSION : UF_PROTO_VERSION);
    hdr.count   = (uint16_t)n;
    memcpy(p, &hdr, sizeof(hdr));
    p += sizeof(hdr);
    for (i = 0; i < n; i++) {
        k = tagged ? i : uf_stat_index((uint32_t)(i + 1));
        v = 0;
        if (k < UF_NTAGS) {
            memcpy(&v, (const char *)st + uf_stat_tags[k].off, sizeof(v));
        }
        if (tagged) {
            tv.tag   = uf_stat_tags[k].tag;
            tv.value = v;
            memcpy(p, &tv, sizeof(tv));
            p += sizeof(tv);
        } else {
            memcpy(p, &v, sizeof(v));
            p += sizeof(v);
        }
    }
    return len;
}
