/*
 * ucperf.h - the benchmark engine behind the ucperf CLI (and, later, the
 * health tools).  Options are parsed into ucperf_opts_t; each mode's engine
 * fills a ucperf_result_t; one printer writes the human table or one JSON
 * object per result line.  Modes: raw (the transport primitive alone),
 * hit / miss / mixed (reads through libucache-rdma against a fabric of
 * owner processes), placement, store.
 */
#ifndef UCPERF_H
#define UCPERF_H

#include "ucache.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef enum ucperf_mode {
    UCPERF_MODE_RAW = 0,
    UCPERF_MODE_HIT,
    UCPERF_MODE_MISS,
    UCPERF_MODE_MIXED,
    UCPERF_MODE_PLACEMENT,
    UCPERF_MODE_STORE,
    UCPERF_MODE_MEMBERS
} ucperf_mode_t;

typedef struct ucperf_opts {
    ucperf_mode_t mode;
    size_t        size;        /* bytes per operation                    */
    uint64_t      iters;       /* operations to measure (0: use duration) */
    double        duration;    /* seconds, if iters == 0                 */
    unsigned      outstanding; /* operations in flight                   */
    unsigned      threads;
    char          transport[8]; /* "shm", "tcp" (UCX) or "ofi" (libfabric) */
    char          path[8];     /* "auto", "get", "am"                    */
    unsigned      warmup;      /* operations before measuring            */
    size_t        region;      /* exported bytes reads rotate over (0: auto) */
    int           json;
    const char   *compare;     /* "ucx_perftest" or NULL                 */
    uint32_t      nodes;       /* placement: one node count (0: 1k,10k,100k) */
    uint64_t      keys_per_node; /* placement: keys counted per node for load */
    unsigned      owners;      /* hit/miss/mixed: owner processes started   */
    size_t        cache;       /* hit/miss/mixed: their memory, in all (0: 256M each) */
    uint64_t      dataset;     /* hit/miss/mixed: dataset bytes (0: per mode) */
    size_t        chunk;       /* hit/miss/mixed: chunk size (0: the read size);
                                  larger: each read a part of a chunk      */
    double        hit_ratio;   /* mixed: share of the dataset warmed first  */
    const char   *members;     /* an existing fabric (else UCACHE_MEMBERS, else ours) */
    const char   *plot;        /* write an SVG plot here, or NULL           */
    unsigned      watchers;    /* members: contexts watching etcd (0: 100)  */
    unsigned      ttl_s;       /* members: lease TTL of the simulated nodes (0: 30) */
    size_t        sizes[16];   /* --size A,B,...: one run per size           */
    unsigned      nsizes;
} ucperf_opts_t;

#define UCPERF_HIST_BINS 48    /* latency bins: [2^(i/2), 2^((i+1)/2)) ns */

typedef struct ucperf_result {
    const char *path;          /* primitive that served the reads        */
    uint64_t    ops;
    uint64_t    errors;        /* wrong bytes or failed operations       */
    double      seconds;
    double      gbps;          /* 10^9 bytes per second                  */
    double      mops;
    double      p50_us, p90_us, p99_us, p999_us, max_us;
    double      client_cpu_s_per_gb;
    double      owner_cpu_s_per_gb; /* < 0 if it could not be measured   */
    double      hit_ratio;     /* hit/miss/mixed: chunk hits / chunk reads, else -1 */
    double      nvme_ratio;    /* ... chunks owners read from their NVMe tier */
    double      direct_ratio;  /* ... chunks this reader read from the origin */
    uint64_t    hist[UCPERF_HIST_BINS]; /* latency histogram               */
} ucperf_result_t;

/**
 * Parse a command line (argv[0] is the program, argv[1] the mode).
 * @return 0 on success; 1 if --help was asked (usage printed to @p out);
 *         -1 on a bad command line (message in @p err).
 */
int ucperf_parse(int argc, char **argv, ucperf_opts_t *opts, char *err,
                 size_t err_len, FILE *out);

void ucperf_usage(FILE *out);
const char *ucperf_mode_name(ucperf_mode_t mode);

/** Print one result: a table row (with a header if @p header), or JSON. */
void ucperf_print(FILE *out, const ucperf_opts_t *opts,
                  const ucperf_result_t *res, int header);

/** Run mode raw: an exporter process and this reader. */
ucache_status_t ucperf_raw_run(const ucperf_opts_t *opts, ucperf_result_t *res);

/** Run mode hit, miss or mixed: owner processes, a dataset, and reads
 *  through libucache-rdma (see bench_fabric.c). */
ucache_status_t ucperf_fabric_run(const ucperf_opts_t *opts, ucperf_result_t *res);

/** p50 .. max and the histogram of @p n sorted latencies (ns) into @p res. */
void ucperf_latencies(const uint64_t *sorted, size_t n, ucperf_result_t *res);

/** Write an SVG of bandwidth and p99 against size, and the latency
 *  histograms, for @p n results of one mode (one per size). */
int ucperf_plot(const char *path, const ucperf_opts_t *opts,
                const ucperf_result_t *res, unsigned n);

/** --compare ucx_perftest: run the matching ucx_perftest test, print it and
 *  the ratios to @p res.  @return 0, or -1 if it is missing or failed. */
int ucperf_compare(FILE *out, const ucperf_opts_t *opts, const ucperf_result_t *res);

/** Run mode store: the node store alone (fill, lookup+verify+copy, memcpy
 *  baseline); prints its own rows to @p out. */
ucache_status_t ucperf_store_run(const ucperf_opts_t *opts, FILE *out);
/** The store's allocator (TLSF) against a jemalloc arena over the same
 *  memory: @p iters operations of mixed-size churn (bench_alloc.c). */
ucache_status_t ucperf_alloc_churn(const ucperf_opts_t *o, uint64_t iters, FILE *out);

/** Run mode members: simulated nodes and watchers against a real etcd. */
ucache_status_t ucperf_members_run(const ucperf_opts_t *opts, FILE *out);

/** Run mode placement: DxHash against a 100-vnode ring, in one run. */
ucache_status_t ucperf_place_run(const ucperf_opts_t *opts, FILE *out);

/** utime+stime of process @p pid in seconds, from /proc (-1 if unreadable). */
double ucperf_pid_cpu(pid_t pid);

/** This process's CPU seconds (user + system, every thread). */
double ucperf_self_cpu(void);

/** utime+stime in seconds from a /proc/PID/stat line (-1 if malformed). */
double ucperf_proc_stat_cpu(const char *line, double ticks_per_sec);

/** The environment of --transport for this process and those it starts:
 *  UCACHE_TRANSPORT, and UCX_TLS / UCX_NET_DEVICES for UCX's shm and tcp
 *  (ofi: UCACHE_OFI_PROVIDER as set, else tcp;ofi_rxm). */
void ucperf_transport_env(const ucperf_opts_t *o);

#endif
