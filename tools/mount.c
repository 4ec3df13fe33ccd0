/*
 * mount.c - `ucache mount URI-PREFIX MOUNTPOINT`: a read-only POSIX view of
 * a prefix through the fabric (libfuse3, low-level API, multithreaded).
 *
 * The tree is the prefix's listing (ucache_list_info: sizes and mtimes
 * from the origin), taken again once UCACHE_META_TTL has passed; entries
 * and attributes are cached by the kernel for as long.  An inode number
 * is never reused within a mount (a path keeps its number across
 * listings).  Reads go through ucache_read (every chunk verified); a
 * sequential reader's next chunks are warmed ahead at their owners
 * (ucache_warm, --readahead; sampled while they are all hits), and the
 * kernel reads ahead in 1 MiB requests (max_read, max_pages, the mount's
 * read_ahead_kb).  FUSE_USE_VERSION 312: the loop takes the config that
 * fuse_loop_cfg_create makes (an older version reads it as the 3.0 struct,
 * clone_fd on and no idle thread kept: a thread and a /dev/fuse clone
 * made per request).  A file opened again
 * after its object changed drops the kernel's cached pages.  Anything that
 * would write is refused with EROFS.
 */
#define FUSE_USE_VERSION 312

#include "ucache.h"
#include "tools/commands.h"
#include "util/config.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define MNT_MAX_READ (1u << 20)      /* bytes of one FUSE read request */
#define MNT_RA_HOT   16u             /* warms in a row that found every chunk
                                      * cached: then warm one chunk in 16 */

/* One file or directory of the tree; its inode number is its index. */
typedef struct mnt_node {
    char     *path;          /* relative to the prefix; "" for the root */
    const char *name;        /* the last component (within path) */
    uint64_t  parent;
    bool      dir, present;  /* present: in the latest listing */
    uint64_t  size, mtime, version;
    uint64_t  open_version;  /* the version at the last open: keep_cache */
    uint64_t *kids;          /* directories: children, sorted by name */
    size_t    nkids, kcap;
    uint64_t  hnext;         /* the path table's chain */
} mnt_node_t;

/* What every open file and directory begins with: the mount keeps them in
 * a list, to free those still open when it ends (a SIGTERM under load). */
typedef struct mnt_open {
    struct mnt_open *prev, *next;
    bool             dir;    /* a mnt_dir_t, else a mnt_fh_t */
} mnt_open_t;

typedef struct mnt {
    ucache_h          ctx;
    char              prefix[1024];
    pthread_rwlock_t  lock;          /* the tree */
    mnt_node_t       *nodes;         /* [0] unused; [1] the root */
    uint64_t          nnodes, ncap;
    uint64_t         *htab;          /* path -> node, chained through hnext */
    uint64_t          hmask;
    pthread_mutex_t   refresh_lock;  /* one listing at a time */
    _Atomic uint64_t  listed_ns;     /* when the tree was listed */
    uint64_t          ttl_ns;
    double            ttl_s;
    uint64_t          readahead;     /* bytes warmed ahead of a sequential reader */
    time_t            mounted;       /* the time of an mtime nobody knows */
    uid_t             uid;
    gid_t             gid;
    /* the read-ahead thread's queue */
    pthread_mutex_t   ra_lock;
    pthread_cond_t    ra_cond;
    struct mnt_ra    *ra_head;
    bool              ra_stop;
    _Atomic bool      ra_stopping;   /* ra_stop, read without the lock */
    unsigned          ra_hot;        /* warms in a row that were all hits */
    unsigned          ra_seq;        /* chunks passed over while hot      */
    uint64_t          chunk;         /* UCACHE_CHUNK_SIZE: a warm's unit */
    pthread_t         ra_thread;
    /* the kernel's read-ahead on the mount, set once the loop answers */
    const char       *mountpoint;
    pthread_t         bdi_thread;
    bool              bdi_started;
    pthread_mutex_t   open_lock;
    mnt_open_t        opened;        /* the list's head */
} mnt_t;

/* An open file. */
typedef struct mnt_fh {
    mnt_open_t open;
    char     uri[1024 + 1024];
    uint64_t size;
    uint64_t next_off;       /* where a sequential read goes on */
    uint64_t warmed;         /* warmed up to here (exclusive) */
    pthread_mutex_t lock;
} mnt_fh_t;

/* A range to warm ahead. */
typedef struct mnt_ra {
    struct mnt_ra *next;
    char     uri[2048];
    uint64_t off, len;
} mnt_ra_t;

static void mnt_opened(mnt_t *m, mnt_open_t *o)
{
    pthread_mutex_lock(&m->open_lock);
    o->next = m->opened.next;
    o->prev = &m->opened;
    m->opened.next->prev = o;
    m->opened.next = o;
    pthread_mutex_unlock(&m->open_lock);
}

static void mnt_closed(mnt_t *m, mnt_open_t *o)
{
    pthread_mutex_lock(&m->open_lock);
    o->prev->next = o->next;
    o->next->prev = o->prev;
    pthread_mutex_unlock(&m->open_lock);
}

