/*
 * bench_raw.c - ucperf mode raw: the transport read primitive alone.
 * An exporter process (perf/exporter.c) exports a region filled with a
 * known pattern and serves it from a progress thread; this process reads it
 * (gets where the key allows, else the exporter's read RPC: an
 * active-message request with a bulk reply) with up to
 * --outstanding reads in flight, times every read from post to completion,
 * and checks three words of every read against the pattern (full byte
 * comparison is the unit tests' job; here it would swamp a memcpy).
 */
#include "perf/ucperf.h"
#include "util/latency.h"
#include "perf/exporter.h"
#include "transport/transport.h"
#include "util/log.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>


#define UCPERF_MAX_SAMPLES (20u * 1000u * 1000u)

#define RAW_SEED 0x5bd1e995ull

ucache_status_t ucperf_raw_run(const ucperf_opts_t *o, ucperf_result_t *res)
{
    const unsigned k = o->outstanding;
    uint64_t region, nslots, target, posted = 0, done = 0, measured = 0;
    uint64_t t_start = 0, *lat = NULL, *t_post = NULL, *off = NULL;
    uint64_t nsamples = 0, cap;
    double cpu0 = 0, own0 = -1, own1;
    ut_config_t tcfg;
    ut_params_t tp = { .field_mask = UT_PARAM_FIELD_CONFIG };
    ucperf_exporter_t ex = { .pid = 0, .ctl = -1 };
    ucache_status_t status;
    uc_config_t cfg;
    ut_req_t *reqs = NULL;
    ucperf_read_msg_t *msgs = NULL;
    ut_peer_t *peer = NULL;
    ut_rkey_t *rkey = NULL;
    ut_path_t path;
    ut_ctx_t *ctx = NULL;
    uint8_t *bufs = NULL;
    unsigned i;
    bool measuring;

    memset(res, 0, sizeof(*res));
    res->path = "none";
    res->hit_ratio = res->nvme_ratio = res->direct_ratio = -1;
    ucperf_transport_env(o);
    /* gets where no transport has native RMA need UCX's software RMA on
     * both sides: a test mode, which a benchmark asking for gets is */
    if (strcmp(o->path, "get") == 0) {
        setenv("UCACHE_EMULATED_RMA", "yes", 1);
    }
    status = uc_config_load(&cfg);
    if (status != UCACHE_OK) {
        return status;
    }
    status = uc_config_set(&cfg, "READ_PATH", o->path);
    if (status != UCACHE_OK) {
        return status;
    }
    if (cfg.max_outstanding < k + 1) {
        cfg.max_outstanding = k + 1;
    }

    /* A region several reads wide, so reads rotate through memory. */
    region = (uint64_t)o->size * k * 4;
    region = (region < (64ull << 20)) ? (64ull << 20) : region;
    region = (region > (1ull << 30)) ? (1ull << 30) : region;
    region = (o->region != 0) ? o->region : region;
    region = (region + 4095) & ~4095ull;
    nslots = (region - o->size) / 4096 + 1;

    status = ucperf_exporter_start(&ex, region, RAW_SEED, NULL);
    if (status != UCACHE_OK) {
        goto out;
    }
    ut_config_from(&tcfg, &cfg);
    tp.config = &tcfg;
    status = ut_ctx_create(NULL, &tp, &ctx);
    if (status != UCACHE_OK) {
        goto out;
    }
    status = ut_peer_create(ctx, ex.addr, ex.addr_len, &peer);
    if (status == UCACHE_OK) {
        status = ut_rkey_unpack(peer, ex.rkey, ex.rkey_len, &rkey);
    }
    if (status != UCACHE_OK) {
        goto out;
    }

    path   = ut_rkey_path(rkey);   /* decided once, followed by every read */
    target = o->warmup + ((o->iters > 0) ? o->iters : UINT64_MAX / 2);
    cap    = (o->iters > 0 && o->iters < UCPERF_MAX_SAMPLES) ? o->iters : UCPERF_MAX_SAMPLES;
    reqs   = calloc(k, sizeof(*reqs));
    msgs   = calloc(k, sizeof(*msgs));
    t_post = calloc(k, sizeof(*t_post));
    off    = calloc(k, sizeof(*off));
    lat    = malloc(cap * sizeof(*lat));
    bufs   = aligned_alloc(4096, (((size_t)k * o->size) + 4095) & ~(size_t)4095);
    if ((reqs == NULL) || (msgs == NULL) || (t_post == NULL) || (off == NULL) || (lat == NULL) ||
        (bufs == NULL)) {
        status = UCACHE_ERR_NO_MEMORY;
        goto out;
    }
    memset(bufs, 0, (size_t)k * o->size); /* fault the pages in up front */

#define RAW_POST(_i)                                                          \
    do {                                                                      \
        off[_i]    = ((posted * 2654435761u) % nslots) * 4096;                \
        t_post[_i] = uc_time_ns();                                            \
        ucperf_read_post(&reqs[_i], rkey, path, &msgs[_i], off[_i],           \
                         bufs + (size_t)(_i) * o->size, o->size);             \
        posted++;                                                             \
    } while (0)

    for (i = 0; (i < k) && (posted < target); i++) {
        RAW_POST(i);
    }
    measuring = (o->warmup == 0);
    if (measuring) {
        t_start = uc_time_ns();
        cpu0    = ucperf_self_cpu();
        own0    = ucperf_pid_cpu(ex.pid);
    }
    while (done < posted) {
        ut_wait(ctx, reqs, k, 0);
        for (i = 0; i < k; i++) {
            uint64_t now;

            if ((t_post[i] == 0) || (reqs[i].status == UCACHE_INPROGRESS)) {
                continue;
            }
            now = uc_time_ns();
            if (measuring) {
                if (reqs[i].status != UCACHE_OK) {
                    res->errors++;
                } else {
                    res->errors += ucperf_pattern_check3(bufs + (size_t)i * o->size, off[i], o->size,
                                                         RAW_SEED);
                }
                if (nsamples < cap) {
                    lat[nsamples++] = now - t_post[i];
                }
                measured++;
                if (res->path[0] == 'n') {
                    res->path = ut_path_name((reqs[i].path == UT_PATH_RPC) ?
                                             UT_PATH_AM : reqs[i].path); /* read RPC */
                }
            }
            done++;
            t_post[i] = 0;
            if (!measuring && (done >= o->warmup)) {
                /* Start the clock when the warm-up reads are all in. */
                measuring = true;
                t_start   = uc_time_ns();
                cpu0      = ucperf_self_cpu();
                own0      = ucperf_pid_cpu(ex.pid);
            }
            if ((o->iters == 0) && measuring && (now > t_start) &&
                (now - t_start >= (uint64_t)(o->duration * 1e9))) {
                target = posted; /* drain what is in flight */
            }
            if (posted < target) {
                RAW_POST(i);
            }
        }
    }
    res->seconds = (uc_time_ns() - t_start) / 1e9;
    res->ops     = measured;
    if ((res->seconds > 0) && (measured > 0)) {
        double gb = (double)measured * (double)o->size / 1e9;

        res->gbps = gb / res->seconds;
        res->mops = (double)measured / res->seconds / 1e6;
        res->client_cpu_s_per_gb = (ucperf_self_cpu() - cpu0) / gb;
        own1 = ucperf_pid_cpu(ex.pid);
        res->owner_cpu_s_per_gb = ((own0 >= 0) && (own1 >= 0)) ? (own1 - own0) / gb : -1;
    }
    uc_lat_sort(lat, nsamples);
    ucperf_latencies(lat, nsamples, res);
    status = UCACHE_OK;

out:
    ut_rkey_destroy(rkey);
    ut_peer_destroy(peer);
    ut_ctx_destroy(ctx);
    if (ex.ctl >= 0) {
        ucperf_exporter_stop(&ex, 0);
    }
    free(reqs);
    free(msgs);
    free(t_post);
    free(off);
    free(lat);
    free(bufs);
    return status;
}
