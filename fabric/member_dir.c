/*
 * member_dir.c - the dir: membership source (see member.h).
 * Directory layout:  PATH/lock (flock), PATH/epoch (decimal counter),
 * PATH/node-<id>.rec (one record each; its mtime is the heartbeat),
 * PATH/left-<id>.rec (a node that left, kept a while as news).
 * Writers (register, unregister, reap) hold the lock exclusively; a scan
 * holds it shared, so it sees the records of exactly one epoch.
 */
#include "fabric/member.h"
#include "fabric/place.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/*
 * The members directory holds what lets a process connect to the nodes and
 * map their memory: it must be this user's alone.  Made 0700 if missing;
 * refused if it is a symlink or another user's (who could plant or read
 * records); closed to others (0700) if it is ours and was open.
 */
static int uf_dir_open(const char *dir)
{
    struct stat st;
    int dfd;

    if ((mkdir(dir, 0700) != 0) && (errno != EEXIST)) {
        UC_ERROR("cannot create members directory %s: %m", dir);
        return -1;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        UC_ERROR("cannot open members directory %s: %m (a symlink is refused)", dir);
        return -1;
    }
    if ((fstat(dfd, &st) != 0) || (st.st_uid != geteuid())) {
        UC_ERROR("members directory %s belongs to uid %u, not to this user (%u): refused",
                 dir, (unsigned)st.st_uid, (unsigned)geteuid());
        close(dfd);
        return -1;
    }
    if (st.st_mode & 077) {
        if (fchmod(dfd, 0700) != 0) {
            UC_ERROR("members directory %s is open to others and cannot be closed: %m", dir);
            close(dfd);
            return -1;
        }
        UC_WARN("members directory %s was open to others (mode %03o): made 0700", dir,
                (unsigned)(st.st_mode & 0777));
    }
    return dfd;
}

/* Create (or replace) a file of the members directory, mode 0600, never
 * through a symlink.  @return an fd for writing, or -1. */
static int uf_dir_create(const char *path)
{
    int fd;

    unlink(path);    /* a leftover of a crash; we hold the directory's lock */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        UC_ERROR("cannot create %s: %m", path);
    }
    return fd;
}

static int uf_dir_lock(const char *dir, int how)
{
    int dfd, fd;

    dfd = uf_dir_open(dir);
    if (dfd < 0) {
        return -1;
    }
    fd = openat(dfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    close(dfd);
    if (fd < 0) {
        UC_ERROR("cannot open %s/lock: %m", dir);
        return -1;
    }
    while (flock(fd, how) != 0) {
        if (errno != EINTR) {
            UC_ERROR("flock %s/lock: %m", dir);
            close(fd);
            return -1;
        }
    }
    return fd;
}

static void uf_dir_unlock(int fd)
{
    flock(fd, LOCK_UN);
    close(fd);
}

uint64_t uf_dir_epoch(const char *dir)
{
    char path[4096], buf[32] = "";
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/epoch", dir);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[(n > 0) ? n : 0] = '\0';
    return strtoull(buf, NULL, 10);
}

/* Lock held: epoch + 1, written atomically (tmp + rename). */
static ucache_status_t uf_dir_bump(const char *dir)
{
    char path[4096], tmp[4200], text[32];
    uint64_t e = uf_dir_epoch(dir) + 1;
    int fd, n;
    bool ok;

    snprintf(path, sizeof(path), "%s/epoch", dir);
    snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
    fd = uf_dir_create(tmp);
    if (fd < 0) {
        return UCACHE_ERR_IO;
    }
    n = snprintf(text, sizeof(text), "%" PRIu64 "\n", e);
    ok = (write(fd, text, (size_t)n) == n);
    ok = (close(fd) == 0) && ok;              /* closed whatever the write did */
    if (!ok || (rename(tmp, path) != 0)) {
        UC_ERROR("cannot update %s: %m", path);
        unlink(tmp);
        return UCACHE_ERR_IO;
    }
    return UCACHE_OK;
}

static void uf_rec_path(const char *dir, uint64_t id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/node-%016" PRIx64 ".rec", dir, id);
}

/* A node that left (reaped, or unregistered) keeps its record as
 * left-ID.rec, stamped with when it left, for UF_LEFT_KEEP x the TTL:
 * `ucache health` lists it (news to an admin); the next heartbeat scan
 * after that removes it.  Lock held. */
#define UF_LEFT_KEEP 10

static void uf_left_path(const char *dir, uint64_t id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/left-%016" PRIx64 ".rec", dir, id);
}

static int do_dir_retire(const char *dir, const char *path, uint64_t id)
{
    char left[4096];

    uf_left_path(dir, id, left, sizeof(left));
    if (rename(path, left) != 0) {
        return -1;
    }
    if (utimensat(AT_FDCWD, left, NULL, 0) != 0) {
        UC_DEBUG("members: cannot stamp %s: %m", left);
    }
    return 0;
}

static ucache_status_t uf_read_file(const char *path, void **buf_p, size_t *len_p,
                                    struct stat *st)
{
    ucache_status_t status = UCACHE_OK;
    ssize_t n;
    void *buf;
    int fd;

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return (errno == ENOENT) ? UCACHE_ERR_NOT_FOUND : UCACHE_ERR_IO;
    }
    if ((fstat(fd, st) != 0) || !S_ISREG(st->st_mode) || (st->st_uid != geteuid()) ||
        (st->st_size > 4 * UF_BLOB_MAX)) {
        close(fd);
        return UCACHE_ERR_CORRUPT;   /* not a record of this user's */
    }
    buf = malloc((size_t)st->st_size + 1);
    if (buf == NULL) {
        close(fd);
        return UCACHE_ERR_NO_MEMORY;
    }
    n = pread(fd, buf, (size_t)st->st_size, 0);
    if (n != st->st_size) {
        free(buf);
        status = UCACHE_ERR_IO;
    } else {
        *buf_p = buf;
        *len_p = (size_t)n;
    }
    close(fd);
    return status;
}