static uint64_t mnt_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* The tree                                                                  */
/* ------------------------------------------------------------------------ */

static uint64_t mnt_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    while (*s != '\0') {
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    }
    return h;
}

/* lock held (write): the node of @p path, or 0 */
static uint64_t mnt_find(const mnt_t *m, const char *path)
{
    uint64_t i;

    for (i = m->htab[mnt_hash(path) & m->hmask]; i != 0; i = m->nodes[i].hnext) {
        if (strcmp(m->nodes[i].path, path) == 0) {
            return i;
        }
    }
    return 0;
}

static bool mnt_rehash(mnt_t *m)
{
    uint64_t n = (m->hmask + 1) * 2, i, *t = calloc(n, sizeof(*t));

    if (t == NULL) {
        return false;
    }
    free(m->htab);
    m->htab  = t;
    m->hmask = n - 1;
    for (i = 1; i < m->nnodes; i++) {
        uint64_t b = mnt_hash(m->nodes[i].path) & m->hmask;

        m->nodes[i].hnext = t[b];
        t[b] = i;
    }
    return true;
}

static bool mnt_kid_add(mnt_node_t *d, uint64_t ino)
{
    uint64_t *k;

    if (d->nkids == d->kcap) {
        d->kcap = d->kcap ? 2 * d->kcap : 8;
        k = realloc(d->kids, d->kcap * sizeof(*k));
        if (k == NULL) {
            return false;
        }
        d->kids = k;
    }
    d->kids[d->nkids++] = ino;
    return true;
}

/* write lock held: the node of @p path (made, with its parent directories,
 * if new), marked present in its directory; 0 without memory or if a file
 * and a directory share the path */
static uint64_t mnt_node(mnt_t *m, const char *path, bool dir)
{
    uint64_t ino = mnt_find(m, path), parent = 1, b;
    const char *slash = strrchr(path, '/');
    mnt_node_t *n;
    char *up;

    if ((ino != 0) && (m->nodes[ino].dir != dir)) {
        return 0;
    }
    if ((ino != 0) && m->nodes[ino].present) {
        return ino;
    }
    if (slash != NULL) {
        up = strndup(path, (size_t)(slash - path));
        parent = (up != NULL) ? mnt_node(m, up, true) : 0;
        free(up);
        if (parent == 0) {
            return 0;
        }
    }
    if (ino == 0) {
        if (m->nnodes == m->ncap) {
            mnt_node_t *nn = realloc(m->nodes, 2 * m->ncap * sizeof(*nn));

            if (nn == NULL) {
                return 0;
            }
            m->nodes = nn;
            m->ncap *= 2;
        }
        if ((m->nnodes > m->hmask) && !mnt_rehash(m)) {
            return 0;
        }
        ino = m->nnodes;
        n = &m->nodes[ino];
        memset(n, 0, sizeof(*n));
        n->path = strdup(path);
        if (n->path == NULL) {
            return 0;
        }
        n->name   = (slash != NULL) ? n->path + (slash - path) + 1 : n->path;
        n->parent = parent;
        n->dir    = dir;
        b = mnt_hash(path) & m->hmask;
        n->hnext  = m->htab[b];
        m->htab[b] = ino;
        m->nnodes++;
    }
    m->nodes[ino].present = true;
    return mnt_kid_add(&m->nodes[parent], ino) ? ino : 0;
}

/* One object of a listing, as collected. */
typedef struct mnt_obj {
    char                *uri;
    ucache_object_info_t info;
} mnt_obj_t;

typedef struct mnt_collect {
    mnt_obj_t *v;
    size_t     n, cap;
} mnt_collect_t;

static ucache_status_t mnt_collect(void *arg, const char *uri, const ucache_object_info_t *info)
{
    mnt_collect_t *c = arg;
    mnt_obj_t *v;

    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        v = realloc(c->v, c->cap * sizeof(*v));
        if (v == NULL) {
            return UCACHE_ERR_NO_MEMORY;
        }
        c->v = v;
    }
    c->v[c->n].uri = strdup(uri);
    if (c->v[c->n].uri == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    c->v[c->n++].info = *info;
    return UCACHE_OK;
}

static const mnt_t *mnt_sort_m;

static int mnt_kid_cmp(const void *a, const void *b)
{
    return strcmp(mnt_sort_m->nodes[*(const uint64_t *)a].name,
                  mnt_sort_m->nodes[*(const uint64_t *)b].name);
}

/* List the prefix again (not under the tree's lock) and take it as the
 * tree: new paths get new nodes, gone ones leave their directories. */
