/*
 * http_origin.c - the HTTP origin the tests start on 127.0.0.1: serves the
 * files of a directory with HEAD, ranged GETs (206 / 416), ETag and
 * If-Match (412), and injects faults on request so the origin client's
 * retries, version checks and error paths can be tested against a real
 * server.  Control (answered, never counted as data requests):
 *   GET /_ctl/fail?n=N&code=C    the next N data requests answer C (with
 *                                Retry-After: 0 for 429/503)
 *   GET /_ctl/cut?bytes=B&n=N    the next N GETs (default 1) end the
 *                                connection after B bytes of their body (a
 *                                dying origin); n=0 cancels
 *   GET /_ctl/rate?bps=R         pace every response body from now on to R
 *                                bytes/s (0: as fast as it goes), so a fill
 *                                outlasts the requests that should join it
 *   GET /_ctl/stats              {"heads":H,"gets":G,"bytes":B,"faults":F}
 * Paths under /private/ always answer 403; paths under /bearer/ answer 401
 * unless the request carries "Authorization: Bearer good-token" (an
 * origin behind Entra ID).  Usage: http_origin DIR PORT [RATE]: with RATE
 * (bytes/s), each response body is paced to it, as one connection to a
 * cloud object store is (benchmarks).
 * (PORT 0: any); prints "port N" when it listens.  Runs until SIGTERM.
 */
#include "tests/origin/httpd.h"

#include <fcntl.h>
#include <stdbool.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *root;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned fail_n, fail_code, heads, gets, faults;
static long cut_bytes = -1;
static unsigned cut_n;
static uint64_t bytes_sent;
static _Atomic uint64_t rate; /* bytes/s per response body, 0: as fast as it goes */

typedef struct body {
    int      fd;
    uint64_t off, len, sent;
    long     cut;          /* end the connection after this many bytes, or -1 */
    struct timespec start; /* first byte, for pacing */
} body_t;

