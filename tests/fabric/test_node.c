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

#include <stdio.h>
#include <unistd.h>

#define CHUNK (64u << 10)
#define NCHUNKS 4

static char dir[64], file[96], other[96], uri[128], uri_other[128];

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

    snprintf(dir, sizeof(dir), "/tmp/ucache-node.XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/data", dir);
    snprintf(other, sizeof(other), "%s.other", dir);
    snprintf(uri, sizeof(uri), "file://%s", file);
    snprintf(uri_other, sizeof(uri_other), "file://%s", other);
    file_write(file, 0x1234);
    file_write(other, 0x5678);

    CU_ASSERT_EQUAL_FATAL(uc_config_load(&cfg), UCACHE_OK);
    cfg.mem_bytes     = 16u << 20;
    cfg.chunk_size    = CHUNK;
    cfg.index_chunk   = CHUNK;
    cfg.fetch_threads = 2;
    cfg.mem_lock      = 0;
    snprintf(cfg.allow, sizeof(cfg.allow), "file://%s/", dir);
    setenv("UCX_TLS", "posix,sysv,self,tcp", 1);
    CU_ASSERT_EQUAL_FATAL(ut_ctx_create(NULL, &tp, &tr), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(uf_node_create(tr, &cfg, NULL, &node), UCACHE_OK);

    /* a miss is filled once, then it is a hit; the store holds the bytes */
    req_make(uri, 1, 0, &req);
    CU_ASSERT_EQUAL(chunk_check(node, &req, file), 1);
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, uri, &loc, &how), UCACHE_OK);
    CU_ASSERT_EQUAL(how, UF_HOW_FILLED);
    CU_ASSERT_EQUAL(loc.length, CHUNK);
    CU_ASSERT_EQUAL(chunk_check(node, &req, file), 0);
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, uri, &loc, &how), UCACHE_OK);
    CU_ASSERT_EQUAL(how, UF_HOW_HIT);
    uf_node_stats(node, &st);
    CU_ASSERT_EQUAL(st.fills, 1);
    CU_ASSERT_EQUAL(st.fill_bytes, CHUNK);
    CU_ASSERT_EQUAL(st.fill_errors, 0);

    /* an origin its UCACHE_ALLOW does not name: refused, nothing filled */
    req_make(uri_other, 0, 0, &req);
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, uri_other, &loc, &how),
                    UCACHE_ERR_REFUSED);
    CU_ASSERT_EQUAL(chunk_check(node, &req, other), 1);
    uf_node_stats(node, &st);
    CU_ASSERT_EQUAL(st.refused, 1);
    CU_ASSERT_EQUAL(st.fills, 1);

    /* draining: a miss is MOVED (the reader goes on), a hit is served */
    uf_node_set_draining(node, true);
    CU_ASSERT(uf_node_draining(node));
    req_make(uri, 2, 0, &req);
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, uri, &loc, &how), UCACHE_ERR_MOVED);
    CU_ASSERT_EQUAL(chunk_check(node, &req, file), 1);
    req_make(uri, 1, 0, &req);
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, uri, &loc, &how), UCACHE_OK);
    CU_ASSERT_EQUAL(how, UF_HOW_HIT);
    uf_node_set_draining(node, false);
    req_make(uri, 2, 0, &req);
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, uri, &loc, &how), UCACHE_OK);
    CU_ASSERT_EQUAL(how, UF_HOW_FILLED);

    /* pin, unpin, evict */
    req_make(uri, 3, UF_FETCH_PIN, &req);
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, uri, &loc, &how), UCACHE_OK);
    us_store_stats(uf_node_store(node), &ss);
    CU_ASSERT((ss.bytes_pinned >= CHUNK) && (ss.bytes_pinned <= CHUNK + 4096)); /* with its header */
    req.flags = UF_FETCH_UNPIN;
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, uri, &loc, &how), UCACHE_OK);
    us_store_stats(uf_node_store(node), &ss);
    CU_ASSERT_EQUAL(ss.bytes_pinned, 0);
    req.flags = UF_FETCH_EVICT;
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, uri, &loc, &how), UCACHE_OK);
    CU_ASSERT_EQUAL(chunk_check(node, &req, file), 1);          /* dropped */
    CU_ASSERT_EQUAL(uf_node_fetch_local(node, &req, uri, &loc, &how),
                    UCACHE_ERR_NOT_FOUND);                      /* evict never fills */
    CU_ASSERT_EQUAL(chunk_check(node, &req, file), 1);
    uf_node_stats(node, &st);
    CU_ASSERT_EQUAL(st.fills, 3);

    uf_node_destroy(node);
    ut_ctx_destroy(tr);
    unsetenv("UCX_TLS");
    unlink(file);
    unlink(other);
    rmdir(dir);
}

const tc_test_t node_tests[] = {
    {"fill_hit_refuse_drain_pin", test_node_fill_hit_refuse_drain},
    {NULL, NULL}
};