static ucache_status_t mnt_refresh(mnt_t *m)
{
    static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;
    mnt_collect_t c = { NULL, 0, 0 };
    ucache_status_t status;
    size_t plen = strlen(m->prefix), i;
    const char *rel;
    uint64_t ino;
    mnt_node_t *n;

    status = ucache_list_info(m->ctx, m->prefix, mnt_collect, &c);
    if (status == UCACHE_OK) {
        pthread_rwlock_wrlock(&m->lock);
        for (i = 1; i < m->nnodes; i++) {
            m->nodes[i].present = (i == 1);
            m->nodes[i].nkids   = 0;
        }
        for (i = 0; i < c.n; i++) {
            rel = c.v[i].uri + plen;
            if ((strncmp(c.v[i].uri, m->prefix, plen) != 0) || (rel[0] == '\0') ||
                (rel[0] == '/') || (strstr(rel, "//") != NULL) ||
                (rel[strlen(rel) - 1] == '/')) {
                continue; /* not a path here */
            }
            ino = mnt_node(m, rel, false);
            if (ino == 0) {
                continue; /* "a" a file and "a/b" too: the file is hidden */
            }
            n = &m->nodes[ino];
            n->size    = c.v[i].info.size;
            n->mtime   = c.v[i].info.mtime;
            n->version = c.v[i].info.version;
        }
        pthread_mutex_lock(&sort_lock);
        mnt_sort_m = m;
        for (i = 1; i < m->nnodes; i++) {
            n = &m->nodes[i];
            if (n->dir && n->nkids > 1) {
                qsort(n->kids, n->nkids, sizeof(*n->kids), mnt_kid_cmp);
            }
        }
        pthread_mutex_unlock(&sort_lock);
        m->listed_ns = mnt_now_ns();
        pthread_rwlock_unlock(&m->lock);
    }
    for (i = 0; i < c.n; i++) {
        free(c.v[i].uri);
    }
    free(c.v);
    return status;
}

/* Take the listing again if it is older than the TTL (one caller lists;
 * the others go on with the tree they have). */
static void mnt_fresh(mnt_t *m)
{
    ucache_status_t status;

    if (mnt_now_ns() - m->listed_ns < m->ttl_ns) {
        return;
    }
    if (pthread_mutex_trylock(&m->refresh_lock) != 0) {
        return;
    }
    if (mnt_now_ns() - m->listed_ns >= m->ttl_ns) {
        status = mnt_refresh(m);
        if (status != UCACHE_OK) {
            fprintf(stderr, "ucache mount: listing %s again failed: %s (the last one "
                    "stays)\n", m->prefix, ucache_strerror(status));
            m->listed_ns = mnt_now_ns(); /* try again a TTL later */
        }
    }
    pthread_mutex_unlock(&m->refresh_lock);
}

