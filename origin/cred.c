/*
 * cred.c - credentials for the origins (see cred.h): the environment, the
 * ucache credentials file, the AWS shared files through us_ini_get(), and
 * the application's bearer-token provider with its cached token.
 */
#include "origin/cred.h"
#include "util/log.h"
#include "util/time.h"

#include "origin/origin.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static pthread_mutex_t us_cred_lock = PTHREAD_MUTEX_INITIALIZER;
static bool            us_cred_warned;   /* about a file others can read: once */

#define US_INI_LINE_MAX 4096   /* longer lines are skipped whole */

/* Whether [s, s + n) holds a control character (a value never does). */
static bool us_has_ctl(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (((unsigned char)s[i] < 0x20) || (s[i] == 0x7f)) {
            return true;
        }
    }
    return false;
}

/* Trim blanks at both ends of [*s, *e). */
static void us_trim(const char **s, const char **e)
{
    while ((*s < *e) && ((**s == ' ') || (**s == '\t'))) {
        (*s)++;
    }
    while ((*e > *s) && (((*e)[-1] == ' ') || ((*e)[-1] == '\t') || ((*e)[-1] == '\r') ||
                         ((*e)[-1] == '\n'))) {
        (*e)--;
    }
}

bool us_ini_get(const char *path, const char *section, const char *key, char *out,
                size_t cap)
{
    char *line = NULL;
    const char *s, *e, *eq;
    bool in = (section[0] == '\0'), found = false;
    size_t lcap = 0;
    ssize_t n;
    FILE *f;

    out[0] = '\0';
    if ((path[0] == '\0') || ((f = fopen(path, "re")) == NULL)) {
        return false;
    }
    while (!found && ((n = getline(&line, &lcap, f)) != -1)) {
        if ((n > US_INI_LINE_MAX) || (memchr(line, '\0', (size_t)n) != NULL)) {
            continue;   /* over-long or binary: skipped whole, never split */
        }
        s = line;
        e = line + n;
        us_trim(&s, &e);
        if ((s == e) || (*s == '#') || (*s == ';')) {
            continue;
        }
        if (*s == '[') {
            s++;
            e = (e > s && e[-1] == ']') ? e - 1 : e;
            us_trim(&s, &e);
            in = ((size_t)(e - s) == strlen(section)) &&
                 (strncmp(s, section, (size_t)(e - s)) == 0);
            continue;
        }
        eq = memchr(s, '=', (size_t)(e - s));
        if (!in || (eq == NULL)) {
            continue;
        }
        {
            const char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;

            us_trim(&ks, &ke);
            us_trim(&vs, &ve);
            if (((size_t)(ke - ks) == strlen(key)) &&
                (strncmp(ks, key, (size_t)(ke - ks)) == 0) && ((size_t)(ve - vs) < cap) &&
                !us_has_ctl(vs, (size_t)(ve - vs))) {
                memcpy(out, vs, (size_t)(ve - vs));
                out[ve - vs] = '\0';
                found = true;
            }
        }
    }
    free(line);
    fclose(f);
    return found;
}

bool us_cred_get(const char *name, char *out, size_t cap)
{
    us_origin_params_t prm;

    us_origin_params(&prm);       /* the calling context's credentials file */
    return us_cred_get_in(prm.cred_path, name, out, cap);
}

bool us_cred_get_in(const char *path, const char *name, char *out, size_t cap)
{
    const char *v = getenv(name);
    struct stat st;
    bool warn;

    out[0] = '\0';
    if (v != NULL) {
        if (strlen(v) >= cap) {
            UC_ERROR("%s is longer than %zu bytes; ignored", name, cap - 1);
            return false;
        }
        memcpy(out, v, strlen(v) + 1);
        return true;
    }
    if ((path == NULL) || (path[0] == '\0') || (stat(path, &st) != 0)) {
        return false;
    }
    if ((st.st_mode & 077) != 0) {
        pthread_mutex_lock(&us_cred_lock);
        warn = !us_cred_warned;
        us_cred_warned = true;
        pthread_mutex_unlock(&us_cred_lock);
        if (warn) {
            UC_WARN("%s can be read by others (mode %o); chmod 600 it", path,
                    (unsigned)(st.st_mode & 0777));
        }
    }
    return us_ini_get(path, "", name, out, cap);
}

