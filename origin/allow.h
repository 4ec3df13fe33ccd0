/*
 * allow.h - origin confinement: which origins an owner fills from.  The
 * list is the owner's own configuration (UCACHE_ALLOW, ucached --allow),
 * never a requester's word: a FETCH names a URI, and the owner reads it
 * into exported memory only if a rule here allows it.
 *
 * A rule is a URI prefix, parsed into parts and matched part by part (not
 * as a string, so "https://a.example" does not allow
 * "https://a.example.evil.test"):
 *   az://  s3://  https://  http://     any account, bucket or host - but
 *                                        only public addresses are reached
 *   az://ACCOUNT  s3://BUCKET           that account or bucket (its own
 *   https://HOST[:PORT][/PATH]           host or the configured endpoint,
 *                                        private addresses too); a host
 *                                        without a port: on any port
 *   file:///DIR/                        regular files under DIR, by their
 *                                        canonical path
 * A host some rule names is confined to that rule's paths.  "none" is the
 * empty list (an owner that fills nothing).
 */
#ifndef US_ALLOW_H
#define US_ALLOW_H

#include "util/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define US_ALLOW_MAX      32u
#define US_ALLOW_DEFAULT  "az://,s3://,https://"

typedef struct us_allow_rule {
    char     scheme[8];     /* "file", "http", "https", "az", "s3"          */
    char     host[256];     /* lower case; "" any (public addresses only)   */
    unsigned port;          /* 0: any port (none was written)                */
    char     path[512];     /* a prefix of the path; "" any                 */
} us_allow_rule_t;

typedef struct us_allow {
    unsigned        n;
    us_allow_rule_t rule[US_ALLOW_MAX];
} us_allow_t;

/* A URI's parts, as the rules see them. */
typedef struct us_uri_parts {
    char     scheme[8];
    char     host[256];     /* lower case; az: the account; s3: the bucket  */
    unsigned port;          /* as written; 0 if none                        */
    char     path[1024];    /* up to the query                              */
} us_uri_parts_t;

/**
 * Split @p uri into parts.  UCACHE_ERR_INVALID for what no rule could
 * match safely: no "://", user info ('@' in the authority), a bad port, a
 * "." or ".." path segment (also percent-encoded), a backslash or a
 * control character, or parts too long.
 */
ucache_status_t us_uri_split(const char *uri, us_uri_parts_t *parts);

/**
 * Parse a list of rules separated by commas or blanks ("none": no rule).
 * UCACHE_ERR_INVALID (logged, naming the rule) if one does not parse.
 */
ucache_status_t us_allow_parse(const char *list, us_allow_t *allow);

/**
 * UCACHE_OK if a rule allows @p uri; *named_p then says whether the rule
 * names its host (so it may be reached at a private address).
 * UCACHE_ERR_REFUSED if none does (not logged: the caller counts it).
 */
ucache_status_t us_allow_uri(const us_allow_t *allow, const char *uri, bool *named_p);

/** Whether the canonical absolute path @p path is under a file:// rule. */
bool us_allow_path(const us_allow_t *allow, const char *path);

/**
 * Whether @p sa is a public unicast address: not loopback, private (RFC
 * 1918, fc00::/7), shared (100.64/10), link-local (169.254/16, fe80::/10:
 * cloud metadata services), unspecified, multicast, broadcast, reserved or
 * documentation, nor an IPv4-mapped or -compatible form of one.
 */
bool us_addr_public(const struct sockaddr *sa);

#endif
