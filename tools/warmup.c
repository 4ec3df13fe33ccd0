/*
 * warmup.c - `ucache warmup`: load a dataset's chunks into their owners
 * before training reads it; `ucache pin` (warmup --pin) and `ucache evict`
 * (every owner drops the chunks) are the same walk with other flags.  The objects (URIs, listed prefixes, a
 * manifest) are cut into 64 MiB units; --parallel threads take units from
 * one queue and call ucache_warm() on them, so owners fill in parallel and
 * no bytes travel to this process.  Progress: a bar on a terminal, plain
 * lines otherwise; then a summary (or one JSON object with --json).
 * Exit codes: 0 every chunk warm (and pinned with --pin), 1 some failed,
 * 2 bad command line.
 */
#include "tools/commands.h"
#include "tools/dataset.h"
#include "util/config.h"
#include "util/opt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WU_UNIT (64ull << 20)   /* bytes of an object per ucache_warm() call */

typedef struct wu_state {
    ucache_h             ctx;
    const ds_file_t     *files;
    unsigned             nfiles;
    unsigned             flags;
    pthread_mutex_t      lock;
    unsigned             next;      /* next file to cut units from */
    uint64_t             cursor;    /* its next unit's offset      */
    ucache_warm_result_t res;
    uint64_t             failed_units, failed_bytes;
    unsigned             running;
    const char          *cmd;       /* "warmup", "pin", "evict" */
} wu_state_t;

static void *wu_worker(void *arg)
{
    wu_state_t *w = arg;
    ucache_warm_result_t r;
    ucache_status_t status;
    const ds_file_t *f;
    uint64_t off, len;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        while ((w->next < w->nfiles) && (w->cursor >= w->files[w->next].size)) {
            w->next++;            /* done with it (or empty) */
            w->cursor = 0;
        }
        if (w->next >= w->nfiles) {
            break;
        }
        f   = &w->files[w->next];
        off = w->cursor;
        len = WU_UNIT;
        w->cursor += WU_UNIT;
        pthread_mutex_unlock(&w->lock);
        memset(&r, 0, sizeof(r));
        status = ucache_warm(w->ctx, f->uri, off, len, w->flags, &r);
        pthread_mutex_lock(&w->lock);
        w->res.chunks   += r.chunks;
        w->res.bytes    += r.bytes;
        w->res.hits     += r.hits;
        w->res.filled   += r.filled;
        w->res.unpinned += r.unpinned;
        w->res.evicted  += r.evicted;
        if (status != UCACHE_OK) {
            w->failed_units++;
            w->failed_bytes += ((f->size - off < len) ? f->size - off : len) - r.bytes;
            fprintf(stderr, "%sucache %s: %.*s at %llu: %s\n",
                    isatty(STDERR_FILENO) ? "\r\033[K" : "", w->cmd,
                    (int)strcspn(f->uri, "?#"), f->uri, (unsigned long long)off,
                    ucache_strerror(status));
        }
    }
    w->running--;
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void wu_progress(wu_state_t *w, uint64_t total, double t, int tty)
{
    ucache_warm_result_t r;
    char a[32], b[32], rate[32], eta[32], bar[41];
    uint64_t done, failed;
    double frac, bps;
    unsigned i, fill;

    pthread_mutex_lock(&w->lock);
    r = w->res;
    failed = w->failed_bytes;
    pthread_mutex_unlock(&w->lock);
    done = r.bytes + failed;
    frac = total ? (double)done / (double)total : 1.0;
    bps  = (t > 0) ? r.bytes / t : 0;
    if ((bps > 0) && (done < total)) {
        double s = (double)(total - done) / bps;
        snprintf(eta, sizeof(eta), "%u:%02u", (unsigned)(s / 60), (unsigned)s % 60);
    } else {
        snprintf(eta, sizeof(eta), "-");
    }
    ds_bytes(bps, rate, sizeof(rate));
    if (tty) {
        fill = (unsigned)(frac * 40);
        for (i = 0; i < 40; i++) {
            bar[i] = (i < fill) ? '#' : '-';
        }
        bar[40] = '\0';
        fprintf(stderr, "\r\033[K[%s] %3.0f%%  %s / %s  %llu chunks  %s/s  ETA %s", bar,
                100 * frac, ds_bytes((double)done, a, sizeof(a)),
                ds_bytes((double)total, b, sizeof(b)), (unsigned long long)r.chunks, rate,
                eta);
    } else {
        fprintf(stderr, "%s: %.0f%% %s / %s, %llu chunks, %s/s, ETA %s\n", w->cmd, 100 * frac,
                ds_bytes((double)done, a, sizeof(a)), ds_bytes((double)total, b, sizeof(b)),
                (unsigned long long)r.chunks, rate, eta);
    }
}

