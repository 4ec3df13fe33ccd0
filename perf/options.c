/*
 * options.c - ucperf's command line and its output: the human table and the
 * --json lines (one object per result, stable keys for scripts and CI).
 */
#include "perf/ucperf.h"
#include "util/opt.h"
#include "util/config.h"

#include <errno.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdbool.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const ucperf_modes[] = {
    "raw", "hit", "miss", "mixed", "placement", "store", "members", NULL
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
        "  members    membership on etcd (--members etcd://...): --nodes simulated\n"
        "             nodes [1000] register as daemons do, keep their leases alive\n"
        "             (--ttl), --watchers contexts watch; registration time, etcd\n"
        "             requests/s, bytes/s and CPU at steady state (--duration [10]),\n"
        "             join and leave times to every watcher, etcd's database size\n"
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
        "  -T, --transport shm|tcp|ofi transport between the processes   [shm]\n"
        "                          (ofi: libfabric, UCACHE_OFI_PROVIDER's provider,\n"
        "                          tcp;ofi_rxm by default)\n"
        "  -p, --path auto|get|am  read primitive off the mapped path    [auto]\n"
        "                          (get turns on UCACHE_EMULATED_RMA, a test mode)\n"
        "  -w, --warmup N          reads before measuring                [200]\n"
        "  -r, --region BYTES      exported region the reads rotate over\n"
        "                          (default: 4 x size x outstanding, 64M .. 1G;\n"
        "                          a region of one read's size stays cache-hot)\n"
        "      --nodes N           placement: one node count      [1k,10k,100k]\n"
        "                          hit/miss/mixed: owner processes (1..16)  [3]\n"
        "      --keys-per-node K   placement: keys counted per node       [10000]\n"
        "      --watchers W        members: contexts watching etcd          [100]\n"
        "      --ttl SECONDS       members: the simulated nodes' lease TTL   [30]\n"
        "      --cache BYTES       hit/miss/mixed: the owners' memory in all\n"
        "                          [256M per owner]\n"
        "      --dataset BYTES     hit/miss/mixed: dataset size [hit: cache/2,\n"
        "                          miss: 64M, mixed: 4/3 of the cache]\n"
        "      --hit-ratio R       mixed: share of the dataset warmed first [0.5]\n"
        "      --chunk BYTES       hit/miss/mixed: chunk size [= --size]; larger\n"
        "                          than --size: each read is a --size-aligned part\n"
        "                          of a chunk at a random place; smaller: each\n"
        "                          read spans --size / --chunk chunks\n"
        "  -M, --members SRC       hit/miss/mixed: use this fabric (dir:, file:,\n"
        "                          etcd://) instead of starting owners; members:\n"
        "                          the etcd cluster and prefix to measure\n"
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

/* A size with K/M/G suffixes in [min, max] (an item of a --size list). */
static bool ucperf_size(const char *s, uint64_t min, uint64_t max, uint64_t *v_p)
{
    return (uc_parse_size(s, v_p) == UCACHE_OK) && (*v_p >= min) && (*v_p <= max);
}

