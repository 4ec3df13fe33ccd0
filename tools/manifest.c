/*
 * manifest.c - `ucache manifest PREFIX... [--output FILE]`: a dataset
 * manifest (every object under the prefixes, with the size and version it
 * has at its origin now) that jobs pin with UCACHE_MANIFEST, so their
 * readers never ask the origin about the dataset (docs/cli.md).
 */
#include "tools/commands.h"
#include "tools/stats.h"
#include "ucache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_manifest(int argc, char **argv)
{
    static const uc_opt_t opts[] = {
        {"output", 'o', UC_OPT_STR},
        {"members", 'M', UC_OPT_STR},
        {"stats", 's', UC_OPT_FLAG},
        {"help", 'h', UC_OPT_FLAG},
        {NULL, 0, UC_OPT_FLAG}
    };
    ucache_params_t p = { .field_mask = 0 };
    const char *output = NULL;
    char tmp[4096];
    ucache_status_t status;
    uc_optparse_t op;
    uint64_t objects = 0;
    ucache_stats_t st;
    uc_optval_t ov;
    int c, stats = 0;
    ucache_h ctx;
    FILE *out;

    if ((c = cmd_opts(&op, argc, argv, "manifest", opts)) >= 0) {
        return c;
    }
    while ((c = cmd_opt_next(&op, "manifest", &ov, NULL)) > 0) {
        switch (c) {
        case 'o':
            output = ov.s;
            break;
        case 'M':
            p.members = ov.s;
            p.field_mask |= UCACHE_PARAM_FIELD_MEMBERS;
            break;
        case 's':
            stats = 1;
            break;
        case 'h':
            printf("usage: ucache manifest PREFIX... [--output FILE] [--members SRC] [--stats]\n"
                   "Lists every object under the prefixes at its origin and writes a\n"
                   "manifest - URI, size, version, ETag a line - to stdout or FILE\n"
                   "(written whole, then renamed into place). A job that sets\n"
                   "UCACHE_MANIFEST=FILE reads those versions without asking the origin;\n"
                   "ucache read/warmup/pin --manifest FILE take it too.\n");
            return 0;
        }
    }
    if (c < 0) {
        return 2;
    }
    if (op.optind >= argc) {
        fprintf(stderr, "usage: ucache manifest PREFIX... [--output FILE]\n");
        return 2;
    }
    if ((output != NULL) &&
        (snprintf(tmp, sizeof(tmp), "%s.tmp", output) >= (int)sizeof(tmp))) {
        fprintf(stderr, "ucache manifest: the output path is too long\n");
        return 2;
    }
    out = (output != NULL) ? fopen(tmp, "w") : stdout;
    if (out == NULL) {
        fprintf(stderr, "ucache manifest: cannot write %s: %m\n", tmp);
        return 1;
    }
    status = ucache_init(&p, &ctx);
    if (status == UCACHE_OK) {
        status = ucache_manifest_write(ctx, (const char *const *)argv + op.optind,
                                       (unsigned)(argc - op.optind), out, &objects);
        if (stats && (ucache_stats_get(ctx, &st) == UCACHE_OK)) {
            tool_stats_json(stderr, "ucache manifest", &st);
        }
        ucache_finalize(ctx);
    }
    if ((output != NULL) && ((fclose(out) != 0) && (status == UCACHE_OK))) {
        status = UCACHE_ERR_IO;
    }
    if ((output != NULL) && (status == UCACHE_OK) && (rename(tmp, output) != 0)) {
        fprintf(stderr, "ucache manifest: cannot rename %s to %s: %m\n", tmp, output);
        return 1;
    }
    if (status != UCACHE_OK) {
        if (output != NULL) {
            remove(tmp);
        }
        fprintf(stderr, "ucache manifest: %s\n", ucache_strerror(status));
        return 1;
    }
    fprintf(stderr, "ucache manifest: %llu objects\n", (unsigned long long)objects);
    return 0;
}
