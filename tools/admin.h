/*
 * admin.h - what the admin commands share (tools/admin.c): their options,
 * the context they open and the node lists they ask for.
 */
#ifndef UCACHE_TOOLS_ADMIN_H
#define UCACHE_TOOLS_ADMIN_H

#include "ucache.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ad_node {
    ucache_node_info_t info;
    ucache_stats_t     st;
    ucache_status_t    status;   /* of its ADMIN request */
} ad_node_t;

typedef struct ad_opts {
    ucache_params_t p;
    uint64_t        timeout_ns;
    uint64_t        members_ttl_ns; /* UCACHE_MEMBERS_TTL (health: heartbeats) */
    double          watch;       /* seconds between samples, 0: one sample */
    unsigned        count;       /* samples with --watch (0: until killed)  */
    int             json;
    const char     *node;        /* drain: the node named                  */
    int             undo;        /* drain --undo                           */
    unsigned        deep;        /* health --deep[=N]: chunks per node     */
    uint64_t        size;        /* health --size                          */
    unsigned        iters;       /* health --iters                         */
    unsigned        parallel;    /* health --parallel                      */
    int             local;       /* health --local: this host's nodes only  */
    const char     *host;        /* health --host: the host --local means   */
} ad_opts_t;

/* What a command accepts beyond --members, --timeout, --json, --help. */
enum { AD_WATCH = 1, AD_NODE = 2, AD_PROBE = 4 };

/* A node list of the context (ucache_nodes, ucache_nodes_left). */
typedef ucache_status_t (*ad_list_fn_t)(ucache_h ctx, ucache_node_info_t *nodes, size_t cap,
                                        size_t *count_p);

/** All of a node list, or -1 with a message; *info_p freed by the caller. */
int ad_list(ucache_h ctx, const char *cmd, ad_list_fn_t list,
            ucache_node_info_t **info_p, size_t *n_p);

/** The view's nodes (ad_list of ucache_nodes). */
int ad_nodes(ucache_h ctx, const char *cmd, ucache_node_info_t **info_p, size_t *n_p);

/**
 * Parse the command line (--help prints @p usage) and open a reader
 * context: -1 to go on, else the exit code (@p fail_rc if the members
 * source cannot be reached).
 */
int ad_begin(int argc, char **argv, const char *cmd, unsigned accept,
             const char *usage, int fail_rc, ad_opts_t *o, ucache_h *ctx_p);

#endif
