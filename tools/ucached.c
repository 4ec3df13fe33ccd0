/*
 * ucached.c - the node daemon: exports --mem bytes of pinned memory as a
 * cache node, registers with the members source, serves index reads and
 * misses (progress and fill threads live in the library), and on SIGTERM
 * or SIGINT unregisters, drains fills in flight and exits 0.  SIGUSR1
 * writes the node's counters as one JSON line to stderr.  Logs go to
 * stderr, or to syslog with --syslog.  Exit: 0 clean stop, 1 failed, 2 usage.
 */
#include "ucache.h"
#include "tools/metrics.h"
#include "tools/stats.h"
#include "util/config.h"
#include "util/opt.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
        "usage: ucached [options]\n"
        "  -m, --mem BYTES         cache memory to export (K/M/G)    [UCACHE_MEM]\n"
        "  -M, --members SOURCE    dir:PATH, file:PATH or\n"
        "                          etcd://HOST:PORT[,...]/PREFIX     [UCACHE_MEMBERS]\n"
        "  -L, --listen HOST:PORT  accept bootstrap connections here (file: members:\n"
        "                          the node's line in the list)      [UCACHE_LISTEN]\n"
        "  -z, --zone NAME         failure domain of this node       [UCACHE_ZONE]\n"
        "      --key-file FILE     the cluster key: sign and check every control\n"
        "                          message (ucache keygen)  [UCACHE_CLUSTER_KEY_FILE]\n"
        "      --admin-key-file F  the admin key: evict, unpin, drain need it\n"
        "                                                   [UCACHE_ADMIN_KEY_FILE]\n"
        "  -a, --allow PREFIX      an origin this node fills from, whoever asks\n"
        "                          (repeatable; replaces UCACHE_ALLOW, whose\n"
        "                          default is az://,s3://,https:// at public\n"
        "                          addresses; see docs/security.md)  [UCACHE_ALLOW]\n"
        "  -c, --chunk-size BYTES  chunk size of objects    [UCACHE_CHUNK_SIZE]\n"
        "  -n, --nvme PATH[:SIZE]  an NVMe device or preallocated file as a second\n"
        "                          cache tier (repeatable; formatted unless it\n"
        "                          holds ucache data)                [UCACHE_NVME]\n"
        "  -l, --log-level LEVEL   none error warn info debug trace [UCACHE_LOG_LEVEL]\n"
        "  -s, --syslog            log to syslog instead of stderr\n"
        "      --metrics-port N    serve Prometheus metrics on /metrics at this port\n"
        "      --metrics-addr A    ... bound to this IPv4 address      [127.0.0.1]\n"
        "  -h, --help\n"
        "Every UCACHE_* variable applies too (ucache config lists them).\n"
        "Signals: TERM/INT stop cleanly (unregister, drain); USR1 prints counters.\n");
}

static void syslog_sink(void *arg, ucache_log_level_t level, const char *msg)
{
    static const int prio[] = { LOG_ERR, LOG_ERR, LOG_WARNING, LOG_INFO,
                                LOG_DEBUG, LOG_DEBUG };

    (void)arg;
    syslog(prio[(level <= UCACHE_LOG_TRACE) ? level : UCACHE_LOG_TRACE], "%s", msg);
}

