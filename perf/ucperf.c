/*
 * ucperf.c - the ucperf command: parse, run the mode's engine, print.
 * Exit codes: 0 ok, 1 the run failed or saw wrong bytes, 2 bad command line.
 */
#include "perf/ucperf.h"

#include <signal.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    ucperf_result_t res;
    ucperf_opts_t opts;
    ucache_status_t status;
    char err[256];
    int rc;

    rc = ucperf_parse(argc, argv, &opts, err, sizeof(err), stdout);
    if (rc != 0) {
        if (rc < 0) {
            fprintf(stderr, "ucperf: %s\n", err);
            ucperf_usage(stderr);
        }
        return (rc > 0) ? 0 : 2;
    }
    if (opts.mode == UCPERF_MODE_STORE) {
        status = ucperf_store_run(&opts, stdout);
        if (status != UCACHE_OK) {
            fprintf(stderr, "ucperf: store: %s\n", ucache_strerror(status));
            return 1;
        }
        return 0;
    }
    if (opts.mode == UCPERF_MODE_PLACEMENT) {
        status = ucperf_place_run(&opts, stdout);
        if (status != UCACHE_OK) {
            fprintf(stderr, "ucperf: placement: %s\n", ucache_strerror(status));
            return 1;
        }
        return 0;
    }
    if (opts.mode != UCPERF_MODE_RAW) {
        fprintf(stderr, "ucperf: mode '%s' needs the fabric (issues [3/6], [5/6]); "
                "this build has modes raw and store\n", ucperf_mode_name(opts.mode));
        return 2;
    }
    if (opts.compare != NULL) {
        fprintf(stderr, "ucperf: --compare is run by perf/run-bench.sh (make bench) "
                "in this build\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    status = ucperf_raw_run(&opts, &res);
    if (status != UCACHE_OK) {
        fprintf(stderr, "ucperf: %s\n", ucache_strerror(status));
        return 1;
    }
    ucperf_print(stdout, &opts, &res, 1);
    if (res.errors > 0) {
        fprintf(stderr, "ucperf: %llu reads failed or returned wrong bytes\n",
                (unsigned long long)res.errors);
        return 1;
    }
    return 0;
}
