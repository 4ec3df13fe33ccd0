/*
 * stats.h - one JSON line of a context's counters, shared by ucached
 * (SIGUSR1, exit) and the ucache CLI (--stats).
 */
#ifndef UCACHE_TOOLS_STATS_H
#define UCACHE_TOOLS_STATS_H

#include "ucache.h"

#include <stdio.h>

void tool_stats_json(FILE *out, const char *who, const ucache_stats_t *s);

#endif