/* read lock held: the child @p name of directory @p parent, or 0 */
static uint64_t mnt_child(const mnt_t *m, uint64_t parent, const char *name)
{
    const mnt_node_t *d = &m->nodes[parent];
    size_t lo = 0, hi = d->nkids, mid;
    int c;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = strcmp(m->nodes[d->kids[mid]].name, name);
        if (c == 0) {
            return d->kids[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return 0;
}

/* read lock held */
static void mnt_attr(const mnt_t *m, uint64_t ino, struct stat *st)
{
    const mnt_node_t *n = &m->nodes[ino];

    memset(st, 0, sizeof(*st));
    st->st_ino   = ino;
    st->st_mode  = n->dir ? (S_IFDIR | 0555) : (S_IFREG | 0444);
    st->st_nlink = n->dir ? 2 : 1;
    st->st_uid   = m->uid;
    st->st_gid   = m->gid;
    st->st_size  = n->dir ? 0 : (off_t)n->size;
    st->st_blksize = MNT_MAX_READ;
    st->st_blocks  = (blkcnt_t)((n->size + 511) / 512);
    st->st_mtime = st->st_ctime = st->st_atime =
        (n->mtime != 0) ? (time_t)n->mtime : m->mounted;
}

static bool mnt_valid(const mnt_t *m, fuse_ino_t ino)
{
    return (ino >= 1) && (ino < m->nnodes) && m->nodes[ino].present;
}

/* ------------------------------------------------------------------------ */
/* Operations                                                                */
/* ------------------------------------------------------------------------ */

static int mnt_errno(ucache_status_t status)
{
    switch (status) {
    case UCACHE_ERR_NOT_FOUND:    return ENOENT;
    case UCACHE_ERR_DENIED:
    case UCACHE_ERR_REFUSED:
    case UCACHE_ERR_AUTH:         return EACCES;
    case UCACHE_ERR_TIMEOUT:      return ETIMEDOUT;
    case UCACHE_ERR_STALE:        return ESTALE;
    case UCACHE_ERR_NO_MEMORY:    return ENOMEM;
    case UCACHE_ERR_INVALID:      return EINVAL;
    case UCACHE_ERR_OUT_OF_RANGE: return EINVAL;
    default:                      return EIO;
    }
}

static void mnt_entry(mnt_t *m, fuse_req_t req, uint64_t ino)
{
    struct fuse_entry_param e;

    memset(&e, 0, sizeof(e));
    e.ino = ino;
    e.generation    = 1;
    e.attr_timeout  = m->ttl_s;
    e.entry_timeout = m->ttl_s;
    mnt_attr(m, ino, &e.attr);
    fuse_reply_entry(req, &e);
}

static void op_init(void *data, struct fuse_conn_info *conn)
{
    (void)data;
    conn->max_read = MNT_MAX_READ;
    if (conn->capable & FUSE_CAP_ASYNC_READ) {
        conn->want |= FUSE_CAP_ASYNC_READ;
    }
    conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    mnt_t *m = fuse_req_userdata(req);
    uint64_t ino = 0;

    mnt_fresh(m);
    pthread_rwlock_rdlock(&m->lock);
    if (mnt_valid(m, parent) && m->nodes[parent].dir) {
        ino = mnt_child(m, parent, name);
    }
    if ((ino != 0) && m->nodes[ino].present) {
        mnt_entry(m, req, ino);
    } else {
        struct fuse_entry_param e;

        memset(&e, 0, sizeof(e)); /* a negative entry, cached for the TTL */
        e.entry_timeout = m->ttl_s;
        fuse_reply_entry(req, &e);
    }
    pthread_rwlock_unlock(&m->lock);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    mnt_t *m = fuse_req_userdata(req);
    struct stat st;

    (void)fi;
    mnt_fresh(m);
    pthread_rwlock_rdlock(&m->lock);
    if (!mnt_valid(m, ino)) {
        pthread_rwlock_unlock(&m->lock);
        fuse_reply_err(req, ENOENT);
        return;
    }
    mnt_attr(m, ino, &st);
    pthread_rwlock_unlock(&m->lock);
    fuse_reply_attr(req, &st, m->ttl_s);
}

/* A directory's entries, as they were at opendir: fuse_add_direntry's
 * records, and where each ends (the offset the next readdir starts at). */
typedef struct mnt_dir {
    mnt_open_t open;
    char   *buf;
    size_t  len;
    size_t *ends;
    size_t  n;
    pthread_mutex_t lock; /* held by a reply from buf until its writev has
                             returned: the kernel may complete the READDIR,
                             and the reader close the directory (RELEASEDIR
                             on another thread), before it does (ASan saw
                             buf freed under the writev's return) */
} mnt_dir_t;

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    mnt_t *m = fuse_req_userdata(req);
    mnt_dir_t *d = calloc(1, sizeof(*d));
    size_t i, cap = 4096, need;
    struct stat st;
    char *nb;

    mnt_fresh(m);
    pthread_rwlock_rdlock(&m->lock);
    if ((d == NULL) || !mnt_valid(m, ino) || !m->nodes[ino].dir) {
        pthread_rwlock_unlock(&m->lock);
        free(d);
        fuse_reply_err(req, (d == NULL) ? ENOMEM : ENOTDIR);
        return;
    }
    d->buf  = malloc(cap);
    d->ends = malloc((m->nodes[ino].nkids + 2) * sizeof(*d->ends));
    if (d->ends == NULL) {
        free(d->buf);
        d->buf = NULL;
    }
    for (i = 0; (d->buf != NULL) && (i < m->nodes[ino].nkids + 2); i++) {
        const char *name = (i == 0) ? "." : (i == 1) ? ".." : NULL;
        uint64_t k = (i == 0) ? ino : (i == 1) ? m->nodes[ino].parent : m->nodes[ino].kids[i - 2];

        if (name == NULL) {
            name = m->nodes[k].name;
        }
        memset(&st, 0, sizeof(st));
        st.st_ino  = k;
        st.st_mode = m->nodes[k].dir ? S_IFDIR : S_IFREG;
        need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
        if (d->len + need > cap) {
            cap = 2 * (d->len + need);
            nb = realloc(d->buf, cap);
            if (nb == NULL) {
                free(d->buf);
                d->buf = NULL;
                break;
            }
            d->buf = nb;
        }
        fuse_add_direntry(req, d->buf + d->len, need, name, &st, (off_t)(d->len + need));
        d->len += need;
        d->ends[d->n++] = d->len;
    }
    pthread_rwlock_unlock(&m->lock);
    if (d->buf == NULL) {
        free(d->ends);
        free(d);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    d->open.dir = true;
    pthread_mutex_init(&d->lock, NULL);
    mnt_opened(m, &d->open);
    fi->fh = (uint64_t)(uintptr_t)d;
    fi->cache_readdir = 1;
    fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    mnt_dir_t *d = (mnt_dir_t *)(uintptr_t)fi->fh;
    size_t o = (off > 0) ? (size_t)off : 0, end = o, i;

    (void)ino;
    pthread_mutex_lock(&d->lock);
    for (i = 0; i < d->n; i++) {  /* whole entries that fit, from o on */
        if ((d->ends[i] > o) && (d->ends[i] - o <= size)) {
            end = d->ends[i];
        }
    }
    fuse_reply_buf(req, (end > o) ? d->buf + o : NULL, end - o);
    pthread_mutex_unlock(&d->lock);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    mnt_dir_t *d = (mnt_dir_t *)(uintptr_t)fi->fh;

    (void)ino;
    mnt_closed(fuse_req_userdata(req), &d->open);
    pthread_mutex_lock(&d->lock);   /* a reply still in its writev ends first */
    pthread_mutex_unlock(&d->lock);
    pthread_mutex_destroy(&d->lock);
    free(d->buf);
    free(d->ends);
    free(d);
    fuse_reply_err(req, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    mnt_t *m = fuse_req_userdata(req);
    mnt_node_t *n;
    mnt_fh_t *fh;

    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & (O_TRUNC | O_CREAT))) {
        fuse_reply_err(req, EROFS);
        return;
    }
    mnt_fresh(m);
    fh = calloc(1, sizeof(*fh));
    pthread_rwlock_rdlock(&m->lock);
    if ((fh == NULL) || !mnt_valid(m, ino) || m->nodes[ino].dir) {
        pthread_rwlock_unlock(&m->lock);
        free(fh);
        fuse_reply_err(req, (fh == NULL) ? ENOMEM : EISDIR);
        return;
    }
    n = &m->nodes[ino];
    snprintf(fh->uri, sizeof(fh->uri), "%s%s", m->prefix, n->path);
    fh->size = n->size;
    /* the kernel's pages of this file are good while its version is */
    fi->keep_cache = (__atomic_exchange_n(&n->open_version, n->version, __ATOMIC_RELAXED) ==
                      n->version);
    pthread_rwlock_unlock(&m->lock);
    pthread_mutex_init(&fh->lock, NULL);
    mnt_opened(m, &fh->open);
    fi->fh = (uint64_t)(uintptr_t)fh;
    fuse_reply_open(req, fi);
}

/* Warm [off, off + len) of @p fh's object at its owners, on the read-ahead
 * thread (dropped if the queue is long: it is only ahead of the reader). */
static void mnt_ra_push(mnt_t *m, const mnt_fh_t *fh, uint64_t off, uint64_t len)
{
    mnt_ra_t *r = malloc(sizeof(*r)), **p;
    unsigned n = 0;

    if (r == NULL) {
        return;
    }
    snprintf(r->uri, sizeof(r->uri), "%s", fh->uri);
    r->off  = off;
    r->len  = len;
    r->next = NULL;
    pthread_mutex_lock(&m->ra_lock);
    for (p = &m->ra_head; *p != NULL; p = &(*p)->next) {
        n++;
    }
    if (n < 64) {
        *p = r;
        r = NULL;
        pthread_cond_signal(&m->ra_cond);
    }
    pthread_mutex_unlock(&m->ra_lock);
    free(r);
}

static void *mnt_ra_thread(void *arg)
{
    mnt_t *m = arg;
    ucache_warm_result_t res;
    uint64_t off, len;
    mnt_ra_t *r;

    pthread_mutex_lock(&m->ra_lock);
    while (!m->ra_stop) {
        r = m->ra_head;
        if (r == NULL) {
            pthread_cond_wait(&m->ra_cond, &m->ra_lock);
            continue;
        }
        m->ra_head = r->next;
        pthread_mutex_unlock(&m->ra_lock);
        /* a chunk at a time, so that the end of the mount waits for one
         * warm at most (an owner gone quiet costs one UCACHE_TIMEOUT) */
        for (off = r->off; (off < r->off + r->len) && !atomic_load(&m->ra_stopping);
             off += m->chunk) {
            /* a hot dataset: every warm an RPC to an owner that has the
             * chunk already, so sample one chunk in MNT_RA_HOT (a miss
             * among them turns warming back on) */
            if ((m->ra_hot >= MNT_RA_HOT) && ((m->ra_seq++ % MNT_RA_HOT) != 0)) {
                continue;
            }
            memset(&res, 0, sizeof(res));
            len = (r->off + r->len - off < m->chunk) ? r->off + r->len - off : m->chunk;
            if ((ucache_warm(m->ctx, r->uri, off, len, 0, &res) == UCACHE_OK) &&
                (res.chunks > 0) && (res.hits == res.chunks)) {
                m->ra_hot += (m->ra_hot < MNT_RA_HOT);
            } else {
                m->ra_hot = 0; /* best effort: a miss or a failure */
            }
        }
        free(r);
        pthread_mutex_lock(&m->ra_lock);
    }
    pthread_mutex_unlock(&m->ra_lock);
    return NULL;
}

/* This thread's read buffer (MNT_MAX_READ bytes, made once: a fresh
 * 1 MiB malloc is an mmap and 256 page faults a read). */
static pthread_key_t  mnt_buf_key;
static pthread_once_t mnt_buf_once = PTHREAD_ONCE_INIT;

static void mnt_buf_key_make(void)
{
    (void)pthread_key_create(&mnt_buf_key, free);
}

static char *mnt_buf(void)
{
    char *b;

    pthread_once(&mnt_buf_once, mnt_buf_key_make);
    b = pthread_getspecific(mnt_buf_key);
    if (b == NULL) {
        b = malloc(MNT_MAX_READ);
        if ((b != NULL) && (pthread_setspecific(mnt_buf_key, b) != 0)) {
            free(b);
            b = NULL;
        }
    }
    return b;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    mnt_t *m = fuse_req_userdata(req);
    mnt_fh_t *fh = (mnt_fh_t *)(uintptr_t)fi->fh;
    ucache_status_t status;
    uint64_t from = 0, upto = 0;
    size_t got = 0;
    char *buf;

    (void)ino;
    if (size > MNT_MAX_READ) {
        size = MNT_MAX_READ;
    }
    buf = mnt_buf();
    if (buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    status = (size > 0) ? ucache_read(m->ctx, fh->uri, (uint64_t)off, size, buf, &got) :
                          UCACHE_OK;
    if (status == UCACHE_ERR_OUT_OF_RANGE) {
        status = UCACHE_OK; /* past the end (the object shrank): nothing */
        got = 0;
    }
    if (status != UCACHE_OK) {
        fuse_reply_err(req, mnt_errno(status));
        return;
    }
    /* a sequential reader: warm what it reads next at the owners (before
     * the reply: once it is sent the file may be released) */
    pthread_mutex_lock(&fh->lock);
    if ((m->readahead > 0) && ((uint64_t)off <= fh->next_off + MNT_MAX_READ) &&
        ((uint64_t)off + MNT_MAX_READ >= fh->next_off)) {
        from = (fh->warmed > (uint64_t)off + got) ? fh->warmed : (uint64_t)off + got;
        upto = (uint64_t)off + got + m->readahead;
        if (upto > fh->size) {
            upto = fh->size;
        }
        if (upto >= from + m->readahead / 2 || (upto == fh->size && upto > from)) {
            fh->warmed = upto;
        } else {
            upto = from;
        }
    }
    fh->next_off = (uint64_t)off + got;
    pthread_mutex_unlock(&fh->lock);
    if (upto > from) {
        mnt_ra_push(m, fh, from, upto - from);
    }
    fuse_reply_buf(req, buf, got);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    mnt_fh_t *fh = (mnt_fh_t *)(uintptr_t)fi->fh;

    (void)ino;
    mnt_closed(fuse_req_userdata(req), &fh->open);
    pthread_mutex_destroy(&fh->lock);
    free(fh);
    fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    mnt_t *m = fuse_req_userdata(req);
    struct statvfs sv;

    (void)ino;
    memset(&sv, 0, sizeof(sv));
    sv.f_bsize   = MNT_MAX_READ;
    sv.f_frsize  = MNT_MAX_READ;
    sv.f_namemax = 255;
    pthread_rwlock_rdlock(&m->lock);
    sv.f_files = m->nnodes;
    pthread_rwlock_unlock(&m->lock);
    fuse_reply_statfs(req, &sv);
}

/* everything that would change the tree */
static void op_rofs(fuse_req_t req)
{
    fuse_reply_err(req, EROFS);
}
static void op_mkdir(fuse_req_t r, fuse_ino_t p, const char *n, mode_t md)
{ (void)p; (void)n; (void)md; op_rofs(r); }
static void op_mknod(fuse_req_t r, fuse_ino_t p, const char *n, mode_t md, dev_t dv)
{ (void)p; (void)n; (void)md; (void)dv; op_rofs(r); }
static void op_unlink(fuse_req_t r, fuse_ino_t p, const char *n)
{ (void)p; (void)n; op_rofs(r); }
static void op_create(fuse_req_t r, fuse_ino_t p, const char *n, mode_t md,
                      struct fuse_file_info *fi)
{ (void)p; (void)n; (void)md; (void)fi; op_rofs(r); }
static void op_setattr(fuse_req_t r, fuse_ino_t i, struct stat *a, int set,
                       struct fuse_file_info *fi)
{ (void)i; (void)a; (void)set; (void)fi; op_rofs(r); }
static void op_rename(fuse_req_t r, fuse_ino_t p, const char *n, fuse_ino_t np,
                      const char *nn, unsigned int f)
{ (void)p; (void)n; (void)np; (void)nn; (void)f; op_rofs(r); }

static const struct fuse_lowlevel_ops mnt_ops = {
    .init       = op_init,
    .lookup     = op_lookup,
    .getattr    = op_getattr,
    .opendir    = op_opendir,
    .readdir    = op_readdir,
    .releasedir = op_releasedir,
    .open       = op_open,
    .read       = op_read,
    .release    = op_release,
    .statfs     = op_statfs,
    .mkdir      = op_mkdir,
    .mknod      = op_mknod,
    .unlink     = op_unlink,
    .rmdir      = op_unlink,
    .create     = op_create,
    .setattr    = op_setattr,
    .rename     = op_rename,
};

/* ------------------------------------------------------------------------ */
/* ucache mount                                                              */
/* ------------------------------------------------------------------------ */

/* Let the kernel read ahead 4 MiB on the mount (its bdi; FUSE's own
 * default is 128 KiB).  Best effort: root only.  A thread of its own: the
 * stat() of the mount point is answered by the session's loop, so it must
 * not come from the thread that runs it, nor before it runs. */
static void *mnt_bdi_thread(void *arg)
{
    const mnt_t *m = arg;
    char path[128];
    struct stat st;
    FILE *f;

    if (stat(m->mountpoint, &st) != 0) {
        return NULL;
    }
    snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
             minor(st.st_dev));
    f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "%u\n", 4096u);
        fclose(f);
    }
    return NULL;
}

