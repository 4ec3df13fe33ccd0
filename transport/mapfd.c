/*
 * mapfd.c - sealed memfds for exported memory, and the unix-socket service
 * that hands same-host readers read-only descriptors of them (mapfd.h).
 */
#include "mapfd.h"
#include "util/log.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010   /* Linux 5.1 */
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23        /* Linux 5.14 */
#endif
#define UT_MAPFD_MAGIC 0x444d4355u   /* "UCMD" */

/* The answer: this, and the descriptor as SCM_RIGHTS when status is OK. */
typedef struct ut_mapfd_rep {
    uint32_t magic;
    int32_t  status;
    uint64_t len;
} ut_mapfd_rep_t;

struct ut_mapfd_srv {
    int              lfd, stopfd;
    uint64_t         deadline_ns;
    ut_mapfd_open_fn fn;
    void            *arg;
    pthread_t        thread;
    char             path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* "": abstract */
};

ucache_status_t ut_memfd_alloc(size_t len, int *fd_p, void **ptr_p)
{
    void *ptr;
    int fd;

    fd = memfd_create("ucache-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        UC_ERROR("memfd_create: %m");
        return UCACHE_ERR_NO_MEMORY;
    }
    if (ftruncate(fd, (off_t)len) != 0) {
        UC_ERROR("cannot size a %zu-byte memfd: %m", len);
        close(fd);
        return UCACHE_ERR_NO_MEMORY;
    }
    ptr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ptr == MAP_FAILED) {
        UC_ERROR("cannot map a %zu-byte memfd: %m", len);
        close(fd);
        return UCACHE_ERR_NO_MEMORY;
    }
    /* ours is the one writable mapping there will ever be */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE |
                               F_SEAL_SEAL) != 0) {
        UC_ERROR("cannot seal the exported memory (Linux 5.1 or later needed): %m");
        munmap(ptr, len);
        close(fd);
        return UCACHE_ERR_UNSUPPORTED;
    }
    *fd_p  = fd;
    *ptr_p = ptr;
    return UCACHE_OK;
}

int ut_memfd_reopen_ro(int fd)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    return open(path, O_RDONLY | O_CLOEXEC);
}

static int ut_mapfd_addr(const char *dir, const char *name, struct sockaddr_un *sa,
                         socklen_t *len_p)
{
    size_t n = strlen(name);
    int w;

    if ((n == 0) || (n >= sizeof(sa->sun_path) - 1) || (strchr(name, '/') != NULL)) {
        return -1;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if ((dir != NULL) && (dir[0] != '\0')) {   /* a path in a shared directory */
        w = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s.sock", dir, name);
        if ((w < 0) || ((size_t)w >= sizeof(sa->sun_path))) {
            return -1;
        }
        *len_p = (socklen_t)sizeof(*sa);
        return 0;
    }
    memcpy(sa->sun_path + 1, name, n);      /* abstract: a leading NUL */
    *len_p = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    return 0;
}

bool ut_mapfd_present(const char *dir, const char *name)
{
    struct sockaddr_un sa;
    struct stat st;
    socklen_t len;

    return (dir != NULL) && (dir[0] != '\0') && (ut_mapfd_addr(dir, name, &sa, &len) == 0) &&
           (stat(sa.sun_path, &st) == 0) && S_ISSOCK(st.st_mode);
}

static void ut_mapfd_timeouts(int fd, uint64_t ns)
{
    struct timeval tv = { .tv_sec = (time_t)(ns / UC_NSEC_PER_SEC),
                          .tv_usec = (suseconds_t)(ns % UC_NSEC_PER_SEC / 1000) };

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* One connection: one request, one answer, within the deadline. */
static void ut_mapfd_serve(ut_mapfd_srv_t *srv, int cfd)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    uint8_t req[UT_MAPFD_REQ_MAX];
    ut_mapfd_rep_t rep = { .magic = UT_MAPFD_MAGIC };
    struct iovec iov = { .iov_base = &rep, .iov_len = sizeof(rep) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    struct cmsghdr *cm;
    int fd = -1;
    ssize_t n;

    ut_mapfd_timeouts(cfd, srv->deadline_ns);
    n = recv(cfd, req, sizeof(req), MSG_TRUNC);
    if ((n <= 0) || ((size_t)n > sizeof(req))) {
        UC_DEBUG("mapfd: a request of %zd bytes refused", n);
        return;
    }
    rep.status = srv->fn(srv->arg, req, (size_t)n, &fd, &rep.len);
    if ((rep.status == UCACHE_OK) && (fd >= 0)) {
        memset(cbuf, 0, sizeof(cbuf));
        mh.msg_control    = cbuf;
        mh.msg_controllen = sizeof(cbuf);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type  = SCM_RIGHTS;
        cm->cmsg_len   = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    } else if (rep.status == UCACHE_OK) {
        rep.status = UCACHE_ERR_TRANSPORT;
    }
    if (sendmsg(cfd, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(rep)) {
        UC_DEBUG("mapfd: the answer was not sent: %m");
    }
    if (fd >= 0) {
        close(fd);
    }
}

static void *ut_mapfd_thread(void *arg)
{
    ut_mapfd_srv_t *srv = arg;
    struct pollfd pfd[2] = { { .fd = srv->lfd, .events = POLLIN },
                             { .fd = srv->stopfd, .events = POLLIN } };
    int cfd;

    for (;;) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            UC_ERROR("mapfd: poll: %m");
            break;
        }
        if (pfd[1].revents != 0) {
            break;
        }
        cfd = accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0) {
            continue;
        }
        ut_mapfd_serve(srv, cfd);
        close(cfd);
    }
    return NULL;
}

