/*
 * test_view_shm.c - a daemon's view published for its host's readers
 * (fabric/view_shm.c): what is written is what is read; a reader never
 * gets a torn view while a writer (another process) rewrites and grows it;
 * malformed files are refused; one writer per path; a gone writer is not
 * alive.
 */
#include "tests/common.h"
#include "tests/fabric/fabric_util.h"
#include "fabric/view_shm.h"
#include "util/time.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* View @p epoch: n = 10 for odd epochs, 700 for even ones (each publish of
 * an even one after an odd one outgrows nothing; the first 700 grows the
 * file); every record derived from the epoch. */
static uf_member_t *view_of(uint64_t epoch, uint32_t *n_p)
{
    uint32_t n = (epoch & 1) ? 10 : 700, i;
    uf_member_t *m = calloc(n, sizeof(*m));

    for (i = 0; m && (i < n); i++) {
        m[i].id        = epoch * 100000 + i + 1;
        m[i].slot0     = i;
        m[i].weight    = 1;
        m[i].port      = (uint16_t)(7000 + i % 1000);
        m[i].mem_bytes = epoch;
        snprintf(m[i].host, sizeof(m[i].host), "10.0.%u.%u", i / 256, i % 256);
        snprintf(m[i].zone, sizeof(m[i].zone), "z%llu", (unsigned long long)(epoch % 7));
    }
    *n_p = n;
    return m;
}

/* Whether @p m (n records, of epoch @p epoch) is view_of(epoch), exactly. */
static bool view_is(const uf_member_t *m, uint32_t n, uint64_t epoch)
{
    uint32_t want, i;
    uf_member_t *v = view_of(epoch, &want);
    bool ok = (v != NULL) && (n == want);

    for (i = 0; ok && (i < n); i++) {
        ok = (m[i].id == v[i].id) && (m[i].slot0 == v[i].slot0) &&
             (m[i].port == v[i].port) && (m[i].mem_bytes == epoch) &&
             (strcmp(m[i].host, v[i].host) == 0) && (strcmp(m[i].zone, v[i].zone) == 0);
    }
    free(v);
    return ok;
}

static void test_vshm_roundtrip(void)
{
    char path[256];
    uf_vshm_t *w = NULL, *w2 = NULL, *r;
    uint64_t epoch, bytes;
    uf_member_t *m, *got;
    uint32_t n, gn, slots;

    tdir_make();
    snprintf(path, sizeof(path), "%s/view", tdir);
    CU_ASSERT_EQUAL(uf_vshm_open(path, &r), UCACHE_ERR_NOT_FOUND);
    m = view_of(3, &n);
    CU_ASSERT_EQUAL_FATAL(uf_vshm_publish(&w, path, 3, m, n, 65536, 4ull << 30), UCACHE_OK);
    free(m);
    CU_ASSERT_EQUAL_FATAL(uf_vshm_open(path, &r), UCACHE_OK);
    CU_ASSERT(uf_vshm_alive(r, 5 * UC_NSEC_PER_SEC));
    CU_ASSERT_EQUAL(uf_vshm_epoch(r), 3);
    CU_ASSERT_EQUAL_FATAL(uf_vshm_read(r, &got, &gn, &epoch, &slots, &bytes), UCACHE_OK);
    CU_ASSERT(view_is(got, gn, 3));
    CU_ASSERT((epoch == 3) && (slots == 65536) && (bytes == (4ull << 30)));
    free(got);
    /* it grows: a new file renamed over the path; the reader follows */
    m = view_of(4, &n);
    CU_ASSERT_EQUAL(uf_vshm_publish(&w, path, 4, m, n, 65536, 4ull << 30), UCACHE_OK);
    free(m);
    CU_ASSERT_EQUAL(uf_vshm_epoch(r), 4);
    CU_ASSERT_EQUAL_FATAL(uf_vshm_read(r, &got, &gn, &epoch, &slots, &bytes), UCACHE_OK);
    CU_ASSERT(view_is(got, gn, 4));
    free(got);
    /* one writer per path */
    m = view_of(5, &n);
    CU_ASSERT_EQUAL(uf_vshm_publish(&w2, path, 5, m, n, 0, 0), UCACHE_ERR_BUSY);
    CU_ASSERT_PTR_NULL(w2);
    free(m);
    /* the writer leaves: its file goes, and an open mapping says it is not alive */
    uf_vshm_close(w, true);
    CU_ASSERT(!uf_vshm_alive(r, 5 * UC_NSEC_PER_SEC));
    uf_vshm_close(r, false);
    CU_ASSERT_EQUAL(uf_vshm_open(path, &r), UCACHE_ERR_NOT_FOUND);
    tdir_remove();
}

