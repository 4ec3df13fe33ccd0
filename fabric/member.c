/*
 * member.c - node records (see member.h): what a serving node publishes -
 * its id, slots, zone, host, pid, worker address and store key - in a
 * versioned, checksummed encoding every source carries; decoded records
 * are untrusted until checked here.  And the table of membership sources
 * (member_dir.c, member_file.c), by UCACHE_MEMBERS prefix.
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

#define UF_REC_MAGIC    0x524d4355u   /* "UCMR" */
#define UF_REC_VERSION  1u

typedef struct uf_rec_hdr {
    uint32_t magic;
    uint16_t version;
    uint16_t hdr_len;
    uint32_t total_len;
    uint32_t addr_len;
    uint32_t rkey_len;
    uint32_t slot0;
    uint32_t weight;
    uint32_t pid;
    uint64_t id;
    uint64_t mem_bytes;
    char     zone[UF_ZONE_MAX];
    char     host[UF_HOST_MAX];
    uint64_t checksum;        /* XXH64 of the record with this field zero */
} uf_rec_hdr_t;

uint32_t uf_member_weight(uint64_t mem_bytes, uint64_t slot_bytes)
{
    uint64_t w;

    if (slot_bytes == 0) {
        slot_bytes = UF_SLOT_BYTES_DEF;
    }
    w = mem_bytes / slot_bytes + ((mem_bytes % slot_bytes) != 0);

    return (w < 1) ? 1 : (w > UF_MAX_WEIGHT) ? UF_MAX_WEIGHT : (uint32_t)w;
}

static uint64_t uf_rec_sum(const void *rec, size_t len)
{
    uf_rec_hdr_t h;

    memcpy(&h, rec, sizeof(h));
    h.checksum = 0;
    return XXH64((const char *)rec + sizeof(h), len - sizeof(h),
                 XXH64(&h, sizeof(h), 0));
}

ucache_status_t uf_member_encode(const uf_member_t *m, void **rec_p, size_t *len_p)
{
    size_t len = sizeof(uf_rec_hdr_t) + m->addr_len + m->rkey_len;
    uf_rec_hdr_t h;
    char *rec;

    if ((m->addr_len > UF_BLOB_MAX) || (m->rkey_len > UF_BLOB_MAX) ||
        (m->id == 0) || (m->weight == 0) || (m->weight > UF_MAX_WEIGHT)) {
        UC_ERROR("cannot encode node record (id %" PRIx64 ", weight %u, blobs %zu/%zu)",
                 m->id, m->weight, m->addr_len, m->rkey_len);
        return UCACHE_ERR_INVALID;
    }
    rec = calloc(1, len);
    if (rec == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    memset(&h, 0, sizeof(h));
    h.magic     = UF_REC_MAGIC;
    h.version   = UF_REC_VERSION;
    h.hdr_len   = sizeof(h);
    h.total_len = (uint32_t)len;
    h.addr_len  = (uint32_t)m->addr_len;
    h.rkey_len  = (uint32_t)m->rkey_len;
    h.slot0     = m->slot0;
    h.weight    = m->weight;
    h.pid       = m->pid;
    h.id        = m->id;
    h.mem_bytes = m->mem_bytes;
    snprintf(h.zone, sizeof(h.zone), "%s", m->zone);
    snprintf(h.host, sizeof(h.host), "%s", m->host);
    memcpy(rec, &h, sizeof(h));
    if (m->addr_len > 0) {
        memcpy(rec + sizeof(h), m->addr, m->addr_len);
    }
    if (m->rkey_len > 0) {
        memcpy(rec + sizeof(h) + m->addr_len, m->rkey, m->rkey_len);
    }
    h.checksum = uf_rec_sum(rec, len);
    memcpy(rec, &h, sizeof(h));
    *rec_p = rec;
    *len_p = len;
    return UCACHE_OK;
}

ucache_status_t uf_member_decode(const void *rec, size_t len, uf_member_t *m)
{
    uf_rec_hdr_t h;

    memset(m, 0, sizeof(*m));
    if (len < sizeof(h)) {
        return UCACHE_ERR_CORRUPT;
    }
    memcpy(&h, rec, sizeof(h));
    if ((h.magic != UF_REC_MAGIC) || (h.version != UF_REC_VERSION) ||
        (h.hdr_len != sizeof(h)) || (h.total_len != len) ||
        (h.addr_len > UF_BLOB_MAX) || (h.rkey_len > UF_BLOB_MAX) ||
        ((size_t)h.addr_len + h.rkey_len != len - sizeof(h)) ||
        (h.id == 0) || (h.weight == 0) || (h.weight > UF_MAX_WEIGHT) ||
        (h.slot0 >= UF_MAX_SLOTS) || (h.weight > UF_MAX_SLOTS - h.slot0) ||
        (memchr(h.zone, 0, sizeof(h.zone)) == NULL) ||
        (memchr(h.host, 0, sizeof(h.host)) == NULL) ||
        (uf_rec_sum(rec, len) != h.checksum)) {
        return UCACHE_ERR_CORRUPT;
    }
    m->id        = h.id;
    m->slot0     = h.slot0;
    m->weight    = h.weight;
    m->pid       = h.pid;
    m->mem_bytes = h.mem_bytes;
    memcpy(m->zone, h.zone, sizeof(m->zone));
    memcpy(m->host, h.host, sizeof(m->host));
    m->addr     = malloc(h.addr_len + 1);
    m->rkey     = malloc(h.rkey_len + 1);
    if ((m->addr == NULL) || (m->rkey == NULL)) {
        uf_member_clear(m);
        return UCACHE_ERR_NO_MEMORY;
    }
    m->addr_len = h.addr_len;
    m->rkey_len = h.rkey_len;
    memcpy(m->addr, (const char *)rec + sizeof(h), h.addr_len);
    memcpy(m->rkey, (const char *)rec + sizeof(h) + h.addr_len, h.rkey_len);
    return UCACHE_OK;
}

void uf_member_seal(void *rec, size_t len)
{
    uf_rec_hdr_t h;

    if (len >= sizeof(h)) {
        memcpy(&h, rec, sizeof(h));
        h.checksum = uf_rec_sum(rec, len);
        memcpy(rec, &h, sizeof(h));
    }
}

void uf_member_clear(uf_member_t *m)
{
    free(m->addr);
    free(m->rkey);
    m->addr = m->rkey = NULL;
    m->addr_len = m->rkey_len = 0;
}

void uf_members_free(uf_member_t *members, uint32_t n)
{
    uint32_t i;

    for (i = 0; (members != NULL) && (i < n); i++) {
        uf_member_clear(&members[i]);
    }
    free(members);
}

/* ------------------------------------------------------------------------ */
/* Sources                                                                   */
/* ------------------------------------------------------------------------ */

const uf_source_ops_t *uf_source_find(const char *members, const char **arg_p)
{
    static const uf_source_ops_t *const all[] = { &uf_source_dir, &uf_source_file,
                                                  &uf_source_etcd };
    size_t i, n;

    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        n = strlen(all[i]->prefix);
        if ((strncmp(members, all[i]->prefix, n) == 0) && (members[n] != '\0')) {
            *arg_p = members + n;
            return all[i];
        }
    }
    return NULL;
}