static void wu_usage(FILE *out, const char *cmd)
{
    if (strcmp(cmd, "pin") == 0) {
        fprintf(out,
            "usage: ucache pin [URI|PREFIX/]... [--manifest FILE] [--unpin] [--parallel N]\n"
            "                  [--members SRC] [--json]\n"
            "Pins every chunk of the objects in its owner (filling it from the origin\n"
            "first if it is not cached), so eviction never drops it; pins may take 90%%\n"
            "of a node's memory.  --unpin releases them.  The same as `ucache warmup\n"
            "--pin`; prefixes and manifests as for warmup.\n"
            "Exit: 0 all pinned, 1 something failed or stayed unpinned, 2 bad command line.\n");
        return;
    }
    if (strcmp(cmd, "evict") == 0) {
        fprintf(out,
            "usage: ucache evict [URI|PREFIX/]... [--manifest FILE] [--parallel N]\n"
            "                    [--members SRC] [--json]\n"
            "Drops every chunk of the objects' current versions from every owner that\n"
            "holds one, pinned or not (the next read fills it again from the origin).\n"
            "Prefixes and manifests as for warmup.\n"
            "Exit: 0 done, 1 an owner could not be reached or refused, 2 bad command line.\n");
        return;
    }
    fprintf(out,
        "usage: ucache warmup [URI|PREFIX/]... [--manifest FILE] [--pin | --unpin]\n"
        "                     [--tier memory|nvme] [--parallel N] [--members SRC] [--json]\n"
        "Loads every chunk of the objects into its owner node, owners filling from\n"
        "the origin in parallel; no data comes to this machine.  A URI ending in '/'\n"
        "(or a file:// directory) is a prefix: every object under it is listed\n"
        "(file://, az:// List Blobs, s3:// ListObjectsV2).  A manifest (- for stdin)\n"
        "holds one URI or prefix a line ('#' comments).\n"
        "  --pin          pin the chunks against eviction (up to 90%% of each node)\n"
        "  --unpin        unpin them instead (fills nothing)\n"
        "  --tier nvme    load them onto the owners' NVMe tier, not into memory (an\n"
        "                 owner without one keeps them in memory)\n"
        "  --parallel N   chunks being warmed at once, in 64 MiB units (default 16)\n"
        "  --json         the summary as one JSON object on stdout\n"
        "Progress goes to stderr: a bar on a terminal, else a line a second.\n"
        "Exit: 0 all warm (and pinned), 1 something failed, 2 bad command line.\n");
}

