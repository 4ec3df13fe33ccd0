/*
 * origin_s3.c - S3 origins (see origin_s3.h) on the HTTP machinery of
 * origin_http.c: this file turns s3://BUCKET/KEY and the credentials into a
 * request URL and, per attempt, a SigV4 signature (a fresh x-amz-date each
 * time), and lists prefixes with ListObjectsV2.  The signed headers are
 * host, x-amz-content-sha256, x-amz-date and x-amz-security-token; Range
 * and If-Match ride unsigned, as S3 allows.
 */
#include "origin/origin_s3.h"
#include "origin/cred.h"
#include "origin/origin_http.h"
#include "util/log.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define U3_URL_MAX 2048
#define U3_KEY_MAX 1024

/* One request: where it goes and what is signed. */
typedef struct u3_req {
    us_s3_cred_t cred;
    char         host[256];
    char         path[U3_URL_MAX];   /* canonical path, encoded */
    char         query[U3_URL_MAX];  /* canonical query         */
    char         url[U3_URL_MAX + 64];
} u3_req_t;

/* AWS_PROFILE's value of @p key in the shared file @p env_path / ~/.aws/@p file */
static bool u3_shared(const char *env_path, const char *file, bool config,
                      const char *key, char *out, size_t cap)
{
    char path[512], profile[128], section[160];
    const char *home = getenv("HOME");

    if (!us_cred_get(env_path, path, sizeof(path))) {
        if (home == NULL) {
            return false;
        }
        snprintf(path, sizeof(path), "%s/.aws/%s", home, file);
    }
    if (!us_cred_get("AWS_PROFILE", profile, sizeof(profile))) {
        snprintf(profile, sizeof(profile), "default");
    }
    snprintf(section, sizeof(section), "%s%s",
             (config && (strcmp(profile, "default") != 0)) ? "profile " : "", profile);
    return us_ini_get(path, section, key, out, cap);
}

void us_s3_cred_load(us_s3_cred_t *c)
{
    memset(c, 0, sizeof(*c));
    if (us_cred_get("AWS_ACCESS_KEY_ID", c->akid, sizeof(c->akid))) {
        us_cred_get("AWS_SECRET_ACCESS_KEY", c->secret, sizeof(c->secret));
        us_cred_get("AWS_SESSION_TOKEN", c->token, sizeof(c->token));
    } else if (u3_shared("AWS_SHARED_CREDENTIALS_FILE", "credentials", false,
                         "aws_access_key_id", c->akid, sizeof(c->akid))) {
        u3_shared("AWS_SHARED_CREDENTIALS_FILE", "credentials", false,
                  "aws_secret_access_key", c->secret, sizeof(c->secret));
        u3_shared("AWS_SHARED_CREDENTIALS_FILE", "credentials", false,
                  "aws_session_token", c->token, sizeof(c->token));
    }
    if (!us_cred_get("AWS_REGION", c->region, sizeof(c->region)) &&
        !us_cred_get("AWS_DEFAULT_REGION", c->region, sizeof(c->region)) &&
        !u3_shared("AWS_CONFIG_FILE", "config", true, "region", c->region,
                   sizeof(c->region))) {
        snprintf(c->region, sizeof(c->region), "us-east-1");
    }
    if (!us_cred_get("AWS_ENDPOINT_URL_S3", c->endpoint, sizeof(c->endpoint)) &&
        !us_cred_get("AWS_ENDPOINT_URL", c->endpoint, sizeof(c->endpoint))) {
        u3_shared("AWS_CONFIG_FILE", "config", true, "endpoint_url", c->endpoint,
                  sizeof(c->endpoint));
    }
    while ((c->endpoint[0] != '\0') && (c->endpoint[strlen(c->endpoint) - 1] == '/')) {
        c->endpoint[strlen(c->endpoint) - 1] = '\0';
    }
}

