/*
 * origin_azure.c - Azure Blob origins (see origin_azure.h) on the HTTP
 * machinery of origin_http.c: this file turns a blob URI and the
 * environment's credentials into a request URL and, with an account key,
 * a Shared Key signature for every attempt (a fresh x-ms-date each time).
 * The canonicalized resource is "/" + account + the request's path, which
 * covers the emulator's path-style endpoints (account named twice) too.
 */
#include "origin/origin_azure.h"
#include "origin/cred.h"
#include "origin/origin_http.h"
#include "util/log.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UA_URL_MAX 2048

#define UA_TOKEN_RESOURCE "https://storage.azure.com/"

/* One blob (or a container's listing): where requests go, how to sign. */
typedef struct ua_blob {
    us_az_cred_t cred;
    bool         configured;   /* cred.endpoint is the configured BlobEndpoint */
    char         url[UA_URL_MAX + 1024];
    char         resource[UA_URL_MAX + 1024]; /* canonicalized resource */
} ua_blob_t;

static void ua_copy(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* "Key=value;Key=value" lookup of a connection string. */
static bool ua_conn_get(const char *conn, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name), n, i;
    const char *p = conn, *end;

    while ((p != NULL) && (*p != '\0')) {
        end = strchr(p, ';');
        if ((strncmp(p, name, nl) == 0) && (p[nl] == '=')) {
            p += nl + 1;
            n = end ? (size_t)(end - p) : strlen(p);
            for (i = 0; i < n; i++) {
                if (((unsigned char)p[i] < 0x20) || (p[i] == 0x7f)) {
                    UC_ERROR("AZURE_STORAGE_CONNECTION_STRING: %s has a control "
                             "character; ignored", name);
                    return false;
                }
            }
            if (n >= cap) {
                UC_ERROR("AZURE_STORAGE_CONNECTION_STRING: %s is longer than %zu bytes; "
                         "ignored", name, cap - 1);
                return false;   /* never a truncated key or endpoint */
            }
            ua_copy(out, cap, p, n);
            return true;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}

static bool ua_hex(char c)
{
    return ((c >= '0') && (c <= '9')) || ((c >= 'a') && (c <= 'f')) ||
           ((c >= 'A') && (c <= 'F'));
}

/* Whether [s, s + n) is RFC 3986 path characters (pchar), the characters
 * of @p extra and %HH escapes: what goes into a request URL as it is. */
static bool ua_uri_chars(const char *s, size_t n, const char *extra)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] == '%') {
            if ((i + 2 >= n) || !ua_hex(s[i + 1]) || !ua_hex(s[i + 2])) {
                return false;
            }
        } else if (!isalnum((unsigned char)s[i]) && ((s[i] == '\0') ||
                   ((strchr("-._~!$&'()*+,;=:@", s[i]) == NULL) &&
                    (strchr(extra, s[i]) == NULL)))) {
            return false;
        }
    }
    return true;
}

/* A BlobEndpoint: http(s)://HOST[:PORT][/PATH], nothing else. */
static bool ua_endpoint_ok(const char *ep)
{
    us_uri_parts_t u;

    return ((strncmp(ep, "http://", 7) == 0) || (strncmp(ep, "https://", 8) == 0)) &&
           (strpbrk(ep, "?# ") == NULL) && (us_uri_split(ep, &u) == UCACHE_OK) &&
           (u.host[0] != '\0');
}