/* Fork: the parent waits for the child's word on a pipe and exits with it
 * (0: mounted); the child goes on in a session of its own.  0 in the
 * child, -1 if it cannot. */
static int mnt_detach(int pfd[2])
{
    unsigned char word = 1;
    pid_t pid;

    if (pipe(pfd) != 0) {
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid > 0) {
        close(pfd[1]);
        if (read(pfd[0], &word, 1) != 1) {
            word = 1;
        }
        _exit(word);
    }
    close(pfd[0]);
    pfd[0] = -1;
    setsid();
    return 0;
}

/* Tell a waiting parent how the mount went (once), then let go of the
 * terminal: stdin and stdout from /dev/null, stderr kept for the log. */
static void mnt_detached(int pfd[2], unsigned char word)
{
    int fd;

    if (pfd[1] < 0) {
        return;
    }
    if (write(pfd[1], &word, 1) != 1) {
        word = 1;
    }
    close(pfd[1]);
    pfd[1] = -1;
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        if (fd > 2) {
            close(fd);
        }
    }
    (void)chdir("/");
}

static void mnt_free(mnt_t *m)
{
    mnt_open_t *o, *next;
    uint64_t i;

    for (o = m->opened.next; (o != NULL) && (o != &m->opened); o = next) {
        next = o->next;
        if (o->dir) {
            free(((mnt_dir_t *)(void *)o)->buf);
            free(((mnt_dir_t *)(void *)o)->ends);
        }
        free(o);
    }

    for (i = 1; i < m->nnodes; i++) {
        free(m->nodes[i].path);
        free(m->nodes[i].kids);
    }
    free(m->nodes);
    free(m->htab);
}

