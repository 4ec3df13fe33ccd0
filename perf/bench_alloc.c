/*
 * bench_alloc.c - the store's allocator against jemalloc (ucperf store,
 * issue [6/11]): the same mixed-size churn over one fixed arena of
 * --region bytes, once through TLSF (store/alloc.c, what the store uses)
 * and once through a jemalloc arena whose extent hooks hand out that same
 * arena (jemalloc cannot grow past it, nor give it back).  Sizes are
 * uniform in [--size / 16, --size]; the arena is filled, then each
 * operation frees the oldest blocks until one of a new size fits, as a
 * cache evicts.  Reported: operations per second (one allocation and the
 * frees it took) and the payload share - live caller bytes over arena
 * bytes - averaged over the churn.  Nothing else in ucperf runs on
 * jemalloc: its churn runs in a child, ucperf itself again with
 * libjemalloc.so.2 preloaded (UCPERF_CHURN=jemalloc); the library cannot be
 * dlopen'ed (its thread-local storage must be set up at start).  Without
 * it, its row says why.
 */
#include "perf/ucperf.h"
#include "store/alloc.h"
#include "util/time.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <jemalloc/jemalloc.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CHURN_SAMPLE 1024u   /* payload share sampled every this many ops */

/* One allocator behind the churn: get (NULL: full) and put. */
typedef struct churn_ops {
    const char *name;
    void       *(*get)(void *arg, size_t bytes);
    void        (*put)(void *arg, void *p);
    void        *arg;
} churn_ops_t;

typedef struct churn_res {
    uint64_t ops, frees;
    double   seconds, share;
} churn_res_t;

/* ------------------------------------------------------------------------ */
/* TLSF                                                                      */
/* ------------------------------------------------------------------------ */

#define TLSF_HDR 16u /* a block's first bytes are the allocator's */

static void *tlsf_get(void *arg, size_t bytes)
{
    us_alloc_t *a = arg;
    uint64_t off;

    return (us_alloc_get(a, bytes + TLSF_HDR, &off) == UCACHE_OK) ? a->base + off + TLSF_HDR :
                                                                      NULL;
}

static void tlsf_put(void *arg, void *p)
{
    us_alloc_t *a = arg;

    us_alloc_put(a, (uint64_t)((char *)p - TLSF_HDR - a->base));
}

/* ------------------------------------------------------------------------ */
/* jemalloc over the arena                                                   */
/* ------------------------------------------------------------------------ */

typedef struct je_lib {
    void   *dl;
    void  *(*mallocx)(size_t, int);
    void   (*dallocx)(void *, int);
    int    (*mallctl)(const char *, void *, size_t *, void *, size_t);
} je_lib_t;

/* The arena's extents: handed out once, in order; jemalloc keeps (retains)
 * what it frees and reuses it, as the hooks refuse to take it back. */
static struct {
    char  *base;
    size_t len, used;
} je_area;

static void *je_extent_alloc(extent_hooks_t *h, void *new_addr, size_t size,
                             size_t alignment, bool *zero, bool *commit, unsigned ind)
{
    uintptr_t p;

    (void)h;
    (void)ind;
    if (new_addr != NULL) {
        return NULL; /* no extent at a given address */
    }
    p = ((uintptr_t)je_area.base + je_area.used + alignment - 1) & ~(uintptr_t)(alignment - 1);
    if (p + size > (uintptr_t)je_area.base + je_area.len) {
        return NULL;
    }
    je_area.used = p + size - (uintptr_t)je_area.base;
    if (*zero) {
        memset((void *)p, 0, size);
    }
    *commit = true;
    return (void *)p;
}

static bool je_extent_refuse(extent_hooks_t *h, void *addr, size_t size, bool committed,
                             unsigned ind)
{
    (void)h; (void)addr; (void)size; (void)committed; (void)ind;
    return true; /* opt out: jemalloc retains the extent for reuse */
}

static bool je_extent_decommit(extent_hooks_t *h, void *addr, size_t size, size_t off,
                               size_t len, unsigned ind)
{
    (void)h; (void)addr; (void)size; (void)off; (void)len; (void)ind;
    return true; /* stays committed (the store's memory is pinned) */
}

static bool je_extent_split(extent_hooks_t *h, void *addr, size_t size, size_t a,
                            size_t b, bool committed, unsigned ind)
{
    (void)h; (void)addr; (void)size; (void)a; (void)b; (void)committed; (void)ind;
    return false; /* allowed */
}

static bool je_extent_merge(extent_hooks_t *h, void *a, size_t na, void *b, size_t nb,
                            bool committed, unsigned ind)
{
    (void)h; (void)a; (void)na; (void)b; (void)nb; (void)committed; (void)ind;
    return false; /* allowed: one contiguous arena */
}

static extent_hooks_t je_hooks = {
    .alloc        = je_extent_alloc,
    .dalloc       = je_extent_refuse,
    .destroy      = NULL,
    .commit       = NULL,
    .decommit     = je_extent_decommit,
    .purge_lazy   = NULL,
    .purge_forced = NULL,
    .split        = je_extent_split,
    .merge        = je_extent_merge,
};

