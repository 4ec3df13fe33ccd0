/*
 * test_member.c - node records (fabric/member.c), the dir: source, origins
 * (origin/origin*.c) and an in-process fabric of two serving contexts joined
 * with ucache_members_set().
 */
#include "tests/common.h"
#include "fabric/fabric.h"
#include "util/time.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tdir[] = "/tmp/ucache-tmember.XXXXXX";

static void tdir_make(void)
{
    strcpy(tdir, "/tmp/ucache-tmember.XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tdir));
}

static void tdir_remove(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

static uf_member_t tmember(uint64_t id, uint32_t weight, uint32_t pid)
{
    static char addr[] = "address-bytes", rkey[] = "rkey";
    uf_member_t m;

    memset(&m, 0, sizeof(m));
    m.id = id;
    m.weight = weight;
    m.pid = pid;
    m.mem_bytes = 1u << 30;
    strcpy(m.zone, "rack-7");
    gethostname(m.host, sizeof(m.host) - 1);
    m.addr = addr;
    m.addr_len = sizeof(addr);
    m.rkey = rkey;
    m.rkey_len = sizeof(rkey);
    return m;
}

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
    CU_ASSERT_EQUAL(uf_member_weight(0), 1);
    CU_ASSERT_EQUAL(uf_member_weight(64ull << 30), 16);
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

static void write_file(const char *path, const char *data, size_t len);

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

static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

/* file:// origins: stat, read, a changed file is STALE, bad URIs. */
static void test_origin_file(void)
{
    char path[128], uri[160], buf[64];
    us_object_t o, o2;
    us_origin_stats_t s0, s1;

    tdir_make();
    snprintf(path, sizeof(path), "%s/obj", tdir);
    snprintf(uri, sizeof(uri), "file://%s", path);
    write_file(path, "0123456789", 10);
    us_origin_stats(&s0);
    CU_ASSERT_EQUAL_FATAL(us_origin_stat(NULL, uri, &o), UCACHE_OK);
    CU_ASSERT_EQUAL(o.size, 10);
    CU_ASSERT_EQUAL(us_origin_read(NULL, uri, &o, 3, buf, 4), UCACHE_OK);
    CU_ASSERT(memcmp(buf, "3456", 4) == 0);
    CU_ASSERT_EQUAL(us_origin_read(NULL, uri, &o, 8, buf, 4), UCACHE_ERR_OUT_OF_RANGE);
    usleep(20000);
    write_file(path, "abcdefghij", 10);          /* same size, new mtime */
    CU_ASSERT_EQUAL(us_origin_read(NULL, uri, &o, 0, buf, 4), UCACHE_ERR_STALE);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, uri, &o2), UCACHE_OK);
    CU_ASSERT(o2.version != o.version);
    CU_ASSERT_EQUAL(us_origin_read(NULL, uri, &o2, 0, buf, 4), UCACHE_OK);
    CU_ASSERT(memcmp(buf, "abcd", 4) == 0);
    snprintf(uri, sizeof(uri), "file://localhost%s", path);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, uri, &o), UCACHE_OK);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, "file:///no/such/file", &o), UCACHE_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, "file://host/x", &o), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, "ftp://x/y", &o), UCACHE_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, "nothing", &o), UCACHE_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, NULL, &o), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(us_origin_stat(NULL, "file:///tmp", &o), UCACHE_ERR_INVALID);
    us_origin_stats(&s1);
    CU_ASSERT_EQUAL(s1.reads - s0.reads, 3);     /* the out-of-range one never went out */
    CU_ASSERT(s1.errors - s0.errors >= 7);
    tdir_remove();
}

/* Serving contexts of 16 MiB in 64 KiB chunks, joined by "mpi" records. */
static const ucache_params_t pair_params = {
    .field_mask = UCACHE_PARAM_FIELD_SERVE | UCACHE_PARAM_FIELD_MEMBERS |
                  UCACHE_PARAM_FIELD_MEM_BYTES | UCACHE_PARAM_FIELD_CHUNK_SIZE |
                  UCACHE_PARAM_FIELD_ALLOW,
    .serve = 1, .members = "mpi", .mem_bytes = 16u << 20, .chunk_size = 64u << 10,
    .allow = "file:///tmp/"      /* the tests' objects live in /tmp/ucache-* */
};

