/*
 * origin_http.c - http:// and https:// origins through libcurl: HEAD for an
 * object's size and version (ETag, else Last-Modified and size), ranged GETs
 * with If-Match so bytes of a changed object are never mixed with the old
 * version's (412 -> UCACHE_ERR_STALE), retries with exponential backoff and
 * jitter on 429, 5xx and network errors (Retry-After honoured), and a
 * transfer that stalls for the configured timeout fails.  Each thread keeps
 * one easy handle, so connections (and TLS sessions) are reused.  An owner
 * asked for a chunk by version finds the ETag to send in the process's
 * metadata cache (origin.c), not with a HEAD each time.  Credentials never
 * appear in logs: URIs are logged up to the query.
 */
#include "origin/origin_http.h"
#include "util/log.h"
#include "util/time.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <xxhash.h>

#define UO_RETRY_CAP_NS (5ull * UC_NSEC_PER_SEC)

#define UO_PARTS_MAX    16      /* ranged GETs of one chunk in parallel */
#define UO_RECV_BUFFER  (512L << 10) /* libcurl's receive buffer (default 16 KiB) */

static _Atomic uint64_t uo_parallel_reads; /* chunks fetched in parts */

uint64_t us_http_parallel_reads(void)
{
    return atomic_load_explicit(&uo_parallel_reads, memory_order_relaxed);
}

static pthread_once_t  uo_once = PTHREAD_ONCE_INIT;
static pthread_key_t   uo_thread_key;
static bool            uo_ready;

/* A thread's transfers: one multi handle and its easy handles, kept, so
 * connections (and TLS sessions, HTTP/2 streams) are reused. */
typedef struct uo_thread {
    CURLM *multi;
    CURL  *easy[UO_PARTS_MAX];
} uo_thread_t;

static void uo_thread_free(void *arg)
{
    uo_thread_t *t = arg;
    unsigned i;

    for (i = 0; i < UO_PARTS_MAX; i++) {
        if (t->easy[i] != NULL) {
            curl_easy_cleanup(t->easy[i]);
        }
    }
    curl_multi_cleanup(t->multi);
    free(t);
}

static void uo_init_once(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        UC_ERROR("curl_global_init failed");
        return;
    }
    xmlInitParser();
    uo_ready = (pthread_key_create(&uo_thread_key, uo_thread_free) == 0);
}

/* This thread's multi handle with @p n easy handles, reset for new requests. */
static uo_thread_t *uo_thread(unsigned n)
{
    uo_thread_t *t;
    unsigned i;

    pthread_once(&uo_once, uo_init_once);
    if (!uo_ready) {
        return NULL;
    }
    t = pthread_getspecific(uo_thread_key);
    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if ((t == NULL) || ((t->multi = curl_multi_init()) == NULL) ||
            (pthread_setspecific(uo_thread_key, t) != 0)) {
            if (t != NULL) {
                curl_multi_cleanup(t->multi);
            }
            free(t);
            return NULL;
        }
        curl_multi_setopt(t->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    }
    for (i = 0; i < n; i++) {
        if (t->easy[i] == NULL) {
            t->easy[i] = curl_easy_init();
            if (t->easy[i] == NULL) {
                return NULL;
            }
        } else {
            curl_easy_reset(t->easy[i]); /* keeps its connections and sessions */
        }
    }
    return t;
}

#define UO_BODY_MAX (64u << 20) /* a whole-body GET (a listing page) */

typedef struct uo_xfer {
    bool        head;       /* HEAD, else GET                             */
    bool        grow;       /* GET of a whole body into a growing buffer  */
    char       *buf;        /* GET: where the body goes                   */
    size_t      cap, got;
    bool        overflow;
    us_http_meta_t meta;    /* what the response's headers said            */
} uo_xfer_t;

static size_t uo_body(char *data, size_t size, size_t n, void *arg)
{
    uo_xfer_t *x = arg;
    size_t len = size * n, cap;
    char *nb;

    if (x->grow && (len > x->cap - x->got) && (x->got + len <= UO_BODY_MAX)) {
        for (cap = (x->cap > 0) ? x->cap : 65536; cap < x->got + len; cap *= 2) {
        }
        nb = realloc(x->buf, cap);
        if (nb != NULL) {
            x->buf = nb;
            x->cap = cap;
        }
    }
    if (len > x->cap - x->got) {
        x->overflow = true;   /* more than asked for: not what we want */
        return 0;
    }
    memcpy(x->buf + x->got, data, len);
    x->got += len;
    return len;
}

