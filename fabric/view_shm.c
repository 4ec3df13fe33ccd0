/*
 * view_shm.c - a daemon's view for the readers of its host (see
 * view_shm.h).  The file: a header, then n fixed-size records.  Files are
 * never shrunk or rewritten in place past their size: a larger view is a
 * new file renamed over the path (readers' old mappings stay valid), so a
 * reader can never fault on a mapping.  One daemon publishes a path: it
 * holds PATH.lock (flock) while it lives.
 */
#include "fabric/view_shm.h"
#include "fabric/place.h"
#include "util/config.h"
#include "util/log.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define UF_VSHM_MAGIC    0x57564355u  /* "UCVW" */
#define UF_VSHM_VERSION  1u
#define UF_VSHM_MAX_N    (1u << 22)   /* records a view may hold */

typedef struct uf_vshm_hdr {
    uint32_t         magic;
    uint16_t         version;
    uint16_t         hdr_len;
    uint64_t         size;        /* bytes of the file                    */
    _Atomic uint64_t seq;         /* odd while the writer writes          */
    _Atomic uint64_t replaced;    /* a new file took the path: map it     */
    _Atomic uint64_t beat_ns;     /* CLOCK_REALTIME of the writer's beat  */
    _Atomic uint64_t epoch;
    uint32_t         n;
    uint32_t         rec_len;
    uint32_t         slots;
    uint32_t         reserved;
    uint64_t         slot_bytes;
    uint64_t         checksum;    /* XXH64 of the records, seeded with epoch, n */
} uf_vshm_hdr_t;

typedef struct uf_vshm_rec {
    uint64_t id;
    uint64_t mem_bytes;
    uint32_t slot0, weight;
    uint16_t port;
    uint16_t reserved[3];
    char     host[UF_HOST_MAX];
    char     zone[UF_ZONE_MAX];
} uf_vshm_rec_t;

struct uf_vshm {
    bool           writer;
    int            lock_fd;       /* writer: PATH.lock                    */
    char           path[PATH_MAX];
    uf_vshm_hdr_t *h;
    size_t         len;
    uint32_t       cap;           /* records the file holds               */
    uint64_t       last_epoch;
};

static uint64_t uf_real_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * UC_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

void uf_vshm_path(const char *configured, const char *members, char *out, size_t cap)
{
    char dir[PATH_MAX];

    if ((configured != NULL) && (configured[0] != '\0')) {
        snprintf(out, cap, "%s", configured);
        return;
    }
    uc_runtime_dir(dir, sizeof(dir));
    snprintf(out, cap, "%s/view-%016llx", dir,
             (unsigned long long)XXH64(members, strlen(members), 0x55435657ull));
}

static uint64_t uf_vshm_sum(const uf_vshm_rec_t *r, uint32_t n, uint64_t epoch)
{
    uint64_t seed[2] = { epoch, n };

    return XXH64(r, (size_t)n * sizeof(*r), XXH64(seed, sizeof(seed), 0));
}

