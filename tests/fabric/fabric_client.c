/*
 * fabric_client.c - the reader side of the multi-process fabric tests
 * (test_fabric.sh): each mode reads through ucache_read() and compares
 * every byte with the origin file read directly.  Exit 0 only if every
 * read succeeded with exactly the origin's bytes (mode bad: only if every
 * bad input got its documented status).
 *   verify N FILE...        N random (offset, length) reads, plain and posted
 *   loop SECONDS FILE...    random reads until SECONDS pass (or the file
 *                           FC_STOP names exists), every other one a
 *                           batch of 4 posted at once (fault tests)
 * Every read is timed: the last line gives the longest, and with
 * FC_BOUND_MS set, a read slower than that is printed and fails the run.
 *   same THREADS START FILE whole-file reads from THREADS threads, all
 *                           starting at CLOCK_REALTIME second START
 *   pause FLAG FILE...      read every file, print "warm", wait for FLAG to
 *                           exist (the test stops an owner), read them all
 *                           again and print what the second pass needed
 *   hits N FILE             warm, then N same-host hits between two marker
 *                           syscalls (the test counts this thread's calls)
 *   bad FILE                bad input: unknown scheme, missing file, offset
 *                           past the end, zero length, NULL buffer
 * Prints one JSON stats line (the reader's counters) to stdout at the end.
 */
#include "ucache.h"
#include "tools/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES 16

static ucache_h ctx;
static int nfiles;
static char *paths[MAX_FILES];
static char uris[MAX_FILES][1100];
static unsigned long long wrong, failed, reads, nbytes;
static unsigned long long longest_ns, over_bound; /* loop: the slowest read */
static unsigned long long bound_ns;  /* FC_BOUND_MS: reads slower are counted */
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static off_t file_size(const char *path)
{
    struct stat st;

    return (stat(path, &st) == 0) ? st.st_size : -1;
}

/* A read of [off, off+len) of file @p f that ended with @p st and @p got
 * bytes at @p a after @p ns: counted, timed against the bound, and its
 * bytes compared with the file's (read into @p b). */
static void read_done(int f, uint64_t off, size_t len, ucache_status_t st, size_t got,
                      unsigned long long ns, const char *what, const char *a, char *b)
{
    off_t size = file_size(paths[f]);
    size_t want;
    ssize_t n;
    int fd;

    pthread_mutex_lock(&count_lock);
    reads++;
    nbytes += (st == UCACHE_OK) ? got : 0;
    if (ns > longest_ns) {
        longest_ns = ns;
    }
    if ((bound_ns > 0) && (ns > bound_ns)) {
        over_bound++;
        struct timespec now;

        clock_gettime(CLOCK_REALTIME, &now);
        fprintf(stderr, "SLOW %s %s [%llu, +%zu): %.3f s (bound %.3f s), ended at %lld.%03ld\n",
                what, uris[f], (unsigned long long)off, len, ns / 1e9, bound_ns / 1e9,
                (long long)now.tv_sec, now.tv_nsec / 1000000L);
    }
    if (st != UCACHE_OK) {
        failed++;
        fprintf(stderr, "%s %s [%llu, +%zu): %s\n", what, uris[f],
                (unsigned long long)off, len, ucache_strerror(st));
        pthread_mutex_unlock(&count_lock);
        return;
    }
    pthread_mutex_unlock(&count_lock);
    want = ((off_t)off >= size) ? 0 : (size - (off_t)off < (off_t)len) ?
           (size_t)(size - (off_t)off) : len;
    fd = open(paths[f], O_RDONLY);
    n = (fd >= 0) ? pread(fd, b, want, (off_t)off) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if ((got != want) || (n != (ssize_t)want) || (memcmp(a, b, want) != 0)) {
        pthread_mutex_lock(&count_lock);
        wrong++;
        pthread_mutex_unlock(&count_lock);
        size_t first = 0, last = 0, k;

        for (k = 0; (k < want) && (k < got); k++) {  /* where they differ */
            if (a[k] != b[k]) {
                first = (last == 0) ? k : first;
                last  = k + 1;
            }
        }
        fprintf(stderr, "WRONG BYTES %s [%llu, +%zu): got %zu want %zu; they differ in "
                "[%llu, %llu) of the object\n", uris[f], (unsigned long long)off, len, got,
                want, (unsigned long long)(off + first), (unsigned long long)(off + last));
    }
}

static unsigned long long ns_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (unsigned long long)(t1.tv_sec - t0->tv_sec) * 1000000000ull +
           (unsigned long long)t1.tv_nsec - (unsigned long long)t0->tv_nsec;
}

