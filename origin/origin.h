/*
 * origin.h - where a missing chunk comes from: one backend per URI scheme
 * (file://, http(s)://, az:// and https://ACCOUNT.blob.core.windows.net,
 * s3://).
 * The owner fills chunks through us_origin_read(); clients read an origin
 * themselves only when every owner of a chunk has failed.
 * Invariant: bytes read for an object are the bytes of the version given;
 * a backend that sees the object changed returns UCACHE_ERR_STALE rather
 * than mix versions.
 */
#ifndef US_ORIGIN_H
#define US_ORIGIN_H

#include "util/status.h"
#include "origin/allow.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define US_URI_MAX 1024u    /* bytes of a URI, terminator included */

/* An object's identity at its origin. */
#define US_ETAG_MAX 128u

typedef struct us_object {
    uint64_t size;
    uint64_t version;       /* digest of the origin's version: file (dev,
                               inode, size, mtime); http: the ETag, else
                               Last-Modified and size */
    char     etag[US_ETAG_MAX]; /* http: the ETag as sent, for If-Match
                               ("" if unknown: the backend looks it up) */
    uint64_t mtime;         /* last modified at the origin, seconds since
                               the epoch (0: unknown) */
} us_object_t;

/* One object of a listing; return non-OK to stop the listing with it. */
typedef ucache_status_t (*us_origin_list_fn_t)(void *arg, const char *uri,
                                               const us_object_t *obj);

typedef struct us_origin_ops {
    const char *scheme;     /* "file" */
    bool      (*match)(const char *uri); /* NULL: by scheme alone */
    ucache_status_t (*stat)(const char *uri, us_object_t *obj_p);
    /* Exactly @p len bytes at @p off of version @p obj, or an error. */
    ucache_status_t (*read)(const char *uri, const us_object_t *obj,
                            uint64_t off, void *buf, size_t len);
    /* Every object whose URI starts with @p prefix, in the origin's order;
     * NULL if the origin cannot list. */
    ucache_status_t (*list)(const char *prefix, us_origin_list_fn_t fn, void *arg);
    /* read() of an object named by version only (no ETag) asks the
     * origin for its ETag first (a HEAD): file:// does not */
    bool      by_etag;
} us_origin_ops_t;

typedef struct us_origin_stats {
    uint64_t stats;         /* metadata requests */
    uint64_t reads;         /* data requests     */
    uint64_t bytes;
    uint64_t errors;        /* failed requests (any status but OK) */
} us_origin_stats_t;

/*
 * How origins behave: a context's settings (from its configuration; each
 * ucache context holds its own and passes them to every call below - NULL
 * for the defaults).  While a call runs, its backend sees them through
 * us_origin_params().
 */
typedef struct us_origin_params {
    unsigned retries;       /* attempts after the first on 429/5xx/network */
    uint64_t backoff_ns;    /* first retry delay; doubles, with jitter     */
    uint64_t timeout_ns;    /* a transfer that moves nothing this long fails */
    uint64_t meta_ttl_ns;   /* how long an object's size/version is reused  */
    unsigned list_page;     /* objects per listing page                     */
    uint64_t part_bytes;    /* a chunk larger than this is fetched as
                               parallel ranged GETs of about this size (0: never) */
    char     ca_file[256];  /* CA bundle for https origins ("": the system's) */
    uint64_t deadline_ns;   /* longest one transfer (and the token command) may take */
    char     cred_path[256]; /* the credentials file ("": none; UCACHE_CREDENTIALS) */
} us_origin_params_t;

/** The defaults of every setting (UCACHE_ORIGIN_* unset, no credentials file). */
void us_origin_params_default(us_origin_params_t *params_p);

/**
 * The object's size and version.  UCACHE_ERR_UNSUPPORTED for a scheme no
 * backend serves, UCACHE_ERR_INVALID for a malformed URI,
 * UCACHE_ERR_NOT_FOUND if the object does not exist, UCACHE_ERR_IO else.
 */
ucache_status_t us_origin_stat(const us_origin_params_t *prm, const char *uri,
                               us_object_t *obj_p);

/**
 * us_origin_stat() through this process's metadata cache: an answer younger
 * than the configured meta TTL is reused (no request, no system call);
 * @p refresh asks the origin regardless.  Every us_origin_stat() answer
 * lands in the cache.
 */
ucache_status_t us_origin_stat_cached(const us_origin_params_t *prm, const char *uri,
                                      bool refresh, us_object_t *obj_p);

