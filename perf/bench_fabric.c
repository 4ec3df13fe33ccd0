/*
 * bench_fabric.c - ucperf modes hit, miss and mixed: reads through
 * libucache-rdma, the whole path (placement, index read, chunk read,
 * verification), against a fabric of owner processes on this host.
 *
 * The fabric: unless --members (or UCACHE_MEMBERS) names one, --nodes owner
 * processes (default 3) are forked, each a serving context with --cache
 * bytes split among them, joined through a dir: source in a work directory
 * that is removed at the end.  The dataset: files of a known pattern
 * (exporter.h) under that directory, read as file:// objects; UCACHE_CHUNK_
 * SIZE is the read size (at least 4 KiB), so a read is one chunk - or, with
 * --chunk larger than it, a --size-aligned part of a chunk at a random place;
 * with --chunk smaller, --size / --chunk chunks of one object.
 *   hit    every chunk warmed first (ucache_warm), then reads of random
 *          chunks: hits;
 *   miss   every read a chunk never read before: each pass over the dataset
 *          bumps the files' mtime, so the next pass has new versions (and
 *          keys) and owners fill from the origin again;
 *   mixed  a training-like epoch: --dataset bytes (default 4/3 of the
 *          cache), a --hit-ratio share of its chunks warmed first, then
 *          every chunk read once in a shuffled order by --threads readers.
 * Each read is timed from post to completion and three words of it are
 * checked against the pattern; errors count failed reads and wrong bytes.
 */
#include "perf/ucperf.h"
#include "util/latency.h"
#include "perf/exporter.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>


#define FB_SEED        0x7f4a7c15ull
#define FB_OBJ_MAX     (64ull << 20)     /* bytes per dataset file       */
#define FB_MAX_OWNERS  16
#define FB_SAMPLES_MAX (4u * 1000u * 1000u)

typedef struct fb_fabric {
    char     dir[64];
    char     members[600];
    pid_t    owner[FB_MAX_OWNERS];
    int      ctl[FB_MAX_OWNERS];
    unsigned nowners;
    ucache_h ctx;
    size_t   chunk;           /* --chunk, else the read size; at least 4 KiB */
    unsigned nobj;
    uint64_t obj_size;
    uint64_t nchunks;
    uint64_t per_obj;         /* chunks per object */
    char   (*uri)[160];
} fb_fabric_t;

/* One reader thread's share of the run. */
typedef struct fb_thread {
    const ucperf_opts_t *o;
    fb_fabric_t         *fb;
    const uint64_t      *order;  /* chunk numbers to read, or NULL: random */
    uint64_t             first, count; /* its slice of order / of the ops  */
    _Atomic bool        *stop;
    uint64_t            *lat;
    uint64_t             nlat, cap, ops, errors, bytes;
    pthread_t            tid;
} fb_thread_t;

static double fb_owner_cpu(const fb_fabric_t *fb)
{
    double sum = 0, c;
    unsigned i;

    if (fb->nowners == 0) {
        return -1; /* an external fabric: not ours to measure */
    }
    for (i = 0; i < fb->nowners; i++) {
        c = ucperf_pid_cpu(fb->owner[i]);
        if (c < 0) {
            return -1;
        }
        sum += c;
    }
    return sum;
}

/* The object and offset of chunk @p c. */
static void fb_locate(const fb_fabric_t *fb, uint64_t c, unsigned *obj, uint64_t *off)
{
    *obj = (unsigned)(c / fb->per_obj);
    *off = (c % fb->per_obj) * fb->chunk;
}

static void fb_owner_main(const fb_fabric_t *fb, int ctl, size_t mem)
{
    char allow[sizeof(fb->dir) + 16];
    ucache_params_t p = {
        .field_mask = UCACHE_PARAM_FIELD_SERVE | UCACHE_PARAM_FIELD_MEM_BYTES |
                      UCACHE_PARAM_FIELD_MEMBERS | UCACHE_PARAM_FIELD_CHUNK_SIZE |
                      UCACHE_PARAM_FIELD_ALLOW,
        .serve = 1, .mem_bytes = mem, .members = fb->members, .chunk_size = fb->chunk,
        .allow = allow           /* the benchmark's own objects, file:// */
    };
    ucache_h ctx;
    char c;

    snprintf(allow, sizeof(allow), "file://%s/data/", fb->dir);

    if (ucache_init(&p, &ctx) != UCACHE_OK) {
        _exit(3);
    }
    while ((read(ctl, &c, 1) != 0) && ((errno == EINTR) || (errno == 0))) {
    }
    ucache_finalize(ctx);
    _exit(0);
}

