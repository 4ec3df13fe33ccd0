/*
 * test_auth.c - tests of transport/auth.c (signing and checking requests)
 * and util/key.c (key files, the MAC), without a network: messages are
 * signed by one ut_auth and checked by another, in and out of order,
 * replayed, altered, late, addressed elsewhere, under the wrong key.
 */
#include "tests/common.h"
#include "ucache.h"
#include "transport/auth.h"
#include "transport/wire.h"
#include "util/time.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A request as the UCX backend frames one (transport/wire.h). */
typedef ut_am_req_hdr msg_t;

#define TAG_OFF offsetof(msg_t, auth)
#define SENDER  0x5e11de5ull
#define SELF    0x5e1full

static char kdir[64];

static const char *key_path(const char *name)
{
    static char path[4][128];
    static unsigned n;
    char *p = path[n++ % 4];

    snprintf(p, sizeof(path[0]), "%s/%s", kdir, name);
    return p;
}

static ut_config_t keyed(const char *cluster, const char *admin)
{
    ut_config_t cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.auth_window_ns = 30 * UC_NSEC_PER_SEC;
    snprintf(cfg.cluster_key_file, sizeof(cfg.cluster_key_file), "%s",
             cluster ? key_path(cluster) : "");
    snprintf(cfg.admin_key_file, sizeof(cfg.admin_key_file), "%s", admin ? key_path(admin) : "");
    return cfg;
}

static ut_auth_t *make(const char *cluster, const char *admin)
{
    ut_config_t cfg = keyed(cluster, admin);
    ut_auth_t *a = NULL;

    CU_ASSERT_EQUAL_FATAL(ut_auth_create(&cfg, &a), UCACHE_OK);
    return a;
}

static void sign(ut_auth_t *a, msg_t *m, uint64_t to, const char *payload)
{
    memset(m, 0, sizeof(*m));
    m->magic = UT_AM_MAGIC;
    m->op    = 5;
    m->id    = 77;
    m->from  = SENDER ^ (uint64_t)(uintptr_t)a;  /* one sender per context */
    ut_auth_sign(a, m, sizeof(*m), TAG_OFF, to, payload, strlen(payload));
}

static ucache_status_t check(ut_auth_t *a, const msg_t *m, const char *payload,
                             ut_role_t *role)
{
    return ut_auth_check(a, m, sizeof(*m), TAG_OFF, m->from, SELF, false, payload,
                         strlen(payload), role);
}

