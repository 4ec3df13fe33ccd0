/*
 * test_proto.c - the fabric's wire checks and encodings (fabric/proto.c):
 * the ADMIN counters both ways - tagged (any two versions talk: unknown
 * tags skipped, missing ones 0) and positional (a node of before tags) -
 * and every malformed reply refused; ADMIN requests with the tagged flag;
 * raw FETCHes of region bytes (the one active-message read besides chunk
 * FETCHes).
 */
#include "fabric/proto.h"
#include "tests/common.h"

/* Counters all different and nonzero, so a misplaced one shows. */
static void stats_fill(ucache_stats_t *st)
{
    uint64_t *v = (uint64_t *)st;
    size_t i;

    for (i = 0; i < sizeof(*st) / sizeof(uint64_t); i++) {
        v[i] = 1000 + 7 * i;
    }
}

static void test_admin_rep_roundtrip(void)
{
    _Alignas(8) uint8_t buf[UF_ADMIN_REP_MAX];
    ucache_stats_t st, got;
    size_t len;

    stats_fill(&st);
    len = uf_admin_rep_encode(&st, true, buf, sizeof(buf));
    CU_ASSERT_EQUAL(len, sizeof(uf_admin_msg_t) +
                         sizeof(ucache_stats_t) / sizeof(uint64_t) * sizeof(uf_stat_tv_t));
    CU_ASSERT_EQUAL(uf_admin_rep_parse(buf, len, &got), UCACHE_OK);
    CU_ASSERT_EQUAL(memcmp(&st, &got, sizeof(st)), 0);

    len = uf_admin_rep_encode(&st, false, buf, sizeof(buf));
    CU_ASSERT_EQUAL(len, sizeof(uf_admin_msg_t) + UF_STATS_POSITIONAL * sizeof(uint64_t));
    CU_ASSERT_EQUAL(uf_admin_rep_parse(buf, len, &got), UCACHE_OK);
    /* the first 65 are positional; a later counter is 0 in that form */
    CU_ASSERT_EQUAL(memcmp(&st, &got, UF_STATS_POSITIONAL * sizeof(uint64_t)), 0);
    CU_ASSERT_EQUAL(got.hits_unreported, 0);
    CU_ASSERT_EQUAL(uf_admin_rep_encode(&st, true, buf, 100), 0); /* does not fit */
}

/* A newer node: a tag this build does not know, some it knows missing, in
 * any order. */
static void test_admin_rep_newer_node(void)
{
    struct {
        uf_admin_msg_t hdr;
        uf_stat_tv_t   tv[3];
    } rep = { { UF_STATS_MAGIC, UF_STATS_VERSION, 3 },
              { { 65, 0, 9 }, { 9999, 0, 123 }, { 25, 0, 4242 } } };
    ucache_stats_t got;

    memset(&got, 0xff, sizeof(got));
    CU_ASSERT_EQUAL(uf_admin_rep_parse(&rep, sizeof(rep), &got), UCACHE_OK);
    CU_ASSERT_EQUAL(got.auth_failures, 9);
    CU_ASSERT_EQUAL(got.fetches_served, 4242);
    CU_ASSERT_EQUAL(got.reads, 0);
    CU_ASSERT_EQUAL(got.fills, 0);
}

/* An older node, positional: fewer counters than this build knows. */
static void test_admin_rep_older_node(void)
{
    struct {
        uf_admin_msg_t hdr;
        uint64_t       v[43];
    } rep;
    ucache_stats_t got;

    memset(&rep, 0, sizeof(rep));
    rep.hdr = (uf_admin_msg_t){ UF_PROTO_MAGIC, UF_PROTO_VERSION, 43 };
    rep.v[0]  = 5;      /* reads */
    rep.v[24] = 4242;   /* fetches_served */
    rep.v[42] = 3;      /* origin_errors, tag 43 */
    CU_ASSERT_EQUAL(uf_admin_rep_parse(&rep, sizeof(rep), &got), UCACHE_OK);
    CU_ASSERT_EQUAL(got.reads, 5);
    CU_ASSERT_EQUAL(got.fetches_served, 4242);
    CU_ASSERT_EQUAL(got.origin_errors, 3);
    CU_ASSERT_EQUAL(got.fill_us_bucket[0], 0);
    CU_ASSERT_EQUAL(got.auth_failures, 0);
}

