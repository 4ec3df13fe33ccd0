/*
 * ucache.c - the admin CLI: cat, read, config and version here; warmup,
 * pin and evict (warmup.c); status, stat, health and drain (admin.c);
 * devices (devices.c).
 * Exit codes: 0 ok, 1 the command failed, 2 bad command line.
 */
#include "ucache.h"
#include "tools/commands.h"
#include "tools/dataset.h"
#include "tools/stats.h"
#include "util/config.h"
#include "util/opt.h"

#include <fcntl.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

#include <stdio.h>
#include <string.h>

static int cmd_keygen(int argc, char **argv);
static int cmd_config(int argc, char **argv);
static int cmd_cat(int argc, char **argv);
static int cmd_read(int argc, char **argv);
static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

/* One subcommand: its name, its arguments and what it does (one line of
 * help per "\n"), as `ucache help` lists it. */
typedef struct uc_command {
    const char *name;
    const char *args;
    const char *help;
    int       (*run)(int argc, char **argv);
} uc_command_t;

static const uc_command_t uc_commands[] = {
    { "cat", "URI [--offset N] [--length N] [--members SRC] [--stats]",
      "write the object's bytes, read through the\ncache, to stdout (file://, http(s)://, az://,\n"
      "s3://)", cmd_cat },
    { "read", "URI|PREFIX/... [--manifest FILE] [--epochs N] [--depth K] [--verify] [--json]"
      " [--stats]",
      "read a dataset epoch by epoch: throughput,\nhit rate (PREFIX/: every object under it)",
      cmd_read },
    { "warmup", "URI|PREFIX/... [--manifest FILE] [--pin|--unpin] [--parallel N] [--json]",
      "load a dataset into its owners, in parallel", cmd_warmup },
    { "manifest", "PREFIX... [--output FILE]", "write a dataset manifest (sizes and ETags at\n"
      "the origin now) that jobs pin: UCACHE_MANIFEST", cmd_manifest },
    { "status", "[--json]", "the fabric on one screen: view, capacity,\n"
      "hit ratio, origin bytes saved", cmd_status },
    { "stat", "[--watch[=S]] [--count N] [--json]", "every node's counters (and rates)",
      cmd_stat },
    { "health", "[--deep[=N]] [--json]", "probe every node: reachable/suspect/dead,\n"
      "one-sided latency and bandwidth, index check;\nexit 0 healthy, 1 degraded, 2 broken",
      cmd_health },
    { "devices", "[--json]", "RDMA devices and ports (rdma-core), UCX\n"
      "transports usable here", cmd_devices },
    { "drain", "NODE [--undo] [--json]", "take a node out of service (and back)", cmd_drain },
    { "mount", "URI-PREFIX MOUNTPOINT [--members SRC] [--readahead BYTES] [--threads N] "
      "[--foreground] [--allow-other]", "a read-only POSIX view of a prefix (FUSE)", cmd_mount },
    { "pin", "URI|PREFIX/... [--unpin]", "pin a dataset's chunks in their owners", cmd_pin },
    { "evict", "URI|PREFIX/...", "drop a dataset's chunks from every owner", cmd_evict },
    { "keygen", "FILE", "write a new fabric key (cluster or admin) to\nFILE, mode 0600",
      cmd_keygen },
    { "config", "[--json] [--help-text]", "every UCACHE_* variable: value, default, help",
      cmd_config },
    { "version", "[--json]", "library version", cmd_version },
    { "help", "", "this text", cmd_help },
};

#define UC_HELP_COL 34   /* where a command's help starts */

static void usage(FILE *out)
{
    const uc_command_t *c;
    const char *h, *nl;
    int col;
    size_t i;

    fprintf(out, "usage: ucache COMMAND [options]\n\ncommands:\n");
    for (i = 0; i < sizeof(uc_commands) / sizeof(uc_commands[0]); i++) {
        c   = &uc_commands[i];
        col = fprintf(out, "  %s%s%s", c->name, c->args[0] ? " " : "", c->args);
        for (h = c->help; *h != '\0'; h = (*nl != '\0') ? nl + 1 : nl) {
            nl = h + strcspn(h, "\n");
            if (col >= UC_HELP_COL) { /* the arguments took the line */
                fputc('\n', out);
                col = 0;
            }
            fprintf(out, "%*s%.*s\n", UC_HELP_COL - col, "", (int)(nl - h), h);
            col = 0;
        }
    }
    fprintf(out, "\nEvery command takes --help; the fabric commands take --members SRC (else\n"
                 "UCACHE_MEMBERS) and --timeout T.\n");
}

