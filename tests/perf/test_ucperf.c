/*
 * test_ucperf.c - tests of perf/: ucperf's option parsing, its --json output
 * (parsed back and checked), short raw runs over shm and tcp, short hit,
 * miss and mixed runs against owner processes (every mode runs, its JSON
 * parses, no wrong bytes, the hit ratio each mode implies), the SVG plot,
 * --compare, and the command-line programs' exit codes (ucperf, ucache).
 */
#include "tests/common.h"
#include "perf/ucperf.h"

#include <math.h>
#include <stdlib.h>
#include <sys/wait.h>

static int parse(ucperf_opts_t *o, char *err, const char *line)
{
    char buf[512], *argv[32], *tok, *save = NULL;
    int argc = 0;
    FILE *devnull = fopen("/dev/null", "w");
    int rc;

    snprintf(buf, sizeof(buf), "%s", line);
    for (tok = strtok_r(buf, " ", &save); tok && argc < 31; tok = strtok_r(NULL, " ", &save)) {
        argv[argc++] = tok;
    }
    argv[argc] = NULL;
    rc = ucperf_parse(argc, argv, o, err, 256, devnull);
    fclose(devnull);
    return rc;
}

static void test_options(void)
{
    ucperf_opts_t o;
    char err[256];

    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw"), 0);
    CU_ASSERT_EQUAL(o.mode, UCPERF_MODE_RAW);
    CU_ASSERT_EQUAL(o.size, 4096);
    CU_ASSERT_EQUAL(o.iters, 10000);
    CU_ASSERT_EQUAL(o.outstanding, 1);
    CU_ASSERT_STRING_EQUAL(o.transport, "shm");
    CU_ASSERT_STRING_EQUAL(o.path, "auto");
    CU_ASSERT_EQUAL(o.json, 0);

    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw --size 1M -n 50 --outstanding 8 "
                                   "--transport tcp --path am --json -w 0 -r 4M"), 0);
    CU_ASSERT_EQUAL(o.size, 1u << 20);
    CU_ASSERT_EQUAL(o.iters, 50);
    CU_ASSERT_EQUAL(o.outstanding, 8);
    CU_ASSERT_STRING_EQUAL(o.transport, "tcp");
    CU_ASSERT_STRING_EQUAL(o.path, "am");
    CU_ASSERT_EQUAL(o.json, 1);
    CU_ASSERT_EQUAL(o.warmup, 0);
    CU_ASSERT_EQUAL(o.region, 4u << 20);

    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw -s 64k -d 1.5"), 0);
    CU_ASSERT_EQUAL(o.size, 65536);
    CU_ASSERT_EQUAL(o.iters, 0);
    CU_ASSERT(fabs(o.duration - 1.5) < 1e-9);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf hit --threads 4"), 0);
    CU_ASSERT_EQUAL(o.mode, UCPERF_MODE_HIT);
    CU_ASSERT_EQUAL(o.threads, 4);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw --help"), 1);

    /* Bad command lines: a clear message each. */
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf fly"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown mode 'fly'"));
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw --size 0"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw --size 3X"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--size"));
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw --size 2G"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw -n 0"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw -n -5"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw -o 0"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw -o 5000"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw --transport ib"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw --path rdma"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw -d 0"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw --threads 2"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw --compare iperf"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw --bogus"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown option"));
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw --size"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "needs a value"));
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw extra"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf raw -s 1M -r 64K"), -1);

    /* the fabric modes' options */
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf hit --nodes 2 --cache 64M --dataset 16M "
                                   "-s 4K,64K,1M --plot /tmp/x.svg -M dir:/x -c ucx_perftest"), 0);
    CU_ASSERT_EQUAL(o.owners, 2);
    CU_ASSERT_EQUAL(o.cache, 64u << 20);
    CU_ASSERT_EQUAL(o.dataset, 16u << 20);
    CU_ASSERT_EQUAL(o.nsizes, 3);
    CU_ASSERT_EQUAL(o.sizes[1], 65536);
    CU_ASSERT_EQUAL(o.size, 4096);
    CU_ASSERT_STRING_EQUAL(o.plot, "/tmp/x.svg");
    CU_ASSERT_STRING_EQUAL(o.members, "dir:/x");
    CU_ASSERT_PTR_NOT_NULL(o.compare);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf mixed"), 0);
    CU_ASSERT_EQUAL(o.threads, 4);
    CU_ASSERT_EQUAL(o.owners, 3);
    CU_ASSERT_DOUBLE_EQUAL(o.hit_ratio, 0.5, 1e-9);
    CU_ASSERT_EQUAL(o.nsizes, 1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf mixed -t 2 --hit-ratio 0.25"), 0);
    CU_ASSERT_EQUAL(o.threads, 2);
    CU_ASSERT_DOUBLE_EQUAL(o.hit_ratio, 0.25, 1e-9);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf hit --nodes 17"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "owner processes"));
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf placement --nodes 100000"), 0);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf mixed --hit-ratio 2"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf mixed --hit-ratio x"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf hit --cache 1K"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf hit --dataset 2X"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf miss --compare ucx_perftest"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "raw and hit"));
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf placement --plot /tmp/x.svg"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf hit -s 4K,,8K"), 0);   /* empty items skipped */
    CU_ASSERT_EQUAL(o.nsizes, 2);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf hit -s 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"), -1);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf hit -s 4K,nope"), -1);
    /* --chunk: parts of chunks, or runs of them */
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf hit -s 4K --chunk 4M"), 0);
    CU_ASSERT_EQUAL(o.chunk, 4u << 20);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf hit -s 64M --chunk 4M"), 0);
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf hit -s 12K --chunk 64K"), -1);  /* no divisor */
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--chunk"));
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf hit -s 48M --chunk 4M"), -1);   /* 64M % 48M */
    CU_ASSERT_EQUAL(parse(&o, err, "ucperf hit --chunk 1K"), -1);          /* < 4 KiB */
}