static void u3_hex(const unsigned char *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i]     = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool u3_hmac(const void *key, size_t klen, const char *msg, unsigned char *mac)
{
    unsigned int len = 0;

    return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg),
                mac, &len) != NULL;
}

ucache_status_t us_s3_sign(const us_s3_cred_t *c, const char *verb, const char *path,
                           const char *query, const char *const *hdrs, size_t nhdrs,
                           const char *payload_sha256, const char *amzdate, char *out,
                           size_t cap)
{
    char creq[8192], canon[4096] = "", names[512] = "", sts[512], scope[128];
    char hash[2 * SHA256_DIGEST_LENGTH + 1], sig[2 * SHA256_DIGEST_LENGTH + 1];
    char date[9], key[160];
    unsigned char k[SHA256_DIGEST_LENGTH], d[SHA256_DIGEST_LENGTH];
    size_t i, cn = 0, nn = 0, nl;
    const char *colon;
    int n;

    if ((strlen(amzdate) != 16) || (c->secret[0] == '\0')) {
        return UCACHE_ERR_INVALID;
    }
    for (i = 0; i < nhdrs; i++) {
        colon = strchr(hdrs[i], ':');
        if (colon == NULL) {
            return UCACHE_ERR_INVALID;
        }
        nl = (size_t)(colon - hdrs[i]);
        n = snprintf(canon + cn, sizeof(canon) - cn, "%s\n", hdrs[i]);
        if ((n < 0) || ((size_t)n >= sizeof(canon) - cn) ||
            (nn + nl + 2 > sizeof(names))) {
            return UCACHE_ERR_INVALID;
        }
        cn += (size_t)n;
        if (nn > 0) {
            names[nn++] = ';';
        }
        memcpy(names + nn, hdrs[i], nl);
        nn += nl;
        names[nn] = '\0';
    }
    n = snprintf(creq, sizeof(creq), "%s\n%s\n%s\n%s\n%s\n%s", verb, path, query, canon,
                 names, payload_sha256);
    if ((n < 0) || ((size_t)n >= sizeof(creq))) {
        return UCACHE_ERR_INVALID;
    }
    SHA256((const unsigned char *)creq, (size_t)n, d);
    u3_hex(d, sizeof(d), hash);
    memcpy(date, amzdate, 8);
    date[8] = '\0';
    snprintf(scope, sizeof(scope), "%s/%s/s3/aws4_request", date, c->region);
    snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", amzdate, scope, hash);
    n = snprintf(key, sizeof(key), "AWS4%s", c->secret);
    if ((n < 0) || ((size_t)n >= sizeof(key)) ||
        !u3_hmac(key, (size_t)n, date, k) || !u3_hmac(k, sizeof(k), c->region, k) ||
        !u3_hmac(k, sizeof(k), "s3", k) || !u3_hmac(k, sizeof(k), "aws4_request", k) ||
        !u3_hmac(k, sizeof(k), sts, d)) {
        return UCACHE_ERR_INVALID;
    }
    u3_hex(d, sizeof(d), sig);
    n = snprintf(out, cap, "AWS4-HMAC-SHA256 Credential=%s/%s,SignedHeaders=%s,Signature=%s",
                 c->akid, scope, names, sig);
    return ((n < 0) || ((size_t)n >= cap)) ? UCACHE_ERR_INVALID : UCACHE_OK;
}

