/*
 * auth.c - signing and checking transport requests (auth.h).
 */
#include "auth.h"
#include "util/log.h"
#include "util/time.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UT_AUTH_BUCKETS  4096
#define UT_AUTH_SENDERS  65536     /* senders remembered within the window */
#define UT_AUTH_WINBITS  256       /* late arrivals a sender may have      */
#define UT_AUTH_HDR_MAX  256

/* What a receiver remembers of one sender: the sequence numbers it saw. */
typedef struct ut_sender {
    struct ut_sender *next;
    uint64_t uuid;
    uint64_t seen_ns;                     /* monotonic, last accepted   */
    uint64_t max_seq;
    uint64_t win[UT_AUTH_WINBITS / 64];   /* bit d: max_seq - d was seen */
} ut_sender_t;

struct ut_auth {
    uc_mac_t        *cluster, *admin;     /* NULL: that key is not held */
    uint64_t         window_ns;
    uint64_t         seq;
    ut_sender_t     *buckets[UT_AUTH_BUCKETS];
    unsigned         nsenders;
    _Atomic uint64_t failures;
    uint64_t         logged_ns, unlogged;
};

static uint64_t ut_realtime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * UC_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static ucache_status_t ut_auth_key(const char *path, uc_mac_t **mac_p)
{
    ucache_status_t status;
    uc_key_t key;

    if (path[0] == '\0') {
        return UCACHE_OK;
    }
    status = uc_key_load(path, &key);
    if (status == UCACHE_OK) {
        status = uc_mac_create(&key, mac_p);
    }
    memset(&key, 0, sizeof(key));
    return status;
}

