/*
 * test_node.c - the owner service (fabric/node.c) alone, in one process:
 * a serving transport context and a node over it, filled from a file://
 * origin through the node's own path (uf_node_fetch_local).  A miss is
 * filled once and then a hit, its bytes in the store equal the origin's;
 * an origin outside UCACHE_ALLOW is refused; a draining node refuses
 * misses (MOVED) but serves hits; pin, unpin and evict; the counters.
 */
#include "fabric/fabric.h"
#include "tests/common.h"
#include "tests/fabric/fabric_util.h"
#include "util/time.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include <stdio.h>
#include <unistd.h>

#define CHUNK (64u << 10)
#define NCHUNKS 4

static char nd_dir[64], nd_file[96], nd_other[96], nd_uri[128], nd_uri_other[128];

static void file_write(const char *path, uint64_t seed)
{
    FILE *f = fopen(path, "w");
    uint64_t x = seed | 1;
    unsigned i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (i = 0; i < NCHUNKS * CHUNK / 8; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        fwrite(&x, 8, 1, f);
    }
    fclose(f);
}

/* The FETCH a reader would send for chunk @p idx of @p u. */
static void req_make(const char *u, uint32_t idx, uint16_t flags, uf_fetch_req_t *req)
{
    us_object_t obj;
    us_key_t key;

    CU_ASSERT_EQUAL_FATAL(us_origin_stat(NULL, u, &obj), UCACHE_OK);
    key = uf_chunk_key(u, &obj, idx, CHUNK);
    memset(req, 0, sizeof(*req));
    req->magic       = UF_PROTO_MAGIC;
    req->version     = UF_PROTO_VERSION;
    req->flags       = flags;
    req->key_hi      = key.hi;
    req->key_lo      = key.lo;
    req->obj_size    = obj.size;
    req->obj_version = obj.version;
    req->chunk_idx   = idx;
    req->chunk_size  = CHUNK;
    req->uri_len     = (uint16_t)strlen(u);
}

/* Chunk @p idx as the store holds it equals the file's bytes: 0; missing: 1. */
static int chunk_check(uf_node_t *node, const uf_fetch_req_t *req, const char *path)
{
    us_store_t *s = uf_node_store(node);
    us_key_t key = { req->key_hi, req->key_lo };
    static uint8_t got[CHUNK], want[CHUNK];
    size_t n = 0;
    FILE *f;

    if (us_read_raw(us_store_layout(s), us_store_base(s), &key, got, CHUNK, &n, 3,
                    NULL) != UCACHE_OK) {
        return 1;
    }
    f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fseek(f, (long)req->chunk_idx * CHUNK, SEEK_SET), 0);
    CU_ASSERT_EQUAL(fread(want, 1, CHUNK, f), CHUNK);
    fclose(f);
    CU_ASSERT_EQUAL(n, CHUNK);
    CU_ASSERT_EQUAL(memcmp(got, want, CHUNK), 0);
    return 0;
}

