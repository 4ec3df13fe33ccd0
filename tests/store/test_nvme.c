/*
 * test_nvme.c - the NVMe tier (store/nvme.c) over a preallocated file:
 * bytes back exact, the index rebuilt by a restart's scan, a corrupted
 * record detected and a torn one not taken, cleaning that keeps the hot
 * records through a scan, a device that fails taken out of service, and
 * readers racing the writer.  The file stands in for a device (O_DIRECT,
 * io_uring); this machine has no NVMe.
 */
#include "store/nvme.h"
#include "tests/store/store_util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SEG (1ull * MiB)

static char nv_path[256];

/* A fresh preallocated file of @p bytes. */
static void nv_file(uint64_t bytes)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    int fd;

    snprintf(nv_path, sizeof(nv_path), "%s/ucache-nvme-test-%d", dir, (int)getpid());
    unlink(nv_path);
    fd = open(nv_path, O_RDWR | O_CREAT | O_EXCL, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(posix_fallocate(fd, 0, (off_t)bytes) == 0);
    close(fd);
}

static us_nvme_t *nv_open(uint32_t max_payload, unsigned max_errors)
{
    us_nvme_params_t p = { .path = nv_path, .seg_bytes = SEG, .max_payload = max_payload,
                           .max_errors = max_errors };
    us_nvme_t *nv = NULL;

    CU_ASSERT_EQUAL_FATAL(us_nvme_open(&p, &nv), UCACHE_OK);
    return nv;
}

/* Write chunks [first, first + n) of @p len bytes (len 0: id-dependent). */
static void nv_put(us_nvme_t *nv, uint64_t first, unsigned n, uint32_t len)
{
    us_nvme_item_t it[16];
    uint8_t *buf[16];
    unsigned i, k, m;

    for (i = 0; i < n; i += m) {
        m = (n - i < 16) ? n - i : 16;
        for (k = 0; k < m; k++) {
            uint32_t l = len ? len : (uint32_t)(1 + (first + i + k) * 7919 % (200 * KiB));

            buf[k] = malloc(l);
            fill_pattern(buf[k], l, first + i + k);
            memset(&it[k], 0, sizeof(it[k]));
            it[k].key     = key_of(first + i + k);
            it[k].payload = buf[k];
            it[k].length  = l;
            it[k].ns      = 3;
        }
        CU_ASSERT_EQUAL(us_nvme_write(nv, it, m), UCACHE_OK);
        for (k = 0; k < m; k++) {
            CU_ASSERT_EQUAL(it[k].status, UCACHE_OK);
            free(buf[k]);
        }
    }
}

/* 0: read exact; 1: not there; 2: wrong bytes; 3: another error. */
static int nv_get(us_nvme_t *nv, uint64_t id, uint32_t len)
{
    uint32_t l = len ? len : (uint32_t)(1 + id * 7919 % (200 * KiB));
    uint8_t *buf = malloc(256 * KiB);
    ucache_status_t st;
    size_t got = 0;
    int r;

    us_key_t k = key_of(id);
    st = us_nvme_read(nv, &k, buf, 256 * KiB, &got);
    r = (st == UCACHE_ERR_NOT_FOUND) ? 1 :
        (st != UCACHE_OK) ? 3 :
        ((got != l) || pattern_bad(buf, l, id)) ? 2 : 0;
    free(buf);
    return r;
}

static void test_nvme_basic(void)
{
    us_nvme_stats_t st;
    us_nvme_item_t it;
    us_nvme_t *nv;
    us_key_t k;
    uint32_t len;
    uint16_t ns;
    uint8_t b[100];
    size_t got;
    unsigned i, bad = 0;

    nv_file(32 * MiB);
    nv = nv_open(256 * KiB, 0);
    nv_put(nv, 0, 100, 0);
    for (i = 0; i < 100; i++) {
        bad += (nv_get(nv, i, 0) != 0);
    }
    CU_ASSERT_EQUAL(bad, 0);
    k = key_of(5);
    CU_ASSERT(us_nvme_lookup(nv, &k, &len, &ns));
    CU_ASSERT_EQUAL(len, 1 + 5 * 7919 % (200 * KiB));
    CU_ASSERT_EQUAL(ns, 3);
    k = key_of(1000);
    CU_ASSERT(!us_nvme_lookup(nv, &k, NULL, NULL));
    CU_ASSERT_EQUAL(us_nvme_read(nv, &k, b, sizeof(b), &got), UCACHE_ERR_NOT_FOUND);
    k = key_of(7);                   /* 1 + 7 * 7919 bytes do not fit 100 */
    CU_ASSERT_EQUAL(us_nvme_read(nv, &k, b, sizeof(b), &got), UCACHE_ERR_MSG_TRUNCATED);
    /* a chunk on the device already costs nothing; one too large is refused */
    memset(&it, 0, sizeof(it));
    it.key = key_of(5);
    it.payload = b;
    it.length = sizeof(b);
    CU_ASSERT_EQUAL(us_nvme_write(nv, &it, 1), UCACHE_OK);
    CU_ASSERT_EQUAL(it.status, UCACHE_ERR_EXISTS);
    it.key = key_of(2000);
    it.length = 256 * KiB + 1;
    CU_ASSERT_EQUAL(us_nvme_write(nv, &it, 1), UCACHE_ERR_INVALID);
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.records, 100);
    CU_ASSERT_EQUAL(st.writes, 100);
    CU_ASSERT_EQUAL(st.write_skipped, 1);
    CU_ASSERT_EQUAL(st.reads, 100);
    CU_ASSERT(st.write_submits < 100 / 4);    /* records go in batches */
    CU_ASSERT_EQUAL(st.online, 1);
    CU_ASSERT_EQUAL(st.errors, 0);
    us_nvme_close(nv);
    unlink(nv_path);
}

static void test_nvme_rebuild(void)
{
    us_nvme_params_t p = { .path = nv_path, .seg_bytes = 2 * SEG, .max_payload = 256 * KiB };
    us_nvme_stats_t st;
    us_nvme_t *nv;
    unsigned i, bad = 0;

    nv_file(32 * MiB);
    nv = nv_open(256 * KiB, 0);
    nv_put(nv, 0, 120, 0);
    us_nvme_close(nv);
    nv = nv_open(256 * KiB, 0);      /* a restart: everything found again */
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.rebuilt, 120);
    CU_ASSERT_EQUAL(st.records, 120);
    CU_ASSERT_EQUAL(st.rebuild_dropped, 0);
    for (i = 0; i < 120; i++) {
        bad += (nv_get(nv, i, 0) != 0);
    }
    CU_ASSERT_EQUAL(bad, 0);
    nv_put(nv, 120, 30, 0);          /* appends after what was there */
    us_nvme_close(nv);
    nv = nv_open(256 * KiB, 0);
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.records, 150);
    for (i = 0; i < 150; i++) {
        bad += (nv_get(nv, i, 0) != 0);
    }
    CU_ASSERT_EQUAL(bad, 0);
    us_nvme_close(nv);
    /* another geometry: formatted again, nothing older taken */
    nv = NULL;
    CU_ASSERT_EQUAL_FATAL(us_nvme_open(&p, &nv), UCACHE_OK);
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.records, 0);
    CU_ASSERT_EQUAL(nv_get(nv, 3, 0), 1);
    us_nvme_close(nv);
    unlink(nv_path);
}

/* The device offset of chunk @p id's record, walking the file as the scan
 * does (0: not found). */