static void test_proc_stat(void)
{
    /* A real line (fields 14 and 15, utime 250 and stime 130 ticks), with a
     * command name holding spaces and a parenthesis. */
    const char *line = "4242 (ucperf (x) y) R 1 4242 4242 0 -1 4194304 900 0 3 0 "
                       "250 130 0 0 20 0 3 0 1234 1000000 500 18446744073709551615";

    CU_ASSERT_DOUBLE_EQUAL(ucperf_proc_stat_cpu(line, 100.0), 3.8, 1e-9);
    CU_ASSERT_EQUAL(ucperf_proc_stat_cpu("4242 (ucperf) R 1 2", 100.0), -1);
    CU_ASSERT_EQUAL(ucperf_proc_stat_cpu("garbage", 100.0), -1);
}

/* The value of "key" in a one-line JSON object, as text; NULL if absent. */
static const char *json_get(const char *json, const char *key, char *val, size_t len)
{
    char pat[64];
    const char *p;
    size_t n = 0;

    snprintf(pat, sizeof(pat), "\"%s\":", key);
    p = strstr(json, pat);
    if (p == NULL) {
        return NULL;
    }
    p += strlen(pat);
    if (*p == '"') {
        p++;
        while ((p[n] != '"') && (p[n] != '\0') && (n + 1 < len)) {
            n++;
        }
    } else {
        while ((p[n] != ',') && (p[n] != '}') && (p[n] != '\0') && (n + 1 < len)) {
            n++;
        }
    }
    memcpy(val, p, n);
    val[n] = '\0';
    return val;
}

/* Run @p cmd (raw or a fabric mode) in process; its --json line must carry
 * every key, no errors, @p iters reads of @p size over @p transport /
 * @p expect_path; the hit ratio is returned (-1 for raw). */
