/*
 * azure_identity.c - Azure Workload Identity and the managed identity
 * through IMDS as built-in bearer-token providers (azure_identity.h).
 * libcurl for the exchange, json-c for the answer; every byte of the answer
 * is checked before use, and nothing secret is logged.
 */
#include "origin/azure_identity.h"
#include "origin/cred.h"
#include "origin/origin.h"
#include "util/log.h"
#include "util/time.h"

#include <curl/curl.h>
#include <json-c/json.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AZID_BODY_MAX      (64u << 10)   /* a token answer larger is refused */
#define AZID_ASSERTION_MAX (16u << 10)   /* the federated token file */
#define AZID_AUTHORITY     "https://login.microsoftonline.com/"
#define AZID_TTL_DEFAULT   300           /* an answer without a lifetime */
#define AZID_TTL_MAX       (24u * 3600)

static struct {
    pthread_mutex_t lock;
    us_azid_mode_t  mode;
    char            imds[512];
} azid = { .lock = PTHREAD_MUTEX_INITIALIZER, .mode = US_AZID_NONE };

/* --- the answer ----------------------------------------------------------- */

/* A lifetime in seconds from a JSON number or a string of digits. */
static bool azid_seconds(json_object *v, uint64_t *out)
{
    const char *s;
    uint64_t n = 0;
    size_t i;

    if (json_object_is_type(v, json_type_int)) {
        int64_t x = json_object_get_int64(v);

        if (x < 0) {
            return false;
        }
        *out = (uint64_t)x;
        return true;
    }
    if (!json_object_is_type(v, json_type_string)) {
        return false;
    }
    s = json_object_get_string(v);
    for (i = 0; (s[i] != '\0') && (i < 20); i++) {
        if (!isdigit((unsigned char)s[i])) {
            return false;
        }
        n = n * 10 + (uint64_t)(s[i] - '0');
    }
    if ((i == 0) || (s[i] != '\0') || (n > (1ull << 40))) {
        return false;
    }
    *out = n;
    return true;
}

