/*
 * fi_read_loop.c - the baseline of `ucperf raw --transport ofi` (issue
 * [11/11]): the least a program can do to read remote memory through
 * libfabric, for the same provider, window and sizes.  Debian 12 ships no
 * fabtests, so this is it: a target process registers a region (and
 * progresses its queue: the providers here need it), this process
 * registers its buffers and keeps WINDOW fi_reads of SIZE bytes in flight
 * over the region, ITERS of them.  No verification, no deadlines, no
 * protocol: the ceiling ucache's backend is measured against.
 * Usage: fi_read_loop PROVIDER SIZE WINDOW ITERS
 * Prints one JSON line: {"bench":"fi_read_loop",...,"gbs":..,"p50_us":..}
 * A program of its own (not in libucache-rdma: the library loads libfabric
 * only when asked), kept in transport/ with the rest of what includes
 * libfabric; make bench builds it as build/bin/fi_read_loop.
 */
#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_rma.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_errno.h>

#include <fcntl.h>
#include <signal.h>
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

static void die(const char *what, int ret)
{
    fprintf(stderr, "fi_read_loop: %s: %s\n", what, fi_strerror(ret < 0 ? -ret : ret));
    exit(1);
}

static void fl_open(fl_t *f, const char *prov)
{
    struct fi_cq_attr cq_attr = { .format = FI_CQ_FORMAT_CONTEXT };
    struct fi_av_attr av_attr = { .type = FI_AV_UNSPEC };
    struct fi_info *hints = fi_allocinfo();
    int ret;

    hints->ep_attr->type = FI_EP_RDM;
    hints->caps = FI_MSG | FI_RMA | FI_READ | FI_REMOTE_READ;
    hints->mode = FI_CONTEXT | FI_CONTEXT2;
    hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED |
                                  FI_MR_PROV_KEY;
    hints->fabric_attr->prov_name = strdup(prov);
    ret = fi_getinfo(FI_VERSION(1, 9), NULL, NULL, 0, hints, &f->info);
    if (ret != 0) {
        die("fi_getinfo", ret);
    }
    fi_freeinfo(hints);
    if ((ret = fi_fabric(f->info->fabric_attr, &f->fabric, NULL)) ||
        (ret = fi_domain(f->fabric, f->info, &f->domain, NULL)) ||
        (ret = fi_av_open(f->domain, &av_attr, &f->av, NULL)) ||
        (ret = fi_cq_open(f->domain, &cq_attr, &f->cq, NULL)) ||
        (ret = fi_endpoint(f->domain, f->info, &f->ep, NULL)) ||
        (ret = fi_ep_bind(f->ep, &f->av->fid, 0)) ||
        (ret = fi_ep_bind(f->ep, &f->cq->fid, FI_TRANSMIT | FI_RECV)) ||
        (ret = fi_enable(f->ep))) {
        die("opening the endpoint", ret);
    }
}