/**
 * us_origin_stat_cached() that says how old its answer is (*age_p, ns) and
 * shares requests: while one caller asks the origin for @p uri, others
 * asking for it wait for that answer rather than ask again (any number of
 * threads, one request).  With @p refresh, only an answer asked for since
 * the call began is good.
 */
ucache_status_t us_origin_meta(const us_origin_params_t *prm, const char *uri,
                               bool refresh, us_object_t *obj_p, uint64_t *age_p);

/** The cached answer for @p uri if it is younger than the TTL (no request
 *  made, never waits); UCACHE_ERR_NOT_FOUND if there is none. */
ucache_status_t us_origin_meta_peek(const us_origin_params_t *prm, const char *uri,
                                    us_object_t *obj_p, uint64_t *age_p);

/** Whether reading @p uri's object by version alone costs its origin a
 *  request for the ETag first (us_object_t.etag empty): http(s), az, s3. */
bool us_origin_by_etag(const char *uri);

/** Put an answer @p age_ns old into this process's metadata cache (one an
 *  owner gave; a listing's). */
void us_origin_meta_put(const char *uri, const us_object_t *obj, uint64_t age_ns);

/** Read @p len bytes at @p off of version @p obj (see the invariant). */
ucache_status_t us_origin_read(const us_origin_params_t *prm, const char *uri,
                               const us_object_t *obj, uint64_t off, void *buf,
                               size_t len);

/* The confinement of the fill running on this thread. */
typedef struct us_origin_scope {
    const us_allow_t *allow;
    bool              named;   /* a rule names the URI's host: private
                                  addresses may be reached             */
} us_origin_scope_t;

/**
 * Confine this thread's origin requests about @p uri (a fill's, an owner's
 * metadata requests for readers) to what @p allow allows, as
 * us_origin_fill() does, until us_origin_unconfine(); UCACHE_ERR_REFUSED
 * (nothing set) if no rule allows @p uri.  @p scope must outlive it.
 */
ucache_status_t us_origin_confine(const us_allow_t *allow, const char *uri,
                                  us_origin_scope_t *scope);
void us_origin_unconfine(void);

/**
 * us_origin_read() for an owner filling its exported memory on anyone's
 * request: only what @p allow allows, else UCACHE_ERR_REFUSED before any
 * connection is made or byte read.  While it runs, the backends see the
 * confinement (us_origin_scope()): file:// opens regular files only, whose
 * canonical path an allow rule covers; http(s) connects only to public
 * addresses unless a rule names the host or the host is the configured
 * endpoint, uses no proxy and follows no redirect.
 */
ucache_status_t us_origin_fill(const us_origin_params_t *prm, const us_allow_t *allow,
                               const char *uri, const us_object_t *obj, uint64_t off,
                               void *buf, size_t len);


/** The fill running on this thread, or NULL: a reader's own read, with its
 *  own rights (unconfined). */
const us_origin_scope_t *us_origin_scope(void);

/** How many bytes of @p uri may be logged: up to its query (SAS tokens
 *  live there), 200 at most.  Use as "%.*s", us_uri_loglen(uri), uri. */
int us_uri_loglen(const char *uri);

/**
 * Call @p fn for every object under @p prefix (file:// a directory, walked
 * recursively; az:// and s3:// a name prefix, listed page by page).  Each
 * object's metadata lands in the metadata cache.  UCACHE_ERR_UNSUPPORTED
 * for an origin that cannot list (plain http).
 */
ucache_status_t us_origin_list(const us_origin_params_t *prm, const char *prefix,
                               us_origin_list_fn_t fn, void *arg);

/** This process's origin counters. */
void us_origin_stats(us_origin_stats_t *stats_p);



/** The settings of the origin call running on this thread (its caller's;
 *  the defaults outside a call): what a backend goes by. */
void us_origin_params(us_origin_params_t *params_p);

/** Run what follows on this thread with the settings @p prm (NULL: the
 *  defaults), until us_origin_leave() with what this returned: for a
 *  backend called directly (tests, the token command) rather than through
 *  the calls above, which do it themselves. */
const us_origin_params_t *us_origin_enter(const us_origin_params_t *prm);
void us_origin_leave(const us_origin_params_t *saved);

extern const us_origin_ops_t us_origin_file_ops;
extern const us_origin_ops_t us_origin_http_ops;
extern const us_origin_ops_t us_origin_https_ops;
extern const us_origin_ops_t us_origin_azure_ops;
extern const us_origin_ops_t us_origin_s3_ops;

#endif
