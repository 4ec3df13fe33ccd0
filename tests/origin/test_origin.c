/*
 * test_origin.c - the origins' pieces that need no server: SigV4 against
 * AWS's published examples, percent-encoding, the ini and credential
 * lookups (environment < file order, AWS shared files and profiles), the
 * ETag normalisation that makes listings and HEADs agree, file:// listing,
 * and the bearer-token provider's caching.
 */
#include "ucache.h"
#include "origin/azure_identity.h"
#include "origin/cred.h"
#include "origin/origin.h"
#include "origin/origin_http.h"
#include "origin/origin_s3.h"
#include "tests/common.h"

#include <sys/stat.h>
#include <unistd.h>

extern const tc_test_t allow_tests[];

static char tc_dir[64];

static void tc_write(const char *name, const char *text, mode_t mode)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tc_dir, name);
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void tc_mkdir(void)
{
    snprintf(tc_dir, sizeof(tc_dir), "/tmp/ucache-origin.XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tc_dir));
}

static void tc_rmdir(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tc_dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* The examples of the S3 SigV4 documentation ("Examples: Signature
 * Calculations in AWS Signature Version 4", header-based auth). */
static void test_sigv4_known_answers(void)
{
    us_s3_cred_t c = { .akid = "AKIAIOSFODNN7EXAMPLE",
                       .secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                       .region = "us-east-1" };
    const char *get[] = { "host:examplebucket.s3.amazonaws.com", "range:bytes=0-9",
                          "x-amz-content-sha256:" US_S3_EMPTY_SHA256,
                          "x-amz-date:20130524T000000Z" };
    const char *list[] = { "host:examplebucket.s3.amazonaws.com",
                           "x-amz-content-sha256:" US_S3_EMPTY_SHA256,
                           "x-amz-date:20130524T000000Z" };
    char auth[512];

    CU_ASSERT_EQUAL(us_s3_sign(&c, "GET", "/test.txt", "", get, 4, US_S3_EMPTY_SHA256,
                               "20130524T000000Z", auth, sizeof(auth)), UCACHE_OK);
    CU_ASSERT_STRING_EQUAL(auth,
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
        "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    CU_ASSERT_EQUAL(us_s3_sign(&c, "GET", "/", "max-keys=2&prefix=J", list, 3,
                               US_S3_EMPTY_SHA256, "20130524T000000Z", auth,
                               sizeof(auth)), UCACHE_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(auth, "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc"
                                        "59db6670ed5711ef69dc6f7"));
    /* bad input: no secret, a malformed date, a header without ':', no room */
    c.secret[0] = '\0';
    CU_ASSERT_EQUAL(us_s3_sign(&c, "GET", "/", "", list, 3, US_S3_EMPTY_SHA256,
                               "20130524T000000Z", auth, sizeof(auth)), UCACHE_ERR_INVALID);
    snprintf(c.secret, sizeof(c.secret), "x");
    CU_ASSERT_EQUAL(us_s3_sign(&c, "GET", "/", "", list, 3, US_S3_EMPTY_SHA256, "2013",
                               auth, sizeof(auth)), UCACHE_ERR_INVALID);
    list[0] = "host";
    CU_ASSERT_EQUAL(us_s3_sign(&c, "GET", "/", "", list, 3, US_S3_EMPTY_SHA256,
                               "20130524T000000Z", auth, sizeof(auth)), UCACHE_ERR_INVALID);
    list[0] = "host:h";
    CU_ASSERT_EQUAL(us_s3_sign(&c, "GET", "/", "", list, 3, US_S3_EMPTY_SHA256,
                               "20130524T000000Z", auth, 16), UCACHE_ERR_INVALID);
}

static void test_uri_encode(void)
{
    const char *s = "dir/a b+c~d_e.f-%é";
    char out[64];

    CU_ASSERT_TRUE(us_uri_encode(s, strlen(s), true, out, sizeof(out)));
    CU_ASSERT_STRING_EQUAL(out, "dir/a%20b%2Bc~d_e.f-%25%C3%A9");
    CU_ASSERT_TRUE(us_uri_encode(s, 5, false, out, sizeof(out)));
    CU_ASSERT_STRING_EQUAL(out, "dir%2Fa");
    CU_ASSERT_FALSE(us_uri_encode(s, strlen(s), true, out, 10));
    CU_ASSERT_TRUE(us_uri_encode("", 0, true, out, 1));
    CU_ASSERT_STRING_EQUAL(out, "");
}

static void test_ini_and_credentials(void)
{
    char path[128], v[64];

    tc_mkdir();
    tc_write("ini", "# comment\nTOP = 1\n; other\n[default]\n  key=  value one \n"
                     "[profile dev]\nkey = dev\nempty =\n[x\n", 0600);
    snprintf(path, sizeof(path), "%s/ini", tc_dir);
    CU_ASSERT_TRUE(us_ini_get(path, "", "TOP", v, sizeof(v)));
    CU_ASSERT_STRING_EQUAL(v, "1");
    CU_ASSERT_TRUE(us_ini_get(path, "default", "key", v, sizeof(v)));
    CU_ASSERT_STRING_EQUAL(v, "value one");
    CU_ASSERT_TRUE(us_ini_get(path, "profile dev", "key", v, sizeof(v)));
    CU_ASSERT_STRING_EQUAL(v, "dev");
    CU_ASSERT_TRUE(us_ini_get(path, "profile dev", "empty", v, sizeof(v)));
    CU_ASSERT_STRING_EQUAL(v, "");
    CU_ASSERT_FALSE(us_ini_get(path, "default", "TOP", v, sizeof(v)));
    CU_ASSERT_FALSE(us_ini_get(path, "nope", "key", v, sizeof(v)));
    CU_ASSERT_FALSE(us_ini_get(path, "default", "key", v, 4)); /* won't fit */
    CU_ASSERT_FALSE(us_ini_get("/nonexistent/ini", "", "TOP", v, sizeof(v)));

    /* the environment wins over the credentials file; the file fills in */
    tc_write("cred", "TC_CRED_A = from-file\nTC_CRED_B=file-b\n", 0600);
    snprintf(path, sizeof(path), "%s/cred", tc_dir);
    setenv("TC_CRED_A", "from-env", 1);
    unsetenv("TC_CRED_B");
    CU_ASSERT_TRUE(us_cred_get_in(path, "TC_CRED_A", v, sizeof(v)));
    CU_ASSERT_STRING_EQUAL(v, "from-env");
    CU_ASSERT_TRUE(us_cred_get_in(path, "TC_CRED_B", v, sizeof(v)));
    CU_ASSERT_STRING_EQUAL(v, "file-b");
    CU_ASSERT_FALSE(us_cred_get_in(path, "TC_CRED_C", v, sizeof(v)));
    CU_ASSERT_STRING_EQUAL(v, "");
    CU_ASSERT_FALSE(us_cred_get_in("", "TC_CRED_B", v, sizeof(v)));
    CU_ASSERT_FALSE(us_cred_get("TC_CRED_B", v, sizeof(v))); /* outside a call: none */
    {   /* inside a call: the caller's file */
        us_origin_params_t prm;
        const us_origin_params_t *saved;

        us_origin_params_default(&prm);
        snprintf(prm.cred_path, sizeof(prm.cred_path), "%s", path);
        saved = us_origin_enter(&prm);
        CU_ASSERT_TRUE(us_cred_get("TC_CRED_B", v, sizeof(v)));
        CU_ASSERT_STRING_EQUAL(v, "file-b");
        us_origin_leave(saved);
    }
    unsetenv("TC_CRED_A");
    tc_rmdir();
}

static void test_s3_credentials(void)
{
    static const char *vars[] = { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                  "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
                                  "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE",
                                  "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE" };
    char path[128], conf[128];
    us_s3_cred_t c;
    size_t i;

    tc_mkdir();
    for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        unsetenv(vars[i]);
    }
    tc_write("credentials", "[default]\naws_access_key_id = AKDEF\n"
                             "aws_secret_access_key = SDEF\n[dev]\naws_access_key_id=AKDEV\n"
                             "aws_secret_access_key=SDEV\naws_session_token=TDEV\n", 0600);
    tc_write("config", "[default]\nregion = eu-west-1\n[profile dev]\nregion = ap-south-1\n"
                        "endpoint_url = http://127.0.0.1:9000/\n", 0600);
    snprintf(path, sizeof(path), "%s/credentials", tc_dir);
    snprintf(conf, sizeof(conf), "%s/config", tc_dir);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    setenv("AWS_CONFIG_FILE", conf, 1);
    us_s3_cred_load(&c);
    CU_ASSERT_STRING_EQUAL(c.akid, "AKDEF");
    CU_ASSERT_STRING_EQUAL(c.secret, "SDEF");
    CU_ASSERT_STRING_EQUAL(c.region, "eu-west-1");
    CU_ASSERT_STRING_EQUAL(c.endpoint, "");
    setenv("AWS_PROFILE", "dev", 1);
    us_s3_cred_load(&c);
    CU_ASSERT_STRING_EQUAL(c.akid, "AKDEV");
    CU_ASSERT_STRING_EQUAL(c.token, "TDEV");
    CU_ASSERT_STRING_EQUAL(c.region, "ap-south-1");
    CU_ASSERT_STRING_EQUAL(c.endpoint, "http://127.0.0.1:9000"); /* trailing / cut */
    /* the environment beats the files, name by name */
    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SENV", 1);
    setenv("AWS_REGION", "us-west-2", 1);
    setenv("AWS_ENDPOINT_URL", "http://localhost:1", 1);
    us_s3_cred_load(&c);
    CU_ASSERT_STRING_EQUAL(c.akid, "AKENV");
    CU_ASSERT_STRING_EQUAL(c.secret, "SENV");
    CU_ASSERT_STRING_EQUAL(c.token, "");
    CU_ASSERT_STRING_EQUAL(c.region, "us-west-2");
    CU_ASSERT_STRING_EQUAL(c.endpoint, "http://localhost:1");
    for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        unsetenv(vars[i]);
    }
    setenv("HOME", tc_dir, 1); /* no ~/.aws: anonymous, us-east-1 */
    us_s3_cred_load(&c);
    CU_ASSERT_STRING_EQUAL(c.akid, "");
    CU_ASSERT_STRING_EQUAL(c.region, "us-east-1");
    tc_rmdir();
}

