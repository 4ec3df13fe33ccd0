/*
 * ucx_mem.c - the UCX backend's memory: exported and registered regions,
 * their packed keys and the same-host mapping service; a peer's remote
 * keys (unpacked per endpoint, mapped read-only on the same host).
 * Exported memory is read-only to peers.
 */
#include "transport/ucx_int.h"

#include <sched.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

/* ------------------------------------------------------------------------ */
/* Memory                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * The mapping service's answer to a same-host reader (its thread, not the
 * progress path): a signed UT_OP_MAP request for a region of ours gets a
 * new read-only open of the region's memfd.
 */
static ucache_status_t ut_ucx_mapfd_open(void *arg, const void *req, size_t len,
                                         int *fd_p, uint64_t *len_p)
{
    ut_ucx_ctx_t *ctx = arg;
    ut_role_t role = UT_ROLE_NONE;
    ucache_status_t status;
    ut_am_map_desc d;
    ut_am_req_hdr hdr;
    ut_ucx_mem_t *mem;

    if (len != sizeof(hdr) + sizeof(d)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        return UCACHE_ERR_INVALID;
    }
    memcpy(&hdr, req, sizeof(hdr));
    memcpy(&d, (const uint8_t *)req + sizeof(hdr), sizeof(d));
    if ((hdr.magic != UT_AM_MAGIC) || (hdr.op != UT_OP_MAP)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        return UCACHE_ERR_INVALID;
    }
    pthread_mutex_lock(&ctx->lock);
    status = ut_auth_check(ctx->auth, req, sizeof(hdr), offsetof(ut_am_req_hdr, auth),
                           hdr.from, ctx->uuid, false, &d, sizeof(d), &role);
    mem = (d.region_id < UT_MAX_REGIONS) ? ctx->regions[d.region_id] : NULL;
    if ((status == UCACHE_OK) && ((mem == NULL) || (mem->cookie != d.cookie) ||
                                  (mem->memfd < 0))) {
        status = UCACHE_ERR_STALE;
    }
    if (status == UCACHE_OK) {
        *fd_p  = ut_memfd_reopen_ro(mem->memfd);
        *len_p = mem->super.len;
        status = (*fd_p >= 0) ? UCACHE_OK : UCACHE_ERR_TRANSPORT;
        UT_STAT_ADD(ctx, maps_served, status == UCACHE_OK);
    }
    pthread_mutex_unlock(&ctx->lock);
    return status;
}

/*
 * Exported memory is racy by design: peers read it without a lock (one-sided
 * gets, same-host mappings, replies sent uncopied out of it while its owner
 * may reuse the space a grace period after unpublishing it), and every
 * reader verifies what it got (key, version, checksum).  ThreadSanitizer is
 * told so for the whole region, once, when it is exported.
 */
#if defined(__SANITIZE_THREAD__)
void AnnotateBenignRaceSized(const char *file, int line, const volatile void *mem,
                             unsigned long size, const char *desc);
#define UT_REGION_RACY(_p, _n) \
    AnnotateBenignRaceSized(__FILE__, __LINE__, (_p), (_n), "exported region")
#else
#define UT_REGION_RACY(_p, _n) do { } while (0)
#endif

