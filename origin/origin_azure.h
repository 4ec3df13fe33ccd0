/*
 * origin_azure.h - Azure Blob origins: az://ACCOUNT/CONTAINER/BLOB and
 * https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB.  Credentials come
 * from the conventional environment: AZURE_STORAGE_CONNECTION_STRING
 * (AccountName, AccountKey, BlobEndpoint - the emulator's endpoint -,
 * SharedAccessSignature), AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_KEY,
 * AZURE_STORAGE_SAS_TOKEN; a SAS in the URI's query wins.  With a key,
 * requests are signed (Shared Key); with a SAS it rides in the query;
 * with neither the container must be public.  Keys and tokens are never
 * logged.  The signing helpers are exported for tools and tests.
 */
#ifndef US_ORIGIN_AZURE_H
#define US_ORIGIN_AZURE_H

#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>

#define US_AZ_VERSION "2021-08-06"   /* x-ms-version we speak */

typedef struct us_az_cred {
    char account[64];
    char key[128];         /* base64 account key, or ""     */
    char sas[1024];        /* SAS query string (no '?'), or "" */
    char endpoint[512];    /* blob endpoint for account, or "" (the public one) */
} us_az_cred_t;

/** Credentials for @p account from the environment (see above). */
void us_az_cred_load(const char *account, us_az_cred_t *cred);

/** base64(HMAC-SHA256(base64decode(@p key), @p sts)) into @p out. */
ucache_status_t us_az_sign(const char *key, const char *sts, char *out, size_t cap);

/** RFC 1123 time of now, as x-ms-date wants it. */
void us_az_date(char *out, size_t cap);

/**
 * The URL a request for blob @p uri goes to (credentials of the
 * environment and the credentials file applied; a SAS in it), and whether
 * its endpoint is a configured BlobEndpoint.  UCACHE_ERR_INVALID for a URI
 * that breaks Azure's naming rules.  (The fuzz target's oracle.)
 */
ucache_status_t us_az_request_url(const char *uri, char *url, size_t cap,
                                  bool *configured_p);

#endif