static void test_node_fill_hit_refuse_drain(void)
{
    ut_params_t tp = { .field_mask = UT_PARAM_FIELD_PROGRESS | UT_PARAM_FIELD_SERVE,
                       .progress = UC_PROGRESS_THREAD, .serve = true };
    uf_node_stats_t st;
    us_store_stats_t ss;
    uf_fetch_req_t req;
    uf_node_t *node = NULL;
    ut_ctx_t *tr = NULL;
    uc_config_t cfg;
    uint32_t how;
    us_loc_t loc;

    snprintf(nd_dir, sizeof(nd_dir), "/tmp/ucache-node.XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(nd_dir));
    snprintf(nd_file, sizeof(nd_file), "%s/data", nd_dir);
    snprintf(nd_other, sizeof(nd_other), "%s.other", nd_dir);
    snprintf(nd_uri, sizeof(nd_uri), "file://%s", nd_file);
    snprintf(nd_uri_other, sizeof(nd_uri_other), "file://%s", nd_other);
    file_write(nd_file, 0x1234);
    file_write(nd_other, 0x5678);

    CU_ASSERT_EQUAL_FATAL(uc_config_load(&cfg), UCACHE_OK);
    cfg.mem_bytes     = 16u << 20;
    cfg.chunk_size    = CHUNK;
    cfg.index_chunk   = CHUNK;
    cfg.fetch_threads = 2;
    cfg.mem_lock      = 0;
    snprintf(cfg.allow, sizeof(cfg.allow), "file://%s/", nd_dir);
    setenv("UCX_TLS", "posix,sysv,self,tcp", 1);
    CU_ASSERT_EQUAL_FATAL(ut_ctx_create(NULL, &tp, &tr), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(uf_node_create(tr, &cfg, NULL, &node), UCACHE_OK);

    /* a miss is filled once, then it is a hit; the store holds the bytes */
    req_make(nd_uri, 1, 0, &req);
    CU_ASSERT_EQUAL(chunk_check(node, &req, nd_file), 1);
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, nd_uri, &loc, &how), UCACHE_OK);
    CU_ASSERT_EQUAL(how, UF_HOW_FILLED);
    CU_ASSERT_EQUAL(loc.length, CHUNK);
    CU_ASSERT_EQUAL(chunk_check(node, &req, nd_file), 0);
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, nd_uri, &loc, &how), UCACHE_OK);
    CU_ASSERT_EQUAL(how, UF_HOW_HIT);
    uf_node_stats(node, &st);
    CU_ASSERT_EQUAL(st.fills, 1);
    CU_ASSERT_EQUAL(st.fill_bytes, CHUNK);
    CU_ASSERT_EQUAL(st.fill_errors, 0);

    /* an origin its UCACHE_ALLOW does not name: refused, nothing filled */
    req_make(nd_uri_other, 0, 0, &req);
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, nd_uri_other, &loc, &how),
                    UCACHE_ERR_REFUSED);
    CU_ASSERT_EQUAL(chunk_check(node, &req, nd_other), 1);
    uf_node_stats(node, &st);
    CU_ASSERT_EQUAL(st.refused, 1);
    CU_ASSERT_EQUAL(st.fills, 1);

    /* draining: a miss is MOVED (the reader goes on), a hit is served */
    uf_node_set_draining(node, true);
    CU_ASSERT(uf_node_draining(node));
    req_make(nd_uri, 2, 0, &req);
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, nd_uri, &loc, &how), UCACHE_ERR_MOVED);
    CU_ASSERT_EQUAL(chunk_check(node, &req, nd_file), 1);
    req_make(nd_uri, 1, 0, &req);
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, nd_uri, &loc, &how), UCACHE_OK);
    CU_ASSERT_EQUAL(how, UF_HOW_HIT);
    uf_node_set_draining(node, false);
    req_make(nd_uri, 2, 0, &req);
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, nd_uri, &loc, &how), UCACHE_OK);
    CU_ASSERT_EQUAL(how, UF_HOW_FILLED);

    /* pin, unpin, evict */
    req_make(nd_uri, 3, UF_FETCH_PIN, &req);
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, nd_uri, &loc, &how), UCACHE_OK);
    us_store_stats(uf_node_store(node), &ss);
    CU_ASSERT((ss.bytes_pinned >= CHUNK) && (ss.bytes_pinned <= CHUNK + 4096)); /* with its header */
    req.flags = UF_FETCH_UNPIN;
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, nd_uri, &loc, &how), UCACHE_OK);
    us_store_stats(uf_node_store(node), &ss);
    CU_ASSERT_EQUAL(ss.bytes_pinned, 0);
    req.flags = UF_FETCH_EVICT;
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, nd_uri, &loc, &how), UCACHE_OK);
    CU_ASSERT_EQUAL(chunk_check(node, &req, nd_file), 1);          /* dropped */
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, nd_uri, &loc, &how),
                    UCACHE_ERR_NOT_FOUND);                      /* evict never fills */
    CU_ASSERT_EQUAL(chunk_check(node, &req, nd_file), 1);
    uf_node_stats(node, &st);
    CU_ASSERT_EQUAL(st.fills, 3);

    uf_node_destroy(node);
    ut_ctx_destroy(tr);
    unsetenv("UCX_TLS");
    unlink(nd_file);
    unlink(nd_other);
    rmdir(nd_dir);
}

