/*
 * keymap.h - a small map from a chunk key to one 64-bit value: open
 * addressing, linear probing, deletion by backward shift, doubling at half
 * full.  The store keeps in it the chunks that left the memory tier and
 * are not on NVMe yet (key -> their held block).  Not thread-safe: the
 * owner's lock covers it.
 */
#ifndef US_KEYMAP_H
#define US_KEYMAP_H

#include "layout.h"
#include "util/status.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct us_keymap_ent {
    us_key_t key;
    uint64_t val;
    uint8_t  used;
} us_keymap_ent_t;

typedef struct us_keymap {
    us_keymap_ent_t *ent;
    uint32_t         mask;    /* capacity - 1 (0: no table yet) */
    uint32_t         n;
} us_keymap_t;

void us_keymap_init(us_keymap_t *m);
void us_keymap_cleanup(us_keymap_t *m);

/** Set @p key's value (added, or replaced); UCACHE_ERR_NO_MEMORY if the
 *  table cannot grow (the map is unchanged). */
ucache_status_t us_keymap_put(us_keymap_t *m, const us_key_t *key, uint64_t val);

/** @p key's value in *val_p; false if it has none. */
bool us_keymap_get(const us_keymap_t *m, const us_key_t *key, uint64_t *val_p);

/** Remove @p key; false if it was not there. */
bool us_keymap_del(us_keymap_t *m, const us_key_t *key);

#endif