static uint64_t rec_off(uint64_t id, uint32_t *len_p)
{
    us_key_t k = key_of(id);
    uint8_t blk[US_NVME_BLOCK];
    us_nvme_super_t sb;
    us_nvme_rec_t rec;
    uint64_t s, pos;
    int fd = open(nv_path, O_RDONLY);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(pread(fd, blk, sizeof(blk), 0) == sizeof(blk));
    CU_ASSERT_EQUAL_FATAL(us_nvme_super_parse(blk, sizeof(blk), 1ull << 40, &sb), UCACHE_OK);
    for (s = 0; s < sb.nsegs; s++) {
        for (pos = 0; pos + US_NVME_BLOCK <= sb.seg_bytes;
             pos += us_nvme_rec_size(rec.length)) {
            uint64_t off = US_NVME_BLOCK + s * sb.seg_bytes + pos;

            if ((pread(fd, blk, sizeof(blk), (off_t)off) != sizeof(blk)) ||
                (us_nvme_rec_parse(blk, sizeof(blk), &sb, &rec) != UCACHE_OK)) {
                break;
            }
            if ((rec.key_hi == k.hi) && (rec.key_lo == k.lo)) {
                close(fd);
                *len_p = rec.length;
                return off;
            }
        }
    }
    close(fd);
    return 0;
}

static void test_nvme_corrupt_torn(void)
{
    uint8_t z[US_NVME_BLOCK], x;
    us_nvme_stats_t st;
    uint64_t off;
    uint32_t len;
    us_nvme_t *nv;
    unsigned i, bad = 0;
    int fd;

    nv_file(32 * MiB);
    nv = nv_open(256 * KiB, 0);
    nv_put(nv, 0, 40, 64 * KiB);
    us_nvme_close(nv);
    fd = open(nv_path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    /* chunk 10: one payload byte flipped (the header still checks out) */
    off = rec_off(10, &len);
    CU_ASSERT_FATAL(off != 0);
    CU_ASSERT(pread(fd, &x, 1, (off_t)(off + US_NVME_REC_HDR + 1000)) == 1);
    x ^= 0x40;
    CU_ASSERT(pwrite(fd, &x, 1, (off_t)(off + US_NVME_REC_HDR + 1000)) == 1);
    /* chunk 39, the last written: its last block never reached the device */
    off = rec_off(39, &len);
    CU_ASSERT_FATAL(off != 0);
    memset(z, 0, sizeof(z));
    CU_ASSERT(pwrite(fd, z, sizeof(z),
                     (off_t)(off + us_nvme_rec_size(len) - US_NVME_BLOCK)) == sizeof(z));
    close(fd);
    nv = nv_open(256 * KiB, 0);
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.records, 39);          /* the torn one not taken */
    CU_ASSERT_EQUAL(st.rebuild_dropped, 1);
    CU_ASSERT_EQUAL(nv_get(nv, 39, 64 * KiB), 1);
    CU_ASSERT_EQUAL(nv_get(nv, 10, 64 * KiB), 3);   /* CORRUPT, never its bytes */
    CU_ASSERT_EQUAL(nv_get(nv, 10, 64 * KiB), 1);   /* and dropped */
    for (i = 0; i < 39; i++) {
        bad += (i != 10) && (nv_get(nv, i, 64 * KiB) != 0);
    }
    CU_ASSERT_EQUAL(bad, 0);
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.corrupt, 1);
    CU_ASSERT_EQUAL(st.errors, 0);
    CU_ASSERT_EQUAL(st.online, 1);
    us_nvme_close(nv);
    unlink(nv_path);
}

typedef struct aio_res {
    unsigned        n, bad;
    ucache_status_t st[64];
    uint8_t        *buf[64];
    uint32_t        len[64];
} aio_res_t;

static void aio_done(void *arg, uint64_t tag, ucache_status_t status)
{
    aio_res_t *r = arg;

    CU_ASSERT_FATAL(tag < 64);
    r->st[tag] = status;
    r->n++;
    if ((status == UCACHE_OK) && pattern_bad(r->buf[tag], r->len[tag], tag)) {
        r->bad++;
    }
}

/* Asynchronous reads: 60 records of random lengths read through an aio of
 * 16 (room runs out: BUSY), completions reaped as they come, every byte
 * exact; a missing key and one too long are refused when queued; a record
 * with a flipped payload byte completes CORRUPT (never its bytes) and is
 * dropped; reads still in flight at destroy are waited for. */
static void test_nvme_aio(void)
{
    enum { N = 60, DEPTH = 16 };
    aio_res_t r = { 0 };
    us_nvme_aio_t *aio;
    us_nvme_stats_t st;
    unsigned i, queued = 0, busy = 0, spins = 0;
    uint32_t len;
    uint64_t off;
    us_nvme_t *nv;
    us_key_t k;
    uint8_t x;
    int fd;

    nv_file(32 * MiB);
    nv = nv_open(256 * KiB, 0);
    nv_put(nv, 0, N, 0);
    /* chunk 7: one payload byte flipped on the device */
    us_nvme_close(nv);
    off = rec_off(7, &len);
    CU_ASSERT_FATAL(off != 0);
    fd = open(nv_path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(pread(fd, &x, 1, (off_t)(off + US_NVME_REC_HDR + len / 2)) == 1);
    x ^= 0x10;
    CU_ASSERT(pwrite(fd, &x, 1, (off_t)(off + US_NVME_REC_HDR + len / 2)) == 1);
    close(fd);
    nv = nv_open(256 * KiB, 0);
    CU_ASSERT_EQUAL_FATAL(us_nvme_aio_create(DEPTH, 256 * KiB, &aio), UCACHE_OK);
    for (i = 0; i < N; i++) {
        r.len[i] = (uint32_t)(1 + i * 7919 % (200 * KiB));
        r.buf[i] = malloc(r.len[i]);
    }
    k = key_of(1000);
    CU_ASSERT_EQUAL(us_nvme_aio_read(aio, nv, &k, r.buf[0], r.len[0], 0), UCACHE_ERR_NOT_FOUND);
    k = key_of(5);
    CU_ASSERT_EQUAL(us_nvme_aio_read(aio, nv, &k, r.buf[5], 10, 5), UCACHE_ERR_MSG_TRUNCATED);
    for (i = 0; (r.n < N) && (spins < 100000); spins++) {
        while ((i < N) && (us_nvme_aio_room(aio) > 0)) {
            k = key_of(i);
            CU_ASSERT_EQUAL(us_nvme_aio_read(aio, nv, &k, r.buf[i], r.len[i], i), UCACHE_OK);
            i++;
            queued++;
        }
        if (i < N) {
            k = key_of(i);
            busy += (us_nvme_aio_read(aio, nv, &k, r.buf[i], r.len[i], i) == UCACHE_ERR_BUSY);
        }
        CU_ASSERT(us_nvme_aio_busy(aio) <= DEPTH);
        us_nvme_aio_reap(aio, 1000000, aio_done, &r);
    }
    CU_ASSERT_EQUAL(queued, N);
    CU_ASSERT_EQUAL(r.n, N);
    CU_ASSERT(busy > 0);
    CU_ASSERT_EQUAL(r.bad, 0);
    for (i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(r.st[i], (i == 7) ? UCACHE_ERR_CORRUPT : UCACHE_OK);
    }
    k = key_of(7);
    CU_ASSERT(!us_nvme_lookup(nv, &k, NULL, NULL));   /* dropped */
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.reads, N - 1);
    CU_ASSERT_EQUAL(st.corrupt, 1);
    CU_ASSERT_EQUAL(st.errors, 0);
    /* in flight at destroy: waited for, nobody called */
    for (i = 10; i < 14; i++) {
        k = key_of(i);
        CU_ASSERT_EQUAL(us_nvme_aio_read(aio, nv, &k, r.buf[i], r.len[i], i), UCACHE_OK);
    }
    us_nvme_aio_reap(aio, 0, aio_done, &r);   /* submitted, maybe not done */
    us_nvme_aio_destroy(aio);
    CU_ASSERT(r.n <= N + 4);
    for (i = 0; i < N; i++) {
        free(r.buf[i]);
    }
    us_nvme_close(nv);
    unlink(nv_path);
}