/* Copy header @p name's value (trimmed) from @p line into @p out. */
static bool uo_header(const char *line, size_t len, const char *name, char *out,
                      size_t cap)
{
    size_t nl = strlen(name), v, i;

    if ((len <= nl) || (strncasecmp(line, name, nl) != 0) || (line[nl] != ':')) {
        return false;
    }
    for (v = nl + 1; (v < len) && ((line[v] == ' ') || (line[v] == '\t')); v++) {
    }
    while ((len > v) && ((line[len - 1] == '\r') || (line[len - 1] == '\n') ||
                         (line[len - 1] == ' '))) {
        len--;
    }
    if (len - v >= cap) {
        return false;
    }
    for (i = v; i < len; i++) {
        if (((unsigned char)line[i] < 0x20) || (line[i] == 0x7f)) {
            return false;       /* never into a header of ours (If-Match) */
        }
    }
    memcpy(out, line + v, len - v);
    out[len - v] = '\0';
    return true;
}

/* A decimal number and nothing else (no sign, no overflow). */
static bool uo_number(const char *s, uint64_t *v_p)
{
    uint64_t v = 0;

    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if ((*s < '0') || (*s > '9') || (v > (UINT64_MAX - 9) / 10)) {
            return false;
        }
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *v_p = v;
    return true;
}

void us_http_header(const char *line, size_t len, us_http_meta_t *m)
{
    char value[64];
    uint64_t v;

    if ((len >= 5) && (strncmp(line, "HTTP/", 5) == 0)) { /* a new response */
        memset(m, 0, sizeof(*m));
    } else if (uo_header(line, len, "content-length", value, sizeof(value))) {
        m->has_length = uo_number(value, &m->length);
    } else if (uo_header(line, len, "retry-after", value, sizeof(value))) {
        /* seconds (an HTTP date is taken as "now"), capped before scaling */
        m->retry_after_ns = uo_number(value, &v) ?
                            ((v > 3600) ? 3600 : v) * UC_NSEC_PER_SEC : 0;
    } else {
        (void)(uo_header(line, len, "etag", m->etag, sizeof(m->etag)) ||
               uo_header(line, len, "last-modified", m->last_modified,
                         sizeof(m->last_modified)));
    }
}

static size_t uo_headers(char *line, size_t size, size_t n, void *arg)
{
    uo_xfer_t *x = arg;

    us_http_header(line, size * n, &x->meta);
    return size * n;
}

static bool uo_retryable(CURLcode rc, long code)
{
    if (rc != CURLE_OK) {
        return (rc == CURLE_COULDNT_CONNECT) || (rc == CURLE_OPERATION_TIMEDOUT) ||
               (rc == CURLE_RECV_ERROR) || (rc == CURLE_SEND_ERROR) ||
               (rc == CURLE_GOT_NOTHING) || (rc == CURLE_PARTIAL_FILE) ||
               (rc == CURLE_COULDNT_RESOLVE_HOST);
    }
    return (code == 429) || (code == 500) || (code == 502) || (code == 503) ||
           (code == 504);
}

static ucache_status_t uo_status(const char *uri, CURLcode rc, long code)
{
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        UC_ERROR("%.*s: the origin stalled past UCACHE_ORIGIN_TIMEOUT or ran past "
                 "UCACHE_ORIGIN_DEADLINE", us_uri_loglen(uri), uri);
        return UCACHE_ERR_TIMEOUT;
    }
    if (rc != CURLE_OK) {
        UC_ERROR("%.*s: %s", us_uri_loglen(uri), uri, curl_easy_strerror(rc));
        return UCACHE_ERR_IO;
    }
    switch (code) {
    case 404: case 410:
        UC_DEBUG("%.*s: HTTP %ld", us_uri_loglen(uri), uri, code);
        return UCACHE_ERR_NOT_FOUND;
    case 401: case 403:
        UC_ERROR("%.*s: HTTP %ld: the origin refused the credentials", us_uri_loglen(uri),
                 uri, code);
        return UCACHE_ERR_DENIED;
    case 412:
        UC_INFO("%.*s changed at the origin (HTTP 412)", us_uri_loglen(uri), uri);
        return UCACHE_ERR_STALE;
    case 416:
        return UCACHE_ERR_OUT_OF_RANGE;
    default:
        UC_ERROR("%.*s: HTTP %ld", us_uri_loglen(uri), uri, code);
        return UCACHE_ERR_IO;
    }
}