static uint64_t uf_realtime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A record whose daemon is gone: same host and no such pid, or silent. */
static bool uf_member_dead(const uf_member_t *m, uint64_t ttl_ns, uint64_t now)
{
    char host[UF_HOST_MAX] = "";

    if ((ttl_ns > 0) && (now > m->heartbeat_ns) && (now - m->heartbeat_ns > ttl_ns)) {
        return true;
    }
    gethostname(host, sizeof(host) - 1);
    return (strcmp(host, m->host) == 0) && (m->pid != 0) &&
           (kill((pid_t)m->pid, 0) != 0) && (errno == ESRCH);
}

/*
 * Directory entry @p name of @p dir, if it is a record named PREFIX-*.rec:
 * read and decoded into @p m (its heartbeat_ns the file's mtime), its path
 * in @p path.  UCACHE_ERR_NOT_FOUND if not such a name or gone meanwhile;
 * UCACHE_ERR_CORRUPT (counted, logged) if not a valid record.
 */
static ucache_status_t uf_rec_load(const char *dir, const char *name, const char *prefix,
                                   uf_member_t *m, char *path, size_t path_cap,
                                   uint64_t *bad_p)
{
    size_t len = strlen(name), plen = strlen(prefix);
    struct stat st;
    void *buf;

    if ((strncmp(name, prefix, plen) != 0) || (len < plen + 4) ||
        (strcmp(name + len - 4, ".rec") != 0)) {
        return UCACHE_ERR_NOT_FOUND;
    }
    snprintf(path, path_cap, "%s/%s", dir, name);
    if (uf_read_file(path, &buf, &len, &st) != UCACHE_OK) {
        return UCACHE_ERR_NOT_FOUND; /* removed under us (no lock for readers of old) */
    }
    if (uf_member_decode(buf, len, m) != UCACHE_OK) {
        free(buf);
        if (bad_p != NULL) {
            (*bad_p)++;
        }
        UC_WARN("members: %s is not a valid node record; ignored", path);
        return UCACHE_ERR_CORRUPT;
    }
    free(buf);
    m->heartbeat_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
    return UCACHE_OK;
}

/* Append @p m to the array *v_p of *n_p (capacity *cap_p); on failure @p m
 * is cleared. */
static ucache_status_t uf_members_push(uf_member_t **v_p, uint32_t *n_p, uint32_t *cap_p,
                                       uf_member_t *m)
{
    uf_member_t *nv;
    uint32_t cap;

    if (*n_p == *cap_p) {
        cap = *cap_p ? 2 * *cap_p : 16;
        nv = realloc(*v_p, sizeof(*nv) * cap);
        if (nv == NULL) {
            uf_member_clear(m);
            return UCACHE_ERR_NO_MEMORY;
        }
        *v_p   = nv;
        *cap_p = cap;
    }
    (*v_p)[(*n_p)++] = *m;
    return UCACHE_OK;
}