/* A listing's ETag (quoted or not) and a HEAD's give the same version. */
/* Last-Modified as Azure and HTTP send it, LastModified as S3 lists it:
 * one time, seconds since the epoch; anything else unknown (0). */
static void test_http_dates(void)
{
    us_object_t o;

    CU_ASSERT_EQUAL(us_http_date("Wed, 09 Jun 2021 10:18:14 GMT"), 1623233894);
    CU_ASSERT_EQUAL(us_http_date("2021-06-09T10:18:14.000Z"), 1623233894);
    CU_ASSERT_EQUAL(us_http_date("2021-06-09T10:18:14Z"), 1623233894);
    CU_ASSERT_EQUAL(us_http_date(""), 0);
    CU_ASSERT_EQUAL(us_http_date(NULL), 0);
    CU_ASSERT_EQUAL(us_http_date("yesterday-ish"), 0);
    CU_ASSERT_EQUAL(us_http_date("2021-13-09T10:18:14Z"), 0);
    CU_ASSERT_EQUAL(us_http_date("1969-06-09T10:18:14Z"), 0);
    us_http_object("\"e\"", "Wed, 09 Jun 2021 10:18:14 GMT", 5, &o);
    CU_ASSERT_EQUAL(o.mtime, 1623233894);
}

static void test_object_versions(void)
{
    us_object_t a, b, c, d;

    us_http_object("\"0x8DB1\"", "x", 10, &a);
    us_http_object("0x8DB1", "y", 10, &b);
    CU_ASSERT_EQUAL(a.version, b.version);
    CU_ASSERT_STRING_EQUAL(b.etag, "\"0x8DB1\"");
    CU_ASSERT_EQUAL(b.size, 10);
    us_http_object("", "Mon, 01 Jan 2024 00:00:00 GMT", 10, &c);
    us_http_object(NULL, "Mon, 01 Jan 2024 00:00:00 GMT", 11, &d);
    CU_ASSERT_NOT_EQUAL(c.version, d.version);   /* size is in the version */
    CU_ASSERT_NOT_EQUAL(a.version, c.version);
    CU_ASSERT_STRING_EQUAL(c.etag, "");
}

