/*
 * stats.c - ucache_stats_t as one JSON object per line (stable keys;
 * ucache_stats_format() writes it).
 */
#include "tools/stats.h"

void tool_stats_json(FILE *out, const char *who, const ucache_stats_t *s)
{
    char buf[8192];

    ucache_stats_format(s, who, buf, sizeof(buf));
    fprintf(out, "%s\n", buf);
    fflush(out);
}
