/*
 * fi_read_loop.c - the baseline of `ucperf raw --transport ofi` (issue
 * [11/11]): the least a program can do to read remote memory through
 * libfabric, for the same provider, window and sizes.  Debian 12 ships no
 * fabtests, so this is it: a target process registers a region (and
 * progresses its queue: the providers here need it), this process
 * registers its buffers and keeps WINDOW fi_reads of SIZE bytes in flight
 * over the region, ITERS of them.  No verification, no deadlines, no
 * protocol: the ceiling ucache's backend is measured against.  The
 * program is perf/fi_read_loop.c; this file is not in libucache-rdma (the
 * library loads libfabric only when asked; this links it).
 */
#include "transport/fi_read_loop.h"

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_rma.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_errno.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REGION (256u << 20)

typedef struct fl {
    struct fi_info    *info;
    struct fid_fabric *fabric;
    struct fid_domain *domain;
    struct fid_av     *av;
    struct fid_cq     *cq;
    struct fid_ep     *ep;
} fl_t;

/* What the target tells the reader: its address and its region's key. */
typedef struct fl_target {
    uint8_t  name[64];
    size_t   len;
    uint64_t base, key;
    int      virt;
} fl_target_t;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* res->why: @p what failed, and libfabric's word for @p ret; -1. */
static int fl_fail(ut_frl_result_t *res, const char *what, int ret)
{
    snprintf(res->why, sizeof(res->why), "%s: %s", what, fi_strerror(ret < 0 ? -ret : ret));
    return -1;
}

static void fl_close(fl_t *f)
{
    struct fid *fids[] = { f->ep ? &f->ep->fid : NULL, f->cq ? &f->cq->fid : NULL,
                           f->av ? &f->av->fid : NULL, f->domain ? &f->domain->fid : NULL,
                           f->fabric ? &f->fabric->fid : NULL };
    size_t i;

    for (i = 0; i < sizeof(fids) / sizeof(fids[0]); i++) {
        if (fids[i] != NULL) {
            fi_close(fids[i]);
        }
    }
    if (f->info != NULL) {
        fi_freeinfo(f->info);
    }
    memset(f, 0, sizeof(*f));
}

static int fl_open(fl_t *f, const char *prov, ut_frl_result_t *res)
{
    struct fi_cq_attr cq_attr = { .format = FI_CQ_FORMAT_CONTEXT };
    struct fi_av_attr av_attr = { .type = FI_AV_UNSPEC };
    struct fi_info *hints = fi_allocinfo();
    int ret;

    memset(f, 0, sizeof(*f));
    if (hints == NULL) {
        return fl_fail(res, "fi_allocinfo", FI_ENOMEM);
    }
    hints->ep_attr->type = FI_EP_RDM;
    hints->caps = FI_MSG | FI_RMA | FI_READ | FI_REMOTE_READ;
    hints->mode = FI_CONTEXT | FI_CONTEXT2;
    hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED |
                                  FI_MR_PROV_KEY;
    hints->fabric_attr->prov_name = strdup(prov);
    ret = fi_getinfo(FI_VERSION(1, 9), NULL, NULL, 0, hints, &f->info);
    fi_freeinfo(hints);
    if (ret != 0) {
        f->info = NULL;
        return fl_fail(res, "fi_getinfo", ret);
    }
    if ((ret = fi_fabric(f->info->fabric_attr, &f->fabric, NULL)) ||
        (ret = fi_domain(f->fabric, f->info, &f->domain, NULL)) ||
        (ret = fi_av_open(f->domain, &av_attr, &f->av, NULL)) ||
        (ret = fi_cq_open(f->domain, &cq_attr, &f->cq, NULL)) ||
        (ret = fi_endpoint(f->domain, f->info, &f->ep, NULL)) ||
        (ret = fi_ep_bind(f->ep, &f->av->fid, 0)) ||
        (ret = fi_ep_bind(f->ep, &f->cq->fid, FI_TRANSMIT | FI_RECV)) ||
        (ret = fi_enable(f->ep))) {
        fl_close(f);
        return fl_fail(res, "opening the endpoint", ret);
    }
    return 0;
}

/* The target process: a region, its address and key up the pipe, then
 * progress until the reader closes @p ctl.  Never returns. */
_Noreturn static void fl_target_run(const char *prov, int up, int ctl)
{
    struct fi_cq_entry ent[16];
    ut_frl_result_t res;
    fl_target_t t;
    struct fid_mr *mr;
    uint8_t *region;
    char c;
    fl_t f;

    region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if ((region == MAP_FAILED) || (fl_open(&f, prov, &res) != 0)) {
        _exit(1);
    }
    memset(region, 0x5a, REGION);
    memset(&t, 0, sizeof(t));
    t.len = sizeof(t.name);
    if ((fi_mr_reg(f.domain, region, REGION, FI_REMOTE_READ, 0, 1, 0, &mr, NULL) != 0) ||
        (fi_getname(&f.ep->fid, t.name, &t.len) != 0)) {
        _exit(1);
    }
    t.base = (uint64_t)(uintptr_t)region;
    t.key  = fi_mr_key(mr);
    t.virt = !!(f.info->domain_attr->mr_mode & FI_MR_VIRT_ADDR);
    if (write(up, &t, sizeof(t)) != (ssize_t)sizeof(t)) {
        _exit(1);
    }
    fcntl(ctl, F_SETFL, O_NONBLOCK);
    for (;;) {
        fi_cq_read(f.cq, ent, 16);
        if (read(ctl, &c, 1) == 0) {
            _exit(0);
        }
    }
}