/* The registered provider and its last token. */
static struct {
    pthread_mutex_t    lock;
    ucache_token_fn_t  fn;
    void              *arg;
    char               resource[256];
    char               token[8192];
    uint64_t           expires_ns;   /* monotonic */
    bool               builtin;      /* fn is a built-in identity's */
} us_tok = { .lock = PTHREAD_MUTEX_INITIALIZER };

#define US_TOKEN_MARGIN_NS (60ull * UC_NSEC_PER_SEC)

void us_token_provider_set(ucache_token_fn_t fn, void *arg)
{
    pthread_mutex_lock(&us_tok.lock);
    us_tok.fn  = fn;
    us_tok.arg = arg;
    us_tok.builtin  = false;
    us_tok.token[0] = '\0';
    us_tok.expires_ns = 0;
    pthread_mutex_unlock(&us_tok.lock);
}

bool us_token_builtin_set(ucache_token_fn_t fn, void *arg)
{
    bool set;

    pthread_mutex_lock(&us_tok.lock);
    set = (us_tok.fn == NULL) || us_tok.builtin;
    if (set && ((us_tok.fn != fn) || (us_tok.arg != arg))) {
        us_tok.fn  = fn;
        us_tok.arg = arg;
        us_tok.builtin  = (fn != NULL);
        us_tok.token[0] = '\0';
        us_tok.expires_ns = 0;
    }
    pthread_mutex_unlock(&us_tok.lock);
    return set;
}

/* UCACHE_TOKEN_COMMAND: a shell command printing the token on its first
 * line and, optionally, its lifetime in seconds on the second. */
static char us_token_cmd[1024];

#define US_TOKEN_TTL_MAX (24ull * 3600)   /* a lifetime longer is taken as a day */

/*
 * Run the command (sh -c, in its own process group) and read what it
 * prints, up to @p cap - 1 bytes, within the origin deadline: a command
 * that takes longer is killed, group and all.  The bytes read, or -1.
 */
