/*
 * ucx_guard.h - the guard against three aborts of UCX 1.13.1 (ucx_guard.c).
 */
#ifndef UCACHE_TRANSPORT_UCX_GUARD_H
#define UCACHE_TRANSPORT_UCX_GUARD_H

#include <stdbool.h>
#include <stdint.h>

/** Whether the guard recognised this UCX build and is on. */
bool ut_ucx_guard_active(void);

/** Wireup messages it let UCX free instead of aborting, process-wide. */
uint64_t ut_ucx_guard_count(void);

/** Stale listener write events it dropped instead of aborting, process-wide. */
uint64_t ut_ucx_guard_stale_events(void);

/** Zero-copy sends it kept from being completed twice, process-wide. */
uint64_t ut_ucx_guard_zcopy(void);

#endif