static int cmd_keygen(int argc, char **argv)
{
    ucache_status_t status;

    if ((argc == 3) && (strcmp(argv[2], "--help") == 0)) {
        printf("usage: ucache keygen FILE\n"
               "Write a new fabric key (32 random bytes) to FILE, mode 0600. Give the\n"
               "cluster key to every daemon and reader (UCACHE_CLUSTER_KEY_FILE), the\n"
               "admin key to daemons and admins only (UCACHE_ADMIN_KEY_FILE).\n");
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: ucache keygen FILE\n");
        return 2;
    }
    status = ucache_keygen(argv[2]);
    if (status != UCACHE_OK) {
        fprintf(stderr, "ucache keygen: %s: %s\n", argv[2], ucache_strerror(status));
        return 1;
    }
    return 0;
}

int cmd_opts(uc_optparse_t *op, int argc, char **argv, const char *cmd,
             const uc_opt_t *opts)
{
    char err[256];

    if (uc_opt_init(op, argc, argv, 2, opts, err, sizeof(err)) != 0) {
        fprintf(stderr, "ucache %s: %s\n", cmd, err);
        return 2;
    }
    return -1;
}

int cmd_opt_next(uc_optparse_t *op, const char *cmd, uc_optval_t *v, const uc_opt_t **o_p)
{
    const uc_opt_t *o;
    char err[256];
    int c = uc_opt_next(op, v, (o_p != NULL) ? o_p : &o, err, sizeof(err));

    if (c < 0) {
        fprintf(stderr, "ucache %s: %s (see ucache %s --help)\n", cmd, err, cmd);
    }
    return c;
}

