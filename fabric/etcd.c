/*
 * etcd.c - the etcd v3 JSON gateway client (see etcd.h).  Requests are
 * JSON bodies POSTed to /v3/...; replies are parsed with json-c into
 * uf_etcd_reply_t by one parser (uf_etcd_parse_obj) that checks every
 * field's type and size before use.  A watch is one long POST whose reply
 * is a stream of JSON objects, parsed as they arrive by a json-c tokener.
 */
#include "fabric/etcd.h"
#include "util/log.h"
#include "util/time.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* grpc codes the gateway reports */
#define UF_GRPC_UNAVAILABLE      14
#define UF_GRPC_UNAUTHENTICATED  16
#define UF_GRPC_DEADLINE         4
#define UF_GRPC_NOT_FOUND        5

typedef struct uf_etcd_buf {
    char  *p;
    size_t len, cap;
} uf_etcd_buf_t;

struct uf_etcd {
    bool             tls;
    char            *prefix;
    char            *ep[UF_ETCD_ENDPOINTS_MAX];
    unsigned         nep;
    _Atomic unsigned cur;          /* the endpoint that answered last     */
    char            *ca, *cert, *key, *user, *password;
    uint64_t         timeout_ns;

    pthread_mutex_t  lock;         /* h, buf, token                       */
    CURL            *h;
    uf_etcd_buf_t    buf;
    char             token[256];   /* auth token ("" none); never logged  */

    pthread_mutex_t  watch_lock;   /* watch_multi                         */
    CURLM           *watch_multi;
    _Atomic bool     watch_stop;

    _Atomic uint64_t requests, failovers, bytes;
};

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */
/* ------------------------------------------------------------------------ */

static char *uf_b64_encode(const void *p, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);

    if (out != NULL) {
        EVP_EncodeBlock((unsigned char *)out, p, (int)len);
    }
    return out;
}

/* Decode base64 @p s (at most @p max bytes out) into a malloc'd,
 * NUL-terminated buffer. */
static ucache_status_t uf_b64_decode(const char *s, size_t slen, size_t max,
                                     char **out_p, size_t *len_p)
{
    size_t pad = 0;
    char *out;
    int n;

    if ((slen % 4) != 0) {
        return UCACHE_ERR_CORRUPT;
    }
    if ((slen / 4) * 3 > max + 2) {
        return UCACHE_ERR_CORRUPT;
    }
    if (slen >= 1 && s[slen - 1] == '=') {
        pad++;
    }
    if (slen >= 2 && s[slen - 2] == '=') {
        pad++;
    }
    out = malloc(slen / 4 * 3 + 1);
    if (out == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    n = (slen == 0) ? 0 : EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)s,
                                          (int)slen);
    if ((n < 0) || ((size_t)n < pad) || ((size_t)n - pad > max)) {
        free(out);
        return UCACHE_ERR_CORRUPT;
    }
    n -= (int)pad;
    out[n] = '\0';
    *out_p = out;
    *len_p = (size_t)n;
    return UCACHE_OK;
}

void uf_etcd_prefix_end(const char *prefix, char *out, size_t cap)
{
    size_t n = strlen(prefix);

    snprintf(out, cap, "%s", prefix);
    while (n > 0) { /* the last byte that can be incremented, incremented */
        if ((unsigned char)out[n - 1] < 0xff) {
            out[n - 1]++;
            out[n] = '\0';
            return;
        }
        n--;
    }
    snprintf(out, cap, "%c", 0); /* all 0xff: to the end of the keyspace */
}

/* ------------------------------------------------------------------------ */
/* Parsing (untrusted input)                                                 */
/* ------------------------------------------------------------------------ */

/* An int64 field: absent is 0 (proto3 leaves defaults out); present, a
 * decimal string or a JSON integer. */
static ucache_status_t uf_json_i64(json_object *o, const char *name, int64_t *v)
{
    json_object *f;
    const char *s;
    char *end;
    long long x;

    *v = 0;
    if (!json_object_object_get_ex(o, name, &f) || (f == NULL)) {
        return UCACHE_OK;
    }
    if (json_object_is_type(f, json_type_int)) {
        errno = 0;
        *v = json_object_get_int64(f);
        return (errno == 0) ? UCACHE_OK : UCACHE_ERR_CORRUPT;
    }
    if (!json_object_is_type(f, json_type_string)) {
        return UCACHE_ERR_CORRUPT;
    }
    s = json_object_get_string(f);
    if ((s[0] == '\0') || (json_object_get_string_len(f) > 20)) {
        return UCACHE_ERR_CORRUPT;
    }
    errno = 0;
    x = strtoll(s, &end, 10);
    if ((errno != 0) || (*end != '\0') || (end == s)) {
        return UCACHE_ERR_CORRUPT;
    }
    *v = x;
    return UCACHE_OK;
}

static bool uf_json_bool(json_object *o, const char *name)
{
    json_object *f;

    return json_object_object_get_ex(o, name, &f) &&
           json_object_is_type(f, json_type_boolean) && json_object_get_boolean(f);
}