static void test_admin_rep_malformed(void)
{
    struct {
        uf_admin_msg_t hdr;
        uf_stat_tv_t   tv[2];
    } rep;
    ucache_stats_t got;
    uf_admin_msg_t hdr = { UF_STATS_MAGIC, UF_STATS_VERSION, 0 };

#define REP_OK(...) do { rep = (__typeof__(rep)){ { UF_STATS_MAGIC, UF_STATS_VERSION, 2 }, \
                                               { { 1, 0, 1 }, { 2, 0, 2 } } }; } while (0)
    REP_OK();
    CU_ASSERT_EQUAL(uf_admin_rep_parse(&rep, sizeof(rep), &got), UCACHE_OK);
    CU_ASSERT_EQUAL(uf_admin_rep_parse(&rep, sizeof(rep) - 1, &got), UCACHE_ERR_CORRUPT);
    CU_ASSERT_EQUAL(uf_admin_rep_parse(&rep, sizeof(rep.hdr) - 1, &got), UCACHE_ERR_CORRUPT);
    CU_ASSERT_EQUAL(uf_admin_rep_parse(NULL, 0, &got), UCACHE_ERR_CORRUPT);
    REP_OK();
    rep.hdr.count = 3;                       /* says more than it holds */
    CU_ASSERT_EQUAL(uf_admin_rep_parse(&rep, sizeof(rep), &got), UCACHE_ERR_CORRUPT);
    REP_OK();
    rep.tv[1].tag = 0;                       /* no counter has tag 0 */
    CU_ASSERT_EQUAL(uf_admin_rep_parse(&rep, sizeof(rep), &got), UCACHE_ERR_CORRUPT);
    REP_OK();
    rep.tv[1].reserved = 1;
    CU_ASSERT_EQUAL(uf_admin_rep_parse(&rep, sizeof(rep), &got), UCACHE_ERR_CORRUPT);
    REP_OK();
    rep.tv[1].tag = 1;                       /* the same counter twice */
    CU_ASSERT_EQUAL(uf_admin_rep_parse(&rep, sizeof(rep), &got), UCACHE_ERR_CORRUPT);
    REP_OK();
    rep.hdr.magic ^= 1;
    CU_ASSERT_EQUAL(uf_admin_rep_parse(&rep, sizeof(rep), &got), UCACHE_ERR_CORRUPT);
    REP_OK();
    rep.hdr.version = UF_STATS_VERSION + 1;  /* a layout this build cannot read */
    CU_ASSERT_EQUAL(uf_admin_rep_parse(&rep, sizeof(rep), &got), UCACHE_ERR_CORRUPT);
    /* a positional reply whose length is not its count's */
    rep.hdr = (uf_admin_msg_t){ UF_PROTO_MAGIC, UF_PROTO_VERSION, 3 };
    CU_ASSERT_EQUAL(uf_admin_rep_parse(&rep, sizeof(rep.hdr) + 16, &got), UCACHE_ERR_CORRUPT);
    CU_ASSERT_EQUAL(uf_admin_rep_parse(&rep, sizeof(rep.hdr) + 24, &got), UCACHE_OK);
    /* no counters at all: fine, all 0 */
    CU_ASSERT_EQUAL(uf_admin_rep_parse(&hdr, sizeof(hdr), &got), UCACHE_OK);
    CU_ASSERT_EQUAL(got.reads, 0);
#undef REP_OK
}

