/*
 * options.c - ucperf's command line and its output: the human table and the
 * --json lines (one object per result, stable keys for scripts and CI).
 */
#include "perf/ucperf.h"
#include "util/config.h"

#include <errno.h>
#include <getopt.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdbool.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const ucperf_modes[] = {
    "raw", "hit", "miss", "mixed", "placement", "store", NULL
};

const char *ucperf_mode_name(ucperf_mode_t mode)
{
    return ucperf_modes[mode];
}

void ucperf_usage(FILE *out)
{
    fprintf(out,
        "usage: ucperf MODE [options]\n"
        "\n"
        "modes:\n"
        "  raw        the transport primitive alone: an exporter process serves a\n"
        "             region, this process reads it (mapped copy on one host over\n"
        "             shm, active-message bulk read or one-sided get over tcp)\n"
        "  store      the node store alone: fill an arena of --region bytes with\n"
        "             --size chunks (empty, then evicting), then lookup + verify +\n"
        "             copy through the raw-memory reader path, against memcpy of\n"
        "             the same size from the same arena (--region default 1G)\n"
        "  placement  chunk -> owner placement (DxHash, fabric/place.c) against a\n"
        "             consistent-hash ring with 100 virtual nodes per node: lookup\n"
        "             time, keys moved on a leave/join, max/mean load, memory, at\n"
        "             1k, 10k and 100k nodes (or --nodes N)\n"
        "  hit        reads of cached chunks through libucache-rdma: placement,\n"
        "             index read, chunk read, verification (the dataset, half the\n"
        "             cache by default, is warmed first)\n"
        "  miss       cold reads: every read is a chunk its owner fills from the\n"
        "             origin (each pass over the dataset gives the files new versions)\n"
        "  mixed      a training-like epoch: a dataset (--dataset, default 4/3 of the\n"
        "             cache) read once in shuffled chunk order by --threads readers,\n"
        "             a --hit-ratio share of it warmed first\n"
        "             hit/miss/mixed start --nodes owner processes on this host\n"
        "             (dir: members in a temporary directory) unless --members or\n"
        "             UCACHE_MEMBERS names a fabric; reads are file:// objects of a\n"
        "             known pattern, one chunk (UCACHE_CHUNK_SIZE = --size) each\n"
        "\n"
        "options:\n"
        "  -s, --size BYTES[,BYTES...]  bytes per read (4K, 64K, 1M, 4M ...);\n"
        "                          a list runs each size in turn         [4K]\n"
        "  -n, --iters N           reads to measure                      [10000]\n"
        "  -d, --duration SECONDS  measure for this long instead of --iters\n"
        "  -o, --outstanding K     reads in flight                       [1]\n"
        "  -t, --threads T         reader threads (raw: 1)    [1; mixed: 4]\n"
        "  -T, --transport shm|tcp transport between the processes       [shm]\n"
        "  -p, --path auto|get|am  read primitive off the mapped path    [auto]\n"
        "                          (get turns on UCACHE_EMULATED_RMA, a test mode)\n"
        "  -w, --warmup N          reads before measuring                [200]\n"
        "  -r, --region BYTES      exported region the reads rotate over\n"
        "                          (default: 4 x size x outstanding, 64M .. 1G;\n"
        "                          a region of one read's size stays cache-hot)\n"
        "      --nodes N           placement: one node count      [1k,10k,100k]\n"
        "                          hit/miss/mixed: owner processes (1..16)  [3]\n"
        "      --keys-per-node K   placement: keys counted per node       [10000]\n"
        "      --cache BYTES       hit/miss/mixed: the owners' memory in all\n"
        "                          [256M per owner]\n"
        "      --dataset BYTES     hit/miss/mixed: dataset size [hit: cache/2,\n"
        "                          miss: 64M, mixed: 4/3 of the cache]\n"
        "      --hit-ratio R       mixed: share of the dataset warmed first [0.5]\n"
        "  -M, --members SRC       hit/miss/mixed: use this fabric (dir:, file:)\n"
        "                          instead of starting owners\n"
        "  -j, --json              one JSON object per result line\n"
        "  -c, --compare ucx_perftest\n"
        "                          raw/hit: also run ucx_perftest with the matching\n"
        "                          test, size and transport, and print the ratio\n"
        "      --plot FILE.svg     an SVG of GB/s and p99 against size (use a --size\n"
        "                          list) and each size's latency histogram\n"
        "  -h, --help\n");
}