typedef struct je_arena {
    je_lib_t *lib;
    int       flags;
} je_arena_t;

static void *je_get(void *arg, size_t bytes)
{
    je_arena_t *a = arg;

    return a->lib->mallocx(bytes, a->flags);
}

static void je_put(void *arg, void *p)
{
    je_arena_t *a = arg;

    a->lib->dallocx(p, a->flags);
}

/* jemalloc, if this process runs on it (preloaded). */
static bool je_find(je_lib_t *lib)
{
    *(void **)&lib->mallocx = dlsym(RTLD_DEFAULT, "mallocx");
    *(void **)&lib->dallocx = dlsym(RTLD_DEFAULT, "dallocx");
    *(void **)&lib->mallctl = dlsym(RTLD_DEFAULT, "mallctl");
    return (lib->mallocx != NULL) && (lib->dallocx != NULL) && (lib->mallctl != NULL);
}

/* Run this very command again with libjemalloc.so.2 preloaded and
 * UCPERF_CHURN=jemalloc (it prints its row); false if it could not. */
static bool je_child(char *err, size_t cap)
{
    char cmd[4096], exe[4096], *argv[64], *envp[512];
    unsigned argc = 0, envc = 0, i;
    const char *base;
    ssize_t n;
    pid_t pid;
    int fd, ws;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    snprintf(err, cap, "a sanitizer build (its runtime must come first; jemalloc "
             "would replace its malloc)");
    return false;
#endif
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[(n > 0) ? n : 0] = '\0';
    base = strrchr(exe, '/');
    if ((base == NULL) || (strcmp(base + 1, "ucperf") != 0)) {
        snprintf(err, cap, "only the ucperf program runs it (this is %s)",
                 (base != NULL) ? base + 1 : "?");
        return false;
    }
    fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    n  = (fd >= 0) ? read(fd, cmd, sizeof(cmd) - 1) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (n <= 0) {
        snprintf(err, cap, "cannot read /proc/self/cmdline");
        return false;
    }
    cmd[n] = '\0';
    for (i = 0; (i < (unsigned)n) && (argc < 63); i += strlen(cmd + i) + 1) {
        argv[argc++] = cmd + i;
    }
    argv[argc] = NULL;
    envp[envc++] = "LD_PRELOAD=libjemalloc.so.2";
    envp[envc++] = "UCPERF_CHURN=jemalloc";
    for (i = 0; (environ[i] != NULL) && (envc < 511); i++) {
        if ((strncmp(environ[i], "LD_PRELOAD=", 11) != 0) &&
            (strncmp(environ[i], "UCPERF_CHURN=", 13) != 0)) {
            envp[envc++] = environ[i];
        }
    }
    envp[envc] = NULL;
    fflush(NULL);
    if (posix_spawn(&pid, exe, NULL, NULL, argv, envp) != 0) {
        snprintf(err, cap, "cannot start ucperf again: %m");
        return false;
    }
    if ((waitpid(pid, &ws, 0) != pid) || !WIFEXITED(ws) || (WEXITSTATUS(ws) != 0)) {
        snprintf(err, cap, "its run with libjemalloc.so.2 preloaded failed");
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* The churn                                                                 */
/* ------------------------------------------------------------------------ */

static uint64_t churn_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Fill, then @p iters operations that free blocks at random (a cache's
 * evictions are in no address order) until a new one fits.  @p arena_len:
 * the bytes the share is of. */
static ucache_status_t churn(const churn_ops_t *ops, size_t size, uint64_t arena_len,
                             uint64_t iters, churn_res_t *res)
{
    uint64_t cap = arena_len / (size / 16) + 1, nlive = 0, live = 0, x = 7, i, v, t0;
    size_t lo = size / 16, n;
    double share = 0;
    unsigned samples = 0;
    void **blk = malloc(cap * sizeof(*blk));
    size_t *len = malloc(cap * sizeof(*len));
    void *p = NULL;

    memset(res, 0, sizeof(*res));
    if ((blk == NULL) || (len == NULL)) {
        free(blk);
        free(len);
        return UCACHE_ERR_NO_MEMORY;
    }
    for (;;) { /* fill */
        n = lo + churn_rand(&x) % (size - lo + 1);
        if ((nlive == cap) || ((p = ops->get(ops->arg, n)) == NULL)) {
            break;
        }
        blk[nlive]   = p;
        len[nlive++] = n;
        live += n;
    }
    t0 = uc_time_ns();
    for (i = 0; i < iters; i++) {
        n = lo + churn_rand(&x) % (size - lo + 1);
        while ((nlive == cap) || ((p = ops->get(ops->arg, n)) == NULL)) {
            if (nlive == 0) {
                break;   /* empty, and still no room: cannot happen */
            }
            v = churn_rand(&x) % nlive;
            ops->put(ops->arg, blk[v]);
            live  -= len[v];
            blk[v] = blk[--nlive];
            len[v] = len[nlive];
            res->frees++;
        }
        if (p == NULL) {
            break;
        }
        blk[nlive]   = p;
        len[nlive++] = n;
        live += n;
        if (i % CHURN_SAMPLE == 0) {
            share += (double)live / (double)arena_len;
            samples++;
        }
    }
    res->seconds = (uc_time_ns() - t0) / 1e9;
    res->ops     = i;
    res->share   = (samples > 0) ? share / samples : 0;
    while (nlive > 0) {
        ops->put(ops->arg, blk[--nlive]);
    }
    free(blk);
    free(len);
    return (i == iters) ? UCACHE_OK : UCACHE_ERR_NO_MEMORY;
}

static void churn_print(FILE *out, const ucperf_opts_t *o, const char *name,
                        const churn_res_t *r, const char *note)
{
    double mops = (r->seconds > 0) ? (double)r->ops / r->seconds / 1e6 : 0;

    if (o->json) {
        fprintf(out, "{\"bench\":\"ucperf\",\"mode\":\"store\",\"phase\":\"churn-%s\","
                "\"size\":%zu,\"region\":%zu,\"ops\":%llu,\"frees\":%llu,"
                "\"seconds\":%.6f,\"mops\":%.4f,\"payload_share\":%.4f%s%s%s}\n", name,
                o->size, o->region, (unsigned long long)r->ops,
                (unsigned long long)r->frees, r->seconds, mops, r->share,
                (note != NULL) ? ",\"skipped\":\"" : "", (note != NULL) ? note : "",
                (note != NULL) ? "\"" : "");
        return;
    }
    if (note != NULL) {
        fprintf(out, "churn %-9s not measured: %s\n", name, note);
        return;
    }
    fprintf(out, "churn %-9s %9llu allocations (%llu frees) %8.3f Mops/s, payload share "
            "%.1f%% of the arena\n", name, (unsigned long long)r->ops,
            (unsigned long long)r->frees, mops, 100.0 * r->share);
}

/* The churn through a jemalloc arena over [mem, mem + region). */
static ucache_status_t je_churn(const ucperf_opts_t *o, void *mem, size_t region,
                                uint64_t iters, FILE *out)
{
    extent_hooks_t *hooks = &je_hooks;
    unsigned ind = 0;
    size_t sz = sizeof(ind);
    ucache_status_t status;
    je_lib_t lib;
    je_arena_t ja;
    churn_ops_t ops;
    churn_res_t r = { 0 };

    if (!je_find(&lib)) {
        churn_print(out, o, "jemalloc", &r, "not preloaded");
        return UCACHE_ERR_UNSUPPORTED;
    }
    je_area.base = mem;
    je_area.len  = region;
    je_area.used = 0;
    if (lib.mallctl("arenas.create", &ind, &sz, &hooks, sizeof(hooks)) != 0) {
        churn_print(out, o, "jemalloc", &r, "mallctl arenas.create failed");
        return UCACHE_ERR_UNSUPPORTED;
    }
    ja     = (je_arena_t){ &lib, MALLOCX_ARENA(ind) | MALLOCX_TCACHE_NONE };
    ops    = (churn_ops_t){ "jemalloc", je_get, je_put, &ja };
    status = churn(&ops, o->size, region, iters, &r);
    churn_print(out, o, "jemalloc", &r, NULL);
    return status; /* the arena keeps the memory (retained extents) till exit */
}

ucache_status_t ucperf_alloc_churn(const ucperf_opts_t *o, uint64_t iters, FILE *out)
{
    size_t region = (o->region != 0) ? o->region : (1ull << 30);
    const char *only = getenv("UCPERF_CHURN");
    ucache_status_t status = UCACHE_OK;
    churn_res_t r;
    us_alloc_t ta;
    char err[256];
    void *mem;
    churn_ops_t ops;

    if (o->size < 1024) {
        return UCACHE_OK; /* sizes of [size / 16, size]: too small to mean much */
    }
    mem = mmap(NULL, region, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED) {
        return UCACHE_ERR_NO_MEMORY;
    }
    if ((only != NULL) && (strcmp(only, "jemalloc") == 0)) {
        return je_churn(o, mem, region, iters, out); /* the child */
    }
    /* TLSF, as the store runs it */
    status = us_alloc_init(&ta, mem, region - 64, 0);
    if (status == UCACHE_OK) {
        ops    = (churn_ops_t){ "tlsf", tlsf_get, tlsf_put, &ta };
        status = churn(&ops, o->size, region, iters, &r);
        us_alloc_cleanup(&ta);
        churn_print(out, o, "tlsf", &r, NULL);
    }
    munmap(mem, region);
    if (!je_child(err, sizeof(err))) {
        memset(&r, 0, sizeof(r));
        churn_print(out, o, "jemalloc", &r, err);
    }
    return status;
}