/* With a rate: sleep until @p pos bytes are due since the body started. */
static void body_pace(body_t *b, uint64_t pos)
{
    struct timespec now, ts;
    uint64_t due_ns, spent_ns;

    uint64_t bps = rate;

    if (bps == 0) {
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (pos == 0) {
        b->start = now;
        return;
    }
    due_ns   = pos * 1000000000ull / bps;
    spent_ns = (uint64_t)(now.tv_sec - b->start.tv_sec) * 1000000000ull +
               (uint64_t)(now.tv_nsec - b->start.tv_nsec);
    if (due_ns > spent_ns) {
        ts.tv_sec  = (time_t)((due_ns - spent_ns) / 1000000000ull);
        ts.tv_nsec = (long)((due_ns - spent_ns) % 1000000000ull);
        nanosleep(&ts, NULL);
    }
}

static ssize_t body_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    body_t *b = cls;
    ssize_t n;

    if (pos >= b->len) {
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if ((b->cut >= 0) && (pos >= (uint64_t)b->cut)) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (max > b->len - pos) {
        max = (size_t)(b->len - pos);
    }
    if ((b->cut >= 0) && (max > (uint64_t)b->cut - pos)) {
        max = (size_t)((uint64_t)b->cut - pos);
    }
    body_pace(b, pos);
    n = pread(b->fd, buf, max, (off_t)(b->off + pos));
    if (n <= 0) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    pthread_mutex_lock(&lock);
    bytes_sent += (uint64_t)n;
    pthread_mutex_unlock(&lock);
    return n;
}

static void body_free(void *cls)
{
    body_t *b = cls;

    close(b->fd);
    free(b);
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned code,
                                  const char *text)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                        MHD_RESPMEM_MUST_COPY);
    if ((code == 429) || (code == 503)) {
        MHD_add_response_header(r, "Retry-After", "0");
    }
    ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result control(struct MHD_Connection *c, const char *url)
{
    const char *v;
    char text[256];

    if (strcmp(url, "/_ctl/fail") == 0) {
        v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "n");
        pthread_mutex_lock(&lock);
        fail_n = v ? (unsigned)atoi(v) : 1;
        v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "code");
        fail_code = v ? (unsigned)atoi(v) : 503;
        pthread_mutex_unlock(&lock);
        return reply_text(c, 200, "ok\n");
    }
    if (strcmp(url, "/_ctl/cut") == 0) {
        const char *n = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "n");

        v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "bytes");
        pthread_mutex_lock(&lock);
        cut_n     = n ? (unsigned)atoi(n) : 1;
        cut_bytes = (cut_n == 0) ? -1 : v ? atol(v) : 0;  /* n=0 cancels */
        pthread_mutex_unlock(&lock);
        return reply_text(c, 200, "ok\n");
    }
    if (strcmp(url, "/_ctl/rate") == 0) {
        v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "bps");
        rate = v ? strtoull(v, NULL, 10) : 0;
        return reply_text(c, 200, "ok\n");
    }
    if (strcmp(url, "/_ctl/stats") == 0) {
        pthread_mutex_lock(&lock);
        snprintf(text, sizeof(text),
                 "{\"heads\":%u,\"gets\":%u,\"bytes\":%" PRIu64 ",\"faults\":%u}\n",
                 heads, gets, bytes_sent, faults);
        pthread_mutex_unlock(&lock);
        return reply_text(c, 200, text);
    }
    return reply_text(c, 404, "no such control\n");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version,
                               const char *upload, size_t *upload_len, void **state)
{
    char path[4096], etag[96], lm[64], range_hdr[128];
    const char *range, *ifm;
    bool head = (strcmp(method, "HEAD") == 0);
    unsigned long long a, b;
    struct MHD_Response *r;
    enum MHD_Result ret;
    struct stat st;
    unsigned code;
    body_t *body;
    struct tm tm;
    int fd, n;

    (void)cls; (void)version; (void)upload; (void)upload_len;
    if (*state == NULL) { /* first call: headers only */
        *state = (void *)1;
        return MHD_YES;
    }
    if (strncmp(url, "/_ctl/", 6) == 0) {
        return control(c, url);
    }
    if (!head && (strcmp(method, "GET") != 0)) {
        return reply_text(c, 405, "GET or HEAD\n");
    }
    pthread_mutex_lock(&lock);
    head ? heads++ : gets++;
    code = 0;
    if (fail_n > 0) {
        fail_n--;
        faults++;
        code = fail_code;
    }
    pthread_mutex_unlock(&lock);
    if (code != 0) {
        return reply_text(c, code, "injected fault\n");
    }
    if (strncmp(url, "/private/", 9) == 0) {
        return reply_text(c, 403, "forbidden\n");
    }
    if (strncmp(url, "/bearer/", 8) == 0) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_AUTHORIZATION);

        if ((auth == NULL) || (strcmp(auth, "Bearer good-token") != 0)) {
            return reply_text(c, 401, "no valid bearer token\n");
        }
    }
    if (strstr(url, "..") != NULL) {
        return reply_text(c, 400, "bad path\n");
    }
    snprintf(path, sizeof(path), "%s%s", root, url);
    fd = open(path, O_RDONLY);
    if ((fd < 0) || (fstat(fd, &st) != 0) || !S_ISREG(st.st_mode)) {
        if (fd >= 0) {
            close(fd);
        }
        return reply_text(c, 404, "not found\n");
    }
    snprintf(etag, sizeof(etag), "\"%llx-%llx-%llx%09ld\"",
             (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    gmtime_r(&st.st_mtim.tv_sec, &tm);
    strftime(lm, sizeof(lm), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    ifm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Match");
    if ((ifm != NULL) && (strcmp(ifm, "*") != 0) && (strcmp(ifm, etag) != 0)) {
        close(fd);
        return reply_text(c, 412, "precondition failed\n");
    }
    body = calloc(1, sizeof(*body));
    body->fd  = fd;
    body->len = (uint64_t)st.st_size;
    body->cut = -1;
    code = 200;
    range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    if (range != NULL) {
        n = sscanf(range, "bytes=%llu-%llu", &a, &b);
        if ((n < 1) || (a >= (unsigned long long)st.st_size) || ((n == 2) && (b < a))) {
            body_free(body);
            return reply_text(c, 416, "range not satisfiable\n");
        }
        if ((n == 1) || (b >= (unsigned long long)st.st_size)) {
            b = (unsigned long long)st.st_size - 1;
        }
        body->off = a;
        body->len = b - a + 1;
        code = 206;
        snprintf(range_hdr, sizeof(range_hdr), "bytes %llu-%llu/%llu", a, b,
                 (unsigned long long)st.st_size);
    }
    if (!head) {
        pthread_mutex_lock(&lock);
        body->cut = cut_bytes;
        if ((cut_n > 0) && (--cut_n == 0)) {
            cut_bytes = -1;
        }
        pthread_mutex_unlock(&lock);
    }
    /* for HEAD, MHD sends the headers (Content-Length: the size) only */
    r = MHD_create_response_from_callback(body->len, 64 * 1024, body_read, body,
                                          body_free);
    if (code == 206) {
        MHD_add_response_header(r, "Content-Range", range_hdr);
    }
    MHD_add_response_header(r, "ETag", etag);
    MHD_add_response_header(r, "Last-Modified", lm);
    MHD_add_response_header(r, "Accept-Ranges", "bytes");
    ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    if ((argc != 3) && (argc != 4)) {
        fprintf(stderr, "usage: http_origin DIR PORT [RATE]\n");
        return 2;
    }
    root = argv[1];
    rate = (argc == 4) ? strtoull(argv[3], NULL, 10) : 0;
    return httpd_run("http_origin", argv[2], handler);
}
