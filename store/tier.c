/*
 * tier.c - the store's NVMe tier: chunks evicted from memory go to the
 * demoter's queue and from there to a device (us_store_demote); a miss of a
 * chunk on its way is served from its held block (us_store_fill_pending),
 * one on a device is read back into memory, or into the staging pool under
 * a lease (us_store_nvme_start, us_store_fill_nvme); pins and drops are
 * mirrored on the devices' records (us_store_nvme_flush).  The memory tier
 * and the locking are store.c's (store_int.h).
 */
#include "store_int.h"
#include "util/log.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>

bool us_st_on_nvme(us_store_t *s, const us_key_t *key)
{
    unsigned i;

    for (i = 0; i < s->nnvme; i++) {
        if (us_nvme_lookup(s->nvme[i], key, NULL, NULL)) {
            return true;
        }
    }
    return false;
}

/* s->lock held: with @p dirty, the devices have changes (pins, drops) for
 * the demoter to write. */
void us_st_nvme_dirty(us_store_t *s, bool dirty)
{
    if (dirty) {
        s->nvme_dirty = true;
        pthread_cond_signal(&s->dq_cond);
    }
}

/* Pin or unpin @p key's NVMe records (the demoter writes the change). */
bool us_st_pin_nvme(us_store_t *s, const us_key_t *key, int pin)
{
    bool found = false;
    unsigned i;

    for (i = 0; i < s->nnvme; i++) {
        found |= (us_nvme_pin(s->nvme[i], key, pin) == UCACHE_OK);
    }
    us_st_nvme_dirty(s, found);
    return found;
}

/* --- the NVMe tier ---------------------------------------------------------- */

