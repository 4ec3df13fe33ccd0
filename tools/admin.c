/*
 * admin.c - what the fabric's admin commands share (tools/status.c: status
 * and stat; tools/health.c: health; tools/drain.c: drain): their command
 * line (--members, --timeout, --json, --help and each one's own options),
 * the reader context they open, and the node lists they ask for.  They ask
 * each node over the fabric (an ADMIN request) within --timeout; a node
 * that does not answer is shown as unreachable (dead).  --json prints one
 * object per node (and one for the fabric) instead of the tables.
 * Exit codes: status, stat, drain: 0 every node answered (drained), 1 some
 * did not (or the fabric is empty, or no such node); health: 0 healthy,
 * 1 degraded, 2 broken; all: 2 bad command line.
 */
#include "tools/admin.h"
#include "tools/commands.h"
#include "tools/dataset.h"
#include "util/config.h"
#include "util/opt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int ad_list(ucache_h ctx, const char *cmd, ad_list_fn_t list,
            ucache_node_info_t **info_p, size_t *n_p)
{
    ucache_node_info_t *info = NULL;
    size_t n = 0, cap;

    do {
        free(info);
        cap = n + 16;
        info = calloc(cap, sizeof(*info));
        if ((info == NULL) || (list(ctx, info, cap, &n) != UCACHE_OK)) {
            free(info);
            fprintf(stderr, "ucache %s: cannot list the nodes (out of memory?)\n", cmd);
            return -1;
        }
    } while (n > cap);
    *info_p = info;
    *n_p = n;
    return 0;
}

int ad_nodes(ucache_h ctx, const char *cmd, ucache_node_info_t **info_p, size_t *n_p)
{
    return ad_list(ctx, cmd, ucache_nodes, info_p, n_p);
}

static int ad_parse(int argc, char **argv, const char *cmd, unsigned accept, ad_opts_t *o)
{
    static const uc_opt_t opts[] = {
        {"members", 'M', UC_OPT_STR},
        {"timeout", 'T', UC_OPT_TIME, 1, 86400e9},
        {"watch", 'w', UC_OPT_REAL, 0.001, 3600, .optional = 1, .dflt = 2.0},
        {"count", 'c', UC_OPT_UINT, 1, 100000},
        {"undo", 'u', UC_OPT_FLAG},
        {"deep", 'd', UC_OPT_UINT, 1, 100000, .optional = 1, .dflt = 64},
        {"size", 's', UC_OPT_SIZE, 64, 256u << 20},
        {"iters", 'i', UC_OPT_UINT, 1, 100000},
        {"parallel", 'P', UC_OPT_UINT, 1, 1024},
        {"local", 'l', UC_OPT_FLAG},
        {"host", 'H', UC_OPT_STR},
        {"json", 'j', UC_OPT_FLAG},
        {"help", 'h', UC_OPT_FLAG},
        {NULL, 0, UC_OPT_FLAG}
    };
    const uc_opt_t *op_o;
    uc_optparse_t op;
    uc_optval_t v;
    uc_config_t cfg;
    int c;

    memset(o, 0, sizeof(*o));
    /* the deadline of one remote operation, as for every other request */
    o->timeout_ns     = 2000000000ull;
    o->members_ttl_ns = 10000000000ull;
    if (uc_config_load(&cfg) == UCACHE_OK) {
        o->timeout_ns     = cfg.timeout_ns;
        o->members_ttl_ns = cfg.members_ttl_ns;
    }
    o->size       = 1u << 20;
    o->iters      = 32;
    o->parallel   = 32;
    if ((c = cmd_opts(&op, argc, argv, cmd, opts)) >= 0) {
        return c;
    }
    while ((c = cmd_opt_next(&op, cmd, &v, &op_o)) > 0) {
        if ((((c == 'w') || (c == 'c')) && !(accept & AD_WATCH)) ||
            ((c == 'u') && !(accept & AD_NODE)) ||
            (((c == 'd') || (c == 's') || (c == 'i') || (c == 'P') || (c == 'l') ||
              (c == 'H')) && !(accept & AD_PROBE))) {
            fprintf(stderr, "ucache %s: unknown option '--%s' (see ucache %s --help)\n", cmd,
                    op_o->name, cmd);
            return 2;
        }
        switch (c) {
        case 'M':
            o->p.members = v.s;
            o->p.field_mask |= UCACHE_PARAM_FIELD_MEMBERS;
            break;
        case 'T':
            o->timeout_ns = v.u;
            break;
        case 'w':
            o->watch = v.d;
            break;
        case 'c':
        case 'i':
        case 'P':
        case 'd':
            *((c == 'c') ? &o->count : (c == 'i') ? &o->iters : (c == 'P') ? &o->parallel :
              &o->deep) = (unsigned)v.u;
            break;
        case 's':
            o->size = v.u;
            break;
        case 'u':
            o->undo = 1;
            break;
        case 'l':
            o->local = 1;
            break;
        case 'H':
            o->host = v.s;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'h':
            return 1;
        }
    }
    if (c < 0) {
        return 2;
    }
    if ((accept & AD_NODE) && (op.optind < argc)) {
        o->node = argv[op.optind++];
    }
    if (op.optind != argc) {
        fprintf(stderr, "ucache %s: unexpected argument '%s'\n", cmd, argv[op.optind]);
        return 2;
    }
    if ((accept & AD_NODE) && (o->node == NULL)) {
        fprintf(stderr, "ucache %s: which node? (an id or its prefix, HOST:PID or "
                "HOST:PORT; ucache status lists them)\n", cmd);
        return 2;
    }
    return 0;
}

int ad_begin(int argc, char **argv, const char *cmd, unsigned accept,
             const char *usage, int fail_rc, ad_opts_t *o, ucache_h *ctx_p)
{
    int rc = ad_parse(argc, argv, cmd, accept, o);

    if (rc != 0) {
        if (rc == 1) {
            fputs(usage, stdout);
        }
        return (rc == 1) ? 0 : 2;
    }
    if (ucache_init(&o->p, ctx_p) != UCACHE_OK) {
        fprintf(stderr, "ucache %s: cannot reach the members source%s\n", cmd,
                (fail_rc == 2) ? ": BROKEN" : "");
        if (o->json) {
            printf("{\"fabric\":\"%s\",%s\"error\":\"members source unreachable\"}\n",
                   cmd, (fail_rc == 2) ? "\"health\":\"broken\"," : "");
        }
        return fail_rc;
    }
    return -1;
}