/* A base64 string field into a malloc'd buffer; absent is "". */
static ucache_status_t uf_json_b64(json_object *o, const char *name, size_t max,
                                   char **out_p, size_t *len_p)
{
    json_object *f;

    if (!json_object_object_get_ex(o, name, &f) || (f == NULL)) {
        return uf_b64_decode("", 0, max, out_p, len_p);
    }
    if (!json_object_is_type(f, json_type_string)) {
        return UCACHE_ERR_CORRUPT;
    }
    return uf_b64_decode(json_object_get_string(f), (size_t)json_object_get_string_len(f),
                         max, out_p, len_p);
}

static ucache_status_t uf_etcd_kv_parse(json_object *o, uf_etcd_kv_t *kv)
{
    ucache_status_t status;

    memset(kv, 0, sizeof(*kv));
    if (!json_object_is_type(o, json_type_object)) {
        return UCACHE_ERR_CORRUPT;
    }
    status = uf_json_b64(o, "key", UF_ETCD_KEY_MAX, &kv->key, &kv->key_len);
    if (status == UCACHE_OK) {
        status = uf_json_b64(o, "value", UF_ETCD_VALUE_MAX, &kv->value, &kv->value_len);
    }
    if (status == UCACHE_OK) {
        status = uf_json_i64(o, "create_revision", &kv->create_rev);
    }
    if (status == UCACHE_OK) {
        status = uf_json_i64(o, "mod_revision", &kv->mod_rev);
    }
    if (status == UCACHE_OK) {
        status = uf_json_i64(o, "lease", &kv->lease);
    }
    if ((status == UCACHE_OK) && ((kv->key_len == 0) || (kv->create_rev < 0) ||
                                  (kv->mod_rev < 0))) {
        status = UCACHE_ERR_CORRUPT;
    }
    if (status != UCACHE_OK) {
        free(kv->key);
        free(kv->value);
        memset(kv, 0, sizeof(*kv));
    }
    return status;
}

void uf_etcd_reply_clear(uf_etcd_reply_t *r)
{
    uint32_t i;

    for (i = 0; (r->kvs != NULL) && (i < r->nkvs); i++) {
        free(r->kvs[i].key);
        free(r->kvs[i].value);
    }
    free(r->kvs);
    memset(r, 0, sizeof(*r));
}