typedef struct tc_listed {
    unsigned n;
    char     uris[8][256];
    uint64_t sizes[8];
} tc_listed_t;

static ucache_status_t tc_list_cb(void *arg, const char *uri, const us_object_t *obj)
{
    tc_listed_t *l = arg;

    if (l->n < 8) {
        snprintf(l->uris[l->n], sizeof(l->uris[0]), "%s", uri);
        l->sizes[l->n] = obj->size;
    }
    l->n++;
    return (l->n == 100) ? UCACHE_ERR_CANCELED : UCACHE_OK;
}

static void test_file_listing(void)
{
    char uri[256], want[256];
    tc_listed_t l;
    us_object_t obj;

    tc_mkdir();
    snprintf(uri, sizeof(uri), "%s/sub", tc_dir);
    CU_ASSERT_EQUAL(mkdir(uri, 0700), 0);
    tc_write("b", "bb", 0600);
    tc_write("a", "a", 0600);
    tc_write("sub/c", "ccc", 0600);
    snprintf(uri, sizeof(uri), "%s/link", tc_dir);
    CU_ASSERT_EQUAL(symlink("/etc", uri), 0);  /* not followed */

    memset(&l, 0, sizeof(l));
    snprintf(uri, sizeof(uri), "file://%s/", tc_dir);
    CU_ASSERT_EQUAL(us_origin_list(NULL, uri, tc_list_cb, &l), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(l.n, 3);
    snprintf(want, sizeof(want), "file://%s/a", tc_dir);
    CU_ASSERT_STRING_EQUAL(l.uris[0], want);
    CU_ASSERT_EQUAL(l.sizes[0], 1);
    snprintf(want, sizeof(want), "file://%s/sub/c", tc_dir);
    CU_ASSERT_STRING_EQUAL(l.uris[2], want);
    CU_ASSERT_EQUAL(l.sizes[2], 3);
    /* the listing filled the metadata cache with what a stat says */
    CU_ASSERT_EQUAL(us_origin_stat_cached(NULL, want, false, &obj), UCACHE_OK);
    CU_ASSERT_EQUAL(obj.size, 3);

    memset(&l, 0, sizeof(l));
    snprintf(uri, sizeof(uri), "file://%s/b", tc_dir);   /* one file */
    CU_ASSERT_EQUAL(us_origin_list(NULL, uri, tc_list_cb, &l), UCACHE_OK);
    CU_ASSERT_EQUAL(l.n, 1);
    CU_ASSERT_EQUAL(l.sizes[0], 2);

    snprintf(uri, sizeof(uri), "file://%s/none/", tc_dir);
    CU_ASSERT_EQUAL(us_origin_list(NULL, uri, tc_list_cb, &l), UCACHE_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(us_origin_list(NULL, "http://127.0.0.1:1/x/", tc_list_cb, &l),
                    UCACHE_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(us_origin_list(NULL, "gopher://x/", tc_list_cb, &l), UCACHE_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(us_origin_list(NULL, "s3://x", tc_list_cb, &l), UCACHE_ERR_INVALID);
    tc_rmdir();
}

static unsigned tc_token_calls;

static ucache_status_t tc_token(void *arg, const char *resource, char *token, size_t cap,
                                 uint64_t *ttl_s_p)
{
    tc_token_calls++;
    if (arg != NULL) {
        return UCACHE_ERR_NOT_FOUND;
    }
    snprintf(token, cap, "tok-%u-%s", tc_token_calls, resource);
    *ttl_s_p = (strcmp(resource, "short") == 0) ? 30 : 3600;
    return UCACHE_OK;
}

static void test_token_provider(void)
{
    char tok[64];

    ucache_token_provider_set(NULL, NULL);
    CU_ASSERT_FALSE(us_token_enabled());
    CU_ASSERT_EQUAL(us_token_get("r", tok, sizeof(tok)), UCACHE_ERR_NOT_FOUND);

    ucache_token_provider_set(tc_token, NULL);
    tc_token_calls = 0;
    CU_ASSERT_TRUE(us_token_enabled());
    CU_ASSERT_EQUAL(us_token_get("r", tok, sizeof(tok)), UCACHE_OK);
    CU_ASSERT_STRING_EQUAL(tok, "tok-1-r");
    CU_ASSERT_EQUAL(us_token_get("r", tok, sizeof(tok)), UCACHE_OK); /* cached */
    CU_ASSERT_STRING_EQUAL(tok, "tok-1-r");
    CU_ASSERT_EQUAL(tc_token_calls, 1);
    /* another resource asks again; a token expiring within a minute too */
    CU_ASSERT_EQUAL(us_token_get("short", tok, sizeof(tok)), UCACHE_OK);
    CU_ASSERT_EQUAL(us_token_get("short", tok, sizeof(tok)), UCACHE_OK);
    CU_ASSERT_STRING_EQUAL(tok, "tok-3-short");
    CU_ASSERT_EQUAL(us_token_get("r", tok, 4), UCACHE_ERR_MSG_TRUNCATED);

    ucache_token_provider_set(tc_token, (void *)1); /* a failing provider */
    CU_ASSERT_EQUAL(us_token_get("r", tok, sizeof(tok)), UCACHE_ERR_DENIED);
    ucache_token_provider_set(NULL, NULL);
}

/* Token endpoints' answers: Entra's (a number), IMDS's (a string), a
 * lifetime from expires_on, and what is refused; the built-in identity
 * never displaces an application's provider. */
static void test_azure_token_parse(void)
{
    static const char *bad[] = {
        "", "[]", "{}", "{\"access_token\":5}", "{\"access_token\":\"\"}",
        "{\"access_token\":\"a b\"}", "{\"access_token\":\"a\\nb\"}",
        "{\"access_token\":\"t\",\"expires_in\":-1}",
        "{\"access_token\":\"t\",\"expires_in\":\"12x\"}",
        "{\"access_token\":\"t\",\"expires_in\":\"\"}",
        "{\"access_token\":\"t\"", "{\"access_token\":\"t\"} trailing",
    };
    char tok[16], line[128];
    uint64_t ttl;
    unsigned i;

#define TP(_s) us_azure_token_parse((_s), strlen(_s), tok, sizeof(tok), &ttl)
    CU_ASSERT_EQUAL(TP("{\"token_type\":\"Bearer\",\"expires_in\":3599,"
                       "\"access_token\":\"eyJ.a.b\"}"), UCACHE_OK);
    CU_ASSERT_STRING_EQUAL(tok, "eyJ.a.b");
    CU_ASSERT_EQUAL(ttl, 3599);
    CU_ASSERT_EQUAL(TP("{\"access_token\":\"x\",\"expires_in\":\"86399\"}"), UCACHE_OK);
    CU_ASSERT_EQUAL(ttl, 86399);
    CU_ASSERT_EQUAL(TP("{\"access_token\":\"x\",\"expires_in\":\"99999999\"}"), UCACHE_OK);
    CU_ASSERT_EQUAL(ttl, 24 * 3600);                     /* capped at a day */
    snprintf(line, sizeof(line), "{\"access_token\":\"x\",\"expires_on\":\"%llu\"}",
             (unsigned long long)time(NULL) + 1000);
    CU_ASSERT_EQUAL(TP(line), UCACHE_OK);
    CU_ASSERT(ttl >= 998 && ttl <= 1000);
    CU_ASSERT_EQUAL(TP("{\"access_token\":\"x\"}"), UCACHE_OK);  /* no lifetime */
    CU_ASSERT_EQUAL(ttl, 300);
    CU_ASSERT_EQUAL(TP("{\"access_token\":\"0123456789abcdef\"}"), UCACHE_ERR_INVALID);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(TP(bad[i]), UCACHE_ERR_INVALID);
    }
#undef TP
    /* an application's provider comes first; none: the identity is taken */
    ucache_token_provider_set(tc_token, NULL);
    CU_ASSERT_EQUAL(us_azure_identity_configure(US_AZID_IMDS, "http://127.0.0.1:9/x"),
                    US_AZID_NONE);
    tc_token_calls = 0;
    CU_ASSERT_EQUAL(us_token_get("r", tok, sizeof(tok)), UCACHE_OK);
    CU_ASSERT_EQUAL(tc_token_calls, 1);
    ucache_token_provider_set(NULL, NULL);
    CU_ASSERT_EQUAL(us_azure_identity_configure(US_AZID_IMDS, "http://127.0.0.1:9/x"),
                    US_AZID_IMDS);
    CU_ASSERT_TRUE(us_token_enabled());
    CU_ASSERT_EQUAL(us_azure_identity_configure(US_AZID_NONE, ""), US_AZID_NONE);
    CU_ASSERT_FALSE(us_token_enabled());
}

/* file:// origins: stat, read, a changed file is STALE, bad URIs. */
static void test_origin_file(void)
{
    char path[128], uri[160], buf[64];
    us_object_t o, o2;
    us_origin_stats_t s0, s1;

    tc_mkdir();
    snprintf(path, sizeof(path), "%s/obj", tc_dir);
    snprintf(uri, sizeof(uri), "file://%s", path);
    tc_write("obj", "0123456789", 0644);
    us_origin_stats(&s0);
    CU_ASSERT_EQUAL_FATAL(us_origin_stat(NULL, uri, &o), UCACHE_OK);
    CU_ASSERT_EQUAL(o.size, 10);
    CU_ASSERT_EQUAL(us_origin_read(NULL, uri, &o, 3, buf, 4), UCACHE_OK);
    CU_ASSERT(memcmp(buf, "3456", 4) == 0);
    CU_ASSERT_EQUAL(us_origin_read(NULL, uri, &o, 8, buf, 4), UCACHE_ERR_OUT_OF_RANGE);
    usleep(20000);
    tc_write("obj", "abcdefghij", 0644);         /* same size, new mtime */
    CU_ASSERT_EQUAL(us_origin_read(NULL, uri, &o, 0, buf, 4), UCACHE_ERR_STALE);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, uri, &o2), UCACHE_OK);
    CU_ASSERT(o2.version != o.version);
    CU_ASSERT_EQUAL(us_origin_read(NULL, uri, &o2, 0, buf, 4), UCACHE_OK);
    CU_ASSERT(memcmp(buf, "abcd", 4) == 0);
    snprintf(uri, sizeof(uri), "file://localhost%s", path);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, uri, &o), UCACHE_OK);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, "file:///no/such/file", &o), UCACHE_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, "file://host/x", &o), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, "ftp://x/y", &o), UCACHE_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, "nothing", &o), UCACHE_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, NULL, &o), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, "file:///tmp", &o), UCACHE_ERR_INVALID);
    us_origin_stats(&s1);
    CU_ASSERT_EQUAL(s1.reads - s0.reads, 3);     /* the out-of-range one never went out */
    CU_ASSERT(s1.errors - s0.errors >= 7);
    tc_rmdir();
}

int main(void)
{
    static const tc_test_t tests[] = {
        {"sigv4_known_answers", test_sigv4_known_answers},
        {"uri_encode", test_uri_encode},
        {"ini_and_credentials", test_ini_and_credentials},
        {"s3_credentials", test_s3_credentials},
        {"object_versions", test_object_versions},
        {"http_dates", test_http_dates},
        {"file_origin", test_origin_file},
        {"file_listing", test_file_listing},
        {"token_provider", test_token_provider},
        {"azure_token_parse", test_azure_token_parse},
        {NULL, NULL}
    };

    if ((CU_initialize_registry() != CUE_SUCCESS) || tc_add_suite("origin", tests) ||
        tc_add_suite("allow", allow_tests)) {
        return 2;
    }
    return tc_run();
}
