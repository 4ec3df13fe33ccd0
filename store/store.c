/*
 * store.c - the owner's side of a node store: arena, index, publish and
 * unpublish, pins, quotas, eviction (policy in evict.c, memory in alloc.c,
 * the NVMe tier in tier.c).
 * The invariant readers rely on: a slot is published only after its chunk's
 * header and payload are complete, and a chunk's memory is reused only a
 * grace period after its slot was unpublished and its header tombstoned.
 *
 * Chunk / slot states (desc->state; the slot words are what readers see):
 *
 *        us_store_reserve()            us_store_publish()
 *   FREE -----------------> RESERVED -------------------> PUBLISHED
 *    ^   (slot words 0;      |  (header + payload written,     |
 *    |    block allocated)   |   then word1, then word0 with   |
 *    |                       |   a release store)              |
 *    |  us_store_abort()     |                                 | us_st_unpublish():
 *    +<----------------------+                                 | word0 = 0, header
 *    |  (block reused at once: never visible)                  | version = 0, block
 *    |                                                         v to the quarantine
 *    +<------------------ slot free at once ----------------- GRACE (block only)
 *                     block reused by us_alloc_reclaim() after grace_ns
 *
 * A reader that fetched the slot before word0 = 0 finishes within grace_ns
 * (it discards itself otherwise, layout.c), so it reads the old bytes or,
 * racing the tombstone, fails verification; never reused memory it trusts.
 */
#include "store_int.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/time.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <xxhash.h>

/* --- arena -------------------------------------------------------------- */

/* Bytes of [base, base + len) backed by huge pages now, from smaps (the
 * kernel's word, not our request's: MADV_HUGEPAGE may be ignored, e.g. for
 * shared memory with shmem THP off). */
static uint64_t arena_huge_bytes(const char *base, size_t len)
{
    unsigned long lo, hi, kb;
    uint64_t huge = 0;
    int inside = 0;
    char line[256];
    FILE *f = fopen("/proc/self/smaps", "r");

    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
            inside = (lo < (unsigned long)(base + len)) && (hi > (unsigned long)base);
        } else if (inside && (sscanf(line, "AnonHugePages: %lu kB", &kb) == 1 ||
                              sscanf(line, "ShmemPmdMapped: %lu kB", &kb) == 1 ||
                              sscanf(line, "Private_Hugetlb: %lu kB", &kb) == 1 ||
                              sscanf(line, "Shared_Hugetlb: %lu kB", &kb) == 1)) {
            huge += (uint64_t)kb * 1024;
        }
    }
    fclose(f);
    return (huge > len) ? len : huge;
}