int ucperf_parse(int argc, char **argv, ucperf_opts_t *o, char *err,
                 size_t err_len, FILE *out)
{
    static const uc_opt_t opts[] = {
        {"size", 's', UC_OPT_STR},                    /* a list: parsed below */
        {"iters", 'n', UC_OPT_UINT, 1, 4.6e18},
        {"duration", 'd', UC_OPT_REAL, 1e-9, 3600},
        {"outstanding", 'o', UC_OPT_UINT, 1, 1024},
        {"threads", 't', UC_OPT_UINT, 1, 256},
        {"transport", 'T', UC_OPT_WORD, .words = "shm|tcp|ofi"},
        {"path", 'p', UC_OPT_WORD, .words = "auto|get|am"},
        {"warmup", 'w', UC_OPT_UINT, 0, 1000000},
        {"region", 'r', UC_OPT_SIZE, 4096, 16.0 * (1ull << 30)},
        {"json", 'j', UC_OPT_FLAG},
        {"compare", 'c', UC_OPT_WORD, .words = "ucx_perftest"},
        {"help", 'h', UC_OPT_FLAG},
        {"nodes", 'N', UC_OPT_UINT, 1, 1000000},
        {"keys-per-node", 'K', UC_OPT_UINT, 1, 1000000},
        {"cache", 'C', UC_OPT_SIZE, 1u << 20, 1.0 * (1ull << 40)},
        {"dataset", 'D', UC_OPT_SIZE, 1u << 20, 1.0 * (1ull << 40)},
        {"hit-ratio", 'H', UC_OPT_REAL, 0, 1},
        {"chunk", 'k', UC_OPT_SIZE, 4096, 64.0 * (1ull << 20) - 1},
        {"members", 'M', UC_OPT_STR},
        {"plot", 'P', UC_OPT_STR},
        {"watchers", 'W', UC_OPT_UINT, 1, 10000},
        {"ttl", 'L', UC_OPT_UINT, 2, 3600},
        {NULL, 0, UC_OPT_FLAG}
    };
    static const char *const transports[] = { "shm", "tcp", "ofi" }, *const paths[] = {
        "auto", "get", "am" };
    const uc_opt_t *opt;
    uc_optparse_t op;
    uc_optval_t v;
    char list[256], *tok, *save;
    bool threads_set = false;
    uint64_t n;
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

    /* the options after the mode, parsed the one way (util/opt.h) */
    if (uc_opt_init(&op, argc, argv, 2, opts, err, err_len) != 0) {
        return -1;
    }
    while ((c = uc_opt_next(&op, &v, &opt, err, err_len)) > 0) {
        switch (c) {
        case 's':
            snprintf(list, sizeof(list), "%s", v.s);
            o->nsizes = 0;
            for (tok = strtok_r(list, ",", &save); tok != NULL;
                 tok = strtok_r(NULL, ",", &save)) {
                if ((o->nsizes == 16) || !ucperf_size(tok, 1, 1ull << 30, &n)) {
                    return ucperf_fail(err, err_len, "bad --size (1 .. 1G, at most 16)",
                                       v.s);
                }
                o->sizes[o->nsizes++] = n;
            }
            if (o->nsizes == 0) {
                return ucperf_fail(err, err_len, "bad --size", v.s);
            }
            o->size = o->sizes[0];
            break;
        case 'n':
            o->iters = v.u;
            break;
        case 'd':
            o->duration = v.d;
            o->iters = 0;
            break;
        case 'o':
            o->outstanding = (unsigned)v.u;
            break;
        case 't':
            o->threads = (unsigned)v.u;
            threads_set = true;
            break;
        case 'T':
            strcpy(o->transport, transports[v.u]);
            break;
        case 'p':
            strcpy(o->path, paths[v.u]);
            break;
        case 'w':
            o->warmup = (unsigned)v.u;
            break;
        case 'r':
            o->region = v.u;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'c':
            o->compare = "ucx_perftest";
            break;
        case 'N':
            o->nodes  = (uint32_t)v.u;
            o->owners = (unsigned)((v.u > 16) ? 0 : v.u); /* checked below */
            break;
        case 'C':
            o->cache = v.u;
            break;
        case 'D':
            o->dataset = v.u;
            break;
        case 'H':
            o->hit_ratio = v.d;
            break;
        case 'k':
            o->chunk = v.u;
            break;
        case 'M':
            o->members = v.s;
            break;
        case 'P':
            o->plot = v.s;
            break;
        case 'K':
            o->keys_per_node = v.u;
            break;
        case 'W':
            o->watchers = (unsigned)v.u;
            break;
        case 'L':
            o->ttl_s = (unsigned)v.u;
            break;
        case 'h':
            ucperf_usage(out);
            return 1;
        }
    }
    if (c < 0) {
        return -1;
    }
    if (op.optind < argc) {
        return ucperf_fail(err, err_len, "unexpected argument", argv[op.optind]);
    }
    if ((o->chunk != 0) && ((o->chunk > o->size) ? (o->chunk % o->size != 0) :
                            ((o->size % o->chunk != 0) || ((64ull << 20) % o->size != 0)))) {
        snprintf(err, err_len, "--chunk and --size must divide one another (and --size "
                 "64M, if it is the larger)");
        return -1;
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
                              (o->mode == UCPERF_MODE_STORE) ||
                              (o->mode == UCPERF_MODE_MEMBERS))) {
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
                "\"owner_cpu_s_per_gb\":%.4f,\"hit_ratio\":%.4f,\"nvme_ratio\":%.4f,"
                "\"direct_ratio\":%.4f}\n",
                ucperf_mode_name(o->mode), o->transport, r->path, o->size,
                o->threads, o->outstanding, (unsigned long long)r->ops,
                (unsigned long long)r->errors, ucperf_num(r->seconds),
                ucperf_num(r->gbps), ucperf_num(r->mops), ucperf_num(r->p50_us),
                ucperf_num(r->p90_us), ucperf_num(r->p99_us),
                ucperf_num(r->p999_us), ucperf_num(r->max_us),
                ucperf_num(r->client_cpu_s_per_gb), ucperf_num(r->owner_cpu_s_per_gb),
                ucperf_num(r->hit_ratio), ucperf_num(r->nvme_ratio),
                ucperf_num(r->direct_ratio));
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

void ucperf_transport_env(const ucperf_opts_t *o)
{
    if (strcmp(o->transport, "ofi") == 0) {
        setenv("UCACHE_TRANSPORT", "ofi", 1);
        setenv("UCACHE_OFI_PROVIDER", "tcp;ofi_rxm", 0);
    } else if (strcmp(o->transport, "tcp") == 0) {
        setenv("UCACHE_TRANSPORT", "ucx", 1);
        setenv("UCX_TLS", "tcp", 1);
        setenv("UCX_NET_DEVICES", "lo", 1);
    } else {
        setenv("UCACHE_TRANSPORT", "ucx", 1);
        setenv("UCX_TLS", "posix,sysv,self,tcp", 1); /* tcp: the wireup lane */
        unsetenv("UCX_NET_DEVICES");
    }
}
