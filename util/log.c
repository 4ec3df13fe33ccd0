/*
 * log.c - the logger behind log.h.  The level is one atomic int read on every
 * UC_LOG (no lock on the fast path); emitting a line takes the sink lock so
 * lines from several threads never interleave.  The default sink writes to
 * stderr, or appends to UCACHE_LOG_FILE when set; never stdout.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Atomic int uc_log_level_cur = UCACHE_LOG_WARN;

static pthread_mutex_t   uc_log_lock = PTHREAD_MUTEX_INITIALIZER;
static ucache_log_sink_t uc_log_sink;
static void             *uc_log_sink_arg;
static FILE             *uc_log_file;
static pthread_once_t    uc_log_once = PTHREAD_ONCE_INIT;
static int               uc_log_level_set_by_api;

static const char *const uc_log_names[] = {
    "none", "error", "warn", "info", "debug", "trace"
};

const char *uc_log_level_name(ucache_log_level_t level)
{
    if ((unsigned)level < sizeof(uc_log_names) / sizeof(uc_log_names[0])) {
        return uc_log_names[level];
    }
    return "?";
}

int uc_log_level_parse(const char *s)
{
    unsigned i;

    if (s == NULL) {
        return -1;
    }
    if ((s[0] >= '0') && (s[0] <= '5') && (s[1] == '\0')) {
        return s[0] - '0';
    }
    for (i = 0; i < sizeof(uc_log_names) / sizeof(uc_log_names[0]); i++) {
        if (strcasecmp(s, uc_log_names[i]) == 0) {
            return (int)i;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        return UCACHE_LOG_WARN;
    }
    return -1;
}

static void uc_log_do_init(void)
{
    const char *lvl  = getenv("UCACHE_LOG_LEVEL");
    const char *path = getenv("UCACHE_LOG_FILE");
    int level;

    if ((path != NULL) && (path[0] != '\0')) {
        uc_log_file = fopen(path, "ae");
        /* On failure we fall back to stderr and say so below. */
    }
    if ((lvl != NULL) && !uc_log_level_set_by_api) {
        level = uc_log_level_parse(lvl);
        if (level >= 0) {
            atomic_store(&uc_log_level_cur, level);
        } else {
            fprintf(stderr, "[ucache] UCACHE_LOG_LEVEL='%s' is not one of "
                    "none|error|warn|info|debug|trace; using warn\n", lvl);
        }
    }
    if ((path != NULL) && (path[0] != '\0') && (uc_log_file == NULL)) {
        fprintf(stderr, "[ucache] cannot open UCACHE_LOG_FILE '%s': %m; "
                "logging to stderr\n", path);
    }
}

void uc_log_init(void)
{
    pthread_once(&uc_log_once, uc_log_do_init);
}

void uc_log_set_level(ucache_log_level_t level)
{
    uc_log_init();
    uc_log_level_set_by_api = 1;
    atomic_store(&uc_log_level_cur, (int)level);
}

void uc_log_set_sink(ucache_log_sink_t sink, void *arg)
{
    pthread_mutex_lock(&uc_log_lock);
    uc_log_sink     = sink;
    uc_log_sink_arg = arg;
    pthread_mutex_unlock(&uc_log_lock);
}

void uc_log_emit(ucache_log_level_t level, const char *file, int line,
                 const char *fmt, ...)
{
    char msg[1024];
    const char *base;
    struct timespec ts;
    va_list ap;
    int n;

    uc_log_init();
    base = strrchr(file, '/');
    base = (base != NULL) ? base + 1 : file;
    clock_gettime(CLOCK_REALTIME, &ts);
    n = snprintf(msg, sizeof(msg), "[%ld.%06ld ucache %d:%ld %s %s:%d] ",
                 (long)ts.tv_sec, ts.tv_nsec / 1000, (int)getpid(),
                 (long)syscall(SYS_gettid), uc_log_level_name(level), base,
                 line);
    if ((n < 0) || ((size_t)n >= sizeof(msg))) {
        n = 0;
    }
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);

    pthread_mutex_lock(&uc_log_lock);
    if (uc_log_sink != NULL) {
        uc_log_sink(uc_log_sink_arg, level, msg);
    } else {
        FILE *out = (uc_log_file != NULL) ? uc_log_file : stderr;
        fprintf(out, "%s\n", msg);
        fflush(out);
    }
    pthread_mutex_unlock(&uc_log_lock);
}