/* kvs (range) or events (watch) of @p o into r->kvs. */
static ucache_status_t uf_etcd_kvs_parse(json_object *o, bool events, uf_etcd_reply_t *r)
{
    const char *name = events ? "events" : "kvs";
    json_object *arr, *it, *kv, *type;
    ucache_status_t status;
    size_t i, n;

    if (!json_object_object_get_ex(o, name, &arr) || (arr == NULL)) {
        return UCACHE_OK;
    }
    if (!json_object_is_type(arr, json_type_array)) {
        return UCACHE_ERR_CORRUPT;
    }
    n = json_object_array_length(arr);
    if (n > UF_ETCD_REPLY_MAX / 16) {
        return UCACHE_ERR_CORRUPT;
    }
    r->kvs = calloc(n + 1, sizeof(*r->kvs));
    if (r->kvs == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    for (i = 0; i < n; i++) {
        it = json_object_array_get_idx(arr, i);
        kv = it;
        if (events) {
            if (!json_object_is_type(it, json_type_object) ||
                !json_object_object_get_ex(it, "kv", &kv)) {
                return UCACHE_ERR_CORRUPT;
            }
        }
        status = uf_etcd_kv_parse(kv, &r->kvs[i]);
        if (status != UCACHE_OK) {
            return status;
        }
        r->nkvs++;
        if (events && json_object_object_get_ex(it, "type", &type)) {
            if (!json_object_is_type(type, json_type_string)) {
                return UCACHE_ERR_CORRUPT;
            }
            if (strcmp(json_object_get_string(type), "DELETE") == 0) {
                r->kvs[i].deleted = true;
            } else if (strcmp(json_object_get_string(type), "PUT") != 0) {
                return UCACHE_ERR_CORRUPT;
            }
        }
    }
    return UCACHE_OK;
}

/* An error reply: {"error": "...", "code": N} or, in a stream,
 * {"error": {"grpc_code": N, ...}}. */
static ucache_status_t uf_etcd_error(json_object *o)
{
    json_object *err, *code;
    int c = 0;

    if (!json_object_object_get_ex(o, "error", &err)) {
        return UCACHE_OK;
    }
    if (json_object_is_type(err, json_type_object)) {
        if (json_object_object_get_ex(err, "grpc_code", &code) &&
            json_object_is_type(code, json_type_int)) {
            c = json_object_get_int(code);
        }
    } else if (json_object_is_type(err, json_type_string)) {
        if (json_object_get_string_len(err) == 0) {
            return UCACHE_OK; /* lease grant's "error": "" */
        }
        if (json_object_object_get_ex(o, "code", &code) &&
            json_object_is_type(code, json_type_int)) {
            c = json_object_get_int(code);
        }
    } else {
        return UCACHE_ERR_CORRUPT;
    }
    switch (c) {
    case UF_GRPC_UNAVAILABLE:
    case UF_GRPC_DEADLINE:
        return UCACHE_ERR_PEER;
    case UF_GRPC_UNAUTHENTICATED:
        return UCACHE_ERR_AUTH;
    case UF_GRPC_NOT_FOUND:      /* a lease that expired or was revoked */
        return UCACHE_ERR_NOT_FOUND;
    default:
        return UCACHE_ERR_IO;
    }
}

static ucache_status_t uf_etcd_parse_obj(uf_etcd_kind_t kind, json_object *o,
                                         uf_etcd_reply_t *r)
{
    json_object *hdr, *tok;
    ucache_status_t status;

    memset(r, 0, sizeof(*r));
    if (!json_object_is_type(o, json_type_object)) {
        return UCACHE_ERR_CORRUPT;
    }
    status = uf_etcd_error(o);
    if (status != UCACHE_OK) {
        return status;
    }
    if ((kind == UF_ETCD_KEEPALIVE) || (kind == UF_ETCD_WATCH)) {
        if (!json_object_object_get_ex(o, "result", &o) ||
            !json_object_is_type(o, json_type_object)) {
            return UCACHE_ERR_CORRUPT;
        }
    }
    if (json_object_object_get_ex(o, "header", &hdr)) {
        if (!json_object_is_type(hdr, json_type_object)) {
            return UCACHE_ERR_CORRUPT;
        }
        status = uf_json_i64(hdr, "revision", &r->revision);
        if ((status != UCACHE_OK) || (r->revision < 0)) {
            return UCACHE_ERR_CORRUPT;
        }
    } else if (kind != UF_ETCD_AUTH) {
        return UCACHE_ERR_CORRUPT; /* every reply of etcd's has a header */
    }
    switch (kind) {
    case UF_ETCD_LEASE_GRANT:
    case UF_ETCD_KEEPALIVE:
        status = uf_json_i64(o, "ID", &r->id);
        if (status == UCACHE_OK) {
            status = uf_json_i64(o, "TTL", &r->ttl);
        }
        if ((status == UCACHE_OK) && ((r->ttl < 0) ||
                                      ((kind == UF_ETCD_LEASE_GRANT) && (r->id == 0)))) {
            status = UCACHE_ERR_CORRUPT;
        }
        break;
    case UF_ETCD_RANGE:
        r->more = uf_json_bool(o, "more");
        status  = uf_etcd_kvs_parse(o, false, r);
        break;
    case UF_ETCD_TXN:
        r->succeeded = uf_json_bool(o, "succeeded");
        break;
    case UF_ETCD_WATCH:
        r->created  = uf_json_bool(o, "created");
        r->canceled = uf_json_bool(o, "canceled");
        status = uf_json_i64(o, "compact_revision", &r->compact_rev);
        if ((status == UCACHE_OK) && (r->compact_rev < 0)) {
            status = UCACHE_ERR_CORRUPT;
        }
        if (status == UCACHE_OK) {
            status = uf_etcd_kvs_parse(o, true, r);
        }
        break;
    case UF_ETCD_AUTH:
        if (!json_object_object_get_ex(o, "token", &tok) ||
            !json_object_is_type(tok, json_type_string) ||
            (json_object_get_string_len(tok) == 0) ||
            ((size_t)json_object_get_string_len(tok) >= sizeof(r->token))) {
            status = UCACHE_ERR_CORRUPT;
        } else {
            memcpy(r->token, json_object_get_string(tok),
                   (size_t)json_object_get_string_len(tok) + 1);
        }
        break;
    case UF_ETCD_STATUS:
        status = uf_json_i64(o, "dbSize", &r->db_size);
        if ((status == UCACHE_OK) && (r->db_size < 0)) {
            status = UCACHE_ERR_CORRUPT;
        }
        break;
    case UF_ETCD_PLAIN:
        break;
    }
    if (status != UCACHE_OK) {
        uf_etcd_reply_clear(r);
    }
    return status;
}

/* One JSON value from the @p len bytes at @p buf, or NULL. */
static json_object *uf_json_tokenize(const char *buf, size_t len)
{
    json_tokener *tok;
    json_object *o;

    if ((len == 0) || (len > UF_ETCD_REPLY_MAX)) {
        return NULL;
    }
    tok = json_tokener_new_ex(32);
    if (tok == NULL) {
        return NULL;
    }
    o = json_tokener_parse_ex(tok, buf, (int)len);
    if ((o != NULL) && (json_tokener_get_parse_end(tok) < len) &&
        (strspn(buf + json_tokener_get_parse_end(tok), " \t\r\n") !=
         len - json_tokener_get_parse_end(tok))) {
        json_object_put(o); /* trailing bytes that are not whitespace */
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

ucache_status_t uf_etcd_parse(uf_etcd_kind_t kind, const char *buf, size_t len,
                              uf_etcd_reply_t *r)
{
    ucache_status_t status;
    json_object *o;

    memset(r, 0, sizeof(*r));
    o = uf_json_tokenize(buf, len);
    if (o == NULL) {
        return UCACHE_ERR_CORRUPT;
    }
    status = uf_etcd_parse_obj(kind, o, r);
    json_object_put(o);
    return status;
}

/* ------------------------------------------------------------------------ */
/* The client                                                                */
/* ------------------------------------------------------------------------ */

static char *uf_strdup0(const char *s)
{
    return strdup(((s != NULL) && (s[0] != '\0')) ? s : "");
}

ucache_status_t uf_etcd_create(const char *url, const uf_etcd_opts_t *opts,
                               uf_etcd_t **e_p)
{
    const char *p, *slash, *comma;
    size_t n;
    uf_etcd_t *e;

    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->watch_lock, NULL);
    if (strncmp(url, "etcd://", 7) == 0) {
        p = url + 7;
    } else if (strncmp(url, "etcds://", 8) == 0) {
        p = url + 8;
        e->tls = true;
    } else {
        goto err_invalid;
    }
    slash = strchr(p, '/');
    if ((slash == NULL) || (slash[1] == '\0') || (slash == p)) {
        goto err_invalid;
    }
    while (p < slash) {
        comma = memchr(p, ',', (size_t)(slash - p));
        n = (size_t)(((comma != NULL) ? comma : slash) - p);
        if ((n == 0) || (n > 255) || (e->nep == UF_ETCD_ENDPOINTS_MAX) ||
            (memchr(p, ':', n) == NULL) || (strcspn(p, " \t@?#") < n)) {
            goto err_invalid;
        }
        e->ep[e->nep] = strndup(p, n);
        if (e->ep[e->nep++] == NULL) {
            goto err_nomem;
        }
        p += n + ((comma != NULL) ? 1 : 0);
    }
    e->prefix = strdup(slash + 1);
    if (e->prefix == NULL) {
        goto err_nomem;
    }
    n = strlen(e->prefix);
    while ((n > 0) && (e->prefix[n - 1] == '/')) {
        e->prefix[--n] = '\0';
    }
    if ((n == 0) || (n > UF_ETCD_KEY_MAX / 4)) {
        goto err_invalid;
    }
    e->ca         = uf_strdup0(opts ? opts->ca : NULL);
    e->cert       = uf_strdup0(opts ? opts->cert : NULL);
    e->key        = uf_strdup0(opts ? opts->key : NULL);
    e->user       = uf_strdup0(opts ? opts->user : NULL);
    e->password   = uf_strdup0(opts ? opts->password : NULL);
    e->timeout_ns = ((opts != NULL) && (opts->timeout_ns > 0)) ? opts->timeout_ns :
                    2 * UC_NSEC_PER_SEC;
    e->h          = curl_easy_init();
    if ((e->ca == NULL) || (e->cert == NULL) || (e->key == NULL) || (e->user == NULL) ||
        (e->password == NULL) || (e->h == NULL)) {
        goto err_nomem;
    }
    *e_p = e;
    return UCACHE_OK;

err_invalid:
    UC_ERROR("members: '%s' is not etcd://HOST:PORT[,HOST:PORT...]/PREFIX "
             "(or etcds://)", url);
    uf_etcd_destroy(e);
    return UCACHE_ERR_INVALID;
err_nomem:
    uf_etcd_destroy(e);
    return UCACHE_ERR_NO_MEMORY;
}

void uf_etcd_destroy(uf_etcd_t *e)
{
    unsigned i;

    if (e == NULL) {
        return;
    }
    for (i = 0; i < e->nep; i++) {
        free(e->ep[i]);
    }
    if (e->h != NULL) {
        curl_easy_cleanup(e->h);
    }
    if (e->password != NULL) {
        memset(e->password, 0, strlen(e->password));
    }
    memset(e->token, 0, sizeof(e->token));
    free(e->prefix);
    free(e->ca);
    free(e->cert);
    free(e->key);
    free(e->user);
    free(e->password);
    free(e->buf.p);
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->watch_lock);
    free(e);
}

const char *uf_etcd_prefix(const uf_etcd_t *e)
{
    return e->prefix;
}

const char *uf_etcd_endpoint(const uf_etcd_t *e)
{
    return e->ep[atomic_load(&e->cur) % e->nep];
}

void uf_etcd_counts(const uf_etcd_t *e, uint64_t *requests_p, uint64_t *failovers_p,
                    uint64_t *bytes_p)
{
    *requests_p  = atomic_load(&e->requests);
    *failovers_p = atomic_load(&e->failovers);
    *bytes_p     = atomic_load(&e->bytes);
}

static size_t uf_etcd_write(char *p, size_t size, size_t nmemb, void *arg)
{
    uf_etcd_buf_t *b = arg;
    size_t len = size * nmemb, cap;
    char *np;

    if (b->len + len + 1 > b->cap) {
        if (b->len + len + 1 > UF_ETCD_REPLY_MAX) {
            return 0; /* abort: more than any reply we expect */
        }
        cap = (b->cap == 0) ? 4096 : b->cap;
        while (cap < b->len + len + 1) {
            cap *= 2;
        }
        np = realloc(b->p, cap);
        if (np == NULL) {
            return 0;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, len);
    b->len += len;
    b->p[b->len] = '\0';
    return len;
}

/* The options every request of @p e sets on @p h for endpoint @p ep. */
static void uf_etcd_setup(uf_etcd_t *e, CURL *h, const char *ep, const char *path,
                          struct curl_slist *hdrs, long timeout_ms)
{
    char url[320];

    snprintf(url, sizeof(url), "%s://%s%s", e->tls ? "https" : "http", ep, path);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(e->timeout_ns / 1000000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, e->tls ? "https" : "http");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    if (e->tls) {
        if (e->ca[0] != '\0') {
            curl_easy_setopt(h, CURLOPT_CAINFO, e->ca);
        }
        if (e->cert[0] != '\0') {
            curl_easy_setopt(h, CURLOPT_SSLCERT, e->cert);
            curl_easy_setopt(h, CURLOPT_SSLKEY, e->key);
        }
    }
}

static struct curl_slist *uf_etcd_headers(const char *token)
{
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    char auth[300];

    if ((hdrs != NULL) && (token[0] != '\0')) {
        snprintf(auth, sizeof(auth), "Authorization: %s", token);
        hdrs = curl_slist_append(hdrs, auth);
        memset(auth, 0, sizeof(auth));
    }
    return hdrs;
}

/* POST @p body to @p path on one endpoint: the reply in e->buf. */
static ucache_status_t uf_etcd_post1(uf_etcd_t *e, const char *ep, const char *path,
                                     const char *body, long *code_p)
{
    struct curl_slist *hdrs = uf_etcd_headers(e->token);
    CURLcode rc;

    if (hdrs == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    e->buf.len = 0;
    uf_etcd_setup(e, e->h, ep, path, hdrs, (long)(e->timeout_ns / 1000000));
    curl_easy_setopt(e->h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e->h, CURLOPT_WRITEFUNCTION, uf_etcd_write);
    curl_easy_setopt(e->h, CURLOPT_WRITEDATA, &e->buf);
    rc = curl_easy_perform(e->h);
    curl_slist_free_all(hdrs);
    atomic_fetch_add(&e->requests, 1);
    atomic_fetch_add(&e->bytes, strlen(body) + e->buf.len);
    if (rc != CURLE_OK) {
        UC_DEBUG("etcd %s%s: %s", ep, path, curl_easy_strerror(rc));
        return (rc == CURLE_OPERATION_TIMEDOUT) ? UCACHE_ERR_TIMEOUT : UCACHE_ERR_PEER;
    }
    curl_easy_getinfo(e->h, CURLINFO_RESPONSE_CODE, code_p);
    return UCACHE_OK;
}

static ucache_status_t uf_etcd_call_locked(uf_etcd_t *e, const char *path,
                                           const char *body, uf_etcd_kind_t kind,
                                           uf_etcd_reply_t *r, bool may_auth);

/* An error reply that is not JSON (e.g. etcd's gateway refusing a client
 * certificate's CommonName): its first line, printable bytes only. */
static void uf_etcd_say_body(const uf_etcd_t *e, const char *ep, const char *path, long code)
{
    char line[160];
    size_t i, n = 0;

    for (i = 0; (i < e->buf.len) && (n + 1 < sizeof(line)) && (e->buf.p[i] != '\n'); i++) {
        line[n++] = ((e->buf.p[i] >= 0x20) && (e->buf.p[i] < 0x7f)) ? e->buf.p[i] : '?';
    }
    line[n] = '\0';
    UC_WARN("etcd %s%s answered HTTP %ld: %s", ep, path, code, line);
}

/* Authenticate as e->user (e->lock held): e->token. */
static ucache_status_t uf_etcd_auth(uf_etcd_t *e)
{
    json_object *o = json_object_new_object();
    uf_etcd_reply_t r;
    ucache_status_t status;
    char *body;

    if (o == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    json_object_object_add(o, "name", json_object_new_string(e->user));
    json_object_object_add(o, "password", json_object_new_string(e->password));
    body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    if (body == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    e->token[0] = '\0';
    status = uf_etcd_call_locked(e, "/v3/auth/authenticate", body, UF_ETCD_AUTH, &r, false);
    memset(body, 0, strlen(body));
    free(body);
    if (status == UCACHE_OK) {
        memcpy(e->token, r.token, sizeof(e->token));
        memset(r.token, 0, sizeof(r.token));
    } else {
        UC_ERROR("etcd: user '%s' cannot authenticate: %s", e->user,
                 ucache_strerror(status));
    }
    return status;
}

/* POST, failing over across endpoints; parse the reply (e->lock held). */
static ucache_status_t uf_etcd_call_locked(uf_etcd_t *e, const char *path,
                                           const char *body, uf_etcd_kind_t kind,
                                           uf_etcd_reply_t *r, bool may_auth)
{
    ucache_status_t status = UCACHE_ERR_PEER;
    unsigned i, start = atomic_load(&e->cur);
    const char *ep = "";
    long code = 0;

    memset(r, 0, sizeof(*r));
    if (may_auth && (e->user[0] != '\0') && (e->token[0] == '\0')) {
        status = uf_etcd_auth(e);
        if (status != UCACHE_OK) {
            return status;
        }
    }
    for (i = 0; i < e->nep; i++) {
        ep = e->ep[(start + i) % e->nep];
        if (i > 0) {
            atomic_fetch_add(&e->failovers, 1);
        }
        status = uf_etcd_post1(e, ep, path, body, &code);
        if (status == UCACHE_OK) {
            status = uf_etcd_parse(kind, e->buf.p, e->buf.len, r);
            if ((status == UCACHE_OK) && (code != 200)) { /* an error without "error" */
                uf_etcd_reply_clear(r);
                status = UCACHE_ERR_IO;
            } else if ((status == UCACHE_ERR_CORRUPT) && (code != 200)) {
                uf_etcd_say_body(e, ep, path, code); /* not JSON: etcd's words */
                status = UCACHE_ERR_IO;
            }
        }
        if ((status == UCACHE_ERR_AUTH) && may_auth && (e->user[0] != '\0')) {
            status = uf_etcd_auth(e); /* the token expired: once more */
            if (status == UCACHE_OK) {
                status = uf_etcd_post1(e, ep, path, body, &code);
            }
            if (status == UCACHE_OK) {
                status = uf_etcd_parse(kind, e->buf.p, e->buf.len, r);
            }
        }
        if ((status != UCACHE_ERR_PEER) && (status != UCACHE_ERR_TIMEOUT)) {
            break;
        }
    }
    if ((status == UCACHE_OK) || ((status != UCACHE_ERR_PEER) &&
                                  (status != UCACHE_ERR_TIMEOUT))) {
        atomic_store(&e->cur, (start + i) % e->nep);
    } else {
        atomic_store(&e->cur, (start + 1) % e->nep);
    }
    if ((status != UCACHE_OK) && (status != UCACHE_ERR_PEER) &&
        (status != UCACHE_ERR_TIMEOUT) && (status != UCACHE_ERR_NOT_FOUND)) {
        UC_WARN("etcd %s%s: %s (HTTP %ld)", ep, path, ucache_strerror(status), code);
    }
    return status;
}

/* Serialise @p o (consumed) and call. */
static ucache_status_t uf_etcd_call(uf_etcd_t *e, const char *path, json_object *o,
                                    uf_etcd_kind_t kind, uf_etcd_reply_t *r)
{
    ucache_status_t status;
    const char *body;

    memset(r, 0, sizeof(*r));
    if (o == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    body = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (body == NULL) {
        json_object_put(o);
        return UCACHE_ERR_NO_MEMORY;
    }
    pthread_mutex_lock(&e->lock);
    status = uf_etcd_call_locked(e, path, body, kind, r, true);
    pthread_mutex_unlock(&e->lock);
    json_object_put(o);
    return status;
}

static json_object *uf_json_str_i64(int64_t v)
{
    char s[24];

    snprintf(s, sizeof(s), "%" PRId64, v);
    return json_object_new_string(s);
}

/* Add base64(@p p, @p len) as field @p name of @p o. */
static bool uf_json_add_b64(json_object *o, const char *name, const void *p, size_t len)
{
    char *s = uf_b64_encode(p, len);

    if (s == NULL) {
        return false;
    }
    json_object_object_add(o, name, json_object_new_string(s));
    free(s);
    return true;
}

/* A lease request: {FIELD: v} to @p path. */
static ucache_status_t uf_etcd_lease_op(uf_etcd_t *e, const char *path, const char *field,
                                        int64_t v, uf_etcd_kind_t kind, uf_etcd_reply_t *r)
{
    json_object *o = json_object_new_object();

    if (o != NULL) {
        json_object_object_add(o, field, uf_json_str_i64(v));
    }
    return uf_etcd_call(e, path, o, kind, r);
}

ucache_status_t uf_etcd_lease_grant(uf_etcd_t *e, int64_t ttl_s, int64_t *lease_p,
                                    int64_t *ttl_p)
{
    ucache_status_t status;
    uf_etcd_reply_t r;

    status = uf_etcd_lease_op(e, "/v3/lease/grant", "TTL", ttl_s, UF_ETCD_LEASE_GRANT, &r);
    if (status == UCACHE_OK) {
        *lease_p = r.id;
        *ttl_p   = r.ttl;
    }
    uf_etcd_reply_clear(&r);
    return status;
}

ucache_status_t uf_etcd_lease_keepalive(uf_etcd_t *e, int64_t lease, int64_t *ttl_p)
{
    ucache_status_t status;
    uf_etcd_reply_t r;

    status = uf_etcd_lease_op(e, "/v3/lease/keepalive", "ID", lease, UF_ETCD_KEEPALIVE, &r);
    if (status == UCACHE_OK) {
        *ttl_p = (r.id == lease) ? r.ttl : 0;
    }
    uf_etcd_reply_clear(&r);
    return status;
}

ucache_status_t uf_etcd_lease_revoke(uf_etcd_t *e, int64_t lease)
{
    ucache_status_t status;
    uf_etcd_reply_t r;

    status = uf_etcd_lease_op(e, "/v3/lease/revoke", "ID", lease, UF_ETCD_PLAIN, &r);
    uf_etcd_reply_clear(&r);
    return status;
}

ucache_status_t uf_etcd_range(uf_etcd_t *e, const char *key, const char *end,
                              int64_t rev, int64_t limit, uf_etcd_reply_t *r)
{
    json_object *o = json_object_new_object();

    if ((o != NULL) && (!uf_json_add_b64(o, "key", key, strlen(key)) ||
                        ((end != NULL) && !uf_json_add_b64(o, "range_end", end,
                                                           strlen(end))))) {
        json_object_put(o);
        o = NULL;
    }
    if ((o != NULL) && (rev > 0)) {
        json_object_object_add(o, "revision", uf_json_str_i64(rev));
    }
    if ((o != NULL) && (limit > 0)) {
        json_object_object_add(o, "limit", uf_json_str_i64(limit));
    }
    return uf_etcd_call(e, "/v3/kv/range", o, UF_ETCD_RANGE, r);
}

/* A request_put (or request_delete_range) of a transaction. */
static json_object *uf_etcd_op(const uf_etcd_put_t *p)
{
    json_object *op = json_object_new_object(), *req = json_object_new_object();

    if ((op == NULL) || (req == NULL) || !uf_json_add_b64(req, "key", p->key,
                                                          strlen(p->key)) ||
        ((p->value != NULL) && !uf_json_add_b64(req, "value", p->value, p->len))) {
        json_object_put(op);
        json_object_put(req);
        return NULL;
    }
    if (p->lease != 0) {
        json_object_object_add(req, "lease", uf_json_str_i64(p->lease));
    }
    json_object_object_add(op, (p->value != NULL) ? "request_put" : "request_delete_range",
                           req);
    return op;
}

ucache_status_t uf_etcd_txn(uf_etcd_t *e, const uf_etcd_cmp_t *cmp, unsigned ncmp,
                            const uf_etcd_put_t *puts, unsigned nputs, bool *ok_p,
                            int64_t *rev_p)
{
    json_object *o = json_object_new_object(), *ca = json_object_new_array(),
                *sa = json_object_new_array(), *c, *op;
    ucache_status_t status;
    uf_etcd_reply_t r;
    unsigned i;

    if ((o == NULL) || (ca == NULL) || (sa == NULL)) {
        goto err_nomem;
    }
    json_object_object_add(o, "compare", ca);
    json_object_object_add(o, "success", sa);
    for (i = 0; i < ncmp; i++) {
        c = json_object_new_object();
        if ((c == NULL) || !uf_json_add_b64(c, "key", cmp[i].key, strlen(cmp[i].key)) ||
            ((cmp[i].end != NULL) && !uf_json_add_b64(c, "range_end", cmp[i].end,
                                                      strlen(cmp[i].end)))) {
            json_object_put(c);
            goto err_nomem_o;
        }
        json_object_object_add(c, "target", json_object_new_string(cmp[i].mod ? "MOD" :
                                                                   "CREATE"));
        json_object_object_add(c, "result", json_object_new_string(cmp[i].less ? "LESS" :
                                                                   "EQUAL"));
        json_object_object_add(c, cmp[i].mod ? "mod_revision" : "create_revision",
                               uf_json_str_i64(cmp[i].value));
        json_object_array_add(ca, c);
    }
    for (i = 0; i < nputs; i++) {
        op = uf_etcd_op(&puts[i]);
        if (op == NULL) {
            goto err_nomem_o;
        }
        json_object_array_add(sa, op);
    }
    status = uf_etcd_call(e, "/v3/kv/txn", o, UF_ETCD_TXN, &r);
    if (status == UCACHE_OK) {
        *ok_p = r.succeeded;
        if (rev_p != NULL) {
            *rev_p = r.revision;
        }
    }
    uf_etcd_reply_clear(&r);
    return status;

err_nomem:
    json_object_put(ca);
    json_object_put(sa);
err_nomem_o:
    json_object_put(o);
    return UCACHE_ERR_NO_MEMORY;
}

ucache_status_t uf_etcd_status(uf_etcd_t *e, int64_t *bytes_p, int64_t *rev_p)
{
    ucache_status_t status;
    uf_etcd_reply_t r;

    status = uf_etcd_call(e, "/v3/maintenance/status", json_object_new_object(),
                          UF_ETCD_STATUS, &r);
    if ((status == UCACHE_OK) && (bytes_p != NULL)) {
        *bytes_p = r.db_size;
    }
    if ((status == UCACHE_OK) && (rev_p != NULL)) {
        *rev_p = r.revision;
    }
    uf_etcd_reply_clear(&r);
    return status;
}

ucache_status_t uf_etcd_db_size(uf_etcd_t *e, int64_t *bytes_p)
{
    return uf_etcd_status(e, bytes_p, NULL);
}

ucache_status_t uf_etcd_put(uf_etcd_t *e, const char *key, const void *value,
                            size_t len, int64_t lease)
{
    uf_etcd_put_t p = { .key = key, .value = value, .len = len, .lease = lease };
    bool ok;

    return uf_etcd_txn(e, NULL, 0, &p, 1, &ok, NULL);
}

/* ------------------------------------------------------------------------ */
/* Watch                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct uf_etcd_watcher {
    json_tokener    *tok;
    size_t           pending;    /* bytes of the object being parsed      */
    uf_etcd_event_fn fn;
    void            *arg;
    int64_t          start;
    int64_t          rev;        /* the last revision reported            */
    ucache_status_t  status;     /* why the stream ended                  */
    bool             created;
} uf_etcd_watcher_t;

/* One reply of the stream. */
static bool uf_etcd_watch_reply(uf_etcd_watcher_t *w, json_object *o)
{
    uf_etcd_reply_t r;
    uint32_t i;

    w->status = uf_etcd_parse_obj(UF_ETCD_WATCH, o, &r);
    if (w->status != UCACHE_OK) {
        return false;
    }
    w->created |= r.created;
    for (i = 0; i < r.nkvs; i++) {
        if (r.kvs[i].mod_rev < w->start) {
            continue; /* not asked for: never from a correct etcd */
        }
        w->fn(w->arg, &r.kvs[i], r.kvs[i].mod_rev);
        w->rev = (r.kvs[i].mod_rev > w->rev) ? r.kvs[i].mod_rev : w->rev;
    }
    if (r.canceled) {
        w->status = (r.compact_rev > 0) ? UCACHE_ERR_OUT_OF_RANGE : UCACHE_ERR_IO;
        if (r.compact_rev > 0) {
            UC_INFO("etcd: watch from revision %" PRId64 " compacted (to %" PRId64
                    "): reading the range again", w->rev + 1, r.compact_rev);
        }
    }
    uf_etcd_reply_clear(&r);
    return !r.canceled;
}

static size_t uf_etcd_watch_write(char *p, size_t size, size_t nmemb, void *arg)
{
    uf_etcd_watcher_t *w = arg;
    size_t len = size * nmemb, left = len, used;
    enum json_tokener_error err;
    json_object *o;
    bool go;

    while (left > 0) {
        o = json_tokener_parse_ex(w->tok, p, (int)((left > INT32_MAX) ? INT32_MAX : left));
        used = json_tokener_get_parse_end(w->tok);
        err  = json_tokener_get_error(w->tok);
        if (o != NULL) {
            go = uf_etcd_watch_reply(w, o);
            json_object_put(o);
            if (!go) {
                return 0;
            }
            w->pending = 0;
        } else if (err == json_tokener_continue) {
            w->pending += left;
            if (w->pending > UF_ETCD_REPLY_MAX) {
                w->status = UCACHE_ERR_CORRUPT;
                return 0;
            }
            return len;
        } else {
            w->status = UCACHE_ERR_CORRUPT;
            return 0;
        }
        if ((used == 0) || (used > left)) {
            break;
        }
        p    += used;
        left -= used;
    }
    return len;
}

ucache_status_t uf_etcd_watch(uf_etcd_t *e, const char *key, const char *end,
                              int64_t start, uf_etcd_event_fn fn, void *arg,
                              int64_t *rev_p)
{
    uf_etcd_watcher_t w = { .fn = fn, .arg = arg, .start = start, .rev = start - 1,
                            .status = UCACHE_OK };
    json_object *o = json_object_new_object(), *cr = json_object_new_object();
    struct curl_slist *hdrs = NULL;
    char token[sizeof(e->token)];
    ucache_status_t status;
    CURLMsg *msg;
    CURLM *m = NULL;
    CURL *h = NULL;
    int running = 1, left;
    unsigned ep;

    *rev_p = w.rev;
    if ((o == NULL) || (cr == NULL) || !uf_json_add_b64(cr, "key", key, strlen(key)) ||
        ((end != NULL) && !uf_json_add_b64(cr, "range_end", end, strlen(end)))) {
        json_object_put(o);
        json_object_put(cr);
        return UCACHE_ERR_NO_MEMORY;
    }
    json_object_object_add(cr, "start_revision", uf_json_str_i64(start));
    json_object_object_add(o, "create_request", cr);
    w.tok = json_tokener_new_ex(32);
    pthread_mutex_lock(&e->lock);
    if ((e->user[0] != '\0') && (e->token[0] == '\0')) {
        uf_etcd_auth(e);
    }
    memcpy(token, e->token, sizeof(token));
    pthread_mutex_unlock(&e->lock);
    hdrs = uf_etcd_headers(token);
    memset(token, 0, sizeof(token));
    h = curl_easy_init();
    m = curl_multi_init();
    if ((w.tok == NULL) || (hdrs == NULL) || (h == NULL) || (m == NULL)) {
        status = UCACHE_ERR_NO_MEMORY;
        goto out;
    }
    ep = atomic_load(&e->cur) % e->nep;
    uf_etcd_setup(e, h, e->ep[ep], "/v3/watch", hdrs, 0);
    curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS,
                     json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, uf_etcd_watch_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
    curl_multi_add_handle(m, h);
    pthread_mutex_lock(&e->watch_lock);
    e->watch_multi = m;
    pthread_mutex_unlock(&e->watch_lock);
    atomic_fetch_add(&e->requests, 1);
    while (running && !atomic_load(&e->watch_stop)) {
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            break;
        }
        if (running) {
            curl_multi_poll(m, NULL, 0, 1000, NULL);
        }
    }
    pthread_mutex_lock(&e->watch_lock);
    e->watch_multi = NULL;
    pthread_mutex_unlock(&e->watch_lock);
    if (atomic_load(&e->watch_stop)) {
        status = UCACHE_ERR_CANCELED;
    } else if (w.status != UCACHE_OK) {
        status = w.status;
    } else {
        status = UCACHE_ERR_PEER; /* the stream ended: the endpoint went away */
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if ((msg->msg == CURLMSG_DONE) && (msg->data.result != CURLE_OK)) {
                UC_DEBUG("etcd %s watch: %s", e->ep[ep],
                         curl_easy_strerror(msg->data.result));
            }
        }
    }
    if ((status == UCACHE_ERR_PEER) || (status == UCACHE_ERR_CORRUPT) ||
        (status == UCACHE_ERR_IO)) {
        if (atomic_compare_exchange_strong(&e->cur, &ep, (ep + 1) % e->nep)) {
            atomic_fetch_add(&e->failovers, 1);
        }
    }
    curl_multi_remove_handle(m, h);
out:
    *rev_p = w.rev;
    if (m != NULL) {
        curl_multi_cleanup(m);
    }
    if (h != NULL) {
        curl_easy_cleanup(h);
    }
    curl_slist_free_all(hdrs);
    if (w.tok != NULL) {
        json_tokener_free(w.tok);
    }
    json_object_put(o);
    return status;
}

void uf_etcd_watch_stop(uf_etcd_t *e)
{
    atomic_store(&e->watch_stop, true);
    pthread_mutex_lock(&e->watch_lock);
    if (e->watch_multi != NULL) {
        curl_multi_wakeup(e->watch_multi);
    }
    pthread_mutex_unlock(&e->watch_lock);
}