static double run_json(const char *cmd, const char *mode, const char *transport,
                       const char *expect_path, size_t size, unsigned iters)
{
    static const char *const keys[] = {
        "bench", "mode", "transport", "size", "threads", "ops", "gbps", "p50_us",
        "p99_us", "p90_us", "p999_us", "max_us", "errors", NULL
    };
    ucperf_result_t res;
    ucperf_opts_t o;
    char err[256], *text = NULL, val[64];
    double hit;
    size_t tlen = 0;
    FILE *f;
    int i;

    if (parse(&o, err, cmd) != 0) {
        fprintf(stderr, "parse: %s\n", err);
        CU_FAIL("the command line parses");
        return -2;
    }
    if (((o.mode == UCPERF_MODE_RAW) ? ucperf_raw_run(&o, &res) :
         ucperf_fabric_run(&o, &res)) != UCACHE_OK) {
        CU_FAIL("the run succeeds");
        return -2;
    }
    f = open_memstream(&text, &tlen);
    ucperf_print(f, &o, &res, 1);
    fclose(f);
    /* Exactly one line, even though a table header was asked for. */
    CU_ASSERT_PTR_EQUAL(strchr(text, '\n'), text + tlen - 1);
    CU_ASSERT_EQUAL(text[0], '{');
    for (i = 0; keys[i] != NULL; i++) {
        CU_ASSERT_PTR_NOT_NULL(json_get(text, keys[i], val, sizeof(val)));
    }
    CU_ASSERT_STRING_EQUAL(json_get(text, "bench", val, sizeof(val)), "ucperf");
    CU_ASSERT_STRING_EQUAL(json_get(text, "mode", val, sizeof(val)), mode);
    CU_ASSERT_STRING_EQUAL(json_get(text, "transport", val, sizeof(val)), transport);
    CU_ASSERT_STRING_EQUAL(json_get(text, "path", val, sizeof(val)), expect_path);
    CU_ASSERT_EQUAL(strtoull(json_get(text, "size", val, sizeof(val)), NULL, 10), size);
    CU_ASSERT_EQUAL(strtoull(json_get(text, "ops", val, sizeof(val)), NULL, 10), iters);
    CU_ASSERT_EQUAL(strtoull(json_get(text, "errors", val, sizeof(val)), NULL, 10), 0);
    CU_ASSERT(strtod(json_get(text, "gbps", val, sizeof(val)), NULL) > 0);
    CU_ASSERT(strtod(json_get(text, "p50_us", val, sizeof(val)), NULL) > 0);
    CU_ASSERT(strtod(json_get(text, "p99_us", val, sizeof(val)), NULL) >=
              strtod(json_get(text, "p50_us", val, sizeof(val)), NULL));
    hit = strtod(json_get(text, "hit_ratio", val, sizeof(val)), NULL);
    free(text);
    return hit;
}

static void test_raw_shm(void)
{
    run_json("ucperf raw -s 64K -n 300 -o 4 --json", "raw", "shm", "mapped", 65536, 300);
}

static void test_raw_tcp(void)
{
    run_json("ucperf raw -s 1M -n 40 -o 4 -T tcp --json", "raw", "tcp", "am", 1u << 20, 40);
    run_json("ucperf raw -s 4K -n 100 -T tcp -p get --json", "raw", "tcp", "get", 4096, 100);
}