static void fb_stop(fb_fabric_t *fb)
{
    char cmd[128];
    unsigned i;

    ucache_finalize(fb->ctx);
    fb->ctx = NULL;
    for (i = 0; i < fb->nowners; i++) {
        close(fb->ctl[i]);
    }
    for (i = 0; i < fb->nowners; i++) {
        waitpid(fb->owner[i], NULL, 0);
    }
    fb->nowners = 0;
    free(fb->uri);
    fb->uri = NULL;
    if (fb->dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fb->dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "ucperf: could not remove %s\n", fb->dir);
        }
    }
}

/* Write the dataset: files of the pattern, FB_OBJ_MAX bytes at most. */
static ucache_status_t fb_dataset(fb_fabric_t *fb, uint64_t bytes)
{
    char path[128];
    uint64_t left;
    uint8_t *buf;
    unsigned i;
    int fd;

    fb->per_obj  = (FB_OBJ_MAX / fb->chunk > 0) ? FB_OBJ_MAX / fb->chunk : 1;
    fb->nchunks  = (bytes + fb->chunk - 1) / fb->chunk;
    fb->nchunks  = (fb->nchunks < 1) ? 1 : fb->nchunks;
    fb->per_obj  = (fb->per_obj > fb->nchunks) ? fb->nchunks : fb->per_obj;
    fb->nobj     = (unsigned)((fb->nchunks + fb->per_obj - 1) / fb->per_obj);
    fb->nchunks  = (uint64_t)fb->nobj * fb->per_obj; /* whole objects */
    fb->obj_size = fb->per_obj * fb->chunk;
    fb->uri      = calloc(fb->nobj, sizeof(*fb->uri));
    buf          = malloc(fb->obj_size);
    if ((fb->uri == NULL) || (buf == NULL)) {
        free(buf);
        return UCACHE_ERR_NO_MEMORY;
    }
    snprintf(path, sizeof(path), "%s/data", fb->dir);
    mkdir(path, 0700);
    for (i = 0; i < fb->nobj; i++) {
        snprintf(path, sizeof(path), "%s/data/obj-%u", fb->dir, i);
        snprintf(fb->uri[i], sizeof(fb->uri[i]), "file://%s", path);
        ucperf_pattern_fill(buf, fb->obj_size, FB_SEED + i);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        for (left = fb->obj_size; (fd >= 0) && (left > 0);) {
            ssize_t n = write(fd, buf + (fb->obj_size - left), left);

            if (n <= 0) {
                break;
            }
            left -= (uint64_t)n;
        }
        if ((fd < 0) || (close(fd) != 0) || (left != 0)) {
            free(buf);
            return UCACHE_ERR_IO;
        }
    }
    free(buf);
    return UCACHE_OK;
}

/* New versions of every object (mtime + 1 s): their chunks are cold again. */
static void fb_bump(fb_fabric_t *fb, unsigned gen)
{
    struct timespec ts[2];
    unsigned i;

    for (i = 0; i < fb->nobj; i++) {
        ts[0].tv_sec  = ts[1].tv_sec = 1000000000 + gen;
        ts[0].tv_nsec = ts[1].tv_nsec = 0;
        utimensat(AT_FDCWD, fb->uri[i] + 7, ts, 0);
    }
}

static bool fb_ttl_set;