/* One transfer of a request: the whole thing, or one range of a chunk. */
typedef struct uo_part {
    uo_xfer_t x;
    uint64_t  off;
    size_t    len;
    CURLcode  rc;
    long      code;
    bool      done;
    bool      private_ok; /* a fill may reach a private address (named host) */
    bool      refused;    /* a fill's socket to a private address was refused */
} uo_part_t;

/*
 * libcurl's open-socket callback for fills: the address about to be
 * connected to - after name resolution, for the origin or a proxy alike -
 * must be public unless the allow rule named the host (or it is the
 * configured endpoint).  A refusal is remembered so the request fails with
 * UCACHE_ERR_REFUSED, never retried.
 */
static curl_socket_t uo_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    uo_part_t *p = arg;
    char host[INET6_ADDRSTRLEN] = "?";

    (void)purpose;
    if (!p->private_ok && !us_addr_public(&a->addr)) {
        if (a->family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&a->addr)->sin_addr, host, sizeof(host));
        } else if (a->family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a->addr)->sin6_addr, host,
                      sizeof(host));
        }
        UC_WARN("refused to connect a fill to %s: not a public address, and no UCACHE_ALLOW "
                "rule names the host", host);
        p->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* Set up easy handle @p h for part @p p (a fresh attempt). */
static ucache_status_t uo_setup(CURL *h, const char *url, const us_http_auth_t *auth,
                                const char *etag, uo_part_t *p, const us_origin_params_t *prm,
                                struct curl_slist **hdrs)
{
    char range[64], ranges[80] = "", ifmatch[US_ETAG_MAX + 16];
    const us_origin_scope_t *scope = us_origin_scope();
    uo_xfer_t *x = &p->x;

    x->got = 0;
    x->overflow = false;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PRIVATE, p);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(prm->timeout_ns / UC_NSEC_PER_MSEC));
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                     (long)((prm->timeout_ns + UC_NSEC_PER_SEC - 1) / UC_NSEC_PER_SEC));
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);  /* share an HTTP/2 connection */
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, UO_RECV_BUFFER); /* fewer, larger recv() */
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(prm->deadline_ns / UC_NSEC_PER_MSEC));
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (scope != NULL) {          /* a fill: only the addresses its rule allows */
        p->private_ok = scope->named || ((auth != NULL) && auth->endpoint_configured);
        p->refused    = false;
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, uo_open_socket);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, p);
        curl_easy_setopt(h, CURLOPT_PROXY, ""); /* no proxy from the environment */
    }
    if (prm->ca_file[0] != '\0') {
        curl_easy_setopt(h, CURLOPT_CAINFO, prm->ca_file);
    }
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, uo_headers);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    if (x->head) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, uo_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    }
    if (!x->head && !x->grow) {
        snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)p->off,
                 (unsigned long long)(p->off + p->len - 1));
        snprintf(ranges, sizeof(ranges), "bytes=%s", range);
        curl_easy_setopt(h, CURLOPT_RANGE, range);
        if ((etag != NULL) && (etag[0] != '\0')) {
            snprintf(ifmatch, sizeof(ifmatch), "If-Match: %s", etag);
            *hdrs = curl_slist_append(*hdrs, ifmatch);
        }
    }
    if (auth != NULL) {
        ucache_status_t status = auth->sign(auth->arg, x->head ? "HEAD" : "GET", ranges,
                                            (!x->head && (etag != NULL)) ? etag : "", hdrs);
        if (status != UCACHE_OK) {
            return status;
        }
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
    return UCACHE_OK;
}