void us_az_cred_load(const char *account, us_az_cred_t *c)
{
    char conn[2048], name[64] = "", v[1024];
    bool anon = false;    /* a connection string naming no account (a SAS one) */

    memset(c, 0, sizeof(*c));
    snprintf(c->account, sizeof(c->account), "%s", account);
    if (us_cred_get("AZURE_STORAGE_CONNECTION_STRING", conn, sizeof(conn))) {
        ua_conn_get(conn, "AccountName", name, sizeof(name));
        /* a connection string's secrets go to its account, or with no
         * account named (a SAS string) to its BlobEndpoint alone */
        if ((strcmp(name, account) == 0) ||
            ((name[0] == '\0') && ua_conn_get(conn, "BlobEndpoint", v, sizeof(v)))) {
            anon = (name[0] == '\0');
            ua_conn_get(conn, "AccountKey", c->key, sizeof(c->key));
            ua_conn_get(conn, "BlobEndpoint", c->endpoint, sizeof(c->endpoint));
            ua_conn_get(conn, "SharedAccessSignature", c->sas, sizeof(c->sas));
        }
    }
    if (us_cred_get("AZURE_STORAGE_ACCOUNT", v, sizeof(v)) && (strcmp(v, account) == 0)) {
        if (c->key[0] == '\0') {
            us_cred_get("AZURE_STORAGE_KEY", c->key, sizeof(c->key));
        }
        if ((c->sas[0] == '\0') && us_cred_get("AZURE_STORAGE_SAS_TOKEN", v, sizeof(v))) {
            snprintf(c->sas, sizeof(c->sas), "%s", (v[0] == '?') ? v + 1 : v);
        }
    }
    while ((c->endpoint[0] != '\0') && (c->endpoint[strlen(c->endpoint) - 1] == '/')) {
        c->endpoint[strlen(c->endpoint) - 1] = '\0';
    }
    if ((anon && (c->endpoint[0] == '\0')) ||
        ((c->endpoint[0] != '\0') && !ua_endpoint_ok(c->endpoint)) ||
        !ua_uri_chars(c->sas, strlen(c->sas), "/?")) {
        UC_ERROR("Azure credentials of %s: BlobEndpoint is not http(s)://HOST[:PORT][/PATH], "
                 "or the SAS is not URL query characters; they are not used", account);
        memset(c, 0, sizeof(*c));
        snprintf(c->account, sizeof(c->account), "%s", account);
    }
}

ucache_status_t us_az_sign(const char *key, const char *sts, char *out, size_t cap)
{
    unsigned char raw[128], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    size_t klen = strlen(key);
    int n;

    if ((klen == 0) || (klen > 4 * sizeof(raw) / 3) || (cap < 4 * (EVP_MAX_MD_SIZE / 3 + 1) + 1)) {
        return UCACHE_ERR_INVALID;
    }
    n = EVP_DecodeBlock(raw, (const unsigned char *)key, (int)klen);
    if (n < 0) {
        UC_ERROR("the Azure account key is not base64");
        return UCACHE_ERR_INVALID;
    }
    n -= (klen >= 1 && key[klen - 1] == '=') + (klen >= 2 && key[klen - 2] == '=');
    if (HMAC(EVP_sha256(), raw, n, (const unsigned char *)sts, strlen(sts), mac,
             &maclen) == NULL) {
        return UCACHE_ERR_INVALID;
    }
    EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
    return UCACHE_OK;
}

void us_az_date(char *out, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(out, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Per attempt: x-ms-version, and with a key x-ms-date + the signature. */
static ucache_status_t ua_sign(void *arg, const char *verb, const char *range,
                               const char *if_match, struct curl_slist **hdrs)
{
    const ua_blob_t *b = arg;
    char date[64], sts[UA_URL_MAX + 1536], sig[128], line[256], *bearer;
    ucache_status_t status;
    int n;

    *hdrs = curl_slist_append(*hdrs, "x-ms-version: " US_AZ_VERSION);
    if ((b->cred.key[0] == '\0') && (b->cred.sas[0] == '\0') && us_token_enabled()) {
        bearer = malloc(8192 + 32);
        if (bearer == NULL) {
            return UCACHE_ERR_NO_MEMORY;
        }
        memcpy(bearer, "Authorization: Bearer ", 22);
        status = us_token_get(UA_TOKEN_RESOURCE, bearer + 22, 8192);
        if (status == UCACHE_OK) {
            *hdrs = curl_slist_append(*hdrs, bearer);
        }
        free(bearer);
        return status;
    }
    if ((b->cred.key[0] == '\0') || (b->cred.sas[0] != '\0')) {
        return UCACHE_OK; /* SAS in the URL, or anonymous */
    }
    us_az_date(date, sizeof(date));
    n = snprintf(sts, sizeof(sts),
                 "%s\n\n\n\n\n\n\n\n%s\n\n\n%s\nx-ms-date:%s\nx-ms-version:%s\n%s", verb,
                 if_match, range, date, US_AZ_VERSION, b->resource);
    if ((n < 0) || ((size_t)n >= sizeof(sts)) ||
        (us_az_sign(b->cred.key, sts, sig, sizeof(sig)) != UCACHE_OK)) {
        return UCACHE_ERR_INVALID;
    }
    n = snprintf(line, sizeof(line), "x-ms-date: %s", date);
    *hdrs = curl_slist_append(*hdrs, line);
    n = snprintf(line, sizeof(line), "Authorization: SharedKey %s:%s", b->cred.account,
                 sig);
    if ((n < 0) || ((size_t)n >= sizeof(line))) {
        return UCACHE_ERR_INVALID;
    }
    *hdrs = curl_slist_append(*hdrs, line);
    return UCACHE_OK;
}

/* An account name: 3 to 24 lower-case letters and digits (so never a host). */
static bool ua_account_ok(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!(((s[i] >= 'a') && (s[i] <= 'z')) || ((s[i] >= '0') && (s[i] <= '9')))) {
            return false;
        }
    }
    return (n >= 3) && (n <= 24);
}