static void test_admin_req_tagged(void)
{
    uf_admin_msg_t req = { UF_PROTO_MAGIC, UF_PROTO_VERSION, 0 }, out;
    unsigned op;

    for (op = 0; op <= UF_ADMIN_UNDRAIN; op++) {
        req.count = (uint16_t)op;
        CU_ASSERT_EQUAL(uf_admin_req_check(&req, sizeof(req), &out), UCACHE_OK);
        req.count = (uint16_t)(op | UF_ADMIN_TAGGED);
        CU_ASSERT_EQUAL(uf_admin_req_check(&req, sizeof(req), &out), UCACHE_OK);
        CU_ASSERT_EQUAL(out.count & ~UF_ADMIN_TAGGED, op);
    }
    req.count = UF_ADMIN_UNDRAIN + 1;
    CU_ASSERT_EQUAL(uf_admin_req_check(&req, sizeof(req), &out), UCACHE_ERR_INVALID);
    req.count = 0x200;
    CU_ASSERT_EQUAL(uf_admin_req_check(&req, sizeof(req), &out), UCACHE_ERR_INVALID);
    req.count = UF_ADMIN_TAGGED | 3;
    CU_ASSERT_EQUAL(uf_admin_req_check(&req, sizeof(req), &out), UCACHE_ERR_INVALID);
}

/* TOUCH: keys with their weight, and the hit count they stand for; a
 * report of hits alone (no new key in its window) has no keys. */
static void test_touch_req(void)
{
    uint8_t msg[sizeof(uf_touch_req_t) + 2 * sizeof(us_key_t)] = { 0 };
    uf_touch_req_t req = { UF_PROTO_MAGIC, UF_PROTO_VERSION, 2, 1, 40 }, out;

    memcpy(msg, &req, sizeof(req));
    CU_ASSERT_EQUAL(uf_touch_req_check(msg, sizeof(msg), &out), UCACHE_OK);
    CU_ASSERT_EQUAL(out.count, 2);
    CU_ASSERT_EQUAL(out.hits, 40);
    req.count = 0;                               /* hits alone */
    memcpy(msg, &req, sizeof(req));
    CU_ASSERT_EQUAL(uf_touch_req_check(msg, sizeof(req), &out), UCACHE_OK);
    req.hits = 0;                                /* nothing at all */
    memcpy(msg, &req, sizeof(req));
    CU_ASSERT_EQUAL(uf_touch_req_check(msg, sizeof(req), &out), UCACHE_ERR_INVALID);
    req.count = 2;                               /* a sampling reader: hits 0 */
    memcpy(msg, &req, sizeof(req));
    CU_ASSERT_EQUAL(uf_touch_req_check(msg, sizeof(msg), &out), UCACHE_OK);
    CU_ASSERT_EQUAL(uf_touch_req_check(msg, sizeof(msg) - 1, &out), UCACHE_ERR_INVALID);
    req.count = UF_TOUCH_MAX + 1;                /* more keys than a report holds */
    memcpy(msg, &req, sizeof(req));
    CU_ASSERT_EQUAL(uf_touch_req_check(msg, sizeof(msg), &out), UCACHE_ERR_INVALID);
    req.count  = 2;
    req.weight = 0;
    memcpy(msg, &req, sizeof(req));
    CU_ASSERT_EQUAL(uf_touch_req_check(msg, sizeof(msg), &out), UCACHE_ERR_INVALID);
}

/* A raw FETCH: built and accepted; anything else in its header, another
 * length, other flags, no bytes, too many or an end past 2^64 refused. */