static ucache_status_t fb_start(const ucperf_opts_t *o, fb_fabric_t *fb, uint64_t dataset,
                                size_t cache)
{
    ucache_params_t p = { .field_mask = UCACHE_PARAM_FIELD_CHUNK_SIZE |
                                        UCACHE_PARAM_FIELD_MEMBERS };
    const char *ext = (o->members != NULL) ? o->members : getenv("UCACHE_MEMBERS");
    ucache_status_t status;
    ucache_stats_t st;
    char rt[16];
    unsigned i;
    int pfd[2];
    pid_t pid;

    memset(fb, 0, sizeof(*fb));
    fb->chunk = (o->chunk != 0) ? o->chunk : (o->size < 4096) ? 4096 : o->size;
    snprintf(fb->dir, sizeof(fb->dir), "/tmp/ucperf.XXXXXX");
    if (mkdtemp(fb->dir) == NULL) {
        fb->dir[0] = '\0';
        return UCACHE_ERR_IO;
    }
    ucperf_transport_env(o);
    setenv("UCACHE_MEMBERS_POLL", "100ms", 0);
    snprintf(rt, sizeof(rt), "%zu", fb->chunk);
    setenv("UCACHE_INDEX_CHUNK", rt, 1);  /* owners' index sized for these chunks */
    if (o->mode == UCPERF_MODE_MISS) {
        setenv("UCACHE_META_TTL", "0", 1); /* see each pass's new versions */
        fb_ttl_set = true;
    } else if (fb_ttl_set) {
        unsetenv("UCACHE_META_TTL");       /* an earlier miss run's, not the user's */
        fb_ttl_set = false;
    }
    if (strcmp(o->path, "auto") != 0) {
        setenv("UCACHE_READ_PATH", o->path, 1);
    }
    if (strcmp(o->path, "get") == 0) {
        setenv("UCACHE_EMULATED_RMA", "yes", 1); /* the test mode gets need on tcp */
    }
    status = fb_dataset(fb, dataset);
    if (status != UCACHE_OK) {
        return status;
    }
    if (ext != NULL) {
        snprintf(fb->members, sizeof(fb->members), "%s", ext);
    } else {
        snprintf(fb->members, sizeof(fb->members), "dir:%s/members", fb->dir);
        fflush(NULL);
        for (i = 0; i < o->owners; i++) {
            if (pipe(pfd) != 0) {
                return UCACHE_ERR_IO;
            }
            pid = fork();
            if (pid < 0) {
                close(pfd[0]);
                close(pfd[1]);
                return UCACHE_ERR_NO_MEMORY;
            }
            if (pid == 0) {
                unsigned j;

                close(pfd[1]);
                for (j = 0; j < fb->nowners; j++) {
                    close(fb->ctl[j]); /* only the parent keeps them open */
                }
                fb_owner_main(fb, pfd[0], cache / o->owners);
            }
            close(pfd[0]);
            fb->owner[fb->nowners] = pid;
            fb->ctl[fb->nowners++] = pfd[1];
        }
    }
    p.chunk_size = fb->chunk;
    p.members    = fb->members;
    status = ucache_init(&p, &fb->ctx);
    if (status != UCACHE_OK) {
        return status;
    }
    for (i = 0; i < 200; i++) { /* the owners register: 10 s at most */
        ucache_stats_get(fb->ctx, &st);
        if ((fb->nowners == 0) ? (st.view_nodes > 0) : (st.view_nodes >= fb->nowners)) {
            return UCACHE_OK;
        }
        usleep(50000);
    }
    fprintf(stderr, "ucperf: %llu of %u owners registered with %s\n",
            (unsigned long long)st.view_nodes, fb->nowners, fb->members);
    return UCACHE_ERR_PEER;
}

/* Read chunk @p c (size bytes at its start) and account for it. */
static void fb_done(fb_thread_t *t, const ucache_read_req_t *r, unsigned obj, uint64_t off,
                    uint64_t t0)
{
    uint64_t now = uc_time_ns();

    t->ops++;
    if ((r->status != UCACHE_OK) || (r->nread != t->o->size) ||
        ucperf_pattern_check3(r->buf, off, r->nread, FB_SEED + obj)) {
        t->errors++;
    } else {
        t->bytes += r->nread;
    }
    if (t->nlat < t->cap) {
        t->lat[t->nlat++] = now - t0;
    }
}

static uint64_t fb_pick(fb_thread_t *t, uint64_t i)
{
    if (t->order != NULL) {
        return t->order[t->first + i];
    }
    return ((t->first + i) * 2654435761ull) % t->fb->nchunks;
}