/* Per attempt: the x-amz headers and the signature (none if anonymous). */
static ucache_status_t u3_sign(void *arg, const char *verb, const char *range,
                               const char *if_match, struct curl_slist **hdrs_p)
{
    const u3_req_t *r = arg;
    char amzdate[32], host[300], date[64], token[2100], auth[512], line[2200];
    const char *hdrs[4];
    ucache_status_t status;
    time_t now = time(NULL);
    struct tm tm;
    size_t n = 0;

    (void)range;
    (void)if_match;
    if (r->cred.akid[0] == '\0') {
        return UCACHE_OK;
    }
    gmtime_r(&now, &tm);
    strftime(amzdate, sizeof(amzdate), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(host, sizeof(host), "host:%s", r->host);
    snprintf(date, sizeof(date), "x-amz-date:%s", amzdate);
    hdrs[n++] = host;
    hdrs[n++] = "x-amz-content-sha256:" US_S3_EMPTY_SHA256;
    hdrs[n++] = date;
    if (r->cred.token[0] != '\0') {
        snprintf(token, sizeof(token), "x-amz-security-token:%s", r->cred.token);
        hdrs[n++] = token;
    }
    status = us_s3_sign(&r->cred, verb, r->path, r->query, hdrs, n, US_S3_EMPTY_SHA256,
                        amzdate, auth, sizeof(auth));
    if (status != UCACHE_OK) {
        UC_ERROR("could not sign an S3 request (a missing AWS_SECRET_ACCESS_KEY?)");
        return status;
    }
    *hdrs_p = curl_slist_append(*hdrs_p, "x-amz-content-sha256: " US_S3_EMPTY_SHA256);
    snprintf(line, sizeof(line), "x-amz-date: %s", amzdate);
    *hdrs_p = curl_slist_append(*hdrs_p, line);
    if (r->cred.token[0] != '\0') {
        snprintf(line, sizeof(line), "x-amz-security-token: %s", r->cred.token);
        *hdrs_p = curl_slist_append(*hdrs_p, line);
    }
    snprintf(line, sizeof(line), "Authorization: %s", auth);
    *hdrs_p = curl_slist_append(*hdrs_p, line);
    return UCACHE_OK;
}

/*
 * A bucket name by S3's rules: 3 to 63 of a-z 0-9 '.' '-', starting and
 * ending with a letter or digit, no "..", not an IPv4 address, none of the
 * reserved prefixes and suffixes.  So it is never a host, port or address.
 */
static bool u3_bucket_ok(const char *b, size_t n)
{
    unsigned dots = 0, digits_only = 1;
    size_t i;

    if ((n < 3) || (n > 63) || !isalnum((unsigned char)b[0]) ||
        !isalnum((unsigned char)b[n - 1]) || (strncmp(b, "xn--", 4) == 0) ||
        (strncmp(b, "sthree-", 7) == 0) ||
        ((n > 8) && (strncmp(b + n - 8, "-s3alias", 8) == 0)) ||
        ((n > 7) && (strncmp(b + n - 7, "--ol-s3", 7) == 0))) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (b[i] == '.') {
            if (b[i + 1] == '.') {
                return false;
            }
            dots++;
        } else if (!isdigit((unsigned char)b[i])) {
            digits_only = 0;
            if (!(((b[i] >= 'a') && (b[i] <= 'z')) || (b[i] == '-'))) {
                return false;
            }
        }
    }
    return !((dots == 3) && digits_only);   /* 192.168.5.4 */
}

/* A key: 1 to 1024 bytes, no control character, no "." or ".." segment
 * (an HTTP client would resolve it and read another object). */
static bool u3_key_ok(const char *k, bool listing)
{
    size_t n = strlen(k), i, seg;

    if ((n > 1024) || ((n == 0) && !listing)) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (((unsigned char)k[i] < 0x20) || (k[i] == 0x7f)) {
            return false;
        }
    }
    for (i = 0; i <= n; i += seg + 1) {
        seg = strcspn(k + i, "/");
        if (((seg == 1) && (k[i] == '.')) || ((seg == 2) && (k[i] == '.') && (k[i + 1] == '.'))) {
            return false;
        }
    }
    return true;
}

/*
 * s3://BUCKET/KEY -> the request for the object (@p query "" ) or, for a
 * listing, the bucket with @p query (canonical, already encoded).
 */