ucache_status_t ut_auth_create(const ut_config_t *cfg, ut_auth_t **auth_p)
{
    ut_auth_t *auth = calloc(1, sizeof(*auth));
    ucache_status_t status;

    if (auth == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    auth->window_ns = cfg->auth_window_ns;
    status = ut_auth_key(cfg->cluster_key_file, &auth->cluster);
    if (status == UCACHE_OK) {
        status = ut_auth_key(cfg->admin_key_file, &auth->admin);
    }
    if (status != UCACHE_OK) {
        ut_auth_destroy(auth);
        return status;
    }
    *auth_p = auth;
    return UCACHE_OK;
}

void ut_auth_destroy(ut_auth_t *auth)
{
    ut_sender_t *s, *next;
    unsigned i;

    if (auth == NULL) {
        return;
    }
    for (i = 0; i < UT_AUTH_BUCKETS; i++) {
        for (s = auth->buckets[i]; s != NULL; s = next) {
            next = s->next;
            free(s);
        }
    }
    uc_mac_destroy(auth->cluster);
    uc_mac_destroy(auth->admin);
    free(auth);
}

bool ut_auth_keyed(const ut_auth_t *auth)
{
    return (auth->cluster != NULL) || (auth->admin != NULL);
}

uint64_t ut_auth_failures(const ut_auth_t *auth)
{
    return atomic_load_explicit(&auth->failures, memory_order_relaxed);
}

/* The MAC of a header (its MAC field taken as zero) and payload. */
static ucache_status_t ut_auth_mac(uc_mac_t *mac, const void *hdr, size_t hdr_len,
                                   size_t tag_off, const void *payload, size_t len,
                                   uint8_t out[UC_MAC_LEN])
{
    uint8_t copy[UT_AUTH_HDR_MAX];
    size_t mac_off = tag_off + offsetof(ut_auth_tag_t, mac);

    if ((hdr_len > sizeof(copy)) || (tag_off + sizeof(ut_auth_tag_t) > hdr_len)) {
        return UCACHE_ERR_INVALID;
    }
    memcpy(copy, hdr, hdr_len);
    memset(copy + mac_off, 0, UC_MAC_LEN);
    return uc_mac_compute(mac, copy, hdr_len, payload, len, out);
}

void ut_auth_sign(ut_auth_t *auth, void *hdr, size_t hdr_len, size_t tag_off,
                  uint64_t to, const void *payload, size_t len)
{
    ut_auth_tag_t *tag = (ut_auth_tag_t *)((uint8_t *)hdr + tag_off);
    uc_mac_t *mac = (auth->admin != NULL) ? auth->admin : auth->cluster;

    memset(tag, 0, sizeof(*tag));
    tag->to     = to;
    tag->ts_ns  = ut_realtime_ns();
    tag->seq    = ++auth->seq;
    tag->key_id = (mac == NULL) ? UT_KEY_NONE :
                  (mac == auth->admin) ? UT_KEY_ADMIN : UT_KEY_CLUSTER;
    if ((mac != NULL) &&
        (ut_auth_mac(mac, hdr, hdr_len, tag_off, payload, len, tag->mac) != UCACHE_OK)) {
        tag->key_id = UT_KEY_NONE;   /* unsigned: the receiver refuses it */
    }
}

static ut_sender_t *ut_sender_get(ut_auth_t *auth, uint64_t uuid, uint64_t now)
{
    ut_sender_t **pp, *s;
    unsigned i;

    for (s = auth->buckets[uuid % UT_AUTH_BUCKETS]; s != NULL; s = s->next) {
        if (s->uuid == uuid) {
            return s;
        }
    }
    if (auth->nsenders >= UT_AUTH_SENDERS) {
        /* forget the senders quiet for two windows: their old messages are
         * refused by time anyway */
        for (i = 0; i < UT_AUTH_BUCKETS; i++) {
            for (pp = &auth->buckets[i]; *pp != NULL;) {
                s = *pp;
                if (now - s->seen_ns > 2 * auth->window_ns) {
                    *pp = s->next;
                    free(s);
                    auth->nsenders--;
                } else {
                    pp = &s->next;
                }
            }
        }
        if (auth->nsenders >= UT_AUTH_SENDERS) {
            return NULL;
        }
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->uuid = uuid;
    s->next = auth->buckets[uuid % UT_AUTH_BUCKETS];
    auth->buckets[uuid % UT_AUTH_BUCKETS] = s;
    auth->nsenders++;
    return s;
}

/* Record @p seq from @p s; false if it was seen or is too old to tell. */
static bool ut_sender_accept(ut_sender_t *s, uint64_t seq)
{
    uint64_t d, shift;
    unsigned w;

    if (seq == 0) {
        return false;         /* senders count from 1: 0 is no one's */
    }
    if ((s->max_seq == 0) || (seq > s->max_seq)) {
        shift = (s->max_seq == 0) ? UT_AUTH_WINBITS : seq - s->max_seq;
        if (shift >= UT_AUTH_WINBITS) {
            memset(s->win, 0, sizeof(s->win));
        } else {
            for (; shift >= 64; shift -= 64) {
                memmove(&s->win[1], &s->win[0], sizeof(s->win) - sizeof(s->win[0]));
                s->win[0] = 0;
            }
            for (w = UT_AUTH_WINBITS / 64 - 1; (shift > 0) && (w > 0); w--) {
                s->win[w] = (s->win[w] << shift) | (s->win[w - 1] >> (64 - shift));
            }
            s->win[0] <<= shift;
        }
        s->max_seq = seq;
        s->win[0] |= 1;
        return true;
    }
    d = s->max_seq - seq;
    if ((d >= UT_AUTH_WINBITS) || (s->win[d / 64] & (1ull << (d % 64)))) {
        return false;
    }
    s->win[d / 64] |= 1ull << (d % 64);
    return true;
}

static ucache_status_t ut_auth_refuse(ut_auth_t *auth, const char *why, uint64_t from)
{
    uint64_t now = uc_time_ns();

    atomic_fetch_add_explicit(&auth->failures, 1, memory_order_relaxed);
    if (now - auth->logged_ns >= UC_NSEC_PER_SEC) {
        UC_WARN("refused a request from context %016llx: %s (%llu more refused since the "
                "last such line)", (unsigned long long)from, why,
                (unsigned long long)auth->unlogged);
        auth->logged_ns = now;
        auth->unlogged  = 0;
    } else {
        auth->unlogged++;
    }
    return UCACHE_ERR_AUTH;
}

ucache_status_t ut_auth_check(ut_auth_t *auth, const void *hdr, size_t hdr_len,
                              size_t tag_off, uint64_t from, uint64_t self, bool any_to,
                              const void *payload, size_t len, ut_role_t *role_p)
{
    uint8_t want[UC_MAC_LEN];
    ut_auth_tag_t tag;
    uint64_t now, skew;
    ut_sender_t *s;
    uc_mac_t *mac;

    if (!ut_auth_keyed(auth)) {
        *role_p = UT_ROLE_ADMIN;
        return UCACHE_OK;
    }
    if (tag_off + sizeof(tag) > hdr_len) {
        return ut_auth_refuse(auth, "no signature", from);
    }
    if ((payload == NULL) && (len > 0)) {
        return ut_auth_refuse(auth, "its payload came by rendezvous, unchecked", from);
    }
    memcpy(&tag, (const uint8_t *)hdr + tag_off, sizeof(tag));
    mac = (tag.key_id == UT_KEY_CLUSTER) ? auth->cluster :
          (tag.key_id == UT_KEY_ADMIN) ? auth->admin : NULL;
    if (tag.key_id == UT_KEY_NONE) {
        return ut_auth_refuse(auth, "not signed (no UCACHE_CLUSTER_KEY_FILE?)", from);
    }
    if (mac == NULL) {
        return ut_auth_refuse(auth, (tag.key_id == UT_KEY_ADMIN) ?
                              "signed with the admin key, which this node does not hold" :
                              "signed with an unknown key", from);
    }
    if ((ut_auth_mac(mac, hdr, hdr_len, tag_off, payload, len, want) != UCACHE_OK) ||
        !uc_mac_equal(want, tag.mac)) {
        return ut_auth_refuse(auth, "bad signature (another fabric's key?)", from);
    }
    if ((tag.to != self) && !(any_to && (tag.to == 0))) {
        return ut_auth_refuse(auth, "addressed to another node", from);
    }
    now  = ut_realtime_ns();
    skew = (now > tag.ts_ns) ? now - tag.ts_ns : tag.ts_ns - now;
    if (skew > auth->window_ns) {
        return ut_auth_refuse(auth, "timestamp outside UCACHE_AUTH_WINDOW (a replay, or "
                              "clocks apart)", from);
    }
    s = ut_sender_get(auth, from, uc_time_ns());
    if (s == NULL) {
        return ut_auth_refuse(auth, "too many senders within the window", from);
    }
    if (!ut_sender_accept(s, tag.seq)) {
        return ut_auth_refuse(auth, "replayed (its sequence number was seen)", from);
    }
    s->seen_ns = uc_time_ns();
    *role_p = (tag.key_id == UT_KEY_ADMIN) ? UT_ROLE_ADMIN : UT_ROLE_READER;
    return UCACHE_OK;
}
