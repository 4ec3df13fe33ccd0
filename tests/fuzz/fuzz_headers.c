/*
 * fuzz_headers.c - HTTP response header lines (origin/origin_http.c
 * us_http_header), as an origin sends them: the input split at newlines,
 * each line (newline included, like libcurl hands it over) in a buffer of
 * exactly its size.  Properties: what is taken is terminated, free of
 * control characters (it may go back out in If-Match), and Retry-After
 * stays within an hour.
 */
#include "origin/origin_http.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

static void fz_clean(const char *s, size_t cap)
{
    size_t i;

    FZ_CHECK(memchr(s, '\0', cap) != NULL);
    for (i = 0; s[i] != '\0'; i++) {
        FZ_CHECK(((unsigned char)s[i] >= 0x20) && (s[i] != 0x7f));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    us_http_meta_t m;
    us_object_t obj;
    const uint8_t *p = data, *end = data + size, *nl;
    char *line;
    size_t n;

    fz_quiet();
    memset(&m, 0, sizeof(m));
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        n  = (nl != NULL) ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        line = malloc(n);
        memcpy(line, p, n);
        us_http_header(line, n, &m);
        free(line);
        p += n;
    }
    fz_clean(m.etag, sizeof(m.etag));
    fz_clean(m.last_modified, sizeof(m.last_modified));
    FZ_CHECK(m.retry_after_ns <= 3600ull * 1000000000ull);
    us_http_object(m.etag, m.last_modified, m.length, &obj);
    fz_clean(obj.etag, sizeof(obj.etag));
    return 0;
}
