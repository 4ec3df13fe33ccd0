/*
 * origin_file.c - file:///absolute/path origins (a local or shared
 * filesystem).  The version is a digest of (device, inode, size, mtime), so
 * a rewritten or replaced file is a new version; a read re-checks it after
 * the data is in and answers UCACHE_ERR_STALE if the file changed.
 */
#include "origin/origin.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* "file:///a/b" -> "/a/b"; "file://localhost/a/b" too; other hosts no. */
static const char *uo_file_path(const char *uri)
{
    const char *p = uri + strlen("file://");

    if (strncmp(p, "localhost/", 10) == 0) {
        p += 9;
    }
    if (p[0] != '/') {
        UC_ERROR("'%.*s' is not file:///absolute/path",
                 (us_uri_loglen(uri) < 64) ? us_uri_loglen(uri) : 64, uri);
        return NULL;
    }
    return p;
}

static uint64_t uo_file_version(const struct stat *st)
{
    uint64_t v[5] = { (uint64_t)st->st_dev, (uint64_t)st->st_ino,
                      (uint64_t)st->st_size, (uint64_t)st->st_mtim.tv_sec,
                      (uint64_t)st->st_mtim.tv_nsec };

    return XXH3_64bits(v, sizeof(v));
}

static ucache_status_t uo_errno_status(int err, const char *path)
{
    if ((err == ENOENT) || (err == ENOTDIR)) {
        UC_DEBUG("%s: %s", path, strerror(err));
        return UCACHE_ERR_NOT_FOUND;
    }
    UC_ERROR("%s: %s", path, strerror(err));
    return (err == EACCES) || (err == EISDIR) ? UCACHE_ERR_INVALID : UCACHE_ERR_IO;
}

static ucache_status_t uo_file_stat(const char *uri, us_object_t *obj_p)
{
    const char *path = uo_file_path(uri);
    struct stat st;

    if (path == NULL) {
        return UCACHE_ERR_INVALID;
    }
    if (stat(path, &st) != 0) {
        return uo_errno_status(errno, path);
    }
    if (!S_ISREG(st.st_mode)) {
        UC_ERROR("%s is not a regular file", path);
        return UCACHE_ERR_INVALID;
    }
    obj_p->size    = (uint64_t)st.st_size;
    obj_p->version = uo_file_version(&st);
    obj_p->mtime   = (st.st_mtim.tv_sec > 0) ? (uint64_t)st.st_mtim.tv_sec : 0;
    return UCACHE_OK;
}

/*
 * Open @p path for a read.  Within a fill (us_origin_scope()) only a
 * regular file whose canonical path an allow rule covers: it is checked
 * before it is opened (so no device or FIFO is ever opened) and again on
 * the descriptor (so a path swapped meanwhile, or a symbolic link out of
 * the prefix, is caught on what was actually opened).  -1 with *status_p.
 */
static int uo_file_open(const char *path, ucache_status_t *status_p)
{
    const us_origin_scope_t *scope = us_origin_scope();
    char link[64], real[PATH_MAX];
    struct stat st;
    ssize_t n;
    int fd;

    if ((scope != NULL) && ((stat(path, &st) != 0) || !S_ISREG(st.st_mode))) {
        UC_INFO("refused to fill from %s: not a regular file", path);
        *status_p = UCACHE_ERR_REFUSED;
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | ((scope != NULL) ? O_NONBLOCK : 0));
    if (fd < 0) {
        *status_p = uo_errno_status(errno, path);
        return -1;
    }
    if (scope == NULL) {
        return fd;
    }
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, real, sizeof(real) - 1);
    if ((n > 0) && ((size_t)n < sizeof(real) - 1)) {
        real[n] = '\0';
    }
    if ((fstat(fd, &st) != 0) || !S_ISREG(st.st_mode) || (n <= 0) ||
        ((size_t)n >= sizeof(real) - 1) || !us_allow_path(scope->allow, real)) {
        UC_INFO("refused to fill from %s: its canonical path is outside UCACHE_ALLOW", path);
        close(fd);
        *status_p = UCACHE_ERR_REFUSED;
        return -1;
    }
    return fd;
}