static void test_fetch_raw(void)
{
    _Alignas(8) uint8_t msg[UF_FETCH_RAW_MSG + 8];
    uf_fetch_span_t span;
    uf_fetch_raw_t raw;
    uf_fetch_req_t req;
    const char *uri;
    struct { size_t at, len; uint64_t v; } bad[] = {
        { offsetof(uf_fetch_req_t, flags), 2, UF_FETCH_RAW | UF_FETCH_DATA },
        { offsetof(uf_fetch_req_t, flags), 2, UF_FETCH_RAW | UF_FETCH_PIN },
        { offsetof(uf_fetch_req_t, uri_len), 2, 4 },
        { offsetof(uf_fetch_req_t, key_lo), 8, 1 },
        { offsetof(uf_fetch_req_t, obj_size), 8, 100 },
        { offsetof(uf_fetch_req_t, chunk_size), 4, 4096 },
        { offsetof(uf_fetch_req_t, reserved), 2, 1 },
        { offsetof(uf_fetch_req_t, magic), 4, 0 },
        { sizeof(uf_fetch_req_t) + 8, 8, 0 },                       /* no bytes */
        { sizeof(uf_fetch_req_t) + 8, 8, UF_FETCH_RAW_MAX + 1ull }, /* too many */
        { sizeof(uf_fetch_req_t), 8, UINT64_MAX - 4095 },           /* wraps */
    };
    unsigned i;

    uf_fetch_raw_build(msg, 1u << 20, 4096);
    CU_ASSERT_EQUAL(uf_fetch_req_check(msg, UF_FETCH_RAW_MSG, &req, &uri, &span, &raw),
                    UCACHE_OK);
    CU_ASSERT_EQUAL(req.flags, UF_FETCH_RAW);
    CU_ASSERT_EQUAL(raw.off, 1u << 20);
    CU_ASSERT_EQUAL(raw.len, 4096);
    CU_ASSERT_EQUAL(span.len, 0);
    CU_ASSERT_EQUAL(uf_fetch_req_check(msg, UF_FETCH_RAW_MSG - 1, &req, &uri, &span, &raw),
                    UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uf_fetch_req_check(msg, UF_FETCH_RAW_MSG + 8, &req, &uri, &span, &raw),
                    UCACHE_ERR_INVALID);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uf_fetch_raw_build(msg, 1u << 20, 4096);
        memcpy(msg + bad[i].at, &bad[i].v, bad[i].len);
        CU_ASSERT_EQUAL(uf_fetch_req_check(msg, UF_FETCH_RAW_MSG, &req, &uri, &span, &raw),
                        UCACHE_ERR_INVALID);
        CU_ASSERT_EQUAL(raw.len, 0);
    }
}

/* Another protocol version is refused as such (UCACHE_ERR_PROTOCOL: a node
 * or reader of another release), never taken for ours or for garbage. */
static void test_proto_versions(void)
{
    uf_hello_req_t hello = { UF_PROTO_MAGIC, UF_PROTO_VERSION, 0 };
    uf_touch_req_t touch = { UF_PROTO_MAGIC, UF_PROTO_VERSION + 1, 0, 1, 1 }, tout;
    uf_admin_msg_t admin = { UF_PROTO_MAGIC, UF_PROTO_VERSION + 1, UF_ADMIN_DRAIN }, aout;
    uint8_t msg[UF_FETCH_RAW_MSG];
    uf_fetch_req_t req;
    uf_fetch_span_t span;
    uf_fetch_raw_t raw;
    const char *uri;

    CU_ASSERT_EQUAL(uf_hello_req_check(NULL, 0), UCACHE_OK);   /* a reader of before */
    CU_ASSERT_EQUAL(uf_hello_req_check(&hello, sizeof(hello)), UCACHE_OK);
    CU_ASSERT_EQUAL(uf_hello_req_check(&hello, sizeof(hello) - 1), UCACHE_ERR_INVALID);
    hello.version = UF_PROTO_VERSION + 1;
    CU_ASSERT_EQUAL(uf_hello_req_check(&hello, sizeof(hello)), UCACHE_ERR_PROTOCOL);
    hello.magic ^= 1;
    CU_ASSERT_EQUAL(uf_hello_req_check(&hello, sizeof(hello)), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uf_touch_req_check(&touch, sizeof(touch), &tout), UCACHE_ERR_PROTOCOL);
    CU_ASSERT_EQUAL(uf_admin_req_check(&admin, sizeof(admin), &aout), UCACHE_ERR_PROTOCOL);
    uf_fetch_raw_build(msg, 0, 64);
    CU_ASSERT_EQUAL(uf_fetch_req_check(msg, sizeof(msg), &req, &uri, &span, &raw), UCACHE_OK);
    memcpy(&req, msg, sizeof(req));
    req.version = UF_PROTO_VERSION + 1;
    memcpy(msg, &req, sizeof(req));
    CU_ASSERT_EQUAL(uf_fetch_req_check(msg, sizeof(msg), &req, &uri, &span, &raw),
                    UCACHE_ERR_PROTOCOL);
    CU_ASSERT_STRING_EQUAL(ucache_status_name(UCACHE_ERR_PROTOCOL), "UCACHE_ERR_PROTOCOL");
}