/* Whether @p len bytes of @p pat appear in either context's exported region. */
static bool regions_hold(ucache_h c[2], const char *pat, size_t len)
{
    unsigned k;

    for (k = 0; k < 2; k++) {
        us_store_t *st = uf_node_store(c[k]->node);

        if (memmem(us_store_base(st), us_store_len(st), pat, len) != NULL) {
            return true;
        }
    }
    return false;
}

/* A FETCH as a requester crafts it: chunk 0 of @p uri, claimed @p size
 * bytes and version 1 (the key matches; nothing else is true). */
static ucache_status_t crafted_fill(ucache_h ctx, const char *uri, uint64_t size)
{
    us_object_t obj = { .size = size, .version = 1 };
    us_key_t key = uf_chunk_key(uri, &obj, 0, ctx->cfg.chunk_size);
    uf_fetch_req_t req = { .magic = UF_PROTO_MAGIC, .version = UF_PROTO_VERSION,
                           .key_hi = key.hi, .key_lo = key.lo, .obj_size = size,
                           .obj_version = 1, .chunk_size = (uint32_t)ctx->cfg.chunk_size,
                           .uri_len = (uint16_t)strlen(uri) };
    uint32_t how;
    us_loc_t loc;

    return uf_node_fetch_local(ctx->node, &req, uri, &loc, &how);
}

/* Writes a secret into a FIFO once someone opens it for reading (1 s at most). */
static void *fifo_writer(void *arg)
{
    const char *path = arg;
    unsigned i;
    int fd = -1;

    for (i = 0; (i < 100) && (fd < 0); i++) {
        fd = open(path, O_WRONLY | O_NONBLOCK);
        if (fd < 0) {
            usleep(10000);
        }
    }
    if (fd >= 0) {
        (void)!write(fd, "FIFO-SECRET-FIFO-SECRET-FIFO-SECRET", 35);
        close(fd);
    }
    return NULL;
}

/*
 * Issue [2/11] #1, the owner as a confused deputy: a URI its configuration
 * does not allow is never read into its exported memory.  With the default
 * allow list (az://, s3://, https:// to public hosts) a file:// object is
 * refused by both owners, the reader reads it itself with its own rights
 * (exact bytes, no owner turns suspect), and no byte of it is in either
 * region.  With file://DIR/ok/ allowed, crafted FETCHes for a FIFO, a
 * symlink out of the prefix, a ".." path, /proc/self/environ and a file
 * next to the prefix are refused at once; a plain file inside it fills.
 */