/* Run the parts not yet done, all at once, on this thread's multi handle. */
static ucache_status_t uo_round(uo_thread_t *t, const char *url, const us_http_auth_t *auth,
                                const char *etag, uo_part_t *parts, unsigned n,
                                const us_origin_params_t *prm)
{
    struct curl_slist *hdrs[UO_PARTS_MAX] = { NULL };
    ucache_status_t status = UCACHE_OK;
    unsigned i, added = 0;
    int running = 0, left;
    CURLMcode mc = CURLM_OK;
    CURLMsg *msg;
    uo_part_t *p;

    for (i = 0; (i < n) && (status == UCACHE_OK); i++) {
        if (parts[i].done) {
            continue;
        }
        status = uo_setup(t->easy[i], url, auth, etag, &parts[i], prm, &hdrs[i]);
        if ((status == UCACHE_OK) && (curl_multi_add_handle(t->multi, t->easy[i]) != CURLM_OK)) {
            status = UCACHE_ERR_NO_MEMORY;
        }
        parts[i].rc   = CURLE_FAILED_INIT;
        parts[i].code = 0;
        added += (status == UCACHE_OK);
    }
    if (status == UCACHE_OK) {
        do {
            mc = curl_multi_perform(t->multi, &running);
            if ((mc == CURLM_OK) && (running > 0)) {
                mc = curl_multi_poll(t->multi, NULL, 0, 1000, NULL);
            }
        } while ((mc == CURLM_OK) && (running > 0));
        while ((msg = curl_multi_info_read(t->multi, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE) {
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&p);
                p->rc = msg->data.result;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &p->code);
            }
        }
    }
    for (i = 0; i < n; i++) {
        if (!parts[i].done && (added > 0)) {
            curl_multi_remove_handle(t->multi, t->easy[i]);
        }
        curl_slist_free_all(hdrs[i]);
    }
    if ((status == UCACHE_OK) && (mc != CURLM_OK)) {
        UC_ERROR("libcurl: %s", curl_multi_strerror(mc));
        status = UCACHE_ERR_IO;
    }
    return status;
}

static bool uo_part_ok(const uo_part_t *p)
{
    return (p->rc == CURLE_OK) && ((p->code == 200) || (p->code == 206));
}

/*
 * A request in @p n parts (n > 1 only for ranges of one chunk), retried:
 * each round runs the parts not yet done in parallel; parts that failed
 * with 429, 5xx or a network error run again after a backoff with jitter
 * (or what Retry-After asks), up to the configured retries.  Each part is
 * HEAD if x.head, the whole body if x.grow, else a GET of its range with
 * If-Match @p etag (if any).
 */