/* A META request as a reader builds it: header, URI, after. */
static size_t meta_req(uint8_t *msg, uint16_t op, uint32_t max, uint64_t stale,
                       const char *uri, const char *after)
{
    uf_meta_req_t req = { UF_PROTO_MAGIC, UF_PROTO_VERSION, op, 7, stale, 2000000000ull, max,
                          (uint16_t)strlen(uri), (uint16_t)strlen(after) };

    memcpy(msg, &req, sizeof(req));
    memcpy(msg + sizeof(req), uri, req.uri_len);
    memcpy(msg + sizeof(req) + req.uri_len, after, req.after_len);
    return sizeof(req) + req.uri_len + req.after_len;
}

static void test_meta_request(void)
{
    uint8_t msg[sizeof(uf_meta_req_t) + 2 * US_URI_MAX];
    const char *uri, *after;
    uf_meta_req_t req;
    size_t len;

    len = meta_req(msg, UF_META_STAT, 0, 0, "az://a/c/x", "");
    CU_ASSERT_EQUAL(uf_meta_req_check(msg, len, &req, &uri, &after), UCACHE_OK);
    CU_ASSERT_EQUAL(memcmp(uri, "az://a/c/x", 10), 0);
    CU_ASSERT_EQUAL(req.uri_len, 10);
    CU_ASSERT_EQUAL(uf_meta_req_check(msg, len - 1, &req, &uri, &after), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uf_meta_req_check(msg, len + 1, &req, &uri, &after), UCACHE_ERR_INVALID);
    len = meta_req(msg, UF_META_LIST, 1000, 0, "az://a/c/", "az://a/c/m");
    CU_ASSERT_EQUAL(uf_meta_req_check(msg, len, &req, &uri, &after), UCACHE_OK);
    CU_ASSERT_EQUAL(memcmp(after, "az://a/c/m", 10), 0);
    /* what each operation must not carry, sizes out of bounds, a NUL inside */
    len = meta_req(msg, UF_META_STAT, 0, 0, "az://a/c/x", "az://a/c/y");
    CU_ASSERT_EQUAL(uf_meta_req_check(msg, len, &req, &uri, &after), UCACHE_ERR_INVALID);
    len = meta_req(msg, UF_META_LIST, 0, 0, "az://a/c/", "");
    CU_ASSERT_EQUAL(uf_meta_req_check(msg, len, &req, &uri, &after), UCACHE_ERR_INVALID);
    len = meta_req(msg, UF_META_LIST, UF_META_PAGE_MAX + 1, 0, "az://a/c/", "");
    CU_ASSERT_EQUAL(uf_meta_req_check(msg, len, &req, &uri, &after), UCACHE_ERR_INVALID);
    len = meta_req(msg, UF_META_LIST, 10, 5, "az://a/c/", "");
    CU_ASSERT_EQUAL(uf_meta_req_check(msg, len, &req, &uri, &after), UCACHE_ERR_INVALID);
    len = meta_req(msg, 3, 0, 0, "az://a/c/x", "");
    CU_ASSERT_EQUAL(uf_meta_req_check(msg, len, &req, &uri, &after), UCACHE_ERR_INVALID);
    len = meta_req(msg, UF_META_STAT, 0, 0, "az://a/c/x", "");
    msg[sizeof(uf_meta_req_t) + 3] = '\0';
    CU_ASSERT_EQUAL(uf_meta_req_check(msg, len, &req, &uri, &after), UCACHE_ERR_INVALID);
    len = meta_req(msg, UF_META_STAT, 0, 0, "", "");
    CU_ASSERT_EQUAL(uf_meta_req_check(msg, len, &req, &uri, &after), UCACHE_ERR_INVALID);
    len = meta_req(msg, UF_META_STAT, 0, 0, "az://a/c/x", "");
    ((uf_meta_req_t *)msg)->version = UF_PROTO_VERSION + 1;
    CU_ASSERT_EQUAL(uf_meta_req_check(msg, len, &req, &uri, &after), UCACHE_ERR_PROTOCOL);
    CU_ASSERT_EQUAL(uf_meta_req_check(NULL, 0, &req, &uri, &after), UCACHE_ERR_INVALID);
}

