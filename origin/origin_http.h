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

#include "origin/origin.h"

#include <curl/curl.h>

typedef struct us_http_auth {
    /* Append this attempt's headers to *hdrs_p: @p verb "HEAD" or "GET",
     * @p range "bytes=A-B" or "", @p if_match the ETag or "". */
    ucache_status_t (*sign)(void *arg, const char *verb, const char *range,
                            const char *if_match, struct curl_slist **hdrs_p);
    void *arg;
    bool  endpoint_configured; /* the request goes to an endpoint of the
                                  owner's own configuration (BlobEndpoint,
                                  AWS_ENDPOINT_URL): a fill may reach it at
                                  a private address */
} us_http_auth_t;

/* What a response's headers say (us_http_header). */
typedef struct us_http_meta {
    uint64_t length;          /* Content-Length, if has_length            */
    bool     has_length;
    char     etag[US_ETAG_MAX];
    char     last_modified[64];
    uint64_t retry_after_ns;  /* Retry-After in seconds, at most an hour  */
} us_http_meta_t;

/**
 * Take one header line of a response, as libcurl hands it over (untrusted
 * bytes, @p len of them, not terminated), into @p m: a status line starts
 * a new response; values too long, with control characters or numbers that
 * do not parse are not taken.
 */
/** Seconds since the epoch of an HTTP date (Last-Modified: RFC 1123 and
 *  the forms curl_getdate() reads) or an ISO 8601 one (S3's LastModified,
 *  "2026-12-07T10:00:00.000Z"); 0 if it is neither (untrusted text). */
uint64_t us_http_date(const char *s);

void us_http_header(const char *line, size_t len, us_http_meta_t *m);

ucache_status_t us_http_stat(const char *uri, const char *url,
                             const us_http_auth_t *auth, us_object_t *obj_p);

ucache_status_t us_http_read(const char *uri, const char *url,
                             const us_http_auth_t *auth, const us_object_t *obj,
                             uint64_t off, void *buf, size_t len);

/**
 * GET the whole body at @p url (a listing page: at most 64 MiB) into a
 * malloc'ed, '\0'-terminated buffer the caller frees.
 */
ucache_status_t us_http_get(const char *uri, const char *url, const us_http_auth_t *auth,
                            char **body_p, size_t *len_p);

/** Chunks this process fetched as parallel ranged GETs (UCACHE_ORIGIN_PART). */
uint64_t us_http_parallel_reads(void);

/**
 * Percent-encode @p n bytes of @p src as RFC 3986 (and SigV4) want: all but
 * A-Z a-z 0-9 - . _ ~ (and '/' if @p keep_slash).  False if it won't fit.
 */
bool us_uri_encode(const char *src, size_t n, bool keep_slash, char *out, size_t cap);

/* One field of a listing's items: the first element @p name in the item. */
typedef struct us_xml_field {
    const char *name;
    char       *out;       /* "" if the item has no such element */
    size_t      cap;
} us_xml_field_t;

typedef ucache_status_t (*us_xml_item_fn_t)(void *arg);

/* The element names of an XML listing (Azure List Blobs, S3 ListObjectsV2). */
typedef struct us_list_names {
    const char *item;      /* one object: "Blob", "Contents"              */
    const char *name, *size, *etag, *mtime;  /* its fields               */
    const char *next;      /* the next page's marker or token            */
} us_list_names_t;

/**
 * GET one listing page at @p url and call @p fn for each object in it, as
 * @p base + "/" + its name (names ending in '/' are skipped); the next
 * page's marker goes to @p next ("" after the last page).
 */
ucache_status_t us_http_list_page(const char *uri, const char *url,
                                  const us_http_auth_t *auth, const us_list_names_t *names,
                                  const char *base, us_origin_list_fn_t fn, void *arg,
                                  char *next, size_t next_cap);

/**
 * The objects of one listing page in @p body (@p len bytes of untrusted
 * XML: a document with a DTD is refused, so no entity is ever expanded),
 * as us_http_list_page() hands them on.  UCACHE_ERR_IO if it is not XML.
 */
ucache_status_t us_http_list_parse(const char *uri, const char *body, size_t len,
                                   const us_list_names_t *names, const char *base,
                                   us_origin_list_fn_t fn, void *arg, char *next,
                                   size_t next_cap);

/** HEAD into @p stat_p if it is not NULL, else the ranged GET of @p obj. */
ucache_status_t us_http_do(const char *uri, const char *url, const us_http_auth_t *auth,
                           us_object_t *stat_p, const us_object_t *obj, uint64_t off,
                           void *buf, size_t len);

/**
 * The object (size, version, ETag) an origin describes by @p etag (quoted
 * or not: it is quoted as in headers) or else @p last_modified and
 * @p size; HEADs and listings give the same version for the same object.
 */
void us_http_object(const char *etag, const char *last_modified, uint64_t size,
                    us_object_t *obj_p);

#endif