int main(int argc, char **argv)
{
    struct { uint8_t name[64]; size_t len; uint64_t base, key; int virt; } t;
    struct fi_cq_entry ent[16];
    struct fid_mr *mr, *lmr;
    struct fi_context2 *ctxs;
    size_t size, window, iters, posted = 0, done = 0, i, nlat = 0;
    uint64_t t0, t1, *lat, *post_t;
    int up[2], ctl[2], ret;
    fi_addr_t fa;
    uint8_t *buf, *region;
    pid_t pid;
    fl_t f;

    if (argc != 5) {
        fprintf(stderr, "usage: fi_read_loop PROVIDER SIZE WINDOW ITERS\n");
        return 2;
    }
    size   = strtoull(argv[2], NULL, 0);
    window = strtoull(argv[3], NULL, 0);
    iters  = strtoull(argv[4], NULL, 0);
    if ((size == 0) || (size > REGION / 2) || (window == 0) || (window > 256) || (iters == 0) ||
        (pipe(up) != 0) || (pipe(ctl) != 0)) {
        fprintf(stderr, "fi_read_loop: bad arguments\n");
        return 2;
    }
    pid = fork();
    if (pid == 0) { /* the target: a region, and progress until told to stop */
        close(up[0]);
        close(ctl[1]);
        fl_open(&f, argv[1]);
        region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        memset(region, 0x5a, REGION);
        ret = fi_mr_reg(f.domain, region, REGION, FI_REMOTE_READ, 0, 1, 0, &mr, NULL);
        if (ret != 0) {
            die("fi_mr_reg", ret);
        }
        t.len  = sizeof(t.name);
        ret    = fi_getname(&f.ep->fid, t.name, &t.len);
        t.base = (uint64_t)(uintptr_t)region;
        t.key  = fi_mr_key(mr);
        t.virt = !!(f.info->domain_attr->mr_mode & FI_MR_VIRT_ADDR);
        if ((ret != 0) || (write(up[1], &t, sizeof(t)) != (ssize_t)sizeof(t))) {
            _exit(1);
        }
        fcntl(ctl[0], F_SETFL, O_NONBLOCK);
        for (;;) {
            char c;

            fi_cq_read(f.cq, ent, 16);
            if (read(ctl[0], &c, 1) == 0) {
                _exit(0);
            }
        }
    }
    close(up[1]);
    close(ctl[0]);
    if (read(up[0], &t, sizeof(t)) != (ssize_t)sizeof(t)) {
        fprintf(stderr, "fi_read_loop: the target did not start\n");
        return 1;
    }
    fl_open(&f, argv[1]);
    if (fi_av_insert(f.av, t.name, 1, &fa, 0, NULL) != 1) {
        die("fi_av_insert", FI_EINVAL);
    }
    buf    = aligned_alloc(4096, (size * window + 4095) & ~(size_t)4095);
    ctxs   = calloc(window, sizeof(*ctxs));
    lat    = calloc(iters, sizeof(*lat));
    post_t = calloc(window, sizeof(*post_t));
    memset(buf, 0, size * window);
    ret = fi_mr_reg(f.domain, buf, size * window, FI_READ, 0, 2, 0, &lmr, NULL);
    if (ret != 0) {
        die("fi_mr_reg (local)", ret);
    }
#define FL_POST(_i)                                                            \
    do {                                                                       \
        uint64_t off = (posted * 2654435761ull) % (REGION / 2) & ~4095ull;     \
        post_t[_i] = now_ns();                                                 \
        do {                                                                   \
            ret = (int)fi_read(f.ep, buf + (_i) * size, size, fi_mr_desc(lmr), \
                               fa, (t.virt ? t.base : 0) + off, t.key,         \
                               &ctxs[_i]);                                     \
            if (ret == -FI_EAGAIN) {                                           \
                fi_cq_read(f.cq, ent, 0);                                      \
            }                                                                  \
        } while (ret == -FI_EAGAIN);                                           \
        if (ret != 0) {                                                        \
            die("fi_read", ret);                                               \
        }                                                                      \
        posted++;                                                              \
    } while (0)
    t0 = now_ns();
    for (i = 0; (i < window) && (posted < iters); i++) {
        FL_POST(i);
    }
    while (done < iters) {
        ssize_t n = fi_cq_read(f.cq, ent, 16), k;

        if (n == -FI_EAVAIL) {
            struct fi_cq_err_entry err = { 0 };

            fi_cq_readerr(f.cq, &err, 0);
            die("a read failed", err.err);
        }
        for (k = 0; k < n; k++) {
            i = (size_t)((struct fi_context2 *)ent[k].op_context - ctxs);
            lat[nlat++] = now_ns() - post_t[i];
            done++;
            if (posted < iters) {
                FL_POST(i);
            }
        }
    }
    t1 = now_ns();
    qsort(lat, nlat, sizeof(*lat), cmp_u64);
    printf("{\"bench\":\"fi_read_loop\",\"provider\":\"%s\",\"size\":%zu,\"window\":%zu,"
           "\"iters\":%zu,\"gbs\":%.3f,\"p50_us\":%.2f}\n", argv[1], size, window, iters,
           (double)size * (double)iters / (double)(t1 - t0), (double)lat[nlat / 2] / 1000.0);
    close(ctl[1]);
    waitpid(pid, NULL, 0);
    return 0;
}