static ucache_status_t uo_file_read(const char *uri, const us_object_t *obj,
                                    uint64_t off, void *buf, size_t len)
{
    const char *path = uo_file_path(uri);
    ucache_status_t status = UCACHE_OK;
    struct stat st;
    size_t done = 0;
    ssize_t n;
    int fd;

    if (path == NULL) {
        return UCACHE_ERR_INVALID;
    }
    fd = uo_file_open(path, &status);
    if (fd < 0) {
        return status;
    }
    while (done < len) {
        n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            status = uo_errno_status(errno, path);
            goto out;
        }
        if (n == 0) {
            break; /* shorter than its version says: it changed */
        }
        done += (size_t)n;
    }
    if (fstat(fd, &st) != 0) {
        status = uo_errno_status(errno, path);
    } else if ((done != len) || (uo_file_version(&st) != obj->version)) {
        UC_INFO("%s changed while it was read; the caller re-reads it", path);
        status = UCACHE_ERR_STALE;
    }
out:
    close(fd);
    return status;
}

/* Every regular file under @p dir (path length @p len in @p path), sorted
 * by name, depth first; symbolic links are not followed. */
static ucache_status_t uo_file_walk(char *path, size_t len, us_origin_list_fn_t fn,
                                    void *arg)
{
    ucache_status_t status = UCACHE_OK;
    struct dirent **ents = NULL;
    char uri[US_URI_MAX];
    us_object_t obj;
    struct stat st;
    int i, n;

    n = scandir(path, &ents, NULL, alphasort);
    if (n < 0) {
        return uo_errno_status(errno, path);
    }
    for (i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;

        if ((status != UCACHE_OK) || (strcmp(name, ".") == 0) ||
            (strcmp(name, "..") == 0)) {
            continue;
        }
        if (len + 1 + strlen(name) + 1 + 7 > US_URI_MAX) {
            UC_WARN("%s/%.32s...: path too long, skipped", path, name);
            continue;
        }
        snprintf(path + len, US_URI_MAX - len, "/%s", name);
        if (lstat(path, &st) != 0) {
            continue; /* gone meanwhile */
        }
        if (S_ISDIR(st.st_mode)) {
            status = uo_file_walk(path, len + 1 + strlen(name), fn, arg);
        } else if (S_ISREG(st.st_mode)) {
            snprintf(uri, sizeof(uri), "file://%s", path);
            obj.size    = (uint64_t)st.st_size;
            obj.version = uo_file_version(&st);
            obj.etag[0] = '\0';
            obj.mtime   = (st.st_mtim.tv_sec > 0) ? (uint64_t)st.st_mtim.tv_sec : 0;
            status = fn(arg, uri, &obj);
        }
        path[len] = '\0';
    }
    for (i = 0; i < n; i++) {
        free(ents[i]);
    }
    free(ents);
    return status;
}

/* file:///dir/ (a directory, walked) or file:///file (that file alone) */
static ucache_status_t uo_file_list(const char *prefix, us_origin_list_fn_t fn, void *arg)
{
    const char *path = uo_file_path(prefix);
    char buf[US_URI_MAX];
    us_object_t obj;
    struct stat st;
    size_t len;

    if (path == NULL) {
        return UCACHE_ERR_INVALID;
    }
    if (stat(path, &st) != 0) {
        return uo_errno_status(errno, path);
    }
    if (!S_ISDIR(st.st_mode)) {
        if (uo_file_stat(prefix, &obj) != UCACHE_OK) {
            return UCACHE_ERR_INVALID;
        }
        return fn(arg, prefix, &obj);
    }
    len = strlen(path);
    while ((len > 1) && (path[len - 1] == '/')) {
        len--;
    }
    memcpy(buf, path, len);
    buf[len] = '\0';
    return uo_file_walk(buf, len, fn, arg);
}

const us_origin_ops_t us_origin_file_ops = {
    .scheme = "file",
    .stat   = uo_file_stat,
    .read   = uo_file_read,
    .list   = uo_file_list,
};