int cmd_mount(int argc, char **argv)
{
    static const uc_opt_t opts[] = {
        {"members", 'M', UC_OPT_STR},
        {"readahead", 'r', UC_OPT_SIZE, 0, 1ull << 30},
        {"threads", 't', UC_OPT_UINT, 1, 256},
        {"foreground", 'f', UC_OPT_FLAG},
        {"allow-other", 'a', UC_OPT_FLAG},
        {"help", 'h', UC_OPT_FLAG},
        {NULL, 0, UC_OPT_FLAG}
    };
    ucache_params_t p = { .field_mask = 0 };
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    struct fuse_loop_config *lc = NULL;
    struct fuse_session *se = NULL;
    int c, rc = 1, foreground = 0, allow_other = 0, pfd[2] = { -1, -1 };
    unsigned threads = 16;
    char opt[256];
    const char *prefix, *mountpoint;
    ucache_status_t status;
    uc_optparse_t op;
    uc_optval_t ov;
    uc_config_t cfg;
    mnt_t m;

    memset(&m, 0, sizeof(m));
    m.readahead = 16u << 20;
    if ((c = cmd_opts(&op, argc, argv, "mount", opts)) >= 0) {
        return c;
    }
    while ((c = cmd_opt_next(&op, "mount", &ov, NULL)) > 0) {
        switch (c) {
        case 'M':
            p.members = ov.s;
            p.field_mask |= UCACHE_PARAM_FIELD_MEMBERS;
            break;
        case 'r':
            m.readahead = ov.u;
            break;
        case 't':
            threads = (unsigned)ov.u;
            break;
        case 'f':
            foreground = 1;
            break;
        case 'a':
            allow_other = 1;
            break;
        case 'h':
            printf("usage: ucache mount URI-PREFIX MOUNTPOINT [--members SRC] "
                   "[--readahead BYTES] [--threads N] [--foreground] [--allow-other]\n"
                   "Mounts the objects under URI-PREFIX read-only at MOUNTPOINT (FUSE):\n"
                   "directories from the listing, sizes and mtimes from the origin,\n"
                   "bytes through the cache.  Unmount with fusermount3 -u MOUNTPOINT or\n"
                   "SIGTERM.  --readahead: bytes warmed ahead of a sequential reader\n"
                   "(16M); --threads: FUSE worker threads at most (16); --foreground:\n"
                   "do not detach; --allow-other: other users may read it.\n");
            return 0;
        }
    }
    if (c < 0) {
        return 2;
    }
    if (op.optind != argc - 2) {
        fprintf(stderr, "usage: ucache mount URI-PREFIX MOUNTPOINT [options]\n");
        return 2;
    }
    prefix     = argv[op.optind];
    mountpoint = argv[op.optind + 1];
    if ((strlen(prefix) + 2 > sizeof(m.prefix)) || (strchr(prefix, '?') != NULL)) {
        fprintf(stderr, "ucache mount: the prefix is too long or has a query (a SAS goes "
                "in the credentials)\n");
        return 2;
    }
    snprintf(m.prefix, sizeof(m.prefix), "%s%s", prefix,
             (prefix[strlen(prefix) - 1] == '/') ? "" : "/");
    if (uc_config_load(&cfg) != UCACHE_OK) {
        return 2;
    }
    m.ttl_ns   = (cfg.meta_ttl_ns > 0) ? cfg.meta_ttl_ns : 1;
    m.ttl_s    = (double)cfg.meta_ttl_ns / 1e9;
    m.chunk    = (cfg.chunk_size > 0) ? cfg.chunk_size : (1u << 20);
    m.mounted  = time(NULL);
    m.uid      = getuid();
    m.gid      = getgid();
    m.ncap     = 1024;
    m.nnodes   = 2;
    m.hmask    = 1023;
    m.nodes    = calloc(m.ncap, sizeof(*m.nodes));
    m.htab     = calloc(m.hmask + 1, sizeof(*m.htab));
    if ((m.nodes == NULL) || (m.htab == NULL) || ((m.nodes[1].path = strdup("")) == NULL)) {
        mnt_free(&m);
        return 1;
    }
    m.nodes[1].name    = m.nodes[1].path;
    m.nodes[1].dir     = true;
    m.nodes[1].present = true;
    m.nodes[1].parent  = 1;
    pthread_rwlock_init(&m.lock, NULL);
    pthread_mutex_init(&m.refresh_lock, NULL);
    pthread_mutex_init(&m.ra_lock, NULL);
    pthread_mutex_init(&m.open_lock, NULL);
    m.opened.next = m.opened.prev = &m.opened;
    pthread_cond_init(&m.ra_cond, NULL);

    /* Detach before the context exists (nothing of UCX may cross a fork);
     * the waiting parent exits with what the mount came to. */
    if (!foreground && (mnt_detach(pfd) != 0)) {
        mnt_free(&m);
        return 1;
    }
    status = ucache_init(&p, &m.ctx);
    if (status == UCACHE_OK) {
        status = mnt_refresh(&m);  /* a prefix that does not list fails here */
    }
    if (status != UCACHE_OK) {
        fprintf(stderr, "ucache mount: %s: %s\n", m.prefix, ucache_strerror(status));
        goto out;
    }
    snprintf(opt, sizeof(opt), "-oro,default_permissions,fsname=ucache,subtype=ucache,"
             "max_read=%u%s", MNT_MAX_READ, allow_other ? ",allow_other" : "");
    if ((fuse_opt_add_arg(&args, "ucache") != 0) || (fuse_opt_add_arg(&args, opt) != 0)) {
        goto out;
    }
    se = fuse_session_new(&args, &mnt_ops, sizeof(mnt_ops), &m);
    if ((se == NULL) || (fuse_set_signal_handlers(se) != 0)) {
        fprintf(stderr, "ucache mount: cannot start a FUSE session\n");
        goto out;
    }
    if (fuse_session_mount(se, mountpoint) != 0) {
        fprintf(stderr, "ucache mount: cannot mount at %s\n", mountpoint);
        goto out_signals;
    }
    m.mountpoint  = mountpoint;
    m.bdi_started = (pthread_create(&m.bdi_thread, NULL, mnt_bdi_thread, &m) == 0);
    if (pthread_create(&m.ra_thread, NULL, mnt_ra_thread, &m) != 0) {
        goto out_unmount;
    }
    fprintf(stderr, "ucache mount: %s at %s (%llu entries, listed again every %.3g s)\n",
            m.prefix, mountpoint, (unsigned long long)(m.nnodes - 2), m.ttl_s);
    mnt_detached(pfd, 0);
    lc = fuse_loop_cfg_create();
    if (lc != NULL) {
        fuse_loop_cfg_set_max_threads(lc, threads);
        fuse_loop_cfg_set_idle_threads(lc, (threads < 10) ? threads : 10);
        c  = fuse_session_loop_mt(se, lc);
        /* unmounted (0), or ended by SIGTERM, SIGINT, SIGHUP (the signal) */
        rc = ((c == 0) || (c == SIGTERM) || (c == SIGINT) || (c == SIGHUP)) ? 0 : 1;
        if (rc != 0) {
            fprintf(stderr, "ucache mount: the FUSE session failed (%d)\n", c);
        }
        fuse_loop_cfg_destroy(lc);
    }
    if (m.bdi_started) {
        pthread_join(m.bdi_thread, NULL);
    }
    pthread_mutex_lock(&m.ra_lock);
    m.ra_stop = true;
    atomic_store(&m.ra_stopping, true);
    pthread_cond_signal(&m.ra_cond);
    pthread_mutex_unlock(&m.ra_lock);
    pthread_join(m.ra_thread, NULL);
    while (m.ra_head != NULL) {
        mnt_ra_t *r = m.ra_head;

        m.ra_head = r->next;
        free(r);
    }
out_unmount:
    fuse_session_unmount(se);
out_signals:
    fuse_remove_signal_handlers(se);
out:
    mnt_detached(pfd, 1); /* a parent still waiting: it failed */
    if (se != NULL) {
        fuse_session_destroy(se);
    }
    fuse_opt_free_args(&args);
    ucache_finalize(m.ctx);
    mnt_free(&m);
    return rc;
}
