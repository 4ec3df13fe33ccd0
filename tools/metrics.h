/*
 * metrics.h - ucached's Prometheus endpoint (metrics.c): GET /metrics on
 * ADDR:PORT from a libmicrohttpd thread, the node's counters in the text
 * exposition format.
 */
#ifndef UCACHE_TOOLS_METRICS_H
#define UCACHE_TOOLS_METRICS_H

#include "ucache.h"

#include <stdio.h>

struct tool_metrics;

/** Serve /metrics for @p ctx on @p addr (IPv4) : @p port; NULL (and a
 *  message) if it cannot. */
struct tool_metrics *tool_metrics_start(ucache_h ctx, const char *addr, unsigned port);

void tool_metrics_stop(struct tool_metrics *m);

/** @p s in the Prometheus text format into @p out; 0 or -1. */
int tool_metrics_text(FILE *out, const ucache_stats_t *s);

#endif