/* Read [off, off+len) of file @p f both ways; count what differs. */
static void check_read(int f, uint64_t off, size_t len, char *a, char *b)
{
    struct timespec t0;
    ucache_status_t st;
    size_t got = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    st = ucache_read(ctx, uris[f], off, len, a, &got);
    read_done(f, off, len, st, got, ns_since(&t0), "read", a, b);
}

static void random_read(uint64_t *seed, char *a, char *b)
{
    int f = (int)(rnd(seed) % (uint64_t)nfiles);
    off_t size = file_size(paths[f]);
    uint64_t off, len;

    if (size <= 0) {
        return;
    }
    off = rnd(seed) % (uint64_t)size;
    switch (rnd(seed) % 4) {
    case 0:  len = 1 + rnd(seed) % 4096; break;          /* small */
    case 1:  len = 1 + rnd(seed) % (3u << 20); break;    /* up to 3 MiB */
    case 2:  off = 0; len = (uint64_t)size; break;      /* whole */
    default: len = 1 + rnd(seed) % (8u << 20); break;    /* past the end */
    }
    check_read(f, off, (size_t)len, a, b);
}

#define FC_POSTED 4

/* FC_POSTED random reads posted at once and waited for together (the
 * bound applies to the batch): each counted and compared like one. */
static void random_posted(uint64_t *seed, char *a, char *b)
{
    ucache_read_req_t reqs[FC_POSTED];
    int fs[FC_POSTED];
    struct timespec t0;
    unsigned long long ns;
    off_t size;
    int j;

    memset(reqs, 0, sizeof(reqs));
    for (j = 0; j < FC_POSTED; j++) {
        fs[j] = (int)(rnd(seed) % (uint64_t)nfiles);
        size  = file_size(paths[fs[j]]);
        reqs[j].uri    = uris[fs[j]];
        reqs[j].offset = (size > 0) ? rnd(seed) % (uint64_t)size : 0;
        reqs[j].len    = 1 + rnd(seed) % (2u << 20);
        reqs[j].buf    = a + (size_t)j * (4u << 20);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (ucache_read_post(ctx, reqs, FC_POSTED) != UCACHE_OK) {
        pthread_mutex_lock(&count_lock);
        failed++;
        pthread_mutex_unlock(&count_lock);
        fprintf(stderr, "posted reads: not posted\n");
        return;
    }
    ucache_wait(ctx, reqs, FC_POSTED, UINT64_MAX); /* each ends by its deadlines */
    ns = ns_since(&t0);
    for (j = 0; j < FC_POSTED; j++) {
        read_done(fs[j], reqs[j].offset, reqs[j].len, reqs[j].status, reqs[j].nread, ns,
                  "posted read", reqs[j].buf, b);
    }
}

static int mode_verify(long n)
{
    char *a = malloc(16u << 20), *b = malloc(16u << 20);
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    ucache_read_req_t reqs[8];
    char *bufs[8];
    long i;
    int j, f;

    for (i = 0; i < n; i++) {
        random_read(&seed, a, b);
    }
    /* the posted form: 8 reads of whole files at once */
    for (j = 0; j < 8; j++) {
        f = j % nfiles;
        bufs[j] = malloc((size_t)file_size(paths[f]) + 1);
        memset(&reqs[j], 0, sizeof(reqs[j]));
        reqs[j].uri = uris[f];
        reqs[j].len = (size_t)file_size(paths[f]) + 1;
        reqs[j].buf = bufs[j];
    }
    if ((ucache_read_post(ctx, reqs, 8) != UCACHE_OK) ||
        (ucache_wait(ctx, reqs, 8, 60ull * 1000000000ull) != UCACHE_OK)) {
        failed++;
        fprintf(stderr, "posted reads failed\n");
    } else {
        for (j = 0; j < 8; j++) {
            f = j % nfiles;
            int fd = open(paths[f], O_RDONLY);
            ssize_t m = pread(fd, b, (size_t)file_size(paths[f]), 0);
            close(fd);
            reads++;
            if ((reqs[j].nread != (size_t)m) || memcmp(bufs[j], b, (size_t)m)) {
                wrong++;
                fprintf(stderr, "WRONG BYTES in posted read %d\n", j);
            }
        }
    }
    for (j = 0; j < 8; j++) {
        free(bufs[j]);
    }
    free(a);
    free(b);
    return 0;
}

static int mode_loop(double seconds)
{
    char *a = malloc(16u << 20), *b = malloc(16u << 20);
    uint64_t seed = 12345 ^ (uint64_t)getpid();
    struct timespec t0, t;

    const char *mark = getenv("FC_MARK"), *stop = getenv("FC_STOP");
    unsigned long long max_reads = (getenv("FC_MAX_READS") != NULL) ?
                                   strtoull(getenv("FC_MAX_READS"), NULL, 10) : 100000;
    ucache_stats_t st;
    bool marked = false;
    unsigned long iter = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        /* FC_MARK=FILE: the counters once FILE exists (a phase ends) */
        if ((mark != NULL) && !marked && (access(mark, F_OK) == 0) &&
            (ucache_stats_get(ctx, &st) == UCACHE_OK)) {
            tool_stats_json(stdout, "mark", &st);
            marked = true;
        }
        if (++iter % 2 == 0) {
            random_posted(&seed, a, b); /* reads in flight through the faults */
        } else {
            random_read(&seed, a, b);
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 < seconds &&
             reads < max_reads && ((stop == NULL) || (access(stop, F_OK) != 0)));
    free(a);
    free(b);
    return 0;
}

static time_t start_at;

static void *same_thread(void *arg)
{
    size_t size = (size_t)file_size(paths[0]);
    char *a = malloc(size + 1), *b = malloc(size + 1);
    struct timespec now;

    (void)arg;
    do { /* spin to the common start second so the misses overlap */
        clock_gettime(CLOCK_REALTIME, &now);
    } while (now.tv_sec < start_at);
    check_read(0, 0, size + 1, a, b);
    free(a);
    free(b);
    return NULL;
}

static int mode_same(int threads)
{
    pthread_t th[64];
    int i;

    for (i = 0; i < threads && i < 64; i++) {
        pthread_create(&th[i], NULL, same_thread, NULL);
    }
    for (i = 0; i < threads && i < 64; i++) {
        pthread_join(th[i], NULL);
    }
    return 0;
}

static int mode_hits(long n)
{
    char *a = malloc(1u << 20), *b = malloc(1u << 20);
    size_t got;
    long i;

    check_read(0, 0, 65536, a, b);   /* warm: a miss, then mapped */
    check_read(0, 0, 65536, a, b);
    printf("tid %ld\n", (long)syscall(SYS_gettid));
    fflush(stdout);
    syscall(SYS_getppid);           /* marker: the loop starts */
    syscall(SYS_getppid);
    for (i = 0; i < n; i++) {
        if (ucache_read(ctx, uris[0], (uint64_t)(i % 16) * 4096, 4096, a, &got) !=
            UCACHE_OK) {
            failed++;
        }
    }
    syscall(SYS_getpgrp);           /* marker: the loop ended */
    syscall(SYS_getpgrp);
    check_read(0, 0, 65536, a, b);
    reads += (unsigned long long)n;
    free(a);
    free(b);
    return 0;
}

static int mode_pause(const char *flag)
{
    char *a = malloc(16u << 20), *b = malloc(16u << 20);
    ucache_stats_t s0, s1;
    int f, i;

    for (f = 0; f < nfiles; f++) {
        check_read(f, 0, (size_t)file_size(paths[f]) + 1, a, b);
    }
    printf("warm\n");
    fflush(stdout);
    for (i = 0; (i < 3000) && (access(flag, F_OK) != 0); i++) {
        usleep(10000);
    }
    ucache_stats_get(ctx, &s0);
    for (f = 0; f < nfiles; f++) {
        check_read(f, 0, (size_t)file_size(paths[f]) + 1, a, b);
    }
    ucache_stats_get(ctx, &s1);
    printf("second pass: chunks %llu hits %llu misses %llu failovers %llu fetches %llu\n",
           (unsigned long long)(s1.chunk_reads - s0.chunk_reads),
           (unsigned long long)(s1.chunk_hits - s0.chunk_hits),
           (unsigned long long)(s1.chunk_misses - s0.chunk_misses),
           (unsigned long long)(s1.failovers - s0.failovers),
           (unsigned long long)(s1.fetch_requests - s0.fetch_requests));
    free(a);
    free(b);
    return 0;
}

static int expect(const char *what, ucache_status_t got, ucache_status_t want)
{
    if (got != want) {
        fprintf(stderr, "bad input '%s': got %s, want %s\n", what,
                ucache_status_name(got), ucache_status_name(want));
        return 1;
    }
    printf("bad input '%s': %s (%s)\n", what, ucache_status_name(got),
           ucache_strerror(got));
    return 0;
}

static int mode_bad(void)
{
    off_t size = file_size(paths[0]);
    char buf[256];
    size_t got = 77;
    int bad = 0;

    bad |= expect("unknown scheme", ucache_read(ctx, "gopher://x/y", 0, 10, buf, &got),
                  UCACHE_ERR_UNSUPPORTED);
    bad |= expect("no scheme", ucache_read(ctx, "/etc/passwd", 0, 10, buf, &got),
                  UCACHE_ERR_UNSUPPORTED);
    bad |= expect("relative file URI", ucache_read(ctx, "file://rel/x", 0, 10, buf, &got),
                  UCACHE_ERR_INVALID);
    bad |= expect("missing file",
                  ucache_read(ctx, "file:///nonexistent/ucache/x", 0, 10, buf, &got),
                  UCACHE_ERR_NOT_FOUND);
    bad |= expect("offset past the end",
                  ucache_read(ctx, uris[0], (uint64_t)size + 1, 10, buf, &got),
                  UCACHE_ERR_OUT_OF_RANGE);
    bad |= expect("zero length", ucache_read(ctx, uris[0], 0, 0, buf, &got),
                  UCACHE_ERR_INVALID);
    bad |= expect("NULL buffer", ucache_read(ctx, uris[0], 0, 10, NULL, &got),
                  UCACHE_ERR_INVALID);
    bad |= expect("a directory", ucache_read(ctx, "file:///tmp", 0, 10, buf, &got),
                  UCACHE_ERR_INVALID);
    bad |= expect("offset at the end", ucache_read(ctx, uris[0], (uint64_t)size, 10,
                                                   buf, &got), UCACHE_OK);
    if (got != 0) {
        fprintf(stderr, "a read at the end returned %zu bytes\n", got);
        bad = 1;
    }
    return bad;
}

int main(int argc, char **argv)
{
    const char *origin, *root;
    ucache_stats_t st;
    ucache_status_t status;
    int rc = 2, first, i;

    if (argc < 3) {
        fprintf(stderr, "usage: fabric_client MODE ARG... (see the source)\n");
        return 2;
    }
    first = (strcmp(argv[1], "bad") == 0) ? 2 : (strcmp(argv[1], "same") == 0) ? 4 : 3;
    /* FC_ORIGIN=http://host:port with FC_ROOT=/dir: the files are read
     * through that origin (FC_ROOT/a/b is FC_ORIGIN/a/b), else file:// */
    origin = getenv("FC_ORIGIN");
    root   = getenv("FC_ROOT");
    for (i = first; (i < argc) && (nfiles < MAX_FILES); i++) {
        paths[nfiles] = argv[i];
        if ((origin != NULL) && (root != NULL) &&
            (strncmp(argv[i], root, strlen(root)) == 0)) {
            snprintf(uris[nfiles], sizeof(uris[0]), "%s%s", origin,
                     argv[i] + strlen(root));
        } else {
            snprintf(uris[nfiles], sizeof(uris[0]), "file://%s", argv[i]);
        }
        nfiles++;
    }
    if (nfiles == 0) {
        fprintf(stderr, "fabric_client: no files\n");
        return 2;
    }
    if (getenv("FC_BOUND_MS") != NULL) {
        bound_ns = strtoull(getenv("FC_BOUND_MS"), NULL, 10) * 1000000ull;
    }
    status = ucache_init(NULL, &ctx);
    if (status != UCACHE_OK) {
        fprintf(stderr, "ucache_init: %s\n", ucache_strerror(status));
        return 1;
    }
    if (strcmp(argv[1], "verify") == 0) {
        rc = mode_verify(atol(argv[2]));
    } else if (strcmp(argv[1], "loop") == 0) {
        rc = mode_loop(atof(argv[2]));
    } else if (strcmp(argv[1], "same") == 0) {
        start_at = (time_t)atol(argv[3]);
        rc = mode_same(atoi(argv[2]));
    } else if (strcmp(argv[1], "pause") == 0) {
        rc = mode_pause(argv[2]);
    } else if (strcmp(argv[1], "hits") == 0) {
        rc = mode_hits(atol(argv[2]));
    } else if (strcmp(argv[1], "bad") == 0) {
        rc = mode_bad();
    }
    if (ucache_stats_get(ctx, &st) == UCACHE_OK) {
        tool_stats_json(stdout, "fabric_client", &st);
    }
    ucache_finalize(ctx);
    printf("reads %llu wrong %llu failed %llu longest_ms %llu over_bound %llu bytes %llu\n",
           reads, wrong, failed, longest_ns / 1000000ull, over_bound, nbytes);
    return (rc != 0) ? rc : ((wrong > 0) || (failed > 0) || (over_bound > 0)) ? 1 : 0;
}
