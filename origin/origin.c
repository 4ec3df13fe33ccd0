/*
 * origin.c - the origin registry: picks the backend by URI scheme, checks
 * what every backend would otherwise check, and counts requests.
 */
#include "origin/origin.h"
#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "util/time.h"

#define US_META_BUCKETS 1024
#define US_META_MAX     65536

/* An object's metadata as last asked of its origin. */
typedef struct us_meta {
    struct us_meta *next;
    uint64_t        hash;
    uint64_t        fetched_ns;
    us_object_t     obj;
    char            uri[];
} us_meta_t;

#define US_META_INFLIGHT 64 /* URIs whose metadata is being asked at once */

static pthread_mutex_t us_meta_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  us_meta_cond = PTHREAD_COND_INITIALIZER; /* a request ended */
static us_meta_t      *us_meta[US_META_BUCKETS];
static unsigned        us_nmeta;
static uint64_t        us_meta_inflight[US_META_INFLIGHT]; /* their hashes (0: free) */

static const us_origin_ops_t *const us_origins[] = {
    &us_origin_azure_ops,   /* claims some https:// URIs: before https */
    &us_origin_file_ops,
    &us_origin_s3_ops,
    &us_origin_http_ops,
    &us_origin_https_ops,
};

/* The defaults (the configuration table's, for callers without one). */
static const us_origin_params_t us_origin_dflt = {
    .retries = 5, .backoff_ns = 50000000ull, .timeout_ns = 30000000000ull,
    .meta_ttl_ns = 2000000000ull, .list_page = 1000, .part_bytes = 16ull << 20,
    .deadline_ns = 60000000000ull
};

/* The settings of the call running on this thread: each API call below
 * sets its caller's for its length (and restores what was there, for a
 * call made inside another), so contexts with different settings share
 * the backends without sharing settings. */
static _Thread_local const us_origin_params_t *us_prm;

void us_origin_params_default(us_origin_params_t *params_p)
{
    *params_p = us_origin_dflt;
}

void us_origin_params(us_origin_params_t *params_p)
{
    *params_p = (us_prm != NULL) ? *us_prm : us_origin_dflt;
}

const us_origin_params_t *us_origin_enter(const us_origin_params_t *prm)
{
    const us_origin_params_t *saved = us_prm;

    us_prm = (prm != NULL) ? prm : &us_origin_dflt;
    return saved;
}

void us_origin_leave(const us_origin_params_t *saved)
{
    us_prm = saved;
}

static struct {
    _Atomic uint64_t stats, reads, bytes, errors;
} us_origin_st;

static const us_origin_ops_t *us_origin_find(const char *uri)
{
    const char *colon;
    size_t i, n;

    if ((uri == NULL) || (strnlen(uri, US_URI_MAX) >= US_URI_MAX)) {
        return NULL;
    }
    colon = strstr(uri, "://");
    if (colon == NULL) {
        return NULL;
    }
    n = (size_t)(colon - uri);
    for (i = 0; i < sizeof(us_origins) / sizeof(us_origins[0]); i++) {
        if ((us_origins[i]->match != NULL) ? us_origins[i]->match(uri) :
            ((strlen(us_origins[i]->scheme) == n) &&
             (strncmp(us_origins[i]->scheme, uri, n) == 0))) {
            return us_origins[i];
        }
    }
    return NULL;
}

bool us_origin_by_etag(const char *uri)
{
    const us_origin_ops_t *ops = us_origin_find(uri);

    return (ops != NULL) && ops->by_etag;
}

static ucache_status_t us_origin_unknown(const char *uri)
{
    atomic_fetch_add(&us_origin_st.errors, 1);
    if ((uri == NULL) || (strnlen(uri, US_URI_MAX) >= US_URI_MAX)) {
        UC_ERROR("URI is missing or longer than %u bytes", US_URI_MAX - 1);
        return UCACHE_ERR_INVALID;
    }
    UC_ERROR("no origin serves '%.*s' (schemes: file://, http(s)://, az://, s3://)",
             us_uri_loglen(uri) < 64 ? us_uri_loglen(uri) : 64, uri);
    return UCACHE_ERR_UNSUPPORTED;
}

