/*
 * etcd.h - a small client of etcd's v3 JSON gateway (etcd.c): leases,
 * key ranges, transactions and watches, spoken as JSON over HTTP(S)
 * through libcurl, parsed with json-c.  Keys and values travel base64,
 * int64 fields as decimal strings.  One client serves one fabric prefix
 * over a list of endpoints and fails over across them: a request that
 * cannot reach an endpoint, or that etcd answers "unavailable" (no leader,
 * a member stopping), goes on to the next one.  Nothing here logs a
 * password or an auth token.
 *
 * Thread safety: calls on one client are serialised by its lock, except
 * uf_etcd_watch(), which runs on its own connection (one watcher at a
 * time) and may be stopped from any thread with uf_etcd_watch_stop().
 */
#ifndef UF_ETCD_H
#define UF_ETCD_H

#include "ucache.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UF_ETCD_ENDPOINTS_MAX  16
#define UF_ETCD_KEY_MAX        1024    /* bytes of a key we read or write  */
#define UF_ETCD_VALUE_MAX      4096    /* bytes of a value we read         */
#define UF_ETCD_REPLY_MAX      (64u << 20) /* bytes of one reply           */

typedef struct uf_etcd uf_etcd_t;

typedef struct uf_etcd_opts {
    const char *ca;          /* etcds://: CA file ("" or NULL: the system's) */
    const char *cert;        /* client certificate and key (mutual TLS)     */
    const char *key;
    const char *user;        /* etcd user ("" or NULL: no auth)             */
    const char *password;
    uint64_t    timeout_ns;  /* one request on one endpoint                 */
} uf_etcd_opts_t;

/* A key-value as etcd reports it; key and value are decoded and
 * NUL-terminated (a value may hold NULs: use value_len). */
typedef struct uf_etcd_kv {
    char    *key;
    size_t   key_len;
    char    *value;
    size_t   value_len;
    int64_t  create_rev;
    int64_t  mod_rev;
    int64_t  lease;
    bool     deleted;        /* a watch's DELETE event                     */
} uf_etcd_kv_t;

/* A comparison of a transaction: target (create or mod revision) of key
 * (every key of [key, end) when end is set) equal to / less than value. */
typedef struct uf_etcd_cmp {
    const char *key;
    const char *end;         /* NULL: key alone                            */
    bool        mod;         /* false: CREATE revision, true: MOD revision */
    bool        less;        /* false: EQUAL, true: LESS                   */
    int64_t     value;
} uf_etcd_cmp_t;

/* A put of a transaction (value NULL: a delete of key). */
typedef struct uf_etcd_put {
    const char *key;
    const void *value;
    size_t      len;
    int64_t     lease;       /* 0: none                                    */
} uf_etcd_put_t;

/* What a reply said (the parsers' output; fuzzed). */
typedef struct uf_etcd_reply {
    int64_t       revision;  /* header.revision                            */
    int64_t       id;        /* lease grant / keepalive: the lease          */
    int64_t       ttl;       /* lease: seconds left, 0 if it is gone        */
    bool          succeeded; /* txn                                         */
    bool          more;      /* range: more keys past this page             */
    bool          created;   /* watch: the watch is set up                  */
    bool          canceled;  /* watch: etcd ended it                        */
    int64_t       compact_rev; /* watch: canceled because compacted to here */
    uf_etcd_kv_t *kvs;       /* range kvs, or a watch reply's events        */
    uint32_t      nkvs;
    char          token[256]; /* authenticate                               */
    int64_t       db_size;   /* status: the database's bytes               */
} uf_etcd_reply_t;

/* Which reply a parser expects. */
typedef enum uf_etcd_kind {
    UF_ETCD_LEASE_GRANT, UF_ETCD_KEEPALIVE, UF_ETCD_RANGE, UF_ETCD_TXN,
    UF_ETCD_WATCH, UF_ETCD_AUTH, UF_ETCD_STATUS, UF_ETCD_PLAIN
} uf_etcd_kind_t;

/**
 * A client of the etcd cluster @p url names: "etcd://HOST:PORT[,HOST:PORT...]/PREFIX"
 * or "etcds://..." for TLS.  *prefix_p (may be NULL) points into @p url.
 * UCACHE_ERR_INVALID (logged) for a malformed URL.
 */
