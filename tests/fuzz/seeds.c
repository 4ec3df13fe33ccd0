/*
 * seeds.c - writes the binary seed inputs of the fuzz targets into
 * tests/fuzz/corpus/ (make fuzz-seeds; the files are committed): real
 * messages, records, blobs and a real store region, in each harness's
 * input format, so fuzzing starts from what the parsers accept.
 */
#include "fabric/fabric.h"
#include "fabric/view_shm.h"
#include "store/nvme_rec.h"
#include "transport/blob.h"
#include "transport/transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *root = "tests/fuzz/corpus";

static void seed(const char *target, const char *name, const void *a, size_t alen,
                 const void *b, size_t blen)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, target);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
    f = fopen(path, "wb");
    if ((f == NULL) || (fwrite(a, 1, alen, f) != alen) ||
        ((blen > 0) && (fwrite(b, 1, blen, f) != blen))) {
        fprintf(stderr, "seeds: cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

/* META: a STAT and a LIST request, a STAT reply, a LIST page of two. */
static void meta_seeds(uint8_t *msg)
{
    static const char uri[] = "az://a/data/x", prefix[] = "az://a/";
    uf_meta_req_t q = { UF_PROTO_MAGIC, UF_PROTO_VERSION, UF_META_STAT, 3, 0, 2000000000ull,
                        0, sizeof(uri) - 1, 0 };
    uf_meta_rep_t r = { 4096, 77, 1000, 0, 6, 0, 0 };
    us_object_t obj = { 4096, 77, "\"0x8D\"" };
    size_t off = 0;

    msg[0] = 6;
    memcpy(msg + 1, &q, sizeof(q));
    memcpy(msg + 1 + sizeof(q), uri, sizeof(uri) - 1);
    seed("proto", "meta_stat", msg, 1 + sizeof(q) + sizeof(uri) - 1, NULL, 0);
    q.op = UF_META_LIST;
    q.max = 100;
    q.uri_len = sizeof(prefix) - 1;
    q.after_len = sizeof(uri) - 1;
    memcpy(msg + 1, &q, sizeof(q));
    memcpy(msg + 1 + sizeof(q), prefix, sizeof(prefix) - 1);
    memcpy(msg + 1 + sizeof(q) + sizeof(prefix) - 1, uri, sizeof(uri) - 1);
    seed("proto", "meta_list", msg, 1 + sizeof(q) + sizeof(prefix) + sizeof(uri) - 2, NULL, 0);
    msg[0] = 7;
    memcpy(msg + 1, &r, sizeof(r));
    memcpy(msg + 1 + sizeof(r), obj.etag, 6);
    seed("proto", "meta_stat_reply", msg, 1 + sizeof(r) + 6, NULL, 0);
    msg[0] = 8;
    uf_meta_ent_put(msg + 1 + sizeof(r), 1024, &off, "az://a/data/x", &obj);
    uf_meta_ent_put(msg + 1 + sizeof(r), 1024, &off, "az://a/data/y", &obj);
    memset(&r, 0, sizeof(r));
    r.count = 2;
    memcpy(msg + 1, &r, sizeof(r));
    seed("proto", "meta_list_reply", msg, 1 + sizeof(r) + off, NULL, 0);
}

static void proto_seeds(void)
{
    static const char uri[] = "az://acct1/data/train-00001.tar";
    uint8_t msg[2048];
    uf_fetch_req_t req = { UF_PROTO_MAGIC, UF_PROTO_VERSION, UF_FETCH_DATA, 1, 0, 0,
                           10000000, 42, 2, 4u << 20, sizeof(uri) - 1, 0 };
    uf_touch_req_t t = { UF_PROTO_MAGIC, UF_PROTO_VERSION, 2, 1, 7 };
    uf_admin_msg_t a = { UF_PROTO_MAGIC, UF_PROTO_VERSION, UF_ADMIN_DRAIN };
    us_object_t obj = { .size = 10000000, .version = 42 };
    us_key_t k = uf_chunk_key(uri, &obj, 2, 4u << 20), keys[2] = { k, k };
    uint64_t counters[4] = { 1, 2, 3, 4 };
    uf_fetch_rep_t rep;
    ucache_stats_t st;
    size_t len;

    req.key_hi = k.hi;
    req.key_lo = k.lo;
    msg[0] = 0;
    memcpy(msg + 1, &req, sizeof(req));
    memcpy(msg + 1 + sizeof(req), uri, sizeof(uri) - 1);
    seed("proto", "fetch", msg, 1 + sizeof(req) + sizeof(uri) - 1, NULL, 0);
    uf_fetch_raw_build(msg + 1, 4096, 65536);
    seed("proto", "fetch_raw", msg, 1 + UF_FETCH_RAW_MSG, NULL, 0);
    msg[0] = 1;
    memcpy(msg + 1, &t, sizeof(t));
    memcpy(msg + 1 + sizeof(t), keys, sizeof(keys));
    seed("proto", "touch", msg, 1 + sizeof(t) + sizeof(keys), NULL, 0);
    msg[0] = 2;
    memcpy(msg + 1, &a, sizeof(a));
    seed("proto", "admin", msg, 1 + sizeof(a), NULL, 0);
    memset(&rep, 0, sizeof(rep));
    rep.length = 4096;
    rep.how = UF_HOW_HIT;
    msg[0] = 3;
    memcpy(msg + 1, &rep, sizeof(rep));
    memcpy(msg + 1 + sizeof(rep), "\x00\x10\x00\x00\x01\x01\x00\x10\x00\x00", 10);
    seed("proto", "fetch_reply", msg, 1 + sizeof(rep) + 10, NULL, 0);
    a.count = 4;
    msg[0] = 4;
    memcpy(msg + 1, &a, sizeof(a));
    memcpy(msg + 1 + sizeof(a), counters, sizeof(counters));
    seed("proto", "admin_reply", msg, 1 + sizeof(a) + sizeof(counters), NULL, 0);
    memset(&st, 0, sizeof(st));
    st.reads = 7;
    st.auth_failures = 3;
    msg[0] = 4;
    len = uf_admin_rep_encode(&st, true, msg + 1, sizeof(msg) - 1);
    if (len > 0) {
        seed("proto", "admin_reply_tagged", msg, 1 + len, NULL, 0);
    }
    meta_seeds(msg);
}

static void member_seeds(void)
{
    uf_member_t m = { .id = 0x1234567890abcdefull, .weight = 4, .pid = 77,
                      .mem_bytes = 16ull << 30, .zone = "rack7", .host = "node-17" };
    uint8_t addr[40], rkey[24];
    void *rec, *blob;
    size_t len, blen;

    memset(addr, 0xa5, sizeof(addr));
    memset(rkey, 0x5a, sizeof(rkey));
    m.addr = addr;
    m.addr_len = sizeof(addr);
    m.rkey = rkey;
    m.rkey_len = sizeof(rkey);
    if (uf_member_encode(&m, &rec, &len) == UCACHE_OK) {
        seed("member", "record", rec, len, NULL, 0);
        free(rec);
    }
    blob = ut_blob_build(0x52444441u, rkey, 16, addr, sizeof(addr), &blen);
    if (blob != NULL) {
        uint8_t pre = 16;            /* body length byte (even: sum as is) */

        seed("blob", "blob", &pre, 1, blob, blen);
        free(blob);
    }
}

/* A region holding one chunk of @p len bytes (of @p region bytes), as seed
 * @p name of the layout target. */
static void layout_seed(const char *name, size_t region, size_t len)
{
    us_store_params_t sp = { .len = region, .grace_ns = 10000000, .index_chunk = 4096,
                             .max_payload = (uint32_t)len };
    us_object_t obj = { .size = len, .version = 9 };
    char *data = malloc(len);
    us_store_t *st;
    uint8_t pre[16];
    us_key_t k;

    do {                             /* a key whose first byte is even: the */
        obj.version++;               /* superblock's sum is taken as it is  */
        k = uf_chunk_key("file:///srv/ds/a", &obj, 0, (uint32_t)len);
        memcpy(pre, &k, sizeof(k));
    } while (pre[0] & 1);
    memset(data, 'd', len);
    if (us_store_create(&sp, &st) != UCACHE_OK) {
        fprintf(stderr, "seeds: no store\n");
        exit(1);
    }
    us_store_put(st, &k, 0, data, len, 1000000000ull);
    seed("layout", name, pre, sizeof(pre), us_store_base(st), us_store_len(st));
    us_store_destroy(st);
    free(data);
}

static void layout_seeds(void)
{
    layout_seed("region", 64u << 10, 3000);
    layout_seed("region-segments", 256u << 10, 150000); /* 10 segments, a table */
}

/* An NVMe device's superblock and a record of 5000 bytes, as the tier
 * writes them (flags byte 0: both checksums are the writer's); one torn,
 * one pinned, and a tombstone (an admin's evict). */
static void nvme_rec_seeds(void)
{
    us_nvme_super_t sb = { .magic = US_NVME_SUPER_MAGIC, .format = US_NVME_FORMAT,
                           .block = US_NVME_BLOCK, .uuid = 0x5eed, .dev_bytes = 1ull << 30,
                           .seg_bytes = 64ull << 20, .nsegs = 15, .max_payload = 1u << 20 };
    us_nvme_rec_t rec = { .ns = 7, .length = 5000, .seg = 3, .uuid = 0x5eed, .seq = 42,
                          .key_hi = 0x1111, .key_lo = 0x2222 };
    uint8_t *img = calloc(1, 1 + US_NVME_BLOCK + 2 * US_NVME_BLOCK);

    us_nvme_super_seal(&sb);
    memcpy(img + 1, &sb, sizeof(sb));
    memset(img + 1 + US_NVME_BLOCK + US_NVME_REC_HDR, 'n', rec.length);
    us_nvme_rec_seal(img + 1 + US_NVME_BLOCK, &rec);
    seed("nvme_rec", "record", img, 1 + US_NVME_BLOCK + us_nvme_rec_size(rec.length), NULL, 0);
    seed("nvme_rec", "torn", img, 1 + US_NVME_BLOCK + US_NVME_BLOCK, NULL, 0);
    rec.flags = US_NVME_REC_PINNED;  /* a pinned chunk's */
    us_nvme_rec_seal(img + 1 + US_NVME_BLOCK, &rec);
    seed("nvme_rec", "pinned", img, 1 + US_NVME_BLOCK + us_nvme_rec_size(rec.length), NULL, 0);
    rec.flags  = US_NVME_REC_DROPPED;
    rec.length = 0;
    memset(img + 1 + US_NVME_BLOCK, 0, 2 * US_NVME_BLOCK);
    us_nvme_rec_seal(img + 1 + US_NVME_BLOCK, &rec);
    seed("nvme_rec", "tombstone", img, 1 + US_NVME_BLOCK + US_NVME_BLOCK, NULL, 0);
    free(img);
}

/* A view a daemon published: 3 nodes, read back from its file. */
static void view_shm_seeds(void)
{
    char path[] = "/tmp/ucache-seed-view.XXXXXX", file[64], buf[16384];
    uf_member_t m[3];
    uf_vshm_t *w = NULL;
    unsigned i;
    size_t len;
    FILE *f;

    if (mkdtemp(path) == NULL) {
        exit(1);
    }
    snprintf(file, sizeof(file), "%s/view", path);
    memset(m, 0, sizeof(m));
    for (i = 0; i < 3; i++) {
        snprintf(m[i].host, sizeof(m[i].host), "10.0.0.%u", i + 1);
        snprintf(m[i].zone, sizeof(m[i].zone), "rack-%u", i);
        m[i].port   = 7000;
        m[i].id     = 0x1000 + i;
        m[i].slot0  = i * 2;
        m[i].weight = 2;
    }
    if (uf_vshm_publish(&w, file, 42, m, 3, 65536, 4ull << 30) != UCACHE_OK) {
        exit(1);
    }
    f = fopen(file, "rb");
    len = (f != NULL) ? fread(buf, 1, sizeof(buf), f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    seed("view_shm", "view", buf, len, NULL, 0);
    uf_vshm_close(w, true);
    rmdir(path);
}

/* A libfabric (shm) context's address and a region's key, as a member
 * record carries them. */
static void ofi_seeds(void)
{
    ut_params_t p = { .field_mask = UT_PARAM_FIELD_CONFIG };
    const void *addr, *key;
    size_t alen, klen;
    uc_config_t cfg;
    ut_config_t tc;
    ut_ctx_t *ctx;
    ut_mem_t *mem;
    uint8_t pre;

    uc_config_load(&cfg);
    ut_config_from(&tc, &cfg);
    snprintf(tc.ofi_provider, sizeof(tc.ofi_provider), "shm");
    p.config = &tc;
    if (ut_ctx_create("ofi", &p, &ctx) != UCACHE_OK) {
        fprintf(stderr, "seeds: no libfabric shm context: ofi_blob seeds not written\n");
        return;
    }
    if (ut_mem_export(ctx, 1u << 20, &mem) == UCACHE_OK) {
        ut_address(ctx, &addr, &alen);
        ut_mem_pack(mem, &key, &klen);
        pre = 0;                     /* an address, its sum as is */
        seed("ofi_blob", "address", &pre, 1, addr, alen);
        pre = 1;                     /* a key (of another context: refused late) */
        seed("ofi_blob", "key", &pre, 1, key, klen);
        ut_mem_destroy(mem);
    }
    ut_ctx_destroy(ctx);
}

int main(void)
{
    ofi_seeds();
    view_shm_seeds();
    proto_seeds();
    member_seeds();
    layout_seeds();
    nvme_rec_seeds();
    printf("seeds written under %s\n", root);
    return 0;
}