/* us_meta_lock held: the entry of @p uri (hash @p h), or NULL. */
static us_meta_t *do_meta_find(const char *uri, uint64_t h)
{
    us_meta_t *m;

    for (m = us_meta[h % US_META_BUCKETS]; m != NULL; m = m->next) {
        if ((m->hash == h) && (strcmp(m->uri, uri) == 0)) {
            return m;
        }
    }
    return NULL;
}

static void us_meta_put_aged(const char *uri, const us_object_t *obj, uint64_t age_ns)
{
    size_t len = strlen(uri);
    uint64_t h = XXH3_64bits(uri, len);
    us_meta_t *m;
    unsigned b;

    pthread_mutex_lock(&us_meta_lock);
    m = do_meta_find(uri, h);
    if ((m == NULL) && (us_nmeta >= US_META_MAX)) {
        for (b = 0; b < US_META_BUCKETS; b++) { /* full: start over */
            while ((m = us_meta[b]) != NULL) {
                us_meta[b] = m->next;
                free(m);
            }
        }
        us_nmeta = 0;
    }
    if (m == NULL) {
        m = malloc(sizeof(*m) + len + 1);
        if (m == NULL) {
            pthread_mutex_unlock(&us_meta_lock);
            return;
        }
        memcpy(m->uri, uri, len + 1);
        m->hash = h;
        m->next = us_meta[h % US_META_BUCKETS];
        us_meta[h % US_META_BUCKETS] = m;
        us_nmeta++;
    }
    m->obj        = *obj;
    m->fetched_ns = uc_time_ns() - age_ns;
    pthread_mutex_unlock(&us_meta_lock);
}

static void us_meta_put(const char *uri, const us_object_t *obj)
{
    us_meta_put_aged(uri, obj, 0);
}

void us_origin_meta_put(const char *uri, const us_object_t *obj, uint64_t age_ns)
{
    if ((uri != NULL) && (strnlen(uri, US_URI_MAX) < US_URI_MAX)) {
        us_meta_put_aged(uri, obj, age_ns);
    }
}

static ucache_status_t us_stat(const char *uri, us_object_t *obj_p)
{
    const us_origin_ops_t *ops = us_origin_find(uri);
    ucache_status_t status;

    if (ops == NULL) {
        return us_origin_unknown(uri);
    }
    atomic_fetch_add(&us_origin_st.stats, 1);
    status = ops->stat(uri, obj_p);
    if (status != UCACHE_OK) {
        atomic_fetch_add(&us_origin_st.errors, 1);
    } else {
        us_meta_put(uri, obj_p);
    }
    return status;
}

ucache_status_t us_origin_stat(const us_origin_params_t *prm, const char *uri,
                               us_object_t *obj_p)
{
    const us_origin_params_t *saved = us_origin_enter(prm);
    ucache_status_t status = us_stat(uri, obj_p);

    us_origin_leave(saved);
    return status;
}

/* us_meta_lock held: whether a request for hash @p h is in flight. */
static bool do_meta_busy(uint64_t h)
{
    unsigned i;

    for (i = 0; i < US_META_INFLIGHT; i++) {
        if (us_meta_inflight[i] == h) {
            return true;
        }
    }
    return false;
}

/* us_meta_lock held: mark (@p on) or unmark hash @p h in flight; false if
 * the table is full (the request goes on unshared). */
static bool do_meta_mark(uint64_t h, bool on)
{
    unsigned i;

    for (i = 0; i < US_META_INFLIGHT; i++) {
        if (us_meta_inflight[i] == (on ? 0 : h)) {
            us_meta_inflight[i] = on ? h : 0;
            return true;
        }
    }
    return false;
}