static ucache_status_t uo_request(const char *uri, const char *url,
                                  const us_http_auth_t *auth, const char *etag,
                                  uo_part_t *parts, unsigned n)
{
    ucache_status_t status;
    us_origin_params_t prm;
    uint64_t delay, jitter, wait, deadline, now;
    struct timespec ts;
    unsigned attempt, i, retry;
    uo_part_t *bad;
    uo_thread_t *t;

    us_origin_params(&prm);
    delay = prm.backoff_ns;
    deadline = uc_deadline(prm.deadline_ns);   /* the whole request, retries too */
    for (attempt = 0;; attempt++) {
        t = uo_thread(n);
        if (t == NULL) {
            return UCACHE_ERR_NO_MEMORY;
        }
        now = uc_time_ns();
        prm.deadline_ns = (deadline > now + UC_NSEC_PER_MSEC) ? deadline - now : UC_NSEC_PER_MSEC;
        status = uo_round(t, url, auth, etag, parts, n, &prm);
        if (status != UCACHE_OK) {
            return status;
        }
        bad = NULL;
        retry = 0;
        wait = 0;
        for (i = 0; i < n; i++) {
            uo_part_t *p = &parts[i];

            if (p->done) {
                continue;
            }
            if (uo_part_ok(p)) {
                p->done = true;
            } else if (p->refused || ((p->rc == CURLE_WRITE_ERROR) && p->x.overflow) ||
                       (attempt >= prm.retries) || !uo_retryable(p->rc, p->code)) {
                bad = p; /* not retryable: the server sends more than a range, ... */
            } else {
                retry++;
                wait = (p->x.meta.retry_after_ns > wait) ? p->x.meta.retry_after_ns : wait;
            }
        }
        if (bad != NULL) {
            break;
        }
        if (retry == 0) {
            return UCACHE_OK;
        }
        /* backoff: delay * [0.5, 1.5), or what Retry-After asks, capped */
        jitter = (delay / 2) + ((uc_time_ns() * 0x9e3779b97f4a7c15ull) >> 11) % (delay + 1);
        jitter = (wait > 0) ? wait : jitter;
        jitter = (jitter > UO_RETRY_CAP_NS) ? UO_RETRY_CAP_NS : jitter;
        if (uc_time_ns() + jitter >= deadline) {
            UC_ERROR("%.*s: no answer within UCACHE_ORIGIN_DEADLINE, retries included",
                     us_uri_loglen(uri), uri);
            return UCACHE_ERR_TIMEOUT;
        }
        for (i = 0; (i < n) && parts[i].done; i++) {
        }
        UC_INFO("%.*s: %s%ld, retry %u of %u in %llu ms (%u of %u parts)", us_uri_loglen(uri),
                uri, (parts[i].rc != CURLE_OK) ? curl_easy_strerror(parts[i].rc) : "HTTP ",
                (parts[i].rc != CURLE_OK) ? 0L : parts[i].code, attempt + 1, prm.retries,
                (unsigned long long)(jitter / UC_NSEC_PER_MSEC), retry, n);
        ts.tv_sec  = (time_t)(jitter / UC_NSEC_PER_SEC);
        ts.tv_nsec = (long)(jitter % UC_NSEC_PER_SEC);
        nanosleep(&ts, NULL);
        delay = (delay > UO_RETRY_CAP_NS / 2) ? UO_RETRY_CAP_NS : 2 * delay;
    }
    if (bad->refused) {
        return UCACHE_ERR_REFUSED;
    }
    if ((bad->rc == CURLE_WRITE_ERROR) && bad->x.overflow && bad->x.grow) {
        UC_ERROR("%.*s: the origin sent a body larger than %u MiB (the largest page)",
                 us_uri_loglen(uri), uri, UO_BODY_MAX >> 20);
        return UCACHE_ERR_IO;
    }
    if ((bad->rc == CURLE_WRITE_ERROR) && bad->x.overflow) {
        UC_ERROR("%.*s: the origin sent more than the %zu bytes asked for",
                 us_uri_loglen(uri), uri, bad->len);
        return UCACHE_ERR_IO;
    }
    return uo_status(uri, bad->rc, bad->code);
}

uint64_t us_http_date(const char *s)
{
    struct tm tm;
    time_t t;
    char z;

    if ((s == NULL) || (s[0] == '\0')) {
        return 0;
    }
    t = curl_getdate(s, NULL);      /* RFC 1123 and its kin: Last-Modified */
    if (t > 0) {
        return (uint64_t)t;
    }
    memset(&tm, 0, sizeof(tm));     /* ISO 8601, S3's LastModified */
    if ((sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z) < 6) ||
        (tm.tm_year < 1970) || (tm.tm_mon < 1) || (tm.tm_mon > 12) || (tm.tm_mday < 1) ||
        (tm.tm_mday > 31) || (tm.tm_hour > 23) || (tm.tm_min > 59) || (tm.tm_sec > 60)) {
        return 0;
    }
    tm.tm_year -= 1900;
    tm.tm_mon  -= 1;
    t = timegm(&tm);
    return (t > 0) ? (uint64_t)t : 0;
}

void us_http_object(const char *etag, const char *last_modified, uint64_t size,
                    us_object_t *obj_p)
{
    char v[US_ETAG_MAX + 96];
    int n;

    memset(obj_p, 0, sizeof(*obj_p));
    for (n = 0; (etag != NULL) && (etag[n] != '\0'); n++) {
        if (((unsigned char)etag[n] < 0x20) || (etag[n] == 0x7f)) {
            etag = NULL;        /* not an ETag: never sent in If-Match */
            break;
        }
    }
    if ((etag != NULL) && (etag[0] != '\0')) {
        /* quoted as in an ETag header, whichever way it arrived */
        if (etag[0] == '"' || strncmp(etag, "W/", 2) == 0) {
            snprintf(obj_p->etag, sizeof(obj_p->etag), "%s", etag);
        } else {
            snprintf(obj_p->etag, sizeof(obj_p->etag), "\"%.*s\"",
                     (int)sizeof(obj_p->etag) - 3, etag);
        }
        n = snprintf(v, sizeof(v), "etag:%s", obj_p->etag);
    } else {
        n = snprintf(v, sizeof(v), "lm:%s:%llu", last_modified ? last_modified : "",
                     (unsigned long long)size);
    }
    obj_p->size    = size;
    obj_p->version = XXH3_64bits(v, (size_t)((n < (int)sizeof(v)) ? n : (int)sizeof(v) - 1));
    obj_p->mtime   = us_http_date(last_modified);
}

