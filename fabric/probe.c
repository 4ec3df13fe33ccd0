/*
 * probe.c - one node's health as a reader sees it (ucache_node_probe, for
 * `ucache health`): its counters over an ADMIN request, one-sided read
 * latency and bandwidth against its exported memory, and the index check:
 * a walk over its index from a random bucket that reads every chunk a slot
 * points to and verifies it exactly as the read path does (header, key,
 * version, length, checksum) and that the key belongs in that bucket.
 * A failure is counted as bad only when it repeats at a slot that did not
 * change in between: chunks evicted under the walk are expected.
 */
#include "fabric/fabric.h"
#include "util/log.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>

#define UF_PROBE_LAT_BYTES   64u
#define UF_PROBE_BW_DEPTH    4u           /* bandwidth reads in flight       */
#define UF_PROBE_SPAN        (64u << 20)  /* data-area bytes reads rotate over */
#define UF_PROBE_SCAN        64u          /* buckets per index read (4 KiB)  */
#define UF_PROBE_SCAN_READS  1024u        /* index reads per probe at most   */

typedef struct uf_probe {
    struct ucache_context *ctx;
    uf_view_t             *v;
    uint32_t               idx;
    uf_peer_t             *p;
    uint64_t               deadline;
    ucache_probe_result_t *res;
    us_layout_t            layout;        /* the node's region geometry */
    char                  *payload;       /* index check: one chunk */
    size_t                 payload_cap;
} uf_probe_t;

static uint64_t uf_probe_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The data-area offset of read @p i of @p len bytes (rotating). */
static uint64_t uf_probe_off(const us_layout_t *l, uint64_t i, size_t len)
{
    uint64_t span = (l->data_len < UF_PROBE_SPAN) ? l->data_len : UF_PROBE_SPAN;
    uint64_t n = (span > len) ? span / len : 1;

    return l->data_off + (i % n) * len;
}

/* The node's geometry: known to readers that read it one-sidedly; read
 * here from its superblock for the others (the am path). */