static ucache_status_t do_mem_map(ut_ucx_ctx_t *ctx, void *addr, size_t len,
                                  bool allocate, bool exported,
                                  ut_mem_t **mem_p)
{
    ucp_mem_map_params_t mp = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_LENGTH |
                      UCP_MEM_MAP_PARAM_FIELD_PROT |
                      UCP_MEM_MAP_PARAM_FIELD_ADDRESS,
        .address    = addr,
        .length     = len,
        .prot       = UCP_MEM_MAP_PROT_LOCAL_READ | UCP_MEM_MAP_PROT_LOCAL_WRITE |
                      (exported ? UCP_MEM_MAP_PROT_REMOTE_READ : 0)
    };
    ucp_mem_attr_t attr = {
        .field_mask = UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH
    };
    ut_rkey_body body;
    ucache_status_t ret = UCACHE_ERR_NO_MEMORY;
    ut_ucx_mem_t *mem;
    ucs_status_t status;
    void *rbuf;
    size_t rlen;
    uint32_t id;

    if ((len == 0) || (!allocate && (addr == NULL))) {
        UC_ERROR("cannot register %zu bytes at %p", len, addr);
        return UCACHE_ERR_INVALID;
    }
    mem = calloc(1, sizeof(*mem));
    if (mem == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    mem->region_id = UINT32_MAX;
    mem->memfd     = -1;
    /* Our own sealed memfd, not UCX's allocation: UCX maps its posix
     * segments writable in every same-host peer that unpacks the key. */
    if (allocate) {
        ret = ut_memfd_alloc(len, &mem->memfd, &mp.address);
        if (ret != UCACHE_OK) {
            goto err_free;
        }
    }
    /* Not pinned up front: the owner commits its region in the background
     * (store.h, us_store_commit) and must serve within seconds of start.
     * On InfiniBand UCX then registers it on demand (ODP) where the HCA
     * can; where it cannot, the registration pins it here. */
    if (allocate) {
        mp.field_mask |= UCP_MEM_MAP_PARAM_FIELD_FLAGS;
        mp.flags       = UCP_MEM_MAP_NONBLOCK;
    }
    status = ucp_mem_map(ctx->ucp, &mp, &mem->memh);
    if (status != UCS_OK) {
        UC_ERROR("ucp_mem_map of %zu bytes: %s", len, ucs_status_string(status));
        ret = ut_ucs_status(status);
        goto err_free;
    }
    if (ucp_mem_query(mem->memh, &attr) != UCS_OK) {
        ret = UCACHE_ERR_TRANSPORT;
        goto err_unmap;
    }
    mem->super.ctx  = &ctx->super;
    mem->super.base = attr.address;
    mem->super.len  = len; /* UCX may round up; we export what was asked */
    if (!exported) {
        *mem_p = &mem->super;
        return UCACHE_OK;
    }
    UT_REGION_RACY(mem->super.base, len);

    pthread_mutex_lock(&ctx->lock);
    if ((mem->memfd >= 0) && (ctx->mapsrv == NULL) &&
        (ut_mapfd_start(ctx->cfg.map_dir, ctx->mapname, ctx->cfg.timeout_ns, ut_ucx_mapfd_open, ctx,
                        &ctx->mapsrv) != UCACHE_OK)) {
        UC_WARN("same-host readers cannot map this context's memory; they read it "
                "with requests");
    }
    for (id = 0; (id < UT_MAX_REGIONS) && (ctx->regions[id] != NULL); id++) {
    }
    if (id == UT_MAX_REGIONS) {
        pthread_mutex_unlock(&ctx->lock);
        UC_ERROR("too many exported regions (%d)", UT_MAX_REGIONS);
        ret = UCACHE_ERR_AGAIN;
        goto err_unmap;
    }
    status = ucp_rkey_pack(ctx->ucp, mem->memh, &rbuf, &rlen);
    if (status != UCS_OK) {
        pthread_mutex_unlock(&ctx->lock);
        UC_ERROR("ucp_rkey_pack: %s", ucs_status_string(status));
        ret = UCACHE_ERR_TRANSPORT;
        goto err_unmap;
    }
    mem->cookie    = ut_random64();
    mem->region_id = id;
    memset(&body, 0, sizeof(body));
    body.base      = (uint64_t)(uintptr_t)attr.address;
    body.len       = len;
    body.cookie    = mem->cookie;
    body.ctx_uuid  = ctx->uuid;
    body.region_id = id;
    mem->blob = ut_blob_build(UT_RKEY_MAGIC, &body, sizeof(body), rbuf, rlen,
                              &mem->blob_len);
    ucp_rkey_buffer_release(rbuf);
    if (mem->blob == NULL) {
        pthread_mutex_unlock(&ctx->lock);
        goto err_unmap;
    }
    ctx->regions[id] = mem;
    ctx->region_top  = (id + 1 > ctx->region_top) ? id + 1 : ctx->region_top;
    pthread_mutex_unlock(&ctx->lock);
    *mem_p = &mem->super;
    return UCACHE_OK;

err_unmap:
    ucp_mem_unmap(ctx->ucp, mem->memh);
err_free:
    if (mem->memfd >= 0) {
        munmap(mp.address, len);
        close(mem->memfd);
    }
    free(mem);
    return ret;
}

