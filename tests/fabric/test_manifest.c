/*
 * test_manifest.c - dataset manifests (fabric/manifest.c): what
 * ucache_manifest_write puts out parses back to the same objects; lookups
 * and prefix listings; every malformed line refused by number.
 */
#include "fabric/manifest.h"
#include "tests/common.h"

static ucache_status_t count_one(void *arg, const char *uri, const us_object_t *obj)
{
    (void)uri;
    *(uint64_t *)arg += obj->size;
    return UCACHE_OK;
}

static void test_manifest_roundtrip(void)
{
    us_object_t a = { 100, 0x0123456789abcdefull, "\"0x8DC1\"" }, b = { 7, 42, "" }, got;
    char *text = NULL;
    size_t len = 0;
    uint64_t total = 0;
    uf_manifest_t *m;
    FILE *f = open_memstream(&text, &len);

    fprintf(f, UF_MANIFEST_MAGIC "\n" UF_MANIFEST_PREFIX "az://acct/c/train/\n");
    CU_ASSERT(uf_manifest_put(f, "az://acct/c/train/b", &b));
    CU_ASSERT(uf_manifest_put(f, "az://acct/c/train/a", &a));
    CU_ASSERT(uf_manifest_put(f, "az://acct/c/val/z", &b));
    CU_ASSERT(!uf_manifest_put(f, "az://acct/c/train/s?sig=secret", &a)); /* a SAS: never */
    CU_ASSERT(!uf_manifest_put(f, "az://acct/c/train/t\tab", &a));
    fclose(f);
    CU_ASSERT(strstr(text, "secret") == NULL);
    CU_ASSERT_EQUAL_FATAL(uf_manifest_parse(text, len, &m), UCACHE_OK);
    CU_ASSERT_EQUAL(uf_manifest_count(m), 3);
    CU_ASSERT(uf_manifest_get(m, "az://acct/c/train/a", &got));
    CU_ASSERT_EQUAL(got.size, 100);
    CU_ASSERT_EQUAL(got.version, 0x0123456789abcdefull);
    CU_ASSERT_STRING_EQUAL(got.etag, "\"0x8DC1\"");
    CU_ASSERT(uf_manifest_get(m, "az://acct/c/train/b", &got));
    CU_ASSERT_STRING_EQUAL(got.etag, "");
    CU_ASSERT(!uf_manifest_get(m, "az://acct/c/train/", &got));
    CU_ASSERT(uf_manifest_covers(m, "az://acct/c/train/"));
    CU_ASSERT(uf_manifest_covers(m, "az://acct/c/train/sub/"));
    CU_ASSERT(!uf_manifest_covers(m, "az://acct/c/"));
    CU_ASSERT_EQUAL(uf_manifest_list(m, "az://acct/c/train/", count_one, &total), UCACHE_OK);
    CU_ASSERT_EQUAL(total, 107);
    uf_manifest_free(m);
    free(text);
}

static void test_manifest_malformed(void)
{
    static const char *const bad[] = {
        "not a manifest\n",
        UF_MANIFEST_MAGIC "\nfile:///x\t12\n",                        /* fields missing */
        UF_MANIFEST_MAGIC "\nfile:///x\t-1\t00000000000000aa\t\n",    /* size */
        UF_MANIFEST_MAGIC "\nfile:///x\t12\t0x0000000000000aa\t\n",   /* version */
        UF_MANIFEST_MAGIC "\nfile:///x\t12\t00000000000000aa0\t\n",   /* 17 digits */
        UF_MANIFEST_MAGIC "\nfile:///x\t123456789012345678901\t1\t\n", /* 21 digits */
        UF_MANIFEST_MAGIC "\nnoscheme\t12\t1\t\n",
        UF_MANIFEST_MAGIC "\nfile:///x\t12\t1\tan\001etag\n",          /* control byte */
        UF_MANIFEST_MAGIC "\nfile:///x\t12\t1\t\nfile:///x\t13\t2\t\n", /* twice */
        UF_MANIFEST_MAGIC "\n" UF_MANIFEST_PREFIX "\n",               /* empty prefix */
    };
    uf_manifest_t *m;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(uf_manifest_parse(bad[i], strlen(bad[i]), &m), UCACHE_ERR_INVALID);
    }
    static const char crlf[] = UF_MANIFEST_MAGIC "\r\nfile:///x\t12\t1\t\"e\"\r\n";
    us_object_t got;

    CU_ASSERT_EQUAL_FATAL(uf_manifest_parse(crlf, strlen(crlf), &m), UCACHE_OK); /* CRLF lines */
    CU_ASSERT(uf_manifest_get(m, "file:///x", &got));
    CU_ASSERT_STRING_EQUAL(got.etag, "\"e\"");
    uf_manifest_free(m);
    CU_ASSERT_EQUAL(uf_manifest_load("/nonexistent/manifest", &m), UCACHE_ERR_NOT_FOUND);
}

const tc_test_t manifest_tests[] = {
    {"manifest_roundtrip", test_manifest_roundtrip},
    {"manifest_malformed", test_manifest_malformed},
    {NULL, NULL}
};
