/*
 * token.h - the type of an application's bearer-token provider
 * (ucache_token_provider_set; origin/cred.c calls it).  The public header
 * includes it (the installed ucache.h has it written in).
 */
#ifndef UCACHE_TOKEN_H
#define UCACHE_TOKEN_H

#include "../util/status.h"

#include <stddef.h>
#include <stdint.h>

/**
 * @brief Gives a bearer token (Azure managed identity / Entra ID, ...) for
 *        @p resource (e.g. "https://storage.azure.com/").
 * @param token    Where the token goes ('\0'-terminated, at most @p cap).
 * @param ttl_s_p  How long it stays valid, in seconds.
 * @return UCACHE_OK, or an error the failing read returns (NOT_FOUND becomes
 *         UCACHE_ERR_DENIED).  Called with a lock held: it must not call
 *         back into ucache; it runs again a minute before the token expires.
 */
typedef ucache_status_t (*ucache_token_fn_t)(void *arg, const char *resource,
                                             char *token, size_t cap,
                                             uint64_t *ttl_s_p);

#endif