ucache_status_t us_store_nvme_add(us_store_t *s, us_nvme_t *nv)
{
    ucache_status_t st = UCACHE_OK;

    pthread_mutex_lock(&s->lock);
    if (s->nnvme == US_MAX_NVME) {
        st = UCACHE_ERR_INVALID;
    } else {
        s->nvme[s->nnvme++] = nv;
        /* evicted bytes on their way to NVMe: enough for a steady write,
         * never so much that fills wait long for memory */
        s->dq_limit = s->layout.data_len / 8;
        s->dq_limit = (s->dq_limit > US_DEMOTE_MAX) ? US_DEMOTE_MAX : s->dq_limit;
        s->dq_limit = (s->dq_limit < 4 * s->max_payload) ? 4 * s->max_payload : s->dq_limit;
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

unsigned us_store_nvme_count(us_store_t *s)
{
    unsigned n;

    pthread_mutex_lock(&s->lock);
    n = s->nnvme;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void us_store_nvme_stats(us_store_t *s, unsigned i, us_nvme_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    if (i < us_store_nvme_count(s)) {
        us_nvme_stats(s->nvme[i], st);
    }
}

bool us_store_on_nvme(us_store_t *s, const us_key_t *key)
{
    bool on;

    pthread_mutex_lock(&s->lock);
    on = us_st_on_nvme(s, key);
    pthread_mutex_unlock(&s->lock);
    return on;
}

bool us_store_nvme_lookup(us_store_t *s, const us_key_t *key, uint32_t *length_p)
{
    bool on = false;
    unsigned i;

    pthread_mutex_lock(&s->lock);
    for (i = 0; (i < s->nnvme) && !on; i++) {
        on = us_nvme_lookup(s->nvme[i], key, length_p, NULL);
    }
    pthread_mutex_unlock(&s->lock);
    return on;
}

/* The device a key is demoted to: by key, the next one in service if that
 * one is not (one extent pool per device, no striping). */
static us_nvme_t *demote_device(us_store_t *s, const us_key_t *key)
{
    unsigned i, n = s->nnvme, first = (unsigned)((key->hi ^ key->lo) % n);

    for (i = 0; i < n; i++) {
        if (us_nvme_online(s->nvme[(first + i) % n])) {
            return s->nvme[(first + i) % n];
        }
    }
    return NULL;
}

#define US_DEMOTE_BATCH 64

unsigned us_store_demote(us_store_t *s, unsigned max, uint64_t timeout_ns)
{
    us_nvme_item_t items[US_DEMOTE_BATCH], sub[US_DEMOTE_BATCH];
    us_demote_t batch[US_DEMOTE_BATCH];
    us_nvme_t *dev[US_DEMOTE_BATCH], *d;
    uint64_t now = uc_time_ns(), until, t, blk;
    unsigned n = 0, i, j, k, idx[US_DEMOTE_BATCH], ndev, pinw = 0, w;
    uint8_t pin[US_DEMOTE_BATCH];
    bool changes, more = false;
    struct timespec ts;

    max = (max > US_DEMOTE_BATCH) ? US_DEMOTE_BATCH : max;
    pthread_mutex_lock(&s->lock);
    us_st_expire(s, now);
    if ((s->dq_n == 0) && !s->nvme_dirty && (timeout_ns > 0)) {
        until = now + timeout_ns;
        if ((s->sq_n > 0) && (s->sq[s->sq_head].until < until)) {
            until = s->sq[s->sq_head].until;      /* wake for the next lease */
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        t = (uint64_t)ts.tv_nsec + (until - now);
        ts.tv_sec  += (time_t)(t / UC_NSEC_PER_SEC);
        ts.tv_nsec  = (long)(t % UC_NSEC_PER_SEC);
        pthread_cond_timedwait(&s->dq_cond, &s->lock, &ts);
        us_st_expire(s, uc_time_ns());
    }
    for (n = 0; (n < max) && (s->dq_n > 0); n++) {
        batch[n] = s->dq[s->dq_head];
        s->dq_head = (s->dq_head + 1) % s->dq_cap;
        s->dq_n--;
    }
    for (i = 0; i < n; i++) {
        const us_desc_t *dd = &s->desc[batch[i].slot];

        dev[i] = demote_device(s, &batch[i].key);
        /* a copy of a pinned chunk is written pinned: a restart keeps it */
        pin[i] = batch[i].copy && (dd->state == US_SLOT_PUBLISHED) &&
                 (dd->version == batch[i].version) && us_st_is_pinned(s, dd);
    }
    s->dq_busy += n;
    changes       = s->nvme_dirty;
    s->nvme_dirty = false;
    ndev          = s->nnvme;
    pthread_mutex_unlock(&s->lock);
    /* the blocks are the demoter's until retired, or a published chunk's
     * (immutable): no fill reuses them meanwhile */
    for (i = 0; i < n; i++) {
        memset(&items[i], 0, sizeof(items[i]));
        items[i].key     = batch[i].key;
        items[i].payload = s->data + batch[i].block + US_CHUNK_OVERHEAD +
                           us_chunk_table_bytes(batch[i].length);
        items[i].length  = batch[i].length;
        items[i].ns      = batch[i].ns;
        items[i].pinned  = pin[i];
        items[i].status  = UCACHE_ERR_IO;         /* no device in service */
    }
    for (i = 0; i < n; i++) {                     /* one write call per device */
        if (dev[i] == NULL) {
            continue;
        }
        d = dev[i];
        for (j = i, k = 0; j < n; j++) {
            if (dev[j] == d) {
                sub[k]   = items[j];
                idx[k++] = j;
                dev[j]   = NULL;
            }
        }
        us_nvme_write(d, sub, k);
        for (j = 0; j < k; j++) {
            items[idx[j]].status = sub[j].status;
        }
    }
    for (j = 0; changes && (j < ndev); j++) {     /* drops, pins and unpins */
        w     = us_nvme_flush_changes(s->nvme[j], US_DEMOTE_BATCH);
        more |= (w == US_DEMOTE_BATCH);
        pinw += w;
    }
    pthread_mutex_lock(&s->lock);
    s->nvme_dirty |= more;
    now = uc_time_ns();
    for (i = 0; i < n; i++) {
        us_desc_t *dd = &s->desc[batch[i].slot];

        if (batch[i].copy && (dd->state == US_SLOT_PUBLISHED) &&
            (dd->version == batch[i].version) && dd->copying) {
            dd->copying = 0;             /* still the chunk's: it stays */
            dd->on_nvme = (items[i].status == UCACHE_OK) ||
                          (items[i].status == UCACHE_ERR_EXISTS);
            /* pinned or unpinned while it was written: the record follows
             * (one there before keeps a pin taken on NVMe) */
            if (((items[i].status == UCACHE_OK) && (us_st_is_pinned(s, dd) != pin[i])) ||
                ((items[i].status == UCACHE_ERR_EXISTS) && us_st_is_pinned(s, dd))) {
                us_st_pin_nvme(s, &dd->key, us_st_is_pinned(s, dd));
            }
        } else {
            if (us_keymap_get(&s->pend, &batch[i].key, &blk)) {
                if (blk == batch[i].block) {
                    us_keymap_del(&s->pend, &batch[i].key);  /* on NVMe (or failed) */
                }
            } else if (items[i].status == UCACHE_OK) {
                /* an admin's evict came while it was queued or written:
                 * gone from every tier, this copy too */
                for (j = 0; j < s->nnvme; j++) {
                    us_st_nvme_dirty(s, us_nvme_drop(s->nvme[j], &batch[i].key) == UCACHE_OK);
                }
                items[i].status = UCACHE_ERR_CANCELED;
            }
            if (pin[i] && (items[i].status == UCACHE_OK) &&
                (((j = us_st_find(s, &batch[i].key)) == US_NONE) ||
                 !us_st_is_pinned(s, &s->desc[j]))) {
                us_st_pin_nvme(s, &batch[i].key, 0);   /* unpinned and evicted meanwhile */
            }
            if (us_st_blk_retire(s, batch[i].block, now) != UCACHE_OK) {
                UC_ERROR("store: quarantine ring cannot grow; %llu bytes retired for good",
                         (unsigned long long)batch[i].bsize);
            }
        }
        s->dq_bytes -= batch[i].bsize;
        s->dq_busy--;
        if (items[i].status == UCACHE_OK) {
            s->stats.nvme_demotions++;
        } else if (items[i].status == UCACHE_ERR_CANCELED) {
            s->stats.nvme_demote_dropped++;  /* evicted by an admin meanwhile */
        } else if (items[i].status == UCACHE_ERR_EXISTS) {
            s->stats.nvme_demote_skipped++;
        } else {
            s->stats.nvme_demote_failed++;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return n + pinw;
}

ucache_status_t us_store_fill_pending(us_store_t *s, const us_fill_t *fill)
{
    ucache_status_t st = UCACHE_ERR_NOT_FOUND;
    const us_chunk_hdr_t *hdr;
    uint64_t blk;
    us_key_t key;

    pthread_mutex_lock(&s->lock);
    if (!us_st_fill_valid(s, fill)) {
        st = UCACHE_ERR_INVALID;
    } else if (us_keymap_get(&s->pend, &s->desc[fill->slot].key, &blk)) {
        /* the held block is the demoter's until it is written, then retired
         * under this lock: it cannot change while we copy */
        key = s->desc[fill->slot].key;
        hdr = (const us_chunk_hdr_t *)(s->data + blk + US_BLOCK_HDR);
        if ((hdr->key_hi == key.hi) && (hdr->key_lo == key.lo) &&
            (hdr->length == fill->length)) {
            memcpy(fill->payload, s->data + blk + US_CHUNK_OVERHEAD +
                   us_chunk_table_bytes(fill->length), fill->length);
            s->stats.nvme_pending_fills++;
            st = UCACHE_OK;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

/* The devices @p fill's key may be read from: its key and their number
 * (UCACHE_ERR_INVALID for an unknown reservation). */
static ucache_status_t fill_devices(us_store_t *s, const us_fill_t *fill, us_key_t *key_p,
                                    unsigned *n_p)
{
    pthread_mutex_lock(&s->lock);
    if (!us_st_fill_valid(s, fill)) {
        pthread_mutex_unlock(&s->lock);
        return UCACHE_ERR_INVALID;
    }
    *key_p = s->desc[fill->slot].key;
    *n_p   = s->nnvme;
    pthread_mutex_unlock(&s->lock);
    return UCACHE_OK;
}

/* Whether device @p i holds @p key's record of @p length (one of another
 * length is not this chunk after all: dropped, never served). */
static bool device_holds(us_store_t *s, unsigned i, const us_key_t *key, uint32_t length)
{
    uint32_t len;

    if (!us_nvme_lookup(s->nvme[i], key, &len, NULL)) {
        return false;
    }
    if (len != length) {
        if (us_nvme_drop(s->nvme[i], key) == UCACHE_OK) {
            pthread_mutex_lock(&s->lock);
            us_st_nvme_dirty(s, true);
            pthread_mutex_unlock(&s->lock);
        }
        return false;
    }
    return true;
}

ucache_status_t us_store_nvme_start(us_store_t *s, us_nvme_aio_t *aio, const us_fill_t *fill,
                                    uint64_t tag)
{
    ucache_status_t st;
    us_key_t key;
    unsigned i, n;

    st = fill_devices(s, fill, &key, &n);
    for (i = 0; (st == UCACHE_OK) && (i < n); i++) {
        if (device_holds(s, i, &key, fill->length)) {
            st = us_nvme_aio_read(aio, s->nvme[i], &key, fill->payload, fill->length, tag);
            if ((st == UCACHE_OK) || (st == UCACHE_ERR_BUSY)) {
                return st;
            }
            st = UCACHE_OK;          /* the next device, if any */
        }
    }
    return (st == UCACHE_OK) ? UCACHE_ERR_NOT_FOUND : st;
}

void us_store_nvme_read_done(us_store_t *s, ucache_status_t status)
{
    if (status == UCACHE_OK) {
        pthread_mutex_lock(&s->lock);
        s->stats.nvme_hits++;
        pthread_mutex_unlock(&s->lock);
    }
}

ucache_status_t us_store_fill_nvme(us_store_t *s, const us_fill_t *fill)
{
    ucache_status_t st;
    us_key_t key;
    unsigned i, n;
    size_t got;

    st = fill_devices(s, fill, &key, &n);
    for (i = 0; (st == UCACHE_OK) && (i < n); i++) {
        if (device_holds(s, i, &key, fill->length) &&
            (us_nvme_read(s->nvme[i], &key, fill->payload, fill->length, &got) == UCACHE_OK) &&
            (got == fill->length)) {
            us_store_nvme_read_done(s, UCACHE_OK);
            return UCACHE_OK;
        }
    }
    return (st == UCACHE_OK) ? UCACHE_ERR_NOT_FOUND : st;
}

unsigned us_store_nvme_flush(us_store_t *s, uint64_t timeout_ns)
{
    uint64_t deadline = uc_deadline(timeout_ns);
    unsigned queued = 0, left = 0;
    uint32_t slot;
    us_desc_t *d;

    pthread_mutex_lock(&s->lock);
    for (slot = 0; (s->nnvme > 0) && (slot < s->nslots); slot++) {
        d = &s->desc[slot];
        if ((d->state == US_SLOT_PUBLISHED) && !d->staged && !d->on_nvme && !d->copying &&
            !us_st_on_nvme(s, &d->key) && us_st_demote_push(s, slot, true)) {
            d->copying = 1;
            queued++;
        }
    }
    pthread_mutex_unlock(&s->lock);
    while ((us_store_demote(s, US_DEMOTE_BATCH, 0) > 0) && (uc_time_ns() < deadline)) {
    }
    pthread_mutex_lock(&s->lock);
    left = s->dq_n;
    pthread_mutex_unlock(&s->lock);
    if (queued > 0) {
        UC_INFO("store: %u chunks of memory written to NVMe%s", queued - left,
                left ? " before the deadline; the rest are not" : "");
    }
    return queued - left;
}

ucache_status_t us_store_demote_key(us_store_t *s, const us_key_t *key)
{
    ucache_status_t st = UCACHE_OK;
    uint32_t slot;

    pthread_mutex_lock(&s->lock);
    slot = us_st_find(s, key);
    if (s->nnvme == 0) {
        st = UCACHE_ERR_UNSUPPORTED;
    } else if ((slot == US_NONE) || (s->desc[slot].state != US_SLOT_PUBLISHED)) {
        st = UCACHE_ERR_NOT_FOUND;
    } else if (us_st_is_pinned(s, &s->desc[slot])) {
        st = UCACHE_ERR_BUSY;
    } else if (!s->desc[slot].staged) {
        us_st_unpublish(s, slot, US_EV_TIER);
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}