/* Post the read of slot @p i (the next offset of the rotation). */
static int fl_post(fl_t *f, const fl_target_t *t, fi_addr_t fa, struct fid_mr *lmr,
                   uint8_t *buf, size_t size, size_t i, uint64_t n, struct fi_context2 *ctx)
{
    uint64_t off = (n * 2654435761ull) % (REGION / 2) & ~4095ull;
    struct fi_cq_entry ent[1];
    int ret;

    do {
        ret = (int)fi_read(f->ep, buf + i * size, size, fi_mr_desc(lmr), fa,
                           (t->virt ? t->base : 0) + off, t->key, ctx);
        if (ret == -FI_EAGAIN) {
            fi_cq_read(f->cq, ent, 0);
        }
    } while (ret == -FI_EAGAIN);
    return ret;
}

int ut_fi_read_loop(const char *prov, size_t size, size_t window, size_t iters,
                    ut_frl_result_t *res)
{
    size_t posted = 0, done = 0, i, nlat = 0;
    struct fi_cq_entry ent[16];
    struct fid_mr *lmr = NULL;
    struct fi_context2 *ctxs = NULL;
    uint64_t t0, t1, *lat = NULL, *post_t = NULL;
    int up[2], ctl[2] = { -1, -1 }, ret = -1;
    fl_target_t t;
    fi_addr_t fa;
    uint8_t *buf = NULL;
    pid_t pid;
    fl_t f;

    memset(res, 0, sizeof(*res));
    memset(&f, 0, sizeof(f));
    if ((size == 0) || (size > REGION / 2) || (window == 0) || (window > 256) ||
        (iters == 0)) {
        snprintf(res->why, sizeof(res->why), "bad arguments (size 1..%u, window 1..256)",
                 REGION / 2);
        return -1;
    }
    if ((pipe(up) != 0) || (pipe(ctl) != 0)) {
        snprintf(res->why, sizeof(res->why), "pipe: %m");
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        close(up[0]);
        close(ctl[1]);
        fl_target_run(prov, up[1], ctl[0]);
    }
    close(up[1]);
    close(ctl[0]);
    if ((pid < 0) || (read(up[0], &t, sizeof(t)) != (ssize_t)sizeof(t))) {
        snprintf(res->why, sizeof(res->why),
                 "the target process did not start (has libfabric a provider %s here? "
                 "fi_info -l)", prov);
        goto out;
    }
    if (fl_open(&f, prov, res) != 0) {
        goto out;
    }
    if (fi_av_insert(f.av, t.name, 1, &fa, 0, NULL) != 1) {
        fl_fail(res, "fi_av_insert", FI_EINVAL);
        goto out;
    }
    buf    = aligned_alloc(4096, (size * window + 4095) & ~(size_t)4095);
    ctxs   = calloc(window, sizeof(*ctxs));
    lat    = calloc(iters, sizeof(*lat));
    post_t = calloc(window, sizeof(*post_t));
    if ((buf == NULL) || (ctxs == NULL) || (lat == NULL) || (post_t == NULL)) {
        fl_fail(res, "allocating buffers", FI_ENOMEM);
        goto out;
    }
    memset(buf, 0, size * window);
    ret = fi_mr_reg(f.domain, buf, size * window, FI_READ, 0, 2, 0, &lmr, NULL);
    if (ret != 0) {
        lmr = NULL;
        ret = fl_fail(res, "fi_mr_reg (local)", ret);
        goto out;
    }
    t0 = now_ns();
    for (i = 0; (i < window) && (posted < iters); i++) {
        post_t[i] = now_ns();
        if ((ret = fl_post(&f, &t, fa, lmr, buf, size, i, posted++, &ctxs[i])) != 0) {
            ret = fl_fail(res, "fi_read", ret);
            goto out;
        }
    }
    while (done < iters) {
        ssize_t n = fi_cq_read(f.cq, ent, 16), k;

        if (n == -FI_EAVAIL) {
            struct fi_cq_err_entry err = { 0 };

            fi_cq_readerr(f.cq, &err, 0);
            ret = fl_fail(res, "a read failed", err.err);
            goto out;
        }
        for (k = 0; k < n; k++) {
            i = (size_t)((struct fi_context2 *)ent[k].op_context - ctxs);
            lat[nlat++] = now_ns() - post_t[i];
            done++;
            if (posted < iters) {
                post_t[i] = now_ns();
                if ((ret = fl_post(&f, &t, fa, lmr, buf, size, i, posted++, &ctxs[i])) != 0) {
                    ret = fl_fail(res, "fi_read", ret);
                    goto out;
                }
            }
        }
    }
    t1 = now_ns();
    qsort(lat, nlat, sizeof(*lat), cmp_u64);
    res->gbs    = (double)size * (double)iters / (double)(t1 - t0);
    res->p50_us = (double)lat[nlat / 2] / 1000.0;
    ret = 0;
out:
    close(up[0]);
    close(ctl[1]); /* the target exits */
    if (pid > 0) {
        waitpid(pid, NULL, 0);
    }
    if (lmr != NULL) {
        fi_close(&lmr->fid);
    }
    fl_close(&f);
    free(buf);
    free(ctxs);
    free(lat);
    free(post_t);
    return ret;
}