/* 12 MiB of segments, 40 MiB written as a scan while 6 chunks are read
 * again and again: the scan passes, the 6 stay (cleaning wrote them again;
 * it writes up to half a segment of a segment's records, 7 of these). */
static void test_nvme_cleaning(void)
{
    const uint32_t len = 64 * KiB;
    us_nvme_stats_t st;
    us_nvme_t *nv;
    unsigned i, j, bad = 0, hot_missing = 0, present = 0;
    int r;

    nv_file(13 * MiB);
    nv = nv_open(256 * KiB, 0);
    nv_put(nv, 0, 6, len);                   /* the hot set: ids 0..5 */
    for (i = 0; i < 40; i++) {
        nv_put(nv, 1000 + i * 16, 16, len);
        for (j = 0; j < 6; j++) {
            r = nv_get(nv, j, len);
            hot_missing += (r == 1);
            bad += (r >= 2);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(hot_missing, 0);
    for (i = 0; i < 40 * 16; i++) {
        r = nv_get(nv, 1000 + i, len);
        present += (r == 0);
        bad += (r >= 2);
    }
    CU_ASSERT_EQUAL(bad, 0);
    us_nvme_stats(nv, &st);
    CU_ASSERT(st.reinserted >= 6);
    CU_ASSERT(st.evicted > 0);
    CU_ASSERT(present > 0);
    CU_ASSERT(present < 40 * 16);            /* the device holds less than the scan */
    CU_ASSERT_EQUAL(st.records, present + 6);
    CU_ASSERT(st.used_bytes <= st.segs * st.seg_bytes);
    CU_ASSERT(st.segs_free >= 1);
    us_nvme_close(nv);
    unlink(nv_path);
}

/* The file cut short under the tier: reads fail, the records go, and
 * after max_errors failures in a row the device is out of service. */
static void test_nvme_device_fails(void)
{
    us_nvme_stats_t st;
    us_nvme_item_t it;
    uint8_t b[64];
    us_nvme_t *nv;
    unsigned i, io = 0;
    int r;

    nv_file(16 * MiB);
    nv = nv_open(256 * KiB, 3);
    nv_put(nv, 0, 20, 64 * KiB);
    CU_ASSERT_FATAL(truncate(nv_path, 4096) == 0);
    for (i = 0; i < 20; i++) {
        r = nv_get(nv, i, 64 * KiB);
        io += (r == 3);
        CU_ASSERT(r != 0 && r != 2);
    }
    CU_ASSERT_EQUAL(io, 20);                 /* EIO: 3 from reads, then out of service */
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.errors, 3);
    CU_ASSERT_EQUAL(st.online, 0);
    CU_ASSERT_EQUAL(st.records, 0);
    CU_ASSERT(!us_nvme_online(nv));
    memset(&it, 0, sizeof(it));
    it.key = key_of(99);
    it.payload = b;
    it.length = sizeof(b);
    CU_ASSERT_EQUAL(us_nvme_write(nv, &it, 1), UCACHE_ERR_IO);
    us_nvme_close(nv);
    unlink(nv_path);
}

typedef struct race_arg {
    us_nvme_t *nv;
    unsigned   bad, ok;
    int        stop;
} race_arg_t;

/* Reads until told to stop (bounded: 20 s scaled, 10 million reads) - not
 * a fixed count, which a fast reader could spend on misses before the
 * writer's first records landed, leaving no read that succeeded (CI). */
static void *race_reader(void *arg)
{
    race_arg_t *a = arg;
    uint64_t x = (uint64_t)pthread_self() | 1;
    uint64_t until = uc_time_ns() + tc_slow(20 * UC_NSEC_PER_SEC);
    unsigned n;
    int r;

    for (n = 0; (n < 10000000) && !__atomic_load_n(&a->stop, __ATOMIC_RELAXED) &&
                ((n % 1024 != 0) || (uc_time_ns() < until)); n++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        r = nv_get(a->nv, 5000 + x % 400, 48 * KiB);
        __atomic_add_fetch(&a->bad, r >= 2, __ATOMIC_RELAXED);
        __atomic_add_fetch(&a->ok, r == 0, __ATOMIC_RELAXED);
    }
    return NULL;
}

/* Readers while the writer writes and cleans: never a wrong byte. */
static void test_nvme_readers_race(void)
{
    race_arg_t a = { 0 };
    pthread_t t[3];
    unsigned i;

    nv_file(9 * MiB);
    a.nv = nv_open(256 * KiB, 0);
    for (i = 0; i < 3; i++) {
        CU_ASSERT_FATAL(pthread_create(&t[i], NULL, race_reader, &a) == 0);
    }
    for (i = 0; i < 25; i++) {               /* 400 ids, 19 MiB: wraps twice */
        nv_put(a.nv, 5000 + i * 16 % 400, 16, 48 * KiB);
    }
    /* the readers may not have run yet on a busy machine: a read that
     * succeeded is what the bytes check needs (bounded) */
    for (i = 0; (i < 10000) && (__atomic_load_n(&a.ok, __ATOMIC_RELAXED) == 0); i++) {
        usleep(1000);
    }
    __atomic_store_n(&a.stop, 1, __ATOMIC_RELAXED);
    for (i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
    }
    CU_ASSERT_EQUAL(a.bad, 0);
    CU_ASSERT(a.ok > 0);
    us_nvme_close(a.nv);
    unlink(nv_path);
}

/* --- the store with an NVMe tier ------------------------------------------ */

typedef struct demoter {
    us_store_t  *s;
    int          stop;
    pthread_t    t;
} demoter_t;

static void *demoter_run(void *arg)
{
    demoter_t *d = arg;

    while (!__atomic_load_n(&d->stop, __ATOMIC_RELAXED)) {
        us_store_demote(d->s, 64, 2000000);
    }
    return NULL;
}

static void demote_idle(us_store_t *s)
{
    us_store_stats_t st;
    unsigned i;

    for (i = 0; i < 2000; i++) {
        us_store_stats(s, &st);
        if (st.nvme_demoting == 0) {
            return;
        }
        usleep(1000);
    }
    CU_FAIL("the demoter did not catch up in 2 s");
}

/* Read chunk @p id the way a fill thread does when a device holds it:
 * reserve, read from NVMe, publish (staged or promoted); then through the
 * readers' raw path.  0 exact, 1 not there, 2 wrong; *promoted_p. */
static int fill_from_nvme(us_store_t *s, uint64_t id, uint32_t len, bool *promoted_p,
                          us_loc_t *loc_p)
{
    us_key_t k = key_of(id);
    bool staged = false;
    us_fill_t f;

    if (us_store_reserve_nvme(s, &k, 5, len, true, &f, &staged) != UCACHE_OK) {
        return 1;
    }
    *promoted_p = !staged;
    if (us_store_fill_nvme(s, &f) != UCACHE_OK) {
        us_store_abort(s, &f);
        return 1;
    }
    CU_ASSERT_EQUAL(us_store_publish_at(s, &f, loc_p), UCACHE_OK);
    return get_id(s, id, len);
}

/* 8 MiB of memory (2 MiB of it the staging pool), 200 chunks of 128 KiB
 * (25 MiB): every chunk is written to NVMe once (through, after its fill,
 * or at its eviction), so each is on NVMe and the newest in memory too,
 * and reads back exact; a chunk read from NVMe is staged (the
 * memory tier untouched: nothing evicted), its lease ends, a read again
 * within the window promotes it; a release drops a staged chunk at once,
 * a pin moves one into the memory tier; an admin's evict drops both
 * tiers' copies. */
static void test_nvme_tiering(void)
{
    us_store_params_t sp = { .len = 8 * MiB, .grace_ns = 1000000, .index_chunk = 64 * KiB,
                             .max_payload = 256 * KiB, .lock = 1,
                             .stage_bytes = 2 * MiB };
    const uint32_t len = 128 * KiB;
    us_store_stats_t st, st0;
    unsigned i, mem = 0, onnv = 0, missing = 0, bad = 0, staged = 0, all = 0;
    demoter_t dm = { 0 };
    uint64_t t0;
    us_nvme_t *nv;
    us_loc_t loc;
    bool promoted;
    us_key_t k;
    int r;

    /* the staging below must end within the lease (sanitizers: longer) */
    sp.nvme_lease_ns = tc_slow(300000000);
    nv_file(48 * MiB);
    nv = nv_open(256 * KiB, 0);
    CU_ASSERT_EQUAL_FATAL(us_store_create(&sp, &dm.s), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(us_store_nvme_add(dm.s, nv), UCACHE_OK);
    CU_ASSERT_FATAL(pthread_create(&dm.t, NULL, demoter_run, &dm) == 0);
    for (i = 0; i < 200; i++) {
        CU_ASSERT_EQUAL(put_id(dm.s, i, 5, len), UCACHE_OK);
    }
    demote_idle(dm.s);
    for (i = 0; i < 200; i++) {
        r = get_id(dm.s, i, len);
        k = key_of(i);
        mem     += (r == 0);
        bad     += (r == 2);
        onnv    += (r == 1) && us_store_on_nvme(dm.s, &k);
        missing += (r == 1) && !us_store_on_nvme(dm.s, &k);
        all     += us_store_on_nvme(dm.s, &k);
    }
    us_store_stats(dm.s, &st);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT(mem > 0);
    CU_ASSERT(onnv >= 100);
    /* written through after their fills (while the demoter keeps up) or at
     * eviction: every evicted one; the rest when the store is flushed */
    CU_ASSERT(all >= onnv);
    CU_ASSERT_EQUAL(st.nvme_demotions, all);
    CU_ASSERT_EQUAL(st.nvme_demote_failed, 0);
    CU_ASSERT_EQUAL(st.nvme_devices, 1);
    /* a pass over what is on NVMe: staged, memory-tier chunks stay */
    st0 = st;
    for (i = 0; i < 200; i++) {
        k = key_of(i);
        if ((get_id(dm.s, i, len) == 1) && us_store_on_nvme(dm.s, &k) && (staged < 12)) {
            r = fill_from_nvme(dm.s, i, len, &promoted, NULL);
            bad    += (r != 0);
            staged += !promoted;
        }
    }
    us_store_stats(dm.s, &st);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(staged, 12);
    CU_ASSERT_EQUAL(st.nvme_hits, 12);
    CU_ASSERT_EQUAL(st.nvme_staged, 12);
    CU_ASSERT_EQUAL(st.nvme_promotions, 0);
    CU_ASSERT_EQUAL(st.evict_capacity + st.evict_index, st0.evict_capacity + st0.evict_index);
    /* the leases end: dropped, their NVMe copies stay */
    usleep((useconds_t)(sp.nvme_lease_ns / 1000 + 50000));
    us_store_demote(dm.s, 64, 0);
    us_store_stats(dm.s, &st);
    CU_ASSERT_EQUAL(st.nvme_staged, 0);
    CU_ASSERT(st.nvme_expired >= 12);
    /* the first of them read again within the window: promoted */
    for (i = 0; i < 200; i++) {
        k = key_of(i);
        if ((get_id(dm.s, i, len) == 1) && us_store_on_nvme(dm.s, &k)) {
            break;
        }
    }
    CU_ASSERT_EQUAL(fill_from_nvme(dm.s, i, len, &promoted, NULL), 0);
    CU_ASSERT(promoted);
    us_store_stats(dm.s, &st);
    CU_ASSERT_EQUAL(st.nvme_promotions, 1);
    /* a pin of a staged chunk moves it into the memory tier, bytes intact */
    for (i = 199; i > 0; i--) {
        k = key_of(i);
        if ((get_id(dm.s, i, len) == 1) && us_store_on_nvme(dm.s, &k)) {
            break;
        }
    }
    CU_ASSERT_EQUAL(fill_from_nvme(dm.s, i, len, &promoted, &loc), 0);
    CU_ASSERT(!promoted);
    CU_ASSERT_EQUAL(us_store_pin(dm.s, &k, 1), UCACHE_OK);
    usleep((useconds_t)(sp.nvme_lease_ns / 1000 + 50000));
    us_store_demote(dm.s, 64, 0);    /* no lease is left to end it */
    CU_ASSERT_EQUAL(get_id(dm.s, i, len), 0);
    us_store_stats(dm.s, &st);
    CU_ASSERT_EQUAL(st.nvme_promotions, 2);
    CU_ASSERT_EQUAL(st.nvme_staged, 0);
    CU_ASSERT_EQUAL(us_store_pin(dm.s, &k, 0), UCACHE_OK);
    /* an admin's evict: gone from both tiers */
    CU_ASSERT_EQUAL(us_store_evict(dm.s, &k), UCACHE_OK);
    CU_ASSERT(!us_store_on_nvme(dm.s, &k));
    CU_ASSERT_EQUAL(get_id(dm.s, i, len), 1);
    __atomic_store_n(&dm.stop, 1, __ATOMIC_RELAXED);
    pthread_join(dm.t, NULL);
    /* flushed until every write has landed (a flush returns what it wrote
     * before its deadline; a loaded machine under ASan may take more than
     * one: a fresh-clone CI run once saw 198) */
    t0 = uc_time_ns();
    do {
        us_store_nvme_flush(dm.s, tc_slow(5 * UC_NSEC_PER_SEC));
        for (i = 0, all = 0; i < 200; i++) {
            k = key_of(i);
            all += us_store_on_nvme(dm.s, &k);
        }
    } while ((all < 199) && (uc_time_ns() - t0 < tc_slow(10 * UC_NSEC_PER_SEC)) &&
             !usleep(10000));
    CU_ASSERT_EQUAL(all, 199);       /* all but the one an admin evicted */
    us_store_stats(dm.s, &st);
    CU_ASSERT_EQUAL(st.nvme_demotions, 200);  /* each written once */
    us_store_destroy(dm.s);          /* closes the device */
    unlink(nv_path);
}

/* A store over @p sp with the device at nv_path as its NVMe tier. */
static us_store_t *store_nvme(const us_store_params_t *sp)
{
    us_nvme_t *nv = nv_open(256 * KiB, 0);
    us_store_t *s = NULL;

    CU_ASSERT_EQUAL_FATAL(us_store_create(sp, &s), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(us_store_nvme_add(s, nv), UCACHE_OK);
    return s;
}

/* Reserve @p id (waiting out grace periods, 2 s at most). */
static ucache_status_t reserve_id(us_store_t *s, uint64_t id, uint32_t len, us_fill_t *f)
{
    us_key_t k = key_of(id);
    ucache_status_t st = UCACHE_ERR_AGAIN;
    unsigned i;

    for (i = 0; (i < 2000) && (st == UCACHE_ERR_AGAIN); i++) {
        st = us_store_reserve(s, &k, 5, len, f);
        if (st == UCACHE_ERR_AGAIN) {
            usleep(1000);
        }
    }
    return st;
}

/* No demoter runs: chunks moved out of memory (as an eviction does, here
 * by us_store_demote_key) wait in its queue, on neither tier's index.  A
 * miss of one is filled from the memory it still holds (never a second
 * origin read), exact; an admin's evict of one makes it unservable, and
 * its write is dropped from NVMe when it lands; once the queue is written
 * the others are NVMe's. */
static void test_nvme_pending(void)
{
    us_store_params_t sp = { .len = 16 * MiB, .grace_ns = 1000000, .index_chunk = 64 * KiB,
                             .max_payload = 256 * KiB, .lock = 1,
                             .stage_bytes = 2 * MiB };
    enum { N = 40, NP = 6 };
    const uint32_t len = 128 * KiB;
    us_store_stats_t st;
    unsigned i;
    us_store_t *s;
    us_fill_t f;
    us_key_t k;

    nv_file(48 * MiB);
    s = store_nvme(&sp);
    for (i = 0; i < N; i++) {        /* fits: nothing evicted */
        CU_ASSERT_EQUAL_FATAL(put_id(s, i, 5, len), UCACHE_OK);
    }
    for (i = 0; i < NP; i++) {       /* out of memory, queued for NVMe */
        k = key_of(i);
        CU_ASSERT_EQUAL(us_store_demote_key(s, &k), UCACHE_OK);
        CU_ASSERT_EQUAL(get_id(s, i, len), 1);
        CU_ASSERT(!us_store_on_nvme(s, &k));
    }
    /* a miss of a queued chunk: its held memory, not the origin */
    CU_ASSERT_EQUAL_FATAL(reserve_id(s, 0, len, &f), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_fill_pending(s, &f), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_publish_at(s, &f, NULL), UCACHE_OK);
    CU_ASSERT_EQUAL(get_id(s, 0, len), 0);
    /* an admin's evict of a queued chunk: not served from it */
    k = key_of(1);
    CU_ASSERT_EQUAL(us_store_evict(s, &k), UCACHE_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL_FATAL(reserve_id(s, 1, len, &f), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_fill_pending(s, &f), UCACHE_ERR_NOT_FOUND);
    us_store_abort(s, &f);
    /* a chunk never stored is not pending */
    CU_ASSERT_EQUAL_FATAL(reserve_id(s, 100000, len, &f), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_fill_pending(s, &f), UCACHE_ERR_NOT_FOUND);
    us_store_abort(s, &f);
    us_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.nvme_pending_fills, 1);
    /* the queue written: the others are on NVMe, the admin's is not */
    for (i = 0; (i < 1000) && (st.nvme_demoting > 0); i++) {
        us_store_demote(s, 64, 0);
        us_store_stats(s, &st);
    }
    CU_ASSERT_EQUAL(st.nvme_demoting, 0);
    CU_ASSERT(st.nvme_demote_dropped >= 1);
    k = key_of(1);
    CU_ASSERT(!us_store_on_nvme(s, &k));
    for (i = 2; i < NP; i++) {
        k = key_of(i);
        CU_ASSERT(us_store_on_nvme(s, &k));
        CU_ASSERT_EQUAL_FATAL(reserve_id(s, i, len, &f), UCACHE_OK);
        CU_ASSERT_EQUAL(us_store_fill_pending(s, &f), UCACHE_ERR_NOT_FOUND);
        us_store_abort(s, &f);
    }
    us_store_destroy(s);
    unlink(nv_path);
}

/* Pins are kept on the device: a record written pinned, or pinned later
 * (us_nvme_flush_changes writes the record again with its flag), is pinned
 * after a restart, an unpin likewise; a change undone before its flush
 * writes nothing, one not flushed before a stop leaves the device's word;
 * the bytes stay exact through the rewrites. */
static void test_nvme_pins(void)
{
    us_nvme_stats_t st;
    us_nvme_item_t it;
    us_nvme_t *nv;
    uint8_t *buf;
    unsigned i, bad = 0, wrong = 0;
    uint64_t id;
    us_key_t k;

    nv_file(32 * MiB);
    nv = nv_open(256 * KiB, 0);
    nv_put(nv, 0, 20, 0);
    buf = malloc(1000);
    fill_pattern(buf, 1000, 100);
    memset(&it, 0, sizeof(it));
    it.key     = key_of(100);
    it.payload = buf;
    it.length  = 1000;
    it.ns      = 3;
    it.pinned  = 1;
    CU_ASSERT_EQUAL(us_nvme_write(nv, &it, 1), UCACHE_OK);
    CU_ASSERT_EQUAL(it.status, UCACHE_OK);
    free(buf);
    for (i = 0; i < 5; i++) {
        k = key_of(i);
        CU_ASSERT_EQUAL(us_nvme_pin(nv, &k, 1), UCACHE_OK);
    }
    k = key_of(5);                   /* pinned and unpinned: nothing to write */
    CU_ASSERT_EQUAL(us_nvme_pin(nv, &k, 1), UCACHE_OK);
    CU_ASSERT_EQUAL(us_nvme_pin(nv, &k, 0), UCACHE_OK);
    k = key_of(999);
    CU_ASSERT_EQUAL(us_nvme_pin(nv, &k, 1), UCACHE_ERR_NOT_FOUND);
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.pinned, 6);
    CU_ASSERT_EQUAL(us_nvme_flush_changes(nv, 3), 3);        /* bounded */
    for (i = 0; (i < 10) && (us_nvme_flush_changes(nv, 64) > 0); i++) {
    }
    CU_ASSERT_EQUAL(us_nvme_flush_changes(nv, 64), 0);
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.pin_writes, 5);
    CU_ASSERT_EQUAL(st.records, 21);
    CU_ASSERT_EQUAL(st.pinned, 6);
    us_nvme_close(nv);
    nv = nv_open(256 * KiB, 0);      /* a restart: the pins are there */
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.records, 21);
    CU_ASSERT_EQUAL(st.pinned, 6);
    for (i = 0; i < 21; i++) {
        id = (i < 20) ? i : 100;
        k  = key_of(id);
        wrong += (us_nvme_pinned(nv, &k) != ((id < 5) || (id == 100)));
        bad   += (nv_get(nv, id, (id == 100) ? 1000 : 0) != 0);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(bad, 0);
    /* unpinned: so after a restart too; key 1's unpin is not flushed */
    k = key_of(1);
    CU_ASSERT_EQUAL(us_nvme_pin(nv, &k, 0), UCACHE_OK);
    k = key_of(0);
    CU_ASSERT_EQUAL(us_nvme_pin(nv, &k, 0), UCACHE_OK);
    k = key_of(100);
    CU_ASSERT_EQUAL(us_nvme_pin(nv, &k, 0), UCACHE_OK);
    CU_ASSERT_EQUAL(us_nvme_flush_changes(nv, 2), 2);         /* the newest first */
    us_nvme_close(nv);
    nv = nv_open(256 * KiB, 0);
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.records, 21);
    CU_ASSERT_EQUAL(st.pinned, 4);
    for (i = 0, wrong = 0, bad = 0; i < 21; i++) {
        id = (i < 20) ? i : 100;
        k  = key_of(id);
        wrong += (us_nvme_pinned(nv, &k) != ((id >= 1) && (id < 5)));
        bad   += (nv_get(nv, id, (id == 100) ? 1000 : 0) != 0);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(bad, 0);
    us_nvme_close(nv);
    unlink(nv_path);
}

/* Drops are kept on the device: a dropped record leaves the index at once
 * and its tombstone (us_nvme_flush_changes) keeps a restart from serving
 * it; a record written after the drop is served (one written before the
 * flush gets no tombstone that would cover it); a drop not flushed
 * before a stop leaves the device's word; tombstones go with cleaning,
 * after the records they cover. */
static void test_nvme_drops(void)
{
    const uint32_t len = 64 * KiB;
    us_nvme_stats_t st;
    us_nvme_t *nv;
    unsigned i, bad = 0, wrong = 0;
    uint64_t records;
    us_key_t k;
    int r;

    nv_file(13 * MiB);
    nv = nv_open(256 * KiB, 0);
    nv_put(nv, 0, 12, len);
    for (i = 1; i <= 5; i += 2) {
        k = key_of(i);
        CU_ASSERT_EQUAL(us_nvme_drop(nv, &k), UCACHE_OK);
        CU_ASSERT_EQUAL(nv_get(nv, i, len), 1);             /* gone at once */
    }
    k = key_of(999);
    CU_ASSERT_EQUAL(us_nvme_drop(nv, &k), UCACHE_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(us_nvme_flush_changes(nv, 64), 3);
    CU_ASSERT_EQUAL(us_nvme_flush_changes(nv, 64), 0);
    nv_put(nv, 3, 1, len);                                  /* cached again */
    k = key_of(9);                   /* cached again before its tombstone: none */
    CU_ASSERT_EQUAL(us_nvme_drop(nv, &k), UCACHE_OK);
    nv_put(nv, 9, 1, len);
    CU_ASSERT_EQUAL(us_nvme_flush_changes(nv, 64), 1);
    k = key_of(7);                   /* not flushed before the stop */
    CU_ASSERT_EQUAL(us_nvme_drop(nv, &k), UCACHE_OK);
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.drop_writes, 3);
    CU_ASSERT_EQUAL(st.records, 9);
    us_nvme_close(nv);

    nv = nv_open(256 * KiB, 0);      /* a restart */
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.records, 10);
    CU_ASSERT_EQUAL(st.rebuild_tombstones, 3);
    for (i = 0; i < 12; i++) {
        r = nv_get(nv, i, len);
        wrong += (r == 1) != ((i == 1) || (i == 5));
        bad   += (r >= 2);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(bad, 0);
    for (i = 0; i < 40; i++) {       /* every old segment cleaned */
        nv_put(nv, 1000 + i * 16, 16, len);
    }
    us_nvme_stats(nv, &st);
    records = st.records;
    CU_ASSERT(st.evicted >= 10);
    us_nvme_close(nv);
    nv = nv_open(256 * KiB, 0);      /* the tombstones went with them */
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.records, records);
    CU_ASSERT_EQUAL(st.rebuild_tombstones, 0);
    for (i = 0, wrong = 0; i < 12; i++) {
        wrong += (nv_get(nv, i, len) != 1);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    us_nvme_close(nv);
    unlink(nv_path);
}

/* Write chunk @p id (@p len bytes) of namespace @p ns: its status. */
static ucache_status_t nv_put_ns(us_nvme_t *nv, uint64_t id, uint32_t len, uint16_t ns,
                                 uint8_t pinned)
{
    uint8_t *buf = malloc(len);
    us_nvme_item_t it;

    fill_pattern(buf, len, id);
    memset(&it, 0, sizeof(it));
    it.key     = key_of(id);
    it.payload = buf;
    it.length  = len;
    it.ns      = ns;
    it.pinned  = pinned;
    us_nvme_write(nv, &it, 1);
    free(buf);
    return it.status;
}

/* A namespace's quota on the device: writes past it drop that namespace's
 * own oldest records (another namespace's stay, pinned ones stay), down
 * to below the quota; the newest are there, exact; a record larger than
 * its quota, or one that finds the quota held by pinned records, is
 * refused; no quota, no limit. */
static void test_nvme_quota(void)
{
    const uint32_t len = 64 * KiB;
    const uint64_t rs = us_nvme_rec_size(len), q = 2 * MiB;
    unsigned i, bad = 0, there = 0, wrong = 0;
    us_nvme_stats_t st;
    us_nvme_t *nv;
    us_key_t k;

    nv_file(32 * MiB);
    nv = nv_open(256 * KiB, 0);
    us_nvme_quota_set(nv, 4, q);
    for (i = 0; i < 10; i++) {       /* namespace 3: no quota */
        CU_ASSERT_EQUAL(nv_put_ns(nv, 1000 + i, len, 3, 0), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(nv_put_ns(nv, 0, len, 4, 1), UCACHE_OK);         /* pinned */
    for (i = 1; i < 100; i++) {      /* 6.8 MiB through a 2 MiB quota */
        CU_ASSERT_EQUAL(nv_put_ns(nv, i, len, 4, 0), UCACHE_OK);
        wrong += (us_nvme_ns_used(nv, 4) > q);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    us_nvme_stats(nv, &st);
    CU_ASSERT(st.quota_evicted >= 100 - q / rs);
    CU_ASSERT_EQUAL(st.quota_refused, 0);
    for (i = 0; i < 100; i++) {
        int r = nv_get(nv, i, len);

        there += (r == 0);
        bad   += (r >= 2);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(us_nvme_ns_used(nv, 4), there * rs);
    CU_ASSERT(there >= q / rs / 2);  /* down to an eighth below, at most */
    CU_ASSERT_EQUAL(nv_get(nv, 0, len), 0);       /* pinned: kept */
    CU_ASSERT_EQUAL(nv_get(nv, 99, len), 0);      /* the newest */
    CU_ASSERT_EQUAL(nv_get(nv, 1, len), 1);       /* the oldest unpinned: gone */
    for (i = 0; i < 10; i++) {
        bad += (nv_get(nv, 1000 + i, len) != 0);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(us_nvme_ns_used(nv, 3), 10 * rs);
    /* larger than its quota; a quota pinned records hold */
    us_nvme_quota_set(nv, 5, 32 * KiB);
    CU_ASSERT_EQUAL(nv_put_ns(nv, 2000, len, 5, 0), UCACHE_ERR_NO_MEMORY);
    us_nvme_quota_set(nv, 6, 3 * rs);
    for (i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(nv_put_ns(nv, 3000 + i, len, 6, 1), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(nv_put_ns(nv, 3003, len, 6, 0), UCACHE_ERR_NO_MEMORY);
    us_nvme_stats(nv, &st);
    CU_ASSERT_EQUAL(st.quota_refused, 2);
    k = key_of(2000);
    CU_ASSERT(!us_nvme_lookup(nv, &k, NULL, NULL));
    /* no quota: no limit */
    us_nvme_quota_set(nv, 4, 0);
    for (i = 100; i < 140; i++) {
        CU_ASSERT_EQUAL(nv_put_ns(nv, i, len, 4, 0), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(us_nvme_ns_used(nv, 4), (there + 40) * rs);
    us_nvme_close(nv);
    unlink(nv_path);
}

/* Write what the demoter has (no demoter thread runs). */
static void demote_all(us_store_t *s)
{
    unsigned i;

    for (i = 0; (i < 1000) && (us_store_demote(s, 64, 0) > 0); i++) {
    }
}

/* A pin follows its chunk to NVMe and through a restart: a pinned chunk's
 * copy is written pinned, one pinned after its copy was written has the
 * record written again; after a restart (store and device opened anew)
 * the chunks are on NVMe only, the pinned ones pinned there, and a read
 * brings each of those into memory pinned (not staged, as an unpinned
 * one is), exact; an unpin of a chunk in memory and of one on NVMe only
 * hold through the next restart. */
static void test_nvme_pins_restart(void)
{
    us_store_params_t sp = { .len = 8 * MiB, .grace_ns = 1000000, .index_chunk = 64 * KiB,
                             .max_payload = 256 * KiB, .lock = 1,
                             .stage_bytes = 2 * MiB };
    const uint32_t len = 128 * KiB;
    unsigned i, bad = 0, wrong = 0;
    us_store_stats_t st;
    us_nvme_stats_t nst;
    uint64_t pinned;
    us_store_t *s;
    us_nvme_t *nv;
    bool promoted;
    us_key_t k;

    nv_file(32 * MiB);
    s = store_nvme(&sp);
    for (i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL(put_id(s, i, 5, len), UCACHE_OK);
        k = key_of(i);
        if (i == 0) {                /* pinned before its copy is written */
            CU_ASSERT_EQUAL(us_store_pin(s, &k, 1), UCACHE_OK);
        }
        demote_all(s);
        CU_ASSERT(us_store_on_nvme(s, &k));
    }
    for (i = 1; i < 4; i++) {        /* pinned with their copies on NVMe */
        k = key_of(i);
        CU_ASSERT_EQUAL(us_store_pin(s, &k, 1), UCACHE_OK);
    }
    demote_all(s);
    us_store_nvme_stats(s, 0, &nst);
    CU_ASSERT_EQUAL(nst.records, 8);
    CU_ASSERT_EQUAL(nst.pinned, 4);
    CU_ASSERT_EQUAL(nst.pin_writes, 3);
    us_store_stats(s, &st);
    pinned = st.bytes_pinned;
    CU_ASSERT(pinned > 0);
    us_store_destroy(s);             /* closes the device */

    s = store_nvme(&sp);             /* a restart */
    us_store_nvme_stats(s, 0, &nst);
    CU_ASSERT_EQUAL(nst.records, 8);
    CU_ASSERT_EQUAL(nst.pinned, 4);
    for (i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL(get_id(s, i, len), 1);     /* memory is new */
        if (i == 3) {
            continue;                /* stays on NVMe only */
        }
        bad   += (fill_from_nvme(s, i, len, &promoted, NULL) != 0);
        wrong += (promoted != (i < 4));
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(wrong, 0);
    us_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.bytes_pinned, pinned / 4 * 3);
    k = key_of(1);                   /* an unpin in memory */
    CU_ASSERT_EQUAL(us_store_pin(s, &k, 0), UCACHE_OK);
    k = key_of(3);                   /* on NVMe only: unpinned there; a pin */
    CU_ASSERT_EQUAL(us_store_pin(s, &k, 0), UCACHE_OK);    /* wants a read */
    CU_ASSERT_EQUAL(us_store_pin(s, &k, 1), UCACHE_ERR_NOT_FOUND);
    k = key_of(6);                   /* neither tier's */
    CU_ASSERT_EQUAL(us_store_evict(s, &k), UCACHE_OK);
    CU_ASSERT_EQUAL(us_store_pin(s, &k, 0), UCACHE_ERR_NOT_FOUND);
    demote_all(s);
    us_store_nvme_stats(s, 0, &nst);
    CU_ASSERT_EQUAL(nst.pinned, 2);
    CU_ASSERT_EQUAL(nst.pin_writes, 2);
    CU_ASSERT_EQUAL(nst.drop_writes, 1);                   /* the evict's tombstone */
    us_store_destroy(s);

    nv = nv_open(256 * KiB, 0);      /* and again: the evict is kept (7) */
    us_nvme_stats(nv, &nst);
    CU_ASSERT_EQUAL(nst.records, 7);
    CU_ASSERT_EQUAL(nst.rebuild_tombstones, 1);
    CU_ASSERT_EQUAL(nst.pinned, 2);
    for (i = 0; i < 8; i++) {
        k = key_of(i);
        wrong += (us_nvme_pinned(nv, &k) != ((i == 0) || (i == 2)));
        wrong += (us_nvme_lookup(nv, &k, NULL, NULL) != (i != 6));
    }
    CU_ASSERT_EQUAL(wrong, 0);
    us_nvme_close(nv);
    unlink(nv_path);
}

/* --- every path of both tiers at once ------------------------------------- */

#define SN_IDS   320
#define SN_OPS   30000
#define SN_DEPTH 16

/* Chunk @p id's length: 4 KiB to 96 KiB, not a multiple of anything. */
static uint32_t sn_len(uint64_t id)
{
    return (uint32_t)(4 * KiB * (1 + id % 24) + id % 61);
}

typedef struct stress_nv {
    us_store_t  *s;
    uint64_t     until;             /* the threads stop here at the latest */
    unsigned     seed;
    /* outcomes, counted by the threads and asserted by the test's thread */
    unsigned     wrong, published, aborted, nvme_fills, pending_fills, aio_fills;
    unsigned     failed, checks_bad, reads;
} stress_nv_t;

static bool sn_over(stress_nv_t *x, unsigned n)
{
    return (n >= SN_OPS) || (uc_time_ns() > x->until);
}

static void sn_count(unsigned *c, unsigned n)
{
    __atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

/* A fill thread's miss: from a device if one holds the key, else from the
 * memory it holds on its way there, else the "origin" (the pattern); one
 * in 10 given back instead. */
static void *sn_filler(void *arg)
{
    stress_nv_t *x = arg;
    unsigned seed = __atomic_fetch_add(&x->seed, 7919, __ATOMIC_RELAXED), n;
    ucache_status_t st;
    bool nv, staged, may;
    uint64_t id;
    us_loc_t loc;
    us_fill_t f;
    us_key_t k;

    for (n = 0; !sn_over(x, n); n++) {
        id = (uint64_t)rand_r(&seed) % SN_IDS;
        k  = key_of(id);
        nv = us_store_on_nvme(x->s, &k);
        staged = false;
        may = rand_r(&seed) % 4 != 0;   /* (not when a pin will follow) */
        st = nv ? us_store_reserve_nvme(x->s, &k, 5, sn_len(id), may, &f, &staged) :
                  us_store_reserve(x->s, &k, 5, sn_len(id), &f);
        if (st != UCACHE_OK) {
            continue;                /* there, being filled, or memory on its way */
        }
        sn_count(&x->failed, staged && !may);
        if (nv && (us_store_fill_nvme(x->s, &f) == UCACHE_OK)) {
            sn_count(&x->nvme_fills, 1);
        } else if (us_store_fill_pending(x->s, &f) == UCACHE_OK) {
            sn_count(&x->pending_fills, 1);
        } else {
            fill_pattern(f.payload, f.length, id);
        }
        if (rand_r(&seed) % 10 == 0) {
            us_store_abort(x->s, &f);
            sn_count(&x->aborted, 1);
            continue;
        }
        if (us_store_publish_at(x->s, &f, &loc) != UCACHE_OK) {
            sn_count(&x->failed, 1);
            continue;
        }
        sn_count(&x->published, 1);
    }
    return NULL;
}

typedef struct sn_aio {
    stress_nv_t *x;
    us_fill_t    f[SN_DEPTH];
    bool         busy[SN_DEPTH];
} sn_aio_t;

static void sn_aio_done(void *arg, uint64_t tag, ucache_status_t status)
{
    sn_aio_t *a = arg;

    us_store_nvme_read_done(a->x->s, status);
    if ((status != UCACHE_OK) || (us_store_publish(a->x->s, &a->f[tag]) != UCACHE_OK)) {
        us_store_abort(a->x->s, &a->f[tag]);
        sn_count(&a->x->aborted, 1);
    } else {
        sn_count(&a->x->aio_fills, 1);
        sn_count(&a->x->published, 1);
    }
    a->busy[tag] = false;
}

/* An NVMe thread's reads: queued on an io_uring, published as they end. */
static void *sn_aio_reader(void *arg)
{
    sn_aio_t a = { .x = arg };
    unsigned seed = __atomic_fetch_add(&a.x->seed, 7919, __ATOMIC_RELAXED), n, t;
    us_nvme_aio_t *aio;
    uint64_t id;
    bool staged;
    us_key_t k;

    if (us_nvme_aio_create(SN_DEPTH, 128 * KiB, &aio) != UCACHE_OK) {
        sn_count(&a.x->failed, 1);
        return NULL;
    }
    for (n = 0; !sn_over(a.x, n); n++) {
        for (t = 0; (t < SN_DEPTH) && a.busy[t]; t++) {
        }
        id = (uint64_t)rand_r(&seed) % SN_IDS;
        k  = key_of(id);
        if ((t < SN_DEPTH) && us_store_on_nvme(a.x->s, &k) &&
            (us_store_reserve_nvme(a.x->s, &k, 5, sn_len(id), true, &a.f[t], &staged) ==
             UCACHE_OK)) {
            if (us_store_nvme_start(a.x->s, aio, &a.f[t], t) == UCACHE_OK) {
                a.busy[t] = true;
            } else {
                us_store_abort(a.x->s, &a.f[t]);
            }
        }
        us_nvme_aio_reap(aio, 100000, sn_aio_done, &a);
    }
    while (us_nvme_aio_busy(aio) > 0) {
        us_nvme_aio_reap(aio, 1000000, sn_aio_done, &a);
    }
    us_nvme_aio_destroy(aio);
    return NULL;
}

/* An admin's and the readers' calls: to NVMe now, evict, pin, unpin,
 * touch, the books checked, verified reads. */
static void *sn_admin(void *arg)
{
    stress_nv_t *x = arg;
    unsigned seed = __atomic_fetch_add(&x->seed, 7919, __ATOMIC_RELAXED), n, r;
    uint64_t id;
    us_key_t k;

    for (n = 0; !sn_over(x, n); n++) {
        id = (uint64_t)rand_r(&seed) % SN_IDS;
        k  = key_of(id);
        switch (rand_r(&seed) % 8) {
        case 0:  (void)us_store_demote_key(x->s, &k);  break;
        case 1:  (void)us_store_evict(x->s, &k);       break;
        case 2:  (void)us_store_pin(x->s, &k, 1);      break;
        case 3:  (void)us_store_pin(x->s, &k, 0);      break;
        case 4:  us_store_touch(x->s, &k, 1, 2);       break;
        case 5:                      /* (the first failure says it all) */
            if (__atomic_load_n(&x->checks_bad, __ATOMIC_RELAXED) == 0) {
                sn_count(&x->checks_bad, us_store_check(x->s) != UCACHE_OK);
            }
            break;
        default:
            r = (unsigned)get_id(x->s, id, sn_len(id));
            sn_count(&x->wrong, r == 2);
            sn_count(&x->reads, r == 0);
        }
    }
    return NULL;
}

/* 4 MiB of memory (1 MiB of it the staging pool) and 16 MiB of chunks of
 * 4-96 KiB: two fill threads, an NVMe thread's asynchronous reads, an
 * admin (to NVMe, evict, pin, unpin) and the demoter, all at once, for
 * 3000 steps each (20 s at most).  Every read exact; the store's books
 * (us_store_check: each block held once - a chunk, the quarantine or the
 * demoter's queue) add up during the run and after it, when every chunk
 * reads exact from memory or its device. */
static void test_nvme_tier_stress(void)
{
    us_store_params_t sp = { .len = 4 * MiB, .grace_ns = 200000, .index_chunk = 64 * KiB,
                             .max_payload = 128 * KiB, .lock = 1, .stage_bytes = 1 * MiB,
                             .nvme_lease_ns = 5000000, .nvme_window_ns = 1000000 };
    stress_nv_t x = { .seed = 17 };
    pthread_t t[4];
    void *(*fn[4])(void *) = { sn_filler, sn_filler, sn_aio_reader, sn_admin };
    demoter_t dm = { 0 };
    us_store_stats_t st;
    unsigned i, mem = 0, onnv = 0, bad = 0;
    bool promoted;
    us_key_t k;
    us_nvme_t *nv;

    nv_file(32 * MiB);
    nv = nv_open(128 * KiB, 0);
    CU_ASSERT_EQUAL_FATAL(us_store_create(&sp, &dm.s), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(us_store_nvme_add(dm.s, nv), UCACHE_OK);
    x.s     = dm.s;
    x.until = uc_time_ns() + tc_slow(20 * UC_NSEC_PER_SEC);
    CU_ASSERT_FATAL(pthread_create(&dm.t, NULL, demoter_run, &dm) == 0);
    for (i = 0; i < 4; i++) {
        CU_ASSERT_FATAL(pthread_create(&t[i], NULL, fn[i], &x) == 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
    }
    demote_idle(dm.s);
    __atomic_store_n(&dm.stop, 1, __ATOMIC_RELAXED);
    pthread_join(dm.t, NULL);
    while (us_store_demote(dm.s, 64, 0) > 0) {
    }
    CU_ASSERT_EQUAL(us_store_check(dm.s), UCACHE_OK);
    CU_ASSERT_EQUAL(x.checks_bad, 0);
    CU_ASSERT_EQUAL(x.wrong, 0);
    CU_ASSERT_EQUAL(x.failed, 0);
    CU_ASSERT(x.published > 100);
    CU_ASSERT(x.reads > 0);
    CU_ASSERT(x.nvme_fills + x.aio_fills > 0);
    /* every chunk: in memory exact, or read from its device exact */
    for (i = 0; i < SN_IDS; i++) {
        k = key_of(i);
        (void)us_store_pin(dm.s, &k, 0);
        switch (get_id(dm.s, i, sn_len(i))) {
        case 0:  mem++; break;
        case 2:  bad++; break;
        default:
            if (us_store_on_nvme(dm.s, &k)) {
                onnv++;
                bad += (fill_from_nvme(dm.s, i, sn_len(i), &promoted, NULL) == 2);
            }
        }
    }
    us_store_stats(dm.s, &st);
    fprintf(stderr, "tier_stress: %u published (%u read from NVMe, %u by aio, %u from memory "
            "on its way there), %u aborted, %u reads; %u in memory, %u on NVMe at the end; "
            "%llu demotions, %llu promotions\n", x.published, x.nvme_fills, x.aio_fills,
            x.pending_fills, x.aborted, x.reads, mem, onnv,
            (unsigned long long)st.nvme_demotions, (unsigned long long)st.nvme_promotions);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT((mem > 0) && (onnv > 0));   /* (evicts drop from both tiers) */
    CU_ASSERT(st.nvme_demotions > 0);
    CU_ASSERT_EQUAL(us_store_check(dm.s), UCACHE_OK);
    us_store_destroy(dm.s);
    unlink(nv_path);
}

const tc_test_t nvme_tests[] = {
    {"basic", test_nvme_basic},
    {"rebuild", test_nvme_rebuild},
    {"corrupt_torn", test_nvme_corrupt_torn},
    {"cleaning", test_nvme_cleaning},
    {"device_fails", test_nvme_device_fails},
    {"readers_race", test_nvme_readers_race},
    {"tiering", test_nvme_tiering},
    {"pending", test_nvme_pending},
    {"aio", test_nvme_aio},
    {"pins", test_nvme_pins},
    {"pins_restart", test_nvme_pins_restart},
    {"drops", test_nvme_drops},
    {"quota", test_nvme_quota},
    {"tier_stress", test_nvme_tier_stress},
    {NULL, NULL}
};
