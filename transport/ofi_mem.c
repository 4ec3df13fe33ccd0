/*
 * ofi_mem.c - the libfabric backend's memory: exported regions, local
 * registrations, their key blobs; a peer's remote keys, checked before
 * any of them is used.
 *
 * An exported region is read-only to peers whatever the provider does with
 * access flags (tcp;ofi_rxm and shm in libfabric 1.17 let a peer's fi_write
 * through a FI_REMOTE_READ-only registration: measured, test_ofi.c): it is
 * a sealed memfd mapped twice, read-write for its owner (ut_mem_t.base)
 * and read-only for libfabric - the mapping registered, and the address
 * the key names.  A write into it fails in the kernel (EFAULT), in
 * whichever process the provider does it.
 */
#include "transport/ofi_int.h"
#include "transport/mapfd.h"

#include <sys/mman.h>
#include <unistd.h>

/* Exported memory is racy by design (peers read it while its owner writes
 * and every reader verifies what it got): ThreadSanitizer is told so. */
#if defined(__SANITIZE_THREAD__)
void AnnotateBenignRaceSized(const char *file, int line, const volatile void *mem,
                             unsigned long size, const char *desc);
#define UT_OFI_REGION_RACY(_p, _n) \
    AnnotateBenignRaceSized(__FILE__, __LINE__, (_p), (_n), "exported region")
#else
#define UT_OFI_REGION_RACY(_p, _n) do { } while (0)
#endif

static ucache_status_t do_mem_reg(ut_ofi_ctx_t *ctx, ut_ofi_mem_t *mem, bool exported)
{
    uint64_t access = exported ? FI_REMOTE_READ :
                      (FI_READ | FI_WRITE | FI_SEND | FI_RECV);
    ut_rkey_body body;
    ut_ofi_key key;
    uint32_t id;
    int ret;

    if (!exported && !ctx->mr_local) {
        return UCACHE_OK; /* a local buffer the provider needs no key for */
    }
    if (exported) {
        for (id = 0; (id < UT_OFI_MAX_REGIONS) && (ctx->regions[id] != NULL); id++) {
        }
        if (id == UT_OFI_MAX_REGIONS) {
            UC_ERROR("more than %u exported regions", UT_OFI_MAX_REGIONS);
            return UCACHE_ERR_NO_MEMORY;
        }
        mem->region_id = id;
    }
    ret = fi_mr_reg(ctx->domain, (mem->ro != NULL) ? mem->ro : mem->super.base,
                    mem->super.len, access, 0,
                    ctx->mr_prov_key ? 0 : ctx->next_key++, 0, &mem->mr, NULL);
    if (ret != 0) {
        UC_ERROR("fi_mr_reg of %zu bytes (%s): %s", mem->super.len,
                 exported ? "remote read" : "local", ut_ofi_strerror(-ret));
        mem->mr = NULL;
        return ut_ofi_status(ret);
    }
    if (!exported) {
        return UCACHE_OK;
    }
    mem->cookie = ut_random64();
    memset(&body, 0, sizeof(body));
    body.base      = (uint64_t)(uintptr_t)mem->ro;
    body.len       = mem->super.len;
    body.cookie    = mem->cookie;
    body.ctx_uuid  = ctx->uuid;
    body.region_id = mem->region_id;
    memset(&key, 0, sizeof(key));
    key.key  = fi_mr_key(mem->mr);
    key.virt = ctx->mr_virt;
    mem->blob = ut_blob_build(UT_OFI_RKEY_MAGIC, &body, sizeof(body), &key, sizeof(key),
                              &mem->blob_len);
    if ((mem->blob == NULL) || (key.key == FI_KEY_NOTAVAIL)) {
        return UCACHE_ERR_NO_MEMORY;
    }
    mem->exported = true;
    ctx->regions[mem->region_id] = mem;
    if (mem->region_id >= ctx->region_top) {
        ctx->region_top = mem->region_id + 1;
    }
    return UCACHE_OK;
}