static ucache_status_t u3_parse(const char *uri, bool listing, const char *query,
                                u3_req_t *r, char *bucket, size_t bcap, char *key,
                                size_t kcap)
{
    char enc[U3_URL_MAX], prefix[256] = "", scheme[16] = "https";
    const char *p = uri + 5, *slash = strchr(p, '/'), *hs, *he;
    size_t blen = slash ? (size_t)(slash - p) : strlen(p);
    bool vhost;
    int n;

    if ((strncmp(uri, "s3://", 5) != 0) || (blen >= bcap) || !u3_bucket_ok(p, blen) ||
        (!listing && ((slash == NULL) || (slash[1] == '\0')))) {
        goto bad;
    }
    memcpy(bucket, p, blen);
    bucket[blen] = '\0';
    snprintf(key, kcap, "%s", slash ? slash + 1 : "");
    if ((strlen(slash ? slash + 1 : "") >= kcap) || !u3_key_ok(key, listing)) {
        goto bad;
    }
    us_s3_cred_load(&r->cred);
    if (!us_uri_encode(key, strlen(key), true, enc, sizeof(enc))) {
        goto bad;
    }
    if (r->cred.endpoint[0] != '\0') {
        hs = strstr(r->cred.endpoint, "://");
        if (hs == NULL) {
            UC_ERROR("AWS_ENDPOINT_URL '%.64s' is not scheme://host[:port]",
                     r->cred.endpoint);
            return UCACHE_ERR_INVALID;
        }
        snprintf(scheme, sizeof(scheme), "%.*s", (int)(hs - r->cred.endpoint),
                 r->cred.endpoint);
        hs += 3;
        he = hs + strcspn(hs, "/");
        snprintf(prefix, sizeof(prefix), "%s", he);
        snprintf(r->host, sizeof(r->host), "%.*s", (int)(he - hs), hs);
        vhost = false;
    } else {
        vhost = (strchr(bucket, '.') == NULL);
        snprintf(r->host, sizeof(r->host), vhost ? "%s.s3.%s.amazonaws.com" :
                 "%.0ss3.%s.amazonaws.com", bucket, r->cred.region);
    }
    /* curl leaves a default port out of Host: so must the signature */
    n = (int)strlen(r->host);
    if (((strcmp(scheme, "https") == 0) && (n > 4) && (strcmp(r->host + n - 4, ":443") == 0)) ||
        ((strcmp(scheme, "http") == 0) && (n > 3) && (strcmp(r->host + n - 3, ":80") == 0))) {
        *strrchr(r->host, ':') = '\0';
    }
    if (vhost) {
        n = snprintf(r->path, sizeof(r->path), "/%s", listing ? "" : enc);
    } else {
        n = snprintf(r->path, sizeof(r->path), "%s/%s%s%s", prefix, bucket,
                     listing ? "" : "/", listing ? "" : enc);
    }
    if ((n < 0) || ((size_t)n >= sizeof(r->path))) {
        goto bad;
    }
    snprintf(r->query, sizeof(r->query), "%s", query);
    n = snprintf(r->url, sizeof(r->url), "%s://%s%s%s%s", scheme, r->host, r->path,
                 query[0] ? "?" : "", query);
    if ((n < 0) || ((size_t)n >= sizeof(r->url))) {
        goto bad;
    }
    return UCACHE_OK;
bad:
    UC_ERROR("'%.*s' is not s3://BUCKET/KEY by S3's naming rules (or too long)",
             (us_uri_loglen(uri) < 64) ? us_uri_loglen(uri) : 64, uri);
    return UCACHE_ERR_INVALID;
}

