/*
 * fi_read_loop.c - the baseline of `ucperf raw --transport ofi`: a bare
 * fi_read loop of the same provider, window and size
 * (transport/fi_read_loop.c does the reading; libfabric is included only
 * there).  make bench builds it as build/bin/fi_read_loop.
 * Usage: fi_read_loop PROVIDER SIZE WINDOW ITERS
 * Prints one JSON line: {"bench":"fi_read_loop",...,"gbs":..,"p50_us":..}
 */
#include "transport/fi_read_loop.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    size_t size, window, iters;
    ut_frl_result_t res;

    if (argc != 5) {
        fprintf(stderr, "usage: fi_read_loop PROVIDER SIZE WINDOW ITERS\n");
        return 2;
    }
    size   = strtoull(argv[2], NULL, 0);
    window = strtoull(argv[3], NULL, 0);
    iters  = strtoull(argv[4], NULL, 0);
    if (ut_fi_read_loop(argv[1], size, window, iters, &res) != 0) {
        fprintf(stderr, "fi_read_loop: %s\n", res.why);
        return 1;
    }
    printf("{\"bench\":\"fi_read_loop\",\"provider\":\"%s\",\"size\":%zu,\"window\":%zu,"
           "\"iters\":%zu,\"gbs\":%.3f,\"p50_us\":%.2f}\n", argv[1], size, window, iters,
           res.gbs, res.p50_us);
    return 0;
}
