/*
 * keymap.c - see keymap.h.
 */
#include "keymap.h"

#include <stdlib.h>

#define KM_MIN 64u

static inline uint32_t km_home(const us_keymap_t *m, const us_key_t *key)
{
    return (uint32_t)((key->lo ^ (key->hi >> 17) ^ (key->hi << 29)) & m->mask);
}

static inline bool km_same(const us_key_t *a, const us_key_t *b)
{
    return (a->hi == b->hi) && (a->lo == b->lo);
}

void us_keymap_init(us_keymap_t *m)
{
    m->ent  = NULL;
    m->mask = 0;
    m->n    = 0;
}

void us_keymap_cleanup(us_keymap_t *m)
{
    free(m->ent);
    us_keymap_init(m);
}

/* The entry of @p key, or the free one where it would go. */
static us_keymap_ent_t *km_slot(const us_keymap_t *m, const us_key_t *key)
{
    uint32_t i = km_home(m, key);

    while (m->ent[i].used && !km_same(&m->ent[i].key, key)) {
        i = (i + 1) & m->mask;
    }
    return &m->ent[i];
}

static ucache_status_t km_grow(us_keymap_t *m)
{
    uint32_t cap = (m->mask == 0) ? KM_MIN : 2 * (m->mask + 1), i;
    us_keymap_t g = { NULL, cap - 1, 0 };

    if (cap == 0) {
        return UCACHE_ERR_NO_MEMORY;
    }
    g.ent = calloc(cap, sizeof(*g.ent));
    if (g.ent == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    for (i = 0; (m->ent != NULL) && (i <= m->mask); i++) {
        if (m->ent[i].used) {
            *km_slot(&g, &m->ent[i].key) = m->ent[i];
            g.n++;
        }
    }
    free(m->ent);
    *m = g;
    return UCACHE_OK;
}

ucache_status_t us_keymap_put(us_keymap_t *m, const us_key_t *key, uint64_t val)
{
    us_keymap_ent_t *e;

    if ((m->mask == 0) || (2 * (uint64_t)(m->n + 1) > (uint64_t)m->mask + 1)) {
        if (km_grow(m) != UCACHE_OK) {
            return UCACHE_ERR_NO_MEMORY;
        }
    }
    e = km_slot(m, key);
    if (!e->used) {
        e->used = 1;
        e->key  = *key;
        m->n++;
    }
    e->val = val;
    return UCACHE_OK;
}

bool us_keymap_get(const us_keymap_t *m, const us_key_t *key, uint64_t *val_p)
{
    const us_keymap_ent_t *e;

    if (m->n == 0) {
        return false;
    }
    e = km_slot(m, key);
    if (e->used && (val_p != NULL)) {
        *val_p = e->val;
    }
    return e->used;
}

bool us_keymap_del(us_keymap_t *m, const us_key_t *key)
{
    us_keymap_ent_t *e;
    uint32_t i, j, h;

    if (m->n == 0) {
        return false;
    }
    e = km_slot(m, key);
    if (!e->used) {
        return false;
    }
    /* backward shift: pull later entries of the run into the hole when
     * their home does not lie cyclically in (hole, their place] */
    i = (uint32_t)(e - m->ent);
    for (j = (i + 1) & m->mask; m->ent[j].used; j = (j + 1) & m->mask) {
        h = km_home(m, &m->ent[j].key);
        if (((j > i) && ((h <= i) || (h > j))) || ((j < i) && ((h <= i) && (h > j)))) {
            m->ent[i] = m->ent[j];
            i = j;
        }
    }
    m->ent[i].used = 0;
    m->n--;
    return true;
}