static void do_mem_free(ut_ofi_ctx_t *ctx, ut_ofi_mem_t *mem)
{
    if (mem->exported && (ctx->regions[mem->region_id] == mem)) {
        ctx->regions[mem->region_id] = NULL;
    }
    if (mem->mr != NULL) {
        fi_close(&mem->mr->fid);
    }
    if (mem->mapped) {
        munmap(mem->super.base, mem->super.len);
        munmap(mem->ro, mem->super.len);
    }
    if (mem->memfd >= 0) {
        close(mem->memfd);
    }
    free(mem->blob);
    free(mem);
}

static ucache_status_t do_mem_new(ut_ofi_ctx_t *ctx, void *addr, size_t len, bool map,
                                  bool exported, ut_mem_t **mem_p)
{
    ut_ofi_mem_t *mem = calloc(1, sizeof(*mem));
    ucache_status_t status;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    if (mem == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    mem->super.ctx = &ctx->super;
    mem->region_id = UINT32_MAX;
    mem->memfd     = -1;
    if (map) {
        len    = (len + page - 1) / page * page;
        status = ut_memfd_alloc(len, &mem->memfd, &addr);
        if (status != UCACHE_OK) {
            free(mem);
            return status;
        }
        mem->ro = mmap(NULL, len, PROT_READ, MAP_SHARED, mem->memfd, 0);
        if (mem->ro == MAP_FAILED) {
            UC_ERROR("cannot map a %zu-byte region read-only: %m", len);
            munmap(addr, len);
            close(mem->memfd);
            free(mem);
            return UCACHE_ERR_NO_MEMORY;
        }
        mem->mapped = true;
        UT_OFI_REGION_RACY(addr, len);
        UT_OFI_REGION_RACY(mem->ro, len);
    }
    mem->super.base = addr;
    mem->super.len  = len;
    pthread_mutex_lock(&ctx->lock);
    status = do_mem_reg(ctx, mem, exported);
    if (status != UCACHE_OK) {
        do_mem_free(ctx, mem);
    }
    pthread_mutex_unlock(&ctx->lock);
    if (status == UCACHE_OK) {
        *mem_p = &mem->super;
    }
    return status;
}

ucache_status_t ut_ofi_mem_export(ut_ctx_t *c, size_t len, ut_mem_t **mem_p)
{
    if ((len == 0) || (mem_p == NULL)) {
        return UCACHE_ERR_INVALID;
    }
    return do_mem_new(ut_ofi_ctx_of(c), NULL, len, true, true, mem_p);
}

ucache_status_t ut_ofi_mem_register(ut_ctx_t *c, void *addr, size_t len, unsigned flags,
                                    ut_mem_t **mem_p)
{
    if ((addr == NULL) || (len == 0) || (mem_p == NULL) || (flags & ~(unsigned)UT_MEM_EXPORT)) {
        return UCACHE_ERR_INVALID;
    }
    if (flags & UT_MEM_EXPORT) {
        /* memory it did not allocate cannot be made read-only to peers */
        UC_ERROR("the libfabric backend exports only the memory it allocates "
                 "(ut_mem_export): read-only to peers");
        return UCACHE_ERR_UNSUPPORTED;
    }
    return do_mem_new(ut_ofi_ctx_of(c), addr, len, false, !!(flags & UT_MEM_EXPORT), mem_p);
}

void ut_ofi_mem_destroy(ut_mem_t *m)
{
    ut_ofi_mem_t *mem = (ut_ofi_mem_t *)m;
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(m->ctx);
    uint64_t deadline = uc_deadline(ctx->cfg.timeout_ns);

    pthread_mutex_lock(&ctx->lock);
    /* replies that point into it are sent, or fail, within a deadline */
    while ((mem->sends > 0) && (uc_time_ns() < deadline)) {
        ut_ofi_do_progress(ctx);
        pthread_mutex_unlock(&ctx->lock);
        usleep(100);
        pthread_mutex_lock(&ctx->lock);
    }
    if (mem->sends > 0) {
        UC_WARN("a region destroyed with %u replies out of it (kept mapped)", mem->sends);
        mem->mapped = false; /* leaked rather than unmapped under a send */
        ut_ofi_do_replies_detach(ctx, mem);  /* they outlive this record */
    }
    do_mem_free(ctx, mem);
    pthread_mutex_unlock(&ctx->lock);
}

/* ctx->lock held: the exported region that holds [data, data + len). */
ut_ofi_mem_t *ut_ofi_do_region_of(ut_ofi_ctx_t *ctx, const void *data, size_t len)
{
    const uint8_t *p = data;
    ut_ofi_mem_t *mem;
    unsigned i;

    for (i = 0; i < ctx->region_top; i++) {
        mem = ctx->regions[i];
        if ((mem != NULL) && (p >= (const uint8_t *)mem->super.base) &&
            (len <= mem->super.len) &&
            ((size_t)(p - (const uint8_t *)mem->super.base) <= mem->super.len - len)) {
            return mem;
        }
    }
    return NULL;
}

ucache_status_t ut_ofi_mem_pack(ut_mem_t *m, const void **blob_p, size_t *len_p)
{
    ut_ofi_mem_t *mem = (ut_ofi_mem_t *)m;

    if (!mem->exported || (mem->blob == NULL)) {
        return UCACHE_ERR_INVALID; /* a local registration has no key to give */
    }
    *blob_p = mem->blob;
    *len_p  = mem->blob_len;
    return UCACHE_OK;
}

ucache_status_t ut_ofi_rkey_unpack(ut_peer_t *p, const void *blob, size_t len,
                                   ut_rkey_t **rkey_p)
{
    ut_ofi_peer_t *peer = (ut_ofi_peer_t *)p;
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(p->ctx);
    ucache_status_t status;
    ut_ofi_rkey_t *rk;
    ut_rkey_body body;
    ut_ofi_key key;
    size_t plen;
    void *payload;

    if (rkey_p == NULL) {
        return UCACHE_ERR_INVALID;
    }
    status = ut_blob_take(&ctx->st.bad_input, blob, len, UT_OFI_RKEY_MAGIC, "remote key",
                          &body, sizeof(body), &payload, &plen);
    if (status != UCACHE_OK) {
        return status;
    }
    if (plen != sizeof(key)) {
        free(payload);
        UT_OFI_STAT_ADD(ctx, bad_input, 1);
        UC_ERROR("a remote key of %s with a %zu-byte libfabric part", peer->pname, plen);
        return UCACHE_ERR_INVALID;
    }
    memcpy(&key, payload, sizeof(key));
    free(payload);
    if ((body.len == 0) || (body.base + body.len < body.base) || (key.virt > 1)) {
        UT_OFI_STAT_ADD(ctx, bad_input, 1);
        UC_ERROR("a remote key of %s for a region that wraps or is empty", peer->pname);
        return UCACHE_ERR_INVALID;
    }
    if ((peer->uuid == 0) || (body.ctx_uuid != peer->uuid)) {
        UT_OFI_STAT_ADD(ctx, bad_input, 1);
        UC_DEBUG("a remote key of another context than %s's", peer->pname);
        return (peer->uuid == 0) ? UCACHE_ERR_INVALID : UCACHE_ERR_STALE;
    }
    rk = calloc(1, sizeof(*rk));
    if (rk == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    rk->super.ctx  = p->ctx;
    rk->super.peer = p;
    rk->super.base = body.base;
    rk->super.len  = (size_t)body.len;
    rk->key        = key.key;
    rk->virt       = key.virt;
    rk->cookie     = body.cookie;
    rk->region_id  = body.region_id;
    pthread_mutex_lock(&ctx->lock);
    peer->nrkeys++;
    pthread_mutex_unlock(&ctx->lock);
    *rkey_p = &rk->super;
    return UCACHE_OK;
}

void ut_ofi_rkey_destroy(ut_rkey_t *rkey)
{
    ut_ofi_ctx_t *ctx = ut_ofi_ctx_of(rkey->ctx);

    pthread_mutex_lock(&ctx->lock);
    ((ut_ofi_peer_t *)rkey->peer)->nrkeys--;
    pthread_mutex_unlock(&ctx->lock);
    free(rkey);
}