/* Read every record (lock held); reap dead ones if @p ttl_ns != UINT64_MAX. */
static ucache_status_t do_dir_scan(const char *dir, uint64_t reap_ttl, bool *reaped,
                                   uf_member_t **members_p, uint32_t *n_p,
                                   uint64_t *bad_p)
{
    uf_member_t *v = NULL, m;
    uint32_t n = 0, cap = 0;
    uint64_t now = uf_realtime_ns();
    char path[4096];
    struct dirent *de;
    struct stat st;
    DIR *d;

    d = opendir(dir);
    if (d == NULL) {
        *members_p = NULL;
        *n_p = 0;
        return (errno == ENOENT) ? UCACHE_OK : UCACHE_ERR_IO;
    }
    while ((de = readdir(d)) != NULL) {
        if ((reap_ttl != UINT64_MAX) && (strncmp(de->d_name, "left-", 5) == 0)) {
            /* a node that left long enough ago is no longer news */
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            if ((lstat(path, &st) == 0) && S_ISREG(st.st_mode) &&
                (now > (uint64_t)st.st_mtim.tv_sec * 1000000000ull + UF_LEFT_KEEP * reap_ttl)) {
                unlink(path);
            }
            continue;
        }
        if (uf_rec_load(dir, de->d_name, "node-", &m, path, sizeof(path), bad_p) != UCACHE_OK) {
            continue;
        }
        if ((reap_ttl != UINT64_MAX) && uf_member_dead(&m, reap_ttl, now)) {
            UC_WARN("members: reaping node %016" PRIx64 " (%s pid %u): %s", m.id,
                    m.host, m.pid, "no heartbeat or process gone");
            if (do_dir_retire(dir, path, m.id) != 0) {
                unlink(path);
            }
            uf_member_clear(&m);
            *reaped = true;
            continue;
        }
        if (uf_members_push(&v, &n, &cap, &m) != UCACHE_OK) {
            closedir(d);
            uf_members_free(v, n);
            return UCACHE_ERR_NO_MEMORY;
        }
    }
    closedir(d);
    *members_p = v;
    *n_p = n;
    return UCACHE_OK;
}

ucache_status_t uf_dir_scan(const char *dir, uf_member_t **members_p, uint32_t *n_p,
                            uint64_t *epoch_p, uint64_t *bad_p)
{
    ucache_status_t status;
    bool reaped = false;
    int fd;

    fd = uf_dir_lock(dir, LOCK_SH);
    if (fd < 0) {
        return UCACHE_ERR_IO;
    }
    *epoch_p = uf_dir_epoch(dir);
    status = do_dir_scan(dir, UINT64_MAX, &reaped, members_p, n_p, bad_p);
    uf_dir_unlock(fd);
    return status;
}

static int uf_slot_cmp(const void *a, const void *b)
{
    const uf_member_t *x = a, *y = b;

    return (x->slot0 > y->slot0) - (x->slot0 < y->slot0);
}

