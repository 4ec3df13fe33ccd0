/*
 * key.h - the fabric's secret keys (the cluster key, the admin key) and the
 * one MAC made with them: HMAC-SHA256 (OpenSSL's libcrypto).  A key file
 * holds 32 bytes, raw (what `ucache keygen` writes) or as 64 hex digits and
 * an optional newline (what fits a Kubernetes Secret literal); it must be a
 * regular file with no access for others.  Key bytes never reach a log.
 */
#ifndef UC_KEY_H
#define UC_KEY_H

#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UC_KEY_LEN 32
#define UC_MAC_LEN 32

typedef struct uc_key {
    uint8_t b[UC_KEY_LEN];
} uc_key_t;

typedef struct uc_mac uc_mac_t;

/** Load the key in @p path.  UCACHE_ERR_INVALID (logged, naming the file and
 *  why, never the bytes) for a missing, unsafe or malformed file. */
ucache_status_t uc_key_load(const char *path, uc_key_t *key);

/** Write 32 random bytes to a new file @p path (mode 0600; an existing file
 *  or a symlink there is refused with UCACHE_ERR_EXISTS). */
ucache_status_t uc_key_generate(const char *path);

/** A MAC context keyed with @p key (copied); not for concurrent use. */
ucache_status_t uc_mac_create(const uc_key_t *key, uc_mac_t **mac_p);
void uc_mac_destroy(uc_mac_t *mac);

/** HMAC-SHA256 of @p a (@p alen bytes) then @p b (@p blen bytes). */
ucache_status_t uc_mac_compute(uc_mac_t *mac, const void *a, size_t alen,
                               const void *b, size_t blen, uint8_t out[UC_MAC_LEN]);

/** Constant-time comparison of two MACs. */
bool uc_mac_equal(const uint8_t x[UC_MAC_LEN], const uint8_t y[UC_MAC_LEN]);

#endif