static ssize_t us_token_exec(const char *cmd, char *out, size_t cap, int *rc_p)
{
    us_origin_params_t prm;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    char *argv[] = { "sh", "-c", (char *)cmd, NULL };
    uint64_t deadline;
    struct pollfd pfd;
    size_t got = 0;
    ssize_t n;
    pid_t pid;
    int fds[2], wst = 0, ms, err;
    bool timed_out = false;

    us_origin_params(&prm);
    if (pipe2(fds, O_CLOEXEC) != 0) {
        return -1;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0);
    err = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(fds[1]);
    if (err != 0) {
        close(fds[0]);
        errno = err;
        return -1;
    }
    deadline = uc_deadline(prm.deadline_ns);
    pfd.fd = fds[0];
    pfd.events = POLLIN;
    while (got + 1 < cap) {
        ms = (int)((deadline > uc_time_ns()) ? (deadline - uc_time_ns()) / UC_NSEC_PER_MSEC + 1 : 0);
        if ((ms == 0) || (poll(&pfd, 1, ms) == 0)) {
            timed_out = true;
            break;
        }
        n = read(fds[0], out + got, cap - 1 - got);
        if ((n < 0) && (errno == EINTR)) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    out[got] = '\0';
    close(fds[0]);
    if (timed_out) {
        kill(-pid, SIGKILL);
        UC_ERROR("UCACHE_TOKEN_COMMAND ran past UCACHE_ORIGIN_DEADLINE; killed");
    }
    while ((waitpid(pid, &wst, 0) < 0) && (errno == EINTR)) {
    }
    *rc_p = timed_out ? -1 : (WIFEXITED(wst) ? WEXITSTATUS(wst) : -1);
    return (ssize_t)got;
}

static ucache_status_t us_token_run(void *arg, const char *resource, char *token,
                                    size_t cap, uint64_t *ttl_s_p)
{
    char out[8192 + 64], *nl;
    size_t len;
    ssize_t n;
    int rc;

    (void)arg;
    (void)resource;
    n = us_token_exec(us_token_cmd, out, sizeof(out), &rc);
    if (n < 0) {
        UC_ERROR("UCACHE_TOKEN_COMMAND: cannot run it: %m");
        return UCACHE_ERR_IO;
    }
    nl  = strchr(out, '\n');
    len = (nl != NULL) ? (size_t)(nl - out) : strlen(out);
    len -= ((len > 0) && (out[len - 1] == '\r'));
    *ttl_s_p = (nl != NULL) ? strtoull(nl + 1, NULL, 10) : 0;
    *ttl_s_p = (*ttl_s_p == 0) ? 300 : (*ttl_s_p > US_TOKEN_TTL_MAX) ? US_TOKEN_TTL_MAX : *ttl_s_p;
    if ((rc != 0) || (len == 0) || (len >= cap)) {
        UC_ERROR("UCACHE_TOKEN_COMMAND failed (exit status %d, %zu bytes of token)", rc, len);
        return UCACHE_ERR_DENIED;
    }
    memcpy(token, out, len);
    token[len] = '\0';
    return UCACHE_OK;
}

void us_token_command_configure(const char *cmd)
{
    pthread_mutex_lock(&us_tok.lock);
    if ((cmd != NULL) && (cmd[0] != '\0') &&
        ((us_tok.fn == NULL) || (us_tok.fn == us_token_run) || us_tok.builtin)) {
        if (strcmp(us_token_cmd, cmd) != 0) {
            snprintf(us_token_cmd, sizeof(us_token_cmd), "%s", cmd);
            us_tok.token[0]   = '\0';
            us_tok.expires_ns = 0;
        }
        if (us_tok.fn != us_token_run) {
            us_tok.token[0]   = '\0';
            us_tok.expires_ns = 0;
        }
        us_tok.fn  = us_token_run;
        us_tok.arg = NULL;
        us_tok.builtin = false;
    }
    pthread_mutex_unlock(&us_tok.lock);
}

bool us_token_enabled(void)
{
    bool on;

    pthread_mutex_lock(&us_tok.lock);
    on = (us_tok.fn != NULL);
    pthread_mutex_unlock(&us_tok.lock);
    return on;
}

ucache_status_t us_token_get(const char *resource, char *out, size_t cap)
{
    ucache_status_t status = UCACHE_OK;
    uint64_t now = uc_time_ns(), ttl_s = 0;
    size_t len;

    pthread_mutex_lock(&us_tok.lock);
    if (us_tok.fn == NULL) {
        pthread_mutex_unlock(&us_tok.lock);
        return UCACHE_ERR_NOT_FOUND;
    }
    if ((us_tok.token[0] == '\0') || (strcmp(us_tok.resource, resource) != 0) ||
        (now + US_TOKEN_MARGIN_NS >= us_tok.expires_ns)) {
        us_tok.token[0] = '\0';
        status = us_tok.fn(us_tok.arg, resource, us_tok.token, sizeof(us_tok.token),
                           &ttl_s);
        len = strnlen(us_tok.token, sizeof(us_tok.token));
        if ((status == UCACHE_OK) && ((len == 0) || (len >= sizeof(us_tok.token)))) {
            status = UCACHE_ERR_INVALID;
        }
        if (status != UCACHE_OK) {
            us_tok.token[0] = '\0';
            pthread_mutex_unlock(&us_tok.lock);
            UC_ERROR("the bearer-token provider failed for %s: %s", resource,
                     ucache_strerror(status));
            return (status == UCACHE_ERR_NOT_FOUND) ? UCACHE_ERR_DENIED : status;
        }
        snprintf(us_tok.resource, sizeof(us_tok.resource), "%s", resource);
        ttl_s = (ttl_s > US_TOKEN_TTL_MAX) ? US_TOKEN_TTL_MAX : ttl_s; /* no overflow */
        us_tok.expires_ns = now + ttl_s * UC_NSEC_PER_SEC;
    }
    len = strlen(us_tok.token);
    if (len >= cap) {
        status = UCACHE_ERR_MSG_TRUNCATED;
    } else {
        memcpy(out, us_tok.token, len + 1);
    }
    pthread_mutex_unlock(&us_tok.lock);
    return status;
}
