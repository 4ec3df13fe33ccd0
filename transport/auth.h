/*
 * auth.h - the signature every transport request carries (transport.h's
 * RPCs and the backend's own requests: reads, connection handshakes).
 *
 * A request is signed with HMAC-SHA256 under the admin key (if the sender
 * holds it) or the cluster key, over its whole header (the MAC field zero)
 * and payload.  The header names the receiver, the sender (its context
 * uuid), the sender's wall-clock time and a per-sender sequence number.
 * A receiver that holds a key refuses what is unsigned, signed with a key
 * it does not hold, addressed to another context, outside UCACHE_AUTH_WINDOW
 * of its clock, or a sequence number it has already seen from that sender
 * (a 256-message window per sender).  Refusals are counted and logged at
 * most once a second.  A receiver with no key at all accepts everything
 * (an open fabric; every request then has the admin role).
 *
 * Not thread-safe: the backend calls it under its context lock.
 */
#ifndef UT_AUTH_H
#define UT_AUTH_H

#include "util/status.h"
#include "transport/transport.h"
#include "util/config.h"
#include "util/key.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ut_auth ut_auth_t;

enum { UT_KEY_NONE = 0, UT_KEY_CLUSTER = 1, UT_KEY_ADMIN = 2 };

/* The signature part of a request header (little-endian). */
typedef struct ut_auth_tag {
    uint64_t to;          /* the receiver's context uuid; 0 only in a PING */
    uint64_t ts_ns;       /* the sender's CLOCK_REALTIME                    */
    uint64_t seq;         /* per sending context, from 1                    */
    uint8_t  key_id;      /* UT_KEY_*                                       */
    uint8_t  reserved[7];
    uint8_t  mac[UC_MAC_LEN];
} ut_auth_tag_t;

/** Keys of @p cfg (UCACHE_CLUSTER_KEY_FILE, UCACHE_ADMIN_KEY_FILE); none is
 *  an open context.  UCACHE_ERR_INVALID if a named file does not load. */
ucache_status_t ut_auth_create(const ut_config_t *cfg, ut_auth_t **auth_p);
void ut_auth_destroy(ut_auth_t *auth);

/** Whether this context checks what it receives (it holds a key). */
bool ut_auth_keyed(const ut_auth_t *auth);

/** Sign the request @p hdr (@p hdr_len bytes, its tag at @p tag_off) and
 *  @p payload, to the context @p to (0: not known yet). */
void ut_auth_sign(ut_auth_t *auth, void *hdr, size_t hdr_len, size_t tag_off,
                  uint64_t to, const void *payload, size_t len);

/**
 * Check a received request from the context @p from to the context @p self;
 * @p any_to accepts a tag addressed to no one (a connection's first PING);
 * @p payload NULL with @p len > 0: the payload is not at hand (refused).
 * @return UCACHE_OK with *role_p, or UCACHE_ERR_AUTH (counted, logged).
 */
ucache_status_t ut_auth_check(ut_auth_t *auth, const void *hdr, size_t hdr_len,
                              size_t tag_off, uint64_t from, uint64_t self, bool any_to,
                              const void *payload, size_t len, ut_role_t *role_p);

/** Requests refused so far. */
uint64_t ut_auth_failures(const ut_auth_t *auth);

#endif
