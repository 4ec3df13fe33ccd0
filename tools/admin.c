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
#include "tools/dataset.h"
#include "util/config.h"

#include <getopt.h>
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
    static const struct option opts[] = {
        {"members", required_argument, NULL, 'M'},
        {"timeout", required_argument, NULL, 'T'},
        {"watch", optional_argument, NULL, 'w'},
        {"count", required_argument, NULL, 'c'},
        {"undo", no_argument, NULL, 'u'},
        {"deep", optional_argument, NULL, 'd'},
        {"size", required_argument, NULL, 's'},
        {"iters", required_argument, NULL, 'i'},
        {"parallel", required_argument, NULL, 'P'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}
    };
    uc_config_t cfg;
    uint64_t v;
    char *end;
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
    optind = 2;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "M:T:jh", opts, NULL)) != -1) {
        if ((((c == 'w') || (c == 'c')) && !(accept & AD_WATCH)) ||
            ((c == 'u') && !(accept & AD_NODE)) ||
            (((c == 'd') || (c == 's') || (c == 'i') || (c == 'P')) && !(accept & AD_PROBE))) {
            c = '?';
        }
        switch (c) {
        case 'M':
            o->p.members = optarg;
            o->p.field_mask |= UCACHE_PARAM_FIELD_MEMBERS;
            break;
        case 'T':
            if ((uc_parse_time(optarg, &v) != UCACHE_OK) || (v == 0)) {
                fprintf(stderr, "ucache %s: bad --timeout '%s'\n", cmd, optarg);
                return 2;
            }
            o->timeout_ns = v;
            break;
        case 'w':
            o->watch = (optarg != NULL) ? strtod(optarg, &end) : 2.0;
            if (((optarg != NULL) && (*end != '\0')) || !(o->watch > 0) ||
                (o->watch > 3600)) {
                fprintf(stderr, "ucache %s: bad --watch '%s'\n", cmd, optarg ? optarg : "");
                return 2;
            }
            break;
        case 'c':
        case 'i':
        case 'P':
        case 'd':
            v = (optarg == NULL) ? 64 : strtoull(optarg, &end, 10);
            if (((optarg != NULL) && ((*end != '\0') || (*optarg == '-'))) || (v == 0) ||
                (v > 100000) || ((c == 'P') && (v > 1024))) {
                fprintf(stderr, "ucache %s: bad --%s '%s'\n", cmd,
                        (c == 'c') ? "count" : (c == 'i') ? "iters" :
                        (c == 'P') ? "parallel" : "deep", optarg ? optarg : "");
                return 2;
            }
            *((c == 'c') ? &o->count : (c == 'i') ? &o->iters : (c == 'P') ? &o->parallel :
              &o->deep) = (unsigned)v;
            break;
        case 's':
            if ((uc_parse_size(optarg, &v) != UCACHE_OK) || (v < 64) || (v > (256u << 20))) {
                fprintf(stderr, "ucache %s: bad --size '%s' (64 .. 256M)\n", cmd, optarg);
                return 2;
            }
            o->size = v;
            break;
        case 'u':
            o->undo = 1;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'h':
            return 1;
        default:
            fprintf(stderr, "ucache %s: unknown or malformed option '%s' (see ucache %s "
                    "--help)\n", cmd, argv[optind - 1], cmd);
            return 2;
        }
    }
    if ((accept & AD_NODE) && (optind < argc)) {
        o->node = argv[optind++];
    }
    if (optind != argc) {
        fprintf(stderr, "ucache %s: unexpected argument '%s'\n", cmd, argv[optind]);
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
