/*
 * allow.c - origin confinement (see allow.h): URI parts, the rule list and
 * the public-address test the HTTP origins apply to every socket they open
 * for a fill.
 */
#include "origin/allow.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static unsigned us_default_port(const char *scheme)
{
    return (strcmp(scheme, "https") == 0) ? 443 : (strcmp(scheme, "http") == 0) ? 80 : 0;
}

/* Whether [s, s+n) is a "." or ".." segment, plain or percent-encoded. */
static bool us_dot_segment(const char *s, size_t n)
{
    unsigned dots = 0;
    size_t i = 0;

    while (i < n) {
        if (s[i] == '.') {
            i++;
        } else if ((n - i >= 3) && (s[i] == '%') && (s[i + 1] == '2') &&
                   ((s[i + 2] == 'e') || (s[i + 2] == 'E'))) {
            i += 3;
        } else {
            return false;
        }
        dots++;
    }
    return (dots == 1) || (dots == 2);
}

ucache_status_t us_uri_split(const char *uri, us_uri_parts_t *u)
{
    const char *p, *auth, *auth_end, *path_end, *seg, *colon;
    size_t n, i;
    char *end;
    unsigned long port;

    memset(u, 0, sizeof(*u));
    p = strstr(uri, "://");
    if ((p == NULL) || (p == uri) || ((size_t)(p - uri) >= sizeof(u->scheme))) {
        return UCACHE_ERR_INVALID;
    }
    for (i = 0; uri + i < p; i++) {
        if (!isalpha((unsigned char)uri[i]) && !(i > 0 && isdigit((unsigned char)uri[i]))) {
            return UCACHE_ERR_INVALID;
        }
        u->scheme[i] = (char)tolower((unsigned char)uri[i]);
    }
    for (i = 0; uri[i] != '\0'; i++) {
        if (((unsigned char)uri[i] < 0x20) || (uri[i] == 0x7f) || (uri[i] == '\\')) {
            return UCACHE_ERR_INVALID;
        }
    }
    auth     = p + 3;
    auth_end = auth + strcspn(auth, "/?#");
    if (memchr(auth, '@', (size_t)(auth_end - auth)) != NULL) {
        return UCACHE_ERR_INVALID;          /* user info: not a host */
    }
    if ((auth < auth_end) && (auth[0] == '[')) {
        colon = memchr(auth, ']', (size_t)(auth_end - auth));
        if (colon == NULL) {
            return UCACHE_ERR_INVALID;
        }
        colon++;                             /* past the bracket */
        if ((colon < auth_end) && (*colon != ':')) {
            return UCACHE_ERR_INVALID;
        }
    } else {
        colon = memchr(auth, ':', (size_t)(auth_end - auth));
        colon = (colon != NULL) ? colon : auth_end;
    }
    n = (size_t)(colon - auth);
    if (n >= sizeof(u->host)) {
        return UCACHE_ERR_INVALID;
    }
    for (i = 0; i < n; i++) {
        u->host[i] = (char)tolower((unsigned char)auth[i]);
    }
    if (colon < auth_end) {                  /* ":PORT" */
        if ((auth_end - colon < 2) || !isdigit((unsigned char)colon[1])) {
            return UCACHE_ERR_INVALID;
        }
        port = strtoul(colon + 1, &end, 10);
        if ((end != auth_end) || (port == 0) || (port > 65535)) {
            return UCACHE_ERR_INVALID;
        }
        u->port = (unsigned)port;
    }
    path_end = auth_end + strcspn(auth_end, "?#");
    n = (size_t)(path_end - auth_end);
    if (n >= sizeof(u->path)) {
        return UCACHE_ERR_INVALID;
    }
    memcpy(u->path, auth_end, n);
    u->path[n] = '\0';
    for (seg = u->path; *seg != '\0';) {
        seg += (*seg == '/');
        n = strcspn(seg, "/");
        if (us_dot_segment(seg, n)) {
            return UCACHE_ERR_INVALID;
        }
        seg += n;
    }
    return UCACHE_OK;
}

static bool us_known_scheme(const char *s)
{
    return (strcmp(s, "file") == 0) || (strcmp(s, "http") == 0) ||
           (strcmp(s, "https") == 0) || (strcmp(s, "az") == 0) || (strcmp(s, "s3") == 0);
}