static ucache_status_t u3_request(const char *uri, us_object_t *stat_p,
                                  const us_object_t *obj, uint64_t off, void *buf,
                                  size_t len)
{
    us_http_auth_t auth = { .sign = u3_sign };
    char bucket[64], key[U3_KEY_MAX];
    u3_req_t *r = malloc(sizeof(*r));
    ucache_status_t status;

    if (r == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    status = u3_parse(uri, false, "", r, bucket, sizeof(bucket), key, sizeof(key));
    if (status == UCACHE_OK) {
        auth.arg = r;
        auth.endpoint_configured = (r->cred.endpoint[0] != '\0');
        status = us_http_do(uri, r->url, &auth, stat_p, obj, off, buf, len);
    }
    free(r);
    return status;
}

ucache_status_t us_s3_request_url(const char *uri, char *url, size_t cap,
                                  bool *configured_p)
{
    char bucket[64], key[U3_KEY_MAX];
    u3_req_t *r = malloc(sizeof(*r));
    ucache_status_t status;

    if (r == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    status = (strncmp(uri, "s3://", 5) == 0) ?
             u3_parse(uri, false, "", r, bucket, sizeof(bucket), key, sizeof(key)) :
             UCACHE_ERR_INVALID;
    if ((status == UCACHE_OK) && (snprintf(url, cap, "%s", r->url) >= (int)cap)) {
        status = UCACHE_ERR_MSG_TRUNCATED;
    }
    *configured_p = (status == UCACHE_OK) && (r->cred.endpoint[0] != '\0');
    free(r);
    return status;
}

static ucache_status_t u3_stat(const char *uri, us_object_t *obj_p)
{
    return u3_request(uri, obj_p, NULL, 0, NULL, 0);
}

static ucache_status_t u3_read(const char *uri, const us_object_t *obj, uint64_t off,
                               void *buf, size_t len)
{
    return u3_request(uri, NULL, obj, off, buf, len);
}

static const us_list_names_t u3_list_names = {
    "Contents", "Key", "Size", "ETag", "LastModified", "NextContinuationToken"
};

static ucache_status_t u3_list(const char *prefix, us_origin_list_fn_t fn, void *arg)
{
    char query[U3_URL_MAX], pfx[U3_URL_MAX], tok[1024] = "", etok[U3_URL_MAX] = "";
    char bucket[64], key[U3_KEY_MAX], base[80];
    u3_req_t *r = malloc(sizeof(*r));
    us_http_auth_t auth = { .sign = u3_sign, .arg = r };
    ucache_status_t status = UCACHE_ERR_NO_MEMORY;
    us_origin_params_t prm;
    int n;

    us_origin_params(&prm);
    while (r != NULL) {
        status = u3_parse(prefix, true, "", r, bucket, sizeof(bucket), key, sizeof(key));
        if ((status != UCACHE_OK) ||
            !us_uri_encode(key, strlen(key), false, pfx, sizeof(pfx)) ||
            !us_uri_encode(tok, strlen(tok), false, etok, sizeof(etok))) {
            status = UCACHE_ERR_INVALID;
            break;
        }
        /* names sorted: continuation-token < list-type < max-keys < prefix */
        n = snprintf(query, sizeof(query), "%s%s%slist-type=2&max-keys=%u&prefix=%s",
                     tok[0] ? "continuation-token=" : "", etok, tok[0] ? "&" : "",
                     prm.list_page, pfx);
        if ((n < 0) || ((size_t)n >= sizeof(query))) {
            status = UCACHE_ERR_INVALID;
            break;
        }
        status = u3_parse(prefix, true, query, r, bucket, sizeof(bucket), key, sizeof(key));
        if (status == UCACHE_OK) {
            snprintf(base, sizeof(base), "s3://%s", bucket);
            auth.endpoint_configured = (r->cred.endpoint[0] != '\0');
            status = us_http_list_page(prefix, r->url, &auth, &u3_list_names, base, fn, arg,
                                       tok, sizeof(tok));
        }
        if ((status != UCACHE_OK) || (tok[0] == '\0')) {
            break;
        }
    }
    free(r);
    return status;
}

const us_origin_ops_t us_origin_s3_ops = {
    .scheme = "s3",
    .stat   = u3_stat,
    .read   = u3_read,
    .list   = u3_list,
    .by_etag = true,
};