static void test_meta_stat_reply(void)
{
    uf_meta_rep_t rep = { 12345, 0xabcdef, 99, 0, 6, 0, 0 };
    us_object_t obj;

    CU_ASSERT_EQUAL(uf_meta_stat_parse(&rep, sizeof(rep), "\"0x8D\"", 6, false, &obj), UCACHE_OK);
    CU_ASSERT_EQUAL(obj.size, 12345);
    CU_ASSERT_EQUAL(obj.version, 0xabcdef);
    CU_ASSERT_STRING_EQUAL(obj.etag, "\"0x8D\"");
    CU_ASSERT_EQUAL(uf_meta_stat_parse(&rep, sizeof(rep), "\"0x8D\"", 5, false, &obj), UCACHE_ERR_CORRUPT);
    CU_ASSERT_EQUAL(uf_meta_stat_parse(&rep, sizeof(rep) - 1, "\"0x8D\"", 6, false, &obj),
                    UCACHE_ERR_CORRUPT);
    /* an ETag goes into an If-Match header: no control characters */
    CU_ASSERT_EQUAL(uf_meta_stat_parse(&rep, sizeof(rep), "\"0\r\nX", 6, false, &obj), UCACHE_ERR_CORRUPT);
    rep.etag_len = US_ETAG_MAX;
    CU_ASSERT_EQUAL(uf_meta_stat_parse(&rep, sizeof(rep), NULL, US_ETAG_MAX, false, &obj),
                    UCACHE_ERR_CORRUPT);
    rep.etag_len = 0;
    rep.count    = 1;
    CU_ASSERT_EQUAL(uf_meta_stat_parse(&rep, sizeof(rep), NULL, 0, false, &obj), UCACHE_ERR_CORRUPT);
}

typedef struct listed {
    unsigned n;
    char     last[US_URI_MAX];
    uint64_t size;
} listed_t;

static ucache_status_t listed_one(void *arg, const char *uri, const us_object_t *obj)
{
    listed_t *l = arg;

    l->n++;
    l->size += obj->size;
    snprintf(l->last, sizeof(l->last), "%s", uri);
    return UCACHE_OK;
}