static ucache_status_t arena_map(us_store_t *s, const us_store_params_t *p)
{
    void *base = MAP_FAILED;

    s->len = p->len & ~(uint64_t)(US_GRANULE - 1);
    if (p->base != NULL) {
        s->base = p->base;
    } else {
        if (s->len % US_HUGE_PAGE == 0) {
            base = mmap(NULL, s->len, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
        }
        if (base == MAP_FAILED) {
            base = mmap(NULL, s->len, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        }
        if (base == MAP_FAILED) {
            UC_ERROR("store: mmap of %zu bytes failed: %m", s->len);
            return UCACHE_ERR_NO_MEMORY;
        }
        s->base   = base;
        s->mapped = 1;
    }
    /* huge pages where the kernel gives them (THP in 'madvise' mode); no
     * error if it will not (hugetlb mappings, shmem with THP off) */
    (void)madvise(s->base, s->len, MADV_HUGEPAGE);
    if (p->lock && (p->commit_first != 0) && (p->base != NULL)) {
        s->lock_pages = 1;           /* segment by segment (us_store_commit) */
    } else if (p->lock) {
        if (mlock(s->base, s->len) == 0) {
            s->stats.locked = 1;
        } else {
            UC_WARN("store: mlock of %zu bytes failed (%m); cache memory may be "
                    "swapped or paged", s->len);
        }
    }
    s->stats.bytes_huge = arena_huge_bytes(s->base, s->len);
    UC_INFO("store: %zu bytes at %p, %s, %llu bytes in huge pages", s->len, s->base,
            s->lock_pages ? "locked as it is committed" :
            s->stats.locked ? "locked" : "not locked",
            (unsigned long long)s->stats.bytes_huge);
    return UCACHE_OK;
}

static void arena_unmap(us_store_t *s)
{
    if (s->stats.locked || s->lock_pages) {
        munlock(s->base, s->len);
    }
    if (s->mapped) {
        munmap(s->base, s->len);
    }
}

/* Geometry: superblock, index sized for len / index_chunk chunks at one
 * half load, data area to the end. */
static ucache_status_t format(us_store_t *s, const us_store_params_t *p)
{
    uint64_t chunks, nb = 16, index_off = US_SUPER_SIZE, data_off;
    us_super_t *sb = (us_super_t *)s->base;
    uint64_t inc;

    chunks = s->len / (p->index_chunk ? p->index_chunk : 65536);
    while ((nb * US_BUCKET_SLOTS < 2 * chunks) && (nb < (1ull << 30))) {
        nb <<= 1;
    }
    data_off = (index_off + nb * US_BUCKET_SIZE + 4095) & ~4095ull;
    if ((data_off + 4 * US_GRANULE > s->len) ||
        ((s->len - data_off) / US_GRANULE > US_MAX_GRANULES)) {
        UC_ERROR("store: %zu bytes cannot hold a %llu-bucket index and data",
                 s->len, (unsigned long long)nb);
        return UCACHE_ERR_INVALID;
    }
    if (getrandom(&inc, sizeof(inc), 0) != sizeof(inc)) {
        inc = uc_time_ns();
    }
    memset(sb, 0, US_SUPER_SIZE);
    memset(s->base + index_off, 0, nb * US_BUCKET_SIZE);
    sb->magic          = US_SUPER_MAGIC;
    sb->layout_version = US_LAYOUT_VERSION;
    sb->super_size     = US_SUPER_SIZE;
    sb->incarnation    = inc;
    sb->region_len     = s->len;
    sb->index_off      = index_off;
    sb->nbuckets       = nb;
    sb->data_off       = data_off;
    sb->data_len       = (s->len - data_off) & ~(uint64_t)(US_GRANULE - 1);
    sb->grace_ns       = p->grace_ns;
    sb->bucket_size    = US_BUCKET_SIZE;
    sb->bucket_slots   = US_BUCKET_SLOTS;
    sb->max_payload    = (uint32_t)s->max_payload;
    sb->segment_size   = US_SEGMENT;
    sb->checksum       = XXH64(sb, offsetof(us_super_t, checksum), 0);
    s->next_version    = (inc >> 40) | 1; /* versions differ across restarts */
    return us_layout_parse(sb, US_SUPER_SIZE, &s->layout);
}

/* mlock [ptr, ptr + len) if the store locks its segments; a failure is
 * logged once. */
static void commit_lock(us_store_t *s, void *ptr, size_t len)
{
    if (s->lock_pages && (mlock(ptr, len) != 0) && (atomic_exchange(&s->lock_failed, 1) == 0)) {
        UC_WARN("store: mlock of %zu bytes failed (%m); cache memory may be swapped "
                "or paged", len);
    }
}

/* params.commit_first: commit the superblock, the index and the first
 * data bytes now; hold the rest back from the allocator. */
static ucache_status_t commit_setup(us_store_t *s, const us_store_params_t *p)
{
    uint64_t first, rest, data_len = s->layout.data_len - s->stage_len;

    s->stats.commit_ns = 1;
    if ((p->commit_first == 0) || (p->base == NULL)) {
        return UCACHE_OK;
    }
    first = (p->commit_first + US_COMMIT_SEG - 1) / US_COMMIT_SEG * US_COMMIT_SEG;
    if (first + 2 * US_COMMIT_SEG > data_len) {  /* small: all of it now */
        uc_mem_commit(s->base, s->len);
        commit_lock(s, s->base, s->len);
        s->stats.locked = s->lock_pages && !atomic_load(&s->lock_failed);
        return UCACHE_OK;
    }
    rest        = data_len - first;
    s->nsegs    = (uint32_t)((rest + US_COMMIT_SEG - 1) / US_COMMIT_SEG);
    s->seg_done = calloc(s->nsegs, 1);
    if (s->seg_done == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    s->commit_first    = first;
    s->commit_t0       = uc_time_ns();
    s->stats.commit_ns = 0;
    uc_mem_commit(s->base, s->layout.data_off + s->stage_len + first);
    commit_lock(s, s->base, s->layout.data_off + s->stage_len + first);
    us_alloc_hold(&s->alloc, first);
    return UCACHE_OK;
}

uint64_t us_store_commit(us_store_t *s)
{
    uint32_t i = atomic_fetch_add(&s->seg_next, 1);
    uint64_t off, len, t;
    char *ptr;

    if (i >= s->nsegs) {
        return 0;
    }
    off = s->commit_first + (uint64_t)i * US_COMMIT_SEG;
    len = s->layout.data_len - s->stage_len - off;
    len = (len < US_COMMIT_SEG) ? len : US_COMMIT_SEG;
    ptr = s->main + off;
    if (i + 1 == s->nsegs) {         /* the last one: to the region's end */
        len = (uint64_t)(s->base + s->len - ptr);
    }
    uc_mem_commit(ptr, len);
    commit_lock(s, ptr, len);
    pthread_mutex_lock(&s->lock);
    s->seg_done[i] = 1;
    while ((s->seg_grown < s->nsegs) && s->seg_done[s->seg_grown]) {
        us_alloc_grow(&s->alloc, US_COMMIT_SEG);
        s->seg_grown++;
    }
    if ((s->seg_grown == s->nsegs) && (s->stats.commit_ns == 0)) {
        t = uc_time_ns() - s->commit_t0;
        s->stats.commit_ns  = t ? t : 1;
        s->stats.locked     = s->lock_pages && !atomic_load(&s->lock_failed);
        s->stats.bytes_huge = arena_huge_bytes(s->base, s->len);
        UC_INFO("store: all %llu MiB of the data area usable after %.2f s (%.2f s a GiB)",
                (unsigned long long)(s->layout.data_len >> 20), t / 1e9,
                t / 1e9 / ((double)s->layout.data_len / (1ull << 30)));
    }
    pthread_mutex_unlock(&s->lock);
    return len;
}

ucache_status_t us_store_create(const us_store_params_t *p, us_store_t **store_p)
{
    ucache_status_t st;
    us_store_t *s;
    uint32_t i;

    if ((p == NULL) || (p->len < 64 * 1024) || (p->grace_ns == 0) ||
        (p->max_payload == 0) || (p->max_payload > US_MAX_PAYLOAD)) {
        UC_ERROR("store: invalid parameters (need >= 64K of memory, a grace "
                 "period and a max payload of 1..%u bytes)", US_MAX_PAYLOAD);
        return UCACHE_ERR_INVALID;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    s->max_payload = p->max_payload;
    st = arena_map(s, p);
    if (st != UCACHE_OK) {
        goto err_free;
    }
    st = format(s, p);
    if (st != UCACHE_OK) {
        goto err_unmap;
    }
    s->slots  = (uint64_t *)(s->base + s->layout.index_off);
    s->data   = s->base + s->layout.data_off;
    s->nslots = (uint32_t)(s->layout.nbuckets * US_BUCKET_SLOTS);
    st = UCACHE_ERR_NO_MEMORY;
    s->desc = calloc(s->nslots, sizeof(*s->desc));
    s->ns   = calloc(US_MAX_NS, sizeof(*s->ns));
    if ((s->desc == NULL) || (s->ns == NULL)) {
        goto err_free_meta;
    }
    s->ns_arr.link0  = (char *)&s->desc[0].ns_link;
    s->ns_arr.stride = sizeof(s->desc[0]);
    for (i = 0; i < US_MAX_NS; i++) {
        us_ilist_init(&s->ns[i].chunks);
    }
    /* the staging pool: the data area's first bytes, a quarter at most */
    s->stage_len = (p->stage_bytes + US_GRANULE - 1) & ~(uint64_t)(US_GRANULE - 1);
    s->stage_len = (s->stage_len > s->layout.data_len / 4) ?
                       (s->layout.data_len / 4) & ~(uint64_t)(US_GRANULE - 1) : s->stage_len;
    s->stage_len = (s->stage_len < 4 * US_GRANULE) ? 0 : s->stage_len;
    s->main      = s->data + s->stage_len;
    st = us_alloc_init(&s->alloc, s->main, s->layout.data_len - s->stage_len, p->grace_ns);
    if (st != UCACHE_OK) {
        goto err_free_meta;
    }
    if (s->stage_len > 0) {
        st = us_alloc_init(&s->stage, s->data, s->stage_len, p->grace_ns);
        if (st != UCACHE_OK) {
            us_alloc_cleanup(&s->alloc);
            goto err_free_meta;
        }
    }
    st = us_evict_init(&s->ev, s->nslots, s->layout.data_len - s->stage_len);
    if (st != UCACHE_OK) {
        goto err_alloc;
    }
    st = commit_setup(s, p);
    if (st != UCACHE_OK) {
        us_evict_cleanup(&s->ev);
        goto err_alloc;
    }
    /* a lease covers a reply's way to the reader and the start of its read;
     * a read under way when it ends has the grace period still */
    s->lease_ns  = p->nvme_lease_ns ? p->nvme_lease_ns : 10000000ull;
    s->lease_ns  = (s->lease_ns < p->grace_ns) ? p->grace_ns : s->lease_ns;
    s->window_ns = p->nvme_window_ns ? p->nvme_window_ns : 30ull * 1000000000ull;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->dq_cond, NULL);
    us_keymap_init(&s->pend);
    *store_p = s;
    return UCACHE_OK;

err_alloc:
    us_alloc_cleanup(&s->alloc);
    us_alloc_cleanup(&s->stage);
err_free_meta:
    free(s->desc);
    free(s->ns);
err_unmap:
    arena_unmap(s);
err_free:
    free(s);
    return st;
}

void us_store_destroy(us_store_t *s)
{
    unsigned i;

    if (s == NULL) {
        return;
    }

    us_evict_cleanup(&s->ev);
    us_alloc_cleanup(&s->alloc);
    us_alloc_cleanup(&s->stage);
    for (i = 0; i < s->nnvme; i++) {
        us_nvme_close(s->nvme[i]);
    }
    free(s->dq);
    us_keymap_cleanup(&s->pend);
    free(s->sq);
    free(s->recent);
    free(s->desc);
    free(s->ns);
    free(s->seg_done);
    arena_unmap(s);
    pthread_cond_destroy(&s->dq_cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void *us_store_base(const us_store_t *s)
{
    return s->base;
}

size_t us_store_len(const us_store_t *s)
{
    return s->len;
}

const us_layout_t *us_store_layout(const us_store_t *s)
{
    return &s->layout;
}

/* --- index (lock held) --------------------------------------------------- */

static inline uint32_t key_tag(const us_key_t *key)
{
    return (uint32_t)(key->hi ^ (key->lo >> 32));
}

static inline int key_eq(const us_key_t *a, const us_key_t *b)
{
    return (a->hi == b->hi) && (a->lo == b->lo);
}

/* Blocks are data-area offsets: the staging pool's below stage_len, the
 * memory tier's above (its allocator counts from s->main). */
static us_alloc_t *blk_pool(us_store_t *s, uint64_t block, uint64_t *off_p)
{
    if (block < s->stage_len) {
        *off_p = block;
        return &s->stage;
    }
    *off_p = block - s->stage_len;
    return &s->alloc;
}

ucache_status_t us_st_blk_retire(us_store_t *s, uint64_t block, uint64_t now)
{
    uint64_t off;
    us_alloc_t *a = blk_pool(s, block, &off);

    return us_alloc_retire(a, off, now);
}

static void blk_put(us_store_t *s, uint64_t block)
{
    uint64_t off;
    us_alloc_t *a = blk_pool(s, block, &off);

    us_alloc_put(a, off);
}

static uint64_t blk_size(us_store_t *s, uint64_t block)
{
    uint64_t off;
    us_alloc_t *a = blk_pool(s, block, &off);

    return us_alloc_size(a, off);
}

/* Slot of @p key (any non-free state), or US_NONE. */
uint32_t us_st_find(const us_store_t *s, const us_key_t *key)
{
    uint64_t b[2];
    uint32_t i, j;

    us_key_buckets(key, s->layout.nbuckets, b);
    for (i = 0; i < 2; i++) {
        for (j = 0; j < US_BUCKET_SLOTS; j++) {
            uint32_t slot = (uint32_t)(b[i] * US_BUCKET_SLOTS + j);

            if ((s->desc[slot].state != US_SLOT_FREE) &&
                key_eq(&s->desc[slot].key, key)) {
                return slot;
            }
        }
    }
    return US_NONE;
}

/* A published chunk @p d turned pinned (@p on) or unpinned: its bytes, in
 * the store's and its namespace's pinned totals. */
static void pin_account(us_store_t *s, const us_desc_t *d, bool on)
{
    if (on) {
        s->bytes_pinned            += d->bsize;
        s->ns[d->ns].bytes_pinned += d->bsize;
    } else {
        s->bytes_pinned            -= d->bsize;
        s->ns[d->ns].bytes_pinned -= d->bsize;
    }
}

int us_st_is_pinned(const us_store_t *s, const us_desc_t *d)
{
    return d->pinned || s->ns[d->ns].pinned;
}

static int pin_fits(const us_store_t *s, uint64_t more)
{
    return s->bytes_pinned + more <= s->layout.data_len / 100 * US_PIN_LIMIT_PCT;
}

static void ns_link(us_store_t *s, uint32_t slot)
{
    us_ilist_push(&s->ns[s->desc[slot].ns].chunks, &s->ns_arr, slot);
}

static void ns_unlink(us_store_t *s, uint32_t slot)
{
    us_ilist_unlink(&s->ns[s->desc[slot].ns].chunks, &s->ns_arr, slot);
}

/* Double a ring of @p n elements of @p size bytes that starts at *head of
 * *cap; its elements move to the front.  false without memory. */
static bool ring_grow(void **ring, uint32_t *cap, uint32_t *head, uint32_t n, size_t size)
{
    uint32_t c = *cap ? 2 * *cap : 64, i;
    char *q = malloc((size_t)c * size);

    if (q == NULL) {
        return false;
    }
    for (i = 0; i < n; i++) {
        memcpy(q + (size_t)i * size, (char *)*ring + (size_t)((*head + i) % *cap) * size, size);
    }
    free(*ring);
    *ring = q;
    *cap  = c;
    *head = 0;
    return true;
}

/* Queue an evicted chunk for the demoter (its block stays out of the
 * allocator until it is written); false if the queue cannot grow. */
bool us_st_demote_push(us_store_t *s, uint32_t slot, bool copy)
{
    const us_desc_t *d = &s->desc[slot];
    us_demote_t *e;

    if ((s->dq_n == s->dq_cap) &&
        !ring_grow((void **)&s->dq, &s->dq_cap, &s->dq_head, s->dq_n, sizeof(*s->dq))) {
        return false;
    }
    e = &s->dq[(s->dq_head + s->dq_n) % s->dq_cap];
    e->key    = d->key;
    e->block  = d->block;
    e->bsize  = d->bsize;
    e->length = d->length;
    e->ns     = d->ns;
    e->slot   = slot;
    e->version = d->version;
    e->copy   = copy;
    s->dq_n++;
    s->dq_bytes += d->bsize;
    pthread_cond_signal(&s->dq_cond);
    return true;
}

/* PUBLISHED -> GRACE: the slot first, then the header's tombstone.  With
 * an NVMe tier, a chunk evicted for room goes to the demoter first. */
void us_st_unpublish(us_store_t *s, uint32_t slot, us_evict_reason_t why)
{
    us_desc_t *d = &s->desc[slot];
    us_chunk_hdr_t *hdr = (us_chunk_hdr_t *)(s->data + d->block + US_BLOCK_HDR);
    bool demoted = false;

    __atomic_store_n(&s->slots[2 * slot], 0, __ATOMIC_RELEASE);
    __atomic_store_n(&hdr->version, 0, __ATOMIC_RELEASE);
    if (d->copying) {                /* its write-through is queued or under way: */
        demoted   = true;            /* the demoter retires the block after it */
        d->copying = 0;
    } else if ((s->nnvme > 0) && !d->staged && (why != US_EV_EXPLICIT) &&
               (why != US_EV_LEASE)) {
        if (d->on_nvme || us_st_on_nvme(s, &d->key)) {
            s->stats.nvme_demote_skipped++;      /* immutable: the copy is current */
        } else {
            demoted = us_st_demote_push(s, slot, false);
            s->stats.nvme_demote_failed += !demoted;
        }
    }
    d->on_nvme = 0;
    if (demoted && (why != US_EV_EXPLICIT) &&
        (us_keymap_put(&s->pend, &d->key, d->block) != UCACHE_OK)) {
        UC_DEBUG("store: no memory to note a chunk on its way to NVMe");
    }
    if (!demoted && (us_st_blk_retire(s, d->block, uc_time_ns()) != UCACHE_OK)) {
        /* no heap for the ring: the block leaks from the arena rather than
         * being reused early; counted as used, never handed out again */
        UC_ERROR("store: quarantine ring cannot grow; %llu bytes retired for good",
                 (unsigned long long)d->bsize);
    }
    if (d->staged) {                 /* outside the policy and the namespaces */
        s->staged_bytes -= d->bsize;
        s->staged--;
        d->staged = 0;
    } else {
        us_evict_remove(&s->ev, slot);
        ns_unlink(s, slot);
        if (us_st_is_pinned(s, d)) {
            pin_account(s, d, false);
        }
        s->ns[d->ns].used -= d->bsize;
    }
    s->bytes_cached   -= d->length;
    d->state  = US_SLOT_FREE;
    d->pinned = 0;
    switch (why) {
    case US_EV_CAPACITY: s->stats.evict_capacity++; break;
    case US_EV_INDEX:    s->stats.evict_index++;    break;
    case US_EV_QUOTA:    s->stats.evict_quota++;    break;
    case US_EV_EXPLICIT: s->stats.evict_explicit++; break;
    case US_EV_LEASE:    break;
    case US_EV_TIER:     break;
    }
}

/* End the leases that are over (oldest first). */
void us_st_expire(us_store_t *s, uint64_t now)
{
    us_stage_t *e;
    us_desc_t *d;

    while ((s->sq_n > 0) && (s->sq[s->sq_head].until <= now)) {
        e = &s->sq[s->sq_head];
        d = &s->desc[e->slot];
        if ((d->state == US_SLOT_PUBLISHED) && d->staged && (d->version == e->version)) {
            us_st_unpublish(s, e->slot, US_EV_LEASE);
            s->stats.nvme_expired++;
        }
        s->sq_head = (s->sq_head + 1) % s->sq_cap;
        s->sq_n--;
    }
}

/* A free slot among @p key's buckets (the emptier bucket first), evicting
 * the coldest unpinned published chunk there if both are full. */
static ucache_status_t do_take_slot(us_store_t *s, const us_key_t *key,
                                    uint32_t *slot_p)
{
    uint32_t best = US_NONE, victim = US_NONE, i, j, slot, nfree[2] = {0, 0};
    unsigned vrank = ~0u, rank;
    uint64_t b[2];

    us_key_buckets(key, s->layout.nbuckets, b);
    for (i = 0; i < 2; i++) {
        for (j = 0; j < US_BUCKET_SLOTS; j++) {
            nfree[i] += (s->desc[b[i] * US_BUCKET_SLOTS + j].state == US_SLOT_FREE);
        }
    }
    for (i = 0; (i < 2) && (best == US_NONE); i++) {
        uint64_t bk = b[(nfree[1] > nfree[0]) ? 1 - i : i];

        for (j = 0; j < US_BUCKET_SLOTS; j++) {
            slot = (uint32_t)(bk * US_BUCKET_SLOTS + j);
            if (s->desc[slot].state == US_SLOT_FREE) {
                best = slot;
                break;
            }
            if ((s->desc[slot].state != US_SLOT_PUBLISHED) ||
                us_st_is_pinned(s, &s->desc[slot])) {
                continue;
            }
            /* coldest: probationary before main, then by frequency; a staged
             * chunk (leased to its readers) last */
            rank = s->desc[slot].staged ? 64 :
                   (s->ev.e[slot].queue == US_Q_SMALL ? 0 : 8) + s->ev.e[slot].freq;
            if (rank < vrank) {
                vrank  = rank;
                victim = slot;
            }
        }
    }
    if (best == US_NONE) {
        if (victim == US_NONE) {
            UC_DEBUG("store: both index buckets of a key hold only pinned or "
                     "filling chunks");
            return UCACHE_ERR_NO_MEMORY;
        }
        us_st_unpublish(s, victim, US_EV_INDEX);
        best = victim;
    }
    *slot_p = best;
    return UCACHE_OK;
}

/* Make namespace @p ns fit @p need more bytes under its quota. */
static ucache_status_t do_quota(us_store_t *s, uint16_t ns, uint64_t need)
{
    us_ns_t *n = &s->ns[ns];
    uint32_t slot, next;

    if (n->quota == 0) {
        return UCACHE_OK;
    }
    for (slot = n->chunks.tail; (n->used + need > n->quota) && (slot != US_NONE);
         slot = next) {
        next = s->desc[slot].ns_link.next;
        if (!us_st_is_pinned(s, &s->desc[slot])) {
            us_st_unpublish(s, slot, US_EV_QUOTA);
        }
    }
    return (n->used + need > n->quota) ? UCACHE_ERR_NO_MEMORY : UCACHE_OK;
}

/* Bytes to keep free or in grace so fills do not wait out grace periods:
 * twice what was filled in the last grace period (the factor lets a fill
 * rate that was held back by waiting grow), at least 1/64 and at most 1/8
 * of the data area (at 1 GiB and a 10 ms grace, 1/8 lets fills run at 12 GB/s
 * without waiting; while a stream of fills lasts that much holds no data). */
static uint64_t do_headroom(us_store_t *s, uint64_t now, uint64_t bsize)
{
    uint64_t usable = s->alloc.len - s->alloc.held;
    uint64_t w, lo = usable / 64, hi = usable / 8;

    if (now - s->window_start >= s->layout.grace_ns) {
        s->last_window_bytes = s->window_bytes;
        s->window_bytes      = 0;
        s->window_start      = now;
    }
    s->window_bytes += bsize;
    w = 2 * ((s->window_bytes > s->last_window_bytes) ? s->window_bytes :
                                                        s->last_window_bytes);
    return (w < lo) ? lo : (w > hi) ? hi : w;
}

/* Evict ahead (a few chunks per call) so memory ages through its grace
 * period before a fill needs it. */
static void do_evict_ahead(us_store_t *s, uint64_t headroom)
{
    us_alloc_t *a = &s->alloc;
    uint32_t victim;
    unsigned n;

    for (n = 0; (n < 4) && (a->free_bytes + a->quarantine_bytes + s->dq_bytes < headroom) &&
                (s->dq_bytes < s->dq_limit || s->nnvme == 0); n++) {
        victim = us_evict_pop(&s->ev);
        if (victim == US_EVICT_NONE) {
            break;
        }
        us_st_unpublish(s, victim, US_EV_CAPACITY);
    }
}

/* Allocate @p bsize bytes, evicting by policy.  Memory on its way back -
 * in its grace period, or being demoted - is waited for (UCACHE_ERR_AGAIN)
 * rather than evicting more; so is a full demotion queue. */
static ucache_status_t do_alloc(us_store_t *s, uint64_t bsize, uint64_t now,
                                uint64_t *block_p)
{
    uint64_t headroom = do_headroom(s, now, bsize);
    us_alloc_t *a = &s->alloc;
    uint32_t victim;

    us_st_expire(s, now);
    for (;;) {
        us_alloc_reclaim(a, now);
        if (us_alloc_get(a, bsize, block_p) == UCACHE_OK) {
            *block_p += s->stage_len;
            break;
        }
        if (((a->q_count > 0) || (s->dq_n > 0)) &&
            (a->free_bytes + a->quarantine_bytes + s->dq_bytes >= bsize)) {
            s->stats.reserve_again++;      /* enough is coming back: wait */
            do_evict_ahead(s, headroom + bsize);
            return UCACHE_ERR_AGAIN;
        }
        if ((s->nnvme > 0) && (s->dq_bytes >= s->dq_limit)) {
            s->stats.reserve_again++;      /* the demoter is behind: wait */
            return UCACHE_ERR_AGAIN;
        }
        victim = us_evict_pop(&s->ev);
        if (victim == US_EVICT_NONE) {
            if ((a->q_count > 0) || (s->dq_n > 0)) {
                s->stats.reserve_again++;
                return UCACHE_ERR_AGAIN;
            }
            s->stats.reserve_nomem++;
            UC_DEBUG("store: no evictable chunk for %llu bytes",
                     (unsigned long long)bsize);
            return UCACHE_ERR_NO_MEMORY;
        }
        us_st_unpublish(s, victim, US_EV_CAPACITY);
    }
    do_evict_ahead(s, headroom);
    return UCACHE_OK;
}

/* --- API ------------------------------------------------------------------ */

/* A block of the staging pool: no eviction, only leases that end. */
static ucache_status_t do_alloc_stage(us_store_t *s, uint64_t bsize, uint64_t *block_p)
{
    us_alloc_reclaim(&s->stage, uc_time_ns());
    if (us_alloc_get(&s->stage, bsize, block_p) == UCACHE_OK) {
        return UCACHE_OK;
    }
    s->stats.reserve_again++;
    return UCACHE_ERR_AGAIN;         /* leases end, grace periods pass */
}

static bool do_stage_wanted(us_store_t *s, const us_key_t *key, uint64_t now);
static void do_stage_note(us_store_t *s, const us_key_t *key, uint64_t now);

/* Where a reservation's bytes come from: the origin, or a device (staged
 * if it is a one-hit read, or into the memory tier however it is read). */
enum { US_FROM_ORIGIN, US_FROM_NVME, US_FROM_NVME_MEM };

static ucache_status_t do_reserve(us_store_t *s, const us_key_t *key, uint16_t ns,
                                  size_t length, us_fill_t *fill_p, int from,
                                  bool *staged_p)
{
    bool from_nvme = (from != US_FROM_ORIGIN);
    uint64_t bsize = us_alloc_block_size(US_CHUNK_OVERHEAD + us_chunk_table_bytes(length) +
                                         (uint64_t)length), now;
    bool stage = false, pinned = false;
    ucache_status_t st;
    uint32_t slot, i;
    us_desc_t *d;

    if ((length > s->max_payload) || (ns >= US_MAX_NS)) {
        UC_ERROR("store: reserve of %zu bytes in namespace %u (max %llu, %u)",
                 length, ns, (unsigned long long)s->max_payload, US_MAX_NS);
        return UCACHE_ERR_INVALID;
    }
    pthread_mutex_lock(&s->lock);
    slot = us_st_find(s, key);
    if (slot != US_NONE) {
        st = (s->desc[slot].state == US_SLOT_RESERVED) ? UCACHE_INPROGRESS :
                                                         UCACHE_ERR_EXISTS;
        goto out;
    }
    /* pinned on NVMe (a restart keeps pins there): pinned in memory too,
     * within the pin limit */
    for (i = 0; from_nvme && (i < s->nnvme) && !pinned; i++) {
        pinned = us_nvme_pinned(s->nvme[i], key) && pin_fits(s, bsize);
    }
    /* read from NVMe: staged, unless read from it within the window (a
     * second hit), pinned, or too large for the pool */
    if ((from == US_FROM_NVME) && (s->stage_len > 0) && !s->ns[ns].pinned && !pinned &&
        (bsize <= s->stage_len / 4) && do_stage_wanted(s, key, uc_time_ns())) {
        stage = true;
    }
    if (!stage && s->ns[ns].quota && (bsize > s->ns[ns].quota)) {
        st = UCACHE_ERR_NO_MEMORY;
        s->stats.quota_denied++;
        goto out;
    }
    st = do_take_slot(s, key, &slot);
    if (st != UCACHE_OK) {
        s->stats.reserve_nomem++;
        goto out;
    }
    d        = &s->desc[slot];
    d->state = US_SLOT_RESERVED;          /* keeps the slot through evictions */
    d->key   = *key;
    if (!stage) {
        st = do_quota(s, ns, bsize);
        if (st != UCACHE_OK) {
            s->stats.quota_denied++;
            d->state = US_SLOT_FREE;
            goto out;
        }
    }
    now = uc_time_ns();
    us_st_expire(s, now);
    st = stage ? do_alloc_stage(s, bsize, &d->block) : do_alloc(s, bsize, now, &d->block);
    if (st != UCACHE_OK) {
        d->state = US_SLOT_FREE;
        goto out;
    }
    if (stage) {
        do_stage_note(s, key, uc_time_ns());
    }
    d->bsize   = blk_size(s, d->block);
    d->length  = (uint32_t)length;
    d->ns      = ns;
    d->pinned  = pinned;
    d->version = 0;
    d->staged  = stage;
    d->on_nvme = from_nvme;
    d->copying = 0;
    if (!stage) {
        s->ns[ns].used += d->bsize;
    }
    s->stats.fills++;
    s->stats.nvme_promotions += from_nvme && !stage;
    fill_p->payload = s->data + d->block + US_CHUNK_OVERHEAD + us_chunk_table_bytes(length);
    fill_p->length  = (uint32_t)length;
    fill_p->slot    = slot;
    if (staged_p != NULL) {
        *staged_p = stage;
    }
out:
    pthread_mutex_unlock(&s->lock);
    return st;
}

ucache_status_t us_store_reserve(us_store_t *s, const us_key_t *key, uint16_t ns,
                                 size_t length, us_fill_t *fill_p)
{
    return do_reserve(s, key, ns, length, fill_p, US_FROM_ORIGIN, NULL);
}

ucache_status_t us_store_reserve_nvme(us_store_t *s, const us_key_t *key, uint16_t ns,
                                      size_t length, bool may_stage, us_fill_t *fill_p,
                                      bool *staged_p)
{
    return do_reserve(s, key, ns, length, fill_p, may_stage ? US_FROM_NVME : US_FROM_NVME_MEM,
                      staged_p);
}

int us_st_fill_valid(const us_store_t *s, const us_fill_t *f)
{
    return (f->slot < s->nslots) && (s->desc[f->slot].state == US_SLOT_RESERVED) &&
           (f->payload == s->data + s->desc[f->slot].block + US_CHUNK_OVERHEAD +
                          us_chunk_table_bytes(s->desc[f->slot].length));
}

ucache_status_t us_store_publish(us_store_t *s, const us_fill_t *f)
{
    return us_store_publish_at(s, f, NULL);
}

/* The recent-staging slot of @p key (NULL without memory for the table). */
static uint64_t *do_recent(us_store_t *s, const us_key_t *key)
{
    uint32_t i;

    if (s->recent == NULL) {
        for (i = 1024; (i < s->nslots) && (i < (1u << 20)); i <<= 1) {
        }
        s->recent = calloc(i, sizeof(*s->recent));
        s->recent_mask = (s->recent != NULL) ? i - 1 : 0;
        if (s->recent == NULL) {
            return NULL;
        }
    }
    return &s->recent[(key->lo ^ key->hi) & s->recent_mask];
}

/* Whether a chunk read from NVMe is staged: not if it was staged within
 * the window already (a second hit: promoted). */
static bool do_stage_wanted(us_store_t *s, const us_key_t *key, uint64_t now)
{
    uint32_t ms = (uint32_t)(now / 1000000);
    uint64_t *r = do_recent(s, key);

    return (r != NULL) &&
           !((*r != 0) && ((uint32_t)(*r >> 32) == key_tag(key)) &&
             ((uint64_t)(uint32_t)(ms - (uint32_t)*r) * 1000000 <= s->window_ns));
}

/* Remember that @p key was staged now. */
static void do_stage_note(us_store_t *s, const us_key_t *key, uint64_t now)
{
    uint64_t *r = do_recent(s, key);

    if (r != NULL) {
        *r = ((uint64_t)key_tag(key) << 32) | (uint32_t)(now / 1000000);
    }
}

/* Give chunk @p slot a lease: false if the ring cannot grow. */
static bool do_lease(us_store_t *s, uint32_t slot, uint64_t now)
{
    us_stage_t *q;

    if ((s->sq_n == s->sq_cap) &&
        !ring_grow((void **)&s->sq, &s->sq_cap, &s->sq_head, s->sq_n, sizeof(*s->sq))) {
        return false;
    }
    q = &s->sq[(s->sq_head + s->sq_n) % s->sq_cap];
    q->until   = now + s->lease_ns;
    q->version = s->desc[slot].version;
    q->slot    = slot;
    s->sq_n++;
    return true;
}

/* Publish a reservation: a staged one (us_store_reserve_nvme) gets a lease
 * and stays out of the policy and the namespaces. */
static ucache_status_t do_publish(us_store_t *s, const us_fill_t *f, us_loc_t *loc_p)
{
    us_chunk_hdr_t hdr = { .magic = US_CHUNK_MAGIC }, *dst;
    uint64_t now = uc_time_ns();
    us_desc_t *d;
    uint64_t *w;

    pthread_mutex_lock(&s->lock);
    if (!us_st_fill_valid(s, f)) {
        pthread_mutex_unlock(&s->lock);
        UC_ERROR("store: publish of an unknown reservation (slot %u)", f->slot);
        return UCACHE_ERR_INVALID;
    }
    d = &s->desc[f->slot];
    s->next_version = (s->next_version + 1) & US_VERSION_MASK;
    if (s->next_version == 0) {
        s->next_version = 1;
    }
    d->version  = s->next_version;
    hdr.key_hi  = d->key.hi;
    hdr.key_lo  = d->key.lo;
    hdr.version = d->version;
    hdr.length  = d->length;
    hdr.ns      = d->ns;
    /* the payload is ours alone until the slot is published; the checksums
     * of a large chunk are the one long step here, still under the lock so
     * an evicting thread cannot retire the block meanwhile */
    dst = (us_chunk_hdr_t *)(s->data + d->block + US_BLOCK_HDR);
    us_chunk_seal(&hdr, (char *)dst + US_CHUNK_HDR, f->payload);
    memcpy(dst, &hdr, sizeof(hdr));
    w = &s->slots[2 * f->slot];
    __atomic_store_n(&w[1], us_slot_word1(d->block / US_GRANULE, d->length),
                     __ATOMIC_RELEASE);
    __atomic_store_n(&w[0], us_slot_word0(d->version, us_key_fp(&d->key)),
                     __ATOMIC_RELEASE);
    d->state = US_SLOT_PUBLISHED;
    if (loc_p != NULL) { /* where it is now: a lookup later could race an eviction */
        loc_p->version = d->version;
        loc_p->hdr_off = s->layout.data_off + d->block + US_BLOCK_HDR;
        loc_p->length  = d->length;
    }
    if (d->staged) {
        s->staged_bytes += d->bsize;
        s->staged++;
        if (!do_lease(s, f->slot, now)) {    /* no heap for its lease: */
            s->bytes_cached += d->length;    /* it goes at once           */
            s->stats.publishes++;
            us_st_unpublish(s, f->slot, US_EV_LEASE);
            pthread_mutex_unlock(&s->lock);
            return UCACHE_OK;
        }
    } else {
        us_evict_insert(&s->ev, f->slot, d->bsize, key_tag(&d->key), us_st_is_pinned(s, d));
        ns_link(s, f->slot);
        if (us_st_is_pinned(s, d)) {
            pin_account(s, d, true);
        }
        /* written through to NVMe in the background while the demoter keeps
         * up (at eviction it is then free); else demoted when evicted */
        if ((s->nnvme > 0) && !d->on_nvme && (s->dq_bytes + d->bsize <= s->dq_limit / 2) &&
            us_st_demote_push(s, f->slot, true)) {
            d->copying = 1;
        }
    }
    s->bytes_cached += d->length;
    s->stats.publishes++;
    pthread_mutex_unlock(&s->lock);
    return UCACHE_OK;
}

ucache_status_t us_store_publish_at(us_store_t *s, const us_fill_t *f, us_loc_t *loc_p)
{
    return do_publish(s, f, loc_p);
}

void us_store_abort(us_store_t *s, const us_fill_t *f)
{
    us_desc_t *d;

    pthread_mutex_lock(&s->lock);
    if (us_st_fill_valid(s, f)) {
        d = &s->desc[f->slot];
        memset(f->payload, 0, f->length); /* no byte of a failed fill stays exported */
        blk_put(s, d->block);
        if (!d->staged) {
            s->ns[d->ns].used -= d->bsize;
        }
        d->staged = 0;
        d->state  = US_SLOT_FREE;
        s->stats.aborts++;
    } else {
        UC_ERROR("store: abort of an unknown reservation (slot %u)", f->slot);
    }
    pthread_mutex_unlock(&s->lock);
}

ucache_status_t us_store_lookup(us_store_t *s, const us_key_t *key, us_loc_t *loc_p)
{
    ucache_status_t st = UCACHE_ERR_NOT_FOUND;
    uint32_t slot;
    us_desc_t *d;

    pthread_mutex_lock(&s->lock);
    slot = us_st_find(s, key);
    if ((slot != US_NONE) && (s->desc[slot].state == US_SLOT_PUBLISHED)) {
        d = &s->desc[slot];
        loc_p->version = d->version;
        loc_p->hdr_off = s->layout.data_off + d->block + US_BLOCK_HDR;
        loc_p->length  = d->length;
        if (!d->staged) {            /* a staged one: its next read from NVMe */
            us_evict_hit(&s->ev, slot, 1);   /* within the window promotes it */
        }
        st = UCACHE_OK;
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

void us_store_touch(us_store_t *s, const us_key_t *keys, unsigned n, unsigned weight)
{
    uint32_t slot;
    unsigned i;

    pthread_mutex_lock(&s->lock);
    for (i = 0; i < n; i++) {
        slot = us_st_find(s, &keys[i]);
        if ((slot == US_NONE) || (s->desc[slot].state != US_SLOT_PUBLISHED)) {
            continue;
        }
        if (!s->desc[slot].staged) { /* outside the policy */
            us_evict_hit(&s->ev, slot, weight);
        }
    }
    pthread_mutex_unlock(&s->lock);
}

/* Account a pin change of a published chunk. */
static void do_pin_changed(us_store_t *s, uint32_t slot, int was, int now)
{
    us_desc_t *d = &s->desc[slot];

    if (was == now) {
        return;
    }
    pin_account(s, d, now);
    us_evict_pin(&s->ev, slot, now);
    us_st_pin_nvme(s, &d->key, now);     /* the pin follows it to NVMe */
}

/* Move staged chunk @p slot into the memory tier (a pin asks for it): a
 * block of its own there, the bytes copied, the slot published at its new
 * place with a new version, the old block tombstoned and retired. */
static ucache_status_t do_unstage(us_store_t *s, uint32_t slot, uint64_t now)
{
    us_desc_t *d = &s->desc[slot];
    us_chunk_hdr_t *old = (us_chunk_hdr_t *)(s->data + d->block + US_BLOCK_HDR), *hdr;
    uint64_t block, *w = &s->slots[2 * slot], version = d->version;
    ucache_status_t st;

    /* do_alloc ends the leases over by @p now: the caller ended them
     * before it found this chunk staged, so this one's is not (had it
     * ended here, its block would be retired twice - handed out twice
     * later, a daemon's fault in the allocator) */
    st = do_alloc(s, d->bsize, now, &block);
    if (st != UCACHE_OK) {
        return st;
    }
    if ((d->state != US_SLOT_PUBLISHED) || !d->staged || (d->version != version)) {
        blk_put(s, block);           /* (never: the books stay right) */
        return UCACHE_ERR_NOT_FOUND;
    }
    hdr = (us_chunk_hdr_t *)(s->data + block + US_BLOCK_HDR);
    memcpy(hdr, old, US_CHUNK_HDR + us_chunk_table_bytes(d->length) + (uint64_t)d->length);
    s->next_version = (s->next_version + 1) & US_VERSION_MASK;
    s->next_version = s->next_version ? s->next_version : 1;
    /* the checksum covers the version: sealed again (the payload is ours) */
    hdr->version = s->next_version;
    us_chunk_seal(hdr, (char *)hdr + US_CHUNK_HDR,
                  (char *)hdr + US_CHUNK_HDR + us_chunk_table_bytes(d->length));
    __atomic_store_n(&w[0], 0, __ATOMIC_RELEASE);
    __atomic_store_n(&old->version, 0, __ATOMIC_RELEASE);
    (void)us_st_blk_retire(s, d->block, uc_time_ns());
    s->staged_bytes -= d->bsize;
    s->staged--;
    d->staged  = 0;
    d->block   = block;
    d->bsize   = blk_size(s, block);
    d->version = s->next_version;
    __atomic_store_n(&w[1], us_slot_word1(block / US_GRANULE, d->length), __ATOMIC_RELEASE);
    __atomic_store_n(&w[0], us_slot_word0(d->version, us_key_fp(&d->key)), __ATOMIC_RELEASE);
    us_evict_insert(&s->ev, slot, d->bsize, key_tag(&d->key), us_st_is_pinned(s, d));
    ns_link(s, slot);
    s->ns[d->ns].used += d->bsize;
    s->stats.nvme_promotions++;
    return UCACHE_OK;
}

ucache_status_t us_store_pin(us_store_t *s, const us_key_t *key, int pin)
{
    return us_store_pin_quota(s, key, pin, 0);
}

ucache_status_t us_store_pin_quota(us_store_t *s, const us_key_t *key, int pin,
                                   uint64_t ns_limit)
{
    ucache_status_t st = UCACHE_OK;
    uint64_t now;
    uint32_t slot;
    us_desc_t *d;
    int was;

    pthread_mutex_lock(&s->lock);
    now = uc_time_ns();
    us_st_expire(s, now);            /* a staged chunk found below stays so */
    slot = us_st_find(s, key);
    if (slot == US_NONE) {
        /* on NVMe only: an unpin reaches it there (a pin is taken when a
         * read brings the chunk into memory, within the limits above) */
        st = (!pin && us_st_pin_nvme(s, key, 0)) ? UCACHE_OK : UCACHE_ERR_NOT_FOUND;
        goto out;
    }
    d   = &s->desc[slot];
    was = us_st_is_pinned(s, d);
    if (pin && !was && !pin_fits(s, d->bsize)) {
        st = UCACHE_ERR_NO_MEMORY;
        goto out;
    }
    if (pin && !was && (ns_limit > 0) && (s->ns[d->ns].bytes_pinned + d->bsize > ns_limit)) {
        s->stats.pin_quota_denied++;
        st = UCACHE_ERR_NO_MEMORY;
        goto out;
    }
    if (d->staged && (d->state == US_SLOT_PUBLISHED) && pin) {
        st = do_unstage(s, slot, now);   /* pinned: into the memory tier */
        if (st != UCACHE_OK) {
            goto out;
        }
    } else if (d->staged) {
        st = pin ? UCACHE_ERR_AGAIN : UCACHE_OK;  /* being read from NVMe */
        goto out;
    }
    d->pinned = !!pin;
    if (d->state == US_SLOT_PUBLISHED) {
        do_pin_changed(s, slot, was, us_st_is_pinned(s, d));
    }
    if (!pin && !was) {
        us_st_pin_nvme(s, key, 0);      /* pinned on NVMe only (past the limit) */
    }
out:
    pthread_mutex_unlock(&s->lock);
    return st;
}

ucache_status_t us_store_pin_ns(us_store_t *s, uint16_t ns, int pin)
{
    ucache_status_t st = UCACHE_OK;
    uint32_t slot;
    us_ns_t *n;
    int was;

    if (ns >= US_MAX_NS) {
        return UCACHE_ERR_INVALID;
    }
    pthread_mutex_lock(&s->lock);
    n = &s->ns[ns];
    if (pin && !n->pinned && !pin_fits(s, n->used)) {
        st = UCACHE_ERR_NO_MEMORY;
        goto out;
    }
    was       = n->pinned;
    n->pinned = !!pin;
    for (slot = n->chunks.tail; slot != US_NONE; slot = s->desc[slot].ns_link.next) {
        do_pin_changed(s, slot, s->desc[slot].pinned || was,
                       s->desc[slot].pinned || n->pinned);
    }
out:
    pthread_mutex_unlock(&s->lock);
    return st;
}

ucache_status_t us_store_quota_set(us_store_t *s, uint16_t ns, uint64_t bytes)
{
    ucache_status_t st;

    if (ns >= US_MAX_NS) {
        return UCACHE_ERR_INVALID;
    }
    pthread_mutex_lock(&s->lock);
    s->ns[ns].quota = bytes;
    st = do_quota(s, ns, 0);
    pthread_mutex_unlock(&s->lock);
    return st;
}

uint64_t us_store_ns_used(us_store_t *s, uint16_t ns)
{
    uint64_t used;

    if (ns >= US_MAX_NS) {
        return 0;
    }
    pthread_mutex_lock(&s->lock);
    used = s->ns[ns].used;
    pthread_mutex_unlock(&s->lock);
    return used;
}

uint64_t us_store_ns_pinned(us_store_t *s, uint16_t ns)
{
    uint64_t v;

    if (ns >= US_MAX_NS) {
        return 0;
    }
    pthread_mutex_lock(&s->lock);
    v = s->ns[ns].bytes_pinned;
    pthread_mutex_unlock(&s->lock);
    return v;
}

ucache_status_t us_store_evict(us_store_t *s, const us_key_t *key)
{
    ucache_status_t st = UCACHE_OK;
    bool dropped = false;
    uint32_t slot;
    unsigned i;

    pthread_mutex_lock(&s->lock);
    slot = us_st_find(s, key);
    if ((slot == US_NONE) || (s->desc[slot].state != US_SLOT_PUBLISHED)) {
        st = UCACHE_ERR_NOT_FOUND;
    } else if (us_st_is_pinned(s, &s->desc[slot])) {
        st = UCACHE_ERR_BUSY;
    } else {
        us_st_unpublish(s, slot, US_EV_EXPLICIT);
    }
    if (st != UCACHE_ERR_BUSY) {     /* an admin's evict: from every tier */
        us_keymap_del(&s->pend, key);
        for (i = 0; i < s->nnvme; i++) {
            dropped |= (us_nvme_drop(s->nvme[i], key) == UCACHE_OK);
        }
        us_st_nvme_dirty(s, dropped);   /* its tombstone: a restart forgets it */
    }
    pthread_mutex_unlock(&s->lock);
    return ((st == UCACHE_ERR_NOT_FOUND) && dropped) ? UCACHE_OK : st;
}

uint64_t us_store_retry_ns(us_store_t *s)
{
    uint64_t t;

    pthread_mutex_lock(&s->lock);
    t = us_alloc_next_expiry(&s->alloc);
    if ((t == 0) || ((us_alloc_next_expiry(&s->stage) != 0) &&
                     (us_alloc_next_expiry(&s->stage) < t))) {
        t = us_alloc_next_expiry(&s->stage);
    }
    if ((s->sq_n > 0) && ((t == 0) || (s->sq[s->sq_head].until < t))) {
        t = s->sq[s->sq_head].until;     /* a lease ends */
    }
    if ((t == 0) && (s->dq_n > 0)) {
        t = uc_time_ns() + 1000000;  /* the demoter gives memory back */
    }
    pthread_mutex_unlock(&s->lock);
    return t;
}

void us_store_stats(us_store_t *s, us_store_stats_t *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    out->region_bytes = s->len;
    out->index_bytes  = s->layout.nbuckets * US_BUCKET_SIZE;
    out->data_bytes   = s->layout.data_len;
    out->meta_bytes   = (uint64_t)s->nslots * (sizeof(us_desc_t) + sizeof(us_evict_entry_t)) +
                        ((uint64_t)s->ev.ghost_mask + 1) * sizeof(us_ghost_t) +
                        US_MAX_NS * sizeof(us_ns_t) + sizeof(*s);
    out->slots        = s->nslots;
    out->chunks       = s->ev.q[US_Q_SMALL].count + s->ev.q[US_Q_MAIN].count +
                        s->ev.q[US_Q_PINNED].count;
    out->reserved     = s->stats.fills - s->stats.publishes - s->stats.aborts;
    out->slots_used   = out->chunks + out->reserved;
    out->bytes_cached = s->bytes_cached;
    out->bytes_used   = s->alloc.used_bytes - s->alloc.held + s->stage.used_bytes;
    out->bytes_usable = s->alloc.held ? s->alloc.len - s->alloc.held + s->stage_len :
                                        s->layout.data_len;
    out->bytes_grace  = s->alloc.quarantine_bytes + s->stage.quarantine_bytes;
    out->bytes_free   = s->alloc.free_bytes + s->stage.free_bytes;
    out->stage_bytes  = s->stage_len;
    out->bytes_pinned = s->bytes_pinned;
    out->hits         = s->ev.stats.hits;
    out->promotions   = s->ev.stats.promotions;
    out->reinsertions = s->ev.stats.reinsertions;
    out->ghost_hits   = s->ev.stats.ghost_hits;
    out->nvme_devices = s->nnvme;
    out->nvme_demoting = s->dq_n + s->dq_busy;
    out->nvme_staged  = s->staged;
    pthread_mutex_unlock(&s->lock);
    for (unsigned i = 0; i < out->nvme_devices; i++) {
        out->nvme_offline += !us_nvme_online(s->nvme[i]);
    }
}

ucache_status_t us_store_put(us_store_t *s, const us_key_t *key, uint16_t ns,
                             const void *data, size_t length, uint64_t timeout_ns)
{
    uint64_t deadline = uc_deadline(timeout_ns), t, now;
    struct timespec ts;
    ucache_status_t st;
    us_fill_t fill;

    for (;;) {
        st = us_store_reserve(s, key, ns, length, &fill);
        if (st != UCACHE_ERR_AGAIN) {
            break;
        }
        t = us_store_retry_ns(s);
        if ((t == 0) || (t > deadline)) {
            return UCACHE_ERR_TIMEOUT;
        }
        now = uc_time_ns();
        t   = (t > now) ? t - now : 0;
        ts.tv_sec  = (time_t)(t / UC_NSEC_PER_SEC);
        ts.tv_nsec = (long)(t % UC_NSEC_PER_SEC);
        nanosleep(&ts, NULL);
    }
    if (st != UCACHE_OK) {
        return st;
    }
    memcpy(fill.payload, data, length);
    return us_store_publish(s, &fill);
}
