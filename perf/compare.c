/*
 * compare.c - ucperf --compare ucx_perftest: the matching ucx_perftest run
 * in the same invocation, on 127.0.0.1, so a figure comes with its
 * baseline.  Shared memory: ucp_get over posix (the one-sided read a hit
 * is); tcp: ucp_am_lat (a read is one request and one reply: two one-way
 * latencies) and ucp_am_bw (what the am reply path can move).
 */
#include "perf/ucperf.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* One ucx_perftest run: its typical latency (us) and bandwidth (GB/s). */
static int cmp_run(const char *test, size_t size, uint64_t iters, const char *tls,
                   double *lat_us, double *gbps)
{
    char cmd[512], line[512], port[16];
    double lat = -1, mbs = -1;
    pid_t srv;
    FILE *f;
    int rc = -1, i;

    /* below the ephemeral range (32768 and up), where outgoing connections live */
    snprintf(port, sizeof(port), "%d", 20000 + (int)((getpid() * 7919u + time(NULL)) % 12000));
    setenv("UCX_TLS", tls, 1);
    setenv("UCX_NET_DEVICES", "lo", 1);
    fflush(NULL);
    srv = fork();
    if (srv == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL ||
            freopen("/dev/null", "w", stderr) == NULL) {
            _exit(127);
        }
        execlp("timeout", "timeout", "60", "ucx_perftest", "-p", port, (char *)NULL);
        _exit(127);
    }
    if (srv < 0) {
        return -1;
    }
    usleep(500000);
    snprintf(cmd, sizeof(cmd), "timeout 60 ucx_perftest 127.0.0.1 -p %s -t %s -s %zu -n %llu "
             "2>/dev/null", port, test, size, (unsigned long long)iters);
    f = popen(cmd, "r");
    while ((f != NULL) && (fgets(line, sizeof(line), f) != NULL)) {
        /* Final:  iters  typical_lat  avg_lat  overall_lat  avg_bw  overall_bw ... */
        if (strncmp(line, "Final:", 6) == 0) {
            char *tok = strtok(line, " \t");

            for (i = 0; (tok != NULL) && (i < 6); i++) {
                if (i == 2) {
                    lat = strtod(tok, NULL);
                } else if (i == 5) {
                    mbs = strtod(tok, NULL);
                }
                tok = strtok(NULL, " \t");
            }
            rc = 0;
        }
    }
    if (f != NULL) {
        pclose(f);
    }
    kill(srv, SIGTERM);
    waitpid(srv, NULL, 0);
    *lat_us = lat;
    *gbps   = (mbs >= 0) ? mbs * 1048576.0 / 1e9 : -1; /* it prints MiB/s as MB/s */
    return (rc == 0) && (lat >= 0) ? 0 : -1;
}

int ucperf_compare(FILE *out, const ucperf_opts_t *o, const ucperf_result_t *r)
{
    const bool tcp = (strcmp(o->transport, "tcp") == 0);
    uint64_t iters = (o->size >= (1u << 20)) ? 1000 : 20000;
    double lat = -1, bw = -1, bw2 = -1, base_lat;
    const char *test = tcp ? "ucp_am_lat" : "ucp_get";
    int rc;

    if (system("command -v ucx_perftest >/dev/null 2>&1") != 0) {
        fprintf(stderr, "ucperf: ucx_perftest is not installed (Debian: ucx-utils); "
                "no comparison\n");
        return -1;
    }
    rc = cmp_run(test, o->size, iters, tcp ? "tcp" : "posix,sysv,self,tcp", &lat, &bw);
    if ((rc == 0) && tcp) {
        double l2;

        rc = cmp_run("ucp_am_bw", o->size, iters, "tcp", &l2, &bw2);
        bw = bw2;
    }
    if (rc != 0) {
        fprintf(stderr, "ucperf: ucx_perftest -t %s did not finish\n", test);
        return -1;
    }
    base_lat = tcp ? 2 * lat : lat;  /* a tcp read is a round trip */
    if (o->json) {
        fprintf(out, "{\"bench\":\"ucx_perftest\",\"mode\":\"%s\",\"transport\":\"%s\","
                "\"test\":\"%s%s\",\"size\":%zu,\"lat_us\":%.3f,\"gbps\":%.4f,"
                "\"ratio_p50\":%.3f,\"ratio_gbps\":%.3f}\n", ucperf_mode_name(o->mode),
                o->transport, test, tcp ? "+ucp_am_bw" : "", o->size, base_lat, bw,
                (base_lat > 0) ? r->p50_us / base_lat : -1, (bw > 0) ? r->gbps / bw : -1);
    } else {
        fprintf(out, "  vs ucx_perftest %s%s: %s%.3f us, %.3f GB/s; ucperf/ucx_perftest: "
                "p50 latency %.2fx, bandwidth %.2fx\n", test, tcp ? " + ucp_am_bw" : "",
                tcp ? "2 x one-way " : "", base_lat, bw,
                (base_lat > 0) ? r->p50_us / base_lat : -1, (bw > 0) ? r->gbps / bw : -1);
    }
    return 0;
}