static int ucperf_fail(char *err, size_t len, const char *what, const char *val)
{
    snprintf(err, len, "%s '%s'", what, val ? val : "");
    return -1;
}

/* A whole decimal number in [min, max] (no sign, no suffix). */
static bool ucperf_uint(const char *s, uint64_t min, uint64_t max, uint64_t *v_p)
{
    char *end;

    if ((*s < '0') || (*s > '9')) {
        return false;
    }
    errno = 0;
    *v_p = strtoull(s, &end, 10);
    return (errno == 0) && (*end == '\0') && (*v_p >= min) && (*v_p <= max);
}

/* A size with K/M/G suffixes in [min, max]. */
static bool ucperf_size(const char *s, uint64_t min, uint64_t max, uint64_t *v_p)
{
    return (uc_parse_size(s, v_p) == UCACHE_OK) && (*v_p >= min) && (*v_p <= max);
}

int ucperf_parse(int argc, char **argv, ucperf_opts_t *o, char *err,
                 size_t err_len, FILE *out)
{
    static const struct option longopts[] = {
        {"size", required_argument, NULL, 's'},
        {"iters", required_argument, NULL, 'n'},
        {"duration", required_argument, NULL, 'd'},
        {"outstanding", required_argument, NULL, 'o'},
        {"threads", required_argument, NULL, 't'},
        {"transport", required_argument, NULL, 'T'},
        {"path", required_argument, NULL, 'p'},
        {"warmup", required_argument, NULL, 'w'},
        {"region", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        {"compare", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"nodes", required_argument, NULL, 'N'},
        {"keys-per-node", required_argument, NULL, 'K'},
        {"cache", required_argument, NULL, 'C'},
        {"dataset", required_argument, NULL, 'D'},
        {"hit-ratio", required_argument, NULL, 'H'},
        {"members", required_argument, NULL, 'M'},
        {"plot", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0}
    };
    char list[256], *tok, *save;
    bool threads_set = false;
    uint64_t v;
    char *end;
    int c, i;

    memset(o, 0, sizeof(*o));
    o->size        = 4096;
    o->iters       = 10000;
    o->outstanding = 1;
    o->threads     = 1;
    o->warmup      = 200;
    o->keys_per_node = 10000;
    o->owners      = 3;
    o->hit_ratio   = 0.5;
    strcpy(o->transport, "shm");
    strcpy(o->path, "auto");

    if ((argc < 2) || (strcmp(argv[1], "-h") == 0) || (strcmp(argv[1], "--help") == 0)) {
        if (argc < 2) {
            snprintf(err, err_len, "no mode given");
            return -1;
        }
        ucperf_usage(out);
        return 1;
    }
    for (i = 0; ucperf_modes[i] != NULL; i++) {
        if (strcmp(argv[1], ucperf_modes[i]) == 0) {
            break;
        }
    }
    if (ucperf_modes[i] == NULL) {
        return ucperf_fail(err, err_len, "unknown mode", argv[1]);
    }
    o->mode = (ucperf_mode_t)i;

    /* getopt over argv[1..] (the mode is its argv[0]); optind 0 makes glibc
     * start afresh even if an earlier parse left it inside an option cluster */
    argc--;
    argv++;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":s:n:d:o:t:T:p:w:r:jc:hN:K:C:D:H:M:P:", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 's':
            snprintf(list, sizeof(list), "%s", optarg);
            o->nsizes = 0;
            for (tok = strtok_r(list, ",", &save); tok != NULL;
                 tok = strtok_r(NULL, ",", &save)) {
                if ((o->nsizes == 16) || !ucperf_size(tok, 1, 1ull << 30, &v)) {
                    return ucperf_fail(err, err_len, "bad --size (1 .. 1G, at most 16)",
                                       optarg);
                }
                o->sizes[o->nsizes++] = v;
            }
            if (o->nsizes == 0) {
                return ucperf_fail(err, err_len, "bad --size", optarg);
            }
            o->size = o->sizes[0];
            break;
        case 'n':
            if (!ucperf_uint(optarg, 1, UINT64_MAX / 4, &v)) {
                return ucperf_fail(err, err_len, "bad --iters", optarg);
            }
            o->iters = v;
            break;
        case 'd':
            o->duration = strtod(optarg, &end);
            if ((*end != '\0') || !(o->duration > 0) || (o->duration > 3600)) {
                return ucperf_fail(err, err_len, "bad --duration (0 .. 3600 s)", optarg);
            }
            o->iters = 0;
            break;
        case 'o':
            if (!ucperf_uint(optarg, 1, 1024, &v)) {
                return ucperf_fail(err, err_len, "bad --outstanding (1 .. 1024)", optarg);
            }
            o->outstanding = (unsigned)v;
            break;
        case 't':
            if (!ucperf_uint(optarg, 1, 256, &v)) {
                return ucperf_fail(err, err_len, "bad --threads (1 .. 256)", optarg);
            }
            o->threads = (unsigned)v;
            threads_set = true;
            break;
        case 'T':
            if (strcmp(optarg, "shm") && strcmp(optarg, "tcp")) {
                return ucperf_fail(err, err_len, "bad --transport (shm|tcp)", optarg);
            }
            strcpy(o->transport, optarg);
            break;
        case 'p':
            if (strcmp(optarg, "auto") && strcmp(optarg, "get") && strcmp(optarg, "am")) {
                return ucperf_fail(err, err_len, "bad --path (auto|get|am)", optarg);
            }
            strcpy(o->path, optarg);
            break;
        case 'w':
            if (!ucperf_uint(optarg, 0, 1000000, &v)) {
                return ucperf_fail(err, err_len, "bad --warmup", optarg);
            }
            o->warmup = (unsigned)v;
            break;
        case 'r':
            if (!ucperf_size(optarg, 4096, 16ull << 30, &v)) {
                return ucperf_fail(err, err_len, "bad --region (4K .. 16G)", optarg);
            }
            o->region = v;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'c':
            if (strcmp(optarg, "ucx_perftest") != 0) {
                return ucperf_fail(err, err_len, "bad --compare (ucx_perftest)", optarg);
            }
            o->compare = "ucx_perftest";
            break;
        case 'N':
            if (!ucperf_uint(optarg, 1, 1000000, &v)) {
                return ucperf_fail(err, err_len, "bad --nodes (1 .. 1000000)", optarg);
            }
            o->nodes  = (uint32_t)v;
            o->owners = (unsigned)((v > 16) ? 0 : v); /* checked below */
            break;
        case 'C':
        case 'D':
            if (!ucperf_size(optarg, 1u << 20, 1ull << 40, &v)) {
                return ucperf_fail(err, err_len, (c == 'C') ? "bad --cache (1M .. 1T)" :
                                   "bad --dataset (1M .. 1T)", optarg);
            }
            if (c == 'C') {
                o->cache = v;
            } else {
                o->dataset = v;
            }
            break;
        case 'H':
            o->hit_ratio = strtod(optarg, &end);
            if ((*end != '\0') || !(o->hit_ratio >= 0) || (o->hit_ratio > 1)) {
                return ucperf_fail(err, err_len, "bad --hit-ratio (0 .. 1)", optarg);
            }
            break;
        case 'M':
            o->members = optarg;
            break;
        case 'P':
            o->plot = optarg;
            break;
        case 'K':
            if (!ucperf_uint(optarg, 1, 1000000, &v)) {
                return ucperf_fail(err, err_len, "bad --keys-per-node", optarg);
            }
            o->keys_per_node = v;
            break;
        case 'h':
            ucperf_usage(out);
            return 1;
        case ':':
            snprintf(err, err_len, "option '%s' needs a value", argv[optind - 1]);
            return -1;
        default:
            return ucperf_fail(err, err_len, "unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return ucperf_fail(err, err_len, "unexpected argument", argv[optind]);
    }
    if ((o->region != 0) && (o->region < o->size)) {
        snprintf(err, err_len, "--region must hold at least one read (--size)");
        return -1;
    }
    if ((o->mode == UCPERF_MODE_RAW) && (o->threads != 1)) {
        snprintf(err, err_len, "mode raw runs one reader thread (use --outstanding)");
        return -1;
    }
    if (o->nsizes == 0) {
        o->sizes[o->nsizes++] = o->size;
    }
    if ((o->mode == UCPERF_MODE_HIT) || (o->mode == UCPERF_MODE_MISS) ||
        (o->mode == UCPERF_MODE_MIXED)) {
        if (o->owners == 0) {
            snprintf(err, err_len, "--nodes: 1 .. 16 owner processes for mode %s",
                     ucperf_mode_name(o->mode));
            return -1;
        }
        if ((o->mode == UCPERF_MODE_MIXED) && !threads_set) {
            o->threads = 4;
        }
    }
    if ((o->compare != NULL) && (o->mode != UCPERF_MODE_RAW) && (o->mode != UCPERF_MODE_HIT)) {
        snprintf(err, err_len, "--compare ucx_perftest goes with modes raw and hit");
        return -1;
    }
    if ((o->plot != NULL) && ((o->mode == UCPERF_MODE_PLACEMENT) ||
                              (o->mode == UCPERF_MODE_STORE))) {
        snprintf(err, err_len, "--plot goes with modes raw, hit, miss and mixed");
        return -1;
    }
    return 0;
}

static double ucperf_num(double v)
{
    return isfinite(v) ? v : -1.0;
}

void ucperf_print(FILE *out, const ucperf_opts_t *o, const ucperf_result_t *r,
                  int header)
{
    char size[32], hit[16], own[16];

    if (o->json) {
        fprintf(out,
                "{\"bench\":\"ucperf\",\"mode\":\"%s\",\"transport\":\"%s\","
                "\"path\":\"%s\",\"size\":%zu,\"threads\":%u,\"outstanding\":%u,"
                "\"ops\":%llu,\"errors\":%llu,\"seconds\":%.6f,\"gbps\":%.4f,"
                "\"mops\":%.4f,\"p50_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,"
                "\"p999_us\":%.3f,\"max_us\":%.3f,\"client_cpu_s_per_gb\":%.4f,"
                "\"owner_cpu_s_per_gb\":%.4f,\"hit_ratio\":%.4f}\n",
                ucperf_mode_name(o->mode), o->transport, r->path, o->size,
                o->threads, o->outstanding, (unsigned long long)r->ops,
                (unsigned long long)r->errors, ucperf_num(r->seconds),
                ucperf_num(r->gbps), ucperf_num(r->mops), ucperf_num(r->p50_us),
                ucperf_num(r->p90_us), ucperf_num(r->p99_us),
                ucperf_num(r->p999_us), ucperf_num(r->max_us),
                ucperf_num(r->client_cpu_s_per_gb), ucperf_num(r->owner_cpu_s_per_gb),
                ucperf_num(r->hit_ratio));
        return;
    }
    if (header) {
        fprintf(out, "%-5s %-4s %-6s %7s %3s %4s %9s %9s %8s %8s %8s %8s %9s %9s %7s %7s "
                "%5s %6s\n", "mode", "tl", "path", "size", "thr", "out", "ops", "Mops/s",
                "GB/s", "p50us", "p90us", "p99us", "p99.9us", "max_us", "cli_s/GB",
                "own_s/GB", "hit%", "errors");
    }
    uc_format_size(o->size, size, sizeof(size));
    if (r->hit_ratio >= 0) {
        snprintf(hit, sizeof(hit), "%.1f", 100 * r->hit_ratio);
    } else {
        snprintf(hit, sizeof(hit), "-");
    }
    if (r->owner_cpu_s_per_gb >= 0) {
        snprintf(own, sizeof(own), "%.3f", r->owner_cpu_s_per_gb);
    } else {
        snprintf(own, sizeof(own), "-");
    }
    fprintf(out, "%-5s %-4s %-6s %7s %3u %4u %9llu %9.3f %8.3f %8.2f %8.2f %8.2f %9.2f "
            "%9.2f %7.3f %7s %5s %6llu\n",
            ucperf_mode_name(o->mode), o->transport, r->path, size, o->threads,
            o->outstanding, (unsigned long long)r->ops, r->mops, r->gbps, r->p50_us,
            r->p90_us, r->p99_us, r->p999_us, r->max_us, r->client_cpu_s_per_gb, own, hit,
            (unsigned long long)r->errors);
}

double ucperf_proc_stat_cpu(const char *line, double ticks_per_sec)
{
    unsigned long long ut, st;
    const char *p = strrchr(line, ')'); /* the command may hold spaces */
    int i;

    /* After "(comm)": state is field 3, utime field 14, stime field 15. */
    for (i = 0; (i < 12) && (p != NULL); i++) {
        p = strchr(p + 1, ' ');
    }
    if ((p == NULL) || (sscanf(p, " %llu %llu", &ut, &st) != 2) ||
        !(ticks_per_sec > 0)) {
        return -1;
    }
    return (double)(ut + st) / ticks_per_sec;
}

double ucperf_pid_cpu(pid_t pid)
{
    char path[64], buf[1024];
    double cpu;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "re");
    if (f == NULL) {
        return -1;
    }
    cpu = (fgets(buf, sizeof(buf), f) != NULL) ?
          ucperf_proc_stat_cpu(buf, (double)sysconf(_SC_CLK_TCK)) : -1;
    fclose(f);
    return cpu;
}

double ucperf_self_cpu(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}
