/*
 * test_quota.c - dataset quotas (fabric/quota.c): the operator's list
 * parsed into rules, each root's namespace the one its objects fall into,
 * and every malformed rule refused.
 */
#include "tests/common.h"
#include "fabric/quota.h"
#include "store/store.h"

static void test_quota_parse(void)
{
    uf_quota_t q;

    CU_ASSERT_EQUAL(uf_quota_parse("", &q), UCACHE_OK);
    CU_ASSERT_EQUAL(q.n, 0);
    CU_ASSERT_EQUAL(uf_quota_parse("none", &q), UCACHE_OK);
    CU_ASSERT_EQUAL(q.n, 0);
    CU_ASSERT_EQUAL(uf_quota_parse("az://acct/ckpt=30%,s3://bkt/scratch=10,file:///data/=100%",
                                   &q), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(q.n, 3);
    CU_ASSERT_STRING_EQUAL(q.rule[0].root, "az://acct/ckpt");
    CU_ASSERT_EQUAL(q.rule[0].pct, 30);
    CU_ASSERT_EQUAL(q.rule[1].pct, 10);
    CU_ASSERT_EQUAL(q.rule[2].pct, 100);
    /* a root's namespace is its objects' */
    CU_ASSERT_EQUAL(q.rule[0].ns, uf_ns_of("az://acct/ckpt/step-100/shard-3"));
    CU_ASSERT_EQUAL(q.rule[1].ns, uf_ns_of("s3://bkt/scratch/a/b"));
    CU_ASSERT_EQUAL(q.rule[2].ns, uf_ns_of("file:///data/x/y"));
    CU_ASSERT_NOT_EQUAL(q.rule[0].ns, uf_ns_of("az://acct/other/x"));
    CU_ASSERT(q.rule[0].ns > 0 && q.rule[0].ns < US_MAX_NS);
}

static void test_quota_refused(void)
{
    static const char *const bad[] = {
        "az://acct/ckpt",              /* no percent */
        "az://acct/ckpt=",             /* empty percent */
        "az://acct/ckpt=0%",           /* out of range */
        "az://acct/ckpt=101%",
        "az://acct/ckpt=99999999999%",
        "az://acct/ckpt=30%%",
        "az://acct/ckpt=3x",
        "=30%",                        /* no root */
        "nonsense=30%",                /* not a URI */
        "az://acct/ckpt/deeper=30%",   /* below a dataset's root */
        "s3://bucket=30%",             /* above one */
        "az://acct/ckpt=30%,",         /* an empty rule */
        "az://acct/ckpt=30%,az://acct/ckpt/=20%",   /* one namespace twice */
    };
    char many[4096] = "";
    uf_quota_t q;
    unsigned i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(uf_quota_parse(bad[i], &q), UCACHE_ERR_INVALID);
    }
    for (i = 0; i <= UF_QUOTA_MAX; i++) {      /* one rule past the most */
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%ss3://b/p%u=1%%",
                 i ? "," : "", i);
    }
    CU_ASSERT_EQUAL(uf_quota_parse(many, &q), UCACHE_ERR_INVALID);
}

const tc_test_t quota_tests[] = {
    {"parse", test_quota_parse},
    {"refused", test_quota_refused},
    {NULL, NULL}
};