/* A container name: 3 to 63 of a-z 0-9 '-', starting and ending with a
 * letter or digit, no "--"; or $root, $web, $logs. */
static bool ua_container_ok(const char *s, size_t n)
{
    size_t i;

    if (((n == 5) && (strncmp(s, "$root", 5) == 0)) ||
        ((n == 4) && (strncmp(s, "$web", 4) == 0)) ||
        ((n == 5) && (strncmp(s, "$logs", 5) == 0))) {
        return true;
    }
    if ((n < 3) || (n > 63) || (s[0] == '-') || (s[n - 1] == '-')) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (!(((s[i] >= 'a') && (s[i] <= 'z')) || ((s[i] >= '0') && (s[i] <= '9')) ||
              ((s[i] == '-') && (s[i + 1] != '-')))) {
            return false;
        }
    }
    return true;
}

/* A blob name (the path after the container, percent-encoded as in the
 * URI, which goes into the request URL as it is): 1 to 1024 bytes of
 * RFC 3986 path characters and %HH escapes, no "." or ".." segment (HTTP
 * clients resolve them: another blob would be read). */
static bool ua_blob_ok(const char *s, size_t n)
{
    const char *seg = s, *end = s + n;
    size_t k;

    if ((n == 0) || (n > 1024) || !ua_uri_chars(s, n, "/")) {
        return false;
    }
    while (seg <= end) {
        k = strcspn(seg, "/");
        k = ((size_t)(end - seg) < k) ? (size_t)(end - seg) : k;
        if (((k == 1) && (seg[0] == '.')) || ((k == 2) && (seg[0] == '.') && (seg[1] == '.'))) {
            return false;
        }
        seg += k + 1;
    }
    return true;
}

/*
 * az://ACCOUNT/PATH or https://ACCOUNT.blob.core.windows.net/PATH[?q]: a
 * blob, or with @p list a listing page of /CONTAINER[/PREFIX] from
 * @p marker ("" first); *prefix_p then points into @p uri at the prefix.
 */