/* warmup, pin and evict: @p flags preset by the command. */
static int wu_main(int argc, char **argv, const char *cmd, unsigned flags)
{
    static const uc_opt_t opts[] = {
        {"manifest", 'm', UC_OPT_STR},
        {"pin", 'p', UC_OPT_FLAG},
        {"unpin", 'u', UC_OPT_FLAG},
        {"tier", 't', UC_OPT_WORD, .words = "memory|nvme"},
        {"parallel", 'P', UC_OPT_UINT, 1, 1024},
        {"members", 'M', UC_OPT_STR},
        {"json", 'j', UC_OPT_FLAG},
        {"help", 'h', UC_OPT_FLAG},
        {NULL, 0, UC_OPT_FLAG}
    };
    ucache_params_t p = { .field_mask = 0 };
    const char *manifest = NULL;
    unsigned nthreads = 16, nfiles = 0, i, started = 0;
    int c, json = 0, tty = isatty(STDERR_FILENO), rc;
    char a[32], b[32];
    uint64_t total = 0;
    uc_optparse_t op;
    uc_optval_t v;
    double t0, t, last;
    ucache_status_t status;
    pthread_t *threads;
    ds_file_t *files;
    wu_state_t w;

    memset(&w, 0, sizeof(w));
    w.cmd   = cmd;
    w.flags = flags;
    if ((c = cmd_opts(&op, argc, argv, cmd, opts)) >= 0) {
        return c;
    }
    while ((c = cmd_opt_next(&op, cmd, &v, NULL)) > 0) {
        switch (c) {
        case 'm':
            manifest = v.s;
            break;
        case 'p':
            if (flags != 0) { /* pin and evict say it by their name */
                wu_usage(stderr, cmd);
                return 2;
            }
            w.flags |= UCACHE_WARM_PIN;
            break;
        case 'u':
            if (flags == UCACHE_WARM_EVICT) {
                wu_usage(stderr, cmd);
                return 2;
            }
            w.flags = (flags == UCACHE_WARM_PIN) ? UCACHE_WARM_UNPIN : (w.flags | UCACHE_WARM_UNPIN);
            break;
        case 't':
            if (flags != 0) {    /* warmup's alone */
                wu_usage(stderr, cmd);
                return 2;
            }
            w.flags = (v.u == 1) ? (w.flags | UCACHE_WARM_NVME) : (w.flags & ~UCACHE_WARM_NVME);
            break;
        case 'P':
            nthreads = (unsigned)v.u;
            break;
        case 'M':
            p.members = v.s;
            p.field_mask |= UCACHE_PARAM_FIELD_MEMBERS;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            wu_usage(stdout, cmd);
            return 0;
        }
    }
    if (c < 0) {
        wu_usage(stderr, cmd);
        return 2;
    }
    if (((op.optind >= argc) && (manifest == NULL)) ||
        (w.flags == (UCACHE_WARM_PIN | UCACHE_WARM_UNPIN)) ||
        ((w.flags & UCACHE_WARM_NVME) && (w.flags & (UCACHE_WARM_PIN | UCACHE_WARM_UNPIN)))) {
        wu_usage(stderr, cmd);
        return 2;
    }
    status = ucache_init(&p, &w.ctx);
    if (status != UCACHE_OK) {
        fprintf(stderr, "ucache %s: %s\n", cmd, ucache_strerror(status));
        return 1;
    }
    snprintf(a, sizeof(a), "ucache %s", cmd);
    if (ds_collect(w.ctx, a, argc - op.optind, argv + op.optind, manifest, &files,
                   &nfiles) != 0) {
        ucache_finalize(w.ctx);
        return 1;
    }
    for (i = 0; i < nfiles; i++) {
        total += files[i].size;
    }
    if (!json) {
        printf("%s: %u objects, %s%s\n", cmd, nfiles, ds_bytes((double)total, a, sizeof(a)),
               (w.flags & UCACHE_WARM_PIN) ? ", pinning" :
               (w.flags & UCACHE_WARM_UNPIN) ? ", unpinning" :
               (w.flags & UCACHE_WARM_EVICT) ? ", evicting" :
               (w.flags & UCACHE_WARM_NVME) ? ", onto the owners' NVMe" : "");
        fflush(stdout);
    }
    w.files  = files;
    w.nfiles = nfiles;
    pthread_mutex_init(&w.lock, NULL);
    threads = calloc(nthreads, sizeof(*threads));
    t0 = last = ds_now();
    w.running = nthreads;
    for (i = 0; (threads != NULL) && (i < nthreads); i++) {
        if (pthread_create(&threads[i], NULL, wu_worker, &w) != 0) {
            break;
        }
        started++;
    }
    pthread_mutex_lock(&w.lock);
    w.running -= nthreads - started;
    pthread_mutex_unlock(&w.lock);
    if (started == 0) {
        wu_worker(&w); /* no threads: do it here */
    }
    for (;;) {
        usleep(50000);
        pthread_mutex_lock(&w.lock);
        rc = (w.running == 0);
        pthread_mutex_unlock(&w.lock);
        t = ds_now();
        if (rc || (t - last >= (tty ? 0.2 : 1.0))) {
            wu_progress(&w, total, t - t0, tty);
            last = t;
        }
        if (rc) {
            break;
        }
    }
    if (tty) {
        fputc('\n', stderr);
    }
    for (i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
    }
    t = ds_now() - t0;
    rc = (w.failed_units > 0) || (w.res.unpinned > 0);
    if (json) {
        printf("{\"objects\":%u,\"bytes\":%llu,\"chunks\":%llu,\"hits\":%llu,"
               "\"filled\":%llu,\"unpinned\":%llu,\"evicted\":%llu,\"failed_bytes\":%llu,"
               "\"seconds\":%.3f,\"mib_per_s\":%.1f,\"pin\":%s,\"ok\":%s}\n",
               nfiles, (unsigned long long)w.res.bytes, (unsigned long long)w.res.chunks,
               (unsigned long long)w.res.hits, (unsigned long long)w.res.filled,
               (unsigned long long)w.res.unpinned, (unsigned long long)w.res.evicted,
               (unsigned long long)w.failed_bytes, t,
               (t > 0) ? w.res.bytes / 1048576.0 / t : 0.0,
               (w.flags & UCACHE_WARM_PIN) ? "true" : "false", rc ? "false" : "true");
    } else if (w.flags & UCACHE_WARM_EVICT) {
        printf("evict: %s in %llu chunks in %.2f s: %llu cached copies dropped",
               ds_bytes((double)w.res.bytes, a, sizeof(a)), (unsigned long long)w.res.chunks,
               t, (unsigned long long)w.res.evicted);
    } else {
        printf("%s: %s in %llu chunks in %.2f s (%s/s): %llu filled from the origin, "
               "%llu already cached%s", cmd,
               ds_bytes((double)w.res.bytes, a, sizeof(a)), (unsigned long long)w.res.chunks,
               t, ds_bytes((t > 0) ? w.res.bytes / t : 0, b, sizeof(b)),
               (unsigned long long)w.res.filled, (unsigned long long)w.res.hits,
               (w.flags & UCACHE_WARM_UNPIN) ? " (unpinned)" : "");
    }
    if (!json) {
        if (w.res.unpinned > 0) {
            printf("; %llu NOT pinned (pins are capped at 90%% of a node's memory, a "
                   "reader's at UCACHE_PIN_QUOTA per dataset)",
                   (unsigned long long)w.res.unpinned);
        }
        if (w.failed_units > 0) {
            printf("; FAILED: %s in %llu ranges (see above)",
                   ds_bytes((double)w.failed_bytes, a, sizeof(a)),
                   (unsigned long long)w.failed_units);
        }
        printf("\n");
    }
    free(threads);
    free(files);
    pthread_mutex_destroy(&w.lock);
    ucache_finalize(w.ctx);
    return rc;
}

int cmd_warmup(int argc, char **argv)
{
    return wu_main(argc, argv, "warmup", 0);
}

int cmd_pin(int argc, char **argv)
{
    return wu_main(argc, argv, "pin", UCACHE_WARM_PIN);
}

int cmd_evict(int argc, char **argv)
{
    return wu_main(argc, argv, "evict", UCACHE_WARM_EVICT);
}
