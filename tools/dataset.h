/*
 * dataset.h - what the CLI's dataset commands (read, warmup) share: turning
 * URIs, prefixes and manifests into a sorted list of objects with sizes,
 * and a clock.
 */
#ifndef UCACHE_TOOLS_DATASET_H
#define UCACHE_TOOLS_DATASET_H

#include "ucache.h"

#include <stdint.h>

typedef struct ds_file {
    char     uri[1100];
    char     path[1024];  /* file:// only (for --verify), else "" */
    uint64_t size;
} ds_file_t;

/**
 * The objects named by @p args and by the lines of @p manifest (NULL for
 * none; '#' comments and blank lines skipped): a URI ending in '/' (or a
 * file:// directory) is a prefix whose objects are listed through the
 * fabric's origins, anything else one object.  Duplicates are dropped; the
 * list is sorted by URI.  Errors are printed with @p cmd; returns 0 or -1.
 */
int ds_collect(ucache_h ctx, const char *cmd, int nargs, char **args, const char *manifest,
               ds_file_t **files_p, unsigned *n_p);

/** @p b bytes for people: "1.5 GiB" (into @p out). */
const char *ds_bytes(double b, char *out, size_t cap);

/** Monotonic seconds. */
double ds_now(void);

#endif