int main(int argc, char **argv)
{
    enum { OPT_METRICS_PORT = 256, OPT_METRICS_ADDR, OPT_KEY, OPT_ADMIN_KEY };
    static const uc_opt_t opts[] = {
        {"mem", 'm', UC_OPT_SIZE, 1, 1ull << 50},
        {"members", 'M', UC_OPT_STR},
        {"zone", 'z', UC_OPT_STR},
        {"allow", 'a', UC_OPT_STR},
        {"listen", 'L', UC_OPT_STR},
        {"key-file", OPT_KEY, UC_OPT_STR},
        {"admin-key-file", OPT_ADMIN_KEY, UC_OPT_STR},
        {"chunk-size", 'c', UC_OPT_SIZE, 1, 1ull << 40},
        {"nvme", 'n', UC_OPT_STR},
        {"log-level", 'l', UC_OPT_WORD, .words = "none|error|warn|info|debug|trace"},
        {"syslog", 's', UC_OPT_FLAG},
        {"metrics-port", OPT_METRICS_PORT, UC_OPT_UINT, 1, 65535},
        {"metrics-addr", OPT_METRICS_ADDR, UC_OPT_STR},
        {"help", 'h', UC_OPT_FLAG},
        {NULL, 0, UC_OPT_FLAG}
    };
    ucache_params_t p = { .field_mask = UCACHE_PARAM_FIELD_SERVE, .serve = 1 };
    ucache_status_t status;
    ucache_stats_t st;
    sigset_t set;
    const char *maddr = "127.0.0.1";
    struct tool_metrics *metrics = NULL;
    unsigned long mport = 0;
    char allow[1024] = "", nvme[1024] = "", err[256];
    const uc_opt_t *o;
    uc_optparse_t op;
    uc_optval_t v;
    ucache_h ctx;
    int c, sig;

    if (uc_opt_init(&op, argc, argv, 1, opts, err, sizeof(err)) != 0) {
        fprintf(stderr, "ucached: %s\n", err);
        return 2;
    }
    while ((c = uc_opt_next(&op, &v, &o, err, sizeof(err))) > 0) {
        switch (c) {
        case 'm':
            p.mem_bytes = (size_t)v.u;
            p.field_mask |= UCACHE_PARAM_FIELD_MEM_BYTES;
            break;
        case 'M':
            p.members = v.s;
            p.field_mask |= UCACHE_PARAM_FIELD_MEMBERS;
            break;
        case 'z':
            p.zone = v.s;
            p.field_mask |= UCACHE_PARAM_FIELD_ZONE;
            break;
        case 'a':
            if (strlen(allow) + strlen(v.s) + 2 > sizeof(allow)) {
                fprintf(stderr, "ucached: --allow rules exceed %zu bytes\n", sizeof(allow) - 1);
                return 2;
            }
            strcat(strcat(allow, (allow[0] != '\0') ? "," : ""), v.s);
            p.allow = allow;
            p.field_mask |= UCACHE_PARAM_FIELD_ALLOW;
            break;
        case 'n':
            if (strlen(nvme) + strlen(v.s) + 2 > sizeof(nvme)) {
                fprintf(stderr, "ucached: --nvme devices exceed %zu bytes\n", sizeof(nvme) - 1);
                return 2;
            }
            strcat(strcat(nvme, (nvme[0] != '\0') ? "," : ""), v.s);
            if (setenv("UCACHE_NVME", nvme, 1) != 0) {
                return 1;
            }
            break;
        case 'L':
        case OPT_KEY:
        case OPT_ADMIN_KEY:
            if (setenv((c == 'L') ? "UCACHE_LISTEN" : (c == OPT_KEY) ?
                       "UCACHE_CLUSTER_KEY_FILE" : "UCACHE_ADMIN_KEY_FILE", v.s, 1) != 0) {
                return 1;
            }
            break;
        case 'c':
            p.chunk_size = (size_t)v.u;
            p.field_mask |= UCACHE_PARAM_FIELD_CHUNK_SIZE;
            break;
        case 'l':
            p.log_level = (ucache_log_level_t)v.u;
            p.field_mask |= UCACHE_PARAM_FIELD_LOG_LEVEL;
            break;
        case OPT_METRICS_PORT:
            mport = (unsigned long)v.u;
            break;
        case OPT_METRICS_ADDR:
            maddr = v.s;
            break;
        case 's':
            openlog("ucached", LOG_PID, LOG_DAEMON);
            ucache_log_set_sink(syslog_sink, NULL);
            break;
        case 'h':
            usage(stdout);
            return 0;
        }
    }
    if (c < 0) {
        fprintf(stderr, "ucached: %s\n", err);
        usage(stderr);
        return 2;
    }
    if (op.optind < argc) {
        fprintf(stderr, "ucached: unexpected argument '%s'\n", argv[op.optind]);
        return 2;
    }
    /* Signals are taken synchronously here; library threads never see them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    status = ucache_init(&p, &ctx);
    if (status != UCACHE_OK) {
        fprintf(stderr, "ucached: cannot start: %s\n", ucache_strerror(status));
        return 1;
    }
    if (mport != 0) {
        metrics = tool_metrics_start(ctx, maddr, (unsigned)mport);
        if (metrics == NULL) {
            ucache_finalize(ctx);
            return 1;
        }
    }
    fprintf(stderr, "ucached: serving (pid %d)\n", (int)getpid());
    for (;;) {
        if (sigwait(&set, &sig) != 0) {
            continue;
        }
        if (sig == SIGUSR1) {
            if (ucache_stats_get(ctx, &st) == UCACHE_OK) {
                tool_stats_json(stderr, "ucached", &st);
            }
            continue;
        }
        break;
    }
    fprintf(stderr, "ucached: %s: unregistering and draining\n", strsignal(sig));
    tool_metrics_stop(metrics);
    if (ucache_stats_get(ctx, &st) == UCACHE_OK) {
        tool_stats_json(stderr, "ucached", &st);
    }
    ucache_finalize(ctx);
    fprintf(stderr, "ucached: stopped\n");
    return 0;
}