static ucache_status_t uf_probe_layout(uf_probe_t *pr)
{
    uint64_t off = 0;
    ucache_status_t status;
    size_t len = US_SUPER_SIZE;
    void *buf;

    if (pr->p->layout.region_len > 0) {
        pr->layout = pr->p->layout;
        return UCACHE_OK;
    }
    buf = malloc(US_SUPER_SIZE);
    if (buf == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    status = uf_gets(pr->ctx, pr->p, 1, &off, &buf, &len);
    if (status == UCACHE_OK) {
        status = us_layout_parse(buf, US_SUPER_SIZE, &pr->layout);
    }
    free(buf);
    return status;
}

/* Latency: 64-byte reads, one at a time. */
static ucache_status_t uf_probe_latency(uf_probe_t *pr, unsigned iters, uint64_t *lat)
{
    uint8_t buf[UF_PROBE_LAT_BYTES];
    void *bufs[1] = { buf };
    size_t lens[1] = { sizeof(buf) };
    ucache_status_t status = UCACHE_OK;
    uint64_t off, t0, dt;
    unsigned i;

    for (i = 0; (i < iters) && (uc_time_ns() < pr->deadline); i++) {
        off = uf_probe_off(&pr->layout, i * 4099u, sizeof(buf));
        t0 = uc_time_ns();
        status = uf_gets(pr->ctx, pr->p, 1, &off, bufs, lens);
        dt = uc_time_ns() - t0;
        if (status != UCACHE_OK) {
            break;
        }
        if (lat != NULL) {
            lat[pr->res->lat_reads] = dt;
        }
        pr->res->lat_reads++;
        pr->res->lat_ns_sum += dt;
    }
    return status;
}

/* Bandwidth: @p size-byte reads, UF_PROBE_BW_DEPTH in flight. */
static ucache_status_t uf_probe_bandwidth(uf_probe_t *pr, size_t size, unsigned iters)
{
    const us_layout_t *l = &pr->layout;
    uint64_t offs[UF_PROBE_BW_DEPTH], t0;
    void *bufs[UF_PROBE_BW_DEPTH];
    size_t lens[UF_PROBE_BW_DEPTH];
    ucache_status_t status = UCACHE_OK;
    unsigned i, k, n;
    char *mem;

    size = (size > l->data_len) ? (size_t)l->data_len : size;
    mem = malloc(size * UF_PROBE_BW_DEPTH);
    if (mem == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    t0 = uc_time_ns();
    for (i = 0; (i < iters) && (status == UCACHE_OK) && (uc_time_ns() < pr->deadline);
         i += n) {
        n = (iters - i < UF_PROBE_BW_DEPTH) ? iters - i : UF_PROBE_BW_DEPTH;
        for (k = 0; k < n; k++) {
            offs[k] = uf_probe_off(l, i + k, size);
            bufs[k] = mem + (size_t)k * size;
            lens[k] = size;
        }
        status = uf_gets(pr->ctx, pr->p, n, offs, bufs, lens);
        if (status == UCACHE_OK) {
            pr->res->bw_reads += n;
            pr->res->bw_bytes += (uint64_t)n * size;
        }
    }
    pr->res->bw_ns = uc_time_ns() - t0;
    free(mem);
    return status;
}

/* Whether slot @p s of @p bucket still holds the words @p w0: OK (the same
 * words are the same chunk: versions are never reused), UCACHE_ERR_STALE
 * (replaced or gone), or the peer's failure. */
static ucache_status_t uf_probe_slot_same(uf_probe_t *pr, uint64_t bucket, unsigned s,
                                          const uint64_t w0[2])
{
    uint64_t w1[2], off = us_layout_bucket_off(&pr->layout, bucket) +
                          (uint64_t)s * US_SLOT_SIZE;
    ucache_status_t status;

    us_read_fence(); /* after the chunk's copy */
    status = uf_gets(pr->ctx, pr->p, 1, &off, (void *const[]){ w1 },
                     (const size_t[]){ sizeof(w1) });
    if (status != UCACHE_OK) {
        return status;
    }
    return (memcmp(w0, w1, sizeof(w1)) == 0) ? UCACHE_OK : UCACHE_ERR_STALE;
}

/* Read and verify the chunk of slot @p s of @p bucket, whose words @p w0
 * were copied at @p t_bucket: OK, UCACHE_ERR_STALE (gone or replaced),
 * UCACHE_ERR_CORRUPT (wrong), or the peer's failure.  A read that outlasts
 * the grace period counts only if the slot still holds the same words. */
static ucache_status_t uf_probe_chunk(uf_probe_t *pr, uint64_t bucket, unsigned s,
                                      const uint64_t w0[2], const us_loc_t *loc,
                                      uint16_t fp, uint64_t t_bucket)
{
    const us_layout_t *l = &pr->layout;
    ucache_status_t status;
    us_chunk_hdr_t hdr;
    us_key_t key;
    uint64_t b[2], offs[2] = { loc->hdr_off, us_loc_payload_off(loc) };
    void *bufs[2];
    size_t lens[2] = { sizeof(hdr), loc->length };
    char *np;

    if (loc->length > pr->payload_cap) {
        np = realloc(pr->payload, loc->length);
        if (np == NULL) {
            return UCACHE_ERR_NO_MEMORY;
        }
        pr->payload = np;
        pr->payload_cap = loc->length;
    }
    bufs[0] = &hdr;
    bufs[1] = pr->payload;
    status = uf_gets(pr->ctx, pr->p, (loc->length > 0) ? 2 : 1, offs, bufs, lens);
    if (status != UCACHE_OK) {
        return status;
    }
    if (us_read_late(l, t_bucket)) { /* its slot, as well as its bytes, decides */
        status = uf_probe_slot_same(pr, bucket, s, w0);
        if (status != UCACHE_OK) {
            return status;
        }
    }
    if (hdr.version == 0) {
        return UCACHE_ERR_STALE; /* unpublished since the bucket was read */
    }
    key.hi = hdr.key_hi;
    key.lo = hdr.key_lo;
    us_key_buckets(&key, l->nbuckets, b);
    if ((us_key_fp(&key) != fp) || ((b[0] != bucket) && (b[1] != bucket))) {
        return UCACHE_ERR_CORRUPT; /* the slot names a chunk that is not its key's */
    }
    status = us_chunk_verify(l, &key, loc, &hdr, NULL, pr->payload, NULL, 0, loc->length, 0);
    if ((status == UCACHE_OK) && (pr->v->place != NULL)) {
        uint32_t owners[UF_MAX_REPLICAS];
        unsigned n = uf_place_owners(pr->v->place, &key, pr->ctx->cfg.replicas, owners), i;
        bool mine = false;

        for (i = 0; i < n; i++) {
            mine |= (owners[i] == pr->idx);
        }
        pr->res->chunks_misplaced += !mine;
    }
    return status;
}

/* The index check: walk buckets from a random one until @p want chunks are
 * settled (checked, bad or changed), the index ends or time runs out. */
static ucache_status_t uf_probe_index(uf_probe_t *pr, unsigned want)
{
    const us_layout_t *l = &pr->layout;
    uint8_t bkts[UF_PROBE_SCAN * US_BUCKET_SIZE];
    uint64_t seed = uc_time_ns() ^ pr->p->id, start, b, n, off, t, w0[2];
    ucache_probe_result_t *res = pr->res;
    ucache_status_t status = UCACHE_OK, st;
    unsigned reads = 0, s;
    void *bufs[1] = { bkts };
    size_t lens[1];
    uint16_t fp;
    us_loc_t loc;

    seed = (seed == 0) ? 1 : seed;
    start = uf_probe_rand(&seed) % l->nbuckets;
    for (b = 0; (b < l->nbuckets) && (reads < UF_PROBE_SCAN_READS) &&
                (res->chunks_checked + res->chunks_bad + res->chunks_changed < want) &&
                (uc_time_ns() < pr->deadline); b += n, reads++) {
        uint64_t first = (start + b) % l->nbuckets;

        n = l->nbuckets - first;
        n = (n > UF_PROBE_SCAN) ? UF_PROBE_SCAN : n;
        n = (n > l->nbuckets - b) ? l->nbuckets - b : n;
        off = us_layout_bucket_off(l, first);
        lens[0] = n * US_BUCKET_SIZE;
        t = uc_time_ns();
        status = uf_gets(pr->ctx, pr->p, 1, &off, bufs, lens);
        if (status != UCACHE_OK) {
            return status;
        }
        res->buckets_scanned += n;
        for (s = 0; (s < n * US_BUCKET_SLOTS) &&
                    (res->chunks_checked + res->chunks_bad + res->chunks_changed < want);
             s++) {
            const uint8_t *slot = bkts + (size_t)s * US_SLOT_SIZE;
            uint64_t bucket = first + s / US_BUCKET_SLOTS;

            if (!us_slot_decode(l, slot, &loc, &fp)) {
                continue;
            }
            memcpy(w0, slot, sizeof(w0));
            st = uf_probe_chunk(pr, bucket, s % US_BUCKET_SLOTS, w0, &loc, fp, t);
            if (st == UCACHE_ERR_CORRUPT) {
                /* once more at an unchanged slot: the same words are the
                 * same chunk, so a second failure is a bad chunk */
                uint64_t t1 = uc_time_ns();

                st = uf_probe_slot_same(pr, bucket, s % US_BUCKET_SLOTS, w0);
                if (st == UCACHE_OK) {
                    st = uf_probe_chunk(pr, bucket, s % US_BUCKET_SLOTS, w0, &loc, fp, t1);
                }
            }
            if (st == UCACHE_OK) {
                res->chunks_checked++;
            } else if (st == UCACHE_ERR_CORRUPT) {
                res->chunks_bad++;
                UC_WARN("node %016llx: the chunk of slot %llu:%u fails verification "
                        "twice at an unchanged slot", (unsigned long long)pr->p->id,
                        (unsigned long long)bucket, s % US_BUCKET_SLOTS);
            } else if ((st == UCACHE_ERR_STALE) || (st == UCACHE_ERR_TIMEOUT)) {
                res->chunks_changed++;
            } else {
                return st; /* the peer failed */
            }
        }
    }
    res->index_cut = (b < l->nbuckets) && (reads < UF_PROBE_SCAN_READS) &&
                     (res->chunks_checked + res->chunks_bad + res->chunks_changed < want);
    return UCACHE_OK;
}

ucache_status_t ucache_node_probe(ucache_h ctx, uint64_t id,
                                  const ucache_probe_params_t *params,
                                  ucache_probe_result_t *res)
{
    ucache_probe_params_t prm = { 0, 1u << 20, 32, 2 * UC_NSEC_PER_SEC, 0, NULL };
    ucache_status_t status;
    uf_probe_t pr;
    uint64_t t0 = uc_time_ns();

    if ((ctx == NULL) || (res == NULL) || ((params != NULL) &&
        (params->field_mask & ~(uint64_t)((UCACHE_PROBE_FIELD_LAT_NS << 1) - 1)))) {
        return UCACHE_ERR_INVALID;
    }
    memset(res, 0, sizeof(*res));
    if (params != NULL) {
        uint64_t m = params->field_mask;

        prm.size       = (m & UCACHE_PROBE_FIELD_SIZE) ? params->size : prm.size;
        prm.iters      = (m & UCACHE_PROBE_FIELD_ITERS) ? params->iters : prm.iters;
        prm.timeout_ns = (m & UCACHE_PROBE_FIELD_TIMEOUT_NS) ? params->timeout_ns :
                         prm.timeout_ns;
        prm.deep       = (m & UCACHE_PROBE_FIELD_DEEP) ? params->deep : 0;
        prm.lat_ns     = (m & UCACHE_PROBE_FIELD_LAT_NS) ? params->lat_ns : NULL;
    }
    if ((prm.size == 0) || (prm.iters == 0) || (prm.iters > 100000) ||
        (prm.timeout_ns == 0)) {
        UC_ERROR("ucache_node_probe: size, iters (1..100000) and timeout must be set");
        res->status = UCACHE_ERR_INVALID;
        return res->status;
    }
    memset(&pr, 0, sizeof(pr));
    pr.ctx      = ctx;
    pr.res      = res;
    pr.deadline = t0 + prm.timeout_ns;
    pr.v        = uf_view_acquire(ctx);
    pr.idx      = uf_view_find(pr.v, id);
    status = UCACHE_ERR_NOT_FOUND;
    if (pr.idx != UINT32_MAX) {
        pr.p = uf_view_peer(ctx, pr.v, pr.idx);
        res->connect_ns = uc_time_ns() - t0;
        status = (pr.p != NULL) ? UCACHE_OK : UCACHE_ERR_PEER;
    }
    if (status == UCACHE_OK) {
        snprintf(res->path, sizeof(res->path), "%s",
                 pr.p->self ? "self" : ut_path_name(pr.p->path));
        t0 = uc_time_ns();
        status = uf_admin_call(ctx, pr.p, UF_ADMIN_STATS, prm.timeout_ns, &res->stats);
        res->rpc_ns = uc_time_ns() - t0;
    }
    if ((status == UCACHE_OK) && !pr.p->self) {
        status = uf_probe_layout(&pr);
    }
    if ((status == UCACHE_OK) && !pr.p->self) {
        status = uf_probe_latency(&pr, prm.iters, prm.lat_ns);
        if (status == UCACHE_OK) {
            status = uf_probe_bandwidth(&pr, prm.size, prm.iters);
        }
        if ((status == UCACHE_OK) && (prm.deep > 0)) {
            status = uf_probe_index(&pr, prm.deep);
        }
        if (pr.p->path == UT_PATH_MAPPED) {
            snprintf(res->transport, sizeof(res->transport), "shm");
        } else {
            ut_peer_transports(pr.p->tp, res->transport, sizeof(res->transport));
        }
        if ((status == UCACHE_OK) && (res->lat_reads == 0)) {
            status = UCACHE_ERR_TIMEOUT;
        }
        if ((status != UCACHE_OK) && (status != UCACHE_ERR_NO_MEMORY)) {
            uf_peer_suspect(ctx, pr.p, ucache_strerror(status));
        }
    }
    free(pr.payload);
    uf_view_release(pr.v);
    res->status = status;
    return status;
}