ucache_status_t us_allow_parse(const char *list, us_allow_t *allow)
{
    char item[sizeof(((us_uri_parts_t *)0)->path) + 300];
    const char *p = (list != NULL) ? list : "";
    us_uri_parts_t u;
    size_t n;

    memset(allow, 0, sizeof(*allow));
    for (;;) {
        p += strspn(p, ", \t\n");
        if (*p == '\0') {
            return UCACHE_OK;
        }
        n = strcspn(p, ", \t\n");
        if (n >= sizeof(item)) {
            UC_ERROR("UCACHE_ALLOW: a rule of %zu bytes is too long", n);
            return UCACHE_ERR_INVALID;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        p += n;
        if (strcmp(item, "none") == 0) {
            continue;
        }
        if ((us_uri_split(item, &u) != UCACHE_OK) || !us_known_scheme(u.scheme) ||
            (strchr(item, '?') != NULL) || (strchr(item, '#') != NULL) ||
            ((strcmp(u.scheme, "file") == 0) &&
             (((u.host[0] != '\0') && (strcmp(u.host, "localhost") != 0)) ||
              (u.path[0] != '/'))) ||
            ((u.host[0] == '\0') && ((u.port != 0) || (u.path[0] != '\0')) &&
             (strcmp(u.scheme, "file") != 0))) {
            UC_ERROR("UCACHE_ALLOW: '%.128s' is not a rule (az://[ACCOUNT], s3://[BUCKET], "
                     "http(s)://[HOST[:PORT][/PATH]], file:///DIR/)", item);
            return UCACHE_ERR_INVALID;
        }
        if (allow->n == US_ALLOW_MAX) {
            UC_ERROR("UCACHE_ALLOW: more than %u rules", US_ALLOW_MAX);
            return UCACHE_ERR_INVALID;
        }
        if (strcmp(u.scheme, "file") == 0) {
            u.host[0] = '\0';
        }
        memcpy(allow->rule[allow->n].scheme, u.scheme, sizeof(u.scheme));
        memcpy(allow->rule[allow->n].host, u.host, sizeof(u.host));
        allow->rule[allow->n].port = u.port;   /* as written: 0 = any port */
        if (strlen(u.path) >= sizeof(allow->rule[0].path)) {
            UC_ERROR("UCACHE_ALLOW: the path of '%.128s' is too long", item);
            return UCACHE_ERR_INVALID;
        }
        memcpy(allow->rule[allow->n].path, u.path, strlen(u.path) + 1);
        allow->n++;
    }
}

/* Whether @p path is under the prefix @p pfx (at a segment boundary unless
 * the prefix ends with '/'). */
static bool us_under(const char *pfx, const char *path)
{
    size_t n = strlen(pfx);

    if ((n == 0) || (strncmp(pfx, path, n) != 0)) {
        return n == 0;
    }
    return (pfx[n - 1] == '/') || (path[n] == '\0') || (path[n] == '/');
}

ucache_status_t us_allow_uri(const us_allow_t *allow, const char *uri, bool *named_p)
{
    bool host_named = false;
    us_uri_parts_t u;
    const us_allow_rule_t *r;
    unsigned i;

    *named_p = false;
    if ((allow == NULL) || (us_uri_split(uri, &u) != UCACHE_OK)) {
        return UCACHE_ERR_REFUSED;
    }
    if (strcmp(u.scheme, "file") == 0) {
        if ((u.host[0] != '\0') && (strcmp(u.host, "localhost") != 0)) {
            return UCACHE_ERR_REFUSED;
        }
        return us_allow_path(allow, u.path) ? UCACHE_OK : UCACHE_ERR_REFUSED;
    }
    /* a host some rule names is confined to that rule's paths */
    for (i = 0; i < allow->n; i++) {
        r = &allow->rule[i];
        if ((strcmp(r->scheme, u.scheme) != 0) || (r->host[0] == '\0') ||
            (strcmp(r->host, u.host) != 0) ||
            ((r->port != 0) && (r->port != (u.port ? u.port : us_default_port(u.scheme))))) {
            continue;       /* a rule without a port allows the host on any port */
        }
        host_named = true;
        if (us_under(r->path, u.path)) {
            *named_p = true;
            return UCACHE_OK;
        }
    }
    if (host_named || (u.host[0] == '\0')) {
        return UCACHE_ERR_REFUSED;
    }
    for (i = 0; i < allow->n; i++) {
        r = &allow->rule[i];
        if ((strcmp(r->scheme, u.scheme) == 0) && (r->host[0] == '\0')) {
            return UCACHE_OK;                /* any host: public addresses only */
        }
    }
    return UCACHE_ERR_REFUSED;
}

bool us_allow_path(const us_allow_t *allow, const char *path)
{
    unsigned i;

    if ((allow == NULL) || (path[0] != '/')) {
        return false;
    }
    for (i = 0; i < allow->n; i++) {
        if ((strcmp(allow->rule[i].scheme, "file") == 0) &&
            us_under(allow->rule[i].path, path)) {
            return true;
        }
    }
    return false;
}

static bool us_v4_public(uint32_t a)   /* host order */
{
    static const struct { uint32_t net, mask; } bad[] = {
        { 0x00000000u, 0xff000000u },   /* 0/8 "this network"          */
        { 0x0a000000u, 0xff000000u },   /* 10/8                        */
        { 0x64400000u, 0xffc00000u },   /* 100.64/10 shared (CGNAT)    */
        { 0x7f000000u, 0xff000000u },   /* 127/8 loopback              */
        { 0xa9fe0000u, 0xffff0000u },   /* 169.254/16 link-local, IMDS */
        { 0xac100000u, 0xfff00000u },   /* 172.16/12                   */
        { 0xc0000000u, 0xffffff00u },   /* 192.0.0/24 protocol         */
        { 0xc0000200u, 0xffffff00u },   /* 192.0.2/24 documentation    */
        { 0xc0a80000u, 0xffff0000u },   /* 192.168/16                  */
        { 0xc6120000u, 0xfffe0000u },   /* 198.18/15 benchmarking      */
        { 0xc6336400u, 0xffffff00u },   /* 198.51.100/24 documentation */
        { 0xcb007100u, 0xffffff00u },   /* 203.0.113/24 documentation  */
        { 0xe0000000u, 0xe0000000u },   /* 224/3 multicast, reserved, broadcast */
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if ((a & bad[i].mask) == bad[i].net) {
            return false;
        }
    }
    return true;
}

bool us_addr_public(const struct sockaddr *sa)
{
    const struct sockaddr_in6 *s6;
    const uint8_t *b;
    uint32_t v4;
    unsigned i;
    bool zero12 = true;

    if (sa == NULL) {
        return false;
    }
    if (sa->sa_family == AF_INET) {
        return us_v4_public(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    }
    if (sa->sa_family != AF_INET6) {
        return false;
    }
    s6 = (const struct sockaddr_in6 *)sa;
    b  = s6->sin6_addr.s6_addr;
    for (i = 0; i < 10; i++) {
        zero12 = zero12 && (b[i] == 0);
    }
    v4 = ((uint32_t)b[12] << 24) | ((uint32_t)b[13] << 16) | ((uint32_t)b[14] << 8) | b[15];
    if (zero12 && (((b[10] == 0xff) && (b[11] == 0xff)) || ((b[10] == 0) && (b[11] == 0)))) {
        return us_v4_public(v4);             /* ::ffff:a.b.c.d, ::a.b.c.d, ::, ::1 */
    }
    if ((b[0] == 0x00) || (b[0] == 0xff) ||  /* reserved (NAT64 too), multicast */
        ((b[0] & 0xfe) == 0xfc) ||           /* fc00::/7 unique local         */
        ((b[0] == 0xfe) && ((b[1] & 0xc0) == 0x80)) || /* fe80::/10 link-local */
        ((b[0] == 0xfe) && ((b[1] & 0xc0) == 0xc0)) || /* fec0::/10 site-local */
        ((b[0] == 0x20) && (b[1] == 0x01) && (b[2] == 0x0d) && (b[3] == 0xb8)) || /* doc */
        ((b[0] == 0x20) && (b[1] == 0x01) && (b[2] == 0x00) && (b[3] == 0x00)) || /* Teredo */
        ((b[0] == 0x20) && (b[1] == 0x02))) { /* 6to4 embeds any IPv4 */
        return false;
    }
    return true;
}