ucache_status_t ut_ucx_mem_export(ut_ctx_t *c, size_t len, ut_mem_t **mem_p)
{
    return do_mem_map(ut_ctx_of(c), NULL, len, true, true, mem_p);
}

ucache_status_t ut_ucx_mem_register(ut_ctx_t *c, void *addr, size_t len,
                                    unsigned flags, ut_mem_t **mem_p)
{
    if (flags & ~(unsigned)UT_MEM_EXPORT) {
        return UCACHE_ERR_INVALID;
    }
    return do_mem_map(ut_ctx_of(c), addr, len, false, !!(flags & UT_MEM_EXPORT),
                      mem_p);
}

void ut_ucx_do_mem_free(ut_ucx_ctx_t *ctx, ut_ucx_mem_t *mem)
{
    ucp_mem_unmap(ctx->ucp, mem->memh);
    if (mem->memfd >= 0) {
        munmap(mem->super.base, mem->super.len);
        close(mem->memfd);
    }
    free(mem->blob);
    free(mem);
}

/* The published exported region that holds [data, data + len), or NULL
 * (ctx->lock held): a zero-copy reply out of it keeps it mapped until the
 * reply is sent (ut_ucx_mem_destroy waits, or parks it). */
ut_ucx_mem_t *ut_ucx_do_region_of(ut_ucx_ctx_t *ctx, const void *data, size_t len)
{
    uintptr_t a = (uintptr_t)data, base;
    ut_ucx_mem_t *mem;
    unsigned id;

    for (id = 0; id < ctx->region_top; id++) {
        mem = ctx->regions[id];
        if (mem == NULL) {
            continue;
        }
        base = (uintptr_t)mem->super.base;
        if ((a >= base) && (len <= mem->super.len) && (a - base <= mem->super.len - len)) {
            return mem;
        }
    }
    return NULL;
}

void ut_ucx_mem_destroy(ut_mem_t *m)
{
    ut_ucx_mem_t *mem = (ut_ucx_mem_t *)m;
    ut_ucx_ctx_t *ctx = ut_ctx_of(m->ctx);
    uint64_t deadline;

    if (mem->region_id != UINT32_MAX) {
        /* Unpublish (new reads of it get UCACHE_ERR_STALE), then let the
         * replies that still point into it finish sending.  If a reader
         * stalls them past the deadline, the region stays mapped (parked)
         * until the context is destroyed: UCX never reads freed memory. */
        deadline = uc_deadline(ctx->cfg.timeout_ns);
        pthread_mutex_lock(&ctx->lock);
        ctx->regions[mem->region_id] = NULL;
        while ((mem->sends > 0) && (uc_time_ns() < deadline)) {
            ut_ucx_do_progress(ctx);
            pthread_mutex_unlock(&ctx->lock);
            sched_yield();
            pthread_mutex_lock(&ctx->lock);
        }
        if (mem->sends > 0) {
            UC_WARN("region %u destroyed with %u replies still in flight; it "
                    "stays mapped until the context is destroyed",
                    mem->region_id, mem->sends);
            mem->parked_next = ctx->parked;
            ctx->parked      = mem;
            UT_STAT_ADD(ctx, regions_parked, 1);
            pthread_mutex_unlock(&ctx->lock);
            return;
        }
        pthread_mutex_unlock(&ctx->lock);
    }
    ut_ucx_do_mem_free(ctx, mem);
}