static ucache_status_t ua_parse(const char *uri, bool list, const char *marker,
                                ua_blob_t *b, const char **prefix_p)
{
    char account[64], path[UA_URL_MAX], query[1024] = "", eppath[512] = "";
    char lq[UA_URL_MAX] = "", lr[UA_URL_MAX] = "", epfx[UA_URL_MAX], emark[1024];
    const char *p, *slash, *q, *ep, *pfx = "";
    us_origin_params_t prm;
    int n, m;

    if (strncmp(uri, "az://", 5) == 0) {
        p = uri + 5;
        slash = strchr(p, '/');
        if ((slash == NULL) || !ua_account_ok(p, (size_t)(slash - p))) {
            goto bad;
        }
        ua_copy(account, sizeof(account), p, (size_t)(slash - p));
    } else {
        p = uri + strlen("https://");
        slash = strchr(p, '/');
        q = strchr(p, '.');
        if ((slash == NULL) || (q == NULL) || (q > slash) ||
            !ua_account_ok(p, (size_t)(q - p)) ||
            ((size_t)(slash - q) != strlen(".blob.core.windows.net")) ||
            (strncmp(q, ".blob.core.windows.net", (size_t)(slash - q)) != 0)) {
            goto bad;       /* the host is exactly ACCOUNT.blob.core.windows.net */
        }
        ua_copy(account, sizeof(account), p, (size_t)(q - p));
    }
    q = slash + strcspn(slash, "?#");
    if (*q == '#') {
        goto bad;
    }
    {   /* /CONTAINER[/BLOB] by their rules */
        const char *cs = slash + 1, *ce = cs + strcspn(cs, "/?");

        if (!ua_container_ok(cs, (size_t)(ce - cs)) ||
            ((*ce == '/') && (ce + 1 < q) && !ua_blob_ok(ce + 1, (size_t)(q - ce - 1)))) {
            goto bad;
        }
    }
    q = (*q == '?') ? q : NULL;
    ua_copy(path, sizeof(path), slash, q ? (size_t)(q - slash) : strlen(slash));
    if (q != NULL) {
        if (!ua_uri_chars(q + 1, strlen(q + 1), "/?") || (strlen(q + 1) >= sizeof(query))) {
            goto bad;   /* the SAS goes into the request URL as it is */
        }
        snprintf(query, sizeof(query), "%s", q + 1);
    }
    if (list) {
        /* /CONTAINER[/PREFIX]: the container is listed, by prefix */
        pfx = strchr(path + 1, '/');
        if (pfx != NULL) {
            *prefix_p = slash + (pfx - path) + 1;
            path[pfx - path] = '\0';
            pfx = *prefix_p;
            n = (int)(q ? (size_t)(q - pfx) : strlen(pfx));
        } else {
            *prefix_p = "";
            pfx = "";
            n = 0;
        }
        if ((path[1] == '\0') || !us_uri_encode(pfx, (size_t)n, false, epfx, sizeof(epfx)) ||
            !us_uri_encode(marker, strlen(marker), false, emark, sizeof(emark))) {
            goto bad;
        }
        /* URL query; and its canonical form (names sorted, values decoded) */
        us_origin_params(&prm);
        m = snprintf(lq, sizeof(lq), "restype=container&comp=list%s%s&maxresults=%u%s%s",
                     marker[0] ? "&marker=" : "", emark, prm.list_page,
                     n ? "&prefix=" : "", epfx);
        if ((m < 0) || ((size_t)m >= sizeof(lq))) {
            goto bad;
        }
        m = snprintf(lr, sizeof(lr), "\ncomp:list%s%s\nmaxresults:%u%s%.*s\nrestype:container",
                     marker[0] ? "\nmarker:" : "", marker, prm.list_page,
                     n ? "\nprefix:" : "", n, pfx);
        if ((m < 0) || ((size_t)m >= sizeof(lr))) {
            goto bad;
        }
    } else if ((strchr(path + 1, '/') == NULL) || (path[strlen(path) - 1] == '/')) {
        goto bad; /* need /CONTAINER/BLOB */
    }
    us_az_cred_load(account, &b->cred);
    if (query[0] != '\0') {
        snprintf(b->cred.sas, sizeof(b->cred.sas), "%s", query);
    }
    b->configured = (b->cred.endpoint[0] != '\0');
    if (b->cred.endpoint[0] == '\0') {
        snprintf(b->cred.endpoint, sizeof(b->cred.endpoint),
                 "https://%s.blob.core.windows.net", account);
    }
    ep = strstr(b->cred.endpoint, "://");
    ep = (ep != NULL) ? strchr(ep + 3, '/') : NULL;
    if (ep != NULL) {
        snprintf(eppath, sizeof(eppath), "%s", ep); /* emulator: /ACCOUNT */
    }
    n = snprintf(b->url, sizeof(b->url), "%s%s%s%s%s%s", b->cred.endpoint, path,
                 (lq[0] || b->cred.sas[0]) ? "?" : "", lq,
                 (lq[0] && b->cred.sas[0]) ? "&" : "", b->cred.sas);
    m = snprintf(b->resource, sizeof(b->resource), "/%s%s%s%s", account, eppath, path, lr);
    if ((n < 0) || ((size_t)n >= sizeof(b->url)) || (m < 0) ||
        ((size_t)m >= sizeof(b->resource))) {
        goto bad; /* too long to be a blob URL */
    }
    return UCACHE_OK;
bad:
    UC_ERROR("'%.*s' is not az://ACCOUNT/CONTAINER/%s or "
             "https://ACCOUNT.blob.core.windows.net/CONTAINER/%s (Azure's naming rules)",
             (us_uri_loglen(uri) < 64) ? us_uri_loglen(uri) : 64, uri,
             list ? "[PREFIX]" : "BLOB", list ? "[PREFIX]" : "BLOB");
    return UCACHE_ERR_INVALID;
}