ucache_status_t uf_etcd_create(const char *url, const uf_etcd_opts_t *opts,
                               uf_etcd_t **e_p);
void uf_etcd_destroy(uf_etcd_t *e);
/** The prefix keys live under (no trailing '/'). */
const char *uf_etcd_prefix(const uf_etcd_t *e);
/** The endpoint the client used last, "host:port". */
const char *uf_etcd_endpoint(const uf_etcd_t *e);

/** Requests sent and endpoint switches so far (ucperf members, status). */
void uf_etcd_counts(const uf_etcd_t *e, uint64_t *requests_p, uint64_t *failovers_p,
                    uint64_t *bytes_p);

/** A lease of @p ttl_s seconds: *lease_p, *ttl_p what etcd granted. */
ucache_status_t uf_etcd_lease_grant(uf_etcd_t *e, int64_t ttl_s, int64_t *lease_p,
                                    int64_t *ttl_p);
/** Keep @p lease alive: *ttl_p seconds left, 0 if etcd no longer has it. */
ucache_status_t uf_etcd_lease_keepalive(uf_etcd_t *e, int64_t lease, int64_t *ttl_p);
ucache_status_t uf_etcd_lease_revoke(uf_etcd_t *e, int64_t lease);

/**
 * One page of keys [key, end) at revision @p rev (0: the latest), at most
 * @p limit of them (0: no limit).  Free @p r with uf_etcd_reply_clear().
 */
ucache_status_t uf_etcd_range(uf_etcd_t *e, const char *key, const char *end,
                              int64_t rev, int64_t limit, uf_etcd_reply_t *r);

/** If every comparison holds, do the puts: *ok_p says which. */
ucache_status_t uf_etcd_txn(uf_etcd_t *e, const uf_etcd_cmp_t *cmp, unsigned ncmp,
                            const uf_etcd_put_t *puts, unsigned nputs, bool *ok_p,
                            int64_t *rev_p);

/** The size of the database of the endpoint that answers (ucperf members). */
ucache_status_t uf_etcd_db_size(uf_etcd_t *e, int64_t *bytes_p);

/** The answering endpoint's status: its database's bytes and the cluster's
 *  revision (either pointer may be NULL). */
ucache_status_t uf_etcd_status(uf_etcd_t *e, int64_t *bytes_p, int64_t *rev_p);

/** Put @p key unconditionally (tests, tools). */
ucache_status_t uf_etcd_put(uf_etcd_t *e, const char *key, const void *value,
                            size_t len, int64_t lease);

/** Called for each event of a watch, in revision order. */
typedef void (*uf_etcd_event_fn)(void *arg, const uf_etcd_kv_t *kv, int64_t revision);

/**
 * Watch [key, end) from revision @p start until uf_etcd_watch_stop(), an
 * error or etcd's cancellation: blocks.  Returns UCACHE_ERR_CANCELED once
 * stopped, UCACHE_ERR_OUT_OF_RANGE if @p start was compacted (range again,
 * then watch from *rev_p + 1), a transport status otherwise.  *rev_p is the
 * last revision the watch reported.
 */
ucache_status_t uf_etcd_watch(uf_etcd_t *e, const char *key, const char *end,
                              int64_t start, uf_etcd_event_fn fn, void *arg,
                              int64_t *rev_p);
/** Stop a watch running on another thread (and any later one). */
void uf_etcd_watch_stop(uf_etcd_t *e);

/** The end of the range of keys that start with @p prefix, into @p out. */
void uf_etcd_prefix_end(const char *prefix, char *out, size_t cap);

/**
 * Parse one reply of @p kind from the @p len bytes at @p buf (untrusted:
 * the fuzz target drives this).  UCACHE_ERR_CORRUPT if malformed,
 * UCACHE_ERR_PEER for an "unavailable" error reply (try another endpoint),
 * UCACHE_ERR_AUTH for an authentication error, UCACHE_ERR_NOT_FOUND for
 * "not found" (a lease gone), UCACHE_ERR_IO for another error reply.
 */
ucache_status_t uf_etcd_parse(uf_etcd_kind_t kind, const char *buf, size_t len,
                              uf_etcd_reply_t *r);
void uf_etcd_reply_clear(uf_etcd_reply_t *r);

#endif
