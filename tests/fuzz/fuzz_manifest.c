/*
 * fuzz_manifest.c - a dataset manifest (fabric/manifest.c uf_manifest_parse):
 * a file's bytes, untrusted (a job's UCACHE_MANIFEST).  Properties: every
 * object it accepts is found again by its URI with printable ETag, lies
 * under its own listing, and the listing of "" gives every object once.
 */
#include "fabric/manifest.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

static ucache_status_t fz_one(void *arg, const char *uri, const us_object_t *obj)
{
    us_object_t again;

    FZ_CHECK(uf_manifest_get(arg, uri, &again));
    FZ_CHECK((again.size == obj->size) && (again.version == obj->version));
    FZ_CHECK(strpbrk(obj->etag, "\r\n\t") == NULL);
    return UCACHE_OK;
}

static ucache_status_t fz_count(void *arg, const char *uri, const us_object_t *obj)
{
    (void)uri;
    (void)obj;
    (*(size_t *)arg)++;
    return UCACHE_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uf_manifest_t *m;
    size_t n = 0;

    fz_quiet();
    if (uf_manifest_parse((const char *)data, size, &m) != UCACHE_OK) {
        return 0;
    }
    FZ_CHECK(uf_manifest_list(m, "", fz_one, m) == UCACHE_OK);
    FZ_CHECK(uf_manifest_list(m, "", fz_count, &n) == UCACHE_OK);
    FZ_CHECK(n == uf_manifest_count(m));
    uf_manifest_free(m);
    return 0;
}