ucache_status_t ut_mapfd_start(const char *dir, const char *name, uint64_t deadline_ns,
                               ut_mapfd_open_fn fn, void *arg, ut_mapfd_srv_t **srv_p)
{
    ut_mapfd_srv_t *srv = calloc(1, sizeof(*srv));
    struct sockaddr_un sa;
    socklen_t salen;

    if (srv == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    srv->fn = fn;
    srv->arg = arg;
    srv->deadline_ns = deadline_ns;
    srv->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    srv->stopfd = eventfd(0, EFD_CLOEXEC);
    if ((srv->lfd >= 0) && (srv->stopfd >= 0) && (ut_mapfd_addr(dir, name, &sa, &salen) == 0) &&
        (sa.sun_path[0] != '\0')) {
        snprintf(srv->path, sizeof(srv->path), "%s", sa.sun_path);
        unlink(srv->path);                  /* a dead server's, of the same name */
    }
    if ((srv->lfd < 0) || (srv->stopfd < 0) || (ut_mapfd_addr(dir, name, &sa, &salen) != 0) ||
        (bind(srv->lfd, (struct sockaddr *)&sa, salen) != 0) ||
        ((srv->path[0] != '\0') && (chmod(srv->path, 0666) != 0)) ||
        (listen(srv->lfd, 64) != 0) ||
        (pthread_create(&srv->thread, NULL, ut_mapfd_thread, srv) != 0)) {
        UC_ERROR("cannot serve read-only mappings on %s%s: %m", srv->path[0] ? "" : "@",
                 srv->path[0] ? srv->path : name);
        if (srv->path[0] != '\0') {
            unlink(srv->path);
        }
        if (srv->lfd >= 0) {
            close(srv->lfd);
        }
        if (srv->stopfd >= 0) {
            close(srv->stopfd);
        }
        free(srv);
        return UCACHE_ERR_TRANSPORT;
    }
    *srv_p = srv;
    return UCACHE_OK;
}

void ut_mapfd_stop(ut_mapfd_srv_t *srv)
{
    uint64_t one = 1;

    if (srv == NULL) {
        return;
    }
    if (write(srv->stopfd, &one, sizeof(one)) != sizeof(one)) {
        UC_ERROR("mapfd: cannot stop the server: %m");
    }
    pthread_join(srv->thread, NULL);
    if (srv->path[0] != '\0') {
        unlink(srv->path);
    }
    close(srv->lfd);
    close(srv->stopfd);
    free(srv);
}

ucache_status_t ut_mapfd_map(const char *dir, const char *name, const void *req, size_t len,
                             uint64_t timeout_ns, void **ptr_p, uint64_t *len_p)
{
    char cbuf[CMSG_SPACE(4 * sizeof(int))];
    ut_mapfd_rep_t rep;
    struct iovec iov = { .iov_base = &rep, .iov_len = sizeof(rep) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof(cbuf) };
    ucache_status_t status = UCACHE_ERR_INVALID;
    struct sockaddr_un sa;
    struct cmsghdr *cm;
    struct stat st;
    socklen_t salen;
    int fd = -1, cfd, i, nfds;
    bool extra = false;
    ssize_t n;
    void *ptr;

    if (ut_mapfd_addr(dir, name, &sa, &salen) != 0) {
        return UCACHE_ERR_INVALID;
    }
    cfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (cfd < 0) {
        return UCACHE_ERR_PEER;
    }
    ut_mapfd_timeouts(cfd, timeout_ns);
    if ((connect(cfd, (struct sockaddr *)&sa, salen) != 0) ||
        (send(cfd, req, len, MSG_NOSIGNAL) != (ssize_t)len)) {
        close(cfd);
        return UCACHE_ERR_PEER;       /* no server here: another host, or none */
    }
    n = recvmsg(cfd, &mh, MSG_CMSG_CLOEXEC);
    close(cfd);
    if (n <= 0) {
        return UCACHE_ERR_PEER;
    }
    /* take every descriptor that came, whatever else is wrong */
    for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
        if ((cm->cmsg_level != SOL_SOCKET) || (cm->cmsg_type != SCM_RIGHTS)) {
            continue;
        }
        nfds = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (i = 0; i < nfds; i++) {
            int got;

            memcpy(&got, CMSG_DATA(cm) + (size_t)i * sizeof(int), sizeof(int));
            if (fd < 0) {
                fd = got;
            } else {
                close(got);
                extra = true;
            }
        }
    }
    if ((n != (ssize_t)sizeof(rep)) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
        (rep.magic != UT_MAPFD_MAGIC)) {
        goto out;
    }
    if (rep.status != UCACHE_OK) {
        status = (rep.status < 0) ? (ucache_status_t)rep.status : UCACHE_ERR_INVALID;
        goto out;
    }
    if ((fd < 0) || extra || (fstat(fd, &st) != 0) ||
        !S_ISREG(st.st_mode) || (rep.len == 0) || (rep.len > (uint64_t)st.st_size)) {
        status = UCACHE_ERR_INVALID;  /* no descriptor, several, or too short */
        goto out;
    }
    ptr = mmap(NULL, rep.len, PROT_READ, MAP_SHARED, fd, 0);
    if (ptr == MAP_FAILED) {
        UC_ERROR("cannot map a peer's region read-only: %m");
        status = UCACHE_ERR_NO_MEMORY;
        goto out;
    }
    *ptr_p = ptr;
    *len_p = rep.len;
    status = UCACHE_OK;
out:
    if (fd >= 0) {
        close(fd);
    }
    return status;
}