ucache_status_t us_http_stat(const char *uri, const char *url,
                             const us_http_auth_t *auth, us_object_t *obj_p)
{
    ucache_status_t status;
    uo_part_t p;

    memset(&p, 0, sizeof(p));
    p.x.head = true;
    status = uo_request(uri, url, auth, NULL, &p, 1);
    if (status != UCACHE_OK) {
        return status;
    }
    if (!p.x.meta.has_length) {
        UC_ERROR("%.*s: the origin did not give the object's size", us_uri_loglen(uri), uri);
        return UCACHE_ERR_IO;
    }
    us_http_object(p.x.meta.etag, p.x.meta.last_modified, p.x.meta.length, obj_p);
    return UCACHE_OK;
}

ucache_status_t us_http_get(const char *uri, const char *url, const us_http_auth_t *auth,
                            char **body_p, size_t *len_p)
{
    ucache_status_t status;
    uo_part_t p;
    uo_xfer_t *x = &p.x;

    memset(&p, 0, sizeof(p));
    x->grow = true;
    status = uo_request(uri, url, auth, NULL, &p, 1);
    if ((status == UCACHE_OK) && (x->got == x->cap)) {
        char *nb = realloc(x->buf, x->got + 1);   /* room for a terminator */

        status = (nb != NULL) ? UCACHE_OK : UCACHE_ERR_NO_MEMORY;
        x->buf = (nb != NULL) ? nb : x->buf;
    }
    if (status != UCACHE_OK) {
        free(x->buf);
        return status;
    }
    x->buf[x->got] = '\0';
    *body_p = x->buf;
    *len_p  = x->got;
    return UCACHE_OK;
}

ucache_status_t us_http_read(const char *uri, const char *url,
                             const us_http_auth_t *auth, const us_object_t *obj,
                             uint64_t off, void *buf, size_t len)
{
    uo_part_t parts[UO_PARTS_MAX];
    us_origin_params_t prm;
    us_object_t cur;
    ucache_status_t status;
    const char *etag = obj->etag;
    unsigned n, i;
    size_t step;

    if (len == 0) {
        return UCACHE_OK;
    }
    if (etag[0] == '\0') {
        /* asked by version only (an owner filling a chunk): find the ETag
         * that version has, or learn that the object has changed */
        us_origin_params(&prm);          /* this call's caller's settings */
        status = us_origin_stat_cached(&prm, uri, false, &cur);
        if ((status == UCACHE_OK) && (cur.version != obj->version)) {
            status = us_origin_stat_cached(&prm, uri, true, &cur);
        }
        if (status != UCACHE_OK) {
            return status;
        }
        if ((cur.version != obj->version) || (cur.size != obj->size)) {
            UC_INFO("%.*s changed at the origin since it was asked for",
                    us_uri_loglen(uri), uri);
            return UCACHE_ERR_STALE;
        }
        etag = cur.etag;
    }
    /* a large chunk: ranges of UCACHE_ORIGIN_PART bytes, fetched in parallel */
    us_origin_params(&prm);
    n = (prm.part_bytes > 0) ? (unsigned)((len + prm.part_bytes - 1) / prm.part_bytes) : 1;
    n = (n < 1) ? 1 : (n > UO_PARTS_MAX) ? UO_PARTS_MAX : n;
    step = (len + n - 1) / n;
    memset(parts, 0, sizeof(parts[0]) * n);
    for (i = 0; i < n; i++) {
        parts[i].off   = off + i * step;
        parts[i].len   = (i + 1 < n) ? step : len - i * step;
        parts[i].x.buf = (char *)buf + i * step;
        parts[i].x.cap = parts[i].len;
    }
    status = uo_request(uri, url, auth, etag, parts, n);
    for (i = 0; (status == UCACHE_OK) && (i < n); i++) {
        if ((parts[i].code == 200) && ((off != 0) || (len != obj->size))) {
            UC_ERROR("%.*s: the origin ignored the Range header", us_uri_loglen(uri), uri);
            status = UCACHE_ERR_IO;
        } else if (parts[i].x.got != parts[i].len) {
            UC_ERROR("%.*s: %zu of %zu bytes arrived", us_uri_loglen(uri), uri,
                     parts[i].x.got, parts[i].len);
            status = UCACHE_ERR_IO;
        }
    }
    if (n > 1) {
        atomic_fetch_add_explicit(&uo_parallel_reads, 1, memory_order_relaxed);
    }
    return status;
}