ucache_status_t uf_vshm_parse(const void *buf, size_t len, uf_member_t **m_p, uint32_t *n_p,
                              uint64_t *epoch_p, uint32_t *slots_p, uint64_t *slot_bytes_p)
{
    const uf_vshm_rec_t *r;
    uf_vshm_hdr_t h;
    uf_member_t *m;
    uint64_t seq;
    uint32_t i;

    if ((buf == NULL) || (len < sizeof(h))) {
        return UCACHE_ERR_CORRUPT;
    }
    memcpy(&h, buf, sizeof(h));
    seq = atomic_load_explicit(&h.seq, memory_order_relaxed);
    if ((h.magic != UF_VSHM_MAGIC) || (h.version != UF_VSHM_VERSION) ||
        (h.hdr_len != sizeof(h)) || (h.rec_len != sizeof(*r)) || (h.n > UF_VSHM_MAX_N) ||
        ((size_t)h.n * sizeof(*r) > len - sizeof(h)) || (h.slots > UF_MAX_SLOTS)) {
        return UCACHE_ERR_CORRUPT;
    }
    if (seq & 1) {
        return UCACHE_ERR_AGAIN;
    }
    r = (const uf_vshm_rec_t *)((const char *)buf + sizeof(h));
    if (uf_vshm_sum(r, h.n, atomic_load_explicit(&h.epoch, memory_order_relaxed)) !=
        h.checksum) {
        return UCACHE_ERR_CORRUPT;
    }
    m = calloc((size_t)h.n + 1, sizeof(*m));
    if (m == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    for (i = 0; i < h.n; i++) {
        if ((r[i].id == 0) || (r[i].weight == 0) || (r[i].weight > UF_MAX_WEIGHT) ||
            (r[i].slot0 >= UF_MAX_SLOTS) || (r[i].weight > UF_MAX_SLOTS - r[i].slot0) ||
            (memchr(r[i].host, '\0', sizeof(r[i].host)) == NULL) ||
            (memchr(r[i].zone, '\0', sizeof(r[i].zone)) == NULL)) {
            free(m);
            return UCACHE_ERR_CORRUPT;
        }
        m[i].id        = r[i].id;
        m[i].mem_bytes = r[i].mem_bytes;
        m[i].slot0     = r[i].slot0;
        m[i].weight    = r[i].weight;
        m[i].port      = r[i].port;
        memcpy(m[i].host, r[i].host, sizeof(m[i].host));
        memcpy(m[i].zone, r[i].zone, sizeof(m[i].zone));
    }
    *m_p          = m;
    *n_p          = h.n;
    *epoch_p      = atomic_load_explicit(&h.epoch, memory_order_relaxed);
    *slots_p      = h.slots;
    *slot_bytes_p = h.slot_bytes;
    return UCACHE_OK;
}

/* ------------------------------------------------------------------------ */
/* The writer (a daemon)                                                     */
/* ------------------------------------------------------------------------ */

/* A new file of @p cap records at a temporary name, renamed over the path
 * once written by the caller; the old mapping (if any) marked replaced. */
static ucache_status_t uf_vshm_grow(uf_vshm_t *w, uint32_t cap)
{
    size_t len = sizeof(uf_vshm_hdr_t) + (size_t)cap * sizeof(uf_vshm_rec_t);
    char tmp[PATH_MAX + 32];
    uf_vshm_hdr_t *h;
    int fd;

    snprintf(tmp, sizeof(tmp), "%s.%d.tmp", w->path, (int)getpid());
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        UC_ERROR("view: cannot create %s: %m", tmp);
        return UCACHE_ERR_IO;
    }
    if ((ftruncate(fd, (off_t)len) != 0) ||
        ((h = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)) {
        UC_ERROR("view: cannot size or map %s (%zu bytes): %m", tmp, len);
        close(fd);
        unlink(tmp);
        return UCACHE_ERR_NO_MEMORY;
    }
    close(fd);
    h->magic   = UF_VSHM_MAGIC;
    h->version = UF_VSHM_VERSION;
    h->hdr_len = sizeof(*h);
    h->rec_len = sizeof(uf_vshm_rec_t);
    h->size    = len;
    atomic_store(&h->seq, 1); /* written below, then renamed */
    if (rename(tmp, w->path) != 0) {
        UC_ERROR("view: cannot rename %s to %s: %m", tmp, w->path);
        munmap(h, len);
        unlink(tmp);
        return UCACHE_ERR_IO;
    }
    if (w->h != NULL) {
        atomic_store_explicit(&w->h->replaced, 1, memory_order_release);
        munmap(w->h, w->len);
    }
    w->h   = h;
    w->len = len;
    w->cap = cap;
    return UCACHE_OK;
}

static ucache_status_t uf_vshm_writer_open(const char *path, uf_vshm_t **w_p)
{
    char lock[PATH_MAX + 8], dir[PATH_MAX], *slash;
    uf_vshm_t *w;

    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    w->writer = true;
    snprintf(w->path, sizeof(w->path), "%s", path);
    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if ((slash != NULL) && (slash != dir)) {
        *slash = '\0';
        if ((mkdir(dir, 0700) != 0) && (errno != EEXIST)) {
            UC_WARN("view: cannot make %s: %m", dir);
        }
    }
    snprintf(lock, sizeof(lock), "%s.lock", path);
    w->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (w->lock_fd < 0) {
        UC_ERROR("view: cannot open %s: %m", lock);
        free(w);
        return UCACHE_ERR_IO;
    }
    if (flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        UC_WARN("view: another daemon publishes the view at %s: this one does not "
                "(set UCACHE_VIEW_SHM for a second daemon on one host)", path);
        close(w->lock_fd);
        free(w);
        return UCACHE_ERR_BUSY;
    }
    *w_p = w;
    return UCACHE_OK;
}

ucache_status_t uf_vshm_publish(uf_vshm_t **w_p, const char *path, uint64_t epoch,
                                const uf_member_t *m, uint32_t n, uint32_t slots,
                                uint64_t slot_bytes)
{
    uf_vshm_rec_t *r;
    ucache_status_t status;
    uf_vshm_t *w = *w_p;
    uint64_t s;
    uint32_t i;

    if (n > UF_VSHM_MAX_N) {
        return UCACHE_ERR_INVALID;
    }
    if (w == NULL) {
        status = uf_vshm_writer_open(path, &w);
        if (status != UCACHE_OK) {
            return status;
        }
        *w_p = w;
    }
    if ((w->h == NULL) || (n > w->cap)) {
        status = uf_vshm_grow(w, (n < 32) ? 64 : 2 * n);
        if (status != UCACHE_OK) {
            return status;
        }
    }
    s = atomic_load_explicit(&w->h->seq, memory_order_relaxed) | 1;
    atomic_store_explicit(&w->h->seq, s, memory_order_relaxed);  /* odd: writing */
    atomic_thread_fence(memory_order_release);
    r = (uf_vshm_rec_t *)((char *)w->h + sizeof(*w->h));
    memset(r, 0, (size_t)n * sizeof(*r));
    for (i = 0; i < n; i++) {
        r[i].id        = m[i].id;
        r[i].mem_bytes = m[i].mem_bytes;
        r[i].slot0     = m[i].slot0;
        r[i].weight    = m[i].weight;
        r[i].port      = m[i].port;
        snprintf(r[i].host, sizeof(r[i].host), "%s", m[i].host);
        snprintf(r[i].zone, sizeof(r[i].zone), "%s", m[i].zone);
    }
    w->h->n          = n;
    w->h->slots      = slots;
    w->h->slot_bytes = slot_bytes;
    atomic_store_explicit(&w->h->epoch, epoch, memory_order_relaxed);
    w->h->checksum   = uf_vshm_sum(r, n, epoch);
    atomic_store_explicit(&w->h->beat_ns, uf_real_ns(), memory_order_relaxed);
    atomic_store_explicit(&w->h->seq, s + 1, memory_order_release); /* even: done */
    return UCACHE_OK;
}

void uf_vshm_beat(uf_vshm_t *w)
{
    if ((w != NULL) && (w->h != NULL)) {
        atomic_store_explicit(&w->h->beat_ns, uf_real_ns(), memory_order_relaxed);
    }
}

/* ------------------------------------------------------------------------ */
/* Readers                                                                   */
/* ------------------------------------------------------------------------ */

static ucache_status_t uf_vshm_map(uf_vshm_t *r)
{
    struct stat st;
    void *map;
    int fd;

    fd = open(r->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return UCACHE_ERR_NOT_FOUND;
    }
    if ((fstat(fd, &st) != 0) || !S_ISREG(st.st_mode) ||
        ((size_t)st.st_size < sizeof(uf_vshm_hdr_t)) || (st.st_size > (1ll << 32)) ||
        ((st.st_uid != geteuid()) && (st.st_uid != 0))) {
        close(fd);
        return UCACHE_ERR_CORRUPT; /* not a view, or another user's */
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        return UCACHE_ERR_NO_MEMORY;
    }
    if (((uf_vshm_hdr_t *)map)->magic != UF_VSHM_MAGIC) {
        munmap(map, (size_t)st.st_size);
        return UCACHE_ERR_CORRUPT;
    }
    if (r->h != NULL) {
        munmap(r->h, r->len);
    }
    r->h   = map;
    r->len = (size_t)st.st_size;
    return UCACHE_OK;
}

ucache_status_t uf_vshm_open(const char *path, uf_vshm_t **r_p)
{
    ucache_status_t status;
    uf_vshm_t *r;

    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    r->lock_fd = -1;
    snprintf(r->path, sizeof(r->path), "%s", path);
    status = uf_vshm_map(r);
    if (status != UCACHE_OK) {
        free(r);
        return status;
    }
    *r_p = r;
    return UCACHE_OK;
}

uint64_t uf_vshm_epoch(uf_vshm_t *r)
{
    uint64_t s1, e, s2;

    if (atomic_load_explicit(&r->h->replaced, memory_order_acquire)) {
        uf_vshm_map(r);   /* a larger view: the file now at the path */
    }
    s1 = atomic_load_explicit(&r->h->seq, memory_order_acquire);
    e  = atomic_load_explicit(&r->h->epoch, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    s2 = atomic_load_explicit(&r->h->seq, memory_order_relaxed);
    if (!(s1 & 1) && (s1 == s2)) {
        r->last_epoch = e;
    }
    return r->last_epoch;
}

ucache_status_t uf_vshm_read(uf_vshm_t *r, uf_member_t **m_p, uint32_t *n_p,
                             uint64_t *epoch_p, uint32_t *slots_p, uint64_t *slot_bytes_p)
{
    ucache_status_t status = UCACHE_ERR_AGAIN;
    uint64_t s1, s2;
    size_t len;
    unsigned tries;
    uint32_t n;
    void *copy;

    for (tries = 0; (tries < 1000) && (status == UCACHE_ERR_AGAIN); tries++) {
        if (atomic_load_explicit(&r->h->replaced, memory_order_acquire)) {
            uf_vshm_map(r);
        }
        s1 = atomic_load_explicit(&r->h->seq, memory_order_acquire);
        if (s1 & 1) {
            usleep(100);
            continue;
        }
        n = r->h->n;
        len = sizeof(uf_vshm_hdr_t) + (size_t)n * sizeof(uf_vshm_rec_t);
        if (len > r->len) {
            len = r->len; /* the parse refuses it if n says more */
        }
        copy = malloc(len);
        if (copy == NULL) {
            return UCACHE_ERR_NO_MEMORY;
        }
        memcpy(copy, r->h, len);
        atomic_thread_fence(memory_order_acquire);
        s2 = atomic_load_explicit(&r->h->seq, memory_order_relaxed);
        status = (s1 == s2) ? uf_vshm_parse(copy, len, m_p, n_p, epoch_p, slots_p,
                                            slot_bytes_p) : UCACHE_ERR_AGAIN;
        free(copy);
    }
    if (status == UCACHE_OK) {
        r->last_epoch = *epoch_p;
    }
    return status;
}

bool uf_vshm_alive(uf_vshm_t *r, uint64_t stale_ns)
{
    uint64_t beat = atomic_load_explicit(&r->h->beat_ns, memory_order_relaxed);
    uint64_t now = uf_real_ns();

    return (beat != 0) && ((now < beat) || (now - beat < stale_ns));
}

void uf_vshm_close(uf_vshm_t *v, bool unlink_file)
{
    char lock[PATH_MAX + 8];

    if (v == NULL) {
        return;
    }
    if (v->h != NULL) {
        if (v->writer && unlink_file) {
            atomic_store(&v->h->beat_ns, 0); /* readers: the daemon is gone */
            unlink(v->path);
        }
        munmap(v->h, v->len);
    }
    if (v->writer) {
        snprintf(lock, sizeof(lock), "%s.lock", v->path);
        if (unlink_file) {
            unlink(lock);
        }
        close(v->lock_fd);
    }
    free(v);
}