ucache_status_t us_azure_token_parse(const char *body, size_t len, char *token, size_t cap,
                                     uint64_t *ttl_s_p)
{
    json_tokener *tok;
    json_object *root, *v;
    ucache_status_t st = UCACHE_ERR_INVALID;
    uint64_t ttl = AZID_TTL_DEFAULT, on;
    const char *t;
    size_t n, i;

    if ((body == NULL) || (len == 0) || (len > AZID_BODY_MAX) || (cap == 0) ||
        (len > INT32_MAX)) {
        return UCACHE_ERR_INVALID;
    }
    tok = json_tokener_new_ex(16);
    if (tok == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    root = json_tokener_parse_ex(tok, body, (int)len);
    if ((root == NULL) || (json_tokener_get_error(tok) != json_tokener_success) ||
        !json_object_is_type(root, json_type_object)) {
        goto out;
    }
    for (i = json_tokener_get_parse_end(tok); i < len; i++) {  /* nothing after it */
        if (!isspace((unsigned char)body[i])) {
            goto out;
        }
    }
    if (!json_object_object_get_ex(root, "access_token", &v) ||
        !json_object_is_type(v, json_type_string)) {
        goto out;
    }
    t = json_object_get_string(v);
    n = (size_t)json_object_get_string_len(v);
    if ((n == 0) || (n >= cap)) {
        goto out;
    }
    for (i = 0; i < n; i++) {          /* it goes into a header: no CR, LF, NUL */
        if (!isgraph((unsigned char)t[i])) {
            goto out;
        }
    }
    if (json_object_object_get_ex(root, "expires_in", &v)) {
        if (!azid_seconds(v, &ttl)) {
            goto out;
        }
    } else if (json_object_object_get_ex(root, "expires_on", &v)) {
        if (!azid_seconds(v, &on)) {
            goto out;
        }
        ttl = ((time_t)on > time(NULL)) ? on - (uint64_t)time(NULL) : 0;
    }
    memcpy(token, t, n);
    token[n] = '\0';
    *ttl_s_p = (ttl > AZID_TTL_MAX) ? AZID_TTL_MAX : ttl;
    st = UCACHE_OK;
out:
    if (root != NULL) {
        json_object_put(root);
    }
    json_tokener_free(tok);
    return st;
}

/* --- the exchange --------------------------------------------------------- */

typedef struct azid_buf {
    char   *data;
    size_t  len;
    bool    over;
} azid_buf_t;

static size_t azid_body(char *p, size_t size, size_t nmemb, void *arg)
{
    azid_buf_t *b = arg;
    size_t n = size * nmemb;

    if (b->len + n > AZID_BODY_MAX) {
        b->over = true;
        return 0;                      /* curl fails the transfer */
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return n;
}

/* The "error" of an error answer, printable and short: for the log. */
static void azid_error_code(const azid_buf_t *b, char *out, size_t cap)
{
    json_object *root, *v;
    const char *s;
    size_t i;

    snprintf(out, cap, "no error code");
    root = json_tokener_parse(b->data);
    if ((root != NULL) && json_object_is_type(root, json_type_object) &&
        json_object_object_get_ex(root, "error", &v) &&
        json_object_is_type(v, json_type_string)) {
        s = json_object_get_string(v);
        for (i = 0; (s[i] != '\0') && (i + 1 < cap) && (i < 64); i++) {
            out[i] = isalnum((unsigned char)s[i]) || (s[i] == '_') ? s[i] : '?';
        }
        out[i] = '\0';
    }
    if (root != NULL) {
        json_object_put(root);
    }
}

/*
 * One request to a token endpoint (@p post: a form body, or NULL for a
 * GET), within the origin deadline; its answer parsed into @p token.
 */
static ucache_status_t azid_request(const char *who, const char *url, const char *post,
                                    struct curl_slist *hdrs, bool no_proxy, char *token,
                                    size_t cap, uint64_t *ttl_s_p)
{
    us_origin_params_t prm;
    azid_buf_t b = { 0 };
    ucache_status_t st;
    char code[80];
    long http = 0;
    CURLcode rc;
    CURL *h;

    us_origin_params(&prm);
    b.data = malloc(AZID_BODY_MAX + 1);
    h      = curl_easy_init();
    if ((b.data == NULL) || (h == NULL)) {
        free(b.data);
        curl_easy_cleanup(h);
        return UCACHE_ERR_NO_MEMORY;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(prm.timeout_ns / UC_NSEC_PER_MSEC));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(prm.deadline_ns / UC_NSEC_PER_MSEC));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, azid_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (prm.ca_file[0] != '\0') {
        curl_easy_setopt(h, CURLOPT_CAINFO, prm.ca_file);
    }
    if (no_proxy) {                    /* IMDS is link-local: never proxied */
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    }
    if (post != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
    }
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
    curl_easy_cleanup(h);
    b.data[b.len] = '\0';
    if (rc != CURLE_OK) {
        UC_ERROR("%s: the token endpoint cannot be reached: %s", who,
                 b.over ? "its answer is too large" : curl_easy_strerror(rc));
        st = b.over ? UCACHE_ERR_INVALID : UCACHE_ERR_IO;
    } else if (http != 200) {
        azid_error_code(&b, code, sizeof(code));
        UC_ERROR("%s: the token endpoint answered HTTP %ld (%s)", who, http, code);
        st = ((http >= 400) && (http < 500) && (http != 429)) ? UCACHE_ERR_DENIED :
                                                                 UCACHE_ERR_IO;
    } else {
        st = us_azure_token_parse(b.data, b.len, token, cap, ttl_s_p);
        if (st != UCACHE_OK) {
            UC_ERROR("%s: the token endpoint's answer is not a token (%zu bytes)", who,
                     b.len);
        }
    }
    free(b.data);
    return st;
}

/* The scope of @p resource: "https://storage.azure.com/" ->
 * "https://storage.azure.com/.default". */
static void azid_scope(const char *resource, char *out, size_t cap)
{
    size_t n = strlen(resource);

    n -= ((n > 0) && (resource[n - 1] == '/'));
    snprintf(out, cap, "%.*s/.default", (int)n, resource);
}

/* An identifier that goes into a URL path: letters, digits, '-', '.'. */
static bool azid_word(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (!isalnum((unsigned char)s[i]) && (s[i] != '-') && (s[i] != '.')) {
            return false;
        }
    }
    return i > 0;
}

