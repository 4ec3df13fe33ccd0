/*
 * origin_file.c - file:///absolute/path origins (a local or shared
 * filesystem).  The version is a digest of (device, inode, size, mtime), so
 * a rewritten or replaced file is a new version; a read re-checks it after
 * the data is in and answers UCACHE_ERR_STALE if the file changed.
 */
#include "store/origin.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
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
        UC_ERROR("'%.64s' is not file:///absolute/path", uri);
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
    return UCACHE_OK;
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
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return uo_errno_status(errno, path);
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

const us_origin_ops_t us_origin_file_ops = {
    .scheme = "file",
    .stat   = uo_file_stat,
    .read   = uo_file_read,
};
