/*
 * exporter.c - the exporter process of exporter.h.  The child drops every
 * inherited fd but its two pipes (holding another exporter's control pipe
 * would keep that one from ever seeing EOF), creates its own transport
 * context with a progress thread, and exits with a distinct code per failure.
 */
#include "perf/exporter.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

size_t ucperf_pattern_mismatches(const void *buf, uint64_t off, size_t len,
                                 uint64_t seed)
{
    const uint8_t *b = buf;
    size_t i, bad = 0;

    for (i = 0; i < len; i++) {
        bad += (b[i] != ucperf_pattern_byte(off + i, seed));
    }
    return bad;
}

int ucperf_pattern_check3(const void *buf, uint64_t off, size_t len, uint64_t seed)
{
    uint64_t first = (off + 7) / 8, last = (off + len) / 8, idx[3], w;
    int i;

    if (last <= first) {
        return 0; /* no whole word inside: nothing to check */
    }
    idx[0] = first;
    idx[1] = first + (last - first) / 2;
    idx[2] = last - 1;
    for (i = 0; i < 3; i++) {
        memcpy(&w, (const uint8_t *)buf + (idx[i] * 8 - off), sizeof(w));
        if (w != ucperf_pattern_word(idx[i], seed)) {
            return 1;
        }
    }
    return 0;
}

void ucperf_pattern_fill(void *buf, size_t len, uint64_t seed)
{
    uint64_t *w = buf;
    size_t i;

    for (i = 0; i < len / sizeof(*w); i++) {
        w[i] = ucperf_pattern_word(i, seed);
    }
}

static int exporter_io(int fd, void *buf, size_t len, int writing)
{
    uint8_t *p = buf;
    ssize_t n;

    while (len > 0) {
        n = writing ? write(fd, p, len) : read(fd, p, len);
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void ucperf_read_reply(ut_rpc_t *rpc, const ut_mem_t *mem, const void *msg, size_t len)
{
    uint64_t req[2];

    if (len != sizeof(req)) {
        ut_rpc_reply(rpc, UCACHE_ERR_INVALID, NULL, 0, NULL, 0, 0);
        return;
    }
    memcpy(req, msg, sizeof(req));
    if (mem == NULL) {
        ut_rpc_reply(rpc, UCACHE_ERR_STALE, NULL, 0, NULL, 0, 0);
    } else if ((req[0] > mem->len) || (req[1] > mem->len - req[0])) {
        ut_rpc_reply(rpc, UCACHE_ERR_OUT_OF_RANGE, NULL, 0, NULL, 0, 0);
    } else {
        ut_rpc_reply(rpc, UCACHE_OK, NULL, 0, (const uint8_t *)mem->base + req[0], req[1],
                     UT_REPLY_DATA_STABLE);
    }
}

static void exporter_rpc_read(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    ucperf_read_reply(rpc, arg, msg, len);
}

ucache_status_t ucperf_read_post(ut_req_t *req, ut_rkey_t *rkey, ut_path_t path,
                                 ucperf_read_msg_t *m, uint64_t off, void *buf, size_t len)
{
    if (path != UT_PATH_AM) {
        return ut_get_post(req, rkey, rkey->base + off, buf, len);
    }
    m->req[0] = off;
    m->req[1] = len;
    return ut_rpc_post(req, rkey->peer, UCPERF_RPC_READ, m->req, sizeof(m->req), &m->meta,
                       sizeof(m->meta), buf, len);
}

static void exporter_main(int up, int ctl, size_t region, uint64_t seed,
                          ucperf_exporter_setup_t setup)
{
    ut_params_t p = { .field_mask = UT_PARAM_FIELD_PROGRESS | UT_PARAM_FIELD_SERVE,
                      .progress = UC_PROGRESS_THREAD, .serve = true };
    const void *addr, *rkey;
    size_t addr_len, rkey_len;
    ut_ctx_t *ctx;
    ut_mem_t *mem;
    char c;

    if ((ut_ctx_create(NULL, &p, &ctx) != UCACHE_OK) ||
        (ut_mem_export(ctx, region, &mem) != UCACHE_OK)) {
        _exit(3);
    }
    ucperf_pattern_fill(mem->base, region, seed);
    ut_rpc_handler_set(ctx, UCPERF_RPC_READ, exporter_rpc_read, mem);
    if (setup != NULL) {
        setup(ctx, mem);
    }
    /* Publish the fill to the progress thread that will serve it: the
     * context lock's release/acquire orders it (the real order runs through
     * the pipe and another process, which thread checkers cannot see). */
    ut_progress(ctx);
    ut_address(ctx, &addr, &addr_len);
    ut_mem_pack(mem, &rkey, &rkey_len);
    if (exporter_io(up, &addr_len, sizeof(addr_len), 1) ||
        exporter_io(up, (void *)addr, addr_len, 1) ||
        exporter_io(up, &rkey_len, sizeof(rkey_len), 1) ||
        exporter_io(up, (void *)rkey, rkey_len, 1)) {
        _exit(4);
    }
    close(up);
    while (read(ctl, &c, 1) > 0) {
    }
    ut_mem_destroy(mem);
    ut_ctx_destroy(ctx);
    _exit(0);
}

ucache_status_t ucperf_exporter_start(ucperf_exporter_t *ex, size_t region,
                                      uint64_t seed, ucperf_exporter_setup_t setup)
{
    int up[2], ctl[2], fd, ok;

    memset(ex, 0, sizeof(*ex));
    ex->seed = seed;
    if ((region == 0) || (region % 8 != 0) || (pipe(up) != 0)) {
        return UCACHE_ERR_INVALID;
    }
    if (pipe(ctl) != 0) {
        close(up[0]);
        close(up[1]);
        return UCACHE_ERR_IO;
    }
    fflush(NULL);
    ex->pid = fork();
    if (ex->pid == 0) {
        for (fd = 3; fd < 1024; fd++) {
            if ((fd != up[1]) && (fd != ctl[0])) {
                close(fd);
            }
        }
        exporter_main(up[1], ctl[0], region, seed, setup);
    }
    close(up[1]);
    close(ctl[0]);
    ex->ctl = ctl[1];
    ok = (ex->pid > 0) &&
         !exporter_io(up[0], &ex->addr_len, sizeof(ex->addr_len), 0) &&
         (ex->addr_len <= sizeof(ex->addr)) &&
         !exporter_io(up[0], ex->addr, ex->addr_len, 0) &&
         !exporter_io(up[0], &ex->rkey_len, sizeof(ex->rkey_len), 0) &&
         (ex->rkey_len <= sizeof(ex->rkey)) &&
         !exporter_io(up[0], ex->rkey, ex->rkey_len, 0);
    close(up[0]);
    if (!ok) {
        fprintf(stderr, "exporter process failed to start (exit %d)\n",
                ucperf_exporter_stop(ex, 0));
        return UCACHE_ERR_IO;
    }
    return UCACHE_OK;
}

int ucperf_exporter_pause(ucperf_exporter_t *ex)
{
    int status;

    if ((kill(ex->pid, SIGSTOP) != 0) ||
        (waitpid(ex->pid, &status, WUNTRACED) != ex->pid)) {
        return -1;
    }
    return WIFSTOPPED(status) ? 0 : -1;
}

int ucperf_exporter_stop(ucperf_exporter_t *ex, int sig)
{
    int status = 0;

    if (ex->pid <= 0) {
        close(ex->ctl);
        return -1;
    }
    if (sig != 0) {
        kill(ex->pid, sig);
    }
    close(ex->ctl);
    waitpid(ex->pid, &status, 0);
    ex->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}
