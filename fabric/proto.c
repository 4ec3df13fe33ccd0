/*
 * proto.c - the checks of every fabric message that crosses a trust
 * boundary (fabric.h's wire protocol): FETCH, TOUCH and ADMIN requests as an
 * owner receives them, FETCH and ADMIN replies as a reader receives them.
 * Each one checks lengths before it reads and never trusts a count; each
 * has a fuzz target (tests/fuzz/fuzz_proto.c).
 */
#include "fabric/fabric.h"

#include <string.h>

ucache_status_t uf_fetch_req_check(const void *msg, size_t len, uf_fetch_req_t *req,
                                   const char **uri_p)
{
    if (len < sizeof(*req)) {
        return UCACHE_ERR_INVALID;
    }
    memcpy(req, msg, sizeof(*req));
    if ((req->magic != UF_PROTO_MAGIC) || (req->version != UF_PROTO_VERSION) ||
        (req->flags & ~(UF_FETCH_DATA | UF_FETCH_PIN | UF_FETCH_UNPIN | UF_FETCH_EVICT)) ||
        (__builtin_popcount(req->flags & (UF_FETCH_PIN | UF_FETCH_UNPIN |
                                          UF_FETCH_EVICT)) > 1) ||
        ((req->flags & UF_FETCH_EVICT) && (req->flags & UF_FETCH_DATA)) ||
        (req->uri_len == 0) ||
        (req->uri_len >= US_URI_MAX) || (len != sizeof(*req) + req->uri_len) ||
        (req->chunk_size < 4096) || (req->chunk_size > US_MAX_PAYLOAD) ||
        (req->obj_size == 0) || (req->chunk_idx >= req->obj_size / req->chunk_size +
                                 (req->obj_size % req->chunk_size != 0)) ||
        (memchr((const char *)msg + sizeof(*req), '\0', req->uri_len) != NULL)) {
        return UCACHE_ERR_INVALID;
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
    if ((req->magic != UF_PROTO_MAGIC) || (req->version != UF_PROTO_VERSION) ||
        (req->count == 0) || (req->count > UF_TOUCH_MAX) || (req->weight == 0) ||
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
    if ((req->magic != UF_PROTO_MAGIC) || (req->version != UF_PROTO_VERSION) ||
        (req->count > UF_ADMIN_UNDRAIN)) {
        return UCACHE_ERR_INVALID;
    }
    return UCACHE_OK;
}

ucache_status_t uf_fetch_rep_check(const uf_fetch_rep_t *rep, size_t meta_len,
                                   size_t data_len, uint32_t want, unsigned flags)
{
    if ((meta_len != sizeof(*rep)) || (rep->length != want) ||
        ((flags & UF_FETCH_DATA) && (data_len != want)) ||
        (!(flags & UF_FETCH_DATA) && (data_len != 0)) ||
        (rep->how < UF_HOW_HIT) || (rep->how > UF_HOW_COALESCED)) {
        return UCACHE_ERR_CORRUPT;
    }
    return UCACHE_OK;
}

ucache_status_t uf_admin_rep_parse(const void *buf, size_t len, ucache_stats_t *stats_p)
{
    uf_admin_msg_t hdr;
    size_t n;

    if ((buf == NULL) || (len < sizeof(hdr))) {
        return UCACHE_ERR_CORRUPT;
    }
    memcpy(&hdr, buf, sizeof(hdr));
    if ((hdr.magic != UF_PROTO_MAGIC) || (hdr.version != UF_PROTO_VERSION) ||
        (len != sizeof(hdr) + (size_t)hdr.count * sizeof(uint64_t))) {
        return UCACHE_ERR_CORRUPT;
    }
    memset(stats_p, 0, sizeof(*stats_p));
    n = (hdr.count < sizeof(*stats_p) / sizeof(uint64_t)) ? hdr.count :
        sizeof(*stats_p) / sizeof(uint64_t);  /* a newer node sends more */
    memcpy(stats_p, (const char *)buf + sizeof(hdr), n * sizeof(uint64_t));
    return UCACHE_OK;
}
