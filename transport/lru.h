/*
 * lru.h - the connected peers of a backend, most recently used first: an
 * intrusive list (a peer embeds a ut_lru_link_t) that each backend walks
 * from the tail for an idle endpoint to close when UCACHE_MAX_EPS is
 * reached.  The caller holds its context's lock.
 */
#ifndef UT_LRU_H
#define UT_LRU_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ut_lru_link {
    struct ut_lru_link *prev, *next;
} ut_lru_link_t;

typedef struct ut_lru {
    ut_lru_link_t *head, *tail;
} ut_lru_t;

/* The object of type @p type that embeds @p link as its member @p member. */
#define UT_LRU_ENTRY(link, type, member) \
    ((type *)(void *)((char *)(link) - offsetof(type, member)))

static inline void ut_lru_unlink(ut_lru_t *lru, ut_lru_link_t *l)
{
    if (l->prev != NULL) {
        l->prev->next = l->next;
    } else {
        lru->head = l->next;
    }
    if (l->next != NULL) {
        l->next->prev = l->prev;
    } else {
        lru->tail = l->prev;
    }
    l->prev = l->next = NULL;
}

static inline void ut_lru_push(ut_lru_t *lru, ut_lru_link_t *l)
{
    l->prev = NULL;
    l->next = lru->head;
    if (lru->head != NULL) {
        lru->head->prev = l;
    } else {
        lru->tail = l;
    }
    lru->head = l;
}

static inline void ut_lru_touch(ut_lru_t *lru, ut_lru_link_t *l)
{
    if (lru->head != l) {
        ut_lru_unlink(lru, l);
        ut_lru_push(lru, l);
    }
}

/* The least recently used entry that @p ok accepts, or NULL. */
static inline ut_lru_link_t *ut_lru_oldest(const ut_lru_t *lru,
                                           bool (*ok)(const ut_lru_link_t *l))
{
    ut_lru_link_t *l;

    for (l = lru->tail; l != NULL; l = l->prev) {
        if (ok(l)) {
            return l;
        }
    }
    return NULL;
}

#endif /* UT_LRU_H */