/* Read the federated token file anew (the kubelet rotates it). */
static ucache_status_t azid_assertion(const char *path, char *out, size_t cap)
{
    ssize_t n;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        UC_ERROR("Azure workload identity: cannot read AZURE_FEDERATED_TOKEN_FILE %s: %m",
                 path);
        return UCACHE_ERR_DENIED;
    }
    while ((got + 1 < cap) && ((n = read(fd, out + got, cap - 1 - got)) != 0)) {
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    while ((got > 0) && isspace((unsigned char)out[got - 1])) {
        got--;
    }
    out[got] = '\0';
    if ((got == 0) || (got + 1 >= cap)) {
        UC_ERROR("Azure workload identity: AZURE_FEDERATED_TOKEN_FILE %s is %s", path,
                 (got == 0) ? "empty" : "too large");
        return UCACHE_ERR_DENIED;
    }
    return UCACHE_OK;
}

static ucache_status_t azid_workload(void *arg, const char *resource, char *token,
                                     size_t cap, uint64_t *ttl_s_p)
{
    static const char who[] = "Azure workload identity";
    char file[512], client[256], tenant[256], authority[512], scope[512], url[1024];
    char *assertion = NULL, *e_assert = NULL, *e_client = NULL, *e_scope = NULL, *form;
    struct curl_slist *hdrs = NULL;
    ucache_status_t st = UCACHE_ERR_NO_MEMORY;
    size_t n;
    CURL *h;

    (void)arg;
    if (!us_cred_get("AZURE_FEDERATED_TOKEN_FILE", file, sizeof(file)) ||
        !us_cred_get("AZURE_CLIENT_ID", client, sizeof(client)) ||
        !us_cred_get("AZURE_TENANT_ID", tenant, sizeof(tenant))) {
        UC_ERROR("%s: AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID and AZURE_TENANT_ID "
                 "are needed", who);
        return UCACHE_ERR_DENIED;
    }
    if (!us_cred_get("AZURE_AUTHORITY_HOST", authority, sizeof(authority))) {
        snprintf(authority, sizeof(authority), "%s", AZID_AUTHORITY);
    }
    if (!azid_word(tenant)) {
        UC_ERROR("%s: AZURE_TENANT_ID is not a tenant id or domain", who);
        return UCACHE_ERR_INVALID;
    }
    if ((strncmp(authority, "https://", 8) != 0) && (strncmp(authority, "http://", 7) != 0)) {
        UC_ERROR("%s: AZURE_AUTHORITY_HOST is not an http(s) URL", who);
        return UCACHE_ERR_INVALID;
    }
    n = strlen(authority);
    n -= ((n > 0) && (authority[n - 1] == '/'));
    if ((size_t)snprintf(url, sizeof(url), "%.*s/%s/oauth2/v2.0/token", (int)n, authority,
                         tenant) >= sizeof(url)) {
        return UCACHE_ERR_INVALID;
    }
    assertion = malloc(AZID_ASSERTION_MAX);
    h         = curl_easy_init();
    if ((assertion == NULL) || (h == NULL)) {
        goto out;
    }
    st = azid_assertion(file, assertion, AZID_ASSERTION_MAX);
    if (st != UCACHE_OK) {
        goto out;
    }
    azid_scope(resource, scope, sizeof(scope));
    st       = UCACHE_ERR_NO_MEMORY;
    e_assert = curl_easy_escape(h, assertion, 0);
    e_client = curl_easy_escape(h, client, 0);
    e_scope  = curl_easy_escape(h, scope, 0);
    if ((e_assert == NULL) || (e_client == NULL) || (e_scope == NULL)) {
        goto out;
    }
    n    = strlen(e_assert) + strlen(e_client) + strlen(e_scope) + 256;
    form = malloc(n);
    if (form == NULL) {
        goto out;
    }
    snprintf(form, n, "client_assertion=%s&client_assertion_type=urn%%3Aietf%%3Aparams%%3A"
             "oauth%%3Aclient-assertion-type%%3Ajwt-bearer&client_id=%s"
             "&grant_type=client_credentials&scope=%s", e_assert, e_client, e_scope);
    hdrs = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    st   = azid_request(who, url, form, hdrs, false, token, cap, ttl_s_p);
    explicit_bzero(form, n);
    free(form);
    curl_slist_free_all(hdrs);
out:
    if (e_assert != NULL) {
        explicit_bzero(e_assert, strlen(e_assert));
    }
    curl_free(e_assert);
    curl_free(e_client);
    curl_free(e_scope);
    curl_easy_cleanup(h);
    if (assertion != NULL) {
        explicit_bzero(assertion, AZID_ASSERTION_MAX);
    }
    free(assertion);
    return st;
}