/* A writer process rewrites the view as fast as it can, between a view of
 * 10 nodes and one of 700 (growing the file once); this process reads it
 * 3000 times: every read is one epoch's view exactly, never a mix. */
static void test_vshm_torn(void)
{
    char path[256];
    uint32_t n, gn, slots, i, bad = 0, seen10 = 0, seen700 = 0;
    uint64_t epoch, bytes, e;
    uf_vshm_t *w = NULL, *r;
    uf_member_t *m, *got;
    int status;
    pid_t pid;

    tdir_make();
    snprintf(path, sizeof(path), "%s/view", tdir);
    m = view_of(1, &n);
    CU_ASSERT_EQUAL_FATAL(uf_vshm_publish(&w, path, 1, m, n, 0, 0), UCACHE_OK);
    free(m);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        for (e = 2; ; e++) {
            m = view_of(e, &n);
            uf_vshm_publish(&w, path, e, m, n, 0, 0);
            free(m);
        }
    }
    CU_ASSERT_EQUAL_FATAL(uf_vshm_open(path, &r), UCACHE_OK);
    for (i = 0; i < 3000; i++) {
        if (uf_vshm_read(r, &got, &gn, &epoch, &slots, &bytes) != UCACHE_OK) {
            continue;  /* (AGAIN after 1000 tries: the writer is that fast) */
        }
        bad += !view_is(got, gn, epoch);
        seen10 += (gn == 10);
        seen700 += (gn == 700);
        free(got);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(seen10 + seen700 > 100);
    uf_vshm_close(r, false);
    uf_vshm_close(w, true);
    tdir_remove();
}

static void test_vshm_parse_bad(void)
{
    char path[256], buf[1 << 16];
    uint32_t n, gn, slots;
    uint64_t epoch, bytes;
    uf_member_t *m, *got;
    uf_vshm_t *w = NULL;
    size_t len, i;
    FILE *f;

    tdir_make();
    snprintf(path, sizeof(path), "%s/view", tdir);
    m = view_of(7, &n);
    CU_ASSERT_EQUAL_FATAL(uf_vshm_publish(&w, path, 7, m, n, 0, 0), UCACHE_OK);
    free(m);
    f = fopen(path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(uf_vshm_parse(buf, len, &got, &gn, &epoch, &slots, &bytes),
                          UCACHE_OK);
    CU_ASSERT(view_is(got, gn, 7));
    free(got);
    for (i = 0; i <= 10 * 128; i += 97) {    /* shorter than its 10 records: refused */
        CU_ASSERT_NOT_EQUAL(uf_vshm_parse(buf, i, &got, &gn, &epoch, &slots, &bytes),
                            UCACHE_OK);
    }
    buf[200] ^= 1;                           /* a flipped bit of a record */
    CU_ASSERT_EQUAL(uf_vshm_parse(buf, len, &got, &gn, &epoch, &slots, &bytes),
                    UCACHE_ERR_CORRUPT);
    uf_vshm_close(w, true);
    tdir_remove();
}

const tc_test_t view_shm_tests[] = {
    { "vshm_roundtrip", test_vshm_roundtrip },
    { "vshm_torn", test_vshm_torn },
    { "vshm_parse_bad", test_vshm_parse_bad },
    { NULL, NULL }
};