ucache_status_t us_origin_meta(const us_origin_params_t *prm, const char *uri,
                               bool refresh, us_object_t *obj_p, uint64_t *age_p)
{
    uint64_t ttl = ((prm != NULL) ? prm : &us_origin_dflt)->meta_ttl_ns;
    uint64_t t0 = uc_time_ns(), h, busy, now;
    ucache_status_t status;
    bool marked;
    us_meta_t *m;

    if ((uri == NULL) || (strnlen(uri, US_URI_MAX) >= US_URI_MAX)) {
        return us_origin_stat(prm, uri, obj_p); /* its error */
    }
    h    = XXH3_64bits(uri, strlen(uri));
    busy = h | 1; /* never 0: a free in-flight slot */
    pthread_mutex_lock(&us_meta_lock);
    for (;;) {
        m   = do_meta_find(uri, h);
        now = uc_time_ns();
        /* young enough by the caller's TTL; when refreshing, asked since */
        if ((m != NULL) && (now - m->fetched_ns < ttl) &&
            (!refresh || ((int64_t)(m->fetched_ns - t0) >= 0))) {
            *obj_p = m->obj;
            *age_p = now - m->fetched_ns;
            pthread_mutex_unlock(&us_meta_lock);
            return UCACHE_OK;
        }
        if (!do_meta_busy(busy)) {
            break;
        }
        pthread_cond_wait(&us_meta_cond, &us_meta_lock); /* its answer, then ours */
    }
    marked = do_meta_mark(busy, true);
    pthread_mutex_unlock(&us_meta_lock);
    status = us_origin_stat(prm, uri, obj_p);
    *age_p = 0;
    pthread_mutex_lock(&us_meta_lock);
    if (marked) {
        do_meta_mark(busy, false);
        pthread_cond_broadcast(&us_meta_cond);
    }
    pthread_mutex_unlock(&us_meta_lock);
    return status;
}

ucache_status_t us_origin_meta_peek(const us_origin_params_t *prm, const char *uri,
                                    us_object_t *obj_p, uint64_t *age_p)
{
    uint64_t ttl = ((prm != NULL) ? prm : &us_origin_dflt)->meta_ttl_ns, now;
    ucache_status_t status = UCACHE_ERR_NOT_FOUND;
    us_meta_t *m;

    if ((uri == NULL) || (strnlen(uri, US_URI_MAX) >= US_URI_MAX)) {
        return UCACHE_ERR_INVALID;
    }
    pthread_mutex_lock(&us_meta_lock);
    m   = do_meta_find(uri, XXH3_64bits(uri, strlen(uri)));
    now = uc_time_ns();
    if ((m != NULL) && (now - m->fetched_ns < ttl)) {
        *obj_p = m->obj;
        *age_p = now - m->fetched_ns;
        status = UCACHE_OK;
    }
    pthread_mutex_unlock(&us_meta_lock);
    return status;
}

ucache_status_t us_origin_stat_cached(const us_origin_params_t *prm, const char *uri,
                                      bool refresh, us_object_t *obj_p)
{
    uint64_t age;

    return us_origin_meta(prm, uri, refresh, obj_p, &age);
}

static ucache_status_t us_read(const char *uri, const us_object_t *obj, uint64_t off,
                               void *buf, size_t len)
{
    const us_origin_ops_t *ops = us_origin_find(uri);
    ucache_status_t status;

    if (ops == NULL) {
        return us_origin_unknown(uri);
    }
    if ((off > obj->size) || (len > obj->size - off) || ((len > 0) && (buf == NULL))) {
        atomic_fetch_add(&us_origin_st.errors, 1);
        UC_ERROR("read of %zu bytes at %llu is outside %.*s (%llu bytes)", len,
                 (unsigned long long)off, us_uri_loglen(uri), uri,
                 (unsigned long long)obj->size);
        return UCACHE_ERR_OUT_OF_RANGE;
    }
    atomic_fetch_add(&us_origin_st.reads, 1);
    status = ops->read(uri, obj, off, buf, len);
    if (status == UCACHE_OK) {
        atomic_fetch_add(&us_origin_st.bytes, len);
    } else {
        atomic_fetch_add(&us_origin_st.errors, 1);
    }
    return status;
}