/* Re-sign @p m with the key in @p file after a test changed its tag. */
static void resign(msg_t *m, const char *file, const char *payload)
{
    uc_key_t key;
    uc_mac_t *mac;
    msg_t copy = *m;

    CU_ASSERT_EQUAL_FATAL(uc_key_load(key_path(file), &key), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(uc_mac_create(&key, &mac), UCACHE_OK);
    memset(copy.auth.mac, 0, sizeof(copy.auth.mac));
    CU_ASSERT_EQUAL(uc_mac_compute(mac, &copy, sizeof(copy), payload, strlen(payload),
                                   m->auth.mac), UCACHE_OK);
    uc_mac_destroy(mac);
}

static void test_key_files(void)
{
    uc_key_t k1, k2;
    char hex[66];
    int fd, i;

    CU_ASSERT_EQUAL(ucache_keygen(key_path("a")), UCACHE_OK);
    CU_ASSERT_EQUAL(ucache_keygen(key_path("a")), UCACHE_ERR_EXISTS); /* never overwritten */
    CU_ASSERT_EQUAL(ucache_keygen(key_path("b")), UCACHE_OK);
    CU_ASSERT_EQUAL(ucache_keygen(key_path("admin")), UCACHE_OK);
    CU_ASSERT_EQUAL(ucache_keygen(key_path("other")), UCACHE_OK);
    CU_ASSERT_EQUAL(symlink(key_path("a"), key_path("link")), 0);
    CU_ASSERT_EQUAL(ucache_keygen(key_path("link")), UCACHE_ERR_EXISTS);  /* no symlink follow */
    {
        struct stat st;

        CU_ASSERT_EQUAL(stat(key_path("a"), &st), 0);
        CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
        CU_ASSERT_EQUAL(st.st_size, UC_KEY_LEN);
    }
    CU_ASSERT_EQUAL(uc_key_load(key_path("a"), &k1), UCACHE_OK);
    CU_ASSERT_EQUAL(uc_key_load(key_path("b"), &k2), UCACHE_OK);
    CU_ASSERT(memcmp(&k1, &k2, sizeof(k1)) != 0);        /* random, not fixed */

    /* the same key as 64 hex digits and a newline (a Secret literal) */
    for (i = 0; i < UC_KEY_LEN; i++) {
        snprintf(hex + 2 * i, 3, "%02x", k1.b[i]);
    }
    strcat(hex, "\n");
    fd = open(key_path("hex"), O_WRONLY | O_CREAT | O_EXCL, 0400);
    CU_ASSERT_EQUAL(write(fd, hex, strlen(hex)), (ssize_t)strlen(hex));
    close(fd);
    CU_ASSERT_EQUAL(uc_key_load(key_path("hex"), &k2), UCACHE_OK);
    CU_ASSERT(memcmp(&k1, &k2, sizeof(k1)) == 0);

    /* refused: open to others, too short, not hex, not a regular file, absent */
    fd = open(key_path("open"), O_WRONLY | O_CREAT | O_EXCL, 0644);
    CU_ASSERT_EQUAL(write(fd, k1.b, UC_KEY_LEN), UC_KEY_LEN);
    close(fd);
    chmod(key_path("open"), 0644);
    CU_ASSERT_EQUAL(uc_key_load(key_path("open"), &k2), UCACHE_ERR_INVALID);
    fd = open(key_path("short"), O_WRONLY | O_CREAT | O_EXCL, 0600);
    CU_ASSERT_EQUAL(write(fd, k1.b, 31), 31);
    close(fd);
    CU_ASSERT_EQUAL(uc_key_load(key_path("short"), &k2), UCACHE_ERR_INVALID);
    hex[10] = 'z';
    fd = open(key_path("nothex"), O_WRONLY | O_CREAT | O_EXCL, 0600);
    CU_ASSERT_EQUAL(write(fd, hex, strlen(hex)), (ssize_t)strlen(hex));
    close(fd);
    CU_ASSERT_EQUAL(uc_key_load(key_path("nothex"), &k2), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uc_key_load(kdir, &k2), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uc_key_load(key_path("absent"), &k2), UCACHE_ERR_INVALID);
    {
        ut_config_t cfg = keyed("short", NULL);
        ut_auth_t *a = NULL;

        CU_ASSERT_EQUAL(ut_auth_create(&cfg, &a), UCACHE_ERR_INVALID); /* no silent open fabric */
        CU_ASSERT_PTR_NULL(a);
    }
}

/* Signed with the cluster key: accepted once, as a reader; everything else refused. */
static void test_sign_check(void)
{
    ut_auth_t *reader = make("a", NULL), *admin = make("a", "admin");
    ut_auth_t *owner = make("a", "admin"), *stranger = make("other", NULL);
    ut_auth_t *open = make(NULL, NULL), *owner_noadmin = make("a", NULL);
    ut_role_t role = UT_ROLE_NONE;
    msg_t m, m2;

    CU_ASSERT(!ut_auth_keyed(open));
    CU_ASSERT(ut_auth_keyed(reader));

    sign(reader, &m, SELF, "FETCH az://x");
    CU_ASSERT_EQUAL(m.auth.key_id, UT_KEY_CLUSTER);
    CU_ASSERT_EQUAL(check(owner, &m, "FETCH az://x", &role), UCACHE_OK);
    CU_ASSERT_EQUAL(role, UT_ROLE_READER);
    CU_ASSERT_EQUAL(check(owner, &m, "FETCH az://x", &role), UCACHE_ERR_AUTH); /* replay */

    sign(admin, &m, SELF, "DRAIN");
    CU_ASSERT_EQUAL(m.auth.key_id, UT_KEY_ADMIN);
    CU_ASSERT_EQUAL(check(owner, &m, "DRAIN", &role), UCACHE_OK);
    CU_ASSERT_EQUAL(role, UT_ROLE_ADMIN);
    sign(admin, &m, SELF, "DRAIN");      /* an owner without the admin key */
    CU_ASSERT_EQUAL(check(owner_noadmin, &m, "DRAIN", &role), UCACHE_ERR_AUTH);

    sign(stranger, &m, SELF, "FETCH");   /* another fabric's key */
    CU_ASSERT_EQUAL(check(owner, &m, "FETCH", &role), UCACHE_ERR_AUTH);
    sign(open, &m, SELF, "FETCH");       /* unsigned */
    CU_ASSERT_EQUAL(m.auth.key_id, UT_KEY_NONE);
    CU_ASSERT_EQUAL(check(owner, &m, "FETCH", &role), UCACHE_ERR_AUTH);
    m.auth.key_id = UT_KEY_CLUSTER;      /* claims a key it does not have */
    CU_ASSERT_EQUAL(check(owner, &m, "FETCH", &role), UCACHE_ERR_AUTH);

    sign(reader, &m, SELF, "FETCH az://x");          /* payload altered */
    CU_ASSERT_EQUAL(check(owner, &m, "FETCH az://y", &role), UCACHE_ERR_AUTH);
    sign(reader, &m, SELF, "FETCH");                 /* header altered: op, sender */
    m2 = m;
    m2.op = 4;
    CU_ASSERT_EQUAL(check(owner, &m2, "FETCH", &role), UCACHE_ERR_AUTH);
    m2 = m;
    m2.from = m.from + 1;
    CU_ASSERT_EQUAL(check(owner, &m2, "FETCH", &role), UCACHE_ERR_AUTH);
    m2 = m;
    m2.auth.key_id = UT_KEY_ADMIN;                   /* a reader claiming admin */
    CU_ASSERT_EQUAL(check(owner, &m2, "FETCH", &role), UCACHE_ERR_AUTH);
    CU_ASSERT_EQUAL(check(owner, &m, "FETCH", &role), UCACHE_OK); /* the original still is */

    sign(reader, &m, SELF + 1, "FETCH");             /* to another node */
    CU_ASSERT_EQUAL(check(owner, &m, "FETCH", &role), UCACHE_ERR_AUTH);
    sign(reader, &m, 0, "PING");                     /* to nobody: a PING only */
    CU_ASSERT_EQUAL(check(owner, &m, "PING", &role), UCACHE_ERR_AUTH);
    CU_ASSERT_EQUAL(ut_auth_check(owner, &m, sizeof(m), TAG_OFF, m.from, SELF, true, "PING",
                                  4, &role), UCACHE_OK);

    /* late or early past the window, re-signed with the right key */
    sign(reader, &m, SELF, "FETCH");
    m.auth.ts_ns -= 31 * UC_NSEC_PER_SEC;
    resign(&m, "a", "FETCH");
    CU_ASSERT_EQUAL(check(owner, &m, "FETCH", &role), UCACHE_ERR_AUTH);
    m.auth.ts_ns += 62 * UC_NSEC_PER_SEC;
    resign(&m, "a", "FETCH");
    CU_ASSERT_EQUAL(check(owner, &m, "FETCH", &role), UCACHE_ERR_AUTH);
    m.auth.ts_ns -= 31 * UC_NSEC_PER_SEC;            /* back to now */
    resign(&m, "a", "FETCH");
    CU_ASSERT_EQUAL(check(owner, &m, "FETCH", &role), UCACHE_OK);

    /* a payload not at hand (rendezvous) is never taken unchecked */
    sign(reader, &m, SELF, "x");
    CU_ASSERT_EQUAL(ut_auth_check(owner, &m, sizeof(m), TAG_OFF, m.from, SELF, false, NULL,
                                  4096, &role), UCACHE_ERR_AUTH);
    CU_ASSERT_EQUAL(ut_auth_check(open, &m, sizeof(m), TAG_OFF, m.from, SELF, false, NULL,
                                  4096, &role), UCACHE_OK);   /* an open node takes all */
    CU_ASSERT_EQUAL(role, UT_ROLE_ADMIN);

    /* sequence number 0 (senders count from 1), twice: never accepted */
    sign(reader, &m, SELF, "S");
    m.auth.seq = 0;
    resign(&m, "a", "S");
    CU_ASSERT_EQUAL(check(owner, &m, "S", &role), UCACHE_ERR_AUTH);
    CU_ASSERT_EQUAL(check(owner, &m, "S", &role), UCACHE_ERR_AUTH);

    CU_ASSERT_EQUAL(ut_auth_failures(owner), 15);
    CU_ASSERT_EQUAL(ut_auth_failures(owner_noadmin), 1);
    ut_auth_destroy(reader);
    ut_auth_destroy(admin);
    ut_auth_destroy(owner);
    ut_auth_destroy(stranger);
    ut_auth_destroy(open);
    ut_auth_destroy(owner_noadmin);
}

/* Sequence numbers: reordering within the 256-message window is accepted
 * once each; a replay or an arrival older than the window is refused. */
static void test_replay_window(void)
{
    enum { N = 700 };
    ut_auth_t *reader = make("a", NULL), *owner = make("a", NULL);
    static msg_t m[N + 1];
    static const unsigned order[] = {
        1, 2, 3, 5, 4, 3, 1, 64, 63, 62, 6, 65, 66, 130, 129, 128, 67, 131, 300, 45,
        299, 299, 44, 301, 600, 345, 344, 599, 600, 700, 444, 445
    };
    static const int want[] = {
        1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 0, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1
    };
    ut_role_t role;
    unsigned i, ok = 0;

    for (i = 1; i <= N; i++) {
        sign(reader, &m[i], SELF, "R");
        CU_ASSERT_EQUAL_FATAL(m[i].auth.seq, i);
    }
    for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        int got = (check(owner, &m[order[i]], "R", &role) == UCACHE_OK);

        if (got != want[i]) {
            fprintf(stderr, "seq %u (arrival %u): %s, expected %s\n", order[i], i,
                    got ? "accepted" : "refused", want[i] ? "accepted" : "refused");
        }
        ok += (got == want[i]);
    }
    CU_ASSERT_EQUAL(ok, sizeof(order) / sizeof(order[0]));
    ut_auth_destroy(reader);
    ut_auth_destroy(owner);
}

