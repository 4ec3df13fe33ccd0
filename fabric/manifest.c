/*
 * manifest.c - dataset manifests (manifest.h): parsed into one sorted
 * array of objects (binary search for an object, a range for a prefix).
 */
#include "fabric/manifest.h"
#include "fabric/proto.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define UF_MANIFEST_MAX_BYTES (4ull << 30) /* a larger file is refused */

typedef struct uf_mobj {
    const char *uri;          /* into text */
    const char *etag;         /* into text, "" if none */
    uint64_t    size, version;
} uf_mobj_t;

struct uf_manifest {
    char       *text;         /* the file, its lines terminated in place */
    uf_mobj_t  *v;
    size_t      n;
    const char **prefixes;
    size_t      nprefixes;
};

/* A decimal or hex field of at most 20 / 16 digits, all of it. */
static bool uf_mfield(const char *s, int base, uint64_t *v)
{
    size_t len = strlen(s), i;
    unsigned long long x;
    char *end;

    if ((len == 0) || (len > ((base == 16) ? 16u : 20u))) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') ||
              ((base == 16) && ((s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F'))))) {
            return false;
        }
    }
    errno = 0;
    x = strtoull(s, &end, base);
    if ((errno != 0) || (*end != '\0')) {
        return false;
    }
    *v = x;
    return true;
}

static bool uf_muri_ok(const char *uri)
{
    size_t len = strlen(uri);

    return (len > 0) && (len < US_URI_MAX) && (strstr(uri, "://") != NULL) &&
           (strpbrk(uri, "\t\r\n?") == NULL);
}

ucache_status_t uf_manifest_line(char *line, uf_mline_t *kind_p, const char **uri_p,
                                 us_object_t *obj_p, const char **etag_p)
{
    char *f[4], *p = line;
    size_t n, len;

    *kind_p = UF_MLINE_OTHER;
    if (strncmp(line, UF_MANIFEST_PREFIX, strlen(UF_MANIFEST_PREFIX)) == 0) {
        *uri_p = line + strlen(UF_MANIFEST_PREFIX);
        if (!uf_muri_ok(*uri_p)) {
            return UCACHE_ERR_INVALID;
        }
        *kind_p = UF_MLINE_PREFIX;
        return UCACHE_OK;
    }
    if ((line[0] == '#') || (line[0] == '\0')) {
        return UCACHE_OK;
    }
    for (n = 0; n < 4; n++) { /* URI, SIZE, VERSION, ETAG: the last to the end */
        f[n] = p;
        p = (n < 3) ? strchr(p, '\t') : NULL;
        if (p != NULL) {
            *p++ = '\0';
        } else if (n < 3) {
            return UCACHE_ERR_INVALID;
        }
    }
    len = strlen(f[3]);
    memset(obj_p, 0, sizeof(*obj_p));
    if (!uf_muri_ok(f[0]) || !uf_mfield(f[1], 10, &obj_p->size) ||
        !uf_mfield(f[2], 16, &obj_p->version) || !uf_meta_etag_ok(f[3], len)) {
        return UCACHE_ERR_INVALID;
    }
    memcpy(obj_p->etag, f[3], len + 1);
    *uri_p  = f[0];
    if (etag_p != NULL) {
        *etag_p = f[3];
    }
    *kind_p = UF_MLINE_OBJECT;
    return UCACHE_OK;
}

bool uf_manifest_put(FILE *out, const char *uri, const us_object_t *obj)
{
    size_t elen = strnlen(obj->etag, US_ETAG_MAX);

    if (!uf_muri_ok(uri) || !uf_meta_etag_ok(obj->etag, elen)) {
        return false;
    }
    fprintf(out, "%s\t%" PRIu64 "\t%016" PRIx64 "\t%s\n", uri, obj->size, obj->version,
            obj->etag);
    return true;
}

static int uf_mobj_cmp(const void *a, const void *b)
{
    return strcmp(((const uf_mobj_t *)a)->uri, ((const uf_mobj_t *)b)->uri);
}

void uf_manifest_free(uf_manifest_t *m)
{
    if (m != NULL) {
        free(m->text);
        free(m->v);
        free(m->prefixes);
        free(m);
    }
}

/* Keep @p obj's fields (its ETag in the text: the line's last field). */
static ucache_status_t uf_manifest_add(uf_manifest_t *m, size_t *cap, const char *uri,
                                       const us_object_t *obj, const char *etag)
{
    void *p;

    if (m->n == *cap) {
        *cap = (*cap > 0) ? *cap * 2 : 256;
        p = realloc(m->v, *cap * sizeof(*m->v));
        if (p == NULL) {
            return UCACHE_ERR_NO_MEMORY;
        }
        m->v = p;
    }
    m->v[m->n].uri     = uri;
    m->v[m->n].etag    = etag;
    m->v[m->n].size    = obj->size;
    m->v[m->n].version = obj->version;
    m->n++;
    return UCACHE_OK;
}

ucache_status_t uf_manifest_parse(const char *text, size_t len, uf_manifest_t **m_p)
{
    ucache_status_t status = UCACHE_OK;
    size_t cap = 0, pcap = 0, lineno = 0, i;
    uf_manifest_t *m = calloc(1, sizeof(*m));
    char *line, *next, *nl;
    const char *uri, *etag;
    us_object_t obj;
    uf_mline_t kind;
    void *p;

    if ((m == NULL) || ((m->text = malloc(len + 1)) == NULL)) {
        free(m);
        return UCACHE_ERR_NO_MEMORY;
    }
    memcpy(m->text, text, len);
    m->text[len] = '\0';
    if ((memchr(text, '\0', len) != NULL) ||
        (strncmp(m->text, UF_MANIFEST_MAGIC, strlen(UF_MANIFEST_MAGIC)) != 0)) {
        UC_ERROR("not a ucache manifest: its first line is not '" UF_MANIFEST_MAGIC "'");
        uf_manifest_free(m);
        return UCACHE_ERR_INVALID;
    }
    for (line = m->text; (line != NULL) && (*line != '\0') && (status == UCACHE_OK);
         line = next) {
        lineno++;
        nl   = strchr(line, '\n');
        next = (nl != NULL) ? nl + 1 : NULL;
        if (nl != NULL) {
            *nl = '\0';
        }
        if ((nl != NULL) && (nl > line) && (nl[-1] == '\r')) {
            nl[-1] = '\0';
        }
        status = uf_manifest_line(line, &kind, &uri, &obj, &etag);
        if (status != UCACHE_OK) {
            UC_ERROR("manifest line %zu is malformed (URI, size, 16-digit version and "
                     "ETag, separated by tabs)", lineno);
        } else if (kind == UF_MLINE_OBJECT) {
            status = uf_manifest_add(m, &cap, uri, &obj, etag);
        } else if (kind == UF_MLINE_PREFIX) {
            if (m->nprefixes == pcap) {
                pcap = (pcap > 0) ? pcap * 2 : 8;
                p = realloc(m->prefixes, pcap * sizeof(*m->prefixes));
                if (p == NULL) {
                    status = UCACHE_ERR_NO_MEMORY;
                    break;
                }
                m->prefixes = p;
            }
            m->prefixes[m->nprefixes++] = uri;
        }
    }
    if (status == UCACHE_OK) {
        if (m->n > 1) {
            qsort(m->v, m->n, sizeof(*m->v), uf_mobj_cmp);
        }
        for (i = 1; i < m->n; i++) {
            if (strcmp(m->v[i].uri, m->v[i - 1].uri) == 0) {
                UC_ERROR("manifest names %.*s twice", us_uri_loglen(m->v[i].uri),
                         m->v[i].uri);
                status = UCACHE_ERR_INVALID;
                break;
            }
        }
    }
    if (status != UCACHE_OK) {
        uf_manifest_free(m);
        return status;
    }
    *m_p = m;
    return UCACHE_OK;
}

ucache_status_t uf_manifest_load(const char *path, uf_manifest_t **m_p)
{
    ucache_status_t status;
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    FILE *f = fopen(path, "r");
    void *p;

    if (f == NULL) {
        UC_ERROR("cannot open the manifest %s: %s", path, strerror(errno));
        return (errno == ENOENT) ? UCACHE_ERR_NOT_FOUND : UCACHE_ERR_IO;
    }
    do {
        if (len == cap) {
            cap = (cap > 0) ? cap * 2 : 65536;
            p = (cap <= UF_MANIFEST_MAX_BYTES) ? realloc(buf, cap) : NULL;
            if (p == NULL) {
                UC_ERROR("manifest %s: too large or no memory", path);
                free(buf);
                fclose(f);
                return UCACHE_ERR_NO_MEMORY;
            }
            buf = p;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    status = ferror(f) ? UCACHE_ERR_IO : uf_manifest_parse(buf, len, m_p);
    if (status == UCACHE_OK) {
        UC_INFO("manifest %s: %zu objects under %zu prefixes, taken as given", path,
                (*m_p)->n, (*m_p)->nprefixes);
    }
    fclose(f);
    free(buf);
    return status;
}

/* The first object whose URI is not before @p uri. */
static size_t uf_manifest_lower(const uf_manifest_t *m, const char *uri)
{
    size_t lo = 0, hi = m->n, mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (strcmp(m->v[mid].uri, uri) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static void uf_mobj_get(const uf_mobj_t *o, us_object_t *obj_p)
{
    memset(obj_p, 0, sizeof(*obj_p));
    obj_p->size    = o->size;
    obj_p->version = o->version;
    snprintf(obj_p->etag, sizeof(obj_p->etag), "%s", o->etag);
}

bool uf_manifest_get(const uf_manifest_t *m, const char *uri, us_object_t *obj_p)
{
    size_t i;

    if ((m == NULL) || (uri == NULL)) {
        return false;
    }
    i = uf_manifest_lower(m, uri);
    if ((i == m->n) || (strcmp(m->v[i].uri, uri) != 0)) {
        return false;
    }
    uf_mobj_get(&m->v[i], obj_p);
    return true;
}

bool uf_manifest_covers(const uf_manifest_t *m, const char *prefix)
{
    size_t i;

    for (i = 0; (m != NULL) && (prefix != NULL) && (i < m->nprefixes); i++) {
        if (strncmp(prefix, m->prefixes[i], strlen(m->prefixes[i])) == 0) {
            return true;
        }
    }
    return false;
}

ucache_status_t uf_manifest_list(const uf_manifest_t *m, const char *prefix,
                                 us_origin_list_fn_t fn, void *arg)
{
    size_t i, plen = strlen(prefix);
    ucache_status_t status = UCACHE_OK;
    us_object_t obj;

    for (i = uf_manifest_lower(m, prefix);
         (i < m->n) && (status == UCACHE_OK) && (strncmp(m->v[i].uri, prefix, plen) == 0);
         i++) {
        uf_mobj_get(&m->v[i], &obj);
        status = fn(arg, m->v[i].uri, &obj);
    }
    return status;
}

size_t uf_manifest_count(const uf_manifest_t *m)
{
    return (m != NULL) ? m->n : 0;
}
