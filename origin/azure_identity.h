/*
 * azure_identity.h - the Azure identities built in (azure_identity.c): the
 * bearer tokens a process reads Azure Blob with when it has no account key,
 * SAS, application token provider or UCACHE_TOKEN_COMMAND.
 *   - Azure Workload Identity: the federated token Kubernetes projects into
 *     the pod (AZURE_FEDERATED_TOKEN_FILE, read anew at each exchange: the
 *     kubelet rotates it) exchanged at AZURE_AUTHORITY_HOST/AZURE_TENANT_ID
 *     for an Entra token of the app AZURE_CLIENT_ID (client credentials,
 *     a JWT bearer assertion);
 *   - the node's managed identity: Azure's instance metadata service (IMDS,
 *     UCACHE_IMDS_ENDPOINT), AZURE_CLIENT_ID choosing a user-assigned one.
 * The token is cached and fetched again a minute before it expires
 * (cred.c).  Neither the assertion nor a token reaches a log.
 */
#ifndef US_AZURE_IDENTITY_H
#define US_AZURE_IDENTITY_H

#include "util/status.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    US_AZID_AUTO = 0,   /* workload if its variables are set, else IMDS if
                           UCACHE_IMDS_ENDPOINT is, else none */
    US_AZID_WORKLOAD,
    US_AZID_IMDS,
    US_AZID_NONE
} us_azid_mode_t;

#define US_IMDS_DEFAULT "http://169.254.169.254/metadata/identity/oauth2/token"

/**
 * Register the identity @p mode picks as the process's token provider,
 * unless the application registered one or UCACHE_TOKEN_COMMAND is set
 * (they come first).  @p imds_endpoint: "" for Azure's.  Returns the mode
 * in force (US_AZID_NONE if none).
 */
us_azid_mode_t us_azure_identity_configure(us_azid_mode_t mode, const char *imds_endpoint);

/**
 * Parse a token endpoint's answer (@p len bytes of JSON, untrusted; the
 * fuzz target drives this): "access_token" (printable, shorter than
 * @p cap) into @p token, its lifetime from "expires_in" (a number or a
 * string of digits, as IMDS sends it) or else "expires_on" (Unix seconds)
 * in *ttl_s_p.  UCACHE_ERR_INVALID if malformed.
 */
ucache_status_t us_azure_token_parse(const char *body, size_t len, char *token, size_t cap,
                                     uint64_t *ttl_s_p);

#endif