/* Signing and checking cost: a 4 KiB hit's request is ~120 bytes. */
static void test_cost(void)
{
    ut_auth_t *reader = make("a", NULL), *owner = make("a", NULL);
    enum { N = 20000 };
    ut_role_t role;
    uint64_t t0;
    unsigned i, ok = 0;
    msg_t m;

    t0 = uc_time_ns();
    for (i = 0; i < N; i++) {
        sign(reader, &m, SELF, "0123456789abcdef0123456789abcdef");
        ok += (check(owner, &m, "0123456789abcdef0123456789abcdef", &role) == UCACHE_OK);
    }
    CU_ASSERT_EQUAL(ok, N);
    fprintf(stderr, "    sign + check of a request: %.2f us\n",
            (double)(uc_time_ns() - t0) / N / 1000.0);
    ut_auth_destroy(reader);
    ut_auth_destroy(owner);
}

int main(void)
{
    static const tc_test_t tests[] = {
        {"key_files", test_key_files},
        {"sign_check", test_sign_check},
        {"replay_window", test_replay_window},
        {"cost", test_cost},
        {NULL, NULL}
    };
    char cmd[96];
    int rc;

    setenv("UCACHE_LOG_LEVEL", "error", 0);
    snprintf(kdir, sizeof(kdir), "/tmp/ucache-auth.XXXXXX");
    if (mkdtemp(kdir) == NULL) {
        return 2;
    }
    if ((CU_initialize_registry() != CUE_SUCCESS) || tc_add_suite("auth", tests)) {
        return 2;
    }
    rc = tc_run();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", kdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot remove %s\n", kdir);
    }
    return rc;
}
