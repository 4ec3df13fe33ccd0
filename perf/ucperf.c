/*
 * ucperf.c - the ucperf command: parse, run the mode's engine once per
 * --size, print (and compare with ucx_perftest, and plot).
 * Exit codes: 0 ok, 1 the run failed or saw wrong bytes, 2 bad command line.
 */
#include "perf/ucperf.h"

#include <signal.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    ucperf_result_t res[16];
    ucperf_opts_t opts;
    ucache_status_t status;
    char err[256];
    unsigned i;
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
    if (opts.mode == UCPERF_MODE_MEMBERS) {
        status = ucperf_members_run(&opts, stdout);
        if (status != UCACHE_OK) {
            fprintf(stderr, "ucperf: members: %s\n", ucache_strerror(status));
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
    signal(SIGPIPE, SIG_IGN);
    rc = 0;
    for (i = 0; i < opts.nsizes; i++) {
        opts.size = opts.sizes[i];
        status = (opts.mode == UCPERF_MODE_RAW) ? ucperf_raw_run(&opts, &res[i]) :
                 ucperf_fabric_run(&opts, &res[i]);
        if (status != UCACHE_OK) {
            fprintf(stderr, "ucperf: %s: %s\n", ucperf_mode_name(opts.mode),
                    ucache_strerror(status));
            return 1;
        }
        ucperf_print(stdout, &opts, &res[i], i == 0);
        fflush(stdout);
        if (res[i].errors > 0) {
            fprintf(stderr, "ucperf: %llu reads failed or returned wrong bytes\n",
                    (unsigned long long)res[i].errors);
            rc = 1;
        }
        if (opts.compare != NULL) {
            ucperf_compare(stdout, &opts, &res[i]);
            fflush(stdout);
        }
    }
    if ((opts.plot != NULL) && (ucperf_plot(opts.plot, &opts, res, opts.nsizes) != 0)) {
        fprintf(stderr, "ucperf: cannot write the plot %s\n", opts.plot);
        rc = 1;
    }
    return rc;
}
