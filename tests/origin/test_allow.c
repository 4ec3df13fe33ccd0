/*
 * test_allow.c - origin confinement (store/allow.c) and strict origin
 * names: an owner fills only from what its own configuration allows, and a
 * requester's URI cannot point the owner's credentials or connections at
 * a host of its choosing.  Loopback listeners count every connection made
 * to them, so "refused before any connection" is checked, not assumed.
 */
#include "store/origin.h"
#include "tests/common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

/* A listener on loopback that accepts and closes, counting connections. */
typedef struct uct_listener {
    int              fd;
    unsigned         port;
    _Atomic unsigned accepts;
    _Atomic bool     stop;
    pthread_t        thread;
} uct_listener_t;

static void *uct_listen_loop(void *arg)
{
    uct_listener_t *l = arg;
    struct pollfd pfd = { .fd = l->fd, .events = POLLIN };
    int c;

    while (!atomic_load(&l->stop)) {
        if (poll(&pfd, 1, 20) <= 0) {
            continue;
        }
        c = accept(l->fd, NULL, NULL);
        if (c >= 0) {
            atomic_fetch_add(&l->accepts, 1);
            close(c);
        }
    }
    return NULL;
}

/* Listen on 127.0.0.1 (@p v6: ::1) on a free port; false if it cannot. */
static bool uct_listen(uct_listener_t *l, bool v6)
{
    struct sockaddr_storage ss;
    socklen_t len;

    memset(l, 0, sizeof(*l));
    memset(&ss, 0, sizeof(ss));
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

        a->sin6_family = AF_INET6;
        a->sin6_addr   = in6addr_loopback;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;

        a->sin_family      = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    l->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if ((l->fd < 0) || (bind(l->fd, (struct sockaddr *)&ss, len) != 0) ||
        (listen(l->fd, 16) != 0) || (getsockname(l->fd, (struct sockaddr *)&ss, &len) != 0)) {
        if (l->fd >= 0) {
            close(l->fd);
        }
        return false;
    }
    l->port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
                         ((struct sockaddr_in *)&ss)->sin_port);
    return pthread_create(&l->thread, NULL, uct_listen_loop, l) == 0;
}

static unsigned uct_unlisten(uct_listener_t *l)
{
    atomic_store(&l->stop, true);
    pthread_join(l->thread, NULL);
    close(l->fd);
    return atomic_load(&l->accepts);
}

/* Origins that fail fast: no retries, a 1 s connect/stall timeout. */
static us_origin_params_t uct_fast_origins(void)
{
    us_origin_params_t prm, fast;

    us_origin_params(&prm);
    fast = prm;
    fast.retries    = 0;
    fast.timeout_ns = 1000000000ull;
    us_origin_configure(&fast);
    return prm;
}

/*
 * The attack of issue [2/11] #2: an Azure account or S3 bucket name that is
 * really a host (and port) sent the request - and the credentials - there.
 * Each such name is refused as malformed, and the listeners it named see
 * no connection at all.
 */
static void test_injected_hosts(void)
{
    static const char *const az[] = {
        "az://127.0.0.1:%u?/c/b", "az://127.0.0.1:%u/c/b", "az://127.0.0.1:%u#/c/b",
        "az://a@127.0.0.1:%u?/c/b", "az://localhost:%u/c/b",
    };
    static const char *const s3[] = {
        "s3://[::1]:%u?/k", "s3://[::1]:%u/k", "s3://[::1]:%u#/k", "s3://u@[::1]:%u?/k",
    };
    us_origin_params_t saved = uct_fast_origins();
    uct_listener_t l4, l6;
    char uri[256];
    us_object_t o;
    unsigned i;
    bool v6;

    setenv("AZURE_STORAGE_SAS_TOKEN", "sv=2021&sig=secret", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    CU_ASSERT_FATAL(uct_listen(&l4, false));
    v6 = uct_listen(&l6, true);
    for (i = 0; i < sizeof(az) / sizeof(az[0]); i++) {
        snprintf(uri, sizeof(uri), az[i], l4.port);
        CU_ASSERT_EQUAL(us_origin_stat(uri, &o), UCACHE_ERR_INVALID);
    }
    for (i = 0; v6 && (i < sizeof(s3) / sizeof(s3[0])); i++) {
        snprintf(uri, sizeof(uri), s3[i], l6.port);
        CU_ASSERT_EQUAL(us_origin_stat(uri, &o), UCACHE_ERR_INVALID);
    }
    CU_ASSERT_EQUAL(uct_unlisten(&l4), 0);
    if (v6) {
        CU_ASSERT_EQUAL(uct_unlisten(&l6), 0);
    } else {
        UCT_SKIP("no IPv6 loopback here: the s3://[::1] cases were not run");
    }
    unsetenv("AZURE_STORAGE_SAS_TOKEN");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    us_origin_configure(&saved);
}

const uct_test_t allow_tests[] = {
    { "injected_hosts", test_injected_hosts },
    { NULL, NULL }
};
