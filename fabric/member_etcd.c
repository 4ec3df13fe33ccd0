/*
 * member_etcd.c - the etcd membership source (see member.h, etcd.h).
 *
 * Keys, under the PREFIX of etcd://HOST:PORT[,...]/PREFIX:
 *   PREFIX/config          {"v":1,"slots":A,"slot_size":B}: the placement's
 *                          capacity in slots and the memory a slot stands
 *                          for, written once by the first daemon (a txn on
 *                          create_revision 0) and read by every context
 *   PREFIX/nodes/HOST:PORT a node's record (JSON: id, listener, zone, slots,
 *                          weight, memory, state), under the node's lease
 *   PREFIX/slots/%08x      one key per slot a node holds (its listener),
 *                          under the same lease: a claim of a run of slots
 *                          is one txn whose compare says no key of the run
 *                          exists, so two nodes never hold one slot
 * A record holds what placement needs and nothing that grants access: a
 * reader gets a node's worker address and key from the node's listener
 * (the authenticated HELLO, fabric/peer.c), as with file: lists.
 *
 * The view: one paged range of PREFIX/nodes/ at one revision, then a watch
 * from that revision + 1 (a thread of the source's own); the revision of
 * the last change applied is the epoch.  A compacted watch ranges again.
 * While etcd is unreachable the source keeps its last view and retries
 * (with back-off, endpoint after endpoint): etcd trouble is not an outage.
 *
 * A serving node: a lease of UCACHE_MEMBERS_TTL, kept alive every third of
 * it by a keeper thread; lost (etcd expired it: the node stalled or was cut
 * off) it is reported by heartbeat() as NOT_FOUND and the context joins
 * again, preferring the slots it held.  A node restarted on the same
 * listener takes its record over (its old incarnation cannot be listening
 * there any more) and revokes the old lease.
 */
#include "fabric/etcd.h"
#include "fabric/member.h"
#include "fabric/place.h"
#include "fabric/view_shm.h"
#include "origin/cred.h"
#include "util/config.h"
#include "util/log.h"
#include "util/time.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define UF_ETCD_PAGE         1000    /* records per range page             */
#define UF_ETCD_SLOTS_DEF    65536u  /* PREFIX/config's slots when unset   */
#define UF_ETCD_WEIGHT_MAX   127u    /* slot keys in one txn (etcd: 128 ops) */
#define UF_ETCD_JOIN_TRIES   32u
#define UF_ETCD_BACKOFF_MIN  (100 * UC_NSEC_PER_MSEC)
#define UF_ETCD_BACKOFF_MAX  (2 * UC_NSEC_PER_SEC)
#define UF_ETCD_REC_VERSION  1

typedef struct uf_esrc {
    uf_etcd_t       *e;           /* NULL: following the local daemon's view */
    uf_vshm_t       *shm;         /* the local daemon's view (readers)    */
    _Atomic bool     via_shm;     /* the view is shm's (else etcd's)      */
    uint64_t         shm_stale;   /* a view not beaten this long: its
                                     daemon is gone, watch etcd instead  */
    uint64_t         retry_ns;    /* when to try etcd again (shm_lock)   */
    pthread_mutex_t  shm_lock;    /* leaving the daemon's view for etcd  */
    uc_config_t      cfg;         /* how to reach etcd then              */
    char             url[sizeof(((uc_config_t *)0)->members) + 8];
    bool             serve;
    uint64_t         timeout_ns;
    char             nodes[UF_ETCD_KEY_MAX / 2];      /* PREFIX/nodes/   */
    char             nodes_end[UF_ETCD_KEY_MAX / 2];
    char             slots[UF_ETCD_KEY_MAX / 2];      /* PREFIX/slots/   */
    char             config[UF_ETCD_KEY_MAX / 2];     /* PREFIX/config   */
    uint32_t         nslots;
    uint64_t         slot_bytes;

    /* the view (lock): records by id in a dense array and a hash index */
    pthread_mutex_t  lock;
    pthread_cond_t   cond;
    uf_member_t     *m;
    uint32_t         n, cap;
    uint32_t        *ht;             /* index + 1; 0 empty; UINT32_MAX gone */
    uint32_t         htcap, htused;
    int64_t          rev;            /* the view is etcd's as of this      */
    int64_t          epoch;          /* revision of the last change applied */
    uint64_t         bad;            /* malformed records skipped          */
    bool             stop;
    pthread_t        watcher;
    bool             watcher_running;

    /* registration (reg_lock) */
    pthread_mutex_t  reg_lock;
    int64_t          lease;          /* 0: not registered                  */
    int64_t          lease_ttl;
    int64_t          lease_left_s;   /* the lease's TTL etcd last answered  */
    uint64_t         lease_seen_ns;  /* ... when (lock); 0: no lease        */
    _Atomic bool     lost;           /* etcd no longer has the lease       */
    uint64_t         id;
    int64_t          prev_slot0;     /* the run it held (-1: none)         */
    char             listen[128];    /* this node's HOST:PORT (UCACHE_LISTEN) */
    pthread_t        keeper;
    bool             keeper_running;
} uf_esrc_t;

/* ------------------------------------------------------------------------ */
/* Records                                                                   */
/* ------------------------------------------------------------------------ */

