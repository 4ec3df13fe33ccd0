/*
 * fuzz_uri.c - URIs from requesters (origin/allow.c, origin/origin_azure.c,
 * origin/origin_s3.c).  The oracle is libcurl's own URL parser - what the
 * request would really connect to:
 *   - an az:// or https://ACCOUNT.blob.core.windows.net URI that Azure's
 *     rules accept goes to ACCOUNT.blob.core.windows.net (3 to 24 of a-z
 *     0-9), on the default port;
 *   - an s3:// URI that S3's rules accept goes to BUCKET.s3.REGION.
 *     amazonaws.com or s3.REGION.amazonaws.com, on the default port;
 *   - a URI an allow rule accepts as naming its host is, for libcurl too,
 *     on that host (and port, if the rule has one).
 * No credentials are configured (the default endpoints are the oracle's).
 */
#include "origin/allow.h"
#include "origin/cred.h"
#include "origin/origin.h"
#include "origin/origin_azure.h"
#include "origin/origin_s3.h"
#include "tests/fuzz/fuzz.h"

#include <ctype.h>
#include <curl/curl.h>
#include <string.h>
#include <strings.h>

static us_allow_t fz_allow;

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const unset[] = {
        "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY",
        "AZURE_STORAGE_SAS_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION",
        "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    };
    unsigned i;

    (void)argc;
    (void)argv;
    for (i = 0; i < sizeof(unset) / sizeof(unset[0]); i++) {
        unsetenv(unset[i]);
    }
    setenv("HOME", "/nonexistent", 1);
    fz_quiet();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return (us_allow_parse("https://a.example/data/,http://10.1.2.3:8080,az://acct1,"
                           "s3://bkt,file:///srv/ds/,https://", &fz_allow) == UCACHE_OK) ? 0 : 1;
}

/* libcurl's host and port of @p url (schemes it does not know too). */
static bool fz_curl_host(const char *url, char *host, size_t cap, long *port_p)
{
    CURLU *u = curl_url();
    char *h = NULL, *p = NULL;
    bool ok;

    ok = (u != NULL) &&
         (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) &&
         (curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK);
    if (ok) {
        snprintf(host, cap, "%s", h);
        *port_p = (curl_url_get(u, CURLUPART_PORT, &p, 0) == CURLUE_OK) ? atol(p) : 0;
    }
    curl_free(h);
    curl_free(p);
    curl_url_cleanup(u);
    return ok;
}

static bool fz_suffix(const char *s, const char *sfx, size_t *stem_p)
{
    size_t n = strlen(s), k = strlen(sfx);

    *stem_p = (n >= k) ? n - k : 0;
    return (n >= k) && (strcasecmp(s + n - k, sfx) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char uri[US_URI_MAX], url[4096], host[512];
    const us_allow_rule_t *r;
    us_uri_parts_t parts;
    size_t stem, i;
    bool named, conf;
    long port;
    unsigned k;

    if (size >= sizeof(uri)) {
        return 0;
    }
    memcpy(uri, data, size);
    uri[size] = '\0';
    if (strlen(uri) != size) {
        return 0;                       /* a NUL inside: not a C string URI */
    }
    if (us_az_request_url(uri, url, sizeof(url), &conf) == UCACHE_OK) {
        FZ_CHECK(!conf);
        FZ_CHECK(fz_curl_host(url, host, sizeof(host), &port));
        FZ_CHECK(port == 0);
        FZ_CHECK(fz_suffix(host, ".blob.core.windows.net", &stem) && (stem > 0));
        FZ_CHECK((stem >= 3) && (stem <= 24));
        for (i = 0; i < stem; i++) {
            FZ_CHECK(islower((unsigned char)host[i]) || isdigit((unsigned char)host[i]));
        }
    }
    if (us_s3_request_url(uri, url, sizeof(url), &conf) == UCACHE_OK) {
        FZ_CHECK(!conf);
        FZ_CHECK(fz_curl_host(url, host, sizeof(host), &port));
        FZ_CHECK(port == 0);
        FZ_CHECK(fz_suffix(host, "s3.us-east-1.amazonaws.com", &stem));
        FZ_CHECK((stem == 0) || ((stem >= 4) && (host[stem - 1] == '.')));
        for (i = 0; i + 1 < stem; i++) {
            FZ_CHECK(islower((unsigned char)host[i]) || isdigit((unsigned char)host[i]) ||
                     (host[i] == '-') || (host[i] == '.'));
        }
    }
    if ((us_allow_uri(&fz_allow, uri, &named) == UCACHE_OK) && named) {
        FZ_CHECK(us_uri_split(uri, &parts) == UCACHE_OK);
        for (k = 0; k < fz_allow.n; k++) {
            r = &fz_allow.rule[k];
            if ((r->host[0] != '\0') && (strcmp(r->host, parts.host) == 0)) {
                break;
            }
        }
        FZ_CHECK(k < fz_allow.n);
        if (fz_curl_host(uri, host, sizeof(host), &port)) {
            FZ_CHECK(strcasecmp(host, r->host) == 0);
            FZ_CHECK((r->port == 0) || (port == (long)r->port) ||
                     ((port == 0) && (r->port == 443) && (strcmp(parts.scheme, "https") == 0)));
        }
    }
    return 0;
}
