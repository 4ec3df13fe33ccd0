/*
 * nvme.c - the NVMe tier of one device (nvme.h): segments written as logs
 * through io_uring, the owner-private index of their records, cleaning
 * with reinsertion, the start-up scan, and the device's error budget.
 *
 * Segment states:  FREE -> OPEN (the one being appended to) -> SEALED -> FREE
 * (cleaning, oldest first).  At least one segment is free after each open,
 * so the records cleaning writes again always fit the segment just opened.
 *
 * Locks: `wlock` (one writer: the open segment, the write buffer, cleaning)
 * is taken before `lock` (index, segments, counters); `io_lock` guards the
 * pool of read contexts only.  No I/O is done under `lock`.
 */
#include "nvme.h"
#include "keymap.h"
#include "util/log.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define NV_NONE   UINT32_MAX
#define NV_WBUF   (8u << 20)          /* the writer's buffer: records per write */
#define NV_CLEAN  (16ull << 20)       /* most bytes cleaning writes again */

enum { NV_SEG_FREE = 0, NV_SEG_OPEN, NV_SEG_SEALED };

/* A record on the device (owner-private). */
typedef struct nv_ent {
    us_key_t key;
    uint64_t off;            /* device offset of the record */
    uint64_t seq;
    uint32_t length;
    uint32_t seg;
    uint32_t hnext;          /* hash chain; the free list */
    uint32_t snext, sprev;   /* its segment's list */
    uint16_t ns;
    uint8_t  hot;            /* read since written: cleaning keeps it */
    uint8_t  pinned;         /* pinned now: cleaning keeps it */
    uint8_t  dev_pinned;     /* what its record on the device says: when the
                                two differ, the key is on the pin list */
} nv_ent_t;

typedef struct nv_seg {
    uint64_t first_seq;      /* its oldest record: the cleaning order */
    uint64_t fill;           /* bytes written from its start */
    uint64_t live;           /* device bytes of its indexed records */
    uint32_t head;           /* its records */
    uint8_t  state;
} nv_seg_t;

/* An I/O context: a ring and a buffer registered with it. */
typedef struct nv_io {
    struct io_uring ring;
    char           *buf;
    size_t          len;
    int             fixed;   /* buf is registered (READ_FIXED / WRITE_FIXED) */
    int             ready;
    struct nv_io   *next;
} nv_io_t;

/* One transfer of a batch. */
typedef struct nv_op {
    int      write;
    char    *buf;
    uint64_t len, off;
    int      res;            /* out: 0 or -errno (a short transfer is -EIO) */
} nv_op_t;

/* A record of the writer's buffer, indexed once its write completes. */
typedef struct nv_pend {
    us_key_t key;
    uint64_t off, seq;
    uint32_t length;
    uint32_t item;           /* index into the caller's items, NV_NONE: cleaning's */
    uint16_t ns;
    uint8_t  pinned, hot;
    uint8_t  dropped;        /* a tombstone: written, never indexed */
} nv_pend_t;

struct us_nvme {
    char            *path;
    int              fd;
    us_nvme_super_t  sb;
    unsigned         depth, max_errors;
    pthread_mutex_t  lock;
    nv_ent_t        *ent;
    uint32_t         ent_cap, ent_free;
    uint32_t        *bucket;
    uint64_t         bmask;
    nv_seg_t        *seg;
    uint64_t         nfree;
    uint64_t         next_seq;
    unsigned         err_run;        /* errors in the window */
    uint64_t         err_t0;         /* the window's start */
    int              online;
    us_nvme_stats_t  st;
    /* read contexts */
    pthread_mutex_t  io_lock;
    pthread_cond_t   io_cond;
    nv_io_t         *ios, *io_free;
    unsigned         nios;
    /* the writer */
    pthread_mutex_t  wlock;
    nv_io_t          wio;
    uint32_t         cur;            /* open segment, NV_NONE */
    uint64_t         wused;          /* bytes in wio.buf */
    uint64_t         woff;           /* device offset of wio.buf[0] */
    nv_pend_t       *pend;
    uint32_t         npend, pend_cap;
    char            *cbuf;           /* cleaning's reads */
    uint64_t         clen;
    /* pin changes and drops to write to the device (under lock;
     * us_nvme_flush_changes) */
    us_key_t        *plist;
    uint32_t         plist_n, plist_cap;
    nv_pend_t       *dlist;          /* keys dropped: their tombstones */
    uint32_t         dlist_n, dlist_cap;
    char            *pbuf;           /* a payload read back for its rewrite */
    /* per namespace (US_NVME_MAX_NS): device bytes of its records, quota */
    uint64_t        *ns_used, *ns_quota;
};

static inline uint64_t seg_off(const us_nvme_t *nv, uint32_t s)
{
    return US_NVME_BLOCK + (uint64_t)s * nv->sb.seg_bytes;
}

/* --- I/O ---------------------------------------------------------------- */

