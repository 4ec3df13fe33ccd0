/*
 * origin_s3.h - S3 origins: s3://BUCKET/KEY, signed with AWS Signature
 * Version 4.  Credentials and settings come by their conventional names:
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION
 * (or AWS_DEFAULT_REGION; us-east-1 if none), AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL (an S3-compatible store, addressed path-style), from the
 * environment or the ucache credentials file, else from the shared
 * ~/.aws/credentials and ~/.aws/config of AWS_PROFILE (AWS_SHARED_
 * CREDENTIALS_FILE, AWS_CONFIG_FILE move them).  Without an endpoint the
 * bucket is addressed virtual-hosted at s3.REGION.amazonaws.com.  With no
 * key at all requests go unsigned (public buckets).  Secrets never reach a
 * log.  The signer is exported for tests and tools.
 */
#ifndef US_ORIGIN_S3_H
#define US_ORIGIN_S3_H

#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct us_s3_cred {
    char akid[128];
    char secret[128];
    char token[2048];      /* session token, or "" */
    char region[64];
    char endpoint[512];    /* "scheme://host[:port][/path]", or "" (AWS) */
} us_s3_cred_t;

/** Credentials and settings from the places above. */
void us_s3_cred_load(us_s3_cred_t *cred);

#define US_S3_EMPTY_SHA256 \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/**
 * The Authorization header value of a SigV4-signed S3 request.
 * @param path   canonical (percent-encoded) path, "/" at least
 * @param query  canonical query string (sorted, encoded), or ""
 * @param hdrs   the signed headers as "name:value", names lower case,
 *               sorted by name (host and x-amz-date among them)
 * @param amzdate  "YYYYMMDDTHHMMSSZ", as in the x-amz-date header
 */
ucache_status_t us_s3_sign(const us_s3_cred_t *cred, const char *verb, const char *path,
                           const char *query, const char *const *hdrs, size_t nhdrs,
                           const char *payload_sha256, const char *amzdate, char *out,
                           size_t cap);

/**
 * The URL a request for object @p uri goes to (the bucket's own host, or
 * the configured endpoint), and whether that endpoint is configured.
 * UCACHE_ERR_INVALID for a URI that breaks S3's naming rules.  (The fuzz
 * target's oracle.)
 */
ucache_status_t us_s3_request_url(const char *uri, char *url, size_t cap,
                                  bool *configured_p);

#endif
