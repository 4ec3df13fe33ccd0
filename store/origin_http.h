/*
 * origin_http.h - the HTTP machinery of the origins (origin_http.c), for
 * the backends that are HTTP with a twist (Azure Blob signs each request,
 * S3 next): HEAD and ranged GET with If-Match, retries with backoff, the
 * per-process ETag cache.  The object is named by its URI (for logs and the
 * cache, never logged past its query) and reached at @p url; @p auth, if
 * not NULL, adds headers to every attempt (a fresh date and signature).
 */
#ifndef US_ORIGIN_HTTP_H
#define US_ORIGIN_HTTP_H

#include "store/origin.h"

#include <curl/curl.h>

typedef struct us_http_auth {
    /* Append this attempt's headers to *hdrs_p: @p verb "HEAD" or "GET",
     * @p range "bytes=A-B" or "", @p if_match the ETag or "". */
    ucache_status_t (*sign)(void *arg, const char *verb, const char *range,
                            const char *if_match, struct curl_slist **hdrs_p);
    void *arg;
} us_http_auth_t;

ucache_status_t us_http_stat(const char *uri, const char *url,
                             const us_http_auth_t *auth, us_object_t *obj_p);

ucache_status_t us_http_read(const char *uri, const char *url,
                             const us_http_auth_t *auth, const us_object_t *obj,
                             uint64_t off, void *buf, size_t len);

#endif