static int cmd_config(int argc, char **argv)
{
    enum { OPT_HELP_TEXT = 256 };
    static const uc_opt_t opts[] = {
        {"json", 'j', UC_OPT_FLAG},
        {"help-text", OPT_HELP_TEXT, UC_OPT_FLAG},
        {"help", 'h', UC_OPT_FLAG},
        {NULL, 0, UC_OPT_FLAG}
    };
    unsigned flags = 0;
    uc_optparse_t op;
    uc_optval_t v;
    int c;

    if ((c = cmd_opts(&op, argc, argv, "config", opts)) >= 0) {
        return c;
    }
    while ((c = cmd_opt_next(&op, "config", &v, NULL)) > 0) {
        if (c == 'j') {
            flags |= UCACHE_CONFIG_PRINT_JSON;
        } else if (c == OPT_HELP_TEXT) {
            flags |= UCACHE_CONFIG_PRINT_HELP;
        } else {
            printf("usage: ucache config [--json] [--help-text]\n"
                   "Prints every UCACHE_* variable with its value and default; an\n"
                   "invalid value in the environment is reported and exits 1.\n");
            return 0;
        }
    }
    if (c < 0) {
        return 2;
    }
    if (op.optind < argc) {
        fprintf(stderr, "ucache config: unexpected argument '%s'\n", argv[op.optind]);
        return 2;
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
    static const uc_opt_t opts[] = {
        {"offset", 'o', UC_OPT_SIZE, 0, 9223372036854775807.0},
        {"length", 'n', UC_OPT_SIZE, 0, 9223372036854775807.0},
        {"members", 'M', UC_OPT_STR},
        {"stats", 's', UC_OPT_FLAG},
        {"help", 'h', UC_OPT_FLAG},
        {NULL, 0, UC_OPT_FLAG}
    };
    uc_optparse_t op;
    uc_optval_t ov;
    ucache_params_t p = { .field_mask = 0 };
    uint64_t offset = 0, length = UINT64_MAX;
    size_t bufsize = 8u << 20, want, got;
    ucache_status_t status = UCACHE_OK;
    int c, stats = 0, rc = 0;
    ucache_stats_t st;
    const char *uri;
    ucache_h ctx;
    char *buf;

    if ((c = cmd_opts(&op, argc, argv, "cat", opts)) >= 0) {
        return c;
    }
    while ((c = cmd_opt_next(&op, "cat", &ov, NULL)) > 0) {
        switch (c) {
        case 'o':
        case 'n':
            *((c == 'o') ? &offset : &length) = ov.u;
            break;
        case 'M':
            p.members = ov.s;
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
        }
    }
    if (c < 0) {
        return 2;
    }
    if (op.optind != argc - 1) {
        fprintf(stderr, "usage: ucache cat URI [--offset N] [--length N]\n");
        return 2;
    }
    uri = argv[op.optind];
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
            fprintf(stderr, "ucache cat: %.*s at offset %llu: %s\n",
                    (int)strcspn(uri, "?#"), uri, /* a SAS token is a secret */
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

/* ------------------------------------------------------------------------ */
/* ucache read: a dataset, epoch by epoch                                    */
/* ------------------------------------------------------------------------ */

/* Compare @p len bytes at @p off of a file:// object with the file. */
static int ds_verify(const ds_file_t *f, uint64_t off, const char *buf, size_t len)
{
    char *want = malloc(len + 1);
    ssize_t n = -1;
    int fd, bad;

    fd = (want != NULL) ? open(f->path, O_RDONLY) : -1;
    if (fd >= 0) {
        n = pread(fd, want, len, (off_t)off);
        close(fd);
    }
    bad = (n != (ssize_t)len) || (memcmp(want, buf, len) != 0);
    free(want);
    return bad;
}

static int cmd_read(int argc, char **argv)
{
    static const uc_opt_t opts[] = {
        {"epochs", 'e', UC_OPT_UINT, 1, 1024},
        {"depth", 'd', UC_OPT_UINT, 1, 1024},
        {"members", 'M', UC_OPT_STR},
        {"verify", 'v', UC_OPT_FLAG},
        {"manifest", 'm', UC_OPT_STR},
        {"json", 'j', UC_OPT_FLAG},
        {"stats", 's', UC_OPT_FLAG},
        {"help", 'h', UC_OPT_FLAG},
        {NULL, 0, UC_OPT_FLAG}
    };
    uc_optparse_t op;
    uc_optval_t ov;
    ucache_params_t p = { .field_mask = 0 };
    const char *manifest = NULL;
    unsigned epochs = 2, depth = 8, nfiles, next, e, i, k, active;
    int json = 0, stats = 0;
    ucache_stats_t s0, s1;
    ucache_read_req_t *reqs;
    uint64_t total = 0, done, wrong = 0, failed = 0;
    char **bufs, line[160];
    ds_file_t *files;
    double t0, t, last;
    int c, verify = 0, tty = isatty(STDERR_FILENO);
    ucache_status_t status;
    size_t bufsize;
    ucache_h ctx;

    if ((c = cmd_opts(&op, argc, argv, "read", opts)) >= 0) {
        return c;
    }
    while ((c = cmd_opt_next(&op, "read", &ov, NULL)) > 0) {
        switch (c) {
        case 'e':
        case 'd':
            *((c == 'e') ? &epochs : &depth) = (unsigned)ov.u;
            break;
        case 'M':
            p.members = ov.s;
            p.field_mask |= UCACHE_PARAM_FIELD_MEMBERS;
            break;
        case 'v':
            verify = 1;
            break;
        case 'm':
            manifest = ov.s;
            break;
        case 'j':
            json = 1;
            break;
        case 's':
            stats = 1;
            break;
        case 'h':
            printf("usage: ucache read URI|PREFIX/... [--manifest FILE] [--epochs N] "
                   "[--depth K] [--verify] [--json] [--stats]\n"
                   "Reads every object through the cache, whole, --epochs times (default\n"
                   "2), K reads in flight (default 8), and prints per epoch the throughput\n"
                   "and where the chunks came from.  A URI ending in '/' (or a file://\n"
                   "directory) is a prefix: every object under it, listed at the origin;\n"
                   "a manifest holds one URI or prefix a line, or is one `ucache manifest`\n"
                   "wrote (its versions pinned).  --verify compares file:// bytes with\n"
                   "the files.  --json: one object per epoch.  --stats: this reader's\n"
                   "counters to stderr as JSON at the end.\n");
            return 0;
        }
    }
    if (c < 0) {
        return 2;
    }
    if ((op.optind >= argc) && (manifest == NULL)) {
        fprintf(stderr, "usage: ucache read URI|PREFIX/... [--manifest FILE] [--epochs N] "
                "[--depth K] [--verify]\n");
        return 2;
    }
    status = ucache_init(&p, &ctx);
    if (status != UCACHE_OK) {
        fprintf(stderr, "ucache read: %s\n", ucache_strerror(status));
        return 1;
    }
    if ((ds_collect(ctx, "ucache read", argc - op.optind, argv + op.optind, manifest, &files,
                    &nfiles) != 0) || (nfiles == 0)) {
        if (nfiles == 0) {
            fprintf(stderr, "ucache read: no objects\n");
        }
        ucache_finalize(ctx);
        return 1;
    }
    for (i = 0; i < nfiles; i++) {
        total += files[i].size;
    }
    bufsize = 8u << 20;
    reqs = calloc(depth, sizeof(*reqs));
    bufs = calloc(depth, sizeof(*bufs));
    for (k = 0; (reqs != NULL) && (bufs != NULL) && (k < depth); k++) {
        bufs[k] = malloc(bufsize);
        if (bufs[k] == NULL) {
            return 1;
        }
        memset(bufs[k], 0xa5, bufsize); /* fault them in before the clock runs (not 0:
                                          * malloc + memset 0 may become calloc) */
    }
    ucache_stats_get(ctx, &s0);
    printf(json ? "{\"objects\":%u,\"mib\":%.1f,\"nodes\":%llu,\"view_epoch\":%llu}\n" :
           "dataset: %u objects, %.1f MiB; fabric: %llu nodes (view epoch %llu)\n",
           nfiles, total / 1048576.0, (unsigned long long)s0.view_nodes,
           (unsigned long long)s0.view_epoch);
    for (e = 1; e <= epochs; e++) {
        ucache_stats_get(ctx, &s0);
        t0 = last = ds_now();
        done = 0;
        next = 0;
        /* one read per object of up to 8 MiB; larger objects in pieces */
        uint64_t *offs = calloc(depth, sizeof(*offs));
        unsigned *fidx = calloc(depth, sizeof(*fidx));
        uint64_t cursor = 0;
        active = 0;
        for (;;) {
            for (k = 0; k < depth; k++) {
                if ((reqs[k].uri == NULL) && (next < nfiles)) {
                    fidx[k] = next;
                    offs[k] = cursor;
                    reqs[k].uri = files[next].uri;
                    reqs[k].offset = cursor;
                    reqs[k].len = bufsize;
                    reqs[k].buf = bufs[k];
                    if (ucache_read_post(ctx, &reqs[k], 1) != UCACHE_OK) {
                        reqs[k].uri = NULL;
                        failed++;
                    } else {
                        active++;
                    }
                    cursor += bufsize;
                    if (cursor >= files[next].size) {
                        next++;
                        cursor = 0;
                    }
                }
            }
            if (active == 0) {
                break;
            }
            for (k = 0; k < depth; k++) {
                if ((reqs[k].uri == NULL) ||
                    (ucache_wait(ctx, &reqs[k], 1, 0) == UCACHE_INPROGRESS)) {
                    continue;
                }
                if (reqs[k].status != UCACHE_OK) {
                    fprintf(stderr, "ucache read: %.*s at %llu: %s\n",
                            (int)strcspn(reqs[k].uri, "?#"), reqs[k].uri,
                            (unsigned long long)offs[k], ucache_strerror(reqs[k].status));
                    failed++;
                } else {
                    done += reqs[k].nread;
                    if (verify && files[fidx[k]].path[0] &&
                        ds_verify(&files[fidx[k]], offs[k], bufs[k], reqs[k].nread)) {
                        wrong++;
                    }
                }
                reqs[k].uri = NULL;
                active--;
            }
            t = ds_now();
            if (t - last > (tty ? 0.1 : 1.0)) {
                snprintf(line, sizeof(line), "  epoch %u: %6.1f / %.1f MiB  %7.1f MiB/s",
                         e, done / 1048576.0, total / 1048576.0,
                         done / 1048576.0 / (t - t0));
                fprintf(stderr, tty ? "\r%s" : "%s\n", line);
                last = t;
            }
            for (k = 0; (k < depth) && (reqs[k].uri == NULL); k++) {
            }
            if ((k < depth) && ((active == depth) || (next >= nfiles))) {
                ucache_wait(ctx, &reqs[k], 1, 50000000); /* sleep until one is done */
            }
        }
        free(offs);
        free(fidx);
        t = ds_now() - t0;
        if (tty) {
            fprintf(stderr, "\r%70s\r", "");
        }
        ucache_stats_get(ctx, &s1);
        uint64_t cr = s1.chunk_reads - s0.chunk_reads, hits = s1.chunk_hits - s0.chunk_hits;
        uint64_t nvme = s1.chunk_nvme - s0.chunk_nvme;
        if (json) {
            printf("{\"epoch\":%u,\"bytes\":%llu,\"seconds\":%.3f,\"mib_per_s\":%.1f,"
                   "\"chunks\":%llu,\"hits\":%llu,\"nvme\":%llu,\"filled\":%llu,"
                   "\"origin_direct\":%llu,\"failed\":%llu,\"verified\":%s,"
                   "\"wrong\":%llu}\n", e,
                   (unsigned long long)done, t, done / 1048576.0 / t, (unsigned long long)cr,
                   (unsigned long long)hits, (unsigned long long)nvme,
                   (unsigned long long)(s1.chunk_misses - s0.chunk_misses - nvme),
                   (unsigned long long)(s1.origin_direct - s0.origin_direct),
                   (unsigned long long)failed, verify ? "true" : "false",
                   (unsigned long long)wrong);
            fflush(stdout);
            continue;
        }
        printf("epoch %u: %.1f MiB in %.2f s = %.1f MiB/s; chunks %llu: %llu hits "
               "(%.0f%%), %llu from owners' NVMe, %llu filled by owners, %llu read from the "
               "origin directly%s\n",
               e, done / 1048576.0, t, done / 1048576.0 / t, (unsigned long long)cr,
               (unsigned long long)hits, cr ? 100.0 * hits / cr : 0.0, (unsigned long long)nvme,
               (unsigned long long)(s1.chunk_misses - s0.chunk_misses - nvme),
               (unsigned long long)(s1.origin_direct - s0.origin_direct),
               verify ? (wrong ? "; WRONG BYTES" : "; bytes verified") : "");
        fflush(stdout);
    }
    if (stats && (ucache_stats_get(ctx, &s1) == UCACHE_OK)) {
        tool_stats_json(stderr, "ucache read", &s1);
    }
    ucache_finalize(ctx);
    for (k = 0; k < depth; k++) {
        free(bufs[k]);
    }
    free(bufs);
    free(reqs);
    free(files);
    return (wrong || failed) ? 1 : 0;
}

static int cmd_help(int argc, char **argv)
{
    (void)argc; (void)argv;
    usage(stdout);
    return 0;
}

static int cmd_version(int argc, char **argv)
{
    if ((argc > 2) && (strcmp(argv[2], "--json") == 0)) {
        printf("{\"version\":\"%s\"}\n", UCACHE_VERSION_STRING);
    } else if ((argc > 2) && ((strcmp(argv[2], "--help") == 0) ||
                              (strcmp(argv[2], "-h") == 0))) {
        printf("usage: ucache version [--json]\nThe library's version.\n");
    } else if (argc > 2) {
        fprintf(stderr, "ucache version: unknown option '%s'\n", argv[2]);
        return 2;
    } else {
        printf("ucache %s\n", UCACHE_VERSION_STRING);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *name;
    size_t i;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
        name = "help";
    } else if (!strcmp(name, "--version")) {
        name = "version";
    }
    for (i = 0; i < sizeof(uc_commands) / sizeof(uc_commands[0]); i++) {
        if (strcmp(name, uc_commands[i].name) == 0) {
            return uc_commands[i].run(argc, argv);
        }
    }
    fprintf(stderr, "ucache: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