static void test_confinement(void)
{
    ucache_params_t p = pair_params;
    const void *recs[2];
    size_t lens[2], got;
    char uri[200], path[160], allow[200], *data, *buf;
    char secret[64] = "SECRET-0123456789-SECRET-0123456789-SECRET-0123456789-SECRET!!";
    ucache_stats_t s[2];
    ucache_h c[2] = { NULL, NULL };
    char env[4096];
    pthread_t writer;
    uint64_t t0;
    unsigned k;
    ssize_t n;
    int fd;

    unsetenv("UCACHE_ALLOW");
    p.field_mask &= ~(uint64_t)UCACHE_PARAM_FIELD_ALLOW;  /* the default list */
    data = pair_start(&p, 29, 233, uri, sizeof(uri), c, recs, lens);
    buf = malloc(300000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    for (k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL(ucache_members_set(c[k], recs, lens, 2, 1), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(ucache_read(c[0], uri, 0, 300000, buf, &got), UCACHE_OK);
    CU_ASSERT(memcmp(buf, data, 300000) == 0);
    for (k = 0; k < 2; k++) {
        ucache_stats_get(c[k], &s[k]);
        CU_ASSERT_EQUAL(s[k].fills, 0);
        CU_ASSERT_EQUAL(s[k].failovers, 0);
    }
    CU_ASSERT_EQUAL(s[0].origin_direct, 5);
    CU_ASSERT(s[0].fills_refused + s[1].fills_refused >= 5);
    CU_ASSERT_FALSE(regions_hold(c, data + 4096, 64));
    for (k = 0; k < 2; k++) {
        ucache_finalize(c[k]);
    }

    /* file://DIR/ok/ allowed: what is outside it, or not a regular file, is not */
    snprintf(allow, sizeof(allow), "file://%s/ok/", tdir);
    setenv("UCACHE_ALLOW", allow, 1);
    for (k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL_FATAL(ucache_init(&p, &c[k]), UCACHE_OK);
    }
    snprintf(path, sizeof(path), "%s/ok", tdir);
    CU_ASSERT_EQUAL(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/secret", tdir);
    write_file(path, secret, sizeof(secret));
    snprintf(path, sizeof(path), "%s/ok/link", tdir);
    CU_ASSERT_EQUAL(symlink("../secret", path), 0);
    snprintf(path, sizeof(path), "%s/ok/fifo", tdir);
    CU_ASSERT_EQUAL(mkfifo(path, 0600), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&writer, NULL, fifo_writer, path), 0);
    t0 = uc_time_ns();
    snprintf(uri, sizeof(uri), "file://%s/ok/fifo", tdir);
    CU_ASSERT_EQUAL(crafted_fill(c[0], uri, 4096), UCACHE_ERR_REFUSED);
    CU_ASSERT(uc_time_ns() - t0 < tc_slow(500000000ull)); /* not blocked on the FIFO */
    pthread_join(writer, NULL);
    CU_ASSERT_FALSE(regions_hold(c, "FIFO-SECRET", 11));
    snprintf(uri, sizeof(uri), "file://%s/ok/link", tdir);
    CU_ASSERT_EQUAL(crafted_fill(c[0], uri, sizeof(secret)), UCACHE_ERR_REFUSED);
    CU_ASSERT_FALSE(regions_hold(c, secret, sizeof(secret)));
    snprintf(uri, sizeof(uri), "file://%s/ok/../secret", tdir);
    CU_ASSERT_EQUAL(crafted_fill(c[0], uri, sizeof(secret)), UCACHE_ERR_REFUSED);
    CU_ASSERT_FALSE(regions_hold(c, secret, sizeof(secret)));
    snprintf(path, sizeof(path), "%s/ok.secret", tdir);
    write_file(path, secret, sizeof(secret));
    snprintf(uri, sizeof(uri), "file://%s", path);
    CU_ASSERT_EQUAL(crafted_fill(c[0], uri, sizeof(secret)), UCACHE_ERR_REFUSED);
    CU_ASSERT_FALSE(regions_hold(c, secret, sizeof(secret)));
    fd = open("/proc/self/environ", O_RDONLY);
    n = (fd >= 0) ? read(fd, env, sizeof(env)) : -1;
    if (fd >= 0) {
        close(fd);
    }
    CU_ASSERT_EQUAL(crafted_fill(c[0], "file:///proc/self/environ", 4096),
                    UCACHE_ERR_REFUSED);
    CU_ASSERT((n < 16) || !regions_hold(c, env, (size_t)n));
    /* inside the prefix, a regular file fills (its real version, not 1: STALE) */
    snprintf(path, sizeof(path), "%s/ok/plain", tdir);
    write_file(path, secret, sizeof(secret));
    snprintf(uri, sizeof(uri), "file://%s/ok/plain", tdir);
    CU_ASSERT_EQUAL(crafted_fill(c[0], uri, sizeof(secret)), UCACHE_ERR_STALE);
    ucache_stats_get(c[0], &s[0]);
    CU_ASSERT_EQUAL(s[0].fills_refused, 5);
    for (k = 0; k < 2; k++) {
        ucache_finalize(c[k]);
    }
    unsetenv("UCACHE_ALLOW");
    free(data);
    free(buf);
    tdir_remove();
}

const tc_test_t node_tests[] = {
    {"fill_hit_refuse_drain_pin", test_node_fill_hit_refuse_drain},
    {"confinement", test_confinement},
    {NULL, NULL}
};
