/*
 * test_client.c - the read path (fabric/client.c) in one process: two
 * serving contexts joined with ucache_members_set() and a reader read an
 * object exactly, each chunk filled once; reads that come late while
 * chunks are evicted and refilled under them are retried, never wrong.
 */
#include "tests/common.h"
#include "tests/fabric/fabric_util.h"
#include "fabric/fabric.h"
#include "util/time.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The read paths a reader that owns nothing can take from owners in this
 * process: mapped, one-sided gets over tcp, FETCH replies over tcp. */
static const char *const paths[3] = { "mapped", "get", "am" };

/* Make new contexts read by path @p pass (0: the default, mapped). */
static void read_path_set(unsigned pass)
{
    if (pass == 0) {
        unsetenv("UCX_TLS");
        unsetenv("UCACHE_READ_PATH");
        unsetenv("UCACHE_EMULATED_RMA");
        return;
    }
    setenv("UCX_TLS", "tcp", 1);
    setenv("UCACHE_READ_PATH", paths[pass], 1);
    setenv("UCACHE_EMULATED_RMA", "yes", 1);   /* gets over tcp: the test mode */
}

/* Two serving contexts in one process joined with ucache_members_set():
 * both read a 5-chunk object exactly; each chunk is filled once. */
static void test_members_set(void)
{
    ucache_params_t p = pair_params;
    const void *recs[2];
    size_t lens[2], got;
    char uri[160], *data, *buf, junk[100] = { 0 };
    ucache_stats_t s[2];
    ucache_h c[2] = { NULL, NULL }, reader;
    unsigned k;

    data = pair_start(&p, 7, 251, uri, sizeof(uri), c, recs, lens);
    buf = malloc(300000);
    recs[1] = junk;                              /* a malformed record */
    lens[1] = sizeof(junk);
    CU_ASSERT_EQUAL(ucache_members_set(c[0], recs, lens, 2, 1), UCACHE_ERR_CORRUPT);
    ucache_member_record(c[1], &recs[1], &lens[1]);
    CU_ASSERT_EQUAL(ucache_members_set(c[0], recs, lens, 2, 0), UCACHE_ERR_INVALID);
    for (k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL(ucache_members_set(c[k], recs, lens, 2, 1), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(ucache_members_set(c[0], recs, lens, 2, 1), UCACHE_ERR_INVALID);
    for (k = 0; k < 2; k++) {
        memset(buf, 0, 300000);
        CU_ASSERT_EQUAL(ucache_read(c[k], uri, 0, 300000, buf, &got), UCACHE_OK);
        CU_ASSERT_EQUAL(got, 300000);
        CU_ASSERT(memcmp(buf, data, 300000) == 0);
        CU_ASSERT_EQUAL(ucache_read(c[k], uri, 70000, 1000, buf, &got), UCACHE_OK);
        CU_ASSERT(memcmp(buf, data + 70000, 1000) == 0);
    }
    for (k = 0; k < 2; k++) {
        ucache_stats_get(c[k], &s[k]);
        CU_ASSERT_EQUAL(s[k].view_nodes, 2);
        CU_ASSERT_EQUAL(s[k].origin_direct, 0);
    }
    CU_ASSERT_EQUAL(s[0].fills + s[1].fills, 5);  /* 300000 / 64K: 5 chunks */
    CU_ASSERT_EQUAL(s[0].chunk_misses + s[1].chunk_misses, 5);
    /* a reader context with "mpi" members and no view reads the origin */
    p.field_mask = UCACHE_PARAM_FIELD_MEMBERS;
    CU_ASSERT_EQUAL_FATAL(ucache_init(&p, &reader), UCACHE_OK);
    CU_ASSERT_EQUAL(ucache_read(reader, uri, 299990, 100, buf, &got), UCACHE_OK);
    CU_ASSERT_EQUAL(got, 10);
    CU_ASSERT(memcmp(buf, data + 299990, 10) == 0);
    ucache_finalize(reader);
    for (k = 0; k < 2; k++) {
        ucache_finalize(c[k]);
    }
    free(data);
    free(buf);
    tdir_remove();
}

/* Owners whose grace period (1 us) every read outlasts, as a fresh reader's
 * first touch of a mapping or a sanitizer's copy does: the reads still
 * count at once, none retried, on the mapped path and over one-sided gets
 * (tcp), because the slot still holds each chunk after its copy; the
 * index check verifies every chunk the same way. */
static void test_late_reads(void)
{
    ucache_params_t p = pair_params;
    ucache_probe_params_t prm = { .field_mask = UCACHE_PROBE_FIELD_DEEP, .deep = 64 };
    const void *recs[2];
    size_t lens[2], got, n;
    char uri[160], *data, *buf;
    ucache_node_info_t nodes[2];
    ucache_probe_result_t r;
    ucache_stats_t s[2];
    ucache_h c[2];
    unsigned k, pass, other, o;

    buf = malloc(300000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    setenv("UCACHE_GRACE", "1us", 1);
    for (pass = 0; pass < 2; pass++) {        /* mapped, then gets over tcp */
        if (pass == 1) {
            setenv("UCX_TLS", "tcp", 1);
            setenv("UCACHE_READ_PATH", "get", 1);
            setenv("UCACHE_EMULATED_RMA", "yes", 1);   /* both nodes: the test mode */
        }
        data = pair_start(&p, 11, 239, uri, sizeof(uri), c, recs, lens);
        for (k = 0; k < 2; k++) {
            CU_ASSERT_EQUAL(ucache_members_set(c[k], recs, lens, 2, 1), UCACHE_OK);
        }
        for (k = 0; k < 4; k++) {             /* misses, then hits */
            memset(buf, 0, 300000);
            CU_ASSERT_EQUAL(ucache_read(c[k % 2], uri, 0, 300000, buf, &got), UCACHE_OK);
            CU_ASSERT(memcmp(buf, data, 300000) == 0);
        }
        for (k = 0; k < 2; k++) {
            ucache_stats_get(c[k], &s[k]);
            CU_ASSERT_EQUAL(s[k].verify_retries, 0);
            CU_ASSERT_EQUAL(s[k].origin_direct, 0);
        }
        CU_ASSERT(s[0].chunk_hits + s[1].chunk_hits > 0);
        /* probe the node that holds chunks (placement may give one all 5) */
        o = (s[1].chunks_cached > 0) ? 1 : 0;
        CU_ASSERT_EQUAL_FATAL(ucache_nodes(c[1 - o], nodes, 2, &n), UCACHE_OK);
        other = nodes[0].self ? 1 : 0;
        CU_ASSERT_EQUAL(ucache_node_probe(c[1 - o], nodes[other].id, &prm, &r), UCACHE_OK);
        CU_ASSERT_STRING_EQUAL(r.path, (pass == 0) ? "mapped" : "get");
        CU_ASSERT_EQUAL(r.chunks_checked, r.stats.chunks_cached);
        CU_ASSERT(r.chunks_checked > 0);
        CU_ASSERT_EQUAL(r.chunks_bad + r.chunks_changed, 0);
        for (k = 0; k < 2; k++) {
            ucache_finalize(c[k]);
        }
        free(data);
        tdir_remove();
    }
    unsetenv("UCACHE_GRACE");
    read_path_set(0);
    free(buf);
}

/* Two serving contexts of @p p and a reader of @p rp that owns nothing,
 * joined in one view with ucache_members_set(). */
static void owners_and_reader(const ucache_params_t *p, const ucache_params_t *rp,
                              ucache_h c[2], ucache_h *reader)
{
    const void *recs[2];
    size_t lens[2];
    unsigned k;

    for (k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL_FATAL(ucache_init(p, &c[k]), UCACHE_OK);
        CU_ASSERT_EQUAL_FATAL(ucache_member_record(c[k], &recs[k], &lens[k]), UCACHE_OK);
    }
    CU_ASSERT_EQUAL_FATAL(ucache_init(rp, reader), UCACHE_OK);
    for (k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL(ucache_members_set(c[k], recs, lens, 2, 1), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(ucache_members_set(*reader, recs, lens, 2, 1), UCACHE_OK);
}

/* Flip a payload byte of chunk @p idx of @p uri at @p off in whichever of
 * the owners' stores holds it; false if none does.  Damage, as a bad DIMM
 * would do it: an owner may be sending those bytes at that moment (exported
 * memory is racy by design, and ThreadSanitizer is told so at export). */
static bool flip_owned(ucache_h c[2], const char *uri, const us_object_t *obj, uint64_t idx,
                       uint32_t cs, uint64_t off)
{
    us_key_t key = uf_chunk_key(uri, obj, idx, cs);
    us_loc_t loc;
    unsigned k;

    for (k = 0; k < 2; k++) {
        us_store_t *s = uf_node_store(c[k]->node);

        if (us_store_lookup(s, &key, &loc) == UCACHE_OK) {
            ((char *)us_store_base(s))[us_loc_payload_off(&loc) + off] ^= 0x40;
            return true;
        }
    }
    return false;
}

/*
 * Small reads of big chunks (1 MiB: 64 segments of 16 KiB) on every path -
 * mapped, one-sided gets over tcp, FETCH replies over tcp - by a reader
 * that owns nothing: 4 KiB at random places, across segment and chunk
 * borders, exact.  Each moves only the segments it touches: over gets, a
 * read moves at most two segments and the header, table and buckets; over
 * FETCH the owner's reply must be the table and the span (the reader takes
 * no other size).  A byte damaged in a segment the read does not touch
 * does not stop it; one in a segment it touches is caught, and the bytes
 * come exact from elsewhere.
 */
static void test_partial_reads(void)
{
    enum { CS = 1u << 20, LEN = 3 * CS + 12345, N = 200, PART = 4096 };
    ucache_params_t p = pair_params, rp = { 0 };
    size_t got;
    char uri[160], path[128], *data = malloc(LEN), *buf = malloc(LEN);
    us_object_t obj;
    ucache_stats_t s0, s1;
    ucache_h c[2], reader;
    uint64_t seed = 42, off, bytes;
    unsigned pass, i, k;

    p.chunk_size = CS;
    rp.field_mask = UCACHE_PARAM_FIELD_MEMBERS | UCACHE_PARAM_FIELD_CHUNK_SIZE;
    rp.members = "mpi";
    rp.chunk_size = CS;
    for (pass = 0; pass < 3; pass++) {
        read_path_set(pass);
        tdir_make();
        snprintf(path, sizeof(path), "%s/big", tdir);
        snprintf(uri, sizeof(uri), "file://%s", path);
        for (i = 0; i < LEN; i++) {
            data[i] = (char)(i * 13 + i / 4099 + pass);
        }
        write_file(path, data, LEN);
        CU_ASSERT_EQUAL_FATAL(us_origin_stat(NULL, uri, &obj), UCACHE_OK); /* its version */
        owners_and_reader(&p, &rp, c, &reader);
        CU_ASSERT_EQUAL(ucache_read(reader, uri, 0, LEN, buf, &got), UCACHE_OK); /* fills */
        CU_ASSERT_EQUAL(got, LEN);
        CU_ASSERT(memcmp(buf, data, LEN) == 0);

        ucache_stats_get(reader, &s0);
        for (i = 0; i < N; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            off = (i % 10 == 0) ? (uint64_t)(1 + i % 3) * CS - PART / 2 : /* chunk border */
                  (i % 10 == 1) ? (seed >> 33) % (LEN / US_SEGMENT - 1) * US_SEGMENT +
                                  US_SEGMENT - 100 :                       /* segment border */
                  (seed >> 33) % (LEN - PART);
            memset(buf, 0, PART);
            CU_ASSERT_EQUAL(ucache_read(reader, uri, off, PART, buf, &got), UCACHE_OK);
            CU_ASSERT_EQUAL(got, PART);
            CU_ASSERT(memcmp(buf, data + off, PART) == 0);
        }
        ucache_stats_get(reader, &s1);
        CU_ASSERT_EQUAL(s1.chunk_hits - s0.chunk_hits, s1.chunk_reads - s0.chunk_reads);
        CU_ASSERT_EQUAL(s1.verify_retries, s0.verify_retries);
        CU_ASSERT_EQUAL(s1.origin_direct, 0);
        bytes = s1.read_bytes - s0.read_bytes;
        if (pass == 0) {            /* straight from the mapped memory: no get, no FETCH */
            CU_ASSERT_EQUAL(bytes, 0);
            CU_ASSERT_EQUAL(s1.fetch_requests, s0.fetch_requests);
        } else if (pass == 1) {     /* <= 2 segments + header, table, buckets a chunk */
            CU_ASSERT(s1.get_reads > s0.get_reads);
            CU_ASSERT(bytes <= (s1.chunk_reads - s0.chunk_reads) * (2 * US_SEGMENT + 1024));
        } else {                    /* one FETCH per chunk read, its reply the span */
            CU_ASSERT(s1.fetch_requests - s0.fetch_requests >= s1.chunk_reads - s0.chunk_reads);
        }
        printf("\n  %s: %llu chunk reads of 4 KiB parts, %llu bytes moved by gets", paths[pass],
               (unsigned long long)(s1.chunk_reads - s0.chunk_reads), (unsigned long long)bytes);

        /* damage segment 0 of chunk 1: a part in segment 5 is still served */
        CU_ASSERT_FATAL(flip_owned(c, uri, &obj, 1, CS, 100));
        CU_ASSERT_EQUAL(ucache_read(reader, uri, CS + 5 * US_SEGMENT + 10, PART, buf, &got), UCACHE_OK);
        CU_ASSERT(memcmp(buf, data + CS + 5 * US_SEGMENT + 10, PART) == 0);
        ucache_stats_get(reader, &s0);
        CU_ASSERT_EQUAL(s0.verify_retries, s1.verify_retries);
        /* a part in segment 0 is caught there, and comes exact from elsewhere */
        CU_ASSERT_EQUAL(ucache_read(reader, uri, CS + 50, PART, buf, &got), UCACHE_OK);
        CU_ASSERT(memcmp(buf, data + CS + 50, PART) == 0);
        ucache_stats_get(reader, &s1);
        CU_ASSERT(s1.verify_retries > s0.verify_retries);
        CU_ASSERT(flip_owned(c, uri, &obj, 1, CS, 100));
        ucache_finalize(reader);
        for (k = 0; k < 2; k++) {
            ucache_finalize(c[k]);
        }
        tdir_remove();
    }
    read_path_set(0);
    free(data);
    free(buf);
}

/*
 * A read of many chunks over tcp keeps UCACHE_READ_WINDOW of them in flight:
 * a 6-chunk object (the last chunk short) read whole by a reader that owns
 * nothing, then a range that starts and ends inside chunks - misses filled
 * together, then hits, one FETCH a chunk, exact.  Then one owner is gone:
 * its chunks' FETCHes fail, and each is read again the single-chunk way
 * (the next owner, or the origin), still exact, the dead owner suspect.
 */
static void test_read_window(void)
{
    enum { CS = 64u << 10, LEN = 5 * CS + 1000 };
    ucache_params_t p = pair_params, rp = { 0 };
    size_t got;
    char uri[160], path[128], *data = malloc(LEN), *buf = malloc(LEN);
    ucache_stats_t s0, s1;
    ucache_h c[2], reader;
    unsigned i, k, gone;

    setenv("UCX_TLS", "tcp", 1);
    setenv("UCACHE_READ_WINDOW", "4", 1);
    rp.field_mask = UCACHE_PARAM_FIELD_MEMBERS | UCACHE_PARAM_FIELD_CHUNK_SIZE;
    rp.members    = "mpi";
    rp.chunk_size = CS;
    tdir_make();
    snprintf(path, sizeof(path), "%s/six", tdir);
    snprintf(uri, sizeof(uri), "file://%s", path);
    for (i = 0; i < LEN; i++) {
        data[i] = (char)(i * 7 + i / 1021);
    }
    write_file(path, data, LEN);
    owners_and_reader(&p, &rp, c, &reader);
    for (k = 0; k < 2; k++) {       /* misses, then hits */
        ucache_stats_get(reader, &s0);
        memset(buf, 0, LEN);
        CU_ASSERT_EQUAL(ucache_read(reader, uri, 0, LEN, buf, &got), UCACHE_OK);
        CU_ASSERT_EQUAL(got, LEN);
        CU_ASSERT(memcmp(buf, data, LEN) == 0);
        ucache_stats_get(reader, &s1);
        CU_ASSERT_EQUAL(s1.chunk_reads - s0.chunk_reads, 6);
        CU_ASSERT_EQUAL(s1.fetch_requests - s0.fetch_requests, 6);   /* one a chunk */
        CU_ASSERT_EQUAL((k == 0) ? s1.chunk_misses - s0.chunk_misses :
                                   s1.chunk_hits - s0.chunk_hits, 6);
    }
    CU_ASSERT_EQUAL(s1.chunks_windowed - s0.chunks_windowed, 6); /* owners set up: all */
    memset(buf, 0, LEN);            /* a range inside chunks 1 .. 4 */
    CU_ASSERT_EQUAL(ucache_read(reader, uri, CS + 100, 3 * CS, buf, &got), UCACHE_OK);
    CU_ASSERT(memcmp(buf, data + CS + 100, 3 * CS) == 0);
    ucache_stats_get(reader, &s0);
    CU_ASSERT_EQUAL(s0.chunks_windowed - s1.chunks_windowed, 4);
    /* an owner gone - one that holds chunks (placement may give one all
     * six): its chunks come another way */
    ucache_stats_get(c[1], &s0);
    gone = (s0.chunks_cached > 0) ? 1 : 0;
    ucache_finalize(c[gone]);
    ucache_stats_get(reader, &s0);
    memset(buf, 0, LEN);
    CU_ASSERT_EQUAL(ucache_read(reader, uri, 0, LEN, buf, &got), UCACHE_OK);
    CU_ASSERT(memcmp(buf, data, LEN) == 0);
    ucache_stats_get(reader, &s1);
    CU_ASSERT(s1.failovers > s0.failovers);
    CU_ASSERT_EQUAL(s1.chunk_reads - s0.chunk_reads, 6);
    ucache_finalize(reader);
    ucache_finalize(c[1 - gone]);
    tdir_remove();
    unsetenv("UCX_TLS");
    unsetenv("UCACHE_READ_WINDOW");
    free(data);
    free(buf);
}

/* The threads of this process (/proc/self/status). */
static unsigned thread_count(void)
{
    char line[256];
    unsigned n = 0;
    FILE *f = fopen("/proc/self/status", "r");

    while ((f != NULL) && (fgets(line, sizeof(line), f) != NULL)) {
        if (sscanf(line, "Threads: %u", &n) == 1) {
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return n;
}

typedef struct posted_job {
    ucache_h    reader;
    const char *uri, *data;
    uint64_t    len;
    unsigned    first, ok;
} posted_job_t;

/* Post 8 whole-chunk-and-a-bit reads from chunk first on, wait for them
 * (a caller of its own, while another drives): how many came exact. */
static void *posted_job(void *arg)
{
    enum { CS = 64u << 10 };
    posted_job_t *j = arg;
    ucache_read_req_t reqs[8];
    char *bufs = malloc(8 * (CS + 100));
    unsigned i;

    memset(reqs, 0, sizeof(reqs));
    for (i = 0; i < 8; i++) {
        reqs[i].uri    = j->uri;
        reqs[i].offset = (uint64_t)((j->first + i) % 8) * CS;
        reqs[i].len    = CS + 100;
        reqs[i].buf    = bufs + i * (CS + 100);
    }
    if ((ucache_read_post(j->reader, reqs, 8) == UCACHE_OK) &&
        (ucache_wait(j->reader, reqs, 8, 30 * UC_NSEC_PER_SEC) == UCACHE_OK)) {
        for (i = 0; i < 8; i++) {
            j->ok += (reqs[i].nread == ((reqs[i].offset + CS + 100 <= j->len) ?
                                        CS + 100 : j->len - reqs[i].offset)) &&
                     (memcmp(reqs[i].buf, j->data + reqs[i].offset, reqs[i].nread) == 0);
        }
    }
    free(bufs);
    return NULL;
}

/*
 * Posted reads are transport requests in flight, with no thread of their
 * own: on each path (mapped, gets, active messages), 24 reads posted at
 * once - whole chunks, ranges across chunks, 4 KiB parts, a missing
 * object, a read past the end - start no thread and do nothing until
 * ucache_wait() drives them; a wait for one drives them all; each ends
 * with its own status and exact bytes.  Two threads that post and wait at
 * once share the driving.  Then an owner is gone: posted reads of its
 * chunks come another way, exact.
 */
static void test_posted_reads(void)
{
    enum { CS = 64u << 10, LEN = 8 * CS + 777, N = 24, PART = 4096 };
    ucache_params_t p = pair_params, rp = { 0 };
    ucache_read_req_t reqs[N];
    char uri[160], missing[192], path[128], *data = malloc(LEN), *bufs = malloc(N * 3 * CS);
    ucache_stats_t s0, s1;
    ucache_h c[2], reader;
    posted_job_t jobs[2];
    pthread_t th[2];
    uint64_t want;
    size_t got;
    unsigned pass, i, k, threads, gone;

    rp.field_mask = UCACHE_PARAM_FIELD_MEMBERS | UCACHE_PARAM_FIELD_CHUNK_SIZE;
    rp.members    = "mpi";
    rp.chunk_size = CS;
    setenv("UCACHE_READ_WINDOW", "4", 1);
    for (pass = 0; pass < 3; pass++) {
        read_path_set(pass);
        tdir_make();
        snprintf(path, sizeof(path), "%s/posted", tdir);
        snprintf(uri, sizeof(uri), "file://%s", path);
        snprintf(missing, sizeof(missing), "file://%s/none", tdir);
        for (i = 0; i < LEN; i++) {
            data[i] = (char)(i * 11 + i / 3001 + pass);
        }
        write_file(path, data, LEN);
        owners_and_reader(&p, &rp, c, &reader);
        CU_ASSERT_EQUAL(ucache_read(reader, uri, 0, LEN, bufs, &got), UCACHE_OK); /* fills */
        CU_ASSERT(memcmp(bufs, data, LEN) == 0);

        memset(reqs, 0, sizeof(reqs));
        memset(bufs, 0, N * 3 * CS);
        for (i = 0; i < N; i++) {
            reqs[i].uri = uri;
            reqs[i].buf = bufs + i * 3 * CS;
            if (i < 8) {                   /* whole chunks (the last short) */
                reqs[i].offset = (uint64_t)i * CS;
                reqs[i].len    = CS;
            } else if (i < 16) {           /* across 2 or 3 chunks, to the end */
                reqs[i].offset = (uint64_t)(i - 8) * CS + CS / 2 + 100;
                reqs[i].len    = 2 * CS + 5000;
            } else {                       /* 4 KiB parts */
                reqs[i].offset = (uint64_t)(i - 16) * 70001 % (LEN - PART);
                reqs[i].len    = PART;
            }
        }
        reqs[N - 2].uri    = missing;
        reqs[N - 1].offset = LEN + 1;
        threads = thread_count();
        ucache_stats_get(reader, &s0);
        CU_ASSERT_EQUAL_FATAL(ucache_read_post(reader, reqs, N), UCACHE_OK);
        for (i = 0, k = 0; i < N; i++) {
            k += (reqs[i].status == UCACHE_INPROGRESS);
        }
        CU_ASSERT_EQUAL(k, N);                          /* nothing runs them yet */
        CU_ASSERT_EQUAL(thread_count(), threads);       /* and no thread is there to */
        CU_ASSERT_EQUAL(ucache_wait(reader, &reqs[0], 1, 30 * UC_NSEC_PER_SEC), UCACHE_OK);
        CU_ASSERT_EQUAL(ucache_wait(reader, reqs, N, 30 * UC_NSEC_PER_SEC), UCACHE_ERR_NOT_FOUND);
        for (i = 0; i < N - 2; i++) {
            want = (reqs[i].offset + reqs[i].len <= LEN) ? reqs[i].len : LEN - reqs[i].offset;
            CU_ASSERT_EQUAL(reqs[i].status, UCACHE_OK);
            CU_ASSERT_EQUAL(reqs[i].nread, want);
            CU_ASSERT(memcmp(reqs[i].buf, data + reqs[i].offset, want) == 0);
        }
        CU_ASSERT_EQUAL(reqs[N - 2].status, UCACHE_ERR_NOT_FOUND);
        CU_ASSERT_EQUAL(reqs[N - 1].status, UCACHE_ERR_OUT_OF_RANGE);
        CU_ASSERT_EQUAL(thread_count(), threads);
        ucache_stats_get(reader, &s1);
        CU_ASSERT_EQUAL(s1.origin_direct, s0.origin_direct);
        CU_ASSERT_EQUAL(s1.chunk_hits - s0.chunk_hits, s1.chunk_reads - s0.chunk_reads);
        CU_ASSERT(s1.chunk_reads - s0.chunk_reads >= 8 + 8 * 2 - 1 + 6);
        CU_ASSERT_EQUAL(s1.chunks_windowed - s0.chunks_windowed, s1.chunk_reads - s0.chunk_reads);
        if (pass == 2) {  /* a FETCH a chunk, no other way */
            CU_ASSERT_EQUAL(s1.fetch_requests - s0.fetch_requests, s1.chunk_reads - s0.chunk_reads);
        }

        for (k = 0; k < 2; k++) {          /* two callers at once */
            jobs[k] = (posted_job_t){ reader, uri, data, LEN, k * 3, 0 };
            CU_ASSERT_EQUAL_FATAL(pthread_create(&th[k], NULL, posted_job, &jobs[k]), 0);
        }
        for (k = 0; k < 2; k++) {
            pthread_join(th[k], NULL);
            CU_ASSERT_EQUAL(jobs[k].ok, 8);
        }

        ucache_stats_get(c[1], &s0);       /* an owner gone: one that holds chunks */
        gone = (s0.chunks_cached > 0) ? 1 : 0;
        ucache_finalize(c[gone]);
        ucache_stats_get(reader, &s0);
        memset(bufs, 0, N * 3 * CS);
        CU_ASSERT_EQUAL(ucache_read_post(reader, reqs, 8), UCACHE_OK);
        CU_ASSERT_EQUAL(ucache_wait(reader, reqs, 8, 60 * UC_NSEC_PER_SEC), UCACHE_OK);
        for (i = 0; i < 8; i++) {
            want = (reqs[i].offset + reqs[i].len <= LEN) ? reqs[i].len : LEN - reqs[i].offset;
            CU_ASSERT_EQUAL(reqs[i].nread, want);
            CU_ASSERT(memcmp(reqs[i].buf, data + reqs[i].offset, want) == 0);
        }
        ucache_stats_get(reader, &s1);
        CU_ASSERT_EQUAL(s1.chunk_reads - s0.chunk_reads, 8);
        if (pass > 0) {                    /* the dead one's chunks failed over */
            CU_ASSERT(s1.failovers > s0.failovers);
        }
        ucache_finalize(reader);
        ucache_finalize(c[1 - gone]);
        tdir_remove();
    }
    read_path_set(0);
    unsetenv("UCACHE_READ_WINDOW");
    free(data);
    free(bufs);
}

const tc_test_t client_tests[] = {
    { "posted_reads", test_posted_reads },
    { "read_window", test_read_window },
    { "partial_reads", test_partial_reads },
    { "members_set", test_members_set },
    { "late_reads", test_late_reads },
    { NULL, NULL }
};