bool us_uri_encode(const char *src, size_t n, bool keep_slash, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i, o = 0;
    unsigned char c;

    for (i = 0; i < n; i++) {
        c = (unsigned char)src[i];
        if (((c >= 'A') && (c <= 'Z')) || ((c >= 'a') && (c <= 'z')) ||
            ((c >= '0') && (c <= '9')) || (c == '-') || (c == '.') || (c == '_') ||
            (c == '~') || (keep_slash && (c == '/'))) {
            if (o + 1 >= cap) {
                return false;
            }
            out[o++] = (char)c;
        } else {
            if (o + 3 >= cap) {
                return false;
            }
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o >= cap) {
        return false;
    }
    out[o] = '\0';
    return true;
}

/* The text of the first element named @p name at or below @p n. */
static bool uo_xml_find(xmlNode *n, const char *name, char *out, size_t cap)
{
    xmlChar *text;
    bool ok;

    for (; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) {
            continue;
        }
        if (xmlStrcmp(n->name, (const xmlChar *)name) == 0) {
            text = xmlNodeGetContent(n);
            ok = (text != NULL) && (strlen((const char *)text) < cap);
            snprintf(out, cap, "%s", ok ? (const char *)text : "");
            xmlFree(text);
            return ok;
        }
        if (uo_xml_find(n->children, name, out, cap)) {
            return true;
        }
    }
    return false;
}

/* Every element named @p item at or below @p n, in document order. */
static ucache_status_t uo_xml_walk(xmlNode *n, const char *item, us_xml_field_t *fields,
                                   size_t nfields, us_xml_item_fn_t fn, void *arg)
{
    ucache_status_t status;
    size_t i;

    for (; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) {
            continue;
        }
        if (xmlStrcmp(n->name, (const xmlChar *)item) == 0) {
            for (i = 0; i < nfields; i++) {
                fields[i].out[0] = '\0';
                uo_xml_find(n->children, fields[i].name, fields[i].out, fields[i].cap);
            }
            status = fn(arg);
        } else {
            status = uo_xml_walk(n->children, item, fields, nfields, fn, arg);
        }
        if (status != UCACHE_OK) {
            return status;
        }
    }
    return UCACHE_OK;
}

/*
 * Parse a listing page (libxml2): for every element named @p item, fill
 * @p fields and call @p fn (which stops the walk by returning non-OK);
 * then the text of the first @p next_name element into @p next ("" if
 * none: the last page).  UCACHE_ERR_IO if @p body is not XML.
 */
static ucache_status_t uo_xml_items(const char *uri, const char *body, size_t len,
                                    const char *item, us_xml_field_t *fields,
                                    size_t nfields, us_xml_item_fn_t fn, void *arg,
                                    const char *next_name, char *next, size_t next_cap)
{
    xmlDoc *doc;
    xmlNode *root;
    ucache_status_t status;

    pthread_once(&uo_once, uo_init_once);
    if (len > INT32_MAX) {
        return UCACHE_ERR_IO;
    }
    /* listings never carry a DTD: one could only declare entities (a
     * "billion laughs" expansion, external files), so none is parsed */
    if ((memmem(body, len, "<!DOCTYPE", 9) != NULL) || (memmem(body, len, "<!ENTITY", 8) != NULL)) {
        UC_ERROR("%.*s: the origin's listing has a DTD: refused", us_uri_loglen(uri), uri);
        return UCACHE_ERR_IO;
    }
    doc = xmlReadMemory(body, (int)len, "listing.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if ((doc != NULL) && ((doc->intSubset != NULL) || (doc->extSubset != NULL))) {
        UC_ERROR("%.*s: the origin's listing has a DTD (entities): refused",
                 us_uri_loglen(uri), uri);
        xmlFreeDoc(doc);
        return UCACHE_ERR_IO;
    }
    root = (doc != NULL) ? xmlDocGetRootElement(doc) : NULL;
    if (root == NULL) {
        UC_ERROR("%.*s: the origin's listing is not XML", us_uri_loglen(uri), uri);
        xmlFreeDoc(doc);
        return UCACHE_ERR_IO;
    }
    status = uo_xml_walk(root, item, fields, nfields, fn, arg);
    if ((status == UCACHE_OK) && (next != NULL)) {
        next[0] = '\0';
        uo_xml_find(root->children, next_name, next, next_cap);
    }
    xmlFreeDoc(doc);
    return status;
}