static void *fb_reader(void *arg)
{
    fb_thread_t *t = arg;
    const unsigned k = t->o->outstanding;
    ucache_read_req_t *reqs = calloc(k, sizeof(*reqs));
    uint64_t *t0 = calloc(k, sizeof(*t0)), *offs = calloc(k, sizeof(*offs));
    unsigned *objs = calloc(k, sizeof(*objs)), j, active = 0, oldest, reaped;
    uint8_t *bufs = malloc((size_t)k * t->o->size);
    uint64_t i = 0, c;

    if ((reqs == NULL) || (t0 == NULL) || (offs == NULL) || (objs == NULL) ||
        (bufs == NULL)) {
        t->errors++;
        goto out;
    }
    memset(bufs, 0xa5, (size_t)k * t->o->size); /* fault it in before the clock */
    for (;;) {
        for (j = 0; j < k; j++) {
            if ((reqs[j].uri != NULL) || (i >= t->count) || atomic_load(t->stop)) {
                continue;
            }
            c = fb_pick(t, i++);
            if (t->o->size > t->fb->chunk) { /* a run of chunks in one object */
                c -= c % (t->o->size / t->fb->chunk);
            }
            fb_locate(t->fb, c, &objs[j], &offs[j]);
            if (t->fb->chunk > t->o->size) { /* a part: a random read-sized slot */
                offs[j] += ((c * 0x9e3779b97f4a7c15ull + i) % (t->fb->chunk / t->o->size)) *
                           t->o->size;
            }
            reqs[j].uri    = t->fb->uri[objs[j]];
            reqs[j].offset = offs[j];
            reqs[j].len    = t->o->size;
            reqs[j].buf    = bufs + (size_t)j * t->o->size;
            t0[j] = uc_time_ns();
            if (k == 1) { /* one at a time: the caller's own thread reads */
                reqs[j].status = ucache_read(t->fb->ctx, reqs[j].uri, reqs[j].offset,
                                             reqs[j].len, reqs[j].buf, &reqs[j].nread);
                fb_done(t, &reqs[j], objs[j], offs[j], t0[j]);
                reqs[j].uri = NULL;
                continue;
            }
            if (ucache_read_post(t->fb->ctx, &reqs[j], 1) != UCACHE_OK) {
                t->errors++;
                reqs[j].uri = NULL;
                continue;
            }
            active++;
        }
        if (active == 0) {
            if ((i >= t->count) || atomic_load(t->stop)) {
                break;
            }
            continue;
        }
        for (j = 0, oldest = k, reaped = 0; j < k; j++) {
            if (reqs[j].uri == NULL) {
                continue;
            }
            if (ucache_wait(t->fb->ctx, &reqs[j], 1, 0) == UCACHE_INPROGRESS) {
                oldest = ((oldest == k) || (t0[j] < t0[oldest])) ? j : oldest;
                continue;
            }
            fb_done(t, &reqs[j], objs[j], offs[j], t0[j]);
            reqs[j].uri = NULL;
            active--;
            reaped++;
        }
        if ((reaped == 0) && (oldest < k)) {
            /* nothing done: sleep until the oldest is (reader threads signal) */
            ucache_wait(t->fb->ctx, &reqs[oldest], 1, 10 * UC_NSEC_PER_MSEC);
        }
    }
out:
    free(reqs);
    free(t0);
    free(offs);
    free(objs);
    free(bufs);
    return NULL;
}

/* Fisher-Yates over 0 .. n-1 (xorshift; the order only has to look random). */
static uint64_t *fb_shuffle(uint64_t n, uint64_t seed)
{
    uint64_t *v = malloc(n * sizeof(*v)), i, j, x = seed | 1;

    for (i = 0; (v != NULL) && (i < n); i++) {
        v[i] = i;
    }
    for (i = n; (v != NULL) && (i > 1); i--) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        j = x % i;
        uint64_t tmp = v[i - 1];
        v[i - 1] = v[j];
        v[j] = tmp;
    }
    return v;
}

/* Warm the chunks in @p order[0 .. n) (or all, whole objects, if NULL). */
static ucache_status_t fb_warm(fb_fabric_t *fb, const uint64_t *order, uint64_t n)
{
    ucache_warm_result_t wr;
    ucache_status_t status = UCACHE_OK;
    uint64_t i, off;
    unsigned obj;

    memset(&wr, 0, sizeof(wr));
    if (order == NULL) {
        for (obj = 0; (obj < fb->nobj) && (status == UCACHE_OK); obj++) {
            status = ucache_warm(fb->ctx, fb->uri[obj], 0, UINT64_MAX, 0, &wr);
        }
        return status;
    }
    for (i = 0; (i < n) && (status == UCACHE_OK); i++) {
        fb_locate(fb, order[i], &obj, &off);
        status = ucache_warm(fb->ctx, fb->uri[obj], off, fb->chunk, 0, &wr);
    }
    return status;
}

/* What the measured reads added up to, over one or more passes. */
typedef struct fb_acc {
    uint64_t *lat;
    uint64_t  nlat, cap, ops, errors, bytes;
    double    seconds, cpu, own;       /* own < 0: not measurable */
    uint64_t  chunk_reads, chunk_hits, chunk_nvme, origin_direct;
} fb_acc_t;

