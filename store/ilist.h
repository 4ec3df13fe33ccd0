/*
 * ilist.h - intrusive doubly linked lists over arrays, linked by index:
 * the eviction queues (evict.c) and the namespaces' chunk lists (store.c).
 * An element embeds a us_link_t; a list is passed the address of element
 * 0's link and the element size, so one element can sit in several lists.
 * Items are pushed at the head and aged out from the tail.
 */
#ifndef US_ILIST_H
#define US_ILIST_H

#include <stddef.h>
#include <stdint.h>

#define US_ILIST_NONE UINT32_MAX

typedef struct us_link {
    uint32_t prev;            /* towards the tail */
    uint32_t next;            /* towards the head */
} us_link_t;

typedef struct us_ilist {
    uint32_t head, tail;
} us_ilist_t;

typedef struct us_ilist_array {
    char   *link0;            /* address of element 0's us_link_t */
    size_t  stride;           /* element size */
} us_ilist_array_t;

static inline void us_ilist_init(us_ilist_t *l)
{
    l->head = l->tail = US_ILIST_NONE;
}

static inline us_link_t *us_ilist_link(const us_ilist_array_t *a, uint32_t i)
{
    return (us_link_t *)(a->link0 + (size_t)i * a->stride);
}

static inline void us_ilist_push(us_ilist_t *l, const us_ilist_array_t *a, uint32_t i)
{
    us_link_t *e = us_ilist_link(a, i);

    e->prev = l->head;
    e->next = US_ILIST_NONE;
    if (l->head != US_ILIST_NONE) {
        us_ilist_link(a, l->head)->next = i;
    } else {
        l->tail = i;
    }
    l->head = i;
}

static inline void us_ilist_unlink(us_ilist_t *l, const us_ilist_array_t *a, uint32_t i)
{
    us_link_t *e = us_ilist_link(a, i);

    if (e->prev != US_ILIST_NONE) {
        us_ilist_link(a, e->prev)->next = e->next;
    } else {
        l->tail = e->next;
    }
    if (e->next != US_ILIST_NONE) {
        us_ilist_link(a, e->next)->prev = e->prev;
    } else {
        l->head = e->prev;
    }
}

#endif