static bool ua_match(const char *uri)
{
    const char *host, *end;

    if (strncmp(uri, "az://", 5) == 0) {
        return true;
    }
    if (strncmp(uri, "https://", 8) != 0) {
        return false;
    }
    host = uri + 8;
    end  = host + strcspn(host, "/?");
    return ((size_t)(end - host) > 22) &&
           (strncmp(end - 22, ".blob.core.windows.net", 22) == 0);
}

/* Parse, then HEAD (@p stat_p) or a ranged GET of @p obj, signed. */
static ucache_status_t ua_request(const char *uri, us_object_t *stat_p,
                                  const us_object_t *obj, uint64_t off, void *buf,
                                  size_t len)
{
    us_http_auth_t auth = { .sign = ua_sign };
    ua_blob_t *b = malloc(sizeof(*b));
    ucache_status_t status;

    if (b == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    status = ua_parse(uri, false, "", b, NULL);
    if (status == UCACHE_OK) {
        auth.arg = b;
        auth.endpoint_configured = b->configured;
        status = us_http_do(uri, b->url, &auth, stat_p, obj, off, buf, len);
    }
    free(b);
    return status;
}

ucache_status_t us_az_request_url(const char *uri, char *url, size_t cap,
                                  bool *configured_p)
{
    ua_blob_t *b = malloc(sizeof(*b));
    ucache_status_t status;

    if (b == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    status = ua_match(uri) ? ua_parse(uri, false, "", b, NULL) : UCACHE_ERR_INVALID;
    if ((status == UCACHE_OK) && (snprintf(url, cap, "%s", b->url) >= (int)cap)) {
        status = UCACHE_ERR_MSG_TRUNCATED;
    }
    *configured_p = (status == UCACHE_OK) && b->configured;
    free(b);
    return status;
}

static ucache_status_t ua_stat(const char *uri, us_object_t *obj_p)
{
    return ua_request(uri, obj_p, NULL, 0, NULL, 0);
}

static ucache_status_t ua_read(const char *uri, const us_object_t *obj, uint64_t off,
                               void *buf, size_t len)
{
    return ua_request(uri, NULL, obj, off, buf, len);
}

static const us_list_names_t ua_list_names = {
    "Blob", "Name", "Content-Length", "Etag", "Last-Modified", "NextMarker"
};

static ucache_status_t ua_list(const char *prefix, us_origin_list_fn_t fn, void *arg)
{
    us_http_auth_t auth = { .sign = ua_sign };
    ua_blob_t *b = malloc(sizeof(*b));
    char marker[1024] = "", base[US_URI_MAX];
    ucache_status_t status;
    const char *pfx;

    if (b == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    if (strchr(prefix, '?') != NULL) {
        UC_ERROR("list az:// prefixes with the SAS in AZURE_STORAGE_SAS_TOKEN, "
                 "not in the URI");
        free(b);
        return UCACHE_ERR_INVALID;
    }
    auth.arg = b;
    do {
        status = ua_parse(prefix, true, marker, b, &pfx);
        if (status != UCACHE_OK) {
            break;
        }
        /* the objects' URIs: the prefix's URI up to the container */
        snprintf(base, sizeof(base), "%.*s",
                 (int)((pfx[0] || prefix[strlen(prefix) - 1] == '/') ?
                       (size_t)(pfx - prefix) - 1 : strlen(prefix)), prefix);
        auth.endpoint_configured = b->configured;
        status = us_http_list_page(prefix, b->url, &auth, &ua_list_names, base, fn, arg,
                                   marker, sizeof(marker));
    } while ((status == UCACHE_OK) && (marker[0] != '\0'));
    free(b);
    return status;
}

const us_origin_ops_t us_origin_azure_ops = {
    .scheme = "az",
    .match  = ua_match,
    .stat   = ua_stat,
    .read   = ua_read,
    .list   = ua_list,
    .by_etag = true,
};
