/*
 * fuzz_listing.c - origin listing pages (origin/origin_http.c
 * us_http_list_parse): the XML an Azure List Blobs or S3 ListObjectsV2
 * answer holds, untrusted.  The first byte picks Azure's or S3's element
 * names.  Properties: every object handed on has a URI under the base,
 * shorter than US_URI_MAX, not a "directory"; the next-page marker is
 * terminated.
 */
#include "origin/origin_http.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

static ucache_status_t fz_item(void *arg, const char *uri, const us_object_t *obj)
{
    const char *base = arg;
    size_t n = strlen(base), len = strlen(uri);

    (void)obj;
    FZ_CHECK(len < US_URI_MAX);
    FZ_CHECK((strncmp(uri, base, n) == 0) && (uri[n] == '/'));
    FZ_CHECK((len > n + 1) && (uri[len - 1] != '/'));
    return UCACHE_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const us_list_names_t az = {
        "Blob", "Name", "Content-Length", "Etag", "Last-Modified", "NextMarker"
    };
    static const us_list_names_t s3 = {
        "Contents", "Key", "Size", "ETag", "LastModified", "NextContinuationToken"
    };
    char next[1024], *body;

    fz_quiet();
    if (size < 1) {
        return 0;
    }
    body = malloc(size - 1);
    memcpy(body, data + 1, size - 1);
    memset(next, 'x', sizeof(next));
    if (us_http_list_parse("s3://bucket/", body, size - 1, (data[0] & 1) ? &az : &s3,
                           "s3://bucket", fz_item, "s3://bucket", next,
                           sizeof(next)) == UCACHE_OK) {
        FZ_CHECK(memchr(next, '\0', sizeof(next)) != NULL);
    }
    free(body);
    return 0;
}