static ucache_status_t io_init(nv_io_t *io, unsigned depth, size_t len)
{
    struct iovec iov;
    int rc;

    io->len = len;
    io->buf = aligned_alloc(US_NVME_BLOCK, len);
    if (io->buf == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    memset(io->buf, 0, len);
    rc = io_uring_queue_init(depth, &io->ring, 0);
    if (rc < 0) {
        UC_ERROR("nvme: io_uring_queue_init(%u) failed: %s", depth, strerror(-rc));
        free(io->buf);
        io->buf = NULL;
        return UCACHE_ERR_UNSUPPORTED;
    }
    iov.iov_base = io->buf;
    iov.iov_len  = len;
    io->fixed = (io_uring_register_buffers(&io->ring, &iov, 1) == 0);
    io->ready = 1;
    return UCACHE_OK;
}

static void io_cleanup(nv_io_t *io)
{
    if (io->ready) {
        io_uring_queue_exit(&io->ring);
    }
    free(io->buf);
}

static int in_buf(const nv_io_t *io, const char *p, uint64_t len)
{
    return io->fixed && (p >= io->buf) && (len <= io->len) &&
           ((uint64_t)(p - io->buf) <= io->len - len);
}

/* Finish a short transfer synchronously (O_DIRECT stays aligned: the
 * kernel returns whole blocks); 0 at the end of the file is an error. */
static int finish_short(int fd, nv_op_t *op, uint64_t done)
{
    ssize_t r;

    while (done < op->len) {
        r = op->write ? pwrite(fd, op->buf + done, op->len - done, (off_t)(op->off + done)) :
                        pread(fd, op->buf + done, op->len - done, (off_t)(op->off + done));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (r == 0) {
            return -EIO;
        }
        done += (uint64_t)r;
    }
    return 0;
}

/* Run @p n transfers through @p io's ring, depth at a time, one submit per
 * batch; each op's res says how it went.  Returns the first error (0). */
static int io_batch(us_nvme_t *nv, nv_io_t *io, nv_op_t *ops, unsigned n)
{
    struct io_uring_cqe *cqe;
    struct io_uring_sqe *sqe;
    unsigned i, k, batch, got;
    int first = 0, rc;

    for (i = 0; i < n; i += batch) {
        batch = n - i;
        batch = (batch > nv->depth) ? nv->depth : batch;
        for (k = 0; k < batch; k++) {
            nv_op_t *op = &ops[i + k];

            sqe = io_uring_get_sqe(&io->ring);
            if (in_buf(io, op->buf, op->len)) {
                if (op->write) {
                    io_uring_prep_write_fixed(sqe, nv->fd, op->buf, (unsigned)op->len,
                                              op->off, 0);
                } else {
                    io_uring_prep_read_fixed(sqe, nv->fd, op->buf, (unsigned)op->len,
                                             op->off, 0);
                }
            } else if (op->write) {
                io_uring_prep_write(sqe, nv->fd, op->buf, (unsigned)op->len, op->off);
            } else {
                io_uring_prep_read(sqe, nv->fd, op->buf, (unsigned)op->len, op->off);
            }
            io_uring_sqe_set_data64(sqe, i + k);
        }
        rc = io_uring_submit_and_wait(&io->ring, batch);
        for (got = 0; got < batch;) {
            if (rc < 0 && rc != -EINTR) {
                /* nothing was submitted: fail what is left of the batch */
                for (k = got; k < batch; k++) {
                    ops[i + k].res = rc;
                }
                break;
            }
            rc = io_uring_wait_cqe(&io->ring, &cqe);
            if (rc == -EINTR) {
                continue;
            }
            if (rc < 0) {
                continue;   /* fails the rest above */
            }
            k = (unsigned)io_uring_cqe_get_data64(cqe);
            if (cqe->res < 0) {
                ops[k].res = cqe->res;
            } else if ((uint64_t)cqe->res < ops[k].len) {
                ops[k].res = finish_short(nv->fd, &ops[k], (uint64_t)cqe->res);
            } else {
                ops[k].res = 0;
            }
            io_uring_cqe_seen(&io->ring, cqe);
            got++;
        }
        for (k = 0; k < batch; k++) {
            first = (first == 0) ? ops[i + k].res : first;
        }
    }
    return first;
}

static int io_one(us_nvme_t *nv, nv_io_t *io, int write, char *buf, uint64_t len,
                  uint64_t off)
{
    nv_op_t op = { .write = write, .buf = buf, .len = len, .off = off };

    return io_batch(nv, io, &op, 1);
}

static nv_io_t *io_get(us_nvme_t *nv)
{
    nv_io_t *io;

    pthread_mutex_lock(&nv->io_lock);
    while (nv->io_free == NULL) {
        pthread_cond_wait(&nv->io_cond, &nv->io_lock);
    }
    io = nv->io_free;
    nv->io_free = io->next;
    pthread_mutex_unlock(&nv->io_lock);
    return io;
}

static void io_put(us_nvme_t *nv, nv_io_t *io)
{
    pthread_mutex_lock(&nv->io_lock);
    io->next = nv->io_free;
    nv->io_free = io;
    pthread_cond_signal(&nv->io_cond);
    pthread_mutex_unlock(&nv->io_lock);
}

/* --- index (lock held) --------------------------------------------------- */

static inline uint64_t key_hash(const us_key_t *k)
{
    return k->lo ^ (k->hi * 0x9E3779B97F4A7C15ull);
}

static uint32_t do_find(const us_nvme_t *nv, const us_key_t *key)
{
    uint32_t i = nv->bucket[key_hash(key) & nv->bmask];

    while ((i != NV_NONE) && ((nv->ent[i].key.hi != key->hi) || (nv->ent[i].key.lo != key->lo))) {
        i = nv->ent[i].hnext;
    }
    return i;
}

static ucache_status_t do_grow(us_nvme_t *nv)
{
    uint32_t cap = nv->ent_cap ? nv->ent_cap * 2 : 1024, i;
    nv_ent_t *e;

    if (nv->ent_cap >= (1u << 31)) {
        return UCACHE_ERR_NO_MEMORY;
    }
    e = realloc(nv->ent, (size_t)cap * sizeof(*e));
    if (e == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    for (i = cap; i-- > nv->ent_cap;) {
        e[i].hnext = nv->ent_free;
        nv->ent_free = i;
    }
    nv->ent     = e;
    nv->ent_cap = cap;
    return UCACHE_OK;
}

static void do_unlink(us_nvme_t *nv, uint32_t i)
{
    nv_ent_t *e = &nv->ent[i];
    nv_seg_t *s = &nv->seg[e->seg];
    uint32_t *pp = &nv->bucket[key_hash(&e->key) & nv->bmask];

    while (*pp != i) {
        pp = &nv->ent[*pp].hnext;
    }
    *pp = e->hnext;
    if (e->sprev != NV_NONE) {
        nv->ent[e->sprev].snext = e->snext;
    } else {
        s->head = e->snext;
    }
    if (e->snext != NV_NONE) {
        nv->ent[e->snext].sprev = e->sprev;
    }
    s->live -= us_nvme_rec_size(e->length);
    nv->ns_used[e->ns] -= us_nvme_rec_size(e->length);
    nv->st.records--;
    nv->st.payload_bytes -= e->length;
    nv->st.used_bytes    -= us_nvme_rec_size(e->length);
    nv->st.pinned        -= e->pinned;
    e->hnext = nv->ent_free;
    nv->ent_free = i;
}

/* Twice the buckets, when the records outnumber them (small chunks: a
 * device of 4 KiB chunks holds 256x the records of one of 1 MiB chunks). */
static void do_rehash(us_nvme_t *nv)
{
    uint64_t n = 2 * (nv->bmask + 1), b;
    uint32_t *nb, i, next;

    if (n > (1ull << 31) || (nb = malloc(n * sizeof(*nb))) == NULL) {
        return;                              /* longer chains, no harm */
    }
    memset(nb, 0xff, n * sizeof(*nb));
    for (b = 0; b <= nv->bmask; b++) {
        for (i = nv->bucket[b]; i != NV_NONE; i = next) {
            next = nv->ent[i].hnext;
            nv->ent[i].hnext = nb[key_hash(&nv->ent[i].key) & (n - 1)];
            nb[key_hash(&nv->ent[i].key) & (n - 1)] = i;
        }
    }
    free(nv->bucket);
    nv->bucket = nb;
    nv->bmask  = n - 1;
}

/* List @p list (@p n of @p *cap_p entries of @p size bytes) with room for
 * one more: doubled when full.  NULL: no memory (@p list unchanged). */
static void *list_room(void *list, uint32_t n, uint32_t *cap_p, size_t size)
{
    uint32_t cap;
    void *l;

    if (n < *cap_p) {
        return list;
    }
    cap = *cap_p ? 2 * *cap_p : 64;
    l   = realloc(list, cap * size);
    if (l != NULL) {
        *cap_p = cap;
    }
    return l;
}

/* Put @p key on the list of pin changes to write (a key may be there twice:
 * the flush looks at each entry as it is then). */
static void plist_add(us_nvme_t *nv, const us_key_t *key)
{
    us_key_t *l = list_room(nv->plist, nv->plist_n, &nv->plist_cap, sizeof(*l));

    if (l == NULL) {
        /* the index keeps the pin (cleaning honours it); a restart finds
         * the device's word */
        nv->st.pin_unwritten++;
        return;
    }
    nv->plist = l;
    nv->plist[nv->plist_n++] = *key;
}

/* Index a record that is on the device; a newer record of the key wins. */
static ucache_status_t do_insert(us_nvme_t *nv, const nv_pend_t *p, uint32_t segno)
{
    uint32_t i = do_find(nv, &p->key), *b;
    nv_seg_t *s = &nv->seg[segno];
    uint8_t want = p->pinned;
    nv_ent_t *e;

    if (i != NV_NONE) {
        if (nv->ent[i].seq > p->seq) {
            return UCACHE_ERR_EXISTS;
        }
        if (nv->ent[i].pinned != nv->ent[i].dev_pinned) {
            want = nv->ent[i].pinned;    /* pinned or unpinned since: kept */
        }
        do_unlink(nv, i);
    }
    if ((nv->ent_free == NV_NONE) && (do_grow(nv) != UCACHE_OK)) {
        return UCACHE_ERR_NO_MEMORY;
    }
    i = nv->ent_free;
    e = &nv->ent[i];
    nv->ent_free = e->hnext;
    e->key    = p->key;
    e->off    = p->off;
    e->seq    = p->seq;
    e->length = p->length;
    e->seg    = segno;
    e->ns     = p->ns;
    e->hot    = p->hot;
    e->pinned = want;
    e->dev_pinned = p->pinned;
    b = &nv->bucket[key_hash(&p->key) & nv->bmask];
    e->hnext = *b;
    *b = i;
    e->sprev = NV_NONE;
    e->snext = s->head;
    if (s->head != NV_NONE) {
        nv->ent[s->head].sprev = i;
    }
    s->head = i;
    s->live += us_nvme_rec_size(p->length);
    nv->ns_used[p->ns] += us_nvme_rec_size(p->length);
    nv->st.records++;
    nv->st.payload_bytes += p->length;
    nv->st.used_bytes    += us_nvme_rec_size(p->length);
    nv->st.pinned        += want;
    if (want != p->pinned) {
        plist_add(nv, &p->key);
    }
    if (nv->st.records > nv->bmask + 1) {
        do_rehash(nv);
    }
    return UCACHE_OK;
}

/* A device error: the record (if any) is dropped; max_errors within
 * US_NVME_ERROR_WINDOW (whatever succeeded in between: a file cut short
 * still takes writes) take the device out of service and forget
 * everything on it. */
static void do_error(us_nvme_t *nv, int err, const char *what)
{
    uint64_t now = uc_time_ns();
    uint32_t s;

    nv->st.errors++;
    if ((nv->err_run == 0) || (now - nv->err_t0 > US_NVME_ERROR_WINDOW)) {
        nv->err_run = 0;
        nv->err_t0  = now;
    }
    if (++nv->err_run < nv->max_errors || !nv->online) {
        UC_WARN("nvme: %s on %s failed: %s (%u errors in %.0f s)", what, nv->path,
                strerror(-err), nv->err_run, (now - nv->err_t0) / 1e9);
        return;
    }
    nv->online = 0;
    for (s = 0; s < nv->sb.nsegs; s++) {
        while (nv->seg[s].head != NV_NONE) {
            do_unlink(nv, nv->seg[s].head);
        }
    }
    UC_ERROR("nvme: %s taken out of service after %u device errors within %.0f s (last: %s "
             "failed: %s); its chunks are read from their origins", nv->path, nv->err_run,
             US_NVME_ERROR_WINDOW / 1e9, what, strerror(-err));
}

/* --- writing ------------------------------------------------------------- */

/* Write out the writer's buffer (one write) and index what it held. */
static int w_flush(us_nvme_t *nv, us_nvme_item_t *items)
{
    uint32_t i;
    int rc;

    if (nv->wused == 0) {
        return 0;
    }
    rc = io_one(nv, &nv->wio, 1, nv->wio.buf, nv->wused, nv->woff);
    pthread_mutex_lock(&nv->lock);
    nv->st.write_submits++;
    nv->seg[nv->cur].fill += nv->wused;
    if (rc != 0) {
        do_error(nv, rc, "a write");
    } else {
        nv->st.write_bytes += nv->wused;
    }
    for (i = 0; i < nv->npend; i++) {
        nv_pend_t *p = &nv->pend[i];
        ucache_status_t st;

        if (p->dropped) {            /* a tombstone: on the device, no entry */
            nv->st.drop_writes += (rc == 0);
            continue;
        }
        nv->ns_used[p->ns] -= us_nvme_rec_size(p->length);   /* indexed below */
        st = ((rc != 0) || !nv->online) ? UCACHE_ERR_IO : do_insert(nv, p, nv->cur);
        if (st == UCACHE_OK) {
            nv->st.writes++;
        }
        if ((p->item != NV_NONE) && (items != NULL)) {
            items[p->item].status = st;
        }
    }
    pthread_mutex_unlock(&nv->lock);
    nv->npend = 0;
    nv->wused = 0;
    return rc;
}

static void w_open_next(us_nvme_t *nv);

/* A record's flags for a chunk pinned or not. */
static inline uint8_t nv_flags(unsigned pinned)
{
    return pinned ? US_NVME_REC_PINNED : 0;
}

/* Put one record (US_NVME_REC_* @p flags) into the writer's buffer
 * (payload copied), making room: a full buffer is written out, a full
 * segment sealed and the next opened. */
static void w_append(us_nvme_t *nv, us_nvme_item_t *items, const us_key_t *key, uint16_t ns,
                     uint8_t flags, uint8_t hot, const void *payload, uint32_t length,
                     uint32_t item)
{
    bool dropped = (flags & US_NVME_REC_DROPPED) != 0;
    uint64_t size = us_nvme_rec_size(length);
    us_nvme_rec_t rec;
    nv_pend_t *p;

    if ((nv->cur == NV_NONE) ||
        (nv->seg[nv->cur].fill + nv->wused + size > nv->sb.seg_bytes)) {
        w_flush(nv, items);
        w_open_next(nv);             /* may append cleaning's records */
    }
    if ((nv->wused + size > nv->wio.len) || (nv->npend == nv->pend_cap)) {
        w_flush(nv, items);
    }
    if (nv->wused == 0) {
        nv->woff = seg_off(nv, nv->cur) + nv->seg[nv->cur].fill;
    }
    memset(&rec, 0, sizeof(rec));
    rec.ns     = ns;
    rec.flags  = flags;
    rec.length = length;
    rec.seg    = nv->cur;
    rec.uuid   = nv->sb.uuid;
    rec.key_hi = key->hi;
    rec.key_lo = key->lo;
    pthread_mutex_lock(&nv->lock);
    nv->ns_used[ns] += dropped ? 0 : size;   /* its quota counts it from now */
    rec.seq    = nv->next_seq++;
    if (nv->seg[nv->cur].first_seq == 0) {
        nv->seg[nv->cur].first_seq = rec.seq;
    }
    pthread_mutex_unlock(&nv->lock);
    if (length > 0) {
        memcpy(nv->wio.buf + nv->wused + US_NVME_REC_HDR, payload, length);
    }
    us_nvme_rec_seal(nv->wio.buf + nv->wused, &rec);
    p = &nv->pend[nv->npend++];
    p->key    = *key;
    p->off    = nv->woff + nv->wused;
    p->seq    = rec.seq;
    p->length = length;
    p->item   = item;
    p->ns     = ns;
    p->pinned = (flags & US_NVME_REC_PINNED) != 0;
    p->hot    = hot;
    p->dropped = dropped;
    nv->wused += size;
}

/* Clean the oldest sealed segment: with @p reinsert, its hot and pinned
 * records (up to the cleaning budget) are read back and appended to the
 * open segment; the rest are dropped. */
static void w_clean(us_nvme_t *nv, int reinsert)
{
    uint32_t v = NV_NONE, s, i, n = 0, k, next;
    uint64_t used = 0, oldest = UINT64_MAX;
    nv_pend_t *keep;
    nv_op_t *ops;
    us_nvme_rec_t rec;

    keep = calloc(nv->clen / US_NVME_BLOCK, sizeof(*keep));
    ops  = calloc(nv->clen / US_NVME_BLOCK, sizeof(*ops));
    pthread_mutex_lock(&nv->lock);
    for (s = 0; s < nv->sb.nsegs; s++) {
        if ((nv->seg[s].state == NV_SEG_SEALED) && (nv->seg[s].first_seq < oldest)) {
            oldest = nv->seg[s].first_seq;
            v = s;
        }
    }
    if (v == NV_NONE) {
        pthread_mutex_unlock(&nv->lock);
        free(keep);
        free(ops);
        return;
    }
    /* the records it keeps stay indexed (and readable: v is not written
     * again before they are) until their copies replace them, so a pin or
     * an unpin meanwhile is not lost; the others go now */
    for (i = nv->seg[v].head; i != NV_NONE; i = next) {
        nv_ent_t *e = &nv->ent[i];
        uint64_t size = us_nvme_rec_size(e->length);

        next = e->snext;
        if (reinsert && (keep != NULL) && (ops != NULL) && (e->hot || e->pinned) &&
            (used + size <= nv->clen)) {
            keep[n].key    = e->key;
            keep[n].off    = e->off;
            keep[n].seq    = e->seq;
            keep[n].length = e->length;
            keep[n].ns     = e->ns;
            keep[n].pinned = e->pinned;
            ops[n].buf = nv->cbuf + used;
            ops[n].len = size;
            ops[n].off = e->off;
            used += size;
            n++;
        } else {
            nv->st.evicted++;
            do_unlink(nv, i);
        }
    }
    nv->seg[v].state     = NV_SEG_FREE;
    nv->seg[v].first_seq = 0;
    nv->seg[v].fill      = 0;
    nv->nfree++;
    pthread_mutex_unlock(&nv->lock);
    /* v is free but only this writer writes, and not before these reads */
    if ((n > 0) && (io_batch(nv, &nv->wio, ops, n) != 0)) {
        pthread_mutex_lock(&nv->lock);
        for (k = 0; k < n; k++) {
            if (ops[k].res != 0) {
                do_error(nv, ops[k].res, "a read (cleaning)");
            }
        }
        pthread_mutex_unlock(&nv->lock);
    }
    for (k = 0; k < n; k++) {
        bool ok = (ops[k].res == 0) &&
                  (us_nvme_rec_parse(ops[k].buf, ops[k].len, &nv->sb, &rec) == UCACHE_OK) &&
                  (rec.seq == keep[k].seq) && (rec.key_hi == keep[k].key.hi) &&
                  (rec.key_lo == keep[k].key.lo) &&
                  us_nvme_payload_ok(&rec, ops[k].buf + US_NVME_REC_HDR);

        pthread_mutex_lock(&nv->lock);
        i = do_find(nv, &keep[k].key);
        if ((i != NV_NONE) && (nv->ent[i].seq != keep[k].seq)) {
            i = NV_NONE;             /* dropped, or written again, meanwhile */
        }
        if ((i != NV_NONE) && ok) {
            keep[k].pinned = nv->ent[i].pinned;         /* as it is now */
            nv->st.reinserted++;
        } else {
            if (i != NV_NONE) {
                do_unlink(nv, i);
            }
            nv->st.evicted++;
            ok = false;
        }
        pthread_mutex_unlock(&nv->lock);
        if (ok) {                    /* its copy replaces it when written */
            w_append(nv, NULL, &keep[k].key, keep[k].ns, nv_flags(keep[k].pinned), 0,
                     ops[k].buf + US_NVME_REC_HDR, keep[k].length, NV_NONE);
        }
    }
    free(keep);
    free(ops);
}

/* Seal the open segment and open a free one; clean if none is left free. */
static void w_open_next(us_nvme_t *nv)
{
    uint32_t s;

    pthread_mutex_lock(&nv->lock);
    if (nv->cur != NV_NONE) {
        nv->seg[nv->cur].state = NV_SEG_SEALED;
    }
    for (s = 0; (s < nv->sb.nsegs) && (nv->seg[s].state != NV_SEG_FREE); s++) {
    }
    /* there is one: every open leaves one free (below) */
    nv->seg[s].state     = NV_SEG_OPEN;
    nv->seg[s].fill      = 0;
    nv->seg[s].first_seq = 0;
    nv->nfree--;
    nv->cur = s;
    pthread_mutex_unlock(&nv->lock);
    if (nv->nfree == 0) {
        w_clean(nv, 1);
    }
}

/* A segment's age (w_quota's order). */
typedef struct nv_age {
    uint64_t first_seq;
    uint32_t seg;
} nv_age_t;

static int age_cmp(const void *a, const void *b)
{
    const nv_age_t *x = a, *y = b;

    return (x->first_seq > y->first_seq) - (x->first_seq < y->first_seq);
}

/* Make room under namespace @p ns's quota for a record of @p size bytes:
 * its own oldest unpinned records are dropped (segments oldest first),
 * down to an eighth of the quota (a segment at most) below it, so that
 * the next writes find room.  False if there is no room (the record is
 * larger than the quota, or pinned ones hold it). */
static bool w_quota(us_nvme_t *nv, uint16_t ns, uint64_t size)
{
    uint64_t q, head, target;
    uint32_t s, n = 0, k, i, next;
    nv_age_t *age;
    bool fits;

    pthread_mutex_lock(&nv->lock);
    q = nv->ns_quota[ns];
    if ((q > 0) && (size <= q) && (nv->ns_used[ns] + size > q) &&
        ((age = malloc(nv->sb.nsegs * sizeof(*age))) != NULL)) {
        head   = (q / 8 < nv->sb.seg_bytes) ? q / 8 : nv->sb.seg_bytes;
        target = (q - size > head) ? q - size - head : q - size;
        for (s = 0; s < nv->sb.nsegs; s++) {
            if (nv->seg[s].head != NV_NONE) {
                age[n].first_seq = nv->seg[s].first_seq;
                age[n++].seg     = s;
            }
        }
        qsort(age, n, sizeof(*age), age_cmp);
        for (k = 0; (k < n) && (nv->ns_used[ns] > target); k++) {
            for (i = nv->seg[age[k].seg].head; (i != NV_NONE) && (nv->ns_used[ns] > target);
                 i = next) {
                next = nv->ent[i].snext;
                if ((nv->ent[i].ns == ns) && !nv->ent[i].pinned) {
                    do_unlink(nv, i);
                    nv->st.quota_evicted++;
                }
            }
        }
        free(age);
    }
    fits = (q == 0) || (nv->ns_used[ns] + size <= q);
    nv->st.quota_refused += !fits;
    pthread_mutex_unlock(&nv->lock);
    return fits;
}

void us_nvme_quota_set(us_nvme_t *nv, uint16_t ns, uint64_t bytes)
{
    if (ns < US_NVME_MAX_NS) {
        pthread_mutex_lock(&nv->lock);
        nv->ns_quota[ns] = bytes;
        pthread_mutex_unlock(&nv->lock);
    }
}

uint64_t us_nvme_ns_used(us_nvme_t *nv, uint16_t ns)
{
    uint64_t used = 0;

    if (ns < US_NVME_MAX_NS) {
        pthread_mutex_lock(&nv->lock);
        used = nv->ns_used[ns];
        pthread_mutex_unlock(&nv->lock);
    }
    return used;
}

ucache_status_t us_nvme_write(us_nvme_t *nv, us_nvme_item_t *items, unsigned n)
{
    ucache_status_t st = UCACHE_OK;
    unsigned i;
    int present;

    pthread_mutex_lock(&nv->wlock);
    for (i = 0; i < n; i++) {
        items[i].status = UCACHE_INPROGRESS;
        pthread_mutex_lock(&nv->lock);
        present = (do_find(nv, &items[i].key) != NV_NONE);
        if (present) {
            nv->st.write_skipped++;
        }
        if (!nv->online) {
            items[i].status = UCACHE_ERR_IO;
        }
        pthread_mutex_unlock(&nv->lock);
        if (items[i].status == UCACHE_ERR_IO) {
            continue;
        }
        if (present) {
            items[i].status = UCACHE_ERR_EXISTS;
        } else if ((items[i].length > nv->sb.max_payload) || (items[i].ns >= US_NVME_MAX_NS)) {
            items[i].status = UCACHE_ERR_INVALID;
        } else if (!w_quota(nv, items[i].ns, us_nvme_rec_size(items[i].length))) {
            items[i].status = UCACHE_ERR_NO_MEMORY;
        } else {
            w_append(nv, items, &items[i].key, items[i].ns, nv_flags(items[i].pinned), 0,
                     items[i].payload, items[i].length, i);
        }
    }
    w_flush(nv, items);
    pthread_mutex_unlock(&nv->wlock);
    for (i = 0; i < n; i++) {
        if ((items[i].status != UCACHE_OK) && (items[i].status != UCACHE_ERR_EXISTS)) {
            st = (items[i].status == UCACHE_INPROGRESS) ? UCACHE_ERR_IO : items[i].status;
            items[i].status = st;
        }
    }
    return st;
}

/* --- reading ------------------------------------------------------------- */

/* The record of @p key to read: its index entry, copied (UCACHE_OK), or
 * UCACHE_ERR_IO (out of service), UCACHE_ERR_NOT_FOUND, or
 * UCACHE_ERR_MSG_TRUNCATED (longer than @p cap). */
static ucache_status_t read_entry(us_nvme_t *nv, const us_key_t *key, size_t cap, nv_ent_t *e)
{
    ucache_status_t st = UCACHE_OK;
    uint32_t i;

    pthread_mutex_lock(&nv->lock);
    if (!nv->online) {
        st = UCACHE_ERR_IO;
    } else if ((i = do_find(nv, key)) == NV_NONE) {
        nv->st.read_misses++;
        st = UCACHE_ERR_NOT_FOUND;
    } else if (nv->ent[i].length > cap) {
        st = UCACHE_ERR_MSG_TRUNCATED;
    } else {
        *e = nv->ent[i];
    }
    pthread_mutex_unlock(&nv->lock);
    return st;
}

/* A read of record @p e into @p buf ended with @p rc (0 or -errno) after
 * @p ns: check it (key, sequence, length, checksums) and copy its payload
 * to @p dst; a record that is not what the index says is a cleaned one
 * (UCACHE_ERR_NOT_FOUND) or a failed device (UCACHE_ERR_IO), a bad
 * checksum drops it (UCACHE_ERR_CORRUPT). */
static ucache_status_t read_check(us_nvme_t *nv, const us_key_t *key, const nv_ent_t *e,
                                  const char *buf, int rc, uint64_t ns, void *dst)
{
    uint64_t size = us_nvme_rec_size(e->length);
    us_nvme_rec_t rec;
    ucache_status_t st = UCACHE_OK;
    uint32_t i;

    if (rc != 0) {
        st = UCACHE_ERR_IO;
    } else if ((us_nvme_rec_parse(buf, size, &nv->sb, &rec) != UCACHE_OK) ||
               (rec.seq != e->seq) || (rec.key_hi != key->hi) || (rec.key_lo != key->lo) ||
               (rec.length != e->length)) {
        st = UCACHE_ERR_STALE;       /* cleaned and written again, or lost: below */
    } else if (!us_nvme_payload_ok(&rec, buf + US_NVME_REC_HDR)) {
        st = UCACHE_ERR_CORRUPT;
    } else {
        memcpy(dst, buf + US_NVME_REC_HDR, e->length);
    }
    pthread_mutex_lock(&nv->lock);
    i = do_find(nv, key);
    if ((i != NV_NONE) && (nv->ent[i].seq != e->seq)) {
        i = NV_NONE;                 /* another record of it since */
    }
    switch (st) {
    case UCACHE_OK:
        nv->st.reads++;
        nv->st.read_bytes += size;
        nv->st.read_ns    += ns;
        if (i != NV_NONE) {
            nv->ent[i].hot = 1;
        }
        break;
    case UCACHE_ERR_STALE:
        if (i == NV_NONE) {          /* its segment was cleaned meanwhile */
            nv->st.stale++;
            st = UCACHE_ERR_NOT_FOUND;
            break;
        }
        /* still indexed, yet not on the device as written (zeroes of a file
         * cut short, blocks lost): the device failed */
        do_unlink(nv, i);
        do_error(nv, -EIO, "a read (the record was not there)");
        st = UCACHE_ERR_IO;
        break;
    case UCACHE_ERR_CORRUPT:
        nv->st.corrupt++;
        UC_WARN("nvme: a record at %llu of %s failed its checksum; dropped",
                (unsigned long long)e->off, nv->path);
        if (i != NV_NONE) {
            do_unlink(nv, i);
        }
        break;
    default:
        if (i != NV_NONE) {
            do_unlink(nv, i);
        }
        do_error(nv, rc, "a read");
        break;
    }
    pthread_mutex_unlock(&nv->lock);
    return st;
}

ucache_status_t us_nvme_read(us_nvme_t *nv, const us_key_t *key, void *dst, size_t cap,
                             size_t *len_p)
{
    ucache_status_t st;
    uint64_t t0;
    nv_ent_t e;
    nv_io_t *io;
    int rc;

    st = read_entry(nv, key, cap, &e);
    if (st != UCACHE_OK) {
        return st;
    }
    io = io_get(nv);
    t0 = uc_time_ns();
    rc = io_one(nv, io, 0, io->buf, us_nvme_rec_size(e.length), e.off);
    st = read_check(nv, key, &e, io->buf, rc, uc_time_ns() - t0, dst);
    io_put(nv, io);
    if (st == UCACHE_OK) {
        *len_p = e.length;
    }
    return st;
}

/* --- asynchronous reads -------------------------------------------------- */

/* One read in flight (or a free slot: nv NULL). */
typedef struct nv_aop {
    us_nvme_t *nv;
    us_key_t   key;
    nv_ent_t   e;
    void      *dst;
    uint64_t   tag, t0;
    uint32_t   next;         /* the free list */
} nv_aop_t;

struct us_nvme_aio {
    nv_io_t   io;            /* a ring and its registered buffer: depth slots */
    size_t    slot;          /* bytes of a slot: the largest record */
    unsigned  depth, inflight, queued;
    uint32_t  free;
    nv_aop_t *op;
};

ucache_status_t us_nvme_aio_create(unsigned depth, uint32_t max_payload, us_nvme_aio_t **aio_p)
{
    us_nvme_aio_t *a = calloc(1, sizeof(*a));
    ucache_status_t st;
    unsigned i;

    if ((a == NULL) || (depth == 0) || (depth > 4096)) {
        free(a);
        return (a == NULL) ? UCACHE_ERR_NO_MEMORY : UCACHE_ERR_INVALID;
    }
    a->slot  = us_nvme_rec_size(max_payload);
    a->depth = depth;
    a->op    = calloc(depth, sizeof(*a->op));
    st = (a->op != NULL) ? io_init(&a->io, depth, a->slot * depth) : UCACHE_ERR_NO_MEMORY;
    if (st != UCACHE_OK) {
        free(a->op);
        free(a);
        return st;
    }
    for (i = 0; i < depth; i++) {
        a->op[i].next = (i + 1 < depth) ? i + 1 : NV_NONE;
    }
    a->free = 0;
    *aio_p  = a;
    return UCACHE_OK;
}

void us_nvme_aio_destroy(us_nvme_aio_t *a)
{
    struct io_uring_cqe *cqe;

    if (a == NULL) {
        return;
    }
    while ((a->inflight > 0) || (a->queued > 0)) {  /* the buffer is the kernel's */
        if (a->queued > 0) {
            io_uring_submit(&a->io.ring);
            a->inflight += a->queued;
            a->queued = 0;
        }
        if (io_uring_wait_cqe(&a->io.ring, &cqe) == 0) {
            io_uring_cqe_seen(&a->io.ring, cqe);
            a->inflight--;
        }
    }
    io_cleanup(&a->io);
    free(a->op);
    free(a);
}

unsigned us_nvme_aio_room(const us_nvme_aio_t *a)
{
    return a->depth - a->inflight - a->queued;
}

unsigned us_nvme_aio_busy(const us_nvme_aio_t *a)
{
    return a->inflight + a->queued;
}

ucache_status_t us_nvme_aio_read(us_nvme_aio_t *a, us_nvme_t *nv, const us_key_t *key,
                                 void *dst, size_t cap, uint64_t tag)
{
    struct io_uring_sqe *sqe;
    ucache_status_t st;
    nv_aop_t *op;
    uint32_t i = a->free;
    char *buf;

    if (i == NV_NONE) {
        return UCACHE_ERR_BUSY;
    }
    op = &a->op[i];
    st = read_entry(nv, key, cap, &op->e);
    if ((st == UCACHE_OK) && (us_nvme_rec_size(op->e.length) > a->slot)) {
        st = UCACHE_ERR_MSG_TRUNCATED;
    }
    if (st != UCACHE_OK) {
        return st;
    }
    sqe = io_uring_get_sqe(&a->io.ring);
    if (sqe == NULL) {
        return UCACHE_ERR_BUSY;
    }
    a->free  = op->next;
    op->nv   = nv;
    op->key  = *key;
    op->dst  = dst;
    op->tag  = tag;
    op->t0   = uc_time_ns();
    buf      = a->io.buf + (size_t)i * a->slot;
    if (a->io.fixed) {
        io_uring_prep_read_fixed(sqe, nv->fd, buf, (unsigned)us_nvme_rec_size(op->e.length),
                                 op->e.off, 0);
    } else {
        io_uring_prep_read(sqe, nv->fd, buf, (unsigned)us_nvme_rec_size(op->e.length),
                           op->e.off);
    }
    io_uring_sqe_set_data64(sqe, i);
    a->queued++;
    return UCACHE_OK;
}

unsigned us_nvme_aio_reap(us_nvme_aio_t *a, uint64_t timeout_ns, us_nvme_done_fn fn, void *arg)
{
    struct __kernel_timespec ts = { (long long)(timeout_ns / 1000000000ull),
                                    (long long)(timeout_ns % 1000000000ull) };
    struct io_uring_cqe *cqe;
    unsigned n = 0;
    nv_op_t sop;
    nv_aop_t *op;
    uint32_t i;
    int rc;

    if (a->queued > 0) {
        rc = io_uring_submit(&a->io.ring);
        if (rc >= 0) {
            a->inflight += (unsigned)rc;
            a->queued   -= ((unsigned)rc < a->queued) ? (unsigned)rc : a->queued;
        }
    }
    if ((a->inflight > 0) && (io_uring_peek_cqe(&a->io.ring, &cqe) != 0) && (timeout_ns > 0)) {
        (void)io_uring_wait_cqe_timeout(&a->io.ring, &cqe, &ts);
    }
    while ((a->inflight > 0) && (io_uring_peek_cqe(&a->io.ring, &cqe) == 0)) {
        i  = (uint32_t)io_uring_cqe_get_data64(cqe);
        rc = cqe->res;
        io_uring_cqe_seen(&a->io.ring, cqe);
        a->inflight--;
        if (i >= a->depth) {
            continue;                /* not ours: never happens */
        }
        op = &a->op[i];
        sop.write = 0;
        sop.buf   = a->io.buf + (size_t)i * a->slot;
        sop.len   = us_nvme_rec_size(op->e.length);
        sop.off   = op->e.off;
        if (rc >= 0) {
            rc = ((uint64_t)rc < sop.len) ? finish_short(op->nv->fd, &sop, (uint64_t)rc) : 0;
        }
        fn(arg, op->tag, read_check(op->nv, &op->key, &op->e, sop.buf, rc,
                                    uc_time_ns() - op->t0, op->dst));
        op->nv   = NULL;
        op->next = a->free;
        a->free  = i;
        n++;
    }
    return n;
}

bool us_nvme_lookup(us_nvme_t *nv, const us_key_t *key, uint32_t *length_p, uint16_t *ns_p)
{
    uint32_t i;

    pthread_mutex_lock(&nv->lock);
    i = do_find(nv, key);
    if (i != NV_NONE) {
        if (length_p != NULL) {
            *length_p = nv->ent[i].length;
        }
        if (ns_p != NULL) {
            *ns_p = nv->ent[i].ns;
        }
    }
    pthread_mutex_unlock(&nv->lock);
    return i != NV_NONE;
}

ucache_status_t us_nvme_pin(us_nvme_t *nv, const us_key_t *key, int pin)
{
    nv_ent_t *e;
    uint32_t i;

    pthread_mutex_lock(&nv->lock);
    i = do_find(nv, key);
    if (i != NV_NONE) {
        e = &nv->ent[i];
        if ((e->pinned == e->dev_pinned) && (e->pinned != !!pin)) {
            plist_add(nv, key);
        }
        nv->st.pinned += (uint64_t)(!!pin) - e->pinned;
        e->pinned = !!pin;
    }
    pthread_mutex_unlock(&nv->lock);
    return (i != NV_NONE) ? UCACHE_OK : UCACHE_ERR_NOT_FOUND;
}

bool us_nvme_pinned(us_nvme_t *nv, const us_key_t *key)
{
    uint32_t i;
    bool pinned;

    pthread_mutex_lock(&nv->lock);
    i = do_find(nv, key);
    pinned = (i != NV_NONE) && nv->ent[i].pinned;
    pthread_mutex_unlock(&nv->lock);
    return pinned;
}

unsigned us_nvme_flush_changes(us_nvme_t *nv, unsigned max)
{
    unsigned done = 0;
    ucache_status_t st;
    nv_pend_t drop;
    us_key_t key;
    nv_ent_t e;
    size_t got;
    uint32_t i;

    pthread_mutex_lock(&nv->wlock);
    while (done < max) {             /* tombstones: a block each, no read */
        pthread_mutex_lock(&nv->lock);
        if ((nv->dlist_n == 0) || !nv->online) {
            pthread_mutex_unlock(&nv->lock);
            break;
        }
        drop = nv->dlist[--nv->dlist_n];
        /* written again since its drop: the newer record wins a restart
         * anyway, and a tombstone now would cover it */
        i = do_find(nv, &drop.key);
        pthread_mutex_unlock(&nv->lock);
        if (i == NV_NONE) {
            w_append(nv, NULL, &drop.key, drop.ns, US_NVME_REC_DROPPED, 0, NULL, 0, NV_NONE);
        }
        done++;
    }
    while (done < max) {
        pthread_mutex_lock(&nv->lock);
        if ((nv->plist_n == 0) || !nv->online) {
            pthread_mutex_unlock(&nv->lock);
            break;
        }
        key = nv->plist[--nv->plist_n];
        i   = do_find(nv, &key);
        if ((i == NV_NONE) || (nv->ent[i].pinned == nv->ent[i].dev_pinned)) {
            pthread_mutex_unlock(&nv->lock);
            continue;                /* dropped, or changed back */
        }
        e = nv->ent[i];
        pthread_mutex_unlock(&nv->lock);
        if ((nv->pbuf == NULL) && ((nv->pbuf = malloc(nv->sb.max_payload)) == NULL)) {
            pthread_mutex_lock(&nv->lock);
            plist_add(nv, &key);     /* next time */
            pthread_mutex_unlock(&nv->lock);
            break;
        }
        /* the record read back (verified; a bad one is dropped), written
         * again with the flag: the newer record is the one a restart takes */
        st = us_nvme_read(nv, &key, nv->pbuf, nv->sb.max_payload, &got);
        if ((st == UCACHE_OK) && (got == e.length)) {
            pthread_mutex_lock(&nv->lock);
            i = do_find(nv, &key);
            e.pinned = (i != NV_NONE) ? nv->ent[i].pinned : e.pinned;
            nv->st.pin_writes++;
            pthread_mutex_unlock(&nv->lock);
            w_append(nv, NULL, &key, e.ns, nv_flags(e.pinned), e.hot, nv->pbuf, e.length,
                     NV_NONE);
        }
        done++;
    }
    w_flush(nv, NULL);
    pthread_mutex_unlock(&nv->wlock);
    return done;
}

/* Put @p key (of namespace @p ns) on the list of tombstones to write. */
static void dlist_add(us_nvme_t *nv, const us_key_t *key, uint16_t ns)
{
    nv_pend_t *l = list_room(nv->dlist, nv->dlist_n, &nv->dlist_cap, sizeof(*l));

    if (l == NULL) {
        nv->st.drop_unwritten++;     /* gone from the index; a restart finds it */
        return;
    }
    nv->dlist = l;
    memset(&nv->dlist[nv->dlist_n], 0, sizeof(*nv->dlist));
    nv->dlist[nv->dlist_n].key = *key;
    nv->dlist[nv->dlist_n].ns  = ns;
    nv->dlist_n++;
}

ucache_status_t us_nvme_drop(us_nvme_t *nv, const us_key_t *key)
{
    uint32_t i;

    pthread_mutex_lock(&nv->lock);
    i = do_find(nv, key);
    if (i != NV_NONE) {
        dlist_add(nv, key, nv->ent[i].ns);
        do_unlink(nv, i);
    }
    pthread_mutex_unlock(&nv->lock);
    return (i != NV_NONE) ? UCACHE_OK : UCACHE_ERR_NOT_FOUND;
}

bool us_nvme_online(us_nvme_t *nv)
{
    bool on;

    pthread_mutex_lock(&nv->lock);
    on = nv->online;
    pthread_mutex_unlock(&nv->lock);
    return on;
}

const char *us_nvme_path(const us_nvme_t *nv)
{
    return nv->path;
}

void us_nvme_stats(us_nvme_t *nv, us_nvme_stats_t *out)
{
    pthread_mutex_lock(&nv->lock);
    *out = nv->st;
    out->dev_bytes = nv->sb.dev_bytes;
    out->seg_bytes = nv->sb.seg_bytes;
    out->segs      = nv->sb.nsegs;
    out->segs_free = nv->nfree;
    out->online    = nv->online;
    pthread_mutex_unlock(&nv->lock);
}

/* --- start-up: format or scan -------------------------------------------- */

static ucache_status_t nv_format(us_nvme_t *nv, uint64_t bytes, uint64_t seg_bytes,
                                 uint32_t max_payload)
{
    us_nvme_super_t *sb = (us_nvme_super_t *)nv->wio.buf;
    int rc;

    memset(nv->wio.buf, 0, US_NVME_BLOCK);
    sb->magic       = US_NVME_SUPER_MAGIC;
    sb->format      = US_NVME_FORMAT;
    sb->block       = US_NVME_BLOCK;
    if (getrandom(&sb->uuid, sizeof(sb->uuid), 0) != sizeof(sb->uuid)) {
        sb->uuid = uc_time_ns();
    }
    sb->dev_bytes   = bytes;
    sb->seg_bytes   = seg_bytes;
    sb->nsegs       = (bytes - US_NVME_BLOCK) / seg_bytes;
    sb->max_payload = max_payload;
    us_nvme_super_seal(sb);
    nv->sb = *sb;
    rc = io_one(nv, &nv->wio, 1, nv->wio.buf, US_NVME_BLOCK, 0);
    if ((rc == 0) && (fdatasync(nv->fd) != 0)) {
        rc = -errno;
    }
    if (rc != 0) {
        UC_ERROR("nvme: cannot write the superblock of %s: %s", nv->path, strerror(-rc));
        return UCACHE_ERR_IO;
    }
    nv->next_seq = 1;
    UC_INFO("nvme: formatted %s: %llu segments of %llu MiB", nv->path,
            (unsigned long long)sb->nsegs, (unsigned long long)(seg_bytes >> 20));
    return UCACHE_OK;
}

/* One segment's walk through its records. */
typedef struct nv_cursor {
    uint32_t      seg;
    int           trailer;   /* the next read is the record's last block */
    uint64_t      pos;       /* from the segment's start */
    uint64_t      last_seq;
    us_nvme_rec_t rec;
} nv_cursor_t;

/* A tombstone found by the scan: the key's older records are not taken
 * (those indexed already leave; @p tomb remembers it for the others). */
static void nv_scan_tomb(us_nvme_t *nv, us_keymap_t *tomb, const nv_pend_t *p)
{
    uint64_t seq;
    uint32_t i = do_find(nv, &p->key);

    if ((i != NV_NONE) && (nv->ent[i].seq < p->seq)) {
        do_unlink(nv, i);
        nv->st.rebuild_dropped++;
    }
    if (!us_keymap_get(tomb, &p->key, &seq) || (seq < p->seq)) {
        if (us_keymap_put(tomb, &p->key, p->seq) != UCACHE_OK) {
            UC_WARN("nvme: %s: no memory for a tombstone: a chunk an admin evicted may be "
                    "served again", nv->path);
        }
    }
    nv->st.rebuild_tombstones++;
}

/* The cursor's read answered: take the record, or end its segment. */
static bool nv_scan_step(us_nvme_t *nv, us_keymap_t *tomb, nv_cursor_t *c, const char *blk)
{
    uint64_t size, dead;
    nv_pend_t p;

    if (!c->trailer) {
        if ((us_nvme_rec_parse(blk, US_NVME_BLOCK, &nv->sb, &c->rec) != UCACHE_OK) ||
            (c->rec.seg != c->seg) || (c->rec.seq <= c->last_seq) ||
            (c->pos + us_nvme_rec_size(c->rec.length) > nv->sb.seg_bytes)) {
            return false;            /* the end of what this segment holds */
        }
        if (us_nvme_rec_size(c->rec.length) > US_NVME_BLOCK) {
            c->trailer = 1;
            return true;
        }
    }
    c->trailer = 0;
    if (!us_nvme_trailer_ok(blk, &c->rec)) {
        nv->st.rebuild_dropped++;    /* torn: the write did not reach its end */
        return false;
    }
    size = us_nvme_rec_size(c->rec.length);
    memset(&p, 0, sizeof(p));
    p.key.hi = c->rec.key_hi;
    p.key.lo = c->rec.key_lo;
    p.off    = seg_off(nv, c->seg) + c->pos;
    p.seq    = c->rec.seq;
    p.length = c->rec.length;
    p.ns     = c->rec.ns;
    p.pinned = (c->rec.flags & US_NVME_REC_PINNED) != 0;
    if (nv->seg[c->seg].first_seq == 0) {
        nv->seg[c->seg].first_seq = p.seq;
    }
    if (c->rec.flags & US_NVME_REC_DROPPED) {
        nv_scan_tomb(nv, tomb, &p);
    } else if ((!us_keymap_get(tomb, &p.key, &dead) || (dead < p.seq)) &&
               (do_insert(nv, &p, c->seg) == UCACHE_OK)) {
        nv->st.rebuilt++;
    } else {
        nv->st.rebuild_dropped++;    /* a newer record or tombstone was seen */
    }
    nv->next_seq = (p.seq >= nv->next_seq) ? p.seq + 1 : nv->next_seq;
    c->last_seq = p.seq;
    c->pos     += size;
    nv->seg[c->seg].fill = c->pos;
    return c->pos + US_NVME_BLOCK <= nv->sb.seg_bytes;
}

/* Rebuild the index: every segment's records, followed header to header;
 * one read in flight per segment, `depth` segments at a time. */
static ucache_status_t nv_scan(us_nvme_t *nv)
{
    uint64_t t0 = uc_time_ns(), n = nv->sb.nsegs, first, nact, k;
    nv_cursor_t *cur = calloc(nv->depth, sizeof(*cur));
    nv_op_t *ops = calloc(nv->depth, sizeof(*ops));
    us_keymap_t tomb;                /* key -> its newest tombstone's sequence */
    uint32_t s;

    if ((cur == NULL) || (ops == NULL)) {
        free(cur);
        free(ops);
        return UCACHE_ERR_NO_MEMORY;
    }
    nv->next_seq = 1;
    us_keymap_init(&tomb);
    for (first = 0; first < n; first += nv->depth) {
        nact = ((n - first) < nv->depth) ? n - first : nv->depth;
        memset(cur, 0, nact * sizeof(*cur));
        for (k = 0; k < nact; k++) {
            cur[k].seg = (uint32_t)(first + k);
        }
        while (nact > 0) {
            for (k = 0; k < nact; k++) {
                ops[k].write = 0;
                ops[k].res   = 0;
                ops[k].buf   = nv->wio.buf + k * US_NVME_BLOCK;
                ops[k].len   = US_NVME_BLOCK;
                ops[k].off   = seg_off(nv, cur[k].seg) + cur[k].pos +
                               (cur[k].trailer ?
                                    us_nvme_rec_size(cur[k].rec.length) - US_NVME_BLOCK : 0);
            }
            if (io_batch(nv, &nv->wio, ops, (unsigned)nact) != 0) {
                for (k = 0; (k < nact) && (ops[k].res == 0); k++) {
                }
                UC_ERROR("nvme: scanning %s: a read at %llu failed: %s", nv->path,
                         (unsigned long long)ops[k].off, strerror(-ops[k].res));
                free(cur);
                free(ops);
                us_keymap_cleanup(&tomb);
                return UCACHE_ERR_IO;
            }
            nv->st.rebuild_bytes += nact * US_NVME_BLOCK;
            /* from the end, so that a finished cursor's place can take the
             * last one (already stepped) and its read's buffer with it */
            for (k = nact; k-- > 0;) {
                if (!nv_scan_step(nv, &tomb, &cur[k], ops[k].buf)) {
                    cur[k] = cur[--nact];
                }
            }
        }
    }
    for (s = 0; s < n; s++) {
        nv->seg[s].state = (nv->seg[s].first_seq != 0) ? NV_SEG_SEALED : NV_SEG_FREE;
        nv->nfree += (nv->seg[s].state == NV_SEG_FREE);
    }
    nv->st.rebuild_ns = uc_time_ns() - t0;
    free(cur);
    free(ops);
    us_keymap_cleanup(&tomb);
    UC_INFO("nvme: %s: %llu chunks (%llu MiB) found in %.3f s (%llu MiB of headers read, "
            "%llu records not taken)", nv->path, (unsigned long long)nv->st.records,
            (unsigned long long)(nv->st.payload_bytes >> 20), nv->st.rebuild_ns / 1e9,
            (unsigned long long)(nv->st.rebuild_bytes >> 20),
            (unsigned long long)nv->st.rebuild_dropped);
    return UCACHE_OK;
}

/* Bytes of the file or block device @p fd. */
static ucache_status_t nv_size(us_nvme_t *nv, uint64_t *bytes_p)
{
    struct stat stb;
    uint64_t b;

    if (fstat(nv->fd, &stb) != 0) {
        UC_ERROR("nvme: stat of %s: %m", nv->path);
        return UCACHE_ERR_IO;
    }
    if (S_ISBLK(stb.st_mode)) {
        if (ioctl(nv->fd, BLKGETSIZE64, &b) != 0) {
            UC_ERROR("nvme: size of %s: %m", nv->path);
            return UCACHE_ERR_IO;
        }
    } else if (S_ISREG(stb.st_mode)) {
        b = (uint64_t)stb.st_size;
    } else {
        UC_ERROR("nvme: %s is neither a block device nor a file", nv->path);
        return UCACHE_ERR_INVALID;
    }
    *bytes_p = b;
    return UCACHE_OK;
}

ucache_status_t us_nvme_open(const us_nvme_params_t *p, us_nvme_t **nv_p)
{
    uint64_t dev, bytes, seg;
    us_nvme_super_t sb;
    ucache_status_t st;
    us_nvme_t *nv;
    unsigned i;
    int rc;

    if ((p == NULL) || (p->path == NULL) || (p->max_payload == 0) ||
        (p->max_payload > US_MAX_PAYLOAD)) {
        return UCACHE_ERR_INVALID;
    }
    nv = calloc(1, sizeof(*nv));
    if (nv == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    nv->fd         = -1;
    nv->path       = strdup(p->path);
    nv->depth      = p->depth ? p->depth : 64;
    nv->max_errors = p->max_errors ? p->max_errors : US_NVME_MAX_ERRORS;
    nv->nios       = p->contexts ? p->contexts : 4;
    nv->cur        = NV_NONE;
    nv->online     = 1;
    nv->ent_free   = NV_NONE;
    pthread_mutex_init(&nv->lock, NULL);
    pthread_mutex_init(&nv->io_lock, NULL);
    pthread_mutex_init(&nv->wlock, NULL);
    pthread_cond_init(&nv->io_cond, NULL);
    nv->fd = open(p->path, O_RDWR | O_DIRECT | O_CLOEXEC);
    if ((nv->path == NULL) || (nv->fd < 0)) {
        UC_ERROR("nvme: cannot open %s O_DIRECT: %m", p->path);
        st = UCACHE_ERR_IO;
        goto err;
    }
    st = nv_size(nv, &dev);
    if (st != UCACHE_OK) {
        goto err;
    }
    bytes = (p->bytes ? p->bytes : dev) & ~(uint64_t)(US_NVME_BLOCK - 1);
    seg   = p->seg_bytes ? p->seg_bytes : US_NVME_SEG_DEFAULT;
    while ((seg > (1ull << 20)) && (bytes > US_NVME_BLOCK) &&
           ((bytes - US_NVME_BLOCK) / seg < 8)) {
        seg /= 2;                    /* a small device: 8 segments at least */
    }
    seg &= ~(uint64_t)(US_NVME_BLOCK - 1);
    if ((bytes > dev) || (seg < 2 * us_nvme_rec_size(p->max_payload)) ||
        (bytes < US_NVME_BLOCK + 3 * seg)) {
        UC_ERROR("nvme: %s: %llu bytes of %llu cannot hold 3 segments of %llu bytes, each "
                 "of 2 chunks of %u bytes (a file must be preallocated: fallocate -l SIZE)",
                 p->path, (unsigned long long)bytes, (unsigned long long)dev,
                 (unsigned long long)seg, p->max_payload);
        st = UCACHE_ERR_INVALID;
        goto err;
    }
    nv->clen = (seg / 2 < NV_CLEAN) ? seg / 2 : NV_CLEAN;
    nv->cbuf = aligned_alloc(US_NVME_BLOCK, nv->clen);
    nv->pend_cap = NV_WBUF / US_NVME_BLOCK;
    nv->pend = calloc(nv->pend_cap, sizeof(*nv->pend));
    nv->ns_used  = calloc(US_NVME_MAX_NS, sizeof(*nv->ns_used));
    nv->ns_quota = calloc(US_NVME_MAX_NS, sizeof(*nv->ns_quota));
    st = UCACHE_ERR_NO_MEMORY;
    if ((nv->cbuf == NULL) || (nv->pend == NULL) || (nv->ns_used == NULL) ||
        (nv->ns_quota == NULL)) {
        goto err;
    }
    st = io_init(&nv->wio, nv->depth,
                 (us_nvme_rec_size(p->max_payload) > NV_WBUF) ?
                     us_nvme_rec_size(p->max_payload) : NV_WBUF);
    if (st != UCACHE_OK) {
        goto err;
    }
    nv->ios = calloc(nv->nios, sizeof(*nv->ios));
    if (nv->ios == NULL) {
        st = UCACHE_ERR_NO_MEMORY;
        goto err;
    }
    for (i = 0; i < nv->nios; i++) {
        st = io_init(&nv->ios[i], 8, us_nvme_rec_size(p->max_payload));
        if (st != UCACHE_OK) {
            goto err;
        }
        nv->ios[i].next = nv->io_free;
        nv->io_free = &nv->ios[i];
    }
    rc = io_one(nv, &nv->wio, 0, nv->wio.buf, US_NVME_BLOCK, 0);
    if (rc != 0) {
        UC_ERROR("nvme: cannot read %s: %s", p->path, strerror(-rc));
        st = UCACHE_ERR_IO;
        goto err;
    }
    st = us_nvme_super_parse(nv->wio.buf, US_NVME_BLOCK, dev, &sb);
    if ((st == UCACHE_OK) && (sb.dev_bytes == bytes) && (sb.seg_bytes == seg) &&
        (sb.max_payload == p->max_payload)) {
        nv->sb = sb;
    } else {
        if (st == UCACHE_OK) {
            UC_WARN("nvme: %s was formatted for %llu bytes in %llu-byte segments and chunks "
                    "of up to %u bytes; formatting it again (what it held is dropped)",
                    p->path, (unsigned long long)sb.dev_bytes,
                    (unsigned long long)sb.seg_bytes, sb.max_payload);
        } else if (st == UCACHE_ERR_CORRUPT) {
            UC_WARN("nvme: the superblock of %s is damaged; formatting it again", p->path);
        }
        st = nv_format(nv, bytes, seg, p->max_payload);
        if (st != UCACHE_OK) {
            goto err;
        }
    }
    nv->seg = calloc(nv->sb.nsegs, sizeof(*nv->seg));
    st = UCACHE_ERR_NO_MEMORY;
    for (nv->bmask = 1024; nv->bmask < nv->sb.dev_bytes / (256 * 1024); nv->bmask <<= 1) {
    }
    nv->bucket = malloc(nv->bmask * sizeof(*nv->bucket));
    if ((nv->seg == NULL) || (nv->bucket == NULL)) {
        goto err;
    }
    memset(nv->bucket, 0xff, nv->bmask * sizeof(*nv->bucket));
    nv->bmask--;
    for (i = 0; i < nv->sb.nsegs; i++) {
        nv->seg[i].head = NV_NONE;
    }
    st = nv_scan(nv);
    if (st != UCACHE_OK) {
        goto err;
    }
    if (nv->nfree == 0) {            /* full: the oldest goes, to open one */
        w_clean(nv, 0);
    }
    *nv_p = nv;
    return UCACHE_OK;

err:
    us_nvme_close(nv);
    return st;
}

void us_nvme_close(us_nvme_t *nv)
{
    unsigned i;

    if (nv == NULL) {
        return;
    }
    for (i = 0; (nv->ios != NULL) && (i < nv->nios); i++) {
        io_cleanup(&nv->ios[i]);
    }
    io_cleanup(&nv->wio);
    if (nv->fd >= 0) {
        close(nv->fd);
    }
    free(nv->ios);
    free(nv->ent);
    free(nv->bucket);
    free(nv->seg);
    free(nv->pend);
    free(nv->cbuf);
    free(nv->plist);
    free(nv->dlist);
    free(nv->pbuf);
    free(nv->ns_used);
    free(nv->ns_quota);
    free(nv->path);
    pthread_mutex_destroy(&nv->lock);
    pthread_mutex_destroy(&nv->io_lock);
    pthread_mutex_destroy(&nv->wlock);
    pthread_cond_destroy(&nv->io_cond);
    free(nv);
}