static void test_meta_list_reply(void)
{
    static char page[UF_META_PAGE_BYTES];
    uf_meta_rep_t rep = { 0, 0, 5, 3, 0, 1, 0 };
    us_object_t obj = { 10, 1, "\"e\"" };
    char last[US_URI_MAX];
    listed_t l = { 0 };
    size_t off = 0, cut;

    CU_ASSERT(uf_meta_ent_put(page, sizeof(page), &off, "s3://b/p/a", &obj));
    CU_ASSERT(uf_meta_ent_put(page, sizeof(page), &off, "s3://b/p/b", &obj));
    cut = off;
    CU_ASSERT(uf_meta_ent_put(page, sizeof(page), &off, "s3://b/p/c", &obj));
    CU_ASSERT(!uf_meta_ent_put(page, off + 5, &off, "s3://b/p/d", &obj)); /* no room */
    CU_ASSERT_EQUAL(uf_meta_list_parse(&rep, sizeof(rep), page, off, "s3://b/p/", "", false,
                                       listed_one, &l, last), UCACHE_OK);
    CU_ASSERT_EQUAL(l.n, 3);
    CU_ASSERT_EQUAL(l.size, 30);
    CU_ASSERT_STRING_EQUAL(last, "s3://b/p/c");
    /* checked whole before any is given: a bad third entry gives none */
    memset(&l, 0, sizeof(l));
    CU_ASSERT_EQUAL(uf_meta_list_parse(&rep, sizeof(rep), page, off - 1, "s3://b/p/", "", false,
                                       listed_one, &l, last), UCACHE_ERR_CORRUPT);
    CU_ASSERT_EQUAL(l.n, 0);
    CU_ASSERT_EQUAL(uf_meta_list_parse(&rep, sizeof(rep), page, cut, "s3://b/p/", "", false,
                                       listed_one, &l, last), UCACHE_ERR_CORRUPT); /* count */
    /* outside the prefix, not after `after`, not in order */
    CU_ASSERT_EQUAL(uf_meta_list_parse(&rep, sizeof(rep), page, off, "s3://b/q/", "", false,
                                       listed_one, &l, last), UCACHE_ERR_CORRUPT);
    CU_ASSERT_EQUAL(uf_meta_list_parse(&rep, sizeof(rep), page, off, "s3://b/p/", "s3://b/p/a", false,
                                       listed_one, &l, last), UCACHE_ERR_CORRUPT);
    off = 0;
    CU_ASSERT(uf_meta_ent_put(page, sizeof(page), &off, "s3://b/p/b", &obj));
    CU_ASSERT(uf_meta_ent_put(page, sizeof(page), &off, "s3://b/p/a", &obj));
    rep.count = 2;
    CU_ASSERT_EQUAL(uf_meta_list_parse(&rep, sizeof(rep), page, off, "s3://b/p/", "", false,
                                       listed_one, &l, last), UCACHE_ERR_CORRUPT);
    CU_ASSERT_EQUAL(l.n, 0);
    rep.count = 0; /* an empty page that says more follows */
    CU_ASSERT_EQUAL(uf_meta_list_parse(&rep, sizeof(rep), page, 0, "s3://b/p/", "", false,
                                       listed_one, &l, last), UCACHE_ERR_CORRUPT);
    rep.more = 0;
    CU_ASSERT_EQUAL(uf_meta_list_parse(&rep, sizeof(rep), page, 0, "s3://b/p/", "", false,
                                       listed_one, &l, last), UCACHE_OK);
}

/* Mtimes (UF_META_MTIME): carried where a reply without them holds 0, so
 * a reader of before them never sees one, and a page kept for readers of
 * both kinds loses them for the old. */
static ucache_status_t mtime_one(void *arg, const char *uri, const us_object_t *obj)
{
    (void)uri;
    *(uint64_t *)arg += obj->mtime;
    return UCACHE_OK;
}

