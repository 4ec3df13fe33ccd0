/*
 * member_file.c - the file: membership source (see member.h): a static
 * list, one node a line (HOST:PORT [zone=Z] [weight=W], # comments);
 * slots follow line order and the file's mtime is the epoch.  A node is
 * named by its listener; its record is fetched from there on first
 * contact (fabric/peer.c).  A malformed list is refused whole.
 */
#include "fabric/member.h"
#include "fabric/place.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

uint64_t uf_member_id_of(const char *hostport)
{
    uint64_t id = XXH64(hostport, strlen(hostport), 0x55434d46ull);

    return (id == 0) ? 1 : id;
}

uint64_t uf_file_epoch(const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        return 0;
    }
    return (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec + 1;
}

/* One line: HOST:PORT [zone=Z] [weight=W]; @p m gets host, port, id. */
static ucache_status_t uf_file_line(char *line, uf_member_t *m)
{
    char *save = NULL, *tok, *colon, *end;
    unsigned long v;

    memset(m, 0, sizeof(*m));
    m->weight = 1;
    tok = strtok_r(line, " \t", &save);
    colon = (tok != NULL) ? strrchr(tok, ':') : NULL;
    if ((colon == NULL) || (colon == tok) || ((size_t)(colon - tok) >= UF_HOST_MAX)) {
        return UCACHE_ERR_INVALID;
    }
    v = strtoul(colon + 1, &end, 10);
    if ((*end != '\0') || (v == 0) || (v > 65535)) {
        return UCACHE_ERR_INVALID;
    }
    m->id   = uf_member_id_of(tok);
    m->port = (uint16_t)v;
    memcpy(m->host, tok, (size_t)(colon - tok));
    while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
        if ((strncmp(tok, "zone=", 5) == 0) && (strlen(tok + 5) < UF_ZONE_MAX)) {
            strcpy(m->zone, tok + 5);
        } else if (strncmp(tok, "weight=", 7) == 0) {
            v = strtoul(tok + 7, &end, 10);
            if ((*end != '\0') || (v == 0) || (v > UF_MAX_WEIGHT)) {
                return UCACHE_ERR_INVALID;
            }
            m->weight = (uint32_t)v;
        } else {
            return UCACHE_ERR_INVALID;
        }
    }
    return UCACHE_OK;
}

ucache_status_t uf_file_scan(const char *path, uf_member_t **members_p, uint32_t *n_p,
                             uint64_t *epoch_p)
{
    uf_member_t *v = NULL, *nv;
    uint32_t n = 0, cap = 0, slot = 0, i;
    unsigned lineno = 0;
    char line[512], *p, *raw = NULL;
    size_t rawcap = 0;
    ssize_t len;
    FILE *f;

    f = fopen(path, "r");
    if (f == NULL) {
        UC_ERROR("members: cannot read %s: %m", path);
        return (errno == ENOENT) ? UCACHE_ERR_NOT_FOUND : UCACHE_ERR_IO;
    }
    *epoch_p = uf_file_epoch(path);
    while ((len = getline(&raw, &rawcap, f)) != -1) {
        lineno++;
        if (((size_t)len >= sizeof(line)) || (memchr(raw, '\0', (size_t)len) != NULL)) {
            UC_ERROR("members: %s line %u is longer than %zu bytes, or binary", path,
                     lineno, sizeof(line) - 1);
            free(raw);
            fclose(f);
            uf_members_free(v, n);
            return UCACHE_ERR_INVALID;  /* never its tail as a line of its own */
        }
        memcpy(line, raw, (size_t)len + 1);
        line[strcspn(line, "#\r\n")] = '\0';
        for (p = line; (*p == ' ') || (*p == '\t'); p++) {
        }
        if (*p == '\0') {
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            nv = realloc(v, sizeof(*v) * cap);
            if (nv == NULL) {
                goto err_nomem;
            }
            v = nv;
        }
        if (uf_file_line(p, &v[n]) != UCACHE_OK) {
            UC_ERROR("members: %s line %u is not HOST:PORT [zone=Z] [weight=W]",
                     path, lineno);
            free(raw);
            fclose(f);
            uf_members_free(v, n);
            return UCACHE_ERR_INVALID;
        }
        for (i = 0; i < n; i++) {
            if (v[i].id == v[n].id) {
                UC_ERROR("members: %s line %u repeats %s:%u", path, lineno,
                         v[n].host, v[n].port);
                free(raw);
                fclose(f);
                uf_members_free(v, n);
                return UCACHE_ERR_INVALID;
            }
        }
        v[n].slot0 = slot;
        slot += v[n].weight;
        if (slot > UF_MAX_SLOTS / 2) {
            goto err_nomem;
        }
        n++;
    }
    free(raw);
    fclose(f);
    *members_p = v;
    *n_p = n;
    return UCACHE_OK;

err_nomem:
    free(raw);
    fclose(f);
    uf_members_free(v, n);
    return UCACHE_ERR_NO_MEMORY;
}

/* The source table's operations: src is the list's path. */
static uint64_t uf_file_src_epoch(void *src)
{
    return uf_file_epoch(src);
}

static ucache_status_t uf_file_src_scan(void *src, uf_member_t **members_p,
                                        uint32_t *n_p, uint64_t *epoch_p, uint64_t *bad_p)
{
    (void)bad_p; /* a malformed list is refused whole, not skipped */
    return uf_file_scan(src, members_p, n_p, epoch_p);
}

const uf_source_ops_t uf_source_file = {
    .prefix    = "file:",
    .epoch     = uf_file_src_epoch,
    .scan      = uf_file_src_scan,
    .listens   = true,
};