ucache_status_t ut_ucx_mem_pack(ut_mem_t *m, const void **blob_p,
                                size_t *len_p)
{
    ut_ucx_mem_t *mem = (ut_ucx_mem_t *)m;

    if (mem->blob == NULL) {
        UC_ERROR("region %p was not registered for export", m->base);
        return UCACHE_ERR_INVALID;
    }
    *blob_p = mem->blob;
    *len_p  = mem->blob_len;
    return UCACHE_OK;
}

/* Populate [start, start + len) of a mapping (page-aligned). */
static void do_populate_range(uintptr_t start, size_t len)
{
    if ((len > 0) && (madvise((void *)start, len, MADV_POPULATE_READ) != 0)) {
        UC_DEBUG("madvise(MADV_POPULATE_READ) of %zu bytes: %m", len);
    }
}

/*
 * Fault a mapped region in once, in a few calls, instead of one fault per
 * page on the read path (5-8 us per 4 KiB page on some VMs) - the pages its
 * owner has committed, that is (mincore: those in the page cache).  A page
 * the owner has not committed yet (it serves while it commits, store.h)
 * would be allocated by this reader's fault: the owner's work, on this
 * reader's deadline; those fault in when first read instead.
 */
#define UT_POPULATE_WINDOW (1ull << 30)

static void do_map_populate(void *ptr, size_t len)
{
    uintptr_t page  = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)ptr & ~(page - 1);
    uintptr_t end   = ((uintptr_t)ptr + len + page - 1) & ~(page - 1);
    uintptr_t w, wend, run = 0, i, n;
    unsigned char *vec = malloc(UT_POPULATE_WINDOW / page);

    if (vec == NULL) {
        return;
    }
    for (w = start; w < end; w = wend) {
        wend = ((end - w) > UT_POPULATE_WINDOW) ? w + UT_POPULATE_WINDOW : end;
        n    = (wend - w) / page;
        if (mincore((void *)w, wend - w, vec) != 0) {
            UC_DEBUG("mincore of %zu bytes: %m; not prefaulted", (size_t)(wend - w));
            break;
        }
        for (i = 0; i < n; i++) {
            if ((vec[i] & 1) && (run == 0)) {
                run = w + i * page;
            } else if (!(vec[i] & 1) && (run != 0)) {
                do_populate_range(run, w + i * page - run);
                run = 0;
            }
        }
    }
    if (run != 0) {
        do_populate_range(run, ((w < end) ? w : end) - run);
    }
    free(vec);
}

