/*
 * drain.c - `ucache drain NODE [--undo]`: take a node out of service (it
 * fills no new chunks - readers go to the next owner or the origin - but
 * serves the ones it holds, and leaves a dir: membership), and back.
 */
#include "tools/admin.h"
#include "tools/commands.h"
#include "tools/dataset.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Naming a node                                                             */
/* ------------------------------------------------------------------------ */

/* Does @p spec name node @p d: its id or a prefix of it (4 hex digits at
 * least), HOST:PID or HOST:PORT? */
static int ad_names(const ucache_node_info_t *d, const char *spec)
{
    char id[17], hp[96];
    size_t len = strlen(spec);

    snprintf(id, sizeof(id), "%016" PRIx64, d->id);
    if ((len >= 4) && (len <= 16) && (strncasecmp(id, spec, len) == 0)) {
        return 1;
    }
    snprintf(hp, sizeof(hp), "%s:%u", d->host, d->pid);
    if ((d->pid != 0) && (strcmp(hp, spec) == 0)) {
        return 1;
    }
    snprintf(hp, sizeof(hp), "%s:%u", d->host, d->port);
    return (d->port != 0) && (strcmp(hp, spec) == 0);
}

/* The one node @p spec names, or -1 with a message (none, or several). */
static int ad_find(ucache_h ctx, const char *cmd, const char *spec, ucache_node_info_t *out)
{
    ucache_node_info_t *info;
    size_t n, i, found = 0;

    if (ad_nodes(ctx, cmd, &info, &n) != 0) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (ad_names(&info[i], spec)) {
            *out = info[i];
            found++;
        }
    }
    free(info);
    if (found != 1) {
        fprintf(stderr, "ucache %s: %s node '%s' in the view of %zu nodes (name one by its "
                "id, an id prefix of 4+ hex digits, HOST:PID or HOST:PORT; ucache status "
                "lists them)\n", cmd, (found == 0) ? "no" : "more than one", spec, n);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* ucache drain                                                              */
/* ------------------------------------------------------------------------ */

int cmd_drain(int argc, char **argv)
{
    ucache_node_info_t node, *info = NULL;
    char name[96];
    ucache_status_t status;
    ucache_stats_t st;
    uint64_t t_end;
    size_t n = 0, i;
    int rc, in_view = 1;
    ucache_h ctx;
    ad_opts_t o;

    rc = ad_begin(argc, argv, "drain", AD_NODE,
                  "usage: ucache drain NODE [--undo] [--members SRC] [--timeout T] [--json]\n"
                   "Takes NODE (an id, an id prefix, HOST:PID or HOST:PORT) out of service:\n"
                   "it fills no new chunks (readers go to the next owner or the origin)\n"
                   "but still serves the ones it holds, and on a dir: source it leaves the\n"
                   "membership, so every view stops placing chunks on it; then it can be\n"
                   "stopped.  Waits up to --timeout for the view to drop it.  --undo puts\n"
                   "it back.  Exit 0 done, 1 no such node or it did not answer.\n",
                  1, &o, &ctx);
    if (rc >= 0) {
        return rc;
    }
    if (ad_find(ctx, "drain", o.node, &node) != 0) {
        if (o.undo) {
            fprintf(stderr, "ucache drain: a node drained from a source nodes join (dir:) "
                    "has left the view; restart its ucached to bring it back\n");
        }
        ucache_finalize(ctx);
        return 1;
    }
    snprintf(name, sizeof(name), "%s:%u", node.host, node.pid ? node.pid : node.port);
    status = ucache_node_drain(ctx, node.id, !o.undo, o.timeout_ns, &st);
    if ((status == UCACHE_OK) && (st.draining != (uint64_t)!o.undo)) {
        status = UCACHE_ERR_UNSUPPORTED; /* a reader-only node, or an old one */
    }
    if (status != UCACHE_OK) {
        fprintf(stderr, "ucache drain: node %016" PRIx64 " (%s): %s\n", node.id, name,
                ucache_strerror(status));
        ucache_finalize(ctx);
        return 1;
    }
    /* Draining on a source nodes join: wait for this process's view to
     * drop it (it polls the source); a static list keeps it listed. */
    t_end = (uint64_t)(ds_now() * 1e9) + o.timeout_ns;
    while (!o.undo && in_view && ((uint64_t)(ds_now() * 1e9) < t_end)) {
        usleep(100000);
        if (ad_nodes(ctx, "drain", &info, &n) != 0) {
            break;
        }
        for (in_view = 0, i = 0; i < n; i++) {
            in_view |= (info[i].id == node.id);
        }
        free(info);
    }
    if (o.json) {
        printf("{\"node\":\"%016" PRIx64 "\",\"host\":\"%s\",\"pid\":%u,"
               "\"draining\":%s,\"in_view\":%s,\"chunks\":%" PRIu64 ","
               "\"pinned_bytes\":%" PRIu64 "}\n", node.id, node.host, node.pid,
               o.undo ? "false" : "true", in_view ? "true" : "false", st.chunks_cached,
               st.bytes_pinned);
    } else if (o.undo) {
        printf("node %016" PRIx64 " (%s) is back in service\n", node.id, name);
    } else {
        printf("node %016" PRIx64 " (%s) drained: it fills no new chunks (%" PRIu64
               " cached, still served); %s\n", node.id, name, st.chunks_cached, in_view ?
               "it is still in the view (a static list: remove its line to move its "
               "chunks, or stop it)" : "it left the view: it can be stopped");
    }
    ucache_finalize(ctx);
    return 0;
}