ucache_status_t uf_dir_register(const char *dir, uf_member_t *m, uint64_t ttl_ns)
{
    char path[4096], tmp[4200];
    ucache_status_t status;
    uf_member_t *v = NULL;
    uint32_t n = 0, i, slot = 0;
    bool reaped = false;
    size_t len;
    void *rec;
    int wfd;
    bool ok;
    int fd;

    fd = uf_dir_lock(dir, LOCK_EX);
    if (fd < 0) {
        return UCACHE_ERR_IO;
    }
    status = do_dir_scan(dir, ttl_ns, &reaped, &v, &n, NULL);
    if (status != UCACHE_OK) {
        goto out;
    }
    /* lowest run of m->weight free slots */
    if (n > 1) {
        qsort(v, n, sizeof(*v), uf_slot_cmp);
    }
    for (i = 0; i < n; i++) {
        if (v[i].id == m->id) {
            continue;
        }
        if (v[i].slot0 >= slot + m->weight) {
            break;
        }
        if (v[i].slot0 + v[i].weight > slot) {
            slot = v[i].slot0 + v[i].weight;
        }
    }
    if (slot + m->weight > UF_MAX_SLOTS / 2) {
        UC_ERROR("members: %s has no free slots for weight %u", dir, m->weight);
        status = UCACHE_ERR_NO_MEMORY;
        goto out;
    }
    m->slot0 = slot;
    uf_left_path(dir, m->id, path, sizeof(path));
    unlink(path);           /* back: no longer a node that left */
    status = uf_member_encode(m, &rec, &len);
    if (status != UCACHE_OK) {
        goto out;
    }
    uf_rec_path(dir, m->id, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    wfd = uf_dir_create(tmp);
    ok = (wfd >= 0) && (write(wfd, rec, len) == (ssize_t)len);
    ok = ((wfd < 0) || (close(wfd) == 0)) && ok;
    if (!ok || (rename(tmp, path) != 0)) {
        UC_ERROR("members: cannot write %s: %m", path);
        unlink(tmp);
        status = UCACHE_ERR_IO;
    } else {
        status = uf_dir_bump(dir);
    }
    free(rec);
out:
    uf_members_free(v, n);
    uf_dir_unlock(fd);
    return status;
}

ucache_status_t uf_dir_unregister(const char *dir, uint64_t id)
{
    ucache_status_t status;
    char path[4096];
    int fd;

    fd = uf_dir_lock(dir, LOCK_EX);
    if (fd < 0) {
        return UCACHE_ERR_IO;
    }
    uf_rec_path(dir, id, path, sizeof(path));
    if (do_dir_retire(dir, path, id) != 0) {
        status = (errno == ENOENT) ? UCACHE_ERR_NOT_FOUND : UCACHE_ERR_IO;
    } else {
        status = uf_dir_bump(dir);
    }
    uf_dir_unlock(fd);
    return status;
}

ucache_status_t uf_dir_heartbeat(const char *dir, uint64_t id, uint64_t ttl_ns)
{
    ucache_status_t status = UCACHE_OK;
    uf_member_t *v = NULL;
    bool reaped = false;
    char path[4096];
    uint32_t n = 0;
    int fd;

    uf_rec_path(dir, id, path, sizeof(path));
    if (utimensat(AT_FDCWD, path, NULL, 0) != 0) {
        return (errno == ENOENT) ? UCACHE_ERR_NOT_FOUND : UCACHE_ERR_IO;
    }
    fd = uf_dir_lock(dir, LOCK_EX);
    if (fd < 0) {
        return UCACHE_ERR_IO;
    }
    status = do_dir_scan(dir, ttl_ns, &reaped, &v, &n, NULL);
    if ((status == UCACHE_OK) && reaped) {
        status = uf_dir_bump(dir);
    }
    uf_members_free(v, n);
    uf_dir_unlock(fd);
    return status;
}

/* The nodes that left @p dir within UF_LEFT_KEEP x @p ttl_ns, their
 * heartbeat_ns when they left. */
static ucache_status_t uf_dir_left(const char *dir, uint64_t ttl_ns, uf_member_t **members_p,
                                   uint32_t *n_p)
{
    uint64_t now = uf_realtime_ns();
    uf_member_t *v = NULL, m;
    uint32_t n = 0, cap = 0;
    char path[4096];
    struct dirent *de;
    DIR *d;

    *members_p = NULL;
    *n_p = 0;
    d = opendir(dir);
    if (d == NULL) {
        return (errno == ENOENT) ? UCACHE_OK : UCACHE_ERR_IO;
    }
    while ((de = readdir(d)) != NULL) {
        if (uf_rec_load(dir, de->d_name, "left-", &m, path, sizeof(path), NULL) != UCACHE_OK) {
            continue;
        }
        if (now > m.heartbeat_ns + UF_LEFT_KEEP * ttl_ns) {
            uf_member_clear(&m);          /* old news: reaped by the next scan */
        } else if (uf_members_push(&v, &n, &cap, &m) != UCACHE_OK) {
            break;
        }
    }
    closedir(d);
    *members_p = v;
    *n_p = n;
    return UCACHE_OK;
}

/* The source table's operations: src is the directory's path. */
static uint64_t uf_dir_src_epoch(void *src)
{
    return uf_dir_epoch(src);
}

static ucache_status_t uf_dir_src_scan(void *src, uf_member_t **members_p, uint32_t *n_p,
                                       uint64_t *epoch_p, uint64_t *bad_p)
{
    return uf_dir_scan(src, members_p, n_p, epoch_p, bad_p);
}

static ucache_status_t uf_dir_src_join(void *src, uf_member_t *self, uint64_t ttl_ns)
{
    return uf_dir_register(src, self, ttl_ns);
}

static ucache_status_t uf_dir_src_heartbeat(void *src, uint64_t id, uint64_t ttl_ns)
{
    return uf_dir_heartbeat(src, id, ttl_ns);
}

static ucache_status_t uf_dir_src_leave(void *src, uint64_t id)
{
    return uf_dir_unregister(src, id);
}

static ucache_status_t uf_dir_src_left(void *src, uint64_t ttl_ns,
                                       uf_member_t **members_p, uint32_t *n_p)
{
    return uf_dir_left(src, ttl_ns, members_p, n_p);
}

const uf_source_ops_t uf_source_dir = {
    .prefix    = "dir:",
    .epoch     = uf_dir_src_epoch,
    .scan      = uf_dir_src_scan,
    .join      = uf_dir_src_join,
    .heartbeat = uf_dir_src_heartbeat,
    .leave     = uf_dir_src_leave,
    .left      = uf_dir_src_left,
    .listens   = false,
    .global_epochs = true,
};