/* A 300000-byte object of pattern i * @p mul + i / @p div at @p uri, and
 * two serving contexts of @p p with their records (not yet joined). */
static char *pair_start(const ucache_params_t *p, unsigned mul, unsigned div, char *uri,
                        size_t cap, ucache_h c[2], const void *recs[2], size_t lens[2])
{
    char path[128], *data = malloc(300000);
    unsigned i, k;

    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    tdir_make();
    snprintf(path, sizeof(path), "%s/obj", tdir);
    snprintf(uri, cap, "file://%s", path);
    for (i = 0; i < 300000; i++) {
        data[i] = (char)(i * mul + i / div);
    }
    write_file(path, data, 300000);
    for (k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL_FATAL(ucache_init(p, &c[k]), UCACHE_OK);
        CU_ASSERT_EQUAL_FATAL(ucache_member_record(c[k], &recs[k], &lens[k]), UCACHE_OK);
    }
    return data;
}

/* Two serving contexts in one process joined with ucache_members_set():
 * both read a 5-chunk object exactly; each chunk is filled once. */
static void test_members_set(void)
{
    ucache_params_t p = pair_params;
    const void *recs[2];
    size_t lens[2], got;
    char uri[160], *data, *buf, junk[100] = { 0 };
    ucache_stats_t s[2];
    ucache_h c[2] = { NULL, NULL }, reader;
    unsigned k;

    data = pair_start(&p, 7, 251, uri, sizeof(uri), c, recs, lens);
    buf = malloc(300000);
    recs[1] = junk;                              /* a malformed record */
    lens[1] = sizeof(junk);
    CU_ASSERT_EQUAL(ucache_members_set(c[0], recs, lens, 2, 1), UCACHE_ERR_CORRUPT);
    ucache_member_record(c[1], &recs[1], &lens[1]);
    CU_ASSERT_EQUAL(ucache_members_set(c[0], recs, lens, 2, 0), UCACHE_ERR_INVALID);
    for (k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL(ucache_members_set(c[k], recs, lens, 2, 1), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(ucache_members_set(c[0], recs, lens, 2, 1), UCACHE_ERR_INVALID);
    for (k = 0; k < 2; k++) {
        memset(buf, 0, 300000);
        CU_ASSERT_EQUAL(ucache_read(c[k], uri, 0, 300000, buf, &got), UCACHE_OK);
        CU_ASSERT_EQUAL(got, 300000);
        CU_ASSERT(memcmp(buf, data, 300000) == 0);
        CU_ASSERT_EQUAL(ucache_read(c[k], uri, 70000, 1000, buf, &got), UCACHE_OK);
        CU_ASSERT(memcmp(buf, data + 70000, 1000) == 0);
    }
    for (k = 0; k < 2; k++) {
        ucache_stats_get(c[k], &s[k]);
        CU_ASSERT_EQUAL(s[k].view_nodes, 2);
        CU_ASSERT_EQUAL(s[k].origin_direct, 0);
    }
    CU_ASSERT_EQUAL(s[0].fills + s[1].fills, 5);  /* 300000 / 64K: 5 chunks */
    CU_ASSERT_EQUAL(s[0].chunk_misses + s[1].chunk_misses, 5);
    /* a reader context with "mpi" members and no view reads the origin */
    p.field_mask = UCACHE_PARAM_FIELD_MEMBERS;
    CU_ASSERT_EQUAL_FATAL(ucache_init(&p, &reader), UCACHE_OK);
    CU_ASSERT_EQUAL(ucache_read(reader, uri, 299990, 100, buf, &got), UCACHE_OK);
    CU_ASSERT_EQUAL(got, 10);
    CU_ASSERT(memcmp(buf, data + 299990, 10) == 0);
    ucache_finalize(reader);
    for (k = 0; k < 2; k++) {
        ucache_finalize(c[k]);
    }
    free(data);
    free(buf);
    tdir_remove();
}

/* The admin calls on an in-process fabric of two serving contexts: a
 * probe measures and checks the other node's index (every chunk verified);
 * a payload byte flipped in its store shows as a bad chunk, and a read
 * still returns the origin's bytes; evict drops every copy; a drained
 * node fills nothing, and comes back. */
static void test_node_admin(void)
{
    ucache_params_t p = pair_params;
    ucache_probe_params_t prm = { .field_mask = UCACHE_PROBE_FIELD_ITERS |
                                                UCACHE_PROBE_FIELD_DEEP |
                                                UCACHE_PROBE_FIELD_SIZE |
                                                UCACHE_PROBE_FIELD_LAT_NS,
                                  .iters = 8, .deep = 64, .size = 256u << 10 };
    const void *recs[2];
    size_t lens[2], got, n;
    uint64_t lat[8] = { 0 };
    char uri[160], *data, *buf, *base, *hit;
    ucache_node_info_t nodes[2];
    ucache_probe_result_t r;
    ucache_warm_result_t w;
    ucache_stats_t s[2], st;
    ucache_h c[2] = { NULL, NULL };
    unsigned i, k, other, o, q;

    prm.lat_ns = lat;
    data = pair_start(&p, 13, 241, uri, sizeof(uri), c, recs, lens);
    buf = malloc(300000);
    for (k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL(ucache_members_set(c[k], recs, lens, 2, 1), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(ucache_read(c[0], uri, 0, 300000, buf, &got), UCACHE_OK);
    CU_ASSERT(memcmp(buf, data, 300000) == 0);
    /* o: a node holding chunks; q probes it */
    ucache_stats_get(c[0], &s[0]);
    ucache_stats_get(c[1], &s[1]);
    o = (s[1].chunks_cached > 0) ? 1 : 0;
    q = 1 - o;
    CU_ASSERT_FATAL(s[o].chunks_cached > 0);
    CU_ASSERT_EQUAL_FATAL(ucache_nodes(c[q], nodes, 2, &n), UCACHE_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    other = nodes[0].self ? 1 : 0;

    /* the probe: counters, latency, bandwidth, every chunk verified */
    CU_ASSERT_EQUAL(ucache_node_probe(c[q], nodes[other].id, &prm, &r), UCACHE_OK);
    CU_ASSERT_EQUAL(r.status, UCACHE_OK);
    CU_ASSERT_EQUAL(r.lat_reads, 8);
    CU_ASSERT(lat[0] > 0);
    CU_ASSERT_EQUAL(r.bw_bytes, 8u * (256u << 10));
    CU_ASSERT(r.path[0] != '\0');
    CU_ASSERT_EQUAL(r.stats.chunks_cached, s[o].chunks_cached);
    CU_ASSERT_EQUAL(r.chunks_checked, s[o].chunks_cached);
    CU_ASSERT_EQUAL(r.chunks_bad, 0);
    CU_ASSERT_EQUAL(r.chunks_misplaced, 0);
    CU_ASSERT(r.buckets_scanned > 0);
    CU_ASSERT_EQUAL(r.index_cut, 0);

    /* a deadline that ends in the timed reads leaves the index check
     * undone, and the result says so (not a clean "0 chunks checked") */
    {
        ucache_probe_params_t cut = prm;

        cut.field_mask |= UCACHE_PROBE_FIELD_TIMEOUT_NS;
        cut.iters      = 100000;
        cut.timeout_ns = 20 * 1000000ull;
        cut.lat_ns     = NULL;
        CU_ASSERT_EQUAL(ucache_node_probe(c[q], nodes[other].id, &cut, &r), UCACHE_OK);
        CU_ASSERT(r.lat_reads > 0);
        CU_ASSERT(r.lat_reads + r.bw_reads < 200000);  /* the deadline ended them */
        CU_ASSERT_EQUAL(r.index_cut, 1);
        CU_ASSERT(r.chunks_checked < s[o].chunks_cached);
    }

    /* one payload byte flipped in the other node's memory */
    base = us_store_base(uf_node_store(c[o]->node));
    hit = NULL;
    for (i = 0; (hit == NULL) && (i < 5); i++) {
        hit = memmem(base, us_store_len(uf_node_store(c[o]->node)), data + 65536 * i, 256);
    }
    CU_ASSERT_FATAL(hit != NULL);
    hit[100] ^= 0x40;
    CU_ASSERT_EQUAL(ucache_node_probe(c[q], nodes[other].id, &prm, &r), UCACHE_OK);
    CU_ASSERT_EQUAL(r.chunks_bad, 1);
    CU_ASSERT_EQUAL(r.chunks_checked, s[o].chunks_cached - 1);
    memset(buf, 0, 300000);   /* a reader never gets the flipped byte */
    CU_ASSERT_EQUAL(ucache_read(c[q], uri, 0, 300000, buf, &got), UCACHE_OK);
    CU_ASSERT(memcmp(buf, data, 300000) == 0);
    hit[100] ^= 0x40;

    /* bad input */
    CU_ASSERT_EQUAL(ucache_node_probe(c[q], 12345, NULL, &r), UCACHE_ERR_NOT_FOUND);
    prm.iters = 0;
    CU_ASSERT_EQUAL(ucache_node_probe(c[q], nodes[other].id, &prm, &r), UCACHE_ERR_INVALID);
    prm.field_mask = 1u << 20;
    CU_ASSERT_EQUAL(ucache_node_probe(c[q], nodes[other].id, &prm, &r), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(ucache_node_drain(c[q], 12345, 1, 1000000000ull, &st),
                    UCACHE_ERR_NOT_FOUND);

    /* evict: every copy dropped */
    memset(&w, 0, sizeof(w));
    CU_ASSERT_EQUAL(ucache_warm(c[q], uri, 0, UINT64_MAX, UCACHE_WARM_EVICT, &w), UCACHE_OK);
    CU_ASSERT_EQUAL(w.chunks, 5);
    CU_ASSERT(w.evicted >= 5); /* and the copies the corrupt read sent elsewhere */
    CU_ASSERT_EQUAL(ucache_warm(c[q], uri, 0, UINT64_MAX, UCACHE_WARM_EVICT | UCACHE_WARM_PIN,
                                &w), UCACHE_ERR_INVALID);
    for (k = 0; k < 2; k++) {
        ucache_stats_get(c[k], &s[k]);
        CU_ASSERT_EQUAL(s[k].chunks_cached, 0);
    }

    /* drain the other node: it fills nothing; the bytes stay exact */
    CU_ASSERT_EQUAL(ucache_node_drain(c[q], nodes[other].id, 1, 1000000000ull, &st), UCACHE_OK);
    CU_ASSERT_EQUAL(st.draining, 1);
    CU_ASSERT_EQUAL(ucache_read(c[q], uri, 0, 300000, buf, &got), UCACHE_OK);
    CU_ASSERT(memcmp(buf, data, 300000) == 0);
    ucache_stats_get(c[o], &st);
    CU_ASSERT_EQUAL(st.fills, s[o].fills);
    CU_ASSERT_EQUAL(st.chunks_cached, 0);
    CU_ASSERT_EQUAL(ucache_node_drain(c[q], nodes[other].id, 0, 1000000000ull, &st), UCACHE_OK);
    CU_ASSERT_EQUAL(st.draining, 0);
    for (k = 0; k < 2; k++) {
        ucache_finalize(c[k]);
    }
    free(data);
    free(buf);
    tdir_remove();
}

/* Owners whose grace period (1 us) every read outlasts, as a fresh reader's
 * first touch of a mapping or a sanitizer's copy does: the reads still
 * count at once, none retried, on the mapped path and over one-sided gets
 * (tcp), because the slot still holds each chunk after its copy; the
 * index check verifies every chunk the same way. */
static void test_late_reads(void)
{
    ucache_params_t p = pair_params;
    ucache_probe_params_t prm = { .field_mask = UCACHE_PROBE_FIELD_DEEP, .deep = 64 };
    const void *recs[2];
    size_t lens[2], got, n;
    char uri[160], *data, *buf;
    ucache_node_info_t nodes[2];
    ucache_probe_result_t r;
    ucache_stats_t s[2];
    ucache_h c[2];
    unsigned k, pass, other, o;

    buf = malloc(300000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    setenv("UCACHE_GRACE", "1us", 1);
    for (pass = 0; pass < 2; pass++) {        /* mapped, then gets over tcp */
        if (pass == 1) {
            setenv("UCX_TLS", "tcp", 1);
            setenv("UCACHE_READ_PATH", "get", 1);
            setenv("UCACHE_EMULATED_RMA", "yes", 1);   /* both nodes: the test mode */
        }
        data = pair_start(&p, 11, 239, uri, sizeof(uri), c, recs, lens);
        for (k = 0; k < 2; k++) {
            CU_ASSERT_EQUAL(ucache_members_set(c[k], recs, lens, 2, 1), UCACHE_OK);
        }
        for (k = 0; k < 4; k++) {             /* misses, then hits */
            memset(buf, 0, 300000);
            CU_ASSERT_EQUAL(ucache_read(c[k % 2], uri, 0, 300000, buf, &got), UCACHE_OK);
            CU_ASSERT(memcmp(buf, data, 300000) == 0);
        }
        for (k = 0; k < 2; k++) {
            ucache_stats_get(c[k], &s[k]);
            CU_ASSERT_EQUAL(s[k].verify_retries, 0);
            CU_ASSERT_EQUAL(s[k].origin_direct, 0);
        }
        CU_ASSERT(s[0].chunk_hits + s[1].chunk_hits > 0);
        /* probe the node that holds chunks (placement may give one all 5) */
        o = (s[1].chunks_cached > 0) ? 1 : 0;
        CU_ASSERT_EQUAL_FATAL(ucache_nodes(c[1 - o], nodes, 2, &n), UCACHE_OK);
        other = nodes[0].self ? 1 : 0;
        CU_ASSERT_EQUAL(ucache_node_probe(c[1 - o], nodes[other].id, &prm, &r), UCACHE_OK);
        CU_ASSERT_STRING_EQUAL(r.path, (pass == 0) ? "mapped" : "get");
        CU_ASSERT_EQUAL(r.chunks_checked, r.stats.chunks_cached);
        CU_ASSERT(r.chunks_checked > 0);
        CU_ASSERT_EQUAL(r.chunks_bad + r.chunks_changed, 0);
        for (k = 0; k < 2; k++) {
            ucache_finalize(c[k]);
        }
        free(data);
        tdir_remove();
    }
    unsetenv("UCACHE_GRACE");
    unsetenv("UCX_TLS");
    unsetenv("UCACHE_READ_PATH");
    unsetenv("UCACHE_EMULATED_RMA");
    free(buf);
}

/* Whether @p len bytes of @p pat appear in either context's exported region. */
static bool regions_hold(ucache_h c[2], const char *pat, size_t len)
{
    unsigned k;

    for (k = 0; k < 2; k++) {
        us_store_t *st = uf_node_store(c[k]->node);

        if (memmem(us_store_base(st), us_store_len(st), pat, len) != NULL) {
            return true;
        }
    }
    return false;
}

/* A FETCH as a requester crafts it: chunk 0 of @p uri, claimed @p size
 * bytes and version 1 (the key matches; nothing else is true). */
static ucache_status_t crafted_fill(ucache_h ctx, const char *uri, uint64_t size)
{
    us_object_t obj = { .size = size, .version = 1 };
    us_key_t key = uf_chunk_key(uri, &obj, 0, ctx->cfg.chunk_size);
    uf_fetch_req_t req = { .magic = UF_PROTO_MAGIC, .version = UF_PROTO_VERSION,
                           .key_hi = key.hi, .key_lo = key.lo, .obj_size = size,
                           .obj_version = 1, .chunk_size = (uint32_t)ctx->cfg.chunk_size,
                           .uri_len = (uint16_t)strlen(uri) };
    uint32_t how;
    us_loc_t loc;

    return uf_node_fetch_local(ctx->node, &req, uri, &loc, &how);
}

/* Writes a secret into a FIFO once someone opens it for reading (1 s at most). */
static void *fifo_writer(void *arg)
{
    const char *path = arg;
    unsigned i;
    int fd = -1;

    for (i = 0; (i < 100) && (fd < 0); i++) {
        fd = open(path, O_WRONLY | O_NONBLOCK);
        if (fd < 0) {
            usleep(10000);
        }
    }
    if (fd >= 0) {
        (void)!write(fd, "FIFO-SECRET-FIFO-SECRET-FIFO-SECRET", 35);
        close(fd);
    }
    return NULL;
}

/*
 * Issue [2/11] #1, the owner as a confused deputy: a URI its configuration
 * does not allow is never read into its exported memory.  With the default
 * allow list (az://, s3://, https:// to public hosts) a file:// object is
 * refused by both owners, the reader reads it itself with its own rights
 * (exact bytes, no owner turns suspect), and no byte of it is in either
 * region.  With file://DIR/ok/ allowed, crafted FETCHes for a FIFO, a
 * symlink out of the prefix, a ".." path, /proc/self/environ and a file
 * next to the prefix are refused at once; a plain file inside it fills.
 */
static void test_confinement(void)
{
    ucache_params_t p = pair_params;
    const void *recs[2];
    size_t lens[2], got;
    char uri[200], path[160], allow[200], *data, *buf;
    char secret[64] = "SECRET-0123456789-SECRET-0123456789-SECRET-0123456789-SECRET!!";
    ucache_stats_t s[2];
    ucache_h c[2] = { NULL, NULL };
    char env[4096];
    pthread_t writer;
    uint64_t t0;
    unsigned k;
    ssize_t n;
    int fd;

    unsetenv("UCACHE_ALLOW");
    p.field_mask &= ~(uint64_t)UCACHE_PARAM_FIELD_ALLOW;  /* the default list */
    data = pair_start(&p, 29, 233, uri, sizeof(uri), c, recs, lens);
    buf = malloc(300000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    for (k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL(ucache_members_set(c[k], recs, lens, 2, 1), UCACHE_OK);
    }
    CU_ASSERT_EQUAL(ucache_read(c[0], uri, 0, 300000, buf, &got), UCACHE_OK);
    CU_ASSERT(memcmp(buf, data, 300000) == 0);
    for (k = 0; k < 2; k++) {
        ucache_stats_get(c[k], &s[k]);
        CU_ASSERT_EQUAL(s[k].fills, 0);
        CU_ASSERT_EQUAL(s[k].failovers, 0);
    }
    CU_ASSERT_EQUAL(s[0].origin_direct, 5);
    CU_ASSERT(s[0].fills_refused + s[1].fills_refused >= 5);
    CU_ASSERT_FALSE(regions_hold(c, data + 4096, 64));
    for (k = 0; k < 2; k++) {
        ucache_finalize(c[k]);
    }

    /* file://DIR/ok/ allowed: what is outside it, or not a regular file, is not */
    snprintf(allow, sizeof(allow), "file://%s/ok/", tdir);
    setenv("UCACHE_ALLOW", allow, 1);
    for (k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL_FATAL(ucache_init(&p, &c[k]), UCACHE_OK);
    }
    snprintf(path, sizeof(path), "%s/ok", tdir);
    CU_ASSERT_EQUAL(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/secret", tdir);
    write_file(path, secret, sizeof(secret));
    snprintf(path, sizeof(path), "%s/ok/link", tdir);
    CU_ASSERT_EQUAL(symlink("../secret", path), 0);
    snprintf(path, sizeof(path), "%s/ok/fifo", tdir);
    CU_ASSERT_EQUAL(mkfifo(path, 0600), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&writer, NULL, fifo_writer, path), 0);
    t0 = uc_time_ns();
    snprintf(uri, sizeof(uri), "file://%s/ok/fifo", tdir);
    CU_ASSERT_EQUAL(crafted_fill(c[0], uri, 4096), UCACHE_ERR_REFUSED);
    CU_ASSERT(uc_time_ns() - t0 < tc_slow(500000000ull)); /* not blocked on the FIFO */
    pthread_join(writer, NULL);
    CU_ASSERT_FALSE(regions_hold(c, "FIFO-SECRET", 11));
    snprintf(uri, sizeof(uri), "file://%s/ok/link", tdir);
    CU_ASSERT_EQUAL(crafted_fill(c[0], uri, sizeof(secret)), UCACHE_ERR_REFUSED);
    CU_ASSERT_FALSE(regions_hold(c, secret, sizeof(secret)));
    snprintf(uri, sizeof(uri), "file://%s/ok/../secret", tdir);
    CU_ASSERT_EQUAL(crafted_fill(c[0], uri, sizeof(secret)), UCACHE_ERR_REFUSED);
    CU_ASSERT_FALSE(regions_hold(c, secret, sizeof(secret)));
    snprintf(path, sizeof(path), "%s/ok.secret", tdir);
    write_file(path, secret, sizeof(secret));
    snprintf(uri, sizeof(uri), "file://%s", path);
    CU_ASSERT_EQUAL(crafted_fill(c[0], uri, sizeof(secret)), UCACHE_ERR_REFUSED);
    CU_ASSERT_FALSE(regions_hold(c, secret, sizeof(secret)));
    fd = open("/proc/self/environ", O_RDONLY);
    n = (fd >= 0) ? read(fd, env, sizeof(env)) : -1;
    if (fd >= 0) {
        close(fd);
    }
    CU_ASSERT_EQUAL(crafted_fill(c[0], "file:///proc/self/environ", 4096),
                    UCACHE_ERR_REFUSED);
    CU_ASSERT((n < 16) || !regions_hold(c, env, (size_t)n));
    /* inside the prefix, a regular file fills (its real version, not 1: STALE) */
    snprintf(path, sizeof(path), "%s/ok/plain", tdir);
    write_file(path, secret, sizeof(secret));
    snprintf(uri, sizeof(uri), "file://%s/ok/plain", tdir);
    CU_ASSERT_EQUAL(crafted_fill(c[0], uri, sizeof(secret)), UCACHE_ERR_STALE);
    ucache_stats_get(c[0], &s[0]);
    CU_ASSERT_EQUAL(s[0].fills_refused, 5);
    for (k = 0; k < 2; k++) {
        ucache_finalize(c[k]);
    }
    unsetenv("UCACHE_ALLOW");
    free(data);
    free(buf);
    tdir_remove();
}

/* A view finds each of 1000 nodes by id (its index in slot order), and no
 * other id. */
static void test_view_find(void)
{
    uf_member_t *m = calloc(1000, sizeof(*m));
    uint64_t ids[1000];
    uf_view_t *v = NULL;
    uint32_t i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    for (i = 0; i < 1000; i++) {
        ids[i] = ((uint64_t)(i * 2654435761u) << 20) | 1;  /* not in slot order */
        m[i] = tmember(ids[i], 1, 100 + i);
        m[i].addr = m[i].rkey = NULL;
        m[i].addr_len = m[i].rkey_len = 0;
        m[i].slot0 = 999 - i;
    }
    CU_ASSERT_EQUAL_FATAL(uf_view_build(NULL, m, 1000, 1, &v), UCACHE_OK);
    for (i = 0; i < 1000; i++) {
        uint32_t k = uf_view_find(v, ids[i]);

        CU_ASSERT_FATAL(k < 1000);
        CU_ASSERT_EQUAL(v->nodes[k].id, ids[i]);
    }
    CU_ASSERT_EQUAL(uf_view_find(v, 2), UINT32_MAX);
    CU_ASSERT_EQUAL(uf_view_find(v, UINT64_MAX), UINT32_MAX);
    CU_ASSERT_EQUAL(uf_view_find(NULL, ids[0]), UINT32_MAX);
    uf_view_free(v);
}

const tc_test_t member_tests[] = {
    { "member_record", test_member_record },
    { "member_dir", test_member_dir },
    { "member_dir_safety", test_member_dir_safety },
    { "member_file", test_member_file },
    { "origin_file", test_origin_file },
    { "members_set", test_members_set },
    { "node_admin", test_node_admin },
    { "late_reads", test_late_reads },
    { "confinement", test_confinement },
    { "view_find", test_view_find },
    { NULL, NULL }
};
