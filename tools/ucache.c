/*
 * ucache.c - the admin CLI.  Subcommands in this build: config, version.
 * The fabric subcommands (status, health, stat, devices, cat, warmup, ...)
 * arrive with the fabric and operations issues; asking for one says so.
 * Exit codes: 0 ok, 1 the command failed, 2 bad command line.
 */
#include "ucache.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
        "usage: ucache COMMAND [options]\n"
        "\n"
        "commands:\n"
        "  config [--json] [--help-text]   every UCACHE_* variable: value, default, help\n"
        "  version                         library version\n"
        "  help                            this text\n"
        "\n"
        "Coming with the fabric: status, health, stat, devices, cat, warmup, pin, evict, drain.\n");
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

int main(int argc, char **argv)
{
    static const char *const later[] = {
        "status", "health", "stat", "devices", "cat", "warmup", "pin", "evict",
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
    if ((strcmp(argv[1], "version") == 0) || (strcmp(argv[1], "--version") == 0)) {
        printf("ucache %s\n", UCACHE_VERSION_STRING);
        return 0;
    }
    for (i = 0; later[i] != NULL; i++) {
        if (strcmp(argv[1], later[i]) == 0) {
            fprintf(stderr, "ucache %s: needs the fabric, which this build does not "
                    "have yet\n", argv[1]);
            return 1;
        }
    }
    fprintf(stderr, "ucache: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