/* hit: every read a hit (shm: mapped; tcp: the owner's reply), posted too */
static void test_hit(void)
{
    CU_ASSERT_DOUBLE_EQUAL(run_json("ucperf hit -s 64K -n 300 --nodes 2 --cache 64M -j",
                                    "hit", "shm", "mapped", 65536, 300), 1.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(run_json("ucperf hit -s 4K -n 200 -o 4 -t 2 --nodes 2 "
                                    "--cache 32M -j", "hit", "shm", "mapped", 4096, 200),
                           1.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(run_json("ucperf hit -s 4K -n 200 -T tcp --nodes 1 --cache 32M -j",
                                    "hit", "tcp", "am", 4096, 200), 1.0, 1e-9);
    /* 4 KiB parts of 1 MiB chunks, and reads of 4 chunks at once: exact */
    CU_ASSERT_DOUBLE_EQUAL(run_json("ucperf hit -s 4K --chunk 1M -n 200 --nodes 2 --cache 64M "
                                    "-j", "hit", "shm", "mapped", 4096, 200), 1.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(run_json("ucperf hit -s 256K --chunk 64K -n 50 -T tcp --nodes 2 "
                                    "--cache 64M -j", "hit", "tcp", "am", 262144, 50), 1.0, 1e-9);
}

/* miss: every read filled by an owner, over passes with new versions */
static void test_miss(void)
{
    CU_ASSERT_DOUBLE_EQUAL(run_json("ucperf miss -s 64K -n 100 --nodes 2 --cache 64M "
                                    "--dataset 2M -j", "miss", "shm", "mapped", 65536, 100),
                           0.0, 1e-9);
}

/* mixed: half the dataset warmed, one shuffled epoch by 2 threads */
static void test_mixed(void)
{
    double hit = run_json("ucperf mixed -s 64K -t 2 --nodes 2 --cache 32M --dataset 8M "
                          "--hit-ratio 0.5 -j", "mixed", "shm", "mapped", 65536, 128);

    CU_ASSERT(fabs(hit - 0.5) < 0.1);
}

/* the SVG: three panels, a line per panel and per size, valid enough */
static void test_plot(void)
{
    ucperf_result_t r[2];
    ucperf_opts_t o;
    char err[256], *buf = NULL, path[] = "/tmp/ucperf-plot.XXXXXX";
    size_t len = 0, n;
    unsigned i, lines = 0;
    FILE *f;
    int fd;

    CU_ASSERT_EQUAL_FATAL(parse(&o, err, "ucperf hit -s 4K,1M --plot x.svg"), 0);
    memset(r, 0, sizeof(r));
    r[0].gbps = 2.5;  r[0].p50_us = 1.2;  r[0].p99_us = 2.0;  r[0].hist[20] = 90;
    r[0].hist[22] = 10;
    r[1].gbps = 8.0;  r[1].p50_us = 126;  r[1].p99_us = 200;  r[1].hist[34] = 100;
    fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    CU_ASSERT_EQUAL(ucperf_plot(path, &o, r, 2), 0);
    f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    buf = malloc(1 << 16);
    n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    len = n;
    CU_ASSERT(len > 1000);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "bandwidth"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "p50 (blue), p99 (red)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "latency histogram"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, ">1M<"));   /* a size tick label */
    for (i = 0; i + 9 < len; i++) {
        lines += (strncmp(buf + i, "<polyline", 9) == 0);
    }
    CU_ASSERT_EQUAL(lines, 5); /* bandwidth, p50, p99, 2 histograms */
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "</svg>"));
    CU_ASSERT_EQUAL(ucperf_plot("/nonexistent/dir/x.svg", &o, r, 2), -1);
    free(buf);
    unlink(path);
}

static void test_raw_duration(void)
{
    ucperf_result_t res;
    ucperf_opts_t o;
    char err[256];

    CU_ASSERT_EQUAL_FATAL(parse(&o, err, "ucperf raw -s 4K -d 0.3 -w 10"), 0);
    CU_ASSERT_EQUAL_FATAL(ucperf_raw_run(&o, &res), UCACHE_OK);
    CU_ASSERT(res.ops > 100);
    CU_ASSERT_EQUAL(res.errors, 0);
    CU_ASSERT(res.seconds >= 0.3);
    CU_ASSERT(res.seconds < 3.0 * (double)tc_slow(1));
}

/* Mode store, in process: every phase reported, no errors, index density. */
static void test_store_mode(void)
{
    static const char *const phases[] = {
        "fill-empty", "fill-evict", "read-verify", "read-batch", "memcpy", "index"
    };
    ucperf_opts_t o;
    char err[256], *buf = NULL, pat[64], *p;
    size_t len = 0;
    unsigned i;
    FILE *f;

    CU_ASSERT_EQUAL_FATAL(parse(&o, err, "ucperf store -s 64K -r 64M -n 2000 -j"), 0);
    CU_ASSERT_EQUAL(o.mode, UCPERF_MODE_STORE);
    f = open_memstream(&buf, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(ucperf_store_run(&o, f), UCACHE_OK);
    fclose(f);
    for (i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
        snprintf(pat, sizeof(pat), "\"phase\":\"%s\"", phases[i]);
        p = strstr(buf, pat);
        CU_ASSERT_PTR_NOT_NULL(p);
        if (p != NULL) {
            CU_ASSERT_PTR_NOT_NULL(strstr(p, "\"errors\":0"));
        }
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"phase\":\"read-verify\",\"size\":65536,"
                                       "\"region\":67108864,\"ops\":2000,"));
    p = strstr(buf, "\"index_bytes_per_chunk\":");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT(strtod(p + strlen("\"index_bytes_per_chunk\":"), NULL) <= 64.0);
    /* the allocators' churn: TLSF here; jemalloc only from the ucperf program */
    p = strstr(buf, "\"phase\":\"churn-tlsf\",\"size\":65536,\"region\":67108864,"
                    "\"ops\":20000,");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    p = strstr(p, "\"payload_share\":");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT(strtod(p + strlen("\"payload_share\":"), NULL) > 0.5);
    CU_ASSERT(strtod(p + strlen("\"payload_share\":"), NULL) <= 1.0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"phase\":\"churn-jemalloc\",\"size\":65536,"
                                       "\"region\":67108864,\"ops\":0,"));
    free(buf);
}