/* Run the readers over @p total reads (or until @p o's --duration passes). */
static ucache_status_t fb_measure(const ucperf_opts_t *o, fb_fabric_t *fb,
                                  const uint64_t *order, uint64_t total, fb_acc_t *acc)
{
    fb_thread_t *t = calloc(o->threads, sizeof(*t));
    uint64_t cap, t_start, per, room, n;
    ucache_stats_t s0, s1;
    _Atomic bool stop = false;
    double cpu0, own0, own1;
    unsigned i;

    if (t == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    per = total / o->threads;
    cap = (per < FB_SAMPLES_MAX) ? per + 1 : FB_SAMPLES_MAX;
    for (i = 0; i < o->threads; i++) {
        t[i].o     = o;
        t[i].fb    = fb;
        t[i].order = order;
        t[i].first = i * per;
        t[i].count = (i + 1 == o->threads) ? total - i * per : per;
        t[i].stop  = &stop;
        t[i].cap   = cap;
        t[i].lat   = malloc(cap * sizeof(uint64_t));
        if (t[i].lat == NULL) {
            t[i].cap = 0;
        }
    }
    ucache_stats_get(fb->ctx, &s0);
    cpu0 = ucperf_self_cpu();
    own0 = fb_owner_cpu(fb);
    t_start = uc_time_ns();
    for (i = 0; i < o->threads; i++) {
        pthread_create(&t[i].tid, NULL, fb_reader, &t[i]);
    }
    if (o->iters == 0) {
        uint64_t limit = (uint64_t)(o->duration * 1e9);
        bool running = true;

        while (running && (uc_time_ns() - t_start < limit)) {
            usleep(5000);
            for (i = 0, running = false; i < o->threads; i++) {
                running |= (t[i].ops + t[i].errors < t[i].count);
            }
        }
        atomic_store(&stop, true);
    }
    for (i = 0; i < o->threads; i++) {
        pthread_join(t[i].tid, NULL);
    }
    acc->seconds += (uc_time_ns() - t_start) / 1e9;
    own1 = fb_owner_cpu(fb);
    acc->cpu += ucperf_self_cpu() - cpu0;
    acc->own  = ((acc->own >= 0) && (own0 >= 0) && (own1 >= 0)) ? acc->own + own1 - own0 : -1;
    ucache_stats_get(fb->ctx, &s1);
    acc->chunk_reads += s1.chunk_reads - s0.chunk_reads;
    acc->chunk_hits  += s1.chunk_hits - s0.chunk_hits;
    acc->chunk_nvme  += s1.chunk_nvme - s0.chunk_nvme;
    acc->origin_direct += s1.origin_direct - s0.origin_direct;
    for (i = 0; i < o->threads; i++) {
        acc->ops    += t[i].ops;
        acc->errors += t[i].errors;
        acc->bytes  += t[i].bytes;
        room = (acc->cap > acc->nlat) ? acc->cap - acc->nlat : 0;
        n = (t[i].nlat < room) ? t[i].nlat : room;
        if (n > 0) {
            memcpy(acc->lat + acc->nlat, t[i].lat, n * sizeof(uint64_t));
            acc->nlat += n;
        }
        free(t[i].lat);
    }
    free(t);
    return UCACHE_OK;
}

/* The figures of @p acc; @p path is how hits were read. */
static void fb_finish(fb_acc_t *acc, const char *path, ucperf_result_t *res)
{
    double gb = (double)acc->bytes / 1e9;

    res->ops     = acc->ops;
    res->errors  = acc->errors;
    res->seconds = acc->seconds;
    if ((acc->seconds > 0) && (acc->ops > 0)) {
        res->gbps = gb / acc->seconds;
        res->mops = (double)acc->ops / acc->seconds / 1e6;
    }
    if (gb > 0) {
        res->client_cpu_s_per_gb = acc->cpu / gb;
        res->owner_cpu_s_per_gb  = (acc->own >= 0) ? acc->own / gb : -1;
    }
    res->path = path;
    res->hit_ratio = (acc->chunk_reads > 0) ?
                     (double)acc->chunk_hits / (double)acc->chunk_reads : -1;
    res->nvme_ratio = (acc->chunk_reads > 0) ?
                      (double)acc->chunk_nvme / (double)acc->chunk_reads : -1;
    res->direct_ratio = (acc->chunk_reads > 0) ?
                        (double)acc->origin_direct / (double)acc->chunk_reads : -1;
    uc_lat_sort(acc->lat, acc->nlat);
    ucperf_latencies(acc->lat, acc->nlat, res);
}

ucache_status_t ucperf_fabric_run(const ucperf_opts_t *o, ucperf_result_t *res)
{
    uint64_t dataset, total, gen, n, t0;
    uint64_t *order = NULL;
    ucache_status_t status;
    ucperf_opts_t po = *o;
    fb_acc_t acc, scratch;
    fb_fabric_t fb;
    size_t cache;

    memset(res, 0, sizeof(*res));
    memset(&acc, 0, sizeof(acc));
    res->path = "none";
    res->hit_ratio = res->nvme_ratio = res->direct_ratio = -1;
    cache = (o->cache != 0) ? o->cache : (size_t)o->owners * (256u << 20);
    dataset = (o->dataset != 0) ? o->dataset :
              (o->mode == UCPERF_MODE_MIXED) ? cache / 3 * 4 :
              (o->mode == UCPERF_MODE_HIT) ? cache / 2 : 64ull << 20;
    if ((o->mode == UCPERF_MODE_HIT) && (dataset > cache / 10 * 9)) {
        fprintf(stderr, "ucperf: hit: --dataset must fit in 90%% of --cache\n");
        return UCACHE_ERR_INVALID;
    }
    total = (o->iters > 0) ? o->iters : UINT64_MAX / 4;
    acc.cap = (total < FB_SAMPLES_MAX) ? total : FB_SAMPLES_MAX;
    acc.lat = malloc(acc.cap * sizeof(uint64_t));
    if (acc.lat == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    status = fb_start(o, &fb, dataset, cache);
    if (status != UCACHE_OK) {
        goto out;
    }
    switch (o->mode) {
    case UCPERF_MODE_HIT:
        status = fb_warm(&fb, NULL, 0);
        if ((status == UCACHE_OK) && (o->warmup > 0)) {
            /* untimed: map the owners' memory, touch the code paths */
            memset(&scratch, 0, sizeof(scratch));
            po.iters = o->warmup;
            status = fb_measure(&po, &fb, NULL, o->warmup, &scratch);
        }
        if (status == UCACHE_OK) {
            status = fb_measure(o, &fb, NULL, total, &acc);
        }
        break;
    case UCPERF_MODE_MISS:
        /* pass after pass over the dataset, each with new versions */
        t0 = uc_time_ns();
        for (gen = 1; (status == UCACHE_OK) && (acc.ops + acc.errors < total); gen++) {
            if ((o->iters == 0) && (uc_time_ns() - t0 >= (uint64_t)(o->duration * 1e9))) {
                break;
            }
            fb_bump(&fb, (unsigned)gen);
            free(order);
            order = fb_shuffle(fb.nchunks, gen);
            if (order == NULL) {
                status = UCACHE_ERR_NO_MEMORY;
                break;
            }
            n = total - acc.ops - acc.errors;
            n = (n < fb.nchunks) ? n : fb.nchunks;
            po.iters    = (o->iters > 0) ? n : 0;
            po.duration = (o->iters > 0) ? 0 :
                          o->duration - (uc_time_ns() - t0) / 1e9;
            status = fb_measure(&po, &fb, order, n, &acc);
        }
        break;
    default: /* mixed: warm a share, then one shuffled epoch */
        order = fb_shuffle(fb.nchunks, 0x9e37);
        status = (order == NULL) ? UCACHE_ERR_NO_MEMORY :
                 fb_warm(&fb, order, (uint64_t)(o->hit_ratio * (double)fb.nchunks));
        free(order);
        order = (status == UCACHE_OK) ? fb_shuffle(fb.nchunks, 0x7f4a) : NULL;
        if ((status == UCACHE_OK) && (order == NULL)) {
            status = UCACHE_ERR_NO_MEMORY;
        }
        if (status == UCACHE_OK) {
            n = (o->iters > 0 && o->iters < fb.nchunks) ? o->iters : fb.nchunks;
            status = fb_measure(o, &fb, order, n, &acc);
        }
        break;
    }
    if (status == UCACHE_OK) {
        /* same host over shm: the owners' memory is mapped; over tcp the
         * owner replies with the chunk (or, with --path get, one-sided gets) */
        fb_finish(&acc, (strcmp(o->transport, "shm") == 0) ? "mapped" :
                        ((strcmp(o->path, "get") == 0) ||
                         ((strcmp(o->transport, "ofi") == 0) &&
                          (strncmp(getenv("UCACHE_OFI_PROVIDER"), "shm", 3) == 0))) ?
                        "get" : "am", res);
    }
out:
    free(order);
    free(acc.lat);
    fb_stop(&fb);
    return status;
}