/* One page's items as the listing callback wants them. */
typedef struct uo_list {
    const char         *base;
    us_origin_list_fn_t fn;
    void               *arg;
    char                name[1024], size[32], etag[US_ETAG_MAX], mtime[64];
} uo_list_t;

static ucache_status_t uo_list_item(void *arg)
{
    uo_list_t *l = arg;
    char uri[US_URI_MAX];
    us_object_t obj;
    int n;

    if ((l->name[0] == '\0') || (l->name[strlen(l->name) - 1] == '/')) {
        return UCACHE_OK; /* a "directory" marker */
    }
    n = snprintf(uri, sizeof(uri), "%s/%s", l->base, l->name);
    if ((n < 0) || ((size_t)n >= sizeof(uri))) {
        UC_WARN("%s/%.64s...: URI too long, skipped", l->base, l->name);
        return UCACHE_OK;
    }
    us_http_object(l->etag, l->mtime, strtoull(l->size, NULL, 10), &obj);
    return l->fn(l->arg, uri, &obj);
}

ucache_status_t us_http_list_parse(const char *uri, const char *body, size_t len,
                                   const us_list_names_t *names, const char *base,
                                   us_origin_list_fn_t fn, void *arg, char *next,
                                   size_t next_cap)
{
    uo_list_t *l = calloc(1, sizeof(*l));
    us_xml_field_t f[4];
    ucache_status_t status;

    if (l == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    l->base = base;
    l->fn   = fn;
    l->arg  = arg;
    f[0] = (us_xml_field_t){ names->name, l->name, sizeof(l->name) };
    f[1] = (us_xml_field_t){ names->size, l->size, sizeof(l->size) };
    f[2] = (us_xml_field_t){ names->etag, l->etag, sizeof(l->etag) };
    f[3] = (us_xml_field_t){ names->mtime, l->mtime, sizeof(l->mtime) };
    status = uo_xml_items(uri, body, len, names->item, f, 4, uo_list_item, l,
                          names->next, next, next_cap);
    free(l);
    return status;
}

ucache_status_t us_http_list_page(const char *uri, const char *url,
                                  const us_http_auth_t *auth, const us_list_names_t *names,
                                  const char *base, us_origin_list_fn_t fn, void *arg,
                                  char *next, size_t next_cap)
{
    ucache_status_t status;
    char *body = NULL;
    size_t len;

    status = us_http_get(uri, url, auth, &body, &len);
    if (status == UCACHE_OK) {
        status = us_http_list_parse(uri, body, len, names, base, fn, arg, next, next_cap);
        free(body);
    }
    return status;
}

ucache_status_t us_http_do(const char *uri, const char *url, const us_http_auth_t *auth,
                           us_object_t *stat_p, const us_object_t *obj, uint64_t off,
                           void *buf, size_t len)
{
    return (stat_p != NULL) ? us_http_stat(uri, url, auth, stat_p) :
           us_http_read(uri, url, auth, obj, off, buf, len);
}

static ucache_status_t uo_stat(const char *uri, us_object_t *obj_p)
{
    return us_http_do(uri, uri, NULL, obj_p, NULL, 0, NULL, 0);
}

static ucache_status_t uo_read(const char *uri, const us_object_t *obj, uint64_t off,
                               void *buf, size_t len)
{
    return us_http_do(uri, uri, NULL, NULL, obj, off, buf, len);
}

const us_origin_ops_t us_origin_http_ops = {
    .scheme = "http",
    .stat   = uo_stat,
    .read   = uo_read,
    .by_etag = true,
};

const us_origin_ops_t us_origin_https_ops = {
    .scheme = "https",
    .stat   = uo_stat,
    .read   = uo_read,
    .by_etag = true,
};