ucache_status_t ut_ucx_rkey_unpack(ut_peer_t *p, const void *blob,
                                   size_t len, ut_rkey_t **rkey_p)
{
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)p;
    ut_ucx_ctx_t *ctx   = ut_ctx_of(p->ctx);
    struct {
        ut_am_req_hdr  hdr;
        ut_am_map_desc desc;
    } mreq;
    ut_rkey_body body;
    ucache_status_t status;
    ut_ucx_rkey_t *rk;
    void *ptr, *ucp_blob;
    size_t plen;

    _Static_assert(sizeof(mreq) == sizeof(ut_am_req_hdr) + sizeof(ut_am_map_desc),
                   "the mapping request has no padding");
    status = ut_blob_take(&ctx->st.bad_input, blob, len, UT_RKEY_MAGIC,
                          "a remote key", &body, sizeof(body), &ucp_blob, &plen);
    if (status != UCACHE_OK) {
        return status;
    }
    if ((body.len == 0) || (body.base + body.len < body.base)) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_ERROR("refused a remote key for %s: its region wraps the address space",
                 peer->name);
        free(ucp_blob);
        return UCACHE_ERR_INVALID;
    }
    if (body.ctx_uuid != peer->uuid) {
        UT_STAT_ADD(ctx, bad_input, 1);
        UC_ERROR("refused a remote key for %s: it belongs to another peer",
                 peer->name);
        free(ucp_blob);
        return UCACHE_ERR_STALE;
    }
    rk = calloc(1, sizeof(*rk));
    if (rk == NULL) {
        free(ucp_blob);
        return UCACHE_ERR_NO_MEMORY;
    }
    rk->blob            = ucp_blob;
    rk->blob_len        = plen;
    rk->cookie          = body.cookie;
    rk->region_id       = body.region_id;
    rk->super.ctx       = p->ctx;
    rk->super.peer      = p;
    rk->super.base      = body.base;
    rk->super.len       = body.len;

    pthread_mutex_lock(&ctx->lock);
    status = ut_ucx_do_peer_ensure(ctx, peer);
    if (status == UCACHE_OK) {
        status = ut_ucx_do_rkey_ready(ctx, rk, peer);
    }
    if (status != UCACHE_OK) {
        pthread_mutex_unlock(&ctx->lock);
        free(rk->blob);
        free(rk);
        return status;
    }
    /* Same host: ask the owner for a read-only descriptor of the region
     * (signed, like any request) and map it once; reads become plain
     * copies - if the mapping holds the length the blob claims. */
    if ((peer->mapname[0] != '\0') && (ctx->shm || peer->map_dir)) {
        memset(&mreq, 0, sizeof(mreq));
        mreq.hdr.magic      = UT_AM_MAGIC;
        mreq.hdr.op         = UT_OP_MAP;
        mreq.hdr.from       = ctx->uuid;
        mreq.desc.region_id = rk->region_id;
        mreq.desc.cookie    = rk->cookie;
        ut_auth_sign(ctx->auth, &mreq.hdr, sizeof(mreq.hdr), offsetof(ut_am_req_hdr, auth),
                     peer->uuid, &mreq.desc, sizeof(mreq.desc));
    }
    peer->nrkeys++;
    pthread_mutex_unlock(&ctx->lock);
    if ((peer->mapname[0] != '\0') && (ctx->shm || peer->map_dir)) {
        status = ut_mapfd_map(ctx->cfg.map_dir, peer->mapname, &mreq, sizeof(mreq),
                              ctx->cfg.timeout_ns, &ptr,
                              &rk->map_len);
        if ((status == UCACHE_OK) && (rk->map_len >= rk->super.len)) {
            rk->super.mapped = ptr;
        } else if (status == UCACHE_OK) {
            UC_WARN("a key of %s claims %zu bytes its mapping does not hold: read with "
                    "requests", peer->name, rk->super.len);
            munmap(ptr, rk->map_len);
        } else {
            UC_DEBUG("%s's memory is not mapped here: %s", peer->name,
                     ucache_strerror(status));
        }
    }
    if ((rk->super.mapped != NULL) && ctx->cfg.map_populate) {
        do_map_populate(rk->super.mapped, rk->super.len);
    }
    UC_DEBUG("remote key of %s: region %u, %zu bytes, %s", peer->name,
             rk->region_id, rk->super.len, rk->super.mapped ? "mapped" : "remote");
    *rkey_p = &rk->super;
    return UCACHE_OK;
}

void ut_ucx_rkey_destroy(ut_rkey_t *rkey)
{
    ut_ucx_rkey_t *rk   = (ut_ucx_rkey_t *)rkey;
    ut_ucx_ctx_t *ctx   = ut_ctx_of(rkey->ctx);
    ut_ucx_peer_t *peer = (ut_ucx_peer_t *)rkey->peer;

    pthread_mutex_lock(&ctx->lock);
    if (rk->rkey != NULL) {
        ucp_rkey_destroy(rk->rkey);
    }
    if (rk->super.mapped != NULL) {
        munmap(rk->super.mapped, rk->map_len);
    }
    peer->nrkeys--;
    pthread_mutex_unlock(&ctx->lock);
    free(rk->blob);
    free(rk);
}