static void test_meta_mtime(void)
{
    static char page[UF_META_PAGE_BYTES];
    us_object_t obj = { .size = 10, .version = 1, .etag = "\"e\"", .mtime = 1796000000 };
    us_object_t got;
    uf_meta_rep_t rep;
    uf_meta_req_t req;
    const char *uri, *after;
    uint8_t msg[256];
    char last[US_URI_MAX];
    uint64_t sum = 0;
    size_t len, off = 0;

    len = meta_req(msg, UF_META_STAT | UF_META_MTIME, 0, 0, "az://a/c/x", "");
    CU_ASSERT_EQUAL(uf_meta_req_check(msg, len, &req, &uri, &after), UCACHE_OK);
    len = meta_req(msg, UF_META_LIST | UF_META_MTIME, 10, 0, "az://a/c/", "");
    CU_ASSERT_EQUAL(uf_meta_req_check(msg, len, &req, &uri, &after), UCACHE_OK);
    len = meta_req(msg, 3 | UF_META_MTIME, 10, 0, "az://a/c/", "");
    CU_ASSERT_EQUAL(uf_meta_req_check(msg, len, &req, &uri, &after), UCACHE_ERR_INVALID);

    memset(&rep, 0, sizeof(rep));
    uf_meta_stat_rep(&obj, true, &rep);
    CU_ASSERT_EQUAL(uf_meta_stat_parse(&rep, sizeof(rep), "\"e\"", 3, true, &got), UCACHE_OK);
    CU_ASSERT_EQUAL(got.mtime, 1796000000);
    CU_ASSERT_EQUAL(got.size, 10);
    CU_ASSERT_EQUAL(uf_meta_stat_parse(&rep, sizeof(rep), "\"e\"", 3, false, &got),
                    UCACHE_ERR_CORRUPT);
    uf_meta_stat_rep(&obj, false, &rep);
    CU_ASSERT_EQUAL(uf_meta_stat_parse(&rep, sizeof(rep), "\"e\"", 3, false, &got), UCACHE_OK);
    CU_ASSERT_EQUAL(got.mtime, 0);
    obj.mtime = 1ull << 40;                    /* past 2106: unknown, not wrapped */
    uf_meta_stat_rep(&obj, true, &rep);
    CU_ASSERT_EQUAL(rep.count, 0);

    obj.mtime = 1796000000;
    CU_ASSERT(uf_meta_ent_put(page, sizeof(page), &off, "s3://b/p/a", &obj));
    obj.mtime = 4;
    CU_ASSERT(uf_meta_ent_put(page, sizeof(page), &off, "s3://b/p/b", &obj));
    memset(&rep, 0, sizeof(rep));
    rep.count = 2;
    CU_ASSERT_EQUAL(uf_meta_list_parse(&rep, sizeof(rep), page, off, "s3://b/p/", "", true,
                                       mtime_one, &sum, last), UCACHE_OK);
    CU_ASSERT_EQUAL(sum, 1796000004);
    CU_ASSERT_EQUAL(uf_meta_list_parse(&rep, sizeof(rep), page, off, "s3://b/p/", "", false,
                                       mtime_one, &sum, last), UCACHE_ERR_CORRUPT);
    uf_meta_ents_no_mtime(page, off, 2);       /* for a reader of before mtimes */
    sum = 0;
    CU_ASSERT_EQUAL(uf_meta_list_parse(&rep, sizeof(rep), page, off, "s3://b/p/", "", false,
                                       mtime_one, &sum, last), UCACHE_OK);
    CU_ASSERT_EQUAL(sum, 0);
}

const tc_test_t proto_tests[] = {
    { "proto_versions", test_proto_versions },
    {"meta_request", test_meta_request},
    {"meta_stat_reply", test_meta_stat_reply},
    {"meta_mtime", test_meta_mtime},
    {"meta_list_reply", test_meta_list_reply},
    {"fetch_raw", test_fetch_raw},
    {"touch_request", test_touch_req},
    {"admin_reply_roundtrip", test_admin_rep_roundtrip},
    {"admin_reply_newer_node", test_admin_rep_newer_node},
    {"admin_reply_older_node", test_admin_rep_older_node},
    {"admin_reply_malformed", test_admin_rep_malformed},
    {"admin_request_tagged", test_admin_req_tagged},
    {NULL, NULL}
};
