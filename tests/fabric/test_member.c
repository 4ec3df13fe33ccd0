/*
 * test_member.c - node records (fabric/member.c) and the membership
 * sources: dir: (member_dir.c) and file: (member_file.c).
 */
#include "tests/common.h"
#include "tests/fabric/fabric_util.h"
#include "fabric/fabric.h"
#include "util/time.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Encode, decode; every single-bit flip and every truncation is refused. */
static void test_member_record(void)
{
    uf_member_t m = tmember(0x1234, 3, 99), d;
    size_t len, i;
    void *rec;
    uint8_t *r;

    CU_ASSERT_EQUAL_FATAL(uf_member_encode(&m, &rec, &len), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(uf_member_decode(rec, len, &d), UCACHE_OK);
    CU_ASSERT_EQUAL(d.id, 0x1234);
    CU_ASSERT_EQUAL(d.weight, 3);
    CU_ASSERT_EQUAL(d.pid, 99);
    CU_ASSERT_STRING_EQUAL(d.zone, "rack-7");
    CU_ASSERT_EQUAL(d.addr_len, m.addr_len);
    CU_ASSERT(memcmp(d.addr, m.addr, m.addr_len) == 0);
    CU_ASSERT(memcmp(d.rkey, m.rkey, m.rkey_len) == 0);
    uf_member_clear(&d);
    r = rec;
    for (i = 0; i < len * 8; i += 3) {
        r[i / 8] ^= (uint8_t)(1u << (i % 8));
        CU_ASSERT_EQUAL(uf_member_decode(rec, len, &d), UCACHE_ERR_CORRUPT);
        r[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    for (i = 0; i < len; i += 7) {
        CU_ASSERT_EQUAL(uf_member_decode(rec, i, &d), UCACHE_ERR_CORRUPT);
    }
    free(rec);
    m.weight = 0;
    CU_ASSERT_EQUAL(uf_member_encode(&m, &rec, &len), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uf_member_weight(0, 0), 1);
    CU_ASSERT_EQUAL(uf_member_weight(64ull << 30, 0), 16);
    CU_ASSERT_EQUAL(uf_member_weight((64ull << 30) + 1, 0), 17);
    CU_ASSERT_EQUAL(uf_member_weight(2ull << 40, 128ull << 30), 16); /* 2 TB, 128G slots */
    CU_ASSERT_EQUAL(uf_member_weight(1ull << 50, 1ull << 20), UF_MAX_WEIGHT);
}

/* Register (lowest free slots), scan, heartbeat-reap a dead process,
 * unregister; the epoch counts every change; junk files are skipped. */
static void test_member_dir(void)
{
    uf_member_t a = tmember(1, 2, (uint32_t)getpid()), b = tmember(2, 1, (uint32_t)getpid());
    uf_member_t c = tmember(3, 2, (uint32_t)getpid()), dead = tmember(4, 1, 0);
    uf_member_t *v;
    uint64_t epoch, bad = 0;
    char path[128];
    uint32_t n;
    pid_t child;
    int fd;

    tdir_make();
    CU_ASSERT_EQUAL(uf_dir_epoch(tdir), 0);
    CU_ASSERT_EQUAL(uf_dir_register(tdir, &a, 0), UCACHE_OK);
    CU_ASSERT_EQUAL(uf_dir_register(tdir, &b, 0), UCACHE_OK);
    CU_ASSERT_EQUAL(a.slot0, 0);
    CU_ASSERT_EQUAL(b.slot0, 2);
    CU_ASSERT_EQUAL(uf_dir_unregister(tdir, 1), UCACHE_OK);
    CU_ASSERT_EQUAL(uf_dir_unregister(tdir, 1), UCACHE_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(uf_dir_register(tdir, &c, 0), UCACHE_OK);
    CU_ASSERT_EQUAL(c.slot0, 0);                 /* a's freed slots, reused */
    child = fork();                              /* a pid that is gone */
    if (child == 0) {
        _exit(0);
    }
    waitpid(child, NULL, 0);
    dead.pid = (uint32_t)child;
    CU_ASSERT_EQUAL(uf_dir_register(tdir, &dead, 0), UCACHE_OK);
    CU_ASSERT_EQUAL(dead.slot0, 3);
    snprintf(path, sizeof(path), "%s/node-00000000000000ff.rec", tdir);
    fd = open(path, O_WRONLY | O_CREAT, 0644);     /* junk */
    CU_ASSERT(write(fd, "junk", 4) == 4);
    close(fd);
    CU_ASSERT_EQUAL(uf_dir_scan(tdir, &v, &n, &epoch, &bad), UCACHE_OK);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(bad, 1);
    CU_ASSERT_EQUAL(epoch, 5);
    uf_members_free(v, n);
    /* b's heartbeat reaps the dead process's record */
    CU_ASSERT_EQUAL(uf_dir_heartbeat(tdir, 2, 0), UCACHE_OK);
    CU_ASSERT_EQUAL(uf_dir_scan(tdir, &v, &n, &epoch, &bad), UCACHE_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(epoch, 6);
    uf_members_free(v, n);
    CU_ASSERT_EQUAL(uf_dir_heartbeat(tdir, 77, 0), UCACHE_ERR_NOT_FOUND);
    tdir_remove();
}

/*
 * Issue [3/11]: the dir: registry holds what lets a process connect to the
 * nodes and map their memory.  Its directory is made 0700 and its records
 * 0600; a directory open to others is closed; a symlinked directory, one of
 * another user, and symlinked or foreign records are refused.
 */
static void test_member_dir_safety(void)
{
    uf_member_t a = tmember(1, 1, (uint32_t)getpid()), b = tmember(2, 1, (uint32_t)getpid());
    uf_member_t *v;
    uint64_t epoch, bad = 0;
    char dir[96], link[256], path[256];
    struct stat st;
    uint32_t n;
    int fd;

    tdir_make();
    snprintf(dir, sizeof(dir), "%s/members", tdir);
    CU_ASSERT_EQUAL(uf_dir_register(dir, &a, 0), UCACHE_OK);
    CU_ASSERT_EQUAL(stat(dir, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/node-0000000000000001.rec", dir);
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/epoch", dir);
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0077, 0);
    snprintf(path, sizeof(path), "%s/lock", dir);
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0077, 0);

    /* opened to others (an older build made it 0755): closed again */
    CU_ASSERT_EQUAL(chmod(dir, 0755), 0);
    CU_ASSERT_EQUAL(uf_dir_scan(dir, &v, &n, &epoch, &bad), UCACHE_OK);
    CU_ASSERT_EQUAL(n, 1);
    uf_members_free(v, n);
    CU_ASSERT_EQUAL(stat(dir, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);

    /* a record planted as a symlink (to a file of ours) is not a record */
    snprintf(path, sizeof(path), "%s/node-00000000000000aa.rec", dir);
    snprintf(link, sizeof(link), "%s/node-0000000000000001.rec", dir);
    CU_ASSERT_EQUAL(symlink(link, path), 0);
    CU_ASSERT_EQUAL(uf_dir_scan(dir, &v, &n, &epoch, &bad), UCACHE_OK);
    CU_ASSERT_EQUAL(n, 1);
    uf_members_free(v, n);
    unlink(path);

    /* the directory as a symlink: refused, for readers and writers */
    snprintf(link, sizeof(link), "%s/alias", tdir);
    CU_ASSERT_EQUAL(symlink(dir, link), 0);
    CU_ASSERT_EQUAL(uf_dir_scan(link, &v, &n, &epoch, &bad), UCACHE_ERR_IO);
    CU_ASSERT_EQUAL(uf_dir_register(link, &b, 0), UCACHE_ERR_IO);

    /* another user's directory, and another user's record in ours */
    if (geteuid() == 0) {
        CU_ASSERT_EQUAL(chown(dir, 65534, 65534), 0);
        CU_ASSERT_EQUAL(uf_dir_scan(dir, &v, &n, &epoch, &bad), UCACHE_ERR_IO);
        CU_ASSERT_EQUAL(uf_dir_register(dir, &b, 0), UCACHE_ERR_IO);
        CU_ASSERT_EQUAL(chown(dir, 0, 0), 0);
        CU_ASSERT_EQUAL(uf_dir_register(dir, &b, 0), UCACHE_OK);
        snprintf(path, sizeof(path), "%s/node-0000000000000002.rec", dir);
        CU_ASSERT_EQUAL(chown(path, 65534, 65534), 0);
        CU_ASSERT_EQUAL(uf_dir_scan(dir, &v, &n, &epoch, &bad), UCACHE_OK);
        CU_ASSERT_EQUAL(n, 1);               /* b's record is not ours: ignored */
        uf_members_free(v, n);
    } else {
        TC_SKIP("another user's members directory: needs root to chown");
    }
    fd = open(dir, O_RDONLY);
    CU_ASSERT(fd >= 0);
    close(fd);
    tdir_remove();
}

/* file: lists: slots in line order, zones, weights, comments; malformed
 * lines and repeats refused with their line; an edit is a new epoch. */
static void test_member_file(void)
{
    static const char *const bad[] = {
        "nohost\n", "host:0\n", "host:70000\n", ":5\n", "h:5 weight=0\n",
        "h:5 weight=2000\n", "h:5 color=red\n", "h:5\nh:5\n", NULL
    };
    const char *good = "# fabric\n\n10.0.0.1:7000 zone=r1\n  10.0.0.2:7000 zone=r2 "
                       "weight=3  # big\n[::1]:7001\n";
    uf_member_t *v;
    uint64_t e1, e2;
    char path[128];
    uint32_t n;
    unsigned i;

    tdir_make();
    snprintf(path, sizeof(path), "%s/list", tdir);
    write_file(path, good, strlen(good));
    CU_ASSERT_EQUAL_FATAL(uf_file_scan(path, &v, &n, &e1), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_STRING_EQUAL(v[0].host, "10.0.0.1");
    CU_ASSERT_EQUAL(v[0].port, 7000);
    CU_ASSERT_STRING_EQUAL(v[0].zone, "r1");
    CU_ASSERT_EQUAL(v[0].slot0, 0);
    CU_ASSERT_EQUAL(v[1].weight, 3);
    CU_ASSERT_EQUAL(v[1].slot0, 1);
    CU_ASSERT_EQUAL(v[2].slot0, 4);
    CU_ASSERT_STRING_EQUAL(v[2].host, "[::1]");
    CU_ASSERT_EQUAL(v[0].id, uf_member_id_of("10.0.0.1:7000"));
    CU_ASSERT(v[0].addr == NULL);
    uf_members_free(v, n);
    CU_ASSERT_EQUAL(uf_file_epoch(path), e1);
    usleep(20000);
    write_file(path, good, strlen(good));
    CU_ASSERT_EQUAL(uf_file_scan(path, &v, &n, &e2), UCACHE_OK);
    CU_ASSERT(e2 != e1);
    uf_members_free(v, n);
    for (i = 0; bad[i] != NULL; i++) {
        write_file(path, bad[i], strlen(bad[i]));
        CU_ASSERT_EQUAL(uf_file_scan(path, &v, &n, &e1), UCACHE_ERR_INVALID);
    }
    /* a line longer than the reader's 512 bytes whose tail is a node of
     * someone's choosing: refused whole, never read as two lines; a NUL too */
    {
        char longl[700];

        memset(longl, ' ', sizeof(longl));
        memcpy(longl, "10.0.0.1:7000 zone=", 19);
        memcpy(longl + 511, "10.6.6.6:7000\n", 14);
        write_file(path, longl, 511 + 14);
        CU_ASSERT_EQUAL(uf_file_scan(path, &v, &n, &e1), UCACHE_ERR_INVALID);
        write_file(path, "10.0.0.1:7000\0\n10.0.0.2:7000\n", 29);
        CU_ASSERT_EQUAL(uf_file_scan(path, &v, &n, &e1), UCACHE_ERR_INVALID);
    }
    CU_ASSERT_EQUAL(uf_file_scan("/nonexistent/list", &v, &n, &e1),
                    UCACHE_ERR_NOT_FOUND);
    tdir_remove();
}

const tc_test_t member_tests[] = {
    { "member_record", test_member_record },
    { "member_dir", test_member_dir },
    { "member_dir_safety", test_member_dir_safety },
    { "member_file", test_member_file },
    { NULL, NULL }
};