static ucache_status_t azid_imds(void *arg, const char *resource, char *token, size_t cap,
                                 uint64_t *ttl_s_p)
{
    static const char who[] = "Azure managed identity (IMDS)";
    char endpoint[512], client[256], url[2048];
    char *e_res = NULL, *e_client = NULL;
    struct curl_slist *hdrs = NULL;
    ucache_status_t st = UCACHE_ERR_NO_MEMORY;
    bool has_client;
    CURL *h;

    (void)arg;
    pthread_mutex_lock(&azid.lock);
    snprintf(endpoint, sizeof(endpoint), "%s", azid.imds[0] ? azid.imds : US_IMDS_DEFAULT);
    pthread_mutex_unlock(&azid.lock);
    has_client = us_cred_get("AZURE_CLIENT_ID", client, sizeof(client));
    h = curl_easy_init();
    if (h == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    e_res    = curl_easy_escape(h, resource, 0);
    e_client = has_client ? curl_easy_escape(h, client, 0) : NULL;
    if ((e_res == NULL) || (has_client && (e_client == NULL))) {
        goto out;
    }
    if ((size_t)snprintf(url, sizeof(url), "%s%sapi-version=2018-02-01&resource=%s%s%s",
                         endpoint, strchr(endpoint, '?') ? "&" : "?", e_res,
                         has_client ? "&client_id=" : "", has_client ? e_client : "") >=
        sizeof(url)) {
        st = UCACHE_ERR_INVALID;
        goto out;
    }
    hdrs = curl_slist_append(NULL, "Metadata: true");
    st   = azid_request(who, url, NULL, hdrs, true, token, cap, ttl_s_p);
    curl_slist_free_all(hdrs);
out:
    curl_free(e_res);
    curl_free(e_client);
    curl_easy_cleanup(h);
    return st;
}

us_azid_mode_t us_azure_identity_configure(us_azid_mode_t mode, const char *imds_endpoint)
{
    char v[512];
    bool wi;

    wi = us_cred_get("AZURE_FEDERATED_TOKEN_FILE", v, sizeof(v)) &&
         us_cred_get("AZURE_CLIENT_ID", v, sizeof(v)) &&
         us_cred_get("AZURE_TENANT_ID", v, sizeof(v));
    if (mode == US_AZID_AUTO) {
        mode = wi ? US_AZID_WORKLOAD :
               ((imds_endpoint != NULL) && (imds_endpoint[0] != '\0')) ? US_AZID_IMDS :
                                                                          US_AZID_NONE;
    }
    pthread_mutex_lock(&azid.lock);
    snprintf(azid.imds, sizeof(azid.imds), "%s", (imds_endpoint != NULL) ? imds_endpoint : "");
    pthread_mutex_unlock(&azid.lock);
    if (!us_token_builtin_set((mode == US_AZID_WORKLOAD) ? azid_workload :
                              (mode == US_AZID_IMDS) ? azid_imds : NULL, NULL)) {
        return US_AZID_NONE;           /* the application's or the command's */
    }
    pthread_mutex_lock(&azid.lock);
    if (mode != azid.mode) {
        UC_INFO("Azure Blob without a key or SAS reads with %s",
                (mode == US_AZID_WORKLOAD) ? "Azure workload identity (AZURE_CLIENT_ID's "
                "federated token)" : (mode == US_AZID_IMDS) ? "the managed identity "
                "(IMDS)" : "no identity");
        azid.mode = mode;
    }
    pthread_mutex_unlock(&azid.lock);
    return mode;
}