ucache_status_t uf_etcd_record_encode(const uf_member_t *m, bool draining, char **json_p)
{
    json_object *o = json_object_new_object();
    char s[UF_HOST_MAX + 8];

    if (o == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    json_object_object_add(o, "v", json_object_new_int(UF_ETCD_REC_VERSION));
    snprintf(s, sizeof(s), "%016" PRIx64, m->id);
    json_object_object_add(o, "id", json_object_new_string(s));
    snprintf(s, sizeof(s), "%s:%u", m->host, m->port);
    json_object_object_add(o, "listen", json_object_new_string(s));
    json_object_object_add(o, "zone", json_object_new_string(m->zone));
    json_object_object_add(o, "slot0", json_object_new_int64(m->slot0));
    json_object_object_add(o, "weight", json_object_new_int64(m->weight));
    json_object_object_add(o, "mem", json_object_new_int64((int64_t)m->mem_bytes));
    json_object_object_add(o, "state", json_object_new_string(draining ? "draining" : "up"));
    *json_p = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return (*json_p != NULL) ? UCACHE_OK : UCACHE_ERR_NO_MEMORY;
}

static bool uf_rec_int(json_object *o, const char *name, int64_t min, int64_t max,
                       int64_t *v)
{
    json_object *f;

    if (!json_object_object_get_ex(o, name, &f) || !json_object_is_type(f, json_type_int)) {
        return false;
    }
    errno = 0;
    *v = json_object_get_int64(f);
    return (errno == 0) && (*v >= min) && (*v <= max);
}

static const char *uf_rec_str(json_object *o, const char *name, size_t max)
{
    json_object *f;

    if (!json_object_object_get_ex(o, name, &f) ||
        !json_object_is_type(f, json_type_string) ||
        ((size_t)json_object_get_string_len(f) >= max) ||
        (strlen(json_object_get_string(f)) != (size_t)json_object_get_string_len(f))) {
        return NULL;
    }
    return json_object_get_string(f);
}

/* A value of ours in etcd: one JSON object, shallow, nothing after it
 * (NULL if it is not). */
static json_object *uf_rec_json(const char *buf, size_t len)
{
    json_tokener *tok;
    json_object *o;

    if ((len == 0) || (len > UF_ETCD_VALUE_MAX) || (memchr(buf, '\0', len) != NULL)) {
        return NULL;
    }
    tok = json_tokener_new_ex(4);
    if (tok == NULL) {
        return NULL;
    }
    o = json_tokener_parse_ex(tok, buf, (int)len);
    if ((o != NULL) && (json_tokener_get_parse_end(tok) != len)) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* "host:port" into m->host, m->port. */
static bool uf_rec_listen(const char *s, uf_member_t *m)
{
    const char *colon = strrchr(s, ':');
    unsigned long port;
    char *end;

    if ((colon == NULL) || (colon == s) || ((size_t)(colon - s) >= UF_HOST_MAX)) {
        return false;
    }
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if ((errno != 0) || (*end != '\0') || (end == colon + 1) || (port == 0) ||
        (port > 65535)) {
        return false;
    }
    memcpy(m->host, s, (size_t)(colon - s));
    m->host[colon - s] = '\0';
    m->port = (uint16_t)port;
    return true;
}

ucache_status_t uf_etcd_record_decode(const char *buf, size_t len, uf_member_t *m,
                                      bool *draining_p)
{
    int64_t v, slot0, weight, mem;
    const char *id, *listen, *zone, *state;
    json_object *o;
    char *end;

    memset(m, 0, sizeof(*m));
    o = uf_rec_json(buf, len);
    if ((o == NULL) || !json_object_is_type(o, json_type_object) ||
        !uf_rec_int(o, "v", UF_ETCD_REC_VERSION, UF_ETCD_REC_VERSION, &v) ||
        !uf_rec_int(o, "slot0", 0, UF_MAX_SLOTS - 1, &slot0) ||
        !uf_rec_int(o, "weight", 1, UF_MAX_WEIGHT, &weight) ||
        (weight > UF_MAX_SLOTS - slot0) ||
        !uf_rec_int(o, "mem", 0, INT64_MAX, &mem) ||
        ((id = uf_rec_str(o, "id", 17)) == NULL) || (strlen(id) != 16) ||
        ((listen = uf_rec_str(o, "listen", UF_HOST_MAX + 7)) == NULL) ||
        ((zone = uf_rec_str(o, "zone", UF_ZONE_MAX)) == NULL) ||
        ((state = uf_rec_str(o, "state", 16)) == NULL) ||
        ((strcmp(state, "up") != 0) && (strcmp(state, "draining") != 0)) ||
        !uf_rec_listen(listen, m)) {
        json_object_put(o);
        memset(m, 0, sizeof(*m));
        return UCACHE_ERR_CORRUPT;
    }
    errno = 0;
    m->id = strtoull(id, &end, 16);
    /* a node is named by its listener: the id is its hash, nothing else */
    if ((errno != 0) || (*end != '\0') || (m->id != uf_member_id_of(listen))) {
        json_object_put(o);
        memset(m, 0, sizeof(*m));
        return UCACHE_ERR_CORRUPT;
    }
    m->slot0     = (uint32_t)slot0;
    m->weight    = (uint32_t)weight;
    m->mem_bytes = (uint64_t)mem;
    snprintf(m->zone, sizeof(m->zone), "%s", zone);
    if (draining_p != NULL) {
        *draining_p = (strcmp(state, "draining") == 0);
    }
    json_object_put(o);
    return UCACHE_OK;
}

/* ------------------------------------------------------------------------ */
/* The view's records by id                                                  */
/* ------------------------------------------------------------------------ */

#define UF_HT_GONE UINT32_MAX

static uint32_t uf_ht_hash(uint64_t id)
{
    return (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 32);
}

/* The hash slot of @p id, or of where it would go (@p insert). */
static uint32_t uf_ht_find(const uf_esrc_t *s, uint64_t id, bool insert)
{
    uint32_t h = uf_ht_hash(id), i, v, first_gone = UINT32_MAX;

    for (i = 0; i < s->htcap; i++) {
        h &= s->htcap - 1;
        v = s->ht[h];
        if (v == 0) {
            return (insert && (first_gone != UINT32_MAX)) ? first_gone : h;
        }
        if (v == UF_HT_GONE) {
            if (first_gone == UINT32_MAX) {
                first_gone = h;
            }
        } else if (s->m[v - 1].id == id) {
            return h;
        }
        h++;
    }
    return first_gone;
}

static ucache_status_t uf_ht_rebuild(uf_esrc_t *s, uint32_t want)
{
    uint32_t cap = 64, i, h;
    uint32_t *ht;

    while (cap < 2 * want) {
        cap *= 2;
    }
    ht = calloc(cap, sizeof(*ht));
    if (ht == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    free(s->ht);
    s->ht     = ht;
    s->htcap  = cap;
    s->htused = s->n;
    for (i = 0; i < s->n; i++) {
        h = uf_ht_find(s, s->m[i].id, true);
        s->ht[h] = i + 1;
    }
    return UCACHE_OK;
}

/* Insert or replace @p m (its contents taken). */
static ucache_status_t uf_view_put(uf_esrc_t *s, const uf_member_t *m)
{
    uf_member_t *nm;
    uint32_t h;

    if ((s->htused + 1) * 2 > s->htcap) {
        if (uf_ht_rebuild(s, s->n + 1) != UCACHE_OK) {
            return UCACHE_ERR_NO_MEMORY;
        }
    }
    h = uf_ht_find(s, m->id, true);
    if ((s->ht[h] != 0) && (s->ht[h] != UF_HT_GONE)) {
        s->m[s->ht[h] - 1] = *m;
        return UCACHE_OK;
    }
    if (s->n == s->cap) {
        nm = realloc(s->m, sizeof(*nm) * (s->cap ? 2 * s->cap : 64));
        if (nm == NULL) {
            return UCACHE_ERR_NO_MEMORY;
        }
        s->m   = nm;
        s->cap = s->cap ? 2 * s->cap : 64;
    }
    if (s->ht[h] == 0) {
        s->htused++;
    }
    s->m[s->n] = *m;
    s->ht[h] = ++s->n;
    return UCACHE_OK;
}

static void uf_view_del(uf_esrc_t *s, uint64_t id)
{
    uint32_t h = uf_ht_find(s, id, false), idx, hl;

    if ((h == UINT32_MAX) || (s->ht[h] == 0) || (s->ht[h] == UF_HT_GONE)) {
        return;
    }
    idx = s->ht[h] - 1;
    s->ht[h] = UF_HT_GONE;
    if (idx != s->n - 1) { /* the last record moves into the hole */
        hl = uf_ht_find(s, s->m[s->n - 1].id, false);
        s->m[idx] = s->m[s->n - 1];
        s->ht[hl] = idx + 1;
    }
    s->n--;
}

/* The id a key PREFIX/nodes/HOST:PORT names (0 if it names none). */
static uint64_t uf_key_id(const uf_esrc_t *s, const uf_etcd_kv_t *kv)
{
    size_t plen = strlen(s->nodes);

    if ((kv->key_len <= plen) || (memcmp(kv->key, s->nodes, plen) != 0) ||
        (strlen(kv->key) != kv->key_len)) {
        return 0;
    }
    return uf_member_id_of(kv->key + plen);
}

/* A record as etcd holds it into @p m: checked against its key and the
 * placement's slots. */
static bool uf_kv_member(const uf_esrc_t *s, const uf_etcd_kv_t *kv, uf_member_t *m)
{
    uint64_t id = uf_key_id(s, kv);

    if ((id == 0) || (uf_etcd_record_decode(kv->value, kv->value_len, m, NULL) != UCACHE_OK) ||
        (m->id != id) || ((s->nslots != 0) && (m->weight > s->nslots - m->slot0))) {
        return false;
    }
    return true;
}

/* A watch event (the watcher thread, s->lock not held). */
static void uf_esrc_event(void *arg, const uf_etcd_kv_t *kv, int64_t rev)
{
    uf_esrc_t *s = arg;
    uf_member_t m;
    uint64_t id;

    pthread_mutex_lock(&s->lock);
    if (kv->deleted) {
        id = uf_key_id(s, kv);
        if (id != 0) {
            uf_view_del(s, id);
        }
    } else if (uf_kv_member(s, kv, &m)) {
        uf_view_put(s, &m);
    } else {
        s->bad++;
        UC_WARN("members: malformed record %.*s in etcd (revision %" PRId64 "); skipped",
                (int)((kv->key_len > 200) ? 200 : kv->key_len), kv->key, rev);
        uf_view_del(s, uf_key_id(s, kv));
    }
    s->epoch = rev;
    s->rev   = rev;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* Every record at one revision, page by page (@p s->lock not held):
 * *members_p, *n_p and that revision. */
static ucache_status_t uf_esrc_range(uf_esrc_t *s, uf_member_t **members_p, uint32_t *n_p,
                                     uint64_t *bad_p, int64_t *rev_p)
{
    char from[UF_ETCD_KEY_MAX + 2];
    uf_member_t *v = NULL, *nv, m;
    uint32_t n = 0, cap = 0, i;
    ucache_status_t status;
    uf_etcd_reply_t r;
    int64_t rev = 0;

    snprintf(from, sizeof(from), "%s", s->nodes);
    for (;;) {
        status = uf_etcd_range(s->e, from, s->nodes_end, rev, UF_ETCD_PAGE, &r);
        if (status != UCACHE_OK) {
            free(v);
            return status;
        }
        if (rev == 0) {
            rev = r.revision;
        }
        for (i = 0; i < r.nkvs; i++) {
            if (!uf_kv_member(s, &r.kvs[i], &m)) {
                (*bad_p)++;
                continue;
            }
            if (n == cap) {
                nv = realloc(v, sizeof(*v) * (cap ? 2 * cap : 64));
                if (nv == NULL) {
                    uf_etcd_reply_clear(&r);
                    free(v);
                    return UCACHE_ERR_NO_MEMORY;
                }
                v = nv;
                cap = cap ? 2 * cap : 64;
            }
            v[n++] = m;
        }
        if (!r.more || (r.nkvs == 0)) {
            uf_etcd_reply_clear(&r);
            break;
        }
        /* the next page starts just past this one's last key */
        snprintf(from, sizeof(from), "%s", r.kvs[r.nkvs - 1].key);
        from[strlen(from) + 1] = '\0';
        i = (uint32_t)strlen(from);
        from[i] = '\x01'; /* keys are printable: no key falls between */
        from[i + 1] = '\0';
        uf_etcd_reply_clear(&r);
    }
    *members_p = v;
    *n_p = n;
    *rev_p = rev;
    return UCACHE_OK;
}

/* Range again and replace the view (the watcher, or open). */
static ucache_status_t uf_esrc_sync(uf_esrc_t *s)
{
    uf_member_t *v;
    uint64_t bad = 0;
    ucache_status_t status;
    uint32_t n, i;
    int64_t rev;

    status = uf_esrc_range(s, &v, &n, &bad, &rev);
    if (status != UCACHE_OK) {
        return status;
    }
    pthread_mutex_lock(&s->lock);
    s->n = 0;
    s->htused = 0;
    if (s->ht != NULL) {
        memset(s->ht, 0, sizeof(*s->ht) * s->htcap);
    }
    for (i = 0; i < n; i++) {
        uf_view_put(s, &v[i]);
    }
    s->bad += bad;
    s->rev = rev;
    s->epoch = rev;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    free(v);
    UC_INFO("members: %u nodes in etcd at revision %" PRId64, n, rev);
    return UCACHE_OK;
}

/* Sleep @p ns unless the source stops, or @p *flag turns false (s->lock
 * held; s->cond is broadcast on every change of the view, so wake-ups
 * before the time are slept again). */
static void uf_esrc_nap(uf_esrc_t *s, uint64_t ns, const bool *flag)
{
    uint64_t until = uc_deadline(ns);
    struct timespec ts = { .tv_sec = (time_t)(until / UC_NSEC_PER_SEC),
                           .tv_nsec = (long)(until % UC_NSEC_PER_SEC) };

    while (!s->stop && ((flag == NULL) || *flag) && (uc_time_ns() < until)) {
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    }
}

static void *uf_esrc_watcher(void *arg)
{
    uint64_t backoff = UF_ETCD_BACKOFF_MIN;
    uf_esrc_t *s = arg;
    ucache_status_t status;
    bool synced = true;
    int64_t from, last;

    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        from = s->rev + 1;
        pthread_mutex_unlock(&s->lock);
        status = synced ? uf_etcd_watch(s->e, s->nodes, s->nodes_end, from, uf_esrc_event,
                                        s, &last) :
                          uf_esrc_sync(s);
        if (!synced && (status == UCACHE_OK)) {
            synced = true;
        } else if (status == UCACHE_ERR_OUT_OF_RANGE) {
            synced = false;  /* compacted past where we were: range again */
            status = UCACHE_OK;
        }
        pthread_mutex_lock(&s->lock);
        if (status == UCACHE_OK) {
            backoff = UF_ETCD_BACKOFF_MIN;
        } else if (status != UCACHE_ERR_CANCELED) {
            UC_DEBUG("members: etcd watch ended (%s); again in %" PRIu64 " ms",
                     ucache_strerror(status), (uint64_t)(backoff / UC_NSEC_PER_MSEC));
            uf_esrc_nap(s, backoff, NULL);
            backoff = (2 * backoff > UF_ETCD_BACKOFF_MAX) ? UF_ETCD_BACKOFF_MAX : 2 * backoff;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The placement's slot count                                                */
/* ------------------------------------------------------------------------ */

ucache_status_t uf_etcd_config_decode(const char *buf, size_t len, uint32_t *slots_p,
                                      uint64_t *slot_bytes_p)
{
    json_object *o;
    int64_t v, slots, bytes;

    o = uf_rec_json(buf, len);
    if ((o == NULL) || !json_object_is_type(o, json_type_object) ||
        !uf_rec_int(o, "v", 1, 1, &v) ||
        !uf_rec_int(o, "slots", 8, UF_MAX_SLOTS, &slots) || (slots & (slots - 1)) ||
        !uf_rec_int(o, "slot_size", 1 << 20, 1ll << 50, &bytes)) {
        json_object_put(o);
        return UCACHE_ERR_CORRUPT;
    }
    json_object_put(o);
    *slots_p      = (uint32_t)slots;
    *slot_bytes_p = (uint64_t)bytes;
    return UCACHE_OK;
}

/* The fabric's placement parameters (PREFIX/config): read, or written by
 * the first daemon; a context configured with others refuses them. */
/* The placement's slots and slot size (s->lock: a reader leaving its
 * daemon's view for etcd sets them while another thread may read them). */
static void uf_esrc_set_slots(uf_esrc_t *s, uint32_t nslots, uint64_t slot_bytes)
{
    pthread_mutex_lock(&s->lock);
    s->nslots     = nslots;
    s->slot_bytes = slot_bytes;
    pthread_mutex_unlock(&s->lock);
}

static ucache_status_t uf_esrc_config(uf_esrc_t *s, unsigned want_slots, uint64_t want_bytes)
{
    unsigned slots = (want_slots != 0) ? want_slots : UF_ETCD_SLOTS_DEF;
    uint64_t bytes = (want_bytes != 0) ? want_bytes : UF_SLOT_BYTES_DEF, have_bytes;
    uint32_t have;
    ucache_status_t status;
    uf_etcd_reply_t r;
    uf_etcd_cmp_t cmp;
    uf_etcd_put_t put;
    char body[96];
    bool ok;

    if ((slots & (slots - 1)) || (slots < 8) || (slots > UF_MAX_SLOTS) ||
        (bytes < (1u << 20))) {
        UC_ERROR("UCACHE_PLACE_SLOTS %u is not a power of two in 8..%u, or "
                 "UCACHE_SLOT_SIZE %" PRIu64 " is under 1M", slots, UF_MAX_SLOTS, bytes);
        return UCACHE_ERR_INVALID;
    }
    for (;;) {
        status = uf_etcd_range(s->e, s->config, NULL, 0, 1, &r);
        if (status != UCACHE_OK) {
            UC_ERROR("members: cannot read %s from etcd (%s): %s", s->config,
                     uf_etcd_endpoint(s->e), ucache_strerror(status));
            return status;
        }
        if (r.nkvs == 1) {
            break;
        }
        uf_etcd_reply_clear(&r);
        if (!s->serve) { /* no fabric yet: nothing to agree with */
            uf_esrc_set_slots(s, want_slots, want_bytes);
            return UCACHE_OK;
        }
        snprintf(body, sizeof(body), "{\"v\":1,\"slots\":%u,\"slot_size\":%" PRIu64 "}",
                 slots, bytes);
        cmp = (uf_etcd_cmp_t){ .key = s->config, .value = 0 };
        put = (uf_etcd_put_t){ .key = s->config, .value = body, .len = strlen(body) };
        status = uf_etcd_txn(s->e, &cmp, 1, &put, 1, &ok, NULL);
        if (status != UCACHE_OK) {
            return status;
        }
        if (ok) {
            UC_INFO("members: the fabric %s has %u placement slots of %" PRIu64 " bytes",
                    s->config, slots, bytes);
        }
    }
    status = uf_etcd_config_decode(r.kvs[0].value, r.kvs[0].value_len, &have, &have_bytes);
    uf_etcd_reply_clear(&r);
    if (status != UCACHE_OK) {
        UC_ERROR("members: %s in etcd is malformed", s->config);
        return status;
    }
    if (((want_slots != 0) && (have != want_slots)) ||
        ((want_bytes != 0) && (have_bytes != want_bytes))) {
        UC_ERROR("members: UCACHE_PLACE_SLOTS %u and UCACHE_SLOT_SIZE %" PRIu64 " differ "
                 "from the fabric's (%s: %u slots of %" PRIu64 " bytes): every node and "
                 "reader must place keys alike", want_slots, want_bytes, s->config, have,
                 have_bytes);
        return UCACHE_ERR_INVALID;
    }
    uf_esrc_set_slots(s, have, have_bytes);
    return UCACHE_OK;
}

/* ------------------------------------------------------------------------ */
/* The source                                                                */
/* ------------------------------------------------------------------------ */

static void uf_esrc_close(void *src);

/* A reader on a host whose daemon follows the same fabric: its view, from
 * the file the daemon publishes (view_shm.h), and no etcd connection. */
static ucache_status_t uf_esrc_open_shm(uf_esrc_t *s)
{
    uf_member_t *m = NULL;
    ucache_status_t status;
    uint64_t epoch;
    char path[512];
    uint32_t n;

    uf_vshm_path(s->cfg.view_shm, s->url, path, sizeof(path));
    status = uf_vshm_open(path, &s->shm);
    if ((status == UCACHE_OK) && !uf_vshm_alive(s->shm, s->shm_stale)) {
        status = UCACHE_ERR_NOT_FOUND;   /* its daemon is gone */
    }
    if (status == UCACHE_OK) {
        status = uf_vshm_read(s->shm, &m, &n, &epoch, &s->nslots, &s->slot_bytes);
        free(m);
    }
    if (status != UCACHE_OK) {
        uf_vshm_close(s->shm, false);
        s->shm = NULL;
        UC_INFO("members: no live view of a local daemon at %s (%s): watching etcd",
                path, ucache_strerror(status));
        return status;
    }
    UC_INFO("members: following the local daemon's view at %s (epoch %" PRIu64
            ", %u nodes): no etcd connection", path, epoch, n);
    atomic_store_explicit(&s->via_shm, true, memory_order_release);
    return UCACHE_OK;
}

/* Connect to etcd and keep a view of it: the configuration, a range, the
 * watcher (daemons; readers with no live local daemon). */
/* A client of the source's etcd, with its credentials and TLS files. */
static ucache_status_t uf_esrc_client(const uf_esrc_t *s, uf_etcd_t **e_p)
{
    char user[128] = "", password[256] = "";
    uf_etcd_opts_t opts = { 0 };
    ucache_status_t status;

    us_cred_get_in(s->cfg.credentials, "ETCD_USER", user, sizeof(user));
    us_cred_get_in(s->cfg.credentials, "ETCD_PASSWORD", password, sizeof(password));
    opts.ca         = s->cfg.etcd_ca;
    opts.cert       = s->cfg.etcd_cert;
    opts.key        = s->cfg.etcd_key;
    opts.user       = user;
    opts.password   = password;
    opts.timeout_ns = 2 * UC_NSEC_PER_SEC;
    status = uf_etcd_create(s->url, &opts, e_p);
    explicit_bzero(password, sizeof(password));
    return status;
}

static ucache_status_t uf_esrc_connect(uf_esrc_t *s)
{
    ucache_status_t status;
    uf_etcd_t *e;

    status = uf_esrc_client(s, &e);
    if (status != UCACHE_OK) {
        return status;
    }
    s->e = e;
    snprintf(s->nodes, sizeof(s->nodes), "%s/nodes/", uf_etcd_prefix(s->e));
    uf_etcd_prefix_end(s->nodes, s->nodes_end, sizeof(s->nodes_end));
    snprintf(s->slots, sizeof(s->slots), "%s/slots/", uf_etcd_prefix(s->e));
    snprintf(s->config, sizeof(s->config), "%s/config", uf_etcd_prefix(s->e));
    status = uf_esrc_config(s, s->cfg.place_slots, s->cfg.slot_size);
    if (status == UCACHE_OK) {
        status = uf_esrc_sync(s);
    }
    if ((status == UCACHE_OK) && (pthread_create(&s->watcher, NULL, uf_esrc_watcher, s) != 0)) {
        status = UCACHE_ERR_NO_MEMORY;
    }
    if (status != UCACHE_OK) {
        s->e = NULL;
        uf_etcd_destroy(e);
        return status;
    }
    s->watcher_running = true;
    return UCACHE_OK;
}

/* A reader following its daemon's view, whose daemon stopped beating it
 * (killed, or gone with its pod): from now on it watches etcd itself, as a
 * process with no local daemon does.  Until etcd answers, the last view
 * stays (tried again every few seconds). */
static void uf_esrc_leave_shm(uf_esrc_t *s)
{
    uint64_t now = uc_time_ns();
    ucache_status_t status;

    if (uf_vshm_alive(s->shm, s->shm_stale) || (pthread_mutex_trylock(&s->shm_lock) != 0)) {
        return;
    }
    if (atomic_load_explicit(&s->via_shm, memory_order_acquire) && (now >= s->retry_ns)) {
        status = uf_esrc_connect(s);
        if (status == UCACHE_OK) {
            atomic_store_explicit(&s->via_shm, false, memory_order_release);
            UC_WARN("members: the local daemon's view stopped (no beat for %.1f s: its "
                    "daemon is gone?): watching etcd from now on",
                    (double)s->shm_stale / UC_NSEC_PER_SEC);
        } else {
            if (s->retry_ns == 0) {
                UC_WARN("members: the local daemon's view stopped and etcd cannot be "
                        "reached (%s): keeping the last view", ucache_strerror(status));
            }
            s->retry_ns = now + 5 * UC_NSEC_PER_SEC;
        }
    }
    pthread_mutex_unlock(&s->shm_lock);
}

static ucache_status_t uf_esrc_open(const char *arg, const uc_config_t *cfg, bool serve,
                                    void **src_p)
{
    pthread_condattr_t ca;
    ucache_status_t status;
    uf_esrc_t *s;

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->reg_lock, NULL);
    pthread_mutex_init(&s->shm_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    s->serve      = serve;
    s->prev_slot0 = -1;
    s->cfg        = *cfg;
    s->shm_stale  = (cfg->members_ttl_ns > 3 * cfg->members_poll_ns) ?
                    cfg->members_ttl_ns : 3 * cfg->members_poll_ns;
    snprintf(s->listen, sizeof(s->listen), "%s", cfg->listen);
    s->timeout_ns = cfg->timeout_ns;
    snprintf(s->url, sizeof(s->url), "etcd%s", arg);
    if (!serve && (uf_esrc_open_shm(s) == UCACHE_OK)) {
        *src_p = s;
        return UCACHE_OK;  /* no etcd connection, while the daemon lives */
    }
    status = uf_esrc_connect(s);
    if (status != UCACHE_OK) {
        uf_esrc_close(s);
        return status;
    }
    *src_p = s;
    return UCACHE_OK;
}

static void uf_esrc_stop_keeper(uf_esrc_t *s);

static void uf_esrc_close(void *src)
{
    uf_esrc_t *s = src;

    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (s->e != NULL) {
        uf_etcd_watch_stop(s->e);
    }
    if (s->watcher_running) {
        pthread_join(s->watcher, NULL);
    }
    uf_esrc_stop_keeper(s);
    uf_etcd_destroy(s->e);
    uf_vshm_close(s->shm, false);
    free(s->m);
    free(s->ht);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->reg_lock);
    pthread_mutex_destroy(&s->shm_lock);
    free(s);
}

static uint64_t uf_esrc_epoch(void *src)
{
    uf_esrc_t *s = src;
    int64_t e;

    if (atomic_load_explicit(&s->via_shm, memory_order_acquire)) {
        uf_esrc_leave_shm(s);   /* only if its daemon stopped beating it */
    }
    if (atomic_load_explicit(&s->via_shm, memory_order_acquire)) {
        return uf_vshm_epoch(s->shm);
    }
    pthread_mutex_lock(&s->lock);
    e = s->epoch;
    pthread_mutex_unlock(&s->lock);
    return (uint64_t)e;
}

static ucache_status_t uf_esrc_scan(void *src, uf_member_t **members_p, uint32_t *n_p,
                                    uint64_t *epoch_p, uint64_t *bad_p)
{
    uf_esrc_t *s = src;
    ucache_status_t status;
    uint64_t slot_bytes;
    uint32_t nslots;
    uf_member_t *v;

    if (atomic_load_explicit(&s->via_shm, memory_order_acquire)) {
        *bad_p = 0;
        status = uf_vshm_read(s->shm, members_p, n_p, epoch_p, &nslots, &slot_bytes);
        if (status == UCACHE_OK) {
            uf_esrc_set_slots(s, nslots, slot_bytes);
        }
        return status;
    }
    pthread_mutex_lock(&s->lock);
    v = malloc(sizeof(*v) * (s->n + 1));
    if (v == NULL) {
        pthread_mutex_unlock(&s->lock);
        return UCACHE_ERR_NO_MEMORY;
    }
    if (s->n > 0) {
        memcpy(v, s->m, sizeof(*v) * s->n);
    }
    *members_p = v;
    *n_p       = s->n;
    *epoch_p   = (uint64_t)s->epoch;
    *bad_p     = s->bad;
    s->bad     = 0;
    pthread_mutex_unlock(&s->lock);
    return UCACHE_OK;
}

static uint32_t uf_esrc_slots(void *src)
{
    uf_esrc_t *s = src;
    uint32_t n;

    pthread_mutex_lock(&s->lock);
    n = s->nslots;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static uint64_t uf_esrc_slot_bytes(void *src)
{
    uf_esrc_t *s = src;
    uint64_t b;

    pthread_mutex_lock(&s->lock);
    b = s->slot_bytes;
    pthread_mutex_unlock(&s->lock);
    return b;
}

/* The keeper: keep the lease alive every third of its TTL (each second
 * while etcd does not answer); a lease etcd no longer has is reported. */
static void *uf_esrc_keeper(void *arg)
{
    uf_esrc_t *s = arg;
    ucache_status_t status;
    uint64_t third, wait_ns;
    int64_t ttl = 0, lease;

    pthread_mutex_lock(&s->lock);
    third   = (uint64_t)s->lease_ttl * UC_NSEC_PER_SEC / 3;
    wait_ns = third;
    while (!s->stop && s->keeper_running) {
        uf_esrc_nap(s, wait_ns, &s->keeper_running);
        if (s->stop || !s->keeper_running) {
            break;
        }
        lease = s->lease;
        pthread_mutex_unlock(&s->lock);
        status = uf_etcd_lease_keepalive(s->e, lease, &ttl);
        pthread_mutex_lock(&s->lock);
        if ((status == UCACHE_OK) && (ttl == 0)) {
            UC_WARN("members: etcd expired lease %" PRIx64 " of this node (it stalled, "
                    "or was cut off for longer than UCACHE_MEMBERS_TTL)", (uint64_t)lease);
            atomic_store(&s->lost, true);
            s->lease_seen_ns = 0;
            break;
        }
        if (status == UCACHE_OK) {
            s->lease_left_s  = ttl;
            s->lease_seen_ns = uc_time_ns();
        }
        if (status != UCACHE_OK) {
            UC_DEBUG("members: keepalive: %s", ucache_strerror(status));
        }
        wait_ns = (status == UCACHE_OK) ? third :
                  (third < UC_NSEC_PER_SEC) ? third : UC_NSEC_PER_SEC;
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void uf_esrc_stop_keeper(uf_esrc_t *s)
{
    bool join;

    pthread_mutex_lock(&s->lock);
    join = s->keeper_running;
    s->keeper_running = false;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (join) {
        pthread_join(s->keeper, NULL);
    }
}

static int uf_run_cmp(const void *a, const void *b)
{
    const uf_member_t *x = a, *y = b;

    return (x->slot0 > y->slot0) - (x->slot0 < y->slot0);
}

/* Whether slots [s0, s0 + w) are free of @p v's runs (sorted by slot). */
static bool uf_run_free(const uf_member_t *v, uint32_t n, uint32_t s0, uint32_t w)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        if ((v[i].slot0 < s0 + w) && (s0 < v[i].slot0 + v[i].weight)) {
            return false;
        }
    }
    return true;
}

/*
 * A run of @p w free slots among @p v's (sorted by slot): @p prefer if it
 * is free, else on the first try the lowest, on later ones a random one of
 * the free gaps' starts (so nodes joining at once stop colliding).
 */
static bool uf_run_pick(const uf_member_t *v, uint32_t n, uint32_t nslots, uint32_t w,
                        int64_t prefer, unsigned attempt, uint32_t *s0_p)
{
    uint32_t starts[64], nstarts = 0, at = 0, i;
    uint32_t r;

    if ((prefer >= 0) && ((uint64_t)prefer + w <= nslots) &&
        uf_run_free(v, n, (uint32_t)prefer, w)) {
        *s0_p = (uint32_t)prefer;
        return true;
    }
    for (i = 0; (i <= n) && (nstarts < 64); i++) {
        uint32_t end = (i < n) ? v[i].slot0 : nslots;

        while ((end >= at + w) && (nstarts < 64)) {
            starts[nstarts++] = at;
            at += w;
            if (attempt == 0) {
                break;
            }
        }
        if (i < n) {
            at = (v[i].slot0 + v[i].weight > at) ? v[i].slot0 + v[i].weight : at;
        }
    }
    if (nstarts == 0) {
        return false;
    }
    if (attempt == 0) {
        *s0_p = starts[0];
        return true;
    }
    if (getrandom(&r, sizeof(r), 0) != sizeof(r)) {
        r = attempt;
    }
    *s0_p = starts[r % nstarts];
    return true;
}

/* Claim this node's record and a run of slots under s->lease: one txn.
 * The free runs come from the view the watch keeps (a node joining a
 * 100,000-node fabric reads no 100,000 records); the txn's comparisons
 * make a stale view safe, and from the third try etcd is ranged afresh. */
static ucache_status_t uf_esrc_claim(uf_esrc_t *s, uf_member_t *self, const char *listen,
                                     int64_t lease, int64_t prefer, unsigned attempt,
                                     bool *ok_p, int64_t *rev_p, int64_t *old_lease_p)
{
    char key[UF_ETCD_KEY_MAX], from[UF_ETCD_KEY_MAX], to[UF_ETCD_KEY_MAX];
    char (*slot_keys)[UF_ETCD_KEY_MAX] = NULL;
    uf_etcd_put_t *puts = NULL;
    uf_etcd_cmp_t cmp[2];
    uf_member_t *v = NULL, old = { 0 }, rec;
    uint32_t n = 0, i, k, s0;
    uint64_t bad = 0;
    ucache_status_t status;
    uf_etcd_reply_t r;
    int64_t rev;
    char *json = NULL;
    bool have_old = false, same_run;

    snprintf(key, sizeof(key), "%s%s", s->nodes, listen);
    /* the record as etcd has it now: a former incarnation's, or none */
    status = uf_etcd_range(s->e, key, NULL, 0, 1, &r);
    if (status != UCACHE_OK) {
        return status;
    }
    if ((r.nkvs == 1) && uf_kv_member(s, &r.kvs[0], &old)) {
        have_old = true;
        *old_lease_p = r.kvs[0].lease;
        cmp[0] = (uf_etcd_cmp_t){ .key = key, .mod = true, .value = r.kvs[0].mod_rev };
        if (prefer < 0) {
            prefer = old.slot0;
        }
    } else {
        cmp[0] = (uf_etcd_cmp_t){ .key = key, .value = 0 };
        if (r.nkvs == 1) { /* malformed: replace it only if it does not change */
            cmp[0] = (uf_etcd_cmp_t){ .key = key, .mod = true, .value = r.kvs[0].mod_rev };
        }
    }
    uf_etcd_reply_clear(&r);
    if (attempt < 2) { /* the view the watch keeps: no range of every record */
        pthread_mutex_lock(&s->lock);
        n   = s->n;
        rev = s->rev;
        v   = malloc(sizeof(*v) * (n + 1));
        if ((v != NULL) && (n > 0)) {
            memcpy(v, s->m, sizeof(*v) * n);
        }
        pthread_mutex_unlock(&s->lock);
        status = (v != NULL) ? UCACHE_OK : UCACHE_ERR_NO_MEMORY;
    } else {          /* claims keep failing: etcd's own state, now */
        status = uf_esrc_range(s, &v, &n, &bad, &rev);
    }
    if (status != UCACHE_OK) {
        return status;
    }
    for (i = k = 0; i < n; i++) { /* our own former run is ours to take */
        if (!have_old || (v[i].id != old.id)) {
            v[k++] = v[i];
        }
    }
    n = k;
    if (n > 1) {
        qsort(v, n, sizeof(*v), uf_run_cmp);
    }
    if (!uf_run_pick(v, n, s->nslots, self->weight, prefer, attempt, &s0)) {
        free(v);
        UC_ERROR("members: no run of %u free slots among the fabric's %u: raise "
                 "UCACHE_PLACE_SLOTS for a new fabric", self->weight, s->nslots);
        return UCACHE_ERR_NO_MEMORY;
    }
    free(v);
    same_run = have_old && (old.slot0 == s0) && (old.weight == self->weight);
    self->slot0 = s0;
    snprintf(from, sizeof(from), "%s%08x", s->slots, s0);
    snprintf(to, sizeof(to), "%s%08x", s->slots, s0 + self->weight);
    /* no other node holds a slot of the run: none of its keys exists, or
     * (our former run) none changed since our range */
    cmp[1] = same_run ? (uf_etcd_cmp_t){ .key = from, .end = to, .mod = true, .less = true,
                                         .value = rev + 1 } :
                        (uf_etcd_cmp_t){ .key = from, .end = to, .value = 0 };
    rec = *self;     /* as the record names it: by its listener */
    rec.addr = rec.rkey = NULL;
    if (!uf_rec_listen(listen, &rec)) {
        return UCACHE_ERR_INVALID;
    }
    status = uf_etcd_record_encode(&rec, false, &json);
    puts = calloc(self->weight + 1, sizeof(*puts));
    slot_keys = calloc(self->weight, sizeof(*slot_keys));
    if ((status != UCACHE_OK) || (puts == NULL) || (slot_keys == NULL)) {
        free(json);
        free(puts);
        free(slot_keys);
        return UCACHE_ERR_NO_MEMORY;
    }
    puts[0] = (uf_etcd_put_t){ .key = key, .value = json, .len = strlen(json),
                               .lease = lease };
    for (i = 0; i < self->weight; i++) {
        snprintf(slot_keys[i], sizeof(slot_keys[i]), "%s%08x", s->slots, s0 + i);
        puts[i + 1] = (uf_etcd_put_t){ .key = slot_keys[i], .value = listen,
                                       .len = strlen(listen), .lease = lease };
    }
    status = uf_etcd_txn(s->e, cmp, 2, puts, self->weight + 1, ok_p, rev_p);
    free(json);
    free(puts);
    free(slot_keys);
    if ((status == UCACHE_OK) && *ok_p && !have_old) {
        *old_lease_p = 0;
    }
    return status;
}

static ucache_status_t uf_esrc_join(void *src, uf_member_t *self, uint64_t ttl_ns)
{
    uf_esrc_t *s = src;
    int64_t ttl_s = (int64_t)((ttl_ns + UC_NSEC_PER_SEC - 1) / UC_NSEC_PER_SEC), granted;
    int64_t rev = 0, old_lease = 0;
    ucache_status_t status;
    uint64_t deadline;
    unsigned attempt;
    uint32_t delay;
    bool ok = false;

    if ((s->e == NULL) || (s->listen[0] == '\0') || (self->weight > UF_ETCD_WEIGHT_MAX) ||
        (self->weight > s->nslots)) {
        UC_ERROR("members: a node on etcd needs a listener and at most %u slots "
                 "(it has %u of the fabric's %u)", UF_ETCD_WEIGHT_MAX, self->weight,
                 s->nslots);
        return UCACHE_ERR_INVALID;
    }
    uf_esrc_stop_keeper(s);
    pthread_mutex_lock(&s->reg_lock);
    if (s->lease != 0) { /* a lost lease: its keys are gone or going */
        uf_etcd_lease_revoke(s->e, s->lease);
        s->lease = 0;
    }
    status = uf_etcd_lease_grant(s->e, (ttl_s < 2) ? 2 : ttl_s, &s->lease, &granted);
    if (status != UCACHE_OK) {
        UC_ERROR("members: etcd (%s) grants no lease: %s", uf_etcd_endpoint(s->e),
                 ucache_strerror(status));
        pthread_mutex_unlock(&s->reg_lock);
        return status;
    }
    s->lease_ttl = granted;
    for (attempt = 0; (attempt < UF_ETCD_JOIN_TRIES) && !ok; attempt++) {
        status = uf_esrc_claim(s, self, s->listen, s->lease, s->prev_slot0, attempt, &ok,
                               &rev, &old_lease);
        if ((status != UCACHE_OK) && (status != UCACHE_ERR_PEER) &&
            (status != UCACHE_ERR_TIMEOUT)) {
            break;
        }
        if (!ok) { /* another node claimed first: a random pause, then again */
            if (getrandom(&delay, sizeof(delay), 0) != sizeof(delay)) {
                delay = attempt;
            }
            usleep(1000 + delay % (5000u * (attempt + 1)));
        }
    }
    if (!ok) {
        UC_ERROR("members: cannot claim %u slots in etcd %s (%u tries): %s",
                 self->weight, s->nodes, attempt, ucache_strerror(status));
        uf_etcd_lease_revoke(s->e, s->lease);
        s->lease = 0;
        pthread_mutex_unlock(&s->reg_lock);
        return (status == UCACHE_OK) ? UCACHE_ERR_BUSY : status;
    }
    if ((old_lease != 0) && (old_lease != s->lease)) {
        uf_etcd_lease_revoke(s->e, old_lease); /* the former incarnation's */
    }
    s->prev_slot0 = self->slot0;
    s->id = self->id;
    atomic_store(&s->lost, false);
    pthread_mutex_unlock(&s->reg_lock);
    /* read our own write: the view has this node before join returns */
    deadline = uc_time_ns() + s->timeout_ns;
    pthread_mutex_lock(&s->lock);
    while ((s->rev < rev) && (uc_time_ns() < deadline) && !s->stop) {
        uf_esrc_nap(s, 10 * UC_NSEC_PER_MSEC, NULL);
    }
    s->lease_left_s   = granted;
    s->lease_seen_ns  = uc_time_ns();
    s->keeper_running = true;
    if (pthread_create(&s->keeper, NULL, uf_esrc_keeper, s) != 0) {
        s->keeper_running = false;
        status = UCACHE_ERR_NO_MEMORY;
    }
    pthread_mutex_unlock(&s->lock);
    return status;
}

static ucache_status_t uf_esrc_heartbeat(void *src, uint64_t id, uint64_t ttl_ns)
{
    uf_esrc_t *s = src;

    (void)id;
    (void)ttl_ns;
    return atomic_load(&s->lost) ? UCACHE_ERR_NOT_FOUND : UCACHE_OK;
}

static ucache_status_t uf_esrc_leave(void *src, uint64_t id)
{
    uf_esrc_t *s = src;
    ucache_status_t status = UCACHE_ERR_NOT_FOUND;

    (void)id;
    uf_esrc_stop_keeper(s);
    pthread_mutex_lock(&s->reg_lock);
    if (s->lease != 0) { /* the record and its slots go with the lease */
        status = uf_etcd_lease_revoke(s->e, s->lease);
        s->lease = 0;
    }
    pthread_mutex_unlock(&s->reg_lock);
    pthread_mutex_lock(&s->lock);
    s->lease_seen_ns = 0;
    pthread_mutex_unlock(&s->lock);
    return status;
}

ucache_status_t uf_etcd_register(void *src, const char *listen, uint64_t mem_bytes,
                                 int64_t lease, uint32_t *slot0_p, int64_t *rev_p)
{
    uf_esrc_t *s = src;
    uf_member_t m = { 0 };
    ucache_status_t status = UCACHE_OK;
    int64_t old_lease = 0;
    unsigned attempt;
    uint32_t delay;
    bool ok = false;

    m.id        = uf_member_id_of(listen);
    m.mem_bytes = mem_bytes;
    m.weight    = uf_member_weight(mem_bytes, s->slot_bytes);
    if (!uf_rec_listen(listen, &m) || (m.weight > UF_ETCD_WEIGHT_MAX)) {
        return UCACHE_ERR_INVALID;
    }
    for (attempt = 0; (attempt < UF_ETCD_JOIN_TRIES) && !ok; attempt++) {
        status = uf_esrc_claim(s, &m, listen, lease, -1, attempt, &ok, rev_p, &old_lease);
        if ((status != UCACHE_OK) && (status != UCACHE_ERR_PEER) &&
            (status != UCACHE_ERR_TIMEOUT)) {
            return status;
        }
        if (!ok) {
            if (getrandom(&delay, sizeof(delay), 0) != sizeof(delay)) {
                delay = attempt;
            }
            usleep(1000 + delay % (5000u * (attempt + 1)));
        }
    }
    *slot0_p = m.slot0;
    return ok ? UCACHE_OK : (status == UCACHE_OK) ? UCACHE_ERR_BUSY : status;
}

uf_etcd_t *uf_etcd_source_client(void *src)
{
    return ((uf_esrc_t *)src)->e;
}

const char *uf_etcd_source_nodes(void *src)
{
    return ((uf_esrc_t *)src)->nodes;
}

/*
 * Health: etcd's status asked now (@p probe) - through this source's
 * client, or a client of its own where the source follows the local
 * daemon's view - and the lease of the node registered here.
 */
static ucache_status_t uf_esrc_health(void *src, bool probe, uf_source_health_t *h)
{
    uf_esrc_t *s = src;
    bool shm = atomic_load_explicit(&s->via_shm, memory_order_acquire);
    ucache_status_t status = UCACHE_OK;
    uf_etcd_t *e = NULL, *own = NULL;
    uint64_t age;

    snprintf(h->via, sizeof(h->via), "%s", shm ? "the local daemon's view" : "etcd watch");
    h->revision      = -1;
    h->lease_left_ms = -1;
    pthread_mutex_lock(&s->lock);
    if (s->lease_seen_ns != 0) {
        age = (uc_time_ns() - s->lease_seen_ns) / UC_NSEC_PER_MSEC;
        h->lease_left_ms = ((uint64_t)s->lease_left_s * 1000 > age) ?
                           (int64_t)((uint64_t)s->lease_left_s * 1000 - age) : 0;
    }
    h->reachable = !shm && (s->e != NULL);
    e = shm ? NULL : s->e;
    pthread_mutex_unlock(&s->lock);
    if (!probe) {
        return UCACHE_OK;
    }
    if (e == NULL) {
        status = uf_esrc_client(s, &own);
        e = own;
    }
    if (status == UCACHE_OK) {
        status = uf_etcd_status(e, NULL, &h->revision);
    }
    h->reachable = (status == UCACHE_OK);
    if (h->reachable) {
        snprintf(h->detail, sizeof(h->detail), "%s answered", uf_etcd_endpoint(e));
    } else {
        snprintf(h->detail, sizeof(h->detail), "%s", ucache_strerror(status));
    }
    uf_etcd_destroy(own);
    return status;
}

const uf_source_ops_t uf_source_etcd = {
    .prefix    = "etcd",   /* etcd:// and etcds:// */
    .open      = uf_esrc_open,
    .close     = uf_esrc_close,
    .epoch     = uf_esrc_epoch,
    .scan      = uf_esrc_scan,
    .join      = uf_esrc_join,
    .heartbeat = uf_esrc_heartbeat,
    .leave     = uf_esrc_leave,
    .slots     = uf_esrc_slots,
    .slot_bytes = uf_esrc_slot_bytes,
    .health    = uf_esrc_health,
    .listens   = true,
    .global_epochs = true,
    .publishes = true,
};
