/*
 * test_etcd.c - the etcd gateway client's parsers and URL (fabric/etcd.c)
 * and the etcd source's node records (fabric/member_etcd.c).  The client
 * against a real etcd cluster: tests/fabric/test_etcd.sh.
 */
#include "tests/common.h"
#include "fabric/etcd.h"
#include "fabric/member.h"
#include "fabric/place.h"

#include <string.h>

#define PARSE(_kind, _s, _r) uf_etcd_parse((_kind), (_s), strlen(_s), (_r))

/* What etcd 3.4's gateway sends (captured from etcd 3.4.23). */
static void test_etcd_parse(void)
{
    uf_etcd_reply_t r;

    CU_ASSERT_EQUAL_FATAL(PARSE(UF_ETCD_LEASE_GRANT,
        "{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":\"3319814642761637952\","
        "\"revision\":\"1\",\"raft_term\":\"2\"},\"ID\":\"2324035845765745157\",\"TTL\":\"5\"}",
        &r), UCACHE_OK);
    CU_ASSERT_EQUAL(r.id, 2324035845765745157ll);
    CU_ASSERT_EQUAL(r.ttl, 5);
    CU_ASSERT_EQUAL(r.revision, 1);
    uf_etcd_reply_clear(&r);
    /* keepalive of a lease etcd has: TTL; of one it lost: no TTL (0) */
    CU_ASSERT_EQUAL(PARSE(UF_ETCD_KEEPALIVE, "{\"result\":{\"header\":{\"revision\":\"2\"},"
                          "\"ID\":\"7\",\"TTL\":\"9\"}}", &r), UCACHE_OK);
    CU_ASSERT_EQUAL(r.ttl, 9);
    CU_ASSERT_EQUAL(r.id, 7);
    CU_ASSERT_EQUAL(PARSE(UF_ETCD_KEEPALIVE, "{\"result\":{\"header\":{\"revision\":\"2\"},"
                          "\"ID\":\"12345\"}}", &r), UCACHE_OK);
    CU_ASSERT_EQUAL(r.ttl, 0);
    /* a page of a range: keys and values decoded, more */
    CU_ASSERT_EQUAL_FATAL(PARSE(UF_ETCD_RANGE,
        "{\"header\":{\"revision\":\"2\"},\"kvs\":[{\"key\":\"cC9ub2Rlcy9h\",\"create_revision\":\"2\","
        "\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"eHg=\",\"lease\":\"2324035845765745159\"}],"
        "\"more\":true,\"count\":\"3\"}", &r), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(r.nkvs, 1);
    CU_ASSERT_STRING_EQUAL(r.kvs[0].key, "p/nodes/a");
    CU_ASSERT_EQUAL(r.kvs[0].value_len, 2);
    CU_ASSERT_STRING_EQUAL(r.kvs[0].value, "xx");
    CU_ASSERT_EQUAL(r.kvs[0].lease, 2324035845765745159ll);
    CU_ASSERT_EQUAL(r.kvs[0].mod_rev, 2);
    CU_ASSERT(r.more);
    uf_etcd_reply_clear(&r);
    CU_ASSERT_EQUAL(PARSE(UF_ETCD_RANGE, "{\"header\":{\"revision\":\"9\"}}", &r), UCACHE_OK);
    CU_ASSERT_EQUAL(r.nkvs, 0);
    CU_ASSERT(!r.more);
    /* txn */
    CU_ASSERT_EQUAL(PARSE(UF_ETCD_TXN, "{\"header\":{\"revision\":\"4\"},\"succeeded\":true,"
                          "\"responses\":[{\"response_put\":{\"header\":{\"revision\":\"4\"}}}]}",
                          &r), UCACHE_OK);
    CU_ASSERT(r.succeeded);
    CU_ASSERT_EQUAL(PARSE(UF_ETCD_TXN, "{\"header\":{\"revision\":\"4\"}}", &r), UCACHE_OK);
    CU_ASSERT(!r.succeeded);
    /* a watch: created, a PUT and a DELETE, and a compacted cancellation */
    CU_ASSERT_EQUAL(PARSE(UF_ETCD_WATCH, "{\"result\":{\"header\":{\"revision\":\"2\"},"
                          "\"created\":true}}", &r), UCACHE_OK);
    CU_ASSERT(r.created);
    CU_ASSERT_EQUAL_FATAL(PARSE(UF_ETCD_WATCH,
        "{\"result\":{\"header\":{\"revision\":\"5\"},\"events\":[{\"kv\":{\"key\":\"cC9ub2Rlcy9h\","
        "\"create_revision\":\"2\",\"mod_revision\":\"4\",\"value\":\"eHg=\"}},{\"type\":\"DELETE\","
        "\"kv\":{\"key\":\"cC9ub2Rlcy9h\",\"mod_revision\":\"5\"}}]}}", &r), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(r.nkvs, 2);
    CU_ASSERT(!r.kvs[0].deleted);
    CU_ASSERT(r.kvs[1].deleted);
    CU_ASSERT_EQUAL(r.kvs[1].mod_rev, 5);
    CU_ASSERT_EQUAL(r.kvs[1].value_len, 0);
    uf_etcd_reply_clear(&r);
    CU_ASSERT_EQUAL(PARSE(UF_ETCD_WATCH, "{\"result\":{\"header\":{\"revision\":\"90\"},"
                          "\"canceled\":true,\"compact_revision\":\"50\"}}", &r), UCACHE_OK);
    CU_ASSERT(r.canceled);
    CU_ASSERT_EQUAL(r.compact_rev, 50);
    CU_ASSERT_EQUAL(PARSE(UF_ETCD_AUTH, "{\"header\":{\"revision\":\"1\"},\"token\":\"abc.7\"}",
                          &r), UCACHE_OK);
    CU_ASSERT_STRING_EQUAL(r.token, "abc.7");
    /* error replies: unavailable (another endpoint), unauthenticated, other */
    CU_ASSERT_EQUAL(PARSE(UF_ETCD_RANGE, "{\"error\":\"etcdserver: no leader\",\"code\":14,"
                          "\"message\":\"etcdserver: no leader\"}", &r), UCACHE_ERR_PEER);
    CU_ASSERT_EQUAL(PARSE(UF_ETCD_WATCH, "{\"error\":{\"grpc_code\":14,\"http_code\":503,"
                          "\"message\":\"x\"}}", &r), UCACHE_ERR_PEER);
    CU_ASSERT_EQUAL(PARSE(UF_ETCD_RANGE, "{\"error\":\"etcdserver: invalid auth token\","
                          "\"code\":16}", &r), UCACHE_ERR_AUTH);
    CU_ASSERT_EQUAL(PARSE(UF_ETCD_TXN, "{\"error\":\"too many operations in txn request\","
                          "\"code\":3}", &r), UCACHE_ERR_IO);
}

/* Malformed replies are refused, never half-used. */
static void test_etcd_parse_bad(void)
{
    static const char *const bad[] = {
        "",
        "{",
        "[]",
        "{\"header\":{\"revision\":\"2\"}} x",                    /* trailing bytes */
        "{\"header\":{\"revision\":\"-2\"}}",                     /* negative revision */
        "{\"header\":{\"revision\":\"2x\"}}",
        "{\"header\":{\"revision\":\"99999999999999999999\"}}",   /* past int64 */
        "{\"header\":{\"revision\":[]}}",
        "{\"header\":7}",
        "{\"kvs\":[]}",                                           /* no header */
        "{\"header\":{},\"kvs\":{}}",
        "{\"header\":{},\"kvs\":[{\"key\":\"cC9u=b2Rl\"}]}",      /* not base64 */
        "{\"header\":{},\"kvs\":[{\"key\":\"cC9\"}]}",            /* not a multiple of 4 */
        "{\"header\":{},\"kvs\":[{\"key\":\"\"}]}",               /* empty key */
        "{\"header\":{},\"kvs\":[{\"key\":\"eHg=\",\"value\":7}]}",
        "{\"header\":{},\"kvs\":[{\"key\":\"eHg=\",\"mod_revision\":\"-1\"}]}",
        "{\"header\":{},\"kvs\":[7]}",
        "{\"error\":[1]}",
        NULL
    };
    static const char *const bad_watch[] = {
        "{\"header\":{\"revision\":\"2\"}}",                      /* no result */
        "{\"result\":{\"header\":{},\"events\":[{\"type\":\"PUT\"}]}}", /* no kv */
        "{\"result\":{\"header\":{},\"events\":[{\"type\":\"UPDATE\",\"kv\":{\"key\":\"eHg=\"}}]}}",
        "{\"result\":{\"header\":{},\"compact_revision\":\"-4\"}}",
        NULL
    };
    char big[UF_ETCD_KEY_MAX * 2 + 64];
    uf_etcd_reply_t r;
    unsigned i;

    for (i = 0; bad[i] != NULL; i++) {
        CU_ASSERT_NOT_EQUAL(PARSE(UF_ETCD_RANGE, bad[i], &r), UCACHE_OK);
        CU_ASSERT_EQUAL(r.nkvs, 0);
        CU_ASSERT_PTR_NULL(r.kvs);
    }
    for (i = 0; bad_watch[i] != NULL; i++) {
        CU_ASSERT_EQUAL(PARSE(UF_ETCD_WATCH, bad_watch[i], &r), UCACHE_ERR_CORRUPT);
        CU_ASSERT_PTR_NULL(r.kvs);
    }
    /* a lease grant without an ID; an auth reply without a token */
    CU_ASSERT_EQUAL(PARSE(UF_ETCD_LEASE_GRANT, "{\"header\":{},\"TTL\":\"5\"}", &r),
                    UCACHE_ERR_CORRUPT);
    CU_ASSERT_EQUAL(PARSE(UF_ETCD_AUTH, "{\"header\":{}}", &r), UCACHE_ERR_CORRUPT);
    /* a key longer than any we use: refused, not truncated */
    strcpy(big, "{\"header\":{},\"kvs\":[{\"key\":\"");
    for (i = 0; i < (UF_ETCD_KEY_MAX / 3 + 2) * 4 / 4; i++) {
        strcat(big, "eHh4");
    }
    strcat(big, "\"}]}");
    CU_ASSERT_EQUAL(PARSE(UF_ETCD_RANGE, big, &r), UCACHE_ERR_CORRUPT);
}

static void test_etcd_url(void)
{
    uf_etcd_t *e;
    char end[64];

    CU_ASSERT_EQUAL_FATAL(uf_etcd_create("etcd://10.0.0.1:2379,10.0.0.2:2379/fab/a/",
                                         NULL, &e), UCACHE_OK);
    CU_ASSERT_STRING_EQUAL(uf_etcd_prefix(e), "fab/a");
    CU_ASSERT_STRING_EQUAL(uf_etcd_endpoint(e), "10.0.0.1:2379");
    uf_etcd_destroy(e);
    CU_ASSERT_EQUAL_FATAL(uf_etcd_create("etcds://h:1/p", NULL, &e), UCACHE_OK);
    uf_etcd_destroy(e);
    CU_ASSERT_EQUAL(uf_etcd_create("etcd://h:1", NULL, &e), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uf_etcd_create("etcd://h:1/", NULL, &e), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uf_etcd_create("etcd:///p", NULL, &e), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uf_etcd_create("etcd://h/p", NULL, &e), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uf_etcd_create("etcd://h:1,,h:2/p", NULL, &e), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uf_etcd_create("etcd://u@h:1/p", NULL, &e), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uf_etcd_create("http://h:1/p", NULL, &e), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uf_etcd_create("etcd://h:1///", NULL, &e), UCACHE_ERR_INVALID);
    uf_etcd_prefix_end("fab/nodes/", end, sizeof(end));
    CU_ASSERT_STRING_EQUAL(end, "fab/nodes0");
}

static void test_etcd_record(void)
{
    uf_member_t m = { 0 }, d;
    bool draining = true;
    char *json, *p;

    snprintf(m.host, sizeof(m.host), "10.1.2.3");
    m.port      = 7000;
    m.id        = uf_member_id_of("10.1.2.3:7000");
    m.slot0     = 17;
    m.weight    = 4;
    m.mem_bytes = 3ull << 40;
    snprintf(m.zone, sizeof(m.zone), "rack-2");
    CU_ASSERT_EQUAL_FATAL(uf_etcd_record_encode(&m, false, &json), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(uf_etcd_record_decode(json, strlen(json), &d, &draining), UCACHE_OK);
    CU_ASSERT_EQUAL(d.id, m.id);
    CU_ASSERT_EQUAL(d.slot0, 17);
    CU_ASSERT_EQUAL(d.weight, 4);
    CU_ASSERT_EQUAL(d.port, 7000);
    CU_ASSERT_EQUAL(d.mem_bytes, 3ull << 40);
    CU_ASSERT_STRING_EQUAL(d.host, "10.1.2.3");
    CU_ASSERT_STRING_EQUAL(d.zone, "rack-2");
    CU_ASSERT(!draining);
    CU_ASSERT_PTR_NULL(d.addr); /* nothing that grants access */
    CU_ASSERT_PTR_NULL(d.rkey);
    /* nothing in it grants access: no address, key, pid */
    CU_ASSERT_PTR_NULL(strstr(json, "addr"));
    CU_ASSERT_PTR_NULL(strstr(json, "rkey"));
    /* every truncation is refused */
    {
        size_t len = strlen(json), i;

        for (i = 0; i < len; i++) {
            CU_ASSERT_EQUAL(uf_etcd_record_decode(json, i, &d, NULL), UCACHE_ERR_CORRUPT);
        }
    }
    /* an id that is not its listener's hash: a record naming someone else */
    p = strstr(json, "\"id\":\"");
    CU_ASSERT_FATAL(p != NULL);
    p[6] = (p[6] == '0') ? '1' : '0';
    CU_ASSERT_EQUAL(uf_etcd_record_decode(json, strlen(json), &d, NULL), UCACHE_ERR_CORRUPT);
    free(json);
    {
        static const char *const bad[] = {
            "{\"v\":2,\"id\":\"%s\",\"listen\":\"10.1.2.3:7000\",\"zone\":\"\",\"slot0\":0,"
            "\"weight\":1,\"mem\":1,\"state\":\"up\"}",
            "{\"v\":1,\"id\":\"%s\",\"listen\":\"10.1.2.3:7000\",\"zone\":\"\",\"slot0\":0,"
            "\"weight\":0,\"mem\":1,\"state\":\"up\"}",
            "{\"v\":1,\"id\":\"%s\",\"listen\":\"10.1.2.3:7000\",\"zone\":\"\",\"slot0\":67108863,"
            "\"weight\":2,\"mem\":1,\"state\":\"up\"}",
            "{\"v\":1,\"id\":\"%s\",\"listen\":\"10.1.2.3:7000\",\"zone\":\"\",\"slot0\":0,"
            "\"weight\":1,\"mem\":1,\"state\":\"gone\"}",
            "{\"v\":1,\"id\":\"%s\",\"listen\":\"10.1.2.3:7000\",\"zone\":\"\",\"slot0\":\"0\","
            "\"weight\":1,\"mem\":1,\"state\":\"up\"}",
            "{\"v\":1,\"id\":\"%s\",\"listen\":\"10.1.2.3:7000\",\"zone\":\"\",\"slot0\":0,"
            "\"weight\":1,\"mem\":-1,\"state\":\"up\"}",
            "{\"v\":1,\"id\":\"%s\",\"listen\":\"10.1.2.3:7000\",\"slot0\":0,"
            "\"weight\":1,\"mem\":1,\"state\":\"up\"}",
            "{\"v\":1,\"id\":\"%s\",\"listen\":\"10.1.2.3:7000\",\"zone\":\"0123456789012345678901"
            "234567890123\",\"slot0\":0,\"weight\":1,\"mem\":1,\"state\":\"up\"}",
            "{\"v\":1,\"id\":\"%s\",\"listen\":\"10.1.2.3:7000\",\"zone\":\"\",\"slot0\":0,"
            "\"weight\":1,\"mem\":1,\"state\":\"up\"}x",
            NULL
        };
        char id[20], rec[512];
        unsigned i;

        snprintf(id, sizeof(id), "%016llx", (unsigned long long)uf_member_id_of("10.1.2.3:7000"));
        /* the good one of the same form decodes */
        snprintf(rec, sizeof(rec), "{\"v\":1,\"id\":\"%s\",\"listen\":\"10.1.2.3:7000\",\"zone\""
                 ":\"\",\"slot0\":0,\"weight\":1,\"mem\":1,\"state\":\"draining\"}", id);
        CU_ASSERT_EQUAL(uf_etcd_record_decode(rec, strlen(rec), &d, &draining), UCACHE_OK);
        CU_ASSERT(draining);
        for (i = 0; bad[i] != NULL; i++) {
            snprintf(rec, sizeof(rec), bad[i], id);
            CU_ASSERT_EQUAL(uf_etcd_record_decode(rec, strlen(rec), &d, NULL),
                            UCACHE_ERR_CORRUPT);
        }
        snprintf(rec, sizeof(rec), "{\"v\":1,\"id\":\"%s\",\"listen\":\"10.1.2.3:0\",\"zone\":\"\","
                 "\"slot0\":0,\"weight\":1,\"mem\":1,\"state\":\"up\"}", id);
        CU_ASSERT_EQUAL(uf_etcd_record_decode(rec, strlen(rec), &d, NULL), UCACHE_ERR_CORRUPT);
    }
}

/* The fabric's placement parameters as PREFIX/config holds them. */
static void test_etcd_config(void)
{
    static const char *const bad[] = {
        "{\"v\":1,\"slots\":65536}",                                 /* no slot size */
        "{\"v\":1,\"slots\":65535,\"slot_size\":4294967296}",      /* not 2^k */
        "{\"v\":1,\"slots\":4,\"slot_size\":4294967296}",
        "{\"v\":1,\"slots\":134217728,\"slot_size\":4294967296}",  /* > 2^26 */
        "{\"v\":1,\"slots\":65536,\"slot_size\":1024}",            /* < 1M */
        "{\"v\":2,\"slots\":65536,\"slot_size\":4294967296}",
        "{\"v\":1,\"slots\":\"65536\",\"slot_size\":4294967296}",
        "{\"v\":1,\"slots\":65536,\"slot_size\":4294967296}x",
        "[]",
        NULL
    };
    const char *good = "{\"v\":1,\"slots\":2097152,\"slot_size\":137438953472}";
    uint64_t bytes = 0;
    uint32_t slots = 0;
    unsigned i;

    CU_ASSERT_EQUAL(uf_etcd_config_decode(good, strlen(good), &slots, &bytes), UCACHE_OK);
    CU_ASSERT_EQUAL(slots, 2097152);
    CU_ASSERT_EQUAL(bytes, 128ull << 30);
    for (i = 0; bad[i] != NULL; i++) {
        CU_ASSERT_EQUAL(uf_etcd_config_decode(bad[i], strlen(bad[i]), &slots, &bytes),
                        UCACHE_ERR_CORRUPT);
    }
}

const tc_test_t etcd_tests[] = {
    { "etcd_config", test_etcd_config },
    { "etcd_parse", test_etcd_parse },
    { "etcd_parse_bad", test_etcd_parse_bad },
    { "etcd_url", test_etcd_url },
    { "etcd_record", test_etcd_record },
    { NULL, NULL }
};