ucache_status_t us_origin_read(const us_origin_params_t *prm, const char *uri,
                               const us_object_t *obj, uint64_t off, void *buf,
                               size_t len)
{
    const us_origin_params_t *saved = us_origin_enter(prm);
    ucache_status_t status = us_read(uri, obj, off, buf, len);

    us_origin_leave(saved);
    return status;
}

int us_uri_loglen(const char *uri)
{
    size_t n = strcspn(uri, "?#");

    return (int)((n > 200) ? 200 : n);
}

static _Thread_local const us_origin_scope_t *us_scope;

const us_origin_scope_t *us_origin_scope(void)
{
    return us_scope;
}

ucache_status_t us_origin_confine(const us_allow_t *allow, const char *uri,
                                  us_origin_scope_t *scope)
{
    memset(scope, 0, sizeof(*scope));
    scope->allow = allow;
    if ((uri == NULL) || (strnlen(uri, US_URI_MAX) >= US_URI_MAX) ||
        (us_allow_uri(allow, uri, &scope->named) != UCACHE_OK)) {
        UC_INFO("refused to ask '%.*s': no UCACHE_ALLOW rule allows it",
                (uri != NULL) ? us_uri_loglen(uri) : 0, (uri != NULL) ? uri : "");
        return UCACHE_ERR_REFUSED;
    }
    us_scope = scope;
    return UCACHE_OK;
}

void us_origin_unconfine(void)
{
    us_scope = NULL;
}

ucache_status_t us_origin_fill(const us_origin_params_t *prm, const us_allow_t *allow,
                               const char *uri, const us_object_t *obj, uint64_t off,
                               void *buf, size_t len)
{
    us_origin_scope_t scope;
    ucache_status_t status;

    status = us_origin_confine(allow, uri, &scope);
    if (status != UCACHE_OK) {
        return status;
    }
    status = us_origin_read(prm, uri, obj, off, buf, len);
    us_origin_unconfine();
    return status;
}

typedef struct us_list_arg {
    us_origin_list_fn_t fn;
    void               *arg;
} us_list_arg_t;

static ucache_status_t us_origin_listed(void *arg, const char *uri, const us_object_t *obj)
{
    const us_list_arg_t *la = arg;

    us_meta_put(uri, obj);
    return la->fn(la->arg, uri, obj);
}

ucache_status_t us_origin_list(const us_origin_params_t *prm, const char *prefix,
                               us_origin_list_fn_t fn, void *arg)
{
    const us_origin_ops_t *ops = us_origin_find(prefix);
    us_list_arg_t la = { fn, arg };
    const us_origin_params_t *saved;
    ucache_status_t status;

    if (ops == NULL) {
        return us_origin_unknown(prefix);
    }
    if (ops->list == NULL) {
        atomic_fetch_add(&us_origin_st.errors, 1);
        UC_ERROR("%s:// origins cannot be listed; name the objects one by one "
                 "(a manifest of URIs)", ops->scheme);
        return UCACHE_ERR_UNSUPPORTED;
    }
    atomic_fetch_add(&us_origin_st.stats, 1);
    saved  = us_origin_enter(prm);
    status = ops->list(prefix, us_origin_listed, &la);
    us_origin_leave(saved);
    if (status != UCACHE_OK) {
        atomic_fetch_add(&us_origin_st.errors, 1);
    }
    return status;
}

void us_origin_stats(us_origin_stats_t *s)
{
    s->stats  = atomic_load(&us_origin_st.stats);
    s->reads  = atomic_load(&us_origin_st.reads);
    s->bytes  = atomic_load(&us_origin_st.bytes);
    s->errors = atomic_load(&us_origin_st.errors);
}