/* Exit status of a shell command line. */
static int sh(const char *fmt, const char *arg)
{
    char cmd[1024];
    int st;

    snprintf(cmd, sizeof(cmd), fmt, arg, arg);
    st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* --compare: the matching ucx_perftest runs and its ratio is printed */
static void test_compare(void)
{
    const char *build = getenv("BUILD");
    char bin[256];

    if (system("command -v ucx_perftest > /dev/null 2>&1") != 0) {
        TC_SKIP_DEP("ucx_perftest is not installed (Debian: ucx-utils)");
        return;
    }
    snprintf(bin, sizeof(bin), "%s/bin", build ? build : "build");
    CU_ASSERT_EQUAL(sh("%s/ucperf raw -s 4K -n 500 --compare ucx_perftest | "
                       "grep -q 'vs ucx_perftest ucp_get: .* p50 latency .*x, bandwidth'", bin), 0);
    CU_ASSERT_EQUAL(sh("%s/ucperf hit -T tcp -s 4K -n 300 --nodes 1 --cache 16M -j "
                       "--compare ucx_perftest | grep -q "
                       "'\"bench\":\"ucx_perftest\".*\"test\":\"ucp_am_lat+ucp_am_bw\".*"
                       "\"ratio_p50\":[0-9]'", bin), 0);
}

static void test_cli(void)
{
    const char *build = getenv("BUILD");
    char bin[256];

    snprintf(bin, sizeof(bin), "%s/bin", build ? build : "build");
    CU_ASSERT_EQUAL(sh("%s/ucperf raw -s 4K -n 50 > /dev/null", bin), 0);
    CU_ASSERT_EQUAL(sh("%s/ucperf raw -s 4K -n 50 --json | grep -q '\"errors\":0'", bin), 0);
    CU_ASSERT_EQUAL(sh("%s/ucperf raw --size nope 2> /dev/null", bin), 2);
    CU_ASSERT_EQUAL(sh("%s/ucperf 2> /dev/null", bin), 2);
    CU_ASSERT_EQUAL(sh("%s/ucperf hit --nodes 99 2> /dev/null", bin), 2);
    CU_ASSERT_EQUAL(sh("%s/ucperf placement --nodes 1000 --keys-per-node 100 --json | "
                       "grep -q '\"nodes\":1000,.*\"wrong_moves\":0'", bin), 0);
    CU_ASSERT_EQUAL(sh("%s/ucperf mixed -s 64K --nodes 1 --cache 16M --dataset 4M "
                       "| grep -q '^mixed shm  mapped'", bin), 0);
    CU_ASSERT_EQUAL(sh("%s/ucperf hit -s 4K,64K -n 100 --nodes 1 --cache 16M "
                       "--plot /tmp/ucperf-cli.svg > /dev/null && grep -q '</svg>' "
                       "/tmp/ucperf-cli.svg && rm /tmp/ucperf-cli.svg", bin), 0);
    CU_ASSERT_EQUAL(sh("%s/ucperf store -s 4K -r 16M -n 1000 | grep -q '^store read-verify'",
                       bin), 0);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    CU_ASSERT_EQUAL(sh("%s/ucperf store -s 64K -r 64M -n 1000 | grep -q "
                       "'^churn jemalloc  not measured: a sanitizer build'", bin), 0);
#else   /* the allocators side by side: jemalloc in a child that preloads it */
    CU_ASSERT_EQUAL(sh("%s/ucperf store -s 64K -r 64M -n 1000 -j | grep -q "
                       "'\"phase\":\"churn-jemalloc\",\"size\":65536,\"region\":67108864,"
                       "\"ops\":10000,.*\"payload_share\":0\\.[1-9]'", bin), 0);
#endif
    CU_ASSERT_EQUAL(sh("%s/ucperf raw --help | grep -q outstanding", bin), 0);
    CU_ASSERT_EQUAL(sh("%s/ucache config | grep -q '^UCACHE_TIMEOUT=2s'", bin), 0);
    CU_ASSERT_EQUAL(sh("UCACHE_TIMEOUT=5s %s/ucache config --json | grep -q "
                       "'\"name\":\"UCACHE_TIMEOUT\",\"value\":\"5s\"'", bin), 0);
    CU_ASSERT_EQUAL(sh("UCACHE_TIMEOUT=soon %s/ucache config > /dev/null 2>&1", bin), 1);
    CU_ASSERT_EQUAL(sh("%s/ucache config --bogus 2> /dev/null", bin), 2);
    CU_ASSERT_EQUAL(sh("%s/ucache frobnicate 2> /dev/null", bin), 2);
    CU_ASSERT_EQUAL(sh("%s/ucache health --members file:/nonexistent/list 2> /dev/null "
                       "> /dev/null", bin), 2);
    CU_ASSERT_EQUAL(sh("%s/ucache health --help | grep -q '2 broken'", bin), 0);
    CU_ASSERT_EQUAL(sh("%s/ucache version | grep -q '^ucache 0.1.0$'", bin), 0);
}

int main(void)
{
    static const tc_test_t option_tests[] = {
        {"options", test_options},
        {"proc_stat", test_proc_stat},
        {NULL, NULL}
    };
    static const tc_test_t raw_tests[] = {
        {"raw_shm_json", test_raw_shm},
        {"raw_tcp_json", test_raw_tcp},
        {"raw_duration", test_raw_duration},
        {"store_json", test_store_mode},
        {NULL, NULL}
    };
    static const tc_test_t fabric_tests[] = {
        {"hit_json", test_hit},
        {"miss_json", test_miss},
        {"mixed_json", test_mixed},
        {"plot_svg", test_plot},
        {NULL, NULL}
    };
    static const tc_test_t cli_tests[] = {
        {"exit_codes_and_output", test_cli},
        {"compare_ucx_perftest", test_compare},
        {NULL, NULL}
    };

    setenv("UCACHE_LOG_LEVEL", "error", 0);
    unsetenv("UCACHE_MEMBERS"); /* the fabric modes start their own owners */
    if ((CU_initialize_registry() != CUE_SUCCESS) ||
        tc_add_suite("ucperf_options", option_tests) ||
        tc_add_suite("ucperf_raw", raw_tests) ||
        tc_add_suite("ucperf_fabric", fabric_tests) ||
        tc_add_suite("cli", cli_tests)) {
        return 2;
    }
    return tc_run();
}
