/*
 * ucache.c - the admin CLI.  Subcommands in this build: cat, config,
 * version.  The admin subcommands (status, health, stat, devices, warmup,
 * ...) arrive with the operations issue; asking for one says so.
 * Exit codes: 0 ok, 1 the command failed, 2 bad command line.
 */
#include "ucache.h"
#include "tools/stats.h"
#include "util/config.h"

#include <getopt.h>
#include <stdlib.h>
#include <unistd.h>

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
        "usage: ucache COMMAND [options]\n"
        "\n"
        "commands:\n"
        "  cat URI [--offset N] [--length N] [--members SRC] [--stats]\n"
        "                                  write the object's bytes, read through the\n"
        "                                  cache, to stdout (file:///path URIs)\n"
        "  config [--json] [--help-text]   every UCACHE_* variable: value, default, help\n"
        "  version                         library version\n"
        "  help                            this text\n"
        "\n"
        "Coming with the operations issue: status, health, stat, devices, warmup, pin,\n"
        "evict, drain.\n");
}

static int cmd_config(int argc, char **argv)
{
    unsigned flags = 0;
    int i;

    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            flags |= UCACHE_CONFIG_PRINT_JSON;
        } else if (strcmp(argv[i], "--help-text") == 0) {
            flags |= UCACHE_CONFIG_PRINT_HELP;
        } else if ((strcmp(argv[i], "--help") == 0) || (strcmp(argv[i], "-h") == 0)) {
            printf("usage: ucache config [--json] [--help-text]\n"
                   "Prints every UCACHE_* variable with its value and default; an\n"
                   "invalid value in the environment is reported and exits 1.\n");
            return 0;
        } else {
            fprintf(stderr, "ucache config: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    return (ucache_config_print(stdout, flags) == UCACHE_OK) ? 0 : 1;
}

/* Write all of @p len bytes (stdout may be a pipe). */
static int write_all(const char *p, size_t len)
{
    ssize_t n;

    while (len > 0) {
        n = write(STDOUT_FILENO, p, len);
        if (n < 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int cmd_cat(int argc, char **argv)
{
    static const struct option opts[] = {
        {"offset", required_argument, NULL, 'o'},
        {"length", required_argument, NULL, 'n'},
        {"members", required_argument, NULL, 'M'},
        {"stats", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}
    };
    ucache_params_t p = { .field_mask = 0 };
    uint64_t offset = 0, length = UINT64_MAX, v;
    size_t bufsize = 8u << 20, want, got;
    ucache_status_t status = UCACHE_OK;
    int c, stats = 0, rc = 0;
    ucache_stats_t st;
    const char *uri;
    ucache_h ctx;
    char *buf;

    optind = 2;
    while ((c = getopt_long(argc, argv, "o:n:M:sh", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
        case 'n':
            if (uc_parse_size(optarg, &v) != UCACHE_OK) {
                fprintf(stderr, "ucache cat: bad --%s '%s'\n",
                        (c == 'o') ? "offset" : "length", optarg);
                return 2;
            }
            *((c == 'o') ? &offset : &length) = v;
            break;
        case 'M':
            p.members = optarg;
            p.field_mask |= UCACHE_PARAM_FIELD_MEMBERS;
            break;
        case 's':
            stats = 1;
            break;
        case 'h':
            printf("usage: ucache cat URI [--offset N] [--length N] [--members SRC] "
                   "[--stats]\n"
                   "Writes bytes [offset, offset+length) of the object (to its end by\n"
                   "default) to stdout, read through the cache; --stats prints this\n"
                   "reader's counters to stderr as JSON.\n");
            return 0;
        default:
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: ucache cat URI [--offset N] [--length N]\n");
        return 2;
    }
    uri = argv[optind];
    buf = malloc(bufsize);
    if (buf == NULL) {
        return 1;
    }
    status = ucache_init(&p, &ctx);
    if (status != UCACHE_OK) {
        fprintf(stderr, "ucache cat: %s\n", ucache_strerror(status));
        free(buf);
        return 1;
    }
    while (length > 0) {
        want = (length < bufsize) ? (size_t)length : bufsize;
        status = ucache_read(ctx, uri, offset, want, buf, &got);
        if (status != UCACHE_OK) {
            fprintf(stderr, "ucache cat: %s at offset %llu: %s\n", uri,
                    (unsigned long long)offset, ucache_strerror(status));
            rc = 1;
            break;
        }
        if (write_all(buf, got) != 0) {
            fprintf(stderr, "ucache cat: write: %m\n");
            rc = 1;
            break;
        }
        offset += got;
        length -= got;
        if (got < want) {
            break; /* end of the object */
        }
    }
    if (stats && (ucache_stats_get(ctx, &st) == UCACHE_OK)) {
        tool_stats_json(stderr, "ucache cat", &st);
    }
    ucache_finalize(ctx);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    static const char *const later[] = {
        "status", "health", "stat", "devices", "warmup", "pin", "evict",
        "drain", NULL
    };
    int i;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "config") == 0) {
        return cmd_config(argc, argv);
    }
    if (strcmp(argv[1], "cat") == 0) {
        return cmd_cat(argc, argv);
    }
    if ((strcmp(argv[1], "version") == 0) || (strcmp(argv[1], "--version") == 0)) {
        printf("ucache %s\n", UCACHE_VERSION_STRING);
        return 0;
    }
    for (i = 0; later[i] != NULL; i++) {
        if (strcmp(argv[1], later[i]) == 0) {
            fprintf(stderr, "ucache %s: comes with the operations issue [6/6]; not in "
                    "this build\n", argv[1]);
            return 1;
        }
    }
    fprintf(stderr, "ucache: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
