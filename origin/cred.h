/*
 * cred.h - where origins find their credentials, by the conventional names
 * of each cloud (AZURE_STORAGE_*, AWS_*): the environment first, then the
 * ucache credentials file (UCACHE_CREDENTIALS: "NAME = value" lines, the
 * same names), then - for AWS - the shared ~/.aws/credentials and
 * ~/.aws/config files of the profile in AWS_PROFILE.  Bearer tokens (Azure
 * managed identity / Entra ID) come from a provider the application
 * registers.  Nothing here logs a value.
 */
#ifndef US_CRED_H
#define US_CRED_H

#include "origin/token.h"
#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** ucache_token_provider_set() (fabric/api.c): the application's token
 *  provider (NULL: none), the cached token dropped. */
void us_token_provider_set(ucache_token_fn_t fn, void *arg);

/**
 * Credential @p name: the environment, else the credentials file of the
 * origin call running on this thread (its context's UCACHE_CREDENTIALS).
 * Returns false (and "" in @p out) if neither has it or it does not fit
 * @p cap.
 */
bool us_cred_get(const char *name, char *out, size_t cap);

/** us_cred_get() with the credentials file @p path ("" or NULL: none). */
bool us_cred_get_in(const char *path, const char *name, char *out, size_t cap);

/**
 * Key @p key of section @p section ("" for lines before any section) in the
 * ini-style file @p path ("name = value", '#' and ';' comments).  False if
 * the file, section or key is missing or the value does not fit.
 */
bool us_ini_get(const char *path, const char *section, const char *key, char *out,
                size_t cap);

/**
 * A bearer token for @p resource (e.g. "https://storage.azure.com/") from
 * the registered provider (ucache_token_provider_set), reused until a
 * minute before it expires.  UCACHE_ERR_NOT_FOUND if none is registered.
 */
ucache_status_t us_token_get(const char *resource, char *out, size_t cap);

/**
 * Use the shell command @p cmd (UCACHE_TOKEN_COMMAND; "" for none) as the
 * token provider unless the application registered one: its first line of
 * output is the token, an optional second line its lifetime in seconds
 * (default 300).  It runs with the token lock held, so it should be quick.
 */
void us_token_command_configure(const char *cmd);

/** Register a built-in provider (azure_identity.c; NULL: none) unless the
 *  application registered one or a token command is configured; whether
 *  it is (or stays) the provider. */
bool us_token_builtin_set(ucache_token_fn_t fn, void *arg);

/** Whether a token provider is registered. */
bool us_token_enabled(void);

#endif
